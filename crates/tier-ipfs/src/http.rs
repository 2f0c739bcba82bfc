//! One HTTP/1.1 exchange with a node on plain HTTP, bounded in time and size: what the Kubo RPC
//! client ([`crate::Kubo`]) and the gateway client ([`crate::Gateway`]) both send their
//! requests with. Each turns a [`Failure`] into an [`crate::Error`] that names its own service.

use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long a connection may take: a node on loopback or the LAN connects in well under this,
/// and a dead one is refused at once.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);

/// Where requests go: `http://HOST:PORT` without a path.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port`, for messages.
    pub url: String,
    /// `host:port`, to connect to and for the `Host` header.
    pub authority: String,
}

impl Target {
    /// Reads `http://HOST:PORT`, optionally ending in `/` or in `suffix` (`/api/v0`, `/ipfs`).
    ///
    /// # Errors
    /// What is wrong with the address, to be completed by the caller's message.
    pub fn parse(address: &str, suffix: &str) -> Result<Target, &'static str> {
        let rest = address
            .trim()
            .strip_prefix("http://")
            .ok_or("does not start with http://")?;
        let rest = rest.trim_end_matches('/');
        let authority = rest.strip_suffix(suffix).unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err("is not http://HOST:PORT");
        }
        let (_, port) = authority.rsplit_once(':').ok_or("has no port")?;
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err("has no valid port");
        }
        Ok(Target {
            url: format!("http://{authority}"),
            authority: authority.to_owned(),
        })
    }
}

/// Why an exchange failed, before the caller names the service.
#[derive(Debug)]
pub enum Failure {
    /// No connection, or it broke: the reason.
    Unreachable(String),
    /// No whole answer within the deadline.
    Deadline(Duration),
    /// The answer's body was longer than the cap (the cap).
    TooLarge(usize),
    /// The request could not be made (a bad header value): the reason.
    Request(String),
}

/// Sends `request` (its `Host` header is set here) and reads the answer: the status and the
/// body, at most `max_ok` bytes of a successful answer and `max_error` of another. Connecting
/// takes at most [`CONNECT_TIMEOUT`] (or `timeout`, if shorter); the whole exchange `timeout`.
///
/// # Errors
/// [`Failure`]: refused, broken, too slow or too large.
pub async fn exchange(
    target: &Target,
    request: hyper::http::request::Builder,
    body: Vec<u8>,
    max_ok: usize,
    max_error: usize,
    timeout: Duration,
) -> Result<(StatusCode, Vec<u8>), Failure> {
    let connect_within = CONNECT_TIMEOUT.min(timeout);
    let connect = TcpStream::connect(target.authority.as_str());
    let stream = match tokio::time::timeout(connect_within, connect).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(Failure::Unreachable(e.to_string())),
        Err(_) => {
            return Err(Failure::Unreachable(format!(
                "no connection within {connect_within:?}"
            )))
        }
    };
    let _ = stream.set_nodelay(true);
    let request = request
        .header(hyper::header::HOST, target.authority.as_str())
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Failure::Request(e.to_string()))?;
    let exchange = send(stream, request, max_ok, max_error);
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Deadline(timeout)),
    }
}

async fn send(
    stream: TcpStream,
    request: hyper::Request<Full<Bytes>>,
    max_ok: usize,
    max_error: usize,
) -> Result<(StatusCode, Vec<u8>), Failure> {
    let broken = |e: hyper::Error| Failure::Unreachable(e.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(broken)?;
    // Drives the connection; ends when the exchange is done and `sender` is dropped.
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(broken)?;
    let status = response.status();
    let limit = if status.is_success() {
        max_ok
    } else {
        max_error
    };
    let collected = Limited::new(response.into_body(), limit).collect().await;
    drop(sender);
    driver.abort();
    match collected {
        Ok(body) => Ok((status, body.to_bytes().to_vec())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Failure::TooLarge(limit)),
        Err(e) => Err(Failure::Unreachable(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_keep_only_host_and_port() {
        let target = Target::parse(" http://127.0.0.1:8080/ipfs/ ", "/ipfs");
        assert_eq!(
            target.map(|t| t.url).ok().as_deref(),
            Some("http://127.0.0.1:8080")
        );
        for (bad, why) in [
            ("https://127.0.0.1:8080", "does not start with http://"),
            ("http://127.0.0.1", "has no port"),
            ("http://127.0.0.1:0", "has no valid port"),
            ("http://127.0.0.1:8080/other", "is not http://HOST:PORT"),
        ] {
            assert_eq!(Target::parse(bad, "/ipfs").err(), Some(why), "{bad}");
        }
    }
}
