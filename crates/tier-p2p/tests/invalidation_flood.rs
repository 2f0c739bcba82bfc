//! A flood of invalidations from a peer, while the local store is slow: the daemon applies them
//! one at a time instead of starting a task for each, and loses none (past its queue's bound it
//! drops everything rather than too little).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ghcache_core::testkit::{sample_entry, MemoryTier};
use ghcache_core::{CacheKey, CacheTier, Entry, Lookup, ScopeId, Selector, TierError};
use ghcache_tier_p2p::{SwarmKey, SwarmKeyExt as _, Tier};
use tokio::sync::watch;

mod harness;
use harness::{wait_for, Daemon};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(30);

fn scope() -> ScopeId {
    ScopeId::of("flood-scope")
}

impl<S: CacheTier + 'static> Daemon<S> {
    /// The CLI's adapter to this daemon, in `scope()`.
    async fn tier(&self) -> Result<Tier, Box<dyn std::error::Error>> {
        self.tier_in(scope(), Duration::from_millis(150)).await
    }
}

/// A store whose invalidations wait until the gate opens, and which records them.
struct SlowStore {
    inner: MemoryTier,
    gate: watch::Receiver<bool>,
    running: AtomicUsize,
    most_at_once: AtomicUsize,
    asked: Mutex<Vec<Selector>>,
}

impl SlowStore {
    fn asked(&self) -> Vec<Selector> {
        self.asked.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl CacheTier for SlowStore {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn get(&self, key: &CacheKey) -> Result<Lookup, TierError> {
        self.inner.get(key).await
    }

    async fn put(&self, entry: &Entry) -> Result<(), TierError> {
        self.inner.put(entry).await
    }

    async fn invalidate(&self, selector: &Selector) -> Result<u64, TierError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        if let Ok(mut asked) = self.asked.lock() {
            asked.push(selector.clone());
        }
        let mut gate = self.gate.clone();
        let _ = gate.wait_for(|open| *open).await;
        let dropped = self.inner.invalidate(selector).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        dropped
    }
}

async fn held(store: &SlowStore, key: &CacheKey) -> bool {
    matches!(store.get(key).await, Ok(Lookup::Hit(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_invalidations_is_applied_one_at_a_time_and_none_is_lost() -> TestResult {
    let key = SwarmKey::generate()?;
    let a = Daemon::start(key, &[], |_| {}).await?;
    let (open, gate) = watch::channel(false);
    let store = Arc::new(SlowStore {
        inner: MemoryTier::new("local"),
        gate,
        running: AtomicUsize::new(0),
        most_at_once: AtomicUsize::new(0),
        asked: Mutex::new(Vec::new()),
    });
    let b = Daemon::start_with(store.clone(), key, &a.addr(), |_| {}).await?;
    let repos: Vec<String> = (0..1100).map(|i| format!("o/r{i}")).collect();
    let first = sample_entry(1, &repos[0], b"first\n");
    let last = sample_entry(2, &repos[repos.len() - 1], b"last\n");
    store.put(&first).await?;
    store.put(&last).await?;
    let b_tier = b.tier().await?;
    assert_eq!(b_tier.get(&CacheKey([9; 32])).await?, Lookup::Miss); // joins the topic

    // Gossip reaches b once the mesh has formed: send the first until b has heard it.
    let a_tier = a.tier().await?;
    let heard = wait_for(WAIT, || async {
        a_tier
            .invalidate(&Selector::Repo(repos[0].clone()))
            .await
            .ok()?;
        wait_for(Duration::from_millis(300), || async {
            (b.counters().await.invalidations_received >= 1).then_some(())
        })
        .await
    })
    .await;
    assert!(heard.is_some(), "b heard an invalidation");

    // The store is stuck on the first; every other repository is invalidated meanwhile, in
    // batches that gossipsub's per-peer queue takes without dropping any.
    for (batch, repos) in repos[1..].chunks(100).enumerate() {
        for repo in repos {
            a_tier.invalidate(&Selector::Repo(repo.clone())).await?;
        }
        let sent = 1 + (batch * 100 + repos.len()) as u64;
        let heard = wait_for(WAIT, || async {
            (b.counters().await.invalidations_received >= sent).then_some(())
        })
        .await;
        assert!(heard.is_some(), "{sent} sent: {:?}", b.status().await);
    }
    assert_eq!(
        store.most_at_once.load(Ordering::SeqCst),
        1,
        "one invalidation at a time reached the store"
    );
    assert!(held(&store, &last.manifest.key).await, "not applied yet");

    open.send(true)?;
    let applied = wait_for(WAIT, || async {
        (!held(&store, &first.manifest.key).await && !held(&store, &last.manifest.key).await)
            .then_some(())
    })
    .await;
    assert!(
        applied.is_some(),
        "every invalidated repository was dropped"
    );
    // More waited than the queue holds: they became one invalidation of everything.
    let asked = store.asked();
    assert!(asked.contains(&Selector::All), "{} calls", asked.len());
    assert!(asked.len() < 100, "{} calls to the store", asked.len());
    assert_eq!(store.most_at_once.load(Ordering::SeqCst), 1);
    b.stop().await?;
    a.stop().await?;
    Ok(())
}
