//! Counters that processes append to a small file, folded into the index by the next writer.
//!
//! A hit must not write to SQLite: a write transaction, and the WAL checkpoint it forces when the
//! process closes the index, cost more than the whole lookup. So `record` appends one line to
//! `stats.pending` (one `write` on an `O_APPEND` file, under a shared lock), and a process that
//! writes the index anyway (a store, an invalidation, `ghcache stats`) folds the pending lines
//! into the `stats` row in the same transaction; so that a cache that only hits does not grow the
//! file without bound, the process whose append takes it past a size folds it too (about once
//! per 11,000 hits at the default size). Each claimed file's name is recorded in the
//! index with the counts it added, so a crash between the commit and the file's removal never
//! counts a file twice.
//!
//! A hit that opens no index at all (see the record module) also notes here when it used an
//! entry, at most once per entry per touch interval, and the fold moves that into the index's
//! access times, which eviction orders by.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{flock, FlockOperation};

use crate::blobs::is_decimal;
use crate::lock::still_at;
use crate::stats::Counts;

/// The file processes append to.
const PENDING: &str = "stats.pending";
/// Claimed files: `stats.pending.<pid>.<ms>.<n>`.
const CLAIMED_PREFIX: &str = "stats.pending.";
/// Format tag of a counts line; lines with another tag, or torn by a crash, are skipped.
const TAG: &str = "v1";
/// Format tag of an access line: `t1 <key hex> <ms>`.
const TOUCH_TAG: &str = "t1";

/// What pending files hold.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Requests counted.
    pub requests: i64,
    /// Counts of events.
    pub counts: Counts,
    /// Entries used, and when (latest per key).
    pub touches: Vec<([u8; 32], u64)>,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Appends one batch of counts (and one request) for a later fold; returns the file's size
/// after the append.
///
/// A fold renames the file and then reads it under an exclusive lock; an append that opened the
/// file before the rename but locked it only after the fold read it would be lost. So the
/// append goes ahead only while the locked file is still the pending file, and otherwise opens
/// the new one.
pub(crate) fn append(dir: &Path, counts: &Counts) -> io::Result<u64> {
    let line = format!(
        "{TAG} 1 {} {} {} {} {} {} {} {} {}\n",
        counts.hits_local,
        counts.hits_p2p,
        counts.hits_ipfs,
        counts.misses,
        counts.bypassed,
        counts.revalidated,
        counts.stale_served,
        counts.errors,
        counts.corrupt
    );
    append_line(dir, &line)
}

/// Notes that the entry of `key` was used at `at_ms`; returns the file's size after the append.
pub(crate) fn append_touch(dir: &Path, key: &[u8; 32], at_ms: u64) -> io::Result<u64> {
    let mut hex = String::with_capacity(64);
    for b in key {
        hex.push_str(&format!("{b:02x}"));
    }
    append_line(dir, &format!("{TOUCH_TAG} {hex} {at_ms}\n"))
}

fn append_line(dir: &Path, line: &str) -> io::Result<u64> {
    let path = dir.join(PENDING);
    let mut file = loop {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)?;
        // Shared: appenders do not wait for each other, only for a fold reading the file.
        flock(&file, FlockOperation::LockShared)?;
        if still_at(&file, &path) {
            break file;
        }
    };
    file.write_all(line.as_bytes())?;
    Ok(file.metadata()?.len())
}

