//! Whether peers can dial this node, and dialing back the peers that ask (`/ghcache/reach/1`).
//!
//! A runner on a GitHub-hosted machine listens, but a firewall drops every inbound connection,
//! and it cannot tell from inside. Had it named its addresses, every peer that looked up one of
//! its entries would wait for a dial that never connects, once per runner, and each job is a
//! new runner. So a node that listens stays out of the DHT (Kademlia client mode, nothing
//! provided, its addresses taken by no routing table) until it knows it can be dialed: a peer
//! connected to it, or a peer it asked dialed it back within [`DIAL_BACK_WAIT`]. A node told
//! that nobody could is reached only over the connections it opens, as with `--no-listen`.

use std::net::IpAddr;
use std::time::Duration;

use ghcache_core::CacheKey;
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::ConnectionId;
use libp2p::{kad, Multiaddr, PeerId};

use crate::daemon::Command;
use crate::log::log;
use crate::swarm::MAX_PROVIDED_KEYS;
use crate::wire::{DialBack, DialedBack, MAX_REACH_PORTS};

use super::state::{Dialability, DialingBack, Node};

/// How long a dial-back may take before the asker counts as undialable: many times what a
/// lookup waits for a dial (a share of its 130 ms), so a slow machine is not misjudged, and
/// short enough that a runner knows before most of its job has run.
pub(crate) const DIAL_BACK_WAIT: Duration = Duration::from_millis(500);
/// Dial-backs a node makes at once; past them it answers "not checked" (the asker asks
/// another peer). A dial to a firewalled runner lasts until the transport gives up.
const MAX_DIAL_BACKS: usize = 16;

impl Node {
    /// A connection was established: one someone dialed proves this node dialable; over one
    /// it dialed, a node that does not know yet asks the peer to dial it back. Returns whether
    /// it was one of this node's dial-backs (closed at once, and nothing else to do with it).
    pub(super) fn on_connection(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        endpoint: &ConnectedPoint,
    ) -> bool {
        if let Some(dialing) = self.dialing_back.remove(&connection) {
            self.answer_dial_back(dialing.channel, DialedBack::Dialed);
            self.swarm.close_connection(connection);
            return true;
        }
        if let Some(ip) = ip_of(endpoint.get_remote_address()) {
            self.remote_ips.insert(connection, ip);
        }
        if endpoint.is_listener() {
            self.dialable(&format!("{peer} connected to this node"));
        } else if self.dialability == (Dialability::Unknown { asking: false }) {
            self.ask_dial_back(peer);
        }
        false
    }

    /// A connection closed or a dial failed: forgets what was kept for it. Returns whether it
    /// was one of this node's dial-backs.
    pub(super) fn on_connection_gone(&mut self, connection: ConnectionId) -> bool {
        self.remote_ips.remove(&connection);
        match self.dialing_back.remove(&connection) {
            Some(dialing) => {
                self.answer_dial_back(dialing.channel, DialedBack::NotDialed);
                true
            }
            None => false,
        }
    }

    /// [`DIAL_BACK_WAIT`] after a dial-back started: if it has not connected, the peer is told
    /// it could not be dialed. The dial goes on (and is closed if it ever connects).
    pub(super) fn dial_back_due(&mut self, connection: ConnectionId) {
        let channel = self
            .dialing_back
            .get_mut(&connection)
            .and_then(|dialing| dialing.channel.take());
        self.answer_dial_back(channel, DialedBack::NotDialed);
    }

    /// Puts `key` in the DHT once this node is known to be dialable; until then it waits.
    pub(super) fn provide(&mut self, key: CacheKey) {
        if !self.shared.role.provides() {
            return;
        }
        match self.dialability {
            Dialability::Dialable => {
                if let Err(e) = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .start_providing(kad::RecordKey::new(&key.0))
                {
                    log(format_args!("cannot provide {}: {e}", key.short()));
                }
            }
            Dialability::Unknown { .. } | Dialability::Undialable => {
                if self.unprovided.len() < MAX_PROVIDED_KEYS {
                    self.unprovided.push(key);
                }
            }
            Dialability::NotListening => {}
        }
    }

