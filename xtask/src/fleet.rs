//! The fleet replay: what a CI fleet's gh traffic costs GitHub with and without ghcache's tiers.
//!
//! A seeded generator makes a trace of jobs on N runner slots: jobs start staggered, each on a
//! fresh machine (CI runners are ephemeral: a job's cache dir and daemon live as long as the job),
//! and run commands drawn from Zipf distributions over repositories and commands, with a few
//! writes that invalidate. The same trace is replayed, in order, against the fake GitHub with
//! latency injected, once per configuration: no cache (plain gh), local only, local + p2p
//! (each job's daemon bootstraps from a long-lived seed peer), local + p2p + ipfs (one shared
//! IPFS node). The same seed gives the same trace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use crate::sandbox::{Daemon, Machine};

/// Trace parameters.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    pub slots: usize,
    pub jobs_per_slot: usize,
    pub commands_per_job: usize,
    pub repos: usize,
    /// Added to every request the fake GitHub answers.
    pub latency: Duration,
}

impl Options {
    pub fn full() -> Options {
        Options {
            seed: 42,
            slots: 8,
            jobs_per_slot: 3,
            commands_per_job: 10,
            repos: 8,
            latency: Duration::from_millis(50),
        }
    }

    pub fn quick() -> Options {
        Options {
            slots: 4,
            jobs_per_slot: 2,
            commands_per_job: 6,
            repos: 4,
            latency: Duration::from_millis(20),
            ..Options::full()
        }
    }
}

/// Read commands, most frequent first (`{}` is the repository).
const READS: [&str; 7] = [
    "pr list -R {}",
    "issue list -R {}",
    "repo view {} --json name,description",
    "api repos/{}",
    "release list -R {}",
    "run list -R {}",
    "workflow list -R {}",
];
/// Share of commands that are writes (`issue create`), which invalidate the repository.
const WRITE_PERCENT: u64 = 4;

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

/// The trace: jobs on `slots` runner slots, each slot running its jobs one after another, the
/// slots staggered so that jobs overlap.
fn trace(o: &Options) -> Vec<Step> {
    let mut rng = Rng(o.seed);
    let gap = 10u64; // virtual ms between a job's commands
    let job_len = gap * (o.commands_per_job as u64 + 1);
    let stagger = job_len / o.slots.max(1) as u64;
    let mut timed: Vec<(u64, usize, Step)> = Vec::new();
    let mut writes = 0;
    for slot in 0..o.slots {
        for job in 0..o.jobs_per_slot {
            let start = job as u64 * job_len + slot as u64 * stagger;
            timed.push((start, timed.len(), Step::Start { slot, job }));
            for k in 0..o.commands_per_job {
                let repo = format!("fleet/repo-{}", rng.zipf(o.repos));
                let line = if rng.next() % 100 < WRITE_PERCENT {
                    writes += 1;
                    format!("issue create -R {repo} -t fleet-{writes} -b written-by-the-replay")
                } else {
                    READS[rng.zipf(READS.len())].replace("{}", &repo)
                };
                let argv = line.split(' ').map(str::to_owned).collect();
                timed.push((
                    start + gap * (k as u64 + 1),
                    timed.len(),
                    Step::Run { slot, argv },
                ));
            }
            timed.push((start + job_len, timed.len(), Step::End { slot }));
        }
    }
    timed.sort_by_key(|(at, order, _)| (*at, *order));
    timed.into_iter().map(|(_, _, step)| step).collect()
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
    reads: u64,
    writes: u64,
    requests: usize,
    charged: usize,
    answered_by: BTreeMap<String, u64>,
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
    Ok(report(o, &outcomes))
}

fn replay(setup: Setup, steps: &[Step], o: &Options, t: &Tools<'_>) -> Result<Outcome> {
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
    for step in steps {
        match step {
            Step::Start { slot, job } => {
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
                // The runner goes away with its cache dir; its daemon stops.
                running.remove(slot);
            }
            Step::Run { slot, argv } => {
                let (m, _) = running.get(slot).context("a command outside a job")?;
                let args: Vec<&str> = argv.iter().map(String::as_str).collect();
                let write = argv.get(1).is_some_and(|w| w == "create");
                let (out, took) = if setup == Setup::NoCache {
                    m.time(t.gh, &args)?
                } else {
                    let mut full = vec!["gh"];
                    full.extend(&args);
                    m.time(t.ghcache, &full)?
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
                outcome.reads += 1;
                let tier = answered_by(setup, &String::from_utf8_lossy(&out.stderr));
                *outcome.answered_by.entry(tier).or_default() += 1;
                // `gh api` calls group as one command; others by their first two words.
                let command = match argv[0].as_str() {
                    "api" => "api".to_owned(),
                    _ => argv[..2].join(" "),
                };
                outcome
                    .latency
                    .entry(command)
                    .or_default()
                    .push(took.as_secs_f64() * 1000.0);
            }
        }
    }
    running.clear();
    drop(seed);
    outcome.requests = github.request_count();
    outcome.charged = github.charged_count();
    Ok(outcome)
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

fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return 0.0;
    }
    s[(((s.len() - 1) as f64) * p).round() as usize]
}

