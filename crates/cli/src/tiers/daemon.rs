//! `ghcache daemon`, `ghcache daemon status` and `ghcache swarm-key new`: the p2p tier's node.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ghcache_core::policy::TtlClass;
use ghcache_core::CacheTier;
use ghcache_tier_local as local;
use ghcache_tier_p2p as p2p;
use ghcache_tier_p2p::SwarmKeyExt as _;

use crate::config::{Config, SwarmKeySource};
use crate::error::Failure;

/// Daemon settings given as flags; each replaces the config file's and environment's value.
#[derive(Debug, Default, clap::Args)]
pub struct Flags {
    /// Address to listen on (repeatable) [default: /ip4/0.0.0.0/tcp/4001]
    #[arg(long, value_name = "MULTIADDR")]
    listen: Vec<String>,
    /// Listen nowhere, only dial out: a runner behind NAT that nobody can dial
    #[arg(long, conflicts_with = "listen")]
    no_listen: bool,
    /// Peer to dial at start, /ip4/ADDR/tcp/PORT/p2p/PEER_ID (repeatable)
    #[arg(long, value_name = "MULTIADDR")]
    bootstrap: Vec<String>,
    /// The swarm's swarm.key file [env: GH_CACHE_SWARM_KEY holds the key text]
    #[arg(long, value_name = "FILE")]
    swarm_key: Option<PathBuf>,
    /// Do not look for peers on the local network with mDNS
    #[arg(long)]
    no_mdns: bool,
    /// Consume only: never announce or serve entries (for untrusted CI such as fork PRs)
    #[arg(long)]
    read_only: bool,
    /// Accept entries only from these producers (repeatable)
    #[arg(long, value_name = "PEER_ID")]
    trusted_peer: Vec<String>,
    /// Be a keeper: keep and serve a copy of what connected peers announce in their scopes (for
    /// a long-lived peer that runners dial, such as the seed)
    #[arg(long, conflicts_with = "read_only")]
    keep: bool,
    /// A keeper's store cap, least recently used out first [default: 2GiB]
    #[arg(long, value_name = "SIZE")]
    keep_max_size: Option<String>,
    /// Serve Prometheus metrics on http://ADDR/metrics
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Take GitHub's webhook deliveries on http://ADDR/ (for a keeper): each write one tells of
    /// is dropped here and on every peer
    #[arg(long, value_name = "ADDR")]
    webhook: Option<String>,
    /// The file holding the webhook's secret [env: GH_CACHE_WEBHOOK_SECRET holds the secret]
    #[arg(long, value_name = "FILE")]
    webhook_secret_file: Option<PathBuf>,
    /// Watch the repositories the swarm asked about in the last hour with conditional requests
    /// (free 304s) under this daemon's GH_TOKEN; a change is dropped on every peer
    #[arg(long)]
    follow: bool,
    /// Time between follow rounds [default: 1m]
    #[arg(long, value_name = "DURATION")]
    follow_every: Option<String>,
    /// This job's GitHub Actions OIDC token, with audience ghcache:<this daemon's peer id>:
    /// presented to every peer, which then takes this daemon's entries for the job's repository
    #[arg(long, value_name = "FILE", env = "GH_CACHE_OIDC_TOKEN_FILE")]
    oidc_token_file: Option<PathBuf>,
    /// Take entries only from producers whose OIDC token names their scope's repository, or
    /// that --trusted-peer names (for keepers)
    #[arg(long)]
    require_oidc: bool,
    /// The OIDC issuer's key set (JWK set JSON) [default: fetched from the issuer, cached]
    #[arg(long, value_name = "FILE")]
    oidc_jwks: Option<PathBuf>,
    /// The OIDC issuer whose tokens are taken
    #[arg(long, value_name = "URL", default_value = p2p::oidc::GITHUB_ISSUER)]
    oidc_issuer: String,
}

/// The daemon's OIDC settings, taken from its flags.
struct Oidc {
    token_file: Option<PathBuf>,
    require: bool,
    jwks: Option<PathBuf>,
    issuer: String,
}

/// Reads the configured swarm key (see `keys::swarm_key`), or says how to make one.
pub fn swarm_key(config: &Config) -> Result<p2p::SwarmKey, Failure> {
    super::keys::swarm_key(config)
}

/// `ghcache swarm-key new [--out FILE]`: a fresh key in the IPFS `swarm.key` format, printed,
/// or written to a new file that only its owner can read.
pub fn new_swarm_key(out: Option<&Path>) -> Result<i32, Failure> {
    let key = p2p::SwarmKey::generate().map_err(|e| Failure::Runtime(e.to_string()))?;
    match out {
        None => print!("{key}"),
        Some(path) => key
            .write_new(path)
            .map_err(|e| Failure::Runtime(e.to_string()))?,
    }
    Ok(0)
}

