//! One token per job: GitHub's ETags depend on the token, so a stale answer is revalidated with
//! `If-None-Match` only under the token that obtained its ETag, else with `If-Modified-Since`;
//! and in GitHub Actions only the job's own declared token shares the repository's answers.

use fake_github::{Conditional, RequestRecord};
use ghcache_tests::{Machine, World};

const REPO: [&str; 2] = ["api", "repos/o/r"];

/// What reached the fake GitHub, as a user of the log reads it.
fn seen(log: &[RequestRecord]) -> Vec<(u16, bool, Option<Conditional>, Option<&str>)> {
    log.iter()
        .map(|r| (r.status, r.charged, r.conditional, r.token.as_deref()))
        .collect()
}

/// A machine whose answers are shared by whichever token it runs with (`GH_CACHE_SCOPE`), as
/// the jobs of one fleet are.
fn team_machine(world: &World, name: &str) -> Machine {
    let mut machine = world.machine(name);
    machine.set_env("GH_CACHE_SCOPE", "team");
    machine
}

#[test]
fn a_stale_answer_with_last_modified_costs_a_free_304_under_a_new_token() {
    let world = World::new();
    let mut machine = team_machine(&world, "next-token");
    machine.set_env("GH_TOKEN", "ghs_job_one");
    let first = machine.cached(&REPO).ok();
    machine.set_env("GH_CACHE_TTL_API", "0");
    machine.set_env("GH_TOKEN", "ghs_job_two");
    world.github.clear_log();
    let revalidated = machine.cached(&REPO).ok();
    assert_eq!(revalidated.stdout, first.stdout);
    assert_eq!(revalidated.stderr, first.stderr);
    assert_eq!(
        seen(&world.github.requests()),
        [(
            304,
            false,
            Some(Conditional::IfModifiedSince),
            Some("ghs_job_two")
        )],
        "the first token's ETag would not match: the date does, whatever the token"
    );
    assert_eq!(machine.stats()["revalidated"], 1);
}

#[test]
fn the_same_token_revalidates_with_its_etag() {
    let world = World::new();
    let mut machine = team_machine(&world, "same-token");
    machine.set_env("GH_TOKEN", "ghs_job_one");
    let first = machine.cached(&REPO).ok();
    machine.set_env("GH_CACHE_TTL_API", "0");
    world.github.clear_log();
    assert_eq!(machine.cached(&REPO).ok().stdout, first.stdout);
    assert_eq!(
        seen(&world.github.requests()),
        [(
            304,
            false,
            Some(Conditional::IfNoneMatch),
            Some("ghs_job_one")
        )]
    );
}

#[test]
fn a_token_from_hosts_yml_is_known_too() {
    let world = World::new();
    let mut machine = team_machine(&world, "hosts-yml");
    machine.unset_env("GH_TOKEN");
    std::fs::write(
        machine.home.join("gh-config/hosts.yml"),
        "github.localhost:\n    oauth_token: gho_from_the_file\n    user: octocat\n    git_protocol: https\n",
    )
    .unwrap_or_else(|e| panic!("hosts.yml: {e}"));
    let first = machine.cached(&REPO).ok();
    machine.set_env("GH_CACHE_TTL_API", "0");
    world.github.clear_log();
    assert_eq!(machine.cached(&REPO).ok().stdout, first.stdout);
    assert_eq!(
        seen(&world.github.requests()),
        [(
            304,
            false,
            Some(Conditional::IfNoneMatch),
            Some("gho_from_the_file")
        )]
    );
}

#[test]
fn a_list_under_a_new_token_is_fetched_whole_and_a_change_is_never_missed() {
    let world = World::new();
    let mut machine = team_machine(&world, "lists");
    machine.set_env("GH_TOKEN", "ghs_job_one");
    let issues = ["api", "repos/o/r/issues"];
    machine.cached(&issues).ok();
    machine.cached(&REPO).ok();
    machine.set_env("GH_CACHE_TTL_API", "0");
    machine.set_env("GH_TOKEN", "ghs_job_two");
    // Someone else opens an issue: the repository (its open issue count) changes too.
    world.github.add_issue("o/r", "opened elsewhere");
    world.github.clear_log();
    let listed = machine.cached(&issues).ok();
    assert!(
        listed.out().contains("opened elsewhere"),
        "{}",
        listed.out()
    );
    let repo = machine.cached(&REPO).ok();
    assert!(
        repo.out().contains("\"open_issues_count\":3"),
        "{}",
        repo.out()
    );
    assert_eq!(
        seen(&world.github.requests()),
        [
            // A list has no Last-Modified, and an ETag of another token cannot match.
            (200, true, None, Some("ghs_job_two")),
            (
                200,
                true,
                Some(Conditional::IfModifiedSince),
                Some("ghs_job_two")
            ),
        ]
    );
    assert_eq!(machine.cached(&REPO).ok().stdout, repo.stdout);
    assert_eq!(
        world.github.requests().last().map(|r| r.conditional),
        Some(Some(Conditional::IfNoneMatch)),
        "the new answer's ETag is this token's"
    );
}

