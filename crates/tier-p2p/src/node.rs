//! The daemon: one libp2p swarm per machine, and the Unix socket that CLI processes ask it on.
//!
//! One task owns the swarm and does only networking; lookups, serving and store writes run in
//! their own tasks and talk to it over a bounded command channel, so a slow disk never stalls
//! the swarm.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ghcache_core::{now_ms, Body, CacheKey, CacheTier, Entry, Lookup, Manifest, Selector};
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{upgrade::Version, Boxed};
use libp2p::futures::stream::FuturesUnordered;
use libp2p::futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::pnet::PnetConfig;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    gossipsub, identify, kad, mdns, noise, ping, tcp, yamux, Multiaddr, PeerId, StreamProtocol,
    Swarm, Transport,
};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

use crate::config::Config;
use crate::control;
use crate::directory::Directory;
use crate::error::Error;
use crate::identity;
use crate::sign::{self, Rejection};
use crate::traffic::{Metered, Traffic};
use crate::wire::{self, FetchCodec, FetchRequest, FetchResponse, Gossip, Invalidation, Reply};

/// Kademlia protocol name: private, so our DHT never merges with the public IPFS one.
const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ghcache/kad/1.0.0");
/// Identify protocol version string.
const ID_PROTOCOL: &str = "/ghcache/id/1.0.0";
/// A producer clock this far ahead of ours is still believed.
const CLOCK_SKEW: Duration = Duration::from_secs(30);
/// Invalidations older than this are replays or very late: ignored.
const INVALIDATION_MAX_AGE: Duration = Duration::from_secs(600);
/// Fetches in flight per lookup: a hedge against one slow provider, not a flood.
const HEDGE: usize = 2;
/// Queue from tasks to the swarm task.
const COMMAND_QUEUE: usize = 256;
/// Concurrent request-response streams per connection.
const MAX_STREAMS: usize = 32;
/// Provider records this node keeps (its own and others'): one per cached key.
const MAX_PROVIDED_KEYS: usize = 100_000;
/// Repositories whose invalidation from peers waits for the local store. Past this, the
/// waiting ones are replaced by one invalidation of everything (see [`Invalidations`]).
const MAX_PENDING_INVALIDATIONS: usize = 1024;
/// How long a stopping daemon still spends applying invalidations it received.
const INVALIDATION_DRAIN: Duration = Duration::from_secs(5);

/// Path of the control socket of the daemon for cache dir `dir`.
pub(crate) fn socket_path(dir: &Path) -> PathBuf {
    identity::p2p_dir(dir).join("daemon.sock")
}

