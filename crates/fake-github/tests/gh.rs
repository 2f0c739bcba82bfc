//! The real gh against the fake GitHub: every command ghcache's tests rely on works, piped and on
//! a (forced) terminal, and the fake behaves like GitHub where it matters (ETags, free 304s,
//! faults, writes). The HTTP controls and the binary are driven over plain HTTP.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fake_github::{Conditional, FakeGithub, Fault};
use ghcache_core::testkit::skip;

fn gh_available() -> bool {
    let found = Command::new("gh")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        skip("the gh binary is not on PATH (apt-get install gh)");
    }
    found
}

fn start() -> FakeGithub {
    FakeGithub::start().unwrap_or_else(|e| panic!("cannot start the fake GitHub: {e}"))
}

/// Runs gh with a fresh config dir, home and temp dir, in `dir` if given.
fn gh_in(server: &FakeGithub, dir: Option<&Path>, args: &[&str], tty: bool) -> Output {
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut command = Command::new("gh");
    command
        .args(args)
        .envs(server.gh_env())
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_ENTERPRISE_TOKEN")
        .env_remove("GH_REPO")
        .env_remove("GH_FORCE_TTY")
        .env("HOME", home.path())
        .env("GH_CONFIG_DIR", home.path().join("gh"))
        .env("TMPDIR", home.path());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    if tty {
        command.env("GH_FORCE_TTY", "100");
    }
    command.output().unwrap_or_else(|e| panic!("gh: {e}"))
}

fn gh(server: &FakeGithub, args: &[&str], tty: bool) -> Output {
    gh_in(server, None, args, tty)
}

