use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ghcache_core::CacheKey;
use rustix::fs::{flock, FlockOperation};

use crate::error::Error;

/// Name of the directory of lock files inside the cache directory.
pub(crate) const LOCKS: &str = "locks";

/// An exclusive lock on one cache key, held across processes; released when dropped.
///
/// It lets one process per key ask GitHub while the others wait and then read what it stored.
/// The lock is an `flock` on `<dir>/locks/<key hex>.lock`, so it dies with its holder: a killed
/// process never leaves a stuck lock.
#[derive(Debug)]
pub struct KeyLock {
    // Closing the file releases the lock.
    _file: File,
}

impl KeyLock {
    /// Takes the lock for `key` in the cache at `dir`, waiting up to `timeout`.
    ///
    /// # Behavior
    /// Blocks the calling thread, polling with short sleeps. Returns `Ok(None)` when `timeout`
    /// passed without getting the lock: the caller proceeds unlocked.
    ///
    /// # Errors
    /// [`Error::Lock`] when the lock file cannot be created or locked (read-only or missing
    /// directory).
    pub fn acquire(
        dir: &Path,
        key: &CacheKey,
        timeout: Duration,
    ) -> Result<Option<KeyLock>, Error> {
        let path = dir.join(LOCKS).join(format!("{}.lock", key.to_hex()));
        lock_file(dir, &path, timeout).map(|file| file.map(|file| KeyLock { _file: file }))
    }
}

/// Opens (creating) `path` and takes an exclusive `flock` on it within `timeout`.
pub(crate) fn lock_file(dir: &Path, path: &Path, timeout: Duration) -> Result<Option<File>, Error> {
    let fail = |source: io::Error| Error::Lock {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        source,
    };
    let file = match open_lock(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(fail)?;
            }
            open_lock(path)
        }
        other => other,
    }
    .map_err(fail)?;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(Some(file)),
            Err(err) if err == rustix::io::Errno::WOULDBLOCK || err == rustix::io::Errno::INTR => {}
            Err(err) => return Err(fail(err.into())),
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

fn open_lock(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

/// Path of the lock that serialises moving a corrupt index aside.
pub(crate) fn index_lock_path(dir: &Path) -> PathBuf {
    dir.join(LOCKS).join("index.lock")
}
