//! This machine's cache as the chain stores into it while a daemon runs on the cache dir: the
//! daemon stores each entry through the index it holds open, so that an answer found in IPFS
//! (or fetched from GitHub) costs the command no index of its own; lookups stay with the
//! records and the index of this process.

use std::sync::Arc;

use async_trait::async_trait;
use ghcache_core::{CacheKey, CacheTier, Entry, Lookup, Mark, Selector, TierError};
use ghcache_tier_local::LazyTier;
use ghcache_tier_p2p::Tier as Daemon;

/// The local tier, with its stores handed to the daemon first.
///
/// # Behavior
/// The daemon applies the same fence and checks as [`LazyTier`] on the same cache dir; whatever
/// it cannot store (an old daemon, an entry too large for its socket, a full or read-only disk,
/// a timeout) is stored here as before, so errors reach the user the way they always did.
pub(crate) struct StoredByDaemon {
    local: Arc<LazyTier>,
    daemon: Arc<Daemon>,
}

impl StoredByDaemon {
    pub(crate) fn new(local: Arc<LazyTier>, daemon: Arc<Daemon>) -> StoredByDaemon {
        StoredByDaemon { local, daemon }
    }
}

#[async_trait]
impl CacheTier for StoredByDaemon {
    fn name(&self) -> &'static str {
        self.local.name()
    }

    async fn get(&self, key: &CacheKey) -> Result<Lookup, TierError> {
        self.local.get(key).await
    }

    async fn put(&self, entry: &Entry) -> Result<(), TierError> {
        // A peer's entry the daemon handed over: it stores that itself.
        if self.daemon.handed_over(&entry.manifest) {
            return Ok(());
        }
        if !self.local.is_read_only() && self.daemon.store(entry, None).await.is_ok() {
            return Ok(());
        }
        self.local.put(entry).await
    }

    async fn put_fenced(&self, entry: &Entry, mark: Mark) -> Result<(), TierError> {
        // A peer's entry the daemon handed over: it stores that itself, after its reply (before
        // it, in an earlier release: then it is already there). Nothing to send.
        if self.daemon.handed_over(&entry.manifest) || self.local.holds(entry, mark) {
            return Ok(());
        }
        if !self.local.is_read_only() && self.daemon.store(entry, Some(mark)).await.is_ok() {
            return Ok(());
        }
        self.local.put_fenced(entry, mark).await
    }

    async fn invalidate(&self, selector: &Selector) -> Result<u64, TierError> {
        self.local.invalidate(selector).await
    }

    async fn invalidate_known(
        &self,
        selector: &Selector,
        id: ghcache_core::InvalidationId,
    ) -> Result<u64, TierError> {
        self.local.invalidate_known(selector, id).await
    }
}

#[cfg(test)]
mod tests;
