//! The swarm a daemon runs: its transport, its behaviours and how they are configured, and the
//! gossip topics that scopes map to.
//!
//! Everything here is built once, when the daemon starts; [`crate::node`] drives the swarm.
//!
//! ```text
//! transport   TCP -> pnet (the swarm key) -> noise -> yamux
//! behaviours  identify, ping, mDNS, Kademlia (private protocol), gossipsub,
//!             /ghcache/fetch/1, /ghcache/directory/1, /ghcache/oidc/1 and /ghcache/reach/1
//!             (request-response)
//! topics      ghcache/v1/<scope id in hex>, one per scope
//! ```

use std::sync::Arc;
use std::time::Duration;

use ghcache_core::ScopeId;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{upgrade::Version, Boxed};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::pnet::PnetConfig;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    gossipsub, identify, kad, mdns, noise, ping, tcp, yamux, Multiaddr, PeerId, StreamProtocol,
    Swarm, Transport,
};

use crate::config::Config;
use crate::error::Error;
use crate::keeper;
use crate::log::log;
use crate::swarm_key::SwarmKeyExt as _;
use crate::traffic::{Metered, Traffic};
use crate::wire::{self, CatchUpCodec, DirectoryCodec, FetchCodec, OidcCodec, ReachCodec};

/// Kademlia protocol name: private, so our DHT never merges with the public IPFS one.
pub(crate) const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ghcache/kad/1.0.0");
/// Identify protocol version string.
const ID_PROTOCOL: &str = "/ghcache/id/1.0.0";
/// Concurrent request-response streams per connection.
const MAX_STREAMS: usize = 32;
/// Provider records this node keeps (its own and others'): one per cached key.
pub(crate) const MAX_PROVIDED_KEYS: usize = 100_000;
/// How long a directory, presentation or dial-back request may take: the answer is a few
/// kilobytes from memory, or a dial-back's verdict (given within half a second).
const SMALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Prefix of every scope's gossip topic.
const TOPIC_PREFIX: &str = "ghcache/v1/";
/// How often a connection is pinged, and how long an answer may take: a connection whose
/// ping goes unanswered is closed, so that a node cut off (a network gone, a laptop's lid
/// closed) knows it within about 15 s and catches up on what it missed when it is back.
const PING_EVERY: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Gossip topic of a scope: scopes never share a topic, so entries never cross scopes.
pub(crate) fn topic(scope_id: &ScopeId) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(format!("{TOPIC_PREFIX}{}", scope_id.to_hex()))
}

/// The scope a gossip topic is about, if it is one of ours (a keeper learns its peers' scopes
/// from the topics they subscribe to).
pub(crate) fn scope_of(topic: &gossipsub::TopicHash) -> Option<ScopeId> {
    ScopeId::from_hex(topic.as_str().strip_prefix(TOPIC_PREFIX)?)
}

/// The behaviours every daemon runs, in this order; `BehaviourEvent` is what they report.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) fetch: request_response::Behaviour<FetchCodec>,
    pub(crate) directory: request_response::Behaviour<DirectoryCodec>,
    pub(crate) oidc: request_response::Behaviour<OidcCodec>,
    pub(crate) catch_up: request_response::Behaviour<CatchUpCodec>,
    pub(crate) reach: request_response::Behaviour<ReachCodec>,
}

/// The swarm's transport: TCP, then pnet with the swarm key (without it, not even the noise
/// handshake starts), noise, yamux. Public so that test peers speak exactly what daemons speak.
///
/// # Errors
/// [`Error::Node`] when the noise keys cannot be made from `keypair`.
pub fn transport(
    keypair: &Keypair,
    swarm_key: &crate::SwarmKey,
    traffic: Arc<Traffic>,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, Error> {
    let psk = swarm_key.psk();
    let noise = noise::Config::new(keypair).map_err(|e| Error::Node(format!("noise: {e}")))?;
    Ok(
        tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
            .and_then(move |socket, _| {
                PnetConfig::new(psk).handshake(Metered::new(socket, traffic.clone()))
            })
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux::Config::default())
            .timeout(Duration::from_secs(10))
            .boxed(),
    )
}

