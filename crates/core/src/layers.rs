//! Layers: tiers that wrap a tier to add one cross-cutting rule, so that no adapter and not the
//! [`Chain`](crate::Chain) has to carry it.
//!
//! - [`Deadline`]: every call answers within a time, or fails with [`TierError::Deadline`]
//!   (DESIGN.md invariant 5: a slow tier costs at most its deadline).
//! - [`LookupOnly`]: lookups go through, stores are refused with [`TierError::ReadOnly`] (a tier
//!   that its caller stores into itself, after the user has the answer).
//! - A [`Budget`] that several [`Deadline`]s share: one command asks a tier for its own answer
//!   and then, through gh's HTTP level, for each of gh's requests; together those lookups wait
//!   no longer than one deadline.
//!
//! A layer is itself a [`CacheTier`], with the wrapped tier's name, so layers compose and the
//! chain, the stats and the debug lines see the tier they wrap. Every method passes through,
//! [`CacheTier::put_fenced`] included: a layer never loses the fence mark of a store.
//!
//! ```
//! use std::sync::Arc;
//! use ghcache_core::layers::{Deadline, LookupOnly, IPFS_DEADLINE};
//! use ghcache_core::CacheTier;
//!
//! /// IPFS as the chain sees it: asked within its deadline, stored into by the caller later.
//! fn for_the_chain(ipfs: Arc<dyn CacheTier>) -> Arc<dyn CacheTier> {
//!     LookupOnly::wrap(Deadline::wrap(ipfs, IPFS_DEADLINE))
//! }
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::entry::Entry;
use crate::error::TierError;
use crate::fence::Mark;
use crate::invalidation_id::InvalidationId;
use crate::key::CacheKey;
use crate::tier::{CacheTier, Lookup, Selector};

/// How long a lookup in the swarm may take by default (`GH_CACHE_P2P_DEADLINE`): a peer on the
/// LAN answers in a few milliseconds and a hedged fetch from two providers in tens; past this,
/// asking GitHub is as quick.
pub const P2P_DEADLINE: Duration = Duration::from_millis(150);

/// How long a lookup in IPFS may take by default (`GH_CACHE_IPFS_DEADLINE`): a manifest read
/// and a `cat` from the machine's own node, which may have to find the body elsewhere.
pub const IPFS_DEADLINE: Duration = Duration::from_millis(500);

/// A tier whose every call answers within a deadline.
///
/// # Behavior
/// `get`, `put`, `put_fenced` and `invalidate` are passed to the wrapped tier; one that has not
/// answered when the deadline passes is dropped (so the wrapped tier must leave no state
/// half-done when a call is cancelled) and the call fails.
///
/// # Errors
/// [`TierError::Deadline`], naming the wrapped tier, for a call that was late; otherwise what
/// the wrapped tier answered.
pub struct Deadline {
    inner: Arc<dyn CacheTier>,
    deadline: Duration,
    budget: Option<Arc<Budget>>,
}

/// Time that the lookups of several [`Deadline`]s share: what one command may spend waiting on a
/// tier in all, however many times it asks it. A lookup gets what is left, at most its own
/// deadline; once nothing is left, lookups fail at once without asking.
#[derive(Debug)]
pub struct Budget {
    left: std::sync::Mutex<Duration>,
}

impl Budget {
    /// A budget of `total`.
    pub fn new(total: Duration) -> Arc<Budget> {
        Arc::new(Budget {
            left: std::sync::Mutex::new(total),
        })
    }

    /// What is left.
    pub fn left(&self) -> Duration {
        self.left.lock().map_or(Duration::ZERO, |left| *left)
    }

    fn spend(&self, spent: Duration) {
        if let Ok(mut left) = self.left.lock() {
            *left = left.saturating_sub(spent);
        }
    }
}

impl Deadline {
    /// `inner`, whose calls are given up after `deadline`.
    pub fn new(inner: Arc<dyn CacheTier>, deadline: Duration) -> Self {
        Deadline {
            inner,
            deadline,
            budget: None,
        }
    }

    /// `inner`, whose lookups are given up after `deadline` or when `budget` runs out, whichever
    /// comes first, and spend from `budget`; its stores and invalidations keep `deadline`.
    pub fn budgeted(
        inner: Arc<dyn CacheTier>,
        deadline: Duration,
        budget: Arc<Budget>,
    ) -> Arc<dyn CacheTier> {
        Arc::new(Deadline {
            inner,
            deadline,
            budget: Some(budget),
        })
    }

    /// [`Deadline::new`], as a tier ready for the chain.
    pub fn wrap(inner: Arc<dyn CacheTier>, deadline: Duration) -> Arc<dyn CacheTier> {
        Arc::new(Deadline::new(inner, deadline))
    }

