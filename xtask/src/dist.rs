//! `cargo xtask dist`: the release archives that users and the GitHub Action install.
//!
//! For every target this toolchain can build (`rustup target list --installed`), one
//! `target/dist/ghcache-<version>-<target>.tar.gz` and its `.sha256` (`sha256sum -c` reads it):
//!
//! ```text
//! ghcache-0.1.0-x86_64-unknown-linux-gnu/
//!   ghcache                       static, non-PIE on x86_64 Linux (see `sandbox::build_release`)
//!   README.md  LICENSE-MIT  LICENSE-APACHE
//!   completions/ghcache.bash  completions/_ghcache  completions/ghcache.fish
//!   man/ghcache.1  man/ghcache-gh.1  ...
//! ```
//!
//! Completions and man pages come from the binary itself (`ghcache completions`, `ghcache
//! man`), so they match its clap definitions. Archives are reproducible for one binary: entries
//! sorted, owned by 0:0, dated `SOURCE_DATE_EPOCH` (else the commit's time), gzip without a
//! timestamp.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use sha2::Digest as _;

use crate::sandbox;

/// `cargo xtask dist [--target TRIPLE]... [--out DIR]`.
pub const DIST_USAGE: &str = "[--target TRIPLE]... [--out DIR]";

/// One archive made by [`run`].
#[derive(Debug)]
pub struct Archive {
    /// `.../ghcache-<version>-<target>.tar.gz`.
    pub path: PathBuf,
    /// Its SHA-256, hex.
    pub sha256: String,
}

/// What [`run`] made, and the targets it could not build.
#[derive(Debug)]
pub struct Dist {
    /// Where the archives are.
    pub dir: PathBuf,
    /// One per target built.
    pub archives: Vec<Archive>,
    /// Installed targets that failed to build (a cross linker or C compiler is missing), with
    /// why; only targets found by asking rustup, never ones asked for with `--target`.
    pub skipped: Vec<(String, String)>,
}

/// `cargo xtask dist`: builds, packs and prints the archives.
pub fn main(args: &[String]) -> Result<()> {
    let mut targets = Vec::new();
    let mut out = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--target", Some(t)) => targets.push(t.clone()),
            ("--out", Some(dir)) => out = Some(PathBuf::from(dir)),
            _ => bail!("usage: cargo xtask dist {DIST_USAGE}"),
        }
    }
    let dist = run(&targets, out)?;
    for archive in &dist.archives {
        let size = std::fs::metadata(&archive.path).map_or(0, |m| m.len());
        println!(
            "{}  ({:.1} MiB, sha256 {})",
            archive.path.display(),
            size as f64 / (1024.0 * 1024.0),
            archive.sha256
        );
    }
    for (target, why) in &dist.skipped {
        println!("skipped {target}: {why}");
    }
    Ok(())
}

/// Builds the release binary for `targets` (default: every installed target) and packs one
/// archive per target into `out` (default: `target/dist`).
///
/// # Errors
/// The host's build fails, a target asked for fails, or an archive cannot be written.
pub fn run(targets: &[String], out: Option<PathBuf>) -> Result<Dist> {
    let version = env!("CARGO_PKG_VERSION");
    let host = host_target()?;
    let asked = !targets.is_empty();
    let mut targets: Vec<String> = if asked {
        targets.to_vec()
    } else {
        installed_targets().unwrap_or_else(|| vec![host.clone()])
    };
    // The host's binary writes the completions and man pages for all of them: build it first.
    targets.sort_by_key(|t| *t != host);
    targets.dedup();
    let dir = out.unwrap_or_else(|| target_dir().join("dist"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let docs = tempfile::tempdir()?;
    let host_bin = sandbox::build_release()?;
    generate_docs(&host_bin, docs.path())?;
    let mut dist = Dist {
        dir: dir.clone(),
        archives: Vec::new(),
        skipped: Vec::new(),
    };
    for target in &targets {
        let bin = if *target == host {
            host_bin.clone()
        } else {
            match build_for(target) {
                Ok(bin) => bin,
                Err(err) if !asked => {
                    dist.skipped.push((target.clone(), format!("{err:#}")));
                    continue;
                }
                Err(err) => return Err(err),
            }
        };
        dist.archives
            .push(pack(version, target, &bin, docs.path(), &dir)?);
    }
    Ok(dist)
}

/// The triple the host's release binary is built for.
pub fn host_target() -> Result<String> {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV names no host")
}

/// `rustup target list --installed`; `None` without rustup.
fn installed_targets() -> Option<Vec<String>> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let list: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    (!list.is_empty()).then_some(list)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| sandbox::workspace_root().join("target"))
}

