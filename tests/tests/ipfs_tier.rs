//! The IPFS tier with a real IPFS node (js-ipfs serving the Kubo RPC API) and real daemons:
//! entries outlive the runner that fetched them, bad bodies are refused, a dead node costs little.

use std::path::Path;
use std::time::{Duration, Instant};

use std::sync::Arc;

use ghcache_core::producer::{self, Identity};
use ghcache_core::testkit::{conformance, sample_entry, Capabilities, Invalidation};
use ghcache_core::{now_ms, Body, CacheTier as _, Digest, Entry, Manifest, ScopeId, Selector};
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

/// Makes `machine` trust the producer `identity` (`[p2p] trusted_peers` in its config file).
fn trust(machine: &Machine, identity: &Identity) {
    let dir = machine.home.join("xdg-config/ghcache");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let text = format!("[p2p]\ntrusted_peers = [\"{}\"]\n", identity.id());
    std::fs::write(dir.join("config.toml"), text).unwrap_or_else(|e| panic!("config: {e}"));
}

/// A machine of the swarm whose key is `key`, using `node`.
fn member(world: &World, name: &str, node: &IpfsNode, key: &Path) -> Machine {
    let mut machine = with_ipfs(world, name, node);
    machine.set_env("GH_CACHE_SWARM_KEY_FILE", &key.display().to_string());
    machine
}

/// The identity (signing key) of a machine that added something to IPFS.
fn identity_of(machine: &Machine) -> Identity {
    let file = std::fs::read(machine.cache_dir().join("p2p/identity"))
        .unwrap_or_else(|e| panic!("{}'s identity: {e}", machine.name));
    Identity::decode(&file).unwrap_or_else(|e| panic!("{}'s identity: {e}", machine.name))
}