/// Gossip topic of a scope: scopes never share a topic, so entries never cross scopes.
fn topic(scope_id: &[u8; 32]) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(format!("ghcache/v1/{}", hex(scope_id)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn log(line: std::fmt::Arguments<'_>) {
    eprintln!("ghcache daemon: {line}");
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    mdns: Toggle<mdns::tokio::Behaviour>,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    gossipsub: gossipsub::Behaviour,
    fetch: request_response::Behaviour<FetchCodec>,
}

/// Counters reported by `status`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    announcements_received: AtomicU64,
    invalidations_received: AtomicU64,
    fetches_served: AtomicU64,
    pub(crate) lookups: AtomicU64,
    pub(crate) hits: AtomicU64,
    rejected: AtomicU64,
    /// Control connections the daemon closed: idle or slow past a deadline, evicted to make
    /// room, or sending garbage.
    pub(crate) clients_dropped: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What tasks ask of the swarm task.
pub(crate) enum Command {
    /// Reply with peers that may hold `key`: from the directory, else from the DHT.
    FindProviders {
        key: CacheKey,
        scope_id: [u8; 32],
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    /// Reply with the manifest the swarm announced for `key`, if any.
    Manifest {
        key: CacheKey,
        scope_id: [u8; 32],
        reply: oneshot::Sender<Option<Manifest>>,
    },
    /// Ask `peer` for an entry; reply `None` if the request failed.
    Fetch {
        peer: PeerId,
        request: FetchRequest,
        reply: oneshot::Sender<Option<FetchResponse>>,
    },
    /// Answer a peer's fetch request.
    Respond {
        channel: ResponseChannel<FetchResponse>,
        response: FetchResponse,
    },
    /// `peer` sent bad data: count it, and cut it off if it cannot have been an honest mistake.
    Reject {
        peer: PeerId,
        reason: String,
        disconnect: bool,
    },
    /// Join a scope's topic (a local CLI uses that scope).
    Subscribe { scope_id: [u8; 32] },
    /// Announce a signed manifest (when not read-only) and provide its key.
    Announce { manifest: Box<Manifest> },
    /// Provide a key without announcing it (an entry fetched from a peer).
    Provide { key: CacheKey },
    /// Tell a scope that a repository's entries are out of date.
    Invalidate { scope_id: [u8; 32], repo: String },
    /// Reply with the JSON status.
    Status { reply: oneshot::Sender<String> },
}

/// What the tasks share: everything but the swarm.
pub(crate) struct Shared {
    store: Arc<dyn CacheTier>,
    pub(crate) keypair: Keypair,
    pub(crate) trusted: Vec<PeerId>,
    pub(crate) read_only: bool,
    pub(crate) counters: Counters,
    traffic: Arc<Traffic>,
    commands: mpsc::Sender<Command>,
    invalidations: Invalidations,
    /// Where the daemon's metrics are served, to be reported by `status`.
    metrics: Option<std::net::SocketAddr>,
}

/// Invalidations received from peers, waiting for the local store: one task applies them, one
/// at a time, so a flood of them costs a queue, not a task each.
///
/// The queue never drops one: an invalidation lost would leave a stale entry served. A
/// repository already waiting is not queued twice; when more than
/// [`MAX_PENDING_INVALIDATIONS`] repositories wait, they are replaced by one invalidation of
/// the whole store, which drops more than was asked but never too little.
#[derive(Default)]
struct Invalidations {
    pending: Mutex<Pending>,
    ready: Notify,
}

#[derive(Default)]
struct Pending {
    repos: VecDeque<String>,
    everything: bool,
}

impl Invalidations {
    fn push(&self, repo: String) {
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if pending.everything || pending.repos.contains(&repo) {
                return;
            }
            if pending.repos.len() >= MAX_PENDING_INVALIDATIONS {
                log(format_args!(
                    "over {MAX_PENDING_INVALIDATIONS} invalidations from peers wait for the local \
                     store: dropping every stored entry instead"
                ));
                pending.repos.clear();
                pending.everything = true;
            } else {
                pending.repos.push_back(repo);
            }
        }
        self.ready.notify_one();
    }

    fn next(&self) -> Option<Selector> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if std::mem::take(&mut pending.everything) {
            return Some(Selector::All);
        }
        pending.repos.pop_front().map(Selector::Repo)
    }

    /// Applies what waits, then returns.
    async fn drain(&self, store: &dyn CacheTier) {
        while let Some(selector) = self.next() {
            if let Err(e) = store.invalidate(&selector).await {
                let what = match &selector {
                    Selector::Repo(repo) => repo.as_str(),
                    _ => "every entry",
                };
                log(format_args!("cannot invalidate {what}: {e}"));
            }
        }
    }

    /// Applies invalidations as they arrive, forever.
    async fn apply(shared: Arc<Shared>) {
        loop {
            let ready = shared.invalidations.ready.notified();
            shared.invalidations.drain(shared.store.as_ref()).await;
            ready.await;
        }
    }
}

impl Shared {
    pub(crate) async fn send(&self, command: Command) -> bool {
        self.commands.send(command).await.is_ok()
    }
}

/// Runs the p2p daemon for cache dir `dir` until `shutdown` completes.
///
/// # Behavior
/// Loads (or creates) the node identity, binds `<dir>/p2p/daemon.sock`, joins the private swarm
/// with `config`, and serves CLI requests and peers' fetches from `store` (the local tier).
/// Logs one line per notable event to stderr. On shutdown the socket file is removed.
///
/// # Errors
/// [`Error::AlreadyRunning`] if another daemon answers on the socket, [`Error::Identity`],
/// [`Error::Socket`], or [`Error::Node`] when the swarm cannot listen on `config.listen`.
pub async fn run(
    config: Config,
    dir: &Path,
    store: Arc<dyn CacheTier>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let keypair = identity::load_or_create(dir)?;
    let socket = socket_path(dir);
    let listener = bind(dir, &socket).await?;
    let traffic = Arc::new(Traffic::default());
    let mut swarm = build_swarm(&config, &keypair, traffic.clone())?;
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| Error::Node(format!("cannot listen on {addr}: {e}")))?;
    }
    for addr in &config.bootstrap {
        dial_bootstrap(&mut swarm, addr);
    }
    log(format_args!(
        "peer id {} (swarm key fingerprint {}){}",
        swarm.local_peer_id(),
        config.swarm_key.fingerprint(),
        if config.read_only { ", read-only" } else { "" }
    ));

    let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
    let shared = Arc::new(Shared {
        store,
        keypair,
        trusted: config.trusted_peers.clone(),
        read_only: config.read_only,
        counters: Counters::default(),
        traffic,
        commands,
        invalidations: Invalidations::default(),
        metrics: config.metrics,
    });
    let acceptor = tokio::spawn(control::serve(listener, shared.clone()));
    let invalidator = tokio::spawn(Invalidations::apply(shared.clone()));
    let mut node = Node {
        swarm,
        shared,
        directory: Directory::default(),
        topics: HashMap::new(),
        pending_providers: HashMap::new(),
        pending_fetches: HashMap::new(),
        connected: HashSet::new(),
    };
    if !config.read_only && !config.held.is_empty() {
        let held = config.held.len().min(MAX_PROVIDED_KEYS);
        for key in config.held.iter().take(held) {
            node.provide(*key);
        }
        log(format_args!("providing {held} stored entries"));
    }
    node.run(command_rx, shutdown).await;
    acceptor.abort();
    invalidator.abort();
    // What peers asked to drop is dropped before the daemon goes: a lost invalidation would
    // leave a stale entry for the CLI to serve.
    let store = node.shared.store.clone();
    if tokio::time::timeout(
        INVALIDATION_DRAIN,
        node.shared.invalidations.drain(store.as_ref()),
    )
    .await
    .is_err()
    {
        log(format_args!(
            "stopped before every invalidation from peers was applied"
        ));
    }
    let _ = std::fs::remove_file(&socket);
    log(format_args!("stopped"));
    Ok(())
}

