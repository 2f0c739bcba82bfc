//! A small client of the Kubo RPC API (`/api/v0/...`): only what the tier needs.

use std::time::Duration;

use hyper::header::CONTENT_TYPE;

use crate::error::Error;
use crate::http::{self, Failure, Target};

/// Answers that are JSON objects (`add`, `id`, `version`, errors) are small.
const MAX_JSON: usize = 64 * 1024;
/// Default deadline of calls that take none (`add`, `files/write`, `id`, ...).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How every multipart boundary starts; the rest is derived from the file it frames.
const BOUNDARY_PREFIX: &str = "ghcache-part-";

/// A Kubo RPC API endpoint, e.g. `http://127.0.0.1:5001`. Kubo's API is admin-level: keep it on
/// loopback (the default) or a trusted network.
#[derive(Debug, Clone)]
pub struct Kubo {
    target: Target,
}

impl Kubo {
    /// A client of the node at `api`: `http://HOST:PORT`, optionally ending in `/` or `/api/v0`.
    ///
    /// # Errors
    /// [`Error::BadUrl`] for anything else (`https` is refused: Kubo's API speaks plain HTTP).
    pub fn new(api: &str) -> Result<Kubo, Error> {
        let target = Target::parse(api, "/api/v0").map_err(|reason| Error::BadUrl {
            what: "IPFS API address",
            url: api.to_owned(),
            reason,
            example: "http://127.0.0.1:5001",
        })?;
        Ok(Kubo { target })
    }

    /// The node's API address, `http://host:port`.
    pub fn url(&self) -> &str {
        &self.target.url
    }

    /// Adds `bytes` as one file, CIDv1 with raw leaves, pinned; returns its CID.
    ///
    /// # Errors
    /// The node cannot be reached, fails, or answers without a `Hash`.
    pub async fn add(&self, bytes: Vec<u8>) -> Result<String, Error> {
        const ENDPOINT: &str = "/api/v0/add";
        let query = [
            ("cid-version", "1"),
            ("raw-leaves", "true"),
            ("pin", "true"),
        ];
        let reply = self
            .call(
                ENDPOINT,
                &query,
                Some(bytes),
                MAX_JSON,
                DEFAULT_TIMEOUT + Duration::from_secs(5),
            )
            .await?;
        // One JSON object per line; the last names the file.
        let text = String::from_utf8_lossy(&reply);
        let line = text.lines().rev().find(|l| !l.trim().is_empty());
        let value: serde_json::Value = line
            .and_then(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| self.protocol(ENDPOINT, "the answer is not JSON"))?;
        value["Hash"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.protocol(ENDPOINT, "the answer has no Hash"))
    }

    /// Reads the file `cid`, at most `max_bytes` of it, within `timeout` (also passed to the node,
    /// so it stops searching the network for a block it does not have).
    ///
    /// # Errors
    /// [`Error::TooLarge`] beyond `max_bytes`; [`Error::Deadline`]; node errors.
    pub async fn cat(
        &self,
        cid: &str,
        max_bytes: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        let ms = format!("{}ms", timeout.as_millis().max(1));
        self.call(
            "/api/v0/cat",
            &[("arg", cid), ("timeout", &ms)],
            None,
            max_bytes,
            timeout,
        )
        .await
    }

    /// Pins `cid` (recursively) so the node's garbage collector keeps it.
    ///
    /// # Errors
    /// The node cannot be reached or fails.
    pub async fn pin_add(&self, cid: &str) -> Result<(), Error> {
        self.call(
            "/api/v0/pin/add",
            &[("arg", cid)],
            None,
            MAX_JSON,
            DEFAULT_TIMEOUT,
        )
        .await
        .map(|_| ())
    }

