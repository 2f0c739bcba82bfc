//! `cargo xtask bench`: whole-process wall time of ghcache's hits (local, p2p, ipfs) against what
//! users run instead, measured interleaved in one run so that machine noise hits every contender
//! alike.

mod first_reads;
mod http;
mod sample;
mod webhook;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use crate::charts::{bar_chart, Bar};
use crate::sandbox::{self, Listen, Machine};
use crate::stats::{median, min_max, ms, percentile};
use crate::{fleet, scale};
use first_reads::{FirstReads, IPFS_FIRST_READ_NO_DAEMON, P2P_FIRST_READ};
use http::{http_level, http_level_only};
use sample::{machine_info, prime, sample, Expect, REAL_LATENCY};

struct Contender {
    name: &'static str,
    program: PathBuf,
    args: Vec<&'static str>,
    /// Wall time of each measured sample, in ms.
    samples: Vec<f64>,
    /// Which machine runs it (index into the machines).
    on: usize,
    /// Before each sample, untimed: drop the machine's local entries, so that the sample is
    /// answered by a peer (or GitHub) rather than by this machine's disk.
    clear_first: bool,
    /// Each sample reads an entry of its own: [`first_reads::NTH`] in `args` is the sample's
    /// number (0 for the priming run).
    distinct: bool,
    expect: Expect,
    /// The fake GitHub's latency during this contender's block.
    latency: Duration,
}

/// Two contenders compared sample by sample: the ratio of each round's pair, then its median.
/// The first two show a local hit against its floor (the process itself).
const PAIRS: &[(&str, &str)] = &[
    (EMPTY_PROGRAM, LOCAL_HIT),
    (GHCACHE_VERSION, LOCAL_HIT),
    (LOCAL_HIT, P2P_HIT),
    (LOCAL_HIT, IPFS_HIT),
    (P2P_HIT, P2P_FIRST_READ),
    (IPFS_HIT, IPFS_FIRST_READ_NO_DAEMON),
    (LOCAL_HIT, GH_API_CACHE),
    (LOCAL_HIT, GH_VERSION),
    (LOCAL_HIT, PLAIN_GH),
    (P2P_HIT, PLAIN_GH),
    (IPFS_HIT, PLAIN_GH),
    (P2P_FIRST_READ, PLAIN_GH),
    (IPFS_FIRST_READ_NO_DAEMON, PLAIN_GH),
    (MISS_0, PLAIN_GH),
    (MISS_150, PLAIN_GH_150),
];
const LOCAL_HIT: &str = "ghcache local hit";
const P2P_HIT: &str = "ghcache p2p hit (peer on loopback)";
const IPFS_HIT: &str = "ghcache ipfs hit (announced CID, local IPFS node)";
const MISS_0: &str = "ghcache miss -> gh -> fake GitHub (0 ms)";
const PLAIN_GH: &str = "plain gh (fake GitHub, 0 ms)";
const MISS_150: &str = "ghcache miss -> gh -> fake GitHub (150 ms)";
const PLAIN_GH_150: &str = "plain gh (fake GitHub, 150 ms)";
const GH_API_CACHE: &str = "gh api --cache 1h (gh's own cache, hit)";
const GH_VERSION: &str = "gh --version (gh start-up floor)";
const GHCACHE_VERSION: &str = "ghcache --version (ghcache start-up floor)";
const EMPTY_PROGRAM: &str = "an empty Rust program (process floor)";

