//! The local tier against the shared conformance suite and its own storage guarantees.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ghcache_core::testkit::{conformance, sample_entry, Capabilities};
use ghcache_core::{CacheKey, CacheTier, Event, Lookup, Selector, TierError};
use ghcache_tier_local::{Config, KeyLock, LazyTier, Stats, Tier};

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

async fn open(dir: &Path) -> Tier {
    Tier::open(Config::new(dir))
        .await
        .unwrap_or_else(|e| panic!("open: {e}"))
}

async fn open_capped(dir: &Path, max_bytes: u64) -> Tier {
    let mut config = Config::new(dir);
    config.max_bytes = max_bytes;
    Tier::open(config)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"))
}

fn blob_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.join("blobs")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

async fn stats(tier: &Tier) -> Stats {
    tier.stats().await.unwrap_or_else(|e| panic!("stats: {e}"))
}

#[tokio::test]
async fn passes_the_conformance_suite() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    assert_eq!(tier.name(), "local");
    conformance(&tier, Capabilities::STORES).await;
    tier.close().await;
}

/// The tier every command uses: lookups from the records, the index opened on demand.
#[tokio::test]
async fn the_lazy_tier_passes_the_conformance_suite() {
    let dir = tempdir();
    let tier = LazyTier::open(Config::new(dir.path())).unwrap_or_else(|e| panic!("open: {e}"));
    conformance(&tier, Capabilities::STORES).await;
    tier.close_before_exit().await;
}

#[tokio::test]
async fn open_creates_the_layout_with_private_permissions() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = tempdir();
    let dir = root.path().join("nested").join("cache");
    let tier = open(&dir).await;
    assert!(tier.warnings().is_empty(), "{:?}", tier.warnings());
    for name in ["index.db", "blobs", "locks"] {
        assert!(dir.join(name).exists(), "{name} exists");
    }
    let mode = std::fs::metadata(&dir).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o700));
    tier.close().await;
}

#[tokio::test]
async fn a_file_in_place_of_the_dir_is_a_clear_error() {
    let root = tempdir();
    let file = root.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap_or_else(|e| panic!("{e}"));
    let err = Tier::open(Config::new(&file))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("cannot open the cache at"), "{err}");
    assert!(err.contains("GH_CACHE_DIR"), "{err}");
}

#[tokio::test]
async fn reopening_keeps_entries_and_stats() {
    let dir = tempdir();
    let a = sample_entry(1, "o/a", b"alpha\n");
    {
        let tier = open(dir.path()).await;
        tier.put(&a).await.unwrap_or_else(|e| panic!("put: {e}"));
        tier.record(&[Event::Miss, Event::Hit("local")])
            .await
            .unwrap_or_else(|e| panic!("record: {e}"));
        tier.close().await;
    }
    let tier = open(dir.path()).await;
    assert_eq!(tier.get(&a.manifest.key).await.ok(), Some(Lookup::Hit(a)));
    let s = stats(&tier).await;
    assert_eq!((s.requests, s.misses, s.hits_of("local")), (1, 1, 1));
    assert_eq!((s.entries, s.ipfs_entries), (1, 0));
    assert!(s.bytes > 0 && s.created_at_ms > 0);
    tier.close().await;
}

#[tokio::test]
async fn events_map_to_their_counters() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    let events = [
        Event::Hit("local"),
        Event::Hit("p2p"),
        Event::Hit("p2p"),
        Event::Hit("ipfs"),
        // A tier this index has never heard of is counted by its name all the same.
        Event::Hit("http"),
        Event::Miss,
        Event::Bypassed,
        Event::Revalidated,
        Event::StaleServed,
        Event::Error("p2p"),
        Event::Corrupt("local"),
    ];
    tier.record(&events)
        .await
        .unwrap_or_else(|e| panic!("record: {e}"));
    tier.record(&[])
        .await
        .unwrap_or_else(|e| panic!("record: {e}"));
    let s = stats(&tier).await;
    let expected = Stats {
        requests: 2,
        hits: [("local", 1), ("p2p", 2), ("ipfs", 1), ("http", 1)]
            .into_iter()
            .map(|(tier, n)| (tier.to_owned(), n))
            .collect(),
        misses: 1,
        bypassed: 1,
        revalidated: 1,
        stale_served: 1,
        errors: 1,
        corrupt: 1,
        created_at_ms: s.created_at_ms,
        ..Stats::default()
    };
    assert_eq!(s, expected);
    tier.close().await;
}