    /// The deadline of each call.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// `call`, given up after `limit`.
    async fn within<T>(
        &self,
        limit: Duration,
        call: impl std::future::Future<Output = Result<T, TierError>>,
    ) -> Result<T, TierError> {
        tokio::time::timeout(limit, call)
            .await
            .unwrap_or_else(|_| Err(self.late()))
    }

    /// The error of a call given up: named by the wrapped tier and its own deadline, also when
    /// a shared budget cut the wait shorter.
    fn late(&self) -> TierError {
        TierError::Deadline {
            tier: self.inner.name(),
            deadline: self.deadline,
        }
    }
}

impl std::fmt::Debug for Deadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadline")
            .field("tier", &self.inner.name())
            .field("deadline", &self.deadline)
            .finish()
    }
}

#[async_trait]
impl CacheTier for Deadline {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn get(&self, key: &CacheKey) -> Result<Lookup, TierError> {
        let Some(budget) = &self.budget else {
            return self.within(self.deadline, self.inner.get(key)).await;
        };
        let allowed = self.deadline.min(budget.left());
        if allowed.is_zero() {
            return Err(self.late());
        }
        let started = std::time::Instant::now();
        let answer = self.within(allowed, self.inner.get(key)).await;
        budget.spend(started.elapsed());
        answer
    }

    async fn put(&self, entry: &Entry) -> Result<(), TierError> {
        self.within(self.deadline, self.inner.put(entry)).await
    }

    async fn put_fenced(&self, entry: &Entry, mark: Mark) -> Result<(), TierError> {
        self.within(self.deadline, self.inner.put_fenced(entry, mark))
            .await
    }

    async fn invalidate(&self, selector: &Selector) -> Result<u64, TierError> {
        self.within(self.deadline, self.inner.invalidate(selector))
            .await
    }

    async fn invalidate_known(
        &self,
        selector: &Selector,
        id: InvalidationId,
    ) -> Result<u64, TierError> {
        self.within(self.deadline, self.inner.invalidate_known(selector, id))
            .await
    }
}

/// A tier that is only read: stores are refused, lookups and invalidations go through.
///
/// For a tier that the caller stores into itself, off the critical path (IPFS: adding a body
/// takes longer than the user should wait). Invalidations still reach it: what a write made
/// out of date must not be found there.
///
/// # Errors
/// `put` and `put_fenced` fail with [`TierError::ReadOnly`] without calling the wrapped tier;
/// the chain takes that as "not stored here" and warns nobody.
pub struct LookupOnly {
    inner: Arc<dyn CacheTier>,
}

impl LookupOnly {
    /// `inner`, read but never stored into.
    pub fn new(inner: Arc<dyn CacheTier>) -> Self {
        LookupOnly { inner }
    }

    /// [`LookupOnly::new`], as a tier ready for the chain.
    pub fn wrap(inner: Arc<dyn CacheTier>) -> Arc<dyn CacheTier> {
        Arc::new(LookupOnly::new(inner))
    }
}

impl std::fmt::Debug for LookupOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LookupOnly")
            .field("tier", &self.inner.name())
            .finish()
    }
}

#[async_trait]
impl CacheTier for LookupOnly {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn get(&self, key: &CacheKey) -> Result<Lookup, TierError> {
        self.inner.get(key).await
    }

    async fn put(&self, _: &Entry) -> Result<(), TierError> {
        Err(TierError::ReadOnly {
            tier: self.inner.name(),
        })
    }

    async fn put_fenced(&self, _: &Entry, _: Mark) -> Result<(), TierError> {
        Err(TierError::ReadOnly {
            tier: self.inner.name(),
        })
    }

    async fn invalidate(&self, selector: &Selector) -> Result<u64, TierError> {
        self.inner.invalidate(selector).await
    }

    async fn invalidate_known(
        &self,
        selector: &Selector,
        id: InvalidationId,
    ) -> Result<u64, TierError> {
        self.inner.invalidate_known(selector, id).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::testkit::{conformance, sample_entry, Capabilities, MemoryTier};

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map(|rt| rt.block_on(future))
            .unwrap_or_else(|e| panic!("runtime: {e}"))
    }

    /// A tier that records how each store came in, and can be made to hang.
    #[derive(Default)]
    struct Recording {
        stores: Mutex<Vec<Option<Mark>>>,
        hang: bool,
        gets: std::sync::atomic::AtomicUsize,
    }

    impl Recording {
        async fn wait(&self) {
            if self.hang {
                std::future::pending::<()>().await;
            }
        }
    }

