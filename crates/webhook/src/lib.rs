//! ghcache's webhook receiver: GitHub tells a daemon of writes made anywhere.
//!
//! A repository's or organisation's webhook delivers each event to a keeper
//! (`ghcache daemon --webhook ADDR`). The [`Receiver`] checks each delivery (its size, its
//! `X-Hub-Signature-256` against the shared [`Secret`], its id against those taken before),
//! reads what the event changed with core's table ([`ghcache_core::event`]) and hands the
//! [`ghcache_core::event::HeardWrite`] to the daemon, which drops what it covers and tells the
//! swarm. Nothing of a delivery is read before its signature is checked.

mod error;
mod receiver;
mod seen;
mod signature;

pub use error::Error;
pub use receiver::{Counts, Receiver};
pub use seen::REMEMBERED;
pub use signature::Secret;
