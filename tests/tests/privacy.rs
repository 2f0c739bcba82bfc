//! Invariant 7: this machine's other users get nothing. The cache dir and everything in it is
//! private to its owner; a cache dir, index or blob dir that another user could write is
//! refused (one warning, then plain gh); the dir carries `CACHEDIR.TAG`, and ghcache deletes
//! only files of its own formats.
//!
//! Every socket ghcache talks to is one it made, or sits in a directory it accepted with a
//! process of the same user on the other end.
//!
//! The tests run as root: "another user" is uid 65534 (nobody) or a group/other write bit.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use ghcache_core::policy::Resource;
use ghcache_core::{Body, Entry};
use ghcache_tests::{ghcache_bin, skip, spawn_piped, wait_piped, wait_until, Machine, Run, World};
use ghcache_tier_p2p::wire::{Control, Reply, MAX_CONTROL_FRAME};

const ARGS: [&str; 4] = ["pr", "list", "-R", "o/r"];
const PLANTED: &str = "PWNED: attacker-chosen answer\n";
const NOBODY: u32 = 65_534;

/// Every file and directory under `dir`, `dir` excluded.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            found.push(path);
        }
    }
    found.sort();
    found
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .map(|m| m.mode() & 0o7777)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), None)
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

/// Copies the files and directories of `from` into `to`, which exists.
fn copy_tree(from: &Path, to: &Path) {
    for path in tree(from) {
        let rel = path.strip_prefix(from).unwrap_or_else(|e| panic!("{e}"));
        let dest = to.join(rel);
        if path.is_dir() {
            std::fs::create_dir_all(&dest).unwrap_or_else(|e| panic!("mkdir: {e}"));
        } else if path.is_file() {
            std::fs::copy(&path, &dest).unwrap_or_else(|e| panic!("copy: {e}"));
        }
    }
}

/// What another user can leave in a cache dir they can write: a cache whose entry for `ARGS`
/// says [`PLANTED`], made by ghcache itself with a "gh" that prints it (same key inputs as
/// `victim`'s). The victim's cache dir gets a copy of its files.
fn plant_forged_entry(victim: &Machine) {
    let mut attacker = victim.clone();
    let forged = victim.home.join("attacker-cache");
    let fake_gh = victim.home.join("fake-gh");
    std::fs::write(&fake_gh, format!("#!/bin/sh\nprintf '{PLANTED}'\n"))
        .unwrap_or_else(|e| panic!("write: {e}"));
    chmod(&fake_gh, 0o755);
    attacker.set_env("GH_CACHE_DIR", &forged.display().to_string());
    attacker.set_env("GH_CACHE_GH", &fake_gh.display().to_string());
    attacker.cached(&ARGS).ok();
    // The forged entry is a hit for the same command line: this is what a victim would read.
    assert_eq!(attacker.cached(&ARGS).ok().out(), PLANTED);
    copy_tree(&forged, &victim.cache_dir());
}

/// `run`'s stderr is gh's own plus exactly one ghcache warning line, which it returns.
fn one_warning(run: &Run, plain: &Run) -> String {
    let err = run.err();
    let (ours, rest): (Vec<&str>, Vec<&str>) = err.lines().partition(|l| l.starts_with("ghcache:"));
    assert_eq!(ours.len(), 1, "one warning line: {err}");
    assert!(ours[0].starts_with("ghcache: warning: "), "{err}");
    assert_eq!(rest, plain.err().lines().collect::<Vec<_>>(), "{err}");
    ours[0].to_owned()
}

/// A way a cache dir is left open to another user: its name, what is done to the dir, and what
/// the warning tells the user to run.
type Case = (&'static str, fn(&Path), &'static str);

