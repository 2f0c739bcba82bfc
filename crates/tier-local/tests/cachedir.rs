//! The cache directory is its owner's alone: one that another user could write is refused,
//! what ghcache makes in it is 0700/0600, it is tagged, and only ghcache's own files are
//! deleted from it. Run as root (as CI does), "another user" is uid 65534 or a write bit.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ghcache_core::testkit::sample_entry;
use ghcache_core::{CacheKey, CacheTier, Lookup, Selector};
use ghcache_tier_local::{Config, Error, KeyLock, Tier};

const NOBODY: u32 = 65_534;

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .map(|m| m.mode() & 0o7777)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), None)
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

async fn open(dir: &Path) -> Tier {
    Tier::open(Config::new(dir))
        .await
        .unwrap_or_else(|e| panic!("open: {e}"))
}

/// A cache at `<tmp>/cache` holding one entry, closed.
async fn filled_cache(root: &Path) -> PathBuf {
    let dir = root.join("cache");
    let tier = open(&dir).await;
    tier.put(&sample_entry(1, "o/a", b"alpha\n"))
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    tier.close().await;
    dir
}

fn refusal(result: Result<Tier, Error>) -> String {
    match result {
        Ok(_) => panic!("the cache was opened"),
        Err(err) => err.to_string(),
    }
}

#[tokio::test]
async fn a_cache_that_another_user_can_write_is_refused() {
    type Case = (&'static str, fn(&Path), &'static str);
    let cases: [Case; 7] = [
        ("dir owned by nobody", |d| chown(d, NOBODY), "chown -R 0"),
        ("dir 0777", |d| chmod(d, 0o777), "chmod 700"),
        ("dir 0770", |d| chmod(d, 0o770), "chmod 700"),
        ("dir 1777", |d| chmod(d, 0o1777), "chmod 700"),
        (
            "blobs 0777",
            |d| chmod(&d.join("blobs"), 0o777),
            "chmod 700",
        ),
        (
            "index owned by nobody",
            |d| chown(&d.join("index.db"), NOBODY),
            "chown -R 0",
        ),
        (
            "index 0666",
            |d| chmod(&d.join("index.db"), 0o666),
            "chmod 600",
        ),
    ];
    for (name, open_up, fix) in cases {
        let root = tempdir();
        let dir = filled_cache(root.path()).await;
        open_up(&dir);
        let message = refusal(Tier::open(Config::new(&dir)).await);
        assert!(message.contains(fix), "{name}: {message}");
        assert!(
            message.contains(&dir.display().to_string()),
            "{name}: names the directory: {message}"
        );
    }
}

#[tokio::test]
async fn what_ghcache_makes_is_private_and_older_files_are_tightened() {
    let root = tempdir();
    let dir = filled_cache(root.path()).await;
    let tier = open(&dir).await;
    for (name, expected) in [
        ("", 0o700),
        ("index.db", 0o600),
        ("index.db-wal", 0o600),
        ("index.db-shm", 0o600),
        ("CACHEDIR.TAG", 0o600),
        ("blobs", 0o700),
        ("locks", 0o700),
    ] {
        assert_eq!(mode(&dir.join(name)), expected, "{name}");
    }
    tier.close().await;
    for (name, loose) in [("", 0o755), ("index.db", 0o644), ("blobs", 0o750)] {
        chmod(&dir.join(name), loose);
    }
    let tier = open(&dir).await;
    let hit = tier
        .get(&sample_entry(1, "o/a", b"alpha\n").manifest.key)
        .await;
    assert!(matches!(hit, Ok(Lookup::Hit(_))), "{hit:?}");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("index.db")), 0o600);
    assert_eq!(mode(&dir.join("blobs")), 0o700);
    tier.close().await;
}

#[tokio::test]
async fn only_an_empty_directory_or_a_ghcache_cache_is_adopted() {
    let root = tempdir();
    // Empty: adopted and tagged.
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap_or_else(|e| panic!("{e}"));
    open(&empty).await.close().await;
    let tag = std::fs::read_to_string(empty.join("CACHEDIR.TAG")).unwrap_or_default();
    assert!(tag.starts_with("Signature: 8a477f597d28d172789f06886806bc55\n"));

    // Someone's files: refused, and left as they were.
    let documents = root.path().join("documents");
    std::fs::create_dir(&documents).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(documents.join("notes.txt"), "mine").unwrap_or_else(|e| panic!("{e}"));
    let message = refusal(Tier::open(Config::new(&documents)).await);
    assert!(message.contains("not a ghcache cache"), "{message}");
    assert!(message.contains("GH_CACHE_DIR"), "{message}");
    let left: Vec<_> = std::fs::read_dir(&documents)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["notes.txt"]);

    // Another tool's cache: refused.
    let other = root.path().join("other");
    std::fs::create_dir(&other).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        other.join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55\n# made by another tool\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let message = refusal(Tier::open(Config::new(&other)).await);
    assert!(message.contains("not a ghcache cache"), "{message}");

    // A cache made before the tag: adopted, tagged, still serving.
    let old = filled_cache(root.path()).await;
    std::fs::remove_file(old.join("CACHEDIR.TAG")).unwrap_or_else(|e| panic!("{e}"));
    let tier = open(&old).await;
    let hit = tier
        .get(&sample_entry(1, "o/a", b"alpha\n").manifest.key)
        .await;
    assert!(matches!(hit, Ok(Lookup::Hit(_))), "{hit:?}");
    assert!(old.join("CACHEDIR.TAG").is_file());
    tier.close().await;
}