    /// Unpins `cid` (a recursive pin), so the node's garbage collector may take its blocks; a
    /// CID that is not pinned is not an error.
    ///
    /// # Errors
    /// The node cannot be reached or fails.
    pub async fn pin_rm(&self, cid: &str) -> Result<(), Error> {
        let query = [("arg", cid), ("recursive", "true")];
        match self
            .call("/api/v0/pin/rm", &query, None, MAX_JSON, DEFAULT_TIMEOUT)
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            // Kubo: "not pinned or pinned indirectly"; js-ipfs: "... is not pinned".
            Err(Error::Node { message, .. }) if message.contains("not pinned") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The node's peer id.
    ///
    /// # Errors
    /// The node cannot be reached, fails, or answers without an `ID`.
    pub async fn id(&self) -> Result<String, Error> {
        self.json_field("/api/v0/id", "ID").await
    }

    /// The node's version.
    ///
    /// # Errors
    /// The node cannot be reached, fails, or answers without a `Version`.
    pub async fn version(&self) -> Result<String, Error> {
        self.json_field("/api/v0/version", "Version").await
    }

    /// Writes `bytes` to the MFS file `path`, creating it and its parents, replacing what was there.
    ///
    /// # Errors
    /// The node cannot be reached or fails.
    pub async fn files_write(&self, path: &str, bytes: Vec<u8>) -> Result<(), Error> {
        let query = [
            ("arg", path),
            ("create", "true"),
            ("parents", "true"),
            ("truncate", "true"),
        ];
        self.call(
            "/api/v0/files/write",
            &query,
            Some(bytes),
            MAX_JSON,
            DEFAULT_TIMEOUT,
        )
        .await
        .map(|_| ())
    }

    /// Removes the MFS file or directory `path` (recursively); a missing path is not an error.
    ///
    /// # Errors
    /// The node cannot be reached or fails.
    pub async fn files_rm(&self, path: &str) -> Result<(), Error> {
        let query = [("arg", path), ("recursive", "true"), ("force", "true")];
        match self
            .call("/api/v0/files/rm", &query, None, MAX_JSON, DEFAULT_TIMEOUT)
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The names in the MFS directory `path`, at most `max_bytes` of listing; none if it does
    /// not exist.
    ///
    /// # Errors
    /// The node cannot be reached, fails, sends too much, or answers with something else than
    /// a listing.
    pub async fn files_ls(&self, path: &str, max_bytes: usize) -> Result<Vec<String>, Error> {
        const ENDPOINT: &str = "/api/v0/files/ls";
        let reply = match self
            .call(ENDPOINT, &[("arg", path)], None, max_bytes, DEFAULT_TIMEOUT)
            .await
        {
            Ok(reply) => reply,
            Err(Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let value: serde_json::Value = serde_json::from_slice(&reply)
            .map_err(|_| self.protocol(ENDPOINT, "the answer is not JSON"))?;
        // Kubo answers `"Entries": null` for an empty directory.
        let entries = match &value["Entries"] {
            serde_json::Value::Null => return Ok(Vec::new()),
            serde_json::Value::Array(entries) => entries,
            _ => return Err(self.protocol(ENDPOINT, "the answer has no Entries")),
        };
        Ok(entries
            .iter()
            .filter_map(|e| e["Name"].as_str().map(str::to_owned))
            .collect())
    }

    /// Moves the MFS file or directory `from` to `to`, creating nothing on the way: `to`'s
    /// parent must exist.
    ///
    /// # Errors
    /// [`Error::NotFound`] when `from` does not exist; the node cannot be reached or fails.
    pub async fn files_mv(&self, from: &str, to: &str) -> Result<(), Error> {
        self.call(
            "/api/v0/files/mv",
            &[("arg", from), ("arg", to)],
            None,
            MAX_JSON,
            DEFAULT_TIMEOUT,
        )
        .await
        .map(|_| ())
    }

    /// Makes the MFS directory `path` and its parents; an existing one is not an error.
    ///
    /// # Errors
    /// The node cannot be reached or fails.
    pub async fn files_mkdir(&self, path: &str) -> Result<(), Error> {
        self.call(
            "/api/v0/files/mkdir",
            &[("arg", path), ("parents", "true")],
            None,
            MAX_JSON,
            DEFAULT_TIMEOUT,
        )
        .await
        .map(|_| ())
    }

    /// Reads the MFS file `path`, at most `max_bytes`, within `timeout`; `None` if it does not exist.
    ///
    /// # Errors
    /// The node cannot be reached, fails, or sends too much.
    pub async fn files_read(
        &self,
        path: &str,
        max_bytes: usize,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, Error> {
        match self
            .call(
                "/api/v0/files/read",
                &[("arg", path)],
                None,
                max_bytes,
                timeout,
            )
            .await
        {
            Ok(bytes) => Ok(Some(bytes)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn json_field(&self, endpoint: &'static str, field: &str) -> Result<String, Error> {
        let reply = self
            .call(endpoint, &[], None, MAX_JSON, DEFAULT_TIMEOUT)
            .await?;
        let value: serde_json::Value = serde_json::from_slice(&reply)
            .map_err(|_| self.protocol(endpoint, "the answer is not JSON"))?;
        value[field]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.protocol(endpoint, &format!("the answer has no {field}")))
    }

    fn protocol(&self, endpoint: &'static str, reason: &str) -> Error {
        Error::Protocol {
            url: self.target.url.clone(),
            endpoint,
            reason: reason.to_owned(),
        }
    }

    /// POSTs to `endpoint` (with `file` as a one-part multipart body) and returns the answer's
    /// body, read up to `max_bytes`, all within `timeout`.
    async fn call(
        &self,
        endpoint: &'static str,
        query: &[(&str, &str)],
        file: Option<Vec<u8>>,
        max_bytes: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        let url = || self.target.url.clone();
        let mut request = hyper::Request::post(path_and_query(endpoint, query));
        let body = match file {
            Some(bytes) => {
                let (boundary, body) = multipart(&bytes);
                request = request.header(
                    CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                );
                body
            }
            None => Vec::new(),
        };
        let answer =
            http::exchange(&self.target, request, body, max_bytes, MAX_JSON, timeout).await;
        let (status, bytes) = answer.map_err(|failure| match failure {
            Failure::Unreachable(reason) => Error::Unreachable {
                url: url(),
                endpoint,
                reason,
            },
            Failure::Deadline(after) => Error::Deadline {
                url: url(),
                endpoint,
                after,
            },
            Failure::TooLarge(limit) => Error::TooLarge {
                url: url(),
                endpoint,
                limit,
            },
            Failure::Request(reason) => self.protocol(endpoint, &reason),
        })?;
        if status.is_success() {
            return Ok(bytes);
        }
        let message = node_message(&bytes);
        if message.contains("does not exist") || message.contains("not exist") {
            return Err(Error::NotFound {
                url: url(),
                endpoint,
            });
        }
        Err(Error::Node {
            url: url(),
            endpoint,
            status: status.as_u16(),
            message,
        })
    }
}

/// The `Message` of a Kubo error answer, else the start of the body as text.
fn node_message(body: &[u8]) -> String {
    let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v["Message"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    message.chars().take(200).collect()
}

fn path_and_query(endpoint: &str, query: &[(&str, &str)]) -> String {
    let mut out = endpoint.to_owned();
    for (i, (name, value)) in query.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(name);
        out.push('=');
        out.push_str(&percent_encode(value));
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters and `/` (paths stay readable).
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One file part, with the Content-Type that Kubo and js-ipfs both accept, and the boundary
/// that frames it (for the request's Content-Type).
///
/// A receiver ends the part at the first `CRLF--boundary` in the body (RFC 2046, 5.1.1), so a
/// file that held the boundary would be cut there: the boundary is one that `bytes` does not
/// hold ([`boundary_for`]).
fn multipart(bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = boundary_for(bytes);
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"entry\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let mut out = Vec::with_capacity(head.len() + bytes.len() + tail.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(bytes);
    out.extend_from_slice(tail.as_bytes());
    (boundary, out)
}

/// A multipart boundary that does not occur in `bytes`: [`BOUNDARY_PREFIX`] and 32 hex digits of
/// a hash of the file and a counter, the first that the file does not hold. A file that holds
/// a hash of itself is not to be found, so the first candidate is the one in practice; the
/// search makes it a certainty, and the same file always gets the same boundary.
fn boundary_for(bytes: &[u8]) -> String {
    first_boundary_absent(&blake3::hash(bytes), bytes)
}

/// The first of the boundaries derived from `seed` that `bytes` does not hold.
fn first_boundary_absent(seed: &blake3::Hash, bytes: &[u8]) -> String {
    let mut attempt: u64 = 0;
    loop {
        let mut hasher = blake3::Hasher::new();
        hasher.update(seed.as_bytes());
        hasher.update(&attempt.to_le_bytes());
        let hex = hasher.finalize().to_hex();
        let boundary = format!("{BOUNDARY_PREFIX}{}", &hex[..32]);
        if !holds(bytes, boundary.as_bytes()) {
            return boundary;
        }
        attempt = attempt.wrapping_add(1);
    }
}

/// Whether `needle` occurs in `haystack`.
fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_addresses_are_read_leniently_and_refused_clearly() {
        for ok in [
            "http://127.0.0.1:5001",
            "http://127.0.0.1:5001/",
            "http://127.0.0.1:5001/api/v0",
            " http://localhost:5001/api/v0/ ",
        ] {
            let kubo = Kubo::new(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(kubo.url().ends_with(":5001"), "{}", kubo.url());
        }
        for bad in [
            "https://127.0.0.1:5001",
            "127.0.0.1:5001",
            "http://127.0.0.1",
            "http://127.0.0.1:0",
            "http://127.0.0.1:99999",
            "http://127.0.0.1:5001/other",
            "http://user@127.0.0.1:5001",
            "",
        ] {
            let err = Kubo::new(bad).err().map(|e| e.to_string());
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.contains("http://HOST:PORT")),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            path_and_query("/api/v0/files/read", &[("arg", "/ghcache/v1/a b&c")]),
            "/api/v0/files/read?arg=/ghcache/v1/a%20b%26c"
        );
        assert_eq!(
            path_and_query("/api/v0/cat", &[("arg", "bafy"), ("timeout", "500ms")]),
            "/api/v0/cat?arg=bafy&timeout=500ms"
        );
    }

    #[test]
    fn a_multipart_body_frames_the_bytes_exactly() {
        let (boundary, body) = multipart(b"a\r\n--b");
        let text = String::from_utf8_lossy(&body);
        assert!(boundary.starts_with(BOUNDARY_PREFIX) && boundary.len() <= 70);
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("Content-Type: application/octet-stream\r\n\r\na\r\n--b\r\n"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        assert_eq!(
            multipart(b"a\r\n--b"),
            (boundary, body),
            "the same file, the same body"
        );
    }

    /// The file of a one-part multipart body as a receiver reads it (RFC 2046, 5.1.1): from the
    /// end of the part's headers to the first `CRLF--boundary`.
    fn received_file<'a>(boundary: &str, body: &'a [u8]) -> Option<&'a [u8]> {
        let delimiter = format!("\r\n--{boundary}");
        let start = body.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let rest = &body[start..];
        let end = rest
            .windows(delimiter.len())
            .position(|w| w == delimiter.as_bytes())?;
        Some(&rest[..end])
    }

    /// The boundary this client once sent with every file.
    const OLD_FIXED_BOUNDARY: &str = "ghcache-part-5c1f0e2a9b7d";

    #[test]
    fn a_file_holding_the_old_fixed_boundary_is_received_whole() {
        let file = format!(
            "{{\"body\":\"a\r\n--{OLD_FIXED_BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nx\r\n\
             --{OLD_FIXED_BOUNDARY}--\r\n\"}}"
        );
        let (boundary, body) = multipart(file.as_bytes());
        assert_ne!(boundary, OLD_FIXED_BOUNDARY);
        assert_eq!(received_file(&boundary, &body), Some(file.as_bytes()));
        // With the fixed boundary the receiver cut the file at its first delimiter.
        let cut = received_file(OLD_FIXED_BOUNDARY, &body).map(<[u8]>::len);
        assert!(cut.is_none_or(|n| n < file.len()));
    }

    #[test]
    fn a_file_that_holds_a_candidate_boundary_gets_the_next_one() {
        let seed = blake3::hash(b"seed");
        let first = first_boundary_absent(&seed, b"");
        let file = format!("a\r\n--{first}\r\nb");
        let second = first_boundary_absent(&seed, file.as_bytes());
        assert_ne!(second, first);
        let file = format!("{file}\r\n--{second}--\r\n");
        let third = first_boundary_absent(&seed, file.as_bytes());
        assert!(third != first && third != second);
        assert!(!holds(file.as_bytes(), third.as_bytes()));
        assert!(holds(b"xx--abc--", b"abc") && !holds(b"ab", b"abc"));
    }

    proptest::proptest! {
        #[test]
        fn every_file_is_received_whole(
            mut file in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            at in 0usize..512,
        ) {
            let at = at.min(file.len());
            let splice = format!("\r\n--{OLD_FIXED_BOUNDARY}--\r\n");
            file.splice(at..at, splice.bytes());
            let (boundary, body) = multipart(&file);
            proptest::prop_assert!(!holds(&file, boundary.as_bytes()));
            proptest::prop_assert_eq!(received_file(&boundary, &body), Some(&file[..]));
        }
    }

    /// A one-connection server on loopback that answers with `response` (or never, if `None`).
    async fn node(response: Option<Vec<u8>>) -> Kubo {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 64 * 1024];
            let _ = stream.read(&mut buf).await;
            match response {
                Some(response) => {
                    let _ = stream.write_all(&response).await;
                }
                None => tokio::time::sleep(Duration::from_secs(30)).await,
            }
        });
        Kubo::new(&format!("http://127.0.0.1:{port}")).unwrap_or_else(|e| panic!("{e}"))
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
    async fn a_body_over_the_cap_is_refused() {
        let kubo = node(Some(answer("200 OK", &[b'x'; 4096]))).await;
        let err = kubo.cat("bafy", 1000, Duration::from_secs(5)).await;
        assert!(
            matches!(err, Err(Error::TooLarge { limit: 1000, .. })),
            "{err:?}"
        );
        let kubo = node(Some(answer("200 OK", b"exact"))).await;
        let ok = kubo.cat("bafy", 5, Duration::from_secs(5)).await;
        assert_eq!(ok.ok(), Some(b"exact".to_vec()));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_silent_node_hits_the_deadline() {
        let kubo = node(None).await;
        let started = std::time::Instant::now();
        let err = kubo.cat("bafy", 10, Duration::from_millis(200)).await;
        assert!(matches!(err, Err(Error::Deadline { .. })), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_dead_node_is_one_refused_connection_named_in_the_error() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0");
            let listener = listener.unwrap_or_else(|e| panic!("bind: {e}"));
            listener.local_addr().map(|a| a.port()).unwrap_or(0)
        };
        let kubo = Kubo::new(&format!("http://127.0.0.1:{port}")).unwrap_or_else(|e| panic!("{e}"));
        let err = kubo
            .id()
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("cannot reach"), "{err}");
        assert!(err.contains(&format!("http://127.0.0.1:{port}")), "{err}");
        assert!(err.contains("/api/v0/id"), "{err}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_missing_mfs_file_is_none_and_other_errors_are_errors() {
        let missing = br#"{"Message":"file does not exist","Code":0,"Type":"error"}"#;
        let kubo = node(Some(answer("500 Internal Server Error", missing))).await;
        let read = kubo.files_read("/x", 10, Duration::from_secs(5)).await;
        assert!(matches!(read, Ok(None)), "{read:?}");
        let failed = br#"{"Message":"repo locked","Code":0,"Type":"error"}"#;
        let kubo = node(Some(answer("500 Internal Server Error", failed))).await;
        let err = kubo.files_read("/x", 10, Duration::from_secs(5)).await;
        let text = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("HTTP 500: repo locked"), "{text}");
        assert!(text.contains("/api/v0/files/read"), "{text}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn add_reads_the_hash_whatever_type_size_has() {
        for body in [
            &br#"{"Name":"entry","Hash":"bafkreiabc","Size":"14"}"#[..],
            br#"{"Name":"entry","Hash":"bafkreiabc","Size":14}"#,
        ] {
            let kubo = node(Some(answer("200 OK", body))).await;
            assert_eq!(
                kubo.add(b"x".to_vec()).await.ok().as_deref(),
                Some("bafkreiabc")
            );
        }
    }

    #[test]
    fn node_errors_give_their_message() {
        assert_eq!(
            node_message(br#"{"Message":"file does not exist","Code":0,"Type":"error"}"#),
            "file does not exist"
        );
        assert_eq!(node_message(b"  plain text\n"), "plain text");
    }
}
