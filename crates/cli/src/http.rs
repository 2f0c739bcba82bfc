//! The HTTP level in the CLI (see the `ghcache-http` crate): for every gh that ghcache runs (on
//! a miss, for a write, for a command that is not cached), a socket that gh sends each of its API
//! requests into, served by this process for that gh's lifetime. A request is answered from the
//! same tiers as outputs (this machine, the swarm, IPFS), revalidated, or passed on to GitHub;
//! a write drops what it changes, at both levels, here and on the peers.
//!
//! Off with `GH_CACHE_HTTP=0` (`[http] enabled = false`), with ghcache itself, and for the gh
//! commands that change gh's own configuration ([`Command::changes_gh_config`]): what they wrote
//! into the run's configuration directory would be lost.
//!
//! What the level did is counted in the local tier's journal (`<cache dir>/http-stats`, see
//! [`counts`]), apart from the output counters, for `ghcache stats`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ghcache_core::policy::TtlClass;
use ghcache_core::{CacheTier, Selector};
use ghcache_http as http;
use ghcache_tier_local as local;

use crate::command::Command;
use crate::config::{Config, Env};
use crate::context;
use crate::error::{spawn_failure, Failure};
use crate::session::{runtime, Session};
use crate::tiers::{self, local_config, Budgets, Tiers};

/// The most answers of one gh run that are added to IPFS afterwards, one background process
/// each.
const IPFS_ADDS_MAX: usize = 16;

/// Whether the gh that runs for `command` goes through the HTTP level.
pub(crate) fn applies(config: &Config, command: &Command) -> bool {
    config.enabled.value && config.http.enabled.value && !command.changes_gh_config()
}

/// What a gh run is for, which decides how old an answer the HTTP level may give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A command's answer that will be stored fresh for this long (a miss of the output
    /// level): gh's requests are not answered older than that, or the output would outlive its
    /// TTL; and a stale answer when GitHub fails is the output level's call, which knows it is
    /// one, not the HTTP level's, whose answer would be stored as new.
    Answer(std::time::Duration),
    /// A write: fresh answers only, never one on its TTL (gh acts on what it reads).
    Write,
    /// A command that is not cached: fresh answers, and stale ones when GitHub fails.
    Bypass,
}

/// The HTTP level of one gh run; nothing when it is off or could not be set up (gh then runs
/// as it is).
pub(crate) struct Run {
    session: Option<http::Session>,
    dir: Option<PathBuf>,
    ipfs_adds: bool,
    /// Why the level is off, for `--debug`, told in [`Run::finish`].
    note: Option<String>,
    /// What to warn the user of, in [`Run::finish`] (a daemon socket that was not used).
    warning: Option<String>,
    /// Cached entries that gh's writes dropped as they passed, for `--debug`.
    dropped: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// What gh's writes dropped as they passed (here, at the peers, in IPFS).
    invalidated: Arc<Mutex<Vec<Selector>>>,
}

