//! The replay with GitHub's rate limits (`--rate-limits`): the fake GitHub enforces them as
//! GitHub does, and the trace is sized so that plain gh runs into them.
//!
//! - **The primary limit.** Every job token of a repository counts against the repository's
//!   budget (GitHub: 1,000 requests an hour for `GITHUB_TOKEN`); the replay gives each
//!   repository `--job-budget` requests (100 by default) for the trace's 3 minutes, the share of
//!   a busy fleet's hour that plain gh outruns on the busiest repository.
//! - **The secondary limits** at GitHub's values: 80 content-creating requests a minute and
//!   500 an hour, 900 points a minute, 100 requests in flight, answered with a 403 without
//!   `Retry-After` (GitHub then says to wait at least a minute).
//! - **A burst of writes**: halfway through, a release bot (a token of its own, not a job's)
//!   files `burst_writes` issues (100) one after another, as fast as its runner runs them:
//!   more than 80 in a minute when nothing spaces them.
//!
//! Per configuration, each command's result is kept ([`super::outcome::Run`]): whether it
//! failed, whether GitHub's limits refused a request of it, how long it waited for a pause,
//! and the age of a stale answer served instead of a request.

use std::time::Duration;

use serde_json::json;

use super::options::Options;
use super::outcome::{Outcome, Replayed};

/// The release bot's token: a PAT of its own, with a user's budget.
pub(super) const BOT_TOKEN: &str = "ghp_fleetreleasebot";

/// The limits the fake GitHub enforces in this replay.
pub(super) fn fake_limits(o: &Options) -> fake_github::Limits {
    fake_github::Limits {
        job_primary: o.job_budget,
        window: Duration::from_secs(3600),
        points_per_minute: Some(900),
        concurrent: Some(100),
        content_per_minute: Some(80),
        content_per_hour: Some(500),
        secondary_status: 403,
        retry_after: None,
        ..fake_github::Limits::default()
    }
}

/// The replay's table, and its figures for the JSON.
pub(super) fn table(r: &Replayed) -> serde_json::Value {
    println!(
        "\n### {} runners, GitHub's rate limits enforced\n\n| configuration | requests to \
         GitHub | refused: primary | refused: secondary | reads failed | of them for the \
         primary limit | of them answered before | writes failed | of them for a secondary limit | waited for a pause | stale \
         answers | stale age max | burst's writes took |\n| --- | ---: | ---: | ---: | ---: | \
         ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        r.topology.name()
    );
    let mut rows = Vec::new();
    for (setup, outcome) in &r.outcomes {
        let f = Figures::of(outcome);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ({:.0} s) | {} | {} | {:.0} s |",
            setup.name(),
            outcome.requests,
            f.refused_primary,
            f.refused_secondary,
            f.reads_failed,
            f.reads_failed_primary,
            f.reads_failed_answered_before,
            f.writes_failed,
            f.writes_failed_secondary,
            f.waits,
            f.waited_s,
            f.stale,
            f.stale_max_s.map_or("-".to_owned(), |s| format!("{s} s")),
            f.burst_s,
        );
        rows.push(json!({
            "configuration": setup.name(),
            "requests_to_github": outcome.requests,
            "refused_primary": f.refused_primary,
            "refused_secondary": f.refused_secondary,
            "reads_failed": f.reads_failed,
            "reads_failed_primary": f.reads_failed_primary,
            "reads_failed_answered_before": f.reads_failed_answered_before,
            "writes_failed": f.writes_failed,
            "writes_failed_secondary": f.writes_failed_secondary,
            "waits": f.waits,
            "waited_s": f.waited_s,
            "stale_served": f.stale,
            "stale_age_max_s": f.stale_max_s,
            "burst_writes_s": f.burst_s,
        }));
    }
    serde_json::Value::Array(rows)
}

/// One configuration's figures.
#[derive(Debug, Default)]
struct Figures {
    refused_primary: usize,
    refused_secondary: usize,
    reads_failed: usize,
    reads_failed_primary: usize,
    reads_failed_answered_before: usize,
    writes_failed: usize,
    writes_failed_secondary: usize,
    waits: usize,
    waited_s: f64,
    stale: usize,
    stale_max_s: Option<u64>,
    burst_s: f64,
}

impl Figures {
    fn of(outcome: &Outcome) -> Figures {
        let runs = &outcome.runs;
        let reads = runs.iter().filter(|r| !r.write);
        let writes = runs.iter().filter(|r| r.write);
        Figures {
            refused_primary: outcome.refused.0,
            refused_secondary: outcome.refused.1,
            reads_failed: reads.clone().filter(|r| r.failed).count(),
            reads_failed_primary: reads.clone().filter(|r| r.failed && r.primary).count(),
            reads_failed_answered_before: reads
                .clone()
                .filter(|r| r.failed && r.answered_before)
                .count(),
            writes_failed: writes.clone().filter(|r| r.failed).count(),
            writes_failed_secondary: writes.filter(|r| r.failed && r.secondary).count(),
            waits: runs.iter().filter(|r| r.waited_s > 0.0).count(),
            waited_s: runs.iter().map(|r| r.waited_s).sum(),
            stale: runs.iter().filter(|r| r.stale_s.is_some()).count(),
            stale_max_s: runs.iter().filter_map(|r| r.stale_s).max(),
            burst_s: outcome.burst_ms / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::outcome::{Answered, Run};
    use super::super::trace::{burst, Step, BOT_JOB};
    use super::*;

    #[test]
    fn waits_and_stale_answers_are_read_off_stderr() {
        let mut run = Run::default();
        run.read_stderr(
            "ghcache: GitHub's secondary rate limit: waiting 2.5s before sending\n\
             ghcache: GitHub not asked (x); showing a cached answer from 41s ago\n",
        );
        assert_eq!((run.waited_s, run.stale_s), (2.5, Some(41)));
        let mut plain = Run::default();
        plain.read_stderr("HTTP 403: API rate limit exceeded\n");
        assert_eq!((plain.waited_s, plain.stale_s), (0.0, None));
    }

    #[test]
    fn the_burst_is_the_bots_and_denser_than_github_allows() {
        let o = Options {
            rate_limits: true,
            ..Options::full()
        };
        let steps = burst(&o);
        let writes = steps
            .iter()
            .filter(|(_, s)| matches!(s, Step::Run { .. }))
            .count();
        assert!(writes > 80, "{writes}");
        assert!(matches!(steps[0].1, Step::Start { job: BOT_JOB, .. }));
        assert!(steps.iter().all(|(at, _)| *at == o.span / 2));
        let mut answered = Answered::default();
        let argv = vec!["pr".to_owned(), "view".to_owned()];
        let mut first = Run::default();
        answered.book(&argv, &mut first);
        let mut second = Run {
            failed: true,
            ..Run::default()
        };
        answered.book(&argv, &mut second);
        assert!(!first.answered_before && second.answered_before);
    }
}