/// Runs the benchmark: tier latency, the fleet replay and the scale measurements; `--quick`
/// runs a reduced set (CI smoke).
pub fn run(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    if let Some(bad) = args
        .iter()
        .find(|a| !["--quick", "--http", "--tiers", "--webhook"].contains(&a.as_str()))
    {
        bail!(
            "unknown bench flag `{bad}`; usage: cargo xtask bench [--quick] [--http | --tiers | --webhook]"
        );
    }
    let http_only = args.iter().any(|a| a == "--http");
    let tiers_only = args.iter().any(|a| a == "--tiers");
    let webhook_only = args.iter().any(|a| a == "--webhook");
    if [http_only, tiers_only, webhook_only]
        .iter()
        .filter(|&&x| x)
        .count()
        > 1
    {
        bail!("`--http`, `--tiers` and `--webhook` each run one part alone; give one of them");
    }
    if webhook_only {
        return webhook_only_run(quick);
    }
    if http_only {
        return http_level_only(quick);
    }
    if tiers_only {
        return tier_latency_only(quick);
    }
    let started = std::time::Instant::now();
    let TierSetup {
        gh,
        ghcache,
        github,
        root,
        key,
        node,
    } = TierSetup::start()?;
    let measuring = std::time::Instant::now();

    let tiers = tier_latency(quick, &gh, &ghcache, &github, root.path(), &key, &node)?;
    let http = http_level(quick, &gh, &ghcache, &github, root.path())?;
    let webhook = webhook::measure(webhook_rounds(quick), &ghcache, &key, root.path())?;
    // The fleet replay starts IPFS nodes of its own, in the network namespaces of its hosted
    // runners.
    drop(node);
    let fleet_options = if quick {
        fleet::Options::quick()
    } else {
        fleet::Options::full()
    };
    let fleet = fleet::run(
        &fleet_options,
        &fleet::Tools {
            gh: &gh,
            ghcache: &ghcache,
            root: root.path(),
            swarm_key: &key,
        },
    )?;
    let scale_options = if quick {
        scale::Options::quick()
    } else {
        scale::Options::full()
    };
    let scale = scale::run(&scale_options, &ghcache, &key, root.path(), &github)?;

    let doc = json!({
        "machine": machine_info(&gh),
        "quick": quick,
        "seconds_measuring": measuring.elapsed().as_secs_f64(),
        "seconds_total": started.elapsed().as_secs_f64(),
        "tiers": tiers,
        "http_level": http,
        "webhook": webhook,
        "fleet": fleet,
        "scale": scale,
    });
    let file = sandbox::write_results("bench.json", &doc)?;
    let dir = sandbox::bench_dir();
    for (name, svg) in charts(&doc) {
        let path = dir.join(name);
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
        println!("chart: {}", path.display());
    }
    println!("JSON: {}", file.display());
    Ok(())
}

