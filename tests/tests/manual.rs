//! `ghcache completions` and `ghcache man`: what release archives carry, made from the same
//! definitions as the command line.

use ghcache_tests::World;

#[test]
fn completions_name_the_commands_users_type() {
    let world = World::new();
    let machine = world.machine("a");
    for (shell, start) in [
        ("bash", "_ghcache() {"),
        ("zsh", "#compdef ghcache"),
        ("fish", "# Print an optspec for argparse"),
    ] {
        let script = machine.ghcache(&["completions", shell]).ok().out();
        assert!(script.starts_with(start), "{shell}: {script:.200}");
        for word in ["stats", "daemon", "swarm-key", "shell-init", "cache-dir"] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
    }
    let unknown = machine.ghcache(&["completions", "tcsh"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.err().contains("invalid value 'tcsh'"),
        "{}",
        unknown.err()
    );
}

#[test]
fn man_prints_ghcache_1_or_writes_one_page_per_command() {
    let world = World::new();
    let machine = world.machine("a");
    let page = machine.ghcache(&["man"]).ok().out();
    assert!(page.contains(".TH ghcache 1"), "{page:.300}");
    assert!(
        page.contains("GH_CACHE_DIR"),
        "options come with their variables"
    );
    let dir = machine.home.join("man");
    let dir_arg = dir.display().to_string();
    machine.ghcache(&["man", "--dir", &dir_arg]).ok();
    for name in [
        "ghcache.1",
        "ghcache-gh.1",
        "ghcache-daemon.1",
        "ghcache-stats.1",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(text.contains(".TH "), "{name}: {text:.100}");
    }
    assert!(!dir.join("ghcache-ipfs-store.1").exists());
}