#[tokio::test]
async fn ipfs_entries_count_manifests_with_a_cid() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    let mut a = sample_entry(1, "o/a", b"alpha\n");
    a.manifest.cid = Some("bafkreiexample".into());
    tier.put(&a).await.unwrap_or_else(|e| panic!("put: {e}"));
    tier.put(&sample_entry(2, "o/a", b"beta\n"))
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    let s = stats(&tier).await;
    assert_eq!((s.entries, s.ipfs_entries), (2, 1));
    tier.close().await;
}

#[tokio::test]
async fn two_handles_see_each_others_writes_and_stats_add_up() {
    let dir = tempdir();
    let one = open(dir.path()).await;
    let two = open(dir.path()).await;
    let a = sample_entry(1, "o/a", b"alpha\n");
    let b = sample_entry(2, "o/b", b"beta\n");
    one.put(&a).await.unwrap_or_else(|e| panic!("put: {e}"));
    two.put(&b).await.unwrap_or_else(|e| panic!("put: {e}"));
    assert_eq!(two.get(&a.manifest.key).await.ok(), Some(Lookup::Hit(a)));
    assert_eq!(one.get(&b.manifest.key).await.ok(), Some(Lookup::Hit(b)));
    one.record(&[Event::Miss])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    two.record(&[Event::Hit("local")])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = stats(&one).await;
    assert_eq!(
        (s.requests, s.misses, s.hits_of("local"), s.entries),
        (2, 1, 1, 2)
    );
    assert_eq!(stats(&two).await, s);
    one.close().await;
    two.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_readers_never_see_a_wrong_answer() {
    let dir = tempdir();
    let mut tasks = Vec::new();
    for worker in 0..6u8 {
        let path = dir.path().to_path_buf();
        tasks.push(tokio::spawn(async move {
            let tier = Tier::open(Config::new(&path))
                .await
                .map_err(|e| e.to_string())?;
            for round in 0..20u8 {
                // Workers share keys, so puts replace each other's entries.
                let seed = (worker + round) % 5;
                let body = format!("seed {seed} round {round} worker {worker}\n");
                let entry = sample_entry(seed, "o/r", body.as_bytes());
                tier.put(&entry).await.map_err(|e| e.to_string())?;
                match tier.get(&CacheKey([(seed + 1) % 5; 32])).await {
                    Ok(Lookup::Hit(hit)) if !hit.verify_body() => {
                        return Err("a body that does not match its digest".to_owned())
                    }
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
                tier.record(&[Event::Miss])
                    .await
                    .map_err(|e| e.to_string())?;
            }
            tier.close().await;
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        let outcome = task.await.map_err(|e| e.to_string()).and_then(|r| r);
        assert_eq!(outcome, Ok(()));
    }
    let tier = open(dir.path()).await;
    let s = stats(&tier).await;
    assert_eq!((s.requests, s.misses, s.entries), (120, 120, 5));
    assert_eq!(blob_files(dir.path()).len(), 5, "one body per key is left");
    tier.close().await;
}

#[tokio::test]
async fn a_corrupted_blob_is_reported_once_then_misses() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    let a = sample_entry(1, "o/a", b"alpha\n");
    tier.put(&a).await.unwrap_or_else(|e| panic!("put: {e}"));
    let files = blob_files(dir.path());
    assert_eq!(files.len(), 1);
    let mut bytes = std::fs::read(&files[0]).unwrap_or_default();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x55;
    std::fs::write(&files[0], bytes).unwrap_or_else(|e| panic!("{e}"));
    let first = tier.get(&a.manifest.key).await;
    assert!(
        matches!(first, Err(TierError::Corrupt { tier: "local", .. })),
        "{first:?}"
    );
    assert_eq!(tier.get(&a.manifest.key).await.ok(), Some(Lookup::Miss));
    assert!(
        blob_files(dir.path()).is_empty(),
        "the bad body was removed"
    );
    tier.put(&a).await.unwrap_or_else(|e| panic!("put: {e}"));
    assert_eq!(tier.get(&a.manifest.key).await.ok(), Some(Lookup::Hit(a)));
    tier.close().await;
}

#[tokio::test]
async fn a_missing_or_truncated_blob_is_reported_once_then_misses() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    let a = sample_entry(1, "o/a", b"alpha\n");
    let b = sample_entry(2, "o/b", b"beta\n");
    tier.put(&a).await.unwrap_or_else(|e| panic!("put: {e}"));
    tier.put(&b).await.unwrap_or_else(|e| panic!("put: {e}"));
    let path_of = |stdout: &[u8]| {
        let digest = ghcache_core::Digest::of(
            &ghcache_core::Body {
                stdout: stdout.to_vec(),
                stderr: b"note\n".to_vec(),
            }
            .encode(),
        )
        .to_hex();
        dir.path().join("blobs").join(&digest[..2]).join(digest)
    };
    std::fs::remove_file(path_of(b"alpha\n")).unwrap_or_else(|e| panic!("{e}"));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path_of(b"beta\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    file.set_len(5).unwrap_or_else(|e| panic!("{e}"));
    for key in [a.manifest.key, b.manifest.key] {
        let first = tier.get(&key).await;
        assert!(matches!(first, Err(TierError::Corrupt { .. })), "{first:?}");
        assert_eq!(tier.get(&key).await.ok(), Some(Lookup::Miss));
    }
    assert_eq!(stats(&tier).await.entries, 0);
    tier.close().await;
}

#[tokio::test]
async fn a_body_that_does_not_match_its_manifest_is_not_stored() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    let mut a = sample_entry(1, "o/a", b"alpha\n");
    a.body.stdout = b"forged\n".to_vec();
    assert!(matches!(tier.put(&a).await, Err(TierError::Corrupt { .. })));
    assert_eq!(tier.get(&a.manifest.key).await.ok(), Some(Lookup::Miss));
    assert!(blob_files(dir.path()).is_empty());
    tier.close().await;
}

async fn starts_over_after(damage: impl FnOnce(&Path)) {
    let dir = tempdir();
    let a = sample_entry(1, "o/a", b"alpha\n");
    {
        let tier = open(dir.path()).await;
        // Enough rows that the index spans several pages.
        for seed in 10..60 {
            let body = vec![b'x'; 300 + usize::from(seed)];
            tier.put(&sample_entry(seed, "o/many", &body))
                .await
                .unwrap_or_else(|e| panic!("put: {e}"));
        }
        tier.put(&a).await.unwrap_or_else(|e| panic!("put: {e}"));
        tier.close().await;
    }
    damage(&dir.path().join("index.db"));
    let tier = open(dir.path()).await;
    let warnings = tier.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("corrupt"), "{warnings:?}");
    assert!(warnings[0].contains("index.db.corrupt-"), "{warnings:?}");
    let moved = std::fs::read_dir(dir.path())
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("index.db.corrupt-")
        });
    assert!(moved, "the old index was kept aside");
    assert_eq!(tier.get(&a.manifest.key).await.ok(), Some(Lookup::Miss));
    tier.put(&a).await.unwrap_or_else(|e| panic!("put: {e}"));
    assert_eq!(
        tier.get(&a.manifest.key).await.ok(),
        Some(Lookup::Hit(a.clone()))
    );
    tier.record(&[Event::Miss])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stats(&tier).await.requests, 1);
    tier.close().await;
    let again = open(dir.path()).await;
    assert!(again.warnings().is_empty(), "{:?}", again.warnings());
    assert_eq!(again.get(&a.manifest.key).await.ok(), Some(Lookup::Hit(a)));
    again.close().await;
}

