//! Invalidations must arrive (DESIGN.md, "GitHub's own writes"): what this node saw lately, so
//! that it can tell a peer that was away what it missed, and the gap this node itself has to
//! close after it was away.
//!
//! Gossip reaches the peers connected when it goes out. A daemon that was stopped (a laptop
//! asleep, a runner restarting) or cut off until its connections died missed the writes made
//! meanwhile, and its copies from before them would be served for the rest of their TTL. So:
//! - every node keeps the invalidations it saw (bounded: [`RECENT`]), with the time since
//!   which that record is complete;
//! - a node that was away (its last time in touch with the swarm is kept in the cache dir
//!   across restarts; losing every connection starts a gap too) asks the peers it connects to,
//!   for the scopes it follows, for what came since, and applies what it did not see;
//! - only an answer complete for the whole gap closes it. A node that gets none within
//!   [`DEADLINE`] of connecting drops every copy it holds instead: it cannot know which of
//!   them a write it missed made out of date;
//! - while connected, it asks again every [`EVERY`], for what a live connection may still
//!   have lost.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ghcache_core::{now_ms, ScopeId};

use crate::wire::{CatchUp, CaughtUp, Invalidation, Vouch};

/// Invalidations a node keeps to tell peers that were away: a busy fleet's writes of a few
/// hours; past this the oldest go, and the record is complete only from the newest gone.
pub(crate) const RECENT: usize = 4096;
/// How long a node that came back waits for a complete answer after its first connection
/// before it drops its copies instead.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);
/// How often a connected node asks a peer for what it may have missed, and writes down that
/// it was in touch.
pub(crate) const EVERY: Duration = Duration::from_secs(30);

/// The file, in the daemon's directory, holding the last time (ms since the epoch) the node
/// was known to hear the swarm.
const IN_TOUCH_FILE: &str = "in-touch";

/// One invalidation as the record tells it from another.
type Seen = (ScopeId, String, u16, u64);

fn seen_key(invalidation: &Invalidation) -> Seen {
    (
        invalidation.scope_id,
        invalidation.repo.clone(),
        invalidation
            .resources
            .map_or(u16::MAX, ghcache_core::policy::Resources::bits),
        invalidation.at_ms,
    )
}

/// The invalidations this node saw lately, oldest first.
pub(crate) struct Recent {
    records: VecDeque<Invalidation>,
    seen: HashSet<Seen>,
    /// The record holds every invalidation this node could hear dated from then on (its start,
    /// or the newest one that went for room, or when it last dropped its copies).
    complete_since_ms: u64,
}

impl Recent {
    /// An empty record, complete from `now_ms` (the node's start).
    pub(crate) fn new(now_ms: u64) -> Recent {
        Recent {
            records: VecDeque::new(),
            seen: HashSet::new(),
            complete_since_ms: now_ms,
        }
    }

    /// Records `invalidation`; `false` when it was recorded already (heard twice, or on two
    /// scopes' topics).
    pub(crate) fn insert(&mut self, invalidation: &Invalidation) -> bool {
        if !self.seen.insert(seen_key(invalidation)) {
            return false;
        }
        if self.records.len() >= RECENT {
            if let Some(oldest) = self.records.pop_front() {
                self.seen.remove(&seen_key(&oldest));
                self.complete_since_ms = self.complete_since_ms.max(oldest.at_ms);
            }
        }
        self.records.push_back(invalidation.clone());
        true
    }

    /// The answer to `request`. `gap_from_ms`: this node's own gap, if it has one: then it
    /// vouches for nothing (its record has a hole from then until it catches up).
    pub(crate) fn answer(
        &self,
        request: &CatchUp,
        gap_from_ms: Option<u64>,
        now_ms: u64,
    ) -> CaughtUp {
        let scopes: HashSet<&ScopeId> = request.scopes.iter().collect();
        let mut invalidations: Vec<Invalidation> = self
            .records
            .iter()
            .filter(|i| i.at_ms >= request.since_ms && scopes.contains(&i.scope_id))
            .cloned()
            .collect();
        invalidations.sort_by_key(|i| i.at_ms);
        CaughtUp {
            complete_since_ms: match gap_from_ms {
                Some(_) => now_ms,
                None => self.complete_since_ms,
            },
            invalidations,
            vouch: Vouch::default(),
        }
    }

