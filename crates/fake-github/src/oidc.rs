//! The fake OIDC issuer of GitHub Actions: its discovery document, its JWK set, the token
//! request endpoint a job calls, and tokens minted with any claims for tests.
//!
//! GitHub's side, as its docs describe it: a job with `permissions: id-token: write` has
//! `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN` in its environment; it sends
//! `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD` with `Authorization: bearer $TOKEN` and gets
//! `{"value": "<jwt>"}`, an RS256 JWT whose `kid` names a key of the set at the `jwks_uri` of
//! `<issuer>/.well-known/openid-configuration`.
//!
//! The fake serves the same paths on its own port: the issuer is `http://127.0.0.1:PORT`.
//!
//! **The RSA keys below are test keys, public in this repository: never trust them anywhere.**
//! They are committed (not made at run time) because making RSA keys needs a heavy crate.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::json;

/// The key id of the issuer's (only) signing key.
pub const KEY_ID: &str = "fake-github-test-key-1";

/// Path of the token request endpoint; `ACTIONS_ID_TOKEN_REQUEST_URL` points here.
pub(crate) const TOKEN_PATH: &str = "/_services/token";
/// Path of the discovery document.
pub(crate) const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// Path of the JWK set.
pub(crate) const JWKS_PATH: &str = "/.well-known/jwks";
/// The bearer token a job must send to the token request endpoint
/// (`ACTIONS_ID_TOKEN_REQUEST_TOKEN`).
pub const REQUEST_TOKEN: &str = "fake-actions-id-token-request-token";

