//! Invalidation: the fence moves first (no free space needed), then the rows go.

use ghcache_core::{InvalidationId, Selector, TierError};

use super::{which, Tier};
use crate::config::NAME;
use crate::error::Error;
use crate::fence::{Moved, Target};
use crate::index;

impl Tier {
    /// [`ghcache_core::CacheTier::invalidate`] for a write that finished at `at_ms`, this machine's clock (the
    /// event that started a CI job happened before the job): the local entries it covers are
    /// dropped whenever they were fetched, and entries made elsewhere are judged against `at_ms`.
    ///
    /// # Errors
    /// As [`ghcache_core::CacheTier::invalidate`].
    pub async fn invalidate_at(&self, selector: &Selector, at_ms: u64) -> Result<u64, TierError> {
        let id = InvalidationId::of(selector, at_ms);
        self.invalidate_moving(selector, at_ms, id).await
    }

    pub(super) async fn invalidate_moving(
        &self,
        selector: &Selector,
        at_ms: u64,
        id: InvalidationId,
    ) -> Result<u64, TierError> {
        let Some(target) = Target::of(selector) else {
            // One key is dropped for its own sake (not after a write): no fence to move, and
            // moving its repository's would cost every other answer about it.
            if self.read_only {
                return Err(TierError::ReadOnly { tier: NAME });
            }
            return self.drop_rows(selector).await;
        };
        let moved = self.fences.move_for(target, at_ms, id).map_err(|err| {
            TierError::from(Error::Write {
                dir: self.dir.clone(),
                reason: format!("cannot record the invalidation: {err}"),
            })
        })?;
        let which = which(selector);
        if !self.read_only && moved == Moved::InCache {
            if let Ok(dropped) = self.drop_rows(selector).await {
                return Ok(dropped);
            }
        }
        // The rows stay (a full disk, a read-only cache) but are fenced: count them.
        let mut conn = self.conn().await;
        index::count(&mut conn, which)
            .await
            .map_err(|e| self.tier_err(&e))
    }
}
