//! Isolated machines on one fake GitHub, for the benchmark and the demo.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

/// The workspace root (this crate's parent directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The path of the real gh, or an error that says how to install it.
pub fn require_gh() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("gh"))
        .find(|p| p.is_file())
        .context("gh is not installed: run `apt-get install -y gh` (Debian/Ubuntu) first")
}

/// The target the release binary is built for as a static executable, where that is supported.
///
/// A static, non-PIE binary skips the dynamic loader: on the hit path, where the whole process
/// takes a few milliseconds, loading and relocating glibc, libm and libgcc_s costs about one of
/// them. The flags apply to this target only (`--target`), so build scripts and proc-macros,
/// which cannot be static, are built as usual.
const STATIC_TARGET: Option<&str> = if cfg!(all(
    target_os = "linux",
    target_arch = "x86_64",
    target_env = "gnu"
)) {
    Some("x86_64-unknown-linux-gnu")
} else {
    None
};

/// Whether [`build_release`] makes a static binary on this machine.
pub fn builds_static() -> bool {
    STATIC_TARGET.is_some()
}

/// Builds the release binary (static where supported) and returns its path.
pub fn build_release() -> Result<PathBuf> {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let bin = match STATIC_TARGET {
        Some(triple) => {
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args([
                    "build",
                    "--release",
                    "--locked",
                    "--package",
                    "ghcache",
                    "--target",
                    triple,
                ])
                .env(
                    "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
                    "-C target-feature=+crt-static -C relocation-model=static",
                )
                .current_dir(workspace_root())
                .status()
                .context("running cargo build")?;
            if !status.success() {
                bail!("cargo build --release --target {triple} failed ({status})");
            }
            target_dir.join(triple).join("release/ghcache")
        }
        None => {
            crate::cargo(&["build", "--release", "--locked", "--package", "ghcache"])?;
            target_dir.join("release/ghcache")
        }
    };
    if !bin.is_file() {
        bail!("built ghcache but {} is missing", bin.display());
    }
    Ok(bin)
}

/// The task's scratch dir, for its machines: removed when dropped, and also on Ctrl-C or SIGTERM
/// (see [`crate::interrupt`]).
///
/// `tempfile`'s later temp dirs (the IPFS node's repository and log) are made inside it, so they
/// go with it.
pub fn scratch() -> Result<tempfile::TempDir> {
    let root = tempfile::tempdir()?;
    crate::interrupt::register_dir(root.path().to_path_buf());
    let tmp = root.path().join("tmp");
    std::fs::create_dir(&tmp)?;
    // Only a process's first override takes; each task makes one scratch dir per process.
    let _ = tempfile::env::override_temp_dir(&tmp);
    Ok(root)
}

/// Where benchmark results go: `target/bench` (under `CARGO_TARGET_DIR` when it is set).
pub fn bench_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("bench")
}

/// Writes `figures` as `name` in [`bench_dir`]; returns the file's path.
pub fn write_results(name: &str, figures: &serde_json::Value) -> Result<PathBuf> {
    let dir = bench_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = dir.join(name);
    std::fs::write(&file, serde_json::to_vec_pretty(figures)?)
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(file)
}

/// A new swarm key from `ghcache swarm-key new --out`, in `dir/swarm.key` (mode 0600, which
/// the daemon requires of a key file).
pub fn new_swarm_key(ghcache: &Path, dir: &Path) -> Result<PathBuf> {
    let key = dir.join("swarm.key");
    // `--out` never replaces a key; a sandbox's old one is not needed.
    match std::fs::remove_file(&key) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(err).with_context(|| format!("removing {}", key.display()));
        }
        _ => {}
    }
    let made = Command::new(ghcache)
        .args(["swarm-key", "new", "--out"])
        .arg(&key)
        .output()
        .context("running ghcache swarm-key new")?;
    if !made.status.success() {
        bail!(
            "ghcache swarm-key new failed: {}",
            String::from_utf8_lossy(&made.stderr).trim()
        );
    }
    Ok(key)
}

/// The command's own `GH_CACHE_DEBUG` line in `stderr` (`local hit key=...`, `miss, fetched
/// from github ...`), without its `ghcache: ` prefix. The lines that may come before it are not
/// the command's: the HTTP level's about gh's requests (`http ...`), a warning, and in a
/// GitHub Actions job the triggering event's (`push event; dropped 3 cached entries of o/r`,
/// `the push event's payload cannot be read ...`).
pub fn answer_line(stderr: &str) -> Option<&str> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("ghcache: "))
        .find(|l| !(l.starts_with("http") || l.starts_with("warning: ") || is_event_line(l)))
}

/// Whether `stderr` has the `GH_CACHE_DEBUG` line of a triggering event applied (`push event;
/// dropped 3 cached entries of o/r`, or its payload could not be read).
pub fn applied_event(stderr: &str) -> bool {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("ghcache: "))
        .any(is_event_line)
}

fn is_event_line(line: &str) -> bool {
    line.split_once(' ')
        .is_some_and(|(_, rest)| rest.starts_with("event; "))
        || line.starts_with("the ") && line.contains(" event's payload ")
}

/// The machines, daemons and listening modes are the end-to-end tests' own (one harness for
/// both); xtask's machines run the release build it passes to [`Machine::new`].
pub use ghcache_tests::{free_port, Daemon, Listen, Machine};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_line_is_the_commands_own() {
        let stderr = "ghcache: http GET /repos/o/r local hit\n\
                      ghcache: pull_request event; dropped 2 cached entries of o/r key=- 1.0ms\n\
                      ghcache: the push event's payload cannot be read (gone); dropping everything\n\
                      ghcache: warning: something\n\
                      ghcache: p2p hit (12D3) key=abc 3.0ms\n";
        assert_eq!(answer_line(stderr), Some("p2p hit (12D3) key=abc 3.0ms"));
        assert_eq!(answer_line("nothing\n"), None);
        assert!(applied_event(stderr));
        assert!(!applied_event("ghcache: p2p hit (12D3) key=abc 3.0ms\n"));
    }
}
