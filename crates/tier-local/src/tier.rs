//! [`Tier`]: the local cache with its index open, the [`CacheTier`] that stores, serves,
//! invalidates and evicts entries on this machine's disk.
//!
//! Every store goes through the index (SQLite) and the blob files; a read checks the body
//! against its manifest before it is served, so a torn or tampered file is a miss, never a
//! wrong answer. Commands usually reach it through [`crate::LazyTier`], which opens it only
//! when the records cannot answer.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ghcache_core::{
    now_ms, Body, CacheKey, CacheTier, Digest, Entry, Event, FenceState, InvalidationId, Lookup,
    Manifest, Mark, Selector, TierError,
};
use sqlx::{Connection as _, SqliteConnection};
use tokio::sync::{Mutex, MutexGuard};

use crate::blobs::{Blobs, Staged, TMP_GRACE};
use crate::cachedir::DB;
use crate::config::{Config, NAME};
use crate::error::Error;
use crate::fence::Fences;
use crate::index::{self, NewRow, Which};
use crate::journal;
use crate::lock::KeyLock;
use crate::open::{self, code, is_corrupt, quarantine, Opened};
use crate::record;
use crate::stats::{Counts, Stats};

/// Entries evicted per query while over the cap.
const EVICT_BATCH: i64 = 64;

/// The local tier: entries in `<dir>/index.db`, bodies in `<dir>/blobs/`.
///
/// Shared by every process on the machine (SQLite WAL, busy timeout). Holds one connection.
#[derive(Debug)]
pub struct Tier {
    dir: PathBuf,
    db: PathBuf,
    max_bytes: u64,
    touch_every_ms: i64,
    fold_counters_at: u64,
    checkpoint_wal_at: u64,
    clock_skew: Duration,
    read_only: bool,
    conn: Mutex<SqliteConnection>,
    blobs: Blobs,
    fences: Fences,
    /// (device, inode) of the index that was opened: a corrupt index is moved aside only if it is
    /// still the file this handle opened.
    identity: Option<(u64, u64)>,
    warnings: std::sync::Mutex<Vec<String>>,
    quarantined: AtomicBool,
}

impl Tier {
    /// Opens the cache at `config.dir`, creating the directory (mode 0700, with a
    /// `CACHEDIR.TAG`), `index.db` (0600), `blobs/` and `locks/` as needed.
    ///
    /// # Behavior
    /// An index that is not a SQLite database, or is truncated or malformed, is moved aside to
    /// `index.db.corrupt-<ms>` and a new one is started; [`Tier::warnings`] then says so. A
    /// read-only directory is opened read-only: hits are served, stores fail with
    /// [`TierError::ReadOnly`].
    ///
    /// # Errors
    /// [`Error::Open`] when the directory or index cannot be opened or created, [`Error::Newer`]
    /// when a newer ghcache wrote the index, [`Error::Unsafe`] when another user owns or can
    /// write the directory, the index or a directory in it, [`Error::NotACache`] for a
    /// non-empty directory that is not a ghcache cache.
    pub async fn open(config: Config) -> Result<Tier, Error> {
        let Opened {
            dir,
            db,
            conn,
            identity,
            writable,
            fences,
            warnings,
        } = open::index(config.dir).await?;
        Ok(Tier {
            blobs: Blobs::new(&dir),
            fences,
            dir,
            db,
            max_bytes: config.max_bytes,
            touch_every_ms: i64::try_from(config.touch_every.as_millis()).unwrap_or(i64::MAX),
            fold_counters_at: config.fold_counters_at,
            checkpoint_wal_at: config.checkpoint_wal_at,
            clock_skew: config.clock_skew,
            read_only: !writable,
            conn: Mutex::new(conn),
            identity,
            warnings: std::sync::Mutex::new(warnings),
            quarantined: AtomicBool::new(false),
        })
    }

