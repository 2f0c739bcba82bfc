//! The event that started a GitHub Actions job, applied as a write before the job's first answer.
//!
//! A job runs because something changed on GitHub (a push, an edited pull request, a comment):
//! answers cached before that, here or by any peer, may be out of date (DESIGN.md invariant 6).
//! So the first `ghcache gh` of a job moves the local fence of what the event can change
//! (core's [`ghcache_core::event`] table), as of the event's own time. The
//! fence then refuses this machine's entries of those classes outright and, by the rule that
//! holds for every peer's entry, whatever other runners, the keeper or IPFS made before the event.
//!
//! Once per job: a marker file in the cache directory, named by the job's run, attempt and job
//! id, says it was done. Outside Actions this costs one environment read; in a job, after the
//! first command, one `stat`.

use std::io::Read as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ghcache_core::event::{Trigger, PAYLOAD_MAX};
use ghcache_core::{now_ms, Selector};
use ghcache_tier_local as local;

use crate::config::{Config, Env};
use crate::session::{runtime, Session};
use crate::tiers::local_config;

/// Directory of the markers of jobs whose event was applied, inside the cache directory.
const MARKERS: &str = "events";

/// How long a marker is kept: longer than any job runs (GitHub stops a job on a self-hosted
/// runner after 5 days), so a job never applies its event twice, and a long-lived runner's
/// markers do not pile up.
const MARKER_KEPT: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Applies the triggering event of the GitHub Actions job this command runs in, once per job.
///
/// # Behavior
/// Nothing outside Actions (`GITHUB_ACTIONS` not `true`), and nothing where no event is named
/// (`GITHUB_EVENT_NAME` or `GITHUB_EVENT_PATH` unset or empty: GitHub sets both in every job, so
/// only a job imitated by hand lacks them, and there is no event to apply). A payload that
/// cannot be read (no file, too big, not JSON) drops everything of `GITHUB_REPOSITORY` as of the
/// job's start, with a debug line. The marker is written only once the fence has moved, so a
/// job whose first attempt could not record it tries again on its next command.
pub(crate) fn apply_once(config: &Config, env: Env<'_>, session: &Session) {
    if env("GITHUB_ACTIONS").as_deref() != Some("true") {
        return;
    }
    let named = |var| env(var).filter(|value| !value.trim().is_empty());
    let (Some(name), Some(path)) = (named("GITHUB_EVENT_NAME"), named("GITHUB_EVENT_PATH")) else {
        return;
    };
    let Ok(dir) = config.cache_dir() else {
        return;
    };
    let marker = marker_path(dir, env);
    if std::fs::symlink_metadata(&marker).is_ok() {
        return;
    }
    let repository = env("GITHUB_REPOSITORY").unwrap_or_default();
    let payload = read_payload(Path::new(&path));
    let trigger = match &payload {
        Ok(payload) => Trigger::of(&name, Some(payload), &repository),
        Err(why) => {
            session.note(&format!(
                "the {name} event's payload cannot be read ({why}); dropping everything of \
                 {repository} cached before the job"
            ));
            Trigger::unreadable(&repository)
        }
    };
    let now = now_ms();
    // A payload's time ahead of ours is a clock apart: never fence later than now. Not moved
    // back by the clock skew: the rule for peers' entries already refuses those made up to the
    // skew after the fence, which covers a producer whose clock runs ahead of GitHub's; a fence
    // set earlier would let an answer fetched just before the event through.
    let at_ms = trigger.at_ms.unwrap_or(now).min(now);
    // No repository known: everything, as for a write whose repository is not proven.
    let selectors: Vec<Selector> = match trigger.repos.as_slice() {
        [] => vec![Selector::All],
        repos => repos
            .iter()
            .map(|repo| Selector::of_write(repo, trigger.changes))
            .collect(),
    };
    let Ok(rt) = runtime() else { return };
    let applied = rt.block_on(async {
        let tier = local::Tier::open(local_config(dir, config)).await;
        let mut applied = true;
        for selector in &selectors {
            let dropped = match &tier {
                Ok(tier) => tier
                    .invalidate_at(selector, at_ms)
                    .await
                    .map_err(|e| e.to_string()),
                Err(_) => local::Fences::new(dir)
                    .invalidate_at(selector, at_ms)
                    .map(|_| 0)
                    .map_err(|e| e.to_string()),
            };
            match dropped {
                Ok(n) => session.debug(
                    &format!(
                        "{name} event; dropped {n} cached entries of {}",
                        about(selector)
                    ),
                    "-",
                ),
                Err(err) => {
                    applied = false;
                    session.warn(&format!(
                        "could not record the {name} event that started this job in the cache \
                         ({err}); cached answers may be older than it"
                    ));
                }
            }
        }
        // A directory the local tier refused is not written to (it may not be a cache): the
        // event is then applied again on the job's next command, which costs only fetches.
        let opened = tier.is_ok();
        if let Ok(tier) = tier {
            tier.close().await;
        }
        applied && opened
    });
    if applied {
        let _ = write_marker(&marker);
    }
}

/// What a selector covers, for the debug line.
fn about(selector: &Selector) -> &str {
    match selector {
        Selector::Repo(repo) | Selector::Resources { repo, .. } => repo,
        Selector::Key(_) | Selector::All => "every repository",
    }
}

/// The marker of this job: a hash of what tells one job's attempt from another.
fn marker_path(dir: &Path, env: Env<'_>) -> PathBuf {
    let mut hasher = blake3::Hasher::new_derive_key("ghcache triggering event v1");
    for var in [
        "GITHUB_REPOSITORY",
        "GITHUB_RUN_ID",
        "GITHUB_RUN_ATTEMPT",
        "GITHUB_JOB",
        "GITHUB_EVENT_NAME",
        "GITHUB_EVENT_PATH",
    ] {
        let value = env(var).unwrap_or_default();
        hasher.update(&(value.len() as u64).to_le_bytes());
        hasher.update(value.as_bytes());
    }
    let hex = hasher.finalize().to_hex();
    dir.join(MARKERS).join(&hex[..32])
}

/// Writes `marker`, and removes the markers of jobs that ended long ago.
fn write_marker(marker: &Path) -> std::io::Result<()> {
    if let Some(parent) = marker.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
        for entry in std::fs::read_dir(parent)?.flatten() {
            let old = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|at| at.elapsed().ok())
                .is_some_and(|age| age > MARKER_KEPT);
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(marker)
        .map(drop)
}

/// The payload at `path`, at most [`PAYLOAD_MAX`] bytes of it; why not, as one line.
fn read_payload(path: &Path) -> Result<serde_json::Value, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(PAYLOAD_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > PAYLOAD_MAX {
        return Err(format!(
            "{} is larger than {PAYLOAD_MAX} bytes",
            path.display()
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_that_cannot_be_read_say_why() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let missing = dir.path().join("missing.json");
        assert!(read_payload(&missing).is_err());
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, b"{not json").unwrap_or_else(|e| panic!("{e}"));
        assert!(read_payload(&bad).is_err());
        let good = dir.path().join("good.json");
        std::fs::write(&good, br#"{"a": 1}"#).unwrap_or_else(|e| panic!("{e}"));
        assert!(read_payload(&good).is_ok());
    }
}
