//! What the swarm has announced: manifests and who holds them, learned from gossip and from
//! the directories of peers this node connected to, and what this node holds itself.
//!
//! Each record is one peer's word: a manifest and the peers it said hold that entry (itself, in
//! an announcement; up to [`wire::MAX_DIRECTORY_PROVIDERS`] in a directory reply). A key has at
//! most one record per peer, so a peer that announces a newer manifest of a key replaces its own
//! record, not the providers other peers announced; lookups ask the holders of the newest
//! manifest first and the others after. Records are charged to the peer that told this node
//! ([`crate::shares`]): one peer's flood forgets its own oldest records, never another's.

use std::collections::HashMap;
use std::time::Duration;

use ghcache_core::{CacheKey, Manifest, ScopeId, Selector};
use libp2p::PeerId;

use crate::shares::{Ledger, DIRECTORY_PER_PEER, DIRECTORY_RECORDS, INFORMANTS_PER_KEY};
use crate::wire;

/// Records of what this node holds itself. They come from this machine, not from peers, so no
/// share applies; the number is the peers' whole: a keeper names what it holds in directory
/// replies, and its entries are worth naming while they are fresh (minutes).
const OWN_RECORDS: usize = DIRECTORY_RECORDS;

/// One peer's word about a key.
#[derive(Debug, Clone)]
struct Record {
    /// The peer that said it (the signer of the announcement, or the sender of the directory
    /// reply): the record is charged to it.
    informant: PeerId,
    manifest: Manifest,
    /// Peers said to hold `manifest`'s entry, at most [`wire::MAX_DIRECTORY_PROVIDERS`].
    holders: Vec<PeerId>,
}

/// Whether two manifests describe the same answer (one may carry the IPFS CID added later).
fn same_answer(a: &Manifest, b: &Manifest) -> bool {
    a.created_at_ms == b.created_at_ms && a.body_digest == b.body_digest
}

/// A bounded map of cache key to the manifests peers announced for it and who holds each.
#[derive(Debug)]
pub(crate) struct Directory {
    /// This node: what it holds is always recorded.
    me: PeerId,
    records: HashMap<CacheKey, Vec<Record>>,
    /// The records peers told this node, by peer.
    ledger: Ledger<CacheKey>,
    /// This node's own records (what it holds): bounded apart from the peers', so that no
    /// peer's flood forgets what this node holds, and what it holds leaves the peers' room.
    own: Ledger<CacheKey>,
}

impl Directory {
    /// An empty directory of the node `me`.
    pub(crate) fn new(me: PeerId) -> Directory {
        Directory::with_bounds(me, DIRECTORY_PER_PEER, DIRECTORY_RECORDS)
    }

    fn with_bounds(me: PeerId, share: usize, cap: usize) -> Directory {
        Directory {
            me,
            records: HashMap::new(),
            ledger: Ledger::new(share, cap),
            own: Ledger::new(OWN_RECORDS, OWN_RECORDS),
        }
    }

    fn ledger_of(&mut self, informant: &PeerId) -> &mut Ledger<CacheKey> {
        if informant == &self.me {
            &mut self.own
        } else {
            &mut self.ledger
        }
    }

