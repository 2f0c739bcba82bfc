//! GitHub's webhook deliveries to a keeper (`ghcache daemon --keep --webhook ADDR`): a write
//! made on github.com reaches every connected runner, which then prints the new answer; what
//! is not a signed, new delivery of at most 25 MB drops nothing.
//!
//! The fake GitHub delivers as GitHub does (`X-GitHub-Event`, `X-GitHub-Delivery`,
//! `X-Hub-Signature-256`), for changes made from outside: the real gh then lists the new title.

use std::time::{Duration, Instant};

use fake_github::Signing;
use ghcache_tests::{wait_until, Daemon, Machine, World};

const SECRET: &str = "the webhook's secret, as set on GitHub";
const LIST: [&str; 6] = ["pr", "list", "-R", "o/r", "--json", "number,title"];

/// A machine of the team's scope.
fn machine(world: &World, name: &str) -> Machine {
    let mut m = world.machine(name);
    m.set_env("GH_CACHE_SCOPE", "team");
    m
}

/// A keeper that takes deliveries, and the URL GitHub delivers to.
fn keeper(world: &World, key: &std::path::Path) -> (Daemon, String) {
    let (_, daemon, url) = keeper_machine(world, key);
    (daemon, url)
}

/// [`keeper`], with its machine.
fn keeper_machine(world: &World, key: &std::path::Path) -> (Machine, Daemon, String) {
    let mut k = machine(world, "keeper");
    k.set_env("GH_CACHE_WEBHOOK_SECRET", SECRET);
    let dk = k.daemon(key, &["--keep", "--webhook", "127.0.0.1:0"]);
    let status = dk.status();
    let source = status
        .write_sources
        .first()
        .unwrap_or_else(|| panic!("the keeper names its webhook: {}", dk.log()));
    let addr = source
        .name
        .strip_prefix("webhook on ")
        .unwrap_or_else(|| panic!("{}", source.name));
    let url = format!("http://{addr}/");
    (k, dk, url)
}

/// The keeper's webhook counts by name.
fn count(keeper: &Daemon, name: &str) -> u64 {
    let status = keeper.status();
    let source = status.write_sources.first();
    source
        .and_then(|s| s.counts.get(name).copied())
        .unwrap_or(0)
}

#[test]
fn a_signed_delivery_to_the_keeper_reaches_every_connected_runner() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (dk, url) = keeper(&world, &key);
    let runners: Vec<Machine> = ["a", "b"].iter().map(|n| machine(&world, n)).collect();
    let daemons: Vec<Daemon> = runners
        .iter()
        .map(|m| m.daemon(&key, &["--bootstrap", &dk.addr]))
        .collect();
    assert!(dk.wait_peers(2), "{}", dk.log());
    let old = runners[0].cached(&LIST).ok().out();
    assert_eq!(runners[1].cached(&LIST).ok().out(), old);

    // Without a delivery, a change on github.com is not heard: the cached answer stands.
    world.github.retitle_pr("o/r", 2, "Retitled once");
    for m in &runners {
        assert_eq!(m.cached(&LIST).ok().out(), old, "{}: cached", m.name);
    }

    world.github.set_webhook(Some(&url), SECRET.as_bytes());
    world.github.retitle_pr("o/r", 2, "Retitled twice");
    let delivered = world.github.wait_deliveries(1, Duration::from_secs(10));
    let answered = Instant::now();
    assert_eq!(
        delivered.first().and_then(|d| d.status),
        Some(202),
        "{delivered:?}\n{}",
        dk.log()
    );
    for (m, d) in runners.iter().zip(&daemons) {
        let mut printed = String::new();
        let heard = wait_until(Duration::from_secs(10), || {
            printed = m.cached(&LIST).ok().out();
            printed.contains("Retitled twice")
        });
        assert!(
            heard,
            "{} prints the new title after the delivery ({:?} after it): {printed}\n{}",
            m.name,
            answered.elapsed(),
            d.log()
        );
        assert!(d.counters().invalidations_received >= 1, "{}", d.log());
    }
    assert_eq!(count(&dk, "deliveries"), 1);
    assert!(dk.log().contains("pull_request delivery"), "{}", dk.log());
}

