//! The HTTP side: a hyper server on its own thread, answering absolute-form proxy requests
//! ([`api`]: GitHub's API; [`control`]: the test controls and the OIDC issuer).

mod api;
mod control;
mod reply;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::limits::Secondary;
use crate::webhook::{self, Delivery, Signing};
use crate::{oidc, Fault, Limits, RequestRecord, Shared};

/// Set to `1` to print one line per answered request on stderr, `2` to print request bodies too.
pub const TRACE_VAR: &str = "FAKE_GITHUB_TRACE";

/// A running fake GitHub. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeGithub {
    port: u16,
    pub(crate) shared: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeGithub {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start() -> anyhow::Result<FakeGithub> {
        FakeGithub::start_on(0)
    }

    /// Starts a server on `port` of 127.0.0.1 (0 picks a free one).
    pub fn start_on(port: u16) -> anyhow::Result<FakeGithub> {
        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shared = Shared {
            state: Arc::default(),
            hooks: Arc::new(webhook::Hooks::new(runtime.handle().clone())),
            trace: match std::env::var(TRACE_VAR).as_deref() {
                Err(_) | Ok("" | "0") => 0,
                Ok("2") => 2,
                Ok(_) => 1,
            },
            port,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name(crate::SERVER_THREAD.into())
            .spawn(move || runtime.block_on(serve(listener, serving, stopped)))?;
        Ok(FakeGithub {
            port,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, for `HTTP_PROXY`.
    pub fn proxy_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The URL of its OIDC issuer (the `iss` of its tokens): `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> String {
        self.proxy_url()
    }

    /// `ACTIONS_ID_TOKEN_REQUEST_URL` of a job whose tokens this server issues (a job appends
    /// `&audience=...`); [`oidc::REQUEST_TOKEN`] is its `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
    pub fn id_token_request_url(&self) -> String {
        format!("{}{}?api-version=2.0", self.proxy_url(), oidc::TOKEN_PATH)
    }

    /// The claims a job's token request is answered with from now on (its `aud` becomes the
    /// audience asked for).
    pub fn set_actions_job(&self, claims: oidc::Claims) {
        self.shared.lock().actions_job = Some(claims);
    }

    /// The environment that points the real gh at this server.
    pub fn gh_env(&self) -> Vec<(String, String)> {
        let proxy = self.proxy_url();
        [
            ("GH_HOST", "github.localhost"),
            ("HTTP_PROXY", proxy.as_str()),
            ("http_proxy", proxy.as_str()),
            ("GH_TOKEN", "ghp_fake0123456789"),
            ("GH_NO_UPDATE_NOTIFIER", "1"),
            ("GH_PROMPT_DISABLED", "1"),
            ("GH_PAGER", "cat"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    /// Requests that reached the server since it started or since [`FakeGithub::clear_log`].
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }

    /// How many requests reached the server.
    pub fn request_count(&self) -> usize {
        self.shared.lock().log.len()
    }

    /// How many requests arrived, including those not answered yet (held by the latency): a
    /// test can wait for a request to be in flight.
    pub fn arrived(&self) -> usize {
        self.shared.lock().arrived
    }

    /// How many requests counted against a primary rate limit: neither a 304 nor a request
    /// that a rate limit refused (see [`RequestRecord::charged`]).
    pub fn charged_count(&self) -> usize {
        self.shared.lock().log.iter().filter(|r| r.charged).count()
    }

    /// Forgets the recorded requests.
    pub fn clear_log(&self) {
        self.shared.lock().log.clear();
    }

    /// Delays every answer by `latency`, like a distant GitHub.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// Makes every answer fail (or, with `None`, stops failing).
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.shared.lock().fault = fault;
    }

    /// Enforces `limits` from now on (see [`Limits`]), every count started afresh; requests
    /// in flight stay counted until answered.
    pub fn set_limits(&self, limits: Limits) {
        self.shared.lock().ledger.set_limits(limits);
    }

    /// Makes `token` an Actions job token of `repo` (`owner/name`): its requests count against
    /// the primary limit that every job token of that repository shares
    /// ([`Limits::job_primary`]), as GitHub counts a `GITHUB_TOKEN`.
    pub fn register_job_token(&self, token: &str, repo: &str) {
        self.shared.lock().ledger.register_job_token(token, repo);
    }

    /// Refuses the next `n` API requests, of any principal, as a secondary rate limit does
    /// (`status`, `Retry-After: retry_after`), whatever the counts: for a test that needs
    /// exactly one refusal. Replaces refusals still to come; while a fault is set, it answers
    /// instead and these wait.
    pub fn refuse_next_as_secondary(&self, n: usize, status: u16, retry_after: Option<u64>) {
        let refusal = Secondary {
            status,
            retry_after,
        };
        self.shared.lock().ledger.refuse_next(n, refusal);
    }

    /// Opens a new issue in `repo` (`owner/name`); returns its number. With a webhook set, an
    /// `issues` `opened` delivery is sent.
    pub fn add_issue(&self, repo: &str, title: &str) -> u64 {
        self.shared.change(|world| world.add_issue(repo, title, ""))
    }

    /// Renames pull request `number` of `repo` (`owner/name`), as an edit on github.com would:
    /// a change that does not come through ghcache. With a webhook set, a `pull_request`
    /// `edited` delivery is sent. Returns that event (there is always one).
    pub fn retitle_pr(&self, repo: &str, number: u64, title: &str) -> Option<crate::Event> {
        let told = self
            .shared
            .change_told(|world| world.retitle_pr(repo, number, title), true);
        told.1.into_iter().next()
    }
}

/// Webhook deliveries: see [`crate::webhook`].
impl FakeGithub {
    /// Sends webhook deliveries to `url` (`http://HOST:PORT/path`; plain HTTP), signed with
    /// `secret` (`X-Hub-Signature-256`; an empty secret, as on GitHub, sends no signature);
    /// `None` stops delivering. Deliveries already sent are kept.
    pub fn set_webhook(&self, url: Option<&str>, secret: &[u8]) {
        self.shared.hooks.set(url, secret);
    }

    /// Sends event `event` (`push`, `release`, ...) with `payload` to the webhook, without
    /// waiting for the answer; returns the delivery id (`X-GitHub-Delivery`). Without a webhook
    /// the delivery is recorded as failed. `X-GitHub-Hook-Installation-Target-ID` is the
    /// payload's `repository.id` ([`webhook::repository`] makes one).
    pub fn deliver(&self, event: &str, payload: serde_json::Value) -> String {
        self.shared.hooks.deliver(event, payload)
    }

    /// Every delivery sent (changes, [`FakeGithub::deliver`], redeliveries), oldest first,
    /// answered or in flight. Those of [`FakeGithub::send_delivery`] and
    /// [`FakeGithub::send_oversized`] are not in it: they return their answer.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.hooks.deliveries()
    }

    /// [`FakeGithub::deliveries`] once `n` of them have been answered or have failed, or once
    /// `timeout` has passed (check their number).
    pub fn wait_deliveries(&self, n: usize, timeout: Duration) -> Vec<Delivery> {
        self.shared.hooks.wait(n, timeout)
    }

    /// Sends delivery `id` again to the webhook, same body and same `X-GitHub-Delivery`, as
    /// GitHub's "Redeliver" does (signed with the webhook's current secret), and waits for the
    /// answer: its status, `None` if none came or there is no such delivery. Recorded as a
    /// delivery with `redelivery: true`.
    ///
    /// It blocks the calling thread: a receiver under test must not be served by the same
    /// thread (a `#[tokio::test]` runtime's), or it cannot answer; call it from
    /// `spawn_blocking`, or run the receiver on a runtime of its own.
    pub fn redeliver(&self, id: &str) -> Option<u16> {
        self.shared.hooks.redeliver(id)
    }

    /// Sends `body` as event `event` to the webhook with a fresh delivery id, signed as
    /// `signing` says, and waits for the answer: its status, `None` if none came or no webhook
    /// is set. For tests of a receiver's refusals; not recorded. Blocks as
    /// [`FakeGithub::redeliver`] does.
    pub fn send_delivery(&self, event: &str, body: Vec<u8>, signing: Signing) -> Option<u16> {
        self.shared.hooks.send_raw(event, body, signing)
    }

    /// Sends a `push` delivery whose body is `bytes` long, streamed in pieces (never held
    /// whole), with a `Content-Length` if `declare_length`, else chunked, signed right (the
    /// signature is computed over the stream first, so very large sizes take a while), and
    /// waits for the answer. A receiver may answer before the body ends and close: that answer
    /// counts, whatever happens to the rest of the body. `None` if no status came back. Not
    /// recorded; blocks as [`FakeGithub::redeliver`] does.
    pub fn send_oversized(&self, bytes: u64, declare_length: bool) -> Option<u16> {
        self.shared.hooks.send_oversized(bytes, declare_length)
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    shared: Shared,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| api::handle(shared.clone(), req));
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}
