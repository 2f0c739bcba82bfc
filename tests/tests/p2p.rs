//! The p2p tier with real daemons on loopback: what one machine fetched, its peers serve without
//! asking GitHub; outsiders get nothing; writes travel as invalidations.

use std::path::Path;
use std::time::Duration;

use ghcache_core::{Body, CacheTier, Digest, Entry, Fence, Lookup};
use ghcache_tests::{wait_until, World};

const LIST: [&str; 4] = ["pr", "list", "-R", "o/r"];

#[test]
fn what_one_peer_fetched_the_others_get_without_asking_github() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (a, b, c) = (world.machine("a"), world.machine("b"), world.machine("c"));
    let da = a.daemon(&key, &[]);
    let db = b.daemon(&key, &["--bootstrap", &da.addr]);
    let dc = c.daemon(&key, &["--bootstrap", &da.addr]);
    assert!(db.wait_peers(1) && dc.wait_peers(1), "{}", db.log());

    let fetched = a.cached(&LIST).ok();
    assert_eq!(world.requests(), 1, "A asked GitHub once");
    let on_b = b.cached(&LIST).ok();
    let on_c = c.cached(&LIST).ok();
    assert_eq!(world.requests(), 1, "B and C made no request to GitHub");
    assert_eq!(on_b.stdout, fetched.stdout, "byte-identical on B");
    assert_eq!(on_c.stdout, fetched.stdout, "byte-identical on C");
    assert_eq!(on_b.stderr, fetched.stderr);
    assert_eq!(b.stats()["hits"]["p2p"], 1);
    assert_eq!(c.stats()["hits"]["p2p"], 1);
    // B's daemon stores the entry it handed over once its reply is sent; then the next call
    // is a local hit.
    assert!(
        wait_until(Duration::from_secs(10), || b.stats()["entries"] == 1),
        "B's daemon never stored the entry: {}",
        db.log()
    );
    assert_eq!(
        db.counters().local_stores,
        0,
        "B's command sent back no entry to store"
    );
    b.cached(&LIST).ok();
    assert_eq!(b.stats()["hits"]["local"], 1);
    assert_eq!(world.requests(), 1);
}

#[test]
fn a_node_with_another_swarm_key_cannot_join_and_gets_nothing() {
    let world = World::new();
    let (a, outsider) = (world.machine("a"), world.machine("outsider"));
    let da = a.daemon(&world.swarm_key("team"), &[]);
    let dx = outsider.daemon(&world.swarm_key("other"), &["--bootstrap", &da.addr]);
    let fetched = a.cached(&LIST).ok();
    assert!(
        !dx.wait_peers_for(1, Duration::from_secs(3)),
        "{}",
        dx.log()
    );
    let before = world.requests();
    let answer = outsider.cached(&LIST).ok();
    assert_eq!(
        world.requests(),
        before + 1,
        "the outsider had to ask GitHub"
    );
    assert_eq!(
        answer.stdout, fetched.stdout,
        "and still got the right answer"
    );
    assert_eq!(outsider.stats()["hits"]["p2p"], 0);
}

#[test]
fn a_write_on_one_peer_makes_the_others_ask_github_again() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (a, b) = (world.machine("a"), world.machine("b"));
    let da = a.daemon(&key, &[]);
    let db = b.daemon(&key, &["--bootstrap", &da.addr]);
    assert!(db.wait_peers(1), "{}", db.log());
    let issues = ["issue", "list", "-R", "o/r"];
    let releases = ["release", "list", "-R", "o/r"];
    a.cached(&issues).ok();
    b.cached(&issues).ok();
    b.cached(&releases).ok();
    assert_eq!(b.stats()["hits"]["p2p"], 1);

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
    assert!(
        wait_until(Duration::from_secs(10), || db
            .counters()
            .invalidations_received
            >= 1),
        "B heard of the write: {}",
        db.log()
    );
    let before = world.requests();
    let after = b.cached(&issues).ok();
    assert!(world.requests() > before, "B asked GitHub again");
    assert!(after.out().contains("written on A"), "{}", after.out());
    // An issue does not change the releases: B keeps those.
    let before = world.requests();
    b.cached(&releases).ok();
    assert_eq!(world.requests(), before, "B's releases stayed cached");
}

#[test]
fn a_read_only_node_consumes_but_never_serves() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (a, ro, c) = (world.machine("a"), world.machine("ro"), world.machine("c"));
    let da = a.daemon(&key, &[]);
    let dro = ro.daemon(&key, &["--bootstrap", &da.addr, "--read-only"]);
    let dc = c.daemon(&key, &["--bootstrap", &da.addr]);
    assert!(dro.wait_peers(1) && dc.wait_peers(1));

    // The read-only node consumes what A fetched...
    a.cached(&LIST).ok();
    ro.cached(&LIST).ok();
    assert_eq!(ro.stats()["hits"]["p2p"], 1);
    // ...but what it fetched from GitHub itself is never served to C.
    let releases = ["release", "list", "-R", "o/r"];
    ro.cached(&releases).ok();
    let before = world.requests();
    c.cached(&releases).ok();
    assert_eq!(world.requests(), before + 1, "C had to ask GitHub");
    assert_eq!(c.stats()["hits"]["p2p"], 0);
}