/// A release build for a target other than the host's.
fn build_for(target: &str) -> Result<PathBuf> {
    crate::cargo(&[
        "build",
        "--release",
        "--locked",
        "--package",
        "ghcache",
        "--target",
        target,
    ])
    .context("the build failed: is a linker and C compiler for it installed?")?;
    let exe = if target.contains("windows") {
        "ghcache.exe"
    } else {
        "ghcache"
    };
    let bin = target_dir().join(target).join("release").join(exe);
    if !bin.is_file() {
        bail!("built, but {} is missing", bin.display());
    }
    Ok(bin)
}

/// Shell completions into `dir/completions`, man pages into `dir/man`.
fn generate_docs(ghcache: &Path, dir: &Path) -> Result<()> {
    let completions = dir.join("completions");
    std::fs::create_dir_all(&completions)?;
    for (shell, file) in [
        ("bash", "ghcache.bash"),
        ("zsh", "_ghcache"),
        ("fish", "ghcache.fish"),
    ] {
        let text = ghcache_output(ghcache, &["completions", shell])?;
        std::fs::write(completions.join(file), text)?;
    }
    let man = dir.join("man");
    let dir_arg = man.display().to_string();
    ghcache_output(ghcache, &["man", "--dir", &dir_arg])?;
    if !man.join("ghcache.1").is_file() {
        bail!("ghcache man --dir wrote no ghcache.1");
    }
    Ok(())
}

/// Runs `ghcache args` with no `GH_CACHE_*` of the caller's, and returns its stdout.
fn ghcache_output(ghcache: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let scratch = tempfile::tempdir()?;
    let out = Command::new(ghcache)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", scratch.path())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running ghcache {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "ghcache {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// Stages and packs one archive; writes its `.sha256` beside it.
fn pack(version: &str, target: &str, bin: &Path, docs: &Path, out: &Path) -> Result<Archive> {
    let name = format!("ghcache-{version}-{target}");
    let staging = tempfile::tempdir_in(out)?;
    let root = staging.path().join(&name);
    std::fs::create_dir_all(&root)?;
    let workspace = sandbox::workspace_root();
    copy(
        bin,
        &root.join(bin.file_name().context("binary has no name")?),
        0o755,
    )?;
    for file in ["README.md", "LICENSE-MIT", "LICENSE-APACHE"] {
        copy(&workspace.join(file), &root.join(file), 0o644)?;
    }
    for sub in ["completions", "man"] {
        std::fs::create_dir_all(root.join(sub))?;
        for entry in std::fs::read_dir(docs.join(sub))? {
            let entry = entry?;
            copy(
                &entry.path(),
                &root.join(sub).join(entry.file_name()),
                0o644,
            )?;
        }
    }
    let archive = out.join(format!("{name}.tar.gz"));
    let partial = out.join(format!(".{name}.tar.gz.partial"));
    let epoch = source_date_epoch();
    let tar = Command::new("tar")
        .args([
            "--create",
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--format=gnu",
            &format!("--mtime=@{epoch}"),
            "--use-compress-program=gzip -9 -n",
            "--file",
        ])
        .arg(&partial)
        .arg("--directory")
        .arg(staging.path())
        .arg(&name)
        .status()
        .context("running tar (GNU tar is needed)")?;
    if !tar.success() {
        bail!("tar failed ({tar}) making {}", archive.display());
    }
    std::fs::rename(&partial, &archive)
        .with_context(|| format!("writing {}", archive.display()))?;
    let bytes = std::fs::read(&archive)?;
    let sha256: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let line = format!("{sha256}  {name}.tar.gz\n");
    std::fs::write(out.join(format!("{name}.tar.gz.sha256")), line)?;
    Ok(Archive {
        path: archive,
        sha256,
    })
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// `SOURCE_DATE_EPOCH`, else the time of the commit checked out, else 0.
fn source_date_epoch() -> u64 {
    if let Some(epoch) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return epoch;
    }
    Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(sandbox::workspace_root())
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}
