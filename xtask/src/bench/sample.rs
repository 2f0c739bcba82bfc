//! One sample of the benchmark: what a timed run must have cost GitHub to count (a hit reaches
//! nobody, a miss reaches GitHub), the untimed run that fills the caches first, and the machine
//! the figures were measured on.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::json;

use crate::sandbox::Machine;

/// What a sample must have cost GitHub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// Answered without a request to GitHub: a hit.
    NoRequest,
    /// At least one request reached GitHub: a miss.
    Request,
    /// Not checked (gh's own commands).
    Any,
}

/// The realistic latency of a GitHub round trip for the second block.
pub(super) const REAL_LATENCY: Duration = Duration::from_millis(150);

/// One untimed run of a contender before its samples, which fills the caches it reads (this
/// machine's, and gh's own for `gh api --cache`); fails unless it succeeds.
pub(super) fn prime(on: &Machine, name: &str, program: &Path, args: &[&str]) -> Result<()> {
    let (out, _) = on.time(program, args)?;
    if !out.status.success() {
        bail!("{name} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// One timed sample of a contender: `on`'s cache emptied first (untimed) when `clear_first`;
/// fails unless the run succeeds and reaches GitHub as `expect` says, so that a sample measures
/// what its contender names.
pub(super) fn sample(
    github: &fake_github::FakeGithub,
    on: &Machine,
    name: &str,
    program: &Path,
    args: &[&str],
    clear_first: bool,
    expect: Expect,
) -> Result<Duration> {
    if clear_first {
        on.command(on.ghcache_bin())
            .args(["clear", "--all"])
            .output()?;
    }
    let before = github.request_count();
    let (out, took) = on.time(program, args)?;
    if !out.status.success() {
        bail!("{name} failed during the run");
    }
    let reached = github.request_count() != before;
    match expect {
        Expect::NoRequest if reached => {
            bail!("a `{name}` sample reached GitHub: it was not a hit")
        }
        Expect::Request if !reached => {
            bail!("a `{name}` sample did not reach GitHub: it was not a miss")
        }
        _ => {}
    }
    Ok(took)
}

pub(super) fn machine_info(gh: &Path) -> serde_json::Value {
    let text = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .unwrap_or_default()
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "kernel": text("uname", &["-r"]),
        "gh": text(&gh.display().to_string(), &["--version"]),
        "rustc": text("rustc", &["--version"]),
    })
}