#[test]
fn a_cache_dir_that_another_user_can_write_is_refused_and_gh_answers() {
    let world = World::new();
    let cases: [Case; 5] = [
        (
            "owned-by-nobody",
            |dir| {
                for path in tree(dir) {
                    chown(&path, NOBODY);
                }
                chown(dir, NOBODY);
            },
            "chown",
        ),
        ("mode-777", |dir| chmod(dir, 0o777), "chmod 700"),
        ("mode-770", |dir| chmod(dir, 0o770), "chmod 700"),
        (
            "blobs-777",
            |dir| chmod(&dir.join("blobs"), 0o777),
            "chmod 700",
        ),
        (
            "index-owned-by-nobody",
            |dir| chown(&dir.join("index.db"), NOBODY),
            "chown",
        ),
    ];
    for (name, open_up, fix) in cases {
        let victim = world.machine(name);
        plant_forged_entry(&victim);
        open_up(&victim.cache_dir());
        let plain = victim.gh(&ARGS).ok();
        assert_ne!(plain.out(), PLANTED);
        let before = world.requests();
        let run = victim.cached(&ARGS);
        assert_eq!(
            (run.code, run.out()),
            (0, plain.out()),
            "{name}: GitHub's answer, not the planted one; stderr: {}",
            run.err()
        );
        assert!(world.requests() > before, "{name}: GitHub was asked");
        let warning = one_warning(&run, &plain);
        assert!(warning.contains(fix), "{name}: {warning}");
        assert!(warning.contains("without the cache"), "{name}: {warning}");
    }
}

