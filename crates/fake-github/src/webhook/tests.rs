//! The deliveries as a receiver meets them: a tiny receiver on its own runtime.
use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{Read as _, Write as _};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac as _};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{json, Value as Json};
use sha2::Sha256;

use super::{guid, pieces, status_line, Signing, Url, HOOK_ID};
use crate::data::{SHA, TIME_SECS};
use crate::{date, FakeGithub};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SECRET: &[u8] = b"It's a Secret to Everybody";
const WAIT: Duration = Duration::from_secs(20);

fn some<T>(value: Option<T>, what: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("no {what}"))
}

/// One request the test receiver got: method, path, headers (names lowercase) and body.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn payload(&self) -> Json {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    /// Whether `X-Hub-Signature-256` verifies with `secret`, checked as a receiver does (in
    /// constant time, by the hmac crate).
    fn verifies(&self, secret: &[u8]) -> bool {
        let Some(hex) = self.header("x-hub-signature-256").strip_prefix("sha256=") else {
            return false;
        };
        let Some(expected) = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()
        else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            return false;
        };
        mac.update(&self.body);
        mac.verify_slice(&expected).is_ok()
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn lock(log: &Log) -> MutexGuard<'_, Vec<Seen>> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A tiny webhook receiver (tokio listener, hyper server) on a runtime and thread of its
/// own, so that the blocking calls of a test cannot stop it from answering. It records what
/// it gets, answers 200 after `delay`, or 413 for a body over `limit` (at once for a declared
/// length, else once the limit is read).
struct Receiver {
    port: u16,
    seen: Log,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(limit: usize, delay: Duration) -> Result<Receiver, Box<dyn std::error::Error>> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let seen = Log::default();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let log = Arc::clone(&seen);
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                loop {
                    let accepted = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => accepted,
                    };
                    let Ok((stream, _)) = accepted else { continue };
                    let log = Arc::clone(&log);
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            receive(Arc::clone(&log), req, limit, delay)
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Ok(Receiver {
            port,
            seen,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/github", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        lock(&self.seen).clone()
    }

    /// The request `index`, checked to be a `POST` to the webhook's path.
    fn got(&self, index: usize) -> Result<Seen, String> {
        let seen = some(self.seen().get(index).cloned(), "such request")?;
        if (seen.method.as_str(), seen.path.as_str()) != ("POST", "/hooks/github") {
            return Err(format!("{} {}", seen.method, seen.path));
        }
        Ok(seen)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn receive(
    log: Log,
    req: Request<Incoming>,
    limit: usize,
    delay: Duration,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let answer = |status: u16| {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() =
            hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::IM_A_TEAPOT);
        Ok(response)
    };
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let declared = headers.get("content-length").and_then(|v| v.parse().ok());
    if declared.is_some_and(|n: usize| n > limit) {
        return answer(413);
    }
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let Ok(body) = Limited::new(req.into_body(), limit).collect().await else {
        return answer(413);
    };
    let body = body.to_bytes().to_vec();
    lock(&log).push(Seen {
        method,
        path,
        headers,
        body,
    });
    tokio::time::sleep(delay).await;
    answer(200)
}

/// The fake with a webhook to a new receiver.
fn hooked(
    limit: usize,
    delay: Duration,
) -> Result<(FakeGithub, Receiver), Box<dyn std::error::Error>> {
    let github = FakeGithub::start()?;
    let receiver = Receiver::start(limit, delay)?;
    github.set_webhook(Some(&receiver.url()), SECRET);
    Ok((github, receiver))
}

/// One plain HTTP/1.1 request straight to the fake: its status and body.
fn request(port: u16, method: &str, target: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = status_line(answer.as_bytes()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok((status, body.to_owned()))
}

fn rfc3339(value: &Json) -> Result<u64, String> {
    some(
        value.as_str().and_then(date::parse_rfc3339),
        "RFC 3339 time",
    )
}

#[test]
fn a_new_issue_is_delivered_signed_with_githubs_headers() -> TestResult {
    let (github, receiver) = hooked(1 << 20, Duration::ZERO)?;
    let number = github.add_issue("acme/widgets", "Widgets wobble");
    let deliveries = github.wait_deliveries(1, WAIT);
    assert_eq!(deliveries.len(), 1);
    let delivery = &deliveries[0];
    assert_eq!(delivery.status, Some(200), "{delivery:?}");
    assert_eq!(delivery.event, "issues");
    assert!(!delivery.redelivery);
    assert!(some(delivery.answered_at, "answer")? >= delivery.sent_at);

    let seen = receiver.got(0)?;
    assert!(seen.verifies(SECRET), "{seen:?}");
    assert!(!seen.verifies(b"another secret"));
    assert_eq!(seen.header("content-type"), "application/json");
    assert!(seen.header("user-agent").starts_with("GitHub-Hookshot/"));
    assert_eq!(seen.header("x-github-event"), "issues");
    assert_eq!(seen.header("x-github-delivery"), delivery.id);
    assert_eq!(seen.header("x-github-hook-id"), HOOK_ID.to_string());
    assert_eq!(
        seen.header("x-github-hook-installation-target-type"),
        "repository"
    );
    let payload = seen.payload();
    assert_eq!(payload, delivery.payload);
    assert_eq!(
        seen.header("x-github-hook-installation-target-id"),
        payload["repository"]["id"].to_string()
    );
    assert_eq!(payload["action"], "opened");
    let issue = &payload["issue"];
    assert_eq!(issue["number"], number);
    assert_eq!(issue["title"], "Widgets wobble");
    assert_eq!(issue["state"], "open");
    assert!(rfc3339(&issue["created_at"])? > TIME_SECS);
    assert_eq!(issue["created_at"], issue["updated_at"]);
    assert_eq!(payload["repository"]["full_name"], "acme/widgets");
    assert_eq!(payload["repository"]["name"], "widgets");
    assert_eq!(payload["repository"]["owner"]["login"], "acme");
    assert_eq!(payload["repository"]["private"], false);
    assert_eq!(payload["sender"]["login"], "octocat");
    Ok(())
}

#[test]
fn a_retitled_pull_request_is_delivered_as_edited() -> TestResult {
    let (github, receiver) = hooked(1 << 20, Duration::ZERO)?;
    github.retitle_pr("acme/widgets", 7, "Faster widgets");
    let deliveries = github.wait_deliveries(1, WAIT);
    assert_eq!(deliveries[0].status, Some(200), "{deliveries:?}");
    let seen = receiver.got(0)?;
    assert!(seen.verifies(SECRET));
    assert_eq!(seen.header("x-github-event"), "pull_request");
    let payload = seen.payload();
    assert_eq!(payload["action"], "edited");
    assert_eq!(payload["number"], 7);
    assert_eq!(payload["repository"]["full_name"], "acme/widgets");
    assert_eq!(payload["sender"]["login"], "octocat");
    let pr = &payload["pull_request"];
    assert_eq!(pr["number"], 7);
    assert_eq!(pr["title"], "Faster widgets");
    assert_eq!(pr["state"], "open");
    assert_eq!(
        payload["changes"]["title"]["from"],
        "Improve acme/widgets, part 7"
    );
    let updated = rfc3339(&pr["updated_at"])?;
    assert!(updated > TIME_SECS, "{}", pr["updated_at"]);
    assert_eq!(pr["head"]["ref"], "feature-7");
    assert_eq!(pr["head"]["sha"], SHA);
    assert_eq!(pr["head"]["repo"]["full_name"], "acme/widgets");
    assert_eq!(pr["base"]["ref"], "main");
    assert_eq!(pr["base"]["repo"]["full_name"], "acme/widgets");

    // A second edit: a later time, and the title it had.
    github.retitle_pr("acme/widgets", 7, "Fastest widgets");
    let deliveries = github.wait_deliveries(2, WAIT);
    let payload = &deliveries[1].payload;
    assert_eq!(payload["changes"]["title"]["from"], "Faster widgets");
    assert!(rfc3339(&payload["pull_request"]["updated_at"])? > updated);
    Ok(())
}

#[test]
fn issues_created_through_the_api_and_the_control_are_delivered() -> TestResult {
    let (github, _receiver) = hooked(1 << 20, Duration::ZERO)?;
    let port = github.port();
    let (status, _) = request(port, "POST", "/repos/o/r/issues", r#"{"title":"By REST"}"#)?;
    assert_eq!(status, 201);
    let graphql = json!({"query": "mutation { createIssue(input: {repositoryId: \"R_o/r\", title: \"By GraphQL\"}) { issue { number } } }"});
    let (status, answer) = request(port, "POST", "/graphql", &graphql.to_string())?;
    assert_eq!(status, 200, "{answer}");
    let (status, _) = request(port, "GET", "/_fake/issue?repo=o/r&title=From+outside", "")?;
    assert_eq!(status, 200);
    let deliveries = github.wait_deliveries(3, WAIT);
    let titles: Vec<&Json> = deliveries
        .iter()
        .map(|d| &d.payload["issue"]["title"])
        .collect();
    assert_eq!(titles, ["By REST", "By GraphQL", "From outside"]);
    for delivery in &deliveries {
        assert_eq!(delivery.status, Some(200), "{delivery:?}");
        assert_eq!(delivery.event, "issues");
        assert_eq!(delivery.payload["action"], "opened");
        assert_eq!(delivery.payload["repository"]["full_name"], "o/r");
    }
    // Closing one through GraphQL is a change too.
    let close = json!({"query": "mutation { closeIssue(input: {issueId: \"I_o/r#1\"}) { issue { state } } }"});
    let (status, answer) = request(port, "POST", "/graphql", &close.to_string())?;
    assert_eq!(status, 200, "{answer}");
    let deliveries = github.wait_deliveries(4, WAIT);
    assert_eq!(deliveries.len(), 4, "{answer}");
    assert_eq!(deliveries[3].payload["action"], "closed");
    assert_eq!(deliveries[3].payload["issue"]["state"], "closed");
    // Reads change nothing, and send nothing.
    request(port, "GET", "/repos/o/r/issues", "")?;
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(github.deliveries().len(), 4);
    Ok(())
}

#[test]
fn the_webhook_is_set_unset_and_redelivered_over_http() -> TestResult {
    let github = FakeGithub::start()?;
    let receiver = Receiver::start(1 << 20, Duration::ZERO)?;
    let port = github.port();
    github.add_issue("o/r", "before any webhook");
    let url = receiver.url().replace(':', "%3A").replace('/', "%2F");
    let set = format!("/_fake/webhook?url={url}&secret=s%20cret");
    assert_eq!(request(port, "GET", &set, "")?.0, 200);
    github.add_issue("o/r", "while set");
    let deliveries = github.wait_deliveries(1, WAIT);
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, Some(200));
    assert!(receiver.got(0)?.verifies(b"s cret"));
    let (status, listed) = request(port, "GET", "/_fake/deliveries", "")?;
    assert_eq!(status, 200);
    let listed: Json = serde_json::from_str(&listed)?;
    assert_eq!(listed[0]["id"], deliveries[0].id.as_str());
    assert_eq!(listed[0]["status"], 200);
    let again = format!("/_fake/redeliver?id={}", deliveries[0].id);
    let (status, answer) = request(port, "GET", &again, "")?;
    assert_eq!((status, answer.as_str()), (200, r#"{"status":200}"#));
    assert_eq!(
        receiver.got(1)?.header("x-github-delivery"),
        deliveries[0].id
    );
    assert_eq!(request(port, "GET", "/_fake/webhook", "")?.0, 200);
    github.add_issue("o/r", "after");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(github.deliveries().len(), 2);
    Ok(())
}

#[test]
fn a_slow_receiver_does_not_hold_up_the_change() -> TestResult {
    let (github, receiver) = hooked(1 << 20, Duration::from_secs(2))?;
    let started = Instant::now();
    github.retitle_pr("o/r", 1, "Renamed");
    // The API answers meanwhile.
    assert_eq!(request(github.port(), "GET", "/repos/o/r", "")?.0, 200);
    assert!(started.elapsed() < Duration::from_millis(1500));
    let in_flight = github.deliveries();
    assert_eq!(in_flight.len(), 1);
    assert_eq!(in_flight[0].status, None);
    assert_eq!(in_flight[0].answered_at, None);
    let done = github.wait_deliveries(1, WAIT);
    assert_eq!(done[0].status, Some(200));
    assert_eq!(receiver.seen().len(), 1);
    Ok(())
}

#[test]
fn redelivery_sends_the_same_body_with_the_same_id() -> TestResult {
    let (github, receiver) = hooked(1 << 20, Duration::ZERO)?;
    let payload = json!({"ref": "refs/heads/main", "after": SHA,
                         "repository": super::repository("o/r"),
                         "sender": super::user("octocat")});
    let id = github.deliver("push", payload.clone());
    assert_eq!(github.wait_deliveries(1, WAIT)[0].status, Some(200));
    assert_eq!(github.redeliver(&id), Some(200));
    let (first, again) = (receiver.got(0)?, receiver.got(1)?);
    assert_eq!(first.header("x-github-delivery"), id);
    assert_eq!(again.header("x-github-delivery"), id);
    assert_eq!(again.header("x-github-event"), "push");
    assert_eq!(first.body, again.body);
    assert_eq!(again.payload(), payload);
    assert!(again.verifies(SECRET));
    let deliveries = github.deliveries();
    assert_eq!(deliveries.len(), 2);
    assert!(deliveries[1].redelivery);
    assert_eq!(deliveries[1].id, id);
    assert_eq!(deliveries[1].status, Some(200));
    assert_eq!(github.redeliver("no-such-delivery"), None);
    // Ids are fresh GUIDs.
    assert_ne!(github.deliver("push", payload), id);
    let lengths: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(lengths, [8, 4, 4, 4, 12]);
    assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    Ok(())
}

#[test]
fn probes_are_signed_as_asked() -> TestResult {
    let (github, receiver) = hooked(1 << 20, Duration::ZERO)?;
    let body = br#"{"zen":"Keep it logically awesome."}"#.to_vec();
    for signing in [Signing::Right, Signing::Wrong, Signing::Missing] {
        assert_eq!(
            github.send_delivery("ping", body.clone(), signing),
            Some(200)
        );
    }
    let (right, wrong, missing) = (receiver.got(0)?, receiver.got(1)?, receiver.got(2)?);
    assert!(right.verifies(SECRET));
    assert!(wrong.header("x-hub-signature-256").starts_with("sha256="));
    assert!(!wrong.verifies(SECRET));
    assert_eq!(missing.header("x-hub-signature-256"), "");
    assert_ne!(
        right.header("x-github-delivery"),
        wrong.header("x-github-delivery")
    );
    for seen in [&right, &wrong, &missing] {
        assert_eq!(seen.body, body);
        assert_eq!(seen.header("x-github-event"), "ping");
    }
    assert!(github.deliveries().is_empty());
    Ok(())
}

#[test]
fn oversized_bodies_are_streamed_and_refused() -> TestResult {
    let (github, receiver) = hooked(1 << 20, Duration::ZERO)?;
    for declare_length in [true, false] {
        assert_eq!(github.send_oversized(16 << 20, declare_length), Some(413));
        // A body within the limit arrives whole, valid JSON, signed.
        assert_eq!(github.send_oversized(100_000, declare_length), Some(200));
    }
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2);
    for seen in &seen {
        assert_eq!(seen.body.len(), 100_000);
        assert!(seen.payload()["zen"].is_string());
        assert!(seen.verifies(SECRET));
    }
    assert_eq!(seen[0].header("content-length"), "100000");
    assert_eq!(seen[1].header("transfer-encoding"), "chunked");
    Ok(())
}

#[test]
fn failed_deliveries_are_recorded_not_retried() -> TestResult {
    let github = FakeGithub::start()?;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = closed.local_addr()?.port();
    drop(closed);
    github.set_webhook(Some(&format!("http://127.0.0.1:{port}/")), SECRET);
    github.add_issue("o/r", "nobody listens");
    let deliveries = github.wait_deliveries(1, WAIT);
    assert_eq!(deliveries[0].status, None);
    let error = some(deliveries[0].error.clone(), "error")?;
    assert!(error.contains("connect"), "{error}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(github.deliveries().len(), 1);
    let probe = github.send_delivery("ping", b"{}".to_vec(), Signing::Right);
    assert_eq!(probe, None);
    assert_eq!(github.send_oversized(10, false), None);
    // Without a webhook: recorded as failed at once.
    github.set_webhook(None, b"");
    github.deliver("push", json!({}));
    let deliveries = github.wait_deliveries(2, WAIT);
    assert_eq!(deliveries[1].error.as_deref(), Some("no webhook is set"));
    github.set_webhook(Some("https://example.com/hook"), b"");
    github.deliver("push", json!({}));
    let deliveries = github.wait_deliveries(3, WAIT);
    let error = some(deliveries[2].error.clone(), "error")?;
    assert!(error.contains("http://"), "{error}");
    Ok(())
}

#[test]
fn urls_pieces_and_status_lines() -> TestResult {
    let url = Url::parse("http://localhost:8080/hook?x=1")?;
    assert_eq!(
        (url.connect.as_str(), url.host.as_str(), url.path.as_str()),
        ("localhost:8080", "localhost:8080", "/hook?x=1")
    );
    let url = Url::parse("http://example.test")?;
    assert_eq!(
        (url.connect.as_str(), url.path.as_str()),
        ("example.test:80", "/")
    );
    assert_eq!(Url::parse("http://h?q")?.path, "/?q");
    assert!(Url::parse("https://h/").is_err());
    assert!(Url::parse("http:///x").is_err());
    for total in [0u64, 3, 10, 11, 65_536, 65_546, 200_000] {
        let sent: Vec<u8> = pieces(total).flatten().copied().collect();
        assert_eq!(sent.len() as u64, total);
        if total >= 10 {
            serde_json::from_slice::<Json>(&sent)?;
        }
    }
    assert_eq!(
        status_line(b"HTTP/1.1 413 Payload Too Large\r\n"),
        Some(413)
    );
    assert_eq!(status_line(b"HTTP/1.1 413"), None);
    assert_ne!(guid(), guid());
    Ok(())
}
