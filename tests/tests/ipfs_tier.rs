//! The IPFS tier with a real IPFS node (js-ipfs serving the Kubo RPC API) and real daemons:
//! entries outlive the runner that fetched them, bad bodies are refused, a dead node costs little.

use std::path::Path;
use std::time::{Duration, Instant};

use std::sync::Arc;

use ghcache_core::producer::{self, Identity};
use ghcache_core::testkit::{conformance, Capabilities, Invalidation};
use ghcache_core::{Manifest, ScopeId};
use ghcache_tests::ipfs::IpfsNode;
use ghcache_tests::{wait_until, Machine, World};
use ghcache_tier_ipfs::Kubo;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _};

const RELEASES: [&str; 4] = ["release", "list", "-R", "o/r"];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

/// A machine that uses `node` as its IPFS node.
fn with_ipfs(world: &World, name: &str, node: &IpfsNode) -> Machine {
    let mut machine = world.machine(name);
    // The commands' own answers alone: with the HTTP level, gh's requests under them would be
    // stored and added too (tests/http_level.rs follows those).
    machine.set_env("GH_CACHE_HTTP", "0");
    machine.set_env("GH_CACHE_IPFS", "1");
    machine.set_env("GH_CACHE_IPFS_API", &node.api_url());
    machine
}

/// The manifests in a machine's local store, by key.
fn stored_manifests(cache: &Path) -> Vec<Manifest> {
    runtime().block_on(async {
        let options = SqliteConnectOptions::new()
            .filename(cache.join("index.db"))
            .busy_timeout(Duration::from_secs(5));
        let mut conn = options
            .connect()
            .await
            .unwrap_or_else(|e| panic!("open index: {e}"));
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT manifest FROM entries")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("read index: {e}"));
        let _ = conn.close().await;
        rows.iter()
            .map(|(m,)| Manifest::decode(m).unwrap_or_else(|e| panic!("manifest: {e}")))
            .collect()
    })
}

/// The one manifest in a machine's store; it must name a CID.
fn only_manifest(cache: &Path) -> Manifest {
    let manifests = stored_manifests(cache);
    assert_eq!(manifests.len(), 1, "one entry in the store");
    let manifest = manifests
        .into_iter()
        .next()
        .unwrap_or_else(|| unreachable!());
    assert!(manifest.cid.is_some(), "the entry was added to IPFS");
    manifest
}

/// Waits until `n` of the machine's entries are also in IPFS: a detached `ghcache ipfs-store`
/// adds them after the command that fetched them has exited.
fn wait_in_ipfs(machine: &Machine, n: u64) {
    let added = wait_until(Duration::from_secs(15), || {
        machine.stats()["ipfs_entries"].as_u64().unwrap_or(0) >= n
    });
    assert!(added, "not added to IPFS: {}", machine.stats());
}

fn kubo(node: &IpfsNode) -> Kubo {
    Kubo::new(&node.api_url()).unwrap_or_else(|e| panic!("kubo client: {e}"))
}

fn mfs_path(manifest: &Manifest) -> String {
    ghcache_tier_ipfs::mfs_path(&manifest.scope_id, &manifest.key)
}

#[test]
fn the_ipfs_tier_passes_the_conformance_suite_plain_and_sealed() {
    let node = IpfsNode::start();
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
    // The suite's entries are of this scope; the node's index of it is empty at the start, and
    // again after the suite's last step (invalidate all) for the sealed run.
    let scope_id = ScopeId::of("test-scope");
    let capabilities = Capabilities {
        signs: true,
        invalidation: Invalidation::Marks,
        ..Capabilities::STORES
    };
    for seal in [
        None,
        Some(ghcache_tier_ipfs::BodyKey::derive(&[9; 32], &scope_id)),
    ] {
        let tier =
            ghcache_tier_ipfs::Tier::new(kubo(&node), scope_id, seal, verify.clone(), sign.clone());
        runtime().block_on(conformance(&tier, capabilities));
    }
}

