//! Invariant 6: a corrupt file, a killed writer, a read-only or full cache dir never yield a
//! wrong answer: at worst a miss, with a clear warning.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ghcache_tests::{ghcache_bin, skip, spawn_piped, wait_until, Machine, Mount, World};

const ARGS: [&str; 4] = ["pr", "list", "-R", "o/r"];

fn blobs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.join("blobs")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

fn expect_correct(machine: &Machine, warning: Option<&str>) {
    let plain = machine.gh(&ARGS).ok();
    let run = machine.cached(&ARGS);
    assert_eq!(run.code, 0, "{}", run.err());
    assert_eq!(run.stdout, plain.stdout, "never a wrong answer");
    if let Some(warning) = warning {
        assert!(
            run.err().contains(warning),
            "expected a warning with {warning:?}: {}",
            run.err()
        );
    }
}

/// How many warning lines ghcache printed.
fn warnings(run: &ghcache_tests::Run) -> usize {
    run.err()
        .lines()
        .filter(|l| l.starts_with("ghcache: warning"))
        .count()
}

#[test]
fn a_corrupted_blob_is_dropped_counted_and_refetched() {
    let world = World::new();
    let machine = world.machine("corrupt-blob");
    machine.cached(&ARGS).ok();
    let files = blobs(&machine.cache_dir());
    assert!(!files.is_empty(), "a blob was stored");
    for file in &files {
        let mut bytes = std::fs::read(file).unwrap_or_default();
        let last = bytes.len().saturating_sub(2);
        if let Some(b) = bytes.get_mut(last) {
            *b ^= 0x55; // same size, different content: only the digest can tell
        }
        std::fs::write(file, bytes).unwrap_or_else(|e| panic!("write: {e}"));
    }
    let before = world.requests();
    expect_correct(&machine, Some("integrity"));
    assert!(
        world.requests() > before,
        "the corrupt entry was not served"
    );
    assert_eq!(machine.stats()["corrupt"], 1);
    let before = world.requests();
    expect_correct(&machine, None);
    assert_eq!(
        world.requests(),
        before + 1,
        "re-stored after the corrupt one was dropped (plus the reference gh call)"
    );
}

