//! The cache directory itself: whose it is, who else can write it, and whether it is ghcache's.
//!
//! Whoever can write the cache directory, the index or a blob directory chooses what ghcache
//! prints: they replace an index row and the blob it names together, and every digest check
//! passes. So, as ssh does with `~/.ssh`, a cache whose directory, index or a directory in it
//! belongs to another user or is writable by group or others is refused ([`Error::Unsafe`]);
//! the caller then answers from GitHub without the cache. What other users can merely read is
//! tightened instead (directories to 0700, the index and its WAL files to 0600): the index
//! names the private repositories that were queried.
//!
//! Root counts as an owner, as it does for ssh: root can read and write all of the user's files
//! anyway, and a cache that an image build left owned by root is served read-only.
//!
//! The directory carries a `CACHEDIR.TAG` (<https://bford.info/cachedir/>), so that backup
//! tools skip it and so that ghcache knows its own. Eviction and `clear` delete files in the
//! cache, so a non-empty directory that is neither tagged by ghcache nor holds an index is
//! refused ([`Error::NotACache`]) rather than adopted.

use std::fs::{self, Metadata, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;

// The directory's layout is named here, where the directory is prepared and checked, so that
// the modules that fill it (blobs, locks, records, the index) and the one that checks it agree
// without reaching each other.

/// File name of the index inside the cache directory.
pub(crate) const DB: &str = "index.db";

/// Name of the blob directory inside the cache directory.
pub(crate) const BLOBS: &str = "blobs";

/// Name of the directory of lock files inside the cache directory.
pub(crate) const LOCKS: &str = "locks";

/// Name of the directory of records inside the cache directory.
pub(crate) const RECORDS: &str = "records";

/// File name of the cache directory tag.
pub(crate) const TAG: &str = "CACHEDIR.TAG";

/// The line every cache directory tag starts with (the standard's fixed signature).
const SIGNATURE: &str = "Signature: 8a477f597d28d172789f06886806bc55";

/// What ghcache writes to its tag: the signature, then comment lines naming ghcache.
const TAG_TEXT: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by ghcache, a cache for the GitHub CLI.\n\
# For information about cache directory tags, see https://bford.info/cachedir/\n";

// The p2p daemon's directory (identity, control socket), made by the p2p tier: checked here
// too, because whoever can write it can stand in for the daemon.
use ghcache_core::cache_dir::NODE_DIR as P2P;

/// The longest tag worth reading: ours is a few lines.
const TAG_READ_MAX: u64 = 4096;

/// Makes `dir` ready to be the cache whose index is the file `index` in it, or says why it
/// cannot be; returns whether the directory is writable.
///
/// # Behavior
/// Creates the directory (0700) when missing, with its tag, `blobs/` and `locks/`. Checks the
/// owner and mode of the directory, the index and its WAL files, and the directories in it;
/// tightens group and other read bits on those the user owns. Tags an untagged cache that holds
/// an index (one made by an older ghcache).
///
/// # Errors
/// [`Error::Unsafe`] when another user owns or can write any of them, [`Error::NotACache`] for
/// a non-empty directory that is not a ghcache cache, [`Error::Open`] when the directory cannot
/// be made or read.
pub(crate) fn prepare(dir: &Path, index: &str) -> Result<bool, Error> {
    let open_err = |reason: String| Error::Open {
        dir: dir.to_path_buf(),
        reason,
    };
    let (meta, created) = match fs::metadata(dir) {
        Ok(meta) => (meta, false),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            make_dir(dir).map_err(|e| open_err(e.to_string()))?;
            let meta = fs::metadata(dir).map_err(|e| open_err(e.to_string()))?;
            (meta, true)
        }
        Err(err) => return Err(open_err(err.to_string())),
    };
    if !meta.is_dir() {
        return Err(open_err("it is not a directory".into()));
    }
    let me = rustix::process::geteuid().as_raw();
    check(dir, dir, &meta, me)?;
    let writable = rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_ok();
    let db = dir.join(index);
    let db_meta = present(fs::metadata(&db)).map_err(|e| open_err(e.to_string()))?;
    let tag = dir.join(TAG);
    let tagged = if db_meta.is_some() {
        // An index makes it a cache, tagged or not (older ghcache wrote no tag).
        fs::symlink_metadata(&tag).is_ok()
    } else {
        let empty = created
            || fs::read_dir(dir)
                .map_err(|e| open_err(e.to_string()))?
                .next()
                .is_none();
        // Listed before the tag is read: ghcache writes the tag before anything else, so a
        // directory that another process is setting up has its tag by the time it is not
        // empty.
        if empty {
            false
        } else {
            match read_tag(&tag) {
                Ok(text) if is_ours(&text) => true,
                Ok(_) => return Err(not_a_cache(dir)),
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(not_a_cache(dir)),
                Err(err) => return Err(open_err(format!("{TAG}: {err}"))),
            }
        }
    };
    if !tagged && writable {
        // First, so that a process that opens the directory while this one sets it up finds
        // the tag, not a directory of unknown files.
        match write_tag(&tag) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            // A cache with an index is known without its tag: the next process writes it.
            Err(_) if db_meta.is_some() => {}
            Err(err) => return Err(open_err(format!("cannot write {TAG}: {err}"))),
        }
    }
    // Only now: the mode of a directory that is not a cache is not ours to change.
    tighten(dir, &meta, me);
    if let Some(db_meta) = db_meta {
        admit(dir, &db, &db_meta, me)?;
        // SQLite gives its WAL and shared-memory files the index's mode; files made before the
        // index was private keep theirs until tightened.
        for suffix in ["-wal", "-shm"] {
            let mut path = db.clone().into_os_string();
            path.push(suffix);
            let path = PathBuf::from(path);
            if let Ok(meta) = fs::metadata(&path) {
                admit(dir, &path, &meta, me)?;
            }
        }
    }
    for sub in [BLOBS, LOCKS, RECORDS, P2P] {
        let path = dir.join(sub);
        match present(fs::metadata(&path)).map_err(|e| open_err(format!("{sub}: {e}")))? {
            Some(meta) if meta.is_dir() => {
                admit(dir, &path, &meta, me)?;
            }
            Some(_) => return Err(open_err(format!("{} is not a directory", path.display()))),
            // The daemon makes its own directory.
            None if writable && sub != P2P => {
                make_dir(&path).map_err(|e| open_err(format!("{sub}: {e}")))?;
            }
            None => {}
        }
    }
    Ok(writable)
}

