//! The event that started a GitHub Actions job is a write: answers cached before it, here or by
//! a peer, are not served to the job; answers after it are, and it is applied once per job.

use ghcache_core::now_ms;
use ghcache_tests::current_gh::gh_versions;
use ghcache_tests::{rfc3339_ms as rfc3339, run_piped, Machine, World};

const ISSUES: [&str; 4] = ["issue", "list", "-R", "o/r"];
/// A GraphQL read of the repository: what the table does not classify, which every event of
/// the repository can change.
const OPEN_ISSUES: [&str; 4] = [
    "api",
    "graphql",
    "-f",
    "query=query { repository(owner: \"o\", name: \"r\") { issues(states: OPEN) { totalCount } } }",
];

/// A machine whose answers share one scope in and out of Actions, so that only the event can
/// tell a job's answer from the one cached before it.
fn machine(world: &World, name: &str) -> Machine {
    let mut m = world.machine(name);
    m.set_env("GH_CACHE_SCOPE", "team");
    m
}

/// `m` as a job of run `run`, started by `event` with `payload`.
fn job(m: &Machine, run: &str, event: &str, payload: Option<&str>) -> Machine {
    let mut job = m.clone();
    let path = m.home.join(format!("event-{run}.json"));
    if let Some(payload) = payload {
        std::fs::write(&path, payload).unwrap_or_else(|e| panic!("{e}"));
    }
    for (name, value) in [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_REPOSITORY", "o/r"),
        ("GITHUB_EVENT_NAME", event),
        ("GITHUB_EVENT_PATH", &path.display().to_string()),
        ("GITHUB_RUN_ID", run),
        ("GITHUB_RUN_ATTEMPT", "1"),
        ("GITHUB_JOB", "test"),
    ] {
        job.set_env(name, value);
    }
    job
}

/// Caches `read`, changes the repository on GitHub (not through ghcache), then checks that
/// outside a job the old answer stands, and that the job started by `event` with the payload
/// `payload(now)` prints the new one, and does not apply the event a second time.
fn the_job_sees_the_change(event: &str, read: &[&str], payload: impl Fn(u64) -> String) {
    let world = World::new();
    let m = machine(&world, event);
    let old = m.cached(read).ok().out();
    world.github.add_issue("o/r", "changed on github.com");
    let now = m.gh(read).ok().out();
    assert_ne!(old, now, "{event}: the change shows in gh's answer");
    assert_eq!(
        m.cached(read).ok().out(),
        old,
        "{event}: without the event the cached answer stands (the test can fail)"
    );

    let job = job(&m, "1", event, Some(&payload(now_ms())));
    assert_eq!(
        job.cached(read).ok().out(),
        now,
        "{event}: the job started by the change sees it"
    );

    // A second command of the same job does not apply the event again.
    world.github.add_issue("o/r", "changed again");
    let before = world.requests();
    assert_eq!(job.cached(read).ok().out(), now, "{event}: once per job");
    assert_eq!(world.requests(), before, "{event}: answered from the cache");
}

#[test]
fn a_job_started_by_a_pull_request_edit_lists_the_new_title() {
    // Debian's gh and the current release: users run both.
    for gh in gh_versions() {
        let world = World::new();
        let mut m = machine(&world, "pr");
        m.set_env("GH_CACHE_GH", &gh.display().to_string());
        let list = ["pr", "list", "-R", "o/r", "--json", "number,title"];
        let old = m.cached(&list).ok().out();
        world.github.retitle_pr("o/r", 2, "Retitled on github.com");
        let edited = now_ms();
        let now = run_piped(m.command(&gh).args(list)).ok().out();
        assert!(
            now.contains("Retitled on github.com"),
            "{}: {now}",
            gh.display()
        );
        assert_eq!(
            m.cached(&list).ok().out(),
            old,
            "{}: without the event: cached",
            gh.display()
        );

        let payload = format!(
            r#"{{"action": "edited", "number": 2, "pull_request": {{"number": 2,
               "updated_at": "{}"}}, "repository": {{"full_name": "o/r"}}}}"#,
            rfc3339(edited)
        );
        let job = job(&m, "7", "pull_request", Some(&payload));
        assert_eq!(
            job.cached(&list).ok().out(),
            now,
            "{}: the job sees the edit",
            gh.display()
        );
    }
}

#[test]
fn a_pull_request_event_drops_what_the_pull_request_changed() {
    the_job_sees_the_change("pull_request", &ISSUES, |at| {
        format!(
            r#"{{"action": "edited", "pull_request": {{"number": 1, "updated_at": "{}",
               "head": {{"repo": {{"full_name": "fork/r"}}}}}}}}"#,
            rfc3339(at)
        )
    });
}

