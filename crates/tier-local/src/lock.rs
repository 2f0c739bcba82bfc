//! [`KeyLock`]: one process per cache key asks GitHub; the others wait for its answer.
//!
//! An `flock` on a file per key, so that a killed holder never leaves a stuck lock behind.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ghcache_core::CacheKey;
use rustix::fs::{flock, FlockOperation};

use crate::blobs::is_hex;
use crate::cachedir::LOCKS;
use crate::error::Error;

/// An exclusive lock on one cache key, held across processes; released when dropped.
///
/// It lets one process per key ask GitHub while the others wait and then read what it stored.
/// The lock is an `flock` on `<dir>/locks/<key hex>.lock`, so it dies with its holder: a killed
/// process never leaves a stuck lock. Lock files that nobody holds are removed by
/// [`KeyLock::remove_unheld`].
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

    /// Removes the lock files of the cache at `dir` that no process holds; returns how many.
    ///
    /// # Behavior
    /// Only names of ghcache's own lock files are touched. A file is removed while this holds
    /// its lock, and only if its name still refers to it; a process that opened it before and
    /// gets its lock after finds it gone and locks the file now at that name instead, so two
    /// processes never both hold one key's lock. Errors on single files are skipped.
    pub fn remove_unheld(dir: &Path) -> u64 {
        let Ok(files) = std::fs::read_dir(dir.join(LOCKS)) else {
            return 0;
        };
        let mut removed = 0;
        for file in files.flatten() {
            let path = file.path();
            let ours = file.file_name().to_str().is_some_and(is_lock_name);
            if !ours || !file.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let Ok(held) = OpenOptions::new().read(true).open(&path) else {
                continue;
            };
            if flock(&held, FlockOperation::NonBlockingLockExclusive).is_err() {
                continue;
            }
            if still_at(&held, &path) && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

/// Whether `name` is one that ghcache gives a lock file: `<key hex>.lock`, or the index's.
fn is_lock_name(name: &str) -> bool {
    name == INDEX_LOCK
        || name
            .strip_suffix(".lock")
            .is_some_and(|key| is_hex(key, 64))
}

/// Opens (creating) `path` and takes an exclusive `flock` on it within `timeout`.
///
/// The lock is only good while `path` still names the locked file: [`KeyLock::remove_unheld`]
/// unlinks an unheld file, and one that another process opened before the unlink is locked by
/// nobody else afterwards. So a lock taken on a file that is no longer at `path` is dropped and
/// taken again on the file that is.
pub(crate) fn lock_file(dir: &Path, path: &Path, timeout: Duration) -> Result<Option<File>, Error> {
    let fail = |source: io::Error| Error::Lock {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        source,
    };
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
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
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(err)
                    if err == rustix::io::Errno::WOULDBLOCK || err == rustix::io::Errno::INTR => {}
                Err(err) => return Err(fail(err.into())),
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(25));
        }
        if still_at(&file, path) {
            return Ok(Some(file));
        }
    }
}

/// Whether `path` still names the open `file` (same device and inode).
pub(crate) fn still_at(file: &File, path: &Path) -> bool {
    match (rustix::fs::fstat(file), rustix::fs::stat(path)) {
        (Ok(open), Ok(named)) => open.st_dev == named.st_dev && open.st_ino == named.st_ino,
        _ => false,
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

/// File name of the lock that serialises moving a corrupt index aside.
const INDEX_LOCK: &str = "index.lock";

/// Path of the lock that serialises moving a corrupt index aside.
pub(crate) fn index_lock_path(dir: &Path) -> PathBuf {
    dir.join(LOCKS).join(INDEX_LOCK)
}
