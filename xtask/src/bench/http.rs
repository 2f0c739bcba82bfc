//! The HTTP level's part of the benchmark: what ghcache's socket for gh's own requests costs on
//! a command no cached answer covers, cold and warm, against plain gh and the level turned off.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::sample::{machine_info, prime, sample, Expect, REAL_LATENCY};
use crate::sandbox::{self, Machine};
use crate::stats::{median, ms, percentile};

/// A command that no output entry answers, so that gh runs for it every time: what the HTTP
/// level costs there, and what it saves.
const HTTP_LEVEL_COMMAND: [&str; 4] = ["issue", "status", "-R", "o/r"];

/// `cargo xtask bench --http`: the HTTP level's contenders alone, into `bench-http.json`.
pub(super) fn http_level_only(quick: bool) -> Result<()> {
    let gh = sandbox::require_gh()?;
    let ghcache = sandbox::build_release()?;
    let github = fake_github::FakeGithub::start()?;
    let root = crate::sandbox::scratch()?;
    let doc = json!({
        "machine": machine_info(&gh),
        "quick": quick,
        "http_level": http_level(quick, &gh, &ghcache, &github, root.path())?,
    });
    let file = sandbox::write_results("bench-http.json", &doc)?;
    println!("JSON: {}", file.display());
    Ok(())
}

/// One contender of [`http_level`].
struct HttpContender<'a> {
    name: &'static str,
    on: &'a Machine,
    program: &'a Path,
    args: &'a [&'a str],
    /// Before each sample, untimed: empty the machine's cache.
    clear_first: bool,
    expect: Expect,
}

/// The HTTP level against plain gh for a command that is not cached ([`HTTP_LEVEL_COMMAND`]),
/// at 0 ms and at [`REAL_LATENCY`] of GitHub latency, interleaved round by round:
/// - cold: the cache emptied before each sample (untimed), so each of gh's requests passes
///   through the socket to GitHub and is stored: the level's whole overhead;
/// - warm: gh's requests answered by the level from this machine's disk (within freshness:
///   an hour's TTL);
/// - off (`GH_CACHE_HTTP=0`): ghcache replaces itself with gh, as before the level existed.
pub(super) fn http_level(
    quick: bool,
    gh: &Path,
    ghcache: &Path,
    github: &fake_github::FakeGithub,
    root: &Path,
) -> Result<serde_json::Value> {
    let (runs, warmup) = if quick { (10, 2) } else { (40, 5) };
    let plain = Machine::new(root, "http-plain", github, ghcache)?;
    let cold = Machine::new(root, "http-cold", github, ghcache)?;
    let mut warm = Machine::new(root, "http-warm", github, ghcache)?;
    // Warm means within freshness for the whole run, which lasts longer than the default TTL of
    // the class that the HTTP level's answers take (api).
    warm.set_env("GH_CACHE_TTL_API", "1h");
    let mut off = Machine::new(root, "http-off", github, ghcache)?;
    off.set_env("GH_CACHE_HTTP", "0");
    let mut cached = vec!["gh"];
    cached.extend(HTTP_LEVEL_COMMAND);
    let contender = |name, on, program, args, clear_first, expect| HttpContender {
        name,
        on,
        program,
        args,
        clear_first,
        expect,
    };
    let contenders = [
        contender(
            "plain gh",
            &plain,
            gh,
            &HTTP_LEVEL_COMMAND,
            false,
            Expect::Request,
        ),
        contender(
            "ghcache, HTTP level, cold",
            &cold,
            ghcache,
            &cached,
            true,
            Expect::Request,
        ),
        contender(
            "ghcache, HTTP level, warm",
            &warm,
            ghcache,
            &cached,
            false,
            Expect::NoRequest,
        ),
        contender(
            "ghcache, HTTP level off",
            &off,
            ghcache,
            &cached,
            false,
            Expect::Request,
        ),
    ];
    for c in &contenders {
        prime(c.on, c.name, c.program, c.args)?;
    }
    println!(
        "\n## The HTTP level: `gh {}`, not cached as a command\n",
        HTTP_LEVEL_COMMAND.join(" ")
    );
    println!("| GitHub latency | contender | median ms | p95 ms | median ratio to plain gh |");
    println!("| ---: | --- | ---: | ---: | ---: |");
    let mut blocks = Vec::new();
    for latency in [Duration::ZERO, REAL_LATENCY] {
        github.set_latency(latency);
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
        for round in 0..warmup + runs {
            for (i, c) in contenders.iter().enumerate() {
                let took = sample(
                    github,
                    c.on,
                    c.name,
                    c.program,
                    c.args,
                    c.clear_first,
                    c.expect,
                )?;
                if round >= warmup {
                    samples[i].push(ms(took));
                }
            }
        }
        let mut rows = Vec::new();
        for (i, HttpContender { name, .. }) in contenders.iter().enumerate() {
            let ratios: Vec<f64> = samples[i]
                .iter()
                .zip(&samples[0])
                .map(|(x, plain)| x / plain.max(1e-6))
                .collect();
            let (m, p95, ratio) = (
                median(&samples[i]),
                percentile(&samples[i], 0.95),
                median(&ratios),
            );
            println!(
                "| {} ms | {name} | {m:.2} | {p95:.2} | {ratio:.3} |",
                latency.as_millis()
            );
            rows.push(json!({
                "name": name,
                "median_ms": m,
                "p95_ms": p95,
                "median_ratio_to_plain_gh": ratio,
                "samples_ms": samples[i],
            }));
        }
        let overhead = rows[1]["median_ratio_to_plain_gh"]
            .as_f64()
            .unwrap_or(f64::NAN)
            - 1.0;
        println!(
            "\nat {} ms: the HTTP level, cold, costs {:+.1}% against plain gh\n",
            latency.as_millis(),
            overhead * 100.0
        );
        blocks.push(json!({
            "github_latency_ms": latency.as_millis() as u64,
            "cold_overhead": overhead,
            "contenders": rows,
        }));
    }
    github.set_latency(Duration::ZERO);
    Ok(json!({
        "command": format!("gh {}", HTTP_LEVEL_COMMAND.join(" ")),
        "runs": runs,
        "latencies": blocks,
    }))
}
