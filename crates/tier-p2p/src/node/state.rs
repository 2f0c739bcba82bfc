//! The swarm task's state: the swarm, and what the node knows and does beside it.
//!
//! Its own file so that the event loop ([`super`]) and the parts of it with a protocol or a
//! phase of their own (its sibling modules) all reach the state here, and none of them reaches
//! another through it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use ghcache_core::ScopeId;
use libp2p::request_response::OutboundRequestId;
use libp2p::{kad, PeerId, Swarm};
use tokio::sync::oneshot;

use crate::daemon::{Candidates, Shared};
use crate::dials::FailedDials;
use crate::directory::Directory;
use crate::keeper::{Handoff, Keeper};
use crate::oidc::Verifier;
use crate::swarm::{scope_of, Behaviour};
use crate::topics::Topics;
use crate::wire::FetchResponse;

/// A DHT walk for a lookup.
pub(super) struct Walking {
    pub(super) reply: oneshot::Sender<Candidates>,
    /// Told (once) when a peer answered without providers and the walk goes on.
    pub(super) goes_on: Option<oneshot::Sender<()>>,
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
    /// Whether this node listens: one that does not is never dialed, so it provides nothing in
    /// the DHT (a record pointing at it would cost every walker a dial that cannot succeed).
    pub(super) listening: bool,
    /// This job's OIDC token, presented to each peer on connecting (see the oidc module).
    pub(super) token_file: Option<PathBuf>,
    /// The scope names presented with it.
    pub(super) produces_for: Vec<String>,
    /// Checks the tokens peers present.
    pub(super) verifier: Option<Verifier>,
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