/// `ghcache daemon`: runs this machine's node until SIGINT or SIGTERM.
pub fn run(config: &mut Config, mut flags: Flags) -> Result<i32, Failure> {
    let oidc = Oidc {
        token_file: flags.oidc_token_file.take(),
        require: flags.require_oidc,
        jwks: flags.oidc_jwks.take(),
        issuer: std::mem::take(&mut flags.oidc_issuer),
    };
    apply_flags(config, flags)?;
    let dir = config
        .cache_dir()
        .map_err(|e| Failure::Usage(e.to_string()))?
        .to_path_buf();
    let p2p_config = node_config(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let mut local_config = super::local_config(&dir, config);
        // A keeper's store is what it keeps for the fleet: its own cap, least recently used out
        // first (a `ghcache gh` on the same cache dir evicts down to `max_size` when it stores).
        local_config.max_bytes = if config.p2p.keep.value {
            config.p2p.keep_max_size.value
        } else {
            config.max_size.value
        };
        let store = local::Tier::open(local_config)
            .await
            .map_err(|e| Failure::Runtime(e.to_string()))?;
        for line in store.warnings() {
            eprintln!("ghcache daemon: warning: {line}");
        }
        let mut p2p_config = p2p_config;
        // The identity the CLI signs with too (for IPFS): one producer per machine. Made once
        // the cache dir is set up, which adopts only a new or empty directory or a cache.
        p2p_config.identity = super::keys::identity(&dir)?;
        p2p_config.oidc = super::oidc::verifier(
            &dir,
            oidc.issuer.trim_end_matches('/'),
            oidc.jwks.as_deref(),
            oidc.require,
        )
        .await?;
        p2p_config.require_oidc = oidc.require;
        p2p_config.oidc_token_file = oidc.token_file;
        // What this machine already holds is findable again after a restart.
        p2p_config.held = store.keys(100_000).await.unwrap_or_default();
        // The book this machine's commands keep: a pause a peer met holds them back too.
        p2p_config.book = Some(Arc::new(local::BookFile::in_dir(&dir)));
        let store: Arc<dyn CacheTier> = Arc::new(store);
        if let Some(addr) = &config.p2p.metrics.value {
            let listener = tokio::net::TcpListener::bind(addr.as_str())
                .await
                .map_err(|e| Failure::Usage(format!("--metrics {addr}: {e}")))?;
            // With port 0 the system picks one: say which, here and in `daemon status`.
            let bound = listener
                .local_addr()
                .map_err(|e| Failure::Runtime(format!("--metrics {addr}: {e}")))?;
            eprintln!("ghcache daemon: metrics on http://{bound}/metrics");
            p2p_config.metrics = Some(bound);
            tokio::spawn(super::metrics::serve(listener, dir.clone()));
        }
        let recent = Arc::new(p2p::RecentRepos::default());
        if config.p2p.follow.value {
            p2p_config.recent_repos = Some(recent.clone());
        }
        let mut sources: Vec<p2p::WriteSource> =
            super::webhook::source(config).await?.into_iter().collect();
        sources.extend(super::follow::source(config, &recent)?);
        p2p::run_with(p2p_config, &dir, store, shutdown(), sources)
            .await
            .map_err(|e| Failure::Runtime(e.to_string()))
    })?;
    Ok(0)
}

/// `ghcache daemon id`: the peer id of this cache dir's daemon, made now if there is none yet,
/// so that a job can ask for an OIDC token addressed to it before the daemon starts.
pub fn id(config: &Config) -> Result<i32, Failure> {
    let dir = config
        .cache_dir()
        .map_err(|e| Failure::Usage(e.to_string()))?
        .to_path_buf();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    // The cache dir is set up (or refused) as the daemon sets it up, before a key goes in it.
    runtime.block_on(async {
        local::Tier::open(super::local_config(&dir, config))
            .await
            .map(drop)
            .map_err(|e| Failure::Runtime(e.to_string()))
    })?;
    println!("{}", super::keys::identity(&dir)?.id());
    Ok(0)
}

