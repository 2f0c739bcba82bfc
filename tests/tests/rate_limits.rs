//! Near GitHub's rate limits, with the real gh: a secondary limit pauses the principal's
//! requests (the request waits the pause out and is sent again; later commands of the machine
//! serve a stale answer rather than ask), and a job token's budget is the repository's, shared
//! by its jobs and not by a PAT in the same job.

use std::time::{Duration, Instant};

use fake_github::{Limited, Limits};
use ghcache_tests::current_gh::gh_versions;
use ghcache_tests::{run_piped, Machine, World};

const ISSUES: [&str; 4] = ["issue", "list", "-R", "o/r"];
const RELEASES: [&str; 4] = ["release", "list", "-R", "o/r"];

fn limited(world: &World) -> Vec<Option<Limited>> {
    world.github.requests().iter().map(|r| r.limited).collect()
}

#[test]
fn a_secondary_limit_with_retry_after_is_waited_out_and_the_read_sent_again() {
    for gh in gh_versions() {
        let world = World::new();
        let mut machine = world.machine("wait");
        machine.set_env("GH_CACHE_GH", &gh.display().to_string());
        let plain = run_piped(machine.command(&gh).args(ISSUES)).ok();
        world.github.clear_log();
        world.github.refuse_next_as_secondary(1, 403, Some(2));
        let started = Instant::now();
        let run = machine.cached(&ISSUES);
        let took = started.elapsed();
        assert_eq!(run.code, 0, "{}: {}", gh.display(), run.err());
        assert_eq!(run.stdout, plain.stdout, "gh printed what plain gh prints");
        assert!(
            run.err().contains("secondary rate limit: waiting"),
            "one line says why it waits: {}",
            run.err()
        );
        assert!(took >= Duration::from_secs(2), "waited {took:?}");
        let log = limited(&world);
        assert_eq!(log.first(), Some(&Some(Limited::Secondary)), "{log:?}");
        assert!(
            log[1..].iter().all(Option::is_none),
            "sent again once, after the pause: {log:?}"
        );
    }
}

#[test]
fn while_paused_a_command_serves_its_stale_answer_and_one_without_goes_to_github() {
    for gh in gh_versions() {
        let world = World::new();
        let mut machine = world.machine("paused");
        machine.set_env("GH_CACHE_GH", &gh.display().to_string());
        let fresh = machine.cached(&RELEASES).ok();
        machine.set_env("GH_CACHE_TTL_RELEASE", "0");
        // A pause far longer than the longest wait: the refused read is not sent again.
        machine.set_env("GH_CACHE_RATE_LIMIT_WAIT", "1s");
        world.github.clear_log();
        world.github.refuse_next_as_secondary(1, 429, Some(30));
        let refused = machine.cached(&ISSUES);
        assert_ne!(
            refused.code, 0,
            "gh saw GitHub's refusal, as without ghcache"
        );
        assert_eq!(
            limited(&world),
            [Some(Limited::Secondary)],
            "{}",
            gh.display()
        );

        // Within the pause: the stale release list, and not one request.
        let stale = machine.cached(&RELEASES);
        assert_eq!(stale.code, 0, "{}", stale.err());
        assert_eq!(stale.stdout, fresh.stdout);
        assert!(
            stale.err().contains("secondary rate limit asked to wait"),
            "{}",
            stale.err()
        );
        assert_eq!(world.github.request_count(), 1, "GitHub was not asked");
        let table = machine.ghcache(&["stats"]).ok().out();
        assert!(
            table.contains("paused by a secondary limit for"),
            "ghcache stats shows the pause: {table}"
        );

        // Nothing stale to serve: sent anyway (the pause is longer than the longest wait),
        // and said so; GitHub answers as it would have answered gh.
        let first_read = machine.cached(&["pr", "list", "-R", "o/r"]);
        assert_eq!(first_read.code, 0, "{}", first_read.err());
        assert!(
            first_read.err().contains("sending anyway"),
            "{}",
            first_read.err()
        );
        assert!(world.github.request_count() > 1);

        // Beyond max_stale, GitHub is asked as gh would ask it.
        machine.set_env("GH_CACHE_MAX_STALE", "0");
        let before = world.github.request_count();
        let asked = machine.cached(&RELEASES);
        assert_eq!(asked.code, 0, "{}", asked.err());
        assert!(world.github.request_count() > before);
    }
}

