//! ghcache's IPFS tier: entries outlive the machines that fetched them.
//!
//! Every body fetched from GitHub is also added (and pinned) to a Kubo node, a team's long-lived
//! node or IPFS Desktop, and its signed manifest is written to the node's MFS at
//! `/ghcache/v1/<scope id>/<key>`. A machine that misses locally and finds no live peer reads the
//! manifest (from the swarm's directory, else from MFS), `cat`s the CID, and checks the body
//! against the manifest's blake3 digest before using it.
//!
//! The Kubo RPC API is spoken by [`Kubo`], a small client on hyper, the HTTP stack the rest of
//! the project already uses. `ipfs-api-backend-actix` is not used: it is inactive since 2022, a
//! fresh lockfile cannot be resolved (its dependency `core2` is yanked on crates.io, so
//! `cargo install ghcache` would fail), its futures are not `Send`, and it would add ~70 crates
//! with duplicate major versions of http, thiserror and multiaddr.
//!
//! Where no API is configured, bodies can be read from an HTTP gateway ([`Gateway`], `GET
//! /ipfs/<cid>`) instead, for the manifests the swarm announced; nothing is added then.
//!
//! Anything added to a node that joins the public IPFS network is readable by whoever learns its
//! CID. With a swarm key, bodies are therefore sealed ([`BodyKey`]) before they are added.
//! Anyone who reaches the node's API can write its MFS: with a swarm key, manifests there are
//! sealed too ([`IndexKey`]), so only members write ones that are used; without one, the
//! composition root trusts a list of producers or only this machine ([`Tier::only_own`]).
//!
//! Bodies are pinned when added and unpinned when no manifest can use them any more
//! ([`Tier::sweep`]), so the node does not grow forever.

mod error;
mod gateway;
mod http;
mod kubo;
mod seal;
mod tier;

pub use error::Error;
pub use gateway::Gateway;
pub use kubo::Kubo;
pub use seal::{BodyKey, IndexKey, OpenError, SEAL_OVERHEAD};
pub use tier::{mfs_path, ManifestSource, Sign, Swept, Tier, Verify, NAME};
