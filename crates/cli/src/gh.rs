//! `ghcache gh ...`: the cached gh. The hot path: classify, key, local lookup, print.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
#[cfg(feature = "ipfs")]
use std::time::Duration;
use std::time::Instant;

use ghcache_core::layers;
use ghcache_core::policy::{self, Decision};
use ghcache_core::{
    CacheTier, Chain, ChainConfig, Event, KeyInput, Lookup, Output, Recorder, Request, Selector,
    Source, TierError, Verdict,
};
use ghcache_tier_local as local;

use crate::config::{Config, Env};
use crate::context;
use crate::Failure;

const CORRUPT_WARNING: &str =
    "a cached answer failed its integrity check and was dropped; answering from GitHub";

/// Runs gh's `args` through the cache, printing as gh would, and returns the exit code to exit
/// with. Commands that must run gh untouched replace this process with gh.
pub fn run(config: &Config, env: Env<'_>, args: Vec<String>) -> Result<i32, Failure> {
    let session = Session::printing(config);
    match answer(config, env, args.clone(), &session)? {
        Outcome::Answered { output, .. } => Ok(output.exit_code),
        // gh with the terminal, its API requests through the HTTP level; or gh itself.
        Outcome::RunGh(_) => crate::http::run_attached(config, env, &args, None)
            .unwrap_or_else(|| Err(exec(config, &args))),
    }
}

