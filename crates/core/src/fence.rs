//! Fences: what keeps an answer that was fetched before a write from being stored or served
//! after it (DESIGN.md invariant 6).
//!
//! Every invalidation of a repository moves its fence. A fetch reads the fence's [`Mark`] before
//! it begins; what it fetched is stored only if the mark has not moved by then, and a stored
//! entry is served only while the mark it was stored under is still the fence's. So a fetch that
//! raced a write never outlives it, whatever the order in which the processes finish.
//!
//! Entries made on other machines (peers, IPFS) carry their producer's clock, not our marks:
//! they are admitted only if they were made after the last invalidation this machine has seen,
//! by more than the clock skew that producers are allowed ([`FenceState::admits`]).

use std::time::Duration;

use crate::entry::Manifest;
use crate::error::TierError;
use crate::invalidation_id::InvalidationId;
use crate::policy::Resource;

/// How far a producer's clock may run ahead of ours, by default (`GH_CACHE_CLOCK_SKEW` sets
/// it). Entries "made" further in the future are not trusted to be fresh, and entries made by
/// another machine less than this after an invalidation are not trusted to be newer than it:
/// for that long after a write, the swarm's copies of what it changed are not used.
///
/// Two seconds: machines that share a fleet keep their clocks within milliseconds of each other
/// (NTP, chrony; GitHub's hosted runners are synchronised), and every second of margin is a
/// second after each write in which runners ask GitHub again (a 30 s margin cost a replayed
/// hosted fleet 8 points of its cut in requests, `docs/benchmarks.md`). A team whose machines'
/// clocks drift further sets a larger one; a producer whose clock runs further ahead than this
/// has its fresh announcements refused as "from the future", which the daemon logs.
pub const CLOCK_SKEW: Duration = Duration::from_secs(2);

/// The state of a repository's fence at one moment: opaque, compared for equality only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mark(pub u64);

/// A repository's fence as read at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FenceState {
    /// Changes with every invalidation that covers the repository.
    pub mark: Mark,
    /// When the last of those invalidations finished, this machine's clock (ms since the epoch);
    /// 0 if there was none.
    pub invalidated_at_ms: u64,
    /// Which invalidation that last one was, when it is known by an id.
    pub last: Option<InvalidationId>,
    /// When the latest invalidation other than `last` finished (this machine's clock; 0 if none):
    /// an entry that names `last` must still be newer than this.
    pub before_last_ms: u64,
}

impl FenceState {
    /// A fence that nothing has moved.
    pub const UNMOVED: FenceState = FenceState {
        mark: Mark(0),
        invalidated_at_ms: 0,
        last: None,
        before_last_ms: 0,
    };
}

impl FenceState {
    /// Whether an entry described by `manifest` may be used under this fence.
    ///
    /// # Behavior
    /// An entry that this machine fetched (no producer) was made by our own clock: its fetch must
    /// have begun no earlier than the last invalidation was recorded. An entry signed by a
    /// producer (a peer, or an entry found in IPFS) must have been made more than `skew` after
    /// it, because the producer's clock may run ahead of ours by that much ([`CLOCK_SKEW`]);
    /// unless it names that last invalidation as the last its producer had seen before it
    /// fetched ([`Manifest::after`]): then it need only be made `skew` after the one before.
    pub fn admits(&self, manifest: &Manifest, skew: Duration) -> bool {
        if self.invalidated_at_ms == 0 {
            return true;
        }
        let skew = skew.as_millis() as u64;
        match manifest.producer {
            // The invalidation's time is taken after the write finished: a fetch that began in
            // the same millisecond began after the write.
            None => manifest.created_at_ms >= self.invalidated_at_ms,
            Some(_) => {
                let seen_last = self.last.is_some() && manifest.after == self.last;
                manifest.created_at_ms > self.invalidated_at_ms.saturating_add(skew)
                    || (seen_last
                        && manifest.created_at_ms > self.before_last_ms.saturating_add(skew))
            }
        }
    }
}

/// Where the fences of this machine are kept (the local tier's fence file).
///
/// # Errors
/// A fence that cannot be read gives [`TierError`]: nothing about the repository may then be
/// served or stored, because nothing can be told apart from an answer older than a write.
pub trait Fence: Send + Sync {
    /// The fence of answers about `resource` of `repo` (`owner/name`, lowercase; empty for
    /// answers about no repository).
    fn read(&self, repo: &str, resource: Resource) -> Result<FenceState, TierError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::sample_entry;

    #[test]
    fn own_entries_need_only_be_newer_and_others_by_the_skew() {
        let mut manifest = sample_entry(1, "o/r", b"x").manifest;
        let at = 1_000_000;
        let state = FenceState {
            mark: Mark(1),
            invalidated_at_ms: at,
            ..FenceState::UNMOVED
        };
        manifest.created_at_ms = at + 1;
        assert!(state.admits(&manifest, CLOCK_SKEW));
        manifest.created_at_ms = at - 1;
        assert!(
            !state.admits(&manifest, CLOCK_SKEW),
            "began before the write was recorded"
        );
        manifest.producer = Some(vec![1]);
        manifest.created_at_ms = at + 1;
        assert!(
            !state.admits(&manifest, CLOCK_SKEW),
            "a producer's clock may be ahead"
        );
        manifest.created_at_ms = at + CLOCK_SKEW.as_millis() as u64 + 1;
        assert!(state.admits(&manifest, CLOCK_SKEW));
        manifest.created_at_ms = 0;
        assert!(FenceState::UNMOVED.admits(&manifest, CLOCK_SKEW));
    }

    #[test]
    fn an_entry_that_names_the_last_invalidation_needs_no_margin_after_it() {
        let write = InvalidationId(5);
        let at = 1_000_000;
        let state = FenceState {
            mark: Mark(1),
            invalidated_at_ms: at,
            last: Some(write),
            before_last_ms: at - 10_000,
        };
        let mut manifest = sample_entry(1, "o/r", b"x").manifest;
        manifest.producer = Some(vec![1]);
        manifest.created_at_ms = at + 1;
        assert!(
            !state.admits(&manifest, CLOCK_SKEW),
            "names no invalidation"
        );
        manifest.after = Some(InvalidationId(write.0 ^ 1));
        assert!(!state.admits(&manifest, CLOCK_SKEW), "names another one");
        manifest.after = Some(write);
        assert!(state.admits(&manifest, CLOCK_SKEW));
        manifest.created_at_ms = at - 500;
        assert!(
            state.admits(&manifest, CLOCK_SKEW),
            "its producer heard of the write before it fetched, whatever the clocks say"
        );
        manifest.created_at_ms = at - 9_000;
        assert!(
            !state.admits(&manifest, CLOCK_SKEW),
            "but it must be newer than every other invalidation by the margin"
        );
        let none = FenceState {
            last: None,
            ..state
        };
        manifest.created_at_ms = at + 1;
        assert!(
            !none.admits(&manifest, CLOCK_SKEW),
            "no id here: the margin"
        );
    }
}
