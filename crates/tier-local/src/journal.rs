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
//!
//! The lines, one `write` each:
//!
//! ```text
//! v2 <requests> <misses> <bypassed> <revalidated> <stale served> <errors> <corrupt> <n> <tier>=<hits> ...
//! v1 <requests> <local> <p2p> <ipfs> <misses> <bypassed> <revalidated> <stale served> <errors> <corrupt>
//! t1 <key hex> <ms>
//! ```
//!
//! `v2` counts hits by tier name, `n` pairs of them (the tiers that had hits), so that a new
//! tier needs no new format; `v1`, with a position per tier, was written by earlier builds and
//! is still read. A line that does not parse whole (torn by a crash, or followed by the next
//! append where its newline was lost) is skipped.
//!
//! The HTTP level (gh's own API requests) keeps its counters beside these, in `http-stats`:
//! one line of named fields, added to in place under an exclusive lock once per gh run, never
//! folded into the index. The journal stores names and numbers; what a name means (`hits_local`,
//! `writes`, ...) is the HTTP level's:
//!
//! ```text
//! ghcache-http-stats 1 <name>=<value> ...
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{flock, FlockOperation};

use crate::blobs::is_decimal;
use crate::lock::still_at;
use crate::stats::{is_tier_name, Counts};

/// The file processes append to.
const PENDING: &str = "stats.pending";
/// Claimed files: `stats.pending.<pid>.<ms>.<n>`.
const CLAIMED_PREFIX: &str = "stats.pending.";
/// Format tag of a counts line with hits by tier name; lines with an unknown tag are skipped.
const TAG: &str = "v2";
/// Format tag of the counts lines of earlier builds: one position per tier.
const TAG_V1: &str = "v1";
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
    append_line(dir, &counts_line(counts))
}

/// The `v2` line of one request's `counts`.
fn counts_line(counts: &Counts) -> String {
    use std::fmt::Write as _;
    let mut line = format!(
        "{TAG} 1 {} {} {} {} {} {} {}",
        counts.misses,
        counts.bypassed,
        counts.revalidated,
        counts.stale_served,
        counts.errors,
        counts.corrupt,
        counts.hits.len()
    );
    // `Counts` holds only names that `is_tier_name` accepts: no space, no `=`.
    for (tier, n) in &counts.hits {
        let _ = write!(line, " {tier}={n}");
    }
    line.push('\n');
    line
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
        let parsed = match tag {
            Some(TAG) => parse_v2(fields),
            Some(TAG_V1) => parse_v1(fields),
            _ => None,
        };
        if let Some((r, counts)) = parsed {
            requests += r;
            total.add(&counts);
        }
    }
    Pending {
        requests,
        counts: total,
        touches: touches.into_iter().collect(),
    }
}

/// The fields of a `v2` line after its tag: `(requests, counts)`, or `None` unless the line
/// parses whole.
fn parse_v2<'a>(mut fields: impl Iterator<Item = &'a str>) -> Option<(i64, Counts)> {
    let mut number = || fields.next().and_then(|f| f.parse::<i64>().ok());
    let (requests, misses, bypassed) = (number()?, number()?, number()?);
    let (revalidated, stale_served, errors, corrupt) = (number()?, number()?, number()?, number()?);
    let pairs = usize::try_from(number()?).ok()?;
    let mut counts = Counts {
        misses,
        bypassed,
        revalidated,
        stale_served,
        errors,
        corrupt,
        ..Counts::default()
    };
    let mut seen = 0;
    for field in fields.by_ref() {
        let (tier, n) = field.split_once('=')?;
        if !is_tier_name(tier) {
            return None;
        }
        counts.add_hits(tier, n.parse().ok()?);
        seen += 1;
    }
    (seen == pairs).then_some((requests, counts))
}

/// The fields of a `v1` line after its tag (earlier builds): `(requests, counts)`.
fn parse_v1<'a>(fields: impl Iterator<Item = &'a str>) -> Option<(i64, Counts)> {
    let numbers: Vec<i64> = fields.filter_map(|f| f.parse().ok()).collect();
    let [requests, local, p2p, ipfs, misses, bypassed, revalidated, stale_served, errors, corrupt] =
        numbers[..]
    else {
        return None;
    };
    let mut counts = Counts {
        misses,
        bypassed,
        revalidated,
        stale_served,
        errors,
        corrupt,
        ..Counts::default()
    };
    // The tiers that v1's positions stood for.
    for (tier, n) in [("local", local), ("p2p", p2p), ("ipfs", ipfs)] {
        counts.add_hits(tier, n);
    }
    Some((requests, counts))
}

/// The HTTP level's counters file.
const HTTP_COUNTERS: &str = "http-stats";
/// First word of the HTTP level's counters file, then its version.
const HTTP_TAG: &str = "ghcache-http-stats";
/// The HTTP level's counters file's version: named fields, so new counters need no new one.
const HTTP_VERSION: &str = "1";

/// The HTTP level's counters in cache dir `dir`, by name, in the file's order; none when there
/// are none yet, or when the file was torn by a crash (counts are lost, nothing else).
pub fn http_counters(dir: &Path) -> Vec<(String, u64)> {
    let mut text = String::new();
    let read = File::open(dir.join(HTTP_COUNTERS)).and_then(|mut file| {
        flock(&file, FlockOperation::LockShared)?;
        file.read_to_string(&mut text)
    });
    match read {
        Ok(_) => parse_http_counters(&text),
        Err(_) => Vec::new(),
    }
}

