//! ghcache's p2p tier.
//!
//! The daemon ([`run`]) holds this machine's node in the team's private libp2p swarm: it
//! announces entries fetched from GitHub, serves them to peers, and finds entries other peers
//! hold. A keeper (`Config::keep`) also keeps a copy of what its scopes' peers announce, so that
//! runners nobody can dial, which leave when their job ends, still share what they fetched.
//! CLI processes reach it through [`Tier`], a [`ghcache_core::CacheTier`] that talks to the
//! daemon over a Unix socket in the cache dir, and costs one refused connect when no daemon runs.
//! Every connection to that socket is checked first (the socket module): a socket in a directory
//! another user can write, or one that another user's process listens on, is not used.

mod asks;
mod budget;
mod catch_up;
mod check;
mod config;
mod control;
mod daemon;
mod dials;
mod directory;
mod error;
mod fetches;
mod heard;
mod hearing;
mod invalidations;
mod keeper;
mod log;
mod node;
pub mod oidc;
mod repos;
mod role;
mod shares;
pub mod sign;
mod socket;
mod status;
mod swarm;
mod swarm_key;
mod tier;
mod topics;
mod traffic;
pub mod wire;

pub use config::Config;
pub use error::Error;
pub use heard::{CountsOf, CoversOf, WriteSource};
pub use libp2p::identity::Keypair;
pub use libp2p::{Multiaddr, PeerId};
pub use node::{run, run_with};
pub use repos::RecentRepos;
pub use status::{Counters, HeardStatus, Keeping, SourceStatus, Status};
pub use swarm::transport;
pub use swarm_key::{SwarmKey, SwarmKeyExt};
pub use tier::{status, Tier, NAME};
pub use traffic::Traffic;
