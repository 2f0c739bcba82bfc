//! CI fleets as they are: GitHub-hosted runners sit behind NAT, dial out and accept nothing,
//! and leave when their job ends. A reachable keeper (the fleet's seed, `ghcache daemon --keep`)
//! takes what one runner fetched over the connection that runner opened, and serves it to the
//! runners that come after, so that none of them asks GitHub again.
//!
//! The scenario ([`fleet`]): a seed S; runners A and B join it; A runs `ghcache gh pr list` (one
//! GitHub request); B runs the same; A's daemon stops; runner C joins and runs the same. The last
//! test stops A's daemon right after its fetch, as a runner whose job ends does.
//! Runners that nobody can dial are made as in a hosted fleet, one of two ways: a daemon that
//! listens on a port whose inbound connections a firewall drops (a dial to it hangs), inside a
//! network namespace of the test's own; or a daemon that does not listen at all (`--no-listen`).
//!
//! The namespace tests need root (or CAP_SYS_ADMIN and CAP_NET_ADMIN), iproute2's `ip` and
//! `iptables`; without them they print `SKIPPED: ...` to stderr and pass without exercising
//! anything.

use std::path::Path;
use std::time::Duration;

use ghcache_tests::{skip, wait_until, Daemon, Listen, Machine, Netns, Run, World};

const LIST: [&str; 4] = ["pr", "list", "-R", "o/r"];
/// The p2p deadline of the runners' `ghcache gh`: these tests count where answers come from, not
/// how fast, and on a loaded 2-core machine running several of these tests at once, four
/// daemons each, 150 ms is sometimes too little for a first fetch over a new connection.
const DEADLINE: &str = "2s";

/// A machine of `world` whose `ghcache gh` waits up to [`DEADLINE`] for the swarm.
fn machine(world: &World, name: &str) -> Machine {
    let mut machine = world.machine(name);
    machine.set_env("GH_CACHE_P2P_DEADLINE", DEADLINE);
    machine
}

/// How the runners can be reached.
#[derive(Clone, Copy)]
enum Runners<'a> {
    /// Each listens on its own port, and the namespace drops every inbound connection to it.
    Undialable(&'a Netns),
    /// Each listens on a port that anyone may dial.
    Dialable,
    /// None listens (`--no-listen`): they only dial out.
    NotListening,
}

/// What the fleet printed, what reached GitHub, and what each runner counted.
struct Outcome {
    /// A's output: it asked GitHub.
    fetched: Run,
    /// B's and C's outputs.
    b: Run,
    c: Run,
    /// Plain gh on C, run after everything else.
    plain: Run,
    /// Requests that reached the fake GitHub before the plain gh.
    requests: usize,
    /// `hits.p2p` of B's and C's `ghcache stats`.
    b_p2p_hits: u64,
    c_p2p_hits: u64,
    /// Lookups of B's and C's daemons that waited out their deadline.
    timed_out: u64,
    /// What A's, B's and C's daemons said of whether peers can dial them (`reach` in their
    /// status), once they knew.
    reach: [String; 3],
    /// Whether B's or C's daemon gave up waiting for a dial.
    waited_for_dials: bool,
    /// Every daemon's log, for failure messages.
    logs: String,
}

/// Starts a runner's daemon on `machine`, bootstrapping from `seed`.
fn runner(machine: &Machine, key: &Path, seed: &Daemon, runners: Runners<'_>) -> Daemon {
    let bootstrap = ["--bootstrap", seed.addr.as_str()];
    match runners {
        Runners::Undialable(ns) => {
            let port = ns.free_port();
            // The rule is in place before the daemon listens: nobody ever reaches it.
            ns.drop_inbound(port)
                .unwrap_or_else(|e| panic!("firewall rule: {e}"));
            let listen = format!("/ip4/127.0.0.1/tcp/{port}");
            machine.daemon_on(key, Listen::At(&listen), &bootstrap)
        }
        Runners::Dialable => machine.daemon(key, &bootstrap),
        Runners::NotListening => machine.daemon_on(key, Listen::Nowhere, &bootstrap),
    }
}

