//! `ghcache stats`, `ghcache clear` and `ghcache config`.

use std::fmt::Write as _;

use ghcache_core::policy::TtlClass;
use ghcache_core::Selector;
use ghcache_tier_local as local;

use crate::config::{show_duration, ttl_env_name, Config, SwarmKeySource};
use crate::Failure;

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

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))
}

/// Whether `ghcache gh` uses a tier beyond this machine now, and what says so.
struct TierState {
    enabled: bool,
    detail: String,
}

impl TierState {
    fn line(&self, name: &str) -> String {
        let word = if self.enabled { "enabled" } else { "disabled" };
        format!("{name}: {word} ({})", self.detail)
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({ "enabled": self.enabled, "detail": self.detail })
    }
}

/// The swarm is used when p2p is not switched off and this cache dir's daemon answers.
#[cfg(feature = "p2p")]
async fn p2p_state(config: &Config) -> TierState {
    let off = |detail: String| TierState {
        enabled: false,
        detail,
    };
    if config.p2p.enabled.value == Some(false) {
        return off(format!("switched off: {}", config.p2p.enabled.origin));
    }
    let Ok(dir) = config.cache_dir() else {
        return off("no cache dir".to_owned());
    };
    match ghcache_tier_p2p::status(dir).await {
        Ok(text) => {
            let status: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let peers = status["connected_peers"].as_array().map_or(0, Vec::len);
            let mut detail = format!(
                "daemon running, {peers} peer{} connected",
                if peers == 1 { "" } else { "s" }
            );
            if status["keeper"].as_bool() == Some(true) {
                detail.push_str(", keeper");
            }
            if status["read_only"].as_bool() == Some(true) {
                detail.push_str(", read-only");
            }
            TierState {
                enabled: true,
                detail,
            }
        }
        Err(ghcache_tier_p2p::Error::NoDaemon { .. }) => {
            off("no daemon runs for this cache dir; start one: ghcache daemon".to_owned())
        }
        Err(e) => off(e.to_string()),
    }
}

#[cfg(not(feature = "p2p"))]
async fn p2p_state(_: &Config) -> TierState {
    TierState {
        enabled: false,
        detail: "this ghcache was built without the p2p tier".to_owned(),
    }
}

/// IPFS is used when it is switched on; a node that does not answer is named.
#[cfg(feature = "ipfs")]
async fn ipfs_state(config: &Config) -> TierState {
    if !config.ipfs.enabled.value {
        return TierState {
            enabled: false,
            detail: "GH_CACHE_IPFS=1 turns it on".to_owned(),
        };
    }
    let url = crate::ipfs::node_url(config);
    let detail =
        if let Err(Failure::Usage(line) | Failure::Runtime(line)) = crate::ipfs::check(config) {
            format!("but unusable: {line}")
        } else if crate::ipfs::uses_gateway(config) {
            format!("gateway {url}, lookups only")
        } else {
            let answer = match ghcache_tier_ipfs::Kubo::new(&url) {
                Ok(kubo) => tokio::time::timeout(IPFS_PROBE_TIMEOUT, kubo.id())
                    .await
                    .map_err(|_| format!("no answer within {IPFS_PROBE_TIMEOUT:?}"))
                    .and_then(|id| id.map_err(|e| e.to_string())),
                Err(e) => Err(e.to_string()),
            };
            match answer {
                Ok(_) => format!("node {url}"),
                Err(reason) => format!("node {url}, which does not answer: {reason}"),
            }
        };
    TierState {
        enabled: true,
        detail,
    }
}

/// How long `ghcache stats` waits for the IPFS node to say who it is.
#[cfg(feature = "ipfs")]
const IPFS_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(not(feature = "ipfs"))]
async fn ipfs_state(_: &Config) -> TierState {
    TierState {
        enabled: false,
        detail: "this ghcache was built without the IPFS tier".to_owned(),
    }
}