#[tokio::test]
async fn a_garbage_index_is_moved_aside_and_the_cache_starts_over() {
    starts_over_after(|db| {
        std::fs::write(db, vec![0x42; 10_000]).unwrap_or_else(|e| panic!("{e}"));
    })
    .await;
}

#[tokio::test]
async fn a_truncated_index_is_moved_aside_and_the_cache_starts_over() {
    starts_over_after(|db| {
        let len = std::fs::metadata(db).map(|m| m.len()).unwrap_or(0);
        assert!(len > 8192, "index of {len} bytes");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(db)
            .unwrap_or_else(|e| panic!("{e}"));
        file.set_len(len / 3).unwrap_or_else(|e| panic!("{e}"));
    })
    .await;
}

#[tokio::test]
async fn a_tiny_index_file_is_moved_aside() {
    starts_over_after(|db| {
        std::fs::write(db, b"SQLite").unwrap_or_else(|e| panic!("{e}"));
    })
    .await;
}

#[tokio::test]
async fn identical_bodies_are_stored_once() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    let a = sample_entry(1, "o/a", b"same\n");
    let b = sample_entry(2, "o/b", b"same\n");
    tier.put(&a).await.unwrap_or_else(|e| panic!("put: {e}"));
    tier.put(&b).await.unwrap_or_else(|e| panic!("put: {e}"));
    assert_eq!(blob_files(dir.path()).len(), 1);
    let s = stats(&tier).await;
    assert_eq!(s.entries, 2);
    assert_eq!(s.bytes, a.manifest.body_size, "a shared body counts once");
    tier.invalidate(&Selector::Key(a.manifest.key))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(blob_files(dir.path()).len(), 1, "still used by b");
    assert_eq!(
        tier.get(&b.manifest.key).await.ok(),
        Some(Lookup::Hit(b.clone()))
    );
    tier.invalidate(&Selector::Key(b.manifest.key))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(blob_files(dir.path()).is_empty(), "unused body removed");
    tier.close().await;
}