impl Run {
    /// Starts serving the socket for a gh that asks as `scope`, runs for `purpose`, for a
    /// command about `context_repo` (empty: none known); `applies` is [`applies`] of the
    /// command. `local` is the command's local tier, if it opened one already. Call inside the
    /// runtime that will run gh.
    pub(crate) async fn start(
        config: &Config,
        applies: bool,
        local: Option<Arc<local::LazyTier>>,
        scope: &str,
        context_repo: &str,
        purpose: Purpose,
        budgets: &Budgets,
    ) -> Run {
        let off = Run {
            session: None,
            dir: None,
            ipfs_adds: false,
            note: None,
            warning: None,
            dropped: None,
            invalidated: Arc::default(),
        };
        if !applies {
            return off;
        }
        let Ok(dir) = config.cache_dir() else {
            return off;
        };
        let local = local.or_else(|| {
            local::LazyTier::open(local_config(dir, config))
                .ok()
                .map(Arc::new)
        });
        let mut settings = http::Config::new(http::Scope::Fixed(scope.to_owned()));
        let ttl = match purpose {
            Purpose::Answer(ttl) => config.ttl(TtlClass::Api).min(ttl),
            Purpose::Write | Purpose::Bypass => config.ttl(TtlClass::Api),
        };
        settings.rest_ttl = ttl;
        settings.graphql_ttl = ttl;
        settings.clock_skew = config.clock_skew.value;
        settings.max_stale = match purpose {
            Purpose::Bypass => config.max_stale.value,
            Purpose::Answer(_) | Purpose::Write => std::time::Duration::ZERO,
        };
        settings.max_body = http::Config::DEFAULT_MAX_BODY
            .min(config.max_entry_size.value)
            .min(config.max_size.value);
        settings.context_repo = Some(context_repo.to_owned()).filter(|r| !r.is_empty());
        settings.fresh_only = purpose == Purpose::Write;
        settings.debug = config.debug.value;
        let settings_job_token = context::declared_job_token(
            &|name| std::env::var(name).ok(),
            &context::host(&|name| std::env::var(name).ok()),
        );
        settings.job_token = settings_job_token.clone();
        settings.rate_limit_wait = config.rate_limit_wait.value;
        settings.rate_limit_reserve = config.rate_limit_reserve.value;
        // gh reads this process's environment for its proxy: so does the way to GitHub.
        let upstream = http::Upstream::from_env(&|name| std::env::var(name).ok());
        let mut level = http::Level::new(settings, Arc::new(upstream));
        if let Some(local) = &local {
            level = level
                .with_fence(Arc::new(local.fences().clone()))
                .with_tier(local.clone() as Arc<dyn CacheTier>);
        }
        // A cache dir that the local tier refused (another user's, or one others can write) is
        // refused whole: its daemon's socket and the identity in it are not used either.
        let (remote, warning) = match &local {
            Some(_) => Tiers::connect(config, dir, scope).await,
            None => (Tiers::default(), None),
        };
        for lookup in remote.lookups(config, budgets) {
            level = level.with_tier(lookup);
        }
        let ipfs_adds = remote.adds_to_ipfs();
        let writable = local.as_ref().is_some_and(|l| !l.is_read_only());
        if writable {
            let mut gate = http::Gate::new(
                Arc::new(local::BookFile::in_dir(dir)),
                settings_job_token,
                config.rate_limit_wait.value,
            )
            .with_in_flight(
                Arc::new(local::InFlightFiles::in_dir(dir)),
                usize::try_from(config.rate_limit_in_flight.value).unwrap_or(usize::MAX),
            );
            if let Some(share) = remote.budget_share() {
                gate = gate.with_share(share);
            }
            level = level.with_gate(gate);
        }
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let invalidated = Arc::<Mutex<Vec<Selector>>>::default();
        let drops = Drops {
            dir: dir.to_path_buf(),
            local,
            remote,
            config: config.clone(),
            dropped: dropped.clone(),
            invalidated: invalidated.clone(),
        };
        let level = Arc::new(level.with_invalidate(Arc::new(drops)));
        let user_config = context::gh_config_dir(&|name| std::env::var(name).ok());
        let temp = std::env::temp_dir();
        let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
        let mut bases: Vec<&Path> = runtime_dir.iter().map(PathBuf::as_path).collect();
        // A long TMPDIR may not hold a socket path: /tmp then.
        bases.extend([temp.as_path(), Path::new("/tmp")]);
        match http::Session::start(level, &bases, user_config.as_deref()) {
            Ok(session) => Run {
                session: Some(session),
                // Counted only in a directory that is a cache this user may write.
                dir: writable.then(|| dir.to_path_buf()),
                ipfs_adds,
                note: None,
                warning,
                dropped: Some(dropped),
                invalidated,
            },
            Err(err) => Run {
                note: Some(format!("running gh without the HTTP level: {err}")),
                warning,
                ..off
            },
        }
    }

    /// What gh's writes dropped as they passed, so far.
    pub(crate) fn invalidated(&self) -> Vec<Selector> {
        self.invalidated
            .lock()
            .map(|list| list.clone())
            .unwrap_or_default()
    }

    /// The variables that point gh at the socket; none when the level is off.
    pub(crate) fn gh_env(&self) -> Vec<(OsString, OsString)> {
        self.session
            .as_ref()
            .map(http::Session::gh_env)
            .unwrap_or_default()
    }

