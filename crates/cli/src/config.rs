//! The effective configuration: defaults, then the TOML file, then the environment, then flags.
//! Every value remembers where it came from, for `ghcache config`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ghcache_core::policy::TtlClass;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(&'static str),
    Flag(&'static str),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Env(name) => write!(f, "env {name}"),
            Origin::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone)]
pub struct Setting<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Setting<T> {
    fn default(value: T) -> Self {
        Setting {
            value,
            origin: Origin::Default,
        }
    }

    pub fn set(&mut self, value: T, origin: Origin) {
        self.value = value;
        self.origin = origin;
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
    /// How far another machine's clock may run ahead of this one's (`ghcache_core::CLOCK_SKEW`).
    pub clock_skew: Setting<Duration>,
    pub lock_timeout: Setting<Duration>,
    pub ttl: BTreeMap<TtlClass, Setting<Duration>>,
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
}

/// A configuration that cannot be used, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("config file {path} is not valid TOML: {reason}")]
    Toml { path: PathBuf, reason: String },
    #[error("{origin}: `{key}` {reason}")]
    Value {
        origin: String,
        key: String,
        reason: String,
    },
    #[error("cannot find a cache directory: set GH_CACHE_DIR, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
}

/// Reads the environment through a function, so tests can pass their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Config {
    /// Loads the configuration from `env` and `flags`; the file is `GH_CACHE_CONFIG`, else
    /// `$XDG_CONFIG_HOME/ghcache/config.toml`, else `~/.config/ghcache/config.toml`.
    pub fn load(env: Env<'_>, flags: &Flags) -> Result<Config, ConfigError> {
        let mut config = Config::defaults(env)?;
        let file = config_file(env);
        if let Some(path) = file.as_deref().filter(|p| p.is_file()) {
            config.apply_file(path)?;
            config.file = Some(path.to_path_buf());
        } else {
            config.file = file;
        }
        config.apply_env(env)?;
        config.apply_flags(flags)?;
        Ok(config)
    }

    /// The largest answer that is stored, added to IPFS or taken from it: `max_entry_size`,
    /// and never more than the whole cache (such an entry would only push everything else
    /// out, then itself).
    pub fn largest_entry(&self) -> u64 {
        self.max_entry_size.value.min(self.max_size.value)
    }

    fn defaults(env: Env<'_>) -> Result<Config, ConfigError> {
        let cache_dir = match (env("XDG_CACHE_HOME"), env("HOME")) {
            (Some(xdg), _) if !xdg.is_empty() => PathBuf::from(xdg).join("ghcache"),
            (_, Some(home)) if !home.is_empty() => PathBuf::from(home).join(".cache/ghcache"),
            _ => PathBuf::new(),
        };
        Ok(Config {
            file: None,
            enabled: Setting::default(true),
            debug: Setting::default(false),
            cache_dir: Setting::default(cache_dir),
            gh: Setting::default(OsString::from("gh")),
            scope: Setting::default(None),
            max_size: Setting::default(512 * 1024 * 1024),
            max_entry_size: Setting::default(ghcache_tier_gh::Config::DEFAULT_MAX_ENTRY_SIZE),
            max_stale: Setting::default(Duration::from_secs(24 * 3600)),
            clock_skew: Setting::default(ghcache_core::CLOCK_SKEW),
            lock_timeout: Setting::default(Duration::from_secs(120)),
            ttl: TtlClass::ALL
                .iter()
                .map(|c| (*c, Setting::default(c.default_ttl())))
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
        })
    }

    fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Toml {
                path: path.to_path_buf(),
                reason: e.message().to_owned(),
            })?;
        let origin = Origin::File(path.to_path_buf());
        let bad = |key: &str, reason: &str| ConfigError::Value {
            origin: origin.to_string(),
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        let boolean = |key: &str, v: &toml::Value| v.as_bool().ok_or_else(|| bad(key, BOOL_HINT));
        let string = |key: &str, v: &toml::Value| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad(key, STRING_HINT))
        };
        for (key, value) in &table {
            let o = origin.clone();
            match key.as_str() {
                "enabled" => self.enabled.set(boolean(key, value)?, o),
                "debug" => self.debug.set(boolean(key, value)?, o),
                "cache_dir" => self.cache_dir.set(string(key, value)?.into(), o),
                "gh" => self.gh.set(string(key, value)?.into(), o),
                "scope" => self.scope.set(Some(string(key, value)?), o),
                "max_size" => {
                    let size = size_value(value).ok_or_else(|| bad(key, SIZE_HINT))?;
                    self.max_size.set(size, o);
                }
                "max_entry_size" => {
                    let size = size_value(value).ok_or_else(|| bad(key, SIZE_HINT))?;
                    self.max_entry_size.set(size, o);
                }
                "max_stale" => {
                    let d = duration_value(value).ok_or_else(|| bad(key, DURATION_HINT))?;
                    self.max_stale.set(d, o);
                }
                "clock_skew" => {
                    let d = duration_value(value).ok_or_else(|| bad(key, DURATION_HINT))?;
                    self.clock_skew.set(d, o);
                }
                "lock_timeout" => {
                    let d = duration_value(value).ok_or_else(|| bad(key, DURATION_HINT))?;
                    self.lock_timeout.set(d, o);
                }
                "ttl" => {
                    let ttls = value
                        .as_table()
                        .ok_or_else(|| bad(key, "must be a table: [ttl] list = \"5m\""))?;
                    for (class, value) in ttls {
                        let class_key = format!("ttl.{class}");
                        let slot = ttl_slot(&mut self.ttl, class)
                            .ok_or_else(|| bad(&class_key, &unknown_class()))?;
                        let d =
                            duration_value(value).ok_or_else(|| bad(&class_key, DURATION_HINT))?;
                        slot.set(d, o.clone());
                    }
                }
                "p2p" => {
                    let p2p = value
                        .as_table()
                        .ok_or_else(|| bad(key, "must be a table: [p2p]"))?;
                    self.apply_p2p_table(p2p, &origin)?;
                }
                "ipfs" => {
                    let ipfs = value
                        .as_table()
                        .ok_or_else(|| bad(key, "must be a table: [ipfs]"))?;
                    self.apply_ipfs_table(ipfs, &origin)?;
                }
                "http" => {
                    let http = value
                        .as_table()
                        .ok_or_else(|| bad(key, "must be a table: [http]"))?;
                    for (name, value) in http {
                        let name_key = format!("http.{name}");
                        match name.as_str() {
                            "enabled" => {
                                let b = value.as_bool().ok_or_else(|| bad(&name_key, BOOL_HINT))?;
                                self.http.enabled.set(b, origin.clone());
                            }
                            _ => return Err(bad(&name_key, "is not a known http setting")),
                        }
                    }
                }
                _ => return Err(bad(key, "is not a known setting (see `ghcache config`)")),
            }
        }
        Ok(())
    }

    fn apply_p2p_table(&mut self, table: &toml::Table, origin: &Origin) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: &str| ConfigError::Value {
            origin: origin.to_string(),
            key: format!("p2p.{key}"),
            reason: reason.to_owned(),
        };
        let strings = |key: &str, v: &toml::Value| -> Result<Vec<String>, ConfigError> {
            v.as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .map(|i| i.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| bad(key, "must be a list of strings"))
        };
        let boolean = |key: &str, v: &toml::Value| v.as_bool().ok_or_else(|| bad(key, BOOL_HINT));
        let string = |key: &str, v: &toml::Value| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad(key, STRING_HINT))
        };
        let p2p = &mut self.p2p;
        for (key, value) in table {
            let o = origin.clone();
            match key.as_str() {
                "enabled" => p2p.enabled.set(Some(boolean(key, value)?), o),
                "deadline" => {
                    let d = duration_value(value).ok_or_else(|| bad(key, DURATION_HINT))?;
                    p2p.deadline.set(d, o);
                }
                "swarm_key_file" => {
                    let file = SwarmKeySource::File(string(key, value)?.into());
                    p2p.swarm_key.set(Some(file), o);
                }
                "listen" => p2p.listen.set(strings(key, value)?, o),
                "bootstrap" => p2p.bootstrap.set(strings(key, value)?, o),
                "trusted_peers" => p2p.trusted_peers.set(strings(key, value)?, o),
                "mdns" => p2p.mdns.set(boolean(key, value)?, o),
                "read_only" => p2p.read_only.set(boolean(key, value)?, o),
                "metrics" => p2p.metrics.set(Some(string(key, value)?), o),
                "keep" => p2p.keep.set(boolean(key, value)?, o),
                "keep_max_size" => {
                    let size = size_value(value).ok_or_else(|| bad(key, SIZE_HINT))?;
                    p2p.keep_max_size.set(size, o);
                }
                _ => return Err(bad(key, "is not a known p2p setting")),
            }
        }
        Ok(())
    }

    fn apply_ipfs_table(
        &mut self,
        table: &toml::Table,
        origin: &Origin,
    ) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: &str| ConfigError::Value {
            origin: origin.to_string(),
            key: format!("ipfs.{key}"),
            reason: reason.to_owned(),
        };
        let ipfs = &mut self.ipfs;
        for (key, value) in table {
            let o = origin.clone();
            match key.as_str() {
                "enabled" => {
                    let b = value.as_bool().ok_or_else(|| bad(key, BOOL_HINT))?;
                    ipfs.enabled.set(b, o);
                }
                "api" => {
                    let api = value.as_str().ok_or_else(|| bad(key, STRING_HINT))?;
                    ipfs.api.set(api.to_owned(), o);
                }
                "gateway" => {
                    let gateway = value.as_str().ok_or_else(|| bad(key, STRING_HINT))?;
                    ipfs.gateway.set(Some(gateway.to_owned()), o);
                }
                "encrypt" => {
                    let b = value.as_bool().ok_or_else(|| bad(key, BOOL_HINT))?;
                    ipfs.encrypt.set(Some(b), o);
                }
                "deadline" => {
                    let d = duration_value(value).ok_or_else(|| bad(key, DURATION_HINT))?;
                    ipfs.deadline.set(d, o);
                }
                _ => return Err(bad(key, "is not a known ipfs setting")),
            }
        }
        Ok(())
    }

    fn apply_env(&mut self, env: Env<'_>) -> Result<(), ConfigError> {
        let bad = |name: &'static str, reason: &str| ConfigError::Value {
            origin: Origin::Env(name).to_string(),
            key: name.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(v) = env("GH_CACHE_ENABLED") {
            let b = bool_text(&v).ok_or_else(|| bad("GH_CACHE_ENABLED", "must be 0 or 1"))?;
            self.enabled.set(b, Origin::Env("GH_CACHE_ENABLED"));
        }
        if let Some(v) = env("GH_CACHE_DEBUG") {
            let b = bool_text(&v).ok_or_else(|| bad("GH_CACHE_DEBUG", "must be 0 or 1"))?;
            self.debug.set(b, Origin::Env("GH_CACHE_DEBUG"));
        }
        if let Some(v) = env("GH_CACHE_DIR").filter(|v| !v.is_empty()) {
            self.cache_dir
                .set(PathBuf::from(v), Origin::Env("GH_CACHE_DIR"));
        }
        if let Some(v) = env("GH_CACHE_GH").filter(|v| !v.is_empty()) {
            self.gh.set(v.into(), Origin::Env("GH_CACHE_GH"));
        }
        if let Some(v) = env("GH_CACHE_SCOPE").filter(|v| !v.is_empty()) {
            self.scope.set(Some(v), Origin::Env("GH_CACHE_SCOPE"));
        }
        if let Some(v) = env("GH_CACHE_MAX_SIZE") {
            let size = parse_size(&v)
                .ok_or_else(|| bad("GH_CACHE_MAX_SIZE", "must be a size like 512MiB"))?;
            self.max_size.set(size, Origin::Env("GH_CACHE_MAX_SIZE"));
        }
        if let Some(v) = env("GH_CACHE_MAX_ENTRY_SIZE") {
            let size = parse_size(&v)
                .ok_or_else(|| bad("GH_CACHE_MAX_ENTRY_SIZE", "must be a size like 64MiB"))?;
            self.max_entry_size
                .set(size, Origin::Env("GH_CACHE_MAX_ENTRY_SIZE"));
        }
        if let Some(v) = env("GH_CACHE_MAX_STALE") {
            let d = parse_duration(&v).ok_or_else(|| bad("GH_CACHE_MAX_STALE", DURATION_HINT))?;
            self.max_stale.set(d, Origin::Env("GH_CACHE_MAX_STALE"));
        }
        if let Some(v) = env("GH_CACHE_CLOCK_SKEW") {
            let d = parse_duration(&v).ok_or_else(|| bad("GH_CACHE_CLOCK_SKEW", DURATION_HINT))?;
            self.clock_skew.set(d, Origin::Env("GH_CACHE_CLOCK_SKEW"));
        }
        if let Some(v) = env("GH_CACHE_P2P").filter(|v| !v.is_empty()) {
            let b = bool_text(&v).ok_or_else(|| bad("GH_CACHE_P2P", "must be 0 or 1"))?;
            self.p2p.enabled.set(Some(b), Origin::Env("GH_CACHE_P2P"));
        }
        if let Some(v) = env("GH_CACHE_P2P_DEADLINE") {
            let d =
                parse_duration(&v).ok_or_else(|| bad("GH_CACHE_P2P_DEADLINE", DURATION_HINT))?;
            self.p2p
                .deadline
                .set(d, Origin::Env("GH_CACHE_P2P_DEADLINE"));
        }
        if let Some(v) = env("GH_CACHE_SWARM_KEY_FILE").filter(|v| !v.is_empty()) {
            let source = SwarmKeySource::File(v.into());
            self.p2p
                .swarm_key
                .set(Some(source), Origin::Env("GH_CACHE_SWARM_KEY_FILE"));
        }
        if let Some(v) = env("GH_CACHE_SWARM_KEY").filter(|v| !v.trim().is_empty()) {
            let source = SwarmKeySource::Text(v);
            self.p2p
                .swarm_key
                .set(Some(source), Origin::Env("GH_CACHE_SWARM_KEY"));
        }
        if let Some(v) = env("GH_CACHE_HTTP").filter(|v| !v.is_empty()) {
            let b = bool_text(&v).ok_or_else(|| bad("GH_CACHE_HTTP", "must be 0 or 1"))?;
            self.http.enabled.set(b, Origin::Env("GH_CACHE_HTTP"));
        }
        if let Some(v) = env("GH_CACHE_IPFS").filter(|v| !v.is_empty()) {
            let b = bool_text(&v).ok_or_else(|| bad("GH_CACHE_IPFS", "must be 0 or 1"))?;
            self.ipfs.enabled.set(b, Origin::Env("GH_CACHE_IPFS"));
        }
        if let Some(v) = env("GH_CACHE_IPFS_API").filter(|v| !v.is_empty()) {
            self.ipfs.api.set(v, Origin::Env("GH_CACHE_IPFS_API"));
        }
        if let Some(v) = env("GH_CACHE_IPFS_GATEWAY").filter(|v| !v.is_empty()) {
            self.ipfs
                .gateway
                .set(Some(v), Origin::Env("GH_CACHE_IPFS_GATEWAY"));
        }
        if let Some(v) = env("GH_CACHE_IPFS_DEADLINE") {
            let d =
                parse_duration(&v).ok_or_else(|| bad("GH_CACHE_IPFS_DEADLINE", DURATION_HINT))?;
            self.ipfs
                .deadline
                .set(d, Origin::Env("GH_CACHE_IPFS_DEADLINE"));
        }
        if let Some(v) = env("GH_CACHE_IPFS_ENCRYPT").filter(|v| !v.is_empty()) {
            let b = bool_text(&v).ok_or_else(|| bad("GH_CACHE_IPFS_ENCRYPT", "must be 0 or 1"))?;
            self.ipfs
                .encrypt
                .set(Some(b), Origin::Env("GH_CACHE_IPFS_ENCRYPT"));
        }
        for class in TtlClass::ALL {
            let name = ttl_env_name(class);
            if let Some(v) = env(name) {
                let d = parse_duration(&v).ok_or_else(|| bad(name, DURATION_HINT))?;
                if let Some(slot) = self.ttl.get_mut(&class) {
                    slot.set(d, Origin::Env(name));
                }
            }
        }
        Ok(())
    }

    fn apply_flags(&mut self, flags: &Flags) -> Result<(), ConfigError> {
        if let Some(dir) = &flags.cache_dir {
            self.cache_dir.set(dir.clone(), Origin::Flag("--cache-dir"));
        }
        if let Some(gh) = &flags.gh {
            self.gh.set(gh.clone(), Origin::Flag("--gh"));
        }
        if let Some(scope) = &flags.scope {
            self.scope.set(Some(scope.clone()), Origin::Flag("--scope"));
        }
        if flags.debug {
            self.debug.set(true, Origin::Flag("--debug"));
        }
        if flags.no_cache {
            self.enabled.set(false, Origin::Flag("--no-cache"));
        }
        if flags.ipfs {
            self.ipfs.enabled.set(true, Origin::Flag("--ipfs"));
        }
        if let Some(api) = &flags.ipfs_api {
            self.ipfs.api.set(api.clone(), Origin::Flag("--ipfs-api"));
        }
        match flags.ipfs_encrypt {
            Some(true) => self
                .ipfs
                .encrypt
                .set(Some(true), Origin::Flag("--ipfs-encrypt")),
            Some(false) => self
                .ipfs
                .encrypt
                .set(Some(false), Origin::Flag("--no-ipfs-encrypt")),
            None => {}
        }
        for spec in &flags.ttl {
            let bad = |reason: &str| ConfigError::Value {
                origin: Origin::Flag("--ttl").to_string(),
                key: spec.clone(),
                reason: reason.to_owned(),
            };
            let (class, value) = spec
                .split_once('=')
                .ok_or_else(|| bad("must look like CLASS=DURATION, e.g. list=30s"))?;
            let d = parse_duration(value).ok_or_else(|| bad(DURATION_HINT))?;
            let slot = ttl_slot(&mut self.ttl, class).ok_or_else(|| bad(&unknown_class()))?;
            slot.set(d, Origin::Flag("--ttl"));
        }
        Ok(())
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
}

