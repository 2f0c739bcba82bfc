//! Opening the index, and recovering from what a crash, a full disk or another process left.
//!
//! [`index()`] is what [`crate::Tier::open`] does before the tier exists:
//!
//! - the cache dir is checked and prepared (owner only, `CACHEDIR.TAG`, `blobs/`, `locks/`), and
//!   the fence file made, with invalidations recorded while the cache could not be written
//!   folded in;
//! - the index is opened and its schema brought up to date. One that is not a SQLite database,
//!   or is truncated or malformed, is moved aside ([`quarantine`]) and a new one started; one
//!   that another process holds while it switches a new database to WAL is tried again; one
//!   that cannot be written (full disk, read-only directory) is opened read-only, so what is
//!   stored is still served;
//! - one written by a newer ghcache is refused.
//!
//! A query that later finds the open index corrupt moves it aside the same way.

use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr as _;
use std::time::Duration;

use ghcache_core::now_ms;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Connection as _, SqliteConnection};

use crate::cachedir::{self, DB};
use crate::error::Error;
use crate::fence::Fences;
use crate::index::{self, Schema};
use crate::lock::{index_lock_path, lock_file};

/// How long SQLite waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to wait before trying again to open an index another process holds locked.
const BUSY_RETRY: Duration = Duration::from_millis(20);

/// How long to wait for another process that is moving a corrupt index aside.
const QUARANTINE_WAIT: Duration = Duration::from_secs(2);

/// Why connecting to the index failed.
enum Failure {
    Corrupt(String),
    Newer(i64),
    /// Another process holds a lock that SQLite does not wait for (switching a new database
    /// to WAL): worth another try.
    Busy(String),
    Other(String),
}

/// An index opened by [`index()`], and what the tier is made of besides.
pub(crate) struct Opened {
    /// The cache dir.
    pub(crate) dir: PathBuf,
    /// Its index file.
    pub(crate) db: PathBuf,
    /// The one connection to the index.
    pub(crate) conn: SqliteConnection,
    /// (device, inode) of the index opened: it is moved aside only while it is still that file.
    pub(crate) identity: Option<(u64, u64)>,
    /// Whether the cache can be written; `false` serves what is stored and stores nothing.
    pub(crate) writable: bool,
    /// The fences of the cache dir.
    pub(crate) fences: Fences,
    /// What to tell the user once: an index moved aside, a cache that cannot be written.
    pub(crate) warnings: Vec<String>,
}

/// Opens the cache at `dir` and its index; see the module doc for what it recovers from.
///
/// # Errors
/// Those of [`crate::Tier::open`].
pub(crate) async fn index(dir: PathBuf) -> Result<Opened, Error> {
    let open_err = |reason: String| Error::Open {
        dir: dir.clone(),
        reason,
    };
    // Refuses a directory that another user could write or that is not a cache; makes
    // `blobs/` and `locks/`.
    let mut writable = cachedir::prepare(&dir, DB)?;
    let mut warnings = Vec::new();
    if !writable {
        warnings.push(format!(
            "the cache at {} is read-only: answers are served from it, nothing new is stored",
            dir.display()
        ));
    }
    let db = dir.join(DB);
    let fences = Fences::new(&dir);
    if writable {
        // Before the index is opened: `had_index` must see whether it existed.
        match fences.ensure(db.is_file()) {
            Ok(warning) => {
                warnings.extend(warning);
                // Moves made while the cache could not be written (a one-`open` no-op
                // when there were none).
                if let Err(err) = fences.fold_overflow() {
                    warnings.push(format!("cannot fold recorded invalidations: {err}"));
                }
            }
            Err(err) => warnings.push(format!(
                "cannot make the fence file in {} ({err}): nothing will be served from \
                     the cache until it can be made",
                dir.display()
            )),
        }
    }
    let mut moved = false;
    let busy_until = std::time::Instant::now() + BUSY_TIMEOUT;
    let (conn, identity) = loop {
        if writable {
            cachedir::create_index(&db);
        }
        let identity = identity_of(&db);
        match connect(&db, writable).await {
            Ok(conn) => break (conn, identity),
            Err(Failure::Busy(_)) if std::time::Instant::now() < busy_until => {
                tokio::time::sleep(BUSY_RETRY).await;
            }
            Err(Failure::Corrupt(reason)) if writable && !moved => {
                moved = true;
                if let Some(line) = quarantine(&dir, &db, identity, &reason) {
                    warnings.push(line);
                }
            }
            Err(Failure::Corrupt(reason)) => {
                return Err(open_err(format!(
                    "the index {} is corrupt: {reason}",
                    db.display()
                )))
            }
            Err(Failure::Newer(found)) => {
                return Err(Error::Newer {
                    dir,
                    found,
                    known: index::SCHEMA_VERSION,
                })
            }
            Err(Failure::Other(reason) | Failure::Busy(reason)) if writable && db.is_file() => {
                // A full disk or a failing write path: what is stored can still be served.
                match connect(&db, false).await {
                    Ok(conn) => {
                        warnings.push(format!(
                            "cannot write the cache at {} ({reason}): answers are served \
                                 from it, nothing new is stored",
                            dir.display()
                        ));
                        writable = false;
                        break (conn, identity);
                    }
                    Err(_) => return Err(open_err(reason)),
                }
            }
            Err(Failure::Other(reason) | Failure::Busy(reason)) => return Err(open_err(reason)),
        }
    };
    Ok(Opened {
        dir,
        db,
        conn,
        identity,
        writable,
        fences,
        warnings,
    })
}