/// Waits for a daemon that should refuse to start; kills it (and fails) if it runs on.
fn refused_daemon(mut child: Child) -> Run {
    let exited = wait_until(Duration::from_secs(30), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let run = wait_piped(child);
    assert!(exited, "the daemon started: {}", run.err());
    run
}

fn spawn_daemon(machine: &Machine, key: &Path) -> Child {
    spawn_piped(
        machine
            .command(ghcache_bin())
            .args(["daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"])
            .arg("--swarm-key")
            .arg(key),
    )
}

#[test]
fn the_daemon_refuses_a_cache_dir_that_another_user_can_write() {
    let world = World::new();
    let machine = world.machine("daemon-777");
    let key = machine.home.join("swarm.key");
    let printed = machine.ghcache(&["swarm-key", "new"]).ok();
    std::fs::write(&key, printed.stdout).unwrap_or_else(|e| panic!("write: {e}"));
    chmod(&key, 0o600);
    chmod(&machine.cache_dir(), 0o777);
    let run = refused_daemon(spawn_daemon(&machine, &key));
    assert_eq!(run.code, 1, "{}", run.err());
    assert_eq!(run.err().lines().count(), 1, "{}", run.err());
    let dir = machine.cache_dir().display().to_string();
    assert!(
        run.err().contains(&format!("chmod 700 {dir}")),
        "{}",
        run.err()
    );
}

#[test]
fn files_in_the_cache_dir_are_readable_by_their_owner_only() {
    let world = World::new();
    let machine = world.machine("modes");
    let cache = machine.cache_dir();
    machine.cached(&ARGS).ok(); // a miss: index, blob, lock file, fences
    machine.cached(&ARGS).ok(); // a hit: pending counters
    machine.cached(&["issue", "list", "-R", "o/r"]).ok();
    let check = |when: &str| {
        let files = tree(&cache);
        for name in [
            "index.db",
            "blobs",
            "locks",
            "stats.pending",
            "CACHEDIR.TAG",
        ] {
            assert!(files.contains(&cache.join(name)), "{when}: {name} made");
        }
        for path in std::iter::once(cache.clone()).chain(files) {
            let meta = std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{e}"));
            let expected = if meta.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(
                mode(&path),
                expected,
                "{when}: {} is {:o}",
                path.display(),
                mode(&path)
            );
        }
    };
    check("made by ghcache");
    // A cache made before the index was private: the next call tightens what it can.
    for name in [
        "",
        "index.db",
        "index.db-wal",
        "index.db-shm",
        "blobs",
        "locks",
    ] {
        let path = cache.join(name);
        if path.exists() {
            chmod(&path, if path.is_dir() { 0o755 } else { 0o644 });
        }
    }
    let before = world.requests();
    machine.cached(&ARGS).ok();
    assert_eq!(world.requests(), before, "still served from the cache");
    check("tightened");
}

#[test]
fn swarm_key_new_out_writes_a_private_file_and_never_replaces_one() {
    let world = World::new();
    let machine = world.machine("keys");
    let key = machine.home.join("swarm.key");
    let path = key.display().to_string();
    let made = machine.ghcache(&["swarm-key", "new", "--out", &path]).ok();
    assert!(made.stdout.is_empty(), "the secret is not printed");
    assert_eq!(mode(&key), 0o600);
    let text = std::fs::read_to_string(&key).unwrap_or_default();
    assert!(
        text.starts_with("/key/swarm/psk/1.0.0/\n/base16/\n"),
        "{text}"
    );
    let again = machine.ghcache(&["swarm-key", "new", "--out", &path]);
    assert_ne!(again.code, 0);
    assert!(again.err().contains("already exists"), "{}", again.err());
    assert_eq!(std::fs::read_to_string(&key).unwrap_or_default(), text);
    // Printing stays possible.
    let printed = machine.ghcache(&["swarm-key", "new"]).ok();
    assert!(printed.out().starts_with("/key/swarm/psk/1.0.0/\n"));
}

#[test]
fn the_daemon_refuses_a_swarm_key_file_that_others_can_read() {
    let world = World::new();
    let machine = world.machine("loose-key");
    let key = machine.home.join("swarm.key");
    let printed = machine.ghcache(&["swarm-key", "new"]).ok();
    std::fs::write(&key, printed.stdout).unwrap_or_else(|e| panic!("write: {e}"));
    chmod(&key, 0o644);
    let run = refused_daemon(spawn_daemon(&machine, &key));
    assert_eq!(run.code, 2, "{}", run.err());
    assert_eq!(run.err().lines().count(), 1, "{}", run.err());
    assert!(
        run.err().contains(&format!("chmod 600 {}", key.display())),
        "{}",
        run.err()
    );
}

#[test]
fn a_new_cache_dir_is_tagged_and_an_untagged_old_cache_is_adopted() {
    let world = World::new();
    let machine = world.machine("tag");
    let answer = machine.cached(&ARGS).ok();
    let tag = machine.cache_dir().join("CACHEDIR.TAG");
    let text = std::fs::read_to_string(&tag).unwrap_or_default();
    assert!(
        text.starts_with("Signature: 8a477f597d28d172789f06886806bc55\n"),
        "{text:?}"
    );
    assert!(text.contains("ghcache"), "{text:?}");
    // A cache made before the tag existed: still served, and tagged now.
    std::fs::remove_file(&tag).unwrap_or_else(|e| panic!("{e}"));
    let before = world.requests();
    let again = machine.cached(&ARGS).ok();
    assert_eq!(again.stdout, answer.stdout);
    assert_eq!(world.requests(), before, "served from the cache");
    assert!(again.stderr.is_empty(), "{}", again.err());
    assert_eq!(std::fs::read_to_string(&tag).unwrap_or_default(), text);
}

#[test]
fn a_non_empty_directory_that_is_not_a_cache_is_not_adopted() {
    let world = World::new();
    let mut machine = world.machine("documents");
    let documents = machine.home.join("documents");
    std::fs::create_dir_all(documents.join("drafts")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(documents.join("notes.txt"), "mine\n").unwrap_or_else(|e| panic!("{e}"));
    let before_tree = tree(&documents);
    machine.set_env("GH_CACHE_DIR", &documents.display().to_string());
    let plain = machine.gh(&ARGS).ok();
    let run = machine.cached(&ARGS);
    assert_eq!((run.code, run.out()), (0, plain.out()), "{}", run.err());
    let warning = one_warning(&run, &plain);
    assert!(warning.contains("not a ghcache cache"), "{warning}");
    let clear = machine.ghcache(&["clear", "--all"]);
    assert_eq!(clear.code, 1, "{}", clear.err());
    assert_eq!(clear.err().lines().count(), 1, "{}", clear.err());
    assert!(clear.err().contains("GH_CACHE_DIR"), "{}", clear.err());
    assert_eq!(tree(&documents), before_tree, "nothing made or removed");
    assert_eq!(mode(&documents), 0o755, "its mode is left alone");
}

#[test]
fn clear_all_removes_only_what_ghcache_made_and_keeps_the_fences() {
    let world = World::new();
    let machine = world.machine("clear");
    let cache = machine.cache_dir();
    machine.cached(&ARGS).ok();
    machine.cached(&["issue", "list", "-R", "o/r"]).ok();
    let locks = |cache: &Path| {
        tree(&cache.join("locks"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "lock"))
            .count()
    };
    assert!(locks(&cache) >= 2, "a lock file per fetched key");
    let blob = tree(&cache.join("blobs"))
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("a blob was stored"));
    let fan = blob.parent().map(Path::to_path_buf).unwrap_or_default();
    let digest = blob
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let foreign = [
        cache.join("notes.txt"),
        cache.join("blobs/README"),
        cache.join("blobs/zz/backup"),
        fan.join("notes.txt"),
        fan.join(format!("{digest}.orig")),
        fan.join(".tmp-notes"),
        cache.join("locks/notes.txt"),
        cache.join("stats.pending.notes"),
    ];
    for path in &foreign {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(path, "not ghcache's\n").unwrap_or_else(|e| panic!("{e}"));
    }
    let fences = cache.join("fences");
    let had_fences = fences.is_file();
    let cleared = machine.ghcache(&["clear", "--all"]).ok();
    // Each command's answer, and the answer to gh's request under it (the HTTP level).
    assert_eq!(cleared.out(), "dropped 4 cached entries\n");
    for path in &foreign {
        assert_eq!(
            std::fs::read_to_string(path).unwrap_or_default(),
            "not ghcache's\n",
            "{} kept",
            path.display()
        );
    }
    assert!(!blob.exists(), "the stored body was removed");
    assert_eq!(locks(&cache), 0, "lock files nobody holds were removed");
    // Moved by the clear (so that answers fetched before it are not stored), never removed.
    assert_eq!(fences.is_file(), had_fences, "the fence file is kept");
    for name in ["index.db", "CACHEDIR.TAG", "blobs", "locks"] {
        assert!(cache.join(name).exists(), "{name} kept");
    }
    // And the cache works on.
    let before = world.requests();
    machine.cached(&ARGS).ok();
    assert!(world.requests() > before, "cleared: asked GitHub");
    let before = world.requests();
    machine.cached(&ARGS).ok();
    assert_eq!(world.requests(), before, "stored again");
}

#[test]
fn eviction_removes_only_what_ghcache_made() {
    let world = World::new();
    let mut machine = world.machine("evict");
    // One entry per command, so that the size cap below holds exactly what it says.
    machine.set_env("GH_CACHE_HTTP", "0");
    let cache = machine.cache_dir();
    machine.cached(&ARGS).ok();
    let blob = tree(&cache.join("blobs"))
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("a blob was stored"));
    let size = std::fs::metadata(&blob).map(|m| m.len()).unwrap_or(0);
    let fan = blob.parent().map(Path::to_path_buf).unwrap_or_default();
    let foreign = [fan.join("notes.txt"), cache.join("blobs/zz/backup")];
    for path in &foreign {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(path, "not ghcache's\n").unwrap_or_else(|e| panic!("{e}"));
    }
    // Room for this body and a smaller one, not for both: the next store evicts the first
    // entry, then sweeps the blob directory.
    machine.set_env("GH_CACHE_MAX_SIZE", &format!("{}B", size + size / 3));
    let one = ["pr", "list", "-R", "o/r", "-L", "1"];
    let plain = machine.gh(&one).ok();
    assert_eq!(machine.cached(&one).ok().stdout, plain.stdout);
    assert_eq!(machine.stats()["entries"], 1, "the first entry was evicted");
    for path in &foreign {
        assert_eq!(
            std::fs::read_to_string(path).unwrap_or_default(),
            "not ghcache's\n",
            "{} kept",
            path.display()
        );
    }
}

