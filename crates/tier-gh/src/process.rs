//! gh with the user's terminal: for commands that are not cached.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::{Command, ExitStatus};

use rustix::process::Signal;

use crate::signals::{forward, Signals};

/// Replaces this process with gh, so prompts, the terminal and signals behave exactly as with
/// plain gh. The arguments are passed as they are, in whatever encoding. Returns only if gh
/// could not be started, with the reason.
pub fn exec<I, S>(program: &OsStr, args: I) -> std::io::Error
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(program).args(args).exec()
}

/// Runs gh with this process's stdin, stdout and stderr and returns its exit code (128 + the
/// signal number if a signal ended it), so the caller can act after a write succeeded.
///
/// # Behavior
/// While gh runs, Ctrl-C and Ctrl-\ reach gh from the terminal and gh decides; this process
/// ignores them so that it is still there to report gh's exit code. SIGTERM and SIGHUP, which
/// are sent to this process alone (`kill`, a supervisor, a closed terminal), are passed on to gh,
/// and this process too waits for gh. All four stay handled after gh exits: the caller is
/// expected to exit with the code soon after.
///
/// # Errors
/// gh could not be started.
pub fn run_inherited(program: &OsStr, args: &[String]) -> std::io::Result<i32> {
    // A runtime of its own, on a thread of its own, so that a caller already inside a tokio
    // runtime does not make it panic. If it cannot be had, gh still runs, without forwarding.
    let forwarding = || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        Some(runtime.block_on(run_attached(program, args, &[])))
    };
    let ran = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("ghcache-gh".into())
            .spawn_scoped(scope, forwarding)
            .ok()
            .and_then(|thread| thread.join().ok())
            .flatten()
    });
    match ran {
        Some(result) => result,
        None => Command::new(program).args(args).status().map(exit_code),
    }
}

/// [`run_inherited`] in the caller's tokio runtime (I/O enabled), with `env` added to gh's
/// environment: for a caller that serves gh meanwhile on the same runtime (the HTTP level's
/// socket, which `env` names to gh).
///
/// # Errors
/// gh could not be started.
pub async fn run_attached(
    program: &OsStr,
    args: &[String],
    env: &[(OsString, OsString)],
) -> std::io::Result<i32> {
    // Before gh starts: from then on, these signals no longer end this process.
    let mut signals = Signals::listen();
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .spawn()?;
    loop {
        tokio::select! {
            status = child.wait() => return status.map(exit_code),
            received = signals.recv() => {
                // Ctrl-C and Ctrl-\ came from the terminal, to gh as well: gh decides.
                if received == Signal::TERM || received == Signal::HUP {
                    forward(child.id(), received);
                }
            }
        }
    }
}

/// Runs gh with no terminal (stdin empty) and returns what it printed, for a program that uses
/// ghcache as a library and prints answers itself.
///
/// # Errors
/// gh could not be started, or its output could not be read.
pub fn run_captured(program: &OsStr, args: &[String]) -> std::io::Result<ghcache_core::Output> {
    let out = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()?;
    Ok(ghcache_core::Output {
        stdout: out.stdout,
        stderr: out.stderr,
        exit_code: exit_code(out.status),
        stdout_printed: false,
    })
}

/// gh's exit code as a shell reports it: 128 + the signal number when a signal ended it.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}
