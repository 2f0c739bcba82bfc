//! The fleet replay: what a CI fleet's gh traffic costs GitHub with and without ghcache's tiers.
//!
//! A seeded generator makes a trace of CI work as it reaches a fleet ([`trace`]): workflow runs
//! arrive at random times, each for a repository drawn from a Zipf distribution; a run fans out
//! into a matrix of jobs (operating systems x toolchain versions) that all run the run's script,
//! a few gh reads drawn from a Zipf distribution over commands; runners pick the jobs up within a
//! few seconds, one job per runner at a time. Some jobs end with a write (`issue create`, say a
//! job that files a failure), which drops what it can change.
//!
//! The same trace is replayed against the fake GitHub with latency injected, in real time (each
//! step waits for its time in the trace, so answers expire as they would in production), once per
//! topology and configuration. Topologies, as fleets are:
//! - hosted: GitHub-hosted runners. Nobody can dial them (the whole scenario runs in a network
//!   namespace of its own, where a firewall rule drops every inbound connection to a runner's
//!   port), each job has a new machine (an empty cache dir, a daemon of its own that
//!   bootstraps from the fleet's long-lived seed) and a token of its own, which its setup
//!   declares as GitHub Actions' job token, so the jobs of a repository share one scope;
//! - self-hosted: runners anyone in the fleet can dial, which keep their cache dir and daemon
//!   from job to job, and one token for the whole fleet.
//!
//! Configurations: no cache (plain gh), local only, local + p2p (runners' daemons bootstrap from
//! the seed), local + p2p with a keeper (the seed runs `--keep`), the same with the HTTP level
//! (every request gh sends goes through ghcache, not only the outputs of the commands it knows),
//! local + p2p + ipfs (one IPFS node). The same seed gives the same trace. Beside each topology's results stands the
//! trace's floor ([`floor`]).
//!
//! With `--outside-writes` (hosted runners, unless another topology is asked for), the trace
//! also holds the writes made on GitHub from outside the fleet ([`outside`]: the push or pull
//! request change that starts each run, and what people and bots write meanwhile), which the
//! replay makes on the fake GitHub at their times. Its configurations are the ways of hearing
//! them ([`outcome::Setup::OUTSIDE`], [`hearing`]): plain gh; a keeper with TTLs only; + each
//! job's triggering event; + webhooks to the keeper; + the keeper following; + longer freshness.
//! Every answer printed is then checked against what GitHub answered at that moment
//! ([`stale`]), and the floors of a cache that hears writes stand beside the TTL floors
//! ([`freshness`]).

mod floor;
mod freshness;
mod hearing;
mod limits;
mod options;
mod outcome;
mod outside;
mod report;
mod rng;
mod stale;
mod trace;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use crate::sandbox::{Daemon, Listen, Machine};
use crate::stats::ms;
use floor::{Cost, Revalidation};
pub use options::{Options, Topology};
use outcome::{Outcome, Replayed, Setup};
use trace::Step;

pub use report::chart;

/// How runners can be reached.
#[derive(Clone, Copy)]
enum Runners<'a> {
    /// Each listens on a loopback port anyone may dial.
    Dialable,
    /// Each listens on its own port, and the namespace drops every inbound connection to it.
    Firewalled(&'a ghcache_tests::Netns),
    /// None listens (`--no-listen`): they only dial out.
    NotListening,
}

impl Runners<'_> {
    fn name(self) -> &'static str {
        match self {
            Runners::Dialable => "dialable",
            Runners::Firewalled(_) => "behind a firewall that drops inbound connections",
            Runners::NotListening => "not listening (--no-listen)",
        }
    }
}

/// Everything a replay needs from the benchmark's set-up.
pub struct Tools<'a> {
    pub gh: &'a Path,
    pub ghcache: &'a Path,
    pub root: &'a Path,
    pub swarm_key: &'a Path,
}

/// Replays the trace once per topology and configuration; prints the tables; returns the JSON
/// figures.
pub fn run(o: &Options, tools: &Tools<'_>) -> Result<serde_json::Value> {
    let steps = trace::trace(o);
    let mut replayed = Vec::new();
    for &topology in &o.topologies {
        replayed.push(replay_topology(topology, &steps, o, tools)?);
    }
    Ok(report::report(o, &steps, &replayed))
}

