//! A keeper that follows (`ghcache daemon --keep --follow`): the repositories its runners asked
//! about are probed with conditional requests, which the fake GitHub answers 304 while nothing
//! changed; a change made on github.com (no webhook) reaches the runners within a round.

use std::time::{Duration, Instant};

use fake_github::RequestRecord;
use ghcache_tests::{wait_until, Daemon, Machine, World};

const LIST: [&str; 6] = ["pr", "list", "-R", "o/r", "--json", "number,title"];
/// The keeper's own token: its probes are told from the runners' requests by it.
const KEEPER_TOKEN: &str = "ghp_keeper_follows";

fn machine(world: &World, name: &str) -> Machine {
    let mut m = world.machine(name);
    m.set_env("GH_CACHE_SCOPE", "team");
    m
}

/// A keeper following every second and runner A connected to it, A's answer about o/r cached
/// (so the keeper follows o/r).
fn a_followed_fleet(world: &World) -> (Daemon, Machine, Daemon, String) {
    let key = world.swarm_key("team");
    let mut k = machine(world, "keeper");
    k.set_env("GH_TOKEN", KEEPER_TOKEN);
    let dk = k.daemon(&key, &["--keep", "--follow", "--follow-every", "1s"]);
    let a = machine(world, "a");
    let da = a.daemon(&key, &["--bootstrap", &dk.addr]);
    assert!(dk.wait_peers(1), "{}", dk.log());
    let old = a.cached(&LIST).ok().out();
    (dk, a, da, old)
}

/// The keeper's probes that reached the fake GitHub so far.
fn probes(world: &World) -> Vec<RequestRecord> {
    world
        .github
        .requests()
        .into_iter()
        .filter(|r| r.token.as_deref() == Some(KEEPER_TOKEN))
        .collect()
}

#[test]
fn an_outside_change_reaches_the_runners_within_a_round_and_unchanged_probes_are_304s() {
    let world = World::new();
    let (dk, a, da, old) = a_followed_fleet(&world);

    // The keeper follows o/r once A's answer about it was announced; probes of the unchanged
    // repository are answered 304, free.
    let probes = || probes(&world);
    let settled = wait_until(Duration::from_secs(20), || {
        probes().iter().filter(|r| r.status == 304).count() >= 5
    });
    assert!(settled, "the keeper's probes: {:?}\n{}", probes(), dk.log());
    assert!(
        probes().iter().all(|r| r.path.starts_with("/repos/o/r")),
        "only the repository asked about is probed: {:?}",
        probes()
    );
    assert!(
        probes()
            .iter()
            .filter(|r| r.status == 304)
            .all(|r| !r.charged),
        "304s are free"
    );
    // Without a change, A's copy stands (the test can fail).
    assert_eq!(a.cached(&LIST).ok().out(), old);

    world.github.retitle_pr("o/r", 2, "Retitled on github.com");
    let changed = Instant::now();
    let mut now = String::new();
    let heard = wait_until(Duration::from_secs(15), || {
        now = a.cached(&LIST).ok().out();
        now.contains("Retitled on github.com")
    });
    assert!(
        heard,
        "A prints the new title ({:?} after the change): {now}\nkeeper: {}\nA: {}",
        changed.elapsed(),
        dk.log(),
        da.log()
    );
    let status = dk.status();
    let source = status
        .write_sources
        .iter()
        .find(|s| s.name.starts_with("follow"))
        .unwrap_or_else(|| panic!("the keeper names its follow source: {status:?}"));
    assert!(source.writes >= 1, "{source:?}");
    assert!(
        source.counts.get("changed").copied().unwrap_or(0) >= 1,
        "{source:?}"
    );
}

#[test]
fn following_needs_a_token() {
    let world = World::new();
    let key = world.swarm_key("team");
    let mut m = machine(&world, "k");
    m.unset_env("GH_TOKEN");
    m.unset_env("GITHUB_TOKEN");
    let key_arg = key.display().to_string();
    let run = m.ghcache(&["daemon", "--no-mdns", "--swarm-key", &key_arg, "--follow"]);
    assert_eq!(run.code, 2, "{}", run.err());
    assert!(run.err().contains("GH_TOKEN"), "{}", run.err());
}

#[test]
fn a_rate_limited_probe_pauses_following() {
    let world = World::new();
    let (dk, _a, _da, _) = a_followed_fleet(&world);
    let probes = || probes(&world).len();
    assert!(
        wait_until(Duration::from_secs(20), || probes() >= 5),
        "{}",
        dk.log()
    );

    // GitHub's primary limit is spent: 403, `x-ratelimit-remaining: 0`, reset in an hour.
    world
        .github
        .set_fault(Some(ghcache_tests::Fault::RateLimited));
    assert!(
        wait_until(Duration::from_secs(10), || dk.log().contains("pausing for")),
        "{}",
        dk.log()
    );
    world.github.set_fault(None);
    let paused_at = probes();
    // Rounds come every second: none is sent while the pause lasts (15 minutes at most).
    let probed_again = wait_until(Duration::from_secs(4), || probes() > paused_at);
    assert!(!probed_again, "no probe while paused: {}", dk.log());
    let status = dk.status();
    let source = status
        .write_sources
        .iter()
        .find(|s| s.name.starts_with("follow"))
        .unwrap_or_else(|| panic!("{status:?}"));
    assert_eq!(source.counts.get("backoffs"), Some(&1), "{source:?}");
}
