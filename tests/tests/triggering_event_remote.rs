//! The event that started a GitHub Actions job, through the tiers that outlive a runner: an
//! answer a keeper kept, or one found in IPFS, that was cached before the event is not what the
//! job prints; outside a job the same answer is served (the control that proves each test can
//! fail). One test per family of events in core's table (`ghcache_core::event::changes_of`) and
//! per tier, each reading what that family's invalidation covers. `triggering_event.rs` does
//! the same through the local tier and a peer that is still there.

use std::path::Path;
use std::time::Duration;

use ghcache_core::now_ms;
use ghcache_tests::ipfs::IpfsNode;
use ghcache_tests::{github_time, wait_until, Daemon, Listen, Machine, Run, World};

/// A read, and the change on github.com (made from outside ghcache) that its answer shows.
#[derive(Clone, Copy)]
struct Read {
    args: &'static [&'static str],
    change: fn(&World),
}

/// Issues.
const ISSUE_LIST: Read = Read {
    args: &["issue", "list", "-R", "o/r"],
    change: open_issue,
};
/// Pull requests.
const PR_LIST: Read = Read {
    args: &["pr", "list", "-R", "o/r"],
    change: retitle_pr,
};
/// The repository itself (metadata): its count of open issues changes.
const REPO_API: Read = Read {
    args: &["api", "repos/o/r"],
    change: open_issue,
};
/// A GraphQL read of the repository, which the table does not classify: every event of the
/// repository drops it. For the families whose own resources the fake GitHub never changes
/// (workflow runs).
const OPEN_ISSUES: Read = Read {
    args: &[
        "api",
        "graphql",
        "-f",
        "query=query { repository(owner: \"o\", name: \"r\") { issues(states: OPEN) { totalCount } } }",
    ],
    change: open_issue,
};

fn open_issue(world: &World) {
    world.github.add_issue("o/r", "opened on github.com");
}

fn retitle_pr(world: &World) {
    world.github.retitle_pr("o/r", 2, "Retitled on github.com");
}

/// How long a runner's `ghcache gh` waits for the swarm: these tests count where answers come
/// from, and a first fetch over a new connection on a loaded 2-core machine can take longer than
/// the default (as in keeper.rs).
const P2P_DEADLINE: &str = "2s";

/// A machine of `world` whose answers share one scope in and out of Actions, so that only the
/// event can tell a job's answer from the one cached before it.
fn machine(world: &World, name: &str) -> Machine {
    let mut m = world.machine(name);
    m.set_env("GH_CACHE_SCOPE", "team");
    m.set_env("GH_CACHE_P2P_DEADLINE", P2P_DEADLINE);
    m
}

/// `m` as a job started by `event` with `payload` (written where GitHub's runner puts it).
fn job(m: &Machine, event: &str, payload: &str) -> Machine {
    let mut job = m.clone();
    let path = m.home.join("event.json");
    std::fs::write(&path, payload).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (name, value) in [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_REPOSITORY", "o/r"),
        ("GITHUB_EVENT_NAME", event),
        ("GITHUB_EVENT_PATH", &path.display().to_string()),
        ("GITHUB_RUN_ID", "1"),
        ("GITHUB_RUN_ATTEMPT", "1"),
        ("GITHUB_JOB", "test"),
    ] {
        job.set_env(name, value);
    }
    job
}

/// A hosted runner's daemon: it only dials out (behind NAT), to the keeper.
fn runner(m: &Machine, key: &Path, keeper: &Daemon) -> Daemon {
    let daemon = m.daemon_on(key, Listen::Nowhere, &["--bootstrap", &keeper.addr]);
    let knows = wait_until(Duration::from_secs(20), || {
        daemon.status().keepers.len() == 1
    });
    assert!(knows, "{} knows the keeper: {}", m.name, daemon.log());
    daemon
}