/// Binds the control socket, replacing a stale one left by a daemon that died.
async fn bind(dir: &Path, socket: &Path) -> Result<UnixListener, Error> {
    let fail = |source| Error::Socket {
        path: socket.to_owned(),
        source,
    };
    if socket.exists() {
        if UnixStream::connect(socket).await.is_ok() {
            return Err(Error::AlreadyRunning {
                dir: dir.to_owned(),
                socket: socket.to_owned(),
            });
        }
        std::fs::remove_file(socket).map_err(fail)?;
    }
    UnixListener::bind(socket).map_err(fail)
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

fn build_swarm(
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
    // Every member may be asked: peers behind NAT are rare in a team's private swarm.
    kad.set_mode(Some(kad::Mode::Server));

    let mdns = if config.mdns {
        Some(
            mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                .map_err(|e| node_err("mdns", &e))?,
        )
    } else {
        None
    };

    let fetch = request_response::Behaviour::with_codec(
        FetchCodec,
        [(wire::FETCH_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(config.fetch_timeout)
            .with_max_concurrent_streams(MAX_STREAMS),
    );

    let behaviour = Behaviour {
        identify: identify::Behaviour::new(identify::Config::new(
            ID_PROTOCOL.into(),
            keypair.public(),
        )),
        ping: ping::Behaviour::default(),
        mdns: Toggle::from(mdns),
        kad,
        gossipsub,
        fetch,
    };
    Ok(Swarm::new(
        transport,
        behaviour,
        peer_id,
        libp2p::swarm::Config::with_tokio_executor()
            // Keep peers connected between CLI calls: a fresh dial costs more than the deadline.
            .with_idle_connection_timeout(Duration::from_secs(300)),
    ))
}

fn dial_bootstrap(swarm: &mut Swarm<Behaviour>, addr: &Multiaddr) {
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

/// The swarm task's state.
struct Node {
    swarm: Swarm<Behaviour>,
    shared: Arc<Shared>,
    directory: Directory,
    topics: HashMap<gossipsub::TopicHash, [u8; 32]>,
    pending_providers: HashMap<kad::QueryId, oneshot::Sender<Vec<PeerId>>>,
    pending_fetches: HashMap<OutboundRequestId, oneshot::Sender<Option<FetchResponse>>>,
    connected: HashSet<PeerId>,
}

impl Node {
    async fn run(&mut self, mut commands: mpsc::Receiver<Command>, shutdown: impl Future) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                event = self.swarm.select_next_some() => self.on_event(event),
                Some(command) = commands.recv() => self.on_command(command),
            }
        }
    }

    fn local_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    fn subscribe(&mut self, scope_id: [u8; 32]) -> gossipsub::IdentTopic {
        let topic = topic(&scope_id);
        if self.topics.insert(topic.hash(), scope_id).is_none() {
            if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&topic) {
                log(format_args!("cannot subscribe to {topic}: {e}"));
            }
        }
        topic
    }

    fn reject(&mut self, peer: PeerId, reason: &str, disconnect: bool) {
        bump(&self.shared.counters.rejected);
        self.directory.forget_peer(&peer);
        log(format_args!("rejected data from {peer}: {reason}"));
        if disconnect {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::FindProviders {
                key,
                scope_id,
                reply,
            } => {
                let me = self.local_id();
                let known: Vec<PeerId> = self
                    .directory
                    .providers(&key, &scope_id)
                    .into_iter()
                    .filter(|p| *p != me)
                    .collect();
                if !known.is_empty() {
                    let _ = reply.send(known);
                    return;
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_providers(kad::RecordKey::new(&key.0));
                self.pending_providers.insert(id, reply);
            }
            Command::Manifest {
                key,
                scope_id,
                reply,
            } => {
                let _ = reply.send(self.directory.manifest(&key, &scope_id).cloned());
            }
            Command::Fetch {
                peer,
                request,
                reply,
            } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .fetch
                    .send_request(&peer, request);
                self.pending_fetches.insert(id, reply);
            }
            Command::Respond { channel, response } => {
                // Fails only if the peer gave up waiting: nothing to do.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .fetch
                    .send_response(channel, response);
            }
            Command::Reject {
                peer,
                reason,
                disconnect,
            } => self.reject(peer, &reason, disconnect),
            Command::Subscribe { scope_id } => {
                self.subscribe(scope_id);
            }
            Command::Announce { manifest } => {
                let topic = self.subscribe(manifest.scope_id);
                let key = manifest.key;
                let message = Gossip::Announcement {
                    manifest: manifest.encode(),
                };
                match self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic, message.encode())
                {
                    Ok(_) => log(format_args!("announced {}", key.short())),
                    // Nobody of this scope is online yet: the DHT record still finds us.
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {}
                    Err(e) => log(format_args!("cannot announce {}: {e}", key.short())),
                }
                self.provide(key);
            }
            Command::Provide { key } => self.provide(key),
            Command::Invalidate { scope_id, repo } => {
                let topic = self.subscribe(scope_id);
                self.directory.drop_repo(&repo);
                let message = Gossip::Invalidation(Invalidation {
                    scope_id,
                    repo: repo.clone(),
                    at_ms: now_ms(),
                });
                match self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic, message.encode())
                {
                    Ok(_) => log(format_args!("sent invalidation of {repo}")),
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {}
                    Err(e) => log(format_args!("cannot send invalidation of {repo}: {e}")),
                }
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
        }
    }

    fn provide(&mut self, key: CacheKey) {
        if self.shared.read_only {
            return;
        }
        if let Err(e) = self
            .swarm
            .behaviour_mut()
            .kad
            .start_providing(kad::RecordKey::new(&key.0))
        {
            log(format_args!("cannot provide {}: {e}", key.short()));
        }
    }

    fn status(&self) -> String {
        let c = &self.shared.counters;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "peer_id": self.local_id().to_string(),
            "pid": std::process::id(),
            "metrics_url": self.shared.metrics.map(|addr| format!("http://{addr}/metrics")),
            "listen_addrs": self.swarm.listeners().map(|a| a.to_string()).collect::<Vec<_>>(),
            "connected_peers": self.swarm.connected_peers().map(|p| p.to_string()).collect::<Vec<_>>(),
            "read_only": self.shared.read_only,
            "trusted_peers": self.shared.trusted.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "scopes": self.topics.len(),
            "directory_entries": self.directory.len(),
            "counters": {
                "announcements_received": n(&c.announcements_received),
                "invalidations_received": n(&c.invalidations_received),
                "fetches_served": n(&c.fetches_served),
                "lookups": n(&c.lookups),
                "hits": n(&c.hits),
                "rejected": n(&c.rejected),
                "clients_dropped": n(&c.clients_dropped),
                "bytes_in": self.shared.traffic.bytes_in(),
                "bytes_out": self.shared.traffic.bytes_out(),
            },
        })
        .to_string()
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                log(format_args!(
                    "listening on {address}/p2p/{}",
                    self.local_id()
                ));
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. } if self.connected.insert(peer_id) => {
                log(format_args!("connected to {peer_id}"));
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.connected.remove(&peer_id);
                log(format_args!("disconnected from {peer_id}"));
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour(event),
            _ => {}
        }
    }

    fn on_behaviour(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                // The DHT learns where peers listen from identify; without it lookups stall.
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    if !self.connected.contains(&peer) {
                        log(format_args!("mdns found {peer} at {addr}"));
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer, addr.clone());
                        let _ = self.swarm.dial(addr);
                    }
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(result),
                step,
                ..
            }) => {
                let me = self.local_id();
                let found: Vec<PeerId> = match result {
                    Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                        providers.into_iter().filter(|p| *p != me).collect()
                    }
                    _ => Vec::new(),
                };
                // Answer with the first providers found; the rest of the walk is not needed.
                if !found.is_empty() || step.last {
                    if let Some(reply) = self.pending_providers.remove(&id) {
                        let _ = reply.send(found);
                    }
                    if !step.last {
                        if let Some(mut query) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                            query.finish();
                        }
                    }
                }
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                let acceptance = self.on_gossip(propagation_source, message);
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
            }
            BehaviourEvent::Fetch(request_response::Event::Message { peer, message, .. }) => {
                match message {
                    request_response::Message::Request {
                        request, channel, ..
                    } => {
                        if self.shared.read_only {
                            let _ = self
                                .swarm
                                .behaviour_mut()
                                .fetch
                                .send_response(channel, FetchResponse::NotFound);
                            return;
                        }
                        tokio::spawn(serve(self.shared.clone(), peer, request, channel));
                    }
                    request_response::Message::Response {
                        request_id,
                        response,
                    } => {
                        if let Some(reply) = self.pending_fetches.remove(&request_id) {
                            let _ = reply.send(Some(response));
                        }
                    }
                }
            }
            BehaviourEvent::Fetch(request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            }) => {
                if let Some(reply) = self.pending_fetches.remove(&request_id) {
                    let _ = reply.send(None);
                }
                // An undecodable or oversized response is a protocol violation, not bad luck.
                if let request_response::OutboundFailure::Io(e) = &error {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        self.reject(peer, &format!("bad fetch response: {e}"), true);
                        return;
                    }
                }
                log(format_args!("fetch from {peer} failed: {error}"));
            }
            BehaviourEvent::Fetch(request_response::Event::InboundFailure {
                peer,
                error: request_response::InboundFailure::Io(e),
                ..
            }) if e.kind() == std::io::ErrorKind::InvalidData => {
                self.reject(peer, &format!("bad fetch request: {e}"), true);
            }
            _ => {}
        }
    }

    /// App-level validation of a gossip message: only what passes is forwarded to other peers.
    fn on_gossip(
        &mut self,
        from: PeerId,
        message: gossipsub::Message,
    ) -> gossipsub::MessageAcceptance {
        use gossipsub::MessageAcceptance::{Accept, Ignore, Reject};
        let Some(&scope_id) = self.topics.get(&message.topic) else {
            return Ignore;
        };
        let Some(source) = message.source else {
            self.reject(from, "unsigned gossip", true);
            return Reject;
        };
        let gossip = match Gossip::decode(&message.data) {
            Ok(g) => g,
            Err(e) => {
                self.reject(from, &e.to_string(), true);
                return Reject;
            }
        };
        match gossip {
            Gossip::Announcement { manifest } => {
                let manifest = match Manifest::decode(&manifest) {
                    Ok(m) => m,
                    Err(e) => {
                        self.reject(from, &e.to_string(), true);
                        return Reject;
                    }
                };
                match sign::verify(&manifest, &self.shared.trusted) {
                    Ok(_) => {}
                    Err(r @ Rejection::Untrusted(_)) => {
                        // A member of the swarm, just not one we take entries from.
                        self.reject(from, &r.to_string(), false);
                        return Reject;
                    }
                    Err(r) => {
                        self.reject(from, &r.to_string(), true);
                        return Reject;
                    }
                }
                if manifest.scope_id != scope_id {
                    self.reject(from, "announcement on another scope's topic", true);
                    return Reject;
                }
                if !manifest.is_fresh(now_ms(), CLOCK_SKEW)
                    || manifest.body_size > wire::MAX_BODY as u64
                {
                    return Ignore;
                }
                bump(&self.shared.counters.announcements_received);
                self.directory.insert(manifest, source);
                Accept
            }
            Gossip::Invalidation(inv) => {
                if inv.scope_id != scope_id {
                    self.reject(from, "invalidation on another scope's topic", true);
                    return Reject;
                }
                if !self.shared.trusted.is_empty() && !self.shared.trusted.contains(&source) {
                    self.reject(
                        from,
                        &format!("invalidation from untrusted {source}"),
                        false,
                    );
                    return Reject;
                }
                let now = now_ms();
                let too_old =
                    now.saturating_sub(inv.at_ms) > INVALIDATION_MAX_AGE.as_millis() as u64;
                let too_new = inv.at_ms > now.saturating_add(CLOCK_SKEW.as_millis() as u64);
                if too_old || too_new {
                    return Ignore;
                }
                bump(&self.shared.counters.invalidations_received);
                log(format_args!("invalidation of {} from {source}", inv.repo));
                self.directory.drop_repo(&inv.repo);
                self.shared.invalidations.push(inv.repo);
                Accept
            }
        }
    }
}