#[tokio::test]
async fn replacing_an_entry_removes_its_old_body() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    tier.put(&sample_entry(1, "o/a", b"v1\n"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tier.put(&sample_entry(1, "o/a", b"v2\n"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(blob_files(dir.path()).len(), 1);
    tier.close().await;
}

#[tokio::test]
async fn eviction_keeps_the_recently_used_under_the_cap() {
    let dir = tempdir();
    let body = |c: u8| vec![c; 1000];
    let a = sample_entry(1, "o/r", &body(b'a'));
    let b = sample_entry(2, "o/r", &body(b'b'));
    let c = sample_entry(3, "o/r", &body(b'c'));
    let size = a.manifest.body_size;
    let mut config = Config::new(dir.path());
    config.max_bytes = size * 5 / 2;
    config.touch_every = Duration::ZERO;
    let tier = Tier::open(config)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    tier.put(&a).await.unwrap_or_else(|e| panic!("{e}"));
    tier.put(&b).await.unwrap_or_else(|e| panic!("{e}"));
    // Last use is kept to the millisecond: make the use of `a` later than the store of `b`.
    let stored = ghcache_core::now_ms();
    while ghcache_core::now_ms() <= stored + 1 {
        std::thread::yield_now();
    }
    assert!(matches!(
        tier.get(&a.manifest.key).await,
        Ok(Lookup::Hit(_))
    ));
    tier.put(&c).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        tier.get(&b.manifest.key).await.ok(),
        Some(Lookup::Miss),
        "b was least recently used"
    );
    assert_eq!(tier.get(&a.manifest.key).await.ok(), Some(Lookup::Hit(a)));
    assert_eq!(tier.get(&c.manifest.key).await.ok(), Some(Lookup::Hit(c)));
    let s = stats(&tier).await;
    assert!(s.bytes <= size * 5 / 2, "{} bytes", s.bytes);
    assert_eq!(blob_files(dir.path()).len(), 2);
    tier.close().await;
}

#[tokio::test]
async fn a_body_larger_than_the_cap_is_not_stored() {
    let dir = tempdir();
    let tier = open_capped(dir.path(), 100).await;
    let big = sample_entry(1, "o/r", &[b'x'; 500]);
    tier.put(&big).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tier.get(&big.manifest.key).await.ok(), Some(Lookup::Miss));
    assert!(blob_files(dir.path()).is_empty());
    tier.close().await;
}

#[tokio::test]
async fn invalidating_a_repo_leaves_the_others() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    let a = sample_entry(1, "o/a", b"alpha\n");
    let b1 = sample_entry(2, "o/b", b"beta 1\n");
    let mut b2 = sample_entry(3, "o/b", b"beta 2\n");
    b2.manifest.scope_id = ghcache_core::ScopeId::of("another-scope");
    for entry in [&a, &b1, &b2] {
        tier.put(entry).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let dropped = tier.invalidate(&Selector::Repo("o/b".into())).await.ok();
    assert_eq!(dropped, Some(2), "every scope");
    assert_eq!(tier.get(&b1.manifest.key).await.ok(), Some(Lookup::Miss));
    assert_eq!(tier.get(&b2.manifest.key).await.ok(), Some(Lookup::Miss));
    assert_eq!(tier.get(&a.manifest.key).await.ok(), Some(Lookup::Hit(a)));
    assert_eq!(blob_files(dir.path()).len(), 1);
    tier.close().await;
}

#[tokio::test]
async fn invalidating_everything_also_removes_orphan_bodies() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    tier.put(&sample_entry(1, "o/a", b"alpha\n"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // A body whose entry never made it into the index (a writer killed between the two).
    let orphan = dir.path().join("blobs").join("ab").join("ab".repeat(32));
    std::fs::create_dir_all(dir.path().join("blobs").join("ab")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&orphan, b"orphan").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tier.invalidate(&Selector::All).await.ok(), Some(1));
    assert!(blob_files(dir.path()).is_empty());
    tier.close().await;
}

#[test]
fn a_key_lock_excludes_others_until_dropped() {
    let dir = tempdir();
    let key = CacheKey([7; 32]);
    let other = CacheKey([8; 32]);
    let first = KeyLock::acquire(dir.path(), &key, Duration::from_secs(1))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(first.is_some());
    let started = Instant::now();
    let second = KeyLock::acquire(dir.path(), &key, Duration::from_millis(100))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(second.is_none(), "timed out while held");
    assert!(started.elapsed() >= Duration::from_millis(100));
    let unrelated =
        KeyLock::acquire(dir.path(), &other, Duration::ZERO).unwrap_or_else(|e| panic!("{e}"));
    assert!(unrelated.is_some(), "other keys are not blocked");
    // The waiter says when it has found the lock held; only then is the lock released, so that
    // what is tested is a wait, whatever the threads' timing.
    let (refused, waiting) = std::sync::mpsc::sync_channel(1);
    let waiter = {
        let dir = dir.path().to_path_buf();
        std::thread::spawn(move || {
            let held = KeyLock::acquire(&dir, &key, Duration::ZERO).map(|l| l.is_none());
            let _ = refused.send(held.is_ok_and(|held| held));
            KeyLock::acquire(&dir, &key, Duration::from_secs(10)).map(|l| l.is_some())
        })
    };
    let _ = waiting.recv_timeout(Duration::from_secs(10));
    drop(first);
    assert!(
        matches!(waiter.join().ok(), Some(Ok(true))),
        "got it once released"
    );
}

#[test]
fn a_key_lock_in_a_missing_dir_is_created_and_an_unwritable_one_is_an_error() {
    let dir = tempdir();
    let key = CacheKey([7; 32]);
    let lock = KeyLock::acquire(&dir.path().join("fresh"), &key, Duration::ZERO);
    assert!(matches!(lock, Ok(Some(_))));
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap_or_else(|e| panic!("{e}"));
    let err = KeyLock::acquire(&file, &key, Duration::ZERO)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("cannot lock"), "{err}");
}