#[test]
fn a_truncated_database_is_moved_aside_and_the_cache_starts_over() {
    let world = World::new();
    let machine = world.machine("truncated-db");
    machine.cached(&ARGS).ok();
    let db = machine.cache_dir().join("index.db");
    let len = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    assert!(len > 0);
    for sidecar in ["index.db-wal", "index.db-shm"] {
        let _ = std::fs::remove_file(machine.cache_dir().join(sidecar));
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap_or_else(|e| panic!("{e}"));
    file.set_len(len / 3)
        .unwrap_or_else(|e| panic!("truncate: {e}"));
    drop(file);
    expect_correct(&machine, Some("corrupt"));
    let before = world.requests();
    let again = machine.cached(&ARGS).ok();
    assert_eq!(world.requests(), before, "the new database caches again");
    assert_eq!(again.stdout, machine.gh(&ARGS).ok().stdout);
}

#[test]
fn a_writer_killed_mid_fetch_leaves_no_wrong_answer_and_no_stuck_lock() {
    let world = World::new();
    let machine = world.machine("killed");
    world.github.set_latency(Duration::from_millis(1500));
    let mut child = spawn_piped(machine.command(ghcache_bin()).arg("gh").args(ARGS));
    assert!(
        wait_until(Duration::from_secs(20), || world.requests() >= 1),
        "the writer's gh reached GitHub"
    );
    let killed = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status();
    assert!(killed.is_ok_and(|s| s.success()));
    let _ = child.wait();
    world.github.set_latency(Duration::ZERO);
    // The lock died with its holder: this call must not wait for the lock timeout.
    let started = std::time::Instant::now();
    expect_correct(&machine, None);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn an_unusable_cache_dir_still_answers_correctly_with_a_warning() {
    let world = World::new();
    let mut machine = world.machine("unusable");
    let file = machine.home.join("not-a-dir");
    std::fs::write(&file, "x").unwrap_or_else(|e| panic!("{e}"));
    machine.set_env("GH_CACHE_DIR", &file.display().to_string());
    expect_correct(&machine, Some("without the cache"));
}

#[test]
fn a_full_disk_costs_a_warning_not_a_wrong_answer() {
    let world = World::new();
    let machine = world.machine("full");
    let Some(_mount) = Mount::tmpfs(&machine.cache_dir(), "size=512k") else {
        skip("cannot mount a tmpfs here (needs root); full-disk case not exercised");
        return;
    };
    machine.cached(&["repo", "view", "o/r"]).ok();
    // Fill the disk to the last byte.
    let filler = machine.cache_dir().join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k"])
        .arg(format!("of={}", filler.display()))
        .output();
    expect_correct(&machine, None);
    let run = machine.cached(&ARGS);
    assert_eq!(
        warnings(&run),
        1,
        "one warning for one problem: {}",
        run.err()
    );
    assert!(
        run.err().contains("nothing new is stored") || run.err().contains("could not store"),
        "{}",
        run.err()
    );
    let _ = std::fs::remove_file(filler);
    let before = world.requests();
    machine.cached(&["repo", "view", "o/r"]).ok();
    assert_eq!(
        world.requests(),
        before,
        "entries stored before the disk filled still serve"
    );
}

#[test]
fn a_read_only_cache_dir_serves_what_it_has_and_answers_the_rest_from_github() {
    let world = World::new();
    let machine = world.machine("readonly");
    let Some(mount) = Mount::tmpfs(&machine.cache_dir(), "size=4m") else {
        skip("cannot mount a tmpfs here (needs root); read-only case not exercised");
        return;
    };
    let cached = machine.cached(&["repo", "view", "o/r"]).ok();
    assert!(mount.remount("ro"), "remount read-only");
    let plain = machine.gh(&ARGS).ok();
    let run = machine.cached(&ARGS);
    assert_eq!(
        (run.code, run.stdout.clone()),
        (0, plain.stdout),
        "{}",
        run.err()
    );
    assert_eq!(
        warnings(&run),
        1,
        "one clear warning for one problem: {}",
        run.err()
    );
    let again = machine.cached(&["repo", "view", "o/r"]);
    assert_eq!(again.stdout, cached.stdout);
    assert_eq!(again.code, 0);
}

/// A gh whose `issue list` holds its answer while `<home>/hold` exists, after it has read it
/// from GitHub (`<home>/read` then exists): a fetch that a write overtakes.
fn slow_reading_gh(machine: &mut Machine) -> PathBuf {
    let script = machine.home.join("slow-gh");
    let body = format!(
        "#!/bin/sh\n\
         tmp=\"{home}/out.$$\"\n\
         \"{gh}\" \"$@\" > \"$tmp\"; code=$?\n\
         if [ \"$1 $2\" = \"issue list\" ] && [ -e \"{home}/hold\" ]; then\n\
         \x20 touch \"{home}/read\"\n\
         \x20 while [ -e \"{home}/hold\" ]; do sleep 0.02; done\n\
         fi\n\
         cat \"$tmp\"; rm -f \"$tmp\"; exit $code\n",
        gh = ghcache_tests::gh_bin().display(),
        home = machine.home.display(),
    );
    std::fs::write(&script, body).unwrap_or_else(|e| panic!("write: {e}"));
    let made = Command::new("chmod").arg("755").arg(&script).status();
    assert!(made.is_ok_and(|s| s.success()));
    machine.set_env("GH_CACHE_GH", &script.display().to_string());
    script
}

#[test]
fn a_fetch_that_a_write_overtakes_is_neither_stored_nor_served() {
    let world = World::new();
    let mut machine = world.machine("race");
    slow_reading_gh(&mut machine);
    let list = ["issue", "list", "-R", "o/r"];
    let hold = machine.home.join("hold");
    std::fs::write(&hold, "").unwrap_or_else(|e| panic!("{e}"));
    let reader = spawn_piped(machine.command(ghcache_bin()).arg("gh").args(list));
    assert!(
        wait_until(Duration::from_secs(20), || machine
            .home
            .join("read")
            .exists()),
        "the read reached GitHub"
    );
    // The user's write goes through ghcache while the read's answer is still on its way.
    machine
        .cached(&[
            "issue",
            "create",
            "-R",
            "o/r",
            "-t",
            "made meanwhile",
            "-b",
            "x",
        ])
        .ok();
    std::fs::remove_file(&hold).unwrap_or_else(|e| panic!("{e}"));
    let raced = ghcache_tests::wait_piped(reader);
    assert_eq!(raced.code, 0, "{}", raced.err());
    assert!(
        !raced.out().contains("made meanwhile"),
        "it read before the write"
    );

    let plain = machine.gh(&list).ok();
    assert!(plain.out().contains("made meanwhile"));
    let before = world.requests();
    let after = machine.cached(&list).ok();
    assert_eq!(
        after.stdout, plain.stdout,
        "the answer from before the write is gone"
    );
    assert!(world.requests() > before, "asked GitHub again");
}

/// `ghcache gh issue create` on `repo`, then the list must be what plain gh prints.
fn write_then_read_matches_plain_gh(world: &World, machine: &Machine, repo: &str, title: &str) {
    let list = ["issue", "list", "-R", repo];
    let write = machine.cached(&["issue", "create", "-R", repo, "-t", title, "-b", "x"]);
    assert_eq!(write.code, 0, "the write went through: {}", write.err());
    let plain = machine.gh(&list).ok();
    assert!(plain.out().contains(title));
    let before = world.requests();
    let run = machine.cached(&list);
    assert_eq!((run.code, &run.stdout), (0, &plain.stdout), "{}", run.err());
    assert!(
        world.requests() > before,
        "not answered from before the write"
    );
}

#[test]
fn a_write_on_a_full_disk_still_stops_the_old_answers() {
    let world = World::new();
    let machine = world.machine("full-write");
    let Some(_mount) = Mount::tmpfs(&machine.cache_dir(), "size=512k") else {
        skip("cannot mount a tmpfs here (needs root); full-disk case not exercised");
        return;
    };
    machine.cached(&["issue", "list", "-R", "o/w"]).ok();
    let filler = machine.cache_dir().join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k"])
        .arg(format!("of={}", filler.display()))
        .output();
    write_then_read_matches_plain_gh(&world, &machine, "o/w", "written on a full disk");
    let _ = std::fs::remove_file(filler);
    let plain = machine.gh(&["issue", "list", "-R", "o/w"]).ok();
    let run = machine.cached(&["issue", "list", "-R", "o/w"]).ok();
    assert_eq!(run.stdout, plain.stdout, "nor after space is freed");
}

#[test]
fn a_write_with_a_read_only_cache_still_stops_the_old_answers() {
    let world = World::new();
    let machine = world.machine("readonly-write");
    let Some(mount) = Mount::tmpfs(&machine.cache_dir(), "size=4m") else {
        skip("cannot mount a tmpfs here (needs root); read-only case not exercised");
        return;
    };
    machine.cached(&["issue", "list", "-R", "o/w"]).ok();
    assert!(mount.remount("ro"), "remount read-only");
    write_then_read_matches_plain_gh(&world, &machine, "o/w", "written to a read-only cache");
    assert!(mount.remount("rw"), "remount read-write");
    let plain = machine.gh(&["issue", "list", "-R", "o/w"]).ok();
    let run = machine.cached(&["issue", "list", "-R", "o/w"]).ok();
    assert_eq!(run.stdout, plain.stdout, "nor once it can be written again");
    let before = world.requests();
    let again = machine.cached(&["issue", "list", "-R", "o/w"]).ok();
    assert_eq!(again.stdout, plain.stdout);
    assert_eq!(world.requests(), before, "and it caches again");
}