/// TEST-ONLY private key of the fake issuer (RSA 2048). Public: never trust it.
const ISSUER_KEY_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA5etorGnW60pP1JEGhh0eIDCtNcD3KOzaW4Mgr2LVAMFF9GT1\nxZE3qPBOA335k9qpSQRuIkY2HrvSMft7ZTG8DEd+QHR/X6dZXrAiQjE3Veuj6xY8\nh0rpl3u2vaYwklYCfj9ZTmBaGCoy4zaxkGUrukchkfV/XjEttbmMsGn3a5LeUKxO\nPYcsZi6RcI9BA/Nf/W/942PyhNidZyGgtoibAdBTJc2mArcXYqsUabE3xNF8imEh\nEpLwNc5rXS6MiWQ9J7pmXm1o+3lPfHxRJk81XvPLiUGXFyYa/WBYx7Zbbeb4p3VJ\nQbkfCBfN4MpXB7aSbr4XOY50kSk5zgl5cHO+4wIDAQABAoIBAAhqXYerzPVDGSru\nEqiAdlZg2NfyghJTEtGm5LXtzrSF0ETmUR5lzDYU5L05F/fWdWaryZ5p+7R3nCAT\n/5ZavKttDnssXcS1h0dU+DFf0jyTMN9Q8dJxdLnLtOAPg4IOzd9yNJdkJXK5pgUt\n6WxZCWxeJ0ISvme4+VBWfRTM2JL7PDncVom6fGxmUMUXiQYGlakaa5ysTqrP3U1a\nCCqjm1mn5/pGVv73CqQjB994OvO5zu5nD1jbaH7SzU4m/QslBjTgkwQ5SDUmcaow\nHJUlr+gWE2RiPYNLv9EmCUEjsvIfjqp+SuLtmmrK8cgr4nqcr0zs+6wS1dyER07T\nd3tny+kCgYEA9DqPj5bA+x/vuiDRDpcdkTlb+9cTnB1GK7ESXQQ+pq1jlY+CpXOw\nU/tIchO0iQtPCeao7bvhCJG7Fka49sUnRDw7+nuUubTpcb5YWWEeZKVqBV1cmYS1\nrSWtnr4ZkNhS3L3NkqHpS7EX+/rw3x128Z9AGirchdqi3F+0BYSOdF8CgYEA8QBK\n+L9+zbpNg8/q+9e6fClfGU2lxdskP5y7KRArE94RSMF1F69DlsBv/zZ4OG9dMPvN\nBqe14A0FjTdMTHVvbP7VbyINfT+dZ2eaDKv80xjIWz9MM2WlzR6o2n9gzhboA6Vk\nyFD/3E9AyYmbYdqRGejHShqbAZnBKcpjDneWY/0CgYA7r1QGM0FWHafoRLzSY/vF\n0c647QbN0Bml89AZC0CEWztLAZdb97nPzEkYF9i25RybvtLpxlBoV7Tw7LenFudR\ntaaywCDIgX3LXkkZDrLuxb3zMa2/lr8PYXXcpXh5/WPCrl/exdLNvKmv2tOiswCu\na8yumGrsC1JhqMHF12844QKBgGfvoGW28JD5EAUQ3l7OovZ5QTJAcoXqBLAKgA0t\nk+Z1ly6xgDY+t/+D7sk6TI7KOH6vmbSND7sY4pQMjTNMUknHfXT4Uqj5joDSBXYB\nln/T6FSx78May26zEk9pL+6xok4wPk7F4BK7e01vszt4b6uk4I3s+3ytOskzJ5VN\nreZhAoGBAN6PxKXgYTQY2lo9BznTGFQBoGtGTn88TeYf0czY7mZHaLvc50NOagyX\n5uGjSNT+PPSyN/vD2pa1dml4zOC+SUH11TlbJxG0+AjH23I1CRNv8eTOXygFkA4l\nkgLNjURm0xLPKqBz83RmThhfQxWphfDPwFOTnz/PrG6rBl7sR82x\n-----END RSA PRIVATE KEY-----";
/// Modulus of [`ISSUER_KEY_PEM`], base64url, as a JWK carries it.
const ISSUER_KEY_N: &str = "5etorGnW60pP1JEGhh0eIDCtNcD3KOzaW4Mgr2LVAMFF9GT1xZE3qPBOA335k9qpSQRuIkY2HrvSMft7ZTG8DEd-QHR_X6dZXrAiQjE3Veuj6xY8h0rpl3u2vaYwklYCfj9ZTmBaGCoy4zaxkGUrukchkfV_XjEttbmMsGn3a5LeUKxOPYcsZi6RcI9BA_Nf_W_942PyhNidZyGgtoibAdBTJc2mArcXYqsUabE3xNF8imEhEpLwNc5rXS6MiWQ9J7pmXm1o-3lPfHxRJk81XvPLiUGXFyYa_WBYx7Zbbeb4p3VJQbkfCBfN4MpXB7aSbr4XOY50kSk5zgl5cHO-4w";
/// TEST-ONLY private key that the issuer does not publish: tokens it signs are forgeries.
const STRANGER_KEY_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEogIBAAKCAQEAuVoK/HHDGk14fkXnTgoLma/gCvI6YwToPCZpuqT23Vg2+1aK\nlQm5L0Jxv9t/6j3OB9BYDn1Smybb2gjod9yDKofceL9ltY9In8avd5SaoJg+GL+k\nVJ8/VSgZ/NSovcVUDeUBqma1pPyoZSB7r5LVNg48o4bfrHrCIHZuxebAhsarFYKI\nnTwXM0y720w8+rj/ayv7Xih6kUZmECR07At1iAJsa/je688om81sNgxNwpYf9mE1\n+3aKHfF7zpg7lY7xsCstpjREtCMbEJtCah/dFiWrqJHP0x/c6Ct4QF7p9yhGj1Yi\nR4Pu120c7fLjit4ijQp4/IkdpHuggkw246GLyQIDAQABAoIBAAQDEqgXEbpWmBeq\nex5j5CGIWeaQeEOj29ZzwdWMIbYaidz9KSIxTR235+XXhsGS9XncG8dEgy6pIYZG\nYoQTYrSWZflM1reegFulAi/gurk/wBYPVr3WLJmgtN9MbEBWLovflx5/H8pHTupj\nvndZlN2ZPm9YSXVw317XXyS9fH8S3yfdQ6AtRbsX9XRIR2lZHaPXwM5gufH2o05u\nv+Bed4QZKvmd6nlUU9tAGVMGyxME2LYL43N4lHJRHP3ZhuP46FzEXdCfpSF7/eMK\nGlyi7pVElLWQ8tLRca2p4QvEvd3IRbIDx6naY4Ds60LlnmH9M07+wT3+EeYNdyng\nKGQXGBkCgYEA94YUgk8lkaAEPDvrC/gPCBoErWNpDeC6HnS/RMN4QX4c0oU4y/ZF\nO1/rl7qVVv3k3pcSYY9G3Brf9aQTjuvpXOWSfcZi4SlqUY6ubKr62GKksfqzV8Zf\nZk9MbfpF/ElDmQtyIL9CWcL2Z4Q0jzoEtn12DnhpUHR543Q4zojUIYsCgYEAv7Lu\nWUOqT+LLan2alRscnSuSbyk8qMnPizdolkDmwLKv4yGGDTemYWzfgllPZgTmaW29\nal/OWPsauT5uKdcBWdAVxZvoEYLI/NSuqEqJwSv/dVjoJMT7dmWzFdXjN15PTANk\nc2S4pkU3NBR1I8PALk6gl9uk5mDzIi6G6FXyCnsCgYBK4jqELdOs2d9OJcZ3aYWK\nquxtVFztAObt3d4bvJM+JRwtKHbFZe0OCHfrAFy747YBDW1XLJSAdHT7CLeODpsc\nKqwF9yXk/rWWlPb6E0QugLFY0wK89FvaRPVXdFcF+1hDDe5qL9Kv+0a2jI2mIyRX\n3V8BA7bAy2wwvvGMsmKS/wKBgCuajKKbRJMVOEXJui6uUwzhC1bjn1uZQ+8btFtw\n+cvdGSrlxjMddGf2tsRUgj3nYW2bu5kFn88XltWKAM7di/4c2cbwFpJdGFCCJBQ9\nmCXrVxkfFva+I6Cjs1+FHkDK3+ifYOrqfyG63rqm6Jow/XbLBbZlDJYmeUdOI/uX\nCQ4fAoGAfiAb/F9VcUWsC6dZaygr0NcizMLgpIaEAzfTiFMiG30NNUQvupn8QEKt\nLLutb3jhigZPWDCXy93IdUxrGnOKxlkuzBugaDsuQvC21WbRCLsHf0xwZkJFcGJJ\nit94DsOe80qbGEBXPjMA18BHkC0ouFGbpVdFLql6GkgZNxEvwzk=\n-----END RSA PRIVATE KEY-----";
/// Modulus of [`STRANGER_KEY_PEM`], base64url (to publish it under the issuer's key id in a
/// test that wants a key set that does not match).
const STRANGER_KEY_N: &str = "uVoK_HHDGk14fkXnTgoLma_gCvI6YwToPCZpuqT23Vg2-1aKlQm5L0Jxv9t_6j3OB9BYDn1Smybb2gjod9yDKofceL9ltY9In8avd5SaoJg-GL-kVJ8_VSgZ_NSovcVUDeUBqma1pPyoZSB7r5LVNg48o4bfrHrCIHZuxebAhsarFYKInTwXM0y720w8-rj_ayv7Xih6kUZmECR07At1iAJsa_je688om81sNgxNwpYf9mE1-3aKHfF7zpg7lY7xsCstpjREtCMbEJtCah_dFiWrqJHP0x_c6Ct4QF7p9yhGj1YiR4Pu120c7fLjit4ijQp4_IkdpHuggkw246GLyQ";
/// The public exponent of both keys (65537).
const KEY_E: &str = "AQAB";

