//! The settings, one row each: its key in the file, its environment variable, its flag, how
//! its text is read, where it lands in [`Config`], and what it means.
//!
//! Everything that names a setting is drawn from [`ROWS`]: reading the file, the environment
//! and the flags (in that order, each over the one before), the variables `check_env` knows,
//! the `ghcache config` listing, and the README's settings table (a test compares the two). A
//! new setting is a field of [`Config`], its default, and a row here.
//!
//! ```text
//!   row "max_size"
//!     file  max_size = "1GiB"        ─┐
//!     env   GH_CACHE_MAX_SIZE=1GiB    ├─ Kind::Size reads the text ─> config.max_size
//!     flag  (none)                   ─┘                               (value, Source)
//!   ghcache config:  max_size = "1.0GiB"  # env GH_CACHE_MAX_SIZE
//! ```
//!
//! The daemon's own flags (`--listen`, `--keep`, ...) are applied by `ghcache daemon`, after
//! this; the rows name them for the README.
//!
//! This file holds the rows and the types they are made of; `read.rs` reads the sources
//! through them and `listing.rs` shows them.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use ghcache_core::policy::TtlClass;

use super::effective::{Config, Flags, Setting, Source, SwarmKeySource};
use super::value::SIZE_HINT;

/// One setting.
pub(super) struct Row {
    /// The name `ghcache config` lists it under.
    pub(super) key: &'static str,
    /// Its key in the file (`section.name` for a key of a `[section]`); `None`: not in the file.
    pub(super) file: Option<&'static str>,
    /// The variable that sets it.
    pub(super) env: Option<Var>,
    /// The flags that set it, as the README shows them.
    // This and the next two are read only where a test draws the README's table.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) flags: &'static str,
    /// The default, as the README shows it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) default: &'static str,
    /// What it does, for the README.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) doc: &'static str,
    /// What it holds: how the file's and the environment's text is read, where it lands, how it
    /// is shown.
    pub(super) kind: Kind,
    /// Its value among the flags every command takes ([`Flags`]), with the flag's name.
    pub(super) from_flags: Option<FlagOf>,
    /// How `ghcache config` shows it, where the kind's way does not say enough.
    pub(super) show: Option<fn(&Config) -> String>,
    /// Whether `ghcache config` lists it.
    pub(super) listed: bool,
}

/// Reads a row's value among the flags every command takes, with the name of the flag that
/// gave it; `None` when no flag did.
pub(super) type FlagOf = fn(&Flags) -> Option<(Given, &'static str)>;

/// An environment variable of a row.
#[derive(Clone, Copy)]
pub(super) struct Var {
    pub(super) name: &'static str,
    pub(super) blank: Blank,
}

/// What a variable set to blank text means.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Blank {
    /// A value like any other: off for a switch, an error for a size or a duration.
    Value,
    /// The variable counts as unset.
    Unset,
    /// The variable counts as unset when it holds only whitespace (a key's text, which a CI
    /// secret that is not set leaves blank or a newline).
    Whitespace,
}

/// A variable whose empty value counts as unset.
const fn var(name: &'static str) -> Option<Var> {
    Some(Var {
        name,
        blank: Blank::Unset,
    })
}

/// A variable whose empty value is read like any other.
const fn var_blank_is_value(name: &'static str) -> Option<Var> {
    Some(Var {
        name,
        blank: Blank::Value,
    })
}

/// Where a setting lands in [`Config`]: the same field, to read and to write.
pub(super) struct Place<T: 'static> {
    pub(super) read: fn(&Config) -> &Setting<T>,
    pub(super) write: fn(&mut Config) -> &mut Setting<T>,
}

/// The [`Place`] of a field of [`Config`]: `place!(p2p.deadline)`.
macro_rules! place {
    ($($field:ident).+) => {
        Place {
            read: |c| &c.$($field).+,
            write: |c| &mut c.$($field).+,
        }
    };
}

