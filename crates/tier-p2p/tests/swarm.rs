//! Real daemons on loopback, asked through the same Unix-socket adapter the CLI uses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ghcache_core::testkit::{conformance, sample_entry, Capabilities, Invalidation, MemoryTier};
use ghcache_core::{CacheKey, CacheTier, Entry, Lookup, ScopeId, Selector};
use ghcache_tier_p2p::{run, sign, status, Config, Keypair, SwarmKey, SwarmKeyExt as _, Tier};
use tokio::sync::oneshot;

mod harness;
use harness::{wait_for, Daemon};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(20);

fn scope() -> ScopeId {
    ScopeId::of("test-scope")
}

impl Daemon {
    /// The CLI's adapter to this daemon, in `scope()`.
    async fn tier(&self, deadline: Duration) -> Result<Tier, Box<dyn std::error::Error>> {
        self.tier_in(scope(), deadline).await
    }
}

async fn connected(a: &Daemon, b: &Daemon) -> bool {
    wait_for(WAIT, || async {
        (a.connected_to(b).await && b.connected_to(a).await).then_some(())
    })
    .await
    .is_some()
}

/// Gets `key` through `tier` until it hits (the DHT needs a moment after connecting).
async fn get_until_hit(tier: &Tier, key: &CacheKey) -> Option<Entry> {
    wait_for(WAIT, || async {
        match tier.get(key).await {
            Ok(Lookup::Hit(entry)) => Some(entry),
            _ => None,
        }
    })
    .await
}