/// Runs gh, asserts it exits 0, returns its stdout.
fn ok_in(server: &FakeGithub, dir: Option<&Path>, args: &[&str], tty: bool) -> String {
    let out = gh_in(server, dir, args, tty);
    assert!(
        out.status.success(),
        "gh {args:?} (tty={tty}) exited {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ok(server: &FakeGithub, args: &[&str], tty: bool) -> String {
    ok_in(server, None, args, tty)
}

/// The commands ghcache caches, each with something its output must mention.
const READS: &[(&[&str], &str)] = &[
    (&["repo", "view", "acme/widgets"], "acme/widgets"),
    (
        &["repo", "view", "acme/widgets", "--json", "name,description"],
        "acme/widgets",
    ),
    (&["repo", "list", "acme"], "acme/widgets"),
    (&["pr", "list", "-R", "acme/widgets"], "acme/widgets"),
    (&["pr", "view", "1", "-R", "acme/widgets"], "acme/widgets"),
    (&["pr", "diff", "1", "-R", "acme/widgets"], "acme/widgets"),
    (&["pr", "checks", "1", "-R", "acme/widgets"], "acme/widgets"),
    (&["issue", "list", "-R", "acme/widgets"], "acme/widgets"),
    (
        &["issue", "view", "1", "-R", "acme/widgets"],
        "acme/widgets",
    ),
    (&["run", "list", "-R", "acme/widgets"], "acme/widgets"),
    (&["release", "list", "-R", "acme/widgets"], "v1.0.0"),
    (
        &["release", "view", "v1.0.0", "-R", "acme/widgets"],
        "acme/widgets",
    ),
    (&["workflow", "list", "-R", "acme/widgets"], "CI"),
    (&["label", "list", "-R", "acme/widgets"], "bug"),
    (&["search", "repos", "foo"], "foo"),
    (&["search", "issues", "foo"], "foo"),
    (&["api", "repos/acme/widgets"], "acme/widgets"),
    (&["api", "user"], "octocat"),
    (
        &["api", "graphql", "-f", "query=query{viewer{login}}"],
        "octocat",
    ),
    (
        &["api", "--paginate", "repos/acme/widgets/issues"],
        "acme/widgets",
    ),
];

#[test]
fn every_cached_command_works_piped_and_on_a_terminal() {
    if !gh_available() {
        return;
    }
    let server = start();
    for (args, mentions) in READS {
        for tty in [false, true] {
            let out = ok(&server, args, tty);
            assert!(
                out.contains(mentions),
                "gh {args:?} (tty={tty}) does not mention {mentions:?}:\n{out}"
            );
        }
    }
    for tty in [false, true] {
        let out = ok(&server, &["api", "-i", "repos/acme/widgets"], tty);
        // On a terminal gh colours header names: match the name and the value apart.
        for header in ["Etag", ": W/\"", "X-Ratelimit-Remaining", "acme/widgets"] {
            assert!(out.contains(header), "no {header:?} (tty={tty}):\n{out}");
        }
    }
    let log = server.requests();
    assert!(log.len() >= READS.len() * 2, "{log:?}");
    assert!(log.iter().all(|r| r.status == 200 && r.charged), "{log:?}");
    assert!(log
        .iter()
        .any(|r| r.path == "/graphql" && r.operation.as_deref() == Some("query")));
    assert!(log
        .iter()
        .any(|r| r.path == "/repos/acme/widgets" && r.operation.is_none()));
}

#[test]
fn answers_do_not_change_between_runs() {
    if !gh_available() {
        return;
    }
    let server = start();
    for (args, _) in READS {
        for tty in [false, true] {
            let first = ok(&server, args, tty);
            let second = ok(&server, args, tty);
            assert_eq!(first, second, "gh {args:?} (tty={tty})");
        }
    }
}

#[test]
fn issue_list_resolves_the_repository_from_the_git_remote() {
    if !gh_available() {
        return;
    }
    let checkout = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(checkout.path())
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !git(&["init", "-q"]) {
        skip("cannot make a git checkout: git is not on PATH (apt-get install git)");
        return;
    }
    assert!(git(&[
        "remote",
        "add",
        "origin",
        "https://github.localhost/acme/widgets.git"
    ]));
    let server = start();
    for tty in [false, true] {
        let out = ok_in(&server, Some(checkout.path()), &["issue", "list"], tty);
        assert!(out.contains("Crash on start in acme/widgets"), "{out}");
    }
}

#[test]
fn repositories_have_their_own_data() {
    if !gh_available() {
        return;
    }
    let server = start();
    for command in [&["issue", "list", "-R"][..], &["repo", "view"][..]] {
        let answer = |repo: &str| {
            let mut args = command.to_vec();
            args.push(repo);
            ok(&server, &args, false)
        };
        let (widgets, gadgets) = (answer("acme/widgets"), answer("acme/gadgets"));
        assert_ne!(widgets, gadgets);
        assert!(gadgets.contains("acme/gadgets"), "{gadgets}");
        assert!(!gadgets.contains("acme/widgets"), "{gadgets}");
    }
}

/// The `Etag` header `gh api -i` prints for `path`.
fn etag(server: &FakeGithub, path: &str) -> String {
    let head = ok(server, &["api", "-i", path], false);
    head.lines()
        .find_map(|l| l.strip_prefix("Etag: "))
        .unwrap_or_else(|| panic!("no etag in {head}"))
        .to_owned()
}

#[test]
fn a_matching_etag_is_a_free_304() {
    if !gh_available() {
        return;
    }
    let server = start();
    let etag = etag(&server, "repos/o/r");
    assert!(etag.starts_with("W/\""), "{etag}");
    server.clear_log();
    let header = format!("If-None-Match: {etag}");
    for tty in [false, true] {
        let out = gh(&server, &["api", "repos/o/r", "-H", &header], tty);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 304"));
    }
    let log = server.requests();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log.iter().all(|r| r.status == 304 && !r.charged), "{log:?}");
    assert_eq!(server.charged_count(), 0);
    let stale = gh(
        &server,
        &["api", "repos/o/r", "-H", "If-None-Match: W/\"0\""],
        false,
    );
    assert!(stale.status.success());
    assert_eq!((server.request_count(), server.charged_count()), (3, 1));
}

#[test]
fn etags_change_when_issues_change() {
    if !gh_available() {
        return;
    }
    let server = start();
    let before = (
        etag(&server, "repos/o/r/issues"),
        etag(&server, "repos/o/r"),
    );
    assert_eq!(before.0, etag(&server, "repos/o/r/issues"));
    server.add_issue("o/r", "a new one");
    let after = (
        etag(&server, "repos/o/r/issues"),
        etag(&server, "repos/o/r"),
    );
    assert_ne!(before.0, after.0);
    assert_ne!(before.1, after.1);
    server.clear_log();
    let header = format!("If-None-Match: {}", before.0);
    let out = ok(&server, &["api", "repos/o/r/issues", "-H", &header], false);
    assert!(out.contains("a new one"), "{out}");
    assert_eq!(server.charged_count(), 1);
}

