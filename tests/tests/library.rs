//! ghcache as a library: a program built with the IPFS tier and without the p2p tier
//! (`examples/ipfs-only`, built by `cargo xtask test`) answers a gh command from GitHub, then
//! from the cache, and has no libp2p in its build.

use std::path::PathBuf;
use std::process::Command;

use ghcache_tests::{run_piped, World};

/// The example program, beside the `ghcache` binary under test.
fn example_bin() -> PathBuf {
    let bin = ghcache_tests::ghcache_bin().with_file_name("ghcache-example-ipfs-only");
    assert!(
        bin.is_file(),
        "{} is missing: `cargo build -p ghcache-example-ipfs-only` (cargo xtask test does)",
        bin.display()
    );
    bin
}

#[test]
fn a_program_using_the_library_gets_a_miss_then_a_hit() {
    let world = World::new();
    let machine = world.machine("library");
    let args = ["repo", "view", "o/r", "--json", "name,description"];
    let plain = machine.gh(&args).ok();
    let before = world.requests();
    let run = run_piped(machine.command(example_bin()).args(args));
    assert_eq!(
        run.code,
        0,
        "the second answer was a local hit: {}",
        run.err()
    );
    assert!(
        run.stdout
            .starts_with(&[plain.stdout.clone(), plain.stdout.clone()].concat()),
        "both answers are what gh prints: {}",
        run.out()
    );
    assert!(run.err().contains("answered by GitHub"), "{}", run.err());
    assert!(
        run.err().contains("answered by the local tier"),
        "{}",
        run.err()
    );
    assert_eq!(
        world.requests() - before,
        1,
        "one request for two answers: {:?}",
        world.github.requests()
    );
    // The library's statistics are the binary's.
    assert_eq!(machine.stats()["hits"]["local"], 1);
}

#[test]
fn the_ipfs_only_build_has_no_libp2p_in_it() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let tree = Command::new(cargo)
        .args([
            "tree",
            "--locked",
            "--offline",
            "-p",
            "ghcache-example-ipfs-only",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("cargo tree: {e}"));
    assert!(
        tree.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&tree.stderr)
    );
    let text = String::from_utf8_lossy(&tree.stdout);
    assert!(
        text.contains("ghcache-tier-ipfs"),
        "the IPFS tier is in: {text}"
    );
    let libp2p: Vec<&str> = text.lines().filter(|l| l.contains("libp2p")).collect();
    assert!(libp2p.is_empty(), "no libp2p: {libp2p:?}");
}