    #[async_trait]
    impl CacheTier for Recording {
        fn name(&self) -> &'static str {
            "p2p"
        }
        async fn get(&self, _: &CacheKey) -> Result<Lookup, TierError> {
            self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.wait().await;
            Ok(Lookup::Miss)
        }
        async fn put(&self, _: &Entry) -> Result<(), TierError> {
            self.wait().await;
            self.stores.lock().map(|mut s| s.push(None)).ok();
            Ok(())
        }
        async fn put_fenced(&self, _: &Entry, mark: Mark) -> Result<(), TierError> {
            self.wait().await;
            self.stores.lock().map(|mut s| s.push(Some(mark))).ok();
            Ok(())
        }
        async fn invalidate(&self, _: &Selector) -> Result<u64, TierError> {
            self.wait().await;
            Ok(7)
        }
    }

    #[test]
    fn a_deadline_passes_every_call_through_with_its_fence_mark() {
        let inner = Arc::new(Recording::default());
        let tier = Deadline::new(inner.clone(), Duration::from_secs(5));
        let entry = sample_entry(1, "o/r", b"x\n");
        assert_eq!(tier.name(), "p2p");
        assert!(block_on(tier.put_fenced(&entry, Mark(3))).is_ok());
        assert!(block_on(tier.put(&entry)).is_ok());
        assert_eq!(block_on(tier.invalidate(&Selector::All)).ok(), Some(7));
        let stores = inner.stores.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(stores, vec![Some(Mark(3)), None]);
    }

    #[test]
    fn lookups_that_share_a_budget_wait_no_longer_than_it_in_all() {
        let hanging = Arc::new(Recording {
            hang: true,
            ..Recording::default()
        });
        let budget = Budget::new(Duration::from_millis(60));
        // The command's own lookup, then two of gh's requests, each with the full deadline.
        let output = Deadline::budgeted(hanging.clone(), Duration::from_millis(50), budget.clone());
        let http = Deadline::budgeted(hanging.clone(), Duration::from_millis(50), budget.clone());
        let key = sample_entry(1, "o/r", b"x\n").manifest.key;
        for tier in [&output, &http, &http] {
            assert!(matches!(
                block_on(tier.get(&key)),
                Err(TierError::Deadline { tier: "p2p", .. })
            ));
        }
        assert_eq!(budget.left(), Duration::ZERO);
        // 50 ms, then the 10 ms left, then nothing: the third lookup is not even asked.
        let asked = hanging.gets.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(asked, 2);
        // A tier that answers spends what it took.
        let quick = Deadline::budgeted(
            Arc::new(Recording::default()),
            Duration::from_millis(50),
            Budget::new(Duration::from_secs(1)),
        );
        assert_eq!(block_on(quick.get(&key)).ok(), Some(Lookup::Miss));
    }

    #[test]
    fn a_late_call_fails_with_the_deadline_of_the_wrapped_tier() {
        let inner = Arc::new(Recording {
            hang: true,
            ..Recording::default()
        });
        let deadline = Duration::from_millis(20);
        let tier = Deadline::new(inner, deadline);
        let entry = sample_entry(1, "o/r", b"x\n");
        let started = std::time::Instant::now();
        for late in [
            block_on(tier.get(&entry.manifest.key)).map(drop),
            block_on(tier.put(&entry)),
            block_on(tier.put_fenced(&entry, Mark(1))),
            block_on(tier.invalidate(&Selector::All)).map(drop),
        ] {
            assert!(
                matches!(late, Err(TierError::Deadline { tier: "p2p", deadline: d }) if d == deadline),
                "{late:?}"
            );
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn lookup_only_refuses_stores_and_passes_the_rest() {
        let inner = Arc::new(Recording::default());
        let tier = LookupOnly::new(inner.clone());
        let entry = sample_entry(1, "o/r", b"x\n");
        assert!(matches!(
            block_on(tier.put(&entry)),
            Err(TierError::ReadOnly { tier: "p2p" })
        ));
        assert!(matches!(
            block_on(tier.put_fenced(&entry, Mark(1))),
            Err(TierError::ReadOnly { tier: "p2p" })
        ));
        assert_eq!(inner.stores.lock().map(|s| s.len()).ok(), Some(0));
        assert_eq!(block_on(tier.invalidate(&Selector::All)).ok(), Some(7));
        assert_eq!(
            block_on(tier.get(&entry.manifest.key)).ok(),
            Some(Lookup::Miss)
        );
    }

    #[test]
    fn layered_tiers_pass_the_conformance_suite() {
        let memory: Arc<dyn CacheTier> = Arc::new(MemoryTier::new("memory"));
        let timed = Deadline::wrap(memory, Duration::from_secs(5));
        block_on(conformance(timed.as_ref(), Capabilities::STORES));
        let memory: Arc<dyn CacheTier> = Arc::new(MemoryTier::new("memory"));
        let read_only = LookupOnly::wrap(memory);
        block_on(conformance(read_only.as_ref(), Capabilities::LOOKUP_ONLY));
    }
}
