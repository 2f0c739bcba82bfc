//! The directory exchange (`/ghcache/directory/1`), as the swarm task runs it: whom a node asks
//! for a scope's directory, and when; what it answers a peer that asks; and how it takes in a
//! reply, every manifest checked ([`crate::check`]) before the directory keeps it.
//!
//! A runner that joins after an answer was announced learns from it at once where the answer
//! is; a keeper learns what to keep. The directory itself (what is known, and who holds it) is
//! [`crate::directory`]; the messages are [`crate::wire`]'s.

use std::sync::atomic::Ordering;

use ghcache_core::{now_ms, ScopeId};
use libp2p::request_response;
use libp2p::PeerId;

use crate::check;
use crate::log::log;
use crate::status::bump;
use crate::swarm::topic;
use crate::wire::{self, DirectoryItem, DirectoryRequest, DirectoryResponse};

use super::state::Node;

/// Peers asked for a scope's directory when this node starts following the scope, keepers
/// first: one keeper knows what the fleet fetched; a few peers cover one that left.
const DIRECTORY_FANOUT: usize = 4;
/// Directory requests in flight at once; past it, no more are asked until some are answered.
pub(super) const MAX_DIRECTORY_ASKS: usize = 32;
/// (peer, scope) pairs asked on the connections open now: each is asked once per connection.
const MAX_ASKED: usize = 4096;

impl Node {
    /// Asks up to [`DIRECTORY_FANOUT`] connected peers for their directory of `scope_id`:
    /// keepers first, then peers subscribed to its topic.
    pub(super) fn ask_directories(&mut self, scope_id: ScopeId) {
        let hash = topic(&scope_id).hash();
        let mut keepers: Vec<PeerId> = self.keepers.iter().copied().collect();
        keepers.sort();
        let mut subscribed: Vec<PeerId> = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(peer, topics)| topics.contains(&&hash) && !self.keepers.contains(*peer))
            .map(|(peer, _)| *peer)
            .collect();
        subscribed.sort();
        for peer in keepers.into_iter().chain(subscribed).take(DIRECTORY_FANOUT) {
            self.ask_directory(peer, scope_id);
        }
    }

    /// Asks connected `peer` for its directory of `scope_id`, once per connection, within the
    /// bounds on requests in flight.
    pub(super) fn ask_directory(&mut self, peer: PeerId, scope_id: ScopeId) {
        if peer == self.local_id()
            || !self.connected.contains(&peer)
            || self.asking.len() >= MAX_DIRECTORY_ASKS
            || self.asked.len() >= MAX_ASKED
            || !self.asked.insert((peer, scope_id))
        {
            return;
        }
        let request = DirectoryRequest {
            scope_id,
            limit: wire::MAX_DIRECTORY_ITEMS as u16,
        };
        let id = self
            .swarm
            .behaviour_mut()
            .directory
            .send_request(&peer, request);
        self.asking.insert(id, (peer, scope_id));
    }

    /// `peer` told identify what it is. A keeper is asked at once for the directory of every
    /// scope this node follows; another peer too, unless enough were asked already (or this node
    /// is a keeper: it asks its peers about the scopes they subscribe to).
    pub(super) fn on_identified(&mut self, peer: PeerId, is_keeper: bool) {
        if is_keeper {
            if !self.keepers.insert(peer) {
                return;
            }
            log(format_args!("{peer} is a keeper"));
        } else if self.keeper.is_some() {
            return;
        }
        for scope_id in self.topics.scopes() {
            let asked = self.asked.iter().filter(|(_, s)| *s == scope_id).count();
            if is_keeper || asked < DIRECTORY_FANOUT {
                self.ask_directory(peer, scope_id);
            }
        }
    }

    pub(super) fn on_directory(
        &mut self,
        event: request_response::Event<DirectoryRequest, DirectoryResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let response = self.directory_of(peer, &request);
                    bump(&self.shared.counters.directories_served);
                    // Fails only if the peer gave up waiting: nothing to do.
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .directory
                        .send_response(channel, response);
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((asked, scope_id)) = self.asking.remove(&request_id) {
                        self.learn_directory(asked, scope_id, response);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.asking.remove(&request_id);
                if let request_response::OutboundFailure::Io(e) = &error {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        self.reject(peer, &format!("bad directory reply: {e}"), true);
                    }
                }
            }
            request_response::Event::InboundFailure {
                peer,
                error: request_response::InboundFailure::Io(e),
                ..
            } if e.kind() == std::io::ErrorKind::InvalidData => {
                self.reject(peer, &format!("bad directory request: {e}"), true);
            }
            _ => {}
        }
    }

    /// This node's answer to `peer`'s directory request: the newest fresh manifests of the scope
    /// that it holds or knows a holder of. A read-only node vouches for nothing and answers
    /// with none.
    fn directory_of(&self, peer: PeerId, request: &DirectoryRequest) -> DirectoryResponse {
        if !self.shared.role.serves() {
            return DirectoryResponse::default();
        }
        let limit = usize::from(request.limit).min(wire::MAX_DIRECTORY_ITEMS);
        let me = self.local_id();
        let items = self
            .directory
            .newest(&request.scope_id, limit, now_ms(), &me)
            .into_iter()
            .map(|(manifest, providers)| DirectoryItem {
                manifest: manifest.encode(),
                // The asker is no holder worth naming to itself.
                providers: providers.into_iter().filter(|p| *p != peer).collect(),
            })
            .filter(|item| !item.providers.is_empty())
            .collect();
        DirectoryResponse { items }
    }

    /// Takes in `peer`'s directory of `scope_id`. Each manifest is checked as an announcement
    /// is; a forged one is a lie: the peer is counted, cut off, and the rest of its reply
    /// dropped. A keeper queues fetches of what it learned.
    fn learn_directory(&mut self, peer: PeerId, scope_id: ScopeId, response: DirectoryResponse) {
        let me = self.local_id();
        let mut learned = 0u64;
        for item in response.items {
            match check::manifest(&self.shared.accept, &scope_id, &item.manifest) {
                Ok(Some(manifest)) => {
                    let holders: Vec<PeerId> =
                        item.providers.into_iter().filter(|p| *p != me).collect();
                    if holders.is_empty() {
                        continue;
                    }
                    // Charged to the peer that sent the reply: the holders it names cost
                    // nothing to make up.
                    let over = self.directory.insert(manifest.clone(), peer, &holders);
                    self.shared
                        .counters
                        .over_share
                        .fetch_add(over as u64, Ordering::Relaxed);
                    learned += 1;
                    self.offer_to_keeper(manifest, holders);
                }
                Ok(None) => {}
                Err((reason, true)) => {
                    self.reject(peer, &format!("directory reply: {reason}"), true);
                    return;
                }
                Err((reason, false)) => {
                    self.reject(peer, &format!("directory reply: {reason}"), false);
                }
            }
        }
        if learned > 0 {
            self.shared
                .counters
                .directory_learned
                .fetch_add(learned, Ordering::Relaxed);
            log(format_args!(
                "learned {learned} manifests from {peer}'s directory"
            ));
        }
    }
}
