//! Which peers a lookup asks first, and which it does not ask at all.
//!
//! Runners on hosted CI sit behind NAT: they dial out and accept nothing. A dial to one does not
//! fail, it hangs (the SYN is dropped) until the transport gives up, long after a lookup's
//! deadline. So a lookup asks the peers it is connected to first, keepers first among them, and
//! skips peers that recently could not be dialed, or whose dial has hung for a while: asking one
//! of those again would spend the deadline on a peer that cannot answer.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;

/// Peers remembered at most, failed and dialing each: past it the oldest is forgotten first.
const MAX_REMEMBERED: usize = 1024;
/// How long a peer that could not be dialed is skipped. Long enough to cover a CI job, short
/// enough that a peer that was down briefly is tried again.
const FAILED_FOR: Duration = Duration::from_secs(300);
/// A dial that has not connected after this long is taken for one that hangs: on a LAN or in a
/// data centre a connection takes milliseconds.
const SLOW_DIAL: Duration = Duration::from_secs(1);

/// Peers that could not be dialed lately, and dials in progress, each bounded and expiring.
#[derive(Debug, Default)]
pub(crate) struct FailedDials {
    failed: HashMap<PeerId, Instant>,
    dialing: HashMap<PeerId, Instant>,
}

/// Inserts `peer` with time `at`, forgetting what expired (or the oldest) when `map` is full.
fn remember(map: &mut HashMap<PeerId, Instant>, peer: PeerId, at: Instant, keep_for: Duration) {
    if !map.contains_key(&peer) && map.len() >= MAX_REMEMBERED {
        map.retain(|_, since| at.saturating_duration_since(*since) < keep_for);
        if map.len() >= MAX_REMEMBERED {
            if let Some(oldest) = map.iter().min_by_key(|(_, since)| **since).map(|(p, _)| *p) {
                map.remove(&oldest);
            }
        }
    }
    map.insert(peer, at);
}

impl FailedDials {
    /// A dial to `peer` begins (unless one is already under way).
    pub(crate) fn dialing(&mut self, peer: PeerId, now: Instant) {
        if !self.dialing.contains_key(&peer) {
            remember(&mut self.dialing, peer, now, SLOW_DIAL);
        }
    }

    /// A dial to `peer` failed: skip it for a while.
    pub(crate) fn failed(&mut self, peer: PeerId, now: Instant) {
        self.dialing.remove(&peer);
        remember(&mut self.failed, peer, now, FAILED_FOR);
    }

    /// `peer` is connected: whatever failed before works now.
    pub(crate) fn connected(&mut self, peer: &PeerId) {
        self.failed.remove(peer);
        self.dialing.remove(peer);
    }

    /// Whether a lookup should not ask `peer` (when it is not connected).
    pub(crate) fn unreachable(&self, peer: &PeerId, now: Instant) -> bool {
        let within = |map: &HashMap<PeerId, Instant>, span: Duration| {
            map.get(peer)
                .is_some_and(|since| now.saturating_duration_since(*since) < span)
        };
        let hanging = self
            .dialing
            .get(peer)
            .is_some_and(|since| now.saturating_duration_since(*since) >= SLOW_DIAL);
        within(&self.failed, FAILED_FOR) || hanging
    }

    /// Peers skipped now, for `status`.
    pub(crate) fn count(&self, now: Instant) -> usize {
        let peers: HashSet<&PeerId> = self.failed.keys().chain(self.dialing.keys()).collect();
        peers
            .into_iter()
            .filter(|p| self.unreachable(p, now))
            .count()
    }
}

/// What a lookup knows about the peers it may ask.
pub(crate) struct Reach<'a> {
    /// Peers connected now.
    pub(crate) connected: &'a HashSet<PeerId>,
    /// Connected peers that said they are keepers.
    pub(crate) keepers: &'a HashSet<PeerId>,
    /// Recent dial failures.
    pub(crate) failed: &'a FailedDials,
    /// This node, never asked.
    pub(crate) me: PeerId,
    /// The time of the lookup.
    pub(crate) now: Instant,
}

