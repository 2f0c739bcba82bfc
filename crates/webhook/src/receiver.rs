//! The HTTP endpoint GitHub delivers to: each delivery is checked (size, signature, replay),
//! read as an event by core's table, and handed to the daemon as a [`HeardWrite`].
//!
//! What GitHub sends (its "Webhook events and payloads" and "Validating webhook deliveries"
//! documentation): a `POST` with `Content-Type: application/json`, `X-GitHub-Event: <name>`,
//! `X-GitHub-Delivery: <GUID>` and `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>`; a
//! body of at most 25 MB; an answer expected within 10 s, else the delivery counts as failed.
//! Answers: 202 taken, 200 `ping` or a delivery taken before, 401 a missing or wrong signature
//! (nothing else of it is read), 413 a body over 25 MB (refused from its `Content-Length`
//! before a byte of it is read, else when the limit is passed), 400/415 what is not a delivery,
//! 405 anything but `POST`, 503 a daemon that is stopping.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ghcache_core::event::{HeardWrite, Trigger, PAYLOAD_MAX};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

use crate::seen::Seen;
use crate::signature::Secret;

/// Connections served at once; more wait in the listen backlog. GitHub sends one delivery per
/// connection, a few at a time.
const CONNECTIONS: usize = 64;
/// How long a connection may take to send a request's head.
const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// How long a delivery's body may take to arrive: with the hand-on below, the answer leaves
/// within GitHub's 10 s.
const BODY_DEADLINE: Duration = Duration::from_secs(6);
/// How long a delivery may wait for the daemon to take it.
const HAND_ON_DEADLINE: Duration = Duration::from_secs(2);
/// At most one log line per this interval about refused deliveries: an attacker's flood must
/// not flood the log too.
const REFUSALS_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// What a receiver counted since it started. Each only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Deliveries that passed every check and were handed to the daemon.
    pub deliveries: u64,
    /// `ping` deliveries answered (GitHub sends one when a webhook is made).
    pub pings: u64,
    /// Deliveries whose id was taken before: acknowledged, ignored.
    pub replayed: u64,
    /// Requests with a missing or wrong `X-Hub-Signature-256`: refused with 401.
    pub bad_signatures: u64,
    /// Requests with a body over 25 MB: refused with 413.
    pub oversized: u64,
    /// Requests that were not deliveries (no event or id, not JSON, not `POST`, too slow).
    pub malformed: u64,
}

impl Counts {
    /// Every count with its name, as status and metrics list them.
    pub fn named(&self) -> [(&'static str, u64); 6] {
        [
            ("deliveries", self.deliveries),
            ("pings", self.pings),
            ("replayed", self.replayed),
            ("bad_signatures", self.bad_signatures),
            ("oversized", self.oversized),
            ("malformed", self.malformed),
        ]
    }
}

#[derive(Default)]
struct LiveCounts {
    deliveries: AtomicU64,
    pings: AtomicU64,
    replayed: AtomicU64,
    bad_signatures: AtomicU64,
    oversized: AtomicU64,
    malformed: AtomicU64,
}

/// A webhook receiver: the secret deliveries are signed with, where heard writes go, and what
/// it has seen.
pub struct Receiver {
    secret: Secret,
    sink: mpsc::Sender<HeardWrite>,
    seen: Mutex<Seen>,
    counts: LiveCounts,
    /// When refusals were last logged, and how many came since.
    refusals: Mutex<(Option<Instant>, u64)>,
}

impl Receiver {
    /// A receiver that checks deliveries with `secret` and hands the writes they tell of to
    /// `sink`.
    pub fn new(secret: Secret, sink: mpsc::Sender<HeardWrite>) -> Arc<Receiver> {
        Arc::new(Receiver {
            secret,
            sink,
            seen: Mutex::new(Seen::default()),
            counts: LiveCounts::default(),
            refusals: Mutex::new((None, 0)),
        })
    }

    /// What it counted so far.
    pub fn counts(&self) -> Counts {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let c = &self.counts;
        Counts {
            deliveries: get(&c.deliveries),
            pings: get(&c.pings),
            replayed: get(&c.replayed),
            bad_signatures: get(&c.bad_signatures),
            oversized: get(&c.oversized),
            malformed: get(&c.malformed),
        }
    }

