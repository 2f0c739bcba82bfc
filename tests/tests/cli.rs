//! The `ghcache` command itself: stats, clear, config, shell-init, help and errors.

use ghcache_tests::World;

#[test]
fn stats_add_up_across_processes() {
    let world = World::new();
    let machine = world.machine("stats");
    machine.cached(&["issue", "list", "-R", "o/r"]).ok();
    machine.cached(&["issue", "list", "-R", "o/r"]).ok();
    machine.cached(&["issue", "list", "-R", "o/r"]).ok();
    machine
        .cached(&["issue", "create", "-R", "o/r", "-t", "t", "-b", "b"])
        .ok();
    let stats = machine.stats();
    for key in [
        "requests",
        "misses",
        "bypassed",
        "revalidated",
        "stale_served",
        "errors",
        "entries",
        "bytes",
        "hit_rate",
    ] {
        assert!(stats.get(key).is_some(), "stats --json has {key}: {stats}");
    }
    assert_eq!(stats["requests"], 4);
    assert_eq!(stats["hits"]["local"], 2);
    assert_eq!(stats["hits"]["p2p"], 0);
    assert_eq!(stats["hits"]["ipfs"], 0);
    assert_eq!(stats["misses"], 1);
    assert_eq!(stats["bypassed"], 1);
    assert_eq!(stats["entries"], 0, "the write dropped o/r's entry");
    let hit_rate = stats["hit_rate"].as_f64().unwrap_or(-1.0);
    assert!((hit_rate - 2.0 / 3.0).abs() < 1e-9, "{hit_rate}");
    let table = machine.ghcache(&["stats"]).ok().out();
    assert!(
        table.contains("hits: local") && table.contains("hit rate"),
        "{table}"
    );
}

#[test]
fn clear_drops_one_repository_or_everything() {
    let world = World::new();
    let machine = world.machine("clear");
    machine.cached(&["pr", "list", "-R", "o/a"]).ok();
    machine.cached(&["pr", "list", "-R", "o/b"]).ok();
    let out = machine.ghcache(&["clear", "--repo", "o/a"]).ok().out();
    // The command's answer, and the answer to gh's request under it (the HTTP level).
    assert_eq!(out.trim(), "dropped 2 cached entries");
    assert_eq!(machine.stats()["entries"], 2);
    machine.ghcache(&["clear", "--all"]).ok();
    assert_eq!(machine.stats()["entries"], 0);
    let bad = machine.ghcache(&["clear", "--repo", "not a repo"]);
    assert_eq!(bad.code, 2);
    assert_eq!(
        bad.err().lines().count(),
        1,
        "one clear line: {}",
        bad.err()
    );
}

#[test]
fn config_shows_values_and_where_they_came_from() {
    let world = World::new();
    let mut machine = world.machine("config");
    let file = machine.home.join("xdg-config/ghcache/config.toml");
    std::fs::create_dir_all(file.parent().unwrap_or(&machine.home))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&file, "[ttl]\nlist = \"5m\"\nview = \"10m\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    machine.set_env("GH_CACHE_TTL_VIEW", "7m");
    let out = machine
        .ghcache(&["--ttl", "search=2m", "config"])
        .ok()
        .out();
    let line = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line("ttl.list ").contains("\"5m\"") && line("ttl.list ").contains("file"),
        "{out}"
    );
    assert!(
        line("ttl.view ").contains("\"7m\"") && line("ttl.view ").contains("env GH_CACHE_TTL_VIEW"),
        "{out}"
    );
    assert!(
        line("ttl.search ").contains("\"2m\"") && line("ttl.search ").contains("flag --ttl"),
        "{out}"
    );
    assert!(
        line("ttl.repo_view ").contains("\"1h\"") && line("ttl.repo_view ").contains("default"),
        "{out}"
    );

    // The file's TTL is the one used: a 5m list TTL holds across calls.
    machine.cached(&["pr", "list", "-R", "o/r"]).ok();
    let before = world.requests();
    machine.cached(&["pr", "list", "-R", "o/r"]).ok();
    assert_eq!(world.requests(), before);

    std::fs::write(&file, "[ttl]\nlist = \"soon\"\n").unwrap_or_else(|e| panic!("{e}"));
    let bad = machine.ghcache(&["config"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.err().contains("ttl.list") && bad.err().lines().count() == 1,
        "{}",
        bad.err()
    );
}

#[test]
fn shell_init_defines_gh_functions_that_work_in_bash() {
    let world = World::new();
    let machine = world.machine("shell");
    let init = machine.ghcache(&["shell-init", "bash"]).ok().out();
    for name in ["gh()", "gh_nocache()", "gh_cache_stats()"] {
        assert!(init.contains(name), "{init}");
    }
    let script =
        format!("{init}\ngh pr list -R o/r >/dev/null\ngh pr list -R o/r\ngh_cache_stats --json");
    let run = ghcache_tests::run_piped(machine.command("bash").args(["-c", &script])).ok();
    let plain = machine.gh(&["pr", "list", "-R", "o/r"]).ok();
    assert!(run.out().starts_with(&plain.out()), "{}", run.out());
    assert!(run.out().contains("\"local\":1"), "{}", run.out());
    let fish = machine.ghcache(&["shell-init", "fish"]).ok().out();
    assert!(fish.contains("function gh;"), "{fish}");
}

#[test]
fn bad_input_gets_one_clear_line_and_a_non_zero_exit() {
    let world = World::new();
    let mut machine = world.machine("errors");
    let missing = machine.ghcache(&["shell-init", "tcsh"]);
    assert_eq!(missing.code, 2);
    machine.set_env("GH_CACHE_GH", "/nonexistent/gh");
    let run = machine.cached(&["pr", "list", "-R", "o/r"]);
    assert_ne!(run.code, 0);
    assert!(run.err().contains("GH_CACHE_GH"), "{}", run.err());
    assert_eq!(run.err().lines().count(), 1, "{}", run.err());
    assert!(run.stdout.is_empty());
    machine.unset_env("GH_CACHE_GH");
    machine.set_env("GH_CACHE_TTL_LIST", "forever");
    let run = machine.cached(&["pr", "list", "-R", "o/r"]);
    assert_eq!(run.code, 2);
    assert!(run.err().contains("GH_CACHE_TTL_LIST"), "{}", run.err());
    let help = machine.ghcache(&["--help"]).ok().out();
    for sub in ["gh", "stats", "clear", "config", "shell-init"] {
        assert!(help.contains(sub), "{help}");
    }
}
