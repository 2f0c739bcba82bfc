//! Keepers: long-lived, reachable peers that hold copies of what the runners of their scopes
//! fetched, so that the answers outlive the runners.
//!
//! Hosted CI runners can dial out and accept nothing, and they leave when their job ends. A
//! keeper (`ghcache daemon --keep`, usually the fleet's seed, which every runner dials) follows
//! the gossip topic of every scope its peers subscribe to, and fetches each entry announced there
//! from the announcing peer, over the connection that peer opened, while it is connected. What it
//! fetched is checked like any lookup's answer, stored, provided in the DHT and served.
//!
//! This module holds the keeper's bounded bookkeeping; the node drives it. Everything is capped:
//! scopes followed, fetches queued and in flight, and the bytes those fetches may bring in at
//! once (what is stored is capped by the store's own size limit, least recently used out first).
//! A scope slot is charged to the peer whose subscription took it, within its share
//! ([`crate::shares::SCOPES_PER_PEER`]), and freed when no peer used it for a while
//! ([`crate::shares::SCOPE_IDLE`]): no peer can hold every slot, nor keep one it left.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use ghcache_core::{CacheKey, Manifest, ScopeId, Selector};
use libp2p::PeerId;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::shares::{SCOPES_PER_PEER, SCOPE_IDLE};
use crate::status::Keeping;
use crate::wire;

/// The agent version a daemon sends in identify: how peers tell a keeper from other peers.
pub(crate) fn agent_version(keep: bool) -> String {
    let role = if keep { KEEPER } else { "peer" };
    format!("ghcache/{} {role}", env!("CARGO_PKG_VERSION"))
}

/// Whether a peer's identify agent version says it is a keeper.
pub(crate) fn is_keeper(agent_version: &str) -> bool {
    let mut words = agent_version.split_whitespace();
    words.next().is_some_and(|w| w.starts_with("ghcache/")) && words.next() == Some(KEEPER)
}

const KEEPER: &str = "keeper";

/// The keeper's bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Scopes followed because peers use them. A scope is a team, or a repository's Actions
    /// jobs: a fleet has a few, an organisation's seed some hundreds.
    pub(crate) scopes: usize,
    /// Of those, the new scopes one peer may have followed at once.
    pub(crate) scopes_per_peer: usize,
    /// A slot no peer used for this long is freed.
    pub(crate) scope_idle: Duration,
    /// Fetches at once: enough to keep up with a fleet's announcements over a LAN.
    pub(crate) in_flight: usize,
    /// Fetches waiting for a slot; announcements past it are not kept.
    pub(crate) queued: usize,
    /// Bytes the fetches in flight may bring in at once (by their manifests' sizes). One fetch
    /// is always allowed, and no body is larger than [`wire::MAX_BODY`].
    pub(crate) bytes_in_flight: u64,
    /// Peers' fetch requests waiting for a fetch in flight to land.
    pub(crate) waiters: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            scopes: 256,
            scopes_per_peer: SCOPES_PER_PEER,
            scope_idle: SCOPE_IDLE,
            in_flight: 8,
            queued: 1024,
            bytes_in_flight: 4 * wire::MAX_BODY as u64,
            waiters: 256,
        }
    }
}

/// One entry to fetch and keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    /// Its announced manifest (checked when it arrived; the fetched one is checked again).
    pub(crate) manifest: Manifest,
    /// Peers that announced it, first heard first.
    pub(crate) providers: Vec<PeerId>,
}

/// What became of an offered entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Queued for a fetch.
    Queued,
    /// Already queued or being fetched.
    Known,
    /// The queue is full: not kept.
    Full,
    /// Not a scope this keeper follows.
    NotFollowed,
}

/// Whether a scope is followed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follow {
    /// It was not; it is now.
    Started,
    /// It already was.
    Already,
    /// It was not, and the cap on scopes is reached.
    Full,
    /// It was not, and the peer that asked has as many scopes followed as its share allows.
    OverShare,
}