#[test]
fn a_runner_that_is_gone_still_answers_through_ipfs() {
    let world = World::new();
    let node = IpfsNode::start();
    let key = world.swarm_key("team");
    let (mut a, mut b) = (with_ipfs(&world, "a", &node), with_ipfs(&world, "b", &node));
    for m in [&mut a, &mut b] {
        m.set_env("GH_CACHE_SWARM_KEY_FILE", &key.display().to_string());
    }
    let da = a.daemon(&key, &[]);
    let db = b.daemon(&key, &["--bootstrap", &da.addr]);
    assert!(db.wait_peers(1), "{}", db.log());
    // B's daemon follows the scope's announcements once one of B's commands used the scope.
    b.cached(&["repo", "view", "o/r"]).ok();
    let announced_before = db.counters().announcements_received;

    let fetched = a.cached(&RELEASES).ok();
    let requests = world.requests();
    wait_in_ipfs(&a, 1);
    let manifest = only_manifest(&a.cache_dir());
    // Announced once when stored, and again with its CID once it was added to IPFS.
    assert!(
        wait_until(Duration::from_secs(10), || db
            .counters()
            .announcements_received
            >= announced_before + 2),
        "{}",
        db.log()
    );
    da.stop();
    // Only the swarm's directory can name the CID now: the node's index entry is garbage.
    runtime()
        .block_on(kubo(&node).files_write(&mfs_path(&manifest), b"not a manifest".to_vec()))
        .unwrap_or_else(|e| panic!("overwrite the MFS manifest: {e}"));

    let stores_before = db.counters().local_stores;
    let on_b = b.cached(&RELEASES).ok();
    assert_eq!(world.requests(), requests, "no request reached GitHub");
    assert_eq!(on_b.stdout, fetched.stdout, "byte-identical");
    assert_eq!(on_b.stderr, fetched.stderr);
    assert_eq!(b.stats()["hits"]["ipfs"], 1);
    assert_eq!(b.stats()["hits"]["p2p"], 0, "A was gone");
    // B's daemon stored it on B's disk for the command, before the command exited: with the
    // daemon gone, a local hit.
    assert_eq!(
        db.counters().local_stores,
        stores_before + 1,
        "{}",
        db.log()
    );
    db.stop();
    let again = b.cached(&RELEASES).ok();
    assert_eq!(again.stdout, fetched.stdout);
    assert_eq!(b.stats()["hits"]["local"], 1);
    assert_eq!(world.requests(), requests, "no request reached GitHub");
}

#[test]
fn two_cache_dirs_share_entries_through_one_node_without_any_daemon() {
    let world = World::new();
    let node = IpfsNode::start();
    let (a, b) = (with_ipfs(&world, "a", &node), with_ipfs(&world, "b", &node));
    let fetched = a.cached(&RELEASES).ok();
    assert_eq!(world.requests(), 1);
    wait_in_ipfs(&a, 1);
    let on_b = b.cached(&RELEASES).ok();
    assert_eq!(world.requests(), 1, "B found it in the node's index");
    assert_eq!(on_b.stdout, fetched.stdout, "byte-identical");
    assert_eq!(on_b.stderr, fetched.stderr);
    assert_eq!(b.stats()["hits"]["ipfs"], 1);
    let plain = b.gh(&RELEASES).ok();
    assert_eq!(on_b.stdout, plain.stdout, "what gh prints");
}

