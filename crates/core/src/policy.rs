//! Which `gh` commands may be cached, for how long, and which are writes.
//!
//! PLACEHOLDER API: bodies are being written; signatures are the contract.

use std::time::Duration;

/// Freshness class of a cacheable command; each has its own TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TtlClass {
    /// `pr list`, `issue list`, `run list`, `label list`, `repo list`, `workflow list`, ...
    List,
    /// `pr view`, `issue view`, `run view`, `pr diff`, `pr checks`, `workflow view`, ...
    View,
    /// `repo view`: changes rarely.
    RepoView,
    /// `release list|view`.
    Release,
    /// `search *`.
    Search,
    /// `gh api` GET/HEAD and GraphQL queries.
    Api,
}

impl TtlClass {
    /// All classes, in config order.
    pub const ALL: [TtlClass; 6] = [
        TtlClass::List,
        TtlClass::View,
        TtlClass::RepoView,
        TtlClass::Release,
        TtlClass::Search,
        TtlClass::Api,
    ];

    /// Name used in the config file (`[ttl] list = "60s"`) and in `ghcache config`.
    pub fn name(self) -> &'static str {
        match self {
            TtlClass::List => "list",
            TtlClass::View => "view",
            TtlClass::RepoView => "repo_view",
            TtlClass::Release => "release",
            TtlClass::Search => "search",
            TtlClass::Api => "api",
        }
    }

    /// Default TTL.
    pub fn default_ttl(self) -> Duration {
        Duration::from_secs(match self {
            TtlClass::List => 60,
            TtlClass::View => 120,
            TtlClass::RepoView => 3600,
            TtlClass::Release => 600,
            TtlClass::Search => 60,
            TtlClass::Api => 60,
        })
    }
}

/// A cacheable command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cacheable {
    /// TTL class.
    pub class: TtlClass,
    /// Normalised argv for the key: the repo flag removed (the repo context is keyed separately).
    pub key_argv: Vec<String>,
    /// Value of `-R/--repo`, if given.
    pub repo_flag: Option<String>,
    /// A repository named by the arguments themselves (`repo view o/r`, `api repos/o/r/...`).
    pub named_repo: Option<String>,
    /// `gh api` GET without `--paginate`: the origin may use ETags.
    pub api_get: bool,
    /// The user passed `-i/--include` to `gh api`: headers are part of the output.
    pub include_headers: bool,
}

/// A command known to change GitHub state: run it, and on success drop the repo's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Value of `-R/--repo`, if given.
    pub repo_flag: Option<String>,
    /// A repository named by the arguments themselves (`api repos/o/r/...`, `repo edit o/r`).
    pub named_repo: Option<String>,
}

/// What to do with a `gh` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Read-only and on the allowlist: answer from the cache.
    Cache(Cacheable),
    /// A write: run gh, then invalidate.
    Write(Write),
    /// Anything else (interactive, streaming, unknown, aliases): exec gh untouched.
    Passthrough(&'static str),
}

/// Classifies gh's arguments (without the leading `gh`).
pub fn classify(argv: &[String]) -> Decision {
    let _ = argv;
    Decision::Passthrough("not yet classified")
}
