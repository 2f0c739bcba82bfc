//! GitHub's rate limits at the output level (see `ghcache_core::budget`): when the principal
//! that gh will ask as is short (a secondary limit paused it, or what is left is at the
//! reserve), a command's stale answer within `max_stale` is served rather than gh run. The
//! HTTP level keeps the book and waits out pauses; this only reads it, and shows it as
//! `ghcache stats` and `ghcache daemon status` print it.

use ghcache_core::budget::{BookStore as _, Principal, Summary};
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

/// The lines that show the budgets of `summaries` as of `now_ms`: per principal, each resource
/// that `shown` picks whose window is on (what is left of how many, when it resets), and a
/// pause not over yet (for how long). Empty when there is nothing to show.
pub(crate) fn lines(
    summaries: &[Summary],
    now_ms: u64,
    shown: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for summary in summaries {
        let principal = &summary.principal;
        for (resource, b) in summary.current(now_ms).filter(|(r, _)| shown(r)) {
            out.push(format!(
                "{principal} {resource}: {} of {} left, resets in {}",
                b.remaining,
                b.limit,
                show_seconds(b.resets_in_s(now_ms))
            ));
        }
        if let Some(until_ms) = summary.paused_at(now_ms) {
            out.push(format!(
                "{principal}: paused by a secondary limit for {} more",
                show_seconds(until_ms.saturating_sub(now_ms).div_ceil(1000))
            ));
        }
    }
    out
}

/// `90` as `1m30s`.
fn show_seconds(seconds: u64) -> String {
    match (seconds / 60, seconds % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use ghcache_core::budget::{Book, Pause, Reading};

    use super::*;

    #[test]
    fn lines_show_windows_still_on_and_pauses_not_over() {
        let mut book = Book::default();
        let (Some(token), Some(repo)) = (
            Principal::parse("token:0123456789abcdef"),
            Principal::parse("repo:o/r"),
        ) else {
            panic!("the principals parse");
        };
        for (resource, remaining, reset_s) in [
            ("core", 4990, 3_600),
            ("search", 29, 3_600),
            ("graphql", 9, 10),
        ] {
            let reading = Reading {
                resource: resource.to_owned(),
                limit: 5000,
                remaining,
                used: 5000 - remaining,
                reset_s,
                at_ms: 1_000,
            };
            book.observe(&token, reading);
        }
        let pause = Pause {
            since_ms: 1_000,
            until_ms: 110_000,
            strikes: 0,
        };
        book.pause(&repo, pause);
        let summaries = book.summaries();
        let now = 20_000;
        assert_eq!(
            lines(&summaries, now, |_| true),
            [
                "repo:o/r: paused by a secondary limit for 1m30s more",
                "token:0123456789abcdef core: 4990 of 5000 left, resets in 59m40s",
                "token:0123456789abcdef search: 29 of 5000 left, resets in 59m40s",
            ]
        );
        let hourly = lines(&summaries, now, |r| r == "core");
        assert_eq!(hourly.len(), 2, "{hourly:?}");
        assert!(lines(&summaries, 4_000_000, |_| true).is_empty());
    }
}
