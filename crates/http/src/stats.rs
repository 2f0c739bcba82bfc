//! What the HTTP level did, counted for `ghcache stats`: hits by the name of the tier that served
//! them (as the local tier's own counters are), so that a new tier needs no new field, and the
//! level's own counters (writes and other requests passed on, bytes streamed).
//!
//! The counters travel as named fields ([`Counts::fields`]): whoever keeps them across processes
//! (the local tier's journal) stores names and numbers, not this struct's layout.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use ghcache_core::Event;

/// The prefix of a hit counter's field name: `hits_<tier>`.
const HITS_PREFIX: &str = "hits_";

/// What the HTTP level did, for `ghcache stats`: one level's counters beside the outputs'.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Answers served fresh, by the name of the tier that served them
    /// ([`name`](ghcache_core::CacheTier::name)). A tier that never served one has no entry; see
    /// [`Counts::hits_of`].
    pub hits: BTreeMap<String, u64>,
    /// Reads that no tier could answer fresh: GitHub was asked.
    pub misses: u64,
    /// Stale answers that GitHub confirmed with a 304 (free against the rate limit).
    pub revalidated: u64,
    /// Stale answers served because GitHub failed.
    pub stale_served: u64,
    /// Writes passed on (each dropped what it can change).
    pub writes: u64,
    /// Other requests passed on untouched (downloads, gh's own conditional requests, ...).
    pub passed: u64,
    /// Bytes of bodies streamed through without being stored (logs, archives, assets, and
    /// everything passed on).
    pub streamed_bytes: u64,
    /// Tier failures and timeouts.
    pub errors: u64,
    /// Stored answers that failed their checks and were dropped.
    pub corrupt: u64,
}

impl Counts {
    /// Fresh answers served by the tier called `tier` (0 if it never served one).
    pub fn hits_of(&self, tier: &str) -> u64 {
        self.hits.get(tier).copied().unwrap_or(0)
    }

    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Counts) {
        for (name, value) in other.fields() {
            if value == 0 {
                continue;
            }
            if let Some(slot) = self.slot(&name) {
                *slot = slot.saturating_add(value);
            }
        }
    }

    /// Requests answered in all.
    pub fn requests(&self) -> u64 {
        let hits = self
            .hits
            .values()
            .fold(0_u64, |sum, n| sum.saturating_add(*n));
        hits + self.misses + self.writes + self.passed
    }

    /// The counters as named fields, hits first (`hits_<tier>`, one per tier that served an
    /// answer), then the rest in a fixed order: what a file of counters stores.
    pub fn fields(&self) -> Vec<(String, u64)> {
        let hits = self
            .hits
            .iter()
            .map(|(tier, n)| (format!("{HITS_PREFIX}{tier}"), *n));
        let rest = [
            ("misses", self.misses),
            ("revalidated", self.revalidated),
            ("stale_served", self.stale_served),
            ("writes", self.writes),
            ("passed", self.passed),
            ("streamed_bytes", self.streamed_bytes),
            ("errors", self.errors),
            ("corrupt", self.corrupt),
        ];
        hits.chain(rest.map(|(name, n)| (name.to_owned(), n)))
            .collect()
    }

    /// The counts that named `fields` hold, as [`Counts::fields`] writes them; names it does not
    /// know are passed over, and a name given twice is added up. A tier with no hits has no
    /// entry, whether or not a field named it.
    pub fn from_fields(fields: impl IntoIterator<Item = (String, u64)>) -> Counts {
        let mut counts = Counts::default();
        for (name, value) in fields {
            if value == 0 {
                continue;
            }
            if let Some(slot) = counts.slot(&name) {
                *slot = slot.saturating_add(value);
            }
        }
        counts
    }

    /// The counter a field name stands for.
    fn slot(&mut self, name: &str) -> Option<&mut u64> {
        if let Some(tier) = name.strip_prefix(HITS_PREFIX).filter(|t| !t.is_empty()) {
            return Some(self.hits.entry(tier.to_owned()).or_default());
        }
        Some(match name {
            "misses" => &mut self.misses,
            "revalidated" => &mut self.revalidated,
            "stale_served" => &mut self.stale_served,
            "writes" => &mut self.writes,
            "passed" => &mut self.passed,
            "streamed_bytes" => &mut self.streamed_bytes,
            "errors" => &mut self.errors,
            "corrupt" => &mut self.corrupt,
            _ => return None,
        })
    }
}

/// The counters a [`crate::Level`] keeps beside the chain's events.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub writes: AtomicU64,
    pub passed: AtomicU64,
    pub corrupt: AtomicU64,
}

impl Counters {
    /// The counts since the last call (the counters are taken).
    pub fn take(&self) -> Counts {
        Counts {
            writes: self.writes.swap(0, Ordering::Relaxed),
            passed: self.passed.swap(0, Ordering::Relaxed),
            corrupt: self.corrupt.swap(0, Ordering::Relaxed),
            ..Counts::default()
        }
    }
}

impl Counts {
    /// What the chain's `events` add up to.
    pub(crate) fn of_events(events: &[Event]) -> Counts {
        let mut counts = Counts::default();
        for event in events {
            match event {
                Event::Hit(tier) => *counts.hits.entry((*tier).to_owned()).or_default() += 1,
                Event::Miss => counts.misses += 1,
                Event::Revalidated => counts.revalidated += 1,
                Event::StaleServed => counts.stale_served += 1,
                Event::Error(_) => counts.errors += 1,
                Event::Corrupt(_) => counts.corrupt += 1,
                // Bypasses (none here).
                Event::Bypassed => {}
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_counted_by_tier_name_and_travel_as_fields() {
        let counts = Counts::of_events(&[
            Event::Hit("local"),
            Event::Hit("p2p"),
            Event::Hit("local"),
            Event::Miss,
        ]);
        assert_eq!(
            (
                counts.hits_of("local"),
                counts.hits_of("p2p"),
                counts.hits_of("ipfs")
            ),
            (2, 1, 0)
        );
        assert_eq!(counts.requests(), 4);
        assert_eq!(Counts::from_fields(counts.fields()), counts);
    }

    #[test]
    fn fields_of_the_current_release_read_as_the_same_counts() {
        // What the release before hits were keyed by name wrote: one field per tier it knew.
        let old = [
            ("hits_local", 2),
            ("hits_p2p", 0),
            ("hits_ipfs", 1),
            ("misses", 3),
            ("revalidated", 1),
            ("stale_served", 0),
            ("writes", 1),
            ("passed", 4),
            ("streamed_bytes", 10),
            ("errors", 0),
            ("corrupt", 0),
            ("from_a_later_build", 7),
        ];
        let counts = Counts::from_fields(old.map(|(k, v)| (k.to_owned(), v)));
        assert_eq!(
            (
                counts.hits_of("local"),
                counts.hits_of("p2p"),
                counts.hits_of("ipfs")
            ),
            (2, 0, 1)
        );
        assert_eq!(
            (counts.misses, counts.passed, counts.streamed_bytes),
            (3, 4, 10)
        );
        assert_eq!(counts.requests(), 2 + 1 + 3 + 1 + 4);
    }
}