/// A GitHub Actions job of repository `o/r` on `machine` (the same job of the same workflow,
/// run after run), whose own token is `job_token`; with `declared`, its setup step ran
/// `ghcache actions declare >> "$GITHUB_ENV"`.
fn job(machine: &Machine, job_token: &str, declared: bool) -> Machine {
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
    job.set_env("GITHUB_TOKEN", job_token);
    if declared {
        let printed = job.ghcache(&["actions", "declare"]).ok().out();
        for line in printed.lines() {
            let (name, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not NAME=VALUE: {printed:?}"));
            assert!(!value.contains(job_token), "{printed}");
            job.set_env(name, value);
        }
    }
    job
}

#[test]
fn an_answer_fetched_with_a_pat_is_never_served_to_the_job_token() {
    let world = World::new();
    let runner = world.machine("runner");
    let job_token = job(&runner, "ghs_job_one", true);
    let mut with_pat = job_token.clone();
    with_pat.set_env("GH_TOKEN", "ghp_personal");
    let args = ["issue", "list", "-R", "o/r"];
    with_pat.cached(&args).ok();
    let before = world.requests();
    job_token.cached(&args).ok();
    assert!(
        world.requests() > before,
        "the job token asked GitHub itself"
    );
    let log = world.github.requests();
    assert!(
        log[before..]
            .iter()
            .all(|r| r.token.as_deref() == Some("ghs_job_one")),
        "{log:?}"
    );
    // Each is now cached in its own scope.
    let before = world.requests();
    with_pat.cached(&args).ok();
    job_token.cached(&args).ok();
    assert_eq!(world.requests(), before);
}

#[test]
fn an_answer_fetched_with_the_job_token_is_never_served_to_a_pat() {
    let world = World::new();
    let runner = world.machine("runner");
    let job_token = job(&runner, "ghs_job_one", true);
    let mut with_pat = job_token.clone();
    with_pat.set_env("GH_TOKEN", "ghp_personal");
    let args = ["api", "repos/o/private"];
    job_token.cached(&args).ok();
    let before = world.requests();
    with_pat.cached(&args).ok();
    let log = world.github.requests();
    assert_eq!(log.len(), before + 1, "{log:?}");
    assert_eq!(log[before].token.as_deref(), Some("ghp_personal"));
}

#[test]
fn with_the_declaration_two_jobs_with_different_tokens_share_answers() {
    let world = World::new();
    let runner = world.machine("runner");
    let first = job(&runner, "ghs_job_one", true);
    let args = ["issue", "list", "-R", "o/r"];
    let fetched = first.cached(&args).ok();
    first.cached(&REPO).ok();
    let mut second = job(&runner, "ghs_job_two", true);
    let before = world.requests();
    assert_eq!(second.cached(&args).ok().stdout, fetched.stdout);
    assert_eq!(
        world.requests(),
        before,
        "the second job's answer was cached"
    );
    // The first job's ETag is not the second's; its date serves, for free.
    second.set_env("GH_CACHE_TTL_API", "0");
    world.github.clear_log();
    second.cached(&REPO).ok();
    assert_eq!(
        seen(&world.github.requests()),
        [(
            304,
            false,
            Some(Conditional::IfModifiedSince),
            Some("ghs_job_two")
        )]
    );
}

#[test]
fn without_the_declaration_each_job_keeps_to_itself() {
    let world = World::new();
    let runner = world.machine("runner");
    let args = ["issue", "list", "-R", "o/r"];
    job(&runner, "ghs_job_one", false).cached(&args).ok();
    let before = world.requests();
    job(&runner, "ghs_job_two", false).cached(&args).ok();
    assert!(world.requests() > before);
    // A declaration made for another job's token does not fit this one.
    let mut stale = job(&runner, "ghs_job_one", true);
    stale.set_env("GITHUB_TOKEN", "ghs_job_three");
    let before = world.requests();
    stale.cached(&args).ok();
    assert!(world.requests() > before);
}

#[test]
fn declare_without_the_job_token_says_what_to_do() {
    let world = World::new();
    let mut machine = world.machine("declare");
    machine.unset_env("GITHUB_TOKEN");
    let run = machine.ghcache(&["actions", "declare"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.out(), "");
    let err = run.err();
    assert!(
        err.starts_with("ghcache: error: GITHUB_TOKEN is not set") && err.lines().count() == 1,
        "{err}"
    );
}
