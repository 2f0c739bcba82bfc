//! The ghcache domain.
//!
//! What a cached `gh` call is ([`Request`], [`CacheKey`], [`Entry`]), the ports that tiers and the
//! origin implement ([`CacheTier`], [`Origin`]), which commands may be cached ([`policy`]), and the
//! [`Chain`] that reads tiers in order and falls through to the origin, and the [`layers`] that
//! add a deadline or make a tier lookup-only around any tier.
//!
//! This crate does no I/O of its own and starts no runtime: tiers and the CLI bring those.

pub mod actions;
pub mod budget;
pub mod cache_dir;
mod chain;
pub mod context;
mod entry;
mod error;
pub mod event;
pub mod fence;
pub mod graphql;
pub mod heard;
mod hex;
mod invalidation_id;
mod key;
pub mod layers;
mod origin;
pub mod policy;
pub mod producer;
mod request;
mod scope;
mod stats;
pub mod swarm_key;
mod tier;
pub mod wire;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use chain::{Chain, ChainConfig, Resolved, Source, Verdict};
pub use entry::{
    Body, Digest, Entry, Manifest, TokenHash, MANIFEST_VERSION, MAX_MANIFEST, MAX_REPO,
};
pub use error::{DecodeError, TierError};
pub use fence::{Fence, FenceState, Mark, CLOCK_SKEW};
pub use invalidation_id::InvalidationId;
pub use key::{CacheKey, KeyInput, OutputMode, KEY_VERSION};
pub use origin::{Fetched, Origin, OriginError, Output};
pub use request::Request;
pub use scope::ScopeId;
pub use stats::{Event, Recorder, StatsSink};
pub use tier::{CacheTier, Lookup, Selector};

/// Milliseconds since the Unix epoch: the clock that `created_at` and freshness use.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
