//! Which gh failures are GitHub's (a stale answer may be served) and which are the request's.
//!
//! gh has no machine-readable failure report, so this reads what gh 2.23 prints on stderr:
//! - `gh api`, REST: `gh: Server Error (HTTP 502)`, `gh: HTTP 503` (no JSON message),
//!   `gh: API rate limit exceeded for 1.2.3.4. (...) (HTTP 403)`,
//!   `gh: Too Many Requests (HTTP 429)`, `gh: HTTP 304` (a 304 after `If-None-Match` or
//!   `If-Modified-Since`);
//! - GraphQL commands (`pr list`, `repo view`): `HTTP 502: Server Error (https://api.github.com/graphql)`,
//!   `HTTP 503: 503 Service Unavailable (...)`, `HTTP 403: API rate limit exceeded for user ID 1. (...)`;
//! - githubv4 commands (`release list`): `non-200 OK status code: 502 Bad Gateway body: "..."`;
//! - network: `error connecting to api.github.com` (DNS), `Get "...": proxyconnect tcp: dial tcp
//!   127.0.0.1:9: connect: connection refused`, timeouts and `EOF`s from Go's HTTP client.

/// Did gh fail because GitHub or the network failed (5xx, rate limit, connection), judging by
/// what gh printed on stderr? Such failures may be answered with a stale entry; a 404, a 401 or
/// a bad flag may not.
pub(crate) fn is_transient(stderr: &[u8]) -> bool {
    let text = String::from_utf8_lossy(stderr);
    let lower = text.to_ascii_lowercase();
    let server_error = status_codes(&lower).any(|code| (500..600).contains(&code) || code == 429);
    const MARKERS: [&str; 16] = [
        "rate limit",
        "abuse detection",
        "error connecting to",
        "could not connect",
        "connection refused",
        "connection reset",
        "broken pipe",
        "no such host",
        "server misbehaving",
        "network is unreachable",
        "timeout",
        "deadline exceeded",
        "tls handshake",
        "unexpected eof",
        "server error",
        "service unavailable",
    ];
    // Go's HTTP client reports a connection closed mid-response as `Get "…": EOF`.
    let eof = text.lines().any(|line| line.trim_end().ends_with(": EOF"));
    server_error || eof || MARKERS.iter().any(|m| lower.contains(m))
}

/// HTTP status codes that gh's messages name: `http 502`, `(http 502)`, `status code: 502`.
fn status_codes(lower: &str) -> impl Iterator<Item = u16> + '_ {
    ["http ", "status code: "]
        .into_iter()
        .flat_map(move |prefix| {
            lower.match_indices(prefix).filter_map(move |(at, _)| {
                let rest = &lower.as_bytes()[at + prefix.len()..];
                let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                if digits != 3 {
                    return None;
                }
                std::str::from_utf8(&rest[..3]).ok()?.parse().ok()
            })
        })
}

/// Did gh report a `304 Not Modified`? gh 2.23 prints `gh: HTTP 304` on stderr (newer versions
/// may add `: Not Modified`).
pub(crate) fn is_not_modified(stderr: &[u8]) -> bool {
    status_codes(&String::from_utf8_lossy(stderr).to_ascii_lowercase()).any(|code| code == 304)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_failures_are_transient() {
        for stderr in [
            // gh 2.23 against a server answering with these statuses:
            "gh: Server Error (HTTP 502)\n",
            "gh: HTTP 503\n",
            "gh: API rate limit exceeded for 1.2.3.4. (But here's the good news: Authenticated requests get a higher rate limit.) (HTTP 403)\n",
            "gh: You have exceeded a secondary rate limit. Please wait a few minutes before you try again. (HTTP 403)\n",
            "gh: Too Many Requests (HTTP 429)\n",
            "HTTP 502: Server Error (http://api.github.localhost/graphql)\n",
            "HTTP 503: 503 Service Unavailable (http://api.github.localhost/graphql)\n",
            "HTTP 403: API rate limit exceeded for user ID 1. (http://api.github.localhost/graphql)\n",
            "non-200 OK status code: 502 Bad Gateway body: \"{\\\"message\\\":\\\"Server Error\\\"}\"\n",
            "non-200 OK status code: 503 Service Unavailable body: \"<html>bad</html>\"\n",
            "non-200 OK status code: 403 Forbidden body: \"{\\\"message\\\":\\\"API rate limit exceeded for user ID 1.\\\"}\"\n",
            // gh 2.23 without a network:
            "error connecting to nonexistent.invalid\ncheck your internet connection or https://githubstatus.com\n",
            "Get \"http://api.github.localhost/repos/o/r\": proxyconnect tcp: dial tcp 127.0.0.1:9: connect: connection refused\n",
            "Post \"http://api.github.localhost/graphql\": proxyconnect tcp: dial tcp 127.0.0.1:9: connect: connection refused\n",
            // Go's HTTP client, as gh passes it on:
            "Get \"https://api.github.com/user\": dial tcp: lookup api.github.com: no such host\n",
            "Get \"https://api.github.com/repos/o/r\": EOF\n",
            "Post \"https://api.github.com/graphql\": net/http: TLS handshake timeout\n",
            "Get \"https://api.github.com/repos/o/r\": dial tcp 140.82.112.6:443: i/o timeout\n",
            "Post \"https://api.github.com/graphql\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)\n",
            "GraphQL: Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug.\n",
        ] {
            assert!(is_transient(stderr.as_bytes()), "{stderr}");
        }
    }

    #[test]
    fn request_failures_are_not() {
        for stderr in [
            "GraphQL: Could not resolve to a Repository with the name 'o/nope'. (repository)\n",
            "gh: Not Found (HTTP 404)\n",
            "HTTP 404: Not Found (https://api.github.com/repos/o/nope)\n",
            "gh: Validation Failed (HTTP 422)\n",
            "HTTP 401: Bad credentials (https://api.github.com/graphql)\n",
            "gh: Resource not accessible by integration (HTTP 403)\n",
            "gh: HTTP 304\n",
            "gh: Not Found (HTTP 4040)\n",
            "unknown flag: --bogus\n\nUsage:  gh api <endpoint> [flags]\n",
            "no pull requests match your search in o/r\n",
            "release not found\n",
            "To get started with GitHub CLI, please run:  gh auth login\n",
        ] {
            assert!(!is_transient(stderr.as_bytes()), "{stderr}");
        }
    }

    #[test]
    fn not_modified_is_recognised() {
        assert!(is_not_modified(b"gh: HTTP 304\n"));
        assert!(is_not_modified(b"gh: HTTP 304: Not Modified\n"));
        assert!(!is_not_modified(b"gh: HTTP 404\n"));
        assert!(!is_not_modified(b"gh: HTTP 3040\n"));
    }
}