/// A job of `o/r` on `machine` whose own token is `token`, declared as the Action declares it.
fn job(machine: &Machine, token: &str) -> Machine {
    let mut job = machine.clone();
    job.unset_env("GH_TOKEN");
    job.set_env("GITHUB_ACTIONS", "true");
    job.set_env("GITHUB_REPOSITORY", "o/r");
    job.set_env(
        "GITHUB_WORKFLOW_REF",
        "o/r/.github/workflows/ci.yml@refs/heads/main",
    );
    job.set_env(
        "GITHUB_WORKFLOW_SHA",
        "0123456789abcdef0123456789abcdef01234567",
    );
    job.set_env("GITHUB_JOB", "test");
    job.set_env("GITHUB_TOKEN", token);
    let printed = job.ghcache(&["actions", "declare"]).ok().out();
    for line in printed.lines() {
        let (name, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not NAME=VALUE: {printed:?}"));
        job.set_env(name, value);
    }
    job
}

#[test]
fn a_job_tokens_budget_is_the_repositorys_and_not_a_pats() {
    let world = World::new();
    world.github.set_limits(Limits {
        job_primary: 8,
        ..Limits::default()
    });
    world.github.register_job_token("ghs_job_one", "o/r");
    world.github.register_job_token("ghs_job_two", "o/r");
    let runner = world.machine("runner");
    let mut first = job(&runner, "ghs_job_one");
    first.set_env("GH_CACHE_RATE_LIMIT_RESERVE", "4");
    let mut with_pat = job(&runner, "ghs_job_two");
    with_pat.set_env("GH_TOKEN", "ghp_personal");
    with_pat.set_env("GH_CACHE_RATE_LIMIT_RESERVE", "4");
    let fresh = first.cached(&RELEASES).ok();
    let pats = with_pat.cached(&RELEASES).ok();
    // The first job spends the repository's budget (8) down to the reserve.
    for n in 0..5 {
        first.cached(&["api", &format!("repos/o/r?page={n}")]).ok();
    }
    assert!(
        limited(&world).iter().all(Option::is_none),
        "{:?}",
        limited(&world)
    );

    // The second job, another token of the same repository: short of budget too, so its
    // stale answer (shared through the declared scope) is served without a request.
    let mut second = job(&runner, "ghs_job_two");
    second.set_env("GH_CACHE_RATE_LIMIT_RESERVE", "4");
    second.set_env("GH_CACHE_TTL_RELEASE", "0");
    let before = world.github.request_count();
    let stale = second.cached(&RELEASES);
    assert_eq!(stale.code, 0, "{}", stale.err());
    assert_eq!(stale.stdout, fresh.stdout);
    assert!(
        stale.err().contains("requests left of the core rate limit"),
        "{}",
        stale.err()
    );
    assert_eq!(world.github.request_count(), before, "GitHub was not asked");
    let budgets = second.stats()["rate_limits"].clone();
    let repo = budgets
        .as_array()
        .and_then(|all| all.iter().find(|p| p["principal"] == "repo:o/r"))
        .unwrap_or_else(|| panic!("the repository's budget in ghcache stats: {budgets}"));
    assert_eq!(repo["resources"]["core"]["limit"], 8, "{repo}");
    assert!(
        repo["resources"]["core"]["remaining"].as_u64() <= Some(4),
        "{repo}"
    );

    // A PAT in the same job has a budget of its own: its stale answer is not served, GitHub
    // is asked.
    with_pat.set_env("GH_CACHE_TTL_RELEASE", "0");
    let before = world.github.request_count();
    let asked = with_pat.cached(&RELEASES);
    assert_eq!(asked.code, 0, "{}", asked.err());
    assert_eq!(asked.stdout, pats.stdout);
    assert!(world.github.request_count() > before);
    assert!(!asked.err().contains("GitHub not asked"), "{}", asked.err());
}

/// Until `machine`'s book (its `ghcache stats`) holds a pause, or `timeout` passes.
fn wait_for_pause(machine: &Machine, timeout: Duration) -> bool {
    ghcache_tests::wait_until(timeout, || {
        machine.stats()["rate_limits"]
            .as_array()
            .is_some_and(|all| all.iter().any(|p| !p["paused_until_ms"].is_null()))
    })
}

#[test]
fn a_secondary_limit_on_one_runner_holds_back_the_other_runners_of_the_swarm() {
    let world = World::new();
    let key = world.swarm_key("team");
    let a = world.machine("a");
    let mut b = world.machine("b");
    let da = a.daemon(&key, &[]);
    let db = b.daemon(&key, &["--bootstrap", &da.addr]);
    assert!(db.wait_peers(1), "{}", db.log());
    // B holds a release list, which it will serve stale.
    let fresh = b.cached(&RELEASES).ok();
    b.set_env("GH_CACHE_TTL_RELEASE", "0");
    world.github.clear_log();

    // A meets a secondary limit (the same token, so the same principal as B's) and waits it
    // out; its daemon tells the swarm.
    world.github.refuse_next_as_secondary(1, 403, Some(4));
    let on_a = {
        let a = a.clone();
        std::thread::spawn(move || a.cached(&ISSUES))
    };
    assert!(
        wait_for_pause(&b, Duration::from_secs(3)),
        "B never heard of A's pause: {}",
        db.log()
    );
    assert_eq!(limited(&world), [Some(Limited::Secondary)]);

    // B, within the pause: its stale answer, and not one request.
    let stale = b.cached(&RELEASES);
    assert_eq!(stale.code, 0, "{}", stale.err());
    assert_eq!(stale.stdout, fresh.stdout);
    assert!(stale.err().contains("GitHub not asked"), "{}", stale.err());
    assert_eq!(world.github.request_count(), 1, "B did not send");

    // B, with nothing stale: it waits for the pause to end, then sends.
    let started = Instant::now();
    let waited = b.cached(&["pr", "list", "-R", "o/r"]);
    assert_eq!(waited.code, 0, "{}", waited.err());
    assert!(
        waited.err().contains("secondary rate limit: waiting"),
        "{}",
        waited.err()
    );
    assert!(started.elapsed() >= Duration::from_millis(500));
    let on_a = on_a
        .join()
        .unwrap_or_else(|_| panic!("A's command panicked"));
    assert_eq!(on_a.code, 0, "{}", on_a.err());
    assert_eq!(
        limited(&world).iter().filter(|l| l.is_some()).count(),
        1,
        "nothing sent during the pause was refused: {:?}",
        limited(&world)
    );
    drop((da, db));
}

/// The writes that reached the fake GitHub: REST methods other than GET/HEAD, and GraphQL
/// mutations.
fn writes(world: &World) -> Vec<fake_github::RequestRecord> {
    world
        .github
        .requests()
        .into_iter()
        .filter(|r| match r.operation.as_deref() {
            Some(operation) => operation == "mutation",
            None => !matches!(r.method.as_str(), "GET" | "HEAD"),
        })
        .collect()
}

#[test]
fn writes_of_one_principal_reach_github_a_second_apart() {
    let world = World::new();
    let machine = world.machine("writer");
    let create = |title: &'static str| ["issue", "create", "-R", "o/r", "-t", title, "-b", "x"];
    // Two writes at once, as two steps of a job started together would send them.
    let first = {
        let m = machine.clone();
        std::thread::spawn(move || m.cached(&create("first")))
    };
    let second = machine.cached(&create("second"));
    let first = first
        .join()
        .unwrap_or_else(|_| panic!("the first write panicked"));
    assert_eq!(
        (first.code, second.code),
        (0, 0),
        "{}{}",
        first.err(),
        second.err()
    );
    let sent = writes(&world);
    assert_eq!(sent.len(), 2, "{sent:?}");
    let apart = sent[1].arrived_at.duration_since(sent[0].arrived_at);
    assert!(
        apart >= Duration::from_millis(950),
        "the second write was sent {apart:?} after the first"
    );
    assert!(sent.iter().all(|w| w.limited.is_none()));
}

#[test]
fn requests_in_flight_from_one_machine_stay_within_the_cap() {
    let world = World::new();
    world.github.set_limits(Limits {
        concurrent: Some(2),
        ..Limits::default()
    });
    world.github.set_latency(Duration::from_millis(600));
    let mut machine = world.machine("busy");
    machine.set_env("GH_CACHE_RATE_LIMIT_IN_FLIGHT", "2");
    // Five gh runs at once, as a job's parallel steps would start them.
    let runs: Vec<_> = (0..5)
        .map(|i| {
            let m = machine.clone();
            std::thread::spawn(move || m.cached(&["api", &format!("repos/o/r?n={i}")]))
        })
        .collect();
    for run in runs {
        let run = run.join().unwrap_or_else(|_| panic!("a run panicked"));
        assert_eq!(run.code, 0, "{}", run.err());
    }
    assert_eq!(world.github.request_count(), 5);
    assert!(
        limited(&world).iter().all(Option::is_none),
        "GitHub refused none for too many at once: {:?}",
        limited(&world)
    );
}
