//! The HTTP level: answers each request gh sends, from the tiers through a [`Chain`], or by
//! passing it on to GitHub.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use ghcache_core::{
    CacheKey, CacheTier, Chain, Fence, Manifest, Recorder, Request, Selector, Source,
};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, HOST};
use hyper::{Method, Response, StatusCode};

use crate::body::{read_up_to, Body, Read as Collected};
use crate::budget::Gate;
use crate::classify::{self, Kind, Read};
use crate::config::Config;
use crate::key;
use crate::origin::Forward;
use crate::stats::{Counters, Counts};
use crate::stored;
use crate::upstream::{Route, Upstream};

/// The largest GraphQL request body read to tell a query from a mutation; gh's are a few KiB.
/// A larger one is passed on as a write.
const GRAPHQL_BODY_MAX: u64 = 1 << 20;

/// The most of a 403 or 429 answer's body read to tell a secondary rate limit from a refusal
/// of another kind (GitHub's messages are a few hundred bytes).
const REFUSAL_MAX: u64 = 64 << 10;

/// The most warnings and fetched keys remembered for one gh run.
const REMEMBERED_MAX: usize = 1024;

/// What becomes of the cache when a write passes through.
#[async_trait]
pub trait Invalidate: Send + Sync {
    /// Drops the stored answers, of both levels, that `selector` names: on this machine, and
    /// where the cache reaches them, on its peers.
    ///
    /// # Behavior
    /// Called after the write reached GitHub (or may have: also when it failed), before its
    /// answer is passed to gh, so that what gh asks next is fetched anew.
    async fn invalidate(&self, selector: &Selector);
}

/// The HTTP level for one gh run: see the crate doc.
pub struct Level {
    config: Config,
    upstream: Arc<Upstream>,
    tiers: Vec<Arc<dyn CacheTier>>,
    fence: Option<Arc<dyn Fence>>,
    invalidate: Option<Arc<dyn Invalidate>>,
    recorder: Arc<Recorder>,
    counters: Counters,
    /// What the chain's events added up to so far: taken after each read, so that the events
    /// of a long gh run are not all held.
    tallied: Mutex<Counts>,
    streamed: Arc<AtomicU64>,
    warnings: Mutex<Vec<String>>,
    fetched: Mutex<Vec<(CacheKey, String)>>,
    /// GitHub's rate limits, when the machine keeps a book of them.
    gate: Option<Arc<Gate>>,
}

