//! Longer freshness where writes are heard: a runner connected to a keeper whose webhook hears
//! GitHub's writes serves its answers past their TTL (`GH_CACHE_TTL_LIST=1s`) up to the heard
//! TTL, without asking GitHub; a write the webhook delivers still reaches it; without a source,
//! or once the keeper is gone, the TTL holds again.
//!
//! What the user sees is asserted: what `ghcache gh` prints, the requests that reached the fake
//! GitHub, and the debug line that names the heard TTL.

use std::time::{Duration, Instant};

use ghcache_core::now_ms;
use ghcache_tests::{wait_until, Daemon, Machine, World};

const SECRET: &str = "the webhook's secret, as set on GitHub";
const LIST: [&str; 6] = ["pr", "list", "-R", "o/r", "--json", "number,title"];
/// The clock skew the runner allows (the default): an answer is served longer only if it was
/// made at least this long after writes were heard.
const SKEW_MS: u64 = 2_000;

fn machine(world: &World, name: &str) -> Machine {
    let mut m = world.machine(name);
    m.set_env("GH_CACHE_SCOPE", "team");
    m
}

/// A keeper (taking webhook deliveries when `webhook`), and the URL GitHub delivers to.
fn keeper(world: &World, key: &std::path::Path, webhook: bool) -> (Daemon, Option<String>) {
    let mut k = machine(world, "keeper");
    if !webhook {
        return (k.daemon(key, &["--keep"]), None);
    }
    k.set_env("GH_CACHE_WEBHOOK_SECRET", SECRET);
    let dk = k.daemon(key, &["--keep", "--webhook", "127.0.0.1:0"]);
    let status = dk.status();
    let name = status
        .write_sources
        .first()
        .map(|s| s.name.clone())
        .unwrap_or_else(|| panic!("the keeper names its webhook: {}", dk.log()));
    let addr = name.trim_start_matches("webhook on ").to_owned();
    (dk, Some(format!("http://{addr}/")))
}

/// A runner whose lists live a second, and ten minutes while their writes are heard, with its
/// daemon connected to `keeper`.
fn runner(world: &World, key: &std::path::Path, keeper: &Daemon) -> (Machine, Daemon) {
    let mut a = machine(world, "a");
    a.set_env("GH_CACHE_TTL_LIST", "1s");
    a.set_env("GH_CACHE_HEARD_TTL_LIST", "10m");
    a.set_env("GH_CACHE_DEBUG", "1");
    let da = a.daemon(key, &["--bootstrap", &keeper.addr]);
    assert!(keeper.wait_peers(1), "{}", keeper.log());
    (a, da)
}

/// Waits until the runner's daemon says the keeper's webhook is heard; returns since when
/// (ms since the epoch).
fn heard_through(runner: &Daemon, keeper: &Daemon) -> u64 {
    let mut since = None;
    let heard = wait_until(Duration::from_secs(20), || {
        since = runner
            .status()
            .heard
            .iter()
            .find(|h| h.by == keeper.peer_id && h.kind == "webhook")
            .map(|h| h.since_ms);
        since.is_some()
    });
    assert!(
        heard,
        "the runner hears the keeper's webhook: {:?}\n{}",
        runner.status().heard,
        runner.log()
    );
    since.unwrap_or_default()
}

/// Waits until the clock passes `at_ms`.
fn wait_for_the_clock(at_ms: u64) {
    let passed = wait_until(Duration::from_secs(30), || now_ms() >= at_ms);
    assert!(passed, "the clock passes {at_ms}");
}

/// Caches the list on `a` from GitHub, then waits until the answer is past its 1 s TTL; the
/// answer printed.
fn cache_then_outlive_the_ttl(world: &World, a: &Machine) -> String {
    let before = world.requests();
    let first = a.cached(&LIST).ok();
    assert!(world.requests() > before, "the first answer is GitHub's");
    assert!(first.out().contains("\"title\""), "{}", first.out());
    wait_for_the_clock(now_ms() + 1_500);
    first.out()
}

#[test]
fn a_runner_serves_past_its_ttl_while_the_keepers_webhook_hears_writes_and_never_past_one() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (dk, url) = keeper(&world, &key, true);
    let url = url.unwrap_or_default();
    world.github.set_webhook(Some(&url), SECRET.as_bytes());
    let (a, da) = runner(&world, &key, &dk);
    let since = heard_through(&da, &dk);
    wait_for_the_clock(since + SKEW_MS + 200);

    // Past its TTL, the answer is served from the cache: GitHub is not asked.
    let old = cache_then_outlive_the_ttl(&world, &a);
    let before = world.requests();
    let again = a.cached(&LIST).ok();
    assert_eq!(again.out(), old, "the same bytes");
    assert_eq!(world.requests(), before, "no request reached GitHub");
    assert!(
        again.err().contains("local hit under the heard TTL"),
        "the debug line says why: {}",
        again.err()
    );
    let status = a.ghcache(&["daemon", "status"]).ok().out();
    assert!(status.contains("longer freshness on"), "{status}");
    assert!(
        status.contains(&format!("webhook of peer {}", dk.peer_id)),
        "{status}"
    );
    assert!(
        status.contains("list 10m"),
        "the heard TTLs in force: {status}"
    );

    // A write made on github.com and delivered to the keeper still reaches the runner: the
    // longer freshness never outlives a write that was heard.
    world.github.retitle_pr("o/r", 2, "Retitled on github.com");
    let delivered = world.github.wait_deliveries(1, Duration::from_secs(10));
    assert_eq!(
        delivered.first().and_then(|d| d.status),
        Some(202),
        "{}",
        dk.log()
    );
    let mut now = String::new();
    let reached = wait_until(Duration::from_secs(10), || {
        now = a.cached(&LIST).ok().out();
        now.contains("Retitled on github.com")
    });
    assert!(
        reached,
        "the runner prints the new title: {now}\n{}",
        da.log()
    );
}

