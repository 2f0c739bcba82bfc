//! Webhook deliveries, as GitHub sends them to a repository webhook, so that a webhook receiver
//! meets in tests what it will meet from GitHub.
//!
//! Modelled on GitHub's documentation ("Webhook events and payloads", "Validating webhook
//! deliveries", "Handling failed webhook deliveries"):
//!
//! - each delivery is a `POST` of a JSON payload (`Content-Type: application/json`) from a
//!   `GitHub-Hookshot/...` user agent, with the headers `X-GitHub-Event`, `X-GitHub-Delivery` (a
//!   GUID), `X-GitHub-Hook-ID`, `X-GitHub-Hook-Installation-Target-Type` and `-ID`, and, when the
//!   webhook has a secret, `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` (GitHub
//!   sends no signature for a webhook without a secret; the legacy SHA-1 `X-Hub-Signature` is not
//!   sent);
//! - GitHub gives a receiver 10 seconds ([`TIMEOUT`]) to answer, and does not retry a failed
//!   delivery: someone may redeliver it, with the same `X-GitHub-Delivery` and the same body
//!   ([`FakeGithub::redeliver`]), which is why a receiver deduplicates on that id;
//! - every change of the fake's world (an issue opened from outside or through the API, closed,
//!   reopened, renamed or labelled, a comment, a pull request renamed, labelled or pushed to, a
//!   push to the default branch) sends the delivery GitHub would: `issues`,
//!   `issue_comment`, `pull_request`, `push`; any other event can be sent with
//!   [`FakeGithub::deliver`].
//!
//! Deliveries are sent from the server's own runtime, after the state lock is released, so a
//! slow receiver never holds up the request (or the in-process call) that made the change. Their
//! timestamps (`updated_at`, ...) are on the world's clock, the one of `Last-Modified`.
//!
//! For tests of a receiver's refusals, [`FakeGithub::send_delivery`] sends any bytes signed right,
//! wrong or not at all, and [`FakeGithub::send_oversized`] a body too large to hold, streamed.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac as _};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use serde_json::Value as Json;
use sha2::Sha256;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

mod payload;

pub(crate) use payload::payload;
pub use payload::{repository, user};

/// How long a receiver has to answer a delivery, as on GitHub: connecting, sending and reading
/// the answer's head all count. A delivery not answered by then has failed.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// `X-GitHub-Hook-ID`: the id of the one webhook the fake has.
pub const HOOK_ID: u64 = 498_273_561;

/// `User-Agent` of every delivery: GitHub's names its Hookshot service and a version.
pub const USER_AGENT: &str = "GitHub-Hookshot/f4ke0c1";

/// The login of the `sender` of the deliveries the fake's changes send: the fake's user.
pub const SENDER: &str = "octocat";

/// `X-GitHub-Hook-Installation-Target-ID` of a delivery whose payload names no repository id.
const UNKNOWN_TARGET: u64 = 1;

/// Largest answer body read from a receiver; the rest is not waited for.
const MAX_ANSWER: usize = 1 << 20;

/// The filler of an oversized body, sent again and again rather than built whole.
const CHUNK: usize = 64 << 10;
static FILLER: [u8; CHUNK] = [b'a'; CHUNK];

/// How a delivery sent by [`FakeGithub::send_delivery`] is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// `X-Hub-Signature-256` with the webhook's secret, as GitHub signs.
    Right,
    /// `X-Hub-Signature-256` computed with another secret: well-formed, but does not verify.
    Wrong,
    /// No `X-Hub-Signature-256` header at all.
    Missing,
}

/// One delivery the fake sent (or tried to), for tests to assert what a receiver was sent and
/// how it answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// `X-GitHub-Delivery`: a GUID, the same for a delivery and its redeliveries.
    pub id: String,
    /// `X-GitHub-Event`: `issues`, `pull_request`, `push`, ...
    pub event: String,
    /// The payload sent (the body is its compact JSON text).
    pub payload: Json,
    /// Whether this was a redelivery ([`FakeGithub::redeliver`]) of an earlier delivery.
    pub redelivery: bool,
    /// The status the receiver answered; `None` while in flight, or if no answer came (see
    /// [`Delivery::error`]).
    pub status: Option<u16>,
    /// Why no status came back: no webhook set, the connection failed, the timeout passed.
    pub error: Option<String>,
    /// When the delivery was started.
    pub sent_at: Instant,
    /// When its answer (or its failure) came; `None` while in flight.
    pub answered_at: Option<Instant>,
}