#[tokio::test]
async fn clearing_everything_deletes_only_files_of_ghcache_formats() {
    let root = tempdir();
    let dir = filled_cache(root.path()).await;
    let entry = sample_entry(1, "o/a", b"alpha\n");
    let hex = entry.manifest.body_digest.to_hex();
    let fan = dir.join("blobs").join(&hex[..2]);
    let blob = fan.join(&hex);
    assert!(blob.is_file());
    let orphan_hex = format!("{}{}", &hex[..2], "0".repeat(62));
    let orphan = fan.join(&orphan_hex);
    std::fs::write(&orphan, "unreferenced").unwrap_or_else(|e| panic!("{e}"));
    let foreign = [
        fan.join("notes.txt"),
        fan.join(format!("{hex}.orig")),
        dir.join("blobs/zz/backup"),
        dir.join("blobs/README"),
        dir.join("notes.txt"),
        dir.join("stats.pending.notes"),
    ];
    for path in &foreign {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(path, "not ghcache's").unwrap_or_else(|e| panic!("{e}"));
    }
    let tier = open(&dir).await;
    let dropped = tier.invalidate(&Selector::All).await;
    assert!(matches!(dropped, Ok(1)), "{dropped:?}");
    tier.close().await;
    assert!(!blob.exists(), "the body was removed");
    assert!(!orphan.exists(), "an unreferenced blob was removed");
    for path in &foreign {
        let kept = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(kept, "not ghcache's", "{} kept", path.display());
    }
    // Moved by the clear, never removed.
    assert!(dir.join("fences").is_file(), "the fence file is kept");
}

fn key(n: u8) -> CacheKey {
    CacheKey([n; 32])
}

#[test]
fn lock_files_nobody_holds_are_removed_and_held_ones_kept() {
    let root = tempdir();
    let dir = root.path();
    let held = KeyLock::acquire(dir, &key(1), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("not locked"));
    drop(KeyLock::acquire(dir, &key(2), Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}")));
    let locks = dir.join("locks");
    std::fs::write(locks.join("notes.txt"), "mine").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(KeyLock::remove_unheld(dir), 1);
    let mut left: Vec<_> = std::fs::read_dir(&locks)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [format!("{}.lock", key(1).to_hex()), "notes.txt".into()]
    );
    drop(held);
    assert_eq!(KeyLock::remove_unheld(dir), 1);
}

#[test]
fn removing_unheld_lock_files_never_lets_two_holders_in() {
    let root = tempdir();
    let dir = root.path().to_path_buf();
    let inside = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let entered = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sweeper = {
        let (dir, stop) = (dir.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut removed = 0;
            while !stop.load(Ordering::Relaxed) {
                removed += KeyLock::remove_unheld(&dir);
            }
            removed
        })
    };
    let lockers: Vec<_> = (0..4)
        .map(|_| {
            let (dir, inside, overlaps, entered) = (
                dir.clone(),
                inside.clone(),
                overlaps.clone(),
                entered.clone(),
            );
            std::thread::spawn(move || {
                for _ in 0..500 {
                    let lock = KeyLock::acquire(&dir, &key(7), Duration::from_secs(30))
                        .unwrap_or_else(|e| panic!("{e}"))
                        .unwrap_or_else(|| panic!("timed out"));
                    if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    entered.fetch_add(1, Ordering::SeqCst);
                    std::thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(lock);
                }
            })
        })
        .collect();
    for locker in lockers {
        locker
            .join()
            .unwrap_or_else(|_| panic!("a locker panicked"));
    }
    stop.store(true, Ordering::Relaxed);
    let removed = sweeper
        .join()
        .unwrap_or_else(|_| panic!("the sweeper panicked"));
    assert_eq!(entered.load(Ordering::SeqCst), 2000);
    assert!(
        removed > 0,
        "the sweeper removed lock files while they were used"
    );
    assert_eq!(overlaps.load(Ordering::SeqCst), 0, "two holders at once");
}