#[test]
fn deliveries_that_are_forged_replayed_or_oversized_drop_nothing() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (k, dk, url) = keeper_machine(&world, &key);
    let a = machine(&world, "a");
    let da = a.daemon(&key, &["--bootstrap", &dk.addr]);
    assert!(dk.wait_peers(1), "{}", dk.log());
    world.github.set_webhook(Some(&url), SECRET.as_bytes());
    let old = a.cached(&LIST).ok().out();

    let edit = r#"{"action":"edited","number":2,"pull_request":{"number":2},"repository":{"full_name":"o/r"}}"#;
    for signing in [Signing::Wrong, Signing::Missing] {
        let status = world
            .github
            .send_delivery("pull_request", edit.as_bytes().to_vec(), signing);
        assert_eq!(status, Some(401), "{signing:?}");
    }
    assert_eq!(world.github.send_oversized(26 << 20, true), Some(413));
    assert_eq!(world.github.send_oversized(26 << 20, false), Some(413));
    let before = world.requests();
    assert_eq!(a.cached(&LIST).ok().out(), old, "nothing was dropped");
    assert_eq!(world.requests(), before, "answered from the cache");
    assert_eq!(count(&dk, "bad_signatures"), 2);
    assert_eq!(count(&dk, "oversized"), 2);
    assert_eq!(da.counters().invalidations_received, 0, "{}", da.log());

    // A real delivery is taken (the test can fail); the same delivery again is not.
    world.github.retitle_pr("o/r", 2, "Retitled");
    let delivered = world.github.wait_deliveries(1, Duration::from_secs(10));
    let id = delivered.first().map(|d| d.id.clone()).unwrap_or_default();
    assert_eq!(delivered.first().and_then(|d| d.status), Some(202));
    let mut now = String::new();
    assert!(wait_until(Duration::from_secs(10), || {
        now = a.cached(&LIST).ok().out();
        now.contains("Retitled")
    }));
    let heard = da.counters().invalidations_received;
    assert_eq!(world.github.redeliver(&id), Some(200));
    let before = world.requests();
    assert_eq!(a.cached(&LIST).ok().out(), now);
    assert_eq!(world.requests(), before, "the replay dropped nothing");
    assert_eq!(count(&dk, "replayed"), 1);
    assert_eq!(da.counters().invalidations_received, heard);

    // What the keeper's operator reads.
    let status = k.ghcache(&["daemon", "status"]).ok().out();
    let heard_line = status
        .lines()
        .find(|l| l.starts_with("writes heard"))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        heard_line.contains(
            &url.trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string()
        ),
        "{status}"
    );
    assert!(heard_line.contains(": 1 ("), "one write told of: {status}");
    for (name, n) in [
        ("deliveries", 1),
        ("bad signatures", 2),
        ("oversized", 2),
        ("replayed", 1),
    ] {
        let listed = status
            .lines()
            .any(|l| l.trim_start().starts_with(name) && l.trim_end().ends_with(&format!(" {n}")));
        assert!(listed, "{name} {n}: {status}");
    }
}

#[test]
fn a_webhook_needs_a_secret_and_a_read_write_daemon() {
    let world = World::new();
    let key = world.swarm_key("team");
    let m = machine(&world, "k");
    let key_arg = key.display().to_string();
    let base = [
        "daemon",
        "--no-mdns",
        "--swarm-key",
        &key_arg,
        "--webhook",
        "127.0.0.1:0",
    ];
    let run = m.ghcache(&base);
    assert_eq!(run.code, 2, "{}", run.err());
    assert!(
        run.err().contains("GH_CACHE_WEBHOOK_SECRET"),
        "{}",
        run.err()
    );

    let mut m = m;
    m.set_env("GH_CACHE_WEBHOOK_SECRET", SECRET);
    let run = m.ghcache(
        &[
            &base[..],
            &["--read-only", "--listen", "/ip4/127.0.0.1/tcp/0"],
        ]
        .concat(),
    );
    assert_ne!(run.code, 0, "{}", run.err());
    assert!(run.err().contains("read-only"), "{}", run.err());
}
