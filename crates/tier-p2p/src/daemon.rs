//! What the daemon's tasks share with the swarm task, and what they ask of it.
//!
//! The swarm task ([`crate::node`]) owns the swarm; the control socket's connections
//! ([`crate::control`]) and the fetches ([`crate::fetches`]) run in tasks beside it. They hold a
//! [`Shared`] (everything but the swarm) and send it [`Command`]s over a bounded channel. This
//! module is the contract between them, apart from the event loop, so that the tasks depend on
//! the contract and the loop on the tasks, and never the other way round.

use std::collections::HashSet;
use std::sync::Arc;

use ghcache_core::budget::News;
use ghcache_core::event::HeardWrite;
use ghcache_core::policy::Resources;
use ghcache_core::{CacheKey, CacheTier, Manifest, ScopeId};
use libp2p::identity::Keypair;
use libp2p::request_response::ResponseChannel;
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};

use crate::budget::MachineBook;
use crate::check;
use crate::invalidations::Invalidations;
use crate::role::Role;
use crate::status::{LiveCounters, Status};
use crate::traffic::Traffic;
use crate::wire::{FetchRequest, FetchResponse};

/// The peers a lookup may ask at once, best first (see `dials::Reach::rank`).
#[derive(Debug, Default)]
pub(crate) struct Candidates {
    pub(crate) peers: Vec<PeerId>,
    /// Whether any of them is connected: if none is, every one costs a dial.
    pub(crate) connected: bool,
    /// Those of them not connected now: asking one costs a dial, which may hang (a peer behind
    /// NAT), so a lookup waits for it only so long.
    pub(crate) unconnected: HashSet<PeerId>,
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
    /// Walk the DHT for `key`'s providers; reply with them, ranked as above, at the first step
    /// that finds any (even if none is worth asking), or when the walk ends.
    /// `goes_on` completes when a peer answered without providers and the walk goes on to the
    /// peers it named.
    DhtProviders {
        key: CacheKey,
        reply: oneshot::Sender<Candidates>,
        goes_on: oneshot::Sender<()>,
    },
    /// A lookup stopped waiting for its dials to `peers`: those still not connected are taken
    /// for dials that hang and skipped as failed ones are (a dial that connects after all
    /// clears that). Reply with them.
    Hung {
        peers: Vec<PeerId>,
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
    /// A dial-back for a peer has had its time: unless it connected, the peer is told it could
    /// not be dialed.
    DialBackDue {
        connection: libp2p::swarm::ConnectionId,
    },
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
        /// When the command recorded the write here (0: not given, now).
        at_ms: u64,
    },
    /// A command told what GitHub said of a principal's rate-limit budget: tell `scope_id`'s
    /// peers (the book has it already).
    Budget { scope_id: ScopeId, news: News },
    /// A source of GitHub's own writes (number `source`, in the order given) told of `write`.
    HeardWrite { source: usize, write: HeardWrite },
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
    /// What the transport counts, for `status`.
    pub(crate) traffic: Arc<Traffic>,
    /// To the swarm task: sent through [`Shared::send`].
    pub(crate) commands: mpsc::Sender<Command>,
    /// Invalidations from peers, waiting for the store.
    pub(crate) invalidations: Invalidations,
    /// Where the daemon's metrics are served, to be reported by `status`.
    pub(crate) metrics: Option<std::net::SocketAddr>,
    /// The machine's rate-limit book, written to off the swarm task.
    pub(crate) book: MachineBook,
}

impl Shared {
    /// Sends `command` to the swarm task; `false` when the swarm task has stopped.
    pub(crate) async fn send(&self, command: Command) -> bool {
        self.commands.send(command).await.is_ok()
    }
}
