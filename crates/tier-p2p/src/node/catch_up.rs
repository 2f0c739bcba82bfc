//! The catch-up as the node runs it (see [`crate::catch_up`]): answering peers that were
//! away, closing this node's own gaps, asking again while connected, and finding the swarm
//! again after every connection was lost.

use libp2p::{request_response, PeerId};
use tokio::time::Instant;

use super::state::Node;
use crate::catch_up::{self, Asked, Gap, Why};
use crate::log::log;
use crate::swarm;
use crate::wire::{CatchUp, CaughtUp, Invalidation, Vouch};
use ghcache_core::{now_ms, Selector};

/// Peers asked at once to close a gap: keepers first, then the longest connected.
const ASKED_AT_ONCE: usize = 4;
/// How often a node with no connection dials its bootstrap peers again.
const REDIAL_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl Node {
    /// Records an invalidation this node saw or sent, for peers that were away; `false` when it
    /// was recorded already.
    pub(super) fn remember(&mut self, invalidation: &Invalidation) -> bool {
        self.catch_up.recent.insert(invalidation)
    }

    /// A peer connected: if this node has a gap, it asks it what it missed; else what it
    /// hears of GitHub's writes (its vouch).
    pub(super) fn catch_up_on_connect(&mut self, peer: PeerId) {
        self.catch_up.cut_off.remove(&peer);
        self.catch_up.hearing.connected(peer, now_ms());
        let Some(gap) = self.catch_up.gap.as_mut() else {
            let since_ms = self.since(now_ms());
            self.ask(peer, since_ms, Why::Hearing);
            return;
        };
        gap.deadline
            .get_or_insert(Instant::now() + catch_up::DEADLINE);
        let from_ms = gap.from_ms;
        let since_ms = self.since(from_ms);
        self.ask(peer, since_ms, Why::Gap);
    }

    /// The connection to `peer` stopped answering pings and was closed.
    pub(super) fn catch_up_on_cut_off(&mut self, peer: PeerId) {
        self.catch_up.cut_off.insert(peer);
    }

    /// Every connection to `peer` is gone. If it was the last peer, and it was cut off (its
    /// pings went unanswered), writes made from now on are not heard until the node is back.
    /// A peer that left in good order (a runner whose job ended) takes nothing with it that
    /// this node should have heard.
    /// Nor does one that vanished from a seed (a node with no bootstrap peers, which others
    /// dial): a seed cannot tell a network gone from a runner's machine gone, and runners
    /// vanish every day; taking that for a gap would drop what a keeper keeps each time.
    pub(super) fn catch_up_on_gone(&mut self, peer: PeerId) {
        // What it vouched for is no longer sent to this node.
        let vouched = self.catch_up.hearing.gone(&peer);
        let cut_off = self.catch_up.cut_off.remove(&peer);
        let dials_out = !self.catch_up.bootstrap.is_empty();
        if cut_off && dials_out && self.connected.is_empty() && self.catch_up.gap.is_none() {
            let now = now_ms();
            log(format_args!(
                "no peer connected: invalidations are missed until one is"
            ));
            catch_up::write_in_touch(&self.catch_up.in_touch, now);
            self.catch_up.gap = Some(Gap::from(now));
            self.hear();
        } else if vouched {
            self.hear();
        }
    }

    /// What the node does on its own time: drop its copies when a gap stayed open past its
    /// deadline, ask again while connected, note that it is in touch, and dial the bootstrap
    /// peers again when it has no connection.
    pub(super) fn catch_up_tick(&mut self, now: Instant) {
        self.hear();
        if self.connected.is_empty() {
            if self
                .catch_up
                .last_redial
                .is_none_or(|at| now.duration_since(at) >= REDIAL_EVERY)
                && !self.catch_up.bootstrap.is_empty()
            {
                self.catch_up.last_redial = Some(now);
                for addr in self.catch_up.bootstrap.clone() {
                    swarm::dial_bootstrap(&mut self.swarm, &addr);
                }
            }
            return;
        }
        match self.catch_up.gap {
            Some(Gap {
                from_ms,
                deadline: Some(deadline),
            }) if now >= deadline => self.give_up_catching_up(from_ms),
            Some(Gap {
                from_ms,
                deadline: None,
            }) => {
                // Connected without a word asked (the gap opened while peers stayed): ask now.
                self.catch_up.gap = Some(Gap {
                    from_ms,
                    deadline: Some(now + catch_up::DEADLINE),
                });
                let since_ms = self.since(from_ms);
                for peer in self.best_peers() {
                    self.ask(peer, since_ms, Why::Gap);
                }
            }
            Some(_) => {}
            None if now.duration_since(self.catch_up.last_periodic) >= catch_up::EVERY => {
                self.catch_up.last_periodic = now;
                let at = now_ms();
                catch_up::write_in_touch(&self.catch_up.in_touch, at);
                let since_ms = self.since(self.catch_up.periodic_from_ms);
                let best = self.best_peers().into_iter().next();
                if let Some(peer) = best {
                    self.ask(peer, since_ms, Why::Periodic);
                }
                // Peers that vouch say so again, or their vouch lapses.
                let since_ms = self.since(at);
                for peer in self.catch_up.hearing.vouching() {
                    if Some(peer) != best {
                        self.ask(peer, since_ms, Why::Hearing);
                    }
                }
            }
            None => {}
        }
    }

    /// Notes, on stopping, that the node was in touch until now (when it was); what it
    /// heard no longer holds.
    pub(super) fn catch_up_on_stop(&mut self) {
        self.catch_up.hearing.stop();
        if self.catch_up.gap.is_none() && !self.connected.is_empty() {
            catch_up::write_in_touch(&self.catch_up.in_touch, now_ms());
        }
    }

    pub(super) fn on_catch_up(&mut self, event: request_response::Event<CatchUp, CaughtUp>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let answer = if self.shared.role.serves() {
                        let gap = self.catch_up.gap.map(|g| g.from_ms);
                        let mut answer = self.catch_up.recent.answer(&request, gap, now_ms());
                        answer.vouch = self.vouch_for(&request);
                        answer
                    } else {
                        // A read-only node relays nothing: it vouches for nothing.
                        CaughtUp {
                            complete_since_ms: u64::MAX,
                            invalidations: Vec::new(),
                            vouch: Vouch::default(),
                        }
                    };
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .catch_up
                        .send_response(channel, answer);
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(asked) = self.catch_up.asked.remove(&request_id) {
                        self.on_caught_up(peer, asked, response);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.catch_up.asked.remove(&request_id);
                if let request_response::OutboundFailure::Io(e) = &error {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        self.reject(peer, &format!("bad catch-up reply: {e}"), true);
                    }
                }
            }
            request_response::Event::InboundFailure {
                peer,
                error: request_response::InboundFailure::Io(e),
                ..
            } if e.kind() == std::io::ErrorKind::InvalidData => {
                self.reject(peer, &format!("bad catch-up request: {e}"), true);
            }
            _ => {}
        }
    }

    fn on_caught_up(&mut self, peer: PeerId, asked: Asked, answer: CaughtUp) {
        let trusted = &self.shared.accept.trusted;
        if !trusted.is_empty() && !trusted.contains(&peer) {
            // As its gossip would be: only trusted peers' invalidations are taken.
            return;
        }
        self.catch_up
            .hearing
            .vouched(peer, answer.vouch.clone(), Instant::now());
        let followed = self.topics.scopes();
        let mut missed = 0;
        for invalidation in &answer.invalidations {
            if !followed.contains(&invalidation.scope_id) || !self.remember(invalidation) {
                continue;
            }
            missed += 1;
            self.drop_covered(&invalidation.selector());
            self.shared
                .invalidations
                .push(invalidation.selector(), Some(invalidation.id()));
        }
        if missed > 0 {
            log(format_args!(
                "caught up on {missed} invalidation(s) missed, from {peer}"
            ));
        }
        if asked.why == Why::Periodic {
            let from = &mut self.catch_up.periodic_from_ms;
            *from = (*from).max(asked.at_ms);
        }
        let closes = Gap::closed_by(asked.since_ms, &answer);
        let for_gap = asked.why == Why::Gap;
        if for_gap && !closes {
            log(format_args!(
                "{peer} knows only what came in the last {} ms, not since this node was away \
                 ({} ms ago)",
                now_ms().saturating_sub(answer.complete_since_ms),
                now_ms().saturating_sub(asked.since_ms)
            ));
        }
        if for_gap && closes && self.catch_up.gap.is_some() {
            self.catch_up.gap = None;
            self.catch_up.periodic_from_ms = now_ms();
            self.catch_up.in_touch_since_ms = now_ms();
            catch_up::write_in_touch(&self.catch_up.in_touch, now_ms());
            log(format_args!("caught up with the swarm through {peer}"));
        }
        self.hear();
    }

    /// No peer could tell what this node missed since `from_ms`: its copies are dropped, as
    /// any of them may be out of date.
    fn give_up_catching_up(&mut self, from_ms: u64) {
        let now = now_ms();
        log(format_args!(
            "no peer could tell which invalidations were missed in the last {} s: dropping \
             every stored copy instead",
            now.saturating_sub(from_ms) / 1000
        ));
        self.drop_covered(&Selector::All);
        self.shared.invalidations.push(Selector::All, None);
        self.catch_up.recent.restart_at(now);
        self.catch_up.gap = None;
        self.catch_up.periodic_from_ms = now;
        self.catch_up.in_touch_since_ms = now;
        catch_up::write_in_touch(&self.catch_up.in_touch, now);
    }

    /// The time a catch-up asks from for a gap from `from_ms`: earlier by the clock skew, as
    /// invalidations are dated by their sender's clock.
    fn since(&self, from_ms: u64) -> u64 {
        from_ms.saturating_sub(self.shared.accept.skew.as_millis() as u64)
    }

    /// The connected peers best asked: keepers first.
    fn best_peers(&self) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = self.keepers.iter().copied().collect();
        peers.extend(self.connected.iter().filter(|p| !self.keepers.contains(p)));
        peers.truncate(ASKED_AT_ONCE);
        peers
    }

    fn ask(&mut self, peer: PeerId, since_ms: u64, why: Why) {
        let request = CatchUp {
            since_ms,
            scopes: self.topics.scopes(),
        };
        let id = self
            .swarm
            .behaviour_mut()
            .catch_up
            .send_request(&peer, request);
        let at_ms = now_ms();
        self.catch_up.asked.insert(
            id,
            Asked {
                since_ms,
                why,
                at_ms,
            },
        );
    }
}
