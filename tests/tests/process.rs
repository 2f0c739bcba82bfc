//! ghcache as a process around gh: signals reach gh and ghcache exits as gh did; what gh
//! prints reaches the user as gh prints it, and memory stays bounded however much that is.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ghcache_tests::{ghcache_bin, spawn_piped, wait_until, Machine, World};
use rustix::process::{kill_process, Pid, Signal};

const ARGS: [&str; 4] = ["pr", "list", "-R", "o/r"];

/// How long a test waits for something that takes a fraction of a second.
const DEADLINE: Duration = Duration::from_secs(30);

/// The processes whose parent is `parent`, from /proc.
fn children(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if stat(pid).is_some_and(|(_, ppid)| ppid == parent) {
            found.push(pid);
        }
    }
    found
}

/// State letter and parent of a process, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: read after the last `)`.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether a process still runs (a zombie has ended).
fn running(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z')
}

fn signal(pid: u32, signal: Signal) {
    let pid = i32::try_from(pid).ok().and_then(Pid::from_raw);
    let sent = pid.map(|pid| kill_process(pid, signal));
    assert!(matches!(sent, Some(Ok(()))), "kill {pid:?}: {sent:?}");
}

/// Waits for `child` to exit, within the deadline; its exit code as a shell reports it.
fn exit_code(child: &mut Child) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt as _;
    let mut code = None;
    wait_until(DEADLINE, || match child.try_wait() {
        Ok(Some(status)) => {
            code = status.code().or_else(|| status.signal().map(|s| 128 + s));
            true
        }
        _ => false,
    });
    code
}

/// `ghcache gh <args>` is stopped with `sig` while gh waits for a slow GitHub: ghcache passes
/// it on, gh ends at once rather than when GitHub answers, and ghcache exits as gh did.
fn interrupt_while_gh_waits(machine: &Machine, args: &[&str], sig: Signal) {
    let mut ghcache = spawn_piped(machine.command(ghcache_bin()).arg("gh").args(args));
    let id = ghcache.id();
    let mut gh = None;
    let started = wait_until(DEADLINE, || {
        gh = children(id).first().copied();
        gh.is_some()
    });
    assert!(started, "{args:?}: ghcache started gh");
    let gh = gh.unwrap_or_default();
    // gh has no answer before the fake GitHub's latency is over, which it is not for a minute.
    assert!(running(gh));
    signal(id, sig);
    let code = exit_code(&mut ghcache);
    assert_eq!(
        code,
        Some(128 + sig.as_raw()),
        "{args:?}: ghcache exits as gh did (killed by SIG{})",
        sig.as_raw()
    );
    assert!(
        wait_until(DEADLINE, || !running(gh)),
        "{args:?}: gh was left running after ghcache exited"
    );
}

#[test]
fn signals_reach_gh_and_ghcache_exits_as_gh_did() {
    let world = World::new();
    let machine = world.machine("signals");
    world.github.set_latency(Duration::from_secs(60));
    // A miss: gh runs under ghcache, which prints and stores what gh answers.
    for sig in [Signal::TERM, Signal::INT, Signal::HUP] {
        interrupt_while_gh_waits(&machine, &ARGS, sig);
    }
    // A write: gh runs with the user's terminal; SIGTERM is sent to ghcache alone.
    let write = ["issue", "create", "-R", "o/r", "-t", "t", "-b", "b"];
    interrupt_while_gh_waits(&machine, &write, Signal::TERM);
    // Nothing of the interrupted misses was stored: the next call asks GitHub.
    world.github.set_latency(Duration::ZERO);
    let before = world.requests();
    let run = machine.cached(&ARGS).ok();
    assert!(
        world.requests() > before,
        "an interrupted answer was stored"
    );
    assert_eq!(run.stdout, machine.gh(&ARGS).ok().stdout);
}

/// A gh (for `GH_CACHE_GH`) that counts its runs in `runs`, prints `first line`, then waits
/// until the file named by `FAKE_GH_RELEASE` exists (at most two minutes) and prints
/// `second line`. With `FAKE_GH_BYTES`, it prints that many bytes of a pattern in between.
const STAGED_GH: &str = r#"#!/bin/sh
here=$(dirname "$0")
echo run >> "$here/runs"
echo first line
if [ -n "$FAKE_GH_BYTES" ]; then
  yes 0123456789abcdef | head -c "$FAKE_GH_BYTES"
fi
i=0
while [ ! -e "$FAKE_GH_RELEASE" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
echo second line
"#;

/// A machine whose gh is [`STAGED_GH`]; returns the machine, the release file and the runs file.
fn staged(world: &World, name: &str) -> (Machine, PathBuf, PathBuf) {
    let mut machine = world.machine(name);
    let dir = machine.home.join("bin");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let gh = dir.join("gh");
    std::fs::write(&gh, STAGED_GH).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let release = machine.home.join("release");
    machine.set_env("GH_CACHE_GH", &gh.display().to_string());
    machine.set_env("FAKE_GH_RELEASE", &release.display().to_string());
    (machine, release, dir.join("runs"))
}

fn runs(file: &Path) -> usize {
    std::fs::read_to_string(file).map_or(0, |t| t.lines().count())
}

/// Collects what a reader yields, on a thread, so the test can look at it while it comes.
fn collect(mut from: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Ok(mut seen) = sink.lock() {
                        seen.extend_from_slice(&buf[..n]);
                    }
                }
            }
        }
    });
    seen
}

fn contains(seen: &Mutex<Vec<u8>>, needle: &[u8]) -> bool {
    seen.lock()
        .is_ok_and(|s| s.windows(needle.len()).any(|w| w == needle))
}