#[test]
fn a_manifest_that_points_at_another_body_is_refused_and_github_answers() {
    let world = World::new();
    let node = IpfsNode::start();
    let (a, other, b) = (
        with_ipfs(&world, "a", &node),
        with_ipfs(&world, "other", &node),
        with_ipfs(&world, "b", &node),
    );
    a.cached(&RELEASES).ok();
    other.cached(&["repo", "view", "o/r"]).ok();
    wait_in_ipfs(&a, 1);
    wait_in_ipfs(&other, 1);
    let mut manifest = only_manifest(&a.cache_dir());
    let elsewhere = only_manifest(&other.cache_dir());
    // A validly signed manifest (A's own key) whose CID names another entry's body.
    manifest.cid = elsewhere.cid.clone();
    let file = std::fs::read(a.cache_dir().join("p2p/identity"))
        .unwrap_or_else(|e| panic!("A's identity: {e}"));
    let identity = ghcache_core::producer::Identity::decode(&file)
        .unwrap_or_else(|e| panic!("A's identity: {e}"));
    identity.sign(&mut manifest);
    runtime()
        .block_on(kubo(&node).files_write(&mfs_path(&manifest), manifest.encode()))
        .unwrap_or_else(|e| panic!("write the MFS manifest: {e}"));

    let before = world.requests();
    let answer = b.cached(&RELEASES).ok();
    assert_eq!(world.requests(), before + 1, "GitHub answered");
    let plain = b.gh(&RELEASES).ok();
    assert_eq!(answer.stdout, plain.stdout, "the right answer");
    let stats = b.stats();
    assert_eq!(stats["hits"]["ipfs"], 0, "{stats}");
    assert_eq!(stats["corrupt"], 1, "the bad body was counted: {stats}");
}

#[test]
fn a_dead_node_costs_one_refused_connection_and_one_warning() {
    let world = World::new();
    let node = IpfsNode::start();
    let api = node.api_url();
    node.stop();
    let mut a = world.machine("a");
    a.set_env("GH_CACHE_IPFS", "1");
    a.set_env("GH_CACHE_IPFS_API", &api);
    let plain = a.gh(&RELEASES).ok();
    let first = a.cached(&RELEASES).ok();
    assert_eq!(first.stdout, plain.stdout);
    let stderr = first.err();
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("IPFS")).collect();
    assert_eq!(warnings.len(), 1, "one warning: {}", first.err());
    assert!(warnings[0].starts_with("ghcache: warning: cannot reach the IPFS node"));
    assert!(first.err().contains(&api), "{}", first.err());
    // Later commands stay quiet about it.
    let second = a.cached(&["pr", "list", "-R", "o/r"]).ok();
    assert!(!second.err().contains("IPFS"), "{}", second.err());
}

#[test]
fn a_hanging_node_costs_at_most_the_ipfs_deadline() {
    let world = World::new();
    let node = IpfsNode::start();
    let mut a = with_ipfs(&world, "a", &node);
    a.set_env("GH_CACHE_IPFS_DEADLINE", "300ms");
    node.pause();
    let started = Instant::now();
    let plain = a.gh(&RELEASES).ok();
    let plain_took = started.elapsed();
    let started = Instant::now();
    let answer = a.cached(&RELEASES).ok();
    let took = started.elapsed();
    node.resume();
    assert_eq!(answer.stdout, plain.stdout, "GitHub answered");
    assert_eq!(world.requests(), 2);
    // The lookup gives up at 300 ms and nothing is added to a node that did not answer; the rest
    // is gh itself. A generous margin for a noisy machine.
    assert!(
        took < plain_took + Duration::from_millis(300 + 1500),
        "{took:?} vs plain gh {plain_took:?}"
    );
}