/// What someone who reaches the node's API and holds no key of the team's can do: add a body
/// of their own and write, where `genuine` is indexed, a manifest for it signed by a key of
/// their own.
fn plant_forgery(node: &IpfsNode, genuine: &Manifest, stdout: &[u8]) {
    let body = Body {
        stdout: stdout.to_vec(),
        stderr: Vec::new(),
    }
    .encode();
    let cid = runtime()
        .block_on(kubo(node).add(body.clone()))
        .unwrap_or_else(|e| panic!("add the forged body: {e}"));
    let mut forged = genuine.clone();
    forged.cid = Some(cid);
    forged.body_digest = Digest::of(&body);
    forged.body_size = body.len() as u64;
    forged.created_at_ms = now_ms();
    Identity::from_secret(&[0x5a; 32]).sign(&mut forged);
    runtime()
        .block_on(kubo(node).files_write(&mfs_path(&forged), forged.encode()))
        .unwrap_or_else(|e| panic!("plant the forged manifest: {e}"));
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
fn two_cache_dirs_of_a_swarm_share_entries_through_one_node_without_any_daemon() {
    let world = World::new();
    let node = IpfsNode::start();
    let key = world.swarm_key("team");
    let (a, b) = (
        member(&world, "a", &node, &key),
        member(&world, "b", &node, &key),
    );
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
    // No swarm key: B takes A's entries because it trusts A.
    trust(&b, &identity);

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
    let key = world.swarm_key("team");
    let (a, b) = (
        member(&world, "a", &node, &key),
        member(&world, "b", &node, &key),
    );
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
    let c = member(&world, "c", &node, &key);
    let later = c.cached(&issues).ok();
    assert_eq!(later.stdout, own.stdout);
    assert_eq!(c.stats()["hits"]["ipfs"], 1);
}

/// An answer about no repository its request proves (here a GraphQL query that names its
/// repository in the document) counts as a search: every write, to any repository, makes its
/// IPFS copy out of date for a machine that never heard of the write.
#[test]
fn after_any_write_the_node_no_longer_answers_a_search() {
    let world = World::new();
    let node = IpfsNode::start();
    let key = world.swarm_key("team");
    let a = member(&world, "a", &node, &key);
    let query = [
        "api",
        "graphql",
        "-f",
        "query=query { repository(owner: \"o\", name: \"r\") { issues(states: OPEN) { totalCount } } }",
    ];
    let before_write = a.cached(&query).ok();
    wait_in_ipfs(&a, 1);
    let b = member(&world, "b", &node, &key);
    assert_eq!(b.cached(&query).ok().stdout, before_write.stdout);
    assert_eq!(b.stats()["hits"]["ipfs"], 1, "the answer is in IPFS");

    a.cached(&["issue", "create", "-R", "o/other", "-t", "t", "-b", "x"])
        .ok();
    a.cached(&["issue", "create", "-R", "o/r", "-t", "t", "-b", "x"])
        .ok();
    // C never heard of the writes: only the node's marks can tell it.
    let c = member(&world, "c", &node, &key);
    let before = world.requests();
    let later = c.cached(&query).ok();
    assert!(world.requests() > before, "C asked GitHub");
    assert_ne!(later.stdout, before_write.stdout, "C sees the new count");
    assert_eq!(c.stats()["hits"]["ipfs"], 0);
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

/// Without a swarm key or trusted producers anyone who reaches the node's API can write its
/// index: a manifest signed by a key of their own, naming a body of their own, is not used (and
/// the user hears why, once); what the machine itself added still is.
#[test]
fn without_a_swarm_key_or_trust_list_only_the_machines_own_ipfs_entries_are_used() {
    let world = World::new();
    let node = IpfsNode::start();
    let (probe, b) = (
        with_ipfs(&world, "probe", &node),
        with_ipfs(&world, "b", &node),
    );
    // Where B will look: any machine of this world computes the same key and scope.
    probe.cached(&RELEASES).ok();
    wait_in_ipfs(&probe, 1);
    plant_forgery(
        &node,
        &only_manifest(&probe.cache_dir()),
        b"forged release list\n",
    );

    let before = world.requests();
    let answer = b.cached(&RELEASES).ok();
    assert_eq!(world.requests(), before + 1, "GitHub answered");
    assert!(!contains(&answer.stdout, b"forged"), "{}", answer.out());
    assert_eq!(b.stats()["hits"]["ipfs"], 0);
    let told: Vec<String> = answer
        .err()
        .lines()
        .filter(|l| l.starts_with("ghcache:"))
        .map(str::to_owned)
        .collect();
    assert_eq!(told.len(), 1, "one line: {}", answer.err());
    assert!(told[0].contains("not used"), "{}", told[0]);
    let plain = b.gh(&RELEASES).ok();
    assert_eq!(answer.stdout, plain.stdout, "what gh prints");
    // Told once: B's next pass over another machine's entry is quiet.
    let view = ["repo", "view", "o/r"];
    probe.cached(&view).ok();
    wait_in_ipfs(&probe, 2);
    let before = world.requests();
    let quiet = b.cached(&view).ok();
    assert!(world.requests() > before, "GitHub answered");
    assert!(!quiet.err().contains("ghcache:"), "{}", quiet.err());

    // B's own answer (added by B, replacing the forgery) is used by a machine with B's key.
    wait_in_ipfs(&b, 1);
    let b2 = with_identity_of(&world, "b2", &b, &node);
    let requests = world.requests();
    let own = b2.cached(&RELEASES).ok();
    assert_eq!(world.requests(), requests, "answered from IPFS");
    assert_eq!(own.stdout, plain.stdout);
    assert_eq!(b2.stats()["hits"]["ipfs"], 1);
    assert!(!own.err().contains("ghcache:"), "{}", own.err());
}

/// A machine that uses `node` and signs with `of`'s identity (this machine's other cache dir).
fn with_identity_of(world: &World, name: &str, of: &Machine, node: &IpfsNode) -> Machine {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let machine = with_ipfs(world, name, node);
    // A cache dir that holds files is ghcache's only with its tag.
    let tag = "CACHEDIR.TAG";
    std::fs::copy(of.cache_dir().join(tag), machine.cache_dir().join(tag))
        .unwrap_or_else(|e| panic!("{tag}: {e}"));
    let p2p = machine.cache_dir().join("p2p");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&p2p)
        .unwrap_or_else(|e| panic!("{}: {e}", p2p.display()));
    let file = p2p.join("identity");
    std::fs::write(&file, identity_of(of).encode())
        .and_then(|()| std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)))
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    machine
}

