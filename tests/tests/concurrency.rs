//! N processes that miss the same key at once make one GitHub request.

use std::time::Duration;

use ghcache_tests::{ghcache_bin, spawn_piped, wait_piped, World};

#[test]
fn twenty_concurrent_identical_misses_make_one_request() {
    let world = World::new();
    let machine = world.machine("herd");
    // Latency keeps the first fetch in flight while the others arrive.
    world.github.set_latency(Duration::from_millis(400));
    let args = ["repo", "view", "o/r", "--json", "name,description"];
    let expected = machine.gh(&args).ok().stdout;
    let per_call = world.requests();
    assert!(per_call >= 1);
    world.github.clear_log();
    let children: Vec<_> = (0..20)
        .map(|_| spawn_piped(machine.command(ghcache_bin()).arg("gh").args(args)))
        .collect();
    let runs: Vec<_> = children.into_iter().map(wait_piped).collect();
    world.github.set_latency(Duration::ZERO);
    for run in &runs {
        assert_eq!(run.code, 0, "{}", run.err());
        assert_eq!(run.stdout, expected);
    }
    assert_eq!(
        world.requests(),
        per_call,
        "20 processes made the requests of one gh call: {:?}",
        world.github.requests()
    );
    let stats = machine.stats();
    assert_eq!(stats["misses"], 1);
    assert_eq!(stats["hits"]["local"], 19);
}
