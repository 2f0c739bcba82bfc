//! The key of an HTTP answer: a [`KeyInput`] whose arguments no gh command line can have.
//!
//! A request is keyed by the host, the scope, and what changes the answer: the method, the path
//! and query as gh sent them (REST), or the whole body (GraphQL: the document and its
//! variables), and the request headers that change the body ([`VARY`]). The first argument is
//! a tag that starts with a NUL byte: gh's arguments come from a command line, which cannot hold
//! one, so no output entry and no HTTP entry ever share a key.

use ghcache_core::{KeyInput, OutputMode};
use hyper::header::HeaderMap;
use hyper::Method;

/// First argument of a REST answer's key.
const REST_TAG: &str = "\u{0}http rest v1";
/// First argument of a GraphQL answer's key.
const GRAPHQL_TAG: &str = "\u{0}http graphql v1";

/// Request headers that change what GitHub answers: the media type and API version asked for,
/// the encoding the body may come in, the time zone dates are given in, preview features.
const VARY: [&str; 5] = [
    "accept",
    "accept-encoding",
    "x-github-api-version",
    "time-zone",
    "graphql-features",
];

/// The key input of a REST read.
pub(crate) fn rest(
    host: &str,
    scope: &str,
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
) -> KeyInput {
    let mut argv = vec![
        REST_TAG.to_owned(),
        method.as_str().to_owned(),
        path_and_query.to_owned(),
    ];
    argv.extend(varying(headers));
    input(host, scope, argv)
}

/// The key input of a GraphQL query whose request body is `body`.
pub(crate) fn graphql(
    host: &str,
    scope: &str,
    path_and_query: &str,
    body: &str,
    headers: &HeaderMap,
) -> KeyInput {
    let mut argv = vec![
        GRAPHQL_TAG.to_owned(),
        path_and_query.to_owned(),
        body.to_owned(),
    ];
    argv.extend(varying(headers));
    input(host, scope, argv)
}

fn input(host: &str, scope: &str, argv: Vec<String>) -> KeyInput {
    KeyInput {
        host: host.to_owned(),
        scope: scope.to_owned(),
        // What the answer is about is the invalidation's business (the request's repository),
        // not the key's: the path or the body says everything.
        repo: String::new(),
        argv,
        output: OutputMode::Pipe,
    }
}

/// `name=value` for each header of [`VARY`], and whether the request is authenticated at all
/// (an answer without a token shows only what is public).
fn varying(headers: &HeaderMap) -> Vec<String> {
    let mut out: Vec<String> = VARY
        .iter()
        .map(|name| {
            let values: Vec<String> = headers
                .get_all(*name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
                .collect();
            format!("{name}={}", values.join(", "))
        })
        .collect();
    let authorized = headers.contains_key(hyper::header::AUTHORIZATION);
    out.push(format!("authorized={authorized}"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, hyper::header::HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn what_changes_the_answer_changes_the_key() {
        let base = headers(&[("accept", "application/json"), ("authorization", "token a")]);
        let key = |method: &Method, path: &str, h: &HeaderMap| {
            rest("api.github.com", "user:a", method, path, h).key()
        };
        let k = key(&Method::GET, "/repos/o/r", &base);
        assert_ne!(k, key(&Method::HEAD, "/repos/o/r", &base));
        assert_ne!(k, key(&Method::GET, "/repos/o/r?page=2", &base));
        let diff = headers(&[
            ("accept", "application/vnd.github.diff"),
            ("authorization", "token a"),
        ]);
        assert_ne!(k, key(&Method::GET, "/repos/o/r", &diff));
        let anonymous = headers(&[("accept", "application/json")]);
        assert_ne!(k, key(&Method::GET, "/repos/o/r", &anonymous));
        // The token itself is the scope's business: another token of the same scope shares.
        let other_token = headers(&[("accept", "application/json"), ("authorization", "token b")]);
        assert_eq!(k, key(&Method::GET, "/repos/o/r", &other_token));
        assert_ne!(
            k,
            rest(
                "api.github.com",
                "user:b",
                &Method::GET,
                "/repos/o/r",
                &base
            )
            .key()
        );
    }

    #[test]
    fn no_command_line_shares_a_key_with_a_request() {
        let h = headers(&[]);
        let input = rest("github.com", "s", &Method::GET, "/repos/o/r", &h);
        assert!(input.argv[0].starts_with('\0'));
        let gql = graphql("github.com", "s", "/graphql", "{}", &h);
        assert_ne!(input.key(), gql.key());
    }
}