    /// Stops serving (gh has exited), tells the user what the level had to say, counts what it
    /// did, and adds what it fetched to IPFS in the background. Afterwards nothing of the run
    /// holds the tiers it was given.
    pub(crate) async fn finish(self, config: &Config, gh: &Session) {
        if let Some(note) = &self.note {
            gh.note(note);
        }
        if let Some(warning) = &self.warning {
            gh.warn(warning);
        }
        let Some(session) = self.session else {
            return;
        };
        let level = session.level().clone();
        let counts = session.finish().await;
        let dropped = self
            .dropped
            .as_ref()
            .map_or(0, |n| n.load(std::sync::atomic::Ordering::Relaxed));
        if dropped > 0 {
            gh.debug(
                &format!("gh's write requests; dropped {dropped} cached entries as they passed"),
                "-",
            );
        }
        for line in level.take_warnings() {
            gh.warn(&line);
        }
        if let Some(gate) = level.gate() {
            gate.flush().await;
        }
        let fetched = if self.ipfs_adds {
            level.fetched()
        } else {
            Vec::new()
        };
        drop(level);
        if let Some(dir) = &self.dir {
            if let Err(err) = add_counts(dir, &counts) {
                gh.note(&format!("could not count the HTTP level's requests: {err}"));
            }
        }
        tiers::add_to_ipfs_later(config, fetched.iter().take(IPFS_ADDS_MAX), gh);
    }
}

/// gh as a command's origin, its API requests through the HTTP level, which is set up when gh
/// is about to run and not before: an answer from the swarm or IPFS does not wait for the
/// level's socket, its gh configuration and its own connection to the daemon.
pub(crate) struct LazyLevelOrigin {
    gh: ghcache_tier_gh::Config,
    start: LevelStart,
    run: tokio::sync::Mutex<Option<Run>>,
}

/// What [`Run::start`] is given, owned until gh is about to run.
pub(crate) struct LevelStart {
    pub(crate) config: Config,
    /// [`applies`] of the command.
    pub(crate) applies: bool,
    pub(crate) local: Option<Arc<local::LazyTier>>,
    pub(crate) scope: String,
    pub(crate) context_repo: String,
    pub(crate) purpose: Purpose,
    pub(crate) budgets: Budgets,
}

impl LazyLevelOrigin {
    /// gh as `gh` says (without the level's variables), with the level `start` describes.
    pub(crate) fn new(gh: ghcache_tier_gh::Config, start: LevelStart) -> LazyLevelOrigin {
        LazyLevelOrigin {
            gh,
            start,
            run: tokio::sync::Mutex::new(None),
        }
    }

    /// The level of the gh that ran, if one did, for [`Run::finish`].
    pub(crate) async fn take_run(&self) -> Option<Run> {
        self.run.lock().await.take()
    }
}

#[async_trait]
impl ghcache_core::Origin for LazyLevelOrigin {
    async fn fetch(
        &self,
        request: &ghcache_core::Request,
        prior: Option<&ghcache_core::Entry>,
    ) -> Result<ghcache_core::Fetched, ghcache_core::OriginError> {
        let env = {
            let mut run = self.run.lock().await;
            if run.is_none() {
                let s = &self.start;
                let started = Run::start(
                    &s.config,
                    s.applies,
                    s.local.clone(),
                    &s.scope,
                    &s.context_repo,
                    s.purpose,
                    &s.budgets,
                )
                .await;
                *run = Some(started);
            }
            run.as_ref().map(Run::gh_env).unwrap_or_default()
        };
        let gh = ghcache_tier_gh::Origin::new(self.gh.clone().with_env(env));
        ghcache_core::Origin::fetch(&gh, request, prior).await
    }
}

/// Runs gh attached to the terminal (prompts, signals, exit code as with plain gh) with its API
/// requests through the HTTP level: for a command that is not cached (`write_about` is
/// `None`), or a write about a repository (the one its classification proved). `None` when the
/// level does not apply: the caller runs gh as it would have.
///
/// # Errors
/// gh could not be started.
pub(crate) fn run_attached(
    config: &Config,
    env: Env<'_>,
    command: &Command,
    write_about: Option<&str>,
) -> Option<Attached> {
    if !applies(config, command) {
        return None;
    }
    let args = command.args();
    let runtime = runtime().ok()?;
    let gh = Session::printing(config);
    let host = context::host(env);
    let scope = context::scope(env, config.scope.value.as_deref(), &host);
    // A command that is not cached proves no repository: what it writes through GraphQL (an
    // extension, an alias, `gh project`) may be about any, so it drops everything.
    let (repo, purpose) = match write_about {
        Some(repo) => (repo.to_owned(), Purpose::Write),
        None => (String::new(), Purpose::Bypass),
    };
    Some(runtime.block_on(async {
        let run = Run::start(config, true, None, &scope, &repo, purpose, gh.budgets()).await;
        let code = ghcache_tier_gh::run_attached(&config.gh.value, args, &run.gh_env()).await;
        let invalidated = run.invalidated();
        run.finish(config, &gh).await;
        Attached {
            code: code.map_err(|e| spawn_failure(config, &e)),
            invalidated,
        }
    }))
}

