//! After a write, one fetch per swarm, not one per runner: the first machine that reads again
//! fetches, and its peers take that answer at once, because it names the write as the last
//! invalidation its producer had seen before it fetched. Without that, a peer's answer made
//! within the clock skew after a write is refused, and every runner asks GitHub again.

use std::time::Duration;

use ghcache_tests::{wait_until, Daemon, World};

const ISSUES: [&str; 4] = ["issue", "list", "-R", "o/r"];

#[test]
fn after_a_write_the_swarm_fetches_once_and_a_later_write_still_counts() {
    let world = World::new();
    let key = world.swarm_key("team");
    let mut machines = ["a", "b", "c"].map(|name| world.machine(name));
    // A margin far longer than the test: an answer of A's made after the write could only be
    // taken by B and C by naming the write.
    for machine in &mut machines {
        machine.set_env("GH_CACHE_CLOCK_SKEW", "60s");
    }
    let [a, b, c] = &machines;
    let da = a.daemon(&key, &[]);
    let db = b.daemon(&key, &["--bootstrap", &da.addr]);
    let dc = c.daemon(&key, &["--bootstrap", &da.addr]);
    assert!(db.wait_peers(1) && dc.wait_peers(1), "{}", db.log());
    let mut debug = String::new();
    for machine in [a, b, c] {
        let mut verbose = machine.clone();
        verbose.set_env("GH_CACHE_DEBUG", "1");
        debug += &verbose.cached(&ISSUES).ok().err();
    }
    assert_eq!(
        world.requests(),
        1,
        "B and C took A's first answer: {debug}"
    );

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
    // B and C heard of it and dropped the answer from before it.
    for (machine, daemon) in [(b, &db), (c, &dc)] {
        assert!(
            wait_until(Duration::from_secs(10), || machine.stats()["entries"] == 0),
            "{} never dropped the old list: {}",
            machine.name,
            daemon.log()
        );
    }
    let before = world.requests();
    let on_a = a.cached(&ISSUES).ok();
    assert_eq!(world.requests(), before + 1, "A fetched the new list");
    assert!(on_a.out().contains("written on A"), "{}", on_a.out());
    stored(&da, 2);
    let on_b = b.cached(&ISSUES).ok();
    let on_c = c.cached(&ISSUES).ok();
    assert_eq!(
        world.requests(),
        before + 1,
        "B and C took A's answer made after the write"
    );
    assert_eq!(on_b.stdout, on_a.stdout, "byte-identical on B");
    assert_eq!(on_c.stdout, on_a.stdout, "byte-identical on C");

    // A write that only B knows of (its peers are not told): A's answer names the write before
    // it, not this one, so B no longer takes it and asks GitHub.
    let mut alone = b.clone();
    alone.set_env("GH_CACHE_P2P", "0");
    alone
        .cached(&[
            "issue",
            "create",
            "-R",
            "o/r",
            "-t",
            "written on B",
            "-b",
            "y",
        ])
        .ok();
    let before = world.requests();
    let after = b.cached(&ISSUES).ok();
    assert_eq!(world.requests(), before + 1, "B asked GitHub again");
    assert!(after.out().contains("written on B"), "{}", after.out());
}

/// Waits until A's daemon holds the `n`th answer A fetched, which it then announces.
fn stored(daemon: &Daemon, n: u64) {
    assert!(
        wait_until(Duration::from_secs(10), || daemon.counters().local_stores
            >= n),
        "A's daemon never got A's answer: {}",
        daemon.log()
    );
}
