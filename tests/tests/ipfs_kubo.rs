//! The IPFS tier against Kubo itself, when an `ipfs` (Kubo) binary is on `PATH`.
//!
//! The other IPFS tests run js-ipfs, which installs from npm; no package registry these tests
//! can use ships Kubo with its RPC API. The tier keeps to the RPC calls both serve (`add`,
//! `cat`, `pin/rm`, `pin/ls` in tests, `files/read|write|ls|mv|mkdir|rm`), and this suite checks
//! that claim against Kubo wherever one is installed. Without one it prints, to stderr,
//! `SKIPPED: no ipfs (Kubo) binary on PATH` and passes: the one skip of the project.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ghcache_core::producer::{self, Identity};
use ghcache_core::testkit::{conformance, sample_entry, Capabilities, Invalidation};
use ghcache_core::{now_ms, CacheTier as _, Lookup, Manifest, ScopeId};
use ghcache_tier_ipfs::{BodyKey, IndexKey, Kubo, Tier};

/// How long `ipfs daemon` may take to answer its API.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `ipfs` binary on `PATH`, if there is one.
fn kubo_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("ipfs"))
        .find(|candidate| candidate.is_file())
}

/// A Kubo daemon with its own repository (`ipfs init --profile test`: loopback, no bootstrap
/// peers, no mDNS), offline, its API on a free loopback port; killed on drop.
struct KuboNode {
    child: Child,
    port: u16,
    root: tempfile::TempDir,
}

