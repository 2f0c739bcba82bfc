//! Bodies read from an IPFS HTTP gateway where no node API is configured
//! (`GH_CACHE_IPFS_GATEWAY`): the manifest comes from the swarm's announcements, the body by
//! its CID from the gateway, and both are checked as bodies from the API are.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ghcache_tests::ipfs::IpfsNode;
use ghcache_tests::{wait_until, Daemon, Machine, World};

const RELEASES: [&str; 4] = ["release", "list", "-R", "o/r"];

/// Machine `a` adds what it fetches to `node` through the API; machine `b` has only a gateway
/// at `gateway` and a daemon that hears `a`'s announcements. Returns them with their daemons,
/// once `a` has fetched [`RELEASES`], added it to IPFS and announced its CID, and `a`'s daemon
/// is gone (so only IPFS can answer `b`).
fn fetched_by_a_then_gone(
    world: &World,
    node: &IpfsNode,
    gateway: &str,
) -> (Machine, Machine, Daemon) {
    let key = world.swarm_key("team");
    let mut a = world.machine("a");
    a.set_env("GH_CACHE_IPFS", "1");
    a.set_env("GH_CACHE_IPFS_API", &node.api_url());
    let mut b = world.machine("b");
    b.set_env("GH_CACHE_IPFS", "1");
    b.set_env("GH_CACHE_IPFS_GATEWAY", gateway);
    for m in [&mut a, &mut b] {
        m.set_env("GH_CACHE_SWARM_KEY_FILE", &key.display().to_string());
        // The output level's entries alone: gh's own requests would travel through IPFS too,
        // and which of the two a tampered body hits first would be a race.
        m.set_env("GH_CACHE_HTTP", "0");
    }
    let da = a.daemon(&key, &[]);
    let db = b.daemon(&key, &["--bootstrap", &da.addr]);
    assert!(db.wait_peers(1), "{}", db.log());
    let announced_before = db.counters().announcements_received;
    a.cached(&RELEASES).ok();
    let added = wait_until(Duration::from_secs(15), || {
        a.stats()["ipfs_entries"].as_u64().unwrap_or(0) >= 1
    });
    assert!(added, "not added to IPFS: {}", a.stats());
    // Announced once when stored, and again with its CID once it was added to IPFS.
    let heard = wait_until(Duration::from_secs(10), || {
        db.counters().announcements_received >= announced_before + 2
    });
    assert!(heard, "{}", db.log());
    da.stop();
    (a, b, db)
}

#[test]
fn without_an_api_the_body_comes_from_the_gateway_by_its_announced_cid() {
    let world = World::new();
    let node = IpfsNode::start();
    let (a, b, _db) = fetched_by_a_then_gone(&world, &node, &node.gateway_url());
    let requests = world.requests();

    let on_b = b.cached(&RELEASES).ok();
    assert_eq!(world.requests(), requests, "no request reached GitHub");
    let plain = a.gh(&RELEASES).ok();
    assert_eq!(on_b.stdout, plain.stdout, "what gh prints");
    assert_eq!(on_b.err(), "", "nothing of ghcache's on stderr");
    let stats = b.stats();
    assert_eq!(stats["hits"]["ipfs"], 1, "{stats}");
    assert_eq!(stats["hits"]["p2p"], 0, "A was gone: {stats}");
    // A gateway takes no additions: what B fetches from GitHub is not added, and nothing is
    // said about it.
    let fetched = b
        .ghcache(&["--debug", "gh", "pr", "list", "-R", "o/r"])
        .ok();
    assert!(fetched.err().contains("github"), "{}", fetched.err());
    assert!(
        !fetched.err().contains("adding to ipfs"),
        "{}",
        fetched.err()
    );
    assert!(!fetched.err().contains("warning"), "{}", fetched.err());
    let shown = b.ghcache(&["stats"]).ok().out();
    let line = format!(
        "IPFS: enabled (gateway {}, lookups only)",
        node.gateway_url()
    );
    assert!(shown.contains(&line), "{shown}");
}

/// A gateway on loopback that answers every request with `body`; records the request lines.
fn lying_gateway(body: &'static [u8]) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let line = head.lines().next().unwrap_or("").to_owned();
            if let Ok(mut seen) = record.lock() {
                seen.push(line);
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    (format!("http://127.0.0.1:{port}"), seen)
}

#[test]
fn a_gateway_that_sends_another_body_is_refused_and_github_answers() {
    let world = World::new();
    let node = IpfsNode::start();
    let (gateway, seen) = lying_gateway(b"not the body that was announced");
    let (a, b, _db) = fetched_by_a_then_gone(&world, &node, &gateway);
    let requests = world.requests();

    let answer = b.cached(&RELEASES).ok();
    assert_eq!(world.requests(), requests + 1, "GitHub answered");
    let plain = a.gh(&RELEASES).ok();
    assert_eq!(answer.stdout, plain.stdout, "the right answer");
    let stats = b.stats();
    assert_eq!(stats["hits"]["ipfs"], 0, "{stats}");
    assert_eq!(stats["corrupt"], 1, "the bad body was counted: {stats}");
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        seen.iter()
            .any(|l| l.starts_with("GET /ipfs/") && l.ends_with(" HTTP/1.1")),
        "the gateway was asked for the announced CID: {seen:?}"
    );
}
