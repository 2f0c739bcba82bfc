//! `cargo xtask <task>`: the project's own tasks.
//!
//! - `test`: builds ghcache and runs every test (unit, proptest, end-to-end with the real gh),
//!   then the GitHub Action's tests (Node's test runner) against the archive `dist` makes.
//! - `bench [--quick] [--http | --tiers]`: tier latency against what users run instead, the HTTP
//!   level, the fleet replay and the scale measurements; a Markdown table, JSON and SVG charts in
//!   `target/bench/`. `--http` or `--tiers` runs that part alone.
//! - `demo`: a scripted session on the fake GitHub, showing what each call cost.
//! - `fleet [flags]`: a CI fleet's traffic replayed per cache configuration ([`fleet::FLEET_USAGE`]).
//! - `scale [--quick]`: the p2p tier's traffic and lookup latency for growing swarms.
//! - `rooms [--graph]`: the module graph of every crate, checked for import circles, files past
//!   their size and tier names outside their tier ([`rooms`]).
//! - `install`: builds the release binary (static where supported) into cargo's bin directory.
//! - `dist [--target T]... [--out DIR]`: release archives with checksums in `target/dist`, and
//!   their checksums for the GitHub Action in `action/release.json`.
//! - `ipfs-node install|run`: the real IPFS node (js-ipfs from npm) that tests and the demo use.

mod bench;
mod charts;
mod demo;
mod dist;
mod fleet;
mod interrupt;
mod rooms;
mod sandbox;
mod scale;
mod stats;

use std::process::Command;

use anyhow::{bail, Context as _, Result};

fn main() {
    if let Err(err) = run() {
        eprintln!("xtask: error: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = args
        .split_first()
        .map_or(("help", &[][..]), |(t, r)| (t.as_str(), r));
    match task {
        "test" => test(rest),
        "bench" => interrupt::guarded("bench", || bench::run(rest)),
        "demo" => interrupt::guarded("demo", || demo::run(rest)),
        "fleet" => interrupt::guarded("fleet", || fleet::main(rest)),
        "scale" => interrupt::guarded("scale", || scale::main(rest)),
        "rooms" => rooms::main(rest),
        "install" => install(),
        "dist" => dist::main(rest),
        "ipfs-node" => ipfs_node(rest),
        "help" | "--help" | "-h" => {
            println!(
                "usage: cargo xtask <test [-- nextest args] | bench [--quick] [--http | --tiers] | fleet {} | scale [--quick] | demo | rooms [--graph] | install | dist {} | ipfs-node install|run>",
                fleet::FLEET_USAGE,
                dist::DIST_USAGE
            );
            Ok(())
        }
        other => bail!("unknown task `{other}`; try `cargo xtask help`"),
    }
}

/// Builds the binary the end-to-end tests run, then runs the whole suite; then the Action's
/// tests, unless `extra` picks some tests of the Rust suite.
fn test(extra: &[String]) -> Result<()> {
    sandbox::require_gh()?;
    ghcache_tests::ipfs::install().map_err(anyhow::Error::msg)?;
    // The gh that users run today, beside Debian's, for the HTTP level's tests.
    ghcache_tests::current_gh::install().map_err(anyhow::Error::msg)?;
    cargo(&["build", "--package", "ghcache", "--package", "fake-github"])?;
    // Alone: built with the other packages, it would share their features (the p2p tier).
    cargo(&["build", "--package", "ghcache-example-ipfs-only"])?;
    let rust = rust_suite(extra);
    if !extra.is_empty() {
        println!("xtask: the Action's tests were not run: a test filter was given");
        return rust;
    }
    // Both suites run; a failure of either fails the task.
    let action = action_tests();
    match (rust, action) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Err(rust), Err(action)) => bail!("{rust:#}; and {action:#}"),
    }
}

/// The Action's tests (`action/test/*.test.js`, Node's test runner, nothing from npm), against
/// the host's archive that `dist` builds and the `release.json` it writes beside it (not the
/// committed `action/release.json`, whose archives are the release's): the same release build
/// that `bench` and `install` use. Other installed targets are left to `cargo xtask dist`: each
/// costs a build of its own.
fn action_tests() -> Result<()> {
    let dist = dist::run(&[dist::host_target()?], None)?;
    let root = sandbox::workspace_root();
    let tests_dir = root.join("action/test");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&tests_dir)
        .with_context(|| format!("reading {}", tests_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.js"))
        .collect();
    files.sort();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let status = Command::new("node")
        .arg("--test")
        .args(&files)
        .env("GHCACHE_DIST_DIR", &dist.dir)
        .env("GHCACHE_FAKE_GITHUB", target_dir.join("debug/fake-github"))
        .current_dir(&root)
        .status()
        .context("running node --test: install Node.js >= 18")?;
    if !status.success() {
        bail!("the Action's tests failed ({status})");
    }
    Ok(())
}

/// The Rust suite: unit, property and end-to-end tests (nextest when it is installed).
fn rust_suite(extra: &[String]) -> Result<()> {
    let nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut args: Vec<&str> = if nextest {
        vec!["nextest", "run", "--workspace", "--no-fail-fast"]
    } else {
        vec!["test", "--workspace", "--no-fail-fast"]
    };
    args.extend(extra.iter().map(String::as_str));
    cargo(&args)
}

/// `ipfs-node install`: js-ipfs into `target/ipfs-node` (what `test` does first).
/// `ipfs-node run`: a node on a free loopback port until Ctrl-C, for trying ghcache by hand.
fn ipfs_node(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("install") => {
            let dir = ghcache_tests::ipfs::install().map_err(anyhow::Error::msg)?;
            println!("IPFS test node installed in {}", dir.display());
            Ok(())
        }
        Some("run") => {
            ghcache_tests::ipfs::install().map_err(anyhow::Error::msg)?;
            let node = ghcache_tests::ipfs::IpfsNode::try_start().map_err(anyhow::Error::msg)?;
            println!("GH_CACHE_IPFS=1 GH_CACHE_IPFS_API={}", node.api_url());
            println!("(running until Ctrl-C)");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        _ => bail!("usage: cargo xtask ipfs-node install|run"),
    }
}

/// Builds the release binary and copies it to `$CARGO_INSTALL_ROOT/bin` (else `$CARGO_HOME/bin`,
/// else `~/.cargo/bin`), where `cargo install` would put it.
fn install() -> Result<()> {
    let built = sandbox::build_release()?;
    let root = std::env::var_os("CARGO_INSTALL_ROOT")
        .or_else(|| std::env::var_os("CARGO_HOME"))
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")))
        .context("cannot tell where to install: set CARGO_HOME or HOME")?;
    let dir = root.join("bin");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dest = dir.join("ghcache");
    // Copy beside and rename: a running ghcache keeps its old file.
    let tmp = dir.join(".ghcache.new");
    std::fs::copy(&built, &tmp).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &dest).with_context(|| format!("writing {}", dest.display()))?;
    println!("installed {}", dest.display());
    Ok(())
}

/// Runs cargo with `args` in the workspace root; fails if it fails.
pub fn cargo(args: &[&str]) -> Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(sandbox::workspace_root())
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}