#[test]
fn bodies_added_with_a_swarm_key_are_not_readable_from_the_node() {
    let world = World::new();
    let node = IpfsNode::start();
    let key = world.swarm_key("team");
    let mut sealed = with_ipfs(&world, "sealed", &node);
    sealed.set_env("GH_CACHE_SWARM_KEY_FILE", &key.display().to_string());
    let mut plain = with_ipfs(&world, "plain", &node);
    plain.set_env("GH_CACHE_SCOPE", "public-only");
    let view = ["repo", "view", "o/r"];
    let printed = sealed.cached(&view).ok();
    plain.cached(&view).ok();
    wait_in_ipfs(&sealed, 1);
    wait_in_ipfs(&plain, 1);
    let secret = String::from_utf8_lossy(&printed.stdout);
    let line = secret
        .lines()
        .find(|l| l.len() > 8)
        .unwrap_or_else(|| panic!("no text in {secret:?}"))
        .to_owned();

    let read = |manifest: &Manifest| -> Vec<u8> {
        let cid = manifest.cid.clone().unwrap_or_default();
        runtime()
            .block_on(kubo(&node).cat(&cid, 1 << 20, Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("cat {cid}: {e}"))
    };
    let stored = read(&only_manifest(&sealed.cache_dir()));
    assert!(
        !contains(&stored, line.as_bytes()),
        "the block holds the plaintext"
    );
    // The control: without encryption the same answer is there in the clear.
    let clear = read(&only_manifest(&plain.cache_dir()));
    assert!(contains(&clear, line.as_bytes()), "control");
    // And a second machine of the swarm still reads it.
    let mut peer = with_ipfs(&world, "peer", &node);
    peer.set_env("GH_CACHE_SWARM_KEY_FILE", &key.display().to_string());
    let before = world.requests();
    assert_eq!(peer.cached(&view).ok().stdout, printed.stdout);
    assert_eq!(world.requests(), before);
    assert_eq!(peer.stats()["hits"]["ipfs"], 1);
}

#[test]
fn encryption_without_a_swarm_key_is_one_clear_error() {
    let world = World::new();
    let mut a = world.machine("a");
    a.set_env("GH_CACHE_IPFS", "1");
    let run = a.ghcache(&["--ipfs-encrypt", "gh", "pr", "list", "-R", "o/r"]);
    assert_eq!(run.code, 2, "{}", run.err());
    assert_eq!(run.err().lines().count(), 1, "{}", run.err());
    assert!(run.err().contains("swarm-key new"), "{}", run.err());
    assert_eq!(world.requests(), 0);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn after_a_write_the_node_no_longer_answers_with_the_old_list() {
    let world = World::new();
    let node = IpfsNode::start();
    let (a, b) = (with_ipfs(&world, "a", &node), with_ipfs(&world, "b", &node));
    let issues = ["issue", "list", "-R", "o/r"];
    let before_write = a.cached(&issues).ok();
    wait_in_ipfs(&a, 1);
    assert_eq!(b.cached(&issues).ok().stdout, before_write.stdout);
    assert_eq!(b.stats()["hits"]["ipfs"], 1, "the list is in IPFS");

    a.cached(&[
        "issue",
        "create",
        "-R",
        "o/r",
        "-t",
        "written on A",
        "-b",
        "x",
    ])
    .ok();
    // A sees its own write: neither its disk nor the node answers with the old list.
    let own = a.cached(&issues).ok();
    assert!(own.out().contains("written on A"), "{}", own.out());
    assert_eq!(a.stats()["hits"]["ipfs"], 0);
    wait_in_ipfs(&a, 1);
    // A machine that joins later gets the new list (from the node, added by A's re-read).
    let c = with_ipfs(&world, "c", &node);
    let later = c.cached(&issues).ok();
    assert_eq!(later.stdout, own.stdout);
    assert_eq!(c.stats()["hits"]["ipfs"], 1);
}

/// A body that holds the multipart boundary the client once sent with every file (a fixed
/// string, which cut such a body where it appeared) is added whole: the node gives back what
/// was sent, byte for byte.
#[test]
fn a_body_holding_the_old_fixed_multipart_boundary_is_added_whole() {
    let node = IpfsNode::start();
    let kubo = kubo(&node);
    let old = "ghcache-part-5c1f0e2a9b7d";
    let body = format!(
        "{{\"text\":\"before\r\n--{old}\r\nContent-Type: text/plain\r\n\r\nmiddle\r\n--{old}--\r\nafter\"}}"
    )
    .into_bytes();
    runtime().block_on(async {
        let cid = kubo
            .add(body.clone())
            .await
            .unwrap_or_else(|e| panic!("add: {e}"));
        let back = kubo
            .cat(&cid, 1 << 20, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("cat {cid}: {e}"));
        assert_eq!(
            String::from_utf8_lossy(&back),
            String::from_utf8_lossy(&body)
        );
    });
}
