//! Test support: an in-memory tier that records every access, and the conformance suite that
//! every [`CacheTier`] implementation's tests run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::fence::{Fence, FenceState, Mark};
use crate::policy::Resource;
use crate::{Body, CacheKey, CacheTier, Entry, Lookup, Selector, TierError};

/// An in-memory tier. Counts gets and puts so tests can assert which tiers were consulted.
#[derive(Debug)]
pub struct MemoryTier {
    name: &'static str,
    entries: Mutex<HashMap<CacheKey, Entry>>,
    /// Number of `get` calls.
    pub gets: AtomicUsize,
    /// Number of `put` calls.
    pub puts: AtomicUsize,
}

impl MemoryTier {
    /// An empty tier called `name`.
    pub fn new(name: &'static str) -> Self {
        MemoryTier {
            name,
            entries: Mutex::new(HashMap::new()),
            gets: AtomicUsize::new(0),
            puts: AtomicUsize::new(0),
        }
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    /// No entries held?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total `get` calls so far.
    pub fn get_count(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl CacheTier for MemoryTier {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn get(&self, key: &CacheKey) -> Result<Lookup, TierError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let entries = self.entries.lock().map_err(|_| TierError::Unavailable {
            tier: self.name,
            reason: "lock poisoned".into(),
        })?;
        Ok(entries.get(key).cloned().map_or(Lookup::Miss, Lookup::Hit))
    }

    async fn put(&self, entry: &Entry) -> Result<(), TierError> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        let mut entries = self.entries.lock().map_err(|_| TierError::Unavailable {
            tier: self.name,
            reason: "lock poisoned".into(),
        })?;
        entries.insert(entry.manifest.key, entry.clone());
        Ok(())
    }

    async fn invalidate(&self, selector: &Selector) -> Result<u64, TierError> {
        let mut entries = self.entries.lock().map_err(|_| TierError::Unavailable {
            tier: self.name,
            reason: "lock poisoned".into(),
        })?;
        let before = entries.len();
        entries.retain(|_, entry| !selector.covers(&entry.manifest));
        Ok((before - entries.len()) as u64)
    }
}

/// An in-memory fence: one generation and time per repository, moved by [`MemoryFence::move_for`].
#[derive(Debug, Default)]
pub struct MemoryFence {
    repos: Mutex<HashMap<String, (u64, u64)>>,
}

impl MemoryFence {
    /// Moves the fence of `repo`, as an invalidation that finished now does.
    pub fn move_for(&self, repo: &str) {
        if let Ok(mut repos) = self.repos.lock() {
            let slot = repos.entry(repo.to_owned()).or_default();
            slot.0 += 1;
            slot.1 = crate::now_ms();
        }
    }
}

impl Fence for MemoryFence {
    fn read(&self, repo: &str, _: Resource) -> Result<FenceState, TierError> {
        let repos = self.repos.lock().map_err(|_| TierError::Unavailable {
            tier: "fence",
            reason: "lock poisoned".into(),
        })?;
        let (generation, at) = repos.get(repo).copied().unwrap_or_default();
        Ok(FenceState {
            mark: Mark(generation),
            invalidated_at_ms: at,
        })
    }
}

/// An entry for tests: key derived from `seed`, about `repo`, fresh for a minute.
pub fn sample_entry(seed: u8, repo: &str, stdout: &[u8]) -> Entry {
    Entry::new(
        CacheKey([seed; 32]),
        "test-scope",
        repo,
        Duration::from_secs(60),
        Body {
            stdout: stdout.to_vec(),
            stderr: b"note\n".to_vec(),
        },
        None,
    )
}

/// The contract every tier is held to. Call it from each tier's tests with a fresh, empty tier.
///
/// # Panics
/// On the first broken rule, with a message naming it.
pub async fn conformance(tier: &dyn CacheTier) {
    let a = sample_entry(1, "o/a", b"alpha\n");
    let b = sample_entry(2, "o/b", b"beta\n");
    let same_body = sample_entry(3, "o/b", b"alpha\n");

    assert_eq!(
        tier.get(&a.manifest.key).await.ok(),
        Some(Lookup::Miss),
        "empty tier misses"
    );
    tier.put(&a).await.ok();
    tier.put(&b).await.ok();
    tier.put(&same_body).await.ok();
    assert_eq!(
        tier.get(&a.manifest.key).await.ok(),
        Some(Lookup::Hit(a.clone())),
        "get after put"
    );
    assert_eq!(
        tier.get(&same_body.manifest.key).await.ok(),
        Some(Lookup::Hit(same_body.clone())),
        "two keys with one body are both served"
    );

    let mut newer = a.clone();
    newer.body.stdout = b"alpha v2\n".to_vec();
    newer = Entry::new(
        newer.manifest.key,
        "test-scope",
        "o/a",
        Duration::from_secs(60),
        newer.body,
        Some("\"v2\"".into()),
    );
    tier.put(&newer).await.ok();
    assert_eq!(
        tier.get(&a.manifest.key).await.ok(),
        Some(Lookup::Hit(newer)),
        "put replaces"
    );

    let dropped = tier.invalidate(&Selector::Repo("o/b".into())).await.ok();
    assert_eq!(
        dropped,
        Some(2),
        "invalidate by repo drops that repo's entries"
    );
    assert_eq!(
        tier.get(&b.manifest.key).await.ok(),
        Some(Lookup::Miss),
        "invalidated entry misses"
    );
    assert!(
        matches!(tier.get(&a.manifest.key).await, Ok(Lookup::Hit(_))),
        "other repos are kept"
    );
    tier.invalidate(&Selector::All).await.ok();
    assert_eq!(
        tier.get(&a.manifest.key).await.ok(),
        Some(Lookup::Miss),
        "invalidate all"
    );
}
