//! Invalidations received from peers, waiting for the local store.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use ghcache_core::{CacheTier, InvalidationId, Selector};
use tokio::sync::Notify;

use crate::log::log;

/// Selections whose invalidation from peers waits for the local store. Past this, the waiting
/// ones are replaced by one invalidation of everything (see [`Invalidations`]).
const MAX_PENDING: usize = 1024;

/// Invalidations received from peers, waiting for the local store: one task applies them, one
/// at a time, so a flood of them costs a queue, not a task each.
///
/// The queue never drops one: an invalidation lost would leave a stale entry served. A
/// selection already waiting is not queued twice; when more than [`MAX_PENDING`] wait, they are
/// replaced by one invalidation of the whole store, which drops more than was asked but never
/// too little.
#[derive(Default)]
pub(crate) struct Invalidations {
    pending: Mutex<Pending>,
    ready: Notify,
}

#[derive(Default)]
struct Pending {
    /// What to drop, and the invalidation's id where peers know it by one.
    selections: VecDeque<(Selector, Option<InvalidationId>)>,
    everything: bool,
}

impl Invalidations {
    /// Queues the invalidation of what `selector` names; `id` is the invalidation's where the
    /// swarm knows it by one (see [`InvalidationId`]).
    pub(crate) fn push(&self, selector: Selector, id: Option<InvalidationId>) {
        let item = (selector, id);
        {
            // One push or pop at a time: a panic cannot leave the queue half-changed.
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if pending.everything || pending.selections.contains(&item) {
                return;
            }
            if pending.selections.len() >= MAX_PENDING {
                log(format_args!(
                    "over {MAX_PENDING} invalidations from peers wait for the local store: \
                     dropping every stored entry instead"
                ));
                pending.selections.clear();
                pending.everything = true;
            } else {
                pending.selections.push_back(item);
            }
        }
        self.ready.notify_one();
    }

    fn next(&self) -> Option<(Selector, Option<InvalidationId>)> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if std::mem::take(&mut pending.everything) {
            return Some((Selector::All, None));
        }
        pending.selections.pop_front()
    }

    /// Applies what waits, then returns.
    pub(crate) async fn drain(&self, store: &dyn CacheTier) {
        while let Some((selector, id)) = self.next() {
            let applied = match id {
                Some(id) => store.invalidate_known(&selector, id).await,
                None => store.invalidate(&selector).await,
            };
            if let Err(e) = applied {
                let what = match &selector {
                    Selector::Repo(repo) => repo.as_str(),
                    Selector::All => "every entry",
                    _ => "entries",
                };
                log(format_args!("cannot invalidate {what}: {e}"));
            }
        }
    }

    /// Applies invalidations to `store` as they arrive, forever.
    pub(crate) async fn apply(&self, store: &dyn CacheTier) {
        loop {
            let ready = self.ready.notified();
            self.drain(store).await;
            ready.await;
        }
    }
}
