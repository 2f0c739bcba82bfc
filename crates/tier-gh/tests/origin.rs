//! The origin against a scripted stand-in for gh: what it runs, what it stores, what it reports.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ghcache_core::{Entry, Fetched, KeyInput, Origin as _, OutputMode, Request};
use ghcache_tier_gh::{run_inherited, Config, Origin};

/// A gh that prints its arguments and the variables the origin sets, and behaves like gh for
/// `api -i` (header block) and `If-None-Match` (304) requests.
const SCRIPT: &str = r#"#!/bin/sh
case " $* " in
  *" fail-404 "*) echo "gh: Not Found (HTTP 404)" >&2; exit 1 ;;
  *" fail-502 "*) echo "gh: Server Error (HTTP 502)" >&2; exit 1 ;;
esac
include=0
for a in "$@"; do [ "$a" = "-i" ] && include=1; done
case "$*" in
  *"If-None-Match: W/\"v1\""*)
    [ $include = 1 ] && printf 'HTTP/1.1 304 Not Modified\nEtag: W/"v1"\n\n'
    echo "gh: HTTP 304" >&2
    exit 1 ;;
esac
if [ $include = 1 ]; then
  printf 'HTTP/1.1 200 OK\nContent-Type: application/json\nEtag: W/"v1"\n\n'
fi
echo "args: $*"
echo "tty=${GH_FORCE_TTY:-none} pager=${GH_PAGER:-unset}"
echo "a notice" >&2
"#;

fn fake_gh(dir: &Path) -> PathBuf {
    let path = dir.join("gh");
    std::fs::write(&path, SCRIPT).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    path
}

fn request(argv: &str, output: OutputMode, revalidate: bool) -> Request {
    let argv: Vec<String> = argv.split_whitespace().map(str::to_owned).collect();
    let input = KeyInput {
        host: "github.com".into(),
        scope: "anonymous".into(),
        repo: "o/r".into(),
        argv: argv.clone(),
        output,
    };
    let mut request = Request::new(argv, input, "o/r".into(), Duration::from_secs(60));
    request.revalidate = revalidate;
    request
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn fetch(gh: &Path, request: &Request, prior: Option<&Entry>) -> Fetched {
    let origin = Origin::new(Config::new(gh.into()));
    runtime()
        .block_on(origin.fetch(request, prior))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn fresh(fetched: Fetched) -> Entry {
    match fetched {
        Fetched::Fresh(entry) => entry,
        other => panic!("expected a fresh entry, got {other:?}"),
    }
}

#[test]
fn pipe_mode_runs_gh_as_given_and_stores_both_streams() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gh = fake_gh(dir.path());
    let entry = fresh(fetch(
        &gh,
        &request("pr list", OutputMode::Pipe, false),
        None,
    ));
    let stdout = String::from_utf8_lossy(&entry.body.stdout).into_owned();
    assert_eq!(stdout, "args: pr list\ntty=none pager=unset\n");
    assert_eq!(entry.body.stderr, b"a notice\n");
    assert_eq!(entry.manifest.exit_code, 0);
    assert_eq!(entry.manifest.repo, "o/r");
    assert!(entry.verify_body());
}

#[test]
fn terminal_mode_forces_gh_s_tty_output_without_its_pager() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gh = fake_gh(dir.path());
    let entry = fresh(fetch(
        &gh,
        &request("pr list", OutputMode::Tty { width: 123 }, false),
        None,
    ));
    assert!(String::from_utf8_lossy(&entry.body.stdout).contains("tty=123 pager=cat"));
}

#[test]
fn etag_is_recorded_and_the_header_block_is_not_printed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gh = fake_gh(dir.path());
    let entry = fresh(fetch(
        &gh,
        &request("api repos/o/r", OutputMode::Pipe, true),
        None,
    ));
    assert_eq!(entry.manifest.etag.as_deref(), Some("W/\"v1\""));
    let stdout = String::from_utf8_lossy(&entry.body.stdout).into_owned();
    assert!(stdout.starts_with("args: api -i repos/o/r\n"), "{stdout}");
}

#[test]
fn a_user_include_keeps_the_headers() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gh = fake_gh(dir.path());
    let entry = fresh(fetch(
        &gh,
        &request("api -i repos/o/r", OutputMode::Pipe, true),
        None,
    ));
    let stdout = String::from_utf8_lossy(&entry.body.stdout).into_owned();
    assert!(stdout.starts_with("HTTP/1.1 200 OK\n"), "{stdout}");
    assert!(
        stdout.contains("args: api -i repos/o/r\n"),
        "-i is not added twice: {stdout}"
    );
    assert_eq!(entry.manifest.etag.as_deref(), Some("W/\"v1\""));
}

#[test]
fn a_matching_etag_is_not_modified() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gh = fake_gh(dir.path());
    let request = request("api repos/o/r", OutputMode::Pipe, true);
    let prior = fresh(fetch(&gh, &request, None));
    assert_eq!(fetch(&gh, &request, Some(&prior)), Fetched::NotModified);
}

#[test]
fn failures_are_reported_with_gh_s_output_and_classified() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gh = fake_gh(dir.path());
    match fetch(&gh, &request("api fail-404", OutputMode::Pipe, true), None) {
        Fetched::Failed { output, transient } => {
            assert_eq!(output.exit_code, 1);
            assert_eq!(output.stderr, b"gh: Not Found (HTTP 404)\n");
            assert!(!transient);
        }
        other => panic!("{other:?}"),
    }
    match fetch(
        &gh,
        &request("pr list fail-502", OutputMode::Pipe, false),
        None,
    ) {
        Fetched::Failed { transient, .. } => assert!(transient),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_gh_is_a_spawn_error_that_names_it() {
    let origin = Origin::new(Config::new(OsString::from("/nonexistent/gh-for-test")));
    let err = runtime()
        .block_on(origin.fetch(&request("pr list", OutputMode::Pipe, false), None))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("/nonexistent/gh-for-test") && err.contains("GH_CACHE_GH"),
        "{err}"
    );
}

#[test]
fn run_inherited_returns_gh_s_exit_code() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gh = fake_gh(dir.path());
    let args = |s: &str| vec![s.to_owned()];
    assert_eq!(run_inherited(gh.as_os_str(), &args("ok")).ok(), Some(0));
    assert_eq!(
        run_inherited(gh.as_os_str(), &args("fail-404")).ok(),
        Some(1)
    );
    assert!(run_inherited("/nonexistent/gh-for-test".as_ref(), &args("x")).is_err());
}