/// Runs the scenario (see the module doc) with or without a keeper as the seed.
fn fleet(keeper: bool, runners: Runners<'_>) -> Outcome {
    // Made after the namespace was entered (by the caller): its listener and thread are in it.
    let world = World::new();
    let key = world.swarm_key("fleet");
    let (s, a, b, c) = (
        machine(&world, "seed"),
        machine(&world, "a"),
        machine(&world, "b"),
        machine(&world, "c"),
    );
    let seed = s.daemon(&key, if keeper { &["--keep"] } else { &[] });
    let da = runner(&a, &key, &seed, runners);
    let db = runner(&b, &key, &seed, runners);
    assert!(da.wait_peers(1), "A joined S: {}", da.log());
    assert!(db.wait_peers(1), "B joined S: {}", db.log());

    let fetched = a.cached(&LIST).ok();
    assert_eq!(world.requests(), 1, "A asked GitHub once");
    let reach_a = settled_reach(&da);
    if keeper {
        // The keeper takes A's answer as soon as it hears of it; B asks after that, as a
        // runner of a later job would.
        let kept = wait_until(Duration::from_secs(20), || seed.counters().kept >= 1);
        assert!(
            kept,
            "the keeper took A's answer\nS: {}\nA: {}",
            seed.log(),
            da.log()
        );
    }
    let on_b = b.cached(&LIST).ok();
    da.stop();

    let dc = runner(&c, &key, &seed, runners);
    assert!(dc.wait_peers(1), "C joined S: {}", dc.log());
    let on_c = c.cached(&LIST).ok();
    let requests = world.requests();
    let timed_out = db.counters().lookups_timed_out + dc.counters().lookups_timed_out;
    let reach = [reach_a, settled_reach(&db), settled_reach(&dc)];
    let waited_for_dials = [&db, &dc]
        .iter()
        .any(|d| d.log().contains("gave up waiting for a dial"));
    let logs = format!(
        "S:\n{}\nA:\n{}\nB:\n{}\nC:\n{}",
        seed.log(),
        std::fs::read_to_string(a.home.join("daemon.log")).unwrap_or_default(),
        db.log(),
        dc.log()
    );
    let outcome = Outcome {
        fetched,
        b: on_b,
        c: on_c,
        plain: c.gh(&LIST).ok(),
        requests,
        b_p2p_hits: b.stats()["hits"]["p2p"].as_u64().unwrap_or(0),
        c_p2p_hits: c.stats()["hits"]["p2p"].as_u64().unwrap_or(0),
        timed_out,
        reach,
        waited_for_dials,
        logs,
    };
    // Runners first, the seed last: nothing waits on a peer that is gone.
    drop((db, dc));
    drop(seed);
    outcome
}

/// What `daemon`'s status says of whether peers can dial it, once it knows (or after 10 s).
fn settled_reach(daemon: &Daemon) -> String {
    let mut reach = String::new();
    wait_until(Duration::from_secs(10), || {
        reach = daemon.status().reach;
        reach != "not known yet"
    });
    reach
}

/// Every runner printed what plain gh prints, whatever tier answered.
fn assert_transparent(outcome: &Outcome) {
    for (who, run) in [
        ("A", &outcome.fetched),
        ("B", &outcome.b),
        ("C", &outcome.c),
    ] {
        assert_eq!(
            run.stdout, outcome.plain.stdout,
            "{who} printed what gh prints"
        );
        assert_eq!(run.stderr, outcome.plain.stderr, "{who}'s stderr");
    }
}

/// Enters a namespace of the test's own, or says why the test cannot run here.
fn namespace(tag: &str) -> Option<Netns> {
    match Netns::enter(tag) {
        Ok(ns) => Some(ns),
        Err(reason) => {
            skip(&format!(
                "runners that nobody can dial need a network namespace and iptables (root, \
                 iproute2, iptables): {reason}"
            ));
            None
        }
    }
}

#[test]
fn runners_nobody_can_dial_share_through_a_keeper_without_asking_github_again() {
    let Some(ns) = namespace("keep") else { return };
    let outcome = fleet(true, Runners::Undialable(&ns));
    assert_transparent(&outcome);
    assert_eq!(outcome.reach, ["not dialable"; 3], "{}", outcome.logs);
    assert_eq!(
        outcome.requests, 1,
        "B and C made no request to GitHub\n{}",
        outcome.logs
    );
    assert_eq!(outcome.b_p2p_hits, 1, "B's answer came from the swarm");
    assert_eq!(outcome.c_p2p_hits, 1, "C's answer came from the swarm");
}