    /// Records that `informant` said `holders` hold `manifest`'s entry (an announcement names
    /// its signer; this node names itself for what it holds). A newer manifest from the same
    /// informant replaces its record, an older one is ignored, the same one merges the holders
    /// (and takes the IPFS CID if it carries one now). Other informants' records of the key stay.
    ///
    /// Returns how many records the informant's share cost: its own oldest forgotten, or this
    /// one refused because the key has records of [`INFORMANTS_PER_KEY`] other peers (this
    /// node's own record is never refused: the oldest other one makes room).
    pub(crate) fn insert(
        &mut self,
        manifest: Manifest,
        informant: PeerId,
        holders: &[PeerId],
    ) -> usize {
        let key = manifest.key;
        let records = self.records.entry(key).or_default();
        if let Some(record) = records.iter_mut().find(|r| r.informant == informant) {
            if manifest.created_at_ms < record.manifest.created_at_ms {
                // An older answer: its holders do not hold the one this peer said before.
                return 0;
            }
            if same_answer(&manifest, &record.manifest) {
                if record.manifest.cid.is_none() && manifest.cid.is_some() {
                    record.manifest = manifest;
                }
            } else if manifest.created_at_ms > record.manifest.created_at_ms {
                record.manifest = manifest;
                record.holders.clear();
            } else {
                // The same time and another body: the first word stands.
                return 0;
            }
            for holder in holders {
                if record.holders.len() < wire::MAX_DIRECTORY_PROVIDERS
                    && !record.holders.contains(holder)
                {
                    record.holders.push(*holder);
                }
            }
            self.ledger_of(&informant).renew(&informant, &key);
            return 0;
        }
        if holders.is_empty() {
            if records.is_empty() {
                self.records.remove(&key);
            }
            return 0;
        }
        if records.len() >= INFORMANTS_PER_KEY {
            if informant != self.me {
                return 1;
            }
            // What this node holds is a fact, not a claim: the oldest word of a peer goes.
            if let Some(at) = (0..records.len()).min_by_key(|&i| records[i].manifest.created_at_ms)
            {
                let gone = records.remove(at);
                // Never this node's own: it has one record of a key, and it is not in the list.
                self.ledger.release(&gone.informant, &key);
            }
        }
        let mut named: Vec<PeerId> = Vec::new();
        for holder in holders {
            if named.len() < wire::MAX_DIRECTORY_PROVIDERS && !named.contains(holder) {
                named.push(*holder);
            }
        }
        records.push(Record {
            informant,
            manifest,
            holders: named,
        });
        let mut over = 0;
        for (peer, old) in self.ledger_of(&informant).charge(informant, key) {
            if peer == informant {
                over += 1;
            }
            self.remove_record(&old, &peer);
        }
        over
    }

    /// Removes `informant`'s record of `key` (the ledger already let it go).
    fn remove_record(&mut self, key: &CacheKey, informant: &PeerId) {
        if let Some(records) = self.records.get_mut(key) {
            records.retain(|r| &r.informant != informant);
            if records.is_empty() {
                self.records.remove(key);
            }
        }
    }

    /// The records of `key` in scope `scope_id`, newest manifest first.
    fn of(&self, key: &CacheKey, scope_id: &ScopeId) -> Vec<&Record> {
        let mut found: Vec<&Record> = self
            .records
            .get(key)
            .into_iter()
            .flatten()
            .filter(|r| &r.manifest.scope_id == scope_id)
            .collect();
        found.sort_by_key(|r| std::cmp::Reverse(r.manifest.created_at_ms));
        found
    }

