//! The HTTP level: every API request that gh makes, answered from the tiers, revalidated, or
//! passed on to GitHub.
//!
//! gh reads `http_unix_socket` from its configuration and then sends each API request as plain
//! HTTP/1.1 into that Unix socket (`Host: api.github.com`, its `Authorization`, the method, path
//! and body; REST and GraphQL alike). A [`Session`] serves such a socket for one gh run, with a
//! configuration directory for gh that is the user's own plus that one setting
//! ([`GhConfig`]); the [`Level`] answers what arrives:
//!
//! ```text
//! gh ──unix socket──> Level ── REST GET/HEAD ──> tiers (fresh?) ── stale: If-None-Match ─┐
//!                       │   ── GraphQL query ──> tiers (fresh?) ─────────────────────────┤
//!                       │   ── write ──────────> GitHub, then drop what it changes       │
//!                       │   ── anything else ──> GitHub                                   │
//!                       └──────────────────── Upstream (TLS, HTTPS_PROXY, NO_PROXY) <─────┘
//! ```
//!
//! What a request is (`classify`), its key (`key`), how a
//! stored answer is framed (`stored`), and how it is fetched and judged (the origin) are one
//! module each; the checks of what a peer may have sent are in `stored`.

mod body;
mod budget;
mod classify;
mod config;
mod error;
mod gh_config;
mod key;
mod level;
mod origin;
mod proxy;
mod server;
mod stats;
mod stored;
mod upstream;

pub use body::Body;
pub use budget::Gate;
pub use config::{Config, Scope};
pub use error::Error;
pub use gh_config::GhConfig;
pub use level::{Invalidate, Level};
pub use server::Session;
pub use stats::Counts;
pub use upstream::{Fetched, Upstream};