    /// The index connection, locked, and out of any transaction.
    ///
    /// Every holder of the lock ends its transaction before it lets go, but a future dropped
    /// between SQLite's `BEGIN` and sqlx's acknowledgement of it (a request of gh's cut off
    /// when gh exits, a deadline) leaves no `Transaction` to roll back, and sqlx would then
    /// refuse every `BEGIN IMMEDIATE` on this connection for the rest of the process: every
    /// later store and invalidation would fail. A connection found so is replaced by a new one
    /// (SQLite rolls the abandoned transaction back when the old one closes); if that cannot be
    /// opened, the old one is kept and the next statement reports its error as before.
    async fn conn(&self) -> MutexGuard<'_, SqliteConnection> {
        let mut conn = self.conn.lock().await;
        if conn.is_in_transaction() {
            if let Ok(fresh) = open::reconnect(&self.db, !self.read_only).await {
                let abandoned = std::mem::replace(&mut *conn, fresh);
                let _ = abandoned.close().await;
            }
        }
        conn
    }

    /// Things to tell the user once: a corrupt index moved aside (the message contains
    /// "corrupt" and where the old file went), a read-only cache directory.
    pub fn warnings(&self) -> Vec<String> {
        match self.warnings.lock() {
            Ok(w) => w.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The fences that guard this cache: a chain that stores into it reads them first.
    pub fn fences(&self) -> &Fences {
        &self.fences
    }

    /// Drops the entries `selector` names from this machine's cache (`ghcache clear`): disk
    /// housekeeping, not news of a write, so no fence moves and answers that peers hold stay
    /// good. Returns how many entries were dropped.
    ///
    /// # Errors
    /// [`TierError::ReadOnly`] in a read-only cache, or the index's failure.
    pub async fn clear(&self, selector: &Selector) -> Result<u64, TierError> {
        if self.read_only {
            return Err(TierError::ReadOnly { tier: NAME });
        }
        self.drop_rows(selector).await
    }

    /// Whether nothing can be stored (a read-only or full cache dir; [`Tier::warnings`] said so).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Adds a batch of events to the persisted counters, and one request.
    ///
    /// # Behavior
    /// Appends to a small pending file (no index write: see the journal module); the counts
    /// reach the index with the next store, invalidation or [`Tier::stats`], or here, once the
    /// file has grown past [`Config::fold_counters_at`](crate::Config::fold_counters_at).
    ///
    /// # Errors
    /// [`Error::ReadOnly`] in a read-only cache, [`Error::Write`] when the append fails,
    /// [`Error::Index`] when a fold fails (the counts stay pending).
    pub async fn record(&self, events: &[Event]) -> Result<(), Error> {
        if self.read_only {
            return Err(Error::ReadOnly {
                dir: self.dir.clone(),
            });
        }
        let size = journal::append(&self.dir, &Counts::of(events)).map_err(|e| Error::Write {
            dir: self.dir.clone(),
            reason: e.to_string(),
        })?;
        if size > self.fold_counters_at {
            let mut conn = self.conn().await;
            self.fold_now(&mut conn).await?;
        }
        Ok(())
    }

    /// The persisted counters and the size of what is stored.
    ///
    /// # Errors
    /// [`Error::Index`] when the index cannot be read.
    pub async fn stats(&self) -> Result<Stats, Error> {
        let mut conn = self.conn().await;
        if self.read_only {
            let mut stats = index::stats(&mut conn)
                .await
                .map_err(|e| self.index_err(&e))?;
            let (requests, pending) = journal::peek(&self.dir);
            stats.add_pending(requests, &pending);
            return Ok(stats);
        }
        self.fold_now(&mut conn).await?;
        index::stats(&mut conn)
            .await
            .map_err(|e| self.index_err(&e))
    }

    /// Folds the counters (and use notes) that processes appended without the index into it:
    /// for a caller that only appended, once [`crate::Reader::record`] says the file is large.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] in a read-only cache, [`Error::Index`] when the fold fails (the counts
    /// stay pending).
    pub async fn fold_pending(&self) -> Result<(), Error> {
        if self.read_only {
            return Err(Error::ReadOnly {
                dir: self.dir.clone(),
            });
        }
        let mut conn = self.conn().await;
        self.fold_now(&mut conn).await
    }

    /// Folds the pending counters into the index in a transaction of their own.
    async fn fold_now(&self, conn: &mut SqliteConnection) -> Result<(), Error> {
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.index_err(&e))?;
        let folded = self.fold(&mut tx).await.map_err(|e| self.index_err(&e))?;
        tx.commit().await.map_err(|e| self.index_err(&e))?;
        remove_all(folded);
        Ok(())
    }

    /// Keys of the stored entries, most recently used first, at most `limit`.
    ///
    /// # Errors
    /// [`Error::Index`] when the index cannot be read.
    pub async fn keys(&self, limit: u32) -> Result<Vec<CacheKey>, Error> {
        let mut conn = self.conn().await;
        index::keys(&mut conn, limit)
            .await
            .map_err(|e| self.index_err(&e))
    }

    /// Folds pending counter files into the index inside the caller's write transaction;
    /// returns the files to remove once it commits.
    async fn fold(&self, tx: &mut SqliteConnection) -> sqlx::Result<Vec<PathBuf>> {
        let now = now_ms();
        let mut done = Vec::new();
        for path in journal::claim(&self.dir, now) {
            let name = journal::name_of(&path);
            if !index::was_folded(&mut *tx, &name).await? {
                let Ok(pending) = journal::sum(&path) else {
                    continue;
                };
                index::add_counts(&mut *tx, pending.requests, &pending.counts).await?;
                for (key, at_ms) in &pending.touches {
                    index::touch_later(&mut *tx, key, *at_ms).await?;
                }
                index::mark_folded(&mut *tx, &name, now).await?;
            }
            done.push(path);
        }
        Ok(done)
    }

    /// Closes the connection cleanly (the last one out checkpoints the WAL).
    pub async fn close(self) {
        let _ = self.conn.into_inner().close().await;
    }

    /// Ends a process's use of the index just before the process exits.
    ///
    /// When the WAL has grown past [`Config::checkpoint_wal_at`](crate::Config::checkpoint_wal_at), this closes
    /// the connection like [`Tier::close`], so the last process out checkpoints it. Otherwise
    /// (a process that only read, or whose stores left a small log) the connection is left for
    /// the exit to drop: the checkpoint's disk syncs would cost a store more than the store, and
    /// closing would delete the WAL and its shared-memory file only for the next process to
    /// make both again. Nothing is lost either way: what was committed is in the log, which the
    /// next process to open the index reads, and SQLite keeps a database consistent whenever a
    /// process ends.
    pub async fn close_before_exit(self) {
        let wal = self.dir.join(format!("{DB}-wal"));
        let small = std::fs::metadata(&wal).map_or(true, |m| m.len() <= self.checkpoint_wal_at);
        if small {
            std::mem::forget(self);
        } else {
            self.close().await;
        }
    }

    fn index_err(&self, err: &sqlx::Error) -> Error {
        if is_corrupt(err) {
            self.quarantine_now(&err.to_string());
        }
        Error::Index {
            dir: self.dir.clone(),
            reason: err.to_string(),
        }
    }

    /// Maps a query failure to what the chain understands.
    fn tier_err(&self, err: &sqlx::Error) -> TierError {
        match code(err) {
            Some(8) => TierError::ReadOnly { tier: NAME },
            Some(13) => Error::Write {
                dir: self.dir.clone(),
                reason: err.to_string(),
            }
            .into(),
            _ => self.index_err(err).into(),
        }
    }

    fn write_err(&self, err: &io::Error) -> TierError {
        if matches!(err.raw_os_error(), Some(code) if code == rustix::io::Errno::ROFS.raw_os_error())
        {
            return TierError::ReadOnly { tier: NAME };
        }
        Error::Write {
            dir: self.dir.clone(),
            reason: err.to_string(),
        }
        .into()
    }

    /// A query found the open index corrupt: move it aside so the next process starts fresh.
    fn quarantine_now(&self, reason: &str) {
        if self.read_only || self.quarantined.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(line) = quarantine(&self.dir, &self.db, self.identity, reason) {
            if let Ok(mut w) = self.warnings.lock() {
                w.push(line);
            }
        }
    }

    /// Drops a row whose body failed its checks, and the body file if `remove_blob`.
    async fn drop_corrupt(
        &self,
        key: &CacheKey,
        digest: &str,
        remove_blob: bool,
    ) -> Result<bool, TierError> {
        let mut conn = self.conn().await;
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.tier_err(&e))?;
        let dropped = index::delete_if(&mut tx, &key.0, digest)
            .await
            .map_err(|e| self.tier_err(&e))?;
        if dropped {
            record::remove(&self.dir, &key.0);
        }
        if let Some(d) = Digest::from_hex(digest) {
            let unused = !index::referenced(&mut tx, digest)
                .await
                .map_err(|e| self.tier_err(&e))?;
            if remove_blob || unused {
                let _ = self.blobs.remove(&d);
            }
        }
        let folded = self.fold(&mut tx).await.map_err(|e| self.tier_err(&e))?;
        tx.commit().await.map_err(|e| self.tier_err(&e))?;
        remove_all(folded);
        Ok(dropped)
    }

    async fn corrupt(
        &self,
        key: &CacheKey,
        digest: &str,
        remove_blob: bool,
        reason: String,
    ) -> Result<Lookup, TierError> {
        if self.read_only {
            return Err(TierError::Corrupt { tier: NAME, reason });
        }
        if self.drop_corrupt(key, digest, remove_blob).await? {
            Err(TierError::Corrupt { tier: NAME, reason })
        } else {
            // Replaced or dropped by another process while we read: not ours to report.
            Ok(Lookup::Miss)
        }
    }

    /// Within a write transaction: removes `digests` whose last reference is gone.
    async fn release(
        &self,
        conn: &mut SqliteConnection,
        digests: Vec<String>,
    ) -> Result<u64, sqlx::Error> {
        let mut freed = 0;
        let mut seen = std::collections::HashSet::new();
        for hex in digests {
            if !seen.insert(hex.clone()) || index::referenced(conn, &hex).await? {
                continue;
            }
            if let Some(d) = Digest::from_hex(&hex) {
                if self.blobs.remove(&d).is_ok() {
                    freed += 1;
                }
            }
        }
        Ok(freed)
    }

    /// Within a write transaction: evicts least recently used entries (never `spare`) until the
    /// stored bytes are under 90% of the cap, then removes orphan blob files.
    async fn evict(&self, conn: &mut SqliteConnection, spare: &[u8]) -> Result<(), sqlx::Error> {
        let mut total = index::total_bytes(conn).await?;
        if total <= self.max_bytes {
            return Ok(());
        }
        // Evicting below the cap, not just to it, keeps the next puts from evicting (and sweeping)
        // again each time.
        let low_water = self.max_bytes - self.max_bytes / 10;
        while total > low_water {
            let victims = index::oldest(conn, spare, EVICT_BATCH).await?;
            if victims.is_empty() {
                break;
            }
            for victim in victims {
                if total <= low_water {
                    break;
                }
                index::delete(conn, Which::Key(&victim.key)).await?;
                record::remove(&self.dir, &victim.key);
                if !index::referenced(conn, &victim.digest).await? {
                    if let Some(d) = Digest::from_hex(&victim.digest) {
                        let _ = self.blobs.remove(&d);
                    }
                    total = total.saturating_sub(victim.size);
                }
            }
        }
        let keep = index::all_digests(conn).await?;
        self.blobs.sweep(&keep, TMP_GRACE);
        record::sweep(&self.dir, &index::all_keys(conn).await?);
        // Eviction is rare and already sweeps: drop the lock files of keys nobody is fetching.
        KeyLock::remove_unheld(&self.dir);
        Ok(())
    }

    async fn store(
        &self,
        entry: &Entry,
        staged: Staged,
        digest: &Digest,
        mark: Mark,
    ) -> Result<(), TierError> {
        let m = &entry.manifest;
        let hex = digest.to_hex();
        let manifest = m.encode();
        let mut conn = self.conn().await;
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.tier_err(&e))?;
        // Published under the write lock: no other process can be deciding, at the same moment,
        // that this digest is unreferenced and remove it.
        staged.publish().map_err(|e| self.write_err(&e))?;
        let old = index::digest_of(&mut tx, &m.key.0)
            .await
            .map_err(|e| self.tier_err(&e))?;
        let row = NewRow {
            key: &m.key.0,
            scope_id: m.scope_id.as_bytes(),
            repo: &m.repo,
            manifest: &manifest,
            digest: &hex,
            size: m.body_size,
            created_at_ms: m.created_at_ms,
            now_ms: now_ms(),
            has_cid: m.cid.is_some(),
            fence: mark.0,
            resource: m.resource,
        };
        index::upsert(&mut tx, &row)
            .await
            .map_err(|e| self.tier_err(&e))?;
        // Inside the transaction, under the row's mark: a crash before the commit leaves a record
        // without a row, which describes a body that is there and is fenced like the row.
        record::write(&self.dir, &m.key, mark.0, m).map_err(|e| self.write_err(&e))?;
        if let Some(old) = old.filter(|old| *old != hex) {
            self.release(&mut tx, vec![old])
                .await
                .map_err(|e| self.tier_err(&e))?;
        }
        self.evict(&mut tx, &m.key.0)
            .await
            .map_err(|e| self.tier_err(&e))?;
        let folded = self.fold(&mut tx).await.map_err(|e| self.tier_err(&e))?;
        tx.commit().await.map_err(|e| self.tier_err(&e))?;
        remove_all(folded);
        Ok(())
    }
}