/// Prints the statistics as a table or as JSON, after which tiers beyond this machine are on.
pub fn show(config: &Config, json: bool) -> Result<i32, Failure> {
    let (stats, p2p, ipfs) = runtime()?.block_on(async {
        let tier = open(config).await?;
        let stats = tier
            .stats()
            .await
            .map_err(|e| Failure::Runtime(e.to_string()));
        tier.close().await;
        let (p2p, ipfs) = tokio::join!(p2p_state(config), ipfs_state(config));
        stats.map(|stats| (stats, p2p, ipfs))
    })?;
    let hits = stats.hits_local + stats.hits_p2p + stats.hits_ipfs;
    let answered = hits + stats.misses;
    let hit_rate = if answered == 0 {
        0.0
    } else {
        hits as f64 / answered as f64
    };
    if json {
        let value = serde_json::json!({
            "requests": stats.requests,
            "hits": { "local": stats.hits_local, "p2p": stats.hits_p2p, "ipfs": stats.hits_ipfs },
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
            "tiers": { "p2p": p2p.json(), "ipfs": ipfs.json() },
        });
        println!("{value}");
        return Ok(0);
    }
    let mut out = String::new();
    let _ = writeln!(out, "{}", p2p.line("P2P"));
    let _ = writeln!(out, "{}", ipfs.line("IPFS"));
    let rows: [(&str, u64); 12] = [
        ("requests", stats.requests),
        ("hits: local", stats.hits_local),
        ("hits: p2p", stats.hits_p2p),
        ("hits: ipfs", stats.hits_ipfs),
        ("misses (asked GitHub)", stats.misses),
        ("revalidated (304, free)", stats.revalidated),
        ("stale served", stats.stale_served),
        ("bypassed (not cacheable)", stats.bypassed),
        ("errors", stats.errors),
        ("corrupt entries dropped", stats.corrupt),
        ("entries", stats.entries),
        ("  of which also in IPFS", stats.ipfs_entries),
    ];
    for (label, value) in rows {
        let _ = writeln!(out, "{label:<26} {value:>10}");
    }
    let _ = writeln!(out, "{:<26} {:>10}", "size", human_bytes(stats.bytes));
    let _ = writeln!(out, "{:<26} {:>9.1}%", "hit rate", hit_rate * 100.0);
    print!("{out}");
    Ok(0)
}

/// Drops one repository's entries, or everything.
pub fn clear(config: &Config, repo: Option<&str>) -> Result<i32, Failure> {
    let selector = match repo {
        Some(value) => {
            let repo = ghcache_core::context::normalize_repo(value)
                .ok_or_else(|| Failure::Usage(format!("--repo {value:?} is not OWNER/NAME")))?;
            Selector::Repo(repo)
        }
        None => Selector::All,
    };
    let all = matches!(selector, Selector::All);
    let dropped = runtime()?.block_on(async {
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
    })?;
    println!("dropped {dropped} cached entries");
    Ok(0)
}

