//! `cargo xtask bench`: whole-process wall time of ghcache's hits (local, p2p, ipfs) against what
//! users run instead, measured interleaved in one run so that machine noise hits every contender
//! alike.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use crate::sandbox::{self, Machine};

struct Contender {
    name: &'static str,
    program: PathBuf,
    args: Vec<&'static str>,
    samples: Vec<Duration>,
    /// Which machine runs it (index into the machines).
    on: usize,
    /// Before each sample, untimed: drop the machine's local entries, so that the sample is
    /// answered by a peer rather than by this machine's disk.
    clear_first: bool,
    /// Every sample must be answered without a request to GitHub.
    no_github: bool,
}

/// Runs the benchmark; `--quick` takes fewer samples (CI smoke).
pub fn run(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    if let Some(bad) = args.iter().find(|a| *a != "--quick") {
        bail!("unknown bench flag `{bad}`; usage: cargo xtask bench [--quick]");
    }
    let (runs, warmup) = if quick { (10, 2) } else { (40, 5) };
    let gh = sandbox::require_gh()?;
    let ghcache = sandbox::build_release()?;
    let github = fake_github::FakeGithub::start()?;
    let root = tempfile::tempdir()?;
    let machine = Machine::new(root.path(), "bench", &github)?;
    // Two peers for the p2p hit: A fetched the entry; B asks its daemon, which asks A's.
    let key = root.path().join("swarm.key");
    let made = machine
        .command(&ghcache)
        .args(["swarm-key", "new"])
        .output()?;
    std::fs::write(&key, made.stdout)?;
    let peer_a = Machine::new(root.path(), "peer-a", &github)?;
    let peer_b = Machine::new(root.path(), "peer-b", &github)?;
    let daemon_a = peer_a.daemon(&ghcache, &key, &[])?;
    let _daemon_b = peer_b.daemon(&ghcache, &key, &["--bootstrap", &daemon_a.addr])?;
    peer_b.wait_for_peer(&ghcache)?;
    let command = ["repo", "view", "o/r", "--json", "name"];
    let mut cached_args = vec!["gh"];
    cached_args.extend(command);
    // The IPFS hit: D fetched the entry (added to IPFS, manifest announced with its CID) and is
    // gone; C knows the manifest from the announcement, finds no live peer, and reads IPFS.
    // Their own scope keeps A's live copy of the same command out of C's way.
    ghcache_tests::ipfs::install().map_err(anyhow::Error::msg)?;
    let node = ghcache_tests::ipfs::IpfsNode::try_start().map_err(anyhow::Error::msg)?;
    let mut ipfs_fetcher = Machine::new(root.path(), "ipfs-fetcher", &github)?;
    let mut ipfs_reader = Machine::new(root.path(), "ipfs-reader", &github)?;
    for m in [&mut ipfs_fetcher, &mut ipfs_reader] {
        m.set_env("GH_CACHE_IPFS", "1");
        m.set_env("GH_CACHE_IPFS_API", &node.api_url());
        m.set_env("GH_CACHE_SCOPE", "bench-ipfs");
        m.set_env("GH_CACHE_SWARM_KEY_FILE", &key.display().to_string());
    }
    let daemon_fetcher = ipfs_fetcher.daemon(&ghcache, &key, &[])?;
    let _daemon_reader =
        ipfs_reader.daemon(&ghcache, &key, &["--bootstrap", &daemon_fetcher.addr])?;
    ipfs_reader.wait_for_peer(&ghcache)?;
    // The reader's daemon follows a scope's announcements once a command of that scope ran.
    ipfs_reader.time(&ghcache, &["gh", "release", "list", "-R", "o/r"])?;
    let heard = ipfs_reader.daemon_counter(&ghcache, "announcements_received");
    let (fetched, _) = ipfs_fetcher.time(&ghcache, &cached_args)?;
    if !fetched.status.success() {
        bail!(
            "the IPFS fetcher could not fetch: {}",
            String::from_utf8_lossy(&fetched.stderr)
        );
    }
    // Announced when stored, and again with the CID once it was in IPFS.
    let until = std::time::Instant::now() + Duration::from_secs(15);
    while ipfs_reader.daemon_counter(&ghcache, "announcements_received") < heard + 2 {
        if std::time::Instant::now() > until {
            bail!("the reader never heard the announcement of the IPFS copy");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(daemon_fetcher);
    let machines = [&machine, &peer_a, &peer_b, &ipfs_reader];

    let mut contenders = vec![
        Contender {
            name: "ghcache local hit",
            program: ghcache.clone(),
            args: cached_args.clone(),
            samples: vec![],
            on: 0,
            clear_first: false,
            no_github: true,
        },
        Contender {
            name: "ghcache p2p hit (peer on loopback)",
            program: ghcache.clone(),
            args: cached_args.clone(),
            samples: vec![],
            on: 2,
            clear_first: true,
            no_github: true,
        },
        Contender {
            name: "ghcache ipfs hit (announced CID, local IPFS node)",
            program: ghcache.clone(),
            args: cached_args.clone(),
            samples: vec![],
            on: 3,
            clear_first: true,
            no_github: true,
        },
        Contender {
            name: "plain gh (fake GitHub, 0 ms)",
            program: gh.clone(),
            args: command.to_vec(),
            samples: vec![],
            on: 0,
            clear_first: false,
            no_github: false,
        },
        Contender {
            name: "gh api --cache 1h (gh's own cache, hit)",
            program: gh.clone(),
            args: vec!["api", "--cache", "1h", "repos/o/r"],
            samples: vec![],
            on: 0,
            clear_first: false,
            no_github: false,
        },
        Contender {
            name: "gh --version (gh start-up floor)",
            program: gh.clone(),
            args: vec!["--version"],
            samples: vec![],
            on: 0,
            clear_first: false,
            no_github: false,
        },
    ];
    // A fetches the entry that B's samples get from it.
    let (fetched, _) = peer_a.time(&ghcache, &cached_args)?;
    if !fetched.status.success() {
        bail!(
            "peer A could not fetch: {}",
            String::from_utf8_lossy(&fetched.stderr)
        );
    }
    // Prime the caches, and check that the hit is really a hit (no request reaches GitHub).
    for c in &contenders {
        let (out, _) = machines[c.on].time(&c.program, &c.args)?;
        if !out.status.success() {
            bail!(
                "{} failed: {}",
                c.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let before = github.request_count();
    machine.time(&ghcache, &cached_args)?;
    if github.request_count() != before {
        bail!("the ghcache call was not a local hit; the benchmark would be meaningless");
    }
    for round in 0..warmup + runs {
        for c in &mut contenders {
            let on = machines[c.on];
            if c.clear_first {
                on.command(&ghcache).args(["clear", "--all"]).output()?;
            }
            let before = github.request_count();
            let (out, took) = on.time(&c.program, &c.args)?;
            if !out.status.success() {
                bail!("{} failed during the run", c.name);
            }
            if c.no_github && github.request_count() != before {
                bail!("a `{}` sample reached GitHub: it was not a hit", c.name);
            }
            if round >= warmup {
                c.samples.push(took);
            }
        }
    }
    let ipfs_hits = ipfs_reader.stats(&ghcache)?["hits"]["ipfs"]
        .as_u64()
        .unwrap_or(0);
    if ipfs_hits < (warmup + runs) as u64 {
        bail!("only {ipfs_hits} of the IPFS samples were IPFS hits");
    }
    drop(node);
    report(&contenders, runs, &machine_info(&gh))
}

fn report(contenders: &[Contender], runs: usize, info: &serde_json::Value) -> Result<()> {
    let hit = median(&contenders[0].samples);
    println!("## ghcache bench: whole-process wall time, {runs} interleaved runs each\n");
    println!("| command | median ms | p95 ms | min ms | max ms | median / local hit |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let mut rows = Vec::new();
    for c in contenders {
        let m = median(&c.samples);
        let ratio = m.as_secs_f64() / hit.as_secs_f64().max(1e-9);
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1}x |",
            c.name,
            ms(m),
            ms(percentile(&c.samples, 0.95)),
            ms(min(&c.samples)),
            ms(max(&c.samples)),
            ratio
        );
        rows.push(json!({
            "name": c.name,
            "command": format!("{} {}", c.program.file_name().map(|f| f.to_string_lossy()).unwrap_or_default(), c.args.join(" ")),
            "median_ms": ms(m),
            "p95_ms": ms(percentile(&c.samples, 0.95)),
            "min_ms": ms(min(&c.samples)),
            "max_ms": ms(max(&c.samples)),
            "ratio_to_local_hit": ratio,
            "samples_ms": c.samples.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        }));
    }
    let dir = bench_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = dir.join("bench.json");
    let doc = json!({ "machine": info, "runs": runs, "results": rows });
    std::fs::write(&file, serde_json::to_vec_pretty(&doc)?)
        .with_context(|| format!("writing {}", file.display()))?;
    println!("\nJSON: {}", file.display());
    Ok(())
}

fn bench_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| sandbox::workspace_root().join("target"))
        .join("bench")
}

fn machine_info(gh: &Path) -> serde_json::Value {
    let text = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .unwrap_or_default()
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "kernel": text("uname", &["-r"]),
        "gh": text(&gh.display().to_string(), &["--version"]),
        "rustc": text("rustc", &["--version"]),
    })
}

fn sorted(samples: &[Duration]) -> Vec<Duration> {
    let mut s = samples.to_vec();
    s.sort();
    s
}

fn median(samples: &[Duration]) -> Duration {
    percentile(samples, 0.5)
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let s = sorted(samples);
    if s.is_empty() {
        return Duration::ZERO;
    }
    let index = ((s.len() - 1) as f64 * p).round() as usize;
    s[index.min(s.len() - 1)]
}

fn min(samples: &[Duration]) -> Duration {
    samples.iter().min().copied().unwrap_or_default()
}

fn max(samples: &[Duration]) -> Duration {
    samples.iter().max().copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