const DURATION_HINT: &str = "must be a duration like 90s, 10m, 1h or a number of seconds";
const SIZE_HINT: &str = "must be a size like \"512MiB\" or a number of bytes";
const BOOL_HINT: &str = "must be true or false";
const STRING_HINT: &str = "must be a string (in quotes)";

/// The variables that ghcache reads, besides the TTL classes' ([`ttl_env_name`]).
const ENV_VARS: [&str; 20] = [
    "GH_CACHE_CONFIG",
    "GH_CACHE_ENABLED",
    "GH_CACHE_DEBUG",
    "GH_CACHE_DIR",
    "GH_CACHE_GH",
    "GH_CACHE_SCOPE",
    "GH_CACHE_MAX_SIZE",
    "GH_CACHE_MAX_ENTRY_SIZE",
    "GH_CACHE_MAX_STALE",
    "GH_CACHE_CLOCK_SKEW",
    "GH_CACHE_P2P",
    "GH_CACHE_P2P_DEADLINE",
    "GH_CACHE_SWARM_KEY_FILE",
    "GH_CACHE_SWARM_KEY",
    "GH_CACHE_IPFS",
    "GH_CACHE_IPFS_API",
    "GH_CACHE_IPFS_GATEWAY",
    "GH_CACHE_IPFS_DEADLINE",
    "GH_CACHE_IPFS_ENCRYPT",
    "GH_CACHE_HTTP",
];

