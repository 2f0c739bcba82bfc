//! What the user hands ghcache: arguments in any encoding reach gh as they are; ghcache's own
//! settings, from the environment or the file, are checked alike and a bad one is one clear line.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;

use ghcache_tests::{gh_bin, ghcache_bin, run_piped, Machine, Run, World};

#[test]
fn arguments_that_are_not_utf8_reach_gh_as_they_are() {
    let world = World::new();
    let machine = world.machine("bytes");
    let word = OsStr::new;
    let bytes = OsStr::from_bytes;
    let cases = [
        vec![word("pr"), word("list"), word("-R"), bytes(b"o/r\xff")],
        vec![word("api"), bytes(b"repos/o/r\xfe")],
        vec![
            word("issue"),
            word("list"),
            word("-R"),
            word("o/r"),
            word("--search"),
            bytes(b"caf\xe9"),
        ],
    ];
    for args in &cases {
        let before = world.requests();
        let plain = run_piped(machine.command(gh_bin()).args(args));
        let asked_by_gh = world.requests() - before;
        let before = world.requests();
        let cached = run_piped(machine.command(ghcache_bin()).arg("gh").args(args));
        assert_eq!(
            (cached.code, cached.out(), cached.err()),
            (plain.code, plain.out(), plain.err()),
            "{args:?}"
        );
        assert_eq!(world.requests() - before, asked_by_gh, "{args:?}");
        // Also behind one of ghcache's own options, where its full parser reads the line.
        let cached = run_piped(
            machine
                .command(ghcache_bin())
                .args(["--scope", "me", "gh"])
                .args(args),
        );
        assert_eq!(
            (cached.code, cached.out()),
            (plain.code, plain.out()),
            "{args:?}"
        );
    }
    assert_eq!(
        machine.stats()["bypassed"],
        2 * cases.len(),
        "each run counts as a bypass"
    );
}

/// `ghcache gh pr list -R o/r` with `name` set to `value`.
fn with_env(machine: &Machine, name: &str, value: &[u8]) -> Run {
    run_piped(
        machine
            .command(ghcache_bin())
            .env(name, OsStr::from_bytes(value))
            .args(["gh", "pr", "list", "-R", "o/r"]),
    )
}

/// A usage error: exit 2, nothing on stdout, one line on stderr that contains each of `said`.
fn assert_one_line_error(run: &Run, said: &[&str]) {
    assert_eq!(run.code, 2, "{}", run.err());
    assert_eq!(run.stdout, b"");
    let err = run.err();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    for part in said {
        assert!(err.contains(part), "{part:?} in: {err}");
    }
}

#[test]
fn ghcache_s_own_variables_that_are_not_utf8_are_an_error_that_names_them() {
    let world = World::new();
    let machine = world.machine("env-bytes");
    for name in ["GH_CACHE_DIR", "GH_CACHE_SCOPE", "GH_CACHE_ENABLED"] {
        let run = with_env(&machine, name, b"x\xff");
        assert_one_line_error(&run, &[name, "UTF-8"]);
    }
    assert_eq!(world.requests(), 0, "nothing ran");
}

#[test]
fn unknown_variables_and_wrongly_typed_keys_are_errors_like_unknown_keys() {
    let world = World::new();
    let mut machine = world.machine("settings");
    let run = with_env(&machine, "GH_CACHE_TTL_BOGUS", b"1m");
    assert_one_line_error(&run, &["GH_CACHE_TTL_BOGUS", "GH_CACHE_TTL_LIST"]);
    let run = with_env(&machine, "GH_CACHE_MAXSIZE", b"1GiB");
    assert_one_line_error(&run, &["GH_CACHE_MAXSIZE", "GH_CACHE_MAX_SIZE"]);
    // The same mistakes in the file.
    let file = machine.home.join("config.toml");
    machine.set_env("GH_CACHE_CONFIG", &file.display().to_string());
    for (text, said) in [
        ("[ttl]\nbogus = \"1m\"\n", &["`ttl.bogus`", "list"][..]),
        ("enabled = \"yes\"\n", &["`enabled`", "true or false"]),
        ("max_entry_size = [1]\n", &["`max_entry_size`", "size"]),
        ("[p2p]\nmdns = 1\n", &["`p2p.mdns`", "true or false"]),
    ] {
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
        let run = machine.cached(&["pr", "list", "-R", "o/r"]);
        assert_one_line_error(&run, said);
        assert!(
            !run.err().contains("not a known"),
            "{text:?}: {}",
            run.err()
        );
    }
    // The largest entry is a setting like the others.
    std::fs::write(&file, "max_entry_size = \"8MiB\"\n").unwrap_or_else(|e| panic!("{e}"));
    let shown = machine.ghcache(&["config"]).ok().out();
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("max_entry_size") && l.contains("8.0MiB")),
        "{shown}"
    );
    assert_eq!(world.requests(), 0, "nothing ran");
}
