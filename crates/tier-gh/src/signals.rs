//! The signals that this process passes on to the gh it runs.
//!
//! Listening for a signal with tokio replaces its default action (end the process) for the rest
//! of the process, and needs no `unsafe`: this process then outlives the signal, passes it on to
//! gh, and exits as gh did.

use rustix::process::{kill_process, Pid, Signal};
use tokio::signal::unix::{signal, SignalKind};

/// Listeners for SIGINT, SIGTERM, SIGHUP and SIGQUIT: what ends a program that does not handle
/// them (Ctrl-C, `kill`, a closed terminal, Ctrl-\\).
pub(crate) struct Signals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
    hangup: Option<tokio::signal::unix::Signal>,
    quit: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Starts listening for the four (inside a tokio runtime with I/O enabled). A signal that
    /// cannot be listened for keeps its default action.
    pub fn listen() -> Signals {
        Signals {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
            hangup: signal(SignalKind::hangup()).ok(),
            quit: signal(SignalKind::quit()).ok(),
        }
    }

    /// The next signal received; pending forever when none can be listened for.
    pub async fn recv(&mut self) -> Signal {
        // `recv` is cancel-safe: the listeners that lose the race lose no signal.
        tokio::select! {
            Some(()) = next(&mut self.interrupt) => Signal::INT,
            Some(()) = next(&mut self.terminate) => Signal::TERM,
            Some(()) = next(&mut self.hangup) => Signal::HUP,
            Some(()) = next(&mut self.quit) => Signal::QUIT,
            else => std::future::pending().await,
        }
    }
}

async fn next(listener: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match listener {
        Some(listener) => listener.recv().await,
        None => None,
    }
}

/// Sends `sig` to the process `pid` (a child not yet waited for, so the id is still its).
pub(crate) fn forward(pid: Option<u32>, sig: Signal) {
    let pid = pid
        .and_then(|pid| i32::try_from(pid).ok())
        .and_then(Pid::from_raw);
    if let Some(pid) = pid {
        // It may have exited a moment ago: nothing is left to tell.
        let _ = kill_process(pid, sig);
    }
}
