//! The remote hits as users meet them, beside the bench's one key read again and again: each
//! sample reads an entry its machine never read before, so nothing the reader's daemon or
//! process learnt from an earlier sample (a provider, a warm path, a fence) helps it.
//!
//! - p2p: A fetched every entry; B, whose daemon is connected to A's and follows the scope,
//!   reads each once.
//! - IPFS without a daemon: A fetched every entry into a shared IPFS node; B, with that node
//!   and the swarm key but no daemon (a late runner), reads each once.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use ghcache_tests::wait_until;

use super::sample::prime;
use crate::sandbox::{Daemon, Listen, Machine};

pub(super) const P2P_FIRST_READ: &str = "ghcache p2p first read (a new entry each sample)";
pub(super) const IPFS_FIRST_READ_NO_DAEMON: &str =
    "ghcache ipfs first read, no daemon (a new entry each sample)";

/// Written in a contender's arguments, replaced by the sample's number: each sample names an
/// entry of its own.
pub(super) const NTH: &str = "{n}";
/// The repositories the p2p first reads ask about, one per sample.
pub(super) const P2P_REPO: &str = "o/first-p2p-{n}";
/// The repositories the IPFS first reads ask about, one per sample.
pub(super) const IPFS_REPO: &str = "o/first-ipfs-{n}";

/// `args` for sample `n`: every [`NTH`] replaced by `n`.
pub(super) fn nth(args: &[&str], n: usize) -> Vec<String> {
    args.iter()
        .map(|a| a.replace(NTH, &n.to_string()))
        .collect()
}

/// How long the setup waits for what a fetch set off elsewhere (an announcement, an add to
/// IPFS).
const WAIT: Duration = Duration::from_secs(30);

/// Fails naming `what` was waited for, unless it came.
fn waited(what: &str, came: bool) -> Result<()> {
    if !came {
        bail!("waited {} s for {what}", WAIT.as_secs());
    }
    Ok(())
}

/// `ghcache <args>` on `on`, untimed; fails unless it succeeds.
fn fetch(on: &Machine, args: &[String]) -> Result<()> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    prime(on, &args.join(" "), on.ghcache_bin(), &args)
}

/// The command each first read runs, for the repository pattern `repo`.
pub(super) fn command(repo: &'static str) -> Vec<&'static str> {
    vec!["gh", "repo", "view", repo, "--json", "name"]
}

/// The readers of both scenarios, ready for samples `0..=samples` (0 is the untimed priming
/// run); the daemons they need live as long as this.
pub(super) struct FirstReads {
    pub p2p_reader: Machine,
    pub ipfs_reader: Machine,
    _p2p_reader_daemon: Daemon,
}

/// The machine that fetches the p2p entries, and where its daemon listens.
pub(super) struct Holder<'a> {
    pub machine: &'a Machine,
    pub addr: &'a str,
}

/// Sets both scenarios up: `holder` fetches the p2p entries after the p2p reader follows their
/// scope; a fetcher without a daemon fills the IPFS node at `ipfs_api` and the index there,
/// then leaves.
pub(super) fn prepare(
    root: &Path,
    github: &fake_github::FakeGithub,
    ghcache: &Path,
    key: &Path,
    ipfs_api: &str,
    Holder {
        machine: holder,
        addr: holder_addr,
    }: Holder<'_>,
    samples: usize,
) -> Result<FirstReads> {
    let p2p_reader = Machine::new(root, "first-p2p-reader", github, ghcache)?;
    let daemon = p2p_reader.start_daemon(key, Listen::Loopback, &["--bootstrap", holder_addr])?;
    daemon.expect_peers(1)?;
    // The reader's daemon follows the scope's announcements once a command of that scope ran
    // there: the priming entry, fetched by the holder first.
    fetch(holder, &nth(&command(P2P_REPO), 0))?;
    fetch(&p2p_reader, &nth(&command(P2P_REPO), 0))?;
    let heard = daemon.counters().announcements_received;
    for n in 1..=samples {
        fetch(holder, &nth(&command(P2P_REPO), n))?;
    }
    waited(
        "the p2p reader's daemon to hear the holder's announcements",
        wait_until(WAIT, || {
            daemon.counters().announcements_received >= heard + samples as u64
        }),
    )?;

    let mut ipfs_fetcher = Machine::new(root, "first-ipfs-fetcher", github, ghcache)?;
    let mut ipfs_reader = Machine::new(root, "first-ipfs-reader", github, ghcache)?;
    for m in [&mut ipfs_fetcher, &mut ipfs_reader] {
        m.set_env("GH_CACHE_IPFS", "1");
        m.set_env("GH_CACHE_IPFS_API", ipfs_api);
        m.set_env("GH_CACHE_SCOPE", "bench-ipfs-first-reads");
        m.set_env("GH_CACHE_SWARM_KEY_FILE", &key.display().to_string());
    }
    // Only the commands' answers in the fetcher's cache (none of gh's own requests), so that
    // its count of entries in IPFS counts them.
    ipfs_fetcher.set_env("GH_CACHE_HTTP", "0");
    for n in 0..=samples {
        fetch(&ipfs_fetcher, &nth(&command(IPFS_REPO), n))?;
        // Each fetch adds its answer to IPFS in a detached `ghcache ipfs-store`; one at a time,
        // so that the node is not asked to add dozens at once.
        waited(
            "the IPFS fetcher's answer to be in IPFS",
            wait_until(WAIT, || {
                ipfs_fetcher
                    .try_stats()
                    .ok()
                    .and_then(|s| s["ipfs_entries"].as_u64())
                    .is_some_and(|stored| stored > n as u64)
            }),
        )?;
    }
    Ok(FirstReads {
        p2p_reader,
        ipfs_reader,
        _p2p_reader_daemon: daemon,
    })
}