#[async_trait]
impl CacheTier for Tier {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Looks up `key`; checks the body's size and digest against the manifest.
    ///
    /// # Errors
    /// [`TierError::Corrupt`] when the stored entry failed a check; it has been dropped, so the
    /// next lookup misses.
    async fn get(&self, key: &CacheKey) -> Result<Lookup, TierError> {
        let stored = {
            let mut conn = self.conn().await;
            index::lookup(&mut conn, &key.0)
                .await
                .map_err(|e| self.tier_err(&e))?
        };
        let Some(stored) = stored else {
            return Ok(Lookup::Miss);
        };
        // Served only while the fence of its repository reads the mark it was fetched under: a
        // write since, through this machine or announced by a peer, moved it. An unreadable
        // fence serves nothing.
        if !self
            .fences
            .state(&stored.repo, stored.resource)
            .is_ok_and(|state| state.mark.0 == stored.fence)
        {
            return Ok(Lookup::Miss);
        }
        let manifest = match Manifest::decode(&stored.manifest) {
            Ok(m) if m.key == *key && m.body_digest.to_hex() == stored.digest => m,
            Ok(_) => {
                let reason = "the index row does not match its manifest".to_owned();
                return self.corrupt(key, &stored.digest, false, reason).await;
            }
            Err(err) => {
                return self
                    .corrupt(key, &stored.digest, false, err.to_string())
                    .await;
            }
        };
        let bytes = match self.blobs.read(&manifest.body_digest) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let reason = format!("body file {} is missing", stored.digest);
                return self.corrupt(key, &stored.digest, false, reason).await;
            }
            Err(err) => {
                return Err(Error::Index {
                    dir: self.dir.clone(),
                    reason: format!("cannot read body {}: {err}", stored.digest),
                }
                .into())
            }
        };
        if bytes.len() as u64 != manifest.body_size {
            let reason = format!(
                "body {} has {} bytes, its manifest says {}",
                stored.digest,
                bytes.len(),
                manifest.body_size
            );
            return self.corrupt(key, &stored.digest, true, reason).await;
        }
        if Digest::of(&bytes) != manifest.body_digest {
            let reason = format!("body {} does not match its digest", stored.digest);
            return self.corrupt(key, &stored.digest, true, reason).await;
        }
        let body = match Body::decode_owned(bytes) {
            Ok(body) => body,
            Err(err) => {
                return self
                    .corrupt(key, &stored.digest, true, err.to_string())
                    .await
            }
        };
        let now = now_ms();
        if !self.read_only && index::to_i64(now) - stored.last_used_ms > self.touch_every_ms {
            // Best effort: a lost touch only makes eviction a little less accurate.
            let mut conn = self.conn().await;
            let _ = index::touch(&mut conn, &key.0, now).await;
        }
        if !self.read_only {
            self.repair_record(key, stored.fence, &manifest);
        }
        Ok(Lookup::Hit(Entry { manifest, body }))
    }

    /// Stores `entry`, replacing any entry of the same key, then evicts least recently used
    /// entries while the stored bytes exceed the cap.
    ///
    /// # Behavior
    /// A body larger than the whole cap is not stored (`Ok`, and the next lookup misses).
    ///
    /// # Errors
    /// [`TierError::Corrupt`] when the body does not match the manifest (nothing is stored),
    /// [`TierError::ReadOnly`] in a read-only cache, [`TierError::Unavailable`] when the disk is
    /// full or the index fails. A failed store leaves the previous state.
    async fn put(&self, entry: &Entry) -> Result<(), TierError> {
        self.put_checked(entry, None).await
    }

    /// Stores `entry` only if the fence of its repository still reads `mark`; see
    /// [`CacheTier::put_fenced`]. The row keeps `mark`, so the next invalidation fences it.
    async fn put_fenced(&self, entry: &Entry, mark: Mark) -> Result<(), TierError> {
        self.put_checked(entry, Some(mark)).await
    }

    /// Drops the entries `selector` names, in every scope, and the body files no entry uses.
    ///
    /// # Behavior
    /// First the fence of the repository (or of all) moves, which needs no free space: from
    /// then on the entries are not served, even when the disk is full or the cache read-only
    /// and the rows cannot be deleted. Returns how many entries were dropped or fenced.
    ///
    /// # Errors
    /// The fence could not be moved anywhere (see the fence module): the caller must warn that
    /// answers about the repository may be out of date.
    async fn invalidate(&self, selector: &Selector) -> Result<u64, TierError> {
        self.invalidate_at(selector, now_ms()).await
    }

    /// [`CacheTier::invalidate`] of an invalidation other machines know as `id` (one that peers
    /// gossiped): it finished now, here.
    async fn invalidate_known(
        &self,
        selector: &Selector,
        id: InvalidationId,
    ) -> Result<u64, TierError> {
        self.invalidate_moving(selector, now_ms(), id).await
    }
}

