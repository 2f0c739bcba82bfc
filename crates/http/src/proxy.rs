//! Which proxy a request to GitHub goes through, decided as gh decides it (Go's
//! `http.ProxyFromEnvironment`), and the `CONNECT` tunnel through one.
//!
//! - `HTTPS_PROXY` (or `https_proxy`) for `https://` destinations, `HTTP_PROXY` (or
//!   `http_proxy`) for `http://` ones; `ALL_PROXY` is not read, as Go does not.
//! - `NO_PROXY` (or `no_proxy`): comma-separated hosts, domains (with their subdomains), IP
//!   addresses and networks, or `*`.
//! - `localhost` and loopback addresses are never proxied; `*.localhost` names are (the tests'
//!   fake GitHub is reached so).
//! - In a CGI program (`REQUEST_METHOD` set) `HTTP_PROXY` is ignored: a client could set it.

use std::net::IpAddr;

use hyper::header::HeaderValue;
use hyper_util::client::proxy::matcher::Matcher;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The longest answer to `CONNECT` that is read.
const CONNECT_ANSWER_MAX: usize = 16 << 10;

/// The proxies of the environment.
pub(crate) struct Proxies {
    matcher: Matcher,
}

/// A proxy to go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Via {
    /// The proxy's host.
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// `Proxy-Authorization` for it, from the credentials in its URL.
    pub auth: Option<HeaderValue>,
}

impl std::fmt::Debug for Proxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The matcher's own output leaves credentials out.
        write!(f, "Proxies({:?})", self.matcher)
    }
}

impl Proxies {
    /// The proxies that `env` names.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Proxies {
        let first = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|name| env(name).filter(|v| !v.trim().is_empty()))
                .unwrap_or_default()
        };
        let cgi = env("REQUEST_METHOD").is_some();
        let http = if cgi {
            String::new()
        } else {
            first(["HTTP_PROXY", "http_proxy"])
        };
        let matcher = Matcher::builder()
            .http(http)
            .https(first(["HTTPS_PROXY", "https_proxy"]))
            .no(first(["NO_PROXY", "no_proxy"]))
            .build();
        Proxies { matcher }
    }

    /// The proxy for `scheme://host:port`, if one is to be used.
    ///
    /// # Errors
    /// The proxy's URL is not `http://` (gh also speaks to proxies over TLS and SOCKS; this
    /// client does not).
    pub fn via(&self, scheme: &str, host: &str, port: u16) -> Result<Option<Via>, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if host == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
            return Ok(None);
        }
        let Ok(uri) = format!("{scheme}://{host}:{port}/").parse::<hyper::Uri>() else {
            return Ok(None);
        };
        let Some(intercept) = self.matcher.intercept(&uri) else {
            return Ok(None);
        };
        let proxy = intercept.uri();
        if proxy.scheme_str() != Some("http") {
            return Err(format!(
                "the proxy {} is not an http:// proxy, which is all ghcache can use: unset \
                 GH_CACHE_HTTP or set it to 0",
                proxy.host().unwrap_or("")
            ));
        }
        let Some(proxy_host) = proxy.host() else {
            return Ok(None);
        };
        Ok(Some(Via {
            host: proxy_host.to_owned(),
            port: proxy.port_u16().unwrap_or(80),
            auth: intercept.basic_auth().cloned(),
        }))
    }
}

/// Asks the proxy on `stream` for a tunnel to `host:port`.
///
/// # Errors
/// The proxy refused, closed the connection, or answered what is not HTTP.
pub(crate) async fn tunnel(
    stream: &mut TcpStream,
    host: &str,
    port: u16,
    auth: Option<&HeaderValue>,
) -> Result<(), String> {
    let mut ask = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n").into_bytes();
    if let Some(auth) = auth {
        ask.extend_from_slice(b"Proxy-Authorization: ");
        ask.extend_from_slice(auth.as_bytes());
        ask.extend_from_slice(b"\r\n");
    }
    ask.extend_from_slice(b"\r\n");
    stream
        .write_all(&ask)
        .await
        .map_err(|e| format!("the proxy: {e}"))?;
    // Byte by byte up to the blank line: what follows it is the tunnel's, not the answer's.
    let mut answer = Vec::with_capacity(256);
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() >= CONNECT_ANSWER_MAX {
            return Err("the proxy's answer to CONNECT is too long".into());
        }
        let byte = stream
            .read_u8()
            .await
            .map_err(|e| format!("the proxy closed the connection: {e}"))?;
        answer.push(byte);
    }
    let status_line = answer
        .split(|&b| b == b'\r')
        .next()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let code = status_line.split_whitespace().nth(1).unwrap_or("");
    if status_line.starts_with("HTTP/1.") && code.starts_with('2') {
        Ok(())
    } else {
        Err(format!("the proxy refused the tunnel: {status_line}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(pairs: &'static [(&'static str, &'static str)]) -> Proxies {
        Proxies::from_env(&|name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn the_variables_gh_reads_pick_the_proxy() {
        let env = proxies(&[
            ("HTTP_PROXY", "http://127.0.0.1:8080"),
            ("https_proxy", "user:secret@proxy.example:3128"),
            ("NO_PROXY", "internal.example, 10.0.0.0/8"),
            ("ALL_PROXY", "http://all.example:1"),
        ]);
        let via = |scheme, host| env.via(scheme, host, 443).ok().flatten();
        assert_eq!(
            via("http", "api.github.localhost").map(|v| (v.host, v.port)),
            Some(("127.0.0.1".to_owned(), 8080))
        );
        let https = via("https", "api.github.com");
        assert_eq!(
            https.as_ref().map(|v| (v.host.as_str(), v.port)),
            Some(("proxy.example", 3128))
        );
        assert!(
            https.and_then(|v| v.auth).is_some(),
            "credentials from the URL"
        );
        for direct in ["ghe.internal.example", "localhost", "127.0.0.1", "10.1.2.3"] {
            assert_eq!(via("https", direct), None, "{direct}");
        }
        assert_eq!(
            proxies(&[("ALL_PROXY", "http://all:1")]).via("https", "x", 1),
            Ok(None)
        );
    }

    #[test]
    fn cgi_programs_ignore_http_proxy() {
        let env = proxies(&[
            ("HTTP_PROXY", "http://evil:1"),
            ("HTTPS_PROXY", "http://proxy:2"),
            ("REQUEST_METHOD", "GET"),
        ]);
        assert_eq!(env.via("http", "api.github.localhost", 80), Ok(None));
        assert!(matches!(
            env.via("https", "api.github.com", 443),
            Ok(Some(_))
        ));
    }

    #[test]
    fn proxies_ghcache_cannot_speak_to_are_said_so() {
        let env = proxies(&[("HTTPS_PROXY", "socks5://proxy:1080")]);
        assert!(env.via("https", "api.github.com", 443).is_err());
    }
}
