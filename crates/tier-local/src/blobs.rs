//! Body files, named by the blake3 digest of their bytes.

use std::collections::HashSet;
use std::io::{self, Read as _, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ghcache_core::Digest;

use crate::cachedir::{distrust, BLOBS};

/// Temporary files are `.tmp-<pid>-<n>-<digest hex>`, beside the blob they become.
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

    /// Reads a blob; `NotFound` when there is none, `PermissionDenied` when another user owns
    /// it or can write it (its digest proves nothing when the index may be forged too).
    ///
    /// Read in place rather than on tokio's blocking pool: a blob is a small local file, and on
    /// the hit path starting a pool thread costs more than the read.
    pub(crate) fn read(&self, digest: &Digest) -> io::Result<Vec<u8>> {
        let path = self.path(digest);
        let mut file = std::fs::File::open(&path)?;
        // The open file's own metadata: the name may be replaced after the open.
        let meta = file.metadata()?;
        if let Some(why) = distrust(&meta, rustix::process::geteuid().as_raw()) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                why.explain(&path, false),
            ));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
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
    ///
    /// # Behavior
    /// Touches only names of ghcache's own formats: blobs named by their digest in the fan-out
    /// directory of its first two digits, and temporary files of [`Blobs::stage`]. Anything
    /// else under the blob directory is someone else's and is left alone.
    pub(crate) fn sweep(&self, keep: &HashSet<String>, grace: Duration) -> u64 {
        let mut removed = 0;
        let Ok(fans) = std::fs::read_dir(&self.root) else {
            return 0;
        };
        for fan in fans.flatten() {
            let fan_name = fan.file_name();
            let Some(prefix) = fan_name.to_str().filter(|n| is_hex(n, 2)) else {
                continue;
            };
            // Not followed: a link to a directory elsewhere is not ours to empty.
            if !fan.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(files) = std::fs::read_dir(fan.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name();
                let Some(name) = name.to_str() else {
                    continue;
                };
                if !file.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let orphan = match Name::parse(name, prefix) {
                    Some(Name::Blob) => !keep.contains(name),
                    Some(Name::Tmp) => file
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > grace),
                    None => false,
                };
                if orphan && std::fs::remove_file(file.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }
}

/// The kinds of file ghcache makes in a fan-out directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    /// `<digest hex>`.
    Blob,
    /// `.tmp-<pid>-<n>-<digest hex>`.
    Tmp,
}

impl Name {
    /// The kind of `name` found in the fan-out directory `prefix`; `None` when ghcache does not
    /// make such a name there.
    fn parse(name: &str, prefix: &str) -> Option<Name> {
        let in_fan = |hex: &str| is_hex(hex, 64) && hex.starts_with(prefix);
        if in_fan(name) {
            return Some(Name::Blob);
        }
        let mut parts = name.strip_prefix(TMP_PREFIX)?.splitn(3, '-');
        let numbers = parts.by_ref().take(2).filter(|p| is_decimal(p)).count();
        (numbers == 2 && parts.next().is_some_and(in_fan)).then_some(Name::Tmp)
    }
}

/// `len` lowercase hex digits, as [`Digest::to_hex`] writes them.
pub(crate) fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// One or more ASCII digits.
pub(crate) fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_that_ghcache_makes_are_recognised() {
        let hex = Digest::of(b"x").to_hex();
        let fan = &hex[..2];
        assert_eq!(Name::parse(&hex, fan), Some(Name::Blob));
        let tmp = format!("{TMP_PREFIX}12-0-{hex}");
        assert_eq!(Name::parse(&tmp, fan), Some(Name::Tmp));
        let other_fan = if fan == "00" { "01" } else { "00" };
        for foreign in [
            "notes.txt",
            &hex[..63],
            &hex.to_uppercase(),
            &format!("{hex}.bak"),
            &format!("{TMP_PREFIX}12-{hex}"),
            &format!("{TMP_PREFIX}x-0-{hex}"),
            &format!("{TMP_PREFIX}12-0-{hex}-more"),
        ] {
            assert_eq!(Name::parse(foreign, fan), None, "{foreign}");
        }
        assert_eq!(Name::parse(&hex, other_fan), None, "a blob in another fan");
        assert_eq!(Name::parse(&tmp, other_fan), None);
    }
}
