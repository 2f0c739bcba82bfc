//! Cleanup on Ctrl-C (SIGINT) and SIGTERM, for tasks that start processes and temp dirs.
//!
//! A signal's default action ends the process at once: no destructor runs, so the `Drop` impls
//! that stop `ghcache daemon`s and the IPFS node and remove temp dirs never get their turn. The
//! temp dir then stays behind, and when the signal reached xtask alone (`kill -INT PID`, not a
//! Ctrl-C to the whole terminal's process group) the daemons and the node keep running.
//!
//! [`install`] replaces the default action. The handler only stores the signal number in an
//! atomic, which is all a signal handler may safely do; a watcher thread notices it, stops every
//! direct child of this process (the daemons, the IPFS node, `gh` calls), removes every
//! registered directory, and exits with 128 + the signal number (130 for SIGINT, 143 for
//! SIGTERM).
//!
//! Registering a directory ([`register_dir`]) costs nothing when [`install`] was never called:
//! nothing reads the registry then.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The signal that arrived, 0 if none: the one thing the handler touches.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// How often the watcher looks at [`SIGNAL`].
const POLL: Duration = Duration::from_millis(50);

/// How long a process may take to exit after SIGTERM before it gets SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// How long to wait for processes to be gone after SIGKILL (the kernel needs a moment).
const KILL_WAIT: Duration = Duration::from_millis(500);

/// What to remove on a signal.
static REGISTRY: Mutex<Registry> = Mutex::new(Registry::new());

/// Directories to remove on a signal.
struct Registry {
    dirs: Vec<PathBuf>,
    /// Set by the watcher once it has taken the list: whatever is registered later is removed
    /// right away, by the thread registering it.
    closed: bool,
}

/// What a cleanup did.
#[derive(Debug, Default)]
struct Report {
    /// Processes that were still there when signalled.
    stopped: usize,
    /// Directories that could not be removed, with why.
    failed: Vec<(PathBuf, std::io::Error)>,
}

impl Registry {
    const fn new() -> Registry {
        Registry {
            dirs: Vec::new(),
            closed: false,
        }
    }

    fn add_dir(&mut self, dir: PathBuf) {
        if !self.dirs.contains(&dir) {
            self.dirs.push(dir);
        }
    }

    /// Empties the registry; returns what it held.
    fn take(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.dirs)
    }
}

/// The registry, also after a thread panicked while holding it: its list stays consistent
/// (every change is a single push).
fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Installs the SIGINT and SIGTERM handlers and starts the watcher thread that cleans up and
/// exits when one of them arrives. `task` names the task in the line it prints. A second call
/// does nothing.
///
/// # Errors
/// The handlers cannot be installed or the thread cannot be started.
pub fn install(task: &'static str) -> std::io::Result<()> {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("interrupt".into())
        .spawn(move || watch(task))?;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        set_handler(signal)?;
    }
    Ok(())
}

/// Runs `task` with the handlers installed; after a signal, leaves the exit to the cleanup.
///
/// # Errors
/// The handlers cannot be installed, or `task` failed (not because of a signal).
pub fn guarded(
    name: &'static str,
    task: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    install(name).context("installing the SIGINT and SIGTERM handlers")?;
    let result = task();
    if interrupted() {
        // The cleanup pulls processes and files away from under the task, which likely made
        // it fail: leave the exit (and its code, 130 or 143) to the cleanup.
        wait_for_exit();
    }
    result
}

/// Whether a signal arrived (and the watcher is cleaning up, or about to).
pub fn interrupted() -> bool {
    SIGNAL.load(Ordering::SeqCst) != 0
}

/// Never returns: waits for the watcher to end the process. For the task's main thread after a
/// signal, so that it does not return an error (caused by the cleanup pulling its processes and
/// files away) and end the process with its own exit code while the cleanup is half done.
pub fn wait_for_exit() -> ! {
    loop {
        std::thread::park();
    }
}

/// Removes `dir` and everything in it on a signal. After a signal has arrived, removes it at
/// once. A directory that is already gone by then is fine.
pub fn register_dir(dir: PathBuf) {
    let mut registry = registry();
    if registry.closed {
        drop(registry);
        // Nobody to tell: the watcher is about to end the process.
        let _ = remove_dir(&dir);
        return;
    }
    registry.add_dir(dir);
}