/// A scope followed.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The peer whose subscription took the slot; `None` for this machine's own scopes.
    claimer: Option<PeerId>,
    /// When a peer or this machine last used the scope.
    used: Instant,
}

/// A fetch in flight.
#[derive(Debug)]
struct Flight {
    manifest: Manifest,
    /// An invalidation covered it while it was in flight: what it brings is not announced as
    /// held (the store's fence keeps it out of the store).
    cancelled: bool,
}

/// The keeper's state: scopes followed, fetches queued and in flight, and peers' requests that
/// wait for one of those fetches.
#[derive(Debug, Default)]
pub(crate) struct Keeper {
    limits: Limits,
    scopes: HashMap<ScopeId, Slot>,
    queue: VecDeque<Job>,
    in_flight: HashMap<CacheKey, Flight>,
    bytes_in_flight: u64,
    waiters: HashMap<CacheKey, Vec<oneshot::Sender<()>>>,
    waiting: usize,
}

impl Keeper {
    /// A keeper with these bounds.
    pub(crate) fn new(limits: Limits) -> Keeper {
        Keeper {
            limits,
            ..Keeper::default()
        }
    }

    /// Follows `scope` at `now`: peer `by` subscribed to its topic, or (`None`) this machine
    /// uses it. A scope followed already counts as used; a new one takes a slot, charged to
    /// `by` within its share.
    pub(crate) fn follow(&mut self, scope: ScopeId, by: Option<PeerId>, now: Instant) -> Follow {
        if let Some(slot) = self.scopes.get_mut(&scope) {
            slot.used = now;
            return Follow::Already;
        }
        if let Some(peer) = by {
            let claimed = self
                .scopes
                .values()
                .filter(|s| s.claimer == Some(peer))
                .count();
            if claimed >= self.limits.scopes_per_peer {
                return Follow::OverShare;
            }
        }
        if self.scopes.len() >= self.limits.scopes {
            return Follow::Full;
        }
        self.scopes.insert(
            scope,
            Slot {
                claimer: by,
                used: now,
            },
        );
        Follow::Started
    }

    /// Frees the slots of scopes that no peer used for [`Limits::scope_idle`] by `now`; the
    /// scopes that `in_use` names (a connected peer subscribes to them) count as used now.
    /// Returns the scopes no longer followed. What was kept of them stays stored and served.
    pub(crate) fn expire(
        &mut self,
        now: Instant,
        in_use: impl Fn(&ScopeId) -> bool,
    ) -> Vec<ScopeId> {
        let idle = self.limits.scope_idle;
        let mut freed = Vec::new();
        self.scopes.retain(|scope, slot| {
            if in_use(scope) {
                slot.used = now;
            }
            let expired = now.saturating_duration_since(slot.used) >= idle;
            if expired {
                freed.push(*scope);
            }
            !expired
        });
        freed
    }

    /// Whether `scope` is followed.
    pub(crate) fn follows(&self, scope: &ScopeId) -> bool {
        self.scopes.contains_key(scope)
    }

    /// Queues a fetch of the entry `manifest` describes, from one of `providers`. A newer
    /// manifest of a key already queued replaces the queued one; providers are merged, first
    /// heard first.
    pub(crate) fn offer(&mut self, manifest: Manifest, providers: Vec<PeerId>) -> Offer {
        if !self.scopes.contains_key(&manifest.scope_id) {
            return Offer::NotFollowed;
        }
        if self.in_flight.contains_key(&manifest.key) {
            return Offer::Known;
        }
        if let Some(job) = self
            .queue
            .iter_mut()
            .find(|job| job.manifest.key == manifest.key)
        {
            // The newer manifest is fetched; the providers of the older one stay: one peer's
            // newer announcement must not leave the keeper only that peer to fetch from (what
            // any of them sends is checked the same way).
            if manifest.created_at_ms > job.manifest.created_at_ms {
                job.manifest = manifest;
            }
            for peer in providers {
                if job.providers.len() < wire::MAX_DIRECTORY_PROVIDERS
                    && !job.providers.contains(&peer)
                {
                    job.providers.push(peer);
                }
            }
            return Offer::Known;
        }
        if self.queue.len() >= self.limits.queued {
            return Offer::Full;
        }
        let mut providers = providers;
        providers.truncate(wire::MAX_DIRECTORY_PROVIDERS);
        self.queue.push_back(Job {
            manifest,
            providers,
        });
        Offer::Queued
    }

