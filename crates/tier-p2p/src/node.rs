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
//! The daemon's rooms: this file starts and stops it and runs the swarm task's event loop;
//! [`crate::swarm`] builds the swarm, [`crate::check`] holds the checks of everything peers
//! send (gossip validation among them), [`crate::control`] serves the CLI's socket,
//! [`crate::fetches`] runs lookups and fetches, and [`mod@crate::status`] is what `status` reports.
//! What one peer may take of the tables peers add to (a keeper's scope slots, the directory) is
//! in [`crate::shares`]; the gossip topics followed, and why, in [`crate::topics`].

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ghcache_core::policy::Resources;
use ghcache_core::{now_ms, CacheKey, CacheTier, Manifest, ScopeId};
use libp2p::futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{DialError, SwarmEvent};
use libp2p::{gossipsub, identify, kad, mdns, PeerId, Swarm};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::check::{self, Heard};
use crate::config::Config;
use crate::control;
use crate::dials::{FailedDials, Reach};
use crate::directory::Directory;
use crate::error::Error;
use crate::fetches::{self, Candidates};
use crate::invalidations::Invalidations;
use crate::keeper::{self, Follow, Handoff, Keeper, Offer};
use crate::oidc::{self, Binding, Verifier};
use crate::role::Role;
use crate::status::{bump, LiveCounters, Status};
use crate::swarm::{self, scope_of, topic, Behaviour, BehaviourEvent, MAX_PROVIDED_KEYS};
use crate::swarm_key::SwarmKeyExt as _;
use crate::topics::Topics;
use crate::traffic::Traffic;
use crate::wire::{
    self, DirectoryItem, DirectoryRequest, DirectoryResponse, FetchRequest, FetchResponse, Gossip,
    Invalidation, Presentation, Presented,
};

/// Queue from tasks to the swarm task.
const COMMAND_QUEUE: usize = 256;
/// How long a stopping daemon still spends applying invalidations it received.
const INVALIDATION_DRAIN: Duration = Duration::from_secs(5);
/// How long a stopping daemon waits for connected keepers to take what it announced lately.
const HANDOFF_DRAIN: Duration = Duration::from_secs(5);
/// How often a stopping daemon asks the keepers whether they hold what it announced: a keeper
/// fetches an entry in milliseconds once it heard of it.
const HANDOFF_POLL: Duration = Duration::from_millis(100);
/// How long a stopping daemon waits for its connections to close: a close takes a round trip.
const GOODBYE: Duration = Duration::from_secs(1);
/// Scopes followed from the start (the scope of this machine's CLI; a few at most).
const MAX_INITIAL_SCOPES: usize = 16;
/// Peers asked for a scope's directory when this node starts following the scope, keepers
/// first: one keeper knows what the fleet fetched; a few peers cover one that left.
const DIRECTORY_FANOUT: usize = 4;
/// Directory requests in flight at once; past it, no more are asked until some are answered.
const MAX_DIRECTORY_ASKS: usize = 32;
/// (peer, scope) pairs asked on the connections open now: each is asked once per connection.
const MAX_ASKED: usize = 4096;
/// How often the node lets go of what expired: a keeper's idle scope slots and the scopes no
/// local client named lately (both expire after an hour; a minute late is no matter).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Path of the control socket of the daemon for cache dir `dir`.
pub(crate) fn socket_path(dir: &Path) -> PathBuf {
    dir.join("p2p").join("daemon.sock")
}

pub(crate) fn log(line: std::fmt::Arguments<'_>) {
    eprintln!("ghcache daemon: {line}");
}