/// How gh ran with the HTTP level.
pub(crate) struct Attached {
    /// gh's exit code.
    pub(crate) code: Result<i32, Failure>,
    /// What gh's writes dropped as they passed: a write command's own invalidation afterwards
    /// is not sent again for what these already dropped.
    pub(crate) invalidated: Vec<Selector>,
}

/// What a write that passes through the HTTP level drops: as `ghcache gh` does after a write
/// command, the answers on this machine (the fence moves even when the index cannot be
/// written), the peers', and the IPFS copies'.
struct Drops {
    dir: PathBuf,
    local: Option<Arc<local::LazyTier>>,
    remote: Tiers,
    config: Config,
    /// Entries dropped on this machine so far: the command's own invalidation after gh comes
    /// later and finds them gone, so the debug line says what these dropped.
    dropped: Arc<std::sync::atomic::AtomicU64>,
    /// What was dropped, told to [`Run::invalidated`].
    invalidated: Arc<Mutex<Vec<Selector>>>,
}

#[async_trait]
impl http::Invalidate for Drops {
    async fn invalidate(&self, selector: &Selector) {
        // One time for here and for the peers: every machine then knows this invalidation by
        // the same id, and takes the answers made after it by a peer that saw it.
        let at_ms = ghcache_core::now_ms();
        let dropped = match &self.local {
            Some(local) => local.invalidate_at(selector, at_ms).await.map(|n| {
                self.dropped
                    .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }),
            None => Err(ghcache_core::TierError::Unavailable {
                tier: local::NAME,
                reason: "not open".into(),
            }),
        };
        if dropped.is_err() {
            // Then nothing older than the write is served, even if nothing could be dropped.
            let _ = local::Fences::new(&self.dir).invalidate_at(selector, at_ms);
        }
        self.remote
            .invalidate(selector, at_ms, &self.config, drop)
            .await;
        if let Ok(mut list) = self.invalidated.lock() {
            list.push(selector.clone());
        }
    }
}

/// The HTTP level's counters since the cache was made (all zero when there are none yet), from
/// the local tier's journal.
pub(crate) fn counts(dir: &Path) -> http::Counts {
    http::Counts::from_fields(local::http_counters(dir))
}

/// Adds `counts` to the journal's HTTP level counters: one small read and write in place, once
/// per gh run.
fn add_counts(dir: &Path, counts: &http::Counts) -> std::io::Result<()> {
    if *counts == http::Counts::default() {
        return Ok(());
    }
    local::add_http_counters(dir, &counts.fields())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_that_change_gh_config_run_without_the_level() {
        let env = |_: &str| None;
        let config = Config::load(&env, &crate::config::Flags::default());
        let Ok(config) = config else {
            panic!("default config");
        };
        let args = |line: &str| {
            Command::classify(
                line.split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            )
        };
        assert!(applies(&config, &args("pr status")));
        for line in [
            "auth login",
            "config set editor vim",
            "alias set co 'pr checkout'",
            "ext install x/y",
        ] {
            assert!(!applies(&config, &args(line)), "{line}");
        }
    }

    #[test]
    fn counts_add_up_across_runs_and_a_torn_file_reads_as_zero() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut one = http::Counts {
            revalidated: 1,
            streamed_bytes: 10,
            ..http::Counts::default()
        };
        one.hits.insert(local::NAME.to_owned(), 2);
        add_counts(dir.path(), &one)?;
        add_counts(dir.path(), &one)?;
        let total = counts(dir.path());
        assert_eq!(
            (
                total.hits_of(local::NAME),
                total.revalidated,
                total.streamed_bytes
            ),
            (4, 2, 20)
        );
        std::fs::write(
            dir.path().join("http-stats"),
            "ghcache-http-stats 1 hits_lo",
        )?;
        assert_eq!(counts(dir.path()), http::Counts::default());
        Ok(())
    }
}
