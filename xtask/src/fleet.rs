//! The fleet replay: what a CI fleet's gh traffic costs GitHub with and without ghcache's tiers.
//!
//! A seeded generator makes a trace of CI work as it reaches a fleet: workflow runs arrive at
//! random times, each for a repository drawn from a Zipf distribution; a run fans out into a
//! matrix of jobs (operating systems x toolchain versions) that all run the run's script, a few
//! gh reads drawn from a Zipf distribution over commands; runners pick the jobs up within a few
//! seconds, one job per runner at a time. CI runners are ephemeral: a job's cache dir and daemon
//! live as long as the job. Some jobs end with a write (`issue create`, say a job that files a
//! failure), which invalidates the repository's answers.
//!
//! The same trace is replayed against the fake GitHub with latency injected, in real time (each
//! step waits for its time in the trace, so answers expire as they would in production), once
//! per configuration: no cache (plain gh), local only, local + p2p (each job's daemon
//! bootstraps from a long-lived seed peer), local + p2p + ipfs (one shared IPFS node). The same
//! seed gives the same trace.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use crate::sandbox::{Daemon, Machine};
use crate::stats::{ms, percentile};

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
    /// Runners keep their cache dir and daemon from job to job (self-hosted runners), instead
    /// of being a fresh machine per job (hosted runners, the default).
    pub persistent: bool,
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
            persistent: false,
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
            ..Options::full()
        }
    }
}

/// Read commands, most frequent first (`{repo}`, `{pr}` are filled in per run).
const READS: [&str; 9] = [
    "pr view {pr} -R {repo}",
    "release list -R {repo}",
    "api repos/{repo}",
    "pr list -R {repo}",
    "run list -R {repo}",
    "issue list -R {repo}",
    "repo view {repo} --json name,description",
    "workflow list -R {repo}",
    "label list -R {repo}",
];

/// What happens in the trace, in time order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Start { slot: usize, job: usize },
    Run { slot: usize, argv: Vec<String> },
    End { slot: usize },
}

/// A small deterministic generator (splitmix64): the same seed, the same trace, on any machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform number in `0..1`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform duration in `0..max`.
    fn within(&mut self, max: Duration) -> Duration {
        max.mul_f64(self.unit())
    }

    /// Index `0..n` drawn from a Zipf distribution with exponent 1.
    fn zipf(&mut self, n: usize) -> usize {
        let total: f64 = (1..=n).map(|k| 1.0 / k as f64).sum();
        let mut target = self.unit() * total;
        for k in 1..=n {
            target -= 1.0 / k as f64;
            if target <= 0.0 {
                return k - 1;
            }
        }
        n - 1
    }
}

