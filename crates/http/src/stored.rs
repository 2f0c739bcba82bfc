//! How an HTTP answer is kept in an [`Entry`](ghcache_core::Entry)'s body, and the checks of
//! one read back.
//!
//! ```text
//! Body.stdout   the response body, as GitHub sent it (compressed if it was)
//! Body.stderr   "ghcache-http 1\n" "<status>\n" then one "name: value\n" per header
//! ```
//!
//! Entries come from this machine, from peers and from IPFS; a peer's entry is signed by a
//! member of the swarm, but what it says is checked here all the same before gh sees it: the
//! head must parse, within [`HEAD_MAX`], with valid header names and values, and headers that
//! say how the message is framed or what connection it travels on are never taken from an
//! entry: this process frames the message it sends.

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::StatusCode;

/// First line of every stored head.
const MAGIC: &str = "ghcache-http 1\n";

/// The largest head read back: GitHub's are about 2 KiB.
const HEAD_MAX: usize = 64 << 10;

/// The most headers read back.
const HEADERS_MAX: usize = 256;

/// Headers that belong to one connection, not to the message: never passed on from one side to
/// the other.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether a header belongs to one connection (see [`HOP_BY_HOP`]).
pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// Whether a header is left out of a stored answer: one of the connection, the length (this
/// process frames what it sends), or `set-cookie` (the API sets none, and a cookie is not an
/// answer to share).
fn is_not_stored(name: &HeaderName) -> bool {
    is_hop_by_hop(name) || name == "content-length" || name == "set-cookie"
}

/// The head of an answer, as stored.
pub(crate) fn encode(status: StatusCode, headers: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(MAGIC.as_bytes());
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b'\n');
    for (name, value) in headers {
        if is_not_stored(name) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out
}

/// A stored head read back, or `None` when it is not one that this module wrote.
pub(crate) fn decode(bytes: &[u8]) -> Option<(StatusCode, HeaderMap)> {
    if bytes.len() > HEAD_MAX {
        return None;
    }
    let rest = bytes.strip_prefix(MAGIC.as_bytes())?;
    let mut lines = rest.split(|&b| b == b'\n');
    let status = std::str::from_utf8(lines.next()?).ok()?;
    let status = StatusCode::from_bytes(status.as_bytes()).ok()?;
    let mut headers = HeaderMap::new();
    let mut count = 0;
    for line in lines {
        if line.is_empty() {
            // Only the end of the last line may be empty.
            continue;
        }
        count += 1;
        if count > HEADERS_MAX {
            return None;
        }
        let colon = line.iter().position(|&b| b == b':')?;
        let name = HeaderName::from_bytes(&line[..colon]).ok()?;
        let value = line[colon + 1..]
            .strip_prefix(b" ")
            .unwrap_or(&line[colon + 1..]);
        let value = HeaderValue::from_bytes(value).ok()?;
        if !is_not_stored(&name) {
            headers.append(name, value);
        }
    }
    if !bytes.ends_with(b"\n") {
        return None;
    }
    Some((status, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_round_trip_without_what_frames_the_message() {
        let mut headers = HeaderMap::new();
        headers.append("content-type", HeaderValue::from_static("application/json"));
        headers.append("etag", HeaderValue::from_static("W/\"abc\""));
        headers.append(
            "link",
            HeaderValue::from_static("<https://x/?page=2>; rel=\"next\""),
        );
        headers.append("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.append("content-length", HeaderValue::from_static("12"));
        let encoded = encode(StatusCode::OK, &headers);
        let (status, back) = decode(&encoded).unwrap_or_default();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(back.len(), 3);
        assert_eq!(back.get("etag"), headers.get("etag"));
        assert!(back.get("transfer-encoding").is_none() && back.get("content-length").is_none());
    }

    #[test]
    fn what_this_module_did_not_write_is_refused() {
        for bad in [
            &b""[..],
            b"HTTP/1.1 200 OK\n",
            b"ghcache-http 1\n999x\n",
            b"ghcache-http 1\n200\nno colon\n",
            b"ghcache-http 1\n200\nbad name: x\n",
            b"ghcache-http 1\n200\nx-a: \x01\n",
            b"ghcache-http 1\n200\nx-a: cut",
        ] {
            assert!(decode(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut huge = MAGIC.as_bytes().to_vec();
        huge.extend_from_slice(b"200\n");
        for i in 0..300 {
            huge.extend_from_slice(format!("x-{i}: v\n").as_bytes());
        }
        assert!(decode(&huge).is_none(), "too many headers");
    }

    #[test]
    fn framing_from_a_stored_head_is_dropped() {
        let head = b"ghcache-http 1\n200\ntransfer-encoding: chunked\nconnection: close\nx-a: 1\n";
        let (_, headers) = decode(head).unwrap_or_default();
        assert_eq!(headers.len(), 1);
    }
}
