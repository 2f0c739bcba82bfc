//! The persisted counters: what [`Event`]s add up to, across processes.
//!
//! Hits are counted by the name of the tier that served them, so a new tier is counted without
//! a change of the index's schema or of the journal's format.

use std::collections::BTreeMap;

use ghcache_core::Event;

/// Counters persisted across processes, and the size of what is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls of [`crate::Tier::record`]: one per ghcache invocation that reported.
    pub requests: u64,
    /// Fresh answers served, by the name of the tier that served them (`local`, `p2p`, `ipfs`,
    /// or any other tier's [`name`](ghcache_core::CacheTier::name)). A tier that never served
    /// one has no entry; see [`Stats::hits_of`].
    pub hits: BTreeMap<String, u64>,
    /// Requests that no tier could answer fresh: GitHub was asked.
    pub misses: u64,
    /// Commands that were not cacheable and went straight to gh.
    pub bypassed: u64,
    /// Stale entries confirmed by a 304.
    pub revalidated: u64,
    /// Stale entries served because GitHub failed.
    pub stale_served: u64,
    /// Tier failures and timeouts.
    pub errors: u64,
    /// Entries that failed their checks and were dropped.
    pub corrupt: u64,
    /// Entries in the index.
    pub entries: u64,
    /// Bytes of stored bodies, each distinct body counted once (what the blob files hold, which
    /// is what the size cap limits).
    pub bytes: u64,
    /// Entries whose manifest names an IPFS CID.
    pub ipfs_entries: u64,
    /// When the counters started, ms since the epoch.
    pub created_at_ms: u64,
}

impl Stats {
    /// Fresh answers served by the tier called `tier` (0 if it never served one).
    pub fn hits_of(&self, tier: &str) -> u64 {
        self.hits.get(tier).copied().unwrap_or(0)
    }

    /// Fresh answers served by any tier.
    pub fn total_hits(&self) -> u64 {
        self.hits.values().fold(0, |sum, n| sum.saturating_add(*n))
    }

    /// Adds counts not yet folded into the index.
    pub(crate) fn add_pending(&mut self, requests: i64, c: &Counts) {
        let add = |n: &mut u64, d: i64| *n = n.saturating_add(u64::try_from(d).unwrap_or(0));
        add(&mut self.requests, requests);
        for (tier, n) in &c.hits {
            add(self.hits.entry(tier.clone()).or_default(), *n);
        }
        add(&mut self.misses, c.misses);
        add(&mut self.bypassed, c.bypassed);
        add(&mut self.revalidated, c.revalidated);
        add(&mut self.stale_served, c.stale_served);
        add(&mut self.errors, c.errors);
        add(&mut self.corrupt, c.corrupt);
    }
}

/// Whether `name` can be a tier's name in the journal and the index: short, and made of the
/// characters that the journal's lines can carry between spaces and `=` without escaping.
pub(crate) fn is_tier_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Increments for the persisted counters, summed from a batch of events.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Hits by tier name; only names that pass [`is_tier_name`].
    pub hits: BTreeMap<String, i64>,
    pub misses: i64,
    pub bypassed: i64,
    pub revalidated: i64,
    pub stale_served: i64,
    pub errors: i64,
    pub corrupt: i64,
}

impl Counts {
    /// Adds `other` to these counts.
    pub(crate) fn add(&mut self, other: &Counts) {
        for (tier, n) in &other.hits {
            *self.hits.entry(tier.clone()).or_default() += n;
        }
        self.misses += other.misses;
        self.bypassed += other.bypassed;
        self.revalidated += other.revalidated;
        self.stale_served += other.stale_served;
        self.errors += other.errors;
        self.corrupt += other.corrupt;
    }

    /// Counts `n` hits of the tier called `tier`.
    pub(crate) fn add_hits(&mut self, tier: &str, n: i64) {
        // Names are the tiers' own constants; one that the journal could not carry is not a
        // name this build gave a tier.
        if is_tier_name(tier) && n != 0 {
            *self.hits.entry(tier.to_owned()).or_default() += n;
        }
    }

    pub(crate) fn of(events: &[Event]) -> Self {
        let mut c = Counts::default();
        for event in events {
            match event {
                Event::Hit(tier) => c.add_hits(tier, 1),
                Event::Miss => c.misses += 1,
                Event::Bypassed => c.bypassed += 1,
                Event::Revalidated => c.revalidated += 1,
                Event::StaleServed => c.stale_served += 1,
                Event::Error(_) => c.errors += 1,
                Event::Corrupt(_) => c.corrupt += 1,
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_counted_by_tier_name_whatever_the_tier() {
        let c = Counts::of(&[
            Event::Hit("local"),
            Event::Hit("http"),
            Event::Hit("local"),
            Event::Hit("not a name"),
            Event::Miss,
        ]);
        let hits: Vec<(&str, i64)> = c.hits.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(hits, vec![("http", 1), ("local", 2)]);
        let mut stats = Stats::default();
        stats.add_pending(1, &c);
        assert_eq!(
            (
                stats.hits_of("local"),
                stats.hits_of("p2p"),
                stats.total_hits()
            ),
            (2, 0, 3)
        );
    }
}