/// `gh api -i <path>` under `token`: its stdout.
fn api_as(server: &FakeGithub, token: &str, path: &str) -> String {
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new("gh")
        .args(["api", "-i", path])
        .envs(server.gh_env())
        .env("GH_TOKEN", token)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("GITHUB_TOKEN")
        .env("HOME", home.path())
        .env("GH_CONFIG_DIR", home.path().join("gh"))
        .env("TMPDIR", home.path())
        .output()
        .unwrap_or_else(|e| panic!("gh: {e}"));
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn header_of(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {name} in {head}"))
        .trim_end()
        .to_owned()
}

#[test]
fn etags_depend_on_the_token_as_github_s_do() {
    if !gh_available() {
        return;
    }
    let server = start();
    let one = api_as(&server, "ghs_job_one", "repos/o/r");
    let two = api_as(&server, "ghs_job_two", "repos/o/r");
    let (etag_one, etag_two) = (header_of(&one, "Etag"), header_of(&two, "Etag"));
    assert_ne!(etag_one, etag_two, "same body, another token");
    assert_eq!(
        etag_one,
        header_of(&api_as(&server, "ghs_job_one", "repos/o/r"), "Etag")
    );
    let log = server.requests();
    let tokens: Vec<_> = log.iter().map(|r| r.token.as_deref()).collect();
    assert_eq!(
        tokens,
        [
            Some("ghs_job_one"),
            Some("ghs_job_two"),
            Some("ghs_job_one")
        ],
        "gh sends GH_TOKEN"
    );
    let port = server.port();
    server.clear_log();
    let under = |token: &str| {
        let auth = format!("Authorization: token {token}");
        let condition = format!("If-None-Match: {etag_one}");
        http(port, "GET", "/repos/o/r", &[&auth, &condition]).0
    };
    assert_eq!(under("ghs_job_one"), 304);
    assert_eq!(under("ghs_job_two"), 200, "an ETag of another token");
    let log = server.requests();
    assert_eq!(
        log.iter()
            .map(|r| (r.status, r.charged, r.conditional))
            .collect::<Vec<_>>(),
        [
            (304, false, Some(Conditional::IfNoneMatch)),
            (200, true, Some(Conditional::IfNoneMatch))
        ]
    );
}

#[test]
fn if_modified_since_is_a_free_304_whatever_the_token() {
    let server = start();
    let port = server.port();
    let (status, head, _) = http(port, "GET", "/repos/o/r", &["Authorization: token one"]);
    assert_eq!(status, 200);
    let last_modified = header_of(&head, "last-modified");
    assert_eq!(last_modified, "thu, 01 jan 2026 00:00:00 gmt", "{head}");
    assert!(
        head.contains("\r\ndate: "),
        "GitHub dates its answers: {head}"
    );
    let since = "If-Modified-Since: Thu, 01 Jan 2026 00:00:00 GMT";
    server.clear_log();
    let (status, _, body) = http(
        port,
        "GET",
        "/repos/o/r",
        &["Authorization: token two", since],
    );
    assert_eq!((status, body.as_str()), (304, ""));
    let log = server.requests();
    assert_eq!(
        (log[0].status, log[0].charged, log[0].conditional),
        (304, false, Some(Conditional::IfModifiedSince))
    );
    // A write changes the repository (its open issue count) and the new issue, not the others.
    let number = server.add_issue("o/r", "a new one");
    let (status, head, body) = http(port, "GET", "/repos/o/r", &[since]);
    assert_eq!(status, 200);
    assert!(body.contains("\"open_issues_count\":3"), "{body}");
    // One second later on the fake's own clock (`http` lowercases the head).
    let changed = header_of(&head, "last-modified");
    assert_eq!(changed, "thu, 01 jan 2026 00:00:01 gmt");
    let since_change = "If-Modified-Since: Thu, 01 Jan 2026 00:00:01 GMT";
    assert_eq!(http(port, "GET", "/repos/o/r", &[since_change]).0, 304);
    let issue = format!("/repos/o/r/issues/{number}");
    assert_eq!(http(port, "GET", &issue, &[since]).0, 200);
    assert_eq!(http(port, "GET", &issue, &[since_change]).0, 304);
    assert_eq!(http(port, "GET", "/repos/o/r/issues/1", &[since]).0, 304);
    assert_eq!(http(port, "GET", "/repos/o/other", &[since]).0, 304);
    // Lists carry no Last-Modified: If-Modified-Since gets the whole answer, charged.
    let (status, head, _) = http(port, "GET", "/repos/o/r/issues", &[since]);
    assert_eq!(status, 200);
    assert!(!head.contains("last-modified"), "{head}");
    // When both are sent, If-None-Match decides (here: an ETag of nobody's).
    let stale = "If-None-Match: W/\"0\"";
    assert_eq!(
        http(port, "GET", "/repos/o/r", &[stale, since_change]).0,
        200
    );
    assert_eq!(
        http(
            port,
            "GET",
            "/repos/o/r",
            &["If-Modified-Since: not a date"]
        )
        .0,
        200
    );
}

#[test]
fn faults_make_gh_fail_until_cleared() {
    if !gh_available() {
        return;
    }
    let server = start();
    for (fault, status) in [(Fault::ServerError, 502), (Fault::RateLimited, 403)] {
        server.set_fault(Some(fault));
        server.clear_log();
        for args in [
            &["release", "list", "-R", "o/r"][..],
            &["issue", "list", "-R", "o/r"][..],
            &["api", "repos/o/r"][..],
        ] {
            for tty in [false, true] {
                let out = gh(&server, args, tty);
                assert_ne!(out.status.code(), Some(0), "{fault:?} {args:?}");
            }
        }
        let log = server.requests();
        assert!(!log.is_empty());
        assert!(
            log.iter().all(|r| r.status == status && r.charged),
            "{log:?}"
        );
        assert!(log
            .iter()
            .any(|r| r.path == "/graphql" && r.operation.as_deref() == Some("query")));
    }
    let limited = gh(&server, &["api", "repos/o/r"], false);
    assert!(String::from_utf8_lossy(&limited.stderr).contains("API rate limit exceeded"));
    server.set_fault(None);
    ok(&server, &["release", "list", "-R", "o/r"], false);
}

#[test]
fn writes_change_what_is_listed() {
    if !gh_available() {
        return;
    }
    let server = start();
    assert_eq!(server.add_issue("o/r", "added by the test"), 3);
    for tty in [false, true] {
        let title = format!("created by gh (tty={tty})");
        let out = ok(
            &server,
            &["issue", "create", "-R", "o/r", "-t", &title, "-b", "b"],
            tty,
        );
        assert!(out.contains("https://github.com/o/r/issues/"), "{out}");
    }
    let posted = ok(
        &server,
        &[
            "api",
            "-X",
            "POST",
            "repos/o/r/issues",
            "-f",
            "title=posted",
        ],
        false,
    );
    assert!(posted.contains("\"number\":6"), "{posted}");
    ok(
        &server,
        &["api", "repos/o/r/issues", "-f", "title=implicitly posted"],
        false,
    );
    ok(&server, &["issue", "close", "1", "-R", "o/r"], false);
    ok(&server, &["issue", "close", "2", "-R", "o/r"], true);
    let listed = ok(&server, &["issue", "list", "-R", "o/r"], false);
    let titles: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split('\t').nth(2))
        .collect();
    assert_eq!(
        titles,
        [
            "implicitly posted",
            "posted",
            "created by gh (tty=true)",
            "created by gh (tty=false)",
            "added by the test"
        ],
        "open issues, newest first:\n{listed}"
    );
    let rest = ok(&server, &["api", "repos/o/r/issues"], false);
    assert!(rest.contains("implicitly posted") && !rest.contains("Crash on start"));
    let mutations = |server: &FakeGithub| {
        server
            .requests()
            .into_iter()
            .filter(|r| r.operation.as_deref() == Some("mutation"))
            .count()
    };
    assert_eq!(mutations(&server), 4, "two creates, two closes");
    let star = "query=mutation { addStar(input:{starrableId:\"x\"}) { clientMutationId } }";
    let out = ok(&server, &["api", "graphql", "-f", star], false);
    assert!(out.contains("addStar"), "{out}");
    assert_eq!(mutations(&server), 5);
}

