//! Body files, named by the blake3 digest of their bytes.

use std::collections::HashSet;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ghcache_core::Digest;

/// Name of the blob directory inside the cache directory.
pub(crate) const BLOBS: &str = "blobs";

/// Temporary files start with this; anything else in a fan-out directory is a blob.
const TMP_PREFIX: &str = ".tmp-";

/// Temporary files younger than this may belong to a writer that is still running.
pub(crate) const TMP_GRACE: Duration = Duration::from_secs(600);

static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// The blob directory: `<root>/<first two hex digits>/<digest hex>`.
#[derive(Debug, Clone)]
pub(crate) struct Blobs {
    root: PathBuf,
}

/// A body written to a temporary file, not yet visible under its digest.
#[derive(Debug)]
pub(crate) struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl Staged {
    /// Renames the temporary file into place (atomic: readers see the old file or the new one).
    pub(crate) fn publish(mut self) -> io::Result<()> {
        std::fs::rename(&self.tmp, &self.dest)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl Blobs {
    pub(crate) fn new(dir: &Path) -> Self {
        Blobs {
            root: dir.join(BLOBS),
        }
    }

    pub(crate) fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.root.join(&hex[..2]).join(hex)
    }

    /// Writes `bytes` to a temporary file in the directory of its final name.
    ///
    /// Not fsynced: a body lost to a power cut fails its digest check on read and is dropped
    /// (a miss), which costs less than an fsync on every store.
    pub(crate) async fn stage(&self, digest: Digest, bytes: Vec<u8>) -> io::Result<Staged> {
        let dest = self.path(&digest);
        let name = format!(
            "{TMP_PREFIX}{}-{}-{}",
            std::process::id(),
            NEXT_TMP.fetch_add(1, Ordering::Relaxed),
            digest.to_hex()
        );
        let tmp = dest.with_file_name(name);
        let staged = Staged {
            tmp,
            dest,
            done: false,
        };
        let tmp = staged.tmp.clone();
        tokio::task::spawn_blocking(move || write_new(&tmp, &bytes))
            .await
            .map_err(io::Error::other)??;
        Ok(staged)
    }

    /// Reads a blob; `NotFound` when there is none.
    ///
    /// Read in place rather than on tokio's blocking pool: a blob is a small local file, and on
    /// the hit path starting a pool thread costs more than the read.
    pub(crate) async fn read(&self, digest: &Digest) -> io::Result<Vec<u8>> {
        std::fs::read(self.path(digest))
    }

    /// Removes a blob if present.
    pub(crate) fn remove(&self, digest: &Digest) -> io::Result<()> {
        match std::fs::remove_file(self.path(digest)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    /// Removes blobs that `keep` does not name and temporary files older than `grace`.
    /// Returns how many files were removed. Errors on single files are skipped.
    pub(crate) fn sweep(&self, keep: &HashSet<String>, grace: Duration) -> u64 {
        let mut removed = 0;
        let Ok(fans) = std::fs::read_dir(&self.root) else {
            return 0;
        };
        for fan in fans.flatten() {
            let Ok(files) = std::fs::read_dir(fan.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name();
                let name = name.to_string_lossy();
                let orphan = if name.starts_with(TMP_PREFIX) {
                    file.metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > grace)
                } else {
                    !keep.contains(name.as_ref())
                };
                if orphan && std::fs::remove_file(file.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }
}

fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    };
    let mut file = match open() {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)?;
            }
            open()?
        }
        other => other?,
    };
    let written = file.write_all(bytes).and_then(|()| file.flush());
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}
