//! The daemon's log: one line per notable event, on stderr, each marked as the daemon's.
//!
//! Its own module because every part of the daemon writes to it (the event loop, the tasks
//! beside it, the swarm's construction), and none of them should have to reach the event loop
//! to do so.

/// Writes one line of the daemon's log.
pub(crate) fn log(line: std::fmt::Arguments<'_>) {
    eprintln!("ghcache daemon: {line}");
}