/// Stops `pids` (SIGTERM, SIGKILL after `grace`) and then removes `dirs`.
fn clean(pids: BTreeSet<u32>, dirs: &[PathBuf], grace: Duration) -> Report {
    let stopped = stop(&pids, grace);
    let failed = dirs
        .iter()
        .filter_map(|dir| remove_dir(dir).err().map(|e| (dir.clone(), e)))
        .collect();
    Report { stopped, failed }
}

/// Waits for a signal, cleans up, reports, and exits.
fn watch(task: &str) {
    let signal = loop {
        let signal = SIGNAL.load(Ordering::SeqCst);
        if signal != 0 {
            break signal;
        }
        std::thread::sleep(POLL);
    };
    let report = shut_down();
    let processes = if report.stopped == 1 {
        "process"
    } else {
        "processes"
    };
    if report.failed.is_empty() {
        eprintln!(
            "{task}: interrupted; stopped {} {processes} and removed the {task}'s files",
            report.stopped
        );
    } else {
        let failed: Vec<String> = report
            .failed
            .iter()
            .map(|(dir, err)| format!("{} ({err})", dir.display()))
            .collect();
        eprintln!(
            "{task}: interrupted; stopped {} {processes}; could not remove {}",
            report.stopped,
            failed.join(", ")
        );
    }
    std::process::exit(128 + signal);
}

/// The watcher's cleanup: this process's children, then the registry's directories.
fn shut_down() -> Report {
    let dirs = {
        let mut registry = registry();
        registry.closed = true;
        registry.take()
    };
    let mut report = clean(children(), &dirs, GRACE);
    // The main thread runs on until the process exits, and may have started more child processes
    // meanwhile, which may write into the directories again: stop them (they are short-lived
    // commands, no grace) and remove the directories once more. Once the directories are gone,
    // starting anything in them fails.
    for _ in 0..3 {
        let late = children();
        if late.is_empty() {
            break;
        }
        let again = clean(late, &dirs, Duration::ZERO);
        report.stopped += again.stopped;
        report.failed = again.failed;
    }
    report
}

/// Removes `dir` and everything in it; gone already is fine. Retries a few times: a process
/// that was just stopped may have been writing into it.
fn remove_dir(dir: &Path) -> std::io::Result<()> {
    let mut attempts = 0;
    loop {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if attempts >= 4 => return Err(e),
            Err(_) => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Sends SIGTERM to each of `pids`, waits up to `grace` for them to exit, sends SIGKILL to the
/// rest and waits a moment for those too. Returns how many were there to signal.
fn stop(pids: &BTreeSet<u32>, grace: Duration) -> usize {
    let mut running: Vec<libc::pid_t> = pids
        .iter()
        .filter_map(|&pid| to_pid(pid))
        .filter(|&pid| send(pid, libc::SIGTERM))
        .collect();
    let stopped = running.len();
    wait_gone(&mut running, grace);
    running.retain(|&pid| send(pid, libc::SIGKILL));
    wait_gone(&mut running, KILL_WAIT);
    stopped
}

/// Waits up to `limit` for `pids` to be gone; leaves in `pids` those that are not.
fn wait_gone(pids: &mut Vec<libc::pid_t>, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        pids.retain(|&pid| !gone(pid));
        if pids.is_empty() || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `pid` as a process id to signal: never 0 or negative, which `kill` would take as a whole
/// process group, or every process it may signal.
fn to_pid(pid: u32) -> Option<libc::pid_t> {
    libc::pid_t::try_from(pid).ok().filter(|&p| p > 0)
}

/// The pids of this process's direct children (from `/proc`; none where there is no `/proc`).
fn children() -> BTreeSet<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| parent_of(pid) == Some(me))
        .collect()
}

/// The parent of `pid`, from `/proc/PID/stat`: `PID (COMM) STATE PPID ...`, where COMM may
/// hold spaces and parentheses, so the fields are counted from the last `)`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, fields) = stat.rsplit_once(')')?;
    fields.split_whitespace().nth(1)?.parse().ok()
}

