//! gh run for commands that are not cached: exit codes, signals, and a gh that cannot start.
//!
//! A test binary of its own: `run_inherited` leaves Ctrl-C ignored in the process that called it.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

use ghcache_tier_gh::{exec, run_inherited};

/// A gh that exits with the code given as its first argument, or first sends the signal named
/// by `signal-parent-<NAME>` to the process that ran it (as the terminal would to the whole
/// foreground group), or dies of `die-<NAME>`.
const SCRIPT: &str = r#"#!/bin/sh
case "$1" in
  signal-parent-*) kill -s "${1#signal-parent-}" "$PPID"; exit 7 ;;
  die-*) kill -s "${1#die-}" $$ ;;
esac
exit "$1"
"#;

fn fake_gh(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("gh");
    std::fs::write(&path, SCRIPT).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    path
}

fn arg(s: &str) -> Vec<String> {
    vec![s.to_owned()]
}

#[test]
fn run_inherited_returns_gh_s_exit_code() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gh = fake_gh(&dir);
    for code in [0, 1, 4, 255] {
        assert_eq!(
            run_inherited(gh.as_os_str(), &arg(&code.to_string())).ok(),
            Some(code)
        );
    }
    assert_eq!(
        run_inherited(gh.as_os_str(), &arg("die-TERM")).ok(),
        Some(128 + 15),
        "a signal death is reported as a shell would"
    );
}

#[test]
fn ctrl_c_and_ctrl_backslash_are_left_to_gh() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gh = fake_gh(&dir);
    // Without the handlers, the first signal would end this test process.
    for signal in ["INT", "QUIT"] {
        let code = run_inherited(gh.as_os_str(), &arg(&format!("signal-parent-{signal}")));
        assert_eq!(code.ok(), Some(7), "SIG{signal}");
    }
}

#[test]
fn a_gh_that_cannot_start_is_an_error() {
    let missing = OsStr::new("/nonexistent/gh-for-test");
    let err = run_inherited(missing, &arg("pr")).err();
    assert_eq!(err.map(|e| e.kind()), Some(std::io::ErrorKind::NotFound));
    // exec returns only when it failed, and then with the reason.
    assert_eq!(
        exec(missing, arg("pr")).kind(),
        std::io::ErrorKind::NotFound
    );
}

#[test]
fn run_inherited_works_inside_an_async_runtime() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gh = fake_gh(&dir);
    let code = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
        .block_on(async { run_inherited(gh.as_os_str(), &arg("5")).ok() });
    assert_eq!(code, Some(5));
}
