//! The local tier: an SQLite index (WAL) and blob files named by the blake3 digest of the body.
//!
//! Everything lives in one cache directory, shared by every ghcache process on the machine:
//!
//! ```text
//! <dir>/CACHEDIR.TAG          marks the directory as ghcache's cache (backup tools skip it)
//! <dir>/index.db              entries (key -> manifest, body digest, size, last use) and counters
//! <dir>/blobs/<ab>/<abcd..>   encoded bodies, named by their digest; identical bodies stored once
//! <dir>/locks/<key>.lock      per-key locks, so that one process per key asks GitHub
//! <dir>/stats.pending         counters appended by lookups, folded into the index by writers
//! <dir>/fences                invalidation generations per repository (see the fence module)
//! <dir>/http-stats            the HTTP level's counters (see the journal module)
//! ```
//!
//! Writes are atomic: a body is written to a temporary file and renamed into place inside the
//! index transaction that refers to it, so a crash leaves at worst an unreferenced blob, never an
//! entry whose body is missing or partial. Every read checks the body's size and digest.
//!
//! The directory and everything in it is private to its owner (0700 directories, 0600 files);
//! one that another user could write is refused (see the cachedir module). ghcache deletes
//! only files of its own formats in it.

mod blobs;
mod budget;
mod cachedir;
mod config;
mod error;
mod fence;
mod index;
mod journal;
mod lazy;
mod lock;
mod open;
mod reader;
mod record;
mod stats;
mod tier;

pub use budget::{BookFile, InFlightFiles};
pub use config::{Config, NAME};
pub use error::Error;
pub use fence::{Fences, Moved};
pub use journal::{add_http_counters, http_counters};
pub use lazy::LazyTier;
pub use lock::KeyLock;
pub use reader::{Found, Read, Reader, Used};
pub use stats::Stats;
pub use tier::Tier;
