//! Fences: an answer fetched before a write finished is never stored or served after it.

use std::path::Path;
use std::sync::Arc;

use ghcache_core::policy::{Resource, Resources};
use ghcache_core::testkit::sample_entry;
use ghcache_core::{CacheTier, Entry, Fence, Lookup, Selector, CLOCK_SKEW};
use ghcache_tier_local::{Config, Tier};

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

async fn open(dir: &Path) -> Tier {
    Tier::open(Config::new(dir))
        .await
        .unwrap_or_else(|e| panic!("open: {e}"))
}

fn mark(tier: &Tier, repo: &str) -> ghcache_core::Mark {
    tier.fences()
        .read(repo, Resource::Other)
        .unwrap_or_else(|e| panic!("fence: {e}"))
        .mark
}

#[tokio::test]
async fn an_answer_fetched_before_a_write_finished_is_not_stored() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    let before = mark(&tier, "o/r");
    let old = sample_entry(1, "o/r", b"before the write\n");
    // Another process's write to o/r finishes while this one fetches.
    let writer = open(dir.path()).await;
    writer
        .invalidate(&Selector::Repo("o/r".into()))
        .await
        .unwrap_or_else(|e| panic!("invalidate: {e}"));
    tier.put_fenced(&old, before)
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    assert_eq!(tier.get(&old.manifest.key).await.ok(), Some(Lookup::Miss));

    // A fetch that began after the write is stored and served.
    let after = mark(&tier, "o/r");
    let new = sample_entry(1, "o/r", b"after the write\n");
    tier.put_fenced(&new, after)
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    assert_eq!(
        tier.get(&new.manifest.key).await.ok(),
        Some(Lookup::Hit(new))
    );
    tier.close().await;
    writer.close().await;
}

#[tokio::test]
async fn a_row_stored_just_before_an_invalidation_is_never_served_after_it() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    let entry = sample_entry(2, "o/r", b"old\n");
    let other = sample_entry(3, "o/other", b"other\n");
    for e in [&entry, &other] {
        let m = mark(&tier, &e.manifest.repo);
        tier.put_fenced(e, m)
            .await
            .unwrap_or_else(|err| panic!("put: {err}"));
    }
    let dropped = tier
        .invalidate(&Selector::Repo("o/r".into()))
        .await
        .unwrap_or_else(|e| panic!("invalidate: {e}"));
    assert_eq!(dropped, 1);
    assert_eq!(tier.get(&entry.manifest.key).await.ok(), Some(Lookup::Miss));
    assert_eq!(
        tier.get(&other.manifest.key).await.ok(),
        Some(Lookup::Hit(other.clone())),
        "other repositories keep theirs"
    );
    tier.invalidate(&Selector::All)
        .await
        .unwrap_or_else(|e| panic!("invalidate: {e}"));
    assert_eq!(tier.get(&other.manifest.key).await.ok(), Some(Lookup::Miss));
    tier.close().await;
}

#[tokio::test]
async fn peer_entries_made_before_an_invalidation_seen_here_are_refused() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    tier.invalidate(&Selector::Repo("o/r".into()))
        .await
        .unwrap_or_else(|e| panic!("invalidate: {e}"));
    // A peer's clock may run ahead of ours by the skew: an entry it made less than that after
    // our write may still predate it.
    let mut peer = sample_entry(4, "o/r", b"from a peer\n");
    peer.manifest.producer = Some(vec![1, 2, 3]);
    tier.put(&peer).await.unwrap_or_else(|e| panic!("put: {e}"));
    assert_eq!(tier.get(&peer.manifest.key).await.ok(), Some(Lookup::Miss));

    let mut later = peer.clone();
    later.manifest.created_at_ms += CLOCK_SKEW.as_millis() as u64 + 1_000;
    tier.put(&later)
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    assert_eq!(
        tier.get(&later.manifest.key).await.ok(),
        Some(Lookup::Hit(later))
    );
    tier.close().await;
}