fn report(o: &Options, outcomes: &[(Setup, Outcome)]) -> serde_json::Value {
    let base = outcomes.first().map_or(1, |(_, out)| out.charged.max(1)) as f64;
    let local = outcomes
        .iter()
        .find(|(s, _)| *s == Setup::Local)
        .map_or(1, |(_, out)| out.requests.max(1)) as f64;
    println!(
        "\n## Fleet replay: {} runner slots x {} jobs x {} commands (seed {}, {} ms GitHub latency)\n",
        o.slots,
        o.jobs_per_slot,
        o.commands_per_job,
        o.seed,
        o.latency.as_millis()
    );
    println!("| configuration | reads | writes | requests to GitHub | charged | local | p2p | ipfs | GitHub | vs no cache | rate-limit multiplier |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut rows = Vec::new();
    for (setup, out) in outcomes {
        let share = |tier: &str| {
            let n = out.answered_by.get(tier).copied().unwrap_or(0);
            100.0 * n as f64 / out.reads.max(1) as f64
        };
        let github = share("github") + share("github (304)");
        let cut = 100.0 * (1.0 - out.requests as f64 / outcomes[0].1.requests.max(1) as f64);
        let multiplier = base / out.charged.max(1) as f64;
        println!(
            "| {} | {} | {} | {} | {} | {:.0}% | {:.0}% | {:.0}% | {:.0}% | -{:.0}% | {:.1}x |",
            setup.name(),
            out.reads,
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
            "reads": out.reads,
            "writes": out.writes,
            "requests_to_github": out.requests,
            "charged_requests": out.charged,
            "answered_by": out.answered_by,
            "cut_vs_no_cache_percent": cut,
            "cut_vs_local_only_factor": local / out.requests.max(1) as f64,
            "rate_limit_multiplier": multiplier,
            "latency_per_command": latency,
        }));
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
        "slots": o.slots,
        "jobs_per_slot": o.jobs_per_slot,
        "commands_per_job": o.commands_per_job,
        "repos": o.repos,
        "latency_ms": o.latency.as_millis() as u64,
        "configurations": rows,
    })
}

/// `cargo xtask fleet [--quick] [--seed N]`: sets up gh, a release build, a swarm key and an
/// IPFS node, replays, prints the tables and writes `target/bench/fleet.json`.
pub fn main(args: &[String]) -> Result<()> {
    let mut o = Options::full();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => {
                o = Options {
                    seed: o.seed,
                    ..Options::quick()
                }
            }
            "--seed" => {
                o.seed = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .context("--seed needs a number")?;
            }
            other => {
                bail!("unknown fleet flag `{other}`; usage: cargo xtask fleet [--quick] [--seed N]")
            }
        }
    }
    let gh = crate::sandbox::require_gh()?;
    let ghcache = crate::sandbox::build_release()?;
    ghcache_tests::ipfs::install().map_err(anyhow::Error::msg)?;
    let node = ghcache_tests::ipfs::IpfsNode::try_start().map_err(anyhow::Error::msg)?;
    let root = tempfile::tempdir()?;
    let swarm_key = root.path().join("swarm.key");
    let made = std::process::Command::new(&ghcache)
        .args(["swarm-key", "new"])
        .output()?;
    std::fs::write(&swarm_key, made.stdout)?;
    let api = node.api_url();
    let tools = Tools {
        gh: &gh,
        ghcache: &ghcache,
        root: root.path(),
        swarm_key: &swarm_key,
        ipfs_api: &api,
    };
    let figures = run(&o, &tools)?;
    let dir = crate::sandbox::workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let file = json_path(&dir);
    std::fs::write(&file, serde_json::to_vec_pretty(&figures)?)
        .with_context(|| format!("writing {}", file.display()))?;
    println!("\nJSON: {}", file.display());
    Ok(())
}

/// Where the JSON goes.
pub fn json_path(bench_dir: &Path) -> PathBuf {
    bench_dir.join("fleet.json")
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
        let mut runs = 0;
        for step in trace(&o) {
            match step {
                Step::Start { slot, .. } => {
                    assert!(open.insert(slot), "one job per slot at a time")
                }
                Step::Run { slot, .. } => {
                    assert!(open.contains(&slot));
                    runs += 1;
                }
                Step::End { slot } => assert!(open.remove(&slot)),
            }
        }
        assert_eq!(runs, o.slots * o.jobs_per_slot * o.commands_per_job);
        assert!(open.is_empty());
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