/// What became of a command.
pub(crate) enum Outcome {
    /// Answered: from a tier, from GitHub, or a write that ran. When the session prints, the
    /// output was printed already.
    Answered {
        /// What gh printed, or would have.
        output: Output,
        /// Where the answer came from; `None` for a write.
        source: Option<Source>,
    },
    /// gh must run with the user's terminal, untouched (interactive, not on the allowlist,
    /// ghcache switched off); the reason.
    RunGh(&'static str),
}

/// Answers gh's `args` through the cache. `session` says whether answers are printed (the
/// binary) or kept for the caller (the library).
pub(crate) fn answer(
    config: &Config,
    env: Env<'_>,
    args: Vec<String>,
    session: &Session,
) -> Result<Outcome, Failure> {
    if !config.enabled.value {
        session.debug("disabled", "-");
        return Ok(Outcome::RunGh("ghcache is switched off"));
    }
    match policy::classify(&args) {
        Decision::Passthrough(reason) => {
            record_bypass(config);
            session.debug(&format!("bypass ({reason})"), "-");
            Ok(Outcome::RunGh(reason))
        }
        Decision::Write(write) => {
            let host = context::host(env);
            // Empty: a write whose repository is not proven, which drops everything.
            let repo = match (&write.repo_flag, &write.named_repo) {
                _ if write.unproven => String::new(),
                (Some(flag), _) => context::repo(env, Some(flag), &host),
                (None, Some(named)) => named.clone(),
                (None, None) => context::repo(env, None, &host),
            };
            let also = match &write.also {
                _ if repo.is_empty() => None,
                Some(policy::AlsoChanged::Repo(other)) => Some(other.clone()),
                Some(policy::AlsoChanged::SameOwner(name)) => repo
                    .split_once('/')
                    .map(|(owner, _)| format!("{owner}/{name}")),
                None => None,
            };
            let output = if session.capture {
                ghcache_tier_gh::run_captured(&config.gh.value, &args)
                    .map_err(|e| spawn_failure(config, &e))?
            } else {
                let code = match crate::http::run_attached(config, env, &args, Some(&repo)) {
                    Some(code) => code?,
                    None => ghcache_tier_gh::run_inherited(&config.gh.value, &args)
                        .map_err(|e| spawn_failure(config, &e))?,
                };
                Output {
                    exit_code: code,
                    stdout_printed: true,
                    ..Output::default()
                }
            };
            // Also after a failure: a write that timed out or was interrupted may still have
            // reached GitHub, and dropping answers only costs a fetch.
            let scope = context::scope(env, config.scope.value.as_deref(), &host);
            invalidate_after_write(config, &repo, write.changes, &scope, session);
            if let Some(other) = also {
                invalidate_after_write(config, &other, write.changes, &scope, session);
            }
            Ok(Outcome::Answered {
                output,
                source: None,
            })
        }
        Decision::Cache(cacheable) => {
            #[cfg(feature = "p2p")]
            if config.p2p.enabled.value == Some(true) {
                // Fail early and clearly rather than silently running without the swarm.
                crate::daemon::swarm_key(config)?;
            }
            #[cfg(feature = "ipfs")]
            crate::ipfs::check(config)?;
            let request = build_request(config, env, args, &cacheable);
            if let Some(output) = quick_hit(config, &request, session) {
                return Ok(Outcome::Answered {
                    output,
                    source: Some(Source::Tier("local")),
                });
            }
            let (output, source) = runtime()?.block_on(serve(config, request, session))?;
            Ok(Outcome::Answered {
                output,
                source: Some(source),
            })
        }
    }
}

fn build_request(
    config: &Config,
    env: Env<'_>,
    argv: Vec<String>,
    cacheable: &policy::Cacheable,
) -> Request {
    let host = context::host(env);
    let scope = context::scope(env, config.scope.value.as_deref(), &host);
    let repo_context = context::repo(env, cacheable.repo_flag.as_deref(), &host);
    let about = cacheable
        .named_repo
        .clone()
        .unwrap_or_else(|| repo_context.clone());
    let mut key_argv = cacheable.key_argv.clone();
    key_argv.extend(context::output_env(env));
    let input = KeyInput {
        host,
        scope,
        repo: repo_context,
        argv: key_argv,
        output: context::output_mode(),
    };
    let mut request = Request::new(argv, input, about, config.ttl(cacheable.class));
    request.resource = cacheable.resource;
    request.max_stale = config.max_stale.value;
    request.revalidate = cacheable.api_get;
    request
}

/// The chain's settings for this configuration.
pub(crate) fn chain_config(config: &Config) -> ChainConfig {
    ChainConfig {
        clock_skew: config.clock_skew.value,
    }
}

/// The local tier's settings for this configuration.
pub(crate) fn local_config(dir: &std::path::Path, config: &Config) -> local::Config {
    let mut local_config = local::Config::new(dir);
    local_config.max_bytes = config.max_size.value;
    local_config.clock_skew = config.clock_skew.value;
    local_config
}

/// A fresh local hit, answered without the index and without an async runtime: the record of
/// the key, the fence, the body (see `local::Reader`). `None` leaves the request to [`serve`],
/// which also answers everything this path cannot settle.
fn quick_hit(config: &Config, request: &Request, session: &Session) -> Option<Output> {
    let dir = config.cache_dir().ok()?;
    let local_config = local_config(dir, config);
    let reader = local::Reader::new(&local_config);
    let found = reader.get(&request.key).found()?;
    // The chain's own rules, under the fence as the reader found it: what the chain would not
    // serve, this path does not either.
    if !fresh_by_the_chain(config, &found.entry, request, Some(&found.fence)) {
        return None;
    }
    let used = found.used;
    let output = Output::from(found.entry);
    session.answer(&output, request);
    session.debug("local hit", &request.key.short());
    match reader.record(used, &[Event::Hit("local")]) {
        Ok(false) => {}
        Ok(true) => {
            // About once per ten thousand hits: fold the appended counters into the index.
            let fold = runtime().ok().map(|rt| {
                rt.block_on(async {
                    let tier = local::Tier::open(local_config).await.ok()?;
                    let folded = tier.fold_pending().await;
                    tier.close().await;
                    folded.ok()
                })
            });
            if fold.flatten().is_none() {
                session.note("could not fold the counters into the index; the next write will");
            }
        }
        Err(err) => session.note(&format!("could not update stats: {err}")),
    }
    Some(output)
}

/// Answers `request` from the tiers or GitHub; returns the answer (printed already when the
/// session prints) and where it came from.
async fn serve(
    config: &Config,
    request: Request,
    session: &Session,
) -> Result<(Output, Source), Failure> {
    let dir = config
        .cache_dir()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    // The index is opened only if the records cannot answer, or to store.
    let tier = match local::LazyTier::open(local_config(dir, config)) {
        Ok(tier) => Some(Arc::new(tier)),
        Err(err) => {
            session.warn(&format!("{err}; answering from GitHub without the cache"));
            None
        }
    };
    let mut early = Vec::new();
    let mut answered = None;
    if let Some(tier) = &tier {
        // A fresh local entry needs no lock, no origin, no other tier (one the hit path could
        // not settle alone, see `quick_hit`).
        match tier.get(&request.key).await {
            Ok(Lookup::Hit(entry))
                if tier
                    .fences()
                    .state(&request.repo, request.resource)
                    .is_ok_and(|fence| {
                        fresh_by_the_chain(config, &entry, &request, Some(&fence))
                    }) =>
            {
                let output = Output::from(entry);
                session.answer(&output, &request);
                session.debug("local hit", &request.key.short());
                record(tier, &[Event::Hit("local")], session).await;
                answered = Some(output);
            }
            Err(TierError::Corrupt { .. }) => {
                early.push(Event::Corrupt("local"));
                session.warn(CORRUPT_WARNING);
            }
            _ => {}
        }
    }
    if let Some(output) = answered {
        finish(tier, session).await;
        return Ok((output, Source::Tier("local")));
    }
    // Miss: one process per key asks GitHub; the others wait and read what it stored.
    let _lock = match &tier {
        // A cache that stores nothing has nothing for the others to wait for.
        Some(tier) if tier.is_read_only() => None,
        Some(_) => match local::KeyLock::acquire(dir, &request.key, config.lock_timeout.value) {
            Ok(lock) => lock,
            Err(err) => {
                session.warn(&err.to_string());
                None
            }
        },
        None => None,
    };
    let recorder = Arc::new(Recorder::default());
    // gh's own API requests go through the HTTP level while it runs.
    let origin = Arc::new(crate::http::LazyLevelOrigin::new(
        gh_config(config, &request, session),
        crate::http::LevelStart {
            config: config.clone(),
            args: request.argv.clone(),
            local: tier.clone(),
            scope: request.input.scope.clone(),
            context_repo: request.repo.clone(),
            purpose: crate::http::Purpose::Answer(request.ttl),
            budgets: session.budgets(),
        },
    ));
    let mut chain = Chain::new(origin.clone(), recorder.clone()).with_config(chain_config(config));
    let remote = match &tier {
        Some(tier) => {
            let remote = Remote::connect(config, dir, &request.input.scope, session).await;
            chain = chain
                .with_fence(Arc::new(tier.fences().clone()))
                .with_tier(remote.local_store(tier));
            chain = remote.join(chain, config, session);
            remote
        }
        None => Remote::default(),
    };
    let resolved = chain.resolve(&request).await;
    if let Some(http) = origin.take_run().await {
        http.finish(config, session).await;
    }
    let chain_events = recorder.drain();
    let chain_dropped_corrupt = chain_events.iter().any(|e| matches!(e, Event::Corrupt(_)));
    let mut events = early;
    events.extend(chain_events);
    let resolved = match resolved {
        Ok(resolved) => resolved,
        Err(err) => {
            if let Some(tier) = &tier {
                record(tier, &events, session).await;
            }
            finish(tier, session).await;
            return Err(Failure::Runtime(err.to_string()));
        }
    };
    session.answer(&resolved.output, &request);
    for line in &resolved.warnings {
        session.warn(line);
    }
    if chain_dropped_corrupt {
        session.warn(CORRUPT_WARNING);
    }
    session.debug(&resolved.source.label(), &request.key.short());
    if let Some(tier) = &tier {
        if resolved.source == Source::Origin {
            remote
                .after_origin(config, tier.as_ref(), &request, session)
                .await;
        }
        record(tier, &events, session).await;
    }
    finish(tier, session).await;
    Ok((resolved.output, resolved.source))
}

/// Tells what the cache had to say (a read-only or damaged cache: once per command) and lets
/// go of the index before the process exits.
async fn finish(tier: Option<Arc<local::LazyTier>>, session: &Session) {
    let Some(tier) = tier else { return };
    for line in tier.warnings() {
        session.warn(&line);
    }
    // A hit that changed nothing leaves the WAL files in place for the next process.
    if let Some(tier) = Arc::into_inner(tier) {
        tier.close_before_exit().await;
    }
}

/// The tiers beyond this machine for one request: the swarm (through the daemon) and IPFS.
#[derive(Default)]
struct Remote {
    #[cfg(feature = "p2p")]
    peers: Option<Arc<ghcache_tier_p2p::Tier>>,
    #[cfg(feature = "ipfs")]
    ipfs: Option<Arc<crate::ipfs::Lookups>>,
}

impl Remote {
    /// The remote tiers of cache dir `dir`, which the caller accepted (see [`p2p_client`]).
    #[cfg_attr(not(feature = "p2p"), allow(unused_variables))]
    async fn connect(
        config: &Config,
        dir: &std::path::Path,
        scope: &str,
        session: &Session,
    ) -> Remote {
        #[cfg(feature = "p2p")]
        let peers = p2p_client(config, dir, scope)
            .await
            .unwrap_or_else(|warning| {
                session.warn(&warning);
                None
            });
        // The daemon knows which manifests (and CIDs) the swarm announced.
        #[cfg(all(feature = "ipfs", feature = "p2p"))]
        let directory = peers.clone().map(|daemon| {
            Arc::new(crate::ipfs::Directory(daemon)) as Arc<dyn ghcache_tier_ipfs::ManifestSource>
        });
        #[cfg(all(feature = "ipfs", not(feature = "p2p")))]
        let directory = None;
        Remote {
            #[cfg(feature = "ipfs")]
            ipfs: crate::ipfs::tier(config, dir, scope, directory).map(Arc::new),
            #[cfg(feature = "p2p")]
            peers,
        }
    }