#[test]
fn an_issues_or_comment_event_drops_the_issues() {
    the_job_sees_the_change("issues", &ISSUES, |at| {
        format!(
            r#"{{"action": "opened", "issue": {{"updated_at": "{}"}}}}"#,
            rfc3339(at)
        )
    });
    the_job_sees_the_change("issue_comment", &ISSUES, |at| {
        format!(
            r#"{{"action": "created", "comment": {{"updated_at": "{}"}}}}"#,
            rfc3339(at)
        )
    });
}

#[test]
fn a_push_drops_the_repository_s_contents() {
    the_job_sees_the_change("push", &OPEN_ISSUES, |at| {
        format!(
            r#"{{"head_commit": {{"timestamp": "{}"}}, "repository": {{"pushed_at": {}}}}}"#,
            rfc3339(at),
            at / 1000
        )
    });
}

#[test]
fn a_release_event_drops_the_releases() {
    the_job_sees_the_change("release", &OPEN_ISSUES, |at| {
        format!(
            r#"{{"action": "published", "release": {{"published_at": "{}"}}}}"#,
            rfc3339(at)
        )
    });
}

#[test]
fn a_workflow_run_drops_the_runs() {
    the_job_sees_the_change("workflow_run", &OPEN_ISSUES, |at| {
        format!(r#"{{"workflow_run": {{"updated_at": "{}"}}}}"#, rfc3339(at))
    });
    // No time in the payload: the job's start.
    the_job_sees_the_change("schedule", &OPEN_ISSUES, |_| "{}".to_owned());
}

#[test]
fn an_unknown_event_or_an_unreadable_payload_drops_everything_of_the_repository() {
    the_job_sees_the_change("some_future_event", &ISSUES, |_| "{}".to_owned());
    the_job_sees_the_change("pull_request", &ISSUES, |_| "{not json".to_owned());

    let world = World::new();
    let m = machine(&world, "missing");
    let old = m.cached(&ISSUES).ok().out();
    world.github.add_issue("o/r", "changed on github.com");
    let job = job(&m, "1", "pull_request", None);
    let run = job.cached(&ISSUES).ok();
    assert_ne!(run.out(), old, "a missing payload drops the repository");
    assert_eq!(run.stdout, m.gh(&ISSUES).ok().stdout);
}

#[test]
fn a_peer_s_entry_made_before_the_event_is_refused() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (a, b) = (machine(&world, "a"), machine(&world, "b"));
    let da = a.daemon(&key, &[]);
    let db = b.daemon(&key, &["--bootstrap", &da.addr]);
    assert!(db.wait_peers(1), "{}", db.log());

    let old = a.cached(&ISSUES).ok().out();
    world.github.add_issue("o/r", "changed on github.com");
    let at = now_ms();
    let now = b.gh(&ISSUES).ok().out();
    assert_ne!(old, now);

    // Outside a job, B takes A's entry (the test can fail).
    assert_eq!(
        b.cached(&ISSUES).ok().out(),
        old,
        "a peer's entry is served"
    );
    assert_eq!(b.stats()["hits"]["p2p"], 1);

    let payload = format!(r#"{{"issue": {{"updated_at": "{}"}}}}"#, rfc3339(at));
    let job = job(&b, "1", "issues", Some(&payload));
    assert_eq!(
        job.cached(&ISSUES).ok().out(),
        now,
        "the peer's entry from before the event is refused"
    );
    assert_eq!(b.stats()["hits"]["p2p"], 1, "not served by the peer again");
}

#[test]
fn a_peer_s_entry_made_after_the_event_is_used() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (a, b) = (machine(&world, "a"), machine(&world, "b"));
    let da = a.daemon(&key, &[]);
    let db = b.daemon(&key, &["--bootstrap", &da.addr]);
    assert!(db.wait_peers(1), "{}", db.log());

    // The event happened a minute ago; A fetched after it.
    let payload = format!(
        r#"{{"issue": {{"updated_at": "{}"}}}}"#,
        rfc3339(now_ms() - 60_000)
    );
    let fetched = a.cached(&ISSUES).ok().out();
    let before = world.requests();
    let job = job(&b, "1", "issues", Some(&payload));
    assert_eq!(job.cached(&ISSUES).ok().out(), fetched);
    assert_eq!(world.requests(), before, "no request to GitHub");
    assert_eq!(
        b.stats()["hits"]["p2p"],
        1,
        "the peer's newer entry is used"
    );
}
