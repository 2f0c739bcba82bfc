//! Signals sent to this process while it runs gh are passed on to gh.
//!
//! A test binary of its own with a single test: a signal reaches every listener in the
//! process, so a test running beside it would see it too.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use ghcache_core::{Fetched, KeyInput, Origin as _, OutputMode, Request};
use ghcache_tier_gh::{run_inherited, Config, Origin, Sink};

/// A gh that prints `partial`, sends the signal named by its first argument to the process that
/// ran it alone (as `kill` would), waits until the signal reaches it in turn and then exits 0 if
/// the second argument says `ok`, else 9.
const SCRIPT: &str = r#"#!/bin/sh
echo partial
code=9; [ "$2" = ok ] && code=0
trap 'kill $waiting; exit $code' "$1"
sleep 60 & waiting=$!
kill -s "$1" "$PPID"
wait $waiting
exit 1
"#;

#[test]
fn signals_to_this_process_reach_gh_and_its_answer_is_not_kept() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gh = dir.path().join("gh");
    std::fs::write(&gh, SCRIPT).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));

    // Commands that are not cached: SIGTERM and SIGHUP come from `kill` or a supervisor, not
    // from the terminal, so only this process has them. Without forwarding, the first would end
    // this test process and leave gh running.
    for signal in ["TERM", "HUP"] {
        let code = run_inherited(gh.as_os_str(), &[signal.to_owned(), "9".to_owned()]);
        assert_eq!(code.ok(), Some(9), "SIG{signal} reached gh");
    }

    // A cached command: all four; what gh printed is never stored, even when gh then exits 0.
    let printed = dir.path().join("printed");
    let sink = Sink::Pager(format!("cat > '{}'", printed.display()));
    let origin = Origin::new(Config::new(gh.clone().into()).printing_to(sink));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    for signal in ["INT", "TERM", "HUP", "QUIT"] {
        let argv = vec![signal.to_owned(), "ok".to_owned()];
        let input = KeyInput {
            host: "github.com".into(),
            scope: "anonymous".into(),
            repo: "o/r".into(),
            argv: argv.clone(),
            output: OutputMode::Pipe,
        };
        let request = Request::new(argv, input, "o/r".into(), Duration::from_secs(60));
        let fetched = runtime.block_on(origin.fetch(&request, None));
        match fetched {
            Ok(Fetched::Failed { output, transient }) => {
                assert_eq!(output.exit_code, 0, "SIG{signal}: gh's own exit code");
                assert!(!transient, "SIG{signal}: no stale answer instead");
                assert!(output.stdout_printed);
            }
            other => panic!("SIG{signal}: expected an unstored failure, got {other:?}"),
        }
    }
}
