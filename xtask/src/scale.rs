//! The scale benchmark: what the p2p tier costs as the swarm grows.
//!
//! For each swarm size, real daemons on loopback join one swarm the way a CI fleet's do (every
//! node bootstraps from a seed peer), and every node uses the scope, so every node follows its
//! gossip topic. Then:
//! - idle traffic: bytes per second per node with nothing to say (gossipsub heartbeats, pings,
//!   DHT upkeep);
//! - announcements: one node fetches entries from GitHub; the bytes every node sent and
//!   received until all nodes heard of every entry, per announcement, idle traffic taken out;
//! - a p2p hit on the node farthest from the producer, which knows the providers from gossip;
//! - a p2p hit on a node that joined after the announcements, so it has to ask the DHT.
//!
//! Traffic is what the daemons' transports counted on the wire (`daemon status` counters
//! `bytes_in`/`bytes_out`): every protocol, with encryption and framing.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;

use crate::sandbox::{Daemon, Listen, Machine};
use crate::stats::{median, ms, percentile};

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// Swarm sizes (daemons), in order.
    pub sizes: Vec<usize>,
    /// Entries the producer announces per size.
    pub announcements: usize,
    /// p2p hits timed per size on the far node.
    pub samples: usize,
    /// How long idle traffic is measured.
    pub idle: Duration,
}

impl Options {
    pub fn full() -> Options {
        Options {
            sizes: vec![2, 4, 8, 16],
            announcements: 10,
            samples: 30,
            idle: Duration::from_secs(16),
        }
    }

    pub fn quick() -> Options {
        Options {
            sizes: vec![2, 4],
            announcements: 4,
            samples: 8,
            idle: Duration::from_secs(2),
        }
    }
}

/// Figures for one swarm size.
#[derive(Debug)]
struct Row {
    daemons: usize,
    idle_bytes_per_s_per_node: f64,
    bytes_per_announcement_per_node: f64,
    all_heard_ms: f64,
    gossip_hit_ms: Vec<f64>,
    dht_hit_ms: Vec<f64>,
    /// Lookups of the late node that found no provider in time and went to GitHub.
    dht_misses: usize,
}

/// Runs every size; prints the table; returns the JSON figures.
pub fn run(
    o: &Options,
    ghcache: &Path,
    swarm_key: &Path,
    root: &Path,
    github: &fake_github::FakeGithub,
) -> Result<serde_json::Value> {
    let mut rows = Vec::new();
    for &n in &o.sizes {
        if n < 2 {
            bail!("a swarm needs at least two daemons (got {n})");
        }
        eprintln!("scale: {n} daemons");
        rows.push(size(
            n,
            o,
            ghcache,
            swarm_key,
            &root.join(format!("scale-{n}")),
            github,
        )?);
    }
    Ok(report(o, &rows))
}