/// `sha256=` and the lowercase hex HMAC-SHA256 of `body` under `secret`: the value of
/// `X-Hub-Signature-256`, for tests that check a receiver's verification.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let Some(mut mac) = mac(secret) else {
        return String::new();
    };
    mac.update(body);
    sign(mac)
}

/// An HMAC-SHA256 keyed with `secret` (any length is a valid HMAC key: never `None`).
fn mac(secret: &[u8]) -> Option<Hmac<Sha256>> {
    <Hmac<Sha256> as hmac::Mac>::new_from_slice(secret).ok()
}

/// The header value of a finished HMAC.
fn sign(mac: Hmac<Sha256>) -> String {
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 2 * digest.len());
    out.push_str("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// A secret that is not `secret`, for [`Signing::Wrong`].
fn other_secret(secret: &[u8]) -> Vec<u8> {
    let mut other = secret.to_vec();
    other.extend_from_slice(b"-but-wrong");
    other
}

/// A fresh delivery GUID (8-4-4-4-12 hex, version 4 layout): random, from std's randomly keyed
/// hasher over a counter, the clock and the process id, so that no two deliveries share one.
fn guid() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let keys = std::collections::hash_map::RandomState::new();
    let half = |salt: u64| {
        let mut hasher = keys.build_hasher();
        hasher.write_u64(salt);
        hasher.write_u64(count);
        hasher.write_u64(nanos);
        hasher.write_u32(std::process::id());
        hasher.finish()
    };
    let high = (half(1) & !0xf000) | 0x4000;
    let low = (half(2) & !(0b11 << 62)) | (0b10 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

/// Where deliveries go and what signs them.
#[derive(Debug, Clone)]
struct Target {
    url: String,
    secret: Vec<u8>,
}

/// The webhook: its configuration and the deliveries sent, under a lock of their own (never
/// taken before the state lock), and the server's runtime, which sends them.
#[derive(Debug)]
pub(crate) struct Hooks {
    inner: Mutex<Inner>,
    /// Signalled when a delivery is answered or fails.
    answered: Condvar,
    runtime: tokio::runtime::Handle,
}

#[derive(Debug, Default)]
struct Inner {
    target: Option<Target>,
    records: Vec<Delivery>,
    /// The event and body of each delivery id, for redelivery.
    sent: HashMap<String, (String, Bytes)>,
}

impl Hooks {
    /// No webhook yet; deliveries will be sent from `runtime`.
    pub(crate) fn new(runtime: tokio::runtime::Handle) -> Hooks {
        Hooks {
            inner: Mutex::default(),
            answered: Condvar::new(),
            runtime,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not take the webhook down with it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a webhook is set: changes send deliveries only then.
    pub(crate) fn is_set(&self) -> bool {
        self.lock().target.is_some()
    }

    pub(crate) fn set(&self, url: Option<&str>, secret: &[u8]) {
        self.lock().target = url.map(|url| Target {
            url: url.to_owned(),
            secret: secret.to_vec(),
        });
    }

    fn target(&self) -> Option<Target> {
        self.lock().target.clone()
    }

    /// Sends `payload` as event `event` without waiting for the answer; returns the delivery id.
    pub(crate) fn deliver(self: &Arc<Self>, event: &str, payload: Json) -> String {
        let id = guid();
        let body = Bytes::from(payload.to_string());
        if let Some(sending) = self.start(&id, event, body, false) {
            self.runtime.spawn(sending);
        }
        id
    }

    /// Sends delivery `id` again, same event, body and id, waiting for the answer.
    pub(crate) fn redeliver(self: &Arc<Self>, id: &str) -> Option<u16> {
        let sending = self.restart(id)?;
        self.block(sending)
    }

    /// [`Hooks::redeliver`] from within the server's runtime.
    pub(crate) async fn redeliver_async(self: &Arc<Self>, id: &str) -> Option<u16> {
        self.restart(id)?.await
    }

    fn restart(
        self: &Arc<Self>,
        id: &str,
    ) -> Option<impl Future<Output = Option<u16>> + Send + 'static> {
        let (event, body) = self.lock().sent.get(id).cloned()?;
        self.start(id, &event, body, true)
    }

    /// Records a delivery and returns what sends it; `None` when no webhook is set (the record
    /// says so).
    fn start(
        self: &Arc<Self>,
        id: &str,
        event: &str,
        body: Bytes,
        redelivery: bool,
    ) -> Option<impl Future<Output = Option<u16>> + Send + 'static> {
        let mut inner = self.lock();
        let now = Instant::now();
        let target = inner.target.clone();
        inner.records.push(Delivery {
            id: id.to_owned(),
            event: event.to_owned(),
            payload: serde_json::from_slice(&body).unwrap_or_default(),
            redelivery,
            status: None,
            error: target.is_none().then(|| "no webhook is set".to_owned()),
            sent_at: now,
            answered_at: target.is_none().then_some(now),
        });
        let index = inner.records.len() - 1;
        inner
            .sent
            .insert(id.to_owned(), (event.to_owned(), body.clone()));
        drop(inner);
        let Some(target) = target else {
            self.answered.notify_all();
            return None;
        };
        let signature = (!target.secret.is_empty()).then(|| signature(&target.secret, &body));
        let headers = headers(event, id, target_id(&body), signature);
        let hooks = Arc::clone(self);
        Some(async move {
            let result = post(&target.url, headers, body).await;
            let status = result.as_ref().ok().copied();
            hooks.finish(index, result);
            status
        })
    }

    fn finish(&self, index: usize, result: Result<u16, String>) {
        if let Some(record) = self.lock().records.get_mut(index) {
            record.answered_at = Some(Instant::now());
            match result {
                Ok(status) => record.status = Some(status),
                Err(error) => record.error = Some(error),
            }
        }
        self.answered.notify_all();
    }

    pub(crate) fn deliveries(&self) -> Vec<Delivery> {
        self.lock().records.clone()
    }

    pub(crate) fn wait(&self, n: usize, timeout: Duration) -> Vec<Delivery> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        loop {
            let answered = inner
                .records
                .iter()
                .filter(|d| d.answered_at.is_some())
                .count();
            let now = Instant::now();
            if answered >= n || now >= deadline {
                return inner.records.clone();
            }
            inner = match self.answered.wait_timeout(inner, deadline - now) {
                Ok((inner, _)) => inner,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Sends `body` as event `event` with a fresh id, signed as `signing` says; not recorded.
    pub(crate) fn send_raw(&self, event: &str, body: Vec<u8>, signing: Signing) -> Option<u16> {
        let target = self.target()?;
        let signature = match signing {
            Signing::Right => Some(signature(&target.secret, &body)),
            Signing::Wrong => Some(signature(&other_secret(&target.secret), &body)),
            Signing::Missing => None,
        };
        let headers = headers(event, &guid(), target_id(&body), signature);
        self.block(async move { post(&target.url, headers, Bytes::from(body)).await.ok() })
    }

    /// Sends a `push` delivery whose body is `bytes` long, streamed; not recorded.
    pub(crate) fn send_oversized(&self, bytes: u64, declare_length: bool) -> Option<u16> {
        let target = self.target()?;
        let url = Url::parse(&target.url).ok()?;
        // Signed right, so that a receiver refuses it for its size and nothing else: the
        // HMAC is computed piece by piece, here on the caller's thread, as the body is sent.
        let mut mac = mac(&target.secret)?;
        for piece in pieces(bytes) {
            mac.update(piece);
        }
        let mut head = format!("POST {} HTTP/1.1\r\nHost: {}\r\n", url.path, url.host);
        for (name, value) in headers("push", &guid(), UNKNOWN_TARGET, Some(sign(mac))) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&if declare_length {
            format!("Content-Length: {bytes}\r\n\r\n")
        } else {
            "Transfer-Encoding: chunked\r\n\r\n".to_owned()
        });
        self.block(oversized(url.connect, head, bytes, !declare_length))
    }

    /// Runs `task` on the server's runtime and waits for its result on this thread. The task
    /// must not be run on the runtime's own thread (it could never run); a call from there
    /// answers `None`.
    fn block<T: Send + 'static>(
        &self,
        task: impl Future<Output = Option<T>> + Send + 'static,
    ) -> Option<T> {
        if std::thread::current().name() == Some(crate::SERVER_THREAD) {
            return None;
        }
        let (done, result) = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            let _ = done.send(task.await);
        });
        // Every task ends: each step of sending has a timeout. The channel closes if the server
        // stops meanwhile.
        result.recv().ok().flatten()
    }
}

