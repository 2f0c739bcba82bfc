use std::sync::atomic::{AtomicU64, Ordering};

use ghcache_core::Event;

/// What the HTTP level did, for `ghcache stats`: one level's counters beside the outputs'.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Answers served from this machine's disk.
    pub hits_local: u64,
    /// Answers served by a peer.
    pub hits_p2p: u64,
    /// Answers served from IPFS.
    pub hits_ipfs: u64,
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
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Counts) {
        let Counts {
            hits_local,
            hits_p2p,
            hits_ipfs,
            misses,
            revalidated,
            stale_served,
            writes,
            passed,
            streamed_bytes,
            errors,
            corrupt,
        } = other;
        self.hits_local += hits_local;
        self.hits_p2p += hits_p2p;
        self.hits_ipfs += hits_ipfs;
        self.misses += misses;
        self.revalidated += revalidated;
        self.stale_served += stale_served;
        self.writes += writes;
        self.passed += passed;
        self.streamed_bytes += streamed_bytes;
        self.errors += errors;
        self.corrupt += corrupt;
    }

    /// Requests answered in all.
    pub fn requests(&self) -> u64 {
        self.hits_local + self.hits_p2p + self.hits_ipfs + self.misses + self.writes + self.passed
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
                Event::Hit("local") => counts.hits_local += 1,
                Event::Hit("p2p") => counts.hits_p2p += 1,
                Event::Hit("ipfs") => counts.hits_ipfs += 1,
                Event::Miss => counts.misses += 1,
                Event::Revalidated => counts.revalidated += 1,
                Event::StaleServed => counts.stale_served += 1,
                Event::Error(_) => counts.errors += 1,
                Event::Corrupt(_) => counts.corrupt += 1,
                // Hits of another tier, bypasses (none here).
                _ => {}
            }
        }
        counts
    }
}
