//! Invalidations arrive at a peer that was away: a daemon that was stopped while a write went
//! out asks, when it is back, what it missed, and its machine no longer serves the answer from
//! before the write.

use std::time::{Duration, Instant};

use ghcache_tests::{wait_until, Machine, World};

const ISSUES: [&str; 4] = ["issue", "list", "-R", "o/r"];

fn machine(world: &World, name: &str) -> Machine {
    let mut m = world.machine(name);
    m.set_env("GH_CACHE_SCOPE", "team");
    m
}

#[test]
fn a_daemon_that_was_down_during_a_write_catches_up_when_it_is_back() {
    let world = World::new();
    let key = world.swarm_key("team");
    // Clocks agree here: a catch-up asks from the time B stopped less the clock skew, and the
    // seed, started a moment before, can vouch only for what came after its start.
    let (mut s, mut a, mut b) = (
        machine(&world, "seed"),
        machine(&world, "a"),
        machine(&world, "b"),
    );
    for m in [&mut s, &mut a, &mut b] {
        m.set_env("GH_CACHE_CLOCK_SKEW", "10ms");
    }
    let ds = s.daemon(&key, &[]);
    let da = a.daemon(&key, &["--bootstrap", &ds.addr]);
    let db = b.daemon(&key, &["--bootstrap", &ds.addr]);
    assert!(ds.wait_peers(2), "{}", ds.log());
    let old = b.cached(&ISSUES).ok().out();

    // B's machine sleeps; A files an issue through ghcache, which tells the swarm.
    db.stop();
    a.cached(&[
        "issue",
        "create",
        "-R",
        "o/r",
        "-t",
        "Filed while B slept",
        "-b",
        "b",
    ])
    .ok();
    assert!(
        wait_until(Duration::from_secs(10), || ds
            .counters()
            .invalidations_received
            >= 1),
        "the seed heard A's write: {}",
        ds.log()
    );
    // Without its daemon, B's machine still serves its copy (the test can fail).
    assert_eq!(b.cached(&ISSUES).ok().out(), old, "B's copy from before");

    let back = Instant::now();
    let db = b.daemon(&key, &["--bootstrap", &ds.addr]);
    let mut now = String::new();
    let caught_up = wait_until(Duration::from_secs(15), || {
        now = b.cached(&ISSUES).ok().out();
        now.contains("Filed while B slept")
    });
    assert!(
        caught_up,
        "B prints the issue filed while it was away ({:?} after its daemon started): {now}\n{}",
        back.elapsed(),
        db.log()
    );
    assert!(db.log().contains("caught up on "), "{}", db.log());
    drop(da);
}

#[test]
fn a_daemon_whose_peers_cannot_tell_what_it_missed_drops_its_copies() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (s, b) = (machine(&world, "seed"), machine(&world, "b"));
    let ds = s.daemon(&key, &[]);
    let db = b.daemon(&key, &["--bootstrap", &ds.addr]);
    assert!(db.wait_peers(1), "{}", db.log());
    let old = b.cached(&ISSUES).ok().out();
    db.stop();
    // Everyone B knew is gone while it was away: the new seed started after B stopped, and
    // cannot say what was written before.
    ds.stop();
    let s2 = machine(&world, "seed-2");
    let ds2 = s2.daemon(&key, &[]);
    let db = b.daemon(&key, &["--bootstrap", &ds2.addr]);
    let dropped = wait_until(Duration::from_secs(30), || {
        db.log().contains("dropping every stored copy")
    });
    assert!(dropped, "{}", db.log());
    assert!(
        wait_until(Duration::from_secs(10), || db
            .status()
            .out_of_touch_since_ms
            .is_none()),
        "{}",
        db.log()
    );
    // The drop is applied to the store beside the daemon's loop: B's next commands ask GitHub
    // once it is.
    let before = world.requests();
    let asked = wait_until(Duration::from_secs(10), || {
        assert_eq!(b.cached(&ISSUES).ok().out(), old, "the same answer");
        world.requests() > before
    });
    assert!(asked, "B's copy was dropped: {}", db.log());
}

