//! The daemon: one libp2p swarm per machine, and the Unix socket that CLI processes ask it on.
//!
//! One task owns the swarm and does only networking; lookups, serving, a keeper's fetches and
//! store writes run in their own tasks ([`crate::fetches`]) and talk to it over a bounded command
//! channel, so a slow disk never stalls the swarm.
//!
//! Besides entries, peers exchange directories (`/ghcache/directory/1`): a daemon asks the peers
//! it connects to, keepers first, for the manifests they hold or know in its scopes, so a runner
//! that joins after an answer was announced knows at once where it is. Every manifest received
//! is checked ([`crate::check`]) before the directory keeps it.
//!
//! The daemon's rooms: this file starts it and runs the swarm task's event loop, and its
//! children hold the parts of the loop with a protocol or a phase of their own: `exchange` (the
//! directory exchange), `keeping` (what a keeper follows and fetches), `tokens` (OIDC tokens
//! shown and checked), `reach` (whether peers can dial this node: the dial-back), `budget`
//! (rate-limit news sent and heard) and `stop` (the handoff to keepers, and the stop); `state`
//! is the state they share. [`crate::daemon`] is what the tasks beside the loop share with it
//! and ask of it; [`crate::swarm`] builds the swarm, [`crate::check`] holds the checks of
//! everything peers send (gossip validation among them), [`crate::control`] serves the CLI's
//! socket, [`crate::fetches`] runs lookups and fetches, [`crate::budget`] writes rate-limit
//! news to the machine's book and paces what is sent, and [`mod@crate::status`] is what
//! `status` reports. What one peer may take of the tables peers add to (a keeper's scope
//! slots, the directory) is in [`crate::shares`]; the gossip topics followed, and why, in
//! [`crate::topics`].

mod budget;
mod catch_up;
mod exchange;
mod gossip;
mod hearing;
mod keeping;
mod reach;
mod state;
mod stop;
mod tokens;
mod writes;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ghcache_core::{CacheTier, Manifest, ScopeId, Selector};
use libp2p::futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::request_response;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{DialError, SwarmEvent};
use libp2p::{gossipsub, identify, kad, mdns, ping, PeerId};
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::budget::{MachineBook, SEND_HELD_EVERY};
use crate::catch_up::CatchUpState;
use crate::check;
use crate::config::Config;
use crate::control;
use crate::daemon::{Candidates, Command, Shared};
use crate::dials::{FailedDials, Reach};
use crate::directory::Directory;
use crate::error::Error;
use crate::fetches;
use crate::heard::{Sources, WriteSource};
use crate::invalidations::Invalidations;
use crate::keeper::{self, Handoff, Keeper};
use crate::log::log;
use crate::oidc::Binding;
use crate::role::Role;
use crate::socket;
use crate::status::{bump, LiveCounters};
use crate::swarm::{self, topic, BehaviourEvent, KAD_PROTOCOL, MAX_PROVIDED_KEYS};
use crate::swarm_key::SwarmKeyExt as _;
use crate::topics::Topics;
use crate::traffic::Traffic;
use crate::wire::{FetchRequest, FetchResponse, Gossip};

use state::{scopes_in_use, Dialability, Node, Walking};

/// Queue from tasks to the swarm task.
const COMMAND_QUEUE: usize = 256;
/// Scopes followed from the start (the scope of this machine's CLI; a few at most).
const MAX_INITIAL_SCOPES: usize = 16;
/// How often the node lets go of what expired: a keeper's idle scope slots and the scopes no
/// local client named lately (both expire after an hour; a minute late is no matter).
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often the node looks at its catch-up: a gap's deadline, the periodic ask, redials.
const CATCH_UP_TICK: Duration = Duration::from_secs(1);

