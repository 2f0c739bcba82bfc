//! gh with the user's terminal: for commands that are not cached.

use std::ffi::OsStr;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::Command;

/// Replaces this process with gh, so prompts, the terminal and signals behave exactly as with
/// plain gh. Returns only if gh could not be started.
pub fn exec(program: &OsStr, args: &[String]) -> std::io::Error {
    Command::new(program).args(args).exec()
}

/// Runs gh with this process's stdin, stdout and stderr and returns its exit code (128 + the
/// signal number if a signal ended it), so the caller can act after a write succeeded.
///
/// # Behavior
/// While gh runs, Ctrl-C and Ctrl-\ reach gh from the terminal and gh decides; this process
/// ignores them so that it is still there to report gh's exit code.
///
/// # Errors
/// gh could not be started.
pub fn run_inherited(program: &OsStr, args: &[String]) -> std::io::Result<i32> {
    let _guard = ignore_terminal_signals();
    let status = Command::new(program).args(args).status()?;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1))
}

/// Installs handlers for SIGINT and SIGQUIT that do nothing, for the rest of the process.
///
/// tokio's signal handling installs a process-wide handler on first use; the handlers stay
/// installed after the runtime is gone, which is what is wanted here.
fn ignore_terminal_signals() -> Option<tokio::runtime::Runtime> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .ok()?;
    runtime.block_on(async {
        let _ = signal(SignalKind::interrupt());
        let _ = signal(SignalKind::quit());
    });
    Some(runtime)
}