#[test]
fn without_a_source_of_writes_an_answer_past_its_ttl_is_asked_of_github() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (dk, _) = keeper(&world, &key, false);
    let (a, da) = runner(&world, &key, &dk);
    // As long as the runner with a webhook waited before it cached.
    let connected = now_ms();
    wait_for_the_clock(connected + SKEW_MS + 200);
    assert!(da.status().heard.is_empty(), "{:?}", da.status().heard);

    cache_then_outlive_the_ttl(&world, &a);
    let before = world.requests();
    let again = a.cached(&LIST).ok();
    assert!(world.requests() > before, "the TTL holds: GitHub is asked");
    assert!(!again.err().contains("heard"), "{}", again.err());
    let status = a.ghcache(&["daemon", "status"]).ok().out();
    assert!(status.contains("longer freshness off"), "{status}");
}

#[test]
fn when_the_keeper_stops_the_runner_falls_back_to_its_ttl_at_once() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (dk, url) = keeper(&world, &key, true);
    world
        .github
        .set_webhook(Some(&url.unwrap_or_default()), SECRET.as_bytes());
    let (a, da) = runner(&world, &key, &dk);
    let since = heard_through(&da, &dk);
    wait_for_the_clock(since + SKEW_MS + 200);
    cache_then_outlive_the_ttl(&world, &a);
    let before = world.requests();
    assert!(a.cached(&LIST).ok().err().contains("under the heard TTL"));
    assert_eq!(
        world.requests(),
        before,
        "served longer while the keeper vouches"
    );

    // The runner's daemon hears no more writes: its commands go back to their TTLs, well
    // before the report it wrote last could expire (30 s after it was written).
    dk.stop();
    let stopped = Instant::now();
    let mut last = String::new();
    let asked = wait_until(Duration::from_secs(10), || {
        last = a.cached(&LIST).ok().err();
        world.requests() > before
    });
    assert!(
        asked,
        "a request reached GitHub within 10 s of the keeper's stop ({:?}): {last}\n{}",
        stopped.elapsed(),
        da.log()
    );
    assert!(last.contains("fetched from github"), "{last}");
    assert!(da.status().heard.is_empty(), "{:?}", da.status().heard);
}

/// The keeper's own token: its follow probes are told from the runner's requests by it.
const KEEPER_TOKEN: &str = "ghp_keeper_follows";

#[test]
fn with_a_following_keeper_only_answers_made_since_a_repository_is_followed_live_longer() {
    let world = World::new();
    let key = world.swarm_key("team");
    let mut k = machine(&world, "keeper");
    k.set_env("GH_TOKEN", KEEPER_TOKEN);
    let dk = k.daemon(&key, &["--keep", "--follow", "--follow-every", "1s"]);
    let (a, da) = runner(&world, &key, &dk);
    let asked = || {
        let requests = world.github.requests();
        let runner = requests
            .iter()
            .filter(|r| r.token.as_deref() != Some(KEEPER_TOKEN));
        runner.count()
    };

    // The first answer about o/r is what makes the keeper follow it: it was made before, and
    // a write before it may have gone unheard. The runner hears of it at its next catch-up
    // with the keeper (every 30 s).
    cache_then_outlive_the_ttl(&world, &a);
    let mut since = None;
    let followed = wait_until(Duration::from_secs(45), || {
        since = da
            .status()
            .heard
            .iter()
            .find(|h| h.kind == "follow" && h.repo.as_deref() == Some("o/r"))
            .map(|h| h.since_ms);
        since.is_some()
    });
    assert!(followed, "the keeper follows o/r: {}", dk.log());
    wait_for_the_clock(since.unwrap_or_default() + SKEW_MS + 200);
    let before = asked();
    let second = a.cached(&LIST).ok();
    assert!(
        asked() > before,
        "made before o/r was followed: its TTL holds"
    );
    assert!(
        second.err().contains("fetched from github"),
        "{}",
        second.err()
    );

    // Made while o/r is followed: it lives past its TTL, and GitHub is not asked.
    wait_for_the_clock(now_ms() + 1_500);
    let before = asked();
    let third = a.cached(&LIST).ok();
    assert_eq!(third.out(), second.out());
    assert_eq!(asked(), before, "no request of the runner reached GitHub");
    assert!(
        third.err().contains("under the heard TTL"),
        "{}",
        third.err()
    );
}
