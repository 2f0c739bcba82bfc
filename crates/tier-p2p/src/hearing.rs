//! Which of GitHub's writes this node hears, for its machine's commands to serve answers longer
//! (see `ghcache_core::heard`): what its own sources hear, and what connected peers vouch they
//! hear and send on this node's scopes (`wire::Vouch`, on the catch-up's reply).
//!
//! A heard write reaches this machine's cache when it is dropped here: at once for this node's
//! own sources (whatever the scope), through a peer's invalidation on a scope's topic for a
//! peer's. So a peer's cover holds here for a scope only from the latest of: its source's
//! `since`, when the peer joined the scope's topic, when this node joined it, and when this
//! node connected to the peer; and only while it stays connected, without a gap of this
//! node's, and while the peer says so again at each catch-up ([`VOUCH_FOR`]).
//!
//! What it hears is written to `p2p/heard` in the cache dir (`ghcache_core::heard::Report`):
//! atomically (a temporary file, then a rename), private to its owner, when it changes and at
//! least every `REPORT_REFRESH`. A node with a gap, or that hears nothing, removes it; so does a
//! node that stops. A node killed leaves it, and it expires by itself (`REPORT_VALID`).

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ghcache_core::cache_dir::HEARD_FILE;
use ghcache_core::heard::{Cover, Covered, Report, SourceKind, REPORT_REFRESH, REPORT_VALID};
use ghcache_core::{now_ms, ScopeId};
use libp2p::PeerId;
use tokio::time::Instant;

use crate::status::HeardStatus;
use crate::wire::Vouch;

/// How long a peer's vouch holds without being said again: two periodic catch-ups and a
/// margin. A peer that stops answering them stops extending anything here.
pub(crate) const VOUCH_FOR: Duration = Duration::from_secs(70);

/// What "by" says in the status for this node's own sources.
const OWN: &str = "this daemon";

/// A peer's vouch, and when it said it.
struct Vouched {
    vouch: Vouch,
    at: Instant,
}

/// What the report is drawn from, besides the peers' vouches.
pub(crate) struct Known<'a> {
    /// What this node's own sources hear now.
    pub(crate) own: Vec<Cover>,
    /// Whether this node has a gap: then it tells of nothing.
    pub(crate) gap: bool,
    /// Since when it has had no gap.
    pub(crate) in_touch_since_ms: u64,
    /// Since when it has joined a scope's topic, if it has.
    pub(crate) joined_since: &'a dyn Fn(&ScopeId) -> Option<u64>,
}

/// The node's state of hearing.
pub(crate) struct Hearing {
    path: PathBuf,
    /// When each connected peer connected (ms since the epoch).
    connected_since: HashMap<PeerId, u64>,
    vouches: HashMap<PeerId, Vouched>,
    /// What the file says (without its validity) and when it was written; `None`: no file.
    written: Option<(Vec<Covered>, Instant)>,
    /// The heard TTLs this machine's commands apply, by class name, for the status.
    pub(crate) ttls_ms: BTreeMap<String, u64>,
}

impl Hearing {
    /// The state of a node starting for cache dir `dir`. A file left by an earlier daemon
    /// (killed before it could remove it) is removed: nothing is heard yet.
    pub(crate) fn start(dir: &Path, ttls_ms: BTreeMap<String, u64>) -> Hearing {
        let path = crate::socket::path(dir)
            .parent()
            .map_or_else(|| dir.to_owned(), Path::to_owned)
            .join(HEARD_FILE);
        let _ = std::fs::remove_file(&path);
        Hearing {
            path,
            connected_since: HashMap::new(),
            vouches: HashMap::new(),
            written: None,
            ttls_ms,
        }
    }

    /// `peer` connected at `at_ms`.
    pub(crate) fn connected(&mut self, peer: PeerId, at_ms: u64) {
        self.connected_since.entry(peer).or_insert(at_ms);
    }

    /// Every connection to `peer` is gone: its vouch goes with it. Whether it vouched.
    pub(crate) fn gone(&mut self, peer: &PeerId) -> bool {
        self.connected_since.remove(peer);
        self.vouches.remove(peer).is_some()
    }

    /// `peer` said, at `at`, what it hears (an empty vouch takes back what it said before).
    pub(crate) fn vouched(&mut self, peer: PeerId, vouch: Vouch, at: Instant) {
        if vouch.is_empty() || !self.connected_since.contains_key(&peer) {
            self.vouches.remove(&peer);
        } else {
            self.vouches.insert(peer, Vouched { vouch, at });
        }
    }

    /// The peers whose vouch holds now, to be asked again.
    pub(crate) fn vouching(&self) -> Vec<PeerId> {
        self.vouches.keys().copied().collect()
    }

    /// Forgets the vouches not said again within [`VOUCH_FOR`] of `now`.
    fn expire(&mut self, now: Instant) {
        self.vouches
            .retain(|_, v| now.saturating_duration_since(v.at) < VOUCH_FOR);
    }