async fn stored(store: &MemoryTier, key: &CacheKey) -> Option<Entry> {
    match store.get(key).await {
        Ok(Lookup::Hit(entry)) => Some(entry),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_published_by_one_peer_is_fetched_verified_and_stored_by_another() -> TestResult {
    let key = SwarmKey::generate()?;
    let a = Daemon::start(key, &[], |_| {}).await?;
    let b = Daemon::start(key, &a.addr(), |_| {}).await?;
    assert!(connected(&a, &b).await, "a and b connect");

    let entry = sample_entry(1, "o/r", b"pr list output\n");
    a.store.put(&entry).await?;
    a.tier(Duration::from_millis(150))
        .await?
        .put(&entry)
        .await?;

    let b_tier = b.tier(Duration::from_millis(150)).await?;
    let started = Instant::now();
    let got = get_until_hit(&b_tier, &entry.manifest.key)
        .await
        .ok_or("b never got the entry")?;
    eprintln!("first hit (dht warm-up included): {:?}", started.elapsed());

    assert_eq!(got.body, entry.body, "byte-identical body");
    assert_eq!(
        got.manifest.producer,
        Some(a.peer_id.to_bytes()),
        "a signed it as producer"
    );
    assert_eq!(sign::verify(&got.manifest, &[a.peer_id]), Ok(a.peer_id));
    let kept = stored(&b.store, &entry.manifest.key)
        .await
        .ok_or("b stored it")?;
    assert_eq!(kept, got, "b keeps the producer's signature");
    assert!(a.counters().await.fetches_served >= 1);

    // Warm round trips: CLI -> socket -> b's daemon -> a -> checks -> b's store -> CLI.
    let rounds = 20;
    let started = Instant::now();
    for _ in 0..rounds {
        let hit = b_tier.get(&entry.manifest.key).await?;
        assert!(matches!(hit, Lookup::Hit(_)));
    }
    eprintln!(
        "warm get round trip: {:?} on average",
        started.elapsed() / rounds
    );

    // A key nobody has is a miss within the deadline.
    let started = Instant::now();
    assert_eq!(b_tier.get(&CacheKey([9; 32])).await?, Lookup::Miss);
    let miss = started.elapsed();
    eprintln!("miss: {miss:?}");
    assert!(miss < Duration::from_millis(400), "miss took {miss:?}");

    b.stop().await?;
    a.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_reach_subscribed_peers() -> TestResult {
    let key = SwarmKey::generate()?;
    let a = Daemon::start(key, &[], |_| {}).await?;
    let b = Daemon::start(key, &a.addr(), |_| {}).await?;
    assert!(connected(&a, &b).await);
    let b_tier = b.tier(Duration::from_millis(150)).await?;
    // A first lookup joins the scope's topic.
    assert_eq!(b_tier.get(&CacheKey([7; 32])).await?, Lookup::Miss);

    let a_tier = a.tier(Duration::from_millis(150)).await?;
    let entry = sample_entry(2, "o/r", b"announced\n");
    a.store.put(&entry).await?;
    // Gossip reaches b once a has learnt of b's subscription: publish until it does.
    let heard = wait_for(WAIT, || async {
        a_tier.put(&entry).await.ok()?;
        let heard = wait_for(Duration::from_millis(300), || async {
            (b.counters().await.announcements_received >= 1).then_some(())
        })
        .await;
        heard
    })
    .await;
    assert!(heard.is_some(), "b heard the announcement");
    assert!(b.status().await.directory_entries >= 1);
    let got = get_until_hit(&b_tier, &entry.manifest.key).await;
    assert_eq!(got.map(|e| e.body), Some(entry.body));
    b.stop().await?;
    a.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_swarm_key_cannot_join() -> TestResult {
    let a = Daemon::start(SwarmKey::generate()?, &[], |_| {}).await?;
    let c = Daemon::start(SwarmKey::generate()?, &a.addr(), |_| {}).await?;
    let entry = sample_entry(3, "o/r", b"secret\n");
    a.store.put(&entry).await?;
    a.tier(Duration::from_millis(150))
        .await?
        .put(&entry)
        .await?;

    let c_tier = c.tier(Duration::from_millis(500)).await?;
    assert_eq!(c_tier.get(&entry.manifest.key).await?, Lookup::Miss);
    assert!(!c.connected_to(&a).await);
    assert!(!a.connected_to(&c).await);
    assert_eq!(stored(&c.store, &entry.manifest.key).await, None);
    c.stop().await?;
    a.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_signature_is_rejected_and_counted() -> TestResult {
    let key = SwarmKey::generate()?;
    let a = Daemon::start(key, &[], |_| {}).await?;
    let b = Daemon::start(key, &a.addr(), |_| {}).await?;
    assert!(connected(&a, &b).await);

    // a holds an entry that claims a as producer with a signature that does not verify: a
    // re-serves signed entries as they are, so this is what a lying peer would send.
    let mut forged = sample_entry(4, "o/r", b"poison\n");
    forged.manifest.producer = Some(a.peer_id.to_bytes());
    forged.manifest.signature = Some(vec![0; 64]);
    a.store.put(&forged).await?;
    let honest = sample_entry(5, "o/r", b"fine\n");
    a.store.put(&honest).await?;
    let a_tier = a.tier(Duration::from_millis(150)).await?;
    a_tier.put(&honest).await?;

    // The honest entry proves b can reach a; the forged one (same provider) must not pass.
    let b_tier = b.tier(Duration::from_millis(150)).await?;
    get_until_hit(&b_tier, &honest.manifest.key)
        .await
        .ok_or("honest entry")?;
    // a never announced the forged key, so tell b's DHT about it the way a provider would.
    let mut announced = forged.clone();
    announced.manifest.producer = None;
    announced.manifest.signature = None;
    a_tier.put(&announced).await?;
    let rejected = wait_for(WAIT, || async {
        let _ = b_tier.get(&forged.manifest.key).await;
        (b.counters().await.rejected >= 1).then_some(())
    })
    .await;
    assert!(rejected.is_some(), "b counted the rejection");
    assert_eq!(
        b_tier.get(&forged.manifest.key).await.ok(),
        Some(Lookup::Miss)
    );
    assert_eq!(stored(&b.store, &forged.manifest.key).await, None);
    b.stop().await?;
    a.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_list_admits_only_named_producers() -> TestResult {
    let key = SwarmKey::generate()?;
    let a = Daemon::start(key, &[], |_| {}).await?;
    let a_id = a.peer_id;
    let stranger = Keypair::generate_ed25519().public().to_peer_id();
    let picky = Daemon::start(key, &a.addr(), |c| c.trusted_peers = vec![stranger]).await?;
    let friendly = Daemon::start(key, &a.addr(), |c| c.trusted_peers = vec![a_id]).await?;
    assert!(connected(&a, &picky).await && connected(&a, &friendly).await);

    let entry = sample_entry(6, "o/r", b"trusted?\n");
    a.store.put(&entry).await?;
    a.tier(Duration::from_millis(150))
        .await?
        .put(&entry)
        .await?;

    let friendly_tier = friendly.tier(Duration::from_millis(150)).await?;
    assert!(get_until_hit(&friendly_tier, &entry.manifest.key)
        .await
        .is_some());

    let picky_tier = picky.tier(Duration::from_millis(150)).await?;
    let rejected = wait_for(WAIT, || async {
        let lookup = picky_tier.get(&entry.manifest.key).await.ok();
        assert_ne!(
            lookup,
            Some(Lookup::Hit(entry.clone())),
            "untrusted entry used"
        );
        (picky.counters().await.rejected >= 1).then_some(())
    })
    .await;
    assert!(rejected.is_some());
    assert_eq!(stored(&picky.store, &entry.manifest.key).await, None);
    for d in [friendly, picky, a] {
        d.stop().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_nodes_consume_but_never_serve() -> TestResult {
    let key = SwarmKey::generate()?;
    let ro = Daemon::start(key, &[], |c| c.read_only = true).await?;
    let b = Daemon::start(key, &ro.addr(), |_| {}).await?;
    assert!(connected(&ro, &b).await);

    let theirs = sample_entry(7, "o/r", b"from b\n");
    b.store.put(&theirs).await?;
    b.tier(Duration::from_millis(150))
        .await?
        .put(&theirs)
        .await?;
    let ro_tier = ro.tier(Duration::from_millis(150)).await?;
    assert!(
        get_until_hit(&ro_tier, &theirs.manifest.key)
            .await
            .is_some(),
        "read-only still consumes"
    );

    let mine = sample_entry(8, "o/r", b"from ro\n");
    ro.store.put(&mine).await?;
    ro_tier.put(&mine).await?;
    let b_tier = b.tier(Duration::from_millis(300)).await?;
    assert_eq!(b_tier.get(&mine.manifest.key).await?, Lookup::Miss);
    // Even the entry it fetched is not re-served.
    assert_eq!(b_tier.get(&theirs.manifest.key).await?, Lookup::Miss);
    assert_eq!(ro.counters().await.fetches_served, 0);
    b.stop().await?;
    ro.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_from_one_peer_drops_the_others_entries() -> TestResult {
    let key = SwarmKey::generate()?;
    let a = Daemon::start(key, &[], |_| {}).await?;
    let b = Daemon::start(key, &a.addr(), |_| {}).await?;
    assert!(connected(&a, &b).await);
    let stale = sample_entry(9, "o/r", b"old\n");
    let other = sample_entry(10, "o/keep", b"keep\n");
    b.store.put(&stale).await?;
    b.store.put(&other).await?;
    let b_tier = b.tier(Duration::from_millis(150)).await?;
    assert_eq!(b_tier.get(&CacheKey([11; 32])).await?, Lookup::Miss); // joins the topic

    let a_tier = a.tier(Duration::from_millis(150)).await?;
    let dropped = wait_for(WAIT, || async {
        a_tier
            .invalidate(&Selector::Repo("o/r".into()))
            .await
            .ok()?;
        wait_for(Duration::from_millis(300), || async {
            stored(&b.store, &stale.manifest.key)
                .await
                .is_none()
                .then_some(())
        })
        .await
    })
    .await;
    assert!(dropped.is_some(), "b dropped o/r");
    assert!(
        stored(&b.store, &other.manifest.key).await.is_some(),
        "other repos kept"
    );
    assert!(b.counters().await.invalidations_received >= 1);
    b.stop().await?;
    a.stop().await?;
    Ok(())
}

#[tokio::test]
async fn without_a_daemon_the_cli_pays_one_refused_connect() -> TestResult {
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    assert!(
        Tier::connect(dir.path(), scope(), Duration::from_millis(150))
            .await?
            .is_none()
    );
    assert!(started.elapsed() < Duration::from_millis(50));
    let message = status(dir.path())
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("no ghcache daemon is running for cache dir"),
        "{message}"
    );
    assert!(
        message.contains("start one with `ghcache daemon`"),
        "{message}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_daemon_per_cache_dir_and_stale_sockets_are_replaced() -> TestResult {
    let key = SwarmKey::generate()?;
    let a = Daemon::start(key, &[], |_| {}).await?;
    let mut config = Config::new(key);
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    config.mdns = false;
    let second = run(
        config.clone(),
        a.dir.path(),
        Arc::new(MemoryTier::new("l")),
        async {},
    )
    .await;
    let message = second.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("already running"), "{message}");

    // A socket file left by a daemon that died: nobody answers, so a new daemon takes over.
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("p2p"))?;
    drop(std::os::unix::net::UnixListener::bind(
        dir.path().join("p2p/daemon.sock"),
    )?);
    assert!(dir.path().join("p2p/daemon.sock").exists());
    let (stop, stopped) = oneshot::channel::<()>();
    let path = dir.path().to_owned();
    let task = tokio::spawn(async move {
        run(config, &path, Arc::new(MemoryTier::new("l")), async {
            let _ = stopped.await;
        })
        .await
    });
    let up = wait_for(WAIT, || async { status(dir.path()).await.ok() }).await;
    assert!(up.is_some(), "new daemon answers");
    let _ = stop.send(());
    task.await??;
    assert!(
        !dir.path().join("p2p/daemon.sock").exists(),
        "socket removed on shutdown"
    );
    a.stop().await?;
    Ok(())
}

/// The p2p tier as the conformance suite sees it: two machines of one swarm. A `put` is what
/// the producer's chain does with an answer from GitHub (its local store, then its daemon, which
/// signs and announces it), and returns once the consumer's daemon has heard the announcement:
/// in a swarm, stored means findable. A `get` asks the consumer's daemon, which fetches from
/// the producer; an `invalidate` is announced by the consumer's.
struct Pair<'a> {
    producer: &'a Daemon,
    producer_tier: Tier,
    consumer_tier: Tier,
}

#[async_trait::async_trait]
impl CacheTier for Pair<'_> {
    fn name(&self) -> &'static str {
        self.consumer_tier.name()
    }

    async fn get(&self, key: &CacheKey) -> Result<Lookup, ghcache_core::TierError> {
        self.consumer_tier.get(key).await
    }

    async fn put(&self, entry: &Entry) -> Result<(), ghcache_core::TierError> {
        self.producer.store.put(entry).await?;
        self.producer_tier.put(entry).await?;
        let heard = wait_for(WAIT, || async {
            let known = self
                .consumer_tier
                .announced_manifest(&entry.manifest.key)
                .await?;
            (known.body_digest == entry.manifest.body_digest).then_some(())
        })
        .await;
        heard.ok_or_else(|| ghcache_core::TierError::Unavailable {
            tier: "p2p",
            reason: format!(
                "the consumer never heard the announcement of {}",
                entry.manifest.key.short()
            ),
        })
    }

    async fn invalidate(&self, selector: &Selector) -> Result<u64, ghcache_core::TierError> {
        self.consumer_tier.invalidate(selector).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_pass_the_conformance_suite() -> TestResult {
    let key = SwarmKey::generate()?;
    let follow = |config: &mut Config| config.scopes = vec![scope()];
    let a = Daemon::start(key, &[], follow).await?;
    let b = Daemon::start(key, &a.addr(), follow).await?;
    assert!(connected(&a, &b).await, "a and b connect");
    // A deadline for a loaded test machine, not the CLI's: the suite checks answers, not speed.
    let deadline = Duration::from_secs(5);
    let pair = Pair {
        producer: &a,
        producer_tier: a.tier(deadline).await?,
        consumer_tier: b.tier(deadline).await?,
    };
    let capabilities = Capabilities {
        signs: true,
        invalidation: Invalidation::Announces,
        ..Capabilities::STORES
    };
    conformance(&pair, capabilities).await;
    drop(pair);
    b.stop().await?;
    a.stop().await?;
    Ok(())
}