impl Tier {
    /// Stores `entry` if the fence allows it: fetched under `mark`, which must still be the
    /// fence's, or else made after the last invalidation of its repository.
    async fn put_checked(&self, entry: &Entry, mark: Option<Mark>) -> Result<(), TierError> {
        if self.read_only {
            return Err(TierError::ReadOnly { tier: NAME });
        }
        let encoded = entry.body.encode();
        let digest = Digest::of(&encoded);
        if digest != entry.manifest.body_digest || encoded.len() as u64 != entry.manifest.body_size
        {
            return Err(TierError::Corrupt {
                tier: NAME,
                reason: "refusing to store a body that does not match its manifest".into(),
            });
        }
        if entry.manifest.body_size > self.max_bytes {
            return Ok(());
        }
        let state = self
            .fences
            .state(&entry.manifest.repo, entry.manifest.resource)
            .map_err(|err| {
                TierError::from(Error::Write {
                    dir: self.dir.clone(),
                    reason: format!("cannot read the fence file: {err}"),
                })
            })?;
        if !admitted(&state, mark, entry, self.clock_skew)
            && !self.describes_stored(entry, &digest, &state).await
        {
            // Older than a write this machine has seen: storing it would bring the old answer
            // back. Not an error: the caller has nothing to fix.
            return Ok(());
        }
        let staged = self
            .blobs
            .stage(digest, encoded)
            .await
            .map_err(|e| self.write_err(&e))?;
        self.store(entry, staged, &digest, state.mark).await
    }