/// Variables that ghcache reads outside the configuration: where the scope is derived
/// (`context::scope`), like `GITHUB_ACTIONS`, rather than settings of their own.
const SCOPE_VARS: [&str; 2] = [
    ghcache_core::context::JOB_TOKEN_HASH_VAR,
    ghcache_core::actions::PERMISSIONS_VAR,
];

/// Checks the `GH_CACHE_*` variables among `vars` (the process's environment) before any is
/// read, as the config file's keys are checked: a variable that ghcache does not read (a typo,
/// `GH_CACHE_TTL_BOGUS`) or whose value is not UTF-8 is an error that names it, where reading
/// the environment by name would pass over it in silence.
///
/// # Errors
/// The first such variable.
pub fn check_env(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Result<(), ConfigError> {
    for (name, value) in vars {
        if !name.as_encoded_bytes().starts_with(b"GH_CACHE_") {
            continue;
        }
        let shown = name.to_string_lossy().into_owned();
        let bad = |reason: String| ConfigError::Value {
            origin: format!("env {shown}"),
            key: shown.clone(),
            reason,
        };
        let ttl_names = || TtlClass::ALL.into_iter().map(ttl_env_name);
        let known = name.to_str().is_some_and(|n| {
            ENV_VARS.contains(&n) || SCOPE_VARS.contains(&n) || ttl_names().any(|t| t == n)
        });
        if !known {
            if shown.starts_with("GH_CACHE_TTL_") {
                let names: Vec<_> = ttl_names().collect();
                return Err(bad(format!(
                    "names no TTL class (known: {}); unset it",
                    names.join(", ")
                )));
            }
            return Err(bad(format!(
                "is not a variable that ghcache reads ({}, GH_CACHE_TTL_<CLASS>); unset it",
                ENV_VARS.join(", ")
            )));
        }
        if value.to_str().is_none() {
            return Err(bad(
                "is not valid UTF-8: set it to UTF-8 text, or unset it".to_owned()
            ));
        }
    }
    Ok(())
}

fn unknown_class() -> String {
    let names: Vec<_> = TtlClass::ALL.iter().map(|c| c.name()).collect();
    format!("names no TTL class; known: {}", names.join(", "))
}

fn ttl_slot<'a>(
    ttl: &'a mut BTreeMap<TtlClass, Setting<Duration>>,
    name: &str,
) -> Option<&'a mut Setting<Duration>> {
    let class = TtlClass::ALL.into_iter().find(|c| c.name() == name)?;
    ttl.get_mut(&class)
}