/// The headers of a delivery, as GitHub sends them (names as GitHub spells them: HTTP header
/// names are case-insensitive, and hyper sends them lowercase).
fn headers(
    event: &str,
    id: &str,
    target_id: u64,
    signature: Option<String>,
) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("Accept", "*/*".to_owned()),
        ("Content-Type", "application/json".to_owned()),
        ("User-Agent", USER_AGENT.to_owned()),
        ("X-GitHub-Delivery", id.to_owned()),
        ("X-GitHub-Event", event.to_owned()),
        ("X-GitHub-Hook-ID", HOOK_ID.to_string()),
        (
            "X-GitHub-Hook-Installation-Target-ID",
            target_id.to_string(),
        ),
        (
            "X-GitHub-Hook-Installation-Target-Type",
            "repository".to_owned(),
        ),
    ];
    if let Some(signature) = signature {
        headers.push(("X-Hub-Signature-256", signature));
    }
    headers
}

/// The repository id a payload names (`repository.id`), the target of the delivery.
fn target_id(body: &[u8]) -> u64 {
    serde_json::from_slice::<Json>(body)
        .ok()
        .and_then(|payload| payload.pointer("/repository/id").and_then(Json::as_u64))
        .unwrap_or(UNKNOWN_TARGET)
}

/// A webhook URL, `http://HOST[:PORT][/PATH]`: plain HTTP is all the fake sends.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    /// `HOST:PORT`, to connect to.
    connect: String,
    /// `HOST[:PORT]` as written, for the `Host` header.
    host: String,
    /// The path and query, `/` at least.
    path: String,
}

