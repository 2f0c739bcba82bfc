//! ghcache as a library: run `gh` commands through the cache from a program.
//!
//! The `ghcache` binary is a thin shell over this crate. A [`Cache`] is built from the
//! environment and the config file, as the binary does ([`Cache::from_env`]), or with a
//! [`Builder`]; [`Cache::run`] answers a gh command from the nearest tier that holds a fresh
//! copy (this machine's disk, the swarm through this cache dir's daemon, IPFS), else from
//! GitHub through the real `gh`, and returns what gh printed. Tiers are cargo features:
//! `p2p` (the swarm; libp2p) and `ipfs` (a Kubo node; no libp2p), both on by default.
//!
//! ```no_run
//! # fn main() -> Result<(), ghcache::Error> {
//! let cache = ghcache::Cache::from_env()?;
//! match cache.run(["gh", "repo", "view", "cli/cli", "--json", "name"])? {
//!     ghcache::Answer::Answered(answer) => {
//!         print!("{}", String::from_utf8_lossy(&answer.stdout));
//!         println!("(from {}, exit code {})", answer.source, answer.exit_code);
//!     }
//!     // Interactive or not known to be read-only: run gh yourself, with the terminal.
//!     ghcache::Answer::RunGh { reason } => println!("run gh directly: {reason}"),
//!     _ => {}
//! }
//! print!("{}", cache.stats()?);
//! # Ok(())
//! # }
//! ```

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

// The binary's own modules: public for it, not part of the library's API. The tiers beyond
// this machine are wired in `tiers`, the one module that looks at the tier features (the p2p
// tier's node, `ghcache daemon`, is one of its rooms).
mod budget;
mod command;
#[doc(hidden)]
pub mod config;
#[doc(hidden)]
pub mod context;
mod error;
#[doc(hidden)]
pub mod gh;
mod heard;
mod http;
mod session;
#[doc(hidden)]
pub mod shell;
#[doc(hidden)]
pub mod stats;
#[doc(hidden)]
pub mod tiers;
mod trigger;

pub use error::{Error, Failure};
pub use ghcache_tier_local::Stats;
pub use stats::Report;

use crate::command::Command;
use crate::config::{Config, Flags};
use crate::gh::Outcome;
use crate::session::Session;

/// The cache, as one user on one machine sees it: settings, cache dir, tiers.
///
/// Cheap to make: nothing is opened until [`Cache::run`], [`Cache::stats`] or
/// [`Cache::clear`] needs it, and each call opens and closes what it uses, so that many
/// processes (and `ghcache` commands) can share the cache dir.
#[derive(Debug, Clone)]
pub struct Cache {
    config: Config,
    /// The environment the cache was made in: what gh would see (tokens, `GH_REPO`, ...).
    env: Vec<(String, String)>,
}

/// What [`Cache::run`] did with a command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// Answered: what gh printed (or would have), from a tier or from GitHub.
    Answered(Answered),
    /// gh must run with the user's terminal, untouched: the command is interactive, not known
    /// to be read-only, or ghcache is switched off. The caller runs `gh` itself.
    RunGh {
        /// Why, in a few words.
        reason: String,
    },
}

/// A command's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Answered {
    /// What gh printed on stdout.
    pub stdout: Vec<u8>,
    /// What gh printed on stderr.
    pub stderr: Vec<u8>,
    /// gh's exit code.
    pub exit_code: i32,
    /// Where the answer came from.
    pub source: AnsweredBy,
    /// ghcache's own warnings (a read-only cache, a stale answer served while GitHub failed):
    /// the binary prints these on stderr after `ghcache: warning: `.
    pub warnings: Vec<String>,
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnsweredBy {
    /// A fresh entry from the named tier: `local`, `p2p`, `ipfs`.
    Tier(&'static str),
    /// GitHub, through gh.
    GitHub,
    /// A stale entry that GitHub confirmed with a `304 Not Modified` (free against the rate
    /// limit).
    Revalidated,
    /// A stale entry, served because GitHub failed.
    Stale,
    /// gh failed and there was nothing to fall back to: its output and exit code as they were.
    GitHubFailed,
    /// A write: gh ran it (output as gh printed it), and the cache dropped what it changes.
    Write,
}

impl AnsweredBy {
    /// An answer from this machine's disk: the tier every build has.
    pub const LOCAL: AnsweredBy = AnsweredBy::Tier(ghcache_tier_local::NAME);
}

impl fmt::Display for AnsweredBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnsweredBy::Tier(tier) => write!(f, "the {tier} tier"),
            AnsweredBy::GitHub => f.write_str("GitHub"),
            AnsweredBy::Revalidated => f.write_str("the cache, revalidated by GitHub (304)"),
            AnsweredBy::Stale => f.write_str("the cache, stale (GitHub failed)"),
            AnsweredBy::GitHubFailed => f.write_str("GitHub, which failed"),
            AnsweredBy::Write => f.write_str("GitHub (a write)"),
        }
    }
}

impl Cache {
    /// The cache as the `ghcache` binary sees it: this process's environment (`GH_CACHE_*`)
    /// and the config file (`$XDG_CONFIG_HOME/ghcache/config.toml` or `GH_CACHE_CONFIG`).
    ///
    /// # Errors
    /// [`Error::Usage`] naming a setting that is not usable (an unknown `GH_CACHE_*` variable,
    /// a value of the wrong type, a bad config file).
    pub fn from_env() -> Result<Cache, Error> {
        Builder::default().build()
    }