/// Answers one peer's fetch request from the local store.
async fn serve(
    shared: Arc<Shared>,
    peer: PeerId,
    request: FetchRequest,
    channel: ResponseChannel<FetchResponse>,
) {
    let response = match shared.store.get(&request.key).await {
        Ok(Lookup::Hit(entry)) => servable(&shared, entry, &request.scope_id),
        Ok(Lookup::Miss) => None,
        Err(e) => {
            log(format_args!("local store failed serving {peer}: {e}"));
            None
        }
    };
    let response = match response {
        Some(entry) => {
            bump(&shared.counters.fetches_served);
            FetchResponse::Found {
                manifest: entry.manifest.encode(),
                body: entry.body.encode(),
            }
        }
        None => FetchResponse::NotFound,
    };
    shared.send(Command::Respond { channel, response }).await;
}

/// The entry as it may be sent to a peer of scope `scope_id`, or `None` if it may not.
fn servable(shared: &Shared, mut entry: Entry, scope_id: &[u8; 32]) -> Option<Entry> {
    if &entry.manifest.scope_id != scope_id
        || !entry.manifest.is_fresh(now_ms(), Duration::ZERO)
        || entry.manifest.body_size > wire::MAX_BODY as u64
        || !entry.verify_body()
    {
        return None;
    }
    if entry.manifest.producer.is_none() {
        // Fetched from GitHub by this machine: we vouch for it.
        sign::sign(&mut entry.manifest, &shared.keypair).ok()?;
    }
    Some(entry)
}

