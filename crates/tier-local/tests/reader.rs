//! The hit path without the index: records, and what it does with damaged, stale and orphaned
//! ones.

use std::path::{Path, PathBuf};

use ghcache_core::testkit::sample_entry;
use ghcache_core::{CacheKey, CacheTier, Entry, Event, Fence, Lookup, Selector};
use ghcache_tier_local::{Config, Reader, Tier};

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

async fn open(dir: &Path) -> Tier {
    Tier::open(Config::new(dir))
        .await
        .unwrap_or_else(|e| panic!("open: {e}"))
}

async fn store(tier: &Tier, entry: &Entry) {
    let mark = tier
        .fences()
        .read(&entry.manifest.repo, entry.manifest.resource)
        .unwrap_or_else(|e| panic!("fence: {e}"))
        .mark;
    tier.put_fenced(entry, mark)
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
}

fn record_path(dir: &Path, key: &CacheKey) -> PathBuf {
    let hex = key.to_hex();
    dir.join("records").join(&hex[..2]).join(hex)
}

fn reads(dir: &Path, key: &CacheKey) -> Option<Entry> {
    Reader::new(&Config::new(dir))
        .get(key)
        .found()
        .map(|f| f.entry)
}

#[tokio::test]
async fn a_stored_entry_is_read_from_its_record() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    let entry = sample_entry(1, "o/r", b"answer\n");
    store(&tier, &entry).await;
    tier.close().await;
    assert_eq!(reads(dir.path(), &entry.manifest.key), Some(entry.clone()));
    // Without its record, the entry is not this path's to find: a miss, not a question.
    std::fs::remove_file(record_path(dir.path(), &entry.manifest.key))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        Reader::new(&Config::new(dir.path())).get(&entry.manifest.key),
        ghcache_tier_local::Read::Missing
    ));
}

#[tokio::test]
async fn a_damaged_record_is_left_to_the_index_which_writes_it_again() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    let entry = sample_entry(2, "o/r", b"answer\n");
    store(&tier, &entry).await;
    let path = record_path(dir.path(), &entry.manifest.key);
    let mut bytes = std::fs::read(&path).unwrap_or_default();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reads(dir.path(), &entry.manifest.key), None);
    assert_eq!(
        tier.get(&entry.manifest.key).await.ok(),
        Some(Lookup::Hit(entry.clone())),
        "the index still answers"
    );
    assert_eq!(
        reads(dir.path(), &entry.manifest.key),
        Some(entry),
        "and repaired the record"
    );
    tier.close().await;
}

#[tokio::test]
async fn a_record_whose_fence_moved_is_never_served() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    let entry = sample_entry(3, "o/r", b"before the write\n");
    store(&tier, &entry).await;
    let path = record_path(dir.path(), &entry.manifest.key);
    let kept = std::fs::read(&path).unwrap_or_default();
    tier.invalidate(&Selector::Repo("o/r".into()))
        .await
        .unwrap_or_else(|e| panic!("invalidate: {e}"));
    assert!(!path.exists(), "removed with its row");
    // A record that outlived its row (a crash before the removal), put back.
    std::fs::write(&path, &kept).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reads(dir.path(), &entry.manifest.key), None);
    assert_eq!(tier.get(&entry.manifest.key).await.ok(), Some(Lookup::Miss));
    tier.close().await;
}

#[tokio::test]
async fn a_record_that_names_another_body_is_not_served() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    let first = sample_entry(4, "o/r", b"first\n");
    let second = sample_entry(5, "o/r", b"second, a body of another size\n");
    store(&tier, &first).await;
    store(&tier, &second).await;
    // A writer killed halfway left key 4's record describing key 5's body: the manifest names
    // another key, so it is refused.
    let path = record_path(dir.path(), &first.manifest.key);
    let other = std::fs::read(record_path(dir.path(), &second.manifest.key)).unwrap_or_default();
    std::fs::write(&path, other).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reads(dir.path(), &first.manifest.key), None);
    // A body file replaced under its name fails its digest.
    let blob = second.manifest.body_digest.to_hex();
    let blob = dir.path().join("blobs").join(&blob[..2]).join(&blob);
    let mut bytes = std::fs::read(&blob).unwrap_or_default();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&blob, bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reads(dir.path(), &second.manifest.key), None);
    tier.close().await;
}

#[tokio::test]
async fn an_orphaned_record_is_swept_by_the_next_eviction() {
    let dir = tempdir();
    let mut config = Config::new(dir.path());
    config.max_bytes = 400;
    let tier = Tier::open(config)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    let entry = sample_entry(6, "o/r", b"small\n");
    store(&tier, &entry).await;
    let path = record_path(dir.path(), &entry.manifest.key);
    let kept = std::fs::read(&path).unwrap_or_default();
    tier.invalidate(&Selector::Key(entry.manifest.key))
        .await
        .unwrap_or_else(|e| panic!("invalidate: {e}"));
    std::fs::write(&path, &kept).unwrap_or_else(|e| panic!("{e}"));
    // Its body went with its row: the orphan answers nothing.
    assert_eq!(reads(dir.path(), &entry.manifest.key), None);
    for seed in 10..20u8 {
        store(&tier, &sample_entry(seed, "o/r", &[seed; 120])).await;
    }
    assert!(!path.exists(), "swept");
    tier.close().await;
}

#[tokio::test]
async fn hits_without_the_index_count_and_keep_entries_in_use() {
    let dir = tempdir();
    let mut config = Config::new(dir.path());
    config.touch_every = std::time::Duration::ZERO;
    let tier = Tier::open(config.clone())
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    let entry = sample_entry(7, "o/r", b"answer\n");
    store(&tier, &entry).await;
    let reader = Reader::new(&config);
    for _ in 0..3 {
        let found = reader
            .get(&entry.manifest.key)
            .found()
            .unwrap_or_else(|| panic!("a hit"));
        let fold = reader
            .record(found.used, &[Event::Hit("local")])
            .unwrap_or_else(|e| panic!("record: {e}"));
        assert!(!fold, "far from the fold size");
    }
    let stats = tier.stats().await.unwrap_or_else(|e| panic!("stats: {e}"));
    assert_eq!((stats.requests, stats.hits_of("local")), (3, 3));
    assert_eq!(
        tier.keys(1).await.ok(),
        Some(vec![entry.manifest.key]),
        "the entry noted as used"
    );
    tier.close().await;
}
