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

impl Stats {
    /// Adds counts not yet folded into the index.
    pub(crate) fn add_pending(&mut self, requests: i64, c: &Counts) {
        let add = |n: &mut u64, d: i64| *n = n.saturating_add(u64::try_from(d).unwrap_or(0));
        add(&mut self.requests, requests);
        add(&mut self.hits_local, c.hits_local);
        add(&mut self.hits_p2p, c.hits_p2p);
        add(&mut self.hits_ipfs, c.hits_ipfs);
        add(&mut self.misses, c.misses);
        add(&mut self.bypassed, c.bypassed);
        add(&mut self.revalidated, c.revalidated);
        add(&mut self.stale_served, c.stale_served);
        add(&mut self.errors, c.errors);
        add(&mut self.corrupt, c.corrupt);
    }
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
    /// Adds `other` to these counts.
    pub(crate) fn add(&mut self, other: &Counts) {
        self.hits_local += other.hits_local;
        self.hits_p2p += other.hits_p2p;
        self.hits_ipfs += other.hits_ipfs;
        self.misses += other.misses;
        self.bypassed += other.bypassed;
        self.revalidated += other.revalidated;
        self.stale_served += other.stale_served;
        self.errors += other.errors;
        self.corrupt += other.corrupt;
    }

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