/// Renames the pending file to a claimed name and returns every claimed file not yet removed
/// (this claim and any left by a process that died mid-fold).
pub(crate) fn claim(dir: &Path, now_ms: u64) -> Vec<PathBuf> {
    let fresh = dir.join(format!(
        "{CLAIMED_PREFIX}{}.{now_ms}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    // Nothing pending is the common case, not an error.
    let _ = std::fs::rename(dir.join(PENDING), &fresh);
    claimed(dir)
}

/// Claimed files present in `dir`.
pub(crate) fn claimed(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(is_claimed_name))
        .map(|e| e.path())
        .collect()
}

/// Whether `name` is a claimed file's, `stats.pending.<pid>.<ms>.<n>`: only those are read
/// and removed, never another file that happens to share the prefix.
fn is_claimed_name(name: &str) -> bool {
    name.strip_prefix(CLAIMED_PREFIX).is_some_and(|rest| {
        let parts: Vec<&str> = rest.split('.').collect();
        parts.len() == 3 && parts.iter().all(|p| is_decimal(p))
    })
}

/// The file name that identifies a claimed file in the index.
pub(crate) fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Sums a pending or claimed file: `(requests, counts)`. Waits for appenders that still hold
/// the file open (they opened it before it was claimed).
pub(crate) fn sum(path: &Path) -> io::Result<Pending> {
    let mut file = File::open(path)?;
    flock(&file, FlockOperation::LockExclusive)?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(parse(&text))
}

/// Sums the pending file without claiming it (for a read-only cache).
pub(crate) fn peek(dir: &Path) -> (i64, Counts) {
    let mut requests = 0;
    let mut total = Counts::default();
    let files = claimed(dir).into_iter().chain([dir.join(PENDING)]);
    for path in files {
        if let Ok(text) = std::fs::read_to_string(path) {
            let pending = parse(&text);
            requests += pending.requests;
            total.add(&pending.counts);
        }
    }
    (requests, total)
}

fn parse(text: &str) -> Pending {
    let mut requests = 0;
    let mut total = Counts::default();
    let mut touches: std::collections::HashMap<[u8; 32], u64> = Default::default();
    for line in text.lines() {
        let mut fields = line.split(' ');
        let tag = fields.next();
        if tag == Some(TOUCH_TAG) {
            let (Some(hex), Some(at), None) = (fields.next(), fields.next(), fields.next()) else {
                continue;
            };
            if let (Some(key), Ok(at)) = (ghcache_core::CacheKey::from_hex(hex), at.parse()) {
                let latest = touches.entry(key.0).or_default();
                *latest = (*latest).max(at);
            }
            continue;
        }
        if tag != Some(TAG) {
            continue;
        }
        let numbers: Vec<i64> = fields.filter_map(|f| f.parse().ok()).collect();
        let [r, hl, hp, hi, mi, by, rv, ss, er, co] = numbers[..] else {
            continue;
        };
        requests += r;
        total.add(&Counts {
            hits_local: hl,
            hits_p2p: hp,
            hits_ipfs: hi,
            misses: mi,
            bypassed: by,
            revalidated: rv,
            stale_served: ss,
            errors: er,
            corrupt: co,
        });
    }
    Pending {
        requests,
        counts: total,
        touches: touches.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_add_up_and_torn_lines_are_skipped() {
        let key = "ab".repeat(32);
        let pending = parse(&format!(
            "v1 1 1 0 0 0 0 0 0 0 0\nv1 1 0 1 0 1 0 0 0 0 0\nv1 1 2\nv9 1 1 1 1 1 1 1 1 1 1\n\
             t1 {key} 5\nt1 {key} 9\nt1 {key} 7\nt1 nothex 3\nt1 {key}\n"
        ));
        let c = pending.counts;
        assert_eq!(pending.requests, 2);
        assert_eq!((c.hits_local, c.hits_p2p, c.misses), (1, 1, 1));
        assert_eq!(pending.touches, vec![([0xab; 32], 9)], "the latest use of each key");
    }

    #[test]
    fn appended_counts_are_claimed_and_summed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let hit = Counts {
            hits_local: 1,
            ..Counts::default()
        };
        for _ in 0..3 {
            append(dir.path(), &hit).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(peek(dir.path()).0, 3);
        let files = claim(dir.path(), 1);
        assert_eq!(files.len(), 1);
        let pending = sum(&files[0]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((pending.requests, pending.counts.hits_local), (3, 3));
        assert!(
            claim(dir.path(), 2).len() == 1,
            "the claimed file stays until removed"
        );
    }

    #[test]
    fn only_claimed_names_of_our_format_are_claimed() {
        assert!(is_claimed_name("stats.pending.12.1700000000000.0"));
        for other in [
            "stats.pending",
            "stats.pending.txt",
            "stats.pending.12.1700000000000",
            "stats.pending.12.x.0",
            "stats.pending.12.1700000000000.0.bak",
        ] {
            assert!(!is_claimed_name(other), "{other}");
        }
    }
}