impl std::fmt::Debug for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Level")
            .field("config", &self.config)
            .field(
                "tiers",
                &self.tiers.iter().map(|t| t.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Level {
    /// A level that answers from no tier yet: every request goes to `upstream`.
    pub fn new(config: Config, upstream: Arc<Upstream>) -> Level {
        Level {
            config,
            upstream,
            tiers: Vec::new(),
            fence: None,
            invalidate: None,
            recorder: Arc::new(Recorder::default()),
            counters: Counters::default(),
            tallied: Mutex::new(Counts::default()),
            streamed: Arc::new(AtomicU64::new(0)),
            warnings: Mutex::new(Vec::new()),
            fetched: Mutex::new(Vec::new()),
            gate: None,
        }
    }

    /// Keeps GitHub's rate limits through `gate` (see [`Gate`]): requests wait out a secondary
    /// limit's pause, writes are spaced, requests in flight are capped, and reads short of
    /// budget prefer a stale answer within `max_stale`.
    pub fn with_gate(mut self, gate: Gate) -> Level {
        self.gate = Some(Arc::new(gate));
        self
    }

    /// The rate-limit gate, if the level keeps a book: flushed by the caller when gh is done.
    pub fn gate(&self) -> Option<&Arc<Gate>> {
        self.gate.as_ref()
    }

    /// Appends a tier, asked after the ones before it (wrapped in its layers: a deadline,
    /// lookup-only), as the [`Chain`] takes it.
    pub fn with_tier(mut self, tier: Arc<dyn CacheTier>) -> Level {
        self.tiers.push(tier);
        self
    }

    /// Guards every lookup and store with `fence`, as the [`Chain`] does: an answer fetched
    /// before a write finished is never stored or served.
    pub fn with_fence(mut self, fence: Arc<dyn Fence>) -> Level {
        self.fence = Some(fence);
        self
    }

    /// What a write that passes through drops.
    pub fn with_invalidate(mut self, invalidate: Arc<dyn Invalidate>) -> Level {
        self.invalidate = Some(invalidate);
        self
    }

    /// What happened since the last call (so that each request is counted once).
    pub fn take_counts(&self) -> Counts {
        self.tally();
        let mut counts = self
            .tallied
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        counts.add(&self.counters.take());
        counts.streamed_bytes += self.streamed.swap(0, Ordering::Relaxed);
        counts
    }

    /// Adds the chain's events so far to the tally.
    fn tally(&self) {
        let counts = Counts::of_events(&self.recorder.drain());
        if let Ok(mut tallied) = self.tallied.lock() {
            tallied.add(&counts);
        }
    }

    /// The warnings for the user so far (a stale answer served because GitHub failed), each
    /// once.
    pub fn take_warnings(&self) -> Vec<String> {
        let mut taken = self
            .warnings
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        taken.dedup();
        taken
    }

    /// The keys (and scopes) of the answers fetched from GitHub and stored so far: what the
    /// caller may add to IPFS.
    pub fn fetched(&self) -> Vec<(CacheKey, String)> {
        self.fetched.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Answers one request gh sent.
    pub async fn handle(&self, request: hyper::Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let (parts, incoming) = request.into_parts();
        let Some(route) = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(Route::of_host_header)
        else {
            return refusal(
                StatusCode::BAD_REQUEST,
                "a request without a usable Host header",
            );
        };
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let mut headers = parts.headers;
        drop_connection_headers(&mut headers);
        let method = parts.method;
        let kind = classify::classify(&method, &route.host, &path, &headers);
        let context = self.config.context_repo.as_deref();
        let (kind, outgoing, whole) = match kind {
            Kind::Graphql => match read_up_to(incoming, GRAPHQL_BODY_MAX).await {
                Ok(Collected::Whole(bytes)) => {
                    let kind = classify::graphql(&bytes, context);
                    (kind, Body::whole(bytes.clone()), bytes)
                }
                // Too long to read as a query: a write, as a document that cannot be read is.
                Ok(Collected::Long(prefix, rest)) => (
                    classify::graphql(b"", context),
                    Body::streamed(prefix, rest),
                    Bytes::new(),
                ),
                Err(err) => {
                    return refusal(
                        StatusCode::BAD_REQUEST,
                        &format!("reading the request: {err}"),
                    )
                }
            },
            other => (other, Body::streamed(Bytes::new(), incoming), Bytes::new()),
        };
        let (response, what) = match kind {
            Kind::Read(read) => {
                let graphql = method == Method::POST;
                self.read(
                    route.clone(),
                    method.clone(),
                    path.clone(),
                    headers,
                    whole,
                    graphql,
                    read,
                )
                .await
            }
            Kind::Write(selector) => {
                self.counters.writes.fetch_add(1, Ordering::Relaxed);
                if let Some(gate) = &self.gate {
                    let principal = gate.principal(token_hash(&headers).as_ref());
                    gate.before_write(&principal).await;
                }
                let response = self
                    .forward(&route, &method, &path, headers, outgoing)
                    .await;
                if let Some(invalidate) = &self.invalidate {
                    invalidate.invalidate(&selector).await;
                }
                (response, "write, passed on".to_owned())
            }
            Kind::Graphql | Kind::Pass(_) => {
                self.counters.passed.fetch_add(1, Ordering::Relaxed);
                let why = match kind {
                    Kind::Pass(why) => why,
                    _ => "GraphQL",
                };
                let response = self
                    .forward(&route, &method, &path, headers, outgoing)
                    .await;
                (response, format!("passed on ({why})"))
            }
        };
        if self.config.debug {
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let _ = writeln!(
                std::io::stderr(),
                "ghcache: http {method} {}{path}: {what}, {} {ms:.1}ms",
                route.host,
                response.status().as_u16()
            );
        }
        response
    }

    /// A read: from the tiers when one holds a fresh answer, else from GitHub.
    #[allow(clippy::too_many_arguments)] // One request's parts, taken apart once by `handle`.
    async fn read(
        &self,
        route: Route,
        method: Method,
        path: String,
        headers: HeaderMap,
        body: Bytes,
        graphql: bool,
        read: Read,
    ) -> (Response<Body>, String) {
        let scope = self.config.scope.of();
        let (input, ttl) = if graphql {
            let text = String::from_utf8_lossy(&body);
            (
                key::graphql(&route.host, scope, &path, &text, &headers),
                self.config.graphql_ttl,
            )
        } else {
            (
                key::rest(&route.host, scope, &method, &path, &headers),
                self.config.rest_ttl,
            )
        };
        let mut request = Request::new(input.argv.clone(), input, read.repo, ttl);
        request.resource = read.resource;
        request.max_stale = self.config.max_stale;
        request.capped_by_entry_ttl = true;
        request.fresh_only = self.config.fresh_only;
        let token = token_hash(&headers);
        let gate = self.gate.as_ref().map(|gate| {
            let principal = gate.principal(token.as_ref());
            if let Some(shortage) = gate.short(&principal, self.config.rate_limit_reserve) {
                request.prefer_stale = Some(shortage.reason(ghcache_core::now_ms()));
            }
            (gate.clone(), principal)
        });
        let forward = Arc::new(Forward {
            upstream: self.upstream.clone(),
            route: route.clone(),
            method: method.clone(),
            path_and_query: path.clone(),
            token,
            headers: upstream_headers(&headers, graphql),
            body: body.clone(),
            graphql,
            max_body: self.config.max_body,
            streamed: self.streamed.clone(),
            handoff: Mutex::new(None),
            gate,
        });
        let mut chain = Chain::new(forward.clone(), self.recorder.clone()).with_config(
            ghcache_core::ChainConfig {
                clock_skew: self.config.clock_skew,
            },
        );
        if let Some(fence) = &self.fence {
            chain = chain.with_fence(fence.clone());
        }
        for tier in &self.tiers {
            chain = chain.with_tier(tier.clone());
        }
        let resolved = match chain.resolve(&request).await {
            Ok(resolved) => resolved,
            Err(err) => {
                let line = format!("GitHub could not be asked: {err}");
                return (refusal(StatusCode::BAD_GATEWAY, &line), line);
            }
        };
        self.tally();
        self.remember(&self.warnings, resolved.warnings.iter().cloned());
        if let Some(response) = forward.take_streamed() {
            return (response, "fetched, streamed (too large to store)".into());
        }
        if resolved.source == Source::Origin {
            self.remember(
                &self.fetched,
                std::iter::once((request.key, request.input.scope.clone())),
            );
        }
        let what = resolved.source.label();
        match stored::decode(&resolved.output.stderr) {
            Some((status, stored_headers)) => {
                let mut response = Response::new(Body::whole(resolved.output.stdout));
                *response.status_mut() = status;
                *response.headers_mut() = stored_headers;
                if method != Method::HEAD {
                    let len = response.body().size_hint().exact().unwrap_or(0);
                    response
                        .headers_mut()
                        .insert(CONTENT_LENGTH, HeaderValue::from(len));
                }
                (response, what.into_owned())
            }
            None => {
                // A tier handed over an answer that is not one (a peer's, since this process
                // wrote its own): counted, and the request is passed on instead.
                self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                let body = Body::whole(body);
                let response = self.forward(&route, &method, &path, headers, body).await;
                (
                    response,
                    "a stored answer could not be read; passed on".into(),
                )
            }
        }
    }

    /// Passes a request on to GitHub and its answer back as it comes.
    async fn forward(
        &self,
        route: &Route,
        method: &Method,
        path: &str,
        headers: HeaderMap,
        body: Body,
    ) -> Response<Body> {
        let mut request = hyper::Request::new(body);
        *request.method_mut() = method.clone();
        if let Ok(uri) = path.parse() {
            *request.uri_mut() = uri;
        }
        let principal = self
            .gate
            .as_ref()
            .map(|gate| gate.principal(token_hash(&headers).as_ref()));
        *request.headers_mut() = headers;
        let mut _slot = None;
        if let Some((gate, principal)) = self.gate.as_ref().zip(principal.as_ref()) {
            gate.before_send(principal).await;
            _slot = gate.slot(principal).await;
        }
        match self.upstream.send(route, request, None).await {
            Ok(response) => {
                let (parts, incoming) = response.into_parts();
                let mut prefix = Bytes::new();
                let mut incoming = Some(incoming);
                if let Some((gate, principal)) = self.gate.as_ref().zip(principal.as_ref()) {
                    let status = parts.status.as_u16();
                    // A refusal's message tells a secondary limit from a permission: it is
                    // short, and read before it is passed on.
                    if status == 403 || status == 429 {
                        if let Some(body) = incoming.take() {
                            match read_up_to(body, REFUSAL_MAX).await {
                                Ok(Collected::Whole(bytes)) => prefix = bytes,
                                Ok(Collected::Long(head, rest)) => {
                                    prefix = head;
                                    incoming = Some(rest);
                                }
                                Err(_) => {}
                            }
                        }
                    }
                    // A write is not sent again: gh sees GitHub's refusal, as without ghcache.
                    let _ = gate.heard(principal, status, &parts.headers, &prefix).await;
                }
                let body = match incoming {
                    Some(incoming) => Body::streamed(prefix, incoming),
                    None => Body::whole(prefix),
                }
                .counting(self.streamed.clone());
                let mut response = Response::new(body);
                *response.status_mut() = parts.status;
                let headers = response.headers_mut();
                for (name, value) in &parts.headers {
                    if !stored::is_hop_by_hop(name) {
                        headers.append(name.clone(), value.clone());
                    }
                }
                response
            }
            Err(err) => refusal(StatusCode::BAD_GATEWAY, &format!("cannot reach {err}")),
        }
    }

    fn remember<T>(&self, list: &Mutex<Vec<T>>, items: impl Iterator<Item = T>) {
        if let Ok(mut list) = list.lock() {
            for item in items {
                if list.len() < REMEMBERED_MAX {
                    list.push(item);
                }
            }
        }
    }
}

/// Drops the headers of gh's connection to the socket from a request headed for GitHub.
fn drop_connection_headers(headers: &mut HeaderMap) {
    let names: Vec<_> = headers
        .keys()
        .filter(|name| stored::is_hop_by_hop(name))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

/// The headers a read is sent to GitHub with: gh's, but for a GraphQL query without
/// `Accept-Encoding`, so that the answer comes as it is and can be checked for `errors` before
/// it is stored (gh decompresses only what it asked to be compressed: a plain answer is what it
/// would read anyway). The key keeps gh's header: the answer gh gets is the same.
fn upstream_headers(headers: &HeaderMap, graphql: bool) -> HeaderMap {
    let mut headers = headers.clone();
    if graphql {
        headers.remove(hyper::header::ACCEPT_ENCODING);
    }
    headers
}

/// [`Manifest::token_hash`] of the token in an `Authorization` header (`token T`, `Bearer T`,
/// or the whole value for another scheme), `None` without one.
fn token_hash(headers: &HeaderMap) -> Option<ghcache_core::TokenHash> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let token = match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer") =>
        {
            token.trim()
        }
        _ => value,
    };
    Some(Manifest::token_hash(token))
}

/// An answer of ghcache's own, for a request it could not pass on: gh prints the status and,
/// for its `api` command, the body.
fn refusal(status: StatusCode, line: &str) -> Response<Body> {
    let body = format!(
        "{{\"message\":{}}}",
        serde_json::Value::from(format!("ghcache: {line}"))
    );
    let mut response = Response::new(Body::whole(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphql_answers_are_asked_for_uncompressed_and_rest_ones_as_gh_asked() {
        let mut headers = HeaderMap::new();
        headers.insert(
            hyper::header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
        assert!(!upstream_headers(&headers, true).contains_key(hyper::header::ACCEPT_ENCODING));
        assert_eq!(upstream_headers(&headers, false), headers);
    }

    #[test]
    fn the_token_is_hashed_without_its_scheme() {
        let mut headers = HeaderMap::new();
        assert_eq!(token_hash(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("token ghp_abc"));
        assert_eq!(token_hash(&headers), Some(Manifest::token_hash("ghp_abc")));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer ghp_abc"));
        assert_eq!(token_hash(&headers), Some(Manifest::token_hash("ghp_abc")));
    }
}
