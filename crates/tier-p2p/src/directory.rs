//! What the swarm has announced: manifests and who holds them, learned from gossip and from
//! the directories of peers this node connected to, and what this node holds itself.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use ghcache_core::{CacheKey, Manifest, ScopeId};
use libp2p::PeerId;

use crate::wire::{self, Invalidation};

/// Most manifests remembered; the oldest announcement is forgotten first.
const MAX_ENTRIES: usize = 50_000;
/// Most providers remembered per key: two are asked at once, a few more cover departures.
const MAX_PROVIDERS: usize = 8;

/// A bounded map of cache key to announced manifest and the peers that announced it.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    entries: HashMap<CacheKey, (Manifest, HashSet<PeerId>)>,
    order: VecDeque<CacheKey>,
}

impl Directory {
    /// Records that `provider` holds `manifest`'s entry. A newer manifest replaces an older one
    /// and its providers, an older one is ignored; the same entry announced again with an IPFS CID (added after it was
    /// first announced) replaces the one without.
    pub(crate) fn insert(&mut self, manifest: Manifest, provider: PeerId) {
        let key = manifest.key;
        if let Some((known, providers)) = self.entries.get_mut(&key) {
            if manifest.created_at_ms < known.created_at_ms {
                // An older answer: its holder does not hold the one known now.
                return;
            }
            if manifest.created_at_ms > known.created_at_ms {
                *known = manifest;
                providers.clear();
            } else if manifest.created_at_ms == known.created_at_ms
                && manifest.body_digest == known.body_digest
                && known.cid.is_none()
                && manifest.cid.is_some()
            {
                *known = manifest;
            }
            if providers.len() < MAX_PROVIDERS {
                providers.insert(provider);
            }
            return;
        }
        while self.entries.len() >= MAX_ENTRIES {
            match self.order.pop_front() {
                Some(old) => {
                    self.entries.remove(&old);
                }
                None => break,
            }
        }
        self.order.push_back(key);
        self.entries
            .insert(key, (manifest, HashSet::from([provider])));
    }

    /// Peers that announced `key` in scope `scope_id`.
    pub(crate) fn providers(&self, key: &CacheKey, scope_id: &ScopeId) -> Vec<PeerId> {
        match self.entries.get(key) {
            Some((manifest, providers)) if &manifest.scope_id == scope_id => {
                providers.iter().copied().collect()
            }
            _ => Vec::new(),
        }
    }

    /// The manifest announced for `key` in scope `scope_id`, whoever still holds it.
    pub(crate) fn manifest(&self, key: &CacheKey, scope_id: &ScopeId) -> Option<&Manifest> {
        self.entries
            .get(key)
            .map(|(manifest, _)| manifest)
            .filter(|m| &m.scope_id == scope_id)
    }

    /// Whether `peer` holds the entry of the manifest known for `key`.
    pub(crate) fn holds(&self, key: &CacheKey, peer: &PeerId) -> bool {
        self.entries
            .get(key)
            .is_some_and(|(_, providers)| providers.contains(peer))
    }

    /// Up to `limit` manifests of scope `scope_id` that are fresh at `now_ms`, newest first, each
    /// with up to [`wire::MAX_DIRECTORY_PROVIDERS`] of its providers, `first` first when it is
    /// one: what a peer that asks for this node's directory gets.
    pub(crate) fn newest(
        &self,
        scope_id: &ScopeId,
        limit: usize,
        now_ms: u64,
        first: &PeerId,
    ) -> Vec<(Manifest, Vec<PeerId>)> {
        let mut found: Vec<&(Manifest, HashSet<PeerId>)> = self
            .entries
            .values()
            .filter(|(m, providers)| {
                &m.scope_id == scope_id
                    && !providers.is_empty()
                    && m.is_fresh(now_ms, Duration::ZERO)
            })
            .collect();
        found.sort_by_key(|(m, _)| std::cmp::Reverse(m.created_at_ms));
        found
            .into_iter()
            .take(limit)
            .map(|(m, providers)| {
                let mut named: Vec<PeerId> = Vec::new();
                if providers.contains(first) {
                    named.push(*first);
                }
                named.extend(
                    providers
                        .iter()
                        .filter(|p| *p != first)
                        .take(wire::MAX_DIRECTORY_PROVIDERS - named.len()),
                );
                (m.clone(), named)
            })
            .collect()
    }