    /// This machine's cache as the chain stores into it: through the daemon when one runs (its
    /// index is open already), else directly.
    fn local_store(&self, local: &Arc<local::LazyTier>) -> Arc<dyn CacheTier> {
        #[cfg(feature = "p2p")]
        if let Some(daemon) = &self.peers {
            return Arc::new(crate::daemon_store::StoredByDaemon::new(
                local.clone(),
                daemon.clone(),
            ));
        }
        local.clone()
    }

    /// Appends the remote tiers to `chain`, nearest first.
    #[cfg_attr(not(feature = "p2p"), allow(unused_variables, unused_mut))]
    fn join(&self, mut chain: Chain, config: &Config, session: &Session) -> Chain {
        #[cfg(feature = "p2p")]
        if let Some(peers) = &self.peers {
            chain = chain.with_tier(layers::Deadline::budgeted(
                peers.clone() as Arc<dyn CacheTier>,
                config.p2p.deadline.value,
                session.p2p_budget.clone(),
            ));
        }
        #[cfg(feature = "ipfs")]
        if let Some(ipfs) = &self.ipfs {
            // Stored into after the answer is printed (see `after_origin`), never before.
            chain = chain.with_tier(layers::LookupOnly::wrap(layers::Deadline::budgeted(
                ipfs.clone() as Arc<dyn CacheTier>,
                config.ipfs.deadline.value,
                session.ipfs_budget.clone(),
            )));
        }
        chain
    }

