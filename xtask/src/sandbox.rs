//! Isolated machines on one fake GitHub, for the benchmark and the demo.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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

/// Builds the release binary and returns its path.
pub fn build_release() -> Result<PathBuf> {
    crate::cargo(&["build", "--release", "--package", "ghcache"])?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let bin = target.join("release/ghcache");
    if !bin.is_file() {
        bail!("built ghcache but {} is missing", bin.display());
    }
    Ok(bin)
}

/// A simulated machine: a home with its own cache dir and gh config, pointed at the fake GitHub.
pub struct Machine {
    pub name: String,
    pub home: PathBuf,
    env: Vec<(String, String)>,
}

impl Machine {
    pub fn new(root: &Path, name: &str, github: &fake_github::FakeGithub) -> Result<Machine> {
        let home = root.join(name);
        for dir in ["cache", "gh-config", "tmp", "xdg-config"] {
            std::fs::create_dir_all(home.join(dir))?;
        }
        let mut env = github.gh_env();
        let sub = |p: &str| home.join(p).display().to_string();
        env.extend([
            ("HOME".to_owned(), home.display().to_string()),
            ("GH_CACHE_DIR".to_owned(), sub("cache")),
            ("GH_CONFIG_DIR".to_owned(), sub("gh-config")),
            ("XDG_CONFIG_HOME".to_owned(), sub("xdg-config")),
            ("TMPDIR".to_owned(), sub("tmp")),
            ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
        ]);
        Ok(Machine {
            name: name.to_owned(),
            home,
            env,
        })
    }

    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_owned(), value.to_owned()));
    }

    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .envs(self.env.iter().cloned())
            .current_dir(&self.home)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `program args`, returns its output and wall time.
    pub fn time(&self, program: &Path, args: &[&str]) -> Result<(Output, Duration)> {
        let mut cmd = self.command(program);
        cmd.args(args);
        let started = Instant::now();
        let output = cmd
            .output()
            .with_context(|| format!("running {} {}", program.display(), args.join(" ")))?;
        Ok((output, started.elapsed()))
    }
}