/// A pseudo-terminal of `width` columns: the stdout for a command, and what it shows.
struct Tty {
    slave: std::fs::File,
    shown: Arc<Mutex<Vec<u8>>>,
}

impl Tty {
    fn open(width: u16) -> Tty {
        let (master, slave) = ghcache_tests::open_pty(width);
        Tty {
            slave,
            shown: collect(master),
        }
    }
}

#[test]
fn output_reaches_the_user_while_gh_still_runs_piped_and_through_the_pager() {
    let world = World::new();
    let (mut machine, release, runs_file) = staged(&world, "streaming");
    // Piped.
    let mut ghcache = machine
        .command(ghcache_bin())
        .arg("gh")
        .args(ARGS)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = ghcache.stdout.take().unwrap_or_else(|| panic!("stdout"));
    let seen = collect(stdout);
    let early = wait_until(DEADLINE, || contains(&seen, b"first line\n"));
    std::fs::write(&release, "").unwrap_or_else(|e| panic!("{e}"));
    assert!(early, "the first line was printed only when gh exited");
    assert_eq!(exit_code(&mut ghcache), Some(0));
    assert!(wait_until(DEADLINE, || contains(&seen, b"second line\n")));
    let printed = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(printed, b"first line\nsecond line\n");
    // It was stored as printed: the next call is a hit.
    let hit = machine.cached(&ARGS).ok();
    assert_eq!(hit.stdout, printed);
    assert_eq!(runs(&runs_file), 1);

    // On a terminal, through the user's pager (`cat -u` is not `cat`, which means "no pager").
    std::fs::remove_file(&release).unwrap_or_else(|e| panic!("{e}"));
    machine.set_env("GH_PAGER", "cat -u");
    let tty = Tty::open(100);
    let mut ghcache = machine
        .command(ghcache_bin())
        .arg("gh")
        .args(ARGS)
        .stdout(Stdio::from(
            tty.slave.try_clone().unwrap_or_else(|e| panic!("{e}")),
        ))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let early = wait_until(DEADLINE, || contains(&tty.shown, b"first line"));
    std::fs::write(&release, "").unwrap_or_else(|e| panic!("{e}"));
    assert!(early, "the pager showed nothing before gh exited");
    assert_eq!(exit_code(&mut ghcache), Some(0));
    assert!(wait_until(DEADLINE, || contains(
        &tty.shown,
        b"second line"
    )));
    assert_eq!(runs(&runs_file), 2, "a terminal answer is keyed apart");
}

/// The digest of what [`STAGED_GH`] prints with `FAKE_GH_BYTES=len`.
fn staged_digest(len: usize) -> blake3::Hash {
    let line = b"0123456789abcdef\n";
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"first line\n");
    let block: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(line.len() * 4096)
        .collect();
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len());
        hasher.update(&block[..n]);
        left -= n;
    }
    hasher.update(b"second line\n");
    hasher.finalize()
}

/// Reads all of `from` on a thread, keeping its length and digest, not the bytes.
fn digest_of(
    mut from: impl std::io::Read + Send + 'static,
) -> (
    Arc<Mutex<usize>>,
    std::thread::JoinHandle<(usize, blake3::Hash)>,
) {
    let count = Arc::new(Mutex::new(0usize));
    let counter = count.clone();
    let reader = std::thread::spawn(move || {
        let mut hasher = blake3::Hasher::new();
        let mut total = 0;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    total += n;
                    if let Ok(mut count) = counter.lock() {
                        *count = total;
                    }
                }
            }
        }
        (total, hasher.finalize())
    });
    (count, reader)
}

/// The most memory a process has used so far (VmHWM), in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn a_huge_answer_is_streamed_in_bounded_memory_and_not_stored() {
    const BIG: usize = 200_000_000;
    /// Generous: the largest entry (64 MiB by default) kept while it fits, and the process.
    const PEAK_BOUND: u64 = 160 << 20;
    let world = World::new();
    let (mut machine, release, runs_file) = staged(&world, "huge");
    machine.set_env("FAKE_GH_BYTES", &BIG.to_string());
    let total = b"first line\n".len() + BIG + b"second line\n".len();
    let expected = staged_digest(BIG);
    let run = |release_first: bool| {
        let mut ghcache = machine
            .command(ghcache_bin())
            .arg("gh")
            .args(ARGS)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let stdout = ghcache.stdout.take().unwrap_or_else(|| panic!("stdout"));
        let (count, reader) = digest_of(stdout);
        let mut peak = None;
        if !release_first {
            // All of it arrives while gh still runs (it waits for the release file).
            let streamed = wait_until(Duration::from_secs(60), || {
                count
                    .lock()
                    .is_ok_and(|c| *c >= total - b"second line\n".len())
            });
            peak = peak_rss(ghcache.id());
            std::fs::write(&release, "").unwrap_or_else(|e| panic!("{e}"));
            assert!(
                streamed,
                "the answer was not printed before gh exited: {:?} of {total}",
                count.lock().map(|c| *c)
            );
        }
        let code = exit_code(&mut ghcache);
        let (len, digest) = reader.join().unwrap_or_else(|_| panic!("reader"));
        assert_eq!((code, len), (Some(0), total));
        assert_eq!(digest, expected, "every byte as gh printed it");
        peak
    };
    let peak = run(false).unwrap_or(u64::MAX);
    assert!(
        peak < PEAK_BOUND,
        "peak RSS {} MiB for a {} MB answer",
        peak >> 20,
        BIG / 1_000_000
    );
    // Not stored: the next call runs gh again.
    run(true);
    assert_eq!(runs(&runs_file), 2);
}
