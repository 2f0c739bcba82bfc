//! [`Request`]: a cacheable `gh` call as the chain serves it: its key, its TTL, how stale an
//! answer may be, and how the origin runs it.

use std::time::Duration;

use crate::heard::Allowance;
use crate::key::{CacheKey, KeyInput};
use crate::policy::Resource;

/// A cacheable `gh` call, ready for the [`crate::Chain`]: built by the CLI from the policy's
/// decision and the caller's context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// gh's arguments exactly as the user gave them (what the origin runs).
    pub argv: Vec<String>,
    /// Everything the key is made of.
    pub input: KeyInput,
    /// `input.key()`, computed once.
    pub key: CacheKey,
    /// The repository that the answer is about (`owner/name`, lowercase), for invalidation.
    pub repo: String,
    /// What the answer shows: which writes drop it.
    pub resource: Resource,
    /// How long a fetched answer stays fresh.
    pub ttl: Duration,
    /// How long past its TTL a stale answer may still be served when GitHub fails.
    pub max_stale: Duration,
    /// A `gh api` GET: the origin records ETags and revalidates with `If-None-Match`.
    pub revalidate: bool,
    /// The entry's own TTL ([`crate::Manifest::ttl_ms`]) may shorten `ttl`: set for HTTP
    /// answers, whose producer kept GitHub's `Cache-Control: max-age` there. A producer can so
    /// make an entry stale sooner, never fresher.
    pub capped_by_entry_ttl: bool,
    /// Never answered from a stored entry on its TTL: gh's reads inside a write command (it
    /// reads the labels, then sets them) must see GitHub as it is now. A stored entry still
    /// serves to revalidate (a free 304) and, past a failure, as stale-if-error where
    /// `max_stale` allows.
    pub fresh_only: bool,
    /// Writes to what it asks about are heard: past `ttl`, an entry made while they were may
    /// stay fresh up to the heard TTL (see [`crate::heard`]). `None`: the TTL only.
    pub heard: Option<Allowance>,
    /// Why GitHub should not be asked if it can be helped (its rate limit is short: see
    /// [`crate::budget`]): a stale entry within `max_stale` is then served, with this reason in
    /// its warning, rather than a charged request sent. `None`: ask GitHub as usual.
    pub prefer_stale: Option<String>,
}

impl Request {
    /// A request for `argv` keyed by `input`.
    pub fn new(argv: Vec<String>, input: KeyInput, repo: String, ttl: Duration) -> Self {
        let key = input.key();
        Request {
            argv,
            input,
            key,
            repo,
            resource: Resource::Other,
            ttl,
            max_stale: Duration::from_secs(24 * 3600),
            revalidate: false,
            capped_by_entry_ttl: false,
            fresh_only: false,
            heard: None,
            prefer_stale: None,
        }
    }
}