/// Whole-process wall time of every contender, interleaved round by round.
fn tier_latency(
    quick: bool,
    gh: &Path,
    ghcache: &Path,
    github: &fake_github::FakeGithub,
    root: &Path,
    key: &Path,
    node: &ghcache_tests::ipfs::IpfsNode,
) -> Result<serde_json::Value> {
    let (runs, warmup) = if quick { (10, 2) } else { (40, 5) };
    let empty = empty_program(root)?;
    let machine = Machine::new(root, "bench", github, ghcache)?;
    // Two peers for the p2p hit: A fetched the entry; B asks its daemon, which asks A's.
    let peer_a = Machine::new(root, "peer-a", github, ghcache)?;
    let peer_b = Machine::new(root, "peer-b", github, ghcache)?;
    let daemon_a = peer_a.start_daemon(key, Listen::Loopback, &[])?;
    let daemon_b = peer_b.start_daemon(key, Listen::Loopback, &["--bootstrap", &daemon_a.addr])?;
    daemon_b.expect_peers(1)?;
    // Misses: a machine whose cache is emptied before each sample, so ghcache runs gh.
    let misser = Machine::new(root, "miss", github, ghcache)?;
    let command = ["repo", "view", "o/r", "--json", "name"];
    let mut cached_args = vec!["gh"];
    cached_args.extend(command);
    // The IPFS hit: D fetched the entry (added to IPFS, manifest announced with its CID) and is
    // gone; C knows the manifest from the announcement, finds no live peer, and reads IPFS.
    // Their own scope keeps A's live copy of the same command out of C's way.
    let mut ipfs_fetcher = Machine::new(root, "ipfs-fetcher", github, ghcache)?;
    let mut ipfs_reader = Machine::new(root, "ipfs-reader", github, ghcache)?;
    for m in [&mut ipfs_fetcher, &mut ipfs_reader] {
        m.set_env("GH_CACHE_IPFS", "1");
        m.set_env("GH_CACHE_IPFS_API", &node.api_url());
        m.set_env("GH_CACHE_SCOPE", "bench-ipfs");
        m.set_env("GH_CACHE_SWARM_KEY_FILE", &key.display().to_string());
    }
    let daemon_fetcher = ipfs_fetcher.start_daemon(key, Listen::Loopback, &[])?;
    let daemon_reader = ipfs_reader.start_daemon(
        key,
        Listen::Loopback,
        &["--bootstrap", &daemon_fetcher.addr],
    )?;
    daemon_reader.expect_peers(1)?;
    // The reader's daemon follows a scope's announcements once a command of that scope ran.
    ipfs_reader.time_cached(&["release", "list", "-R", "o/r"])?;
    let heard = ipfs_reader.daemon_status().counters.announcements_received;
    let (fetched, _) = ipfs_fetcher.time_cached(&command)?;
    if !fetched.status.success() {
        bail!(
            "the IPFS fetcher could not fetch: {}",
            String::from_utf8_lossy(&fetched.stderr)
        );
    }
    // Announced when stored, and again with the CID once it was in IPFS.
    let heard_both = ghcache_tests::wait_until(Duration::from_secs(15), || {
        ipfs_reader.daemon_status().counters.announcements_received >= heard + 2
    });
    if !heard_both {
        bail!("the reader never heard the announcement of the IPFS copy");
    }
    drop(daemon_fetcher);
    let FirstReads {
        p2p_reader,
        ipfs_reader: daemonless_reader,
        ..
    } = &first_reads::prepare(
        root,
        github,
        ghcache,
        key,
        &node.api_url(),
        first_reads::Holder {
            machine: &peer_a,
            addr: &daemon_a.addr,
        },
        warmup + runs,
    )?;
    let machines = [
        &machine,
        &peer_a,
        &peer_b,
        &ipfs_reader,
        &misser,
        p2p_reader,
        daemonless_reader,
    ];

    let contender =
        |name, program: &Path, args: Vec<&'static str>, on, clear_first, expect| Contender {
            name,
            program: program.to_owned(),
            args,
            samples: vec![],
            on,
            clear_first,
            distinct: false,
            expect,
            latency: Duration::ZERO,
        };
    let mut contenders = vec![
        contender(
            LOCAL_HIT,
            ghcache,
            cached_args.clone(),
            0,
            false,
            Expect::NoRequest,
        ),
        contender(
            P2P_HIT,
            ghcache,
            cached_args.clone(),
            2,
            true,
            Expect::NoRequest,
        ),
        contender(
            IPFS_HIT,
            ghcache,
            cached_args.clone(),
            3,
            true,
            Expect::NoRequest,
        ),
        Contender {
            distinct: true,
            ..contender(
                P2P_FIRST_READ,
                ghcache,
                first_reads::command(first_reads::P2P_REPO),
                5,
                false,
                Expect::NoRequest,
            )
        },
        Contender {
            distinct: true,
            ..contender(
                IPFS_FIRST_READ_NO_DAEMON,
                ghcache,
                first_reads::command(first_reads::IPFS_REPO),
                6,
                false,
                Expect::NoRequest,
            )
        },
        contender(
            MISS_0,
            ghcache,
            cached_args.clone(),
            4,
            true,
            Expect::Request,
        ),
        contender(PLAIN_GH, gh, command.to_vec(), 0, false, Expect::Request),
        contender(
            GH_API_CACHE,
            gh,
            vec!["api", "--cache", "1h", "repos/o/r"],
            0,
            false,
            Expect::NoRequest,
        ),
        contender(GH_VERSION, gh, vec!["--version"], 0, false, Expect::Any),
        contender(
            GHCACHE_VERSION,
            ghcache,
            vec!["--version"],
            0,
            false,
            Expect::NoRequest,
        ),
        contender(EMPTY_PROGRAM, &empty, vec![], 0, false, Expect::NoRequest),
        Contender {
            latency: REAL_LATENCY,
            ..contender(
                MISS_150,
                ghcache,
                cached_args.clone(),
                4,
                true,
                Expect::Request,
            )
        },
        Contender {
            latency: REAL_LATENCY,
            ..contender(
                PLAIN_GH_150,
                gh,
                command.to_vec(),
                0,
                false,
                Expect::Request,
            )
        },
    ];
    // A fetches the entry that B's samples get from it.
    let (fetched, _) = peer_a.time_cached(&command)?;
    if !fetched.status.success() {
        bail!(
            "peer A could not fetch: {}",
            String::from_utf8_lossy(&fetched.stderr)
        );
    }
    // Prime the caches (this machine's, and gh's own for `gh api --cache`).
    for c in &contenders {
        let args = first_reads::nth(&c.args, 0);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        prime(machines[c.on], c.name, &c.program, &args)?;
    }
    // One block per GitHub latency; inside a block, contenders take turns (A B C A B C ...)
    // so that the machine's noise falls on all of them alike.
    let mut latencies: Vec<Duration> = contenders.iter().map(|c| c.latency).collect();
    latencies.dedup();
    for latency in latencies {
        github.set_latency(latency);
        for round in 0..warmup + runs {
            for c in contenders.iter_mut().filter(|c| c.latency == latency) {
                let on = machines[c.on];
                let args = first_reads::nth(&c.args, if c.distinct { round + 1 } else { 0 });
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let took = sample(
                    github,
                    on,
                    c.name,
                    &c.program,
                    &args,
                    c.clear_first,
                    c.expect,
                )?;
                if round >= warmup {
                    c.samples.push(ms(took));
                }
            }
        }
    }
    github.set_latency(Duration::ZERO);
    // A sample that reached no GitHub could still have been answered by a nearer tier than
    // its name says (a store that outlived the clearing before it): count where they came from.
    for (reader, tier, name) in [
        (&peer_b, ghcache_tier_p2p::NAME, P2P_HIT),
        (&ipfs_reader, ghcache_tier_ipfs::NAME, IPFS_HIT),
        (p2p_reader, ghcache_tier_p2p::NAME, P2P_FIRST_READ),
        (
            daemonless_reader,
            ghcache_tier_ipfs::NAME,
            IPFS_FIRST_READ_NO_DAEMON,
        ),
    ] {
        let hits = reader.try_stats()?["hits"][tier].as_u64().unwrap_or(0);
        if hits < (warmup + runs) as u64 {
            bail!("only {hits} of the `{name}` samples were answered by {tier}");
        }
    }
    Ok(report(&contenders, runs))
}

