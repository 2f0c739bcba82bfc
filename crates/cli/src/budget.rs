//! GitHub's rate limits at the output level (see `ghcache_core::budget`): when the principal
//! that gh will ask as is short (a secondary limit paused it, or what is left is at the
//! reserve), a command's stale answer within `max_stale` is served rather than gh run. The
//! HTTP level keeps the book and waits out pauses; this only reads it.

use ghcache_core::budget::{BookStore as _, Principal};
use ghcache_core::{now_ms, Request};
use ghcache_tier_local as local;

use crate::config::{Config, Env};
use crate::context;

/// Who GitHub will count gh's requests for `host` against.
pub(crate) fn principal(env: Env<'_>, host: &str) -> Principal {
    let job = context::declared_job_token(env, host);
    Principal::of(
        context::token_hash(env, host).as_ref(),
        job.as_ref().map(|(token, repo)| (token, repo.as_str())),
    )
}

/// Marks `request` to prefer a stale answer when the book in cache dir `dir` says its
/// principal is short.
pub(crate) fn prefer_stale(
    config: &Config,
    dir: &std::path::Path,
    env: Env<'_>,
    request: &mut Request,
) {
    let book = local::BookFile::in_dir(dir).load();
    let principal = principal(env, &request.input.host);
    let now = now_ms();
    if let Some(shortage) = book.short(&principal, config.rate_limit_reserve.value, now) {
        request.prefer_stale = Some(shortage.reason(now));
    }
}
