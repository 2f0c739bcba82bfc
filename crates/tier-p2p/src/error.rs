//! The errors of the p2p tier: what the daemon could not start or do, and what a client of
//! its socket could not get.
//!
//! One public enum, so that the CLI prints each as one line that says what failed and what to
//! do; what goes wrong inside a lookup is not here but a miss or core's `TierError`.

use std::path::PathBuf;

/// Why the p2p daemon or its client could not do what was asked.
///
/// Each variant's text says what failed and, where there is one, what to do about it: the CLI
/// prints it as one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The swarm key is missing or malformed.
    #[error("swarm key: {reason}; make one with `ghcache swarm-key new --out swarm.key`")]
    SwarmKey {
        /// What is wrong with it.
        reason: String,
    },
    /// A swarm key file could not be read or written, or other users could read it.
    #[error("swarm key file {}: {reason}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// An OIDC key set or token file that cannot be used.
    #[error("{0}")]
    Oidc(String),
    /// Another daemon already answers on this cache dir's socket.
    #[error("a ghcache daemon is already running for cache dir {dir} (socket {socket})")]
    AlreadyRunning {
        /// The cache dir.
        dir: PathBuf,
        /// Its control socket.
        socket: PathBuf,
    },
    /// No daemon answers on this cache dir's socket.
    #[error("no ghcache daemon is running for cache dir {dir}; start one with `ghcache daemon`")]
    NoDaemon {
        /// The cache dir.
        dir: PathBuf,
    },
    /// A daemon holds this cache dir's socket but did not answer: busy, or hung.
    #[error("the ghcache daemon at {} {what} (busy?)", socket.display())]
    Unresponsive {
        /// Its control socket.
        socket: PathBuf,
        /// What it failed to do, e.g. "did not answer within 3s".
        what: String,
    },
    /// The control socket could not be bound or used.
    #[error("p2p control socket {path}: {source}")]
    Socket {
        /// The socket's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The control socket is not one to talk to: it is in a directory that another user owns
    /// or can write, or another user's process listens on it (see the socket module). It was
    /// not used.
    #[error("not using the daemon socket {}: {reason}", socket.display())]
    Untrusted {
        /// The socket's path.
        socket: PathBuf,
        /// Which check failed.
        reason: String,
    },
    /// The libp2p node could not be set up (transport, listen address, behaviour).
    #[error("p2p node: {0}")]
    Node(String),
    /// The daemon answered something this client does not understand.
    #[error("p2p daemon protocol: {0}")]
    Protocol(String),
}
