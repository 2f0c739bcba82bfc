//! [`Config`]: where the local tier keeps its files and how much it may keep.

use std::path::PathBuf;
use std::time::Duration;

/// The local tier's name in counters, debug lines and errors. Here, in a module that names no
/// other, so that every module can name the tier without reaching the tier itself.
pub const NAME: &str = "local";

/// Default size cap of the stored bodies: 512 MiB.
const DEFAULT_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// Where the local tier keeps its files and how much it may keep.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct Config {
    /// The cache directory (`GH_CACHE_DIR`). Created with mode 0700 if missing; refused when
    /// another user owns or can write it, or when it holds other files and is not a cache.
    pub dir: PathBuf,
    /// Cap on the bytes of stored bodies; least recently used entries are evicted above it.
    pub max_bytes: u64,
    /// A hit records its time for LRU eviction only when the last record is older than this, so
    /// that most hits write nothing. Default 10 minutes.
    pub touch_every: Duration,
    /// A process that appends its counters to the pending file folds the file into the index
    /// once the file is larger than this, so that a cache that only ever hits does not grow it
    /// without bound. Default 256 KiB (about 11,000 hits).
    pub fold_counters_at: u64,
    /// A process that wrote to the index leaves its write-ahead log for a later one, unless
    /// the log is larger than this: the checkpoint that empties it syncs the disk two or three
    /// times, milliseconds a command would wait for at exit, while the next process to open the
    /// index only reads the log (a fraction of a millisecond at this size). Default 512 KiB,
    /// about fifteen stores.
    pub checkpoint_wal_at: u64,
    /// How far another machine's clock may run ahead of ours: an entry it made less than this
    /// after an invalidation seen here is not stored (see `ghcache_core::CLOCK_SKEW`).
    pub clock_skew: Duration,
}

impl Config {
    /// A configuration for `dir` with the default cap (512 MiB).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Config {
            dir: dir.into(),
            max_bytes: DEFAULT_MAX_BYTES,
            touch_every: Duration::from_secs(600),
            fold_counters_at: 256 * 1024,
            checkpoint_wal_at: 512 * 1024,
            clock_skew: ghcache_core::CLOCK_SKEW,
        }
    }
}