/// The user's view of the job's answer, once the answer from before the event was ready
/// elsewhere: what it printed and whether GitHub answered; then a second command of the job
/// after yet another change, which is answered from the job's own cache (the event is applied
/// once, and the refused old answer did not take the new one's place).
fn assert_the_job_sees_the_change(world: &World, job: &Machine, read: Read, now: &Run, what: &str) {
    let before = world.requests();
    let answer = job.cached(read.args).ok();
    assert_eq!(
        answer.out(),
        now.out(),
        "{what}: the job prints the new answer"
    );
    assert_eq!(answer.stderr, now.stderr, "{what}: the job's stderr");
    assert!(world.requests() > before, "{what}: GitHub answered the job");

    (read.change)(world);
    let before = world.requests();
    let again = job.cached(read.args).ok();
    assert_eq!(again.out(), now.out(), "{what}: once per job");
    assert_eq!(world.requests(), before, "{what}: answered from the cache");
}

/// Runner A (its daemon bootstrapping keeper K) caches `read`; A leaves once K kept its answer;
/// GitHub changes. Then, with K the only holder of A's answer: runner C, outside a job, is
/// served it by K (the control); runner B, a job started by `event` with the payload
/// `payload(time of the change)`, prints the new answer, though its daemon fetched the old one.
fn through_a_keeper(event: &str, read: Read, payload: impl Fn(u64) -> String) {
    let world = World::new();
    let key = world.swarm_key("fleet");
    let (k, a, b, c) = (
        machine(&world, "keeper"),
        machine(&world, "a"),
        machine(&world, "b"),
        machine(&world, "c"),
    );
    let keeper = k.daemon(&key, &["--keep"]);
    let da = runner(&a, &key, &keeper);
    let old = a.cached(read.args).ok();
    let entries = a.stats()["entries"].as_u64().unwrap_or(0);
    assert!(entries >= 1, "{event}: A cached its answer: {}", a.stats());
    // A's job ends and its runner goes, as a hosted runner does: K is all that is left of it.
    da.stop();
    let kept = wait_until(Duration::from_secs(20), || {
        keeper.counters().kept >= entries
    });
    assert!(
        kept,
        "{event}: the keeper kept A's entries: {}",
        keeper.log()
    );

    (read.change)(&world);
    let at = now_ms();
    let now = c.gh(read.args).ok();
    assert_ne!(
        old.out(),
        now.out(),
        "{event}: the change shows in gh's answer"
    );

    // The control: outside a job, a runner that comes after is served A's answer by K.
    let dc = runner(&c, &key, &keeper);
    let before = world.requests();
    let control = c.cached(read.args).ok();
    assert_eq!(
        control.out(),
        old.out(),
        "{event}: outside a job the keeper's answer is served (the test can fail)\nK: {}\nC: {}",
        keeper.log(),
        dc.log()
    );
    assert_eq!(world.requests(), before, "{event}: no request for C");
    assert_eq!(
        c.stats()["hits"]["p2p"],
        1,
        "{event}: C's answer came from K"
    );
    drop(dc);

    let db = runner(&b, &key, &keeper);
    let job = job(&b, event, &payload(at));
    assert_the_job_sees_the_change(&world, &job, read, &now, &format!("{event} via a keeper"));
    assert_eq!(
        b.stats()["hits"]["p2p"],
        0,
        "{event}: the keeper's answer is not served"
    );
    // B's daemon did fetch it from K: the job refused it, it was not out of reach.
    assert!(
        db.counters().hits >= 1,
        "{event}: B's daemon found K's entry: {}",
        db.log()
    );
}

/// A machine of the swarm whose key is `key` that uses `node` as its IPFS node, without a
/// daemon: each command reads and adds to the node itself.
fn ipfs_member(world: &World, name: &str, node: &IpfsNode, key: &Path) -> Machine {
    let mut m = machine(world, name);
    // The commands' own answers alone (as in ipfs_tier.rs): one entry each.
    m.set_env("GH_CACHE_HTTP", "0");
    m.set_env("GH_CACHE_IPFS", "1");
    m.set_env("GH_CACHE_IPFS_API", &node.api_url());
    m.set_env("GH_CACHE_SWARM_KEY_FILE", &key.display().to_string());
    m
}