/// What tasks ask of the swarm task.
pub(crate) enum Command {
    /// Reply with the peers worth asking for `key` now, best first: the directory's holders and
    /// the connected keepers, without peers known to be unreachable.
    FindProviders {
        key: CacheKey,
        scope_id: ScopeId,
        reply: oneshot::Sender<Candidates>,
    },
    /// Walk the DHT for `key`'s providers; reply with them, ranked as above.
    DhtProviders {
        key: CacheKey,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    /// Reply with the manifest the swarm announced for `key`, if any.
    Manifest {
        key: CacheKey,
        scope_id: ScopeId,
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
    Subscribe { scope_id: ScopeId },
    /// Announce a signed manifest (when not read-only) and provide its key.
    Announce { manifest: Box<Manifest> },
    /// This node now holds the entry `manifest` describes (fetched from a peer): provide it,
    /// and name this node as a holder in directory replies.
    Held { manifest: Box<Manifest> },
    /// A keeper's fetch of `key` ended; `manifest` is set when the entry was checked and stored.
    Kept {
        key: CacheKey,
        manifest: Option<Box<Manifest>>,
    },
    /// A peer asked for `key`, which is not stored: `reply` completes when the keeper's own fetch
    /// of it lands, and is dropped at once when there is none.
    AwaitKept {
        key: CacheKey,
        reply: oneshot::Sender<()>,
    },
    /// Tell a scope that a repository's entries are out of date.
    Invalidate {
        scope_id: ScopeId,
        repo: String,
        resources: Option<Resources>,
    },
    /// Reply with the status.
    Status { reply: oneshot::Sender<Status> },
}

/// What the tasks share: everything but the swarm.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn CacheTier>,
    pub(crate) keypair: Keypair,
    /// Whom entries are taken from, and how far their clocks may run ahead.
    pub(crate) accept: check::Acceptance,
    /// What this node does for the swarm: every check of what it may do asks this.
    pub(crate) role: Role,
    pub(crate) counters: LiveCounters,
    traffic: Arc<Traffic>,
    commands: mpsc::Sender<Command>,
    invalidations: Invalidations,
    /// Where the daemon's metrics are served, to be reported by `status`.
    metrics: Option<std::net::SocketAddr>,
}

impl Shared {
    pub(crate) async fn send(&self, command: Command) -> bool {
        self.commands.send(command).await.is_ok()
    }
}

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
    let role = Role::of(&config)?;
    if config.require_oidc && config.oidc.is_none() {
        return Err(Error::Oidc(
            "requiring OIDC tokens needs the issuer's key set to check them with".into(),
        ));
    }
    let keypair = Keypair::ed25519_from_bytes(config.identity.secret())
        .map_err(|e| Error::Node(format!("cannot use the node's identity: {e}")))?;
    let socket = socket_path(dir);
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
    });
    let acceptor = tokio::spawn(control::serve(listener, shared.clone()));
    let applier = shared.clone();
    let invalidator = tokio::spawn(async move {
        applier.invalidations.apply(applier.store.as_ref()).await;
    });
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
        listening: !config.listen.is_empty(),
        token_file: config.oidc_token_file.clone(),
        produces_for: config.produces_for.clone(),
        verifier: config.oidc.clone(),
    };
    if role.provides() && !config.held.is_empty() {
        let held = config.held.len().min(MAX_PROVIDED_KEYS);
        for key in config.held.iter().take(held) {
            node.provide(*key);
        }
        log(format_args!("providing {held} stored entries"));
    }
    // The scopes this machine's CLI uses are followed from the start: the daemon hears their
    // announcements, and asks for their directory, before the CLI's first lookup.
    for scope_id in config.scopes.iter().take(MAX_INITIAL_SCOPES) {
        node.topics.pin(*scope_id);
        node.name_scope(*scope_id);
    }
    node.run(&mut command_rx, shutdown).await;
    node.hand_off(&mut command_rx).await;
    node.close_connections().await;
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
    if let Some(parent) = socket.parent() {
        // Private: whoever can write it can stand in for the daemon.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(fail)?;
    }
    if socket.exists() {
        match crate::socket::connect(socket).await {
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

/// The swarm task's state.
struct Node {
    swarm: Swarm<Behaviour>,
    shared: Arc<Shared>,
    directory: Directory,
    /// The topics joined, and the scopes this machine wants followed.
    topics: Topics,
    pending_providers: HashMap<kad::QueryId, oneshot::Sender<Vec<PeerId>>>,
    pending_fetches: HashMap<OutboundRequestId, oneshot::Sender<Option<FetchResponse>>>,
    connected: HashSet<PeerId>,
    /// Connected peers that said (in identify) they are keepers.
    keepers: HashSet<PeerId>,
    /// This node's keeping, when it is a keeper.
    keeper: Option<Keeper>,
    dials: FailedDials,
    /// Directory requests in flight: whom they asked, about which scope.
    asking: HashMap<OutboundRequestId, (PeerId, ScopeId)>,
    /// (peer, scope) pairs asked for a directory on the connections open now.
    asked: HashSet<(PeerId, ScopeId)>,
    /// What this node announced that no keeper is known to hold.
    handoff: Handoff,
    /// Whether the log said that the keeper follows as many scopes as it may.
    warned_scope_cap: bool,
    /// Whether the log said that a peer asked the keeper for more scopes than its share.
    warned_scope_share: bool,
    /// Whether this node listens: one that does not is never dialed, so it provides nothing in
    /// the DHT (a record pointing at it would cost every walker a dial that cannot succeed).
    listening: bool,
    /// This job's OIDC token, presented to each peer on connecting (see the oidc module).
    token_file: Option<PathBuf>,
    /// The scope names presented with it.
    produces_for: Vec<String>,
    /// Checks the tokens peers present.
    verifier: Option<Verifier>,
}

impl Node {
    async fn run(&mut self, commands: &mut mpsc::Receiver<Command>, shutdown: impl Future) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut sweep = tokio::time::interval_at(Instant::now() + SWEEP_EVERY, SWEEP_EVERY);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                event = self.swarm.select_next_some() => self.on_event(event),
                Some(command) = commands.recv() => self.on_command(command),
                _ = sweep.tick() => self.sweep(Instant::now()),
            }
        }
    }

    /// Before a runner goes: what it announced lately and no keeper is known to hold is
    /// announced again, and the node keeps serving for up to [`HANDOFF_DRAIN`], asking the
    /// connected keepers' directories every [`HANDOFF_POLL`] until each names its keeper as a
    /// holder. Nobody can fetch from a runner that nobody can dial once it is gone.
    async fn hand_off(&mut self, commands: &mut mpsc::Receiver<Command>) {
        let now = Instant::now();
        let due = self.handoff_due(now);
        if due.is_empty() || self.keepers.is_empty() || !self.shared.role.hands_off() {
            return;
        }
        log(format_args!(
            "waiting up to {}s for keepers to take {} entries announced lately",
            HANDOFF_DRAIN.as_secs(),
            due.len()
        ));
        // A keeper that began to follow the scope after the first announcement never heard it.
        for manifest in &due {
            self.publish_announcement(manifest);
        }
        let until = now + HANDOFF_DRAIN;
        let mut poll = tokio::time::interval(HANDOFF_POLL);
        loop {
            let due = self.handoff_due(Instant::now());
            if due.is_empty() {
                log(format_args!("keepers hold what this node announced"));
                return;
            }
            if self.keepers.is_empty() {
                log(format_args!("stopping: no keeper is connected any more"));
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {
                    log(format_args!("stopping before keepers took every entry"));
                    return;
                }
                _ = poll.tick() => self.ask_keepers_again(&due),
                event = self.swarm.select_next_some() => self.on_event(event),
                Some(command) = commands.recv() => self.on_command(command),
            }
        }
    }

    /// The handoff's entries that no connected keeper is known (from its directory) to hold.
    fn handoff_due(&mut self, now: Instant) -> Vec<Manifest> {
        let (directory, keepers) = (&self.directory, &self.keepers);
        self.handoff
            .due(now, |m| keepers.iter().any(|k| directory.holds(&m.key, k)))
    }

    /// Asks each connected keeper again for its directory of the scopes of `due`, unless a
    /// request about that scope is still in flight.
    fn ask_keepers_again(&mut self, due: &[Manifest]) {
        let mut scopes: Vec<ScopeId> = due.iter().map(|m| m.scope_id).collect();
        scopes.sort();
        scopes.dedup();
        let keepers: Vec<PeerId> = self.keepers.iter().copied().collect();
        for keeper in keepers {
            for scope_id in &scopes {
                let pending = self
                    .asking
                    .values()
                    .any(|asked| asked == &(keeper, *scope_id));
                if !pending && self.asking.len() < MAX_DIRECTORY_ASKS {
                    self.asked.remove(&(keeper, *scope_id));
                    self.ask_directory(keeper, *scope_id);
                }
            }
        }
    }

    /// Closes every connection and waits, up to [`GOODBYE`], until they are closed. A
    /// connection dropped with the process loses what it had not sent yet, such as the last
    /// answer to a keeper's fetch, which the keeper then never gets.
    async fn close_connections(&mut self) {
        let peers: Vec<PeerId> = self.connected.iter().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let until = Instant::now() + GOODBYE;
        while !self.connected.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                event = self.swarm.select_next_some() => self.on_event(event),
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

    /// Has the keeper, if this node is one, follow `scope_id` for `by` (`None`: this machine).
    /// When every slot is taken, the slots that no peer and no local client used lately are
    /// freed first (a scope this machine wants followed counts as used).
    fn keep_scope(
        &mut self,
        scope_id: ScopeId,
        by: Option<PeerId>,
        now: Instant,
    ) -> Option<Follow> {
        let keeper = self.keeper.as_mut()?;
        let follow = match keeper.follow(scope_id, by, now) {
            Follow::Full => {
                let in_use = scopes_in_use(&self.swarm);
                let topics = &self.topics;
                let freed = keeper.expire(now, |s| in_use.contains(s) || topics.wanted(s));
                let follow = keeper.follow(scope_id, by, now);
                for scope in freed {
                    self.leave_if_unused(scope);
                }
                follow
            }
            follow => follow,
        };
        Some(follow)
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

    /// Asks up to [`DIRECTORY_FANOUT`] connected peers for their directory of `scope_id`:
    /// keepers first, then peers subscribed to its topic.
    fn ask_directories(&mut self, scope_id: ScopeId) {
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
    fn ask_directory(&mut self, peer: PeerId, scope_id: ScopeId) {
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
    fn on_identified(&mut self, peer: PeerId, is_keeper: bool) {
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

    /// A keeper follows every scope its peers subscribe to, up to its cap and each peer's
    /// share, and asks a peer that joins a followed scope for what it holds there.
    fn on_peer_subscribed(&mut self, peer: PeerId, topic: &gossipsub::TopicHash) {
        if self.keeper.is_none() {
            return;
        }
        let Some(scope_id) = scope_of(topic) else {
            return;
        };
        match self.keep_scope(scope_id, Some(peer), Instant::now()) {
            Some(follow @ (Follow::Started | Follow::Already)) => {
                if follow == Follow::Started {
                    log(format_args!("keeping scope {}", scope_id.short()));
                }
                // A topic this machine follows already (its own scope) is not joined again:
                // its new peer is asked directly.
                if self.topics.is_joined(topic) {
                    self.ask_directory(peer, scope_id);
                } else {
                    self.join(scope_id);
                }
            }
            Some(Follow::Full) => self.warn_scope_cap(),
            Some(Follow::OverShare) => {
                bump(&self.shared.counters.over_share);
                if !std::mem::replace(&mut self.warned_scope_share, true) {
                    log(format_args!(
                        "{peer} subscribes to more new scopes than one peer may have a keeper \
                         follow ({}); the others are not kept",
                        crate::shares::SCOPES_PER_PEER
                    ));
                }
            }
            None => {}
        }
    }

    /// Says once that the keeper has no scope slot left.
    fn warn_scope_cap(&mut self) {
        if !std::mem::replace(&mut self.warned_scope_cap, true) {
            let scopes = self.keeper.as_ref().map_or(0, |k| k.load().scopes);
            log(format_args!(
                "keeping as many scopes as a keeper may ({scopes}); entries of other scopes are \
                 not kept until a scope no peer uses is let go"
            ));
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

    /// Queues a keeper's fetch of `manifest`'s entry, unless this node holds it already.
    fn offer_to_keeper(&mut self, manifest: Manifest, providers: Vec<PeerId>) {
        let me = self.local_id();
        let Some(keeper) = self.keeper.as_mut() else {
            return;
        };
        if !keeper.follows(&manifest.scope_id) || self.directory.holds(&manifest.key, &me) {
            return;
        }
        if keeper.offer(manifest, providers) == Offer::Full {
            bump(&self.shared.counters.keep_missed);
        }
        self.start_keeping();
    }

    /// Starts the keeper's queued fetches that its bounds allow, each from the peers that hold
    /// the entry and are connected, in turn: the announcing runner, over the connection it
    /// opened. A runner that nobody can dial is fetched from while it is there, or not at all.
    fn start_keeping(&mut self) {
        let Some(keeper) = self.keeper.as_mut() else {
            return;
        };
        while let Some(job) = keeper.next() {
            let holders: Vec<PeerId> = job
                .providers
                .iter()
                .filter(|p| self.connected.contains(p))
                .copied()
                .collect();
            if holders.is_empty() {
                keeper.finish(&job.manifest.key);
                bump(&self.shared.counters.keep_missed);
            } else {
                tokio::spawn(fetches::keep(self.shared.clone(), holders, job.manifest));
            }
        }
    }

    /// Drops what `invalidation` covers from what this node knows and is fetching.
    fn drop_covered(&mut self, invalidation: &Invalidation) {
        self.directory.invalidate(invalidation);
        if let Some(keeper) = self.keeper.as_mut() {
            keeper.invalidate(invalidation);
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
                let reach = self.reach();
                let peers = reach.rank(self.directory.providers(&key, &scope_id));
                let connected = reach.any_connected(&peers);
                let _ = reply.send(Candidates { peers, connected });
            }
            Command::DhtProviders { key, reply } => {
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
                self.publish_announcement(&manifest);
                let key = manifest.key;
                let me = self.local_id();
                self.handoff.announced((*manifest).clone(), Instant::now());
                self.directory.insert(*manifest, me, &[me]);
                self.provide(key);
            }
            Command::Held { manifest } => {
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
            } => {
                let invalidation = Invalidation {
                    scope_id,
                    repo,
                    resources,
                    at_ms: now_ms(),
                };
                let topic = self.name_scope(scope_id);
                self.drop_covered(&invalidation);
                let repo = invalidation.repo.clone();
                let message = Gossip::Invalidation(invalidation);
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

    /// A keeper's fetch ended: what was kept is held (provided, and named in directory
    /// replies), unless an invalidation covered it while it was in flight.
    fn on_kept(&mut self, key: CacheKey, manifest: Option<Box<Manifest>>) {
        let me = self.local_id();
        let Some(keeper) = self.keeper.as_mut() else {
            return;
        };
        let cancelled = keeper.finish(&key);
        match manifest {
            Some(manifest) if !cancelled => {
                bump(&self.shared.counters.kept);
                log(format_args!("kept {}", key.short()));
                self.directory.insert(*manifest, me, &[me]);
                self.provide(key);
            }
            Some(_) => {}
            None => bump(&self.shared.counters.keep_missed),
        }
        self.start_keeping();
    }

    fn provide(&mut self, key: CacheKey) {
        if !self.shared.role.provides() || !self.listening {
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

    /// What `status` reports now.
    fn status(&self) -> Status {
        let strings = |peers: &mut dyn Iterator<Item = &PeerId>| -> Vec<String> {
            peers.map(|p| p.to_string()).collect()
        };
        Status {
            bound_producers: strings(&mut self.shared.accept.binding.bound().iter()),
            connected_peers: strings(&mut self.swarm.connected_peers()),
            counters: self.shared.counters.snapshot(&self.shared.traffic),
            directory_entries: self.directory.len(),
            keep: self.keeper.as_ref().map(Keeper::load),
            keeper: self.shared.role.keeps(),
            keepers: strings(&mut self.keepers.iter()),
            listen_addrs: self.swarm.listeners().map(|a| a.to_string()).collect(),
            metrics_url: self
                .shared
                .metrics
                .map(|addr| format!("http://{addr}/metrics")),
            peer_id: self.local_id().to_string(),
            pid: std::process::id(),
            read_only: self.shared.role == Role::ReadOnly,
            scopes: self.topics.len(),
            trusted_peers: strings(&mut self.shared.accept.trusted.iter()),
            unreachable_peers: self.dials.count(Instant::now()),
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
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                self.dials.connected(&peer_id);
                if self.connected.insert(peer_id) {
                    log(format_args!("connected to {peer_id}"));
                    self.present(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.connected.remove(&peer_id);
                self.keepers.remove(&peer_id);
                self.asked.retain(|(peer, _)| *peer != peer_id);
                log(format_args!("disconnected from {peer_id}"));
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
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
                // The DHT learns where peers listen from identify; without it lookups stall.
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
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
                let found: Vec<PeerId> = match result {
                    Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                        self.reach().rank(providers)
                    }
                    _ => Vec::new(),
                };
                // The walk learnt where the providers listen, and forgets it when it ends: dial
                // those not connected now, while the addresses are there (the fetch that follows
                // waits for this dial instead of starting one without addresses).
                for peer in &found {
                    if !self.connected.contains(peer) {
                        let opts = DialOpts::peer_id(*peer)
                            .condition(PeerCondition::DisconnectedAndNotDialing)
                            .build();
                        if self.swarm.dial(opts).is_ok() {
                            self.dials.dialing(*peer, Instant::now());
                        }
                    }
                }
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
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic, .. }) => {
                self.on_peer_subscribed(peer_id, &topic);
            }
            BehaviourEvent::Fetch(event) => self.on_fetch(event),
            BehaviourEvent::Directory(event) => self.on_directory(event),
            BehaviourEvent::Oidc(event) => self.on_oidc(event),
            _ => {}
        }
    }

    /// Shows `peer` this job's OIDC token and the scopes this node produces for, so that it
    /// takes this node's entries for them. The file is read each time: a token refreshed
    /// during a long job reaches the peers met later.
    fn present(&mut self, peer: PeerId) {
        let Some(path) = &self.token_file else {
            return;
        };
        match oidc::read_token(path) {
            Ok(token) => {
                let presentation = Presentation {
                    token,
                    scopes: self.produces_for.clone(),
                };
                self.swarm
                    .behaviour_mut()
                    .oidc
                    .send_request(&peer, presentation);
            }
            Err(reason) => log(format_args!(
                "cannot present the OIDC token to {peer}: {reason}"
            )),
        }
    }

    fn on_oidc(&mut self, event: request_response::Event<Presentation, Presented>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let outcome = oidc::answer(
                        self.verifier.as_ref(),
                        &self.shared.accept.binding,
                        peer,
                        &request,
                    );
                    match &outcome {
                        Ok((job, granted)) => log(format_args!(
                            "{peer} is a job of {}: it may produce for {granted} of the {} \
                             scopes it named",
                            job.repository,
                            request.scopes.len()
                        )),
                        Err(reason) => {
                            if self.verifier.is_some() {
                                bump(&self.shared.counters.tokens_refused);
                            }
                            log(format_args!("refused the OIDC token of {peer}: {reason}"));
                        }
                    }
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .oidc
                        .send_response(channel, Presented::of(&outcome));
                }
                request_response::Message::Response { response, .. } => match response {
                    Presented::Granted(n) => log(format_args!(
                        "{peer} took the OIDC token: this node may produce for {n} scopes there"
                    )),
                    Presented::Refused(reason) => {
                        log(format_args!("{peer} refused the OIDC token: {reason}"))
                    }
                },
            },
            request_response::Event::OutboundFailure { peer, error, .. } => log(format_args!(
                "could not present the OIDC token to {peer}: {error}"
            )),
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
                    request_response::OutboundFailure::DialFailure => {
                        self.dials.failed(peer, Instant::now());
                    }
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

    fn on_directory(
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

    /// App-level validation of a gossip message: only what passes its checks
    /// ([`check::gossip`]) is used, and forwarded to other peers.
    fn on_gossip(
        &mut self,
        from: PeerId,
        message: gossipsub::Message,
    ) -> gossipsub::MessageAcceptance {
        use gossipsub::MessageAcceptance::{Accept, Ignore, Reject};
        let Some(scope_id) = self.topics.scope(&message.topic) else {
            return Ignore;
        };
        let accept = &self.shared.accept;
        match check::gossip(accept, &scope_id, message.source, &message.data) {
            Err((reason, disconnect)) => {
                self.reject(from, &reason, disconnect);
                Reject
            }
            Ok(None) => Ignore,
            Ok(Some(Heard::Announcement { manifest, source })) => {
                bump(&self.shared.counters.announcements_received);
                let over = self
                    .directory
                    .insert((*manifest).clone(), source, &[source]);
                self.shared
                    .counters
                    .over_share
                    .fetch_add(over as u64, Ordering::Relaxed);
                self.offer_to_keeper(*manifest, vec![source]);
                Accept
            }
            Ok(Some(Heard::Invalidation {
                invalidation: inv,
                source,
            })) => {
                bump(&self.shared.counters.invalidations_received);
                log(format_args!("invalidation of {} from {source}", inv.repo));
                self.drop_covered(&inv);
                self.shared.invalidations.push(inv.selector());
                Accept
            }
        }
    }
}

/// The scopes some connected peer subscribes to now: their keeper slots are in use.
fn scopes_in_use(swarm: &Swarm<Behaviour>) -> HashSet<ScopeId> {
    swarm
        .behaviour()
        .gossipsub
        .all_peers()
        .flat_map(|(_, topics)| topics.into_iter().filter_map(scope_of))
        .collect()
}