/// Runs the p2p daemon for cache dir `dir` until `shutdown` completes.
///
/// # Behavior
/// Takes the node identity from `config`, binds `<dir>/p2p/daemon.sock`, joins the private swarm
/// with `config`, and serves CLI requests and peers' fetches from `store` (the local tier).
/// Logs one line per notable event to stderr. On shutdown it waits up to 5 s for connected
/// keepers to take what it announced lately, applies the invalidations it received, and
/// removes the socket file.
///
/// # Errors
/// [`Error::AlreadyRunning`] if another daemon answers on the socket, [`Error::Untrusted`] if
/// another user's process listens on it or its directory is not private, [`Error::Node`] for an
/// identity libp2p does not take,
/// [`Error::Socket`], or [`Error::Node`] when the swarm cannot listen on `config.listen` or
/// `config` asks for a read-only keeper.
pub async fn run(
    config: Config,
    dir: &Path,
    store: Arc<dyn CacheTier>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    run_with(config, dir, store, shutdown, Vec::new()).await
}

/// [`run`], hearing GitHub's own writes from `sources` (a webhook receiver, follow probes): each
/// write they tell of is dropped from `store` and sent to the peers of every scope the daemon
/// follows, as an invalidation signed by this node.
///
/// # Errors
/// As [`run`]; also [`Error::Node`] for sources on a read-only daemon, which sends no
/// invalidations.
pub async fn run_with(
    config: Config,
    dir: &Path,
    store: Arc<dyn CacheTier>,
    shutdown: impl Future<Output = ()>,
    sources: Vec<WriteSource>,
) -> Result<(), Error> {
    let role = Role::of(&config)?;
    if !sources.is_empty() && !role.invalidates() {
        return Err(Error::Node(
            "a read-only daemon sends no invalidations: hearing GitHub's writes (--webhook) \
             needs one that is not --read-only"
                .into(),
        ));
    }
    if config.require_oidc && config.oidc.is_none() {
        return Err(Error::Oidc(
            "requiring OIDC tokens needs the issuer's key set to check them with".into(),
        ));
    }
    let keypair = Keypair::ed25519_from_bytes(config.identity.secret())
        .map_err(|e| Error::Node(format!("cannot use the node's identity: {e}")))?;
    let socket = socket::path(dir);
    let listener = bind(dir, &socket).await?;
    let traffic = Arc::new(Traffic::default());
    let mut swarm = swarm::build(&config, &keypair, traffic.clone())?;
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| Error::Node(format!("cannot listen on {addr}: {e}")))?;
    }
    for addr in &config.bootstrap {
        swarm::dial_bootstrap(&mut swarm, addr);
    }
    let reach = if config.listen.is_empty() {
        ", not listening (dials out only)"
    } else {
        ""
    };
    log(format_args!(
        "peer id {} (swarm key fingerprint {}){}{reach}",
        swarm.local_peer_id(),
        config.swarm_key.fingerprint(),
        role.label(),
    ));

    let (commands, mut command_rx) = mpsc::channel(COMMAND_QUEUE);
    let counters = LiveCounters::default();
    let book = MachineBook::new(config.book.clone(), counters.budget_news_applied.clone());
    let shared = Arc::new(Shared {
        store,
        keypair,
        accept: check::Acceptance {
            trusted: config.trusted_peers.clone(),
            skew: config.clock_skew,
            binding: Binding::new(config.require_oidc, counters.unbound.clone()),
        },
        role,
        counters,
        traffic,
        commands,
        invalidations: Invalidations::default(),
        metrics: config.metrics,
        book,
    });
    let acceptor = tokio::spawn(control::serve(listener, shared.clone()));
    let applier = shared.clone();
    let invalidator = tokio::spawn(async move {
        applier.invalidations.apply(applier.store.as_ref()).await;
    });
    let writer = shared.clone();
    let book_writer = tokio::spawn(async move { writer.book.write().await });
    let sources = Sources::start(sources, &shared.commands);
    let me = *swarm.local_peer_id();
    let mut node = Node {
        swarm,
        shared,
        directory: Directory::new(me),
        topics: Topics::default(),
        pending_providers: HashMap::new(),
        pending_fetches: HashMap::new(),
        connected: HashSet::new(),
        keepers: HashSet::new(),
        keeper: role.keeps().then(|| Keeper::new(keeper::Limits::default())),
        dials: FailedDials::default(),
        asking: HashMap::new(),
        asked: HashSet::new(),
        handoff: Handoff::default(),
        warned_scope_cap: false,
        warned_scope_share: false,
        dialability: if config.listen.is_empty() {
            Dialability::NotListening
        } else {
            Dialability::Unknown { asking: false }
        },
        unprovided: Vec::new(),
        dialing_back: HashMap::new(),
        remote_ips: HashMap::new(),
        token_file: config.oidc_token_file.clone(),
        produces_for: config.produces_for.clone(),
        verifier: config.oidc.clone(),
        sources,
        catch_up: CatchUpState::start(dir, config.bootstrap.clone(), config.heard_ttl_ms.clone()),
        recent_repos: config.recent_repos.clone(),
        outbox: Default::default(),
    };
    if role.provides() && !config.held.is_empty() {
        let held = config.held.len().min(MAX_PROVIDED_KEYS);
        for key in config.held.iter().take(held) {
            node.provide(*key);
        }
        if node.dialability == Dialability::NotListening {
            log(format_args!(
                "holds {held} stored entries; provides none in the DHT (not listening)"
            ));
        } else {
            log(format_args!(
                "providing {held} stored entries once a peer has dialed this node"
            ));
        }
    }
    // The scopes this machine's CLI uses are followed from the start: the daemon hears their
    // announcements, and asks for their directory, before the CLI's first lookup.
    for scope_id in config.scopes.iter().take(MAX_INITIAL_SCOPES) {
        node.topics.pin(*scope_id);
        node.name_scope(*scope_id);
    }
    node.run(&mut command_rx, shutdown).await;
    node.catch_up_on_stop();
    node.hand_off(&mut command_rx).await;
    node.close_connections().await;
    acceptor.abort();
    invalidator.abort();
    book_writer.abort();
    // What peers asked to drop is dropped before the daemon goes: a lost invalidation would
    // leave a stale entry for the CLI to serve. Likewise a pause a peer met is written down.
    node.drain_invalidations().await;
    node.shared.book.drain().await;
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
    if let Some(parent) = socket.parent() {
        // Private: whoever can write it can stand in for the daemon.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(fail)?;
    }
    if socket.exists() {
        match socket::connect(socket).await {
            Ok(_) => {
                return Err(Error::AlreadyRunning {
                    dir: dir.to_owned(),
                    socket: socket.to_owned(),
                })
            }
            // Another user's process on this user's socket, or a directory others can write:
            // said, not quietly replaced.
            Err(untrusted @ Error::Untrusted { .. }) => return Err(untrusted),
            Err(_) => {}
        }
        std::fs::remove_file(socket).map_err(fail)?;
    }
    UnixListener::bind(socket).map_err(fail)
}

