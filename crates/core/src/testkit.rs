//! Test support: an in-memory tier that records every access, and the conformance suite that
//! every [`CacheTier`] implementation's tests run, with the [`Capabilities`] a tier declares
//! where tiers legitimately differ; the skip rule, and a tmpfs [`Mount`] for tests of a full or
//! read-only disk.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::fence::{Fence, FenceState, Mark};
use crate::invalidation_id::InvalidationId;
use crate::policy::Resource;
use crate::{Body, CacheKey, CacheTier, Entry, Lookup, Selector, TierError};

mod mount;

pub use mount::Mount;

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
    repos: Mutex<HashMap<String, (u64, u64, u64)>>,
}

impl MemoryFence {
    /// Moves the fence of `repo`, as an invalidation that finished now does.
    pub fn move_for(&self, repo: &str) {
        if let Ok(mut repos) = self.repos.lock() {
            let slot = repos.entry(repo.to_owned()).or_default();
            slot.0 += 1;
            slot.2 = slot.1;
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
        let (generation, at, before) = repos.get(repo).copied().unwrap_or_default();
        let selector = Selector::Repo(repo.to_owned());
        Ok(FenceState {
            mark: Mark(generation),
            invalidated_at_ms: at,
            last: (generation > 0).then(|| InvalidationId::of(&selector, at)),
            before_last_ms: before,
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

/// What `invalidate` does in a tier: where tiers legitimately differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    /// Drops the entries at once and returns how many (memory, local).
    Drops,
    /// Marks them out of date at once, so that they miss from then on, without counting them:
    /// returns 0 (ipfs, whose entries are indexed by key and whose writes leave a mark per
    /// repository).
    Marks,
    /// Tells others, who drop theirs when the message reaches them; drops nothing here and
    /// promises nothing about when (p2p).
    Announces,
}

/// What a tier under the [`conformance`] suite declares about itself where tiers legitimately
/// differ. Everything else is the same contract for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `put` keeps the entry for a later `get`. A tier that does not store (a
    /// [`LookupOnly`](crate::layers::LookupOnly) layer) must refuse with
    /// [`TierError::ReadOnly`] and go on missing; any other `put` error fails the suite.
    pub stores: bool,
    /// What comes back is signed by whoever stored it (the p2p daemon, the ipfs tier's
    /// store): its producer is set, and its producer, signature and CID may differ from what
    /// was put. Every other byte of the entry must not.
    pub signs: bool,
    /// What `invalidate` does.
    pub invalidation: Invalidation,
    /// How many times an invalidation that drops counts one entry: once, except where a
    /// composition keeps a copy in each of its storing tiers and counts what each drops (a
    /// [`Chain`](crate::Chain) writes through every tier).
    pub copies: u64,
}

impl Capabilities {
    /// A tier that keeps what it is given and drops what is invalidated (memory, local).
    pub const STORES: Capabilities = Capabilities {
        stores: true,
        signs: false,
        invalidation: Invalidation::Drops,
        copies: 1,
    };

    /// A tier that is only read (see [`LookupOnly`](crate::layers::LookupOnly)).
    pub const LOOKUP_ONLY: Capabilities = Capabilities {
        stores: false,
        signs: false,
        invalidation: Invalidation::Drops,
        copies: 1,
    };
}

/// The contract every tier is held to. Call it from each tier's tests with a fresh, empty tier
/// and what the tier declares about itself.
///
/// # Behavior
/// An empty tier misses; what was put is found, byte for byte (see [`Capabilities::signs`]);
/// two keys with one body are both found; a put replaces; an invalidation of a repository
/// leaves the other repositories' entries; then what [`Capabilities::invalidation`] promises.
///
/// # Panics
/// On the first broken rule, with a message naming it, and on any error a tier returns where
/// its capabilities promise an answer: none is ignored.
pub async fn conformance(tier: &dyn CacheTier, capabilities: Capabilities) {
    let a = sample_entry(1, "o/a", b"alpha\n");
    let b = sample_entry(2, "o/b", b"beta\n");
    let same_body = sample_entry(3, "o/b", b"alpha\n");
    let check = Check { tier, capabilities };

    check.misses(&a, "an empty tier misses").await;
    for entry in [&a, &b, &same_body] {
        check.put(entry, "put").await;
    }
    check.finds(&a, "get after put").await;
    check
        .finds(&same_body, "two keys with one body are both served")
        .await;

    let newer = Entry::new(
        a.manifest.key,
        "test-scope",
        "o/a",
        Duration::from_secs(60),
        Body {
            stdout: b"alpha v2\n".to_vec(),
            stderr: a.body.stderr.clone(),
        },
        Some("\"v2\"".into()),
    );
    check.put(&newer, "put of a stored key").await;
    check.finds(&newer, "put replaces").await;

    let dropped = check
        .invalidate(&Selector::Repo("o/b".into()), "invalidate by repo")
        .await;
    match capabilities.invalidation {
        Invalidation::Drops if capabilities.stores => assert_eq!(
            dropped,
            2 * capabilities.copies,
            "{}: invalidate by repo drops that repo's entries and counts them",
            tier.name()
        ),
        Invalidation::Drops | Invalidation::Marks | Invalidation::Announces => {}
    }
    if capabilities.invalidation != Invalidation::Announces {
        check.misses(&b, "an invalidated entry misses").await;
        check
            .misses(&same_body, "every entry of the repository")
            .await;
    }
    check.finds(&newer, "other repos are kept").await;

    check.invalidate(&Selector::All, "invalidate all").await;
    if capabilities.invalidation != Invalidation::Announces {
        check.misses(&newer, "after invalidate all").await;
    }
}

/// One tier under the suite, and the assertions that name it.
struct Check<'a> {
    tier: &'a dyn CacheTier,
    capabilities: Capabilities,
}

impl Check<'_> {
    async fn get(&self, entry: &Entry, rule: &str) -> Lookup {
        match self.tier.get(&entry.manifest.key).await {
            Ok(found) => found,
            Err(err) => panic!("{}: {rule}: get failed: {err}", self.tier.name()),
        }
    }

    async fn misses(&self, entry: &Entry, rule: &str) {
        let found = self.get(entry, rule).await;
        assert_eq!(found, Lookup::Miss, "{}: {rule}", self.tier.name());
    }

    /// `entry` is found, or, in a tier that does not store, nothing is.
    async fn finds(&self, entry: &Entry, rule: &str) {
        if !self.capabilities.stores {
            return self.misses(entry, rule).await;
        }
        let name = self.tier.name();
        let Lookup::Hit(mut found) = self.get(entry, rule).await else {
            panic!("{name}: {rule}: missed");
        };
        if self.capabilities.signs {
            assert!(
                found.manifest.producer.is_some() && found.manifest.signature.is_some(),
                "{name}: {rule}: a signing tier returned an unsigned entry"
            );
            found.manifest.producer = entry.manifest.producer.clone();
            found.manifest.signature = entry.manifest.signature.clone();
            found.manifest.cid = entry.manifest.cid.clone();
        }
        assert_eq!(&found, entry, "{name}: {rule}");
    }

    async fn put(&self, entry: &Entry, rule: &str) {
        match self.tier.put(entry).await {
            Ok(()) => {}
            Err(TierError::ReadOnly { .. }) if !self.capabilities.stores => {}
            Err(err) => panic!("{}: {rule}: put failed: {err}", self.tier.name()),
        }
    }

    async fn invalidate(&self, selector: &Selector, rule: &str) -> u64 {
        match self.tier.invalidate(selector).await {
            Ok(dropped) => dropped,
            Err(err) => panic!("{}: {rule}: invalidate failed: {err}", self.tier.name()),
        }
    }
}

/// The environment variable that lets a test pass without running on a machine that lacks what
/// it needs (see [`skip`]).
pub const ALLOW_SKIP: &str = "GHCACHE_TEST_ALLOW_SKIP";

/// Ends a test that cannot run on this machine; `why` says what is missing (a tool, root, a
/// kernel feature). The caller returns right after.
///
/// A test that did not run must not be counted as passed, so this fails the test, unless
/// `GHCACHE_TEST_ALLOW_SKIP=1`: then it prints `SKIPPED: <why>` on stderr and returns. CI
/// installs what every test needs and never sets the variable. The one rule for every crate's
/// tests, here because each of them has this crate's test support (the end-to-end `tests` crate
/// is not something a tier's tests may depend on).
///
/// # Panics
/// Unless skipping is allowed; the panic names the test's line, not this one.
#[track_caller]
pub fn skip(why: &str) {
    if std::env::var_os(ALLOW_SKIP).is_some_and(|v| v == "1") {
        eprintln!("SKIPPED: {why}");
        return;
    }
    panic!(
        "this test cannot run here: {why}. Install what it needs (.ci/run does), or set \
         {ALLOW_SKIP}=1 to let it pass without running."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_that_cannot_run_fails_unless_skipping_is_allowed() {
        let allowed = std::env::var_os(ALLOW_SKIP).is_some_and(|v| v == "1");
        let outcome = std::panic::catch_unwind(|| skip("a tool this machine lacks"));
        assert_eq!(outcome.is_err(), !allowed, "{ALLOW_SKIP} set: {allowed}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_memory_tier_passes_the_conformance_suite() {
        conformance(&MemoryTier::new("memory"), Capabilities::STORES).await;
    }
}