/// Finds `key` in the swarm: providers, then a hedged fetch; the first valid entry wins.
pub(crate) async fn lookup(
    shared: &Arc<Shared>,
    key: CacheKey,
    scope_id: [u8; 32],
    deadline: Duration,
) -> Reply {
    let until = Instant::now() + deadline;
    shared.send(Command::Subscribe { scope_id }).await;
    let (tx, rx) = oneshot::channel();
    if !shared
        .send(Command::FindProviders {
            key,
            scope_id,
            reply: tx,
        })
        .await
    {
        return Reply::Miss;
    }
    let providers = match tokio::time::timeout_at(until, rx).await {
        Ok(Ok(p)) => p,
        _ => return Reply::Miss,
    };
    let request = FetchRequest { key, scope_id };
    let mut queue = providers.into_iter();
    let mut inflight = FuturesUnordered::new();
    loop {
        while inflight.len() < HEDGE {
            let Some(peer) = queue.next() else { break };
            inflight.push(fetch(shared, peer, request.clone()));
        }
        let (peer, response) = match tokio::time::timeout_at(until, inflight.next()).await {
            Ok(Some(done)) => done,
            Ok(None) | Err(_) => return Reply::Miss,
        };
        let Some(FetchResponse::Found { manifest, body }) = response else {
            continue;
        };
        match check(&shared.trusted, &request, &manifest, &body) {
            Ok(entry) => {
                if let Err(e) = shared.store.put(&entry).await {
                    log(format_args!("cannot store {}: {e}", key.short()));
                }
                shared.send(Command::Provide { key }).await;
                return Reply::Hit { manifest, body };
            }
            Err((reason, disconnect)) => {
                bump_reject(shared, peer, reason, disconnect).await;
            }
        }
    }
}

