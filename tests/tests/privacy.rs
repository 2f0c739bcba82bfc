//! Invariant 7: this machine's other users get nothing. The cache dir and everything in it is
//! private to its owner; a cache dir, index or blob dir that another user could write is
//! refused (one warning, then plain gh); the dir carries `CACHEDIR.TAG`, and ghcache deletes
//! only files of its own formats.
//!
//! The tests run as root: "another user" is uid 65534 (nobody) or a group/other write bit.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use ghcache_tests::{ghcache_bin, spawn_piped, wait_piped, wait_until, Machine, Run, World};

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