#[test]
fn a_trust_list_rejects_entries_from_other_producers() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (a, t) = (world.machine("a"), world.machine("t"));
    let da = a.daemon(&key, &[]);
    // Trusts only a peer id that is not A's (its own).
    let probe = t.daemon(&key, &[]);
    let own_id = probe.peer_id.clone();
    probe.stop();
    let dt = t.daemon(&key, &["--bootstrap", &da.addr, "--trusted-peer", &own_id]);
    assert!(dt.wait_peers(1));
    let fetched = a.cached(&LIST).ok();
    let before = world.requests();
    let answer = t.cached(&LIST).ok();
    assert_eq!(world.requests(), before + 1, "A's entry was not trusted");
    assert_eq!(answer.stdout, fetched.stdout);
    assert!(dt.counters().rejected >= 1, "{:?}", dt.status());
}

#[test]
fn without_a_swarm_key_p2p_fails_with_one_line_that_says_how_to_make_one() {
    let world = World::new();
    let mut machine = world.machine("nokey");
    machine.set_env("GH_CACHE_P2P", "1");
    let run = machine.cached(&LIST);
    assert_eq!(run.code, 2, "{}", run.err());
    assert_eq!(run.err().lines().count(), 1, "{}", run.err());
    assert!(run.err().contains("ghcache swarm-key new"), "{}", run.err());
    assert_eq!(world.requests(), 0);
    let run = machine.ghcache(&["daemon"]);
    assert_ne!(run.code, 0);
    assert!(run.err().contains("swarm-key new"), "{}", run.err());
}

#[test]
fn daemon_status_without_a_daemon_says_so() {
    let world = World::new();
    let machine = world.machine("nodaemon");
    let run = machine.ghcache(&["daemon", "status"]);
    assert_ne!(run.code, 0);
    assert_eq!(run.err().lines().count(), 1, "{}", run.err());
    assert!(run.err().contains("no ghcache daemon"), "{}", run.err());
}

#[test]
fn the_swarm_key_is_in_ipfs_format_and_random() {
    let world = World::new();
    let one = std::fs::read_to_string(world.swarm_key("one")).unwrap_or_default();
    let two = std::fs::read_to_string(world.swarm_key("two")).unwrap_or_default();
    let lines: Vec<&str> = one.lines().collect();
    assert_eq!(lines.len(), 3, "{one:?}");
    assert_eq!(&lines[..2], ["/key/swarm/psk/1.0.0/", "/base16/"]);
    assert_eq!(lines[2].len(), 64);
    assert!(lines[2].chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(one, two);
}

#[test]
fn entries_never_cross_scopes_over_the_swarm() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (mut a, mut b) = (world.machine("a"), world.machine("b"));
    a.set_env("GH_CACHE_SCOPE", "team-a");
    b.set_env("GH_CACHE_SCOPE", "team-b");
    let da = a.daemon(&key, &[]);
    let db = b.daemon(&key, &["--bootstrap", &da.addr]);
    assert!(db.wait_peers(1));
    a.cached(&LIST).ok();
    let before = world.requests();
    b.cached(&LIST).ok();
    assert_eq!(
        world.requests(),
        before + 1,
        "another scope asks GitHub itself"
    );
    assert_eq!(b.stats()["hits"]["p2p"], 0);
}

#[test]
fn a_dead_provider_costs_at_most_the_p2p_deadline() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (a, b) = (world.machine("a"), world.machine("b"));
    let da = a.daemon(&key, &[]);
    let db = b.daemon(&key, &["--bootstrap", &da.addr]);
    assert!(db.wait_peers(1));
    let issues = ["issue", "list", "-R", "o/r"];
    b.cached(&["repo", "view", "o/r"]).ok(); // B's daemon now follows the scope's announcements.
    let fetched = a.cached(&issues).ok();
    assert!(
        wait_until(Duration::from_secs(10), || db
            .counters()
            .announcements_received
            >= 1),
        "{}",
        db.log()
    );
    da.kill();
    let plain = std::time::Instant::now();
    b.gh(&issues).ok();
    let plain = plain.elapsed();
    let started = std::time::Instant::now();
    let answer = b.cached(&issues).ok();
    let took = started.elapsed();
    assert_eq!(
        answer.stdout, fetched.stdout,
        "the right answer, from GitHub"
    );
    assert_eq!(b.stats()["hits"]["p2p"], 0);
    // The p2p deadline is 150 ms; the rest is gh itself. A generous margin for a noisy machine.
    assert!(
        took < plain + Duration::from_millis(1500),
        "{took:?} vs plain gh {plain:?}"
    );
}