fn replay_topology(
    topology: Topology,
    steps: &[(Duration, Step)],
    o: &Options,
    t: &Tools<'_>,
) -> Result<Replayed> {
    // Whether the hosted runners can be put behind a firewall here (root, `ip`, `iptables`): a
    // namespace made and left at once tells. Else they do not listen, which makes them as
    // undialable.
    let mut firewall = topology == Topology::Hosted && !o.no_listen;
    if firewall {
        if let Err(why) = ghcache_tests::Netns::enter("fleet-probe") {
            eprintln!(
                "fleet replay: hosted runners will not listen (--no-listen): no network \
                 namespace with a firewall here ({why})"
            );
            firewall = false;
        }
    }
    let mut outcomes = Vec::new();
    let mut reach = Runners::Dialable.name();
    for &setup in Setup::asked(o) {
        eprintln!("fleet replay: {}, {}", topology.name(), setup.name());
        // A namespace per configuration: its firewall rules die with it, so no later listener
        // (the next fake GitHub, the seed) can get a port whose inbound connections are dropped.
        let ns = if firewall {
            Some(ghcache_tests::Netns::enter("fleet").map_err(anyhow::Error::msg)?)
        } else {
            None
        };
        let runners = match (topology, &ns) {
            (Topology::SelfHosted, _) => Runners::Dialable,
            (Topology::Hosted, Some(ns)) => Runners::Firewalled(ns),
            (Topology::Hosted, None) => Runners::NotListening,
        };
        reach = runners.name();
        let outcome = replay(topology, runners, setup, steps, o, t)?;
        outcomes.push((setup, outcome));
    }
    Ok(Replayed {
        topology,
        runners: reach,
        outcomes,
    })
}

