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

    /// `ghcache gh GH_ARGS` on this machine, timed like [`Machine::time`].
    pub fn time_cached(&self, ghcache: &Path, gh_args: &[&str]) -> Result<(Output, Duration)> {
        let mut args = vec!["gh"];
        args.extend(gh_args);
        self.time(ghcache, &args)
    }
}

/// A `ghcache daemon` started by [`Machine::daemon`]; stopped on drop.
pub struct Daemon {
    child: std::process::Child,
    /// `/ip4/127.0.0.1/tcp/PORT/p2p/PEER_ID`, for `--bootstrap`.
    pub addr: String,
}

impl Machine {
    /// Starts this machine's daemon on loopback (no mDNS) and waits until it answers.
    pub fn daemon(&self, ghcache: &Path, key: &Path, extra: &[&str]) -> Result<Daemon> {
        let log = std::fs::File::create(self.home.join("daemon.log"))?;
        let child = self
            .command(ghcache)
            .args([
                "daemon",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--no-mdns",
                "--swarm-key",
            ])
            .arg(key)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting ghcache daemon")?;
        // Stopped by the interrupt handler if the task is interrupted (see `interrupt`).
        crate::interrupt::register_pid(child.id());
        let mut daemon = Daemon {
            child,
            addr: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let status = self.daemon_status(ghcache)?;
            if let (Some(addr), Some(id)) = (
                status["listen_addrs"][0].as_str(),
                status["peer_id"].as_str(),
            ) {
                daemon.addr = format!("{addr}/p2p/{id}");
                return Ok(daemon);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "the daemon of {} did not come up; see {}",
            self.name,
            self.home.join("daemon.log").display()
        )
    }

    /// `ghcache daemon status --json` of this machine; `Null` while no daemon answers.
    ///
    /// # Errors
    /// ghcache cannot be run.
    pub fn daemon_status(&self, ghcache: &Path) -> Result<serde_json::Value> {
        let out = self
            .command(ghcache)
            .args(["daemon", "status", "--json"])
            .output()?;
        Ok(serde_json::from_slice(&out.stdout).unwrap_or_default())
    }

    /// One of this machine's daemon counters (`announcements_received`, ...); 0 if unknown.
    pub fn daemon_counter(&self, ghcache: &Path, name: &str) -> u64 {
        self.daemon_status(ghcache)
            .map_or(0, |status| counter(&status, name))
    }

    /// `ghcache stats --json` of this machine.
    pub fn stats(&self, ghcache: &Path) -> Result<serde_json::Value> {
        let out = self.command(ghcache).args(["stats", "--json"]).output()?;
        serde_json::from_slice(&out.stdout).context("ghcache stats --json")
    }

    /// Waits until this machine's daemon has at least one peer.
    pub fn wait_for_peer(&self, ghcache: &Path) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.daemon_status(ghcache)?["connected_peers"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("the daemon of {} found no peer", self.name)
    }
}

/// A counter of a `daemon status --json` document; 0 if it has none.
pub fn counter(status: &serde_json::Value, name: &str) -> u64 {
    status["counters"][name].as_u64().unwrap_or(0)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id();
        // A destructor cannot report failures; if `kill` fails, the wait below still reaps it
        // once it exits.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .output();
        // Forgotten once signalled and before it is reaped: an interrupt now neither misses it
        // nor signals its pid after the system has given it to another process.
        crate::interrupt::unregister_pid(pid);
        let _ = self.child.wait();
    }
}