/// What another user's stand-in for the daemon answers every lookup with: an HTTP answer for gh
/// (the HTTP level's stored form) and, at the command level, the same bytes as gh's output.
const FORGED_JSON: &str =
    "{\"full_name\":\"o/r\",\"description\":\"PWNED: forged by another user\"}";

/// A daemon socket that a process of uid [`NOBODY`] listens on, answering every lookup with a
/// hit for [`FORGED_JSON`] (key, scope, repository and resource as the CLI expects them, digest
/// right: what the CLI checks of its daemon's answers) and everything else with `Ok`: what
/// another user could run.
///
/// The listener is a thread of this test with credentials of its own (Linux keeps them per
/// thread; rustix's `set_thread_res_uid` changes this thread's alone), so the kernel records
/// uid 65534 for the socket when it listens, as it would for that user's process. It binds in a
/// scratch directory of that user's; the socket is then moved to `at` (the kernel keeps the
/// listener's credentials wherever the file is), so that it can stand in a directory this user
/// cannot otherwise reach.
struct ForgedDaemon {
    socket: PathBuf,
    /// Request frames read: anything ghcache sent to it.
    heard: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    _scratch: tempfile::TempDir,
}

impl ForgedDaemon {
    fn listen_at(at: &Path) -> ForgedDaemon {
        // Beside `at` (one filesystem, for the move); uid 65534 may pass through, not list.
        let scratch =
            tempfile::tempdir_in(std::env::temp_dir()).unwrap_or_else(|e| panic!("tempdir: {e}"));
        chmod(scratch.path(), 0o711);
        let theirs = scratch.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap_or_else(|e| panic!("mkdir: {e}"));
        chown(&theirs, NOBODY);
        let bound_at = theirs.join("daemon.sock");
        let heard = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, listening) = mpsc::channel();
        let thread = {
            let (heard, stop, bound_at) = (heard.clone(), stop.clone(), bound_at.clone());
            std::thread::spawn(move || {
                let nobody = rustix::process::Uid::from_raw(NOBODY);
                let listener = rustix::thread::set_thread_res_uid(nobody, nobody, nobody)
                    .map_err(std::io::Error::from)
                    .and_then(|()| UnixListener::bind(&bound_at));
                let listener = match listener {
                    Ok(listener) => listener,
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        let heard = heard.clone();
                        std::thread::spawn(move || answer_forged(stream, &heard));
                    }
                }
            })
        };
        let bound = listening
            .recv()
            .unwrap_or_else(|e| panic!("listener thread: {e}"));
        bound.unwrap_or_else(|e| panic!("listen as uid {NOBODY}: {e}"));
        std::fs::rename(&bound_at, at).unwrap_or_else(|e| panic!("move the socket: {e}"));
        ForgedDaemon {
            socket: at.to_owned(),
            heard,
            stop,
            thread: Some(thread),
            _scratch: scratch,
        }
    }

    fn heard(&self) -> usize {
        self.heard.load(Ordering::SeqCst)
    }
}