impl KuboNode {
    fn start(binary: &Path) -> KuboNode {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let repo = root.path().join("repo");
        let ipfs = |args: &[&str]| {
            let out = Command::new(binary)
                .args(args)
                .env("IPFS_PATH", &repo)
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("ipfs {args:?}: {e}"));
            assert!(
                out.status.success(),
                "ipfs {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ipfs(&["init", "--profile", "test"]);
        let port = free_port();
        ipfs(&[
            "config",
            "Addresses.API",
            &format!("/ip4/127.0.0.1/tcp/{port}"),
        ]);
        ipfs(&[
            "config",
            "Addresses.Gateway",
            &format!("/ip4/127.0.0.1/tcp/{}", free_port()),
        ]);
        let log = std::fs::File::create(root.path().join("daemon.log"))
            .unwrap_or_else(|e| panic!("log: {e}"));
        let child = Command::new(binary)
            .args(["daemon", "--offline"])
            .env("IPFS_PATH", &repo)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap_or_else(|e| panic!("log: {e}")))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("ipfs daemon: {e}"));
        let mut node = KuboNode { child, port, root };
        let started = Instant::now();
        loop {
            let answers = ghcache_tests::ipfs::post(port, "/api/v0/id", Duration::from_secs(2))
                .is_ok_and(|(status, _)| status == 200);
            if answers {
                return node;
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                panic!("ipfs daemon exited ({status}): {}", node.log());
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "ipfs daemon did not answer within {START_TIMEOUT:?}: {}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("daemon.log")).unwrap_or_default()
    }

    fn kubo(&self) -> Kubo {
        Kubo::new(&format!("http://127.0.0.1:{}", self.port))
            .unwrap_or_else(|e| panic!("kubo client: {e}"))
    }

    fn pinned(&self, cid: &str) -> bool {
        ghcache_tests::ipfs::pinned(self.port, cid)
    }
}

impl Drop for KuboNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    ghcache_tests::free_port().unwrap_or_else(|e| panic!("free port: {e}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

/// The tier as a machine of a swarm uses it: bodies and the index sealed, one trusted producer.
fn sealed_tier(node: &KuboNode, scope_id: ScopeId) -> Tier {
    let identity = Identity::from_secret(&[7; 32]);
    let producer = identity.id();
    let verify: ghcache_tier_ipfs::Verify = Arc::new(move |manifest: &Manifest| {
        producer::verify(manifest, std::slice::from_ref(&producer))
            .map(drop)
            .map_err(|r| r.to_string())
    });
    let sign: ghcache_tier_ipfs::Sign = Arc::new(move |manifest: &mut Manifest| {
        identity.sign(manifest);
        Ok(())
    });
    let psk = [9; 32];
    Tier::new(
        node.kubo(),
        scope_id,
        Some(BodyKey::derive(&psk, &scope_id)),
        verify,
        sign,
    )
    .with_index_key(IndexKey::derive(&psk, &scope_id))
}

#[test]
fn the_tier_stores_finds_and_unpins_on_kubo() {
    let Some(binary) = kubo_binary() else {
        eprintln!("SKIPPED: no ipfs (Kubo) binary on PATH");
        return;
    };
    let node = KuboNode::start(&binary);
    // The suite's entries are of this scope.
    let scope_id = ScopeId::of("test-scope");
    let tier = sealed_tier(&node, scope_id);
    let capabilities = Capabilities {
        signs: true,
        invalidation: Invalidation::Marks,
        ..Capabilities::STORES
    };
    runtime().block_on(conformance(&tier, capabilities));

    // The rest in a scope of its own: the suite's last step left its entries for a sweep.
    let scope_id = ScopeId::of("kubo-round-trip");
    let tier = sealed_tier(&node, scope_id);
    let entry = |seed: u8, stdout: &[u8]| {
        let mut entry = sample_entry(seed, "o/r", stdout);
        entry.manifest.scope_id = scope_id;
        entry
    };
    runtime().block_on(async {
        // Store, then find.
        let first = entry(1, b"an answer\n");
        let stored = tier
            .store(&first)
            .await
            .unwrap_or_else(|e| panic!("store: {e}"));
        let cid = stored.cid.clone().unwrap_or_default();
        assert!(node.pinned(&cid), "added pinned");
        match tier.get(&first.manifest.key).await {
            Ok(Lookup::Hit(found)) => assert_eq!(found.body, first.body),
            other => panic!("expected a hit: {other:?}"),
        }
        // A new answer for the key unpins the old body.
        let changed = entry(1, b"another answer\n");
        let replaced_by = tier
            .store(&changed)
            .await
            .unwrap_or_else(|e| panic!("store: {e}"));
        assert!(!node.pinned(&cid), "the replaced body is unpinned");
        let new_cid = replaced_by.cid.unwrap_or_default();
        assert!(node.pinned(&new_cid));
        // An answer past its TTL and max_stale is swept; a fresh one is not.
        let mut old = entry(2, b"an old answer\n");
        old.manifest.created_at_ms = now_ms().saturating_sub(3 * 86_400_000);
        let old = tier
            .store(&old)
            .await
            .unwrap_or_else(|e| panic!("store: {e}"));
        let old_cid = old.cid.unwrap_or_default();
        let swept = tier
            .sweep(32, Duration::from_secs(3600))
            .await
            .unwrap_or_else(|e| panic!("sweep: {e}"));
        assert_eq!(swept.removed, 1, "{swept:?}");
        assert!(!node.pinned(&old_cid), "the old body is unpinned");
        assert!(node.pinned(&new_cid), "the fresh body stays pinned");
        // A manifest written without the swarm key is refused.
        node.kubo()
            .files_write(
                &ghcache_tier_ipfs::mfs_path(&scope_id, &changed.manifest.key),
                replaced_by_plain(&changed),
            )
            .await
            .unwrap_or_else(|e| panic!("plant: {e}"));
        let refused = tier.get(&changed.manifest.key).await;
        assert!(
            matches!(refused, Err(ghcache_core::TierError::Corrupt { .. })),
            "{refused:?}"
        );
    });
}

/// A manifest for `entry` as someone without the swarm key writes it: signed, not sealed.
fn replaced_by_plain(entry: &ghcache_core::Entry) -> Vec<u8> {
    let mut manifest = entry.manifest.clone();
    Identity::from_secret(&[0x5a; 32]).sign(&mut manifest);
    manifest.encode()
}
