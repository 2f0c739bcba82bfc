//! The local tier as one command uses it: records first, the index only when needed.
//!
//! Opening the SQLite index costs more than a whole hit, and most commands never need it: a
//! hit is answered from the records (see the reader module), a p2p hit was already stored by
//! this machine's daemon, and a miss needs the index only to store what GitHub answered. So
//! [`LazyTier`] prepares the directory and the fences when it is made, and opens the index on
//! the first lookup the records cannot settle or the first store that changes something.

use std::sync::Mutex;

use async_trait::async_trait;
use ghcache_core::{
    CacheKey, CacheTier, Entry, Event, InvalidationId, Lookup, Mark, Selector, TierError,
};
use tokio::sync::OnceCell;

use crate::cachedir::{self, DB};
use crate::config::{Config, NAME};
use crate::error::Error;
use crate::fence::Fences;
use crate::reader::{Read, Reader, Used};
use crate::tier::Tier;

/// The local tier, opening its index on demand.
#[derive(Debug)]
pub struct LazyTier {
    config: Config,
    reader: Reader,
    fences: Fences,
    writable: bool,
    index: OnceCell<Result<Tier, String>>,
    warnings: Mutex<Vec<String>>,
    /// The entry the records answered with, whose use [`LazyTier::record`] notes.
    used: Mutex<Option<Used>>,
}

impl LazyTier {
    /// Prepares the cache directory and its fence file as [`Tier::open`] does, without opening
    /// the index.
    ///
    /// # Errors
    /// As [`Tier::open`] for the directory: one another user could write, one that is not a
    /// ghcache cache, one that cannot be made.
    pub fn open(config: Config) -> Result<LazyTier, Error> {
        let writable = cachedir::prepare(&config.dir, DB)?;
        let fences = Fences::new(&config.dir);
        let mut warnings = Vec::new();
        if writable {
            match fences.ensure(config.dir.join(DB).is_file()) {
                Ok(warning) => warnings.extend(warning),
                Err(err) => warnings.push(format!(
                    "cannot make the fence file in {} ({err}): nothing will be served from the \
                     cache until it can be made",
                    config.dir.display()
                )),
            }
            if let Err(err) = fences.fold_overflow() {
                warnings.push(format!("cannot fold recorded invalidations: {err}"));
            }
        }
        Ok(LazyTier {
            reader: Reader::new(&config),
            fences,
            config,
            writable,
            index: OnceCell::new(),
            warnings: Mutex::new(warnings),
            used: Mutex::new(None),
        })
    }

    /// The fences that guard this cache.
    pub fn fences(&self) -> &Fences {
        &self.fences
    }

    /// Whether the directory cannot be written: nothing will be stored.
    pub fn is_read_only(&self) -> bool {
        !self.writable || self.opened().is_some_and(Tier::is_read_only)
    }

    /// Things to tell the user once, from preparing the directory and, if it was opened, the
    /// index ([`Tier::warnings`]).
    pub fn warnings(&self) -> Vec<String> {
        let mut all = match self.warnings.lock() {
            Ok(w) => w.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        match self.index.get() {
            Some(Ok(tier)) => all.extend(tier.warnings()),
            Some(Err(err)) => all.push(format!("{err}; answering without the cache")),
            None => {}
        }
        all
    }

    /// The index, opened now if it was not.
    async fn index(&self) -> Result<&Tier, TierError> {
        let opened = self
            .index
            .get_or_init(|| async {
                Tier::open(self.config.clone())
                    .await
                    .map_err(|e| e.to_string())
            })
            .await;
        opened.as_ref().map_err(|reason| TierError::Unavailable {
            tier: NAME,
            reason: reason.clone(),
        })
    }

    /// Opens the index now, unless it is open or nothing can be stored: for a caller about to
    /// wait on something else (another tier, GitHub) whose answer it will store, so that the
    /// opening (a worker thread, the connection, the schema check) overlaps the wait instead
    /// of following it. A failure is kept and reported as when a store opens it.
    pub async fn open_for_store(&self) {
        if self.writable {
            let _ = self.index().await;
        }
    }

    fn opened(&self) -> Option<&Tier> {
        self.index.get().and_then(|r| r.as_ref().ok())
    }

    /// Counts `events`, as [`Tier::record`] does, without opening the index unless the pending
    /// counters have grown past their fold size.
    ///
    /// # Errors
    /// As [`Tier::record`].
    pub async fn record(&self, events: &[Event]) -> Result<(), Error> {
        let used = self.used.lock().ok().and_then(|mut u| u.take());
        let fold = match used {
            Some(used) => self.reader.record(used, events)?,
            None => self.reader.record_events(events)?,
        };
        if fold {
            let tier = self.index().await.map_err(|e| Error::Index {
                dir: self.config.dir.clone(),
                reason: e.to_string(),
            })?;
            tier.fold_pending().await?;
        }
        Ok(())
    }

    /// Ends the command's use of the cache (see [`Tier::close_before_exit`]).
    pub async fn close_before_exit(self) {
        if let Some(Ok(tier)) = self.index.into_inner() {
            tier.close_before_exit().await;
        }
    }
}

impl LazyTier {
    /// Whether the record of `entry`'s key holds exactly `entry`, stored under `mark`: storing it
    /// again would change nothing. Reads one small file.
    pub fn holds(&self, entry: &Entry, mark: Mark) -> bool {
        self.reader.holds(entry, mark.0)
    }

    /// [`crate::Tier::invalidate_at`]: a write this machine recorded as issued at `at_ms`.
    ///
    /// # Errors
    /// As [`crate::Tier::invalidate_at`], or the index cannot be opened.
    pub async fn invalidate_at(&self, selector: &Selector, at_ms: u64) -> Result<u64, TierError> {
        self.index().await?.invalidate_at(selector, at_ms).await
    }
}

#[async_trait]
impl CacheTier for LazyTier {
    fn name(&self) -> &'static str {
        NAME
    }

    /// The records first; the index for what they cannot settle.
    async fn get(&self, key: &CacheKey) -> Result<Lookup, TierError> {
        match self.reader.get(key) {
            Read::Found(found) => {
                if let Ok(mut used) = self.used.lock() {
                    *used = Some(found.used);
                }
                Ok(Lookup::Hit(found.entry))
            }
            Read::Missing => Ok(Lookup::Miss),
            Read::AskIndex => self.index().await?.get(key).await,
        }
    }

    async fn put(&self, entry: &Entry) -> Result<(), TierError> {
        self.index().await?.put(entry).await
    }

    /// Stores `entry` under `mark`, unless its record already holds exactly that (a peer's
    /// entry that this machine's daemon stored before handing it over): then the index is not
    /// opened at all.
    async fn put_fenced(&self, entry: &Entry, mark: Mark) -> Result<(), TierError> {
        if self.holds(entry, mark) {
            return Ok(());
        }
        self.index().await?.put_fenced(entry, mark).await
    }

    async fn invalidate(&self, selector: &Selector) -> Result<u64, TierError> {
        self.index().await?.invalidate(selector).await
    }

    async fn invalidate_known(
        &self,
        selector: &Selector,
        id: InvalidationId,
    ) -> Result<u64, TierError> {
        self.index().await?.invalidate_known(selector, id).await
    }
}
