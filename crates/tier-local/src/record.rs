//! Records: what a hit needs to know about an entry, one small file per key beside the blobs,
//! so that a hit opens no database.
//!
//! ```text
//! <dir>/records/<ab>/<key hex>   b"GHR1", fence mark u64, manifest length u32, manifest,
//!                                blake3 of everything before it (32 bytes)
//! ```
//!
//! The index stays the store of record. A record is written (temp file, then rename) inside the
//! index transaction that stores its row, under the same fence mark, and removed inside the one
//! that deletes it. A record is only ever trusted as far as the index row would be: it is served
//! only while the fence still reads its mark (so no invalidation is undone by a record that
//! outlived its row), its body must match the digest and size in its manifest (so a killed
//! writer never leaves a record that answers with another body), and a record that fails its
//! own checksum is a miss. A record whose row is gone (a crash between the rename and the
//! commit, or before the removal) still describes an answer fetched under its mark: it is safe
//! to serve, and the next eviction sweeps it.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ghcache_core::{CacheKey, Manifest};

use crate::blobs::is_hex;
use crate::cachedir::{distrust, RECORDS};

const MAGIC: &[u8; 4] = b"GHR1";
/// Manifests are a few hundred bytes; anything much larger is not a record of ours.
const MAX_RECORD: u64 = 64 * 1024;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A record as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// The fence mark the entry was stored under.
    pub mark: u64,
    /// The entry's manifest, as encoded.
    pub manifest: Vec<u8>,
}

/// Where the record of `key` lives.
pub(crate) fn path(dir: &Path, key: &CacheKey) -> PathBuf {
    let hex = key.to_hex();
    dir.join(RECORDS).join(&hex[..2]).join(hex)
}

/// Writes the record of `key` atomically (a reader sees the old one or the new one, whole).
pub(crate) fn write(dir: &Path, key: &CacheKey, mark: u64, manifest: &Manifest) -> io::Result<()> {
    let manifest = manifest.encode();
    let mut bytes = Vec::with_capacity(4 + 8 + 4 + manifest.len() + 32);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&mark.to_le_bytes());
    bytes.extend_from_slice(&(manifest.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&manifest);
    let sum = blake3::hash(&bytes);
    bytes.extend_from_slice(sum.as_bytes());
    let target = path(dir, key);
    let fan = target.parent().unwrap_or(dir);
    if let Err(err) = std::fs::metadata(fan) {
        if err.kind() != io::ErrorKind::NotFound {
            return Err(err);
        }
        crate::cachedir::make_dir(fan)?;
    }
    let tmp = fan.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| file.write_all(&bytes))
        .and_then(|()| std::fs::rename(&tmp, &target));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Reads the record of `key`: `Ok(None)` when there is none.
///
/// # Errors
/// A record that another user owns or can write (`PermissionDenied`), one that fails its
/// checksum or format (`InvalidData`), or a read error.
pub(crate) fn read(dir: &Path, key: &CacheKey) -> io::Result<Option<Record>> {
    let path = path(dir, key);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    // The open file's own metadata: the name may be replaced after the open.
    let meta = file.metadata()?;
    if let Some(why) = distrust(&meta, rustix::process::geteuid().as_raw()) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            why.explain(&path, false),
        ));
    }
    if meta.len() > MAX_RECORD {
        return Err(invalid("too large"));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes)?;
    decode(&bytes).map(Some)
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad record: {why}"))
}

fn decode(bytes: &[u8]) -> io::Result<Record> {
    if bytes.len() < 4 + 8 + 4 + 32 || &bytes[..4] != MAGIC {
        return Err(invalid("not a record"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if blake3::hash(body).as_bytes() != sum {
        return Err(invalid("checksum"));
    }
    let mut mark = [0u8; 8];
    mark.copy_from_slice(&body[4..12]);
    let mut len = [0u8; 4];
    len.copy_from_slice(&body[12..16]);
    let manifest = &body[16..];
    if manifest.len() != u32::from_le_bytes(len) as usize {
        return Err(invalid("length"));
    }
    Ok(Record {
        mark: u64::from_le_bytes(mark),
        manifest: manifest.to_vec(),
    })
}

/// Removes the record of `key` if there is one.
pub(crate) fn remove(dir: &Path, key: &[u8]) {
    if let Ok(key) = <[u8; 32]>::try_from(key) {
        // Gone already is fine; any other failure leaves an orphan that the fence and the next
        // sweep deal with.
        let _ = std::fs::remove_file(path(dir, &CacheKey(key)));
    }
}

/// Removes records whose key `keep` does not hold, and temporary files of writers that died.
/// Touches only names of this module's formats.
pub(crate) fn sweep(dir: &Path, keep: &HashSet<[u8; 32]>) {
    let Ok(fans) = std::fs::read_dir(dir.join(RECORDS)) else {
        return;
    };
    for fan in fans.flatten() {
        let fan_name = fan.file_name();
        let Some(prefix) = fan_name.to_str().filter(|n| is_hex(n, 2)) else {
            continue;
        };
        let Ok(files) = std::fs::read_dir(fan.path()) else {
            continue;
        };
        for file in files.flatten() {
            let name = file.file_name();
            let Some(name) = name.to_str() else { continue };
            let orphan = is_hex(name, 64)
                && name.starts_with(prefix)
                && CacheKey::from_hex(name).is_some_and(|k| !keep.contains(&k.0));
            // Sweeps run inside the index's write transaction, so no writer of ours is between
            // its temp file and its rename now.
            let dead_tmp = name.strip_prefix(".tmp-").is_some_and(|rest| {
                rest.split('-').count() == 2 && rest.split('-').all(crate::blobs::is_decimal)
            });
            if orphan || dead_tmp {
                let _ = std::fs::remove_file(file.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ghcache_core::testkit::sample_entry;

    #[test]
    fn a_record_round_trips_and_damage_is_caught() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let entry = sample_entry(1, "o/r", b"x");
        let key = entry.manifest.key;
        assert_eq!(read(dir.path(), &key)?, None);
        write(dir.path(), &key, 42, &entry.manifest)?;
        let record = read(dir.path(), &key)?;
        assert_eq!(
            record,
            Some(Record {
                mark: 42,
                manifest: entry.manifest.encode()
            })
        );
        let file = path(dir.path(), &key);
        let mut bytes = std::fs::read(&file)?;
        bytes[20] ^= 1;
        std::fs::write(&file, &bytes)?;
        assert_eq!(
            read(dir.path(), &key).map_err(|e| e.kind()),
            Err(io::ErrorKind::InvalidData)
        );
        std::fs::write(&file, b"GHR1")?;
        assert!(read(dir.path(), &key).is_err());
        Ok(())
    }

    #[test]
    fn a_sweep_keeps_what_the_index_holds_and_foreign_files() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let (a, b) = (sample_entry(1, "o/r", b"a"), sample_entry(2, "o/r", b"b"));
        write(dir.path(), &a.manifest.key, 1, &a.manifest)?;
        write(dir.path(), &b.manifest.key, 1, &b.manifest)?;
        let fan = path(dir.path(), &a.manifest.key)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        std::fs::write(fan.join("notes.txt"), b"mine")?;
        sweep(dir.path(), &HashSet::from([a.manifest.key.0]));
        assert!(read(dir.path(), &a.manifest.key)?.is_some());
        assert!(read(dir.path(), &b.manifest.key)?.is_none());
        assert!(fan.join("notes.txt").exists());
        Ok(())
    }
}
