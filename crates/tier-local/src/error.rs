//! [`Error`]: why the local cache could not be opened or used, in words that name the cache
//! directory and say what to do; it converts into core's [`TierError`] for the chain.

use std::path::PathBuf;

use ghcache_core::TierError;

/// Why the local cache could not be opened or used. Each message names the cache directory and
/// says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The directory or its index could not be opened or created.
    #[error("cannot open the cache at {}: {reason} (set GH_CACHE_DIR to a writable directory)", dir.display())]
    Open {
        /// The cache directory.
        dir: PathBuf,
        /// What failed.
        reason: String,
    },
    /// Another user owns, or group or others can write, the cache directory, its index or a
    /// directory in it: whoever can write them chooses what ghcache prints.
    #[error("refusing the cache at {}: {reason}", dir.display())]
    Unsafe {
        /// The cache directory.
        dir: PathBuf,
        /// What is wrong, and the command that fixes it.
        reason: String,
    },
    /// The directory holds files and is not a ghcache cache: ghcache deletes files in its
    /// cache directory, so it does not take over one that is in use.
    #[error("{} is not a ghcache cache (it holds other files, and neither ghcache's CACHEDIR.TAG nor an index.db); set GH_CACHE_DIR to a new or empty directory", dir.display())]
    NotACache {
        /// The directory.
        dir: PathBuf,
    },
    /// A query on the index failed after it was opened.
    #[error("the cache index at {} failed: {reason} (run `ghcache clear`, or remove {} to start over)", dir.join("index.db").display(), dir.display())]
    Index {
        /// The cache directory.
        dir: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A body file could not be written (full disk, permissions).
    #[error("cannot write to the cache at {}: {reason} (free some space, or set GH_CACHE_DIR to a writable directory)", dir.display())]
    Write {
        /// The cache directory.
        dir: PathBuf,
        /// What failed, with the OS error.
        reason: String,
    },
    /// The index was written by a newer ghcache whose schema this one does not know.
    #[error("the cache at {} was written by a newer ghcache (schema {found}, this one knows up to {known}); upgrade ghcache or set GH_CACHE_DIR to another directory", dir.display())]
    Newer {
        /// The cache directory.
        dir: PathBuf,
        /// Schema version found in the index.
        found: i64,
        /// Newest schema version this build knows.
        known: i64,
    },
    /// The cache directory is read-only: entries are served but nothing is stored.
    #[error("the cache at {} is read-only: nothing can be stored (make it writable, or set GH_CACHE_DIR to a writable directory)", dir.display())]
    ReadOnly {
        /// The cache directory.
        dir: PathBuf,
    },
    /// A lock file could not be created or locked.
    #[error("cannot lock {}: {source} (make {} writable, or set GH_CACHE_DIR to a writable directory)", path.display(), dir.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The cache directory.
        dir: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl From<Error> for TierError {
    fn from(err: Error) -> Self {
        match err {
            Error::ReadOnly { .. } => TierError::ReadOnly {
                tier: crate::config::NAME,
            },
            other => TierError::Unavailable {
                tier: crate::config::NAME,
                reason: other.to_string(),
            },
        }
    }
}