impl Drop for ForgedDaemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stop`.
        let _ = UnixStream::connect(&self.socket);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves one connection as [`ForgedDaemon`] describes.
fn answer_forged(mut stream: UnixStream, heard: &AtomicUsize) {
    loop {
        let mut prefix = [0u8; 4];
        if stream.read_exact(&mut prefix).is_err() {
            return;
        }
        let len = u32::from_le_bytes(prefix) as usize;
        if len > MAX_CONTROL_FRAME {
            return;
        }
        let mut frame = vec![0u8; len];
        if stream.read_exact(&mut frame).is_err() {
            return;
        }
        heard.fetch_add(1, Ordering::SeqCst);
        let reply = match Control::decode(&frame) {
            Ok(Control::Get { key, scope_id, .. }) => {
                let body = Body {
                    stdout: FORGED_JSON.as_bytes().to_vec(),
                    stderr: b"ghcache-http 1\n200\ncontent-type: application/json; charset=utf-8\n"
                        .to_vec(),
                };
                let mut entry = Entry::new(key, "", "o/r", Duration::from_secs(3600), body, None);
                entry.manifest.scope_id = scope_id;
                // What an honest producer names for `repos/o/r`: the chain checks it.
                entry.manifest.resource = Resource::Metadata;
                Reply::Hit {
                    manifest: entry.manifest.encode(),
                    body: entry.body.encode(),
                }
            }
            _ => Reply::Ok,
        };
        let reply = reply.encode();
        let Ok(len) = u32::try_from(reply.len()) else {
            return;
        };
        if stream.write_all(&len.to_le_bytes()).is_err() || stream.write_all(&reply).is_err() {
            return;
        }
    }
}

/// Whether this test can act as another user (as root); if not, [`skip`] says so.
fn root() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        skip("acting as another user (uid 65534) needs root");
    }
    root
}

/// `gh api repos/o/r` through ghcache on `machine`, whose daemon socket `forged` holds: GitHub's
/// answer, GitHub asked, nothing sent to the socket; returns the run and plain gh's.
fn answered_by_github_not_the_socket(
    world: &World,
    machine: &Machine,
    forged: &ForgedDaemon,
) -> (Run, Run) {
    let args = ["api", "repos/o/r"];
    let plain = machine.gh(&args).ok();
    assert!(!plain.out().contains("PWNED"));
    let before = world.requests();
    let run = machine.cached(&args);
    assert_eq!(
        (run.code, run.out()),
        (0, plain.out()),
        "GitHub's answer, not the forged one; stderr: {}",
        run.err()
    );
    assert!(world.requests() > before, "the request reached GitHub");
    assert_eq!(forged.heard(), 0, "nothing was sent to the socket");
    (run, plain)
}

#[test]
fn a_refused_cache_dirs_daemon_socket_is_not_used() {
    if !root() {
        return;
    }
    let world = World::new();
    let victim = world.machine("socket-in-refused-dir");
    victim.cached(&ARGS).ok(); // a cache, then left to another user
    let cache = victim.cache_dir();
    let p2p = cache.join("p2p");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&p2p)
        .unwrap_or_else(|e| panic!("mkdir: {e}"));
    for path in tree(&cache) {
        chown(&path, NOBODY);
    }
    chown(&cache, NOBODY);
    let forged = ForgedDaemon::listen_at(&p2p.join("daemon.sock"));
    let (run, plain) = answered_by_github_not_the_socket(&world, &victim, &forged);
    let warning = one_warning(&run, &plain);
    assert!(warning.contains("refusing the cache"), "{warning}");
    assert!(warning.contains("without the cache"), "{warning}");
}

#[test]
fn a_daemon_socket_that_another_user_listens_on_is_not_used() {
    if !root() {
        return;
    }
    let world = World::new();
    let machine = world.machine("socket-of-another-user");
    machine.cached(&ARGS).ok(); // a cache of this user's
    let p2p = machine.cache_dir().join("p2p");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&p2p)
        .unwrap_or_else(|e| panic!("mkdir: {e}"));
    let socket = p2p.join("daemon.sock");
    let forged = ForgedDaemon::listen_at(&socket);
    let (run, plain) = answered_by_github_not_the_socket(&world, &machine, &forged);
    // The command's own lookup and gh's HTTP level both found it: one warning.
    let warning = one_warning(&run, &plain);
    assert!(
        warning.contains(&format!("not using the daemon socket {}", socket.display())),
        "{warning}"
    );
    assert!(
        warning.contains(&format!("runs as uid {NOBODY}, not as you (uid 0)")),
        "{warning}"
    );
    // And `daemon status` says so instead of asking it.
    let status = machine.ghcache(&["daemon", "status"]);
    assert_eq!(status.code, 1, "{}", status.err());
    assert!(
        status.err().contains("not using the daemon socket"),
        "{}",
        status.err()
    );
    // Nor does a daemon of this user's start on top of it.
    let key = machine.home.join("swarm.key");
    let printed = machine.ghcache(&["swarm-key", "new"]).ok();
    std::fs::write(&key, printed.stdout).unwrap_or_else(|e| panic!("write: {e}"));
    chmod(&key, 0o600);
    let daemon = refused_daemon(spawn_daemon(&machine, &key));
    assert_eq!(daemon.code, 1, "{}", daemon.err());
    assert!(
        daemon.err().contains("not using the daemon socket"),
        "{}",
        daemon.err()
    );
    assert_eq!(forged.heard(), 0, "status and the daemon sent nothing");
}
