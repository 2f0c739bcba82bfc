//! Answers to GitHub's API: the world's answer, an injected fault's, or a rate limit's refusal
//! ([`crate::limits`]), with GitHub's headers (`x-ratelimit-*`, ETags, `Last-Modified`, `Link`).

use std::convert::Infallible;
use std::time::Instant;

use http_body_util::{BodyExt as _, Limited as LimitedBody};
use hyper::body::{Bytes, Incoming};
use hyper::Request;
use serde_json::{json, Value as Json};

use super::reply::{json_reply, reply, token_of, Reply};
use crate::limits::{self, Call, Principal, Quota};
use crate::{date, graphql, rest, Conditional, Fault, Limited, RequestRecord, Shared};

/// Largest request body read (GraphQL documents, issue bodies).
const MAX_BODY: usize = 4 << 20;

/// An API request, as read off the wire.
struct Asked {
    method: String,
    path: String,
    query: String,
    /// The API host asked: absolute-form through a proxy, else the `Host` header.
    host: String,
    accept: String,
    authorization: String,
    if_none_match: String,
    if_modified_since: String,
    body: Bytes,
    graphql: bool,
    conditional: Option<Conditional>,
}

impl Asked {
    fn read(&self) -> bool {
        self.method == "GET" || self.method == "HEAD"
    }
}

/// What the server answers to an API request, and what that cost.
struct Outcome {
    answer: rest::Reply,
    etag: Option<String>,
    /// `Last-Modified`, sent with a fresh answer to a single resource.
    last_modified: Option<u64>,
    not_modified: bool,
    charged: bool,
    limited: Option<Limited>,
    quota: Quota,
    /// `Retry-After` seconds, with a secondary limit.
    retry_after: Option<u64>,
}

impl Outcome {
    /// An answer that no conditional header can turn into a 304: a fault's or a refusal.
    fn plain(answer: rest::Reply, charged: bool, limited: Option<Limited>, quota: Quota) -> Self {
        Outcome {
            answer,
            etag: None,
            last_modified: None,
            not_modified: false,
            charged,
            limited,
            quota,
            retry_after: None,
        }
    }

    /// GitHub's refusal once `principal`'s primary limit is spent, for REST and GraphQL alike.
    fn primary_refusal(principal: &Principal, quota: Quota) -> Self {
        let answer = json_answer(403, limits::primary_body(principal));
        Outcome::plain(answer, false, Some(Limited::Primary), quota)
    }
}

fn json_answer(status: u16, value: Json) -> rest::Reply {
    rest::Reply {
        status,
        body: value.to_string().into_bytes(),
        content_type: "application/json; charset=utf-8",
        modified: None,
        link: None,
    }
}

/// Holds an admitted request's place among its principal's requests in flight until it is
/// answered. It is dropped with the request's future: a client that goes away while the
/// latency holds its request does not leave the count raised for good.
struct InFlight {
    shared: Shared,
    principal: Principal,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.lock().ledger.leave(&self.principal);
    }
}

pub(super) async fn handle(shared: Shared, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let path = req.uri().path().to_owned();
    let if_none_match = header("if-none-match");
    let if_modified_since = header("if-modified-since");
    let conditional = if !if_none_match.is_empty() {
        Some(Conditional::IfNoneMatch)
    } else if !if_modified_since.is_empty() {
        Some(Conditional::IfModifiedSince)
    } else {
        None
    };
    let mut asked = Asked {
        method: req.method().as_str().to_owned(),
        graphql: path == "/graphql" || path == "/api/graphql",
        query: req.uri().query().unwrap_or("").to_owned(),
        host: req
            .uri()
            .host()
            .map(str::to_owned)
            .unwrap_or_else(|| header("host")),
        accept: header("accept"),
        authorization: header("authorization"),
        if_none_match,
        if_modified_since,
        body: Bytes::new(),
        conditional,
        path,
    };
    asked.body = match LimitedBody::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(reply(
                413,
                "text/plain",
                b"request body too large\n".to_vec(),
            ))
        }
    };
    if asked.path == "/_fake/redeliver" {
        // Awaited here, on the server's runtime: the blocking call would stop it.
        let id = rest::param(&asked.query, "id").unwrap_or_default();
        let status = shared.hooks.redeliver_async(&id).await;
        return Ok(json_reply(200, json!({ "status": status })));
    }
    if let Some(control) = asked.path.strip_prefix("/_fake/") {
        return Ok(super::control::control(&shared, control, &asked.query));
    }
    if let Some(answer) =
        super::control::issuer(&shared, &asked.path, &asked.query, &asked.authorization)
    {
        return Ok(answer);
    }
    Ok(api(shared, asked).await)
}

