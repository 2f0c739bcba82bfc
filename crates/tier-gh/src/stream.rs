//! One run of gh for the origin: its stdout printed as it comes and kept for the cache, its
//! stderr kept, and the signals this process receives passed on to it.
//!
//! Three tasks share the work, so that none can hold up another: one reads gh's stdout (and
//! waits, through a bounded queue, for the user's reader), one reads gh's stderr, and the one
//! that started gh waits for it and forwards signals. Only that last one waits for gh, so the
//! process id it signals is gh's until the moment it learns gh exited.

use std::ffi::OsStr;
use std::process::{ExitStatus, Stdio};

use ghcache_core::{OriginError, OutputMode};
use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, ChildStderr, ChildStdout};
use tokio::sync::oneshot;

use crate::capture::{Capture, Reading};
use crate::config::Sink;
use crate::process::exit_code;
use crate::signals::{forward, Signals};
use crate::writer::{Target, Writer};

/// How much of gh's output is read at a time.
pub(crate) const CHUNK: usize = 64 << 10;

/// The most of gh's stderr that is held, to be printed after its stdout and stored with it: gh
/// prints a few lines there. Past it, stderr is printed as it comes and the answer is not stored.
const STDERR_MAX: usize = 1 << 20;

/// How one run of gh went.
pub(crate) struct Ran {
    /// gh's exit code, 128 + the signal number when a signal ended it.
    pub exit_code: i32,
    /// A signal was passed on to gh, or ended the waiting for a reader: the answer is not to
    /// be stored or replaced.
    pub interrupted: bool,
    /// gh's stdout as read.
    pub capture: Capture,
    /// Part of gh's stdout was printed (or may have been, when it was not waited for).
    pub stdout_printed: bool,
    /// gh's stderr, unless it was printed as it came (`stderr_printed`).
    pub stderr: Vec<u8>,
    /// gh's stderr outgrew [`STDERR_MAX`] and was printed as it came.
    pub stderr_printed: bool,
    /// Reading gh's output failed: why.
    pub error: Option<String>,
}

/// Where and how to run gh.
pub(crate) struct Run<'a> {
    pub program: &'a OsStr,
    pub argv: &'a [String],
    /// Added to gh's environment.
    pub env: &'a [(std::ffi::OsString, std::ffi::OsString)],
    pub output: OutputMode,
    pub reading: Reading,
    /// `None`: hold everything, print nothing.
    pub sink: Option<&'a Sink>,
}