    /// What is heard, by scope: this node's own sources for every scope, then each scope a
    /// peer vouched for, covers in a stable order (so that an unchanged report is not
    /// rewritten), one per kind, repository and resources, at its earliest time.
    pub(crate) fn covered(&self, known: &Known<'_>) -> Vec<Covered> {
        if known.gap {
            return Vec::new();
        }
        let mut scopes: BTreeMap<Option<ScopeId>, BTreeMap<CoverKey, u64>> = BTreeMap::new();
        for cover in &known.own {
            let cover = cover.since_at_least(known.in_touch_since_ms);
            add(scopes.entry(None).or_default(), &cover);
        }
        for (peer, vouched) in &self.vouches {
            let Some(connected) = self.connected_since.get(peer) else {
                continue;
            };
            for (scope, peer_joined) in &vouched.vouch.scopes {
                let Some(joined) = (known.joined_since)(scope) else {
                    continue;
                };
                let since = [*peer_joined, joined, *connected, known.in_touch_since_ms]
                    .into_iter()
                    .max()
                    .unwrap_or(u64::MAX);
                let group = scopes.entry(Some(*scope)).or_default();
                for cover in &vouched.vouch.covers {
                    add(group, &cover.since_at_least(since));
                }
            }
        }
        scopes
            .into_iter()
            .filter(|(_, covers)| !covers.is_empty())
            .map(|(scope, covers)| Covered {
                scope,
                covers: covers
                    .into_iter()
                    .map(|((kind, repo, bits), since_ms)| Cover {
                        kind,
                        repo,
                        resources: ghcache_core::policy::Resources::from_bits(bits)
                            .unwrap_or_default(),
                        since_ms,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Rewrites the file when what is heard changed, or is due again by `now`; removes it when
    /// nothing is heard. Returns whether the file changed.
    pub(crate) fn refresh(&mut self, known: &Known<'_>, now: Instant) -> bool {
        self.expire(now);
        let covered = self.covered(known);
        if covered.is_empty() {
            if self.written.take().is_some() {
                crate::log::log(format_args!(
                    "writes are no longer heard: this machine's commands keep to their TTLs"
                ));
            }
            if self.path.exists() {
                let _ = std::fs::remove_file(&self.path);
                return true;
            }
            return false;
        }
        let due = match &self.written {
            Some((said, at)) => *said != covered || now.duration_since(*at) >= REPORT_REFRESH,
            None => true,
        };
        if !due {
            return false;
        }
        let report = Report {
            valid_until_ms: now_ms() + REPORT_VALID.as_millis() as u64,
            scopes: covered.clone(),
        };
        match write(&self.path, &report.encode()) {
            Ok(()) => {
                if self.written.is_none() {
                    crate::log::log(format_args!(
                        "writes are heard: this machine's commands may serve answers up to \
                         their heard TTLs"
                    ));
                }
                self.written = Some((covered, now));
            }
            // The commands then read no file, or an older one that expires: today's TTLs.
            Err(e) => {
                crate::log::log(format_args!("cannot write {}: {e}", self.path.display()));
                let _ = std::fs::remove_file(&self.path);
                self.written = None;
            }
        }
        true
    }

    /// The node stops: nothing it heard holds any more.
    pub(crate) fn stop(&mut self) {
        self.written = None;
        let _ = std::fs::remove_file(&self.path);
    }

    /// What `daemon status` says: each cover, own or a peer's, since when it holds here.
    pub(crate) fn status(&self, known: &Known<'_>) -> Vec<HeardStatus> {
        if known.gap {
            return Vec::new();
        }
        let item = |by: String, cover: &Cover, scopes: usize| HeardStatus {
            by,
            kind: cover.kind.name().to_owned(),
            repo: cover.repo.clone(),
            resources: cover
                .resources
                .iter()
                .map(|r| r.name().to_owned())
                .collect(),
            since_ms: cover.since_ms,
            scopes,
        };
        let mut out: Vec<HeardStatus> = known
            .own
            .iter()
            .map(|c| {
                item(
                    OWN.to_owned(),
                    &c.since_at_least(known.in_touch_since_ms),
                    0,
                )
            })
            .collect();
        for (peer, vouched) in &self.vouches {
            let Some(connected) = self.connected_since.get(peer) else {
                continue;
            };
            let scopes = vouched
                .vouch
                .scopes
                .iter()
                .filter(|(scope, _)| (known.joined_since)(scope).is_some())
                .count();
            if scopes == 0 {
                continue;
            }
            let since = (*connected).max(known.in_touch_since_ms);
            for cover in &vouched.vouch.covers {
                out.push(item(peer.to_string(), &cover.since_at_least(since), scopes));
            }
        }
        out
    }
}

/// A cover's identity in a report: its kind, repository and resources.
type CoverKey = (SourceKind, Option<String>, u16);

/// Adds `cover` to `group`, keeping the earliest time of covers alike.
fn add(group: &mut BTreeMap<CoverKey, u64>, cover: &Cover) {
    let key = (cover.kind, cover.repo.clone(), cover.resources.bits());
    let since = group.entry(key).or_insert(cover.since_ms);
    *since = (*since).min(cover.since_ms);
}

/// Writes `bytes` to `path` atomically, readable and writable by its owner only.
fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("new");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    drop(file);
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests;