    pub(super) fn on_reach(&mut self, event: request_response::Event<DialBack, DialedBack>) {
        match event {
            request_response::Event::Message {
                peer,
                connection_id,
                message,
            } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.dial_back(peer, connection_id, &request, channel),
                request_response::Message::Response { response, .. } => match response {
                    DialedBack::Dialed => self.dialable(&format!("{peer} dialed this node back")),
                    DialedBack::NotDialed => self.undialable(peer),
                    DialedBack::NotChecked => self.ask_again_later(),
                },
            },
            request_response::Event::OutboundFailure {
                peer,
                error: request_response::OutboundFailure::UnsupportedProtocols,
                ..
            } => {
                // A peer of an earlier release: it neither dials back nor leaves undialable
                // peers out of its routing table, so this node does as those releases did.
                self.dialable(&format!(
                    "{peer} cannot dial nodes back (an earlier release); taking this node for \
                     dialable, as earlier releases did"
                ));
            }
            request_response::Event::OutboundFailure { .. } => self.ask_again_later(),
            _ => {}
        }
    }

    /// A dial-back was not made or not answered: the next peer this node dials is asked. Only
    /// while it still waits for that answer: one that learnt meanwhile (a peer connected to it)
    /// keeps what it learnt.
    fn ask_again_later(&mut self) {
        if self.dialability == (Dialability::Unknown { asking: true }) {
            self.dialability = Dialability::Unknown { asking: false };
        }
    }

    /// Asks `peer` to dial this node back on the TCP ports it listens on.
    fn ask_dial_back(&mut self, peer: PeerId) {
        let mut ports: Vec<u16> = self.swarm.listeners().filter_map(tcp_port).collect();
        ports.sort_unstable();
        ports.dedup();
        if ports.is_empty() {
            return;
        }
        self.swarm
            .behaviour_mut()
            .reach
            .send_request(&peer, DialBack { ports });
        self.dialability = Dialability::Unknown { asking: true };
    }

    /// Dials `peer` back on the ports it named, at the address its connection comes from.
    fn dial_back(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        request: &DialBack,
        channel: ResponseChannel<DialedBack>,
    ) {
        let busy = self.dialing_back.len() >= MAX_DIAL_BACKS
            || self.dialing_back.values().any(|d| d.peer == peer);
        let addresses: Vec<Multiaddr> = match self.remote_ips.get(&connection) {
            Some(ip) if !busy => request
                .ports
                .iter()
                .take(MAX_REACH_PORTS)
                .map(|port| Multiaddr::from(*ip).with(Protocol::Tcp(*port)))
                .collect(),
            _ => Vec::new(),
        };
        let dialed = (!addresses.is_empty()).then(|| {
            let opts = DialOpts::peer_id(peer)
                .addresses(addresses)
                .condition(PeerCondition::Always)
                .build();
            let id = opts.connection_id();
            self.swarm.dial(opts).map(|()| id)
        });
        let Some(Ok(id)) = dialed else {
            self.answer_dial_back(Some(channel), DialedBack::NotChecked);
            return;
        };
        self.dialing_back.insert(
            id,
            DialingBack {
                peer,
                channel: Some(channel),
            },
        );
        let shared = self.shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(DIAL_BACK_WAIT).await;
            shared.send(Command::DialBackDue { connection: id }).await;
        });
    }

    /// Tells the asker what came of its dial-back, unless it was told already (`None`).
    fn answer_dial_back(
        &mut self,
        channel: Option<ResponseChannel<DialedBack>>,
        answer: DialedBack,
    ) {
        if let Some(channel) = channel {
            let _ = self
                .swarm
                .behaviour_mut()
                .reach
                .send_response(channel, answer);
        }
    }

    /// This node can be dialed: it joins the DHT, provides what waited, and tells its peers
    /// (identify) that it speaks Kademlia, so that they put it in their routing tables.
    fn dialable(&mut self, how: &str) {
        if matches!(
            self.dialability,
            Dialability::Dialable | Dialability::NotListening
        ) {
            return;
        }
        self.dialability = Dialability::Dialable;
        let waited = std::mem::take(&mut self.unprovided);
        log(format_args!(
            "{how}: peers can dial it; it takes part in the DHT (providing {} entries that \
             waited for this)",
            waited.len()
        ));
        self.swarm
            .behaviour_mut()
            .kad
            .set_mode(Some(kad::Mode::Server));
        let peers: Vec<PeerId> = self.connected.iter().copied().collect();
        self.swarm.behaviour_mut().identify.push(peers);
        for key in waited {
            self.provide(key);
        }
    }

    fn undialable(&mut self, peer: PeerId) {
        if self.dialability != (Dialability::Unknown { asking: true }) {
            return;
        }
        self.dialability = Dialability::Undialable;
        log(format_args!(
            "{peer} could not dial this node back within {} ms: it stays out of the DHT and \
             peers reach it only over connections it opens, as with --no-listen (which says \
             so from the start)",
            DIAL_BACK_WAIT.as_millis()
        ));
    }
}

/// The IP address a connection's remote address starts with.
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

/// The TCP port of a listen address.
fn tcp_port(addr: &Multiaddr) -> Option<u16> {
    addr.iter().find_map(|p| match p {
        Protocol::Tcp(port) => Some(port),
        _ => None,
    })
}
