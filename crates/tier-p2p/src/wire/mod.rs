//! Every message this crate sends or receives, and their bounded encodings.
//!
//! Seven channels carry them. What peers send each other: gossipsub ([`Gossip`], in `gossip`:
//! announcements, invalidations, rate-limit news), and five request-response protocols,
//! `/ghcache/catch-up/2` ([`CatchUp`], [`CaughtUp`], in `catch_up`), `/ghcache/fetch/1`
//! ([`FetchRequest`], [`FetchResponse`], in `fetch`), `/ghcache/directory/1` ([`DirectoryRequest`],
//! [`DirectoryResponse`], in `directory`), `/ghcache/oidc/1` ([`Presentation`],
//! [`Presented`], in `oidc`) and `/ghcache/reach/1` ([`DialBack`], [`DialedBack`], in
//! `reach`). What local commands send: the daemon's Unix control socket
//! ([`Control`], [`Reply`], in `control`), which no peer reaches. Anything read from a peer or a
//! socket is decoded here, with the core's bounded [`Reader`](ghcache_core::wire::Reader) (the
//! one that reads manifests and bodies too): size caps are checked before any allocation, and
//! nothing received makes it panic.
//!
//! The rest is shared by both sides: `frame` (the length-prefixed framing), `entry` (a manifest
//! and a body), `invalidation` (what a write made out of date), `tag` (every message's first
//! byte, distinct across all of them) and `error`. This file only declares and re-exports: the
//! paths `wire::X` name every public item.

mod catch_up;
mod control;
mod directory;
mod entry;
mod error;
mod fetch;
mod frame;
mod gossip;
mod invalidation;
mod oidc;
mod reach;
mod tag;
#[cfg(test)]
mod tests;

/// Largest encoded manifest: the core's one cap, which the IPFS tier uses too.
pub use ghcache_core::MAX_MANIFEST;
/// Largest repository name in an invalidation: the core's one cap, which manifests use too.
pub use ghcache_core::MAX_REPO;

pub use catch_up::{
    CatchUp, CatchUpCodec, CaughtUp, Vouch, CATCH_UP_PROTOCOL, MAX_CATCH_UP_ITEMS,
    MAX_CATCH_UP_REQUEST, MAX_CATCH_UP_SCOPES, MAX_CAUGHT_UP, MAX_VOUCH, MAX_VOUCH_COVERS,
};
pub use control::{
    control_request_cap, read_request, Control, Frame, FrameBudget, Reply, MAX_CONTROL_FRAME,
    MAX_CONTROL_REQUEST,
};
pub use directory::{
    DirectoryCodec, DirectoryItem, DirectoryRequest, DirectoryResponse, DIRECTORY_PROTOCOL,
    MAX_DIRECTORY_ITEMS, MAX_DIRECTORY_PROVIDERS, MAX_DIRECTORY_REQUEST, MAX_DIRECTORY_RESPONSE,
};
pub use entry::MAX_BODY;
pub use error::WireError;
pub use fetch::{
    FetchCodec, FetchRequest, FetchResponse, FETCH_PROTOCOL, MAX_FETCH_REQUEST, MAX_FETCH_RESPONSE,
};
pub use frame::{read_frame, write_frame};
pub use gossip::{Gossip, MAX_GOSSIP};
pub use invalidation::Invalidation;
pub use oidc::{
    OidcCodec, Presentation, Presented, MAX_PRESENTATION, MAX_PRESENTED, MAX_PRESENTED_SCOPES,
    MAX_REFUSAL, MAX_SCOPE_NAME, MAX_TOKEN, OIDC_PROTOCOL,
};
pub use reach::{
    DialBack, DialedBack, ReachCodec, MAX_REACH_PORTS, MAX_REACH_REQUEST, MAX_REACH_RESPONSE,
    REACH_PROTOCOL,
};