#[tokio::test]
async fn a_large_log_is_checkpointed_and_a_small_one_left_for_the_next_process() {
    let dir = tempdir();
    let wal = dir.path().join("index.db-wal");
    let entry = sample_entry(7, "o/r", b"an answer");
    let key = entry.manifest.key;

    // Past the size, the last process out checkpoints the log and removes it.
    let mut config = Config::new(dir.path());
    config.checkpoint_wal_at = 0;
    let writer = Tier::open(config)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    writer
        .put(&entry)
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    assert!(std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0));
    writer.close_before_exit().await;
    assert!(!wal.exists(), "the writer checkpointed and removed the log");

    // Under it, the log stays as it is, unsynced, for the next process to read.
    let other = sample_entry(8, "o/r", b"another answer");
    let writer = open(dir.path()).await;
    writer
        .put(&other)
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    let written = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert!(written > 0, "the store is in the log");
    writer.close_before_exit().await;
    assert_eq!(
        std::fs::metadata(&wal).map_or(0, |m| m.len()),
        written,
        "a writer whose log is small leaves it"
    );

    let reader = open(dir.path()).await;
    for (key, body) in [(key, &entry.body), (other.manifest.key, &other.body)] {
        match reader.get(&key).await {
            Ok(Lookup::Hit(found)) => assert_eq!(&found.body, body),
            other => panic!("both entries are there: {other:?}"),
        }
    }
    reader.close_before_exit().await;
    assert!(
        std::fs::metadata(&wal).is_ok_and(|m| m.len() == written),
        "a reader leaves the log in place"
    );
}

#[tokio::test]
async fn counters_of_a_cache_that_only_hits_are_folded_before_their_file_grows_large() {
    let dir = tempdir();
    let pending = dir.path().join("stats.pending");
    let mut config = Config::new(dir.path());
    config.fold_counters_at = 100;
    let tier = Tier::open(config)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    for _ in 0..50 {
        tier.record(&[Event::Hit("local")])
            .await
            .unwrap_or_else(|e| panic!("record: {e}"));
        let size = std::fs::metadata(&pending).map_or(0, |m| m.len());
        assert!(size <= 100, "the pending file stays small: {size} bytes");
    }
    let stats = stats(&tier).await;
    assert_eq!(
        (stats.requests, stats.hits_of("local")),
        (50, 50),
        "no hit lost"
    );
    tier.close().await;
}