/// Whether [`prepare`] would take the cache at `dir` as it is, changing nothing: tagged, and
/// the directory, the index and the directories a hit reads all private to the user. A few
/// `stat`s, for the hit path, which leaves every other case to [`prepare`] (and its warning).
pub(crate) fn settled(dir: &Path, index: &str) -> bool {
    let me = rustix::process::geteuid().as_raw();
    let private = |path: &Path| {
        fs::metadata(path).is_ok_and(|meta| {
            distrust(&meta, me).is_none() && (meta.mode() & 0o077 == 0 || meta.uid() != me)
        })
    };
    private(dir)
        && private(&dir.join(index))
        && private(&dir.join(BLOBS))
        && private(&dir.join(RECORDS))
        && fs::symlink_metadata(dir.join(TAG)).is_ok()
}

/// Creates an empty index file readable by its owner only, unless one exists: SQLite would
/// create it with mode 0644, and gives its WAL and shared-memory files the index's mode.
pub(crate) fn create_index(db: &Path) {
    // Best effort: when this fails, so does SQLite's own attempt, and that error is reported.
    let _ = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(db);
}

/// Why `meta` (of a file or directory in the cache) must not be trusted by the user whose
/// effective uid is `me`: it belongs to another user, or group or others can write it. `None`
/// when it is fine.
pub(crate) fn distrust(meta: &Metadata, me: u32) -> Option<Distrust> {
    let owner = meta.uid();
    if owner != me && owner != 0 {
        return Some(Distrust::Owner { owner, me });
    }
    let mode = meta.mode() & 0o7777;
    (mode & 0o022 != 0).then_some(Distrust::Writable { mode })
}

