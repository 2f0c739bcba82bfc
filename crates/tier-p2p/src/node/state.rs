//! The swarm task's state: the swarm, and what the node knows and does beside it.
//!
//! Its own file so that the event loop ([`super`]) and the parts of it with a protocol or a
//! phase of their own (its sibling modules) all reach the state here, and none of them reaches
//! another through it.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ghcache_core::{CacheKey, ScopeId};
use libp2p::request_response::{OutboundRequestId, ResponseChannel};
use libp2p::swarm::ConnectionId;
use libp2p::{kad, PeerId, Swarm};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::budget::Outbox;
use crate::catch_up::CatchUpState;
use crate::daemon::{Candidates, Shared};
use crate::dials::FailedDials;
use crate::directory::Directory;
use crate::heard::Sources;
use crate::keeper::{Handoff, Keeper};
use crate::oidc::Verifier;
use crate::repos::RecentRepos;
use crate::role::Role;
use crate::status::Status;
use crate::swarm::{scope_of, Behaviour};
use crate::topics::Topics;
use crate::wire::{DialedBack, FetchResponse};

/// A DHT walk for a lookup.
pub(super) struct Walking {
    pub(super) reply: oneshot::Sender<Candidates>,
    /// Told (once) when a peer answered without providers and the walk goes on.
    pub(super) goes_on: Option<oneshot::Sender<()>>,
}

/// What this node knows of whether peers can dial it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialability {
    /// It does not listen (`--no-listen`): nobody dials it, and it asks nobody to.
    NotListening,
    /// It listens, and nobody has dialed it yet; `asking` while a dial-back is under way.
    Unknown { asking: bool },
    /// A peer connected to it: it takes part in the DHT.
    Dialable,
    /// A peer it asked could not dial it back: it stays out of the DHT.
    Undialable,
}

impl Dialability {
    /// What `ghcache daemon status` says.
    pub(super) fn label(self) -> &'static str {
        match self {
            Dialability::NotListening => "not listening",
            Dialability::Unknown { .. } => "not known yet",
            Dialability::Dialable => "dialable",
            Dialability::Undialable => "not dialable",
        }
    }
}

/// A dial-back this node makes for a peer.
pub(super) struct DialingBack {
    pub(super) peer: PeerId,
    /// Where the answer goes; taken when it is sent (the dial may outlive the answer).
    pub(super) channel: Option<ResponseChannel<DialedBack>>,
}

/// The swarm task's state.
pub(super) struct Node {
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) shared: Arc<Shared>,
    pub(super) directory: Directory,
    /// The topics joined, and the scopes this machine wants followed.
    pub(super) topics: Topics,
    /// DHT walks for a lookup: whom to answer, and whom to tell when they go past a first hop.
    pub(super) pending_providers: HashMap<kad::QueryId, Walking>,
    pub(super) pending_fetches: HashMap<OutboundRequestId, oneshot::Sender<Option<FetchResponse>>>,
    pub(super) connected: HashSet<PeerId>,
    /// Connected peers that said (in identify) they are keepers.
    pub(super) keepers: HashSet<PeerId>,
    /// This node's keeping, when it is a keeper.
    pub(super) keeper: Option<Keeper>,
    pub(super) dials: FailedDials,
    /// Directory requests in flight: whom they asked, about which scope.
    pub(super) asking: HashMap<OutboundRequestId, (PeerId, ScopeId)>,
    /// (peer, scope) pairs asked for a directory on the connections open now.
    pub(super) asked: HashSet<(PeerId, ScopeId)>,
    /// What this node announced that no keeper is known to hold.
    pub(super) handoff: Handoff,
    /// Whether the log said that the keeper follows as many scopes as it may.
    pub(super) warned_scope_cap: bool,
    /// Whether the log said that a peer asked the keeper for more scopes than its share.
    pub(super) warned_scope_share: bool,
    /// Whether peers can dial this node: one they cannot (or not yet known to) provides
    /// nothing in the DHT, where a record pointing at it would cost every walker a dial that
    /// cannot succeed (see the reach module).
    pub(super) dialability: Dialability,
    /// Keys to provide once this node is known to be dialable.
    pub(super) unprovided: Vec<CacheKey>,
    /// The dial-backs this node makes for peers, by the connection they dial.
    pub(super) dialing_back: HashMap<ConnectionId, DialingBack>,
    /// The IP address each open connection comes from: where a dial-back goes.
    pub(super) remote_ips: HashMap<ConnectionId, IpAddr>,
    /// This job's OIDC token, presented to each peer on connecting (see the oidc module).
    pub(super) token_file: Option<PathBuf>,
    /// The scope names presented with it.
    pub(super) produces_for: Vec<String>,
    /// Checks the tokens peers present.
    pub(super) verifier: Option<Verifier>,
    /// Sources of GitHub's own writes (a webhook receiver), for the status.
    pub(super) sources: Sources,
    /// What it saw lately, and the gap it has to close after it was away.
    pub(super) catch_up: CatchUpState,
    /// Where the repositories asked about lately are noted, for a follow source.
    pub(super) recent_repos: Option<Arc<RecentRepos>>,
    /// When this machine's rate-limit news goes to the peers.
    pub(super) outbox: Outbox,
}

impl Node {
    /// Notes that an answer about `repo` was fetched or announced here.
    pub(super) fn note_repo(&self, repo: &str) {
        if let Some(repos) = &self.recent_repos {
            repos.note(repo);
        }
    }

    /// What `status` reports now, but for the rate limits: the control socket reads them from
    /// the book, a file, off the swarm task.
    pub(super) fn status(&self) -> Status {
        let strings = |peers: &mut dyn Iterator<Item = &PeerId>| -> Vec<String> {
            peers.map(|p| p.to_string()).collect()
        };
        Status {
            bound_producers: strings(&mut self.shared.accept.binding.bound().iter()),
            connected_peers: strings(&mut self.swarm.connected_peers()),
            counters: self.shared.counters.snapshot(&self.shared.traffic),
            directory_entries: self.directory.len(),
            heard: self.heard_status(),
            heard_ttl_ms: self.catch_up.hearing.ttls_ms.clone(),
            keep: self.keeper.as_ref().map(Keeper::load),
            keeper: self.shared.role.keeps(),
            keepers: strings(&mut self.keepers.iter()),
            listen_addrs: self.swarm.listeners().map(|a| a.to_string()).collect(),
            metrics_url: self
                .shared
                .metrics
                .map(|addr| format!("http://{addr}/metrics")),
            out_of_touch_since_ms: self.catch_up.gap.map(|gap| gap.from_ms),
            peer_id: self.local_id().to_string(),
            pid: std::process::id(),
            rate_limits: Vec::new(),
            reach: self.dialability.label().to_owned(),
            read_only: self.shared.role == Role::ReadOnly,
            scopes: self.topics.len(),
            trusted_peers: strings(&mut self.shared.accept.trusted.iter()),
            unreachable_peers: self.dials.count(Instant::now()),
            write_sources: self.sources.status(),
        }
    }
}

/// The scopes some connected peer subscribes to now: their keeper slots are in use.
pub(super) fn scopes_in_use(swarm: &Swarm<Behaviour>) -> HashSet<ScopeId> {
    swarm
        .behaviour()
        .gossipsub
        .all_peers()
        .flat_map(|(_, topics)| topics.into_iter().filter_map(scope_of))
        .collect()
}