/// A workflow run's script: `len` distinct reads drawn by Zipf, in the order drawn.
fn script(rng: &mut Rng, len: usize, repo: &str, pr: u64) -> Vec<Vec<String>> {
    let mut picked: Vec<usize> = Vec::new();
    let want = len.min(READS.len());
    while picked.len() < want {
        let i = rng.zipf(READS.len());
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    picked
        .into_iter()
        .map(|i| {
            READS[i]
                .replace("{repo}", repo)
                .replace("{pr}", &pr.to_string())
                .split(' ')
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// The trace, with the time of each step from the start of the replay.
fn trace(o: &Options) -> Vec<(Duration, Step)> {
    let mut rng = Rng(o.seed);
    let mut arrivals: Vec<Duration> = (0..o.workflow_runs).map(|_| rng.within(o.span)).collect();
    arrivals.sort();
    let mut free_at = vec![Duration::ZERO; o.runners.max(1)];
    let mut timed: Vec<(Duration, usize, Step)> = Vec::new();
    let mut jobs = 0;
    let mut writes = 0;
    for arrival in arrivals {
        let repo = format!("fleet/repo-{}", rng.zipf(o.repos));
        let pr = 1 + rng.zipf(3) as u64;
        let width = o.matrix[(rng.next() % o.matrix.len().max(1) as u64) as usize];
        let commands = script(&mut rng, o.script_len, &repo, pr);
        for _ in 0..width {
            let ready = arrival + rng.within(o.pickup);
            // The runner that is free first takes the job.
            let (slot, free) = free_at
                .iter()
                .copied()
                .enumerate()
                .min_by_key(|(_, at)| *at)
                .unwrap_or((0, Duration::ZERO));
            let start = ready.max(free);
            let mut at = start;
            timed.push((at, timed.len(), Step::Start { slot, job: jobs }));
            jobs += 1;
            for argv in &commands {
                at += o.gap;
                timed.push((
                    at,
                    timed.len(),
                    Step::Run {
                        slot,
                        argv: argv.clone(),
                    },
                ));
            }
            if rng.next() % 100 < o.write_percent {
                writes += 1;
                at += o.gap;
                let line = format!("issue create -R {repo} -t fleet-{writes} -b filed-by-a-job");
                let argv = line.split(' ').map(str::to_owned).collect();
                timed.push((at, timed.len(), Step::Run { slot, argv }));
            }
            at += o.gap;
            timed.push((at, timed.len(), Step::End { slot }));
            free_at[slot] = at;
        }
    }
    timed.sort_by_key(|(at, order, _)| (*at, *order));
    timed.into_iter().map(|(at, _, step)| (at, step)).collect()
}

/// What an ideal fleet-wide cache would leave to GitHub on this trace: one store shared by every
/// job at no cost, ghcache's TTLs, every write invalidating its repository at once. No cache can
/// do better; the gap between it and a configuration is what that configuration loses.
#[derive(Debug, Default, PartialEq, Eq)]
struct Floor {
    /// Reads that must go to GitHub: first fetches, expired answers, answers a write dropped.
    fetches: u64,
    /// Of those, `gh api` reads of an expired answer, which a conditional request makes free.
    revalidations: u64,
    /// Per read, in trace order: how long before the ideal cache had fetched the answer it
    /// served, or `None` when it had to fetch.
    served: Vec<Option<Duration>>,
}

impl Floor {
    /// How much of the reads the ideal cache kept from GitHub, in percent.
    fn cut_of_reads(&self) -> f64 {
        100.0 * (1.0 - self.fetches as f64 / self.served.len().max(1) as f64)
    }
}

fn floor(steps: &[(Duration, Step)]) -> Floor {
    use ghcache_core::policy::{classify, Decision};
    // key -> (repository, fetched at, TTL, has an ETag)
    let mut held: BTreeMap<String, (String, Duration, Duration, bool)> = BTreeMap::new();
    let mut f = Floor::default();
    for (at, step) in steps {
        let Step::Run { argv, .. } = step else {
            continue;
        };
        // The repository a command is about, as ghcache's own policy reads it.
        let about = |flag: Option<String>, named: Option<String>| {
            flag.or(named).unwrap_or_default().to_ascii_lowercase()
        };
        match classify(argv) {
            Decision::Cache(c) => {
                let repo = about(c.repo_flag, c.named_repo);
                let key = argv.join(" ");
                match held.get(&key) {
                    Some((_, fetched, ttl, _)) if *at < *fetched + *ttl => {
                        f.served.push(Some(at.saturating_sub(*fetched)));
                    }
                    stale => {
                        f.served.push(None);
                        f.fetches += 1;
                        if stale.is_some_and(|(_, _, _, etag)| *etag) {
                            f.revalidations += 1;
                        }
                        held.insert(key, (repo, *at, c.class.default_ttl(), c.api_get));
                    }
                }
            }
            Decision::Write(w) => {
                let repo = about(w.repo_flag, w.named_repo);
                held.retain(|_, (r, ..)| *r != repo);
            }
            Decision::Passthrough(_) => {}
        }
    }
    f
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    NoCache,
    Local,
    LocalP2p,
    LocalP2pIpfs,
}

impl Setup {
    const ALL: [Setup; 4] = [
        Setup::NoCache,
        Setup::Local,
        Setup::LocalP2p,
        Setup::LocalP2pIpfs,
    ];

    fn name(self) -> &'static str {
        match self {
            Setup::NoCache => "no cache (plain gh)",
            Setup::Local => "local only",
            Setup::LocalP2p => "local + p2p",
            Setup::LocalP2pIpfs => "local + p2p + ipfs",
        }
    }
}

/// What one configuration cost.
#[derive(Debug, Default)]
struct Outcome {
    jobs: u64,
    /// Which tier answered each read, in trace order (one entry per read).
    tiers: Vec<String>,
    writes: u64,
    requests: usize,
    charged: usize,
    /// How far the replay fell behind the trace's clock at worst.
    lag: Duration,
    /// Wall ms per command (`pr list`, `api`, ...).
    latency: BTreeMap<String, Vec<f64>>,
}

/// Everything a replay needs from the benchmark's set-up.
pub struct Tools<'a> {
    pub gh: &'a Path,
    pub ghcache: &'a Path,
    pub root: &'a Path,
    pub swarm_key: &'a Path,
    pub ipfs_api: &'a str,
}

/// Replays the trace once per configuration; prints the table; returns the JSON figures.
pub fn run(o: &Options, tools: &Tools<'_>) -> Result<serde_json::Value> {
    let steps = trace(o);
    let mut outcomes = Vec::new();
    for setup in Setup::ALL {
        eprintln!("fleet replay: {}", setup.name());
        outcomes.push((setup, replay(setup, &steps, o, tools)?));
    }
    Ok(report(o, &outcomes, &floor(&steps)))
}

fn replay(setup: Setup, steps: &[(Duration, Step)], o: &Options, t: &Tools<'_>) -> Result<Outcome> {
    let github = fake_github::FakeGithub::start()?;
    github.set_latency(o.latency);
    let dir = t.root.join(format!("fleet-{setup:?}").to_lowercase());
    std::fs::create_dir_all(&dir)?;
    let p2p = matches!(setup, Setup::LocalP2p | Setup::LocalP2pIpfs);
    // The fleet's long-lived seed peer: runners bootstrap from it; it runs no jobs.
    let seed_machine = Machine::new(&dir, "seed", &github)?;
    let seed = if p2p {
        Some(seed_machine.daemon(t.ghcache, t.swarm_key, &[])?)
    } else {
        None
    };
    let mut running: BTreeMap<usize, (Machine, Option<Daemon>)> = BTreeMap::new();
    let mut outcome = Outcome::default();
    let started = Instant::now();
    for (at, step) in steps {
        // Real time: an answer's TTL runs out in the replay when it would in production.
        if let Some(early) = (started + *at).checked_duration_since(Instant::now()) {
            std::thread::sleep(early);
        }
        outcome.lag = outcome.lag.max(started.elapsed().saturating_sub(*at));
        match step {
            Step::Start { slot, job } => {
                outcome.jobs += 1;
                if o.persistent && running.contains_key(slot) {
                    // A self-hosted runner: the next job finds the last one's cache and daemon.
                    continue;
                }
                let mut m = Machine::new(&dir, &format!("slot{slot}-job{job}"), &github)?;
                m.set_env("GH_CACHE_DEBUG", "1");
                m.set_env("GH_CACHE_SCOPE", "fleet");
                m.set_env(
                    "GH_CACHE_SWARM_KEY_FILE",
                    &t.swarm_key.display().to_string(),
                );
                if setup == Setup::LocalP2pIpfs {
                    m.set_env("GH_CACHE_IPFS", "1");
                    m.set_env("GH_CACHE_IPFS_API", t.ipfs_api);
                }
                let daemon = match &seed {
                    Some(seed) => {
                        let d = m.daemon(t.ghcache, t.swarm_key, &["--bootstrap", &seed.addr])?;
                        m.wait_for_peer(t.ghcache)?;
                        Some(d)
                    }
                    None => None,
                };
                running.insert(*slot, (m, daemon));
            }
            Step::End { slot } => {
                // An ephemeral runner goes away with its cache dir; its daemon stops.
                if !o.persistent {
                    running.remove(slot);
                }
            }
            Step::Run { slot, argv } => {
                let (m, _) = running.get(slot).context("a command outside a job")?;
                let args: Vec<&str> = argv.iter().map(String::as_str).collect();
                let write = matches!(
                    ghcache_core::policy::classify(argv),
                    ghcache_core::policy::Decision::Write(_)
                );
                let (out, took) = if setup == Setup::NoCache {
                    m.time(t.gh, &args)?
                } else {
                    m.time_cached(t.ghcache, &args)?
                };
                if !out.status.success() {
                    bail!(
                        "`gh {}` failed in the replay: {}",
                        argv.join(" "),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                if write {
                    outcome.writes += 1;
                    continue;
                }
                let tier = answered_by(setup, &String::from_utf8_lossy(&out.stderr));
                outcome.tiers.push(tier);
                // `gh api` calls group as one command; others by their first two words.
                let command = match argv[0].as_str() {
                    "api" => "api".to_owned(),
                    _ => argv[..2].join(" "),
                };
                outcome.latency.entry(command).or_default().push(ms(took));
            }
        }
    }
    running.clear();
    drop(seed);
    outcome.requests = github.request_count();
    outcome.charged = github.charged_count();
    Ok(outcome)
}

impl Outcome {
    /// Reads answered per tier.
    fn answered_by(&self) -> BTreeMap<&str, u64> {
        let mut counts = BTreeMap::new();
        for tier in &self.tiers {
            *counts.entry(tier.as_str()).or_default() += 1;
        }
        counts
    }
}

/// Which tier answered, from the `GH_CACHE_DEBUG` line.
fn answered_by(setup: Setup, stderr: &str) -> String {
    if setup == Setup::NoCache {
        return "github".into();
    }
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("ghcache: "))
        .unwrap_or("");
    for tier in ["local", "p2p", "ipfs"] {
        if line.starts_with(&format!("{tier} hit")) {
            return tier.into();
        }
    }
    if line.starts_with("revalidated") {
        return "github (304)".into();
    }
    "github".into()
}

fn report(o: &Options, outcomes: &[(Setup, Outcome)], floor: &Floor) -> serde_json::Value {
    let base = outcomes.first().map_or(1, |(_, out)| out.charged.max(1)) as f64;
    let local = outcomes
        .iter()
        .find(|(s, _)| *s == Setup::Local)
        .map_or(1, |(_, out)| out.requests.max(1)) as f64;
    let jobs = outcomes.first().map_or(0, |(_, out)| out.jobs);
    println!(
        "\n## Fleet replay: {} workflow runs over {} s, {} jobs (matrices of {:?}; {}% end with a \
         write) on {} {} runners (seed {}, {} ms GitHub latency)\n",
        o.workflow_runs,
        o.span.as_secs(),
        jobs,
        o.matrix,
        o.write_percent,
        o.runners,
        if o.persistent {
            "persistent"
        } else {
            "ephemeral"
        },
        o.seed,
        o.latency.as_millis()
    );
    println!("| configuration | reads | writes | requests to GitHub | charged | local | p2p | ipfs | GitHub | vs no cache | rate-limit multiplier |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut rows = Vec::new();
    for (setup, out) in outcomes {
        let answered_by = out.answered_by();
        let share = |tier: &str| {
            let n = answered_by.get(tier).copied().unwrap_or(0);
            100.0 * n as f64 / out.tiers.len().max(1) as f64
        };
        let github = share("github") + share("github (304)");
        let cut = 100.0 * (1.0 - out.requests as f64 / outcomes[0].1.requests.max(1) as f64);
        let multiplier = base / out.charged.max(1) as f64;
        println!(
            "| {} | {} | {} | {} | {} | {:.0}% | {:.0}% | {:.0}% | {:.0}% | -{:.0}% | {:.1}x |",
            setup.name(),
            out.tiers.len(),
            out.writes,
            out.requests,
            out.charged,
            share("local"),
            share("p2p"),
            share("ipfs"),
            github,
            cut,
            multiplier
        );
        let latency: BTreeMap<&String, serde_json::Value> = out
            .latency
            .iter()
            .map(|(cmd, ms)| {
                (
                    cmd,
                    json!({"median_ms": percentile(ms, 0.5), "p95_ms": percentile(ms, 0.95), "n": ms.len()}),
                )
            })
            .collect();
        rows.push(json!({
            "configuration": setup.name(),
            "reads": out.tiers.len(),
            "writes": out.writes,
            "requests_to_github": out.requests,
            "charged_requests": out.charged,
            "answered_by": answered_by,
            "cut_vs_no_cache_percent": cut,
            "cut_vs_local_only_factor": local / out.requests.max(1) as f64,
            "rate_limit_multiplier": multiplier,
            "worst_lag_behind_trace_ms": out.lag.as_millis() as u64,
            "latency_per_command": latency,
            "missed_what_the_floor_served": missed(floor, out),
        }));
    }
    let reads = floor.served.len();
    let floor_cut = floor.cut_of_reads();
    println!(
        "\nThe trace's floor: an ideal fleet-wide cache (one store shared by every job at no cost, \
         the same TTLs, every write invalidating at once) would still send {} of the {reads} reads \
         to GitHub ({} of them free revalidations): -{floor_cut:.0}% of the reads at best.",
        floor.fetches, floor.revalidations
    );
    let by_traffic = floor_by_traffic(o);
    println!(
        "\nThe floor is a property of the traffic: the ideal cache's cut of the reads on this \
         trace with other write shares and matrix widths (same seed, runners and commands):\n"
    );
    print!("| jobs that end with a write |");
    for widths in WIDTHS {
        print!(" matrix {widths:?} |");
    }
    println!();
    println!("| ---: |{}", " ---: |".repeat(WIDTHS.len()));
    for chunk in by_traffic.chunks(WIDTHS.len()) {
        print!("| {}% |", chunk.first().map_or(0, |c| c.0));
        for (_, _, cut) in chunk {
            print!(" -{cut:.0}% |");
        }
        println!();
    }
    println!(
        "\nReads that went to GitHub although the ideal cache had the answer, by how long before \
         it had been fetched:\n"
    );
    println!("| configuration | reads | within 2 s | 2 to 10 s | later |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for row in &rows {
        let m = &row["missed_what_the_floor_served"];
        println!(
            "| {} | {} | {} | {} | {} |",
            row["configuration"].as_str().unwrap_or("?"),
            m["reads"],
            m["within_2_s"],
            m["from_2_to_10_s"],
            m["later"]
        );
    }
    println!("\nLatency per command, median / p95 ms:\n");
    let commands: Vec<&String> = outcomes[0].1.latency.keys().collect();
    print!("| configuration |");
    for c in &commands {
        print!(" {c} |");
    }
    println!();
    print!("| --- |");
    for _ in &commands {
        print!(" ---: |");
    }
    println!();
    for (setup, out) in outcomes {
        print!("| {} |", setup.name());
        for c in &commands {
            match out.latency.get(*c) {
                Some(ms) => print!(
                    " {:.0} / {:.0} |",
                    percentile(ms, 0.5),
                    percentile(ms, 0.95)
                ),
                None => print!(" - |"),
            }
        }
        println!();
    }
    json!({
        "seed": o.seed,
        "runners": o.runners,
        "persistent_runners": o.persistent,
        "workflow_runs": o.workflow_runs,
        "jobs": jobs,
        "repos": o.repos,
        "matrix_widths": o.matrix,
        "script_len": o.script_len,
        "span_s": o.span.as_secs_f64(),
        "gap_ms": o.gap.as_millis() as u64,
        "pickup_ms": o.pickup.as_millis() as u64,
        "write_percent_of_jobs": o.write_percent,
        "latency_ms": o.latency.as_millis() as u64,
        "configurations": rows,
        "floor": {
            "reads_to_github": floor.fetches,
            "free_revalidations": floor.revalidations,
            "cut_of_reads_percent": floor_cut,
            "by_traffic": by_traffic
                .iter()
                .map(|(writes, widths, cut)| json!({
                    "write_percent_of_jobs": writes,
                    "matrix_widths": widths,
                    "cut_of_reads_percent": cut,
                }))
                .collect::<Vec<_>>(),
        },
    })
}

/// Write shares (percent of jobs) and matrix widths the floor is shown for.
const WRITE_PERCENTS: [u64; 4] = [0, 5, 10, 20];
const WIDTHS: [&[usize]; 3] = [&[2, 3, 4], &[4, 6, 8, 12], &[12, 16, 24]];

/// The floor's cut of the reads for other write shares and matrix widths, row by row:
/// `(write percent, widths, cut)`. Traces only, nothing is replayed: it takes milliseconds.
fn floor_by_traffic(o: &Options) -> Vec<(u64, &'static [usize], f64)> {
    let mut rows = Vec::new();
    for write_percent in WRITE_PERCENTS {
        for matrix in WIDTHS {
            let steps = trace(&Options {
                write_percent,
                matrix,
                ..o.clone()
            });
            rows.push((write_percent, matrix, floor(&steps).cut_of_reads()));
        }
    }
    rows
}

/// The reads a configuration sent to GitHub that the ideal cache answered, bucketed by how long
/// before the ideal cache had fetched the answer: within seconds, the answer was still on its
/// way (a job of the same run asking while the first one's announcement or IPFS copy was in
/// flight); later, it was lost (its only holders had gone).
fn missed(floor: &Floor, out: &Outcome) -> serde_json::Value {
    let mut buckets = [0u64; 3];
    for (served, tier) in floor.served.iter().zip(&out.tiers) {
        if let (Some(age), true) = (served, tier.starts_with("github")) {
            let bucket = match age.as_secs_f64() {
                s if s < 2.0 => 0,
                s if s < 10.0 => 1,
                _ => 2,
            };
            buckets[bucket] += 1;
        }
    }
    json!({
        "reads": buckets.iter().sum::<u64>(),
        "within_2_s": buckets[0],
        "from_2_to_10_s": buckets[1],
        "later": buckets[2],
    })
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
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => {}
            "--persistent" => o.persistent = true,
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
    Ok(o)
}

/// The fleet's flags, for usage lines.
pub const FLEET_USAGE: &str =
    "[--quick] [--seed N] [--persistent] [--matrix W,W,...] [--write-percent P]";

/// `cargo xtask fleet [flags]`: sets up gh, a release build, a swarm key and an
/// IPFS node, replays, prints the tables and writes `target/bench/fleet.json`.
pub fn main(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let gh = crate::sandbox::require_gh()?;
    let ghcache = crate::sandbox::build_release()?;
    ghcache_tests::ipfs::install().map_err(anyhow::Error::msg)?;
    // First, so that the IPFS node's files are made inside it.
    let root = crate::sandbox::scratch()?;
    let node = ghcache_tests::ipfs::IpfsNode::try_start().map_err(anyhow::Error::msg)?;
    let swarm_key = crate::sandbox::new_swarm_key(&ghcache, root.path())?;
    let api = node.api_url();
    let tools = Tools {
        gh: &gh,
        ghcache: &ghcache,
        root: root.path(),
        swarm_key: &swarm_key,
        ipfs_api: &api,
    };
    let figures = run(&o, &tools)?;
    let file = crate::sandbox::write_results("fleet.json", &figures)?;
    println!("\nJSON: {}", file.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_trace_and_another_seed_another() {
        let o = Options::quick();
        assert_eq!(trace(&o), trace(&o));
        let other = Options {
            seed: 7,
            ..o.clone()
        };
        assert_ne!(trace(&o), trace(&other));
    }

    #[test]
    fn every_job_starts_before_its_commands_and_ends_after_them() {
        let o = Options::full();
        let mut open = std::collections::HashSet::new();
        let mut jobs = 0;
        let mut last = Duration::ZERO;
        for (at, step) in trace(&o) {
            assert!(at >= last, "steps are in time order");
            last = at;
            match step {
                Step::Start { slot, .. } => {
                    assert!(open.insert(slot), "one job per runner at a time");
                    jobs += 1;
                }
                Step::Run { slot, .. } => assert!(open.contains(&slot)),
                Step::End { slot } => assert!(open.remove(&slot)),
            }
            assert!(open.len() <= o.runners);
        }
        assert!(open.is_empty());
        let least = o.workflow_runs * o.matrix.iter().min().copied().unwrap_or(0);
        assert!(jobs >= least, "every run fans out into its matrix");
    }

    #[test]
    fn the_jobs_of_a_run_run_the_same_script() {
        let o = Options {
            workflow_runs: 1,
            matrix: &[4],
            write_percent: 0,
            ..Options::full()
        };
        let mut scripts: BTreeMap<usize, Vec<Vec<String>>> = BTreeMap::new();
        for (_, step) in trace(&o) {
            if let Step::Run { slot, argv } = step {
                scripts.entry(slot).or_default().push(argv);
            }
        }
        assert_eq!(scripts.len(), 4, "four jobs on four runners");
        let first = scripts.values().next().cloned().unwrap_or_default();
        assert_eq!(first.len(), o.script_len);
        assert!(scripts.values().all(|s| *s == first));
    }

    #[test]
    fn the_floor_counts_first_fetches_expiries_and_writes() {
        let run = |at: u64, line: &str| {
            (
                Duration::from_secs(at),
                Step::Run {
                    slot: 0,
                    argv: line.split(' ').map(str::to_owned).collect(),
                },
            )
        };
        let steps = [
            run(0, "pr list -R fleet/a"),
            run(1, "pr list -R fleet/a"),
            run(2, "api repos/fleet/a"),
            run(70, "api repos/fleet/a"),
            run(71, "pr list -R fleet/a"),
            run(72, "issue create -R fleet/a -t x -b y"),
            run(73, "api repos/fleet/a"),
            run(74, "pr list -R fleet/b"),
        ];
        // pr list: first, expired (60 s); api: first, revalidated, dropped by the write; b: first.
        let f = floor(&steps);
        assert_eq!((f.fetches, f.revalidations), (6, 1));
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(
            f.served,
            [None, secs(1), None, None, None, None, None],
            "one answer per read, the write excluded"
        );
    }

    #[test]
    fn the_floor_rises_with_fewer_writes_and_wider_matrices() {
        let rows = floor_by_traffic(&Options::full());
        let cut = |writes: u64, widths: &[usize]| {
            rows.iter()
                .find(|(w, m, _)| *w == writes && *m == widths)
                .map(|(_, _, cut)| *cut)
                .unwrap_or(f64::NAN)
        };
        assert_eq!(rows.len(), WRITE_PERCENTS.len() * WIDTHS.len());
        assert!(cut(0, WIDTHS[1]) > cut(20, WIDTHS[1]));
        assert!(cut(10, WIDTHS[2]) > cut(10, WIDTHS[0]));
        let replayed = floor(&trace(&Options::full())).cut_of_reads();
        assert_eq!(
            cut(10, WIDTHS[1]),
            replayed,
            "the replayed trace's own cell"
        );
    }

    #[test]
    fn flags_change_the_trace_in_any_order_and_bad_ones_are_named() {
        let words = |line: &str| line.split(' ').map(String::from).collect::<Vec<_>>();
        let o = parse(&words("--matrix 12,16 --quick --write-percent 0 --seed 9"));
        let o = o.unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!((o.matrix, o.write_percent, o.seed), (&[12, 16][..], 0, 9));
        assert_eq!(o.runners, Options::quick().runners);
        for (bad, says) in [
            ("--matrix 4,x", "--matrix"),
            ("--matrix 0", "--matrix"),
            ("--write-percent 101", "--write-percent"),
            ("--seed", "--seed"),
            ("--wide", "--wide"),
        ] {
            let err = parse(&words(bad)).err().map(|e| format!("{e:#}"));
            assert!(
                err.as_deref().is_some_and(|e| e.contains(says)),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn zipf_favours_the_first_items() {
        let mut rng = Rng(1);
        let mut counts = [0u32; 4];
        for _ in 0..10_000 {
            counts[rng.zipf(4)] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[2] && counts[2] > counts[3]);
    }
}