impl Run<'_> {
    /// Runs gh to its end.
    ///
    /// # Behavior
    /// SIGINT, SIGTERM, SIGHUP and SIGQUIT are passed on to gh (the run is then `interrupted`),
    /// and this process waits for gh and then for the pager, if one was started, to be quit, but
    /// not for a reader of gh's stdout: output still on its way to it may be lost. After gh
    /// exited, such a signal stops the waiting for a reader that does not read (the run is then
    /// `interrupted` too); a pager is left to the user.
    ///
    /// # Errors
    /// gh could not be started.
    pub async fn run(self) -> Result<Ran, OriginError> {
        let program = || self.program.to_string_lossy().into_owned();
        // Before gh starts: from then on, a signal to this process reaches gh.
        let mut signals = Signals::listen();
        let mut command = tokio::process::Command::new(self.program);
        command
            .args(self.argv)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let OutputMode::Tty { width } = self.output {
            // gh prints for a terminal of this width; paging is this process's.
            command.env("GH_FORCE_TTY", width.to_string());
            command.env("GH_PAGER", "cat");
        }
        let mut child = command.spawn().map_err(|e| OriginError::Spawn {
            program: program(),
            reason: e.to_string(),
        })?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(OriginError::Io {
                program: program(),
                reason: "its output could not be captured".into(),
            });
        };
        let (pager_tx, mut pager_rx) = oneshot::channel();
        // Only a pager sink may hand one over; otherwise there is none to wait for.
        let mut pager_pending = matches!(self.sink, Some(Sink::Pager(_)));
        let (verdict_tx, verdict_rx) = oneshot::channel();
        let printer = Printer {
            sink: self.sink.cloned(),
            pager: pager_pending.then_some(pager_tx),
            writer: None,
            printed: false,
            failed: false,
        };
        let capture = Capture::new(self.reading);
        let mut out_task = tokio::spawn(read_stdout(stdout, capture, printer, verdict_rx));
        let stderr_limit = match self.sink {
            Some(_) => STDERR_MAX,
            None => usize::MAX,
        };
        let mut err_task = tokio::spawn(read_stderr(stderr, stderr_limit));

        let mut verdict = Some(verdict_tx);
        let mut status: Option<std::io::Result<ExitStatus>> = None;
        let mut interrupted = false;
        let (mut out_side, mut out_stopped) = (None, false);
        let (mut err_side, mut err_stopped) = (None, false);
        let mut pager: Option<Child> = None;
        let mut pager_done = false;
        loop {
            if status.is_some() && interrupted && out_side.is_none() && !out_stopped {
                // gh was stopped and has exited: so does this process, without waiting for a
                // reader of gh's last output, which may never come (a pipe nobody reads).
                out_task.abort();
                out_stopped = true;
            }
            let out_over = out_side.is_some() || out_stopped;
            let err_over = err_side.is_some() || err_stopped;
            let pager_over = !pager_pending && (pager.is_none() || pager_done);
            if status.is_some() && out_over && err_over && pager_over {
                break;
            }
            tokio::select! {
                exited = child.wait(), if status.is_none() => {
                    let success = exited.as_ref().is_ok_and(ExitStatus::success);
                    if let Some(verdict) = verdict.take() {
                        let _ = verdict.send(success && !interrupted);
                    }
                    status = Some(exited);
                }
                side = &mut out_task, if !out_over => out_side = Some(side),
                side = &mut err_task, if !err_over => err_side = Some(side),
                started = &mut pager_rx, if pager_pending => {
                    pager_pending = false;
                    pager = started.ok();
                }
                // The pager reads to the end of its input, then waits for the user to quit.
                _ = wait_for(&mut pager), if !pager_done && pager.is_some() && out_over => {
                    pager_done = true;
                }
                received = signals.recv() => {
                    if status.is_none() {
                        forward(child.id(), received);
                        interrupted = true;
                    } else if !pager_pending && pager.is_none() {
                        // gh is done; what is left is writing its output for a reader that is
                        // slow or gone. Asked to end, this process stops waiting for it, and
                        // an answer that may be cut short is not stored.
                        interrupted = true;
                        out_task.abort();
                        out_stopped = out_side.is_none();
                        err_task.abort();
                        err_stopped = err_side.is_none();
                    }
                    // A pager is the user's to quit: it has the terminal's signals itself.
                }
            }
        }
        let (exit_code, mut error) = match status {
            Some(Ok(status)) => (exit_code(status), None),
            Some(Err(e)) => (1, Some(e.to_string())),
            None => (1, None),
        };
        let (capture, stdout_printed) = match out_side {
            Some(Ok(side)) => {
                error = error.or(side.error);
                (side.capture, side.printed)
            }
            // Stopped (or failed): what reached the user is not known, so, printing, it counts
            // as printed; and what was read is gone, so there is no answer to store.
            _ => {
                if !interrupted {
                    error = error.or_else(|| Some("its output was not read to its end".into()));
                }
                (Capture::new(self.reading), self.sink.is_some())
            }
        };
        let (stderr, stderr_printed) = match err_side {
            Some(Ok(side)) => {
                error = error.or(side.error);
                (side.kept, side.printed)
            }
            _ => (Vec::new(), false),
        };
        Ok(Ran {
            exit_code,
            interrupted,
            capture,
            stdout_printed,
            stderr,
            stderr_printed,
            error,
        })
    }
}

async fn wait_for(pager: &mut Option<Child>) {
    match pager {
        Some(pager) => {
            let _ = pager.wait().await;
        }
        None => std::future::pending().await,
    }
}

/// What became of gh's stdout.
struct StdoutSide {
    capture: Capture,
    printed: bool,
    error: Option<String>,
}