/// With a swarm key, only members write manifests that are used: one written to the node's
/// index without the key is refused, even one that names a body the swarm sealed itself (here
/// another answer's, so a member would have printed the wrong answer).
#[test]
fn with_a_swarm_key_a_manifest_planted_without_it_is_refused() {
    let world = World::new();
    let node = IpfsNode::start();
    let key = world.swarm_key("team");
    let (a, b) = (
        member(&world, "a", &node, &key),
        member(&world, "b", &node, &key),
    );
    let releases = a.cached(&RELEASES).ok();
    wait_in_ipfs(&a, 1);
    let genuine = only_manifest(&a.cache_dir());
    a.cached(&["repo", "view", "o/r"]).ok();
    wait_in_ipfs(&a, 2);
    let view = stored_manifests(&a.cache_dir())
        .into_iter()
        .find(|m| m.key != genuine.key)
        .unwrap_or_else(|| panic!("the view's manifest"));
    // The releases' place in the index, the view's sealed body, a stranger's signature.
    let mut planted = genuine.clone();
    planted.cid = view.cid.clone();
    planted.body_digest = view.body_digest;
    planted.body_size = view.body_size;
    planted.created_at_ms = now_ms();
    Identity::from_secret(&[0x5a; 32]).sign(&mut planted);
    runtime()
        .block_on(kubo(&node).files_write(&mfs_path(&planted), planted.encode()))
        .unwrap_or_else(|e| panic!("plant: {e}"));

    let before = world.requests();
    let answer = b.cached(&RELEASES).ok();
    assert_eq!(world.requests(), before + 1, "GitHub answered");
    assert_eq!(answer.stdout, releases.stdout, "the right answer");
    let stats = b.stats();
    assert_eq!(stats["hits"]["ipfs"], 0, "{stats}");
    assert_eq!(
        stats["corrupt"], 1,
        "the planted manifest was counted: {stats}"
    );
}

/// The user's `max_entry_size` holds for IPFS too: a larger answer is not taken from the node.
#[test]
fn an_entry_over_max_entry_size_is_not_taken_from_ipfs() {
    let world = World::new();
    let node = IpfsNode::start();
    let key = world.swarm_key("team");
    let a = member(&world, "a", &node, &key);
    let fetched = a.cached(&RELEASES).ok();
    wait_in_ipfs(&a, 1);
    let size = only_manifest(&a.cache_dir()).body_size;
    let mut small = member(&world, "small", &node, &key);
    small.set_env("GH_CACHE_MAX_ENTRY_SIZE", &(size - 1).to_string());
    let before = world.requests();
    let answer = small.cached(&RELEASES).ok();
    assert_eq!(world.requests(), before + 1, "GitHub answered");
    assert_eq!(answer.stdout, fetched.stdout);
    assert_eq!(small.stats()["hits"]["ipfs"], 0);
    // The control: with room for it, the node answers.
    let mut roomy = member(&world, "roomy", &node, &key);
    roomy.set_env("GH_CACHE_MAX_ENTRY_SIZE", &size.to_string());
    assert_eq!(roomy.cached(&RELEASES).ok().stdout, fetched.stdout);
    assert_eq!(world.requests(), before + 1, "answered from IPFS");
    assert_eq!(roomy.stats()["hits"]["ipfs"], 1);
}

/// The tier's own cap: an entry over it is not added.
#[test]
fn an_entry_over_the_tiers_cap_is_not_added() {
    let node = IpfsNode::start();
    let (tier, _) = plain_tier(&node, "cap-test");
    let entry = sample_entry(1, "o/r", &[b'x'; 100]);
    let tier = tier.with_max_entry(entry.manifest.body_size - 1);
    let stored = runtime().block_on(tier.store(&entry));
    assert!(stored.is_err(), "{stored:?}");
    let listed = runtime()
        .block_on(kubo(&node).files_read(
            &mfs_path(&entry.manifest),
            1 << 16,
            Duration::from_secs(5),
        ))
        .unwrap_or_else(|e| panic!("read: {e}"));
    assert_eq!(listed, None, "nothing was indexed");
}

