//! A keeper's part of the swarm task: which scopes it follows (up to its cap and each peer's
//! share, [`crate::shares`]), and which announced entries it fetches and then holds. What it
//! keeps and its bounds are [`crate::keeper`]'s; the fetches run in tasks ([`crate::fetches`]).

use ghcache_core::{CacheKey, Manifest, ScopeId};
use libp2p::{gossipsub, PeerId};
use tokio::time::Instant;

use crate::fetches;
use crate::keeper::{Follow, Offer};
use crate::log::log;
use crate::shares::SCOPES_PER_PEER;
use crate::status::bump;
use crate::swarm::scope_of;

use super::state::{scopes_in_use, Node};

impl Node {
    /// Has the keeper, if this node is one, follow `scope_id` for `by` (`None`: this machine).
    /// When every slot is taken, the slots that no peer and no local client used lately are
    /// freed first (a scope this machine wants followed counts as used).
    pub(super) fn keep_scope(
        &mut self,
        scope_id: ScopeId,
        by: Option<PeerId>,
        now: Instant,
    ) -> Option<Follow> {
        let keeper = self.keeper.as_mut()?;
        let follow = match keeper.follow(scope_id, by, now) {
            Follow::Full => {
                let in_use = scopes_in_use(&self.swarm);
                let topics = &self.topics;
                let freed = keeper.expire(now, |s| in_use.contains(s) || topics.wanted(s));
                let follow = keeper.follow(scope_id, by, now);
                for scope in freed {
                    self.leave_if_unused(scope);
                }
                follow
            }
            follow => follow,
        };
        Some(follow)
    }

    /// A keeper follows every scope its peers subscribe to, up to its cap and each peer's
    /// share, and asks a peer that joins a followed scope for what it holds there.
    pub(super) fn on_peer_subscribed(&mut self, peer: PeerId, topic: &gossipsub::TopicHash) {
        if self.keeper.is_none() {
            return;
        }
        let Some(scope_id) = scope_of(topic) else {
            return;
        };
        match self.keep_scope(scope_id, Some(peer), Instant::now()) {
            Some(follow @ (Follow::Started | Follow::Already)) => {
                if follow == Follow::Started {
                    log(format_args!("keeping scope {}", scope_id.short()));
                }
                // A topic this machine follows already (its own scope) is not joined again:
                // its new peer is asked directly.
                if self.topics.is_joined(topic) {
                    self.ask_directory(peer, scope_id);
                } else {
                    self.join(scope_id);
                }
            }
            Some(Follow::Full) => self.warn_scope_cap(),
            Some(Follow::OverShare) => {
                bump(&self.shared.counters.over_share);
                if !std::mem::replace(&mut self.warned_scope_share, true) {
                    log(format_args!(
                        "{peer} subscribes to more new scopes than one peer may have a keeper \
                         follow ({}); the others are not kept",
                        SCOPES_PER_PEER
                    ));
                }
            }
            None => {}
        }
    }

    /// Says once that the keeper has no scope slot left.
    fn warn_scope_cap(&mut self) {
        if !std::mem::replace(&mut self.warned_scope_cap, true) {
            let scopes = self.keeper.as_ref().map_or(0, |k| k.load().scopes);
            log(format_args!(
                "keeping as many scopes as a keeper may ({scopes}); entries of other scopes are \
                 not kept until a scope no peer uses is let go"
            ));
        }
    }

    /// Queues a keeper's fetch of `manifest`'s entry, unless this node holds it already.
    pub(super) fn offer_to_keeper(&mut self, manifest: Manifest, providers: Vec<PeerId>) {
        let me = self.local_id();
        let Some(keeper) = self.keeper.as_mut() else {
            return;
        };
        if !keeper.follows(&manifest.scope_id) || self.directory.holds_as_new(&manifest, &me) {
            return;
        }
        if keeper.offer(manifest, providers) == Offer::Full {
            bump(&self.shared.counters.keep_missed);
        }
        self.start_keeping();
    }

    /// Starts the keeper's queued fetches that its bounds allow, each from the peers that hold
    /// the entry and are connected, in turn: the announcing runner, over the connection it
    /// opened. A runner that nobody can dial is fetched from while it is there, or not at all.
    fn start_keeping(&mut self) {
        let Some(keeper) = self.keeper.as_mut() else {
            return;
        };
        while let Some(job) = keeper.next() {
            let holders: Vec<PeerId> = job
                .providers
                .iter()
                .filter(|p| self.connected.contains(p))
                .copied()
                .collect();
            if holders.is_empty() {
                keeper.finish(&job.manifest.key);
                bump(&self.shared.counters.keep_missed);
            } else {
                tokio::spawn(fetches::keep(self.shared.clone(), holders, job.manifest));
            }
        }
    }

    /// A keeper's fetch ended: what was kept is held (provided, and named in directory
    /// replies), unless an invalidation covered it while it was in flight.
    pub(super) fn on_kept(&mut self, key: CacheKey, manifest: Option<Box<Manifest>>) {
        let me = self.local_id();
        let Some(keeper) = self.keeper.as_mut() else {
            return;
        };
        let cancelled = keeper.finish(&key);
        match manifest {
            Some(manifest) if !cancelled => {
                bump(&self.shared.counters.kept);
                log(format_args!("kept {}", key.short()));
                self.directory.insert(*manifest, me, &[me]);
                self.provide(key);
            }
            Some(_) => {}
            None => bump(&self.shared.counters.keep_missed),
        }
        self.start_keeping();
    }
}