#[test]
fn without_a_keeper_runners_nobody_can_dial_ask_github_again() {
    // What the keeper changes: the same fleet, the seed not keeping.
    let Some(ns) = namespace("nokeep") else {
        return;
    };
    let outcome = fleet(false, Runners::Undialable(&ns));
    assert_transparent(&outcome);
    assert_eq!(outcome.requests, 3, "B and C each asked GitHub");
    assert_eq!(outcome.b_p2p_hits, 0);
    assert_eq!(outcome.c_p2p_hits, 0);
    // Nobody they could ask held the answer (A and each other only behind the firewall): their
    // daemons said so when the dials hung, not at the deadline.
    assert_eq!(
        outcome.timed_out, 0,
        "lookups waited out the deadline\n{}",
        outcome.logs
    );
    // Each runner found out that nobody could dial it, and named no address anyone would wait
    // on: B and C never waited for a dial to A or to each other.
    assert_eq!(outcome.reach, ["not dialable"; 3], "{}", outcome.logs);
    assert!(
        !outcome.waited_for_dials,
        "a lookup waited for a dial\n{}",
        outcome.logs
    );
}

#[test]
fn runners_anyone_can_dial_share_directly_without_a_keeper() {
    // The control case: without the firewall rules, the same namespace and the same fleet
    // share through direct peer fetches (B from A, C from B), so what the other tests see is
    // the topology's doing, not the harness's.
    let Some(_ns) = namespace("dialable") else {
        return;
    };
    let outcome = fleet(false, Runners::Dialable);
    assert_transparent(&outcome);
    assert_eq!(outcome.reach, ["dialable"; 3], "{}", outcome.logs);
    assert_eq!(
        outcome.requests, 1,
        "B and C made no request to GitHub\n{}",
        outcome.logs
    );
    assert_eq!(outcome.b_p2p_hits, 1, "{}", outcome.logs);
    assert_eq!(outcome.c_p2p_hits, 1, "{}", outcome.logs);
}

#[test]
fn runners_that_do_not_listen_share_through_a_keeper() {
    // `--no-listen` runners cannot be dialed by construction: no namespace or root needed.
    let outcome = fleet(true, Runners::NotListening);
    assert_transparent(&outcome);
    assert_eq!(outcome.reach, ["not listening"; 3], "{}", outcome.logs);
    assert_eq!(
        outcome.requests, 1,
        "B and C made no request to GitHub\n{}",
        outcome.logs
    );
    assert_eq!(outcome.b_p2p_hits, 1, "{}", outcome.logs);
    assert_eq!(outcome.c_p2p_hits, 1, "{}", outcome.logs);
}

#[test]
fn a_runner_that_stops_right_after_its_fetch_hands_its_answer_to_the_keeper() {
    let world = World::new();
    let key = world.swarm_key("fleet");
    let (s, a, c) = (
        machine(&world, "seed"),
        machine(&world, "a"),
        machine(&world, "c"),
    );
    let seed = s.daemon(&key, &["--keep"]);
    let da = runner(&a, &key, &seed, Runners::NotListening);
    let knows_keeper = wait_until(Duration::from_secs(20), || da.status().keepers.len() == 1);
    assert!(knows_keeper, "A knows S for a keeper: {}", da.log());

    let fetched = a.cached(&LIST).ok();
    // No waiting for the keeper here: a stopping daemon waits until its keeper holds what it
    // announced, for up to 5 s.
    da.stop();
    let dc = runner(&c, &key, &seed, Runners::NotListening);
    assert!(dc.wait_peers(1), "C joined S: {}", dc.log());
    let on_c = c.cached(&LIST).ok();
    assert_eq!(
        world.requests(),
        1,
        "C made no request to GitHub\nS: {}\nC: {}",
        seed.log(),
        dc.log()
    );
    assert_eq!(on_c.stdout, fetched.stdout, "byte-identical on C");
    assert_eq!(on_c.stderr, fetched.stderr);
    assert_eq!(c.stats()["hits"]["p2p"], 1);
}