/// A tier over `node` for `scope`, without keys, signing and trusting one identity.
fn plain_tier(node: &IpfsNode, scope: &str) -> (ghcache_tier_ipfs::Tier, Identity) {
    let identity = Identity::from_secret(&[7; 32]);
    let producer = identity.id();
    let verify: ghcache_tier_ipfs::Verify = Arc::new(move |manifest: &Manifest| {
        producer::verify(manifest, std::slice::from_ref(&producer))
            .map(drop)
            .map_err(|r| r.to_string())
    });
    let signer = identity.clone();
    let sign: ghcache_tier_ipfs::Sign = Arc::new(move |manifest: &mut Manifest| {
        signer.sign(manifest);
        Ok(())
    });
    let tier = ghcache_tier_ipfs::Tier::new(kubo(node), ScopeId::of(scope), None, verify, sign);
    (tier, identity)
}

/// An entry of `scope` for `key`, answering `stdout`, made `age` ago.
fn entry_of_age(scope: &str, key: u8, stdout: &[u8], age: Duration) -> Entry {
    let mut entry = sample_entry(key, "o/r", stdout);
    entry.manifest.scope_id = ScopeId::of(scope);
    entry.manifest.created_at_ms = now_ms().saturating_sub(age.as_millis() as u64);
    entry
}

