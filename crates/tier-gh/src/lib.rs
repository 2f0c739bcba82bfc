//! ghcache's origin: the real `gh`.
//!
//! [`Origin`] runs gh with the user's arguments and captures what it prints, keeping gh's
//! terminal output when the user is at a terminal (`GH_FORCE_TTY`), and revalidates stale
//! `gh api` entries with their ETag (a `304 Not Modified` is free against the rate limit).
//! [`exec`] and [`run_inherited`] run gh untouched for commands that are not cached.

mod config;
mod etag;
mod failure;
mod origin;
mod pager;
mod process;

pub use config::Config;
pub use origin::Origin;
pub use pager::user_pager;
pub use process::{exec, run_inherited};
