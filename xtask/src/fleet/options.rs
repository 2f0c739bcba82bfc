//! What a replay is asked to do: the trace's parameters and the runners' topologies.

use std::time::Duration;

/// Trace parameters.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// Runners: each runs one job at a time.
    pub runners: usize,
    /// Workflow runs in the trace.
    pub workflow_runs: usize,
    /// Repositories the runs are for (Zipf: the first is the busiest).
    pub repos: usize,
    /// Matrix widths a run picks from (jobs per run).
    pub matrix: &'static [usize],
    /// gh reads in a run's script.
    pub script_len: usize,
    /// Runs arrive within this time.
    pub span: Duration,
    /// Between a job's commands.
    pub gap: Duration,
    /// A job is picked up by a runner within this time after its run arrives.
    pub pickup: Duration,
    /// Share of jobs that end with a write.
    pub write_percent: u64,
    /// Added to every request the fake GitHub answers.
    pub latency: Duration,
    /// The topologies replayed, in order.
    pub topologies: Vec<Topology>,
    /// Hosted runners do not listen at all (`--no-listen`, as the GitHub Action starts them),
    /// rather than listening behind the firewall.
    pub no_listen: bool,
    /// Writes made on GitHub from outside the fleet (`--outside-writes`): the runs' triggering
    /// events and what people and bots write ([`super::outside`]), replayed with the
    /// configurations that hear them, and every answer checked against GitHub's.
    pub outside_writes: bool,
    /// Writes by people and bots per hour across the fleet (`--outside-per-hour`).
    pub outside_per_hour: f64,
    /// GitHub's rate limits enforced (`--rate-limits`): each repository's job tokens share a
    /// budget of `job_budget` requests, and a release bot writes a burst ([`super::limits`]).
    pub rate_limits: bool,
    /// Requests a repository's job tokens may make in the replay (`--job-budget`).
    pub job_budget: u64,
    /// Writes in the release bot's burst.
    pub burst_writes: usize,
}

impl Options {
    pub fn full() -> Options {
        Options {
            seed: 42,
            runners: 8,
            workflow_runs: 12,
            repos: 6,
            matrix: &[4, 6, 8, 12],
            script_len: 6,
            span: Duration::from_secs(180),
            gap: Duration::from_secs(2),
            pickup: Duration::from_secs(3),
            write_percent: 10,
            latency: Duration::from_millis(50),
            topologies: Topology::ALL.to_vec(),
            no_listen: false,
            outside_writes: false,
            // Two for every run: the full trace's 12 runs in 3 minutes are 240 an hour.
            outside_per_hour: 480.0,
            rate_limits: false,
            // A repository's GITHUB_TOKEN has 1,000 an hour; the trace's 3 minutes of a
            // fleet's busiest hour get a share that plain gh outruns on the busiest repository.
            job_budget: 100,
            // More than GitHub's 80 content-creating requests a minute, as plain gh sends them.
            burst_writes: 100,
        }
    }

    pub fn quick() -> Options {
        Options {
            runners: 3,
            workflow_runs: 3,
            repos: 2,
            matrix: &[2, 3],
            script_len: 3,
            span: Duration::from_secs(4),
            gap: Duration::from_millis(400),
            pickup: Duration::from_millis(500),
            latency: Duration::from_millis(20),
            // Its runs are squeezed into 4 s, and the writes of people and bots with them: one a
            // second, 4 in the trace.
            outside_per_hour: 3600.0,
            job_budget: 12,
            burst_writes: 10,
            ..Options::full()
        }
    }
}

/// The name of the trace's repository `i` (Zipf: 0 is the busiest).
pub fn repo_name(i: usize) -> String {
    format!("fleet/repo-{i}")
}

/// How the fleet's runners live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// GitHub-hosted: nobody can dial the runners, a fresh machine and a new token per job.
    Hosted,
    /// Self-hosted: dialable runners that keep their cache and daemon, one token.
    SelfHosted,
}

impl Topology {
    pub const ALL: [Topology; 2] = [Topology::Hosted, Topology::SelfHosted];

    pub fn name(self) -> &'static str {
        match self {
            Topology::Hosted => "hosted",
            Topology::SelfHosted => "self-hosted",
        }
    }

    /// Runners keep their cache dir and daemon from job to job.
    pub(super) fn persistent(self) -> bool {
        self == Topology::SelfHosted
    }
}
