//! The effective configuration as a value: every setting with where it came from, and the
//! defaults it starts from before the file, the environment and the flags are read (the rows of
//! `table.rs` say which of those set what).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ghcache_core::policy::TtlClass;

use super::error::ConfigError;

/// Where a setting's value came from, as `ghcache config` names it.
///
/// Not to be confused with `ghcache_core::Origin`, the port to GitHub: this is the source of a
/// setting, not of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Nothing set it.
    Default,
    /// The config file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(&'static str),
    /// This command-line flag.
    Flag(&'static str),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone)]
pub struct Setting<T> {
    /// The value in effect.
    pub value: T,
    /// Where it came from; the last source to set it, in the order defaults, file, environment,
    /// flags.
    pub source: Source,
}

impl<T> Setting<T> {
    fn default(value: T) -> Self {
        Setting {
            value,
            source: Source::Default,
        }
    }

    /// Replaces the value, and says where the new one came from.
    pub fn set(&mut self, value: T, source: Source) {
        self.value = value;
        self.source = source;
    }
}

/// Settings given on the command line before the subcommand.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub cache_dir: Option<PathBuf>,
    pub gh: Option<OsString>,
    pub scope: Option<String>,
    pub debug: bool,
    pub no_cache: bool,
    pub ttl: Vec<String>,
    pub ipfs: bool,
    pub ipfs_api: Option<String>,
    /// `Some(true)` for `--ipfs-encrypt`, `Some(false)` for `--no-ipfs-encrypt`.
    pub ipfs_encrypt: Option<bool>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: Option<PathBuf>,
    pub enabled: Setting<bool>,
    /// ghcache's own notices on stderr (`GH_CACHE_DEBUG=1`, `--debug`, the file's `debug`):
    /// decided here, once, and passed to everything that prints one.
    pub debug: Setting<bool>,
    pub cache_dir: Setting<PathBuf>,
    pub gh: Setting<OsString>,
    pub scope: Setting<Option<String>>,
    pub max_size: Setting<u64>,
    /// The largest answer that is stored; a larger one is printed and not stored.
    pub max_entry_size: Setting<u64>,
    pub max_stale: Setting<Duration>,
    /// Requests left of GitHub's rate limit at or below which reads prefer a stale answer.
    pub rate_limit_reserve: Setting<u64>,
    /// The longest a request waits out a secondary limit's pause.
    pub rate_limit_wait: Setting<Duration>,
    /// The most requests of one principal in flight at once from this machine.
    pub rate_limit_in_flight: Setting<u64>,
    /// How far another machine's clock may run ahead of this one's (`ghcache_core::CLOCK_SKEW`).
    pub clock_skew: Setting<Duration>,
    pub lock_timeout: Setting<Duration>,
    pub ttl: BTreeMap<TtlClass, Setting<Duration>>,
    /// How long answers of each class may stay fresh while their writes are heard (see
    /// `ghcache_core::heard`); read through [`Config::heard_ttl`].
    pub heard_ttl: BTreeMap<TtlClass, Setting<Duration>>,
    pub p2p: P2p,
    pub ipfs: Ipfs,
    pub http: Http,
}

/// Settings of the HTTP level: the `[http]` table and `GH_CACHE_HTTP`.
#[derive(Debug, Clone)]
pub struct Http {
    /// Serve gh's API requests through ghcache (gh's `http_unix_socket`) for every gh it runs.
    pub enabled: Setting<bool>,
}

/// Settings of the IPFS tier: the `[ipfs]` table, `GH_CACHE_IPFS*`, and `--ipfs*` flags.
#[derive(Debug, Clone)]
pub struct Ipfs {
    pub enabled: Setting<bool>,
    /// The Kubo RPC API, e.g. `http://127.0.0.1:5001`.
    pub api: Setting<String>,
    /// An HTTP gateway (`http://HOST:PORT`, serving `/ipfs/<cid>`) that bodies are read from
    /// when no API is configured (`api` at its default): lookups only, nothing is added.
    pub gateway: Setting<Option<String>>,
    /// How long a CLI waits for IPFS before asking GitHub.
    pub deadline: Setting<Duration>,
    /// Encrypt bodies before adding them; `None`: on when a swarm key is configured.
    pub encrypt: Setting<Option<bool>>,
}

/// Where the swarm key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwarmKeySource {
    /// The key text itself (`GH_CACHE_SWARM_KEY`, for CI secrets).
    Text(String),
    /// A `swarm.key` file.
    File(PathBuf),
}

