//! Which gh failures are GitHub's (a stale answer may be served) and which are the request's.

/// Did gh fail because GitHub or the network failed (5xx, rate limit, connection), judging by
/// what gh printed on stderr? Such failures may be answered with a stale entry; a 404 or a bad
/// flag may not.
pub(crate) fn is_transient(stderr: &[u8]) -> bool {
    let text = String::from_utf8_lossy(stderr).to_ascii_lowercase();
    // gh says `HTTP 502` for REST and `non-200 OK status code: 502 Bad Gateway` for GraphQL.
    let server_error = (500..600).any(|code| {
        text.contains(&format!("http {code}")) || text.contains(&format!("status code: {code}"))
    });
    const MARKERS: [&str; 12] = [
        "rate limit",
        "http 429",
        "secondary rate",
        "error connecting to",
        "connection refused",
        "connection reset",
        "no such host",
        "i/o timeout",
        "timeout awaiting",
        "tls handshake",
        "unexpected eof",
        "server error",
    ];
    server_error || MARKERS.iter().any(|m| text.contains(m))
}

/// gh's own report of a `304 Not Modified` (`gh: HTTP 304`).
pub(crate) fn is_not_modified(stderr: &[u8]) -> bool {
    String::from_utf8_lossy(stderr).contains("HTTP 304")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_failures_are_transient() {
        for stderr in [
            "gh: Server Error (HTTP 502)\n",
            "HTTP 502: Bad Gateway (http://api.github.localhost/graphql)\n",
            "gh: HTTP 503\n",
            "HTTP 403: API rate limit exceeded for 10.0.0.1. (https://api.github.com/repos/o/r)\n",
            "gh: You have exceeded a secondary rate limit (HTTP 403)\n",
            "HTTP 429: Too Many Requests\n",
            "non-200 OK status code: 502 Bad Gateway body: \"{\\\"message\\\":\\\"Server Error\\\"}\"\n",
            "error connecting to api.github.com\ncheck your internet connection or https://githubstatus.com\n",
            "Post \"https://api.github.com/graphql\": dial tcp 127.0.0.1:9: connect: connection refused\n",
            "Get \"https://api.github.com/user\": dial tcp: lookup api.github.com: no such host\n",
        ] {
            assert!(is_transient(stderr.as_bytes()), "{stderr}");
        }
    }

    #[test]
    fn request_failures_are_not() {
        for stderr in [
            "GraphQL: Could not resolve to a Repository with the name 'o/nope'. (repository)\n",
            "gh: Not Found (HTTP 404)\n",
            "unknown flag: --bogus\n",
            "HTTP 401: Bad credentials (https://api.github.com/user)\n",
            "no pull requests match your search in o/r\n",
        ] {
            assert!(!is_transient(stderr.as_bytes()), "{stderr}");
        }
    }

    #[test]
    fn not_modified_is_recognised() {
        assert!(is_not_modified(b"gh: HTTP 304\n"));
        assert!(is_not_modified(b"gh: HTTP 304: Not Modified\n"));
        assert!(!is_not_modified(b"gh: HTTP 404\n"));
    }
}