/// The effective configuration, one setting a line, with where it came from.
pub fn describe_config(config: &Config) -> String {
    let mut out = String::new();
    let file = match &config.file {
        Some(path) if path.is_file() => format!("{} (read)", path.display()),
        Some(path) => format!("{} (not present)", path.display()),
        None => "none".to_owned(),
    };
    let _ = writeln!(out, "# config file: {file}");
    let mut line = |key: &str, value: String, origin: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{key:<18} = {value:<40} # {origin}");
    };
    line(
        "enabled",
        config.enabled.value.to_string(),
        &config.enabled.origin,
    );
    line(
        "debug",
        config.debug.value.to_string(),
        &config.debug.origin,
    );
    line(
        "cache_dir",
        format!("{:?}", config.cache_dir.value.display().to_string()),
        &config.cache_dir.origin,
    );
    line(
        "gh",
        format!("{:?}", config.gh.value.to_string_lossy()),
        &config.gh.origin,
    );
    line(
        "scope",
        config.scope.value.as_ref().map_or(
            "(derived: actions repo, token hash, gh login, or anonymous)".into(),
            |s| format!("{s:?}"),
        ),
        &config.scope.origin,
    );
    line(
        "max_size",
        format!("\"{}\"", human_bytes(config.max_size.value)),
        &config.max_size.origin,
    );
    line(
        "max_entry_size",
        format!("\"{}\"", human_bytes(config.max_entry_size.value)),
        &config.max_entry_size.origin,
    );
    line(
        "max_stale",
        format!("\"{}\"", show_duration(config.max_stale.value)),
        &config.max_stale.origin,
    );
    line(
        "lock_timeout",
        format!("\"{}\"", show_duration(config.lock_timeout.value)),
        &config.lock_timeout.origin,
    );
    for class in TtlClass::ALL {
        if let Some(setting) = config.ttl.get(&class) {
            let origin = format!("{} (env {})", setting.origin, ttl_env_name(class));
            line(
                &format!("ttl.{}", class.name()),
                format!("\"{}\"", show_duration(setting.value)),
                &origin,
            );
        }
    }
    let p2p = &config.p2p;
    line(
        "p2p.enabled",
        match p2p.enabled.value {
            None => "auto (ask this cache dir's daemon if one runs)".to_owned(),
            Some(b) => b.to_string(),
        },
        &p2p.enabled.origin,
    );
    line(
        "p2p.deadline",
        format!("\"{}\"", show_duration(p2p.deadline.value)),
        &p2p.deadline.origin,
    );
    line(
        "p2p.swarm_key",
        match &p2p.swarm_key.value {
            None => "none".to_owned(),
            // Never print the key itself: it is the swarm's only secret.
            Some(SwarmKeySource::Text(_)) => "(set; hidden)".to_owned(),
            Some(SwarmKeySource::File(path)) => format!("{:?}", path.display().to_string()),
        },
        &p2p.swarm_key.origin,
    );
    let list = |items: &[String]| format!("{items:?}");
    line("p2p.listen", list(&p2p.listen.value), &p2p.listen.origin);
    line(
        "p2p.bootstrap",
        list(&p2p.bootstrap.value),
        &p2p.bootstrap.origin,
    );
    line("p2p.mdns", p2p.mdns.value.to_string(), &p2p.mdns.origin);
    line(
        "p2p.read_only",
        p2p.read_only.value.to_string(),
        &p2p.read_only.origin,
    );
    line(
        "p2p.trusted_peers",
        list(&p2p.trusted_peers.value),
        &p2p.trusted_peers.origin,
    );
    line(
        "p2p.metrics",
        p2p.metrics
            .value
            .clone()
            .unwrap_or_else(|| "off".to_owned()),
        &p2p.metrics.origin,
    );
    let ipfs = &config.ipfs;
    line(
        "ipfs.enabled",
        ipfs.enabled.value.to_string(),
        &ipfs.enabled.origin,
    );
    line(
        "ipfs.api",
        format!("{:?}", ipfs.api.value),
        &ipfs.api.origin,
    );
    line(
        "ipfs.gateway",
        match (
            &ipfs.gateway.value,
            ipfs.api.origin == crate::config::Origin::Default,
        ) {
            (None, _) => "none".to_owned(),
            (Some(url), true) => format!("{url:?}"),
            (Some(url), false) => format!("{url:?} (unused: an API is configured)"),
        },
        &ipfs.gateway.origin,
    );
    line(
        "ipfs.deadline",
        format!("\"{}\"", show_duration(ipfs.deadline.value)),
        &ipfs.deadline.origin,
    );
    line(
        "ipfs.encrypt",
        match ipfs.encrypt.value {
            None => "auto (on when a swarm key is set)".to_owned(),
            Some(b) => b.to_string(),
        },
        &ipfs.encrypt.origin,
    );
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