fn apply_flags(config: &mut Config, flags: Flags) -> Result<(), Failure> {
    use crate::config::Source::Flag;
    let p2p = &mut config.p2p;
    if !flags.listen.is_empty() {
        p2p.listen.set(flags.listen, Flag("--listen"));
    }
    if flags.no_listen {
        p2p.listen.set(Vec::new(), Flag("--no-listen"));
    }
    if flags.keep {
        p2p.keep.set(true, Flag("--keep"));
    }
    if let Some(size) = &flags.keep_max_size {
        let bytes = crate::config::parse_size(size).ok_or_else(|| {
            Failure::Usage(format!(
                "--keep-max-size {size:?} is not a size; e.g. 2GiB, 500MB or a number of bytes"
            ))
        })?;
        p2p.keep_max_size.set(bytes, Flag("--keep-max-size"));
    }
    if !flags.bootstrap.is_empty() {
        p2p.bootstrap.set(flags.bootstrap, Flag("--bootstrap"));
    }
    if let Some(path) = flags.swarm_key {
        p2p.swarm_key
            .set(Some(SwarmKeySource::File(path)), Flag("--swarm-key"));
    }
    if flags.no_mdns {
        p2p.mdns.set(false, Flag("--no-mdns"));
    }
    if flags.read_only {
        p2p.read_only.set(true, Flag("--read-only"));
    }
    if !flags.trusted_peer.is_empty() {
        p2p.trusted_peers
            .set(flags.trusted_peer, Flag("--trusted-peer"));
    }
    if flags.metrics.is_some() {
        p2p.metrics.set(flags.metrics, Flag("--metrics"));
    }
    if flags.webhook.is_some() {
        p2p.webhook.set(flags.webhook, Flag("--webhook"));
    }
    if flags.follow {
        p2p.follow.set(true, Flag("--follow"));
    }
    if let Some(every) = &flags.follow_every {
        let every = crate::config::parse_duration(every)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                Failure::Usage(format!(
                    "--follow-every {every:?} is not a duration; e.g. 1m, 30s or 500ms"
                ))
            })?;
        p2p.follow_every.set(every, Flag("--follow-every"));
    }
    if let Some(file) = flags.webhook_secret_file {
        let file = file.to_string_lossy().into_owned();
        p2p.webhook_secret_file
            .set(Some(file), Flag("--webhook-secret-file"));
    }
    Ok(())
}

