//! The machine's rate-limit book ([`ghcache_core::budget::Book`]) as a file in the cache dir,
//! shared by every process: read whole, changed under an exclusive `flock` on a lock file
//! beside it, replaced atomically (a reader never sees half a book).
//!
//! A book that is missing, corrupt or of another version reads as empty: it only ever makes
//! ghcache more careful, and GitHub tells the budget again on the next answer.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use ghcache_core::budget::{Book, BookStore, InFlight, Principal, Slot, MAX_BOOK};
use ghcache_core::cache_dir::BUDGET_FILE;
use ghcache_core::now_ms;
use rustix::fs::{flock, FlockOperation};

/// The book of the cache dir it was opened for.
#[derive(Debug, Clone)]
pub struct BookFile {
    path: PathBuf,
}

impl BookFile {
    /// The book in cache dir `dir` (made when first changed).
    pub fn in_dir(dir: &Path) -> BookFile {
        BookFile {
            path: dir.join(BUDGET_FILE),
        }
    }

    fn read(&self) -> Book {
        let Ok(bytes) = fs::read(&self.path) else {
            return Book::default();
        };
        if bytes.len() > MAX_BOOK {
            return Book::default();
        }
        Book::decode(&bytes).unwrap_or_default()
    }

    fn lock(&self) -> io::Result<File> {
        let mut name = self.path.clone().into_os_string();
        name.push(".lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(PathBuf::from(name))?;
        flock(&file, FlockOperation::LockExclusive).map_err(io::Error::from)?;
        Ok(file)
    }

    fn write(&self, book: &Book) -> io::Result<()> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".tmp-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(&book.encode())?;
            fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

impl BookStore for BookFile {
    fn load(&self) -> Book {
        self.read()
    }

    fn update(&self, change: &mut dyn FnMut(&mut Book)) -> io::Result<()> {
        // Held until the new book is in place: another process's change is not lost.
        let _lock = self.lock()?;
        let mut book = self.read();
        change(&mut book);
        book.prune(now_ms());
        self.write(&book)
    }
}

/// The slots of each principal's requests in flight on this machine: `cap` lock files in a
/// directory of the cache dir per principal, each taken with a non-blocking exclusive `flock`
/// and given back when its holder drops it (or its process ends).
#[derive(Debug, Clone)]
pub struct InFlightFiles {
    dir: PathBuf,
}

impl InFlightFiles {
    /// The slots in cache dir `dir` (made when first taken).
    pub fn in_dir(dir: &Path) -> InFlightFiles {
        InFlightFiles {
            dir: dir.join(IN_FLIGHT_DIR),
        }
    }

    fn take(&self, principal: &Principal, cap: usize) -> io::Result<Option<File>> {
        // A principal's name has ':' and '/': hashed into a name of its own.
        let name = blake3::hash(principal.as_str().as_bytes()).to_hex();
        let dir = self.dir.join(&name.as_str()[..16]);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        for slot in 0..cap {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(dir.join(slot.to_string()))?;
            if flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
                return Ok(Some(file));
            }
        }
        Ok(None)
    }
}

impl InFlight for InFlightFiles {
    fn try_take(&self, principal: &Principal, cap: usize) -> Option<Slot> {
        match self.take(principal, cap) {
            Ok(Some(file)) => Some(Slot(Box::new(file))),
            Ok(None) => None,
            // Slots cannot be kept here: the request goes, as it would without ghcache.
            Err(_) => Some(Slot(Box::new(()))),
        }
    }
}

/// The directory of the cache dir that holds the slots of requests in flight.
const IN_FLIGHT_DIR: &str = "in-flight";

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ghcache_core::budget::{Pause, Principal, Reading};

    use super::*;

    /// Unwraps what a test needs, naming what was missing.
    trait Must<T> {
        fn must(self) -> T;
    }

    impl<T> Must<T> for Option<T> {
        fn must(self) -> T {
            self.unwrap_or_else(|| panic!("expected a value, found none"))
        }
    }

    impl<T, E: std::fmt::Debug> Must<T> for Result<T, E> {
        fn must(self) -> T {
            self.unwrap_or_else(|e| panic!("{e:?}"))
        }
    }

    fn reading(remaining: u64, at_ms: u64) -> Reading {
        Reading {
            resource: "core".into(),
            limit: 1000,
            remaining,
            used: 1000 - remaining,
            reset_s: now_ms() / 1000 + 3600,
            at_ms,
        }
    }

    #[test]
    fn changes_of_many_threads_are_all_kept() {
        let dir = tempfile::tempdir().must();
        let store = BookFile::in_dir(dir.path());
        assert_eq!(store.load(), Book::default());
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let p = Principal::of(
                        Some(&ghcache_core::Manifest::token_hash(&format!("t{i}"))),
                        None,
                    );
                    store
                        .update(&mut |book| book.observe(&p, reading(100 + i, now_ms())))
                        .must();
                })
            })
            .collect();
        for t in threads {
            t.join().must();
        }
        assert_eq!(store.load().principals().count(), 8);
        let mode = fs::metadata(dir.path().join(BUDGET_FILE))
            .must()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }

    #[test]
    fn a_principal_has_at_most_cap_slots_and_a_dropped_one_is_free_again() {
        let dir = tempfile::tempdir().must();
        let slots = InFlightFiles::in_dir(dir.path());
        let p = Principal::of(None, None);
        let q = Principal::of(Some(&ghcache_core::Manifest::token_hash("t")), None);
        let first = slots.try_take(&p, 2).must();
        let second = slots.try_take(&p, 2).must();
        assert!(slots.try_take(&p, 2).is_none(), "both taken");
        assert!(
            slots.try_take(&q, 2).is_some(),
            "another principal's are its own"
        );
        drop(first);
        assert!(slots.try_take(&p, 2).is_some(), "given back");
        drop(second);
    }

    #[test]
    fn a_corrupt_book_reads_as_empty_and_is_replaced_on_the_next_change() {
        let dir = tempfile::tempdir().must();
        fs::write(dir.path().join(BUDGET_FILE), b"not a book").must();
        let store = BookFile::in_dir(dir.path());
        assert_eq!(store.load(), Book::default());
        let p = Principal::of(None, None);
        let pause = Pause::after(None, Some(Duration::from_secs(5)), now_ms());
        store.update(&mut |book| book.pause(&p, pause)).must();
        assert_eq!(
            store.load().paused_until(&p, pause.since_ms),
            Some(pause.until_ms)
        );
    }
}