/// Machine A caches `read` and it lands in IPFS; GitHub changes. Then: machine C, outside a
/// job, is answered by IPFS with A's answer (the control); machine B, a job started by `event`
/// with the payload `payload(time of the change)`, prints the new answer.
fn through_ipfs(event: &str, read: Read, payload: impl Fn(u64) -> String) {
    let world = World::new();
    let node = IpfsNode::start();
    let key = world.swarm_key("team");
    let (a, b, c) = (
        ipfs_member(&world, "a", &node, &key),
        ipfs_member(&world, "b", &node, &key),
        ipfs_member(&world, "c", &node, &key),
    );
    let old = a.cached(read.args).ok();
    let added = wait_until(Duration::from_secs(15), || {
        a.stats()["ipfs_entries"].as_u64().unwrap_or(0) >= 1
    });
    assert!(added, "{event}: not added to IPFS: {}", a.stats());

    (read.change)(&world);
    let at = now_ms();
    let now = c.gh(read.args).ok();
    assert_ne!(
        old.out(),
        now.out(),
        "{event}: the change shows in gh's answer"
    );

    let before = world.requests();
    let control = c.cached(read.args).ok();
    assert_eq!(
        control.out(),
        old.out(),
        "{event}: outside a job IPFS's answer is served (the test can fail)"
    );
    assert_eq!(world.requests(), before, "{event}: no request for C");
    assert_eq!(
        c.stats()["hits"]["ipfs"],
        1,
        "{event}: C's answer came from IPFS"
    );

    let job = job(&b, event, &payload(at));
    assert_the_job_sees_the_change(&world, &job, read, &now, &format!("{event} via IPFS"));
    assert_eq!(
        b.stats()["hits"]["ipfs"],
        0,
        "{event}: IPFS's answer is not served"
    );
}

fn push_payload(at: u64) -> String {
    format!(
        r#"{{"ref": "refs/heads/main", "head_commit": {{"timestamp": "{}"}},
           "repository": {{"full_name": "o/r", "pushed_at": {}}}}}"#,
        github_time(at),
        at / 1000
    )
}

#[test]
fn through_a_keeper_a_push_drops_the_pull_requests() {
    through_a_keeper("push", PR_LIST, push_payload);
}

#[test]
fn through_ipfs_a_push_drops_the_pull_requests() {
    through_ipfs("push", PR_LIST, push_payload);
}

#[test]
fn through_a_keeper_a_pull_request_event_drops_the_pull_requests() {
    through_a_keeper("pull_request", PR_LIST, |at| {
        format!(
            r#"{{"action": "edited", "number": 2, "pull_request": {{"number": 2,
               "updated_at": "{}", "head": {{"repo": {{"full_name": "fork/r"}}}}}}}}"#,
            github_time(at)
        )
    });
}

#[test]
fn through_ipfs_a_pull_request_target_event_drops_the_pull_requests() {
    through_ipfs("pull_request_target", PR_LIST, |at| {
        format!(
            r#"{{"action": "edited", "number": 2, "pull_request": {{"number": 2,
               "updated_at": "{}"}}}}"#,
            github_time(at)
        )
    });
}

#[test]
fn through_a_keeper_an_issues_event_drops_the_issues() {
    through_a_keeper("issues", ISSUE_LIST, |at| {
        format!(
            r#"{{"action": "opened", "issue": {{"number": 3, "updated_at": "{}"}}}}"#,
            github_time(at)
        )
    });
}

#[test]
fn through_ipfs_an_issue_comment_drops_the_issues() {
    through_ipfs("issue_comment", ISSUE_LIST, |at| {
        format!(
            r#"{{"action": "created", "issue": {{"number": 1}},
               "comment": {{"updated_at": "{}"}}}}"#,
            github_time(at)
        )
    });
}

fn release_payload(at: u64) -> String {
    format!(
        r#"{{"action": "published", "release": {{"tag_name": "v2.0.0",
           "published_at": "{}"}}}}"#,
        github_time(at)
    )
}

#[test]
fn through_a_keeper_a_release_drops_the_repository_s_metadata() {
    through_a_keeper("release", REPO_API, release_payload);
}

#[test]
fn through_ipfs_a_release_drops_the_repository_s_metadata() {
    through_ipfs("release", REPO_API, release_payload);
}