/// Settings of the p2p tier: the `[p2p]` table, `GH_CACHE_P2P*`, and the daemon's flags.
#[derive(Debug, Clone)]
pub struct P2p {
    /// `Some(false)`: never ask a daemon. `Some(true)`: a swarm key is required. `None`: ask the
    /// daemon of this cache dir if one runs.
    pub enabled: Setting<Option<bool>>,
    /// How long a CLI waits for the swarm before asking GitHub.
    pub deadline: Setting<Duration>,
    pub swarm_key: Setting<Option<SwarmKeySource>>,
    pub listen: Setting<Vec<String>>,
    pub bootstrap: Setting<Vec<String>>,
    pub mdns: Setting<bool>,
    pub read_only: Setting<bool>,
    pub trusted_peers: Setting<Vec<String>>,
    pub metrics: Setting<Option<String>>,
    /// Be a keeper: keep a copy of what the scopes' peers announce (`ghcache daemon --keep`).
    pub keep: Setting<bool>,
    /// The keeper's store cap, least recently used out first.
    pub keep_max_size: Setting<u64>,
    /// Where the daemon takes GitHub's webhook deliveries (`ghcache daemon --webhook ADDR`).
    pub webhook: Setting<Option<String>>,
    /// The file holding the webhook's secret.
    pub webhook_secret_file: Setting<Option<String>>,
    /// The webhook's secret itself (`GH_CACHE_WEBHOOK_SECRET`), over the file.
    pub webhook_secret: Setting<Option<String>>,
    /// Follow the repositories the swarm asked about lately (`ghcache daemon --follow`).
    pub follow: Setting<bool>,
    /// Time between follow rounds.
    pub follow_every: Setting<Duration>,
}

/// Reads the environment through a function, so tests can pass their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Config {
    /// Every setting at its default; the cache dir under `XDG_CACHE_HOME` or `HOME` of `env`
    /// (empty when neither is set: [`Config::cache_dir`] then says how to set one).
    pub(super) fn defaults(env: Env<'_>) -> Config {
        let cache_dir = match (env("XDG_CACHE_HOME"), env("HOME")) {
            (Some(xdg), _) if !xdg.is_empty() => PathBuf::from(xdg).join("ghcache"),
            (_, Some(home)) if !home.is_empty() => PathBuf::from(home).join(".cache/ghcache"),
            _ => PathBuf::new(),
        };
        Config {
            file: None,
            enabled: Setting::default(true),
            debug: Setting::default(false),
            cache_dir: Setting::default(cache_dir),
            gh: Setting::default(OsString::from("gh")),
            scope: Setting::default(None),
            max_size: Setting::default(512 * 1024 * 1024),
            max_entry_size: Setting::default(ghcache_tier_gh::Config::DEFAULT_MAX_ENTRY_SIZE),
            max_stale: Setting::default(Duration::from_secs(24 * 3600)),
            rate_limit_reserve: Setting::default(ghcache_http::Config::DEFAULT_RATE_LIMIT_RESERVE),
            rate_limit_wait: Setting::default(ghcache_http::Config::DEFAULT_RATE_LIMIT_WAIT),
            rate_limit_in_flight: Setting::default(20),
            clock_skew: Setting::default(ghcache_core::CLOCK_SKEW),
            lock_timeout: Setting::default(Duration::from_secs(120)),
            ttl: TtlClass::ALL
                .iter()
                .map(|c| (*c, Setting::default(c.default_ttl())))
                .collect(),
            heard_ttl: TtlClass::ALL
                .iter()
                .map(|c| (*c, Setting::default(c.default_heard_ttl())))
                .collect(),
            p2p: P2p {
                enabled: Setting::default(None),
                deadline: Setting::default(ghcache_core::layers::P2P_DEADLINE),
                swarm_key: Setting::default(None),
                listen: Setting::default(vec!["/ip4/0.0.0.0/tcp/4001".to_owned()]),
                bootstrap: Setting::default(Vec::new()),
                mdns: Setting::default(true),
                read_only: Setting::default(false),
                trusted_peers: Setting::default(Vec::new()),
                metrics: Setting::default(None),
                keep: Setting::default(false),
                keep_max_size: Setting::default(2 << 30),
                webhook: Setting::default(None),
                webhook_secret_file: Setting::default(None),
                webhook_secret: Setting::default(None),
                follow: Setting::default(false),
                follow_every: Setting::default(Duration::from_secs(60)),
            },
            http: Http {
                enabled: Setting::default(true),
            },
            ipfs: Ipfs {
                enabled: Setting::default(false),
                api: Setting::default("http://127.0.0.1:5001".to_owned()),
                gateway: Setting::default(None),
                deadline: Setting::default(ghcache_core::layers::IPFS_DEADLINE),
                encrypt: Setting::default(None),
            },
        }
    }

    /// The largest answer that is stored, added to IPFS or taken from it: `max_entry_size`,
    /// and never more than the whole cache (such an entry would only push everything else
    /// out, then itself).
    pub fn largest_entry(&self) -> u64 {
        self.max_entry_size.value.min(self.max_size.value)
    }

    /// The cache directory, or an error that says how to set one.
    pub fn cache_dir(&self) -> Result<&Path, ConfigError> {
        if self.cache_dir.value.as_os_str().is_empty() {
            return Err(ConfigError::NoCacheDir);
        }
        Ok(&self.cache_dir.value)
    }

    /// TTL of a class.
    pub fn ttl(&self, class: TtlClass) -> Duration {
        self.ttl
            .get(&class)
            .map_or(class.default_ttl(), |s| s.value)
    }

    /// Heard TTL of a class: never shorter than its TTL (a shorter one means the TTL).
    pub fn heard_ttl(&self, class: TtlClass) -> Duration {
        let heard = self
            .heard_ttl
            .get(&class)
            .map_or(class.default_heard_ttl(), |s| s.value);
        heard.max(self.ttl(class))
    }
}