/// One plain HTTP/1.1 exchange with the server: status, raw headers, body.
fn http(port: u16, method: &str, target: &str, headers: &[&str]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("{e}"));
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: api.github.localhost\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .unwrap_or_else(|e| panic!("{e}"));
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[test]
fn proxy_and_origin_form_requests_carry_github_headers() {
    let server = start();
    let port = server.port();
    let (status, head, body) = http(port, "GET", "http://api.github.localhost/repos/o/r", &[]);
    assert_eq!(status, 200);
    for header in [
        "etag: w/\"",
        // Without a token: GitHub's 60 an hour.
        "x-ratelimit-limit: 60\r\n",
        "x-ratelimit-remaining: ",
        "x-ratelimit-used: ",
        "x-ratelimit-reset: ",
        "x-ratelimit-resource: core",
        "content-type: application/json; charset=utf-8",
    ] {
        assert!(head.contains(header), "no {header:?} in {head}");
    }
    assert!(body.contains("\"full_name\":\"o/r\""), "{body}");
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .unwrap_or_default()
        .replace('w', "W");
    let (status, _, body) = http(
        port,
        "GET",
        "/repos/o/r",
        &[&format!("If-None-Match: {etag}")],
    );
    assert_eq!((status, body.as_str()), (304, ""));
    let log = server.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].path.as_str(), log[1].path.as_str()),
        ("/repos/o/r", "/repos/o/r")
    );
    assert_eq!(server.charged_count(), 1);
}

