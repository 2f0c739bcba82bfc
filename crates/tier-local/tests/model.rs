//! Random sequences of puts, gets and invalidations agree with a map.

use std::collections::HashMap;

use ghcache_core::testkit::sample_entry;
use ghcache_core::{CacheKey, CacheTier, Entry, Lookup, Selector};
use ghcache_tier_local::{Config, Tier};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Put { seed: u8, repo: u8, body: u8 },
    Get { seed: u8 },
    InvalidateKey { seed: u8 },
    InvalidateRepo { repo: u8 },
    InvalidateAll,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..5u8, 0..3u8, 0..3u8).prop_map(|(seed, repo, body)| Op::Put { seed, repo, body }),
        4 => (0..5u8).prop_map(|seed| Op::Get { seed }),
        1 => (0..5u8).prop_map(|seed| Op::InvalidateKey { seed }),
        1 => (0..3u8).prop_map(|repo| Op::InvalidateRepo { repo }),
        1 => Just(Op::InvalidateAll),
        1 => Just(Op::Reopen),
    ]
}

fn repo(n: u8) -> String {
    format!("o/r{n}")
}

async fn run(ops: Vec<Op>) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let open = || Tier::open(Config::new(dir.path()));
    let mut tier = open().await.map_err(|e| e.to_string())?;
    let mut model: HashMap<CacheKey, Entry> = HashMap::new();
    for op in ops {
        match op {
            Op::Put {
                seed,
                repo: r,
                body,
            } => {
                let entry = sample_entry(seed, &repo(r), format!("body {body}\n").as_bytes());
                tier.put(&entry).await.map_err(|e| e.to_string())?;
                model.insert(entry.manifest.key, entry);
            }
            Op::Get { seed } => {
                let key = CacheKey([seed; 32]);
                let got = tier.get(&key).await.map_err(|e| e.to_string())?;
                let want = model.get(&key).cloned().map_or(Lookup::Miss, Lookup::Hit);
                if got != want {
                    return Err(format!("get {seed}: {got:?} != {want:?}"));
                }
            }
            Op::InvalidateKey { seed } => {
                let key = CacheKey([seed; 32]);
                let n = tier
                    .invalidate(&Selector::Key(key))
                    .await
                    .map_err(|e| e.to_string())?;
                let want = u64::from(model.remove(&key).is_some());
                if n != want {
                    return Err(format!("invalidate key {seed}: {n} != {want}"));
                }
            }
            Op::InvalidateRepo { repo: r } => {
                let n = tier
                    .invalidate(&Selector::Repo(repo(r)))
                    .await
                    .map_err(|e| e.to_string())?;
                let before = model.len();
                model.retain(|_, e| e.manifest.repo != repo(r));
                if n != (before - model.len()) as u64 {
                    return Err(format!("invalidate repo {r}: {n}"));
                }
            }
            Op::InvalidateAll => {
                let n = tier
                    .invalidate(&Selector::All)
                    .await
                    .map_err(|e| e.to_string())?;
                if n != model.len() as u64 {
                    return Err(format!("invalidate all: {n} != {}", model.len()));
                }
                model.clear();
            }
            Op::Reopen => {
                tier.close().await;
                tier = open().await.map_err(|e| e.to_string())?;
            }
        }
        let stats = tier.stats().await.map_err(|e| e.to_string())?;
        if stats.entries != model.len() as u64 {
            return Err(format!(
                "{} entries, model has {}",
                stats.entries,
                model.len()
            ));
        }
        let mut bodies: Vec<_> = model.values().map(|e| e.manifest.body_digest).collect();
        bodies.sort();
        bodies.dedup();
        let files = std::fs::read_dir(dir.path().join("blobs"))
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|fan| {
                std::fs::read_dir(fan.path())
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .count();
        if files != bodies.len() {
            return Err(format!(
                "{files} blob files for {} distinct bodies",
                bodies.len()
            ));
        }
    }
    tier.close().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn the_tier_behaves_like_a_map(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let outcome = rt.block_on(run(ops));
        prop_assert_eq!(outcome, Ok(()));
    }
}