/// What is wrong with a file or directory that another user could have written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Distrust {
    /// It belongs to another user.
    Owner {
        /// Its owner's uid.
        owner: u32,
        /// Our effective uid.
        me: u32,
    },
    /// Group or others can write it.
    Writable {
        /// Its permission bits.
        mode: u32,
    },
}

impl Distrust {
    /// One sentence for `path`: what is wrong, and the command that fixes it.
    pub(crate) fn explain(self, path: &Path, is_dir: bool) -> String {
        let path = path.display();
        match self {
            Distrust::Owner { owner, me } => format!(
                "{path} belongs to uid {owner}, not to you (uid {me}), so another user could \
                 plant answers in it; set GH_CACHE_DIR to a directory of your own, or run \
                 `chown -R {me} {path}` if it should be yours"
            ),
            Distrust::Writable { mode } => format!(
                "{path} is writable by other users (mode {mode:o}), so they could plant answers \
                 in it; run `chmod {} {path}`",
                if is_dir { "700" } else { "600" }
            ),
        }
    }
}

/// Refuses `path` (the cache directory or something in it) when another user could have
/// written it; otherwise tightens it.
fn admit(dir: &Path, path: &Path, meta: &Metadata, me: u32) -> Result<(), Error> {
    check(dir, path, meta, me)?;
    tighten(path, meta, me);
    Ok(())
}

/// Refuses `path` (the cache directory or something in it) when another user could have
/// written it.
fn check(dir: &Path, path: &Path, meta: &Metadata, me: u32) -> Result<(), Error> {
    match distrust(meta, me) {
        None => Ok(()),
        Some(why) => Err(Error::Unsafe {
            dir: dir.to_path_buf(),
            reason: why.explain(path, meta.is_dir()),
        }),
    }
}

/// Takes away group and other permissions from a file or directory the user owns. Best effort:
/// on a read-only mount the mode stays as it is, and what it lets others read was readable
/// before.
fn tighten(path: &Path, meta: &Metadata, me: u32) {
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 && meta.uid() == me {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode & !0o077));
    }
}

/// `Ok(None)` for a file that does not exist.
fn present(meta: io::Result<Metadata>) -> io::Result<Option<Metadata>> {
    match meta {
        Ok(meta) => Ok(Some(meta)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

fn not_a_cache(dir: &Path) -> Error {
    Error::NotACache {
        dir: dir.to_path_buf(),
    }
}

fn read_tag(path: &Path) -> io::Result<Vec<u8>> {
    let mut text = Vec::new();
    fs::File::open(path)?
        .take(TAG_READ_MAX)
        .read_to_end(&mut text)?;
    Ok(text)
}

/// Whether a tag is ghcache's. A prefix of ours counts: another process may be writing it.
fn is_ours(text: &[u8]) -> bool {
    TAG_TEXT.as_bytes().starts_with(text)
        || (text.starts_with(SIGNATURE.as_bytes())
            && String::from_utf8_lossy(text).contains("ghcache"))
}

fn write_tag(path: &Path) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    // One write: a reader sees a prefix of the text at worst, which `is_ours` accepts.
    let written = file.write_all(TAG_TEXT.as_bytes());
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}

/// Creates a directory (and missing parents) readable by its owner only.
pub(crate) fn make_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_follows_the_standard_and_is_recognised() {
        assert!(TAG_TEXT.starts_with(SIGNATURE));
        assert!(is_ours(TAG_TEXT.as_bytes()));
        assert!(is_ours(b""), "a tag being written");
        assert!(is_ours(&TAG_TEXT.as_bytes()[..10]));
        let other = "Signature: 8a477f597d28d172789f06886806bc55\n# made by another tool\n";
        assert!(!is_ours(other.as_bytes()));
        assert!(!is_ours(b"hello"));
    }
}
