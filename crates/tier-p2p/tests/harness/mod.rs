//! The daemon harness this tier's integration tests share: real daemons on loopback, each with
//! its own cache dir and store, asked through the Unix-socket adapter the CLI uses, and waits
//! on a condition with a deadline instead of sleeps.
//!
//! Each test file includes it with `mod harness;` and adds, in an `impl Daemon` block of its
//! own, what only it needs: the scopes its daemons follow from the start, the deadline of its
//! adapter.

// Each test file is a crate of its own and uses a part of the harness: what one file leaves
// unused is not dead.
#![allow(dead_code)]

pub mod raw_directory;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ghcache_core::testkit::MemoryTier;
use ghcache_core::{CacheTier, ScopeId};
use ghcache_tier_p2p::{
    run, status, Config, Counters, Error, Multiaddr, PeerId, Status, SwarmKey, Tier,
};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a daemon may take to start answering on its socket (and listening, if it listens).
const START: Duration = Duration::from_secs(30);

/// A daemon running in this process, stopped by [`Daemon::stop`].
pub struct Daemon<S = MemoryTier> {
    /// Its cache dir: where its socket is.
    pub dir: TempDir,
    /// Its local store.
    pub store: Arc<S>,
    /// Its peer id.
    pub peer_id: PeerId,
    /// Where peers dial it (`.../p2p/<peer id>`); `None` when it listens nowhere.
    pub addr: Option<Multiaddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Error>>,
}

impl Daemon {
    /// A daemon with an empty in-memory store; see [`Daemon::start_with`].
    pub async fn start(
        key: SwarmKey,
        bootstrap: &[Multiaddr],
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Daemon, Box<dyn std::error::Error>> {
        Daemon::start_with(Arc::new(MemoryTier::new("local")), key, bootstrap, tweak).await
    }
}

impl<S: CacheTier + 'static> Daemon<S> {
    /// A daemon on `store` that listens on a loopback port, without mDNS, dials `bootstrap`,
    /// and is then adjusted by `tweak`. Returns once its socket answers and, unless `tweak`
    /// made it listen nowhere, it listens.
    ///
    /// # Errors
    /// A daemon that did not start in time.
    pub async fn start_with(
        store: Arc<S>,
        key: SwarmKey,
        bootstrap: &[Multiaddr],
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Daemon<S>, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut config = Config::new(key);
        config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
        config.mdns = false;
        config.bootstrap = bootstrap.to_vec();
        tweak(&mut config);
        let listens = !config.listen.is_empty();
        let (stop, stopped) = oneshot::channel::<()>();
        let path = dir.path().to_owned();
        let local: Arc<dyn CacheTier> = store.clone();
        let task = tokio::spawn(async move {
            run(config, &path, local, async {
                let _ = stopped.await;
            })
            .await
        });
        let status = wait_for(START, || async {
            let status = status(dir.path()).await.ok()?;
            let listening = !status.listen_addrs.is_empty();
            (listening || !listens).then_some(status)
        })
        .await
        .ok_or("daemon did not start")?;
        let peer_id: PeerId = status.peer_id.parse()?;
        let addr = match status.listen_addrs.first() {
            Some(listen) => Some(format!("{listen}/p2p/{peer_id}").parse()?),
            None => None,
        };
        Ok(Daemon {
            dir,
            store,
            peer_id,
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// Its address as a bootstrap list: empty when it listens nowhere.
    pub fn addr(&self) -> Vec<Multiaddr> {
        self.addr.iter().cloned().collect()
    }

    /// The CLI's adapter to this daemon, for `scope`, waiting up to `deadline` per lookup.
    pub async fn tier_in(
        &self,
        scope: ScopeId,
        deadline: Duration,
    ) -> Result<Tier, Box<dyn std::error::Error>> {
        Ok(Tier::connect(self.dir.path(), scope, deadline)
            .await?
            .ok_or("no daemon")?)
    }

    /// The daemon's status; the default one when it does not answer.
    pub async fn status(&self) -> Status {
        status(self.dir.path()).await.unwrap_or_default()
    }

    /// Its counters now.
    pub async fn counters(&self) -> Counters {
        self.status().await.counters
    }

    /// Whether it is connected to `other` now.
    pub async fn connected_to<T>(&self, other: &Daemon<T>) -> bool {
        let peer = other.peer_id.to_string();
        self.status().await.connected_peers.contains(&peer)
    }

    /// How many peers it is connected to now.
    pub async fn peers(&self) -> usize {
        self.status().await.connected_peers.len()
    }

    /// Stops it as SIGTERM stops `ghcache daemon`, and waits until it has stopped.
    ///
    /// # Errors
    /// What the daemon returned, or a task that panicked.
    pub async fn stop(mut self) -> Result<(), Box<dyn std::error::Error>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await??;
        Ok(())
    }
}

/// Polls `probe` until it yields a value or `limit` passes.
pub async fn wait_for<T, F, Fut>(limit: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if Instant::now() > until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