impl Node {
    async fn run(&mut self, commands: &mut mpsc::Receiver<Command>, shutdown: impl Future) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut sweep = tokio::time::interval_at(Instant::now() + SWEEP_EVERY, SWEEP_EVERY);
        let mut catch_up = tokio::time::interval(CATCH_UP_TICK);
        let mut held_news = tokio::time::interval(SEND_HELD_EVERY);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                event = self.swarm.select_next_some() => self.on_event(event),
                Some(command) = commands.recv() => self.on_command(command),
                _ = sweep.tick() => self.sweep(Instant::now()),
                _ = catch_up.tick() => self.catch_up_tick(Instant::now()),
                _ = held_news.tick() => self.send_held_budget(Instant::now()),
            }
        }
    }

    fn local_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// What lookups know about the peers they may ask.
    fn reach(&self) -> Reach<'_> {
        Reach {
            connected: &self.connected,
            keepers: &self.keepers,
            failed: &self.dials,
            me: self.local_id(),
            now: Instant::now(),
        }
    }

    /// The peers worth asking of `holders` and the connected keepers, ranked, and which of
    /// them cost a dial.
    fn candidates(&self, holders: impl IntoIterator<Item = PeerId>) -> Candidates {
        let reach = self.reach();
        let peers = reach.rank(holders);
        let connected = reach.any_connected(&peers);
        let unconnected = peers
            .iter()
            .filter(|p| !self.connected.contains(p))
            .copied()
            .collect();
        Candidates {
            peers,
            connected,
            unconnected,
        }
    }

    /// A local client named `scope_id` (a lookup, a publish, a write): its topic is joined, and
    /// the scopes pushed out of the bounded table of named ones are let go if nothing else
    /// holds them. Returns the topic.
    fn name_scope(&mut self, scope_id: ScopeId) -> gossipsub::IdentTopic {
        let now = Instant::now();
        let pushed = self.topics.name(scope_id, now);
        // Its own machine's scopes take keeper slots like its peers', charged to no peer.
        self.keep_scope(scope_id, None, now);
        self.join(scope_id);
        for other in pushed {
            self.leave_if_unused(other);
        }
        topic(&scope_id)
    }

    /// Joins a scope's topic, unless it is joined. A scope followed for the first time has its
    /// directory asked of the connected peers, keepers first.
    fn join(&mut self, scope_id: ScopeId) {
        if self.topics.join(scope_id) {
            let topic = topic(&scope_id);
            if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&topic) {
                log(format_args!("cannot subscribe to {topic}: {e}"));
            }
            self.ask_directories(scope_id);
        }
    }

    /// Leaves `scope_id`'s topic when nothing holds it any more: not this machine's
    /// configuration, no local client lately, no keeper slot.
    fn leave_if_unused(&mut self, scope_id: ScopeId) {
        let kept = self.keeper.as_ref().is_some_and(|k| k.follows(&scope_id));
        if self.topics.wanted(&scope_id) || kept || !self.topics.leave(&scope_id) {
            return;
        }
        self.swarm
            .behaviour_mut()
            .gossipsub
            .unsubscribe(&topic(&scope_id));
        self.asked.retain(|(_, s)| *s != scope_id);
    }

    /// Lets go of what expired by `now`: a keeper's scope slots that no connected peer
    /// subscribes to and this machine does not want followed, unused for a while, and the
    /// scopes no local client named lately.
    fn sweep(&mut self, now: Instant) {
        let mut freed = self.topics.expire(now);
        if let Some(keeper) = self.keeper.as_mut() {
            let in_use = scopes_in_use(&self.swarm);
            let topics = &self.topics;
            freed.extend(keeper.expire(now, |s| in_use.contains(s) || topics.wanted(s)));
        }
        for scope_id in freed {
            self.leave_if_unused(scope_id);
        }
    }

    fn reject(&mut self, peer: PeerId, reason: &str, disconnect: bool) {
        bump(&self.shared.counters.rejected);
        self.directory.forget_peer(&peer);
        log(format_args!("rejected data from {peer}: {reason}"));
        if disconnect {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    /// Drops what `selector` covers from what this node knows and is fetching: a write changes
    /// GitHub for every scope, so what any scope holds of it goes.
    fn drop_covered(&mut self, selector: &Selector) {
        self.directory.invalidate(selector);
        if let Some(keeper) = self.keeper.as_mut() {
            keeper.invalidate(selector);
        }
    }

    fn publish_announcement(&mut self, manifest: &Manifest) {
        let topic = self.name_scope(manifest.scope_id);
        let message = Gossip::Announcement {
            manifest: manifest.encode(),
        };
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, message.encode())
        {
            Ok(_) => log(format_args!("announced {}", manifest.key.short())),
            // Nobody of this scope is online yet: the DHT record and directories still find us.
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {}
            Err(e) => log(format_args!(
                "cannot announce {}: {e}",
                manifest.key.short()
            )),
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::FindProviders {
                key,
                scope_id,
                reply,
            } => {
                let _ = reply.send(self.candidates(self.directory.providers(&key, &scope_id)));
            }
            Command::DhtProviders {
                key,
                reply,
                goes_on,
            } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_providers(kad::RecordKey::new(&key.0));
                let goes_on = Some(goes_on);
                self.pending_providers
                    .insert(id, Walking { reply, goes_on });
            }
            Command::Manifest {
                key,
                scope_id,
                reply,
            } => {
                let _ = reply.send(self.directory.manifest(&key, &scope_id).cloned());
            }
            Command::Hung { peers, reply } => {
                let now = Instant::now();
                let hung: Vec<PeerId> = peers
                    .into_iter()
                    .filter(|p| !self.connected.contains(p))
                    .collect();
                for peer in &hung {
                    log(format_args!("gave up waiting for a dial to {peer}"));
                    self.dials.failed(*peer, now);
                }
                let _ = reply.send(hung);
            }
            Command::Fetch {
                peer,
                request,
                reply,
            } => {
                if !self.connected.contains(&peer) {
                    self.dials.dialing(peer, Instant::now());
                }
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
                self.name_scope(scope_id);
            }
            Command::Announce { manifest } => {
                self.note_repo(&manifest.repo);
                self.publish_announcement(&manifest);
                let key = manifest.key;
                let me = self.local_id();
                self.handoff.announced((*manifest).clone(), Instant::now());
                self.directory.insert(*manifest, me, &[me]);
                self.provide(key);
            }
            Command::DialBackDue { connection } => self.dial_back_due(connection),
            Command::Held { manifest } => {
                self.note_repo(&manifest.repo);
                if self.shared.role.provides() {
                    let key = manifest.key;
                    let me = self.local_id();
                    self.directory.insert(*manifest, me, &[me]);
                    self.provide(key);
                }
            }
            Command::Kept { key, manifest } => self.on_kept(key, manifest),
            Command::AwaitKept { key, reply } => {
                if let Some(keeper) = self.keeper.as_mut() {
                    keeper.wait(key, reply);
                }
            }
            Command::Invalidate {
                scope_id,
                repo,
                resources,
                at_ms,
            } => self.on_own_write(scope_id, repo, resources, at_ms),
            Command::Budget { scope_id, news } => self.on_own_budget(scope_id, news),
            Command::HeardWrite { source, write } => self.on_heard_write(source, write),
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                log(format_args!(
                    "listening on {address}/p2p/{}",
                    self.local_id()
                ));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                if self.on_connection(peer_id, connection_id, &endpoint) {
                    return;
                }
                self.dials.connected(&peer_id);
                if self.connected.insert(peer_id) {
                    log(format_args!("connected to {peer_id}"));
                    self.present(peer_id);
                    self.catch_up_on_connect(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                if self.on_connection_gone(connection_id) || num_established > 0 {
                    return;
                }
                self.connected.remove(&peer_id);
                self.keepers.remove(&peer_id);
                self.asked.retain(|(peer, _)| *peer != peer_id);
                log(format_args!("disconnected from {peer_id}"));
                self.catch_up_on_gone(peer_id);
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id: Some(peer),
                error,
            } => {
                if self.on_connection_gone(connection_id) {
                    return;
                }
                // A dial that was cancelled or not needed says nothing about the peer.
                let says_nothing = matches!(
                    error,
                    DialError::Aborted
                        | DialError::DialPeerConditionFalse(_)
                        | DialError::LocalPeerId { .. }
                );
                if !says_nothing && !self.connected.contains(&peer) {
                    self.dials.failed(peer, Instant::now());
                }
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour(event),
            _ => {}
        }
    }

    fn on_behaviour(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                // The DHT learns where peers listen from identify; without it lookups stall. Only
                // of peers that speak it: one that does not yet is not known to be dialable.
                if info.protocols.contains(&KAD_PROTOCOL) {
                    for addr in info.listen_addrs {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                }
                self.on_identified(peer_id, keeper::is_keeper(&info.agent_version));
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
                let (heard, found) = match result {
                    Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                        // The walk's first step names this node when it provides the key
                        // itself (kad reports its own records before asking anyone): that is
                        // not a provider heard of, and ending the walk there would find nobody.
                        let me = self.local_id();
                        let heard = providers.iter().any(|p| *p != me);
                        (heard, self.candidates(providers))
                    }
                    _ => (false, Candidates::default()),
                };
                // The walk learnt where the providers listen, and forgets it when it ends: dial
                // those not connected now, while the addresses are there (the fetch that follows
                // waits for this dial instead of starting one without addresses).
                for peer in &found.peers {
                    if !self.connected.contains(peer) {
                        let opts = DialOpts::peer_id(*peer)
                            .condition(PeerCondition::DisconnectedAndNotDialing)
                            .build();
                        if self.swarm.dial(opts).is_ok() {
                            self.dials.dialing(*peer, Instant::now());
                        }
                    }
                }
                // Answer with the first providers found, even when none is worth asking (known
                // unreachable): the rest of the walk is not needed, and in a swarm of
                // runners nobody can dial it would go on to peers whose dials hang.
                if !heard && !step.last {
                    // A peer answered without providers: the walk goes on to the peers it named,
                    // which may cost dials.
                    if let Some(walk) = self.pending_providers.get_mut(&id) {
                        if let Some(on) = walk.goes_on.take() {
                            let _ = on.send(());
                        }
                    }
                }
                if heard || step.last {
                    if let Some(walk) = self.pending_providers.remove(&id) {
                        let _ = walk.reply.send(found);
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
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic, .. }) => {
                self.on_peer_subscribed(peer_id, &topic);
            }
            BehaviourEvent::Fetch(event) => self.on_fetch(event),
            BehaviourEvent::Directory(event) => self.on_directory(event),
            BehaviourEvent::Oidc(event) => self.on_oidc(event),
            BehaviourEvent::Reach(event) => self.on_reach(event),
            BehaviourEvent::CatchUp(event) => self.on_catch_up(event),
            // A connection that no longer answers pings is closed, so that the node knows it is
            // out of touch (libp2p keeps it open otherwise, and what it carried is lost).
            BehaviourEvent::Ping(ping::Event {
                connection,
                result: Err(e),
                peer,
            }) => {
                log(format_args!(
                    "{peer} stopped answering pings ({e}): closing"
                ));
                self.catch_up_on_cut_off(peer);
                self.swarm.close_connection(connection);
            }
            _ => {}
        }
    }

    fn on_fetch(&mut self, event: request_response::Event<FetchRequest, FetchResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if !self.shared.role.serves() {
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .fetch
                            .send_response(channel, FetchResponse::NotFound);
                        return;
                    }
                    tokio::spawn(fetches::serve(self.shared.clone(), peer, request, channel));
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.pending_fetches.remove(&request_id) {
                        let _ = reply.send(Some(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(reply) = self.pending_fetches.remove(&request_id) {
                    let _ = reply.send(None);
                }
                match &error {
                    // An undecodable or oversized response is a protocol violation, not bad luck.
                    request_response::OutboundFailure::Io(e)
                        if e.kind() == std::io::ErrorKind::InvalidData =>
                    {
                        self.reject(peer, &format!("bad fetch response: {e}"), true);
                        return;
                    }
                    // A dial that failed is remembered from its `OutgoingConnectionError`; this
                    // one may only have had no address yet (a holder heard of by gossip, whose
                    // address a DHT walk brings), which says nothing about the peer.
                    _ => {}
                }
                log(format_args!("fetch from {peer} failed: {error}"));
            }
            request_response::Event::InboundFailure {
                peer,
                error: request_response::InboundFailure::Io(e),
                ..
            } if e.kind() == std::io::ErrorKind::InvalidData => {
                self.reject(peer, &format!("bad fetch request: {e}"), true);
            }
            _ => {}
        }
    }
}