    /// After a GitHub answer is printed: add it to IPFS, then announce the manifest that names
    /// its CID, so runners that start after this one is gone still find it. A detached
    /// `ghcache ipfs-store` does it, so that this process exits now (adding to a node takes tens
    /// of milliseconds); if it cannot be started, this process does it.
    #[cfg_attr(not(feature = "ipfs"), allow(unused_variables))]
    async fn after_origin(
        &self,
        config: &Config,
        local: &dyn CacheTier,
        request: &Request,
        session: &Session,
    ) {
        #[cfg(feature = "ipfs")]
        if let Some(ipfs) = &self.ipfs {
            if !ipfs.answered() {
                return;
            }
            match spawn_ipfs_store(config, &request.key, &request.input.scope) {
                Ok(()) => session.debug("adding to ipfs in the background", &request.key.short()),
                Err(err) => {
                    session.note(&format!(
                        "cannot start ghcache ipfs-store ({err}); adding now"
                    ));
                    self.store_in_ipfs(local, &request.key, config.ipfs.deadline.value, session)
                        .await;
                }
            }
        }
    }

    /// Adds the local entry of `key` to IPFS within `budget`, records its CID locally and hands
    /// the signed manifest to the daemon to announce.
    #[cfg(feature = "ipfs")]
    async fn store_in_ipfs(
        &self,
        local: &dyn CacheTier,
        key: &ghcache_core::CacheKey,
        budget: Duration,
        session: &Session,
    ) {
        let Some(ipfs) = &self.ipfs else {
            return;
        };
        let Ok(Lookup::Hit(entry)) = local.get(key).await else {
            return;
        };
        let Some(manifest) = ipfs.store(&entry, budget).await else {
            return;
        };
        session.note(&format!("added {} to ipfs", key.short()));
        let entry = ghcache_core::Entry {
            manifest,
            body: entry.body,
        };
        if let Err(err) = local.put(&entry).await {
            session.note(&format!("could not record the IPFS CID locally: {err}"));
        }
        #[cfg(feature = "p2p")]
        if let Some(peers) = &self.peers {
            if let Err(err) = peers.put(&entry).await {
                session.note(&format!("could not announce the IPFS CID: {err}"));
            }
        }
    }
}

/// How long a background `ghcache ipfs-store` may take: nobody waits for it.
#[cfg(feature = "ipfs")]
const BACKGROUND_STORE_BUDGET: Duration = Duration::from_secs(10);

/// Starts `ghcache ipfs-store` for `key`, detached, with this process's effective settings.
#[cfg(feature = "ipfs")]
pub(crate) fn spawn_ipfs_store(
    config: &Config,
    key: &ghcache_core::CacheKey,
    scope: &str,
) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt as _;
    let dir = config
        .cache_dir()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg("--cache-dir")
        .arg(dir)
        .args(["--ipfs", "--ipfs-api", &config.ipfs.api.value])
        .args(match config.ipfs.encrypt.value {
            Some(true) => &["--ipfs-encrypt"][..],
            Some(false) => &["--no-ipfs-encrypt"][..],
            None => &[][..],
        })
        .args(["ipfs-store", &key.to_hex(), "--scope", scope])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C meant for the next command does not cut it short.
        .process_group(0);
    command.spawn().map(|_| ())
}

