//! `ghcache gh ...`: the cached gh. The hot path: classify, key, local lookup, print.

use std::sync::Arc;

use ghcache_core::policy::{self, Decision};
use ghcache_core::{
    CacheTier, Chain, Event, KeyInput, Lookup, Output, Recorder, Request, Selector, Source,
    TierError, Verdict,
};
use ghcache_tier_local as local;

use crate::command::Command;
use crate::config::{Config, Env};
use crate::context;
use crate::error::{spawn_failure, Failure};
use crate::http;
use crate::session::{runtime, Session};
use crate::tiers::{self, chain_config, local_config, Tiers};
use crate::trigger;

const CORRUPT_WARNING: &str =
    "a cached answer failed its integrity check and was dropped; answering from GitHub";

/// Runs gh's `args` through the cache, printing as gh would, and returns the exit code to exit
/// with. Commands that must run gh untouched replace this process with gh.
pub fn run(config: &Config, env: Env<'_>, args: Vec<String>) -> Result<i32, Failure> {
    let session = Session::printing(config);
    let command = Command::classify(args);
    match answer(config, env, &command, &session)? {
        Outcome::Answered { output, .. } => Ok(output.exit_code),
        // gh with the terminal, its API requests through the HTTP level; or gh itself.
        Outcome::RunGh(_) => match http::run_attached(config, env, &command, None) {
            Some(attached) => attached.code,
            None => Err(exec(config, command.args())),
        },
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

/// Answers gh's `command` through the cache. `session` says whether answers are printed (the
/// binary) or kept for the caller (the library).
pub(crate) fn answer(
    config: &Config,
    env: Env<'_>,
    command: &Command,
    session: &Session,
) -> Result<Outcome, Failure> {
    if !config.enabled.value {
        session.debug("disabled", "-");
        return Ok(Outcome::RunGh("ghcache is switched off"));
    }
    // Before any answer, gh's own requests through the HTTP level included: the job's event
    // is a write that may be newer than what is cached.
    trigger::apply_once(config, env, session);
    let args = command.args();
    match command.decision() {
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
            let mut invalidated = Vec::new();
            let output = if session.captures() {
                ghcache_tier_gh::run_captured(&config.gh.value, args)
                    .map_err(|e| spawn_failure(config, &e))?
            } else {
                let code = match http::run_attached(config, env, command, Some(&repo)) {
                    Some(attached) => {
                        invalidated = attached.invalidated;
                        attached.code?
                    }
                    None => ghcache_tier_gh::run_inherited(&config.gh.value, args)
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
            for repo in std::iter::once(repo).chain(also) {
                let selector = Selector::of_write(&repo, write.changes);
                // Once per write: a second invalidation of what gh's write requests dropped
                // as they passed would make peers wait out the clock margin after the first.
                if invalidated.iter().any(|done| done.includes(&selector)) {
                    session.debug("write; gh's write requests dropped it already", "-");
                    record_bypass(config);
                } else {
                    invalidate_after_write(config, &repo, selector, &scope, session);
                }
            }
            Ok(Outcome::Answered {
                output,
                source: None,
            })
        }
        Decision::Cache(cacheable) => {
            // Fail early and clearly rather than silently running without a tier.
            tiers::check(config)?;
            let mut request = build_request(config, env, args.to_vec(), cacheable);
            let class = cacheable.class;
            if let Some((output, source)) = quick_hit(config, &mut request, class, session) {
                return Ok(Outcome::Answered {
                    output,
                    source: Some(source),
                });
            }
            let applies = http::applies(config, command);
            let served = serve(config, request, class, applies, session);
            let (output, source) = runtime()?.block_on(served)?;
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

/// A fresh local hit, answered without the index and without an async runtime: the record of
/// the key, the fence, the body (see `local::Reader`). `None` leaves the request to [`serve`],
/// which also answers everything this path cannot settle. The daemon's report of the writes
/// it hears is read only for an entry past its TTL (of TTL class `class`), and gives `request`
/// its heard allowance for the rest of its way.
fn quick_hit(
    config: &Config,
    request: &mut Request,
    class: policy::TtlClass,
    session: &Session,
) -> Option<(Output, Source)> {
    let dir = config.cache_dir().ok()?;
    let local_config = local_config(dir, config);
    let reader = local::Reader::new(&local_config);
    let found = reader.get(&request.key).found()?;
    // The chain's own rules, under the fence as the reader found it: what the chain would not
    // serve, this path does not either.
    let mut verdict = judged_by_the_chain(config, &found.entry, request, Some(&found.fence));
    if verdict == Verdict::Stale {
        crate::heard::allow(config, dir, request, class);
        if request.heard.is_some() {
            verdict = judged_by_the_chain(config, &found.entry, request, Some(&found.fence));
        }
    }
    let source = local_source(verdict)?;
    let used = found.used;
    let output = Output::from(found.entry);
    session.answer(&output, request);
    session.debug(&source.label(), &request.key.short());
    match reader.record(used, &[Event::Hit(local::NAME)]) {
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
    Some((output, source))
}

/// Where a local entry judged `verdict` answers from; `None` when it does not answer.
fn local_source(verdict: Verdict) -> Option<Source> {
    match verdict {
        Verdict::Fresh => Some(Source::Tier(local::NAME)),
        Verdict::Heard => Some(Source::Heard(local::NAME)),
        Verdict::Stale | Verdict::Refused => None,
    }
}

/// Answers `request` from the tiers or GitHub; returns the answer (printed already when the
/// session prints) and where it came from.
/// `http_applies`: whether gh's API requests go through the HTTP level (see [`http::applies`]).
/// `class`: the request's TTL class, whose heard TTL applies where the daemon hears its writes.
async fn serve(
    config: &Config,
    mut request: Request,
    class: policy::TtlClass,
    http_applies: bool,
    session: &Session,
) -> Result<(Output, Source), Failure> {
    let dir = config
        .cache_dir()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    // Past here an entry of any tier may be past its TTL: the chain judges under the heard TTL
    // too, where writes are heard.
    crate::heard::allow(config, dir, &mut request, class);
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
            Ok(Lookup::Hit(entry)) => {
                let verdict = tier
                    .fences()
                    .state(&request.repo, request.resource)
                    .map_or(Verdict::Refused, |fence| {
                        judged_by_the_chain(config, &entry, &request, Some(&fence))
                    });
                if let Some(source) = local_source(verdict) {
                    let output = Output::from(entry);
                    session.answer(&output, &request);
                    session.debug(&source.label(), &request.key.short());
                    record(tier, &[Event::Hit(local::NAME)], session).await;
                    answered = Some((output, source));
                }
            }
            Err(TierError::Corrupt { .. }) => {
                early.push(Event::Corrupt(local::NAME));
                session.warn(CORRUPT_WARNING);
            }
            _ => {}
        }
    }
    if let Some(answer) = answered {
        finish(tier, session).await;
        return Ok(answer);
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
    crate::budget::prefer_stale(config, dir, &|name| std::env::var(name).ok(), &mut request);
    let recorder = Arc::new(Recorder::default());
    // gh's own API requests go through the HTTP level while it runs.
    let origin = Arc::new(http::LazyLevelOrigin::new(
        gh_config(config, &request, session),
        http::LevelStart {
            config: config.clone(),
            applies: http_applies,
            local: tier.clone(),
            scope: request.input.scope.clone(),
            context_repo: request.repo.clone(),
            purpose: http::Purpose::Answer(request.ttl),
            budgets: session.budgets().clone(),
        },
    ));
    let mut chain = Chain::new(origin.clone(), recorder.clone()).with_config(chain_config(config));
    let remote = match &tier {
        Some(tier) => {
            let about = Some((request.repo.as_str(), request.resource));
            let (remote, warning) =
                Tiers::connect_about(config, dir, &request.input.scope, about).await;
            if let Some(warning) = warning {
                session.warn(&warning);
            }
            chain = chain
                .with_fence(Arc::new(tier.fences().clone()))
                .with_tier(remote.local_store(tier));
            for lookup in remote.lookups(config, session.budgets()) {
                chain = chain.with_tier(lookup);
            }
            remote
        }
        None => Tiers::default(),
    };
    // Whatever answers now (another tier, GitHub) is stored here: without a daemon to store it,
    // the index opens while the remote tiers or gh are waited on, not after.
    let resolved = match &tier {
        Some(tier) if !remote.stores_through_daemon() => {
            tokio::join!(chain.resolve(&request), tier.open_for_store()).0
        }
        _ => chain.resolve(&request).await,
    };
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

/// How gh runs as the origin: printing what it writes to stdout as it comes (through the
/// user's pager on a terminal, as [`print`] does) and keeping answers up to `max_entry_size`
/// for the cache.
fn gh_config(config: &Config, request: &Request, session: &Session) -> ghcache_tier_gh::Config {
    let mut gh = ghcache_tier_gh::Config::new(config.gh.value.clone())
        .with_max_entry_size(config.largest_entry());
    if !session.captures() {
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

async fn record(tier: &local::LazyTier, events: &[Event], session: &Session) {
    if let Err(err) = tier.record(events).await {
        session.note(&format!("could not update stats: {err}"));
    }
}

/// How `entry` stands for `request` now by the rules the chain applies to every tier's
/// entries ([`ChainConfig::judge`](ghcache_core::ChainConfig::judge)), for the paths that
/// answer from the local tier before the chain starts. `fence`: the fence of the request's
/// repository as read now.
fn judged_by_the_chain(
    config: &Config,
    entry: &ghcache_core::Entry,
    request: &Request,
    fence: Option<&ghcache_core::FenceState>,
) -> Verdict {
    chain_config(config).judge(entry, request, fence, ghcache_core::now_ms())
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

/// Drops what a write to `repo` changed (`selector`: everything when the repository is not
/// proven) here, at the peers and in IPFS.
fn invalidate_after_write(
    config: &Config,
    repo: &str,
    selector: Selector,
    scope: &str,
    session: &Session,
) {
    let Ok(dir) = config.cache_dir() else {
        return;
    };
    let Ok(rt) = runtime() else { return };
    // One time for here and for the peers: every machine knows the invalidation by the same id.
    let at_ms = ghcache_core::now_ms();
    let (what, clear) = match repo {
        "" => ("every repository".to_owned(), "ghcache clear".to_owned()),
        repo => (repo.to_owned(), format!("ghcache clear --repo {repo}")),
    };
    rt.block_on(async {
        let tier = local::Tier::open(local_config(dir, config)).await;
        // The fence moves even when the index cannot be opened or written (a full disk, a
        // read-only cache): from then on nothing older than this write is served.
        let dropped = match &tier {
            Ok(tier) => tier
                .invalidate_at(&selector, at_ms)
                .await
                .map_err(|e| e.to_string()),
            Err(_) => local::Fences::new(dir)
                .invalidate_at(&selector, at_ms)
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
        // Peers drop theirs too, so the user sees their own write on every machine; and IPFS
        // copies of the old answers are marked out of date for everyone who reads them.
        if !refused {
            let (remote, warning) = Tiers::connect(config, dir, scope).await;
            if let Some(warning) = warning {
                session.warn(&warning);
            }
            remote
                .invalidate(&selector, at_ms, config, |err| {
                    session.note(&format!("could not tell peers about the write: {err}"));
                })
                .await;
        }
        if let Ok(tier) = tier {
            let _ = tier.record(&[Event::Bypassed]).await;
            tier.close().await;
        }
    });
}

/// `ghcache ipfs-store KEY --scope SCOPE` (internal): adds a stored entry to IPFS and announces
/// it. Started detached by `ghcache gh` after a GitHub answer; exits 0 whatever happens.
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
        let (remote, warning) = Tiers::connect(config, dir, scope).await;
        if let Some(warning) = warning {
            session.warn(&warning);
        }
        remote
            .store_in_background(config, &tier, &key, &session)
            .await;
        tier.close().await;
    });
    Ok(0)
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
