//! What can fail while the HTTP level is set up for a gh run: each error says what could not be
//! made and why, and gh then runs without the level rather than not at all.

use std::path::PathBuf;

/// What went wrong setting up the HTTP level for a gh run. gh then runs without it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The private directory for gh's socket and configuration could not be made.
    #[error("cannot make a private directory in {dir}: {reason}")]
    Dir {
        /// Where it was to be made.
        dir: PathBuf,
        /// OS error text.
        reason: String,
    },
    /// The socket path is longer than a Unix socket address holds.
    #[error(
        "the socket path {path} is too long for a Unix socket (set TMPDIR to a shorter directory)"
    )]
    PathTooLong {
        /// The path.
        path: PathBuf,
    },
    /// The socket could not be bound.
    #[error("cannot listen on {path}: {reason}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// OS error text.
        reason: String,
    },
    /// gh's configuration could not be read or written for the run.
    #[error("cannot prepare gh's configuration in {dir}: {reason}")]
    GhConfig {
        /// The directory.
        dir: PathBuf,
        /// OS error text.
        reason: String,
    },
}
