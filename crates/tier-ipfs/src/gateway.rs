//! A client of an IPFS HTTP gateway (`GET /ipfs/<cid>`): where bodies are read from when no
//! node API is configured (`GH_CACHE_IPFS_GATEWAY`).
//!
//! A gateway only serves content by CID: it takes no additions and has no MFS, so with a
//! gateway the tier finds manifests in the swarm's directory alone, and stores nothing. What it
//! sends is checked exactly as a body from the API is (see [`crate::Tier`]): a gateway can
//! withhold an answer, never forge one.

use std::time::Duration;

use crate::error::Error;
use crate::http::{self, Failure, Target};

/// The start of an error page is enough to say what went wrong.
const MAX_ERROR_PAGE: usize = 4 * 1024;
/// The endpoint named in size errors.
const ENDPOINT: &str = "/ipfs/<cid>";

/// An IPFS HTTP gateway, e.g. a Kubo node's `http://127.0.0.1:8080`.
#[derive(Debug, Clone)]
pub struct Gateway {
    target: Target,
}

impl Gateway {
    /// A client of the gateway at `address`: `http://HOST:PORT`, optionally ending in `/` or
    /// `/ipfs`.
    ///
    /// # Errors
    /// [`Error::BadUrl`] for anything else (`https` is refused: a gateway on your own network
    /// speaks plain HTTP, and what it sends is checked by digest anyway).
    pub fn new(address: &str) -> Result<Gateway, Error> {
        let target = Target::parse(address, "/ipfs").map_err(|reason| Error::BadUrl {
            what: "IPFS gateway address",
            url: address.to_owned(),
            reason,
            example: "http://127.0.0.1:8080",
        })?;
        Ok(Gateway { target })
    }

    /// The gateway's address, `http://host:port`.
    pub fn url(&self) -> &str {
        &self.target.url
    }

    /// Reads the file `cid`, at most `max_bytes` of it, within `timeout`.
    ///
    /// # Errors
    /// [`Error::TooLarge`] beyond `max_bytes`; [`Error::Gateway`] when the gateway cannot be
    /// reached, is too slow, or answers anything but the file.
    pub async fn cat(
        &self,
        cid: &str,
        max_bytes: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        let failed = |reason: String| Error::Gateway {
            url: self.target.url.clone(),
            cid: cid.to_owned(),
            reason,
        };
        // A CID is base32 or base58 text; anything else would change the path.
        if cid.is_empty() || !cid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(failed("that is not a CID".to_owned()));
        }
        let request = hyper::Request::get(format!("/ipfs/{cid}"));
        let answer = http::exchange(
            &self.target,
            request,
            Vec::new(),
            max_bytes,
            MAX_ERROR_PAGE,
            timeout,
        )
        .await;
        let (status, bytes) = answer.map_err(|failure| match failure {
            Failure::TooLarge(limit) => Error::TooLarge {
                url: self.target.url.clone(),
                endpoint: ENDPOINT,
                limit,
            },
            Failure::Unreachable(reason) | Failure::Request(reason) => failed(reason),
            Failure::Deadline(after) => failed(format!("no answer within {after:?}")),
        })?;
        if status.is_success() {
            return Ok(bytes);
        }
        if status.is_redirection() {
            // Kubo sends a host named `localhost` to its subdomain gateway.
            return Err(failed(format!(
                "HTTP {} (a redirect); give the gateway by IP address, e.g. http://127.0.0.1:8080",
                status.as_u16()
            )));
        }
        let page = String::from_utf8_lossy(&bytes);
        let first_line = page.lines().next().unwrap_or("").trim();
        let shown: String = first_line.chars().take(200).collect();
        Err(failed(format!("HTTP {}: {shown}", status.as_u16())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-connection server on loopback that answers with `response` and hands back the
    /// request it read.
    async fn gateway(response: Vec<u8>) -> (Gateway, tokio::sync::oneshot::Receiver<String>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 64 * 1024];
            let n = stream.read(&mut buf).await.unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = stream.write_all(&response).await;
        });
        let gateway =
            Gateway::new(&format!("http://127.0.0.1:{port}/")).unwrap_or_else(|e| panic!("{e}"));
        (gateway, rx)
    }

    fn answer(status: &str, body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_body_is_read_by_get_on_its_cid() {
        let (gateway, request) = gateway(answer("200 OK", b"sealed bytes")).await;
        let body = gateway.cat("bafkreiabc", 100, Duration::from_secs(5)).await;
        assert_eq!(body.ok(), Some(b"sealed bytes".to_vec()));
        let request = request.await.unwrap_or_default();
        assert!(
            request.starts_with("GET /ipfs/bafkreiabc HTTP/1.1\r\n"),
            "{request}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_body_over_the_cap_is_refused() {
        let (gateway, _) = gateway(answer("200 OK", &[b'x'; 4096])).await;
        let err = gateway
            .cat("bafkreiabc", 1000, Duration::from_secs(5))
            .await;
        assert!(
            matches!(err, Err(Error::TooLarge { limit: 1000, .. })),
            "{err:?}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failure_names_the_gateway_the_cid_and_the_status() {
        let (gateway, _) = gateway(answer("504 Gateway Timeout", b"no providers found\n")).await;
        let err = gateway.cat("bafkreiabc", 100, Duration::from_secs(5)).await;
        let text = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.starts_with("cannot read bafkreiabc from the IPFS gateway at http://127.0.0.1:"),
            "{text}"
        );
        assert!(text.contains("HTTP 504: no providers found"), "{text}");
        assert!(text.ends_with("check GH_CACHE_IPFS_GATEWAY"), "{text}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn what_is_not_a_cid_is_not_asked_for() {
        let gateway = Gateway::new("http://127.0.0.1:9").unwrap_or_else(|e| panic!("{e}"));
        let err = gateway
            .cat("../api/v0/shutdown", 100, Duration::from_secs(5))
            .await;
        let text = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("that is not a CID"), "{text}");
    }

    #[test]
    fn addresses_are_read_leniently_and_refused_clearly() {
        for ok in ["http://127.0.0.1:8080", "http://10.0.0.5:8080/ipfs/"] {
            assert!(Gateway::new(ok).is_ok(), "{ok}");
        }
        let err = Gateway::new("https://ipfs.io").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "IPFS gateway address \"https://ipfs.io\" does not start with http://; \
                 expected http://HOST:PORT, e.g. http://127.0.0.1:8080"
            )
        );
    }
}