    /// This node dropped every copy it held at `now_ms` (it could not catch up): it can vouch
    /// for nothing before then.
    pub(crate) fn restart_at(&mut self, now_ms: u64) {
        self.complete_since_ms = self.complete_since_ms.max(now_ms);
    }
}

/// A gap this node has to close: it was not in touch with the swarm from `from_ms` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gap {
    pub(crate) from_ms: u64,
    /// When it must be closed: set at the first connection after it opened.
    pub(crate) deadline: Option<tokio::time::Instant>,
}

impl Gap {
    /// A gap from `from_ms`, with no connection yet.
    pub(crate) fn from(from_ms: u64) -> Gap {
        Gap {
            from_ms,
            deadline: None,
        }
    }

    /// Whether `answer`, to a request since `since_ms`, covers it.
    pub(crate) fn closed_by(since_ms: u64, answer: &CaughtUp) -> bool {
        answer.complete_since_ms <= since_ms
    }
}

/// Where the last time in touch is kept for `dir` (the daemon's cache dir).
pub(crate) fn in_touch_path(dir: &Path) -> PathBuf {
    crate::socket::path(dir)
        .parent()
        .map_or_else(|| dir.to_owned(), Path::to_owned)
        .join(IN_TOUCH_FILE)
}

/// The last time in touch written for this cache dir; `None` when none was (a first start:
/// nothing was heard before, so nothing can have been missed).
pub(crate) fn read_in_touch(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Writes down that the node was in touch at `at_ms`. A failure costs only a catch-up from
/// an earlier time at the next start.
pub(crate) fn write_in_touch(path: &Path, at_ms: u64) {
    let temporary = path.with_extension("new");
    if std::fs::write(&temporary, at_ms.to_string()).is_ok() {
        let _ = std::fs::rename(&temporary, path);
    }
}

/// Why a catch-up was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// To close the node's gap.
    Gap,
    /// The periodic ask, for what a live connection may have lost.
    Periodic,
    /// For what the peer hears of GitHub's writes (its vouch), on connecting and again while
    /// connected: the invalidations it brings are applied as any others.
    Hearing,
}

/// A catch-up request in flight.
pub(crate) struct Asked {
    pub(crate) since_ms: u64,
    pub(crate) why: Why,
    /// When it was asked (ms since the epoch): a periodic ask that is answered moves the next
    /// one's start here; one that failed leaves it, so that its window is asked again.
    pub(crate) at_ms: u64,
}

/// The node's catch-up state.
pub(crate) struct CatchUpState {
    pub(crate) recent: Recent,
    pub(crate) gap: Option<Gap>,
    /// Since when (ms since the epoch) the node has had no gap: it started without one, or
    /// closed its last. What it hears of GitHub's writes is vouched for only from then on.
    pub(crate) in_touch_since_ms: u64,
    pub(crate) asked: std::collections::HashMap<libp2p::request_response::OutboundRequestId, Asked>,
    /// When the periodic catch-up last asked, and from when the next asks.
    pub(crate) last_periodic: tokio::time::Instant,
    pub(crate) periodic_from_ms: u64,
    pub(crate) in_touch: std::path::PathBuf,
    pub(crate) bootstrap: Vec<libp2p::Multiaddr>,
    pub(crate) last_redial: Option<tokio::time::Instant>,
    /// Peers whose connection was closed because it stopped answering pings.
    pub(crate) cut_off: std::collections::HashSet<libp2p::PeerId>,
    /// Which of GitHub's writes the node hears, told to its machine's commands.
    pub(crate) hearing: crate::hearing::Hearing,
}

