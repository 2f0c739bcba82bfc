//! The hit path: the cache read without its index.
//!
//! Opening the SQLite index costs about half of a local hit (its worker thread, the WAL's shared
//! memory, the query). A hit needs none of it: the entry's record (see the record module) says
//! which body and under which fence mark, the fence file says whether the mark still holds, and
//! the body is checked against its digest. Anything this path cannot settle (no record, a fence
//! that moved, a body that fails its checks) is left to the index, which knows more: it reports
//! and drops what is corrupt, and writes the record again where it was missing.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ghcache_core::{now_ms, Body, CacheKey, Digest, Entry, Event, FenceState, Manifest};

use crate::blobs::Blobs;
use crate::cachedir::{settled, DB};
use crate::config::Config;
use crate::error::Error;
use crate::fence::Fences;
use crate::journal;
use crate::open::header_problem;
use crate::record;
use crate::stats::Counts;

/// The cache at a directory, read without its index.
#[derive(Debug)]
pub struct Reader {
    dir: PathBuf,
    blobs: Blobs,
    fences: Fences,
    touch_every: Duration,
    fold_counters_at: u64,
}

/// What a read without the index found.
#[derive(Debug)]
// One value per lookup, moved once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Read {
    /// A stored entry, checked.
    Found(Found),
    /// Nothing, and the index has nothing better: there is no record (the index only has rows
    /// without one in a cache made before records, which are fetched again once), or a write
    /// has moved the fence of what the record describes.
    Missing,
    /// This path cannot tell (a damaged record, a body that fails its checks, a directory or an
    /// index that is not settled): the index decides, and reports what it finds.
    AskIndex,
}

impl Read {
    /// The entry, when one was found.
    pub fn found(self) -> Option<Found> {
        match self {
            Read::Found(found) => Some(found),
            Read::Missing | Read::AskIndex => None,
        }
    }
}

/// An entry this path found.
#[derive(Debug)]
pub struct Found {
    /// The entry: its body matched its digest, and its fence mark holds. It may be stale: the
    /// caller judges freshness.
    pub entry: Entry,
    /// The fence of the entry's repository as this read found it, for the caller to judge the
    /// entry by the chain's rules (`ChainConfig::judge`) without reading it again.
    pub fence: FenceState,
    /// What [`Reader::record`] needs to note its use.
    pub used: Used,
}

/// Which entry was used, and when its use was last noted.
#[derive(Debug, Clone, Copy)]
pub struct Used {
    key: CacheKey,
    noted: Option<SystemTime>,
}

impl Reader {
    /// A reader of the cache that `config` names. Touches nothing on disk.
    pub fn new(config: &Config) -> Reader {
        Reader {
            blobs: Blobs::new(&config.dir),
            fences: Fences::new(&config.dir),
            dir: config.dir.clone(),
            touch_every: config.touch_every,
            fold_counters_at: config.fold_counters_at,
        }
    }

    /// The entry of `key`, as far as this path can tell.
    pub fn get(&self, key: &CacheKey) -> Read {
        // A directory another user can write could hold anything, and one not yet tagged or
        // tightened is the index path's to settle: let it refuse or fix it, with its warning.
        // Records and bodies are checked as they are opened.
        if !settled(&self.dir, DB) {
            return Read::AskIndex;
        }
        // A damaged index is the index path's to report and move aside, once.
        if header_problem(&self.dir.join(DB)).is_some() {
            return Read::AskIndex;
        }
        let record = match record::read(&self.dir, key) {
            Ok(Some(record)) => record,
            Ok(None) => return Read::Missing,
            Err(_) => return Read::AskIndex,
        };
        let Ok(manifest) = Manifest::decode(&record.manifest) else {
            return Read::AskIndex;
        };
        if manifest.key != *key {
            return Read::AskIndex;
        }
        let fence = match self.fences.state(&manifest.repo, manifest.resource) {
            Ok(state) if state.mark.0 == record.mark => state,
            // The index row carries the same mark: it is fenced too.
            Ok(_) => return Read::Missing,
            Err(_) => return Read::AskIndex,
        };
        let Ok(bytes) = self.blobs.read(&manifest.body_digest) else {
            return Read::AskIndex;
        };
        if bytes.len() as u64 != manifest.body_size || Digest::of(&bytes) != manifest.body_digest {
            return Read::AskIndex;
        }
        let Ok(body) = Body::decode_owned(bytes) else {
            return Read::AskIndex;
        };
        let noted = std::fs::metadata(record::path(&self.dir, key))
            .and_then(|m| m.modified())
            .ok();
        Read::Found(Found {
            entry: Entry { manifest, body },
            fence,
            used: Used { key: *key, noted },
        })
    }

    /// Whether the record of `entry`'s key already describes exactly `entry` under `mark`: a
    /// store of it would change nothing (a peer's entry that this machine's daemon stored
    /// before handing it over).
    pub fn holds(&self, entry: &Entry, mark: u64) -> bool {
        matches!(
            record::read(&self.dir, &entry.manifest.key),
            Ok(Some(record)) if record.mark == mark && record.manifest == entry.manifest.encode()
        )
    }

    /// Counts `events` for a request that a found entry answered, as [`crate::Tier::record`]
    /// does, and notes the entry's use for eviction when the last note is older than the touch
    /// interval. Returns whether the pending counters have grown past their fold size: the
    /// caller then opens the index and calls [`crate::Tier::fold_pending`].
    ///
    /// # Errors
    /// [`Error::Write`] when the append fails (a read-only or full cache).
    pub fn record(&self, used: Used, events: &[Event]) -> Result<bool, Error> {
        let write_err = |e: std::io::Error| Error::Write {
            dir: self.dir.clone(),
            reason: e.to_string(),
        };
        let mut size = journal::append(&self.dir, &Counts::of(events)).map_err(write_err)?;
        let stale_note = used
            .noted
            .and_then(|noted| noted.elapsed().ok())
            .is_none_or(|age| age > self.touch_every);
        if stale_note {
            let key = used.key;
            // The record's time is the note's: one note per interval, however many hits.
            if let Ok(file) = std::fs::File::open(record::path(&self.dir, &key)) {
                let _ = file.set_modified(SystemTime::now());
            }
            size = journal::append_touch(&self.dir, &key.0, now_ms()).map_err(write_err)?;
        }
        Ok(size > self.fold_counters_at)
    }

    /// Counts `events` for a request no found entry answered; returns whether the pending
    /// counters have grown past their fold size (see [`Reader::record`]).
    ///
    /// # Errors
    /// [`Error::Write`] when the append fails (a read-only or full cache).
    pub fn record_events(&self, events: &[Event]) -> Result<bool, Error> {
        let size = journal::append(&self.dir, &Counts::of(events)).map_err(|e| Error::Write {
            dir: self.dir.clone(),
            reason: e.to_string(),
        })?;
        Ok(size > self.fold_counters_at)
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