    /// Forgets `peer` as a provider everywhere (it sent bad data or left).
    pub(crate) fn forget_peer(&mut self, peer: &PeerId) {
        for (_, providers) in self.entries.values_mut() {
            providers.remove(peer);
        }
    }

    /// Drops every manifest `invalidation` covers.
    pub(crate) fn invalidate(&mut self, invalidation: &Invalidation) {
        self.entries.retain(|_, (m, _)| !invalidation.covers(m));
        let entries = &self.entries;
        self.order.retain(|k| entries.contains_key(k));
    }

    /// Number of manifests held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ghcache_core::testkit::sample_entry;

    #[test]
    fn scoped_bounded_and_droppable() {
        let mut dir = Directory::default();
        let peer = PeerId::from(libp2p::identity::Keypair::generate_ed25519().public());
        let m = sample_entry(1, "o/r", b"x").manifest;
        dir.insert(m.clone(), peer);
        assert_eq!(dir.providers(&m.key, &m.scope_id), vec![peer]);
        assert!(
            dir.providers(&m.key, &ScopeId([0; 32])).is_empty(),
            "other scope"
        );
        assert!(
            dir.manifest(&m.key, &ScopeId([0; 32])).is_none(),
            "other scope"
        );
        let mut with_cid = m.clone();
        with_cid.cid = Some("bafy".into());
        dir.insert(with_cid.clone(), peer);
        assert_eq!(dir.manifest(&m.key, &m.scope_id), Some(&with_cid));
        dir.insert(m.clone(), peer);
        assert_eq!(dir.manifest(&m.key, &m.scope_id), Some(&with_cid), "kept");
        dir.invalidate(&Invalidation {
            scope_id: m.scope_id,
            repo: "o/r".into(),
            resources: None,
            at_ms: 0,
        });
        assert!(dir.providers(&m.key, &m.scope_id).is_empty());
        for i in 0..(MAX_ENTRIES + 10) {
            let mut m = m.clone();
            m.key = CacheKey(*blake3::hash(&i.to_le_bytes()).as_bytes());
            dir.insert(m, peer);
        }
        assert_eq!(dir.len(), MAX_ENTRIES);
    }

    #[test]
    fn a_directory_reply_is_fresh_newest_first_capped_and_names_its_sender_first() {
        let mut dir = Directory::default();
        let (me, other) = (PeerId::random(), PeerId::random());
        let now = ghcache_core::now_ms();
        let mut made = Vec::new();
        for i in 0..10u8 {
            let mut m = sample_entry(i, "o/r", b"x").manifest;
            m.created_at_ms = now - 1000 + u64::from(i);
            dir.insert(m.clone(), other);
            made.push(m);
        }
        let mut stale = sample_entry(20, "o/r", b"x").manifest;
        stale.created_at_ms = now - 3_600_000;
        dir.insert(stale, other);
        let mut elsewhere = sample_entry(21, "o/r", b"x").manifest;
        elsewhere.scope_id = ScopeId([9; 32]);
        dir.insert(elsewhere, other);
        dir.insert(made[9].clone(), me);
        for _ in 0..10 {
            dir.insert(made[9].clone(), PeerId::random());
        }

        let reply = dir.newest(&made[0].scope_id, 3, now, &me);
        let keys: Vec<CacheKey> = reply.iter().map(|(m, _)| m.key).collect();
        assert_eq!(keys, vec![made[9].key, made[8].key, made[7].key]);
        assert_eq!(reply[0].1.first(), Some(&me), "the sender first");
        assert!(reply[0].1.len() <= wire::MAX_DIRECTORY_PROVIDERS);
        assert_eq!(reply[1].1, vec![other]);
        assert!(dir.holds(&made[9].key, &me));
        assert!(!dir.holds(&made[8].key, &me));
        let all = dir.newest(&made[0].scope_id, 100, now, &me);
        assert_eq!(all.len(), 10, "neither stale nor other scopes");
    }
}