/// A label event's payload holds no time of the write: the job's start stands for it.
fn label_payload(_: u64) -> String {
    r#"{"action": "created", "label": {"name": "bug"}}"#.to_owned()
}

#[test]
fn through_a_keeper_a_label_event_drops_the_issues() {
    through_a_keeper("label", ISSUE_LIST, label_payload);
}

#[test]
fn through_ipfs_a_label_event_drops_the_issues() {
    through_ipfs("label", ISSUE_LIST, label_payload);
}

/// A branch or tag made or deleted: the payload dates it by the repository's last push.
fn ref_payload(at: u64) -> String {
    format!(
        r#"{{"ref": "feature", "ref_type": "branch",
           "repository": {{"full_name": "o/r", "pushed_at": "{}"}}}}"#,
        github_time(at)
    )
}

#[test]
fn through_a_keeper_a_branch_created_drops_the_pull_requests() {
    through_a_keeper("create", PR_LIST, ref_payload);
}

#[test]
fn through_ipfs_a_branch_deleted_drops_the_pull_requests() {
    through_ipfs("delete", PR_LIST, ref_payload);
}

#[test]
fn through_a_keeper_a_workflow_run_drops_what_the_table_does_not_classify() {
    through_a_keeper("workflow_run", OPEN_ISSUES, |at| {
        format!(
            r#"{{"action": "completed", "workflow_run": {{"updated_at": "{}"}}}}"#,
            github_time(at)
        )
    });
}

#[test]
fn through_ipfs_a_schedule_drops_what_the_table_does_not_classify() {
    // No time in the payload: the job's start.
    through_ipfs("schedule", OPEN_ISSUES, |_| {
        r#"{"schedule": "0 * * * *"}"#.to_owned()
    });
}

#[test]
fn through_a_keeper_an_unknown_event_drops_everything_of_the_repository() {
    through_a_keeper("some_future_event", ISSUE_LIST, |_| "{}".to_owned());
}

#[test]
fn through_ipfs_an_event_the_table_does_not_know_drops_everything_of_the_repository() {
    // A real event of GitHub's that the table does not name.
    through_ipfs("discussion", ISSUE_LIST, |at| {
        format!(
            r#"{{"action": "created", "discussion": {{"updated_at": "{}"}}}}"#,
            github_time(at)
        )
    });
}

/// The job's own answer is stored after it refused the keeper's older one for the same key (it
/// was skipped as "handed over by the daemon", which stores only what it handed over).
#[test]
fn a_job_stores_its_own_answer_after_refusing_a_keeper_s_older_one() {
    let world = World::new();
    let key = world.swarm_key("fleet");
    let (k, a, mut b) = (
        machine(&world, "keeper"),
        machine(&world, "a"),
        machine(&world, "b"),
    );
    // Without the HTTP level, whose stored answer would otherwise answer the job's second
    // command and hide a command-level answer that was not stored.
    b.set_env("GH_CACHE_HTTP", "0");
    let keeper = k.daemon(&key, &["--keep"]);
    let da = runner(&a, &key, &keeper);
    a.cached(ISSUE_LIST.args).ok();
    let entries = a.stats()["entries"].as_u64().unwrap_or(0);
    da.stop();
    assert!(
        wait_until(Duration::from_secs(20), || keeper.counters().kept
            >= entries),
        "{}",
        keeper.log()
    );
    open_issue(&world);

    let db = runner(&b, &key, &keeper);
    let job = job(&b, "some_future_event", "{}");
    let first = job.cached(ISSUE_LIST.args).ok();
    assert!(
        first.out().contains("opened on github.com"),
        "{}",
        first.out()
    );
    assert!(
        db.counters().hits >= 1,
        "the daemon handed over K's entry: {}",
        db.log()
    );
    assert_eq!(
        b.stats()["entries"],
        1,
        "the job's answer was stored: {}",
        b.stats()
    );
    let before = world.requests();
    assert_eq!(job.cached(ISSUE_LIST.args).ok().out(), first.out());
    assert_eq!(
        world.requests(),
        before,
        "the job's second command is a local hit"
    );
}
