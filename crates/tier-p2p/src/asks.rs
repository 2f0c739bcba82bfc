//! Whom one lookup asks, in which order, and which of its fetches it still waits for.
//!
//! Its own module because the lookup ([`crate::fetches`]) is a race of fetches, a DHT walk and
//! timers, and what it knows of each peer asked is easier to get right (and to test) apart
//! from the race: a fetch from a peer that is not connected waits on a dial, which is given
//! up after a while; a peer whose fetch failed before a walk brought its address is asked
//! again once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;

/// What a lookup knows of one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    /// A fetch is under way; since when, if it waits on a dial the lookup times.
    Pending(Option<Instant>),
    /// The fetch failed without an answer (no address known, say): a walk may bring it again.
    Failed,
    /// It answered, or its dial was given up: not asked again.
    Done,
}

/// The peers of one lookup: those still to ask, best first, and those asked.
#[derive(Debug, Default)]
pub(crate) struct Asks {
    queue: VecDeque<PeerId>,
    /// Peers not connected when they were named: asking one waits on a dial.
    unconnected: HashSet<PeerId>,
    asked: HashMap<PeerId, Asked>,
    /// Fetches under way that the lookup still waits for.
    pub(crate) live: usize,
}

impl Asks {
    /// `peers` to ask in this order, `unconnected` those of them that cost a dial.
    pub(crate) fn new(peers: Vec<PeerId>, unconnected: HashSet<PeerId>) -> Asks {
        Asks {
            queue: peers.into(),
            unconnected,
            ..Asks::default()
        }
    }

    /// The next peer to ask, now, if any is left; counted as a fetch under way.
    pub(crate) fn next(&mut self, now: Instant) -> Option<PeerId> {
        while let Some(peer) = self.queue.pop_front() {
            if self.asked.contains_key(&peer) {
                continue;
            }
            let timed = self.unconnected.contains(&peer).then_some(now);
            self.asked.insert(peer, Asked::Pending(timed));
            self.live += 1;
            return Some(peer);
        }
        None
    }

    /// A DHT walk found `peers`: those not asked yet, or whose fetch failed before the walk
    /// brought their address, are asked after the ones queued.
    pub(crate) fn walked(&mut self, peers: Vec<PeerId>, unconnected: HashSet<PeerId>) {
        for peer in peers {
            if self.asked.get(&peer) == Some(&Asked::Failed) {
                self.asked.remove(&peer);
            }
            self.queue.push_back(peer);
        }
        self.unconnected.extend(unconnected);
    }

    /// When the first dial waited on will have taken `patience`.
    pub(crate) fn due(&self, patience: Duration) -> Option<Instant> {
        self.asked
            .values()
            .filter_map(|a| match a {
                Asked::Pending(Some(since)) => Some(*since + patience),
                _ => None,
            })
            .min()
    }

    /// The peers whose dial has taken `patience` by `now`: no longer timed (one that connected
    /// meanwhile is waited for until the deadline, as a connected peer is).
    pub(crate) fn take_due(&mut self, now: Instant, patience: Duration) -> Vec<PeerId> {
        let mut due = Vec::new();
        for (peer, asked) in &mut self.asked {
            if let Asked::Pending(Some(since)) = asked {
                if *since + patience <= now {
                    *asked = Asked::Pending(None);
                    due.push(*peer);
                }
            }
        }
        due
    }

    /// The dials to `peers` hang: their fetches are not waited for any more.
    pub(crate) fn hung(&mut self, peers: Vec<PeerId>) {
        for peer in peers {
            if let Some(asked @ Asked::Pending(_)) = self.asked.get_mut(&peer) {
                *asked = Asked::Done;
                self.live -= 1;
            }
        }
    }

    /// `peer`'s fetch ended: with an answer (`responded`), or failed.
    pub(crate) fn answered(&mut self, peer: PeerId, responded: bool) {
        if let Some(asked @ Asked::Pending(_)) = self.asked.get_mut(&peer) {
            *asked = if responded {
                Asked::Done
            } else {
                Asked::Failed
            };
            self.live -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENCE: Duration = Duration::from_millis(20);

    #[test]
    fn each_peer_is_asked_once_and_only_dials_are_timed() {
        let (near, far) = (PeerId::random(), PeerId::random());
        let mut asks = Asks::new(vec![near, far, near], HashSet::from([far]));
        let now = Instant::now();
        assert_eq!(asks.next(now), Some(near));
        assert_eq!(asks.due(PATIENCE), None, "a connected peer costs no dial");
        assert_eq!(asks.next(now), Some(far));
        assert_eq!(asks.next(now), None, "near was asked already");
        assert_eq!(asks.live, 2);
        assert_eq!(asks.due(PATIENCE), Some(now + PATIENCE));
        assert!(asks.take_due(now, PATIENCE).is_empty(), "not yet");
        assert_eq!(asks.take_due(now + PATIENCE, PATIENCE), vec![far]);
        asks.hung(vec![far]);
        assert_eq!(asks.live, 1, "the hung dial is not waited for");
        // Its fetch ending later changes nothing.
        asks.answered(far, false);
        assert_eq!(asks.live, 1);
        asks.answered(near, true);
        assert_eq!(asks.live, 0);
        asks.walked(vec![near, far], HashSet::new());
        assert_eq!(
            asks.next(now),
            None,
            "answered or given up: not asked again"
        );
    }

    #[test]
    fn a_peer_whose_fetch_failed_is_asked_again_when_a_walk_names_it() {
        let (heard, other) = (PeerId::random(), PeerId::random());
        let mut asks = Asks::new(vec![heard], HashSet::from([heard]));
        let now = Instant::now();
        assert_eq!(asks.next(now), Some(heard));
        asks.answered(heard, false);
        assert_eq!(asks.live, 0);
        assert_eq!(asks.due(PATIENCE), None);
        asks.walked(vec![other, heard], HashSet::from([other, heard]));
        assert_eq!(asks.next(now), Some(other));
        assert_eq!(asks.next(now), Some(heard));
        assert_eq!(asks.live, 2);
        asks.answered(heard, false);
        asks.walked(vec![heard], HashSet::new());
        assert_eq!(
            asks.next(now),
            Some(heard),
            "each walk may bring it once more"
        );
    }

    #[test]
    fn a_dial_that_connected_in_time_is_still_waited_for() {
        let peer = PeerId::random();
        let mut asks = Asks::new(vec![peer], HashSet::from([peer]));
        let now = Instant::now();
        asks.next(now);
        assert_eq!(asks.take_due(now + PATIENCE, PATIENCE), vec![peer]);
        // The swarm says it is connected now: `hung` is not called for it.
        assert_eq!(asks.due(PATIENCE), None, "no longer timed");
        assert_eq!(asks.live, 1);
        asks.answered(peer, true);
        assert_eq!(asks.live, 0);
    }
}