/// Reads gh's stdout to its end, printing what the capture says to print. Held bytes are
/// printed once gh exited 0 (`verdict`).
async fn read_stdout(
    mut from: ChildStdout,
    mut capture: Capture,
    mut printer: Printer,
    verdict: oneshot::Receiver<bool>,
) -> StdoutSide {
    let mut buf = vec![0; CHUNK];
    let mut error = None;
    loop {
        match from.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                if let Some(bytes) = capture.feed(&buf[..n]) {
                    printer.print(bytes).await;
                }
            }
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    // Closed now: a gh still writing (after a read error) gets a broken pipe, not a hang.
    drop(from);
    if let Some(bytes) = capture.end() {
        printer.print(bytes).await;
    }
    if verdict.await.unwrap_or(false) {
        if let Some(bytes) = capture.release() {
            printer.print(bytes).await;
        }
    }
    let printed = printer.printed;
    printer.finish().await;
    StdoutSide {
        capture,
        printed,
        error,
    }
}

/// What became of gh's stderr.
struct StderrSide {
    kept: Vec<u8>,
    printed: bool,
    error: Option<String>,
}

/// Reads gh's stderr to its end, holding up to `limit` bytes; past it, prints it as it comes.
async fn read_stderr(mut from: ChildStderr, limit: usize) -> StderrSide {
    let mut buf = vec![0; CHUNK];
    let mut kept = Vec::new();
    let mut printing = false;
    let mut writer: Option<Writer> = None;
    let mut error = None;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        };
        if !printing {
            if kept.len().saturating_add(n) <= limit {
                kept.extend_from_slice(&buf[..n]);
                continue;
            }
            printing = true;
            writer = Writer::start(Target::Stderr).ok();
            let held = std::mem::take(&mut kept);
            writer = next_write(writer, held).await;
        }
        writer = next_write(writer, buf[..n].to_vec()).await;
    }
    drop(from);
    if let Some(writer) = writer {
        writer.finish().await;
    }
    StderrSide {
        kept,
        printed: printing,
        error,
    }
}

/// Writes `bytes` with `writer`; the writer, unless its target failed.
async fn next_write(writer: Option<Writer>, bytes: Vec<u8>) -> Option<Writer> {
    let writer = writer?;
    writer.write(bytes).await.then_some(writer)
}

/// Prints to the sink, starting the writer (and the pager) when there is something to print.
struct Printer {
    sink: Option<Sink>,
    /// Hands a started pager to the task that forwards signals and waits for it.
    pager: Option<oneshot::Sender<Child>>,
    writer: Option<Writer>,
    printed: bool,
    failed: bool,
}

impl Printer {
    async fn print(&mut self, bytes: Vec<u8>) {
        if self.sink.is_none() || bytes.is_empty() {
            return;
        }
        self.printed = true;
        if self.failed {
            return;
        }
        if self.writer.is_none() {
            self.writer = self.open();
        }
        let written = match &self.writer {
            Some(writer) => writer.write(bytes).await,
            None => false,
        };
        self.failed = !written;
    }

    fn open(&mut self) -> Option<Writer> {
        let target = match &self.sink {
            None => return None,
            Some(Sink::Stdout) => Target::Stdout,
            Some(Sink::Pager(command)) => match start_pager(command) {
                Some((pager, input)) => {
                    if let Some(handoff) = self.pager.take() {
                        let _ = handoff.send(pager);
                    }
                    Target::File(input)
                }
                // As gh does without a working pager: print to stdout.
                None => Target::Stdout,
            },
        };
        Writer::start(target).ok()
    }

    async fn finish(self) {
        if let Some(writer) = self.writer {
            writer.finish().await;
        }
    }
}

/// Starts the user's pager with a pipe for its input.
fn start_pager(command: &str) -> Option<(Child, std::fs::File)> {
    let mut pager = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .spawn()
        .ok()?;
    let input = pager.stdin.take()?.into_owned_fd().ok()?;
    Some((pager, std::fs::File::from(input)))
}
