//! ghcache's follow probes: a daemon started with `--follow` watches the repositories its peers
//! asked about in the last hour with conditional requests that GitHub answers with a free
//! `304 Not Modified` while nothing changed (DESIGN.md, "GitHub's own writes"). An answer that
//! changed becomes a [`ghcache_core::event::HeardWrite`] of the classes it covers, by core's
//! one event table, which the daemon drops here and sends to the swarm, as it does a webhook
//! delivery's.

mod follower;
mod probe;

pub use follower::{api_base, Config, Counts, Follower, MAX_REPOS};
pub use probe::PROBES;
