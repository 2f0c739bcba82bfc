use ghcache_core::Event;

/// Counters persisted across processes, and the size of what is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls of [`crate::Tier::record`]: one per ghcache invocation that reported.
    pub requests: u64,
    /// Answers served from this machine's disk.
    pub hits_local: u64,
    /// Answers served by a peer.
    pub hits_p2p: u64,
    /// Answers served from IPFS.
    pub hits_ipfs: u64,
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

/// Increments for the persisted counters, summed from a batch of events.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub hits_local: i64,
    pub hits_p2p: i64,
    pub hits_ipfs: i64,
    pub misses: i64,
    pub bypassed: i64,
    pub revalidated: i64,
    pub stale_served: i64,
    pub errors: i64,
    pub corrupt: i64,
}

impl Counts {
    pub(crate) fn of(events: &[Event]) -> Self {
        let mut c = Counts::default();
        for event in events {
            match event {
                Event::Hit("local") => c.hits_local += 1,
                Event::Hit("p2p") => c.hits_p2p += 1,
                Event::Hit("ipfs") => c.hits_ipfs += 1,
                // A tier this build does not know has no counter of its own.
                Event::Hit(_) => {}
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