impl Url {
    fn parse(url: &str) -> Result<Url, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?} is not an http:// URL (the fake sends plain HTTP)"))?;
        let rest = rest.split('#').next().unwrap_or("");
        let (host, path) = match rest.find(['/', '?']) {
            Some(at) if rest[at..].starts_with('?') => (&rest[..at], format!("/{}", &rest[at..])),
            Some(at) => (&rest[..at], rest[at..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        if host.is_empty() {
            return Err(format!("{url:?} names no host"));
        }
        let has_port = !host.ends_with(']') && host.contains(':');
        let connect = if has_port {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        Ok(Url {
            connect,
            host: host.to_owned(),
            path,
        })
    }
}

/// POSTs a delivery and reads the answer, within [`TIMEOUT`]: its status, or why none came.
async fn post(url: &str, headers: Vec<(&'static str, String)>, body: Bytes) -> Result<u16, String> {
    let url = Url::parse(url)?;
    match tokio::time::timeout(TIMEOUT, exchange(&url, headers, body)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no answer within {} seconds (timed out)",
            TIMEOUT.as_secs()
        )),
    }
}

async fn exchange(
    url: &Url,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
) -> Result<u16, String> {
    let stream = tokio::net::TcpStream::connect(&url.connect)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", url.connect))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {}: {e}", url.connect))?;
    // Drives the connection; it ends once the answer is read and `sender` dropped.
    tokio::spawn(connection);
    let mut request = hyper::Request::post(url.path.as_str()).header("Host", url.host.as_str());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| format!("no answer from {}: {e}", url.connect))?;
    let status = answer.status().as_u16();
    // The answer's body is read (not looked at) so that the connection ends cleanly.
    let _ = Limited::new(answer.into_body(), MAX_ANSWER).collect().await;
    Ok(status)
}

