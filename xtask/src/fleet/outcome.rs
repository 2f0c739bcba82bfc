//! What a replay measured: per topology, each cache configuration and what it cost.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::floor::Cost;
use super::options::{Options, Topology};
use super::stale::Verdict;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Setup {
    NoCache,
    Local,
    LocalP2p,
    LocalP2pKeeper,
    LocalP2pIpfs,
    /// The keeper configuration with gh's HTTP level on: gh's own requests are cached too.
    LocalP2pKeeperHttp,
    /// With outside writes: the keeper configuration, and each job applies its run's
    /// triggering event (GitHub Actions' `GITHUB_EVENT_NAME` and `GITHUB_EVENT_PATH`).
    KeeperEvent,
    /// The same, and GitHub delivers webhooks to the keeper (`--webhook`).
    KeeperEventWebhook,
    /// The same as [`Setup::KeeperEvent`], and the keeper follows (`--follow`).
    KeeperEventFollow,
    /// [`Setup::KeeperEventWebhook`] with the longer freshness of heard writes
    /// (`GH_CACHE_HEARD_TTL_*`).
    KeeperEventWebhookHeard,
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

    /// The configurations of the replay with outside writes: plain gh, today's keeper (TTLs
    /// only), then each way of hearing GitHub's own writes.
    pub(super) const OUTSIDE: [Setup; 6] = [
        Setup::NoCache,
        Setup::LocalP2pKeeper,
        Setup::KeeperEvent,
        Setup::KeeperEventWebhook,
        Setup::KeeperEventFollow,
        Setup::KeeperEventWebhookHeard,
    ];

    /// The configurations: plain gh; today's keeper, which caches commands' outputs but does not
    /// see gh's requests; the keeper with the HTTP level, where the budget is kept.
    pub(super) const LIMITS: [Setup; 3] = [
        Setup::NoCache,
        Setup::LocalP2pKeeper,
        Setup::LocalP2pKeeperHttp,
    ];

    /// The configurations `o` asks for.
    pub(super) fn asked(o: &Options) -> &'static [Setup] {
        match (o.outside_writes, o.rate_limits) {
            (true, _) => &Setup::OUTSIDE,
            (false, true) => &Setup::LIMITS,
            (false, false) => &Setup::ALL,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Setup::NoCache => "no cache (plain gh)",
            Setup::Local => "local only",
            Setup::LocalP2p => "local + p2p",
            Setup::LocalP2pKeeper => "local + p2p with a keeper",
            Setup::LocalP2pIpfs => "local + p2p + ipfs",
            Setup::LocalP2pKeeperHttp => "local + p2p with a keeper + HTTP level",
            Setup::KeeperEvent => "keeper + triggering event",
            Setup::KeeperEventWebhook => "keeper + triggering event + webhooks",
            Setup::KeeperEventFollow => "keeper + triggering event + follow",
            Setup::KeeperEventWebhookHeard => {
                "keeper + triggering event + webhooks + longer freshness"
            }
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
            Setup::KeeperEvent => "keeper-event",
            Setup::KeeperEventWebhook => "keeper-webhook",
            Setup::KeeperEventFollow => "keeper-follow",
            Setup::KeeperEventWebhookHeard => "keeper-heard",
        }
    }

    /// Whether the seed keeps what runners announce (`--keep`).
    pub(super) fn keeper(self) -> bool {
        !matches!(
            self,
            Setup::NoCache | Setup::Local | Setup::LocalP2p | Setup::LocalP2pIpfs
        )
    }

    /// Whether each job applies its run's triggering event.
    pub(super) fn event(self) -> bool {
        matches!(
            self,
            Setup::KeeperEvent
                | Setup::KeeperEventWebhook
                | Setup::KeeperEventFollow
                | Setup::KeeperEventWebhookHeard
        )
    }

    /// Whether GitHub delivers webhooks to the keeper.
    pub(super) fn webhook(self) -> bool {
        matches!(
            self,
            Setup::KeeperEventWebhook | Setup::KeeperEventWebhookHeard
        )
    }

    /// Whether the keeper follows the repositories asked about.
    pub(super) fn follow(self) -> bool {
        self == Setup::KeeperEventFollow
    }

    /// Whether answers may stay fresh longer where writes are heard.
    pub(super) fn heard_ttl(self) -> bool {
        self == Setup::KeeperEventWebhookHeard
    }

    pub(super) fn p2p(self) -> bool {
        !matches!(self, Setup::NoCache | Setup::Local)
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
    /// With outside writes: each read's answer checked against GitHub's at its moment, in
    /// trace order.
    pub(super) verdicts: Vec<Verdict>,
    /// The keeper's follow probes (counted in `requests`), and how many were answered 304.
    pub(super) probes: usize,
    pub(super) probes_not_modified: usize,
    /// Commands that applied their job's triggering event (one per job, where it is applied).
    pub(super) events_applied: u64,
    /// Webhook deliveries GitHub sent to the keeper, and how many it answered with a 2xx.
    pub(super) deliveries: usize,
    pub(super) deliveries_accepted: usize,
    /// With GitHub's rate limits: every command's result, in trace order.
    pub(super) runs: Vec<Run>,
    /// Requests GitHub refused for the primary limit, for a secondary limit.
    pub(super) refused: (usize, usize),
    /// From the release bot's first write to its last answer, in ms.
    pub(super) burst_ms: f64,
}