fn identity_of(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The primary SQLite result code of a database error.
pub(crate) fn code(err: &sqlx::Error) -> Option<i32> {
    match err {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| i32::from_str(&c).ok())
            .map(|c| c & 0xff),
        _ => None,
    }
}

/// SQLITE_CORRUPT or SQLITE_NOTADB.
pub(crate) fn is_corrupt(err: &sqlx::Error) -> bool {
    matches!(code(err), Some(11 | 26))
}

/// A boxed future: checking `Send` here, at concrete lifetimes, sidesteps the compiler's
/// higher-ranked lifetime limits that sqlx's executor futures otherwise hit in callers.
type Connecting<'a> = Pin<Box<dyn Future<Output = Result<SqliteConnection, Failure>> + Send + 'a>>;

/// A second connection to an index this process opened already (see `Tier::conn`).
///
/// # Errors
/// Why it cannot be opened, as one line.
pub(crate) async fn reconnect(db: &Path, writable: bool) -> Result<SqliteConnection, String> {
    connect(db, writable)
        .await
        .map_err(|failure| match failure {
            Failure::Corrupt(why) | Failure::Busy(why) | Failure::Other(why) => why,
            Failure::Newer(version) => {
                format!("the index is of a newer ghcache (schema {version})")
            }
        })
}

/// Opens the index, bringing its schema up to date.
fn connect(db: &Path, writable: bool) -> Connecting<'_> {
    Box::pin(connect_inner(db, writable))
}

async fn connect_inner(db: &Path, writable: bool) -> Result<SqliteConnection, Failure> {
    if let Some(problem) = header_problem(db) {
        return Err(Failure::Corrupt(problem));
    }
    let mut options = SqliteConnectOptions::new()
        .filename(db)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    options = if writable {
        options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
    } else {
        // Nobody can write a read-only directory, and SQLite cannot create the WAL's shared
        // memory file there: read the file as it is.
        options.read_only(true).immutable(true)
    };
    let mut conn = options.connect().await.map_err(|e| classify(db, &e))?;
    let schema = if writable {
        index::migrate(&mut conn, now_ms()).await
    } else {
        index::user_version(&mut conn).await.map(|v| match v {
            v if v > index::SCHEMA_VERSION => Schema::Newer(v),
            _ => Schema::Current,
        })
    };
    match schema {
        Ok(Schema::Current) => Ok(conn),
        Ok(Schema::Newer(found)) => {
            let _ = conn.close().await;
            Err(Failure::Newer(found))
        }
        Err(err) => {
            let _ = conn.close().await;
            Err(classify(db, &err))
        }
    }
}

fn classify(db: &Path, err: &sqlx::Error) -> Failure {
    if is_corrupt(err) {
        Failure::Corrupt(err.to_string())
    } else if code(err) == Some(5) {
        Failure::Busy(format!("{}: {err}", db.display()))
    } else {
        Failure::Other(format!("{}: {err}", db.display()))
    }
}

/// Cheap checks of the file header that SQLite itself only trips over on a later query: not a
/// database, or shorter than the header says (truncated).
pub(crate) fn header_problem(db: &Path) -> Option<String> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(db).ok()?;
    let len = file.metadata().ok()?.len();
    if len == 0 {
        // SQLite treats an empty file as a new database.
        return None;
    }
    let mut header = [0u8; 100];
    if file.read_exact(&mut header).is_err() {
        return Some(format!("only {len} bytes long"));
    }
    if &header[..16] != b"SQLite format 3\0" {
        return Some("not a SQLite database".into());
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let pages = u64::from(be32(28));
    // The page count in the header is only valid when its version stamp matches, and pages may
    // still sit in a WAL that a reader or checkpoint will apply.
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let wal_len = std::fs::metadata(wal).map_or(0, |m| m.len());
    if be32(92) == be32(24) && wal_len == 0 && pages.saturating_mul(page_size) > len {
        return Some(format!(
            "truncated: {len} bytes, its header says {pages} pages of {page_size}"
        ));
    }
    None
}

/// Moves a corrupt index (and its WAL files) aside, unless another process already replaced it.
/// Returns the warning to show.
pub(crate) fn quarantine(
    dir: &Path,
    db: &Path,
    seen: Option<(u64, u64)>,
    reason: &str,
) -> Option<String> {
    // Serialised, so that two processes that both found the old file corrupt do not also move
    // aside the fresh one the first of them created.
    let _lock = lock_file(dir, &index_lock_path(dir), QUARANTINE_WAIT)
        .ok()
        .flatten();
    if identity_of(db) != seen || seen.is_none() {
        return None;
    }
    let aside = dir.join(format!("{DB}.corrupt-{}", now_ms()));
    if let Err(err) = std::fs::rename(db, &aside) {
        return Some(format!(
            "the cache index {} is corrupt ({reason}) and could not be moved aside: {err}",
            db.display()
        ));
    }
    for suffix in ["-wal", "-shm"] {
        let mut from = db.as_os_str().to_owned();
        from.push(suffix);
        let mut to = aside.as_os_str().to_owned();
        to.push(suffix);
        // A WAL left behind would be replayed into the new database.
        if std::fs::rename(&from, &to).is_err() {
            let _ = std::fs::remove_file(&from);
        }
    }
    Some(format!(
        "the cache index was corrupt ({reason}); moved it to {} and started a new one",
        aside.display()
    ))
}
