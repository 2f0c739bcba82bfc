//! `ghcache stats`, `ghcache clear` and `ghcache config`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ghcache_core::Selector;
use ghcache_tier_local as local;

use crate::config::{Config, Shown};
use crate::error::Failure;
use crate::session::runtime;
use crate::tiers::{self, State};

async fn open(config: &Config) -> Result<local::Tier, Failure> {
    let dir = config
        .cache_dir()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let mut local_config = local::Config::new(dir);
    local_config.max_bytes = config.max_size.value;
    local::Tier::open(local_config)
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))
}

/// Prints the statistics as a table or as JSON, after which tiers beyond this machine are on.
pub fn show(config: &Config, json: bool) -> Result<i32, Failure> {
    let report = report(config)?;
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    Ok(0)
}

/// The statistics of a cache since it was created, across all processes, and which tiers
/// beyond this machine are on.
pub struct Report {
    stats: local::Stats,
    p2p: State,
    ipfs: State,
    /// The HTTP level's counters: gh's own API requests, a level of their own.
    http: ghcache_http::Counts,
    /// What GitHub last said of each principal's rate limits, and its pauses.
    budget: Vec<ghcache_core::budget::Summary>,
}

/// Reads the statistics of the cache `config` names.
///
/// # Errors
/// The cache cannot be opened or its index read.
pub fn report(config: &Config) -> Result<Report, Failure> {
    let (stats, p2p, ipfs) = runtime()?.block_on(async {
        let tier = open(config).await?;
        let stats = tier
            .stats()
            .await
            .map_err(|e| Failure::Runtime(e.to_string()));
        tier.close().await;
        let (p2p, ipfs) = tiers::states(config).await;
        stats.map(|stats| (stats, p2p, ipfs))
    })?;
    let http = config
        .cache_dir()
        .map(crate::http::counts)
        .unwrap_or_default();
    let budget = config
        .cache_dir()
        .map(|dir| {
            use ghcache_core::budget::BookStore as _;
            local::BookFile::in_dir(dir).load().summaries()
        })
        .unwrap_or_default();
    Ok(Report {
        stats,
        p2p,
        ipfs,
        http,
        budget,
    })
}

impl Report {
    /// The persisted counters.
    pub fn stats(&self) -> &local::Stats {
        &self.stats
    }

    /// Answers from any tier, of all the answers (hits and misses); 0 when there were none.
    pub fn hit_rate(&self) -> f64 {
        let stats = &self.stats;
        let hits = stats.total_hits();
        let answered = hits + stats.misses;
        if answered == 0 {
            0.0
        } else {
            hits as f64 / answered as f64
        }
    }

    /// The JSON object `ghcache stats --json` prints.
    pub fn json(&self) -> serde_json::Value {
        let (stats, p2p, ipfs) = (&self.stats, &self.p2p, &self.ipfs);
        let hit_rate = self.hit_rate();
        serde_json::json!({
            "requests": stats.requests,
            "hits": hits_json(&stats.hits),
            "misses": stats.misses,
            "bypassed": stats.bypassed,
            "revalidated": stats.revalidated,
            "stale_served": stats.stale_served,
            "errors": stats.errors,
            "corrupt": stats.corrupt,
            "entries": stats.entries,
            "bytes": stats.bytes,
            "ipfs_entries": stats.ipfs_entries,
            "hit_rate": hit_rate,
            "created_at_ms": stats.created_at_ms,
            "tiers": tiers_json(p2p, ipfs),
            "http": http_json(&self.http),
            "rate_limits": serde_json::to_value(&self.budget).unwrap_or_default(),
        })
    }

    /// The table `ghcache stats` prints.
    pub fn table(&self) -> String {
        let (stats, p2p, ipfs) = (&self.stats, &self.p2p, &self.ipfs);
        let hit_rate = self.hit_rate();
        let mut out = String::new();
        let _ = writeln!(out, "{}", p2p.line("P2P"));
        let _ = writeln!(out, "{}", ipfs.line("IPFS"));
        let hits = hits_by_tier(&stats.hits)
            .into_iter()
            .map(|(tier, n)| (format!("hits: {tier}"), n));
        let rest = [
            ("misses (asked GitHub)", stats.misses),
            ("revalidated (304, free)", stats.revalidated),
            ("stale served", stats.stale_served),
            ("bypassed (not cacheable)", stats.bypassed),
            ("errors", stats.errors),
            ("corrupt entries dropped", stats.corrupt),
            ("entries", stats.entries),
            ("  of which also in IPFS", stats.ipfs_entries),
        ];
        let rows = [("requests".to_owned(), stats.requests)]
            .into_iter()
            .chain(hits)
            .chain(rest.map(|(label, value)| (label.to_owned(), value)));
        for (label, value) in rows {
            let _ = writeln!(out, "{label:<26} {value:>10}");
        }
        let _ = writeln!(out, "{:<26} {:>10}", "size", human_bytes(stats.bytes));
        let _ = writeln!(out, "{:<26} {:>9.1}%", "hit rate", hit_rate * 100.0);
        http_table(&mut out, &self.http);
        budget_table(&mut out, &self.budget, ghcache_core::now_ms());
        out
    }
}

/// The rate-limit rows of the `ghcache stats` table: what GitHub last said, per principal and
/// resource, as of `now_ms`.
fn budget_table(out: &mut String, summaries: &[ghcache_core::budget::Summary], now_ms: u64) {
    let _ = writeln!(
        out,
        "GitHub's rate limits (as GitHub last told this machine):"
    );
    let lines = crate::budget::lines(summaries, now_ms, |_| true);
    if lines.is_empty() {
        let _ = writeln!(out, "  nothing heard yet");
    }
    for line in lines {
        let _ = writeln!(out, "  {line}");
    }
}