fn report(contenders: &[Contender], runs: usize) -> serde_json::Value {
    println!("## Tier latency: whole-process wall time, {runs} interleaved runs each\n");
    println!("| command | median ms | p95 ms | min ms | max ms |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let mut rows = Vec::new();
    for c in contenders {
        let (m, p95) = (median(&c.samples), percentile(&c.samples, 0.95));
        let (min, max) = min_max(&c.samples);
        println!("| {} | {m:.2} | {p95:.2} | {min:.2} | {max:.2} |", c.name);
        rows.push(json!({
            "name": c.name,
            "command": format!("{} {}", c.program.file_name().map(|f| f.to_string_lossy()).unwrap_or_default(), c.args.join(" ")),
            "github_latency_ms": c.latency.as_millis() as u64,
            "median_ms": m,
            "p95_ms": p95,
            "min_ms": min,
            "max_ms": max,
            "samples_ms": c.samples,
        }));
    }
    println!("\nPair by pair (each round's ratio, then the median of the ratios):\n");
    println!("| faster | slower | median ratio | min ratio |");
    println!("| --- | --- | ---: | ---: |");
    let mut pairs = Vec::new();
    for (fast, slow) in PAIRS {
        let find = |name: &str| contenders.iter().find(|c| c.name == name);
        let (Some(a), Some(b)) = (find(fast), find(slow)) else {
            continue;
        };
        let ratios: Vec<f64> = a
            .samples
            .iter()
            .zip(&b.samples)
            .map(|(x, y)| y / x.max(1e-6))
            .collect();
        let median_ratio = median(&ratios);
        let (min_ratio, _) = min_max(&ratios);
        println!("| {fast} | {slow} | {median_ratio:.1}x | {min_ratio:.1}x |");
        pairs.push(json!({
            "faster": fast,
            "slower": slow,
            "median_ratio": median_ratio,
            "min_ratio": min_ratio,
            "ratios": ratios,
        }));
    }
    json!({
        "runs": runs,
        "results": rows,
        "pairs": pairs,
        "p2p_hit_spread": spread(contenders, P2P_HIT),
        "p2p_first_read_spread": spread(contenders, P2P_FIRST_READ),
    })
}

/// How much contender `name` (a p2p hit) varies within the run: the medians of its three
/// consecutive thirds (three runs in a row, each a third as long), and its 5th to 95th
/// percentiles.
fn spread(contenders: &[Contender], name: &str) -> serde_json::Value {
    let Some(p2p) = contenders.iter().find(|c| c.name == name) else {
        return serde_json::Value::Null;
    };
    let third = (p2p.samples.len() / 3).max(1);
    let thirds: Vec<f64> = p2p.samples.chunks(third).take(3).map(median).collect();
    let (p5, p95) = (
        percentile(&p2p.samples, 0.05),
        percentile(&p2p.samples, 0.95),
    );
    let listed: Vec<String> = thirds.iter().map(|m| format!("{m:.2}")).collect();
    println!(
        "\n{name}: medians of the run's three thirds {} ms; 5th to 95th percentile {p5:.2} to \
         {p95:.2} ms",
        listed.join(" / ")
    );
    json!({ "medians_of_thirds_ms": thirds, "p5_ms": p5, "p95_ms": p95 })
}

/// An empty Rust program built like ghcache (static where ghcache is): what any process costs
/// on this machine, the floor under every hit.
fn empty_program(root: &Path) -> Result<PathBuf> {
    let source = root.join("empty.rs");
    let program = root.join("empty");
    std::fs::write(&source, "fn main() {}\n").context("writing the empty program")?;
    let mut rustc = std::process::Command::new("rustc");
    rustc.args(["-O", "-o"]).arg(&program).arg(&source);
    if sandbox::builds_static() {
        rustc.args([
            "-C",
            "target-feature=+crt-static",
            "-C",
            "relocation-model=static",
        ]);
    }
    let status = rustc.status().context("running rustc")?;
    if !status.success() {
        bail!("rustc could not build the empty program ({status})");
    }
    Ok(program)
}

/// The charts written beside the JSON: latency per tier, GitHub requests per configuration.
fn charts(doc: &serde_json::Value) -> Vec<(&'static str, String)> {
    let number = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    fn rows(v: &serde_json::Value) -> &[serde_json::Value] {
        v.as_array().map_or(&[], Vec::as_slice)
    }
    let tiers: Vec<Bar> = rows(&doc["tiers"]["results"])
        .iter()
        .map(|r| Bar {
            label: r["name"].as_str().unwrap_or("?").to_owned(),
            value: number(&r["median_ms"]),
            note: None,
        })
        .collect();
    vec![
        (
            "tier-latency.svg",
            bar_chart(
                "ghcache gh vs gh: median whole-process wall time",
                "ms",
                &tiers,
            ),
        ),
        fleet::chart(&doc["fleet"]),
    ]
}

/// What the tier latency needs: gh, the release build, the fake GitHub, a scratch dir, a swarm
/// key and a js-ipfs node (installed first if need be).
struct TierSetup {
    gh: PathBuf,
    ghcache: PathBuf,
    github: fake_github::FakeGithub,
    root: tempfile::TempDir,
    key: PathBuf,
    node: ghcache_tests::ipfs::IpfsNode,
}

impl TierSetup {
    fn start() -> Result<TierSetup> {
        let gh = sandbox::require_gh()?;
        let ghcache = sandbox::build_release()?;
        ghcache_tests::ipfs::install().map_err(anyhow::Error::msg)?;
        let github = fake_github::FakeGithub::start()?;
        let root = crate::sandbox::scratch()?;
        let key = sandbox::new_swarm_key(&ghcache, root.path())?;
        let node = ghcache_tests::ipfs::IpfsNode::try_start().map_err(anyhow::Error::msg)?;
        Ok(TierSetup {
            gh,
            ghcache,
            github,
            root,
            key,
            node,
        })
    }
}

/// `cargo xtask bench --tiers`: the tier latency alone, into `bench-tiers.json` (a few
/// minutes, so that the p2p hit can be measured in several runs in a row).
fn tier_latency_only(quick: bool) -> Result<()> {
    let TierSetup {
        gh,
        ghcache,
        github,
        root,
        key,
        node,
    } = TierSetup::start()?;
    let doc = json!({
        "machine": machine_info(&gh),
        "quick": quick,
        "tiers": tier_latency(quick, &gh, &ghcache, &github, root.path(), &key, &node)?,
    });
    let file = sandbox::write_results("bench-tiers.json", &doc)?;
    println!("JSON: {}", file.display());
    Ok(())
}

/// Deliveries the webhook part measures.
fn webhook_rounds(quick: bool) -> usize {
    if quick {
        3
    } else {
        20
    }
}

/// `cargo xtask bench --webhook`: GitHub's webhook to a keeper alone, into
/// `bench-webhook.json`.
fn webhook_only_run(quick: bool) -> Result<()> {
    let gh = sandbox::require_gh()?;
    let ghcache = sandbox::build_release()?;
    let root = sandbox::scratch()?;
    let key = sandbox::new_swarm_key(&ghcache, root.path())?;
    let doc = json!({
        "machine": machine_info(&gh),
        "quick": quick,
        "webhook": webhook::measure(webhook_rounds(quick), &ghcache, &key, root.path())?,
    });
    let file = sandbox::write_results("bench-webhook.json", &doc)?;
    println!("JSON: {}", file.display());
    Ok(())
}