/// What a setting holds.
pub(super) enum Kind {
    /// On or off.
    Switch(Place<bool>),
    /// On, off, or (unset) decided by something else, which the text describes.
    Auto(Place<Option<bool>>, &'static str),
    /// A number of bytes; the text is the environment's hint (it names a typical size).
    Size(Place<u64>, &'static str),
    Duration(Place<Duration>),
    /// A number of things (requests).
    Count(Place<u64>),
    /// How long answers of a TTL class stay fresh.
    Ttl(TtlClass),
    /// How long answers of a TTL class may stay fresh while their writes are heard.
    HeardTtl(TtlClass),
    Path(Place<PathBuf>),
    Program(Place<OsString>),
    Text(Place<String>),
    /// Text, or (unset) what the text describes.
    Optional(Place<Option<String>>, &'static str),
    List(Place<Vec<String>>),
    /// Where the swarm key comes from, made from the text given.
    Key(fn(String) -> SwarmKeySource),
}

/// A value read from one source, before it lands.
pub(super) enum Given {
    Switch(bool),
    Size(u64),
    Count(u64),
    Duration(Duration),
    Text(String),
    Path(PathBuf),
    Program(OsString),
    List(Vec<String>),
}

/// A `[section]` of the file: the keys of rows named `section.name`.
pub(super) struct Section {
    pub(super) name: &'static str,
    /// What the error says when the section is not a table: the shape it must have.
    pub(super) shape: &'static str,
}

/// The file's sections, in the order of their rows.
pub(super) const SECTIONS: &[Section] = &[
    Section {
        name: "ttl",
        shape: "must be a table: [ttl] list = \"5m\"",
    },
    Section {
        name: "heard_ttl",
        shape: "must be a table: [heard_ttl] list = \"10m\"",
    },
    Section {
        name: "p2p",
        shape: "must be a table: [p2p]",
    },
    Section {
        name: "ipfs",
        shape: "must be a table: [ipfs]",
    },
    Section {
        name: "http",
        shape: "must be a table: [http]",
    },
];

/// The variable that names the config file: read before the file, so no row of its own.
pub(super) const CONFIG_VAR: &str = "GH_CACHE_CONFIG";

/// A TTL class's row: one per class, in the order of [`TtlClass::ALL`] (a test holds this).
const fn ttl(
    key: &'static str,
    env: &'static str,
    class: TtlClass,
    default: &'static str,
    doc: &'static str,
) -> Row {
    Row {
        key,
        file: Some(key),
        env: var_blank_is_value(env),
        flags: "`--ttl CLASS=DURATION`",
        default,
        doc,
        kind: Kind::Ttl(class),
        from_flags: None,
        show: None,
        listed: true,
    }
}

/// A TTL class's heard TTL row: one per class, in the order of [`TtlClass::ALL`] (a test
/// holds this). No flag sets it.
const fn heard_ttl(
    key: &'static str,
    env: &'static str,
    class: TtlClass,
    default: &'static str,
    doc: &'static str,
) -> Row {
    Row {
        flags: "",
        kind: Kind::HeardTtl(class),
        ..ttl(key, env, class, default, doc)
    }
}

/// Every setting, in the order `ghcache config` lists them.
pub(super) const ROWS: &[Row] = &[
    Row {
        key: "enabled",
        file: Some("enabled"),
        env: var_blank_is_value("GH_CACHE_ENABLED"),
        flags: "`--no-cache`",
        default: "true",
        doc: "false (`GH_CACHE_ENABLED=0`): plain gh, as if ghcache were not there",
        kind: Kind::Switch(place!(enabled)),
        from_flags: Some(|f| f.no_cache.then_some((Given::Switch(false), "--no-cache"))),
        show: None,
        listed: true,
    },
    Row {
        key: "debug",
        file: Some("debug"),
        env: var_blank_is_value("GH_CACHE_DEBUG"),
        flags: "`--debug`",
        default: "false",
        doc: "one stderr line per call: tier, key, ms",
        kind: Kind::Switch(place!(debug)),
        from_flags: Some(|f| f.debug.then_some((Given::Switch(true), "--debug"))),
        show: None,
        listed: true,
    },
    Row {
        key: "cache_dir",
        file: Some("cache_dir"),
        env: var("GH_CACHE_DIR"),
        flags: "`--cache-dir DIR`",
        default: "`$XDG_CACHE_HOME/ghcache`",
        doc: "where the cache lives",
        kind: Kind::Path(place!(cache_dir)),
        from_flags: Some(|f| {
            let dir = f.cache_dir.clone()?;
            Some((Given::Path(dir), "--cache-dir"))
        }),
        show: None,
        listed: true,
    },
    Row {
        key: "gh",
        file: Some("gh"),
        env: var("GH_CACHE_GH"),
        flags: "`--gh PROGRAM`",
        default: "`gh` on PATH",
        doc: "the gh program to run",
        kind: Kind::Program(place!(gh)),
        from_flags: Some(|f| Some((Given::Program(f.gh.clone()?), "--gh"))),
        show: None,
        listed: true,
    },
    Row {
        key: "scope",
        file: Some("scope"),
        env: var("GH_CACHE_SCOPE"),
        flags: "`--scope SCOPE`",
        default: "derived (see \"What is cached\")",
        doc: "who is asking: entries never cross scopes",
        kind: Kind::Optional(
            place!(scope),
            "(derived: actions repo, token hash, gh login, or anonymous)",
        ),
        from_flags: Some(|f| Some((Given::Text(f.scope.clone()?), "--scope"))),
        show: None,
        listed: true,
    },
    Row {
        key: "max_size",
        file: Some("max_size"),
        env: var_blank_is_value("GH_CACHE_MAX_SIZE"),
        flags: "",
        default: "`512MiB`",
        doc: "the cache's cap; the least recently used is evicted",
        kind: Kind::Size(place!(max_size), "must be a size like 512MiB"),
        from_flags: None,
        show: None,
        listed: true,
    },
    Row {
        key: "max_entry_size",
        file: Some("max_entry_size"),
        env: var_blank_is_value("GH_CACHE_MAX_ENTRY_SIZE"),
        flags: "",
        default: "`64MiB`",
        doc: "a larger answer is printed as gh writes it, not stored, not added to IPFS nor taken from it",
        kind: Kind::Size(place!(max_entry_size), "must be a size like 64MiB"),
        from_flags: None,
        show: None,
        listed: true,
    },
    Row {
        key: "max_stale",
        file: Some("max_stale"),
        env: var_blank_is_value("GH_CACHE_MAX_STALE"),
        flags: "",
        default: "`24h`",
        doc: "when GitHub fails, a stale answer younger than this is served, with a warning",
        kind: Kind::Duration(place!(max_stale)),
        from_flags: None,
        show: None,
        listed: true,
    },
    Row {
        key: "rate_limit_reserve",
        file: Some("rate_limit_reserve"),
        env: var_blank_is_value("GH_CACHE_RATE_LIMIT_RESERVE"),
        flags: "",
        default: "`50`",
        doc: "at or below this many requests left of GitHub's rate limit, a read serves a stale answer within `max_stale` rather than spend one; see \"Near GitHub's rate limits\"",
        kind: Kind::Count(place!(rate_limit_reserve)),
        from_flags: None,
        show: None,
        listed: true,
    },
    Row {
        key: "rate_limit_wait",
        file: Some("rate_limit_wait"),
        env: var_blank_is_value("GH_CACHE_RATE_LIMIT_WAIT"),
        flags: "",
        default: "`1m`",
        doc: "the longest a request waits out a pause that GitHub's secondary rate limit asked for; a longer pause is not waited for",
        kind: Kind::Duration(place!(rate_limit_wait)),
        from_flags: None,
        show: None,
        listed: true,
    },
    Row {
        key: "rate_limit_in_flight",
        file: Some("rate_limit_in_flight"),
        env: var_blank_is_value("GH_CACHE_RATE_LIMIT_IN_FLIGHT"),
        flags: "",
        default: "`20`",
        doc: "the most requests of one token (or a repository's job tokens) in flight at once from this machine; GitHub refuses more than 100 across all",
        kind: Kind::Count(place!(rate_limit_in_flight)),
        from_flags: None,
        show: None,
        listed: true,
    },
    Row {
        key: "clock_skew",
        file: Some("clock_skew"),
        env: var_blank_is_value("GH_CACHE_CLOCK_SKEW"),
        flags: "",
        default: "`2s`",
        doc: "how far another machine's clock may run ahead; see \"Never an answer from before a write\"",
        kind: Kind::Duration(place!(clock_skew)),
        from_flags: None,
        show: None,
        listed: true,
    },
    Row {
        key: "lock_timeout",
        file: Some("lock_timeout"),
        env: None,
        flags: "",
        default: "`2m`",
        doc: "how long a call that missed waits for another fetching the same key",
        kind: Kind::Duration(place!(lock_timeout)),
        from_flags: None,
        show: None,
        listed: true,
    },
    ttl(
        "ttl.list",
        "GH_CACHE_TTL_LIST",
        TtlClass::List,
        "`1m`",
        "how long lists stay fresh",
    ),
    ttl(
        "ttl.view",
        "GH_CACHE_TTL_VIEW",
        TtlClass::View,
        "`2m`",
        "how long views of one item stay fresh",
    ),
    ttl(
        "ttl.repo_view",
        "GH_CACHE_TTL_REPO_VIEW",
        TtlClass::RepoView,
        "`1h`",
        "how long `repo view` stays fresh",
    ),
    ttl(
        "ttl.release",
        "GH_CACHE_TTL_RELEASE",
        TtlClass::Release,
        "`10m`",
        "how long releases stay fresh",
    ),
    ttl(
        "ttl.search",
        "GH_CACHE_TTL_SEARCH",
        TtlClass::Search,
        "`1m`",
        "how long searches stay fresh",
    ),
    ttl(
        "ttl.api",
        "GH_CACHE_TTL_API",
        TtlClass::Api,
        "`1m`",
        "how long `gh api` answers stay fresh; then they are revalidated",
    ),
    heard_ttl(
        "heard_ttl.list",
        "GH_CACHE_HEARD_TTL_LIST",
        TtlClass::List,
        "`10m`",
        "how long lists may stay fresh while their writes are heard; see \"Longer freshness where writes are heard\"",
    ),
    heard_ttl(
        "heard_ttl.view",
        "GH_CACHE_HEARD_TTL_VIEW",
        TtlClass::View,
        "`10m`",
        "the same, for views of one item",
    ),
    heard_ttl(
        "heard_ttl.repo_view",
        "GH_CACHE_HEARD_TTL_REPO_VIEW",
        TtlClass::RepoView,
        "`1h`",
        "the same, for `repo view`",
    ),
    heard_ttl(
        "heard_ttl.release",
        "GH_CACHE_HEARD_TTL_RELEASE",
        TtlClass::Release,
        "`1h`",
        "the same, for releases",
    ),
    heard_ttl(
        "heard_ttl.search",
        "GH_CACHE_HEARD_TTL_SEARCH",
        TtlClass::Search,
        "`1m`",
        "the same, for searches (GitHub's search index lags writes)",
    ),
    heard_ttl(
        "heard_ttl.api",
        "GH_CACHE_HEARD_TTL_API",
        TtlClass::Api,
        "`10m`",
        "the same, for `gh api` answers",
    ),
    Row {
        key: "p2p.enabled",
        file: Some("p2p.enabled"),
        env: var("GH_CACHE_P2P"),
        flags: "",
        default: "ask this cache dir's daemon if one runs",
        doc: "false: never ask a daemon; true: a swarm key is required",
        kind: Kind::Auto(
            place!(p2p.enabled),
            "auto (ask this cache dir's daemon if one runs)",
        ),
        from_flags: None,
        show: None,
        listed: true,
    },
    Row {
        key: "p2p.deadline",
        file: Some("p2p.deadline"),
        env: var_blank_is_value("GH_CACHE_P2P_DEADLINE"),
        flags: "",
        default: "`150ms`",
        doc: "how long a call waits for the swarm before asking GitHub",
        kind: Kind::Duration(place!(p2p.deadline)),
        from_flags: None,
        show: None,
        listed: true,
    },
    Row {
        key: "p2p.swarm_key",
        file: Some("p2p.swarm_key_file"),
        env: var("GH_CACHE_SWARM_KEY_FILE"),
        flags: "`daemon --swarm-key FILE`",
        default: "none",
        doc: "the swarm's `swarm.key` file",
        kind: Kind::Key(|path| SwarmKeySource::File(path.into())),
        from_flags: None,
        show: None,
        listed: true,
    },
    Row {
        key: "p2p.swarm_key",
        file: None,
        env: Some(Var {
            name: "GH_CACHE_SWARM_KEY",
            blank: Blank::Whitespace,
        }),
        flags: "",
        default: "none",
        doc: "the key's text itself (from a CI secret), over the file",
        kind: Kind::Key(SwarmKeySource::Text),
        from_flags: None,
        show: None,
        // The line above shows the key's source, whichever of the two set it.
        listed: false,
    },
    Row {
        key: "p2p.listen",
        file: Some("p2p.listen"),
        env: None,
        flags: "`daemon --listen MULTIADDR`, `--no-listen`",
        default: "`[\"/ip4/0.0.0.0/tcp/4001\"]`",
        doc: "where the daemon listens",
        kind: Kind::List(place!(p2p.listen)),
        from_flags: None,
        show: None,
        listed: true,
    },
    Row {
        key: "p2p.bootstrap",
        file: Some("p2p.bootstrap"),
        env: None,
        flags: "`daemon --bootstrap MULTIADDR`",
        default: "`[]`",
        doc: "peers the daemon dials at start",
        kind: Kind::List(place!(p2p.bootstrap)),
        from_flags: None,
        show: None,
        listed: true,
    },
    Row {
        key: "p2p.mdns",
        file: Some("p2p.mdns"),
        env: None,
        flags: "`daemon --no-mdns`",
        default: "true",
        doc: "look for peers on the local network",
        kind: Kind::Switch(place!(p2p.mdns)),
        from_flags: None,
        show: None,
        listed: true,
    },
    Row {
        key: "p2p.read_only",
        file: Some("p2p.read_only"),
        env: None,
        flags: "`daemon --read-only`",
        default: "false",
        doc: "consume only: never announce or serve entries",
        kind: Kind::Switch(place!(p2p.read_only)),
        from_flags: None,
        show: None,
        listed: true,
    },
    Row {
        key: "p2p.trusted_peers",
        file: Some("p2p.trusted_peers"),
        env: None,
        flags: "`daemon --trusted-peer ID`",
        default: "`[]`",
        doc: "accept entries only from these producers",
        kind: Kind::List(place!(p2p.trusted_peers)),
        from_flags: None,
        show: None,
        listed: true,
    },
    Row {
        key: "p2p.metrics",
        file: Some("p2p.metrics"),
        env: None,
        flags: "`daemon --metrics ADDR`",
        default: "off",
        doc: "serve Prometheus metrics on `http://ADDR/metrics`",
        kind: Kind::Optional(place!(p2p.metrics), "off"),
        from_flags: None,
        show: Some(|c| {
            let metrics = &c.p2p.metrics.value;
            metrics.clone().unwrap_or_else(|| "off".to_owned())
        }),
        listed: true,
    },
    Row {
        key: "p2p.webhook",
        file: Some("p2p.webhook"),
        env: None,
        flags: "`daemon --webhook ADDR`",
        default: "off",
        doc: "take GitHub's webhook deliveries on `http://ADDR/` (needs a webhook secret)",
        kind: Kind::Optional(place!(p2p.webhook), "off"),
        from_flags: None,
        show: None,
        // As the keeper's settings: listing them changes `ghcache config`'s output.
        listed: false,
    },
    Row {
        key: "p2p.webhook_secret_file",
        file: Some("p2p.webhook_secret_file"),
        env: None,
        flags: "`daemon --webhook-secret-file FILE`",
        default: "none",
        doc: "the file holding the webhook's secret",
        kind: Kind::Optional(place!(p2p.webhook_secret_file), "none"),
        from_flags: None,
        show: None,
        listed: false,
    },
    Row {
        key: "p2p.webhook_secret",
        file: None,
        env: Some(Var {
            name: "GH_CACHE_WEBHOOK_SECRET",
            blank: Blank::Whitespace,
        }),
        flags: "",
        default: "none",
        doc: "the webhook's secret itself (from a CI secret), over the file",
        kind: Kind::Optional(place!(p2p.webhook_secret), "none"),
        from_flags: None,
        show: None,
        listed: false,
    },
    Row {
        key: "p2p.follow",
        file: Some("p2p.follow"),
        env: None,
        flags: "`daemon --follow`",
        default: "false",
        doc: "watch the repositories the swarm asked about in the last hour with conditional requests (free 304s); a change is dropped on every peer",
        kind: Kind::Switch(place!(p2p.follow)),
        from_flags: None,
        show: None,
        listed: false,
    },
    Row {
        key: "p2p.follow_every",
        file: Some("p2p.follow_every"),
        env: None,
        flags: "`daemon --follow-every DURATION`",
        default: "`1m`",
        doc: "time between follow rounds (5 requests per repository each)",
        kind: Kind::Duration(place!(p2p.follow_every)),
        from_flags: None,
        show: None,
        listed: false,
    },
    Row {
        key: "p2p.keep",
        file: Some("p2p.keep"),
        env: None,
        flags: "`daemon --keep`",
        default: "false",
        doc: "be a keeper: keep and serve a copy of what the connected peers' scopes announce",
        kind: Kind::Switch(place!(p2p.keep)),
        from_flags: None,
        show: None,
        // `ghcache config` has never listed the keeper's settings; listing them changes its
        // output, which is for another change than the table's.
        listed: false,
    },
    Row {
        key: "p2p.keep_max_size",
        file: Some("p2p.keep_max_size"),
        env: None,
        flags: "`daemon --keep-max-size SIZE`",
        default: "`2GiB`",
        doc: "a keeper's store cap, least recently used out first",
        kind: Kind::Size(place!(p2p.keep_max_size), SIZE_HINT),
        from_flags: None,
        show: None,
        listed: false,
    },
    Row {
        key: "ipfs.enabled",
        file: Some("ipfs.enabled"),
        env: var("GH_CACHE_IPFS"),
        flags: "`--ipfs`",
        default: "false",
        doc: "also look for answers in IPFS, and add what GitHub answered to it",
        kind: Kind::Switch(place!(ipfs.enabled)),
        from_flags: Some(|f| f.ipfs.then_some((Given::Switch(true), "--ipfs"))),
        show: None,
        listed: true,
    },
    Row {
        key: "ipfs.api",
        file: Some("ipfs.api"),
        env: var("GH_CACHE_IPFS_API"),
        flags: "`--ipfs-api URL`",
        default: "`http://127.0.0.1:5001`",
        doc: "the IPFS node's Kubo RPC API",
        kind: Kind::Text(place!(ipfs.api)),
        from_flags: Some(|f| Some((Given::Text(f.ipfs_api.clone()?), "--ipfs-api"))),
        show: None,
        listed: true,
    },
    Row {
        key: "ipfs.gateway",
        file: Some("ipfs.gateway"),
        env: var("GH_CACHE_IPFS_GATEWAY"),
        flags: "",
        default: "none",
        doc: "an IPFS HTTP gateway that bodies are read from where no `api` is set (lookups only)",
        kind: Kind::Optional(place!(ipfs.gateway), "none"),
        from_flags: None,
        show: Some(|c| {
            let unused = c.ipfs.api.source != Source::Default;
            match &c.ipfs.gateway.value {
                None => "none".to_owned(),
                Some(url) if unused => format!("{url:?} (unused: an API is configured)"),
                Some(url) => format!("{url:?}"),
            }
        }),
        listed: true,
    },
    Row {
        key: "ipfs.deadline",
        file: Some("ipfs.deadline"),
        env: var_blank_is_value("GH_CACHE_IPFS_DEADLINE"),
        flags: "",
        default: "`500ms`",
        doc: "how long a call waits for IPFS before asking GitHub",
        kind: Kind::Duration(place!(ipfs.deadline)),
        from_flags: None,
        show: None,
        listed: true,
    },
    Row {
        key: "ipfs.encrypt",
        file: Some("ipfs.encrypt"),
        env: var("GH_CACHE_IPFS_ENCRYPT"),
        flags: "`--ipfs-encrypt`, `--no-ipfs-encrypt`",
        default: "on when a swarm key is set",
        doc: "seal bodies before they are added to IPFS",
        kind: Kind::Auto(place!(ipfs.encrypt), "auto (on when a swarm key is set)"),
        from_flags: Some(|f| {
            let on = f.ipfs_encrypt?;
            let name = if on {
                "--ipfs-encrypt"
            } else {
                "--no-ipfs-encrypt"
            };
            Some((Given::Switch(on), name))
        }),
        show: None,
        listed: true,
    },
    Row {
        key: "http.enabled",
        file: Some("http.enabled"),
        env: var("GH_CACHE_HTTP"),
        flags: "",
        default: "true",
        doc: "serve gh's own API requests through ghcache; false: they go to GitHub directly",
        kind: Kind::Switch(place!(http.enabled)),
        from_flags: None,
        show: None,
        listed: true,
    },
];

/// The variables the rows read, in their order, after [`CONFIG_VAR`]; without the TTL
/// classes' ([`ttl_vars`]).
pub(super) fn setting_vars() -> impl Iterator<Item = &'static str> {
    let rows = ROWS.iter().filter(|row| !row.kind.is_ttl());
    std::iter::once(CONFIG_VAR).chain(rows.filter_map(|row| row.env.map(|v| v.name)))
}

/// `GH_CACHE_TTL_LIST`, ..., `GH_CACHE_HEARD_TTL_LIST`, ...: the TTL classes' variables, in
/// class order, the TTLs' first.
pub(super) fn ttl_vars() -> impl Iterator<Item = &'static str> {
    ROWS.iter()
        .filter(|row| row.kind.is_ttl())
        .filter_map(|row| row.env.map(|v| v.name))
}

#[cfg(test)]
impl Row {
    /// Whether the kind reads a list (which no variable holds).
    pub(super) fn is_list(&self) -> bool {
        matches!(self.kind, Kind::List(_))
    }

    /// The TTL class the row sets, if it is one's.
    pub(super) fn ttl_class(&self) -> Option<TtlClass> {
        match self.kind {
            Kind::Ttl(class) => Some(class),
            _ => None,
        }
    }

    /// The TTL class whose heard TTL the row sets, if it is one's.
    pub(super) fn heard_ttl_class(&self) -> Option<TtlClass> {
        match self.kind {
            Kind::HeardTtl(class) => Some(class),
            _ => None,
        }
    }

    /// Whether its default is shown as `ghcache config` shows it (switches and durations).
    pub(super) fn default_is_listed_form(&self) -> bool {
        matches!(
            self.kind,
            Kind::Switch(_) | Kind::Duration(_) | Kind::Ttl(_) | Kind::HeardTtl(_)
        )
    }

    /// Whether a flag of every command sets it.
    pub(super) fn has_flag(&self) -> bool {
        self.from_flags.is_some()
    }
}
