//! The HTTP side: a hyper server on its own thread, answering absolute-form proxy requests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::json;

use crate::webhook::{self, Delivery, Signing};
use crate::{date, graphql, oidc, rest, Conditional, Fault, RequestRecord, Shared};

/// Largest request body read (GraphQL documents, issue bodies).
const MAX_BODY: usize = 4 << 20;
/// Set to `1` to print one line per answered request on stderr, `2` to print request bodies too.
pub const TRACE_VAR: &str = "FAKE_GITHUB_TRACE";
/// The rate limit the fake GitHub advertises.
const RATE_LIMIT: u64 = 5000;

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

    /// How many requests counted against the rate limit (a 304 does not).
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
            let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert("content-type", value);
    }
    response
}

async fn handle(shared: Shared, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    // The API host asked: absolute-form through a proxy, else the `Host` header.
    let host = req
        .uri()
        .host()
        .map(str::to_owned)
        .unwrap_or_else(|| header("host"));
    let accept = header("accept");
    let authorization = header("authorization");
    let if_none_match = header("if-none-match");
    let if_modified_since = header("if-modified-since");
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(reply(
                413,
                "text/plain",
                b"request body too large\n".to_vec(),
            ))
        }
    };
    if path == "/_fake/redeliver" {
        // Awaited here, on the server's runtime: the blocking call would stop it.
        let id = rest::param(&query, "id").unwrap_or_default();
        let status = shared.hooks.redeliver_async(&id).await;
        return Ok(json_reply(200, json!({ "status": status })));
    }
    if let Some(control) = path.strip_prefix("/_fake/") {
        return Ok(self::control(&shared, control, &query));
    }
    if let Some(answer) = issuer(&shared, &path, &query, &authorization) {
        return Ok(answer);
    }
    let (latency, fault) = {
        let mut state = shared.lock();
        state.arrived += 1;
        (state.latency, state.fault)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let graphql = path == "/graphql" || path == "/api/graphql";
    let (operation, operation_name) = if graphql && method == "POST" {
        graphql::describe(&body)
    } else {
        (None, None)
    };
    let mut link = None;
    let (status, content_type, bytes, modified) = match fault {
        Some(Fault::ServerError) => (
            502,
            "application/json; charset=utf-8",
            json!({"message": "Server Error"}).to_string().into_bytes(),
            None,
        ),
        Some(Fault::RateLimited) => (
            403,
            "application/json; charset=utf-8",
            json!({"message": "API rate limit exceeded for 127.0.0.1. (But here's the good news: Authenticated requests get a higher rate limit.)",
                   "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"})
                .to_string()
                .into_bytes(),
            None,
        ),
        None if graphql && method == "POST" => {
            let answer = shared.change(|world| graphql::answer(&body, world));
            (
                200,
                "application/json; charset=utf-8",
                answer.to_string().into_bytes(),
                None,
            )
        }
        None => {
            let answer = shared.change(|world| rest::answer(&method, &path, &query, &accept, &body, world));
            link = answer
                .link
                .map(|l| String::from_utf8_lossy(&on_host(l.into_bytes(), &host)).into_owned());
            (answer.status, answer.content_type, on_host(answer.body, &host), answer.modified)
        }
    };
    let read = method == "GET" || method == "HEAD";
    let fresh = read && status == 200 && !graphql;
    let etag = fresh.then(|| etag_of(&authorization, &bytes));
    let last_modified = modified.filter(|_| fresh);
    let conditional = if !if_none_match.is_empty() {
        Some(Conditional::IfNoneMatch)
    } else if !if_modified_since.is_empty() {
        Some(Conditional::IfModifiedSince)
    } else {
        None
    };
    let not_modified = match conditional {
        Some(Conditional::IfNoneMatch) => etag
            .as_deref()
            .is_some_and(|etag| if_none_match.split(',').any(|v| v.trim() == etag)),
        // Whatever the token: GitHub's If-Modified-Since does not depend on it.
        Some(Conditional::IfModifiedSince) => last_modified
            .zip(date::parse(&if_modified_since))
            .is_some_and(|(modified, since)| modified <= since),
        None => false,
    };
    let status = if not_modified { 304 } else { status };
    let charged = status != 304;
    let remaining = {
        let mut state = shared.lock();
        if charged {
            state.charged_total += 1;
        }
        state.log.push(RequestRecord {
            method: method.clone(),
            path: path.clone(),
            operation: operation.clone(),
            status,
            charged,
            conditional,
            token: token_of(&authorization),
        });
        RATE_LIMIT.saturating_sub(state.charged_total)
    };
    if shared.trace > 0 {
        let what = match (&operation, &operation_name) {
            (Some(kind), Some(name)) => format!(" {kind} {name}"),
            (Some(kind), None) => format!(" {kind}"),
            _ if query.is_empty() => String::new(),
            _ => format!("?{query}"),
        };
        eprintln!("fake-github: {method} {path}{what} -> {status}");
        if shared.trace > 1 && !body.is_empty() {
            eprintln!("{}", String::from_utf8_lossy(&body));
        }
    }
    let body = if not_modified || method == "HEAD" {
        Vec::new()
    } else {
        bytes
    };
    let mut response = reply(status, content_type, body);
    let headers = response.headers_mut();
    let remaining = if fault == Some(Fault::RateLimited) {
        0
    } else {
        remaining
    };
    for (name, value) in [
        ("x-ratelimit-limit", RATE_LIMIT.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-used", (RATE_LIMIT - remaining).to_string()),
        ("x-ratelimit-reset", next_hour().to_string()),
        (
            "x-ratelimit-resource",
            if graphql { "graphql" } else { "core" }.to_owned(),
        ),
        ("x-github-media-type", "github.v3; format=json".to_owned()),
    ] {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    if let Some(etag) = etag.and_then(|e| e.parse().ok()) {
        headers.insert("etag", etag);
        // As GitHub says of its REST answers to a token.
        headers.insert(
            "cache-control",
            hyper::header::HeaderValue::from_static("private, max-age=60, s-maxage=60"),
        );
    }
    if let Some(value) = last_modified.and_then(|secs| date::format(secs).parse().ok()) {
        headers.insert("last-modified", value);
    }
    if let Some(value) = link.filter(|_| !not_modified).and_then(|l| l.parse().ok()) {
        headers.insert("link", value);
    }
    Ok(response)
}

/// `body` with GitHub's API URLs naming the host that was asked, as GitHub's own answers do:
/// gh follows some of them (a run's `jobs_url`), and must reach this server again.
fn on_host(body: Vec<u8>, host: &str) -> Vec<u8> {
    const API: &[u8] = b"https://api.github.com/";
    let host = host.split(':').next().unwrap_or("");
    if !host.ends_with(".localhost") || !body.windows(API.len()).any(|w| w == API) {
        return body;
    }
    let base = format!("http://{host}/");
    let mut out = Vec::with_capacity(body.len());
    let mut rest = &body[..];
    while let Some(at) = rest.windows(API.len()).position(|w| w == API) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(base.as_bytes());
        rest = &rest[at + API.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// When the rate-limit window resets: the next full hour, as Unix seconds, so it is in the
/// future like GitHub's, while answer bodies stay independent of the clock.
fn next_hour() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (now / 3600 + 1) * 3600
}

/// A weak ETag over the `Authorization` header and the body, as GitHub computes it: it changes
/// when the answer changes, and differs between two tokens that get the same answer, so an
/// ETag earns a 304 only under the token that obtained it.
fn etag_of(authorization: &str, body: &[u8]) -> String {
    // FNV-1a: deterministic across runs and processes, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    // The NUL between them: no other split of the same bytes gives the same ETag.
    for b in authorization.as_bytes().iter().chain(b"\0").chain(body) {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("W/\"{hash:016x}\"")
}

/// The token of an `Authorization: token T` or `Bearer T` header, if any.
fn token_of(authorization: &str) -> Option<String> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (["token", "bearer"].contains(&scheme.to_ascii_lowercase().as_str()) && !token.is_empty())
        .then(|| token.to_owned())
}

/// The OIDC issuer's answers, for its three paths; `None` for any other path.
fn issuer(shared: &Shared, path: &str, query: &str, authorization: &str) -> Option<Reply> {
    let issuer = format!("http://127.0.0.1:{}", shared.port);
    let json = |status: u16, value: serde_json::Value| {
        reply(status, "application/json", value.to_string().into_bytes())
    };
    match path {
        oidc::DISCOVERY_PATH => Some(json(200, oidc::discovery(&issuer))),
        oidc::JWKS_PATH => Some(json(200, oidc::jwks())),
        oidc::TOKEN_PATH => {
            // As GitHub: the job's request token as a bearer token, the audience in the query.
            if token_of(authorization).as_deref() != Some(oidc::REQUEST_TOKEN) {
                return Some(json(401, json!({"message": "Bad credentials"})));
            }
            let Some(audience) = rest::param(query, "audience") else {
                return Some(json(400, json!({"message": "audience is required"})));
            };
            let mut claims = shared
                .lock()
                .actions_job
                .clone()
                .unwrap_or_else(|| oidc::Claims::job(&issuer, "o/r", ""));
            claims.aud = audience;
            Some(match oidc::mint(&claims, oidc::Signer::Issuer) {
                Ok(jwt) => json(200, json!({"value": jwt})),
                Err(e) => json(500, json!({"message": e.to_string()})),
            })
        }
        _ => None,
    }
}

fn json_reply(status: u16, value: serde_json::Value) -> Reply {
    reply(status, "application/json", value.to_string().into_bytes())
}

fn control(shared: &Shared, what: &str, query: &str) -> Reply {
    let param = |name: &str| rest::param(query, name);
    let ok = |value: serde_json::Value| json_reply(200, value);
    // Those that change the world or touch the webhook, without the state lock.
    match what {
        "issue" => {
            let repo = param("repo").unwrap_or_else(|| "o/r".into());
            let title = param("title").unwrap_or_else(|| "new issue".into());
            let number = shared.change(|world| world.add_issue(&repo, &title, ""));
            return ok(json!({"number": number}));
        }
        "webhook" => {
            let url = param("url").filter(|url| !url.is_empty());
            let secret = param("secret").unwrap_or_default();
            shared.hooks.set(url.as_deref(), secret.as_bytes());
            return ok(json!({"url": url}));
        }
        "deliveries" => {
            let listed: Vec<serde_json::Value> = shared
                .hooks
                .deliveries()
                .iter()
                .map(|d| {
                    json!({"id": d.id, "event": d.event, "action": d.payload.get("action"),
                           "redelivery": d.redelivery, "status": d.status, "error": d.error,
                           "answered": d.answered_at.is_some()})
                })
                .collect();
            return ok(json!(listed));
        }
        _ => {}
    }
    let mut state = shared.lock();
    match what {
        "stats" => {
            let charged = state.log.iter().filter(|r| r.charged).count();
            ok(json!({"requests": state.log.len(), "charged": charged}))
        }
        "reset" => {
            state.log.clear();
            ok(json!({"ok": true}))
        }
        "latency" => {
            let ms = param("ms").and_then(|v| v.parse().ok()).unwrap_or(0);
            state.latency = Duration::from_millis(ms);
            ok(json!({"latency_ms": ms}))
        }
        "fault" => {
            state.fault = match param("kind").as_deref() {
                Some("server_error") => Some(Fault::ServerError),
                Some("rate_limited") => Some(Fault::RateLimited),
                _ => None,
            };
            ok(json!({"fault": format!("{:?}", state.fault)}))
        }
        _ => reply(404, "text/plain", b"unknown control\n".to_vec()),
    }
}
