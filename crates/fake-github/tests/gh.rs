//! The real gh against the fake GitHub: every command ghcache's tests rely on works, piped and on
//! a (forced) terminal, and the fake behaves like GitHub where it matters (ETags, faults, writes).

use std::process::{Command, Output};

use fake_github::{FakeGithub, Fault};

fn gh_available() -> bool {
    let found = Command::new("gh")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: the gh binary is not on PATH (apt-get install gh)");
    }
    found
}

fn gh(server: &FakeGithub, args: &[&str], tty: bool) -> Output {
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut command = Command::new("gh");
    command
        .args(args)
        .envs(server.gh_env())
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("GITHUB_TOKEN")
        .env("HOME", home.path())
        .env("GH_CONFIG_DIR", home.path().join("gh"))
        .env("TMPDIR", home.path());
    if tty {
        command.env("GH_FORCE_TTY", "100");
    }
    command.output().unwrap_or_else(|e| panic!("gh: {e}"))
}

fn ok(server: &FakeGithub, args: &[&str], tty: bool) -> String {
    let out = gh(server, args, tty);
    assert!(
        out.status.success(),
        "gh {args:?} (tty={tty}) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_cached_command_works_piped_and_on_a_terminal() {
    if !gh_available() {
        return;
    }
    let server = FakeGithub::start().unwrap_or_else(|e| panic!("{e}"));
    let commands: &[&[&str]] = &[
        &["repo", "view", "acme/widgets"],
        &["repo", "view", "acme/widgets", "--json", "name,description"],
        &["repo", "list", "acme"],
        &["pr", "list", "-R", "acme/widgets"],
        &["pr", "view", "1", "-R", "acme/widgets"],
        &["pr", "diff", "1", "-R", "acme/widgets"],
        &["pr", "checks", "1", "-R", "acme/widgets"],
        &["issue", "list", "-R", "acme/widgets"],
        &["issue", "view", "1", "-R", "acme/widgets"],
        &["run", "list", "-R", "acme/widgets"],
        &["release", "list", "-R", "acme/widgets"],
        &["release", "view", "v1.0.0", "-R", "acme/widgets"],
        &["workflow", "list", "-R", "acme/widgets"],
        &["label", "list", "-R", "acme/widgets"],
        &["search", "repos", "foo"],
        &["search", "issues", "foo"],
        &["api", "repos/acme/widgets"],
        &["api", "user"],
        &["api", "graphql", "-f", "query=query{viewer{login}}"],
        &["api", "--paginate", "repos/acme/widgets/issues"],
    ];
    for args in commands {
        for tty in [false, true] {
            let out = ok(&server, args, tty);
            assert!(!out.is_empty(), "gh {args:?} printed nothing");
        }
    }
    let issues = ok(&server, &["issue", "list", "-R", "acme/widgets"], false);
    assert!(issues.contains("acme/widgets"), "{issues}");
    assert!(server.request_count() >= commands.len() * 2);
}

#[test]
fn repositories_have_their_own_data() {
    if !gh_available() {
        return;
    }
    let server = FakeGithub::start().unwrap_or_else(|e| panic!("{e}"));
    let widgets = ok(&server, &["issue", "list", "-R", "acme/widgets"], false);
    let gadgets = ok(&server, &["issue", "list", "-R", "acme/gadgets"], false);
    assert_ne!(widgets, gadgets);
    assert!(gadgets.contains("acme/gadgets"), "{gadgets}");
}

#[test]
fn a_matching_etag_is_a_free_304() {
    if !gh_available() {
        return;
    }
    let server = FakeGithub::start().unwrap_or_else(|e| panic!("{e}"));
    let head = ok(&server, &["api", "-i", "repos/o/r"], false);
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("Etag: "))
        .unwrap_or_else(|| panic!("no etag in {head}"))
        .to_owned();
    server.clear_log();
    let header = format!("If-None-Match: {etag}");
    let out = gh(&server, &["api", "repos/o/r", "-H", &header], false);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 304"));
    let log = server.requests();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!((log[0].status, server.charged_count()), (304, 0));
}

#[test]
fn faults_make_gh_fail_until_cleared() {
    if !gh_available() {
        return;
    }
    let server = FakeGithub::start().unwrap_or_else(|e| panic!("{e}"));
    for fault in [Fault::ServerError, Fault::RateLimited] {
        server.set_fault(Some(fault));
        for args in [
            &["release", "list", "-R", "o/r"][..],
            &["api", "repos/o/r"][..],
        ] {
            let out = gh(&server, args, false);
            assert_ne!(out.status.code(), Some(0), "{fault:?} {args:?}");
        }
    }
    server.set_fault(None);
    ok(&server, &["release", "list", "-R", "o/r"], false);
}

#[test]
fn writes_change_what_is_listed() {
    if !gh_available() {
        return;
    }
    let server = FakeGithub::start().unwrap_or_else(|e| panic!("{e}"));
    server.add_issue("o/r", "added by the test");
    let create = [
        "issue",
        "create",
        "-R",
        "o/r",
        "-t",
        "created by gh",
        "-b",
        "b",
    ];
    ok(&server, &create, false);
    ok(
        &server,
        &["api", "repos/o/r/issues", "-f", "title=posted by gh api"],
        false,
    );
    ok(&server, &["issue", "close", "1", "-R", "o/r"], false);
    let listed = ok(&server, &["issue", "list", "-R", "o/r"], false);
    for title in ["added by the test", "created by gh", "posted by gh api"] {
        assert!(listed.contains(title), "{title}: {listed}");
    }
    assert!(
        !listed.contains("Crash on start"),
        "closed issues are not listed: {listed}"
    );
    let operations: Vec<_> = server
        .requests()
        .into_iter()
        .filter_map(|r| r.operation)
        .collect();
    assert!(operations.iter().any(|o| o == "mutation"), "{operations:?}");
}
