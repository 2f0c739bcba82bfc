//! A read-only or full cache directory (a tmpfs; skipped where mounting is not permitted).

use std::path::Path;
use std::process::Command;

use ghcache_core::testkit::{sample_entry, skip, Mount};
use ghcache_core::{CacheTier, Event, Lookup, TierError};
use ghcache_tier_local::{Config, Tier};

async fn open(dir: &Path) -> Tier {
    Tier::open(Config::new(dir))
        .await
        .unwrap_or_else(|e| panic!("open: {e}"))
}

#[tokio::test]
async fn a_read_only_cache_serves_what_it_has_and_stores_nothing() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = root.path().join("cache");
    let Some(mount) = Mount::tmpfs(&dir, "size=4m") else {
        skip("cannot mount a tmpfs here (needs root); read-only case not exercised");
        return;
    };
    let a = sample_entry(1, "o/a", b"alpha\n");
    let tier = open(&dir).await;
    tier.put(&a).await.unwrap_or_else(|e| panic!("put: {e}"));
    tier.close().await;
    assert!(mount.remount("ro"), "remount read-only");
    let tier = open(&dir).await;
    assert!(
        tier.warnings().iter().any(|w| w.contains("read-only")),
        "{:?}",
        tier.warnings()
    );
    assert_eq!(tier.get(&a.manifest.key).await.ok(), Some(Lookup::Hit(a)));
    let b = sample_entry(2, "o/b", b"beta\n");
    assert!(matches!(
        tier.put(&b).await,
        Err(TierError::ReadOnly { .. })
    ));
    assert_eq!(tier.get(&b.manifest.key).await.ok(), Some(Lookup::Miss));
    assert!(tier.record(&[Event::Miss]).await.is_err());
    tier.close().await;
}

#[tokio::test]
async fn a_full_disk_fails_the_store_and_keeps_what_was_stored() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = root.path().join("cache");
    let Some(_mount) = Mount::tmpfs(&dir, "size=512k") else {
        skip("cannot mount a tmpfs here (needs root); full-disk case not exercised");
        return;
    };
    let a = sample_entry(1, "o/a", b"alpha\n");
    let tier = open(&dir).await;
    tier.put(&a).await.unwrap_or_else(|e| panic!("put: {e}"));
    // Fill the disk to the last byte.
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k"])
        .arg(format!("of={}", dir.join("filler").display()))
        .output();
    let b = sample_entry(2, "o/b", &vec![b'b'; 64 * 1024]);
    let err = tier
        .put(&b)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("No space left"), "{err}");
    assert_eq!(tier.get(&b.manifest.key).await.ok(), Some(Lookup::Miss));
    assert_eq!(
        tier.get(&a.manifest.key).await.ok(),
        Some(Lookup::Hit(a.clone()))
    );
    let _ = std::fs::remove_file(dir.join("filler"));
    tier.put(&b)
        .await
        .unwrap_or_else(|e| panic!("put after freeing space: {e}"));
    assert_eq!(tier.get(&b.manifest.key).await.ok(), Some(Lookup::Hit(b)));
    tier.close().await;
}
