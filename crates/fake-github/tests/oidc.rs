//! The fake OIDC issuer of GitHub Actions as a job and a verifier meet it: discovery, the key set,
//! and the token request endpoint (bearer request token, `&audience=`), whose tokens verify
//! against the served key set with the audience asked for.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use fake_github::oidc::{self, Claims};
use fake_github::FakeGithub;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One plain HTTP/1.1 request straight to the server: status and body.
fn get(port: u16, target: &str, headers: &[&str]) -> Result<(u16, String), std::io::Error> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

#[derive(serde::Deserialize)]
struct Seen {
    repository: String,
    event_name: String,
    aud: String,
}

#[test]
fn a_job_gets_a_token_for_its_audience_that_verifies_against_the_served_key_set() -> TestResult {
    let server = FakeGithub::start()?;
    let port = server.port();
    let issuer = server.issuer();
    server.set_actions_job(Claims::job(&issuer, "o/a", ""));

    let (status, discovery) = get(port, "/.well-known/openid-configuration", &[])?;
    assert_eq!(status, 200);
    let discovery: serde_json::Value = serde_json::from_str(&discovery)?;
    assert_eq!(discovery["issuer"], issuer.as_str());
    let jwks_uri = discovery["jwks_uri"].as_str().ok_or("no jwks_uri")?;
    let jwks_path = jwks_uri.strip_prefix(&issuer).ok_or("jwks_uri elsewhere")?;
    let (status, jwks) = get(port, jwks_path, &[])?;
    assert_eq!(status, 200);
    let keys: JwkSet = serde_json::from_str(&jwks)?;

    // As the Actions toolkit asks: the request URL, `&audience=`, the bearer request token.
    let url = server.id_token_request_url();
    let target = url.strip_prefix(&issuer).ok_or("request URL elsewhere")?;
    let audience = "ghcache:12D3KooWTest";
    let asked = format!("{target}&audience=ghcache%3A12D3KooWTest");
    let bearer = format!("Authorization: bearer {}", oidc::REQUEST_TOKEN);
    let (status, answer) = get(port, &asked, &[bearer.as_str()])?;
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer)?;
    let jwt = answer["value"].as_str().ok_or("no value")?;

    let header = jsonwebtoken::decode_header(jwt)?;
    let kid = header.kid.ok_or("no kid")?;
    let key = DecodingKey::from_jwk(keys.find(&kid).ok_or("kid not in the set")?)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[&issuer]);
    validation.set_audience(&[audience]);
    let seen = jsonwebtoken::decode::<Seen>(jwt, &key, &validation)?.claims;
    assert_eq!(
        (
            seen.repository.as_str(),
            seen.event_name.as_str(),
            seen.aud.as_str()
        ),
        ("o/a", "push", audience)
    );

    let (status, _) = get(port, &asked, &[])?;
    assert_eq!(status, 401, "no request token, no id token");
    let (status, _) = get(port, &asked, &["Authorization: bearer wrong"])?;
    assert_eq!(status, 401);
    let (status, _) = get(port, target, &[bearer.as_str()])?;
    assert_eq!(status, 400, "an audience is required");
    Ok(())
}

#[test]
fn tokens_of_the_stranger_key_do_not_verify_against_the_issuers_set() -> TestResult {
    let claims = Claims::job("http://127.0.0.1:1", "o/a", "ghcache:x");
    let keys: JwkSet = serde_json::from_value(oidc::jwks())?;
    let key = DecodingKey::from_jwk(keys.find(oidc::KEY_ID).ok_or("no key")?)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["ghcache:x"]);
    let genuine = oidc::mint(&claims, oidc::Signer::Issuer)?;
    assert!(jsonwebtoken::decode::<Seen>(&genuine, &key, &validation).is_ok());
    let forged = oidc::mint(&claims, oidc::Signer::Stranger)?;
    assert!(jsonwebtoken::decode::<Seen>(&forged, &key, &validation).is_err());
    Ok(())
}
