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
//! sorted, owned by 0:0, dated `SOURCE_DATE_EPOCH` (else the time of the last commit that changed
//! more than `action/release.json`), gzip without a timestamp.
//!
//! Beside them, `release.json` ([`Release`]): the version, the repository whose releases hold
//! the archives, and each archive's SHA-256. `cargo xtask dist` also writes it to
//! `action/release.json`, which the release commits: the GitHub Action of that ref installs only
//! an archive with one of those checksums, so a checksum never comes from the server that sends
//! the archive.
//!
//! The binary is not reproducible across machines (the static build links the build machine's
//! glibc; the toolchain and paths differ), so the committed checksums are those of the archives
//! that the release built and published, and no other build can be checked against them. The
//! test run checks what it can: the committed file is one that `dist` writes, for this version
//! (a unit test below), and the Action's tests install this run's archive against the
//! `release.json` that this run's `dist` wrote, through the same code path as the release.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::sandbox;

/// `cargo xtask dist [--target TRIPLE]... [--out DIR]`.
pub const DIST_USAGE: &str = "[--target TRIPLE]... [--out DIR]";

/// Where the Action's copy of [`Release`] is, from the workspace root.
pub const ACTION_RELEASE: &str = "action/release.json";

/// The checksums of one version's archives, as the GitHub Action reads them
/// (`action/lib/install.js`, `ownRelease`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// The version the archives are of.
    pub version: String,
    /// The repository whose GitHub releases hold the archives:
    /// `<repository>/releases/download/v<version>/ghcache-<version>-<target>.tar.gz`.
    pub repository: String,
    /// Each target's archive's SHA-256, hex, by target triple.
    pub archives: BTreeMap<String, String>,
}

impl Release {
    /// The release of this workspace's version made of `archives`.
    pub fn of(archives: &[Archive]) -> Release {
        Release {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            repository: env!("CARGO_PKG_REPOSITORY").to_owned(),
            archives: archives
                .iter()
                .map(|a| (a.target.clone(), a.sha256.clone()))
                .collect(),
        }
    }

    /// The file's text: pretty JSON, targets sorted, a final newline.
    ///
    /// # Errors
    /// Never in practice (strings and a map of strings always serialize).
    pub fn to_text(&self) -> Result<String> {
        Ok(format!("{}\n", serde_json::to_string_pretty(self)?))
    }
}

/// One archive made by [`run`].
#[derive(Debug)]
pub struct Archive {
    /// The target triple it was built for.
    pub target: String,
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

/// `cargo xtask dist`: builds, packs and prints the archives, and writes their checksums for
/// the Action ([`ACTION_RELEASE`]), to be committed with the release.
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
    let action = sandbox::workspace_root().join(ACTION_RELEASE);
    write_atomically(&action, Release::of(&dist.archives).to_text()?.as_bytes())?;
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
    println!(
        "{}: the checksums the Action installs by; commit it with the release",
        action.display()
    );
    Ok(())
}

/// Writes `bytes` beside `path`, then renames: a reader sees the old file or the new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().context("a file name")?.to_string_lossy();
    let partial = path.with_file_name(format!(".{name}.partial"));
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))
}

/// Builds the release binary for `targets` (default: every installed target) and packs one
/// archive per target into `out` (default: `target/dist`), with `release.json` for them.
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
    write_atomically(
        &dir.join("release.json"),
        Release::of(&dist.archives).to_text()?.as_bytes(),
    )?;
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
        target: target.to_owned(),
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

/// `SOURCE_DATE_EPOCH`, else the time of the last commit that changed anything but
/// [`ACTION_RELEASE`], else 0: committing the checksums does not change the archives they are of.
fn source_date_epoch() -> u64 {
    if let Some(epoch) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return epoch;
    }
    Command::new("git")
        .args(["log", "-1", "--format=%ct", "--", "."])
        .arg(format!(":(exclude){ACTION_RELEASE}"))
        .current_dir(sandbox::workspace_root())
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The release's checksums are committed as `cargo xtask dist` wrote them, for the version
    /// this workspace builds: bumping the version without running `dist` fails here.
    #[test]
    fn the_committed_release_json_is_what_dist_writes_for_this_version() -> Result<()> {
        let path = sandbox::workspace_root().join(ACTION_RELEASE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let release: Release = serde_json::from_str(&text)?;
        let hint = "run `cargo xtask dist` and commit action/release.json";
        assert_eq!(release.version, env!("CARGO_PKG_VERSION"), "{hint}");
        assert_eq!(release.repository, env!("CARGO_PKG_REPOSITORY"), "{hint}");
        assert_eq!(release.to_text()?, text, "{hint}");
        assert!(!release.archives.is_empty(), "{hint}");
        for (target, sha256) in &release.archives {
            let hex = sha256.len() == 64
                && sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            assert!(
                hex,
                "{target}: {sha256:?} is not a SHA-256 in lowercase hex"
            );
        }
        Ok(())
    }

    #[test]
    fn release_json_lists_each_archive_by_target_sorted() -> Result<()> {
        let archive = |target: &str, sha256: &str| Archive {
            target: target.to_owned(),
            path: PathBuf::from(format!("ghcache-0-{target}.tar.gz")),
            sha256: sha256.to_owned(),
        };
        let release = Release::of(&[
            archive("x86_64-unknown-linux-gnu", &"b".repeat(64)),
            archive("aarch64-apple-darwin", &"a".repeat(64)),
        ]);
        let expected = format!(
            "{{\n  \"version\": \"{}\",\n  \"repository\": \"{}\",\n  \"archives\": {{\n    \
             \"aarch64-apple-darwin\": \"{}\",\n    \"x86_64-unknown-linux-gnu\": \"{}\"\n  }}\n}}\n",
            env!("CARGO_PKG_VERSION"),
            env!("CARGO_PKG_REPOSITORY"),
            "a".repeat(64),
            "b".repeat(64),
        );
        assert_eq!(release.to_text()?, expected);
        assert_eq!(serde_json::from_str::<Release>(&expected)?, release);
        Ok(())
    }
}