    /// Writes the record of a row that the hit path could not read (missing, damaged, or
    /// left by a store that was undone), so the next hit of this key needs no index. Best
    /// effort: a missing record only costs that hit the index. Written without the index's write
    /// lock, so a repair that races a store may put back the record of the answer the store
    /// replaced: one fetched under the same fence mark (a write since would have moved it), so
    /// still a right answer, whose own age decides whether it is served.
    fn repair_record(&self, key: &CacheKey, mark: u64, manifest: &Manifest) {
        let current = record::read(&self.dir, key);
        let matches = matches!(
            &current,
            Ok(Some(r)) if r.mark == mark && r.manifest == manifest.encode()
        );
        if !matches {
            let _ = record::write(&self.dir, key, mark, manifest);
        }
    }

    /// Whether `entry` is the answer already stored for its key, still under the fence, with a
    /// new description (signed, or naming its IPFS CID): that changes no answer, however recent
    /// the last write, so the fence's time rule does not apply.
    async fn describes_stored(&self, entry: &Entry, digest: &Digest, state: &FenceState) -> bool {
        let mut conn = self.conn().await;
        let Ok(Some(stored)) = index::lookup(&mut conn, &entry.manifest.key.0).await else {
            return false;
        };
        stored.fence == state.mark.0
            && stored.digest == digest.to_hex()
            && stored.created_at_ms == index::to_i64(entry.manifest.created_at_ms)
    }