/// Who signs a minted token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The issuer's published key: a genuine token.
    Issuer,
    /// A key that is not in the issuer's set, under the issuer's key id: a forgery.
    Stranger,
}

/// The claims of a GitHub Actions OIDC token that ghcache reads, and the standard ones.
/// [`Claims::job`] fills them as a push job of a repository would have them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience (GitHub's default is the owner's URL; ghcache asks for `ghcache:<peer id>`).
    pub aud: String,
    /// Subject, e.g. `repo:o/a:ref:refs/heads/main`.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not before, seconds since the epoch.
    pub nbf: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// `owner/name` of the repository the job runs for.
    pub repository: String,
    /// Its owner.
    pub repository_owner: String,
    /// The event that started the workflow (`push`, `pull_request`, ...).
    pub event_name: String,
    /// The git ref.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The reusable workflow's ref, or the workflow's own.
    pub job_workflow_ref: String,
    /// For pull requests: the head branch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_ref: Option<String>,
}

impl Claims {
    /// A push job of `repository` on `main` for `audience`, valid for five minutes from now.
    pub fn job(issuer: &str, repository: &str, audience: &str) -> Claims {
        let now = now_secs();
        let owner = repository.split('/').next().unwrap_or("").to_owned();
        Claims {
            iss: issuer.to_owned(),
            aud: audience.to_owned(),
            sub: format!("repo:{repository}:ref:refs/heads/main"),
            exp: now + 300,
            nbf: now.saturating_sub(5),
            iat: now,
            repository: repository.to_owned(),
            repository_owner: owner,
            event_name: "push".to_owned(),
            git_ref: "refs/heads/main".to_owned(),
            job_workflow_ref: format!("{repository}/.github/workflows/ci.yml@refs/heads/main"),
            head_ref: None,
        }
    }
}

/// Seconds since the epoch by this machine's clock.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A JWT with `claims`, signed RS256 by `signer` under [`KEY_ID`].
///
/// # Errors
/// Only if the committed key cannot be read (a broken build of the fake).
pub fn mint(claims: &Claims, signer: Signer) -> anyhow::Result<String> {
    let pem = match signer {
        Signer::Issuer => ISSUER_KEY_PEM,
        Signer::Stranger => STRANGER_KEY_PEM,
    };
    let key = EncodingKey::from_rsa_pem(pem.as_bytes())?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KEY_ID.to_owned());
    Ok(jsonwebtoken::encode(&header, claims, &key)?)
}

/// The issuer's JWK set, as `jwks_uri` serves it.
pub fn jwks() -> serde_json::Value {
    key_set(ISSUER_KEY_N)
}

/// A JWK set that names the stranger's key under the issuer's key id: what a verifier given the
/// wrong key set file sees.
pub fn stranger_jwks() -> serde_json::Value {
    key_set(STRANGER_KEY_N)
}

fn key_set(n: &str) -> serde_json::Value {
    json!({"keys": [{
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": KEY_ID,
        "n": n,
        "e": KEY_E,
    }]})
}

/// The discovery document of issuer `issuer`.
pub(crate) fn discovery(issuer: &str) -> serde_json::Value {
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}{JWKS_PATH}"),
        "subject_types_supported": ["public", "pairwise"],
        "response_types_supported": ["id_token"],
        "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref",
            "repository", "repository_id", "repository_owner", "run_id", "event_name",
            "head_ref", "base_ref", "job_workflow_ref"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid"],
    })
}
