//! How the replay with outside writes lets its configurations hear GitHub's own writes, and
//! checks what they printed: the keeper's webhook and follow, each job's triggering event and
//! the longer freshness of heard writes; and, after a replay, every answer against GitHub's
//! ([`super::stale`]).

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use fake_github::{Event, FakeGithub};
use ghcache_core::policy::TtlClass;

use super::outcome::Setup;
use super::stale::{self, Read, Verdict};
use crate::sandbox::{Daemon, Machine};

/// The keeper's own token, which its follow probes carry: they are told from the jobs'
/// requests by it.
pub const KEEPER_TOKEN: &str = "ghp_fleetkeeper0follows";

/// The secret of the webhook GitHub delivers to the keeper.
const WEBHOOK_SECRET: &str = "the fleet's webhook secret";

/// How often the keeper follows (`--follow-every`). Short, so that the replay's few minutes see
/// it work: a real keeper's default is a minute. Each round costs five conditional requests per
/// repository the swarm asked about, which GitHub answers 304 while nothing changed.
pub const FOLLOW_EVERY: &str = "5s";

/// Sets up the seed machine of a keeper configuration (the webhook's secret; to follow, a token
/// of its own; the heard TTLs) and returns the flags its daemon starts with.
pub fn keeper(seed: &mut Machine, setup: Setup) -> Vec<&'static str> {
    let mut flags = vec!["--keep"];
    if setup.webhook() {
        seed.set_env("GH_CACHE_WEBHOOK_SECRET", WEBHOOK_SECRET);
        flags.extend(["--webhook", "127.0.0.1:0"]);
    }
    if setup.follow() {
        seed.set_env("GH_TOKEN", KEEPER_TOKEN);
        flags.extend(["--follow", "--follow-every", FOLLOW_EVERY]);
    }
    heard_ttls(seed, setup);
    flags
}

/// Points GitHub's webhook at the keeper's (`webhook on ADDR` in its status).
pub fn connect_webhook(github: &FakeGithub, keeper: &Daemon) -> Result<()> {
    let status = keeper.status();
    let addr = status
        .write_sources
        .iter()
        .find_map(|s| s.name.strip_prefix("webhook on "))
        .with_context(|| format!("the keeper names no webhook: {}", keeper.log()))?;
    github.set_webhook(Some(&format!("http://{addr}/")), WEBHOOK_SECRET.as_bytes());
    Ok(())
}

/// Sets `m` up for job `job` of run `run` of `repo`, as GitHub Actions does: the run's
/// variables and, where `setup` applies it, the event that started the run, written where
/// `GITHUB_EVENT_PATH` says as GitHub writes it.
pub fn enter_job(
    m: &mut Machine,
    setup: Setup,
    (job, run, repo): (usize, usize, &str),
    event: Option<&Event>,
) -> Result<()> {
    heard_ttls(m, setup);
    let Some(event) = event.filter(|_| setup.event()) else {
        return Ok(());
    };
    let path = m.home.join(format!("event-{job}.json"));
    std::fs::write(&path, serde_json::to_vec(&event.payload)?)
        .with_context(|| format!("writing {}", path.display()))?;
    for (name, value) in [
        ("GITHUB_ACTIONS", "true".to_owned()),
        ("GITHUB_REPOSITORY", repo.to_owned()),
        ("GITHUB_RUN_ID", (run + 1).to_string()),
        ("GITHUB_RUN_ATTEMPT", "1".to_owned()),
        ("GITHUB_JOB", "build".to_owned()),
        ("GITHUB_EVENT_NAME", event.name.clone()),
        ("GITHUB_EVENT_PATH", path.display().to_string()),
    ] {
        m.set_env(name, &value);
    }
    Ok(())
}

/// The longer freshness of answers whose writes are heard, per class
/// (`GH_CACHE_HEARD_TTL_<CLASS>`), where `setup` has it: the settings' defaults, set explicitly
/// so that the configuration measures them whatever a machine's settings say.
fn heard_ttls(m: &mut Machine, setup: Setup) {
    if setup.heard_ttl() {
        for class in TtlClass::ALL {
            let name = format!("GH_CACHE_HEARD_TTL_{}", class.name().to_ascii_uppercase());
            m.set_env(&name, &format!("{}s", class.default_heard_ttl().as_secs()));
        }
    }
}

/// The verdict on each read of a replay against `github`, whose history it kept: plain gh
/// (`gh`) asks a fake GitHub of its own, restored to each moment needed.
pub fn check(
    github: &FakeGithub,
    reads: &[Read],
    dir: &Path,
    gh: &Path,
    ghcache: &Path,
) -> Result<Vec<Verdict>> {
    let history = github.history();
    let moments: Vec<stale::Moment> = history.iter().map(|s| (s.at, s.repos.clone())).collect();
    let oracle = FakeGithub::start()?;
    let m = Machine::new(dir, "oracle", &oracle, ghcache)?;
    let started = Instant::now();
    let verdicts = stale::judge(reads, &moments, |i, argv| {
        oracle.restore(&history[i]);
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let (out, _) = m.time(gh, &args)?;
        if !out.status.success() {
            bail!(
                "`gh {}` failed against the world as it was: {}",
                argv.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out.stdout)
    })?;
    eprintln!(
        "fleet replay: checked {} answers against GitHub's in {:.1} s ({} requests)",
        reads.len(),
        started.elapsed().as_secs_f64(),
        oracle.request_count()
    );
    Ok(verdicts)
}
