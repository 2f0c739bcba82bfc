//! ghcache's origin: the real `gh`.
//!
//! [`Origin`] runs gh with the user's arguments, prints its stdout to a [`Sink`] (the user's
//! stdout or pager) as gh writes it while keeping a copy for the cache, keeps gh's terminal
//! output when the user is at a terminal (`GH_FORCE_TTY`), passes on the signals this process
//! receives, and revalidates stale `gh api` entries (a `304 Not Modified` is free against the
//! rate limit): with their ETag under the token that obtained it, else with their
//! `Last-Modified` (see [`Config::token`]). [`exec`] and [`run_inherited`] run gh untouched for commands
//! that are not cached.

mod capture;
mod config;
mod etag;
mod failure;
mod origin;
mod pager;
mod process;
mod signals;
mod stream;
mod writer;

pub use config::{Config, Sink};
pub use origin::Origin;
pub use pager::user_pager;
pub use process::{exec, run_attached, run_captured, run_inherited};