/// `ghcache ipfs-store KEY --scope SCOPE` (internal): adds a stored entry to IPFS and announces
/// it. Started detached by `ghcache gh` after a GitHub answer; exits 0 whatever happens.
#[cfg(feature = "ipfs")]
pub fn ipfs_store(config: &Config, key: &str, scope: &str) -> Result<i32, Failure> {
    let key = ghcache_core::CacheKey::from_hex(key)
        .ok_or_else(|| Failure::Usage(format!("{key:?} is not a cache key")))?;
    let dir = config
        .cache_dir()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    runtime()?.block_on(async {
        let Ok(tier) = local::Tier::open(local_config(dir, config)).await else {
            return;
        };
        let session = Session::printing(config);
        let remote = Remote::connect(config, dir, scope, &session).await;
        remote
            .store_in_ipfs(&tier, &key, BACKGROUND_STORE_BUDGET, &session)
            .await;
        // Nobody waits for this process: it also unpins a few entries that can no longer be
        // served, so that the node does not grow forever.
        if let Some(ipfs) = &remote.ipfs {
            ipfs.sweep(config.max_stale.value, BACKGROUND_STORE_BUDGET)
                .await;
        }
        tier.close().await;
    });
    Ok(0)
}

/// How gh runs as the origin: printing what it writes to stdout as it comes (through the
/// user's pager on a terminal, as [`print`] does) and keeping answers up to `max_entry_size`
/// for the cache.
fn gh_config(config: &Config, request: &Request, session: &Session) -> ghcache_tier_gh::Config {
    let mut gh = ghcache_tier_gh::Config::new(config.gh.value.clone())
        .with_max_entry_size(config.largest_entry());
    if !session.capture {
        let sink = match request.input.output {
            ghcache_core::OutputMode::Tty { .. } => ghcache_tier_gh::user_pager()
                .map_or(ghcache_tier_gh::Sink::Stdout, ghcache_tier_gh::Sink::Pager),
            ghcache_core::OutputMode::Pipe => ghcache_tier_gh::Sink::Stdout,
        };
        gh = gh.printing_to(sink);
    }
    // Which token gh sends decides whether a stored ETag can earn a 304. Read here, on a miss
    // only: the hit path never needs it. gh reads this process's environment, so this does too.
    let env = |name: &str| std::env::var(name).ok();
    if let Some(hash) = context::token_hash(&env, &request.input.host) {
        gh = gh.with_token(hash);
    }
    gh
}

