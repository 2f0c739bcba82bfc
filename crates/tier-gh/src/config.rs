//! [`Config`]: how the GitHub tier runs gh, where gh's output goes while it runs, and which
//! token's ETags may be sent back.

use std::ffi::OsString;

use ghcache_core::TokenHash;

/// How to run gh.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The gh program: a name looked up on `PATH`, or a path.
    pub program: OsString,
    /// Where gh's stdout is printed while gh runs. `None`: nowhere; the whole answer is held
    /// and returned for the caller to print ([`ghcache_core::Fetched::Fresh`]).
    pub sink: Option<Sink>,
    /// The largest answer (gh's stdout) that is kept for the cache when printing to a sink; a
    /// larger one is printed and not stored.
    pub max_entry_size: u64,
    /// [`ghcache_core::Manifest::token_hash`] of the token gh sends, `None` when it cannot be
    /// known without running gh (a token in the system keyring). GitHub's ETags depend on the
    /// token: an ETag is sent back only under the token that obtained it, and under another
    /// `If-Modified-Since` is sent instead where the answer had a `Last-Modified`.
    pub token: Option<TokenHash>,
    /// Variables added to gh's environment (the HTTP level's `GH_CONFIG_DIR`).
    pub env: Vec<(OsString, OsString)>,
}

impl Config {
    /// The default of [`Config::max_entry_size`]: 64 MiB. Far above what gh prints for one
    /// command (a long `gh api --paginate` listing is a few MiB), so every ordinary answer is
    /// cached, and low enough that the copy kept while gh runs, and again while it is stored,
    /// stays a small part of a machine's memory; an eighth of the default cache size, so one
    /// answer cannot push most of the cache out.
    pub const DEFAULT_MAX_ENTRY_SIZE: u64 = 64 << 20;

    /// Runs `program` as gh; the answer is held and returned, not printed.
    pub fn new(program: OsString) -> Self {
        Config {
            program,
            sink: None,
            max_entry_size: Self::DEFAULT_MAX_ENTRY_SIZE,
            token: None,
            env: Vec::new(),
        }
    }

    /// gh sends the token whose [`ghcache_core::Manifest::token_hash`] is `hash`.
    pub fn with_token(mut self, hash: TokenHash) -> Self {
        self.token = Some(hash);
        self
    }

    /// Runs gh with `env` added to its environment.
    pub fn with_env(mut self, env: Vec<(OsString, OsString)>) -> Self {
        self.env = env;
        self
    }

    /// Prints gh's stdout to `sink` as gh writes it.
    pub fn printing_to(mut self, sink: Sink) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Keeps answers of up to `bytes` for the cache.
    pub fn with_max_entry_size(mut self, bytes: u64) -> Self {
        self.max_entry_size = bytes;
        self
    }
}

/// Where gh's stdout goes while gh runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sink {
    /// This process's stdout.
    Stdout,
    /// A pager: a shell command (`sh -c`), started when gh first prints something, with the
    /// user's terminal; this process waits for it to exit.
    Pager(String),
}
