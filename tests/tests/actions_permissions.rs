//! In GitHub Actions, jobs of one repository share answers only when their tokens read the
//! same: the jobs that declare the same `permissions:` (`ghcache actions declare
//! --permissions`), or, for a job that declares none, runs of the same job of the same
//! workflow at the same commit. A job whose token reads less never gets what a broader one
//! fetched: its request reaches GitHub.

use ghcache_tests::{Machine, World};

const ISSUES: [&str; 4] = ["issue", "list", "-R", "o/r"];

/// Job `id` of workflow `ci.yml` at one commit, in a run of repository `o/r` on `machine`,
/// with its own token `token`, after its setup step ran `ghcache actions declare` with
/// `permissions` and appended what it printed to `$GITHUB_ENV`.
fn job(machine: &Machine, id: &str, token: &str, permissions: Option<&str>) -> Machine {
    let mut job = machine.clone();
    job.unset_env("GH_TOKEN");
    for (name, value) in [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_REPOSITORY", "O/r"),
        (
            "GITHUB_WORKFLOW_REF",
            "O/r/.github/workflows/ci.yml@refs/heads/main",
        ),
        (
            "GITHUB_WORKFLOW_SHA",
            "4f1c1d8e2b0a9c7d6e5f4a3b2c1d0e9f8a7b6c5d",
        ),
        ("GITHUB_JOB", id),
        ("GITHUB_TOKEN", token),
    ] {
        job.set_env(name, value);
    }
    let mut args = vec!["actions", "declare"];
    if let Some(permissions) = permissions {
        args.extend(["--permissions", permissions]);
    }
    let printed = job.ghcache(&args).ok().out();
    for line in printed.lines() {
        let (name, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not NAME=VALUE: {printed:?}"));
        assert!(!value.contains(token), "{printed}");
        job.set_env(name, value);
    }
    job
}

/// Requests that reached the fake GitHub since `before`, by the token each carried.
fn tokens_since(world: &World, before: usize) -> Vec<String> {
    let log = world.github.requests();
    log[before..]
        .iter()
        .map(|r| r.token.clone().unwrap_or_default())
        .collect()
}

/// The job with `token` asked GitHub itself since `before`, and nobody else did.
#[track_caller]
fn assert_asked_by(world: &World, before: usize, token: &str) {
    let asked = tokens_since(world, before);
    assert!(
        !asked.is_empty() && asked.iter().all(|t| t == token),
        "GitHub should have been asked with {token} only: {asked:?}"
    );
}

#[test]
fn a_job_declaring_fewer_permissions_does_not_get_what_a_broader_job_fetched() {
    let world = World::new();
    let runner = world.machine("runner");
    let triage = job(
        &runner,
        "triage",
        "ghs_triage",
        Some("contents: read\nissues: read\npull-requests: read"),
    );
    let fetched = triage.cached(&ISSUES).ok();
    let lint = job(&runner, "lint", "ghs_lint", Some("contents: read"));
    let before = world.requests();
    let answered = lint.cached(&ISSUES).ok();
    assert_asked_by(&world, before, "ghs_lint");
    assert_eq!(answered.stdout, fetched.stdout, "what the fake GitHub says");
    // The broader job's answer is still its own.
    let before = world.requests();
    triage.cached(&ISSUES).ok();
    assert_eq!(world.requests(), before);
}

#[test]
fn jobs_declaring_the_same_permissions_share_however_they_write_them() {
    let world = World::new();
    let runner = world.machine("runner");
    let first = job(
        &runner,
        "test",
        "ghs_test",
        Some("contents: read, issues: read"),
    );
    let fetched = first.cached(&ISSUES).ok();
    let other = job(
        &runner,
        "docs",
        "ghs_docs",
        Some("{ issues: 'read', contents: read, id-token: write }"),
    );
    let before = world.requests();
    let answered = other.cached(&ISSUES).ok();
    assert_eq!(answered.stdout, fetched.stdout);
    assert_eq!(
        tokens_since(&world, before),
        Vec::<String>::new(),
        "the other job's answer came from the cache"
    );
}

#[test]
fn undeclared_jobs_share_only_with_runs_of_the_same_job() {
    let world = World::new();
    let runner = world.machine("runner");
    job(&runner, "build", "ghs_build", None)
        .cached(&ISSUES)
        .ok();
    let before = world.requests();
    job(&runner, "deploy", "ghs_deploy", None)
        .cached(&ISSUES)
        .ok();
    // Another job of the same workflow asks GitHub itself.
    assert_asked_by(&world, before, "ghs_deploy");
    // Another run of the same job (a re-run, a matrix leg) reads with the same block.
    let before = world.requests();
    job(&runner, "build", "ghs_build_again", None)
        .cached(&ISSUES)
        .ok();
    assert_eq!(tokens_since(&world, before), Vec::<String>::new());
    // A job that declares permissions is not one that declared none.
    let before = world.requests();
    job(&runner, "build", "ghs_declared", Some("read-all"))
        .cached(&ISSUES)
        .ok();
    assert_asked_by(&world, before, "ghs_declared");
}

#[test]
fn a_declaration_that_is_not_a_permissions_block_fails_with_one_line() {
    let world = World::new();
    let mut machine = world.machine("declare");
    machine.set_env("GITHUB_TOKEN", "ghs_job");
    let run = machine.ghcache(&["actions", "declare", "--permissions", "issues: reed"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.out(), "");
    assert_eq!(
        run.err(),
        "ghcache: error: --permissions: issues: \"reed\" is not read, write or none\n"
    );
}