#[test]
fn controls_over_http_drive_the_server() {
    let server = start();
    let port = server.port();
    http(port, "GET", "/user", &[]);
    let (status, _, stats) = http(port, "GET", "/_fake/stats", &[]);
    assert_eq!(status, 200);
    assert_eq!(stats, r#"{"charged":1,"requests":1}"#);

    let (status, _, body) = http(
        port,
        "POST",
        "/_fake/issue?repo=acme%2Fwidgets&title=from+the+demo",
        &[],
    );
    assert_eq!((status, body.as_str()), (200, r#"{"number":3}"#));
    let (_, _, issues) = http(port, "GET", "/repos/acme/widgets/issues", &[]);
    assert!(issues.contains("from the demo"), "{issues}");

    http(port, "POST", "/_fake/fault?kind=rate_limited", &[]);
    let (status, head, body) = http(port, "GET", "/repos/o/r", &[]);
    assert_eq!(status, 403);
    assert!(head.contains("x-ratelimit-remaining: 0"), "{head}");
    assert!(body.contains("API rate limit exceeded"), "{body}");
    http(port, "POST", "/_fake/fault?kind=server_error", &[]);
    assert_eq!(http(port, "GET", "/repos/o/r", &[]).0, 502);
    http(port, "POST", "/_fake/fault?kind=none", &[]);
    assert_eq!(http(port, "GET", "/repos/o/r", &[]).0, 200);

    http(port, "POST", "/_fake/latency?ms=300", &[]);
    let started = Instant::now();
    http(port, "GET", "/user", &[]);
    assert!(started.elapsed() >= Duration::from_millis(300));
    http(port, "POST", "/_fake/latency?ms=0", &[]);

    http(port, "POST", "/_fake/reset", &[]);
    assert_eq!(server.request_count(), 0);
    let (_, _, stats) = http(port, "GET", "/_fake/stats", &[]);
    assert_eq!(stats, r#"{"charged":0,"requests":0}"#);
}

#[test]
fn latency_delays_every_answer() {
    let server = start();
    server.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(http(server.port(), "GET", "/user", &[]).0, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[test]
fn the_binary_announces_its_port_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-github"))
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = BufReader::new(stdout).read_line(&mut line);
    }
    let port = line
        .trim_end()
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|p| p.parse::<u16>().ok());
    let answer = port.map(|port| http(port, "GET", "/_fake/stats", &[]));
    let _ = child.kill();
    let _ = child.wait();
    assert!(port.is_some_and(|p| p != 0), "{line:?}");
    assert_eq!(answer.map(|a| a.0), Some(200));
}