    /// The next fetch to start, if a slot and the byte budget allow one. It counts as in flight
    /// until [`Keeper::finish`].
    pub(crate) fn next(&mut self) -> Option<Job> {
        if self.in_flight.len() >= self.limits.in_flight {
            return None;
        }
        let bytes = self.queue.front()?.manifest.body_size;
        if !self.in_flight.is_empty()
            && self.bytes_in_flight.saturating_add(bytes) > self.limits.bytes_in_flight
        {
            return None;
        }
        let job = self.queue.pop_front()?;
        self.bytes_in_flight = self.bytes_in_flight.saturating_add(bytes);
        self.in_flight.insert(
            job.manifest.key,
            Flight {
                manifest: job.manifest.clone(),
                cancelled: false,
            },
        );
        Some(job)
    }

    /// A fetch ended (kept or not): frees its slot and wakes the requests waiting for it.
    /// Returns whether an invalidation covered it meanwhile.
    pub(crate) fn finish(&mut self, key: &CacheKey) -> bool {
        let cancelled = match self.in_flight.remove(key) {
            Some(flight) => {
                self.bytes_in_flight = self
                    .bytes_in_flight
                    .saturating_sub(flight.manifest.body_size);
                flight.cancelled
            }
            None => false,
        };
        if let Some(waiters) = self.waiters.remove(key) {
            self.waiting = self.waiting.saturating_sub(waiters.len());
            for waiter in waiters {
                let _ = waiter.send(());
            }
        }
        cancelled
    }

    /// Lets a peer's request for `key` wait until the fetch of it lands, if one is queued or in
    /// flight and fewer than the cap of requests wait. Otherwise `reply` is dropped, which its
    /// receiver sees at once.
    pub(crate) fn wait(&mut self, key: CacheKey, reply: oneshot::Sender<()>) {
        let keeping =
            self.in_flight.contains_key(&key) || self.queue.iter().any(|j| j.manifest.key == key);
        if keeping && self.waiting < self.limits.waiters {
            self.waiting += 1;
            self.waiters.entry(key).or_default().push(reply);
        }
    }

    /// Drops the queued fetches `selector` covers, and marks those in flight.
    pub(crate) fn invalidate(&mut self, selector: &Selector) {
        let mut freed = Vec::new();
        self.queue.retain(|job| {
            let covered = selector.covers(&job.manifest);
            if covered {
                freed.push(job.manifest.key);
            }
            !covered
        });
        for flight in self.in_flight.values_mut() {
            if selector.covers(&flight.manifest) {
                flight.cancelled = true;
            }
        }
        // Requests waiting for a dropped fetch get their answer (none) now.
        for key in freed {
            if let Some(waiters) = self.waiters.remove(&key) {
                self.waiting = self.waiting.saturating_sub(waiters.len());
            }
        }
    }

    /// The numbers `status` reports.
    pub(crate) fn load(&self) -> Keeping {
        Keeping {
            scopes: self.scopes.len(),
            queued: self.queue.len(),
            in_flight: self.in_flight.len(),
            bytes_in_flight: self.bytes_in_flight,
        }
    }
}

/// Announced entries a stopping runner still waits for a keeper to take, at most.
const MAX_HANDOFF: usize = 256;
/// Only entries announced this recently are waited for: a keeper that did not take one by then
/// does not keep it (another scope, its queue was full).
const HANDOFF_WINDOW: Duration = Duration::from_secs(120);

