//! What one peer may take of this node's tables, and the ledger that holds it to that share.
//!
//! A cap alone bounds a table, and lets the first peer that tries fill it for everyone else. So
//! every table a peer adds to is also split by peer: what a peer adds is charged to it, a peer
//! at its share is refused or makes room from its own oldest additions, and the whole table is
//! capped at a number several peers at their full share reach, past which the peer holding the
//! most makes room. A flood from one peer costs that peer its own older entries, nobody else's.
//!
//! ```text
//! table                    a peer adds to it by                   its share            the whole
//! keeper scope slots       subscribing to a topic not followed     SCOPES_PER_PEER      keeper::Limits::scopes
//!                          (freed SCOPE_IDLE after its last use)   (refused past it)
//! directory records        an announcement, or a directory reply   DIRECTORY_PER_PEER   DIRECTORY_RECORDS
//!                                                                  (own oldest out)     (largest share's oldest out)
//! providers of one key     the same: one record per peer a key     one record           INFORMANTS_PER_KEY
//! ```
//!
//! What this node holds itself is recorded apart from the peers' records, under a cap of its
//! own (`directory::OWN_RECORDS`): no peer's flood forgets it, and it takes no peer's room.
//! The scopes this machine's own clients name are bounded in [`crate::topics`]; gossipsub
//! itself takes at most 100 topics of one peer.
//!
//! Which peer is charged: the one that said it, as gossipsub's signature or the connection
//! proves: the signer of an announcement, the sender of a directory reply (not the holders it
//! names: those ids cost nothing to make up).
//!
//! A swarm member can make as many peer ids as it likes; these shares bound what one id takes,
//! so that filling a table takes as many ids, at once, as the table holds shares.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use libp2p::PeerId;

/// New scopes one peer may have a keeper follow at once (scopes followed because other peers
/// or this machine use them are not charged to it). A runner uses one scope, a developer's
/// daemon a few; eight leaves room for those and takes a 256-slot keeper 32 peers to fill.
pub(crate) const SCOPES_PER_PEER: usize = 8;

/// A keeper's scope slot that no connected peer subscribed to, no announcement arrived on and
/// no local client named for this long is freed. An hour outlasts the pause between the jobs of
/// one CI run, so a fleet's scope stays followed between them, and gives back within the hour
/// what peers that left had claimed. What the keeper stored stays stored and served.
pub(crate) const SCOPE_IDLE: Duration = Duration::from_secs(3600);

/// Directory records (a manifest and the peers said to hold it) charged to one peer; past it
/// that peer's oldest is forgotten. Eight full directory replies (a keeper answering for eight
/// scopes), and far more than a runner announces in one job: at the largest manifest size
/// ([`crate::wire::MAX_MANIFEST`], 4 KiB), 8 MiB.
pub(crate) const DIRECTORY_PER_PEER: usize = 8 * crate::wire::MAX_DIRECTORY_ITEMS;

/// Directory records held in all; past it the oldest record of the peer charged with the most
/// is forgotten. Eight peers at their full share: 64 MiB at the largest manifest size, a few
/// MiB at the usual few hundred bytes. Manifests are worth knowing while they are fresh (their
/// TTLs are minutes), so this is more than a fleet announces in that time.
pub(crate) const DIRECTORY_RECORDS: usize = 8 * DIRECTORY_PER_PEER;

/// Peers whose record of one key is kept, each with the manifest it announced or named: two
/// are asked at once, a few more cover departures. One peer has one record of a key, so a
/// newer manifest from one peer adds its record and leaves the others' providers in place.
pub(crate) const INFORMANTS_PER_KEY: usize = 8;

/// Each peer's charges, oldest first, within a share per peer and a cap on the whole.
///
/// The ledger only counts: the table it accounts for removes what [`Ledger::charge`] says must
/// go, and tells it what it removed for other reasons ([`Ledger::release`]).
#[derive(Debug)]
pub(crate) struct Ledger<T> {
    share: usize,
    cap: usize,
    charges: HashMap<PeerId, VecDeque<T>>,
    /// (charges, peer) of every peer charged: the largest share is the last.
    sizes: BTreeSet<(usize, PeerId)>,
    total: usize,
}

impl<T: PartialEq + Clone> Ledger<T> {
    /// A ledger of at most `share` charges per peer and `cap` in all.
    pub(crate) fn new(share: usize, cap: usize) -> Ledger<T> {
        Ledger {
            share: share.max(1),
            cap: cap.max(1),
            charges: HashMap::new(),
            sizes: BTreeSet::new(),
            total: 0,
        }
    }