/// Answers a request to GitHub's API, and records it.
async fn api(shared: Shared, asked: Asked) -> Reply {
    let arrived_at = Instant::now();
    let (operation, operation_name) = if asked.graphql && asked.method == "POST" {
        graphql::describe(&asked.body)
    } else {
        (None, None)
    };
    let token = token_of(&asked.authorization);
    // The secondary limits are decided on arrival: the latency that follows is the time the
    // request is in flight.
    let (latency, fault, call, admitted, request_id) = {
        let mut state = shared.lock();
        state.arrived += 1;
        let call = state.ledger.call(
            token.as_deref(),
            &asked.method,
            &asked.path,
            operation.as_deref(),
        );
        // A fault answers instead of GitHub, whose limits then count nothing.
        let admitted = state
            .fault
            .is_none()
            .then(|| state.ledger.admit(&call, Instant::now()));
        let id = request_id(shared.port, state.arrived);
        (state.latency, state.fault, call, admitted, id)
    };
    // Made before the first await: once admitted, the request is counted out again however
    // this future ends.
    let _in_flight = matches!(admitted, Some(Ok(()))).then(|| InFlight {
        shared: shared.clone(),
        principal: call.principal.clone(),
    });
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let outcome = match (fault, admitted) {
        (Some(fault), _) => faulted(&shared, fault, &call),
        (None, Some(Err(refusal))) => {
            let answer = json_answer(refusal.status, limits::secondary_body(&request_id));
            let quota = shared.lock().ledger.quota(&call, Instant::now());
            Outcome {
                retry_after: refusal.retry_after,
                ..Outcome::plain(answer, false, Some(Limited::Secondary), quota)
            }
        }
        (None, _) => answered(&shared, &asked, &call),
    };
    let status = if outcome.not_modified {
        304
    } else {
        outcome.answer.status
    };
    {
        let mut state = shared.lock();
        state.log.push(RequestRecord {
            method: asked.method.clone(),
            path: asked.path.clone(),
            operation: operation.clone(),
            status,
            charged: outcome.charged,
            conditional: asked.conditional,
            token,
            limited: outcome.limited,
            arrived_at,
        });
    }
    if shared.trace > 0 {
        trace(
            &shared,
            &asked,
            status,
            &outcome,
            &operation,
            &operation_name,
        );
    }
    respond(&asked, status, outcome, &request_id)
}