    /// Peers said to hold `key` in scope `scope_id`: the holders of the newest manifest first,
    /// then those of older ones (still fresh, maybe; the fetched entry is checked anyway).
    pub(crate) fn providers(&self, key: &CacheKey, scope_id: &ScopeId) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = Vec::new();
        for record in self.of(key, scope_id) {
            for holder in &record.holders {
                if !peers.contains(holder) {
                    peers.push(*holder);
                }
            }
        }
        peers
    }

    /// The manifest announced for `key` in scope `scope_id`, whoever still holds it, for an IPFS
    /// lookup: the newest that names a CID, else the newest. A newer manifest without a CID
    /// is no help there, and one peer's newer word does not hide another's CID.
    pub(crate) fn manifest(&self, key: &CacheKey, scope_id: &ScopeId) -> Option<&Manifest> {
        let records = self.of(key, scope_id);
        records
            .iter()
            .find(|r| r.manifest.cid.is_some())
            .or_else(|| records.first())
            .map(|r| &r.manifest)
    }

    /// Whether `peer` is said to hold an entry of `key`.
    #[cfg(test)]
    pub(crate) fn holds(&self, key: &CacheKey, peer: &PeerId) -> bool {
        self.records
            .get(key)
            .is_some_and(|records| records.iter().any(|r| r.holders.contains(peer)))
    }

    /// Whether `peer` is said to hold `manifest`'s answer, or a newer one of its key and scope.
    /// A keeper that holds only an older answer of a key fetches the newer one announced: its
    /// own copy may have expired, and its record stays beside the announcer's.
    pub(crate) fn holds_as_new(&self, manifest: &Manifest, peer: &PeerId) -> bool {
        self.of(&manifest.key, &manifest.scope_id)
            .iter()
            .any(|r| r.holders.contains(peer) && r.manifest.created_at_ms >= manifest.created_at_ms)
    }

    /// Up to `limit` manifests of scope `scope_id` that are fresh at `now_ms`, newest first, each
    /// with up to [`wire::MAX_DIRECTORY_PROVIDERS`] of its holders, `first` first when it is
    /// one: what a peer that asks for this node's directory gets. Where peers named different
    /// manifests of one key, each is listed with its own holders.
    pub(crate) fn newest(
        &self,
        scope_id: &ScopeId,
        limit: usize,
        now_ms: u64,
        first: &PeerId,
    ) -> Vec<(Manifest, Vec<PeerId>)> {
        let mut found: Vec<(Manifest, Vec<PeerId>)> = Vec::new();
        for records in self.records.values() {
            let mut answers: Vec<(Manifest, Vec<PeerId>)> = Vec::new();
            for record in records {
                let m = &record.manifest;
                if &m.scope_id != scope_id
                    || record.holders.is_empty()
                    || !m.is_fresh(now_ms, Duration::ZERO)
                {
                    continue;
                }
                match answers.iter_mut().find(|(known, _)| same_answer(known, m)) {
                    Some((known, holders)) => {
                        if known.cid.is_none() && m.cid.is_some() {
                            *known = m.clone();
                        }
                        for holder in &record.holders {
                            if !holders.contains(holder) {
                                holders.push(*holder);
                            }
                        }
                    }
                    None => answers.push((m.clone(), record.holders.clone())),
                }
            }
            found.extend(answers);
        }
        found.sort_by_key(|(m, _)| std::cmp::Reverse(m.created_at_ms));
        found.truncate(limit);
        for (_, holders) in &mut found {
            if let Some(at) = holders.iter().position(|p| p == first) {
                holders.remove(at);
                holders.insert(0, *first);
            }
            holders.truncate(wire::MAX_DIRECTORY_PROVIDERS);
        }
        found
    }

    /// Forgets what `peer` said and that it holds anything (it sent bad data).
    pub(crate) fn forget_peer(&mut self, peer: &PeerId) {
        self.forget(|r| {
            r.holders.retain(|h| h != peer);
            &r.informant == peer || r.holders.is_empty()
        });
    }

    /// Drops every manifest `invalidation` covers.
    pub(crate) fn invalidate(&mut self, selector: &Selector) {
        self.forget(|r| selector.covers(&r.manifest));
    }

    /// Removes the records `gone` says must go (it may change the others), and their charges.
    fn forget(&mut self, mut gone: impl FnMut(&mut Record) -> bool) {
        let (me, own, ledger) = (self.me, &mut self.own, &mut self.ledger);
        self.records.retain(|key, records| {
            records.retain_mut(|r| {
                let goes = gone(r);
                if goes {
                    let charged = if r.informant == me {
                        &mut *own
                    } else {
                        &mut *ledger
                    };
                    charged.release(&r.informant, key);
                }
                !goes
            });
            !records.is_empty()
        });
    }

    /// Number of keys with a manifest known.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Number of records held: what the directory's memory is bounded by.
    #[cfg(test)]
    fn record_count(&self) -> usize {
        self.records.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ghcache_core::now_ms;
    use ghcache_core::testkit::sample_entry;

    fn keyed(n: usize, repo: &str) -> Manifest {
        let mut m = sample_entry(1, repo, b"x").manifest;
        m.key = CacheKey(*blake3::hash(&n.to_le_bytes()).as_bytes());
        m
    }

    #[test]
    fn scoped_and_droppable() {
        let me = PeerId::random();
        let mut dir = Directory::new(me);
        let peer = PeerId::random();
        let m = sample_entry(1, "o/r", b"x").manifest;
        dir.insert(m.clone(), peer, &[peer]);
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
        dir.insert(with_cid.clone(), peer, &[peer]);
        assert_eq!(dir.manifest(&m.key, &m.scope_id), Some(&with_cid));
        dir.insert(m.clone(), peer, &[peer]);
        assert_eq!(dir.manifest(&m.key, &m.scope_id), Some(&with_cid), "kept");
        dir.invalidate(&Selector::Repo("o/r".into()));
        assert!(dir.providers(&m.key, &m.scope_id).is_empty());
        assert_eq!(
            (dir.len(), dir.record_count(), dir.ledger.total()),
            (0, 0, 0)
        );
        dir.insert(m.clone(), me, &[me]);
        dir.forget_peer(&peer);
        assert_eq!(
            (dir.record_count(), dir.own.total()),
            (1, 1),
            "only the peer's go"
        );
    }

    #[test]
    fn a_holder_of_an_older_answer_does_not_hold_a_newer_one() {
        let me = PeerId::random();
        let runner = PeerId::random();
        let mut dir = Directory::new(me);
        let old = keyed(1, "o/r");
        dir.insert(old.clone(), me, &[me]);
        let mut newer = old.clone();
        newer.created_at_ms += 60_000;
        newer.body_digest = ghcache_core::Digest([9; 32]);
        dir.insert(newer.clone(), runner, &[runner]);
        assert!(dir.holds(&old.key, &me), "it holds an answer of the key");
        assert!(dir.holds_as_new(&old, &me));
        assert!(!dir.holds_as_new(&newer, &me), "not the newer answer");
        assert!(dir.holds_as_new(&newer, &runner));
        dir.insert(newer.clone(), me, &[me]);
        assert!(dir.holds_as_new(&newer, &me), "once it took the newer one");
    }

    #[test]
    fn a_flood_from_one_peer_forgets_its_own_oldest_and_no_one_elses() {
        let me = PeerId::random();
        let (honest, flooder) = (PeerId::random(), PeerId::random());
        let mut dir = Directory::new(me);
        let honest_ones: Vec<Manifest> = (0..10).map(|n| keyed(n, "o/r")).collect();
        for m in &honest_ones {
            dir.insert(m.clone(), honest, &[honest]);
        }
        // As many manifests as the directory used to hold, each naming four made-up holders.
        let mut over = 0;
        for n in 1000..51_000 {
            let holders: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
            over += dir.insert(keyed(n, "o/r"), flooder, &holders);
        }
        assert_eq!(dir.ledger.count(&flooder), DIRECTORY_PER_PEER);
        assert_eq!(over, 50_000 - DIRECTORY_PER_PEER, "each one past the share");
        assert_eq!(dir.record_count(), DIRECTORY_PER_PEER + honest_ones.len());
        assert_eq!(dir.len(), dir.record_count());
        for m in &honest_ones {
            assert_eq!(dir.providers(&m.key, &m.scope_id), vec![honest]);
        }
        assert!(
            dir.providers(&keyed(50_999, "o/r").key, &honest_ones[0].scope_id)
                .len()
                == 4,
            "the flooder's newest are kept"
        );
        assert!(dir
            .providers(&keyed(1000, "o/r").key, &honest_ones[0].scope_id)
            .is_empty());
    }

    #[test]
    fn many_peers_at_their_share_fill_the_whole_and_no_more() {
        let me = PeerId::random();
        let mut dir = Directory::with_bounds(me, 10, 35);
        let quiet = PeerId::random();
        let a = keyed(0, "o/r");
        dir.insert(a.clone(), quiet, &[quiet]);
        let mut n = 1;
        for _ in 0..8 {
            let flooder = PeerId::random();
            for _ in 0..20 {
                dir.insert(keyed(n, "o/r"), flooder, &[flooder]);
                n += 1;
            }
        }
        assert_eq!(dir.record_count(), 35);
        assert_eq!(
            dir.providers(&a.key, &a.scope_id),
            vec![quiet],
            "the smallest share stays"
        );
        for own in n..n + 50 {
            dir.insert(keyed(own, "o/r"), me, &[me]);
        }
        assert_eq!(
            dir.record_count(),
            35 + 50,
            "this node's own are bounded apart"
        );
        assert_eq!(dir.ledger.total(), 35, "and cost the peers nothing");
        assert!(dir.holds(&keyed(n + 49, "o/r").key, &me));
        assert_eq!(dir.providers(&a.key, &a.scope_id), vec![quiet]);
    }

    #[test]
    fn a_newer_announcement_adds_its_provider_and_leaves_the_honest_one() {
        let me = PeerId::random();
        let (honest, hostile) = (PeerId::random(), PeerId::random());
        let mut dir = Directory::new(me);
        let mut m = sample_entry(1, "o/r", b"x").manifest;
        m.created_at_ms = now_ms() - 1000;
        m.cid = Some("bafyhonest".into());
        dir.insert(m.clone(), honest, &[honest]);
        let mut newer = sample_entry(1, "o/r", b"other").manifest;
        newer.created_at_ms = now_ms();
        dir.insert(newer.clone(), hostile, &[hostile]);
        assert_eq!(
            dir.providers(&m.key, &m.scope_id),
            vec![hostile, honest],
            "the newest first, the honest one still there"
        );
        assert_eq!(
            dir.manifest(&m.key, &m.scope_id),
            Some(&m),
            "the one with a CID"
        );
        let reply = dir.newest(&m.scope_id, 10, now_ms(), &me);
        assert_eq!(reply.len(), 2, "each manifest with its own holders");
        assert_eq!(reply[1], (m.clone(), vec![honest]));
        // A peer replaces only its own record; the rest stay until an invalidation.
        let mut newest = newer.clone();
        newest.created_at_ms += 1;
        dir.insert(newest, hostile, &[hostile]);
        assert_eq!(dir.providers(&m.key, &m.scope_id), vec![hostile, honest]);
        // Many peers: one record each, a bounded number per key; this node always gets in.
        for _ in 0..INFORMANTS_PER_KEY {
            let p = PeerId::random();
            dir.insert(newer.clone(), p, &[p]);
        }
        assert_eq!(dir.record_count(), INFORMANTS_PER_KEY);
        assert!(dir.providers(&m.key, &m.scope_id).contains(&honest));
        dir.insert(m.clone(), me, &[me]);
        assert!(dir.holds(&m.key, &me));
        assert_eq!(dir.record_count(), INFORMANTS_PER_KEY);
        dir.forget_peer(&hostile);
        assert!(!dir.providers(&m.key, &m.scope_id).contains(&hostile));
        dir.invalidate(&Selector::Repo("o/r".into()));
        assert!(
            dir.providers(&m.key, &m.scope_id).is_empty(),
            "covered: all go"
        );
        assert_eq!((dir.ledger.total(), dir.own.total()), (0, 0));
    }

    #[test]
    fn a_directory_reply_is_fresh_newest_first_capped_and_names_its_sender_first() {
        let (me, other) = (PeerId::random(), PeerId::random());
        let mut dir = Directory::new(me);
        let now = now_ms();
        let mut made = Vec::new();
        for i in 0..10u8 {
            let mut m = sample_entry(i, "o/r", b"x").manifest;
            m.created_at_ms = now - 1000 + u64::from(i);
            dir.insert(m.clone(), other, &[other]);
            made.push(m);
        }
        let mut stale = sample_entry(20, "o/r", b"x").manifest;
        stale.created_at_ms = now - 3_600_000;
        dir.insert(stale, other, &[other]);
        let mut elsewhere = sample_entry(21, "o/r", b"x").manifest;
        elsewhere.scope_id = ScopeId([9; 32]);
        dir.insert(elsewhere, other, &[other]);
        dir.insert(made[9].clone(), me, &[me]);
        for _ in 0..10 {
            let p = PeerId::random();
            dir.insert(made[9].clone(), p, &[p]);
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