/// The runner's side of a keeper: entries this node announced that no keeper is known to hold.
///
/// Nobody can fetch from a runner that nobody can dial once it is gone, so a stopping runner
/// announces these again and keeps its connections up for a few seconds, until a connected
/// keeper's directory names the keeper as a holder of each. Only that counts: an answer sent to
/// a keeper's fetch is not an answer the keeper read, since closing the connection right after
/// sending it can cut it off at the keeper's end.
#[derive(Debug, Default)]
pub(crate) struct Handoff {
    /// Oldest first.
    pending: VecDeque<(Manifest, Instant)>,
}

impl Handoff {
    /// This node announced `manifest`'s entry at `now`.
    pub(crate) fn announced(&mut self, manifest: Manifest, now: Instant) {
        self.pending.retain(|(m, _)| m.key != manifest.key);
        if self.pending.len() >= MAX_HANDOFF {
            self.pending.pop_front();
        }
        self.pending.push_back((manifest, now));
    }

    /// Forgets what `taken` says a keeper holds, and what was announced longer ago than the
    /// window allows; returns the manifests still to be handed over.
    pub(crate) fn due(&mut self, now: Instant, taken: impl Fn(&Manifest) -> bool) -> Vec<Manifest> {
        self.pending
            .retain(|(m, at)| now.saturating_duration_since(*at) < HANDOFF_WINDOW && !taken(m));
        self.pending.iter().map(|(m, _)| m.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ghcache_core::testkit::sample_entry;
    use ghcache_core::{now_ms, Manifest};

    const SCOPE_LIMIT: usize = 2;

    fn small() -> Limits {
        Limits {
            scopes: SCOPE_LIMIT,
            scopes_per_peer: 1,
            scope_idle: Duration::from_secs(60),
            in_flight: 2,
            queued: 3,
            bytes_in_flight: 1000,
            waiters: 2,
        }
    }

    fn manifest(n: u8, repo: &str, size: u64) -> Manifest {
        let mut m = sample_entry(n, repo, b"x").manifest;
        m.body_size = size;
        m
    }

    #[test]
    fn a_handoff_waits_for_recent_announcements_no_keeper_holds() {
        let mut handoff = Handoff::default();
        let now = Instant::now();
        let nothing_taken = |_: &Manifest| false;
        assert!(handoff.due(now, nothing_taken).is_empty());
        let old = manifest(1, "o/r", 10);
        let new = manifest(2, "o/r", 10);
        handoff.announced(old.clone(), now);
        handoff.announced(new.clone(), now + HANDOFF_WINDOW);
        let later = now + HANDOFF_WINDOW;
        assert_eq!(
            handoff.due(later, nothing_taken),
            vec![new.clone()],
            "the old one expired"
        );
        assert!(handoff.due(later, |m| m.key == new.key).is_empty());
        for n in 0..=(MAX_HANDOFF as u64) {
            let mut m = manifest(3, "o/r", 10);
            m.key = CacheKey(*blake3::hash(&n.to_le_bytes()).as_bytes());
            handoff.announced(m, now);
        }
        assert_eq!(handoff.due(now, nothing_taken).len(), MAX_HANDOFF);
    }

    #[test]
    fn agent_versions_tell_keepers_apart() {
        assert!(is_keeper(&agent_version(true)));
        assert!(!is_keeper(&agent_version(false)));
        assert!(!is_keeper("rust-libp2p/0.57 keeper"), "not one of ours");
        assert!(!is_keeper(""));
    }

    #[test]
    fn scopes_followed_are_capped() {
        let mut keeper = Keeper::new(small());
        for n in 0..SCOPE_LIMIT {
            assert_eq!(
                keeper.follow(ScopeId([n as u8; 32]), None, Instant::now()),
                Follow::Started
            );
        }
        let now = Instant::now();
        assert_eq!(keeper.follow(ScopeId([0; 32]), None, now), Follow::Already);
        assert_eq!(keeper.follow(ScopeId([99; 32]), None, now), Follow::Full);
        assert!(!keeper.follows(&ScopeId([99; 32])));
        let m = manifest(1, "o/r", 10);
        let mut other = m.clone();
        other.scope_id = ScopeId([99; 32]);
        assert_eq!(keeper.offer(other, vec![]), Offer::NotFollowed);
        assert_eq!(keeper.load().scopes, SCOPE_LIMIT);
    }

    #[test]
    fn queued_and_in_flight_fetches_are_capped() {
        let mut keeper = Keeper::new(small());
        let peer = PeerId::random();
        let scope = manifest(0, "o/r", 10).scope_id;
        keeper.follow(scope, None, Instant::now());
        for n in 0..3 {
            assert_eq!(
                keeper.offer(manifest(n, "o/r", 10), vec![peer]),
                Offer::Queued
            );
        }
        assert_eq!(keeper.offer(manifest(0, "o/r", 10), vec![]), Offer::Known);
        assert_eq!(keeper.offer(manifest(9, "o/r", 10), vec![]), Offer::Full);
        assert!(keeper.next().is_some());
        let second = keeper.next();
        assert!(second.is_some());
        assert_eq!(keeper.next(), None, "two in flight at most");
        assert_eq!(
            keeper.load(),
            Keeping {
                scopes: 1,
                queued: 1,
                in_flight: 2,
                bytes_in_flight: 20
            }
        );
        let key = second.map(|j| j.manifest.key).unwrap_or(CacheKey([0; 32]));
        assert!(!keeper.finish(&key));
        assert!(keeper.next().is_some(), "a slot freed");
        assert_eq!(keeper.load().queued, 0);
    }

    #[test]
    fn bytes_in_flight_are_capped_but_one_fetch_always_runs() {
        let mut keeper = Keeper::new(small());
        let scope = manifest(0, "o/r", 10).scope_id;
        keeper.follow(scope, None, Instant::now());
        keeper.offer(manifest(1, "o/r", 900), vec![]);
        keeper.offer(manifest(2, "o/r", 200), vec![]);
        let big = keeper.next().map(|j| j.manifest.key);
        assert!(big.is_some());
        assert_eq!(keeper.next(), None, "900 + 200 is over the 1000 budget");
        keeper.finish(&big.unwrap_or(CacheKey([0; 32])));
        assert!(keeper.next().is_some());

        let mut keeper = Keeper::new(small());
        keeper.follow(scope, None, Instant::now());
        keeper.offer(manifest(3, "o/r", 5000), vec![]);
        assert!(
            keeper.next().is_some(),
            "alone, even a body over the budget"
        );
    }

    #[test]
    fn a_newer_announcement_replaces_the_queued_manifest_and_keeps_its_providers() {
        let mut keeper = Keeper::new(small());
        let (a, b) = (PeerId::random(), PeerId::random());
        let old = manifest(1, "o/r", 10);
        keeper.follow(old.scope_id, None, Instant::now());
        keeper.offer(old.clone(), vec![a]);
        let mut new = old.clone();
        new.created_at_ms = now_ms() + 1;
        assert_eq!(keeper.offer(new.clone(), vec![b]), Offer::Known);
        assert_eq!(
            keeper.next(),
            Some(Job {
                manifest: new,
                providers: vec![a, b]
            }),
            "the first to announce is asked first"
        );
    }

    #[test]
    fn invalidations_drop_queued_fetches_and_mark_those_in_flight() {
        let mut keeper = Keeper::new(small());
        let flying = manifest(1, "o/r", 10);
        keeper.follow(flying.scope_id, None, Instant::now());
        keeper.offer(flying.clone(), vec![]);
        assert!(keeper.next().is_some());
        keeper.offer(manifest(2, "o/r", 10), vec![]);
        keeper.offer(manifest(3, "o/other", 10), vec![]);
        let (tx, mut rx) = oneshot::channel();
        keeper.wait(manifest(2, "o/r", 10).key, tx);
        keeper.invalidate(&Selector::Repo("o/r".into()));
        assert_eq!(keeper.load().queued, 1, "o/other stays");
        assert!(rx.try_recv().is_err(), "the waiter was let go");
        assert!(keeper.finish(&flying.key), "cancelled while in flight");
    }

    #[test]
    fn waiters_are_woken_when_the_fetch_lands_and_capped() {
        let mut keeper = Keeper::new(small());
        let m = manifest(1, "o/r", 10);
        keeper.follow(m.scope_id, None, Instant::now());
        let (tx, mut not_kept) = oneshot::channel();
        keeper.wait(m.key, tx);
        assert!(
            matches!(
                not_kept.try_recv(),
                Err(oneshot::error::TryRecvError::Closed)
            ),
            "nothing to wait for"
        );
        keeper.offer(m.clone(), vec![]);
        let mut rxs = Vec::new();
        for _ in 0..3 {
            let (tx, rx) = oneshot::channel();
            keeper.wait(m.key, tx);
            rxs.push(rx);
        }
        assert!(
            matches!(rxs[2].try_recv(), Err(oneshot::error::TryRecvError::Closed)),
            "two waiters at most"
        );
        assert!(keeper.next().is_some());
        keeper.finish(&m.key);
        assert_eq!(rxs[0].try_recv(), Ok(()));
        assert_eq!(rxs[1].try_recv(), Ok(()));
    }

    #[test]
    fn one_peer_cannot_take_every_scope_slot() {
        let limits = Limits {
            scopes: 16,
            ..Limits::default()
        };
        let mut keeper = Keeper::new(limits);
        let (hostile, honest) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        let mut taken = 0;
        for n in 0..=255u8 {
            match keeper.follow(ScopeId([n; 32]), Some(hostile), now) {
                Follow::Started => taken += 1,
                other => assert_eq!(other, Follow::OverShare),
            }
        }
        assert_eq!(taken, SCOPES_PER_PEER);
        let mine = ScopeId::of("the honest runner's scope");
        assert_eq!(keeper.follow(mine, Some(honest), now), Follow::Started);
        assert!(keeper.follows(&mine));
        // Another peer using a scope the hostile one took costs neither a slot.
        assert_eq!(
            keeper.follow(ScopeId([0; 32]), Some(honest), now),
            Follow::Already
        );
        assert_eq!(keeper.load().scopes, SCOPES_PER_PEER + 1);
    }

    #[test]
    fn slots_no_peer_used_for_a_while_are_freed() {
        let mut keeper = Keeper::new(small());
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let start = Instant::now();
        let (left, stays) = (ScopeId([1; 32]), ScopeId([2; 32]));
        assert_eq!(keeper.follow(left, Some(a), start), Follow::Started);
        assert_eq!(keeper.follow(stays, Some(b), start), Follow::Started);
        assert_eq!(
            keeper.follow(ScopeId([3; 32]), Some(c), start),
            Follow::Full
        );
        let in_use = |s: &ScopeId| *s == stays;
        assert!(keeper
            .expire(start + Duration::from_secs(59), in_use)
            .is_empty());
        let later = start + Duration::from_secs(60);
        assert_eq!(keeper.expire(later, in_use), vec![left], "a's peer left");
        assert_eq!(
            keeper.follow(ScopeId([3; 32]), Some(c), later),
            Follow::Started
        );
        // A's share came back with its slot.
        assert_eq!(
            keeper.follow(ScopeId([4; 32]), Some(a), later),
            Follow::Full
        );
        assert!(
            keeper
                .expire(later + Duration::from_secs(59), |_| false)
                .is_empty(),
            "still in use a minute ago"
        );
    }
}