#[tokio::test]
async fn a_lost_fence_file_serves_nothing_stored_under_the_old_one() {
    let dir = tempdir();
    let tier = Arc::new(open(dir.path()).await);
    let entry = sample_entry(5, "o/r", b"x\n");
    tier.put_fenced(&entry, mark(&tier, "o/r"))
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    // Fetched by this machine before the fence file is lost, stored after.
    let mut unfenced = sample_entry(6, "o/r", b"made before the new fence file\n");
    unfenced.manifest.created_at_ms -= 1;
    std::fs::remove_file(dir.path().join("fences")).unwrap_or_else(|e| panic!("rm: {e}"));
    assert_eq!(
        tier.get(&entry.manifest.key).await.ok(),
        Some(Lookup::Miss),
        "no fence file: nothing can be judged"
    );
    let reopened = open(dir.path()).await;
    assert_eq!(
        reopened.get(&entry.manifest.key).await.ok(),
        Some(Lookup::Miss),
        "a new fence file has a new epoch"
    );
    reopened
        .put(&unfenced)
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    assert_eq!(
        reopened.get(&unfenced.manifest.key).await.ok(),
        Some(Lookup::Miss),
        "answers made before the new fence file are refused: its history is gone"
    );
    reopened.close().await;
}

#[tokio::test]
async fn a_stored_answer_described_anew_after_a_write_keeps_its_place() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    tier.invalidate(&Selector::Repo("o/r".into()))
        .await
        .unwrap_or_else(|e| panic!("invalidate: {e}"));
    let entry = sample_entry(7, "o/r", b"fetched after the write\n");
    tier.put_fenced(&entry, mark(&tier, "o/r"))
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    // Signed by this machine's daemon and added to IPFS: the same answer, described anew.
    let mut described = entry.clone();
    described.manifest.producer = Some(vec![9]);
    described.manifest.cid = Some("bafy-example".into());
    tier.put(&described)
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    assert_eq!(
        tier.get(&entry.manifest.key).await.ok(),
        Some(Lookup::Hit(described.clone()))
    );
    // Another answer under the same description rules is still judged by the time rule.
    let mut other = sample_entry(7, "o/r", b"another body\n");
    other.manifest.producer = Some(vec![9]);
    tier.put(&other)
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    assert_eq!(
        tier.get(&entry.manifest.key).await.ok(),
        Some(Lookup::Hit(described))
    );
    tier.close().await;
}

fn about(seed: u8, repo: &str, resource: Resource) -> Entry {
    let mut entry = sample_entry(
        seed,
        repo,
        format!("{repo} {}\n", resource.name()).as_bytes(),
    );
    entry.manifest.resource = resource;
    entry
}

#[tokio::test]
async fn a_write_drops_what_it_can_change_and_keeps_the_rest() {
    let dir = tempdir();
    let tier = open(dir.path()).await;
    let issues = about(10, "o/r", Resource::Issues);
    let releases = about(11, "o/r", Resource::Releases);
    let unclassified = about(12, "o/r", Resource::Other);
    let search_elsewhere = about(13, "o/elsewhere", Resource::Search);
    let other_repo_issues = about(14, "o/other", Resource::Issues);
    let all = [
        &issues,
        &releases,
        &unclassified,
        &search_elsewhere,
        &other_repo_issues,
    ];
    for entry in all {
        let m = tier
            .fences()
            .read(&entry.manifest.repo, entry.manifest.resource)
            .unwrap_or_else(|e| panic!("fence: {e}"))
            .mark;
        tier.put_fenced(entry, m)
            .await
            .unwrap_or_else(|e| panic!("put: {e}"));
    }
    // `gh issue create -R o/r`.
    let dropped = tier
        .invalidate(&Selector::Resources {
            repo: "o/r".into(),
            resources: Resources::of(&[Resource::Issues, Resource::Search]),
        })
        .await
        .unwrap_or_else(|e| panic!("invalidate: {e}"));
    assert_eq!(dropped, 3, "issues, the unclassified answer, the search");
    let mut served = Vec::new();
    for entry in all {
        let hit = matches!(tier.get(&entry.manifest.key).await, Ok(Lookup::Hit(_)));
        served.push(hit);
    }
    assert_eq!(served, [false, true, false, false, true]);
    tier.close().await;
}