/// `GH_CACHE_TTL_LIST`, `GH_CACHE_TTL_REPO_VIEW`, ...
pub fn ttl_env_name(class: TtlClass) -> &'static str {
    match class {
        TtlClass::List => "GH_CACHE_TTL_LIST",
        TtlClass::View => "GH_CACHE_TTL_VIEW",
        TtlClass::RepoView => "GH_CACHE_TTL_REPO_VIEW",
        TtlClass::Release => "GH_CACHE_TTL_RELEASE",
        TtlClass::Search => "GH_CACHE_TTL_SEARCH",
        TtlClass::Api => "GH_CACHE_TTL_API",
    }
}

fn config_file(env: Env<'_>) -> Option<PathBuf> {
    if let Some(path) = env("GH_CACHE_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    match (env("XDG_CONFIG_HOME"), env("HOME")) {
        (Some(xdg), _) if !xdg.is_empty() => Some(PathBuf::from(xdg).join("ghcache/config.toml")),
        (_, Some(home)) if !home.is_empty() => {
            Some(PathBuf::from(home).join(".config/ghcache/config.toml"))
        }
        _ => None,
    }
}

fn bool_text(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

fn duration_value(v: &toml::Value) -> Option<Duration> {
    match v {
        toml::Value::Integer(n) => u64::try_from(*n).ok().map(Duration::from_secs),
        toml::Value::String(s) => parse_duration(s),
        _ => None,
    }
}

fn size_value(v: &toml::Value) -> Option<u64> {
    match v {
        toml::Value::Integer(n) => u64::try_from(*n).ok(),
        toml::Value::String(s) => parse_size(s),
        _ => None,
    }
}

/// `90`, `90s`, `10m`, `1h`, `2d`, `500ms`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let ms = match unit.trim() {
        "" | "s" | "sec" | "secs" => n.checked_mul(1000)?,
        "ms" => n,
        "m" | "min" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// `1048576`, `512MiB`, `1GiB`, `100MB`, `64k`.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// Human form of a duration for `ghcache config`.
pub fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else if s != 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("1GB"), Some(1_000_000_000));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = std::env::temp_dir().join(format!("ghcache-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let file = dir.join("config.toml");
        std::fs::write(&file, "[ttl]\nlist = \"5m\"\nview = 30\n").ok();
        let file_str: &'static str = Box::leak(file.display().to_string().into_boxed_str());
        let env: &'static [(&str, &str)] = Box::leak(Box::new([
            ("GH_CACHE_CONFIG", file_str),
            ("HOME", "/home/u"),
            ("GH_CACHE_TTL_VIEW", "45s"),
        ]));
        let env = env_of(env);
        let flags = Flags {
            ttl: vec!["view=1m".into()],
            ..Flags::default()
        };
        let config = Config::load(&env, &Flags::default()).ok();
        let config = config.as_ref();
        assert_eq!(
            config.map(|c| c.ttl(TtlClass::List)),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            config.map(|c| c.ttl(TtlClass::View)),
            Some(Duration::from_secs(45))
        );
        let flagged = Config::load(&env, &flags).ok();
        assert_eq!(
            flagged.map(|c| c.ttl(TtlClass::View)),
            Some(Duration::from_secs(60))
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Loads a config file with `text`; the error line, if any.
    fn file_error(name: &str, text: &str) -> Option<String> {
        let dir =
            std::env::temp_dir().join(format!("ghcache-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let file = dir.join("config.toml");
        std::fs::write(&file, text).ok();
        let path = file.display().to_string();
        let env = move |name: &str| (name == "GH_CACHE_CONFIG").then(|| path.clone());
        let err = Config::load(&env, &Flags::default())
            .err()
            .map(|e| e.to_string());
        std::fs::remove_dir_all(&dir).ok();
        err
    }

    #[test]
    fn a_known_key_of_the_wrong_type_says_which_type() {
        for (text, key, wanted) in [
            ("enabled = \"yes\"\n", "`enabled`", "true or false"),
            ("cache_dir = 3\n", "`cache_dir`", "a string"),
            ("max_entry_size = true\n", "`max_entry_size`", "a size"),
            ("ttl = \"5m\"\n", "`ttl`", "a table"),
            ("p2p = 1\n", "`p2p`", "a table"),
            ("[p2p]\nmdns = \"no\"\n", "`p2p.mdns`", "true or false"),
            ("[ipfs]\napi = 5001\n", "`ipfs.api`", "a string"),
        ] {
            let err = file_error("types", text).unwrap_or_default();
            assert!(err.contains(key) && err.contains(wanted), "{text:?}: {err}");
            assert!(!err.contains("not a known"), "{text:?}: {err}");
        }
        assert_eq!(file_error("sizes", "max_entry_size = \"8MiB\"\n"), None);
    }

    fn vars(pairs: &[(&str, &[u8])]) -> Vec<(OsString, OsString)> {
        use std::os::unix::ffi::OsStringExt as _;
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from_vec(v.to_vec())))
            .collect()
    }

    #[test]
    fn unknown_variables_and_values_that_are_not_utf8_are_errors_that_name_them() {
        let ok = vars(&[
            ("GH_CACHE_DIR", b"/tmp/c"),
            ("GH_CACHE_TTL_LIST", b"5m"),
            ("GH_CACHE_MAX_ENTRY_SIZE", b"8MiB"),
            ("PATH", b"/bin"),
            ("OTHER", b"\xff"),
        ]);
        assert!(check_env(ok).is_ok());
        for (name, value, said) in [
            ("GH_CACHE_TTL_BOGUS", &b"1m"[..], "names no TTL class"),
            (
                "GH_CACHE_DIRR",
                b"/tmp/c",
                "not a variable that ghcache reads",
            ),
            ("GH_CACHE_DIR", b"/tmp/\xff", "not valid UTF-8"),
            ("GH_CACHE_SCOPE", b"\xff", "not valid UTF-8"),
            ("GH_CACHE_ENABLED", b"\xff", "not valid UTF-8"),
        ] {
            let err = check_env(vars(&[(name, value)]))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(name) && err.contains(said), "{name}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn the_known_variables_are_exactly_those_that_are_read() {
        let asked = std::cell::RefCell::new(Vec::new());
        let env = |name: &str| {
            asked.borrow_mut().push(name.to_owned());
            None
        };
        let _ = Config::load(&env, &Flags::default());
        let mut read: Vec<String> = asked
            .into_inner()
            .into_iter()
            .filter(|n| n.starts_with("GH_CACHE_") && !n.starts_with("GH_CACHE_TTL_"))
            .collect();
        read.sort();
        read.dedup();
        let mut known: Vec<String> = ENV_VARS.iter().map(|n| n.to_string()).collect();
        known.sort();
        assert_eq!(read, known);
    }

    #[test]
    fn unknown_keys_are_rejected_with_the_key_named() {
        let dir = std::env::temp_dir().join(format!("ghcache-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let file = dir.join("config.toml");
        std::fs::write(&file, "colour = true\n").ok();
        let file_str: &'static str = Box::leak(file.display().to_string().into_boxed_str());
        let env: &'static [(&str, &str)] = Box::leak(Box::new([("GH_CACHE_CONFIG", file_str)]));
        let err = Config::load(&env_of(env), &Flags::default())
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("`colour`")));
        std::fs::remove_dir_all(&dir).ok();
    }
}