/// The answer while `fault` is injected, charged as any answer (as the fake always did): a
/// 502, or the spent primary limit (`x-ratelimit-remaining: 0`).
fn faulted(shared: &Shared, fault: Fault, call: &Call) -> Outcome {
    let (answer, limited) = match fault {
        Fault::ServerError => (json_answer(502, json!({"message": "Server Error"})), None),
        Fault::RateLimited => (
            json_answer(
                403,
                json!({"message": "API rate limit exceeded for 127.0.0.1. (But here's the good news: Authenticated requests get a higher rate limit.)",
                       "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}),
            ),
            Some(Limited::Primary),
        ),
    };
    let charge = shared.lock().ledger.charge(call, Instant::now());
    let charged = charge.is_ok();
    let quota = charge.unwrap_or_else(|quota| quota);
    let quota = if limited.is_some() {
        quota.spent()
    } else {
        quota
    };
    Outcome::plain(answer, charged, limited, quota)
}

/// The world's answer to a request the secondary limits let through, unless its primary limit
/// is spent. A request that cannot be a 304 is charged before the world is asked, so that a
/// refused write changes nothing; one that may be a 304 (a conditional read) is charged once
/// the answer shows it is not.
fn answered(shared: &Shared, asked: &Asked, call: &Call) -> Outcome {
    let may_be_304 = asked.conditional.is_some() && asked.read() && !asked.graphql;
    let charged_first = if may_be_304 {
        None
    } else {
        let charge = shared.lock().ledger.charge(call, Instant::now());
        match charge {
            Ok(quota) => Some(quota),
            Err(quota) => return Outcome::primary_refusal(&call.principal, quota),
        }
    };
    let answer = world_answer(shared, asked);
    let fresh = asked.read() && answer.status == 200 && !asked.graphql;
    let etag = fresh.then(|| etag_of(&asked.authorization, &answer.body));
    let last_modified = answer.modified.filter(|_| fresh);
    let not_modified = match asked.conditional {
        Some(Conditional::IfNoneMatch) => etag
            .as_deref()
            .is_some_and(|etag| asked.if_none_match.split(',').any(|v| v.trim() == etag)),
        // Whatever the token: GitHub's If-Modified-Since does not depend on it.
        Some(Conditional::IfModifiedSince) => last_modified
            .zip(date::parse(&asked.if_modified_since))
            .is_some_and(|(modified, since)| modified <= since),
        None => false,
    };
    let (charged, quota) = match charged_first {
        Some(quota) => (true, quota),
        // Free, and never refused by the primary limit.
        None if not_modified => (false, shared.lock().ledger.quota(call, Instant::now())),
        None => {
            let charge = shared.lock().ledger.charge(call, Instant::now());
            match charge {
                Ok(quota) => (true, quota),
                Err(quota) => return Outcome::primary_refusal(&call.principal, quota),
            }
        }
    };
    Outcome {
        answer,
        etag,
        last_modified,
        not_modified,
        charged,
        limited: None,
        quota,
        retry_after: None,
    }
}

/// The world's answer (which a write changes), its URLs on the host asked.
fn world_answer(shared: &Shared, asked: &Asked) -> rest::Reply {
    if asked.graphql && asked.method == "POST" {
        let answer = shared.change(|world| graphql::answer(&asked.body, world));
        return json_answer(200, answer);
    }
    let mut answer = shared.change(|world| {
        rest::answer(
            &asked.method,
            &asked.path,
            &asked.query,
            &asked.accept,
            &asked.body,
            world,
        )
    });
    answer.link = answer
        .link
        .map(|l| String::from_utf8_lossy(&on_host(l.into_bytes(), &asked.host)).into_owned());
    answer.body = on_host(answer.body, &asked.host);
    answer
}

fn trace(
    shared: &Shared,
    asked: &Asked,
    status: u16,
    outcome: &Outcome,
    operation: &Option<String>,
    operation_name: &Option<String>,
) {
    let what = match (operation, operation_name) {
        (Some(kind), Some(name)) => format!(" {kind} {name}"),
        (Some(kind), None) => format!(" {kind}"),
        _ if asked.query.is_empty() => String::new(),
        _ => format!("?{}", asked.query),
    };
    let limited = match outcome.limited {
        Some(Limited::Primary) => " (primary rate limit)",
        Some(Limited::Secondary) => " (secondary rate limit)",
        None => "",
    };
    eprintln!(
        "fake-github: {} {}{what} -> {status}{limited}",
        asked.method, asked.path
    );
    if shared.trace > 1 && !asked.body.is_empty() {
        eprintln!("{}", String::from_utf8_lossy(&asked.body));
    }
}

/// The HTTP answer of `outcome`, with GitHub's headers.
fn respond(asked: &Asked, status: u16, outcome: Outcome, request_id: &str) -> Reply {
    let body = if outcome.not_modified || asked.method == "HEAD" {
        Vec::new()
    } else {
        outcome.answer.body
    };
    let mut response = reply(status, outcome.answer.content_type, body);
    let headers = response.headers_mut();
    let retry_after = outcome
        .retry_after
        .map(|secs| ("retry-after", secs.to_string()));
    for (name, value) in outcome
        .quota
        .headers()
        .into_iter()
        .chain([
            ("x-github-media-type", "github.v3; format=json".to_owned()),
            ("x-github-request-id", request_id.to_owned()),
        ])
        .chain(retry_after)
    {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    if let Some(etag) = outcome.etag.and_then(|e| e.parse().ok()) {
        headers.insert("etag", etag);
        // As GitHub says of its REST answers to a token.
        headers.insert(
            "cache-control",
            hyper::header::HeaderValue::from_static("private, max-age=60, s-maxage=60"),
        );
    }
    if let Some(value) = outcome
        .last_modified
        .and_then(|secs| date::format(secs).parse().ok())
    {
        headers.insert("last-modified", value);
    }
    let link = outcome.answer.link.filter(|_| !outcome.not_modified);
    if let Some(value) = link.and_then(|l| l.parse().ok()) {
        headers.insert("link", value);
    }
    response
}

/// `x-github-request-id` of the `n`th API request to the server on `port`, in GitHub's shape
/// (five hex fields), which a secondary limit's message quotes.
fn request_id(port: u16, n: usize) -> String {
    format!("0000:{port:04X}:{n:06X}:{n:06X}:00000000")
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