/// Writes the answer as gh would have: stdout (through the user's pager on a terminal), unless
/// gh's stdout was printed already as gh wrote it, then stderr.
fn print(output: &Output, request: &Request) {
    if !output.stdout_printed {
        let mut paged = false;
        if matches!(request.input.output, ghcache_core::OutputMode::Tty { .. }) {
            if let Some(pager) = ghcache_tier_gh::user_pager() {
                paged = page(&pager, &output.stdout);
            }
        }
        if !paged {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is the reader's choice, not an error to report.
            let _ = stdout.write_all(&output.stdout);
            let _ = stdout.flush();
        }
    }
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(&output.stderr);
    let _ = stderr.flush();
}

fn page(pager: &str, bytes: &[u8]) -> bool {
    let child = Command::new("sh")
        .arg("-c")
        .arg(pager)
        .stdin(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(bytes);
    }
    let _ = child.wait();
    true
}

async fn record(tier: &local::LazyTier, events: &[Event], session: &Session) {
    if let Err(err) = tier.record(events).await {
        session.note(&format!("could not update stats: {err}"));
    }
}

/// Whether `entry` answers `request` now by the rules the chain applies to every tier's
/// entries ([`ChainConfig::judge`]), for the paths that answer from the local tier before the
/// chain starts. `fence`: the fence of the request's repository as read now.
fn fresh_by_the_chain(
    config: &Config,
    entry: &ghcache_core::Entry,
    request: &Request,
    fence: Option<&ghcache_core::FenceState>,
) -> bool {
    let verdict = chain_config(config).judge(entry, request, fence, ghcache_core::now_ms());
    verdict == Verdict::Fresh
}

fn record_bypass(config: &Config) {
    let Ok(dir) = config.cache_dir() else {
        return;
    };
    // Bypasses are counted on a best-effort basis: they must never delay or break gh. An
    // append, without the index (unless the counters are due to be folded).
    let Ok(tier) = local::LazyTier::open(local_config(dir, config)) else {
        return;
    };
    let Ok(rt) = runtime() else { return };
    rt.block_on(async {
        let _ = tier.record(&[Event::Bypassed]).await;
        tier.close_before_exit().await;
    });
}