/// Adds `counters` (by name) to the HTTP level's counters in cache dir `dir`, under an exclusive
/// lock: one small read and write in place. A name the file cannot carry (not a short word of
/// letters, digits, `-`, `_`, `.`) is passed over.
///
/// # Errors
/// The file cannot be opened, locked, read or written.
pub fn add_http_counters(dir: &Path, counters: &[(String, u64)]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join(HTTP_COUNTERS))?;
    flock(&file, FlockOperation::LockExclusive)?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let mut total = parse_http_counters(&text);
    for (name, value) in counters.iter().filter(|(name, _)| is_tier_name(name)) {
        match total.iter_mut().find(|(known, _)| known == name) {
            Some((_, sum)) => *sum = sum.saturating_add(*value),
            None => total.push((name.clone(), *value)),
        }
    }
    let line = http_counters_line(&total);
    file.rewind()?;
    file.write_all(line.as_bytes())?;
    file.set_len(line.len() as u64)?;
    Ok(())
}

fn http_counters_line(counters: &[(String, u64)]) -> String {
    use std::fmt::Write as _;
    let mut line = format!("{HTTP_TAG} {HTTP_VERSION}");
    for (name, value) in counters {
        let _ = write!(line, " {name}={value}");
    }
    line.push('\n');
    line
}

fn parse_http_counters(text: &str) -> Vec<(String, u64)> {
    let mut words = text.split_whitespace();
    if words.next() != Some(HTTP_TAG) || words.next() != Some(HTTP_VERSION) || !text.ends_with('\n')
    {
        return Vec::new();
    }
    let mut counters: Vec<(String, u64)> = Vec::new();
    let pairs = words
        .filter_map(|w| w.split_once('='))
        .filter_map(|(k, v)| Some((k, v.parse::<u64>().ok()?)));
    for (name, value) in pairs {
        // The first of a name given twice counts, as earlier builds read it.
        if !counters.iter().any(|(known, _)| known == name) {
            counters.push((name.to_owned(), value));
        }
    }
    counters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_counters_add_up_and_files_of_the_current_release_are_read() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // As the release before counters were keyed by tier name wrote it.
        let old = "ghcache-http-stats 1 hits_local=2 hits_p2p=0 hits_ipfs=1 misses=3 \
                   revalidated=1 stale_served=0 writes=1 passed=4 streamed_bytes=10 errors=0 \
                   corrupt=0\n";
        std::fs::write(dir.path().join("http-stats"), old).unwrap_or_else(|e| panic!("{e}"));
        let read = http_counters(dir.path());
        assert_eq!(read.len(), 11);
        assert_eq!(read[0], ("hits_local".to_owned(), 2));
        let add = [
            ("hits_local".to_owned(), 1),
            ("hits_http".to_owned(), 5),
            ("not a name".to_owned(), 9),
        ];
        add_http_counters(dir.path(), &add).unwrap_or_else(|e| panic!("{e}"));
        let total = http_counters(dir.path());
        let get = |name: &str| total.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
        assert_eq!(
            (
                get("hits_local"),
                get("hits_http"),
                get("misses"),
                get("not a name")
            ),
            (Some(3), Some(5), Some(3), None)
        );
        std::fs::write(
            dir.path().join("http-stats"),
            "ghcache-http-stats 1 hits_lo",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            http_counters(dir.path()).is_empty(),
            "a torn file reads as none"
        );
    }

    fn hits(counts: &Counts) -> Vec<(&str, i64)> {
        counts.hits.iter().map(|(k, v)| (k.as_str(), *v)).collect()
    }

    #[test]
    fn lines_add_up_and_torn_lines_are_skipped() {
        let key = "ab".repeat(32);
        let pending = parse(&format!(
            "v1 1 1 0 0 0 0 0 0 0 0\nv1 1 0 1 0 1 0 0 0 0 0\nv1 1 2\nv9 1 1 1 1 1 1 1 1 1 1\n\
             t1 {key} 5\nt1 {key} 9\nt1 {key} 7\nt1 nothex 3\nt1 {key}\n"
        ));
        let c = pending.counts;
        assert_eq!(pending.requests, 2);
        assert_eq!(hits(&c), vec![("local", 1), ("p2p", 1)]);
        assert_eq!(c.misses, 1);
        assert_eq!(
            pending.touches,
            vec![([0xab; 32], 9)],
            "the latest use of each key"
        );
    }

    #[test]
    fn v2_lines_carry_any_tier_and_read_beside_v1_lines() {
        let counts = Counts::of(&[
            ghcache_core::Event::Hit("http"),
            ghcache_core::Event::Hit("local"),
            ghcache_core::Event::Miss,
        ]);
        let line = counts_line(&counts);
        assert_eq!(line, "v2 1 1 0 0 0 0 0 2 http=1 local=1\n");
        let torn = &line[..line.len() - 3];
        let pending = parse(&format!(
            "{line}v1 1 1 0 0 0 0 0 0 0 0\n{torn}{line}v2 1 0 0 0 0 0 0 1 a b=1\n\
             v2 1 0 0 0 0 0 0 2 p2p=1\nv2 1 0 0 0 0 0 0 0\n"
        ));
        assert_eq!(
            pending.requests, 3,
            "a torn line and the line it ran into are skipped, and lines that do not parse whole"
        );
        assert_eq!(hits(&pending.counts), vec![("http", 1), ("local", 2)]);
        assert_eq!(pending.counts.misses, 1);
    }

    #[test]
    fn appended_counts_are_claimed_and_summed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let hit = Counts::of(&[ghcache_core::Event::Hit("local")]);
        for _ in 0..3 {
            append(dir.path(), &hit).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(peek(dir.path()).0, 3);
        let files = claim(dir.path(), 1);
        assert_eq!(files.len(), 1);
        let pending = sum(&files[0]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (pending.requests, hits(&pending.counts)),
            (3, vec![("local", 3)])
        );
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
