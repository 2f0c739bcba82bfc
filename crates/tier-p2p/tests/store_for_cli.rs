//! A command's store handed to its daemon (`Tier::store`): stored as the command's own store
//! would have stored it, under the fence mark the command began with, through a real daemon and
//! the same Unix-socket adapter the CLI uses.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ghcache_core::policy::Resource;
use ghcache_core::testkit::{sample_entry, MemoryFence, MemoryTier};
use ghcache_core::{CacheKey, CacheTier, Entry, Fence, Lookup, Mark, ScopeId, Selector, TierError};
use ghcache_tier_p2p::{run, status, Config, SwarmKey, SwarmKeyExt as _, Tier};
use tokio::sync::oneshot;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A store with the local tier's fence rule: `put_fenced` stores only while the fence of the
/// entry's repository still reads the mark given.
struct Fenced {
    entries: MemoryTier,
    fence: MemoryFence,
}

impl Fenced {
    fn new() -> Fenced {
        Fenced {
            entries: MemoryTier::new("local"),
            fence: MemoryFence::default(),
        }
    }

    fn mark(&self, repo: &str) -> Result<Mark, TierError> {
        Ok(self.fence.read(repo, Resource::Other)?.mark)
    }

    async fn holds(&self, key: &CacheKey) -> Option<Entry> {
        match self.entries.get(key).await {
            Ok(Lookup::Hit(entry)) => Some(entry),
            _ => None,
        }
    }
}

#[async_trait]
impl CacheTier for Fenced {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn get(&self, key: &CacheKey) -> Result<Lookup, TierError> {
        self.entries.get(key).await
    }

    async fn put(&self, entry: &Entry) -> Result<(), TierError> {
        self.entries.put(entry).await
    }

    async fn put_fenced(&self, entry: &Entry, mark: Mark) -> Result<(), TierError> {
        if self.mark(&entry.manifest.repo)? == mark {
            self.entries.put(entry).await?;
        }
        Ok(())
    }

    async fn invalidate(&self, selector: &Selector) -> Result<u64, TierError> {
        self.entries.invalidate(selector).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_handed_to_the_daemon_keeps_the_commands_fence_mark() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Fenced::new());
    let mut config = Config::new(SwarmKey::generate()?);
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    config.mdns = false;
    let (stop, stopped) = oneshot::channel::<()>();
    let path = dir.path().to_owned();
    let served: Arc<dyn CacheTier> = store.clone();
    let daemon = tokio::spawn(async move {
        run(config, &path, served, async {
            let _ = stopped.await;
        })
        .await
    });
    let mut tier = None;
    for _ in 0..200 {
        tier = Tier::connect(
            dir.path(),
            ScopeId::of("test-scope"),
            Duration::from_millis(150),
        )
        .await?;
        if tier.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let tier = tier.ok_or("the daemon never opened its socket")?;

    // A command began under this mark; a write to the repository finished before it stored.
    let began = store.mark("o/r")?;
    store.fence.move_for("o/r");
    let old = sample_entry(1, "o/r", b"the list before the write\n");
    tier.store(&old, Some(began)).await?;
    assert_eq!(
        store.holds(&old.manifest.key).await,
        None,
        "an answer from before the write is not stored"
    );

    // One that began after the write is stored, whole.
    let new = sample_entry(2, "o/r", b"the list after the write\n");
    tier.store(&new, Some(store.mark("o/r")?)).await?;
    assert_eq!(store.holds(&new.manifest.key).await, Some(new.clone()));

    // Without a mark: by the store's own rule (here: stored).
    let other = sample_entry(3, "o/other", b"another repository\n");
    tier.store(&other, None).await?;
    assert_eq!(store.holds(&other.manifest.key).await, Some(other));

    // A body that does not match its manifest is refused.
    let mut forged = sample_entry(4, "o/r", b"the real body\n");
    forged.body.stdout = b"a forged body\n".to_vec();
    assert!(tier.store(&forged, None).await.is_err());
    assert_eq!(store.holds(&forged.manifest.key).await, None);

    let counters = status(dir.path()).await?.counters;
    assert_eq!(counters.local_stores, 3, "{counters:?}");
    let _ = stop.send(());
    daemon.await??;
    Ok(())
}

/// The daemon stores and signs what a client hands it, for the scope the client names: a
/// process of another user is closed on at once, however the socket's modes were loosened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_another_user_is_not_served() -> TestResult {
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir()?;
    let mut config = Config::new(SwarmKey::generate()?);
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    config.mdns = false;
    let (stop, stopped) = oneshot::channel::<()>();
    let path = dir.path().to_owned();
    let served: Arc<dyn CacheTier> = Arc::new(Fenced::new());
    let daemon = tokio::spawn(async move {
        run(config, &path, served, async {
            let _ = stopped.await;
        })
        .await
    });
    let socket = dir.path().join("p2p").join("daemon.sock");
    for _ in 0..200 {
        if status(dir.path()).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    status(dir.path()).await?;
    // Modes as loose as a careless hand could leave them: only the uid check is left.
    let open = |p: &std::path::Path, mode| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
    };
    open(dir.path(), 0o711)?;
    open(&dir.path().join("p2p"), 0o711)?;
    open(&socket, 0o777)?;
    // A thread's credentials are its own on Linux: this one becomes nobody, the rest stays.
    let answered = std::thread::spawn(move || -> Result<usize, String> {
        let nobody = rustix::process::Uid::from_raw(65_534);
        rustix::thread::set_thread_res_uid(nobody, nobody, nobody).map_err(|e| e.to_string())?;
        let mut stream =
            std::os::unix::net::UnixStream::connect(&socket).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        // Closed on at once: end of stream. Served: the daemon waits for a request, and the
        // read times out.
        stream.read(&mut byte).map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| "the client thread panicked")?;
    assert_eq!(answered, Ok(0), "the daemon closed the connection");
    let _ = stop.send(());
    daemon.await??;
    Ok(())
}
