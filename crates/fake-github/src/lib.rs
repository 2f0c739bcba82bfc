//! A fake GitHub API server that the real `gh` talks to, for ghcache's tests and demo.
//!
//! gh is pointed at it with `GH_HOST=github.localhost` and `HTTP_PROXY=http://127.0.0.1:PORT`
//! (see [`FakeGithub::gh_env`]): gh then sends plain-HTTP requests for `api.github.localhost`
//! through the "proxy", which answers them itself. It serves REST and the GraphQL documents gh
//! sends, ETags and free `304 Not Modified` answers, GitHub's rate limits (`x-ratelimit-*`
//! headers per token; the primary and secondary limits enforced as [`Limits`] set them), and
//! records every request so tests can assert what reached GitHub. As GitHub does, it computes
//! an ETag over the request's `Authorization` header and the body, so that an ETag earns a 304
//! only under the token that obtained it, and it sends `Last-Modified` on single resources (a
//! repository, an issue, a pull request, a release, a run) and honours `If-Modified-Since`
//! whatever the token. Latency and faults (5xx, rate limit) can be injected, in process or over
//! HTTP (`/_fake/...`) for other processes. With `FAKE_GITHUB_TRACE=1` in its environment it
//! prints one line per request on stderr (`2`: and the request body). It is also the OIDC
//! issuer of GitHub Actions ([`oidc`]): discovery, key set, a job's token request, and tokens
//! minted with chosen claims.
//!
//! It sends webhook deliveries as GitHub does ([`webhook`]), so that a webhook receiver meets
//! what GitHub sends: once a webhook is set ([`FakeGithub::set_webhook`], or
//! `/_fake/webhook?url=...&secret=...`), every change of its world (an issue opened from outside
//! or through the API, closed, reopened or renamed, a comment, a label, a pull request renamed
//! or pushed to, a push) is `POST`ed to it with GitHub's headers and `X-Hub-Signature-256`, from
//! the server's runtime, never holding up the change. Tests read what was sent and answered
//! ([`FakeGithub::deliveries`]), redeliver, and probe a receiver's refusals (wrong or missing
//! signatures, oversized bodies).
//!
//! The writes that people and bots make on github.com ([`FakeGithub::push`],
//! [`FakeGithub::comment`], ...) return the event GitHub tells of them, which a job that the
//! write started finds in its `GITHUB_EVENT_PATH`. A replay can keep the world's history
//! ([`FakeGithub::keep_history`]) and later ask a server restored to any moment of it what
//! GitHub answered then ([`FakeGithub::restore`]).

mod data;
mod date;
mod graphql;
mod limits;
pub mod oidc;
mod outside;
mod rest;
mod server;
pub mod webhook;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use limits::{Limited, Limits};
pub use server::{FakeGithub, TRACE_VAR};

/// The name of the server's thread, which runs its runtime (webhook deliveries too).
const SERVER_THREAD: &str = "fake-github";
pub use outside::{Event, Snapshot};
pub use webhook::{Delivery, Signing};

/// One request that reached the fake GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path (without the query string).
    pub path: String,
    /// For GraphQL: the operation type (`query`, `mutation`); `None` for REST.
    pub operation: Option<String>,
    /// Status code answered.
    pub status: u16,
    /// Whether it counted against its primary rate limit: everything but a 304 and a request
    /// that a rate limit refused (an injected [`Fault`] is charged).
    pub charged: bool,
    /// The conditional header that decided whether the answer was a 304, if one was sent.
    pub conditional: Option<Conditional>,
    /// The token of the `Authorization` header, if one was sent.
    pub token: Option<String>,
    /// The rate limit that refused it, if one did (the injected [`Fault::RateLimited`] is the
    /// primary limit, though charged).
    pub limited: Option<Limited>,
    /// When it arrived (its answer may come later, after the latency): how far apart a
    /// client sent its requests.
    pub arrived_at: std::time::Instant,
}

/// A conditional request header: what a 304 was asked for with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conditional {
    /// `If-None-Match`: a 304 when the ETag matches, which it does only under the token that
    /// obtained it. When both are sent, this one decides and `If-Modified-Since` is ignored
    /// (RFC 9110, section 13.1.3).
    IfNoneMatch,
    /// `If-Modified-Since`: a 304 when the resource (one that sends `Last-Modified`) has not
    /// changed since that time, whatever the token.
    IfModifiedSince,
}

/// A failure of GitHub itself, injected into every answer while set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `502 Bad Gateway`.
    ServerError,
    /// `403` with `x-ratelimit-remaining: 0`: the rate limit is spent.
    RateLimited,
}

/// Everything the server knows, shared by its connections and the test that owns it.
#[derive(Debug, Default)]
struct State {
    world: data::World,
    log: Vec<RequestRecord>,
    latency: Duration,
    fault: Option<Fault>,
    /// The rate limits and what counts against them.
    ledger: limits::Ledger,
    /// Requests received, answered or not yet (still waiting out the latency).
    arrived: usize,
    /// The claims a job's token request is answered with (its `aud` is the one asked for);
    /// `None`: a push job of `o/r`.
    actions_job: Option<oidc::Claims>,
    /// The world after each change, oldest first, once [`FakeGithub::keep_history`] was called.
    history: Option<Vec<outside::Snapshot>>,
}

#[derive(Debug, Clone)]
struct Shared {
    state: Arc<Mutex<State>>,
    /// The webhook and its deliveries, under a lock of their own, taken after the state's if
    /// both are.
    hooks: Arc<webhook::Hooks>,
    /// 0: quiet; 1: one line per request on stderr; 2: and its body ([`TRACE_VAR`]).
    trace: u8,
    /// The port it listens on: the OIDC issuer's URL names it.
    port: u16,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take the server down with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `write` on the world, then sends the webhook deliveries of the changes it made: their
    /// payloads are built under the lock (they describe the world as the change left it), and
    /// sent once it is released, from the server's runtime, without waiting for the answers.
    fn change<R>(&self, write: impl FnOnce(&mut data::World) -> R) -> R {
        self.change_told(write, false).0
    }

    /// [`Shared::change`], which also returns the events of the changes (their names and
    /// payloads) when `tell` is set, or when a webhook is, in the order they were made. With
    /// the history kept, the world as the changes left it is kept too.
    fn change_told<R>(
        &self,
        write: impl FnOnce(&mut data::World) -> R,
        tell: bool,
    ) -> (R, Vec<outside::Event>) {
        let hooked = self.hooks.is_set();
        let (out, events) = {
            let mut state = self.lock();
            let out = write(&mut state.world);
            let changes = state.world.take_changes();
            if !changes.is_empty() {
                let world = &state.world;
                let snapshot = state.history.is_some().then(|| outside::Snapshot {
                    at: std::time::Instant::now(),
                    repos: changes
                        .iter()
                        .map(|c| c.repo().to_ascii_lowercase())
                        .collect(),
                    world: world.clone(),
                });
                if let (Some(history), Some(snapshot)) = (&mut state.history, snapshot) {
                    history.push(snapshot);
                }
            }
            let events: Vec<_> = if changes.is_empty() || !(hooked || tell) {
                Vec::new()
            } else {
                changes
                    .iter()
                    .map(|change| {
                        let (name, payload) = webhook::payload(&mut state.world, change);
                        outside::Event {
                            name: name.to_owned(),
                            payload,
                        }
                    })
                    .collect()
            };
            (out, events)
        };
        if hooked {
            for event in &events {
                self.hooks.deliver(&event.name, event.payload.clone());
            }
        }
        (out, events)
    }
}
