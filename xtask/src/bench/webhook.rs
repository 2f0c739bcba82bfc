//! GitHub's webhook to a keeper, as the runners meet it: a pull request is retitled on
//! github.com, the fake GitHub delivers the event to the keeper (`--webhook`), and each runner
//! connected to the keeper runs `ghcache gh pr list` until it prints the new title. A sample is
//! the time from the keeper's answer to the delivery to the end of the first command on that
//! runner that printed the new title (so it includes up to one command's run: an upper bound).

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use crate::sandbox::{Listen, Machine};
use crate::stats::{median, min_max, ms, percentile};

/// The runners connected to the keeper.
const RUNNERS: usize = 3;
/// How long a runner may take to print the new title before the bench calls it lost.
const GIVE_UP: Duration = Duration::from_secs(10);
const SECRET: &str = "the bench's webhook secret";
const LIST: [&str; 7] = ["gh", "pr", "list", "-R", "o/r", "--json", "number,title"];

/// Measures `rounds` deliveries, each to [`RUNNERS`] runners; the figures as JSON.
pub(super) fn measure(
    rounds: usize,
    ghcache: &std::path::Path,
    key: &std::path::Path,
    root: &std::path::Path,
) -> Result<serde_json::Value> {
    let github = fake_github::FakeGithub::start()?;
    let mut keeper = Machine::new(root, "webhook-keeper", &github, ghcache)?;
    keeper.set_env("GH_CACHE_SCOPE", "team");
    keeper.set_env("GH_CACHE_WEBHOOK_SECRET", SECRET);
    let kept = keeper.start_daemon(
        key,
        Listen::Loopback,
        &["--keep", "--webhook", "127.0.0.1:0"],
    )?;
    let status = kept.status();
    let addr = status
        .write_sources
        .first()
        .and_then(|s| s.name.strip_prefix("webhook on "))
        .context("the keeper names no webhook")?
        .to_owned();
    let mut runners = Vec::new();
    for n in 0..RUNNERS {
        let mut m = Machine::new(root, &format!("webhook-runner-{n}"), &github, ghcache)?;
        m.set_env("GH_CACHE_SCOPE", "team");
        let daemon = m.start_daemon(key, Listen::Loopback, &["--bootstrap", &kept.addr])?;
        runners.push((m, daemon));
    }
    kept.expect_peers(RUNNERS)?;
    for (m, _) in &runners {
        let out = m.command(ghcache).args(LIST).output()?;
        if !out.status.success() {
            bail!("{}: {}", m.name, String::from_utf8_lossy(&out.stderr));
        }
    }
    github.set_webhook(Some(&format!("http://{addr}/")), SECRET.as_bytes());

    let mut samples = Vec::new();
    for round in 0..rounds {
        let title = format!("Retitled in round {round}");
        github.retitle_pr("o/r", 2, &title);
        let delivered = github.wait_deliveries(round + 1, GIVE_UP);
        let delivery = delivered.last().context("no delivery")?;
        if delivery.status != Some(202) {
            bail!(
                "the keeper answered the delivery {:?}: {}",
                delivery.status,
                kept.log()
            );
        }
        let answered = delivery
            .answered_at
            .context("the delivery was not answered")?;
        // Round robin, so that no runner waits for another's polls.
        let mut waiting: Vec<usize> = (0..RUNNERS).collect();
        while !waiting.is_empty() {
            if answered.elapsed() > GIVE_UP {
                bail!(
                    "runners {waiting:?} still print the old title {GIVE_UP:?} after the delivery"
                );
            }
            waiting.retain(|&n| {
                let (m, _) = &runners[n];
                let printed = m
                    .command(ghcache)
                    .args(LIST)
                    .output()
                    .map(|out| String::from_utf8_lossy(&out.stdout).contains(&title));
                let seen = Instant::now();
                if matches!(printed, Ok(true)) {
                    samples.push(ms(seen.duration_since(answered)));
                    false
                } else {
                    true
                }
            });
        }
    }
    let within = samples.iter().filter(|&&s| s <= 1000.0).count();
    let (min, max) = min_max(&samples);
    println!(
        "webhook to {RUNNERS} runners, {rounds} deliveries: new answer printed after median \
         {:.0} ms, p95 {:.0} ms, max {max:.0} ms; {within} of {} within 1 s",
        median(&samples),
        percentile(&samples, 0.95),
        samples.len()
    );
    Ok(json!({
        "runners": RUNNERS,
        "deliveries": rounds,
        "samples": samples.len(),
        "within_1s": within,
        "ms": {
            "min": min,
            "median": median(&samples),
            "p95": percentile(&samples, 0.95),
            "max": max,
        },
        "raw_ms": samples,
    }))
}
