//! Names in a cache directory that more than one crate reads: the local tier checks the
//! directory, the p2p tier's daemon lives in it, and the command finds the daemon there.

/// The cache dir's subdirectory of this machine's node: its identity, the daemon's control
/// socket, the OIDC key sets. A place on disk, not the p2p tier's name: it is spelt the same,
/// but renaming the tier must not move the socket that commands of every version look for,
/// nor the directory the local tier checks (whoever can write it can stand in for the daemon).
pub const NODE_DIR: &str = "p2p";