/// Sends `signal` to `pid`; whether it was delivered (false: no such process).
#[allow(unsafe_code)]
fn send(pid: libc::pid_t, signal: libc::c_int) -> bool {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; `pid` is positive
    // (see `to_pid`), so it names one process.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Whether `pid` has exited. A child of this process is reaped here (a zombie would still
/// look alive to `kill(pid, 0)`); its `std::process::Child`, if any, then gets an error from
/// `wait`, which its owners ignore.
#[allow(unsafe_code)]
fn gone(pid: libc::pid_t) -> bool {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid place for waitpid(2) to write the exit status to.
    let waited = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if waited == pid {
        return true;
    }
    if waited == 0 {
        return false;
    }
    // Not our child, or already reaped by its owner: ask whether it still exists.
    // SAFETY: as in `send`; signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    !exists
}

/// The signal handler: stores the signal number, nothing else (an atomic store is
/// async-signal-safe; locking, allocating or printing here are not).
extern "C" fn on_signal(signal: libc::c_int) {
    SIGNAL.store(signal, Ordering::SeqCst);
}

/// Makes [`on_signal`] the handler of `signal`.
#[allow(unsafe_code)]
fn set_handler(signal: libc::c_int) -> std::io::Result<()> {
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags), then filled in;
    // the handler only does an atomic store, which is async-signal-safe; the pointers passed to
    // sigemptyset and sigaction are valid for the calls.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // Interrupted system calls on other threads resume instead of failing with EINTR.
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// What the watcher does after a signal, with `pids` in place of this process's children
    /// (here, the test harness's): stops them, removes every registered directory, empties the
    /// registry; returns how many of the processes were still running.
    fn cleanup(pids: BTreeSet<u32>) -> usize {
        let dirs = registry().take();
        let report = clean(pids, &dirs, GRACE);
        for (dir, err) in &report.failed {
            eprintln!("could not remove {}: {err}", dir.display());
        }
        report.stopped
    }

    use super::*;
    use std::process::Command;

    fn alive(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn registry_adds_each_dir_once() {
        let mut registry = Registry::new();
        registry.add_dir(PathBuf::from("/a"));
        registry.add_dir(PathBuf::from("/a"));
        assert_eq!(registry.dirs, vec![PathBuf::from("/a")]);
        assert_eq!(registry.take().len(), 1);
        assert!(registry.dirs.is_empty());
    }

    #[test]
    fn pids_that_would_signal_a_group_are_refused() {
        assert_eq!(to_pid(0), None);
        assert_eq!(to_pid(u32::MAX), None);
        assert_eq!(to_pid(1 << 31), None);
        assert_eq!(to_pid(42), Some(42));
    }

    /// The only test that touches the global registry (tests run on threads of one process).
    #[test]
    fn cleanup_stops_the_processes_and_removes_registered_dirs() -> std::io::Result<()> {
        let mut doomed = Command::new("sleep").arg("30").spawn()?;
        let mut spared = Command::new("sleep").arg("30").spawn()?;
        let dir = tempfile::tempdir()?.keep();
        std::fs::create_dir_all(dir.join("a/b"))?;
        std::fs::write(dir.join("a/b/file"), "x")?;
        register_dir(dir.clone());
        register_dir(dir.join("never-existed"));

        assert_eq!(cleanup(BTreeSet::from([doomed.id()])), 1);
        assert!(!alive(doomed.id()), "the child is still there");
        assert!(!dir.exists(), "the registered dir is still there");
        assert!(alive(spared.id()), "a process not named was stopped");
        assert_eq!(cleanup(BTreeSet::new()), 0, "the registry was not emptied");

        spared.kill()?;
        spared.wait()?;
        assert!(doomed.try_wait().is_err(), "reaped by the cleanup");
        Ok(())
    }

    #[test]
    fn a_process_that_ignores_sigterm_gets_sigkill() -> std::io::Result<()> {
        let mut child = Command::new("sh")
            .args(["-c", "trap '' TERM; exec sleep 30"])
            .spawn()?;
        // Give sh the moment it needs to set the trap.
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        let report = clean(
            BTreeSet::from([child.id()]),
            &[],
            Duration::from_millis(300),
        );
        assert_eq!(report.stopped, 1);
        assert!(!alive(child.id()));
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(child.try_wait().is_err(), "reaped by the cleanup");
        Ok(())
    }

    #[test]
    fn children_are_found() -> std::io::Result<()> {
        let mut child = Command::new("sleep").arg("30").spawn()?;
        assert!(children().contains(&child.id()));
        assert_eq!(parent_of(child.id()), Some(std::process::id()));
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    #[test]
    fn a_missing_dir_is_removed_already() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        remove_dir(&dir.path().join("missing"))
    }
}
