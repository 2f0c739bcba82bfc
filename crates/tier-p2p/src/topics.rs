//! The gossip topics a daemon follows, and why: the scopes of its machine's configuration for
//! as long as it runs, the scopes its local clients named lately, and a keeper's scopes (which
//! [`crate::keeper`] bounds and frees).
//!
//! Every lookup, publish and write names its scope, and a client may name any scope it likes
//! (`GH_CACHE_SCOPE`), so the scopes named are bounded too: the least recently named goes first
//! past [`LOCAL_SCOPES`], and a scope no client named for [`LOCAL_SCOPE_IDLE`] is let go. The
//! node leaves a topic when no reason to follow it is left.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use ghcache_core::ScopeId;
use libp2p::gossipsub::TopicHash;
use tokio::time::Instant;

use crate::swarm::topic;

/// Scopes named by this machine's clients that the daemon follows at once, besides those of its
/// configuration. A user works in a few scopes (one per login or `GH_CACHE_SCOPE`); 64 leaves
/// room for a machine shared by many jobs, and a topic costs gossip traffic and a directory ask.
pub(crate) const LOCAL_SCOPES: usize = 64;

/// A scope that no local client named for this long is let go (unless its machine's
/// configuration or a keeper's slot holds it): its next lookup follows it again, and asks the
/// peers' directories again.
pub(crate) const LOCAL_SCOPE_IDLE: Duration = Duration::from_secs(3600);

/// The topics joined, with the scopes the configuration pins and those local clients named.
#[derive(Debug, Default)]
pub(crate) struct Topics {
    /// Each joined topic's scope, and when it was joined (ms since the epoch): what this node
    /// hears of GitHub's writes reaches a scope's peers only from then on.
    joined: HashMap<TopicHash, (ScopeId, u64)>,
    pinned: HashSet<ScopeId>,
    /// When each scope was last named by a local client.
    named: HashMap<ScopeId, Instant>,
}

impl Topics {
    /// The scope of a joined topic.
    pub(crate) fn scope(&self, hash: &TopicHash) -> Option<ScopeId> {
        self.joined.get(hash).map(|(scope, _)| *scope)
    }

    /// Since when `scope_id`'s topic is joined (ms since the epoch); `None` when it is not.
    pub(crate) fn joined_since(&self, scope_id: &ScopeId) -> Option<u64> {
        self.joined.get(&topic(scope_id).hash()).map(|(_, at)| *at)
    }

    /// Whether `hash` is joined.
    pub(crate) fn is_joined(&self, hash: &TopicHash) -> bool {
        self.joined.contains_key(hash)
    }

    /// The scopes whose topic is joined.
    pub(crate) fn scopes(&self) -> Vec<ScopeId> {
        self.joined.values().map(|(scope, _)| *scope).collect()
    }

    /// Topics joined.
    pub(crate) fn len(&self) -> usize {
        self.joined.len()
    }

    /// Follows `scope_id` for as long as the daemon runs (its machine's own scope).
    pub(crate) fn pin(&mut self, scope_id: ScopeId) {
        self.pinned.insert(scope_id);
    }

    /// A local client named `scope_id` at `now`. Returns the scopes that this pushed out of the
    /// named ones: the least recently named past [`LOCAL_SCOPES`].
    pub(crate) fn name(&mut self, scope_id: ScopeId, now: Instant) -> Vec<ScopeId> {
        if self.pinned.contains(&scope_id) {
            return Vec::new();
        }
        self.named.insert(scope_id, now);
        let mut out = Vec::new();
        while self.named.len() > LOCAL_SCOPES {
            let Some(oldest) = self
                .named
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(scope, _)| *scope)
            else {
                break;
            };
            self.named.remove(&oldest);
            out.push(oldest);
        }
        out
    }

    /// Forgets the scopes no local client named for [`LOCAL_SCOPE_IDLE`]; returns them.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<ScopeId> {
        let mut out = Vec::new();
        self.named.retain(|scope, at| {
            let idle = now.saturating_duration_since(*at) >= LOCAL_SCOPE_IDLE;
            if idle {
                out.push(*scope);
            }
            !idle
        });
        out
    }

    /// Whether this machine wants `scope_id` followed: pinned, or named lately.
    pub(crate) fn wanted(&self, scope_id: &ScopeId) -> bool {
        self.pinned.contains(scope_id) || self.named.contains_key(scope_id)
    }

    /// Records `scope_id`'s topic as joined; whether it was not before.
    pub(crate) fn join(&mut self, scope_id: ScopeId) -> bool {
        let hash = topic(&scope_id).hash();
        if self.joined.contains_key(&hash) {
            return false;
        }
        self.joined.insert(hash, (scope_id, ghcache_core::now_ms()));
        true
    }

    /// Records `scope_id`'s topic as left; whether it was joined.
    pub(crate) fn leave(&mut self, scope_id: &ScopeId) -> bool {
        self.joined.remove(&topic(scope_id).hash()).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(n: usize) -> ScopeId {
        ScopeId::of(&format!("scope {n}"))
    }

    #[test]
    fn named_scopes_are_bounded_least_recently_named_out_first() {
        let mut topics = Topics::default();
        let start = Instant::now();
        topics.pin(scope(0));
        assert!(topics.name(scope(0), start).is_empty(), "pinned");
        let mut out = Vec::new();
        for n in 1..=1000 {
            let at = start + Duration::from_millis(n as u64);
            out.extend(topics.name(scope(n), at));
            // A scope named again and again stays.
            out.extend(topics.name(scope(1), at));
        }
        assert_eq!(topics.named.len(), LOCAL_SCOPES);
        assert_eq!(out.len(), 1000 - LOCAL_SCOPES);
        assert!(topics.wanted(&scope(0)) && topics.wanted(&scope(1)));
        assert!(topics.wanted(&scope(1000)));
        assert!(!topics.wanted(&scope(2)), "named once, long ago");
        assert!(out.contains(&scope(2)) && !out.contains(&scope(1)));
    }

    #[test]
    fn scopes_not_named_for_a_while_are_let_go() {
        let mut topics = Topics::default();
        let start = Instant::now();
        topics.pin(scope(0));
        topics.name(scope(1), start);
        topics.name(scope(2), start + LOCAL_SCOPE_IDLE / 2);
        assert!(topics.join(scope(1)) && !topics.join(scope(1)));
        assert_eq!(topics.expire(start + LOCAL_SCOPE_IDLE), vec![scope(1)]);
        assert!(!topics.wanted(&scope(1)) && topics.wanted(&scope(2)));
        assert!(topics.wanted(&scope(0)), "pinned scopes never expire");
        assert!(topics.leave(&scope(1)) && topics.len() == 0);
    }
}