    /// Deletes the rows `selector` names and the body files no row uses any more.
    async fn drop_rows(&self, selector: &Selector) -> Result<u64, TierError> {
        let mut conn = self.conn().await;
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.tier_err(&e))?;
        let deleted = index::delete(&mut tx, which(selector))
            .await
            .map_err(|e| self.tier_err(&e))?;
        let dropped = deleted.len() as u64;
        for row in &deleted {
            record::remove(&self.dir, &row.key);
        }
        let digests = deleted.into_iter().map(|row| row.digest).collect();
        if matches!(selector, Selector::All) {
            let keep = index::all_digests(&mut tx)
                .await
                .map_err(|e| self.tier_err(&e))?;
            self.blobs.sweep(&keep, TMP_GRACE);
            record::sweep(&self.dir, &std::collections::HashSet::new());
        } else {
            self.release(&mut tx, digests)
                .await
                .map_err(|e| self.tier_err(&e))?;
        }
        let folded = self.fold(&mut tx).await.map_err(|e| self.tier_err(&e))?;
        tx.commit().await.map_err(|e| self.tier_err(&e))?;
        remove_all(folded);
        Ok(dropped)
    }
}

/// Whether an entry may be stored under the fence as it reads now (`state`).
fn admitted(state: &FenceState, mark: Option<Mark>, entry: &Entry, skew: Duration) -> bool {
    match mark {
        // Fetched by a chain that read the fence before it began: the mark alone tells whether
        // a write finished since; our own clock is not needed.
        Some(mark) if entry.manifest.producer.is_none() => state.mark == mark,
        Some(mark) => state.mark == mark && state.admits(&entry.manifest, skew),
        None => state.admits(&entry.manifest, skew),
    }
}

/// Removes folded counter files; one left behind is recognised as folded and removed later.
fn remove_all(paths: Vec<PathBuf>) {
    for path in paths {
        let _ = std::fs::remove_file(path);
    }
}

fn which(selector: &Selector) -> Which<'_> {
    match selector {
        Selector::Repo(repo) => Which::Repo(repo),
        Selector::Resources { repo, resources } => Which::Resources(repo, *resources),
        Selector::Key(key) => Which::Key(&key.0),
        Selector::All => Which::All,
    }
}

mod invalidation;
#[cfg(test)]
mod tests;
