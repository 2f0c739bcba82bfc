//! The daemon store under the conformance suite, as a command meets it: a real daemon runs on
//! the cache dir, its store the local tier of that same dir, and the command's puts go through
//! its socket while its gets read the records of its own lazy local tier. Both halves must agree
//! on every entry, or a command would store answers it cannot find again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ghcache_core::testkit::{conformance, Capabilities};
use ghcache_core::ScopeId;
use ghcache_tier_local as local;
use ghcache_tier_p2p::{self as p2p, SwarmKeyExt as _};
use tokio::sync::oneshot;

use super::StoredByDaemon;

/// How long the daemon may take to answer on its socket, and a lookup through it: a loaded test
/// machine's, not the command's deadline (the suite checks answers, not speed).
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_store_passes_the_conformance_suite() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_owned();

    // `ghcache daemon` on this cache dir: the local tier of the dir is its store.
    let store: Arc<dyn ghcache_core::CacheTier> =
        Arc::new(local::Tier::open(local::Config::new(&path)).await?);
    let mut config = p2p::Config::new(p2p::SwarmKey::generate()?);
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    config.mdns = false;
    let (stop, stopped) = oneshot::channel::<()>();
    let daemon = tokio::spawn(async move {
        p2p::run(config, &path, store, async {
            let _ = stopped.await;
        })
        .await
    });
    let until = Instant::now() + WAIT;
    while p2p::status(dir.path()).await.is_err() {
        assert!(
            Instant::now() < until,
            "the daemon never answered on its socket"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A command on the same cache dir: its lazy local tier, and the daemon's socket.
    let peers = p2p::Tier::connect(dir.path(), ScopeId::of("test-scope"), WAIT)
        .await?
        .ok_or("no daemon on the cache dir")?;
    let lazy = Arc::new(local::LazyTier::open(local::Config::new(dir.path()))?);
    let tier = StoredByDaemon::new(lazy.clone(), Arc::new(peers));
    conformance(&tier, Capabilities::STORES).await;

    // The suite's four puts were stored by the daemon, not by the fallback to the command's own
    // store: the suite ran against the path a command takes while a daemon runs.
    let counters = p2p::status(dir.path()).await?.counters;
    assert_eq!(counters.local_stores, 4, "{counters:?}");

    drop(tier);
    if let Ok(lazy) = Arc::try_unwrap(lazy) {
        lazy.close_before_exit().await;
    }
    let _ = stop.send(());
    daemon.await??;
    Ok(())
}