/// Rewrites the only entry in `cache`'s local store: a different body, and a manifest whose
/// digest and size match it but whose producer and signature are still the original ones (which
/// no longer verify). Stored through the local tier itself, index row and record alike: its own
/// checks pass (it does not check signatures), so its daemon serves the lie.
fn tamper_with_the_only_entry(cache: &Path, stdout: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(async {
        let tier = ghcache_tier_local::Tier::open(ghcache_tier_local::Config::new(cache))
            .await
            .unwrap_or_else(|e| panic!("open the store: {e}"));
        let keys = tier
            .keys(10)
            .await
            .unwrap_or_else(|e| panic!("read the store: {e}"));
        assert_eq!(keys.len(), 1, "one entry in the store");
        let Ok(Lookup::Hit(entry)) = tier.get(&keys[0]).await else {
            panic!("the entry is readable");
        };
        let mut manifest = entry.manifest;
        assert!(
            manifest.producer.is_some() && manifest.signature.is_some(),
            "the entry came signed from a peer"
        );
        let body = Body {
            stdout: stdout.to_vec(),
            stderr: Vec::new(),
        };
        let encoded = body.encode();
        manifest.body_digest = Digest::of(&encoded);
        manifest.body_size = encoded.len() as u64;
        let mark = tier
            .fences()
            .read(&manifest.repo, manifest.resource)
            .unwrap_or_else(|e| panic!("fence: {e}"))
            .mark;
        tier.put_fenced(&Entry { manifest, body }, mark)
            .await
            .unwrap_or_else(|e| panic!("rewrite the entry: {e}"));
        tier.close().await;
    });
}

#[test]
fn a_peer_that_re_serves_a_tampered_entry_is_rejected_and_github_answers() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (a, b, mut c) = (world.machine("a"), world.machine("b"), world.machine("c"));
    // C's lookup walks the DHT before it can ask B: what is tested is that B's lie is refused,
    // so C may wait for it longer than the default deadline on a loaded machine.
    c.set_env("GH_CACHE_P2P_DEADLINE", "5s");
    let issues = ["issue", "list", "-R", "o/r"];
    let da = a.daemon(&key, &[]);
    let db = b.daemon(&key, &["--bootstrap", &da.addr]);
    assert!(db.wait_peers(1), "{}", db.log());
    let fetched = a.cached(&issues).ok();
    let on_b = b.cached(&issues).ok();
    assert_eq!(on_b.stdout, fetched.stdout);
    assert_eq!(b.stats()["hits"]["p2p"], 1, "B holds A's signed entry");
    // Only B can serve it now.
    da.kill();

    // B's daemon keeps running: the local tier reads the index on every lookup, so it serves the
    // rewritten row, and it keeps providing the key in the DHT (a restarted daemon would not).
    let lie = b"#1  everything is fine  open\n";
    tamper_with_the_only_entry(&b.cache_dir(), lie);
    assert_eq!(
        b.cached(&issues).ok().stdout,
        lie,
        "B's own store accepts the rewritten entry (so B's daemon serves it)"
    );

    // C joins through B only, after A is gone: it never heard A's announcement, and asks the DHT.
    let dc = c.daemon(&key, &["--bootstrap", &db.addr]);
    assert!(dc.wait_peers(1), "{}", dc.log());
    let before = world.requests();
    let answer = c.cached(&issues).ok();
    assert!(world.requests() > before, "C had to ask GitHub");
    let plain = c.gh(&issues).ok();
    assert_eq!(answer.stdout, plain.stdout, "C printed what gh prints");
    assert_eq!(answer.stderr, plain.stderr);
    assert_ne!(answer.stdout, lie);
    assert_eq!(c.stats()["hits"]["p2p"], 0);
    assert!(dc.counters().lookups >= 1, "{:?}", dc.status());
    assert!(
        db.counters().fetches_served >= 1,
        "B served the tampered entry: {:?}",
        db.status()
    );
    assert!(
        dc.counters().rejected >= 1,
        "{:?}\n{}",
        dc.status(),
        dc.log()
    );
    assert!(
        dc.log().contains(&format!(
            "rejected data from {}: signature does not verify",
            db.peer_id
        )),
        "{}",
        dc.log()
    );
}

#[test]
fn a_restarted_daemon_offers_what_its_machine_already_holds() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (a, b) = (world.machine("a"), world.machine("b"));
    // A fetched the entry with no daemon running: nobody was told.
    let fetched = a.cached(&LIST).ok();
    let da = a.daemon(&key, &[]);
    let db = b.daemon(&key, &["--bootstrap", &da.addr]);
    assert!(db.wait_peers(1), "{}", db.log());
    // The command's answer, and the answer to gh's request under it (the HTTP level).
    assert!(
        da.log().contains("providing 2 stored entries"),
        "{}",
        da.log()
    );
    let before = world.requests();
    let answer = b.cached(&LIST).ok();
    assert_eq!(
        world.requests(),
        before,
        "B found A's stored entry in the DHT"
    );
    assert_eq!(answer.stdout, fetched.stdout);
    assert_eq!(b.stats()["hits"]["p2p"], 1);
}