/// The seed's second address, the only one B knows: the namespace's firewall cuts B off by
/// it, both ways, and A, which reaches the seed at its first, keeps hearing it.
const SEED_IP_FOR_B: &str = "127.0.0.2";

#[test]
fn a_daemon_cut_off_until_its_connections_died_catches_up_when_it_is_back() {
    let ns = match ghcache_tests::Netns::enter("cutoff") {
        Ok(ns) => ns,
        Err(reason) => {
            ghcache_tests::skip(&format!(
                "cutting a peer off needs a network namespace and iptables (root, iproute2, \
                 iptables): {reason}"
            ));
            return;
        }
    };
    {
        let world = World::new();
        let key = world.swarm_key("team");
        let (s, a, b) = (
            machine(&world, "seed"),
            machine(&world, "a"),
            machine(&world, "b"),
        );
        let second = format!("/ip4/{SEED_IP_FOR_B}/tcp/0");
        let ds = s.daemon(&key, &["--listen", &second]);
        let seed_at = |ip: &str| {
            ds.status()
                .listen_addrs
                .iter()
                .find(|addr| addr.contains(&format!("/{ip}/")))
                .map(|addr| format!("{addr}/p2p/{}", ds.peer_id))
                .unwrap_or_else(|| panic!("the seed listens on {ip}: {}", ds.log()))
        };
        let (seed_for_a, seed_for_b) = (seed_at("127.0.0.1"), seed_at(SEED_IP_FOR_B));
        // Both runners dial out only (as runners behind NAT): the seed is B's one connection.
        let da = a.daemon_on(
            &key,
            ghcache_tests::Listen::Nowhere,
            &["--bootstrap", &seed_for_a],
        );
        let db = b.daemon_on(
            &key,
            ghcache_tests::Listen::Nowhere,
            &["--bootstrap", &seed_for_b],
        );
        assert!(db.wait_peers(1), "{}", db.log());
        assert!(ds.wait_peers(2), "{}", ds.log());
        let old = b.cached(&ISSUES).ok().out();

        ns.cut_off(SEED_IP_FOR_B).unwrap_or_else(|e| panic!("{e}"));
        let gone = wait_until(Duration::from_secs(40), || {
            db.status().connected_peers.is_empty()
        });
        assert!(gone, "B's connection died: {}", db.log());
        a.cached(&[
            "issue",
            "create",
            "-R",
            "o/r",
            "-t",
            "Filed while B was cut off",
            "-b",
            "b",
        ])
        .ok();
        assert!(
            wait_until(Duration::from_secs(10), || ds
                .counters()
                .invalidations_received
                >= 1),
            "the seed heard A's write: {}",
            ds.log()
        );
        assert_eq!(
            b.cached(&ISSUES).ok().out(),
            old,
            "cut off, B serves its copy"
        );
        assert!(
            db.status().out_of_touch_since_ms.is_some(),
            "B knows it may have missed writes: {}",
            db.log()
        );

        ns.restore(SEED_IP_FOR_B).unwrap_or_else(|e| panic!("{e}"));
        let back = Instant::now();
        let mut now = String::new();
        let caught_up = wait_until(Duration::from_secs(30), || {
            now = b.cached(&ISSUES).ok().out();
            now.contains("Filed while B was cut off")
        });
        assert!(
            caught_up,
            "B prints the issue filed while it was cut off ({:?} after the network came back): \
             {now}\n{}",
            back.elapsed(),
            db.log()
        );
        assert!(db.log().contains("caught up"), "{}", db.log());
        assert!(
            wait_until(Duration::from_secs(10), || db
                .status()
                .out_of_touch_since_ms
                .is_none()),
            "{}",
            db.log()
        );
        drop((da, db, ds));
    }
    drop(ns);
}