impl Reach<'_> {
    /// The peers to ask, best first: connected holders that are keepers, other connected
    /// holders, connected keepers not known to hold the entry (a keeper holds what its scope's
    /// peers fetched), then holders that are not connected and not known to be unreachable.
    /// Each peer once.
    pub(crate) fn rank(&self, holders: impl IntoIterator<Item = PeerId>) -> Vec<PeerId> {
        let holders: HashSet<PeerId> = holders.into_iter().collect();
        let mut ranked: Vec<(u8, PeerId)> = holders
            .iter()
            .chain(self.keepers.iter().filter(|k| !holders.contains(k)))
            .filter(|p| **p != self.me)
            .filter_map(|p| {
                let connected = self.connected.contains(p);
                let rank = match (holders.contains(p), connected, self.keepers.contains(p)) {
                    (true, true, true) => 0,
                    (true, true, false) => 1,
                    (false, true, _) => 2,
                    (true, false, _) if !self.failed.unreachable(p, self.now) => 3,
                    _ => return None,
                };
                Some((rank, *p))
            })
            .collect();
        // Stable among equals only by peer id: which of two equal peers goes first does not
        // matter, but the same answer each time makes logs comparable.
        ranked.sort();
        ranked.into_iter().map(|(_, p)| p).collect()
    }

    /// Whether any of `peers` is connected.
    pub(crate) fn any_connected(&self, peers: &[PeerId]) -> bool {
        peers.iter().any(|p| self.connected.contains(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        PeerId::random()
    }

    #[test]
    fn failed_peers_are_skipped_for_a_while_then_tried_again() {
        let mut dials = FailedDials::default();
        let now = Instant::now();
        let p = peer();
        assert!(!dials.unreachable(&p, now));
        dials.failed(p, now);
        assert!(dials.unreachable(&p, now + Duration::from_secs(1)));
        assert!(!dials.unreachable(&p, now + FAILED_FOR));
        dials.connected(&p);
        assert!(!dials.unreachable(&p, now));
    }

    #[test]
    fn a_dial_that_hangs_counts_as_unreachable_before_it_fails() {
        let mut dials = FailedDials::default();
        let now = Instant::now();
        let p = peer();
        dials.dialing(p, now);
        assert!(!dials.unreachable(&p, now + SLOW_DIAL / 2), "just started");
        assert!(dials.unreachable(&p, now + SLOW_DIAL));
        // A second lookup's dial does not restart the clock.
        dials.dialing(p, now + SLOW_DIAL);
        assert!(dials.unreachable(&p, now + SLOW_DIAL));
        dials.connected(&p);
        assert!(!dials.unreachable(&p, now + SLOW_DIAL));
    }

    #[test]
    fn the_memory_is_bounded_and_forgets_the_oldest() {
        let mut dials = FailedDials::default();
        let start = Instant::now();
        let first = peer();
        dials.failed(first, start);
        for i in 1..(MAX_REMEMBERED as u64 * 3) {
            dials.failed(peer(), start + Duration::from_millis(i));
            dials.dialing(peer(), start + Duration::from_millis(i));
        }
        assert!(dials.failed.len() <= MAX_REMEMBERED);
        assert!(dials.dialing.len() <= MAX_REMEMBERED);
        assert!(!dials.failed.contains_key(&first), "the oldest went first");
        // Expired entries make room before live ones are dropped.
        let later = start + FAILED_FOR + Duration::from_secs(3600);
        let fresh = peer();
        dials.failed(fresh, later);
        assert!(dials.unreachable(&fresh, later));
        assert!(dials.failed.len() <= 2, "expired ones were swept");
    }

    #[test]
    fn connected_keepers_first_and_unreachable_holders_never() {
        let (me, keeper, near, far, dead, idle_keeper) =
            (peer(), peer(), peer(), peer(), peer(), peer());
        let connected = HashSet::from([keeper, near, idle_keeper, me]);
        let keepers = HashSet::from([keeper, idle_keeper]);
        let mut failed = FailedDials::default();
        let now = Instant::now();
        failed.failed(dead, now);
        let reach = Reach {
            connected: &connected,
            keepers: &keepers,
            failed: &failed,
            me,
            now,
        };
        let ranked = reach.rank([far, dead, near, keeper, me]);
        assert_eq!(ranked, vec![keeper, near, idle_keeper, far]);
        assert!(reach.any_connected(&ranked));
        // Nothing known: the connected keepers are still worth one request each.
        assert_eq!(
            reach.rank([]),
            vec![idle_keeper.min(keeper), idle_keeper.max(keeper)]
        );
        let no_keepers = HashSet::new();
        let alone = Reach {
            keepers: &no_keepers,
            ..reach
        };
        assert_eq!(alone.rank([far, dead]), vec![far]);
        assert!(
            !alone.any_connected(&alone.rank([far])),
            "every one costs a dial"
        );
    }
}
