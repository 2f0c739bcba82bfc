//! What a replay measured: per topology, each cache configuration and what it cost.

use std::collections::BTreeMap;
use std::time::Duration;

use super::floor::Cost;
use super::options::Topology;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Setup {
    NoCache,
    Local,
    LocalP2p,
    LocalP2pKeeper,
    LocalP2pIpfs,
    /// The keeper configuration with gh's HTTP level on: gh's own requests are cached too.
    LocalP2pKeeperHttp,
}

impl Setup {
    pub(super) const ALL: [Setup; 6] = [
        Setup::NoCache,
        Setup::Local,
        Setup::LocalP2p,
        Setup::LocalP2pKeeper,
        Setup::LocalP2pIpfs,
        Setup::LocalP2pKeeperHttp,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Setup::NoCache => "no cache (plain gh)",
            Setup::Local => "local only",
            Setup::LocalP2p => "local + p2p",
            Setup::LocalP2pKeeper => "local + p2p with a keeper",
            Setup::LocalP2pIpfs => "local + p2p + ipfs",
            Setup::LocalP2pKeeperHttp => "local + p2p with a keeper + HTTP level",
        }
    }

    /// A short name for directories.
    pub(super) fn slug(self) -> &'static str {
        match self {
            Setup::NoCache => "none",
            Setup::Local => ghcache_tier_local::NAME,
            Setup::LocalP2p => ghcache_tier_p2p::NAME,
            Setup::LocalP2pKeeper => "keeper",
            Setup::LocalP2pIpfs => ghcache_tier_ipfs::NAME,
            Setup::LocalP2pKeeperHttp => "keeper-http",
        }
    }

    pub(super) fn p2p(self) -> bool {
        matches!(
            self,
            Setup::LocalP2p
                | Setup::LocalP2pKeeper
                | Setup::LocalP2pIpfs
                | Setup::LocalP2pKeeperHttp
        )
    }

    /// Whether gh's HTTP level is on: only in its own configuration, so that the others measure
    /// the output cache alone, against the floor of an output cache.
    pub(super) fn http(self) -> bool {
        self == Setup::LocalP2pKeeperHttp
    }
}

/// What one configuration cost.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) jobs: u64,
    /// Which tier answered each read, in trace order (one entry per read).
    pub(super) tiers: Vec<String>,
    /// Wall ms of each read, in the same order.
    pub(super) read_ms: Vec<f64>,
    /// What each read cost GitHub, in trace order.
    pub(super) costs: Vec<Cost>,
    pub(super) writes: u64,
    /// Requests the writes made.
    pub(super) write_requests: usize,
    pub(super) requests: usize,
    pub(super) charged: usize,
    /// Requests answered `304 Not Modified`.
    pub(super) not_modified: usize,
    /// How far the replay fell behind the trace's clock at worst.
    pub(super) lag: Duration,
    /// Wall ms per command (`pr list`, `api`, ...).
    pub(super) latency: BTreeMap<String, Vec<f64>>,
    /// The seed's daemon counters at the end (configurations with a swarm).
    pub(super) seed: Option<serde_json::Value>,
}

/// One topology's replays.
pub(super) struct Replayed {
    pub(super) topology: Topology,
    /// How the runners could be reached.
    pub(super) runners: &'static str,
    pub(super) outcomes: Vec<(Setup, Outcome)>,
}