    /// Serves deliveries on `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let slots = Arc::new(Semaphore::new(CONNECTIONS));
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("ghcache daemon: webhook: accept failed: {e}");
                    // Out of file descriptors, most likely: do not spin on the error.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let receiver = self.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |req| receiver.clone().answer(req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEAD_DEADLINE)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    async fn answer(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let (status, text) = self.take(req).await;
        let mut response = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        if status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::METHOD_NOT_ALLOWED {
            // The body is not read: the connection cannot carry another request.
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        Ok(response)
    }

    /// Checks one request and hands on the write it tells of; the answer's status and text.
    async fn take(&self, req: Request<Incoming>) -> (StatusCode, String) {
        if req.method() != Method::POST {
            self.refused(&self.counts.malformed, "a request that is not a POST");
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                "deliveries are POSTed".into(),
            );
        }
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let declared = header(CONTENT_LENGTH.as_str()).and_then(|n| n.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > PAYLOAD_MAX) {
            self.refused(&self.counts.oversized, "a body over 25 MB");
            return (StatusCode::PAYLOAD_TOO_LARGE, too_large());
        }
        let (Some(event), Some(id)) = (header("x-github-event"), header("x-github-delivery"))
        else {
            self.refused(
                &self.counts.malformed,
                "a request without X-GitHub-Event and X-GitHub-Delivery",
            );
            return (
                StatusCode::BAD_REQUEST,
                "not a GitHub webhook delivery: X-GitHub-Event and X-GitHub-Delivery are missing"
                    .into(),
            );
        };
        let signature = header("x-hub-signature-256");
        let json = header(CONTENT_TYPE.as_str()).is_some_and(|t| t.starts_with("application/json"));
        let body = match tokio::time::timeout(
            BODY_DEADLINE,
            Limited::new(req.into_body(), PAYLOAD_MAX as usize).collect(),
        )
        .await
        {
            Ok(Ok(body)) => body.to_bytes(),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                self.refused(&self.counts.oversized, "a body over 25 MB");
                return (StatusCode::PAYLOAD_TOO_LARGE, too_large());
            }
            Ok(Err(_)) | Err(_) => {
                self.refused(&self.counts.malformed, "a body that did not arrive in time");
                return (
                    StatusCode::REQUEST_TIMEOUT,
                    "the body did not arrive in time".into(),
                );
            }
        };
        if !self.secret.signed(&body, signature.as_deref()) {
            self.refused(&self.counts.bad_signatures, "a missing or wrong signature");
            return (
                StatusCode::UNAUTHORIZED,
                "X-Hub-Signature-256 is missing or wrong: is the webhook's secret the daemon's?"
                    .into(),
            );
        }
        if !self.seen().insert(&id) {
            self.counts.replayed.fetch_add(1, Ordering::Relaxed);
            return (
                StatusCode::OK,
                format!("delivery {id} was taken before; ignored"),
            );
        }
        if event == "ping" {
            self.counts.pings.fetch_add(1, Ordering::Relaxed);
            return (StatusCode::OK, "pong".into());
        }
        let payload = match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(payload) if json => payload,
            _ => {
                self.seen().forget(&id);
                self.refused(&self.counts.malformed, "a body that is not JSON");
                return (
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "set the webhook's content type to application/json".into(),
                );
            }
        };
        let write = HeardWrite {
            trigger: Trigger::of(&event, Some(&payload), ""),
            what: format!("{event} delivery {id}"),
        };
        let about = write.trigger.about();
        match tokio::time::timeout(HAND_ON_DEADLINE, self.sink.send(write)).await {
            Ok(Ok(())) => {
                self.counts.deliveries.fetch_add(1, Ordering::Relaxed);
                (
                    StatusCode::ACCEPTED,
                    format!("{event}: invalidating {about}"),
                )
            }
            _ => {
                // Not taken: GitHub's redelivery of it must be.
                self.seen().forget(&id);
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the daemon is not taking deliveries now (stopping or busy); redeliver later"
                        .into(),
                )
            }
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a refusal, and logs refusals at most once per [`REFUSALS_LOG_INTERVAL`].
    fn refused(&self, counter: &AtomicU64, what: &str) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut refusals = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        refusals.1 += 1;
        if refusals
            .0
            .is_none_or(|at| at.elapsed() >= REFUSALS_LOG_INTERVAL)
        {
            eprintln!(
                "ghcache daemon: webhook: refused {} request(s) since the last line; the last: {what}",
                refusals.1
            );
            *refusals = (Some(Instant::now()), 0);
        }
    }
}

fn too_large() -> String {
    format!("a delivery is at most {PAYLOAD_MAX} bytes")
}