/// One command of the replay, as it ended.
#[derive(Debug, Clone, Default)]
pub(super) struct Run {
    pub(super) write: bool,
    pub(super) failed: bool,
    /// The same command (same arguments) had succeeded earlier in this replay: the fleet held
    /// an answer for it.
    pub(super) answered_before: bool,
    /// GitHub refused one of its requests for the primary limit, for a secondary limit.
    pub(super) primary: bool,
    pub(super) secondary: bool,
    /// Seconds it said it waited for a secondary limit's pause.
    pub(super) waited_s: f64,
    /// The age of the stale answer it served, in seconds.
    pub(super) stale_s: Option<u64>,
}

impl Run {
    /// What `stderr` says of waits and stale answers.
    pub(super) fn read_stderr(&mut self, stderr: &str) {
        for line in stderr.lines() {
            if let Some(rest) = line.split("secondary rate limit: waiting ").nth(1) {
                self.waited_s += rest
                    .split('s')
                    .next()
                    .and_then(|n| n.parse::<f64>().ok())
                    .unwrap_or(0.0);
            }
            if let Some(rest) = line.split("showing a cached answer from ").nth(1) {
                self.stale_s = rest.split('s').next().and_then(|n| n.parse().ok());
            }
        }
    }
}

/// Commands that succeeded so far in one configuration, by their arguments.
#[derive(Debug, Default)]
pub(super) struct Answered(BTreeSet<Vec<String>>);

impl Answered {
    /// Books `run` of `argv`: whether it was answered before, and now.
    pub(super) fn book(&mut self, argv: &[String], run: &mut Run) {
        run.answered_before = self.0.contains(argv);
        if !run.failed {
            self.0.insert(argv.to_vec());
        }
    }
}

/// One topology's replays.
pub(super) struct Replayed {
    pub(super) topology: Topology,
    /// How the runners could be reached.
    pub(super) runners: &'static str,
    pub(super) outcomes: Vec<(Setup, Outcome)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_way_of_hearing_writes_is_a_keeper_that_adds_one_source() {
        let [none, ttl, event, webhook, follow, heard] = Setup::OUTSIDE;
        assert!(!none.p2p() && ttl == Setup::LocalP2pKeeper);
        for s in &Setup::OUTSIDE[1..] {
            assert!(s.keeper() && s.p2p() && !s.http(), "{s:?}");
        }
        let sources = |s: Setup| (s.event(), s.webhook(), s.follow(), s.heard_ttl());
        assert_eq!(sources(ttl), (false, false, false, false));
        assert_eq!(sources(event), (true, false, false, false));
        assert_eq!(sources(webhook), (true, true, false, false));
        assert_eq!(sources(follow), (true, false, true, false));
        assert_eq!(sources(heard), (true, true, false, true));
        let mut slugs: Vec<&str> = Setup::ALL
            .iter()
            .chain(&Setup::OUTSIDE)
            .map(|s| s.slug())
            .collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), 10, "one directory each: {slugs:?}");
        assert!(Setup::ALL.iter().all(|s| !s.event() && !s.webhook()));
    }
}