    /// A builder that starts from the environment and the config file and overrides what it is
    /// told to.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Answers gh's `args` (with or without a leading `"gh"`).
    ///
    /// # Behavior
    /// Read-only commands on the allowlist are answered from the nearest tier with a fresh copy,
    /// else by running gh (whose answer is stored); writes run gh (no terminal: stdin is empty)
    /// and drop what they change from the cache, on this machine and its peers; everything else
    /// is [`Answer::RunGh`]. Nothing is printed; `--debug` lines go to stderr.
    ///
    /// # Errors
    /// gh cannot be started, a setting is not usable, or the swarm is required
    /// (`GH_CACHE_P2P=1`) without a key. A failing gh is an answer, not an error.
    pub fn run<I, S>(&self, args: I) -> Result<Answer, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut args: Vec<String> = args.into_iter().map(Into::into).collect();
        if args.first().is_some_and(|a| a == "gh") {
            args.remove(0);
        }
        let env = |name: &str| self.var(name);
        let session = Session::capturing(&self.config);
        let outcome = gh::answer(&self.config, &env, &Command::classify(args), &session)?;
        Ok(match outcome {
            Outcome::RunGh(reason) => Answer::RunGh {
                reason: reason.to_owned(),
            },
            Outcome::Answered { output, source } => Answer::Answered(Answered {
                stdout: output.stdout,
                stderr: output.stderr,
                exit_code: output.exit_code,
                source: answered_by(source),
                warnings: session.take_warnings(),
            }),
        })
    }

    /// The statistics since the cache was created, across all processes that used it, and which
    /// tiers beyond this machine are on. Displays as the `ghcache stats` table.
    ///
    /// # Errors
    /// The cache cannot be opened or its index read.
    pub fn stats(&self) -> Result<Report, Error> {
        Ok(stats::report(&self.config)?)
    }

    /// Drops one repository's entries (`Some("owner/name")`), or every entry, from this
    /// machine's cache; returns how many. Housekeeping, not news of a write: peers keep theirs.
    ///
    /// # Errors
    /// `repo` is not `OWNER/NAME`, or the cache cannot be opened or changed.
    pub fn clear(&self, repo: Option<&str>) -> Result<u64, Error> {
        Ok(stats::drop_entries(&self.config, repo)?)
    }

    /// The cache directory.
    ///
    /// # Errors
    /// None can be told (no `GH_CACHE_DIR`, `XDG_CACHE_HOME` or `HOME`).
    pub fn dir(&self) -> Result<PathBuf, Error> {
        self.config
            .cache_dir()
            .map(std::path::Path::to_path_buf)
            .map_err(|e| Error::Usage(e.to_string()))
    }

    fn var(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

fn answered_by(source: Option<ghcache_core::Source>) -> AnsweredBy {
    use ghcache_core::Source;
    match source {
        None => AnsweredBy::Write,
        Some(Source::Tier(tier) | Source::Heard(tier)) => AnsweredBy::Tier(tier),
        Some(Source::Origin | Source::OriginTooLarge) => AnsweredBy::GitHub,
        Some(Source::Revalidated) => AnsweredBy::Revalidated,
        Some(Source::Stale) => AnsweredBy::Stale,
        Some(Source::OriginFailed) => AnsweredBy::GitHubFailed,
    }
}

/// Settings for a [`Cache`] beyond (and over) the environment and the config file.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Builder {
    flags: Flags,
}

impl Builder {
    /// The cache directory (else `GH_CACHE_DIR`, the file, `$XDG_CACHE_HOME/ghcache`).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.flags.cache_dir = Some(dir.into());
        self
    }

    /// The gh program to run (else `GH_CACHE_GH`, the file, `gh` on `PATH`).
    pub fn gh(mut self, program: impl Into<OsString>) -> Self {
        self.flags.gh = Some(program.into());
        self
    }

    /// Who is asking: entries never cross scopes (else `GH_CACHE_SCOPE`, or derived from the
    /// token and GitHub Actions' declaration, as the binary does).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.flags.scope = Some(scope.into());
        self
    }

    /// How long answers of a TTL class stay fresh (`list`, `view`, `repo_view`, `release`,
    /// `search`, `api`).
    pub fn ttl(mut self, class: &str, ttl: Duration) -> Self {
        self.flags
            .ttl
            .push(format!("{class}={}ms", ttl.as_millis()));
        self
    }

    /// Also look in IPFS, and add what GitHub answered to it (the `ipfs` feature).
    pub fn ipfs(mut self, on: bool) -> Self {
        self.flags.ipfs = on;
        self
    }

    /// The IPFS node's Kubo RPC API, e.g. `http://127.0.0.1:5001`.
    pub fn ipfs_api(mut self, url: impl Into<String>) -> Self {
        self.flags.ipfs_api = Some(url.into());
        self
    }

    /// Run gh as if ghcache were not there ([`Cache::run`] then says [`Answer::RunGh`]).
    pub fn disabled(mut self, off: bool) -> Self {
        self.flags.no_cache = off;
        self
    }

    /// One line per request on stderr: tier, key prefix, milliseconds.
    pub fn debug(mut self, on: bool) -> Self {
        self.flags.debug = on;
        self
    }

    /// The cache, with this process's environment as it is now.
    ///
    /// # Errors
    /// As [`Cache::from_env`].
    pub fn build(self) -> Result<Cache, Error> {
        config::check_env(std::env::vars_os()).map_err(|e| Error::Usage(e.to_string()))?;
        let env: Vec<(String, String)> = std::env::vars().collect();
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let config = Config::load(&lookup, &self.flags).map_err(|e| Error::Usage(e.to_string()))?;
        Ok(Cache { config, env })
    }
}
