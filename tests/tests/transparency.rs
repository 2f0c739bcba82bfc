//! Invariant 1: for a cached command, stdout and the exit code are byte-identical to plain gh,
//! piped and on a terminal; and the second call is answered without GitHub.

use ghcache_tests::{Machine, World};

/// Every allowlisted command family, as a user would type it.
const COMMANDS: &[&[&str]] = &[
    &["repo", "view", "o/r"],
    &["repo", "view", "o/r", "--json", "name,description"],
    &["repo", "list", "o"],
    &["pr", "list", "-R", "o/r"],
    &["pr", "view", "1", "-R", "o/r"],
    &["pr", "diff", "1", "-R", "o/r"],
    &["pr", "checks", "1", "-R", "o/r"],
    &["issue", "list", "-R", "o/r"],
    &["issue", "view", "1", "-R", "o/r"],
    &["run", "list", "-R", "o/r"],
    &["release", "list", "-R", "o/r"],
    &["release", "view", "v1.0.0", "-R", "o/r"],
    &["workflow", "list", "-R", "o/r"],
    &["label", "list", "-R", "o/r"],
    &["search", "repos", "foo"],
    &["search", "issues", "foo"],
    &["api", "repos/o/r"],
    &["api", "user"],
    &["api", "graphql", "-f", "query=query{viewer{login}}"],
    &["api", "--paginate", "repos/o/r/issues"],
];

fn check(world: &World, machine: &Machine, args: &[&str], tty: Option<u16>) {
    let run = |cached: bool| match (tty, cached) {
        (None, false) => machine.gh(args),
        (None, true) => machine.cached(args),
        (Some(w), false) => machine.gh_tty(args, w),
        (Some(w), true) => machine.cached_tty(args, w),
    };
    let plain = run(false);
    assert_eq!(plain.code, 0, "plain gh {args:?} failed: {}", plain.err());
    let miss = run(true);
    assert_eq!(miss.code, plain.code, "{args:?} exit code (miss)");
    assert_eq!(
        miss.out(),
        plain.out(),
        "{args:?} stdout (miss), tty={tty:?}"
    );
    let before = world.requests();
    let hit = run(true);
    assert_eq!(hit.code, plain.code, "{args:?} exit code (hit)");
    assert_eq!(
        hit.stdout, miss.stdout,
        "{args:?} stdout (hit), tty={tty:?}"
    );
    assert_eq!(
        hit.stderr, miss.stderr,
        "{args:?} stderr (hit), tty={tty:?}"
    );
    assert_eq!(
        world.requests(),
        before,
        "{args:?}: a hit must not reach GitHub"
    );
}

#[test]
fn piped_output_is_byte_identical_to_plain_gh() {
    let world = World::new();
    let machine = world.machine("piped");
    for args in COMMANDS {
        check(&world, &machine, args, None);
    }
    let stats = machine.stats();
    assert_eq!(stats["hits"]["local"], COMMANDS.len());
    assert_eq!(stats["misses"], COMMANDS.len());
}

#[test]
fn terminal_output_is_byte_identical_to_plain_gh() {
    let world = World::new();
    let machine = world.machine("tty");
    for args in COMMANDS {
        check(&world, &machine, args, Some(100));
    }
}

#[test]
fn terminal_width_is_part_of_the_key() {
    let world = World::new();
    let machine = world.machine("widths");
    let args = ["pr", "list", "-R", "o/r"];
    let wide = machine.cached_tty(&args, 160).ok();
    let before = machine.stats()["misses"].as_u64();
    let narrow = machine.cached_tty(&args, 60).ok();
    // gh's request is the same at any width: the HTTP level answers it; the output is new.
    let after = machine.stats()["misses"].as_u64();
    assert_eq!(
        after,
        before.map(|n| n + 1),
        "another width is another entry"
    );
    assert_eq!(narrow.stdout, machine.gh_tty(&args, 60).stdout);
    assert_eq!(wide.stdout, machine.gh_tty(&args, 160).stdout);
    let piped = machine.cached(&args).ok();
    assert_eq!(
        piped.stdout,
        machine.gh(&args).stdout,
        "piped is its own entry"
    );
}

#[test]
fn nothing_of_ghcache_reaches_stdout_even_in_debug_mode() {
    let world = World::new();
    let mut machine = world.machine("debug");
    machine.set_env("GH_CACHE_DEBUG", "1");
    let args = ["issue", "list", "-R", "o/r"];
    let plain = machine.gh(&args).ok();
    let miss = machine.cached(&args).ok();
    let hit = machine.cached(&args).ok();
    assert_eq!(miss.stdout, plain.stdout);
    assert_eq!(hit.stdout, plain.stdout);
    assert!(
        hit.err().contains("ghcache: local hit key="),
        "debug line: {}",
        hit.err()
    );
    assert!(
        miss.err().contains("fetched from github"),
        "debug line: {}",
        miss.err()
    );
}

#[test]
fn failing_commands_keep_gh_exit_code_and_are_not_cached() {
    let world = World::new();
    let machine = world.machine("failing");
    let args = ["api", "repos/o/r/no-such-endpoint"];
    let plain = machine.gh(&args);
    assert_ne!(plain.code, 0);
    let first = machine.cached(&args);
    assert_eq!(
        (first.code, first.out(), first.err()),
        (plain.code, plain.out(), plain.err())
    );
    let before = world.requests();
    let second = machine.cached(&args);
    assert_eq!(second.code, plain.code);
    assert_eq!(world.requests(), before + 1, "failures are not cached");
}