fn invalidate_after_write(
    config: &Config,
    repo: &str,
    changes: policy::Changes,
    scope: &str,
    session: &Session,
) {
    let Ok(dir) = config.cache_dir() else {
        return;
    };
    let Ok(rt) = runtime() else { return };
    // A write whose repository we cannot tell may have changed anything.
    let selector = Selector::of_write(repo, changes);
    let (what, clear) = match repo {
        "" => ("every repository".to_owned(), "ghcache clear".to_owned()),
        repo => (repo.to_owned(), format!("ghcache clear --repo {repo}")),
    };
    rt.block_on(async {
        let tier = local::Tier::open(local_config(dir, config)).await;
        // The fence moves even when the index cannot be opened or written (a full disk, a
        // read-only cache): from then on nothing older than this write is served.
        let dropped = match &tier {
            Ok(tier) => tier.invalidate(&selector).await.map_err(|e| e.to_string()),
            Err(_) => local::Fences::new(dir)
                .invalidate(&selector)
                .map(|_| 0)
                .map_err(|e| e.to_string()),
        };
        match dropped {
            Ok(n) => session.debug(&format!("write; dropped {n} cached entries of {what}"), "-"),
            Err(err) => session.warn(&format!(
                "could not record the write to {what} in the cache ({err}); cached answers \
                 about it may be out of date: run `{clear}` once the cache can be written"
            )),
        }
        // A refused dir refuses everything in it: its daemon socket and its identity (which
        // signs IPFS marks) are not used. A cache that is only read-only or damaged is this
        // user's, and its daemon and IPFS are told.
        let refused = matches!(
            &tier,
            Err(local::Error::Unsafe { .. } | local::Error::NotACache { .. })
        );
        // Peers drop theirs too, so the user sees their own write on every machine.
        let peers = if refused {
            None
        } else {
            p2p_tier(config, dir, scope, session).await
        };
        if let Some(peers) = peers {
            if let Err(err) = peers.invalidate(&selector).await {
                session.note(&format!("could not tell peers about the write: {err}"));
            }
        }
        // And IPFS copies of the old answers are marked out of date for everyone who reads them.
        #[cfg(feature = "ipfs")]
        if let Some(ipfs) = (!refused)
            .then(|| crate::ipfs::tier(config, dir, scope, None))
            .flatten()
        {
            ipfs.after_write(&selector, config.ipfs.deadline.value)
                .await;
        }
        if let Ok(tier) = tier {
            let _ = tier.record(&[Event::Bypassed]).await;
            tier.close().await;
        }
    });
}

/// The swarm, through the daemon of cache dir `dir`, which the caller accepted (the local tier
/// opened it: a refused dir refuses everything in it, its socket too); `None` at the cost of
/// one refused connect when no daemon runs, or when p2p is switched off.
///
/// # Errors
/// The warning to give, once, when the socket is not one to talk to (another user's process
/// listens on it, or its directory is not private): the command goes on without the swarm.
#[cfg(feature = "p2p")]
pub(crate) async fn p2p_client(
    config: &Config,
    dir: &std::path::Path,
    scope: &str,
) -> Result<Option<Arc<ghcache_tier_p2p::Tier>>, String> {
    if config.p2p.enabled.value == Some(false) {
        return Ok(None);
    }
    let scope_id = ghcache_core::ScopeId::of(scope);
    match ghcache_tier_p2p::Tier::connect(dir, scope_id, config.p2p.deadline.value).await {
        Ok(tier) => Ok(tier.map(Arc::new)),
        Err(err) => Err(format!("{err}; answering without the swarm")),
    }
}

#[cfg(feature = "p2p")]
async fn p2p_tier(
    config: &Config,
    dir: &std::path::Path,
    scope: &str,
    session: &Session,
) -> Option<Arc<dyn CacheTier>> {
    match p2p_client(config, dir, scope).await {
        Ok(tier) => tier.map(|tier| tier as Arc<dyn CacheTier>),
        Err(warning) => {
            session.warn(&warning);
            None
        }
    }
}

/// Built without the p2p tier.
#[cfg(not(feature = "p2p"))]
async fn p2p_tier(
    _: &Config,
    _: &std::path::Path,
    _: &str,
    _: &Session,
) -> Option<Arc<dyn CacheTier>> {
    None
}

fn exec(config: &Config, args: &[String]) -> Failure {
    let err = ghcache_tier_gh::exec(&config.gh.value, args);
    spawn_failure(config, &err)
}

/// Runs gh with arguments that are not all UTF-8 (`-R $'o/r\xff'`), exactly as given: they
/// cannot be part of a key, so the command is a bypass, whatever it is.
pub fn run_raw(config: &Config, args: &[std::ffi::OsString]) -> Failure {
    let session = Session::printing(config);
    if config.enabled.value {
        record_bypass(config);
        session.debug("bypass (arguments that are not UTF-8)", "-");
    } else {
        session.debug("disabled", "-");
    }
    let err = ghcache_tier_gh::exec(&config.gh.value, args);
    spawn_failure(config, &err)
}