fn size(
    n: usize,
    o: &Options,
    ghcache: &Path,
    key: &Path,
    root: &Path,
    github: &fake_github::FakeGithub,
) -> Result<Row> {
    let scope = format!("scale-{n}");
    let node = |name: &str| -> Result<Machine> {
        let mut m = Machine::new(root, name, github, ghcache)?;
        m.set_env("GH_CACHE_SCOPE", &scope);
        m.set_env("GH_CACHE_SWARM_KEY_FILE", &key.display().to_string());
        Ok(m)
    };
    let mut machines = Vec::new();
    let mut daemons: Vec<Daemon> = Vec::new();
    for i in 0..n {
        let m = node(&format!("node-{i}"))?;
        let daemon = match daemons.first() {
            None => m.start_daemon(key, Listen::Loopback, &[])?,
            Some(seed) => {
                let d = m.start_daemon(key, Listen::Loopback, &["--bootstrap", &seed.addr])?;
                d.expect_peers(1)?;
                d
            }
        };
        daemons.push(daemon);
        machines.push(m);
    }
    // Every node uses the scope once (its daemon then follows the scope's topic).
    for (i, m) in machines.iter().enumerate() {
        let repo = format!("repos/scale/warm-{n}-{i}");
        cached(m, &["api", &repo])?;
    }
    // Gossipsub builds its mesh on heartbeats (one a second): let it settle.
    std::thread::sleep(Duration::from_secs(3));

    let traffic = |ms: &[Machine]| -> u64 {
        ms.iter()
            .map(|m| {
                let counters = m.daemon_status().counters;
                counters.bytes_in + counters.bytes_out
            })
            .sum()
    };
    let before = traffic(&machines);
    let idle_started = Instant::now();
    std::thread::sleep(o.idle);
    let idle_rate = (traffic(&machines) - before) as f64 / idle_started.elapsed().as_secs_f64();

    // The producer is the seed's first follower; the far node is the last to join (with two
    // daemons, the seed).
    let producer = &machines[1];
    let far = if n > 2 {
        &machines[n - 1]
    } else {
        &machines[0]
    };
    let heard = |m: &Machine| m.daemon_status().counters.announcements_received;
    let heard_before: Vec<u64> = machines.iter().map(heard).collect();
    let before = traffic(&machines);
    let started = Instant::now();
    let keys: Vec<String> = (0..o.announcements)
        .map(|k| format!("repos/scale/entry-{n}-{k}"))
        .collect();
    for k in &keys {
        cached(producer, &["api", k])?;
    }
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let all = machines
            .iter()
            .zip(&heard_before)
            .filter(|(m, _)| !std::ptr::eq(*m, producer))
            .all(|(m, b)| heard(m) >= b + o.announcements as u64);
        if all {
            break;
        }
        if Instant::now() > until {
            bail!("with {n} daemons, not every node heard every announcement within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let all_heard = started.elapsed();
    let spent = (traffic(&machines) - before) as f64 - idle_rate * all_heard.as_secs_f64();
    let per_announcement = spent.max(0.0) / (n * o.announcements) as f64;

    // p2p hits on the far node: the providers are known from gossip.
    let mut gossip_hit_ms = Vec::new();
    for s in 0..o.samples {
        far.command(ghcache).args(["clear", "--all"]).output()?;
        let requests = github.request_count();
        let (_, took) = cached(far, &["api", &keys[s % keys.len()]])?;
        if github.request_count() != requests {
            bail!("with {n} daemons, a p2p sample on the far node reached GitHub");
        }
        gossip_hit_ms.push(ms(took));
    }

    // A node that joins now heard none of it: its lookups ask the DHT for providers.
    let late = node("late")?;
    let late_daemon =
        late.start_daemon(key, Listen::Loopback, &["--bootstrap", &daemons[0].addr])?;
    late_daemon.expect_peers(1)?;
    // Its routing table fills once identify has run on the bootstrap connection; the first
    // command (a key nobody holds) gives it that moment, as a runner's first command would.
    cached(&late, &["api", &format!("repos/scale/late-{n}")])?;
    let mut dht_hit_ms = Vec::new();
    let mut dht_misses = 0;
    for k in &keys {
        let requests = github.request_count();
        let (_, took) = cached(&late, &["api", k])?;
        if github.request_count() == requests {
            dht_hit_ms.push(ms(took));
        } else {
            dht_misses += 1;
        }
    }
    drop(daemons);
    Ok(Row {
        daemons: n,
        idle_bytes_per_s_per_node: idle_rate / n as f64,
        bytes_per_announcement_per_node: per_announcement,
        all_heard_ms: ms(all_heard),
        gossip_hit_ms,
        dht_hit_ms,
        dht_misses,
    })
}

/// `ghcache gh ARGS` on `m`; fails unless it succeeds.
fn cached(m: &Machine, args: &[&str]) -> Result<(std::process::Output, Duration)> {
    let (out, took) = m.time_cached(args)?;
    if !out.status.success() {
        bail!(
            "`ghcache gh {}` failed on {}: {}",
            args.join(" "),
            m.name,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok((out, took))
}

fn report(o: &Options, rows: &[Row]) -> serde_json::Value {
    println!(
        "\n## Scale: the p2p tier as the swarm grows ({} announcements per size, daemons on loopback)\n",
        o.announcements
    );
    println!("| daemons | idle traffic per node | traffic per announcement per node | all nodes heard {} announcements | p2p hit, providers from gossip (median / p95) | p2p hit, providers from the DHT (median / p95) | DHT lookups that missed |", o.announcements);
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut out = Vec::new();
    for r in rows {
        println!(
            "| {} | {:.0} B/s | {:.0} B | {:.0} ms | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {} of {} |",
            r.daemons,
            r.idle_bytes_per_s_per_node,
            r.bytes_per_announcement_per_node,
            r.all_heard_ms,
            median(&r.gossip_hit_ms),
            percentile(&r.gossip_hit_ms, 0.95),
            median(&r.dht_hit_ms),
            percentile(&r.dht_hit_ms, 0.95),
            r.dht_misses,
            r.dht_misses + r.dht_hit_ms.len(),
        );
        out.push(json!({
            "daemons": r.daemons,
            "idle_bytes_per_s_per_node": r.idle_bytes_per_s_per_node,
            "bytes_per_announcement_per_node": r.bytes_per_announcement_per_node,
            "all_heard_ms": r.all_heard_ms,
            "gossip_hit_median_ms": median(&r.gossip_hit_ms),
            "gossip_hit_p95_ms": percentile(&r.gossip_hit_ms, 0.95),
            "dht_hit_median_ms": median(&r.dht_hit_ms),
            "dht_hit_p95_ms": percentile(&r.dht_hit_ms, 0.95),
            "dht_misses": r.dht_misses,
            "gossip_hit_samples_ms": r.gossip_hit_ms,
            "dht_hit_samples_ms": r.dht_hit_ms,
        }));
    }
    json!({
        "announcements_per_size": o.announcements,
        "samples_per_size": o.samples,
        "idle_measured_s": o.idle.as_secs_f64(),
        "sizes": out,
    })
}

/// `cargo xtask scale [--quick]`: sets up a release build, a swarm key and the fake GitHub,
/// measures, prints the table and writes `target/bench/scale.json`.
pub fn main(args: &[String]) -> Result<()> {
    let o = match args {
        [] => Options::full(),
        [q] if q == "--quick" => Options::quick(),
        _ => bail!("usage: cargo xtask scale [--quick]"),
    };
    crate::sandbox::require_gh()?;
    let ghcache = crate::sandbox::build_release()?;
    let github = fake_github::FakeGithub::start()?;
    let root = crate::sandbox::scratch()?;
    let key = crate::sandbox::new_swarm_key(&ghcache, root.path())?;
    let figures = run(&o, &ghcache, &key, root.path(), &github)?;
    let file = crate::sandbox::write_results("scale.json", &figures)?;
    println!("\nJSON: {}", file.display());
    Ok(())
}