/// The swarm a daemon with `config` runs as `keypair`, its transport counting into `traffic`.
///
/// # Errors
/// [`Error::Node`] when a behaviour cannot be set up from `config`.
pub(crate) fn build(
    config: &Config,
    keypair: &Keypair,
    traffic: Arc<Traffic>,
) -> Result<Swarm<Behaviour>, Error> {
    let node_err = |what: &str, e: &dyn std::fmt::Display| Error::Node(format!("{what}: {e}"));
    let peer_id = keypair.public().to_peer_id();
    let transport = transport(keypair, &config.swarm_key, traffic)?;

    let gossipsub_config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(wire::MAX_GOSSIP + 1024)
        .build()
        .map_err(|e| node_err("gossipsub config", &e))?;
    let gossipsub = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(keypair.clone()),
        gossipsub_config,
    )
    .map_err(|e| node_err("gossipsub", &e))?;

    let mut kad_config = kad::Config::new(KAD_PROTOCOL);
    kad_config.set_query_timeout(Duration::from_secs(10));
    let store = kad::store::MemoryStore::with_config(
        peer_id,
        kad::store::MemoryStoreConfig {
            max_provided_keys: MAX_PROVIDED_KEYS,
            ..Default::default()
        },
    );
    let mut kad = kad::Behaviour::with_config(peer_id, store, kad_config);
    // Client mode until a peer dialed this node back (the node module's reach): a node in server
    // mode is put in others' routing tables, where every query that picked a runner behind a
    // firewall would wait for a dial that cannot succeed. One that does not listen stays so.
    kad.set_mode(Some(kad::Mode::Client));

    let mdns = if config.mdns {
        Some(
            mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                .map_err(|e| node_err("mdns", &e))?,
        )
    } else {
        None
    };

    let fetch = exchange(FetchCodec, wire::FETCH_PROTOCOL, config.fetch_timeout);
    let directory = exchange(DirectoryCodec, wire::DIRECTORY_PROTOCOL, SMALL_TIMEOUT);
    // Every node answers presentations (it may need to know who may produce what); only a
    // node with a token makes them.
    let oidc = exchange(OidcCodec, wire::OIDC_PROTOCOL, SMALL_TIMEOUT);
    // Every node dials back a peer that asks (bounded, see the node's reach); only a node that
    // listens asks.
    let reach = exchange(ReachCodec, wire::REACH_PROTOCOL, SMALL_TIMEOUT);
    // Every node keeps what it saw lately and answers peers that were away.
    let catch_up = exchange(CatchUpCodec, wire::CATCH_UP_PROTOCOL, SMALL_TIMEOUT);

    let behaviour = Behaviour {
        identify: identify::Behaviour::new(
            identify::Config::new(ID_PROTOCOL.into(), keypair.public())
                // How peers tell a keeper: lookups ask keepers first.
                .with_agent_version(keeper::agent_version(config.keep)),
        ),
        ping: ping::Behaviour::new(
            ping::Config::new()
                .with_interval(PING_EVERY)
                .with_timeout(PING_TIMEOUT),
        ),
        mdns: Toggle::from(mdns),
        kad,
        gossipsub,
        fetch,
        directory,
        oidc,
        catch_up,
        reach,
    };
    Ok(Swarm::new(
        transport,
        behaviour,
        peer_id,
        libp2p::swarm::Config::with_tokio_executor()
            // Keep peers connected between CLI calls: a fresh dial costs more than the deadline.
            .with_idle_connection_timeout(Duration::from_secs(300))
            // A stream that names one protocol sends its request with the proposal instead of
            // a round trip later: every fetch is a new stream. The answering side is the same
            // for both versions, so older peers answer as before; one that does not speak the
            // protocol fails the request, as it did.
            .with_substream_upgrade_protocol_override(libp2p::core::upgrade::Version::V1Lazy),
    ))
}

/// A request-response protocol every node speaks both ways, each request on a stream of its
/// own (at most [`MAX_STREAMS`] per connection), given up after `timeout`.
fn exchange<C>(
    codec: C,
    protocol: StreamProtocol,
    timeout: Duration,
) -> request_response::Behaviour<C>
where
    C: request_response::Codec<Protocol = StreamProtocol> + Clone + Send + 'static,
{
    request_response::Behaviour::with_codec(
        codec,
        [(protocol, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(timeout)
            .with_max_concurrent_streams(MAX_STREAMS),
    )
}

/// Dials a bootstrap peer, first telling the DHT where it is when `addr` names it.
pub(crate) fn dial_bootstrap(swarm: &mut Swarm<Behaviour>, addr: &Multiaddr) {
    let mut bare = addr.clone();
    match bare.pop() {
        Some(Protocol::P2p(peer)) => {
            swarm.behaviour_mut().kad.add_address(&peer, bare);
        }
        _ => log(format_args!(
            "bootstrap address {addr} has no /p2p/<peer id>; dialing it anyway"
        )),
    }
    if let Err(e) = swarm.dial(addr.clone()) {
        log(format_args!("cannot dial {addr}: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_names_its_scope_and_only_ours_parse() {
        let scope = ScopeId::of("team");
        assert_eq!(scope_of(&topic(&scope).hash()), Some(scope));
        for other in [
            "ghcache/v1/zz",
            "ghcache/v2/00",
            "meshsub",
            "ghcache/v1/ÿÿ000000000000000000000000000000000000000000000000000000000000",
        ] {
            let hash = gossipsub::IdentTopic::new(other).hash();
            assert_eq!(scope_of(&hash), None, "{other}");
        }
    }
}
