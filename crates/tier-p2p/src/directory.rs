//! What the swarm has announced: manifests and who holds them, learned from gossip.

use std::collections::{HashMap, HashSet, VecDeque};

use ghcache_core::{CacheKey, Manifest};
use libp2p::PeerId;

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
    /// and its providers; the same entry announced again with an IPFS CID (added after it was
    /// first announced) replaces the one without.
    pub(crate) fn insert(&mut self, manifest: Manifest, provider: PeerId) {
        let key = manifest.key;
        if let Some((known, providers)) = self.entries.get_mut(&key) {
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
    pub(crate) fn providers(&self, key: &CacheKey, scope_id: &[u8; 32]) -> Vec<PeerId> {
        match self.entries.get(key) {
            Some((manifest, providers)) if &manifest.scope_id == scope_id => {
                providers.iter().copied().collect()
            }
            _ => Vec::new(),
        }
    }

    /// The manifest announced for `key` in scope `scope_id`, whoever still holds it.
    pub(crate) fn manifest(&self, key: &CacheKey, scope_id: &[u8; 32]) -> Option<&Manifest> {
        self.entries
            .get(key)
            .map(|(manifest, _)| manifest)
            .filter(|m| &m.scope_id == scope_id)
    }

    /// Forgets `peer` as a provider everywhere (it sent bad data or left).
    pub(crate) fn forget_peer(&mut self, peer: &PeerId) {
        for (_, providers) in self.entries.values_mut() {
            providers.remove(peer);
        }
    }

    /// Drops every manifest about `repo`.
    pub(crate) fn drop_repo(&mut self, repo: &str) {
        self.entries.retain(|_, (m, _)| m.repo != repo);
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
        assert!(dir.providers(&m.key, &[0; 32]).is_empty(), "other scope");
        assert!(dir.manifest(&m.key, &[0; 32]).is_none(), "other scope");
        let mut with_cid = m.clone();
        with_cid.cid = Some("bafy".into());
        dir.insert(with_cid.clone(), peer);
        assert_eq!(dir.manifest(&m.key, &m.scope_id), Some(&with_cid));
        dir.insert(m.clone(), peer);
        assert_eq!(dir.manifest(&m.key, &m.scope_id), Some(&with_cid), "kept");
        dir.drop_repo("o/r");
        assert!(dir.providers(&m.key, &m.scope_id).is_empty());
        for i in 0..(MAX_ENTRIES + 10) {
            let mut m = m.clone();
            m.key = CacheKey(*blake3::hash(&i.to_le_bytes()).as_bytes());
            dir.insert(m, peer);
        }
        assert_eq!(dir.len(), MAX_ENTRIES);
    }
}