pub(crate) fn spawn_failure(config: &Config, err: &std::io::Error) -> Failure {
    Failure::Runtime(format!(
        "cannot run `{}`: {err} (install gh, or set GH_CACHE_GH to its path)",
        config.gh.value.to_string_lossy()
    ))
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))
}

fn warn(line: &str) {
    let _ = writeln!(std::io::stderr(), "ghcache: warning: {line}");
}

/// How one command's answer reaches its caller: printed as gh would have printed it (the
/// binary), or kept with ghcache's warnings for a program that called the library.
pub(crate) struct Session {
    /// Keep answers and warnings instead of printing them.
    capture: bool,
    debug: Debug,
    warnings: std::sync::Mutex<Vec<String>>,
    /// Every warning given so far: each is given once per command, however many of its parts
    /// (its own lookup, gh's HTTP level, the write that follows) ran into the same thing.
    given: std::sync::Mutex<std::collections::HashSet<String>>,
    /// What the command may wait on each remote tier in all: its own lookup and, through gh's
    /// HTTP level, every one of gh's requests share one deadline (DESIGN.md invariant 5).
    #[cfg_attr(not(feature = "p2p"), allow(dead_code))]
    pub(crate) p2p_budget: Arc<layers::Budget>,
    #[cfg_attr(not(feature = "ipfs"), allow(dead_code))]
    pub(crate) ipfs_budget: Arc<layers::Budget>,
}

impl Session {
    /// Answers are printed, warnings go to stderr.
    pub(crate) fn printing(config: &Config) -> Session {
        Session::new(config, false)
    }

    /// Answers and warnings are kept for the caller.
    pub(crate) fn capturing(config: &Config) -> Session {
        Session::new(config, true)
    }

    fn new(config: &Config, capture: bool) -> Session {
        Session {
            capture,
            debug: Debug {
                on: config.debug.value,
                started: Instant::now(),
            },
            warnings: std::sync::Mutex::new(Vec::new()),
            given: std::sync::Mutex::new(std::collections::HashSet::new()),
            p2p_budget: layers::Budget::new(config.p2p.deadline.value),
            ipfs_budget: layers::Budget::new(config.ipfs.deadline.value),
        }
    }

    /// The remote tiers' budgets, for the HTTP level of this command's gh.
    pub(crate) fn budgets(&self) -> crate::http::Budgets {
        crate::http::Budgets {
            p2p: self.p2p_budget.clone(),
            ipfs: self.ipfs_budget.clone(),
        }
    }

    /// Prints `output` as gh would have, unless answers are kept.
    fn answer(&self, output: &Output, request: &Request) {
        if !self.capture {
            print(output, request);
        }
    }

    /// One warning: on stderr, or kept; not again if it was given already.
    pub(crate) fn warn(&self, line: &str) {
        if let Ok(mut given) = self.given.lock() {
            if !given.insert(line.to_owned()) {
                return;
            }
        }
        if self.capture {
            if let Ok(mut kept) = self.warnings.lock() {
                kept.push(line.to_owned());
            }
        } else {
            warn(line);
        }
    }

    /// The warnings kept so far.
    pub(crate) fn take_warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }

    /// A debug line (`--debug`): always on stderr, where the user who asked for it looks.
    fn debug(&self, what: &str, key: &str) {
        self.debug.line(what, key);
    }

    /// A debug notice that is not about one request's answer (a counter not updated, a CID
    /// not announced): on stderr under the same switch as [`Session::debug`].
    pub(crate) fn note(&self, line: &str) {
        self.debug.note(line);
    }
}

/// One line per request on stderr when the user asked for it.
struct Debug {
    on: bool,
    started: Instant,
}

impl Debug {
    fn line(&self, what: &str, key: &str) {
        if self.on {
            let ms = self.started.elapsed().as_secs_f64() * 1000.0;
            let _ = writeln!(std::io::stderr(), "ghcache: {what} key={key} {ms:.1}ms");
        }
    }

    fn note(&self, line: &str) {
        if self.on {
            let _ = writeln!(std::io::stderr(), "ghcache: {line}");
        }
    }
}