fn node_config(config: &Config) -> Result<p2p::Config, Failure> {
    let settings = &config.p2p;
    let mut node = p2p::Config::new(swarm_key(config)?);
    node.clock_skew = config.clock_skew.value;
    let addrs = |items: &[String], what: &str| {
        items
            .iter()
            .map(|a| {
                a.parse::<p2p::Multiaddr>().map_err(|e| {
                    Failure::Usage(format!(
                        "{what} {a:?} is not a multiaddr ({e}); e.g. /ip4/10.0.0.5/tcp/4001"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    node.listen = addrs(&settings.listen.value, "listen address")?;
    node.bootstrap = addrs(&settings.bootstrap.value, "bootstrap address")?;
    node.mdns = settings.mdns.value;
    node.read_only = settings.read_only.value;
    if settings.keep.value && settings.read_only.value {
        return Err(Failure::Usage(
            "a keeper serves what it keeps: `keep` and `read_only` exclude each other".to_owned(),
        ));
    }
    node.keep = settings.keep.value;
    node.trusted_peers = trusted_peers(config)?;
    let scope = cli_scope(config);
    node.scopes = vec![ghcache_core::ScopeId::of(&scope)];
    node.heard_ttl_ms = TtlClass::ALL
        .iter()
        .map(|class| {
            let ttl = config.heard_ttl(*class).as_millis() as u64;
            (class.name().to_owned(), ttl)
        })
        .collect();
    // The scope named with this job's OIDC token, when it presents one.
    node.produces_for = vec![scope];
    Ok(node)
}

/// The scope of what `ghcache gh` asks on this machine: the daemon runs in the same
/// environment as the CLI, so it computes the same scope, and follows it from the start.
fn cli_scope(config: &Config) -> String {
    let env = |name: &str| std::env::var(name).ok();
    let host = crate::context::host(&env);
    crate::context::scope(&env, config.scope.value.as_deref(), &host)
}

/// The producers whose entries are accepted (empty: any swarm member).
pub fn trusted_peers(config: &Config) -> Result<Vec<p2p::PeerId>, Failure> {
    config
        .p2p
        .trusted_peers
        .value
        .iter()
        .map(|p| {
            p.parse::<p2p::PeerId>()
                .map_err(|e| Failure::Usage(format!("trusted peer {p:?} is not a peer id: {e}")))
        })
        .collect()
}

/// Resolves on SIGINT or SIGTERM (systemd stops services with SIGTERM).
async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    match term {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    eprintln!("ghcache daemon: stopping");
}

/// `ghcache daemon status [--json]`.
pub fn status(config: &Config, json: bool) -> Result<i32, Failure> {
    let dir = config
        .cache_dir()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    let status = runtime
        .block_on(p2p::status(dir))
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    if json {
        let text = status
            .to_json()
            .map_err(|e| Failure::Runtime(format!("cannot write the daemon's status: {e}")))?;
        println!("{text}");
        return Ok(0);
    }
    println!("peer id          {}", status.peer_id);
    println!("pid              {}", status.pid);
    if let Some(url) = &status.metrics_url {
        println!("metrics          {url}");
    }
    for addr in &status.listen_addrs {
        println!("listening on     {addr}");
    }
    if !status.reach.is_empty() {
        println!("reach            {}", status.reach);
    }
    if let Some(since) = status.out_of_touch_since_ms {
        println!(
            "catching up      invalidations may have been missed in the last {} (the daemon was \
             stopped or cut off); asking peers",
            ago(since)
        );
    }
    println!("connected peers  {}", status.connected_peers.len());
    for peer in &status.connected_peers {
        println!("  {peer}");
    }
    if status.read_only {
        println!("mode             read-only (never announces or serves)");
    }
    if status.keeper {
        println!("mode             keeper (keeps what its scopes' peers announce)");
        for (name, n) in status.keep.iter().flat_map(p2p::Keeping::named) {
            println!("  {:<14} {n}", name.replace('_', " "));
        }
    }
    if !status.keepers.is_empty() {
        println!("keepers          {}", status.keepers.join(" "));
    }
    if !status.bound_producers.is_empty() {
        // Held to a GitHub Actions OIDC token: they produce only for their repository's scopes.
        println!("bound producers  {}", status.bound_producers.len());
    }
    print_heard(&status);
    for source in &status.write_sources {
        let last = match source.last_write_ms {
            Some(at) => format!("the last {} ago", ago(at)),
            None => "no write yet".to_owned(),
        };
        println!(
            "writes heard     {}, for {}: {} ({last})",
            source.name,
            ago(source.since_ms),
            source.writes
        );
        for (name, n) in &source.counts {
            println!("  {:<14} {n}", name.replace('_', " "));
        }
    }
    print_rate_limits(&status);
    for (name, n) in status.counters.named() {
        println!("{:<16} {n}", name.replace('_', " "));
    }
    Ok(0)
}

/// What `daemon status` says of GitHub's rate limits, from this machine's book: each
/// principal's hourly budgets (`core`, `graphql`) whose window is on, and a pause not over.
fn print_rate_limits(status: &p2p::Status) {
    let now = ghcache_core::now_ms();
    let hourly = |resource: &str| ghcache_core::budget::HOURLY.contains(&resource);
    let lines = crate::budget::lines(&status.rate_limits, now, hourly);
    if lines.is_empty() {
        println!("rate limits      nothing heard yet");
        return;
    }
    println!("rate limits      as GitHub last told this machine or its peers");
    for line in lines {
        println!("  {line}");
    }
}

/// What `daemon status` says of longer freshness: whether writes are heard, by which sources,
/// since when, and the heard TTLs then in force.
fn print_heard(status: &p2p::Status) {
    if status.heard.is_empty() {
        println!("longer freshness off: no write source heard; answers live their TTLs");
        return;
    }
    println!("longer freshness on: writes are heard");
    for heard in &status.heard {
        let what = match &heard.repo {
            Some(repo) => format!("{repo} ({})", heard.resources.join(", ")),
            None => "every repository".to_owned(),
        };
        let by = match heard.scopes {
            0 => format!("{} of {}", heard.kind, heard.by),
            n => format!("{} of peer {}, on {n} scope(s)", heard.kind, heard.by),
        };
        println!("  {by}: {what}, for {}", ago(heard.since_ms));
    }
    let ttls: Vec<String> = TtlClass::ALL
        .iter()
        .filter_map(|class| {
            let ms = status.heard_ttl_ms.get(class.name())?;
            let ttl = crate::config::show_duration(Duration::from_millis(*ms));
            Some(format!("{} {ttl}", class.name()))
        })
        .collect();
    if !ttls.is_empty() {
        println!("  heard TTLs     {}", ttls.join(", "));
    }
}

/// How long ago `at_ms` (ms since the epoch) was, to the second: `2h05m`, `3m12s`, `9s`.
fn ago(at_ms: u64) -> String {
    let s = ghcache_core::now_ms().saturating_sub(at_ms) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}