/// The body of an oversized delivery, piece by piece: `{"zen":"aaa…a"}` (valid JSON, as a push
/// payload is) when `total` leaves room for its frame, else only `a`s; `total` bytes in all.
fn pieces(total: u64) -> impl Iterator<Item = &'static [u8]> + Send {
    const OPEN: &[u8] = br#"{"zen":""#;
    const CLOSE: &[u8] = br#""}"#;
    let frame = (OPEN.len() + CLOSE.len()) as u64;
    let (open, close): (&'static [u8], &'static [u8]) = if total >= frame {
        (OPEN, CLOSE)
    } else {
        (b"", b"")
    };
    let filler = total - (open.len() + close.len()) as u64;
    let whole = usize::try_from(filler / CHUNK as u64).unwrap_or(usize::MAX);
    let rest = (filler % CHUNK as u64) as usize;
    std::iter::once(open)
        .chain(std::iter::repeat_n(&FILLER[..], whole))
        .chain(std::iter::once(&FILLER[..rest]))
        .chain(std::iter::once(close))
        .filter(|piece| !piece.is_empty())
}

/// Sends `head` then a body of `bytes` bytes (chunked or not), while reading the answer: a
/// receiver may answer (413) and close before the body ends, and that answer is the answer.
async fn oversized(connect: String, head: String, bytes: u64, chunked: bool) -> Option<u16> {
    let stream = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(&connect))
        .await
        .ok()?
        .ok()?;
    // The write half is kept until the answer: dropping it would close the sending side, and a
    // receiver may take that for the end of the connection.
    let (reader, mut writer) = stream.into_split();
    let answer = read_status(reader);
    tokio::pin!(answer);
    tokio::select! {
        status = &mut answer => return status,
        // Sent, or the receiver stopped taking it (reset): either way, its answer decides.
        _ = write_body(&mut writer, head, bytes, chunked) => {}
    }
    tokio::time::timeout(TIMEOUT, answer).await.ok().flatten()
}

/// Writes `data`, failing if the receiver takes none of it for [`TIMEOUT`].
async fn write_within(writer: &mut OwnedWriteHalf, data: &[u8]) -> std::io::Result<()> {
    match tokio::time::timeout(TIMEOUT, writer.write_all(data)).await {
        Ok(written) => written,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

async fn write_body(
    writer: &mut OwnedWriteHalf,
    head: String,
    bytes: u64,
    chunked: bool,
) -> std::io::Result<()> {
    write_within(writer, head.as_bytes()).await?;
    for piece in pieces(bytes) {
        if chunked {
            write_within(writer, format!("{:x}\r\n", piece.len()).as_bytes()).await?;
        }
        write_within(writer, piece).await?;
        if chunked {
            write_within(writer, b"\r\n").await?;
        }
    }
    if chunked {
        write_within(writer, b"0\r\n\r\n").await?;
    }
    writer.flush().await
}

/// The status of the answer read from `reader` (interim `1xx` answers skipped); `None` if the
/// connection ends before a status line.
async fn read_status(mut reader: OwnedReadHalf) -> Option<u16> {
    let mut seen = Vec::new();
    let mut buffer = vec![0u8; 4096];
    loop {
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let status = status_line(&seen)?;
            if !(100..200).contains(&status) {
                return Some(status);
            }
            seen.drain(..end + 4);
            continue;
        }
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => {
                // Closed or reset after (part of) a head: its status line still counts.
                return status_line(&seen).filter(|s| !(100..200).contains(s));
            }
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
        }
        if seen.len() > MAX_ANSWER {
            return status_line(&seen);
        }
    }
}

/// The status of a complete `HTTP/1.x NNN ...` line at the start of `head`.
fn status_line(head: &[u8]) -> Option<u16> {
    let end = head.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&head[..end]).ok()?;
    let mut words = line.split(' ');
    if !words.next()?.starts_with("HTTP/") {
        return None;
    }
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests;