fn replay(
    topology: Topology,
    runners: Runners<'_>,
    setup: Setup,
    steps: &[(Duration, Step)],
    o: &Options,
    t: &Tools<'_>,
) -> Result<Outcome> {
    // Started in the calling thread's namespace: the fake GitHub's thread and the IPFS node live
    // there too.
    let github = fake_github::FakeGithub::start()?;
    github.set_latency(o.latency);
    if o.rate_limits {
        github.set_limits(limits::fake_limits(o));
    }
    if o.outside_writes {
        // Payload times are then comparable with when answers were fetched, and every answer
        // can be checked afterwards against the world as it was.
        github.use_wall_clock();
        github.keep_history();
    }
    let ipfs = match setup {
        Setup::LocalP2pIpfs => {
            Some(ghcache_tests::ipfs::IpfsNode::try_start().map_err(anyhow::Error::msg)?)
        }
        _ => None,
    };
    let dir = t
        .root
        .join(format!("fleet-{}-{}", topology.name(), setup.slug()));
    std::fs::create_dir_all(&dir)?;
    // The fleet's long-lived seed peer: runners bootstrap from it; it runs no jobs. With a
    // keeper it keeps what the runners announce.
    let mut seed_machine = Machine::new(&dir, "seed", &github, t.ghcache)?;
    let seed = match setup {
        _ if setup.keeper() => {
            let flags = hearing::keeper(&mut seed_machine, setup);
            Some(seed_machine.start_daemon(t.swarm_key, Listen::Loopback, &flags)?)
        }
        _ if setup.p2p() => Some(seed_machine.start_daemon(t.swarm_key, Listen::Loopback, &[])?),
        _ => None,
    };
    if let Some(keeper) = seed.as_ref().filter(|_| setup.webhook()) {
        hearing::connect_webhook(&github, keeper)?;
    }
    let job_env = JobEnv {
        topology,
        setup,
        ipfs_api: ipfs.as_ref().map(|node| node.api_url()),
    };
    let mut running: BTreeMap<usize, (Machine, Option<Daemon>)> = BTreeMap::new();
    // Runners whose job ended, stopping in the background: a stopping daemon waits up to 5 s for
    // a keeper to take what it announced, and the trace does not wait for it.
    let mut stopping: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let mut outcome = Outcome::default();
    // Each run's triggering write, when and as GitHub told of it; each runner's job's.
    let mut triggers: BTreeMap<usize, (Instant, &'static str, fake_github::Event)> =
        BTreeMap::new();
    let mut jobs_events: BTreeMap<usize, (Instant, &'static str)> = BTreeMap::new();
    let mut reads = Vec::new();
    let mut answered = outcome::Answered::default();
    let mut burst_began: Option<Instant> = None;
    let started = Instant::now();
    for (at, step) in steps {
        // Real time: an answer's TTL runs out in the replay when it would in production.
        if let Some(early) = (started + *at).checked_duration_since(Instant::now()) {
            std::thread::sleep(early);
        }
        outcome.lag = outcome.lag.max(started.elapsed().saturating_sub(*at));
        match step {
            Step::Start {
                slot,
                job,
                run,
                repo,
            } => {
                outcome.jobs += 1;
                let trigger = triggers.get(run);
                let event = trigger.map(|(_, _, event)| event);
                match trigger {
                    Some((at, name, _)) => jobs_events.insert(*slot, (*at, *name)),
                    None => jobs_events.remove(slot),
                };
                if topology.persistent() {
                    if let Some((m, _)) = running.get_mut(slot) {
                        // A self-hosted runner: the next job finds the last one's cache and
                        // daemon.
                        hearing::enter_job(m, setup, (*job, *run, repo), event)?;
                        continue;
                    }
                }
                let name = format!("slot{slot}-job{job}");
                let mut m = job_env.machine(&dir, &name, &github, *job, repo, t)?;
                if o.rate_limits {
                    match *job {
                        // The release bot writes with a token of its own.
                        trace::BOT_JOB => m.set_env("GH_TOKEN", limits::BOT_TOKEN),
                        _ if topology == Topology::Hosted => {
                            github.register_job_token(&format!("ghs_fleetjob{job:06}"), repo)
                        }
                        _ => {}
                    }
                }
                hearing::enter_job(&mut m, setup, (*job, *run, repo), event)?;
                let daemon = match &seed {
                    Some(seed) => Some(runner_daemon(&m, seed, runners, t)?),
                    None => None,
                };
                running.insert(*slot, (m, daemon));
            }
            Step::Outside(write) => {
                let event = outside::apply(&github, write);
                if let (Some(run), Some(event)) = (write.starts, event) {
                    triggers.insert(run, (Instant::now(), write.what.event(), event));
                }
            }
            Step::End { slot } => {
                // A hosted runner goes away with its cache dir; its daemon stops.
                if !topology.persistent() {
                    if let Some(gone) = running.remove(slot) {
                        stopping.push(std::thread::spawn(move || drop(gone)));
                    }
                }
            }
            Step::Run { slot, argv } => {
                let (m, _) = running.get(slot).context("a command outside a job")?;
                let began = Instant::now();
                if o.rate_limits {
                    let bot = *slot == o.runners;
                    limits_step(&mut outcome, &mut answered, m, setup, argv, &github, t)?;
                    if bot {
                        outcome.burst_ms = outcome
                            .burst_ms
                            .max(ms(burst_began.get_or_insert(began).elapsed()));
                    }
                    continue;
                }
                let stdout = run_step(&mut outcome, m, setup, argv, &github, t)?;
                if let (true, Some(stdout)) = (o.outside_writes, stdout) {
                    reads.push(read(argv, began, stdout, jobs_events.get(slot).copied()));
                }
            }
        }
    }
    stopping.extend(
        std::mem::take(&mut running)
            .into_values()
            .map(|gone| std::thread::spawn(move || drop(gone))),
    );
    for gone in stopping {
        // A thread that panicked while stopping a daemon has nothing left to report.
        let _ = gone.join();
    }
    if seed.is_some() {
        outcome.seed = Some(serde_json::to_value(seed_machine.daemon_status().counters)?);
    }
    drop(seed);
    let log = github.requests();
    outcome.requests = log.len();
    outcome.charged = log.iter().filter(|r| r.charged).count();
    outcome.not_modified = log.iter().filter(|r| r.status == 304).count();
    outcome.refused = (
        log.iter()
            .filter(|r| r.limited == Some(fake_github::Limited::Primary))
            .count(),
        log.iter()
            .filter(|r| r.limited == Some(fake_github::Limited::Secondary))
            .count(),
    );
    let probes = log.iter().filter(|r| is_probe(r));
    outcome.probes = probes.clone().count();
    outcome.probes_not_modified = probes.filter(|r| r.status == 304).count();
    let deliveries = github.deliveries();
    outcome.deliveries = deliveries.len();
    outcome.deliveries_accepted = deliveries
        .iter()
        .filter(|d| d.status.is_some_and(|s| (200..300).contains(&s)))
        .count();
    if o.outside_writes {
        outcome.verdicts = hearing::check(&github, &reads, &dir, t.gh, t.ghcache)?;
    }
    Ok(outcome)
}

/// Whether a request is one of the keeper's follow probes (its own token), not a job's.
fn is_probe(r: &fake_github::RequestRecord) -> bool {
    r.token.as_deref() == Some(hearing::KEEPER_TOKEN)
}

/// A read as the check of stale answers needs it.
fn read(
    argv: &[String],
    at: Instant,
    stdout: Vec<u8>,
    event: Option<(Instant, &'static str)>,
) -> stale::Read {
    let (repo, resource) = match ghcache_core::policy::classify(argv) {
        ghcache_core::policy::Decision::Cache(c) => {
            (c.repo_flag.or(c.named_repo).unwrap_or_default(), c.resource)
        }
        _ => (String::new(), ghcache_core::policy::Resource::Other),
    };
    stale::Read {
        at,
        argv: argv.to_vec(),
        repo: repo.to_ascii_lowercase(),
        resource,
        stdout,
        event,
    }
}

/// Runs one of a job's commands under GitHub's rate limits and books how it ended
/// ([`limits::Run`]); a failure is a result here, not the replay's end.
fn limits_step(
    outcome: &mut Outcome,
    answered: &mut outcome::Answered,
    m: &Machine,
    setup: Setup,
    argv: &[String],
    github: &fake_github::FakeGithub,
    t: &Tools<'_>,
) -> Result<()> {
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let before = github.request_count();
    let (out, _) = if setup == Setup::NoCache {
        m.time(t.gh, &args)?
    } else {
        m.time_cached(&args)?
    };
    let log = github.requests();
    let made = log.get(before..).unwrap_or_default();
    let mut run = outcome::Run {
        write: matches!(
            ghcache_core::policy::classify(argv),
            ghcache_core::policy::Decision::Write(_)
        ),
        failed: !out.status.success(),
        primary: made
            .iter()
            .any(|r| r.limited == Some(fake_github::Limited::Primary)),
        secondary: made
            .iter()
            .any(|r| r.limited == Some(fake_github::Limited::Secondary)),
        ..outcome::Run::default()
    };
    run.read_stderr(&String::from_utf8_lossy(&out.stderr));
    answered.book(argv, &mut run);
    outcome.runs.push(run);
    Ok(())
}

/// Runs one of a job's commands and books what it cost; returns what a read printed.
fn run_step(
    outcome: &mut Outcome,
    m: &Machine,
    setup: Setup,
    argv: &[String],
    github: &fake_github::FakeGithub,
    t: &Tools<'_>,
) -> Result<Option<Vec<u8>>> {
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let write = matches!(
        ghcache_core::policy::classify(argv),
        ghcache_core::policy::Decision::Write(_)
    );
    // Commands run one at a time and the daemons never ask GitHub but for a following keeper's
    // probes, so the other requests logged meanwhile are this command's.
    let before = github.request_count();
    let (out, took) = if setup == Setup::NoCache {
        m.time(t.gh, &args)?
    } else {
        m.time_cached(&args)?
    };
    if !out.status.success() {
        bail!(
            "`gh {}` failed in the replay: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if crate::sandbox::applied_event(&String::from_utf8_lossy(&out.stderr)) {
        outcome.events_applied += 1;
    }
    let log = github.requests();
    let made: Vec<_> = log
        .get(before..)
        .unwrap_or_default()
        .iter()
        .filter(|r| !is_probe(r))
        .collect();
    if write {
        outcome.writes += 1;
        outcome.write_requests += made.len();
        return Ok(None);
    }
    outcome.costs.push(Cost {
        requests: made.len(),
        revalidation: Revalidation::of(made.iter().map(|r| {
            let graphql = r.operation.is_some() || r.path.ends_with("/graphql");
            (r.method.as_str(), r.path.as_str(), graphql)
        })),
    });
    outcome
        .tiers
        .push(answered_by(setup, &String::from_utf8_lossy(&out.stderr)));
    outcome.read_ms.push(ms(took));
    outcome
        .latency
        .entry(trace::command(argv))
        .or_default()
        .push(ms(took));
    Ok(Some(out.stdout))
}

/// How a job's machine is set up in a topology and configuration.
struct JobEnv {
    topology: Topology,
    setup: Setup,
    ipfs_api: Option<String>,
}

impl JobEnv {
    /// A runner's machine for `job` of a run of `repo`, set up as the job's steps would see it.
    fn machine(
        &self,
        dir: &Path,
        name: &str,
        github: &fake_github::FakeGithub,
        job: usize,
        repo: &str,
        t: &Tools<'_>,
    ) -> Result<Machine> {
        let mut m = Machine::new(dir, name, github, t.ghcache)?;
        m.set_env("GH_CACHE_DEBUG", "1");
        m.set_env("GH_CACHE_HTTP", if self.setup.http() { "1" } else { "0" });
        m.set_env(
            "GH_CACHE_SWARM_KEY_FILE",
            &t.swarm_key.display().to_string(),
        );
        if let Some(api) = &self.ipfs_api {
            m.set_env("GH_CACHE_IPFS", "1");
            m.set_env("GH_CACHE_IPFS_API", api);
        }
        if self.topology == Topology::Hosted {
            // GitHub Actions: a new token per job, the run's repository, and a setup step that
            // declares the token as the job's own and the permissions every job of the run
            // has, so the repository's jobs share one scope.
            let token = format!("ghs_fleetjob{job:06}");
            m.set_env("GH_TOKEN", &token);
            m.set_env("GITHUB_ACTIONS", "true");
            m.set_env("GITHUB_REPOSITORY", repo);
            if self.setup != Setup::NoCache {
                for (name, value) in declare(&m, &token)? {
                    m.set_env(&name, &value);
                }
            }
        }
        // Self-hosted: the fake GitHub's one token (in `Machine::new`'s environment) for all.
        Ok(m)
    }
}

/// What every job of a fleet's run declares of its permissions: one set, so they share.
const FLEET_PERMISSIONS: &str = "contents: read, issues: read, pull-requests: read";

/// `ghcache actions declare --permissions ...` with `GITHUB_TOKEN` set, as a job's setup step
/// runs it: the variables it prints for `$GITHUB_ENV`, as names and values.
fn declare(m: &Machine, token: &str) -> Result<Vec<(String, String)>> {
    let out = m
        .command(m.ghcache_bin())
        .args(["actions", "declare", "--permissions", FLEET_PERMISSIONS])
        .env("GITHUB_TOKEN", token)
        .output()
        .context("running ghcache actions declare")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Option<Vec<(String, String)>> = text
        .lines()
        .map(|line| {
            let (name, value) = line.split_once('=')?;
            (!name.is_empty()).then(|| (name.to_owned(), value.to_owned()))
        })
        .collect();
    match lines {
        Some(lines) if out.status.success() && !lines.is_empty() => Ok(lines),
        _ => bail!(
            "ghcache actions declare printed {:?}: {}",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// Starts a runner's daemon, bootstrapping from `seed`, as `runners` says it can be reached,
/// and waits until it joined (the GitHub Action waits so too).
fn runner_daemon(
    m: &Machine,
    seed: &Daemon,
    runners: Runners<'_>,
    t: &Tools<'_>,
) -> Result<Daemon> {
    let bootstrap = ["--bootstrap", seed.addr.as_str()];
    let daemon = match runners {
        Runners::Dialable => m.start_daemon(t.swarm_key, Listen::Loopback, &bootstrap)?,
        Runners::Firewalled(ns) => {
            let port = crate::sandbox::free_port()?;
            // The rule is in place before the daemon listens: nobody ever reaches it.
            ns.drop_inbound(port).map_err(anyhow::Error::msg)?;
            let listen = format!("/ip4/127.0.0.1/tcp/{port}");
            m.start_daemon(t.swarm_key, Listen::At(&listen), &bootstrap)?
        }
        Runners::NotListening => m.start_daemon(t.swarm_key, Listen::Nowhere, &bootstrap)?,
    };
    daemon.expect_peers(1)?;
    Ok(daemon)
}

/// The tiers a fleet's machines read, fastest first, by the names their debug lines and
/// counters use.
const TIERS: [&str; 3] = [
    ghcache_tier_local::NAME,
    ghcache_tier_p2p::NAME,
    ghcache_tier_ipfs::NAME,
];

/// Which tier answered, from the `GH_CACHE_DEBUG` line.
fn answered_by(setup: Setup, stderr: &str) -> String {
    if setup == Setup::NoCache {
        return "github".into();
    }
    let line = crate::sandbox::answer_line(stderr).unwrap_or("");
    for tier in TIERS {
        if line.starts_with(&*ghcache_core::Source::Tier(tier).label()) {
            return tier.into();
        }
    }
    if line.starts_with("revalidated") {
        return "github (304)".into();
    }
    "github".into()
}

/// Reads the fleet's flags; `--quick` picks the small trace, the others change it whatever their
/// order.
fn parse(args: &[String]) -> Result<Options> {
    let mut o = if args.iter().any(|a| a == "--quick") {
        Options::quick()
    } else {
        Options::full()
    };
    let mut it = args.iter();
    let mut topology_given = false;
    while let Some(arg) = it.next() {
        topology_given |= matches!(arg.as_str(), "--persistent" | "--topology");
        match arg.as_str() {
            "--quick" => {}
            "--no-listen" => o.no_listen = true,
            "--outside-writes" => o.outside_writes = true,
            "--rate-limits" => o.rate_limits = true,
            "--job-budget" => {
                o.job_budget = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|n| *n > 0)
                    .context("--job-budget needs a number of requests, 1 or more")?;
            }
            "--outside-per-hour" => {
                o.outside_per_hour = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|n: &f64| n.is_finite() && *n >= 0.0)
                    .context("--outside-per-hour needs a number of writes, 0 or more")?;
            }
            // The README's older name for the self-hosted topology.
            "--persistent" => o.topologies = vec![Topology::SelfHosted],
            "--topology" => {
                let name = it.next().map(String::as_str);
                let topology = Topology::ALL
                    .into_iter()
                    .find(|t| Some(t.name()) == name)
                    .context("--topology needs hosted or self-hosted")?;
                o.topologies = vec![topology];
            }
            "--seed" => {
                o.seed = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .context("--seed needs a number")?;
            }
            "--matrix" => {
                let widths: Vec<usize> = it
                    .next()
                    .map(|s| s.split(',').map(str::parse).collect::<Result<_, _>>())
                    .and_then(Result::ok)
                    .filter(|w: &Vec<usize>| !w.is_empty() && !w.contains(&0))
                    .context("--matrix needs job counts like 12,16,24")?;
                // Options hold 'static widths: one small leak per run of the tool.
                o.matrix = Vec::leak(widths);
            }
            "--write-percent" => {
                o.write_percent = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|p| *p <= 100)
                    .context("--write-percent needs a number from 0 to 100")?;
            }
            other => bail!("unknown fleet flag `{other}`; usage: cargo xtask fleet {FLEET_USAGE}"),
        }
    }
    // Outside writes are about GitHub-hosted runners unless another topology is asked for.
    if (o.outside_writes || o.rate_limits) && !topology_given {
        o.topologies = vec![Topology::Hosted];
    }
    if o.outside_writes && o.rate_limits {
        bail!("--outside-writes and --rate-limits are replays of their own: ask for one");
    }
    Ok(o)
}

/// The fleet's flags, for usage lines.
pub const FLEET_USAGE: &str = "[--quick] [--topology hosted|self-hosted | --persistent] \
     [--no-listen] [--seed N] [--matrix W,W,...] [--write-percent P] \
     [--outside-writes [--outside-per-hour N] | --rate-limits [--job-budget N]]";

/// `cargo xtask fleet [flags]`: sets up gh, a release build and a swarm key, replays, prints
/// the tables and writes `target/bench/fleet.json` and `target/bench/fleet-github-requests.svg`
/// (with `--outside-writes`: `fleet-outside-writes.json` and
/// `fleet-outside-writes-github-requests.svg`, so that the two replays' figures stand apart).
pub fn main(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let gh = crate::sandbox::require_gh()?;
    let ghcache = crate::sandbox::build_release()?;
    ghcache_tests::ipfs::install().map_err(anyhow::Error::msg)?;
    // First, so that the IPFS nodes' files are made inside it.
    let root = crate::sandbox::scratch()?;
    let swarm_key = crate::sandbox::new_swarm_key(&ghcache, root.path())?;
    let tools = Tools {
        gh: &gh,
        ghcache: &ghcache,
        root: root.path(),
        swarm_key: &swarm_key,
    };
    let figures = run(&o, &tools)?;
    let prefix = match (o.outside_writes, o.rate_limits) {
        (true, _) => "fleet-outside-writes",
        (false, true) => "fleet-rate-limits",
        (false, false) => "fleet",
    };
    let file = crate::sandbox::write_results(&format!("{prefix}.json"), &figures)?;
    let (name, svg) = chart(&figures);
    let name = name.replacen("fleet", prefix, 1);
    let path = crate::sandbox::bench_dir().join(name);
    std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
    println!("\nJSON: {}\nchart: {}", file.display(), path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_change_the_trace_in_any_order_and_bad_ones_are_named() {
        let words = |line: &str| line.split(' ').map(String::from).collect::<Vec<_>>();
        let o = parse(&words(
            "--matrix 12,16 --quick --write-percent 0 --seed 9 --topology self-hosted",
        ));
        let o = o.unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!((o.matrix, o.write_percent, o.seed), (&[12, 16][..], 0, 9));
        assert_eq!(o.topologies, [Topology::SelfHosted]);
        assert_eq!(o.runners, Options::quick().runners);
        assert_eq!(Options::full().topologies, Topology::ALL);
        let persistent = parse(&words("--persistent")).map(|o| o.topologies);
        assert_eq!(persistent.ok(), Some(vec![Topology::SelfHosted]));
        let outside = parse(&words("--outside-writes --outside-per-hour 60"));
        let outside = outside.unwrap_or_else(|e| panic!("{e:#}"));
        assert!(outside.outside_writes && !o.outside_writes);
        assert_eq!(outside.outside_per_hour, 60.0);
        assert_eq!(
            outside.topologies,
            [Topology::Hosted],
            "hosted unless asked"
        );
        let limits = parse(&words("--rate-limits --job-budget 50"));
        let limits = limits.unwrap_or_else(|e| panic!("{e:#}"));
        assert!(limits.rate_limits && !limits.outside_writes && !o.rate_limits);
        assert_eq!(
            (limits.job_budget, limits.topologies.clone()),
            (50, vec![Topology::Hosted])
        );
        let both = parse(&words("--topology self-hosted --outside-writes"));
        assert_eq!(
            both.ok().map(|o| o.topologies),
            Some(vec![Topology::SelfHosted])
        );
        for (bad, says) in [
            ("--matrix 4,x", "--matrix"),
            ("--matrix 0", "--matrix"),
            ("--write-percent 101", "--write-percent"),
            ("--seed", "--seed"),
            ("--topology cloud", "--topology"),
            ("--outside-per-hour -1", "--outside-per-hour"),
            ("--outside-per-hour", "--outside-per-hour"),
            ("--wide", "--wide"),
            ("--rate-limits --job-budget 0", "--job-budget"),
            ("--outside-writes --rate-limits", "--rate-limits"),
        ] {
            let err = parse(&words(bad)).err().map(|e| format!("{e:#}"));
            assert!(
                err.as_deref().is_some_and(|e| e.contains(says)),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn the_debug_line_says_which_tier_answered() {
        let line = |l: &str| answered_by(Setup::Local, l);
        assert_eq!(line("ghcache: p2p hit (12D3...)\n"), "p2p");
        assert_eq!(line("ghcache: revalidated (304)\n"), "github (304)");
        assert_eq!(line("ghcache: miss, fetched from github\n"), "github");
        assert_eq!(answered_by(Setup::NoCache, "ghcache: local hit"), "github");
        assert_eq!(
            line("ghcache: http GET /repos/o/r local hit\nghcache: miss, fetched from github\n"),
            "github"
        );
    }
}