/// The HTTP level's counters as `ghcache stats --json` shows them.
fn http_json(http: &ghcache_http::Counts) -> serde_json::Value {
    serde_json::json!({
        "requests": http.requests(),
        "hits": hits_json(&http.hits),
        "misses": http.misses,
        "revalidated": http.revalidated,
        "stale_served": http.stale_served,
        "writes": http.writes,
        "passed": http.passed,
        "streamed_bytes": http.streamed_bytes,
        "errors": http.errors,
        "corrupt": http.corrupt,
    })
}

/// The HTTP level's rows of the `ghcache stats` table.
fn http_table(out: &mut String, http: &ghcache_http::Counts) {
    let _ = writeln!(out, "HTTP level (gh's own API requests):");
    let hits = hits_by_tier(&http.hits)
        .into_iter()
        .map(|(tier, n)| (format!("hits: {tier}"), n));
    let rest = [
        ("misses (asked GitHub)", http.misses),
        ("revalidated (304, free)", http.revalidated),
        ("stale served", http.stale_served),
        ("writes passed on", http.writes),
        ("other requests passed on", http.passed),
    ];
    let rows = [("requests".to_owned(), http.requests())]
        .into_iter()
        .chain(hits)
        .chain(rest.map(|(label, value)| (label.to_owned(), value)));
    for (label, value) in rows {
        let _ = writeln!(out, "  {label:<24} {value:>10}");
    }
    let _ = writeln!(
        out,
        "  {:<24} {:>10}",
        "streamed, not stored",
        human_bytes(http.streamed_bytes)
    );
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.table())
    }
}

/// Hits by tier, from what was recorded: ghcache's tiers, always (built into this binary or
/// not), in the order a lookup asks them, then any other tier that has served an answer.
fn hits_by_tier(recorded: &BTreeMap<String, u64>) -> Vec<(&str, u64)> {
    let others = recorded
        .iter()
        .filter(|(tier, _)| !tiers::ALL.contains(&tier.as_str()))
        .map(|(tier, n)| (tier.as_str(), *n));
    tiers::ALL
        .iter()
        .map(|tier| (*tier, recorded.get(*tier).copied().unwrap_or(0)))
        .chain(others)
        .collect()
}

/// The states of the tiers beyond this machine as a JSON object, by tier name.
fn tiers_json(p2p: &State, ipfs: &State) -> serde_json::Value {
    [p2p, ipfs]
        .map(|state| (state.name.to_owned(), state.json()))
        .into_iter()
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Hits by tier as a JSON object, as [`hits_by_tier`] lists them.
fn hits_json(recorded: &BTreeMap<String, u64>) -> serde_json::Value {
    hits_by_tier(recorded)
        .into_iter()
        .map(|(tier, n)| (tier.to_owned(), serde_json::Value::from(n)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Drops one repository's entries, or everything, and says how many.
pub fn clear(config: &Config, repo: Option<&str>) -> Result<i32, Failure> {
    let dropped = drop_entries(config, repo)?;
    println!("dropped {dropped} cached entries");
    Ok(0)
}

/// Drops one repository's entries (`repo`), or everything; returns how many.
///
/// # Errors
/// `repo` is not `OWNER/NAME`, or the cache cannot be opened or changed.
pub fn drop_entries(config: &Config, repo: Option<&str>) -> Result<u64, Failure> {
    let selector = match repo {
        Some(value) => {
            let repo = ghcache_core::context::normalize_repo(value)
                .ok_or_else(|| Failure::Usage(format!("--repo {value:?} is not OWNER/NAME")))?;
            Selector::Repo(repo)
        }
        None => Selector::All,
    };
    let all = matches!(selector, Selector::All);
    runtime()?.block_on(async {
        let tier = open(config).await?;
        let dropped = tier
            .clear(&selector)
            .await
            .map_err(|e| Failure::Runtime(e.to_string()));
        if all && dropped.is_ok() {
            // One lock file per key ever fetched would otherwise outlive every entry.
            if let Ok(dir) = config.cache_dir() {
                local::KeyLock::remove_unheld(dir);
            }
        }
        tier.close().await;
        dropped
    })
}

/// The effective configuration, one setting a line, with where it came from: the rows of the
/// settings' table, sizes in binary units like the statistics'.
pub fn describe_config(config: &Config) -> String {
    let mut out = String::new();
    let file = match &config.file {
        Some(path) if path.is_file() => format!("{} (read)", path.display()),
        Some(path) => format!("{} (not present)", path.display()),
        None => "none".to_owned(),
    };
    let _ = writeln!(out, "# config file: {file}");
    for line in config.listing() {
        let value = match line.value {
            Shown::Text(text) => text,
            Shown::Size(bytes) => format!("\"{}\"", human_bytes(bytes)),
        };
        let _ = writeln!(out, "{:<18} = {value:<40} # {}", line.key, line.source);
    }
    out
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tier_has_its_line_in_every_build_then_any_other_that_served() {
        let recorded: BTreeMap<String, u64> =
            [("http".to_owned(), 2), ("local".to_owned(), 5)].into();
        assert_eq!(
            hits_by_tier(&recorded),
            vec![("local", 5), ("p2p", 0), ("ipfs", 0), ("http", 2)]
        );
    }
}
