//! The chain's tests, with in-memory tiers and a scripted origin: which tiers are read, what is
//! backfilled, what each failure leads to, and what the user is told.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use proptest::prelude::*;

use super::*;
use crate::layers::{Deadline, LookupOnly};
use crate::testkit::{conformance, sample_entry, Capabilities, MemoryFence, MemoryTier};
use crate::{Body, KeyInput, OutputMode, Recorder};

/// An origin that answers from a script and counts calls.
struct ScriptedOrigin {
    answer: Mutex<Option<Fetched>>,
    calls: AtomicUsize,
}

impl ScriptedOrigin {
    fn new(answer: Fetched) -> Self {
        ScriptedOrigin {
            answer: Mutex::new(Some(answer)),
            calls: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl Origin for ScriptedOrigin {
    async fn fetch(&self, _: &Request, _: Option<&Entry>) -> Result<Fetched, OriginError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = self.answer.lock().ok().and_then(|a| a.clone());
        answer.ok_or(OriginError::Io {
            program: "gh".into(),
            reason: "no scripted answer".into(),
        })
    }
}

fn request_for(entry: &Entry) -> Request {
    let input = KeyInput {
        host: "github.com".into(),
        scope: "test-scope".into(),
        repo: "o/r".into(),
        argv: vec!["pr".into(), "list".into()],
        output: OutputMode::Pipe,
    };
    let mut request = Request::new(vec![], input, "o/r".into(), Duration::from_secs(60));
    request.key = entry.manifest.key;
    request
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map(|rt| rt.block_on(future))
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

fn stale(mut entry: Entry, age_ms: u64) -> Entry {
    entry.manifest.created_at_ms = crate::now_ms().saturating_sub(age_ms);
    entry
}

#[test]
fn lookup_only_tiers_are_read_but_never_written() {
    let entry = sample_entry(4, "o/r", b"from ipfs\n");
    let local = Arc::new(MemoryTier::new("local"));
    let ipfs = Arc::new(MemoryTier::new("ipfs"));
    let origin = Arc::new(ScriptedOrigin::new(Fetched::Fresh(entry.clone())));
    let chain = Chain::new(origin.clone(), Arc::new(Recorder::default()))
        .with_tier(local.clone())
        .with_tier(LookupOnly::wrap(Deadline::wrap(
            ipfs.clone(),
            Duration::from_millis(500),
        )));
    let resolved = block_on(chain.resolve(&request_for(&entry))).ok();
    assert_eq!(resolved.map(|r| r.source), Some(Source::Origin));
    assert_eq!((local.len(), ipfs.len()), (1, 0), "written to local only");
    assert_eq!(ipfs.get_count(), 1, "but asked");

    let local = Arc::new(MemoryTier::new("local"));
    block_on(ipfs.put(&entry)).ok();
    let chain = Chain::new(origin.clone(), Arc::new(Recorder::default()))
        .with_tier(local.clone())
        .with_tier(LookupOnly::wrap(ipfs.clone()));
    let resolved = block_on(chain.resolve(&request_for(&entry))).ok();
    assert_eq!(resolved.map(|r| r.source), Some(Source::Tier("ipfs")));
    assert_eq!(local.len(), 1, "an ipfs hit backfills local");
    assert_eq!(origin.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn hit_in_a_later_tier_backfills_earlier_ones() {
    let entry = sample_entry(9, "o/r", b"from p2p\n");
    let local = Arc::new(MemoryTier::new("local"));
    let p2p = Arc::new(MemoryTier::new("p2p"));
    block_on(p2p.put(&entry)).ok();
    let origin = Arc::new(ScriptedOrigin::new(Fetched::NotModified));
    let stats = Arc::new(Recorder::default());
    let chain = Chain::new(origin.clone(), stats.clone())
        .with_tier(local.clone())
        .with_tier(Deadline::wrap(p2p.clone(), Duration::from_millis(150)));
    let resolved = block_on(chain.resolve(&request_for(&entry)));
    let resolved = resolved.ok();
    assert_eq!(
        resolved.as_ref().map(|r| r.source),
        Some(Source::Tier("p2p"))
    );
    assert_eq!(
        resolved.map(|r| r.output.stdout),
        Some(b"from p2p\n".to_vec())
    );
    assert_eq!(local.len(), 1, "local was backfilled");
    assert_eq!(origin.calls.load(Ordering::SeqCst), 0);
    assert_eq!(stats.drain(), vec![Event::Hit("p2p")]);
}

#[test]
fn origin_answer_is_written_through_and_stale_prior_is_revalidated() {
    let entry = sample_entry(4, "o/r", b"body\n");
    let local = Arc::new(MemoryTier::new("local"));
    block_on(local.put(&stale(entry.clone(), 120_000))).ok();
    let origin = Arc::new(ScriptedOrigin::new(Fetched::NotModified));
    let stats = Arc::new(Recorder::default());
    let chain = Chain::new(origin, stats.clone()).with_tier(local.clone());
    let resolved = block_on(chain.resolve(&request_for(&entry))).ok();
    assert_eq!(
        resolved.as_ref().map(|r| r.source),
        Some(Source::Revalidated)
    );
    let refreshed = block_on(local.get(&entry.manifest.key)).ok();
    let fresh = matches!(refreshed, Some(Lookup::Hit(e)) if e.manifest.is_fresh(crate::now_ms(), Duration::ZERO));
    assert!(fresh, "the 304 refreshed the stored entry");
    assert_eq!(stats.drain(), vec![Event::Miss, Event::Revalidated]);
}

#[test]
fn github_failure_serves_stale_within_max_stale_only() {
    let entry = sample_entry(5, "o/r", b"old\n");
    let failed = Fetched::Failed {
        output: Output {
            stdout: vec![],
            stderr: b"HTTP 502: Bad Gateway\n".to_vec(),
            exit_code: 1,
            stdout_printed: false,
        },
        transient: true,
    };
    for (age_ms, served_stale) in [(120_000, true), (60_000 + 25 * 3_600_000, false)] {
        let local = Arc::new(MemoryTier::new("local"));
        block_on(local.put(&stale(entry.clone(), age_ms))).ok();
        let origin = Arc::new(ScriptedOrigin::new(failed.clone()));
        let chain = Chain::new(origin, Arc::new(Recorder::default())).with_tier(local);
        let resolved = block_on(chain.resolve(&request_for(&entry))).ok();
        let source = resolved.as_ref().map(|r| r.source);
        if served_stale {
            assert_eq!(source, Some(Source::Stale));
            assert_eq!(resolved.map(|r| r.output.stdout), Some(b"old\n".to_vec()));
        } else {
            assert_eq!(source, Some(Source::OriginFailed));
            assert_eq!(resolved.map(|r| r.output.exit_code), Some(1));
        }
    }
}

#[test]
fn short_of_budget_a_stale_answer_within_max_stale_is_served_without_asking_github() {
    let entry = sample_entry(5, "o/r", b"old\n");
    let fresh = sample_entry(5, "o/r", b"new\n");
    for (age_ms, asked) in [(120_000, false), (60_000 + 25 * 3_600_000, true)] {
        let local = Arc::new(MemoryTier::new("local"));
        block_on(local.put(&stale(entry.clone(), age_ms))).ok();
        let origin = Arc::new(ScriptedOrigin::new(Fetched::Fresh(fresh.clone())));
        let chain = Chain::new(origin.clone(), Arc::new(Recorder::default())).with_tier(local);
        let mut request = request_for(&entry);
        request.prefer_stale = Some("3 requests left".into());
        let resolved = block_on(chain.resolve(&request)).ok();
        assert_eq!(origin.calls.load(Ordering::SeqCst), usize::from(asked));
        let resolved = resolved.unwrap_or_else(|| panic!("resolved"));
        if asked {
            // Nothing within max_stale: GitHub is asked as gh would ask it.
            assert_eq!(resolved.source, Source::Origin);
            assert_eq!(resolved.output.stdout, b"new\n");
        } else {
            assert_eq!(resolved.source, Source::Stale);
            assert_eq!(resolved.output.stdout, b"old\n");
            assert!(
                resolved
                    .warnings
                    .iter()
                    .any(|w| w.contains("3 requests left")),
                "{:?}",
                resolved.warnings
            );
        }
    }
}

#[test]
fn a_non_transient_failure_is_passed_through_not_hidden() {
    let entry = sample_entry(6, "o/r", b"old\n");
    let local = Arc::new(MemoryTier::new("local"));
    block_on(local.put(&stale(entry.clone(), 120_000))).ok();
    let origin = Arc::new(ScriptedOrigin::new(Fetched::Failed {
        output: Output {
            stdout: vec![],
            stderr: b"HTTP 404: Not Found\n".to_vec(),
            exit_code: 1,
            stdout_printed: false,
        },
        transient: false,
    }));
    let chain = Chain::new(origin, Arc::new(Recorder::default())).with_tier(local);
    let resolved = block_on(chain.resolve(&request_for(&entry))).ok();
    assert_eq!(resolved.map(|r| r.source), Some(Source::OriginFailed));
}

/// A tier that never answers: the chain must give up at its deadline.
struct Hanging;

#[async_trait]
impl CacheTier for Hanging {
    fn name(&self) -> &'static str {
        "p2p"
    }
    async fn get(&self, _: &CacheKey) -> Result<Lookup, TierError> {
        std::future::pending().await
    }
    async fn put(&self, _: &Entry) -> Result<(), TierError> {
        std::future::pending().await
    }
}

#[test]
fn a_hanging_tier_costs_its_deadline_and_is_counted() {
    let entry = sample_entry(7, "o/r", b"new\n");
    let origin = Arc::new(ScriptedOrigin::new(Fetched::Fresh(entry.clone())));
    let stats = Arc::new(Recorder::default());
    let chain = Chain::new(origin, stats.clone())
        .with_tier(Deadline::wrap(Arc::new(Hanging), Duration::from_millis(20)));
    let started = std::time::Instant::now();
    let resolved = block_on(chain.resolve(&request_for(&entry))).ok();
    assert_eq!(resolved.map(|r| r.source), Some(Source::Origin));
    assert!(started.elapsed() < Duration::from_secs(5));
    let events = stats.drain();
    assert!(events.contains(&Event::Error("p2p")), "{events:?}");
}

proptest! {
    /// Wherever the first fresh copy sits, every tier before it ends up with it, none after
    /// it is asked, and the origin is not called.
    #[test]
    fn backfill_reaches_exactly_the_faster_tiers(levels in 1usize..5, hit_at in 0usize..5) {
        let hit_at = hit_at % levels;
        let entry = sample_entry(11, "o/r", b"x\n");
        let tiers: Vec<Arc<MemoryTier>> =
            (0..levels).map(|_| Arc::new(MemoryTier::new("t"))).collect();
        block_on(tiers[hit_at].put(&entry)).ok();
        let origin = Arc::new(ScriptedOrigin::new(Fetched::NotModified));
        let mut chain = Chain::new(origin.clone(), Arc::new(Recorder::default()));
        for tier in &tiers {
            chain = chain.with_tier(tier.clone());
        }
        let resolved = block_on(chain.resolve(&request_for(&entry))).ok();
        prop_assert_eq!(resolved.map(|r| r.output.stdout), Some(b"x\n".to_vec()));
        prop_assert_eq!(origin.calls.load(Ordering::SeqCst), 0);
        for (i, tier) in tiers.iter().enumerate() {
            prop_assert_eq!(tier.len(), usize::from(i <= hit_at));
            prop_assert_eq!(tier.get_count(), usize::from(i <= hit_at));
        }
    }

    /// An origin answer lands in every tier; a failed answer lands in none.
    #[test]
    fn write_through_only_for_success(levels in 1usize..5, ok in any::<bool>()) {
        let entry = sample_entry(12, "o/r", b"y\n");
        let answer = if ok {
            Fetched::Fresh(entry.clone())
        } else {
            Fetched::Failed { output: Output { exit_code: 1, ..Output::default() }, transient: false }
        };
        let tiers: Vec<Arc<MemoryTier>> =
            (0..levels).map(|_| Arc::new(MemoryTier::new("t"))).collect();
        let mut chain = Chain::new(Arc::new(ScriptedOrigin::new(answer)), Arc::new(Recorder::default()));
        for tier in &tiers {
            chain = chain.with_tier(tier.clone());
        }
        block_on(chain.resolve(&request_for(&entry))).ok();
        for tier in &tiers {
            prop_assert_eq!(tier.len(), usize::from(ok));
        }
    }
}

/// An origin that answers after a write to the repository finished (the fence moved while
/// it fetched), as a gh that read before the write and printed after it.
struct RacingOrigin {
    answer: Entry,
    fence: Arc<MemoryFence>,
}

#[async_trait]
impl Origin for RacingOrigin {
    async fn fetch(&self, _: &Request, _: Option<&Entry>) -> Result<Fetched, OriginError> {
        self.fence.move_for(&self.answer.manifest.repo);
        Ok(Fetched::Fresh(self.answer.clone()))
    }
}

#[test]
fn an_answer_fetched_across_a_write_is_printed_but_never_stored() {
    let entry = sample_entry(21, "o/r", b"before the write\n");
    let fence = Arc::new(MemoryFence::default());
    let local = Arc::new(MemoryTier::new("local"));
    let p2p = Arc::new(MemoryTier::new("p2p"));
    let origin = Arc::new(RacingOrigin {
        answer: entry.clone(),
        fence: fence.clone(),
    });
    let chain = Chain::new(origin, Arc::new(Recorder::default()))
        .with_fence(fence.clone())
        .with_tier(local.clone())
        .with_tier(p2p.clone());
    let resolved = block_on(chain.resolve(&request_for(&entry))).ok();
    assert_eq!(
        resolved.map(|r| (r.source, r.output.stdout)),
        Some((Source::Origin, b"before the write\n".to_vec()))
    );
    assert_eq!((local.len(), p2p.len()), (0, 0), "stored nowhere");
}

#[test]
fn entries_made_before_an_invalidation_seen_here_are_not_used() {
    let fresh = sample_entry(22, "o/r", b"from GitHub\n");
    let fence = Arc::new(MemoryFence::default());
    let p2p = Arc::new(MemoryTier::new("p2p"));
    // A peer fetched it a moment ago; this machine saw a write to o/r since.
    let mut old = stale(sample_entry(22, "o/r", b"old\n"), 1_000);
    old.manifest.producer = Some(vec![7]);
    block_on(p2p.put(&old)).ok();
    fence.move_for("o/r");
    let origin = Arc::new(ScriptedOrigin::new(Fetched::Fresh(fresh.clone())));
    let chain = Chain::new(origin.clone(), Arc::new(Recorder::default()))
        .with_fence(fence.clone())
        .with_tier(Arc::new(MemoryTier::new("local")))
        .with_tier(p2p);
    let resolved = block_on(chain.resolve(&request_for(&fresh))).ok();
    assert_eq!(
        resolved.map(|r| (r.source, r.output.stdout)),
        Some((Source::Origin, b"from GitHub\n".to_vec()))
    );
    assert_eq!(origin.calls.load(Ordering::SeqCst), 1);

    // The same entry made long enough after the write is used.
    let mut newer = sample_entry(22, "o/r", b"new\n");
    newer.manifest.producer = Some(vec![7]);
    newer.manifest.created_at_ms = crate::now_ms() + 1 + CLOCK_SKEW.as_millis() as u64 / 2;
    let p2p = Arc::new(MemoryTier::new("p2p"));
    block_on(p2p.put(&newer)).ok();
    let fence = Arc::new(MemoryFence::default());
    fence.move_for("o/r");
    let chain = Chain::new(origin, Arc::new(Recorder::default()))
        .with_fence(fence)
        .with_tier(p2p);
    let mut request = request_for(&newer);
    request.ttl = Duration::from_secs(3600);
    let resolved = block_on(chain.resolve(&request)).ok();
    assert_eq!(
        resolved.map(|r| r.source),
        Some(Source::Origin),
        "within the skew margin of the write: not trusted"
    );
}

#[test]
fn an_entry_that_names_another_repository_is_not_used() {
    let fresh = sample_entry(23, "o/r", b"right\n");
    let p2p = Arc::new(MemoryTier::new("p2p"));
    block_on(p2p.put(&sample_entry(23, "o/elsewhere", b"dodges the fence\n"))).ok();
    let origin = Arc::new(ScriptedOrigin::new(Fetched::Fresh(fresh.clone())));
    let chain = Chain::new(origin, Arc::new(Recorder::default())).with_tier(p2p);
    let resolved = block_on(chain.resolve(&request_for(&fresh))).ok();
    assert_eq!(resolved.map(|r| r.output.stdout), Some(b"right\n".to_vec()));
}

#[test]
fn judge_refuses_other_answers_and_older_than_the_fence_and_dates_the_rest() {
    let config = ChainConfig::default();
    let entry = sample_entry(24, "o/r", b"x\n");
    let request = request_for(&entry);
    let now = crate::now_ms();
    assert_eq!(config.judge(&entry, &request, None, now), Verdict::Fresh);
    let later = now + 61_000;
    assert_eq!(config.judge(&entry, &request, None, later), Verdict::Stale);
    let mut elsewhere = entry.clone();
    elsewhere.manifest.repo = "o/elsewhere".into();
    assert_eq!(
        config.judge(&elsewhere, &request, None, now),
        Verdict::Refused
    );
    let mut other_resource = entry.clone();
    other_resource.manifest.resource = Resource::Issues;
    assert_eq!(
        config.judge(&other_resource, &request, None, now),
        Verdict::Refused
    );
    let after_a_write = FenceState {
        mark: Mark(1),
        invalidated_at_ms: entry.manifest.created_at_ms + 1,
        ..FenceState::UNMOVED
    };
    assert_eq!(
        config.judge(&entry, &request, Some(&after_a_write), now),
        Verdict::Refused
    );
    let mut ahead = entry.clone();
    ahead.manifest.created_at_ms = now + CLOCK_SKEW.as_millis() as u64 + 1_000;
    assert_eq!(
        config.judge(&ahead, &request, None, now),
        Verdict::Stale,
        "a producer's clock too far ahead is not trusted to be fresh"
    );
}

#[test]
fn tampered_body_is_dropped_and_counted() {
    let mut entry = sample_entry(13, "o/r", b"good\n");
    let local = Arc::new(MemoryTier::new("local"));
    entry.body = Body {
        stdout: b"evil\n".to_vec(),
        stderr: vec![],
    };
    block_on(local.put(&entry)).ok();
    let fresh = sample_entry(13, "o/r", b"good\n");
    let stats = Arc::new(Recorder::default());
    let chain = Chain::new(
        Arc::new(ScriptedOrigin::new(Fetched::Fresh(fresh))),
        stats.clone(),
    )
    .with_tier(local);
    let resolved = block_on(chain.resolve(&request_for(&entry))).ok();
    assert_eq!(resolved.map(|r| r.output.stdout), Some(b"good\n".to_vec()));
    assert_eq!(stats.drain(), vec![Event::Corrupt("local"), Event::Miss]);
}

#[test]
fn an_answer_the_origin_printed_is_stored_unless_too_large_and_never_replaced() {
    let entry = sample_entry(14, "o/r", b"printed\n");
    let left = Output {
        stderr: b"a notice\n".to_vec(),
        stdout_printed: true,
        ..Output::default()
    };
    for stored in [true, false] {
        let local = Arc::new(MemoryTier::new("local"));
        let printed = Fetched::Printed {
            entry: stored.then(|| entry.clone()),
            output: left.clone(),
        };
        let origin = Arc::new(ScriptedOrigin::new(printed));
        let chain = Chain::new(origin, Arc::new(Recorder::default())).with_tier(local.clone());
        let resolved = block_on(chain.resolve(&request_for(&entry))).ok();
        let source = if stored {
            Source::Origin
        } else {
            Source::OriginTooLarge
        };
        assert_eq!(resolved.as_ref().map(|r| r.source), Some(source));
        assert_eq!(
            resolved.map(|r| r.output),
            Some(left.clone()),
            "nothing to print twice"
        );
        assert_eq!(local.len(), usize::from(stored));
    }
    // A transient failure after part of the answer was printed is passed through: a stale
    // answer printed after it would be two answers.
    let local = Arc::new(MemoryTier::new("local"));
    block_on(local.put(&stale(entry.clone(), 120_000))).ok();
    let failed = Fetched::Failed {
        output: Output {
            stderr: b"HTTP 502: Bad Gateway\n".to_vec(),
            exit_code: 1,
            stdout_printed: true,
            ..Output::default()
        },
        transient: true,
    };
    let chain = Chain::new(
        Arc::new(ScriptedOrigin::new(failed)),
        Arc::new(Recorder::default()),
    )
    .with_tier(local);
    let resolved = block_on(chain.resolve(&request_for(&entry))).ok();
    assert_eq!(resolved.map(|r| r.source), Some(Source::OriginFailed));
}

/// The chain is a tier too (without its origin): read through it, it finds what any of its
/// tiers holds, and what is put into it is written through every tier that stores.
#[test]
fn the_chain_passes_the_conformance_suite() {
    let chain = |tiers: Vec<Arc<dyn CacheTier>>| {
        let origin = Arc::new(ScriptedOrigin::new(Fetched::NotModified));
        let chain = Chain::new(origin, Arc::new(Recorder::default()));
        tiers.into_iter().fold(chain, Chain::with_tier)
    };
    let memory = || -> Arc<dyn CacheTier> { Arc::new(MemoryTier::new("memory")) };

    block_on(conformance(&chain(vec![memory()]), Capabilities::STORES));
    let fenced = chain(vec![memory()]).with_fence(Arc::new(MemoryFence::default()));
    block_on(conformance(&fenced, Capabilities::STORES));
    // A lookup-only tier first: stores and backfills skip it, reads go through it.
    let read_first = chain(vec![LookupOnly::wrap(memory()), memory()]);
    block_on(conformance(&read_first, Capabilities::STORES));
    // Two storing tiers: each keeps a copy, and an invalidation counts what each drops.
    let two = Capabilities {
        copies: 2,
        ..Capabilities::STORES
    };
    block_on(conformance(&chain(vec![memory(), memory()]), two));
}

#[test]
fn an_entry_from_any_tier_past_its_ttl_is_served_under_the_heard_ttl_and_said_so() {
    use crate::heard::{Cover, Covered, Report, SourceKind};
    let now = crate::now_ms();
    let heard_since = now - 10 * 60_000;
    let report = Report {
        valid_until_ms: now + 30_000,
        scopes: vec![Covered {
            scope: None,
            covers: vec![Cover::everything(SourceKind::Webhook, heard_since)],
        }],
    };
    for tier in ["local", "p2p", "ipfs"] {
        let entry = stale(sample_entry(31, "o/r", b"kept\n"), 5 * 60_000);
        let found = Arc::new(MemoryTier::new(tier));
        block_on(found.put(&entry)).ok();
        let origin = Arc::new(ScriptedOrigin::new(Fetched::Fresh(sample_entry(
            31, "o/r", b"new\n",
        ))));
        let chain = Chain::new(origin.clone(), Arc::new(Recorder::default()))
            .with_tier(LookupOnly::wrap(found));
        let mut request = request_for(&entry);
        let resolved = block_on(chain.resolve(&request)).ok();
        assert_eq!(
            resolved.map(|r| r.output.stdout),
            Some(b"new\n".to_vec()),
            "{tier}: past its TTL, without writes heard"
        );
        request.heard = report.allowance(
            &crate::ScopeId::of("test-scope"),
            "o/r",
            Resource::Other,
            Duration::from_secs(600),
            now,
        );
        let resolved = block_on(chain.resolve(&request)).ok();
        assert_eq!(
            resolved.as_ref().map(|r| r.output.stdout.clone()),
            Some(b"kept\n".to_vec()),
            "{tier}"
        );
        assert_eq!(resolved.map(|r| r.source), Some(Source::Heard(tier)));
        assert_eq!(origin.calls.load(Ordering::SeqCst), 1, "{tier}");
        assert!(Source::Heard(tier)
            .label()
            .starts_with(&*Source::Tier(tier).label()));
    }
}
