//! Names in a cache directory that more than one crate reads: the local tier checks the
//! directory, the p2p tier's daemon lives in it, and the command finds the daemon there.

/// The cache dir's subdirectory of this machine's node: its identity, the daemon's control
/// socket, the OIDC key sets. A place on disk, not the p2p tier's name: it is spelt the same,
/// but renaming the tier must not move the socket that commands of every version look for,
/// nor the directory the local tier checks (whoever can write it can stand in for the daemon).
pub const NODE_DIR: &str = "p2p";

/// The file in [`NODE_DIR`] where the daemon tells this machine's commands which writes it
/// hears ([`crate::heard::Report`]): private to its owner, as everything there.
pub const HEARD_FILE: &str = "heard";

/// The file in the cache dir where this machine keeps its rate-limit book
/// ([`crate::budget::Book`]): what GitHub last said of each principal's budget, and the pauses
/// its secondary limits set. Its lock is the same name with `.lock`.
pub const BUDGET_FILE: &str = "budget";
