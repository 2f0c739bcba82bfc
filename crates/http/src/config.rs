//! The HTTP level's settings: who is asking (the scope of what it reads and stores), how long
//! answers stay fresh, how large a body is stored, and what the command it serves is about. The
//! CLI fills them from its own configuration for each gh it runs.

use std::time::Duration;

use ghcache_core::policy::TtlClass;

/// Who is asking: the scope of the entries a [`crate::Level`] reads and stores.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// One scope for every request: the one ghcache worked out for the gh it runs (from
    /// `GH_CACHE_SCOPE`, the Actions job, the token in the environment or the login).
    Fixed(String),
}

impl Scope {
    /// The scope string of a request.
    pub(crate) fn of(&self) -> &str {
        match self {
            Scope::Fixed(scope) => scope,
        }
    }
}

/// Settings of a [`crate::Level`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Who is asking.
    pub scope: Scope,
    /// How long a REST answer stays fresh, unless GitHub's `Cache-Control: max-age` says less.
    pub rest_ttl: Duration,
    /// How long an answer to a GraphQL query stays fresh.
    pub graphql_ttl: Duration,
    /// How long past its TTL a stored answer may still stand in when GitHub fails.
    pub max_stale: Duration,
    /// How far another machine's clock may run ahead of this one's
    /// (`ghcache_core::CLOCK_SKEW`).
    pub clock_skew: Duration,
    /// The largest body that is stored; a larger one is streamed to gh as it comes and not
    /// kept (logs, archives, release assets).
    pub max_body: u64,
    /// The repository the command is about (`owner/name`, lowercase), if ghcache knows it: a
    /// GraphQL mutation does not name its repository in a form ghcache can read (it names a
    /// node id), so the write is taken to be about this one. Without it, such a write drops
    /// every stored answer.
    pub context_repo: Option<String>,
    /// Reads are never answered on their TTL, only revalidated or fetched: the gh that runs is
    /// a write command, which acts on what it reads (see `Request::fresh_only`).
    pub fresh_only: bool,
    /// One line per request on stderr.
    pub debug: bool,
    /// The job's declared own token (its hash) and repository: requests with it count against
    /// the repository's budget, which all its jobs share (see `ghcache_core::budget`).
    pub job_token: Option<(ghcache_core::TokenHash, String)>,
    /// The longest a request waits for a secondary limit's pause to end before it is sent.
    pub rate_limit_wait: Duration,
    /// Requests left at or below which a read prefers a stale answer within `max_stale` to a
    /// charged request.
    pub rate_limit_reserve: u64,
}

impl Config {
    /// [`Config::max_body`] by default: 8 MiB. A page of 100 issues is a few hundred KiB; what
    /// is larger is a log, an archive or an asset, which gh writes to a file or a pager and
    /// which nobody asks for twice a minute. Held in memory while it is stored, so kept well
    /// below the largest output entry.
    pub const DEFAULT_MAX_BODY: u64 = 8 << 20;

    /// [`Config::rate_limit_wait`] by default: GitHub's own "wait at least a minute" after a
    /// secondary limit that names no time, so that a read waits out one such pause.
    pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

    /// [`Config::rate_limit_reserve`] by default: 5% of a job token's 1,000 an hour, kept for
    /// the requests that have no stale answer to fall back on (writes, first reads).
    pub const DEFAULT_RATE_LIMIT_RESERVE: u64 = 50;

    /// The settings for `scope` with every other value at its default.
    pub fn new(scope: Scope) -> Config {
        Config {
            scope,
            rest_ttl: TtlClass::Api.default_ttl(),
            graphql_ttl: TtlClass::Api.default_ttl(),
            max_stale: Duration::from_secs(24 * 3600),
            clock_skew: ghcache_core::CLOCK_SKEW,
            max_body: Self::DEFAULT_MAX_BODY,
            context_repo: None,
            fresh_only: false,
            debug: false,
            job_token: None,
            rate_limit_wait: Self::DEFAULT_RATE_LIMIT_WAIT,
            rate_limit_reserve: Self::DEFAULT_RATE_LIMIT_RESERVE,
        }
    }
}