/// The node does not grow forever: after a later command's store, an entry that can no longer
/// be served even stale (older than its TTL and `max_stale`) is unpinned and out of the index;
/// a fresh one stays.
#[test]
fn entries_past_max_stale_are_unpinned_after_a_later_store_and_fresh_ones_are_not() {
    let world = World::new();
    let node = IpfsNode::start();
    let mut a = with_ipfs(&world, "a", &node);
    a.set_env("GH_CACHE_SCOPE", "sweep-test");
    a.set_env("GH_CACHE_MAX_STALE", "1h");
    a.cached(&RELEASES).ok();
    wait_in_ipfs(&a, 1);
    let fresh = only_manifest(&a.cache_dir());
    let fresh_cid = fresh.cid.clone().unwrap_or_default();
    // An answer A added three days ago (TTL 60 s): past any use.
    let signer = identity_of(&a);
    let sign: ghcache_tier_ipfs::Sign = Arc::new(move |m: &mut Manifest| {
        signer.sign(m);
        Ok(())
    });
    let verify: ghcache_tier_ipfs::Verify = Arc::new(|_: &Manifest| Ok(()));
    let tier =
        ghcache_tier_ipfs::Tier::new(kubo(&node), ScopeId::of("sweep-test"), None, verify, sign);
    let old = entry_of_age(
        "sweep-test",
        9,
        b"an old answer\n",
        Duration::from_secs(3 * 86_400),
    );
    let old = runtime()
        .block_on(tier.store(&old))
        .unwrap_or_else(|e| panic!("store the old entry: {e}"));
    let old_cid = old.cid.clone().unwrap_or_default();
    assert!(
        node.pinned(&old_cid) && node.pinned(&fresh_cid),
        "both pinned"
    );

    a.cached(&["repo", "view", "o/r"]).ok();
    wait_in_ipfs(&a, 2);
    assert!(
        wait_until(Duration::from_secs(15), || !node.pinned(&old_cid)),
        "the old body is still pinned"
    );
    assert!(node.pinned(&fresh_cid), "the fresh body was unpinned");
    let read = |m: &Manifest| {
        runtime()
            .block_on(kubo(&node).files_read(&mfs_path(m), 1 << 16, Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("read: {e}"))
    };
    assert_eq!(read(&old), None, "the old manifest is out of the index");
    assert!(read(&fresh).is_some(), "the fresh one stays");
    // And the fresh one still answers.
    let mut b = with_identity_of(&world, "b", &a, &node);
    b.set_env("GH_CACHE_SCOPE", "sweep-test");
    b.set_env("GH_CACHE_DEBUG", "1");
    let before = world.requests();
    let hit = b.cached(&RELEASES).ok();
    assert_eq!(
        world.requests(),
        before,
        "answered from IPFS: {}",
        hit.err()
    );
}

/// Bodies that no manifest of the index names any more are unpinned: a replaced answer's, a
/// dropped key's, and (by a sweep) those of an index dropped whole, except a body that the
/// index names again.
#[test]
fn replaced_and_dropped_index_entries_are_unpinned() {
    let node = IpfsNode::start();
    let scope = "evict-test";
    let (tier, _) = plain_tier(&node, scope);
    let hour = Duration::from_secs(3600);
    let store = |entry: &Entry| -> String {
        runtime()
            .block_on(tier.store(entry))
            .unwrap_or_else(|e| panic!("store: {e}"))
            .cid
            .unwrap_or_default()
    };
    let now = Duration::ZERO;
    let first = store(&entry_of_age(scope, 1, b"one\n", now));
    let replaced_by = store(&entry_of_age(scope, 1, b"one, changed\n", now));
    assert!(!node.pinned(&first), "the replaced body is unpinned");
    assert!(node.pinned(&replaced_by));

    let dropped = store(&entry_of_age(scope, 2, b"two\n", now));
    runtime()
        .block_on(tier.invalidate(&Selector::Key(ghcache_core::CacheKey([2; 32]))))
        .unwrap_or_else(|e| panic!("invalidate: {e}"));
    assert!(!node.pinned(&dropped), "the dropped key's body is unpinned");

    let three = store(&entry_of_age(scope, 3, b"three\n", now));
    let again = entry_of_age(scope, 4, b"four\n", now);
    let four = store(&again);
    runtime()
        .block_on(tier.invalidate(&Selector::All))
        .unwrap_or_else(|e| panic!("invalidate all: {e}"));
    // Fetched again after the drop, the same answer: its body is named again.
    assert_eq!(store(&again), four);
    let swept = runtime()
        .block_on(tier.sweep(32, hour))
        .unwrap_or_else(|e| panic!("sweep: {e}"));
    assert!(swept.removed >= 3, "{swept:?}");
    assert!(!node.pinned(&three), "evicted with the index: unpinned");
    assert!(
        !node.pinned(&replaced_by),
        "evicted with the index: unpinned"
    );
    assert!(node.pinned(&four), "named again by the index");
    let missing = runtime()
        .block_on(tier.get(&ghcache_core::CacheKey([3; 32])))
        .unwrap_or_else(|e| panic!("get: {e}"));
    assert!(matches!(missing, ghcache_core::Lookup::Miss));
}

/// A tier told what its lookups are about reads that repository's mark of writes beside the
/// manifest; a manifest about another repository is still judged by its own repository's mark.
/// Either way, an answer made before a write to its repository is not served.
#[test]
fn a_write_keeps_the_old_answer_out_whatever_repository_the_lookup_was_told() {
    let node = IpfsNode::start();
    let scope = "about-test";
    let (tier, _) = plain_tier(&node, scope);
    let entry = entry_of_age(
        scope,
        5,
        b"the list before the write\n",
        Duration::from_secs(1),
    );
    let key = entry.manifest.key;
    let resource = entry.manifest.resource;
    let told = |repo: &str| plain_tier(&node, scope).0.about(repo, resource);
    let rt = runtime();
    rt.block_on(tier.store(&entry))
        .unwrap_or_else(|e| panic!("store: {e}"));
    for repo in ["o/r", "o/other"] {
        let found = rt
            .block_on(told(repo).get(&key))
            .unwrap_or_else(|e| panic!("get: {e}"));
        match found {
            ghcache_core::Lookup::Hit(hit) => assert_eq!(hit.body, entry.body, "{repo}"),
            ghcache_core::Lookup::Miss => panic!("told {repo}: no write yet, a hit"),
        }
    }
    rt.block_on(tier.invalidate(&Selector::Repo("o/r".to_owned())))
        .unwrap_or_else(|e| panic!("invalidate: {e}"));
    for repo in ["o/r", "o/other"] {
        let found = rt
            .block_on(told(repo).get(&key))
            .unwrap_or_else(|e| panic!("get: {e}"));
        assert!(
            matches!(found, ghcache_core::Lookup::Miss),
            "told {repo}: the write to o/r dates the answer"
        );
    }
}