    /// Charges in all.
    #[cfg(test)]
    pub(crate) fn total(&self) -> usize {
        self.total
    }

    /// Charges of `peer`.
    pub(crate) fn count(&self, peer: &PeerId) -> usize {
        self.charges.get(peer).map_or(0, VecDeque::len)
    }

    fn resize(&mut self, peer: PeerId, before: usize, after: usize) {
        self.sizes.remove(&(before, peer));
        if after > 0 {
            self.sizes.insert((after, peer));
        } else {
            self.charges.remove(&peer);
        }
    }

    /// Charges `item` to `peer`, newest. Returns what must go to keep both bounds, oldest
    /// first: `peer`'s own oldest when it is over its share, else the oldest of the peer
    /// charged with the most when the whole is over the cap. What is returned is no longer
    /// charged.
    pub(crate) fn charge(&mut self, peer: PeerId, item: T) -> Vec<(PeerId, T)> {
        let before = self.count(&peer);
        self.charges.entry(peer).or_default().push_back(item);
        self.resize(peer, before, before + 1);
        self.total += 1;
        let mut out = Vec::new();
        while self.count(&peer) > self.share {
            match self.pop_oldest(peer) {
                Some(item) => out.push((peer, item)),
                None => break,
            }
        }
        while self.total > self.cap {
            let Some(&(_, largest)) = self.sizes.last() else {
                break;
            };
            match self.pop_oldest(largest) {
                Some(item) => out.push((largest, item)),
                None => break,
            }
        }
        out
    }

    fn pop_oldest(&mut self, peer: PeerId) -> Option<T> {
        let before = self.count(&peer);
        let item = self.charges.get_mut(&peer)?.pop_front()?;
        self.resize(peer, before, before - 1);
        self.total -= 1;
        Some(item)
    }

    /// Makes `item` `peer`'s newest charge (it was renewed), if it is charged to `peer`.
    pub(crate) fn renew(&mut self, peer: &PeerId, item: &T) {
        if let Some(items) = self.charges.get_mut(peer) {
            if let Some(at) = items.iter().position(|i| i == item) {
                if let Some(item) = items.remove(at) {
                    items.push_back(item);
                }
            }
        }
    }

    /// `item`, charged to `peer`, was removed: it is no longer charged.
    pub(crate) fn release(&mut self, peer: &PeerId, item: &T) {
        let before = self.count(peer);
        let Some(items) = self.charges.get_mut(peer) else {
            return;
        };
        if let Some(at) = items.iter().position(|i| i == item) {
            items.remove(at);
            self.resize(*peer, before, before - 1);
            self.total -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_over_its_share_pays_with_its_own_oldest() {
        let (flooder, honest) = (PeerId::random(), PeerId::random());
        let mut ledger = Ledger::new(3, 10);
        assert!(ledger.charge(honest, 100).is_empty());
        for n in 0..3 {
            assert!(ledger.charge(flooder, n).is_empty());
        }
        assert_eq!(ledger.charge(flooder, 3), vec![(flooder, 0)]);
        assert_eq!(ledger.charge(flooder, 4), vec![(flooder, 1)]);
        assert_eq!((ledger.count(&flooder), ledger.count(&honest)), (3, 1));
        ledger.renew(&flooder, &2);
        assert_eq!(
            ledger.charge(flooder, 5),
            vec![(flooder, 3)],
            "2 was renewed"
        );
        ledger.release(&flooder, &2);
        ledger.release(&flooder, &99);
        assert_eq!((ledger.count(&flooder), ledger.total()), (2, 3));
    }

    #[test]
    fn past_the_cap_the_largest_share_pays() {
        let peers: Vec<PeerId> = (0..5).map(|_| PeerId::random()).collect();
        let mut ledger = Ledger::new(6, 8);
        for n in 0..6 {
            assert!(ledger.charge(peers[0], n).is_empty(), "up to its share");
        }
        assert!(ledger.charge(peers[1], 10).is_empty());
        assert!(ledger.charge(peers[2], 20).is_empty());
        // The whole is full: each new charge costs the largest share its oldest, never the
        // peers with one each.
        assert_eq!(ledger.charge(peers[3], 30), vec![(peers[0], 0)]);
        assert_eq!(ledger.charge(peers[4], 40), vec![(peers[0], 1)]);
        assert_eq!(ledger.total(), 8);
        for p in &peers[1..] {
            assert_eq!(ledger.count(p), 1);
        }
    }
}
