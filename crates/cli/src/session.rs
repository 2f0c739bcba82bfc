//! One command's run, as its caller sees it: where answers and warnings go (printed, or kept for
//! a program that called the library), the `--debug` lines, and the remote tiers' shared
//! budgets; and the async runtime its steps run in.
//!
//! Every step of a command (its lookup, the HTTP level of the gh it runs, the write that
//! follows) reports through one [`Session`], so that a warning is given once per command.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Instant;

use ghcache_core::{Output, Request};

use crate::config::Config;
use crate::error::Failure;
use crate::tiers::{Budgets, Notices};

/// How one command's answer reaches its caller: printed as gh would have printed it (the
/// binary), or kept with ghcache's warnings for a program that called the library.
pub(crate) struct Session {
    /// Keep answers and warnings instead of printing them.
    capture: bool,
    debug: Debug,
    warnings: std::sync::Mutex<Vec<String>>,
    /// Every warning given so far: each is given once per command, however many of its parts
    /// (its own lookup, gh's HTTP level, the write that follows) ran into the same thing.
    given: std::sync::Mutex<std::collections::HashSet<String>>,
    /// What the command may wait on each remote tier in all: its own lookup and, through gh's
    /// HTTP level, every one of gh's requests share one deadline (DESIGN.md invariant 5).
    budgets: Budgets,
}

impl Session {
    /// Answers are printed, warnings go to stderr.
    pub(crate) fn printing(config: &Config) -> Session {
        Session::new(config, false)
    }

    /// Answers and warnings are kept for the caller.
    pub(crate) fn capturing(config: &Config) -> Session {
        Session::new(config, true)
    }

    fn new(config: &Config, capture: bool) -> Session {
        Session {
            capture,
            debug: Debug {
                on: config.debug.value,
                started: Instant::now(),
            },
            warnings: std::sync::Mutex::new(Vec::new()),
            given: std::sync::Mutex::new(std::collections::HashSet::new()),
            budgets: Budgets::new(config),
        }
    }

    /// The remote tiers' budgets, shared by the command's lookup and its gh's HTTP level.
    pub(crate) fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// Whether answers are kept for the caller (the library) rather than printed (the binary).
    pub(crate) fn captures(&self) -> bool {
        self.capture
    }

    /// Prints `output` as gh would have, unless answers are kept.
    pub(crate) fn answer(&self, output: &Output, request: &Request) {
        if !self.capture {
            print(output, request);
        }
    }

    /// One warning: on stderr, or kept; not again if it was given already.
    pub(crate) fn warn(&self, line: &str) {
        if let Ok(mut given) = self.given.lock() {
            if !given.insert(line.to_owned()) {
                return;
            }
        }
        if self.capture {
            if let Ok(mut kept) = self.warnings.lock() {
                kept.push(line.to_owned());
            }
        } else {
            warn(line);
        }
    }

    /// The warnings kept so far.
    pub(crate) fn take_warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }

    /// A debug line (`--debug`): always on stderr, where the user who asked for it looks.
    pub(crate) fn debug(&self, what: &str, key: &str) {
        self.debug.line(what, key);
    }

    /// A debug notice that is not about one request's answer (a counter not updated, a CID
    /// not announced): on stderr under the same switch as [`Session::debug`].
    pub(crate) fn note(&self, line: &str) {
        self.debug.note(line);
    }
}

impl Notices for Session {
    fn note(&self, line: &str) {
        Session::note(self, line);
    }

    fn debug(&self, what: &str, key: &str) {
        Session::debug(self, what, key);
    }
}

/// One line per request on stderr when the user asked for it.
struct Debug {
    on: bool,
    started: Instant,
}

impl Debug {
    fn line(&self, what: &str, key: &str) {
        if self.on {
            let ms = self.started.elapsed().as_secs_f64() * 1000.0;
            let _ = writeln!(std::io::stderr(), "ghcache: {what} key={key} {ms:.1}ms");
        }
    }

    fn note(&self, line: &str) {
        if self.on {
            let _ = writeln!(std::io::stderr(), "ghcache: {line}");
        }
    }
}

/// Writes the answer as gh would have: stdout (through the user's pager on a terminal), unless
/// gh's stdout was printed already as gh wrote it, then stderr.
fn print(output: &Output, request: &Request) {
    if !output.stdout_printed {
        let mut paged = false;
        if matches!(request.input.output, ghcache_core::OutputMode::Tty { .. }) {
            if let Some(pager) = ghcache_tier_gh::user_pager() {
                paged = page(&pager, &output.stdout);
            }
        }
        if !paged {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is the reader's choice, not an error to report.
            let _ = stdout.write_all(&output.stdout);
            let _ = stdout.flush();
        }
    }
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(&output.stderr);
    let _ = stderr.flush();
}

fn page(pager: &str, bytes: &[u8]) -> bool {
    let child = Command::new("sh")
        .arg("-c")
        .arg(pager)
        .stdin(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(bytes);
    }
    let _ = child.wait();
    true
}

/// The single-threaded runtime a command's async steps run in.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))
}

fn warn(line: &str) {
    let _ = writeln!(std::io::stderr(), "ghcache: warning: {line}");
}