async fn bump_reject(shared: &Shared, peer: PeerId, reason: String, disconnect: bool) {
    shared
        .send(Command::Reject {
            peer,
            reason,
            disconnect,
        })
        .await;
}

async fn fetch(
    shared: &Arc<Shared>,
    peer: PeerId,
    request: FetchRequest,
) -> (PeerId, Option<FetchResponse>) {
    let (tx, rx) = oneshot::channel();
    if !shared
        .send(Command::Fetch {
            peer,
            request,
            reply: tx,
        })
        .await
    {
        return (peer, None);
    }
    (peer, rx.await.ok().flatten())
}

/// Every check an entry from a peer must pass before it is used or re-served. The error says
/// why, and whether the peer must have lied (then it is disconnected).
fn check(
    trusted: &[PeerId],
    request: &FetchRequest,
    manifest: &[u8],
    body: &[u8],
) -> Result<Entry, (String, bool)> {
    let lie = |reason: String| (reason, true);
    let manifest = Manifest::decode(manifest).map_err(|e| lie(e.to_string()))?;
    let body = Body::decode(body).map_err(|e| lie(e.to_string()))?;
    if manifest.key != request.key {
        return Err(lie("answered with another key".into()));
    }
    if manifest.scope_id != request.scope_id {
        return Err(lie("answered with another scope's entry".into()));
    }
    match sign::verify(&manifest, trusted) {
        Ok(_) => {}
        Err(r @ Rejection::Untrusted(_)) => return Err((r.to_string(), false)),
        Err(r) => return Err(lie(r.to_string())),
    }
    if manifest.body_size > wire::MAX_BODY as u64 {
        return Err(lie("body over the size cap".into()));
    }
    let entry = Entry { manifest, body };
    if !entry.verify_body() {
        return Err(lie("body does not match the manifest's digest".into()));
    }
    if !entry.manifest.is_fresh(now_ms(), CLOCK_SKEW) {
        // Clocks differ; stale is not a lie.
        return Err(("entry is not fresh".into(), false));
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ghcache_core::testkit::sample_entry;

    /// A signed entry as an honest peer would send it, and the request it answers.
    fn honest(keypair: &Keypair) -> Result<(Entry, FetchRequest), Error> {
        let mut entry = sample_entry(1, "o/r", b"out\n");
        sign::sign(&mut entry.manifest, keypair)?;
        let request = FetchRequest {
            key: entry.manifest.key,
            scope_id: entry.manifest.scope_id,
        };
        Ok((entry, request))
    }

    fn run_check(
        trusted: &[PeerId],
        request: &FetchRequest,
        entry: &Entry,
    ) -> Result<Entry, (String, bool)> {
        check(
            trusted,
            request,
            &entry.manifest.encode(),
            &entry.body.encode(),
        )
    }

    #[test]
    fn an_honest_entry_passes() -> Result<(), Error> {
        let keypair = Keypair::generate_ed25519();
        let (entry, request) = honest(&keypair)?;
        assert_eq!(run_check(&[], &request, &entry), Ok(entry.clone()));
        let me = keypair.public().to_peer_id();
        assert_eq!(run_check(&[me], &request, &entry), Ok(entry));
        Ok(())
    }

    #[test]
    fn lies_are_rejected_and_cut_off() -> Result<(), Error> {
        let keypair = Keypair::generate_ed25519();
        let (entry, request) = honest(&keypair)?;

        let mut tampered = entry.clone();
        tampered.body.stdout = b"poison\n".to_vec();
        let mut forged = entry.clone();
        forged.manifest.signature = Some(vec![0; 64]);
        let mut unsigned = entry.clone();
        unsigned.manifest.producer = None;
        unsigned.manifest.signature = None;
        let other_scope = FetchRequest {
            scope_id: [0; 32],
            ..request.clone()
        };
        let other_key = FetchRequest {
            key: CacheKey([0; 32]),
            ..request.clone()
        };

        for (what, request, entry) in [
            ("tampered body", &request, &tampered),
            ("bad signature", &request, &forged),
            ("unsigned", &request, &unsigned),
            ("wrong scope", &other_scope, &entry),
            ("wrong key", &other_key, &entry),
        ] {
            let result = run_check(&[], request, entry);
            assert!(matches!(result, Err((_, true))), "{what}: {result:?}");
        }
        let garbage = check(&[], &request, b"garbage", &entry.body.encode());
        assert!(matches!(garbage, Err((_, true))));
        Ok(())
    }

    #[test]
    fn stale_or_untrusted_entries_are_refused_without_blame() -> Result<(), Error> {
        let keypair = Keypair::generate_ed25519();
        let mut expired = sample_entry(1, "o/r", b"out\n");
        expired.manifest.created_at_ms = now_ms() - 120_000;
        sign::sign(&mut expired.manifest, &keypair)?;
        let request = FetchRequest {
            key: expired.manifest.key,
            scope_id: expired.manifest.scope_id,
        };
        assert!(matches!(
            run_check(&[], &request, &expired),
            Err((_, false))
        ));

        let (entry, request) = honest(&keypair)?;
        let stranger = Keypair::generate_ed25519().public().to_peer_id();
        assert!(matches!(
            run_check(&[stranger], &request, &entry),
            Err((_, false))
        ));
        Ok(())
    }
}
