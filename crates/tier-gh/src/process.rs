//! gh with the user's terminal: for commands that are not cached.

use std::ffi::OsStr;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::Command;

/// Replaces this process with gh, so prompts, the terminal and signals behave exactly as with
/// plain gh. Returns only if gh could not be started, with the reason.
pub fn exec(program: &OsStr, args: &[String]) -> std::io::Error {
    Command::new(program).args(args).exec()
}

/// Runs gh with this process's stdin, stdout and stderr and returns its exit code (128 + the
/// signal number if a signal ended it), so the caller can act after a write succeeded.
///
/// # Behavior
/// While gh runs, Ctrl-C and Ctrl-\ reach gh from the terminal and gh decides; this process
/// ignores them so that it is still there to report gh's exit code. They stay ignored after gh
/// exits: the caller is expected to exit with the code soon after.
///
/// # Errors
/// gh could not be started.
pub fn run_inherited(program: &OsStr, args: &[String]) -> std::io::Result<i32> {
    ignore_terminal_signals();
    let status = Command::new(program).args(args).status()?;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1))
}

/// Replaces the default action of SIGINT and SIGQUIT (end the process) with handlers that only
/// record the signal, for the rest of this process: a process that is about to exit with gh's
/// code needs nothing more, and this needs no `unsafe`.
///
/// tokio installs a process-wide handler when a signal is first listened for and never removes
/// it, so the handlers outlive the small runtime built here. That runtime lives on a thread of
/// its own, so that a caller already inside a tokio runtime does not make it panic. If the
/// handlers cannot be installed, gh still runs; only Ctrl-C then ends this process as well.
fn ignore_terminal_signals() {
    use tokio::signal::unix::{signal, SignalKind};
    let install = || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
        else {
            return;
        };
        let _context = runtime.enter();
        for kind in [SignalKind::interrupt(), SignalKind::quit()] {
            // The listener itself is not needed: registering is what replaces the default.
            let _ = signal(kind);
        }
    };
    let _ = std::thread::Builder::new()
        .name("ghcache-signals".into())
        .spawn(install)
        .map(std::thread::JoinHandle::join);
}