impl CatchUpState {
    /// The state of a node starting now for cache dir `dir`: a gap from the last time it was
    /// in touch, if it ever was. `heard_ttl_ms`: the heard TTLs, for the status.
    pub(crate) fn start(
        dir: &std::path::Path,
        bootstrap: Vec<libp2p::Multiaddr>,
        heard_ttl_ms: std::collections::BTreeMap<String, u64>,
    ) -> Self {
        let in_touch = in_touch_path(dir);
        let now = now_ms();
        CatchUpState {
            recent: Recent::new(now),
            gap: read_in_touch(&in_touch).map(Gap::from),
            in_touch_since_ms: now,
            asked: std::collections::HashMap::new(),
            last_periodic: tokio::time::Instant::now(),
            periodic_from_ms: now,
            in_touch,
            bootstrap,
            last_redial: Some(tokio::time::Instant::now()),
            cut_off: std::collections::HashSet::new(),
            hearing: crate::hearing::Hearing::start(dir, heard_ttl_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalidation(scope: u8, repo: &str, at_ms: u64) -> Invalidation {
        Invalidation {
            scope_id: ScopeId([scope; 32]),
            repo: repo.into(),
            resources: None,
            at_ms,
        }
    }

    fn ask(since_ms: u64, scopes: &[u8]) -> CatchUp {
        CatchUp {
            since_ms,
            scopes: scopes.iter().map(|s| ScopeId([*s; 32])).collect(),
        }
    }

    #[test]
    fn an_answer_holds_the_named_scopes_since_the_time_asked_oldest_first() {
        let mut recent = Recent::new(100);
        assert!(recent.insert(&invalidation(1, "o/b", 300)));
        assert!(recent.insert(&invalidation(1, "o/a", 200)));
        assert!(recent.insert(&invalidation(2, "o/secret", 250)));
        assert!(!recent.insert(&invalidation(1, "o/a", 200)), "once");
        let answer = recent.answer(&ask(150, &[1]), None, 1000);
        let repos: Vec<&str> = answer
            .invalidations
            .iter()
            .map(|i| i.repo.as_str())
            .collect();
        assert_eq!(repos, ["o/a", "o/b"], "scope 2's writes stay on scope 2");
        assert!(Gap::closed_by(150, &answer));
        assert!(!Gap::closed_by(50, &answer), "the node started after 50");
        assert_eq!(
            recent
                .answer(&ask(250, &[1]), None, 1000)
                .invalidations
                .len(),
            1
        );
    }

    #[test]
    fn a_node_with_a_gap_of_its_own_vouches_for_nothing() {
        let recent = Recent::new(100);
        let answer = recent.answer(&ask(150, &[1]), Some(500), 1000);
        assert!(!Gap::closed_by(150, &answer));
    }

    #[test]
    fn the_record_is_complete_only_from_the_newest_that_went_for_room() {
        let mut recent = Recent::new(0);
        for n in 0..RECENT as u64 + 2 {
            recent.insert(&invalidation(1, "o/r", 10 + n));
        }
        let answer = recent.answer(&ask(0, &[1]), None, 1 << 40);
        assert_eq!(answer.invalidations.len(), RECENT);
        assert_eq!(answer.complete_since_ms, 11);
        assert!(!Gap::closed_by(10, &answer));
        assert!(Gap::closed_by(11, &answer));
        recent.restart_at(5000);
        assert!(!Gap::closed_by(
            4000,
            &recent.answer(&ask(4000, &[1]), None, 6000)
        ));
    }

    #[test]
    fn the_time_in_touch_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join(IN_TOUCH_FILE);
        assert_eq!(read_in_touch(&path), None);
        write_in_touch(&path, 1234);
        assert_eq!(read_in_touch(&path), Some(1234));
        std::fs::write(&path, "garbage").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_in_touch(&path), None);
    }
}
