//! Harness for ghcache's end-to-end tests and for `cargo xtask`'s bench, fleet replay, scale run
//! and demo: isolated "machines" (a home, a cache dir, a gh config dir each) that run the real
//! `ghcache` binary, its daemon and the real `gh` against one fake GitHub.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use fake_github::{FakeGithub, Fault};
/// Ends a test that cannot run here: a failure unless `GHCACHE_TEST_ALLOW_SKIP=1`.
pub use ghcache_core::testkit::skip;
/// A tmpfs over a machine's cache dir, for a full or read-only disk (needs root).
pub use ghcache_core::testkit::Mount;
use ghcache_tier_p2p::{Counters, Status};

pub mod current_gh;
pub mod ipfs;

/// What a command printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Bytes written to stdout (through a pty in terminal mode).
    pub stdout: Vec<u8>,
    /// Bytes written to stderr.
    pub stderr: Vec<u8>,
    /// Exit code (128 + signal when killed).
    pub code: i32,
}

impl Run {
    /// stdout as text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text.
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Panics with both streams unless the exit code is 0.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code,
            0,
            "command failed\nstdout:\n{}\nstderr:\n{}",
            self.out(),
            self.err()
        );
        self
    }
}

/// The `ghcache` binary under test: `GHCACHE_BIN`, else next to this test's target dir.
pub fn ghcache_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("GHCACHE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test-binary> -> target/<profile>/ghcache
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("ghcache"))
        .unwrap_or_default();
    assert!(
        bin.is_file(),
        "ghcache binary not found at {}: run `cargo build -p ghcache` first (`cargo xtask test` does)",
        bin.display()
    );
    bin
}

/// The real gh; the tests need it.
pub fn gh_bin() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("gh"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| panic!("gh not found on PATH: install it (apt-get install -y gh)"))
}

/// One fake GitHub and a scratch directory for machines.
pub struct World {
    /// The fake GitHub every machine talks to.
    pub github: FakeGithub,
    root: tempfile::TempDir,
}

impl World {
    /// Starts a fake GitHub.
    pub fn new() -> World {
        let github = FakeGithub::start().unwrap_or_else(|e| panic!("fake GitHub: {e}"));
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        World { github, root }
    }

    /// A fresh machine: its own home, cache dir, gh config dir and temp dir.
    pub fn machine(&self, name: &str) -> Machine {
        Machine::new(self.root.path(), name, &self.github, &ghcache_bin())
            .unwrap_or_else(|e| panic!("machine {name}: {e}"))
    }

    /// Requests that reached the fake GitHub so far.
    pub fn requests(&self) -> usize {
        self.github.request_count()
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

/// A simulated machine: one environment, one cache dir, one working directory, one `ghcache`
/// binary. The tests (through [`World::machine`]) and `cargo xtask` (bench, fleet, scale, demo)
/// both make theirs here.
#[derive(Clone)]
pub struct Machine {
    /// What the machine is called (its home's name), for messages.
    pub name: String,
    /// Home directory.
    pub home: PathBuf,
    /// Working directory for commands.
    pub cwd: PathBuf,
    ghcache: PathBuf,
    env: Vec<(String, String)>,
}

impl Machine {
    /// A fresh machine in `root/name` (a home with a cache dir, a gh config dir, a temp dir and
    /// a working directory) whose gh talks to `github` and which runs the `ghcache` binary at
    /// `ghcache`.
    ///
    /// # Errors
    /// The directories cannot be made.
    pub fn new(
        root: &Path,
        name: &str,
        github: &FakeGithub,
        ghcache: &Path,
    ) -> std::io::Result<Machine> {
        let home = root.join(name);
        for dir in ["cache", "gh-config", "tmp", "work", "xdg-config"] {
            std::fs::create_dir_all(home.join(dir))?;
        }
        let mut env: Vec<(String, String)> = github.gh_env();
        let path = |p: &str| home.join(p).display().to_string();
        env.extend([
            ("HOME".to_owned(), home.display().to_string()),
            ("GH_CACHE_DIR".to_owned(), path("cache")),
            ("GH_CONFIG_DIR".to_owned(), path("gh-config")),
            ("XDG_CONFIG_HOME".to_owned(), path("xdg-config")),
            ("TMPDIR".to_owned(), path("tmp")),
            ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ]);
        Ok(Machine {
            name: name.to_owned(),
            cwd: home.join("work"),
            home,
            ghcache: ghcache.to_owned(),
            env,
        })
    }

    /// The `ghcache` binary this machine runs.
    pub fn ghcache_bin(&self) -> &Path {
        &self.ghcache
    }

    /// The cache dir.
    pub fn cache_dir(&self) -> PathBuf {
        self.home.join("cache")
    }

    /// Sets (or replaces) an environment variable for later commands.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_owned(), value.to_owned()));
    }

    /// Removes an environment variable for later commands.
    pub fn unset_env(&mut self, name: &str) {
        self.env.retain(|(k, _)| k != name);
    }

    /// A command with this machine's environment (and nothing else of ours).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .envs(self.env.iter().cloned())
            .current_dir(&self.cwd);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// `ghcache <args>`, piped.
    pub fn ghcache(&self, args: &[&str]) -> Run {
        run_piped(self.command(&self.ghcache).args(args))
    }

    /// `ghcache gh <args>`, piped.
    pub fn cached(&self, args: &[&str]) -> Run {
        run_piped(self.command(&self.ghcache).arg("gh").args(args))
    }

    /// Plain `gh <args>`, piped.
    pub fn gh(&self, args: &[&str]) -> Run {
        run_piped(self.command(gh_bin()).args(args))
    }

    /// `ghcache gh <args>` with stdout on a terminal of `width` columns.
    pub fn cached_tty(&self, args: &[&str], width: u16) -> Run {
        run_tty(self.command(&self.ghcache).arg("gh").args(args), width)
    }

    /// Plain `gh <args>` with stdout on a terminal of `width` columns.
    pub fn gh_tty(&self, args: &[&str], width: u16) -> Run {
        run_tty(self.command(gh_bin()).args(args), width)
    }

    /// `ghcache stats --json`.
    pub fn stats(&self) -> serde_json::Value {
        self.try_stats().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `ghcache stats --json`, or why there is none.
    ///
    /// # Errors
    /// ghcache cannot be run, fails, or prints no JSON.
    pub fn try_stats(&self) -> std::io::Result<serde_json::Value> {
        let output = self
            .command(&self.ghcache)
            .args(["stats", "--json"])
            .output()?;
        serde_json::from_slice(&output.stdout).map_err(|e| {
            std::io::Error::other(format!(
                "`ghcache stats --json` of {} printed no JSON ({e}): {}",
                self.name,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        })
    }

    /// Runs `program args` on this machine, piped; returns its output and wall time.
    ///
    /// # Errors
    /// The program cannot be started.
    pub fn time(
        &self,
        program: &Path,
        args: &[&str],
    ) -> std::io::Result<(std::process::Output, Duration)> {
        let mut cmd = self.command(program);
        cmd.args(args);
        let started = Instant::now();
        let output = cmd.output().map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot run {} {}: {e}", program.display(), args.join(" ")),
            )
        })?;
        Ok((output, started.elapsed()))
    }

    /// `ghcache gh GH_ARGS` on this machine, timed like [`Machine::time`].
    ///
    /// # Errors
    /// ghcache cannot be started.
    pub fn time_cached(
        &self,
        gh_args: &[&str],
    ) -> std::io::Result<(std::process::Output, Duration)> {
        let mut args = vec!["gh"];
        args.extend(gh_args);
        self.time(&self.ghcache, &args)
    }

    /// Makes the working directory a git checkout with these remotes (`name`, `url`).
    pub fn git_checkout(&mut self, dir: &str, remotes: &[(&str, &str)]) {
        let path = self.home.join(dir);
        // HEAD, objects/ and refs/ are what makes git (which gh runs) accept the directory.
        for dir in [".git/objects", ".git/refs/heads"] {
            std::fs::create_dir_all(path.join(dir)).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        let mut config = String::from("[core]\n\trepositoryformatversion = 0\n\tbare = false\n");
        for (name, url) in remotes {
            config.push_str(&format!(
                "[remote \"{name}\"]\n\turl = {url}\n\tfetch = +refs/heads/*:refs/remotes/{name}/*\n"
            ));
        }
        std::fs::write(path.join(".git/config"), config).unwrap_or_else(|e| panic!("write: {e}"));
        std::fs::write(path.join(".git/HEAD"), "ref: refs/heads/main\n")
            .unwrap_or_else(|e| panic!("write: {e}"));
        self.cwd = path;
    }
}

/// Runs a command with stdout and stderr captured.
pub fn run_piped(cmd: &mut Command) -> Run {
    let output = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    Run {
        stdout: output.stdout,
        stderr: output.stderr,
        code: exit_code(output.status),
    }
}

/// Spawns a command with piped output, for tests that run many at once or kill one.
pub fn spawn_piped(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}

/// Waits for a spawned command.
pub fn wait_piped(child: Child) -> Run {
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait: {e}"));
    Run {
        stdout: output.stdout,
        stderr: output.stderr,
        code: exit_code(output.status),
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// A new pseudo-terminal of `width` columns and 40 rows: its master end (what a terminal shows)
/// and its slave end (what a program writes to).
pub fn open_pty(width: u16) -> (std::fs::File, std::fs::File) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master =
        openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap_or_else(|e| panic!("openpt: {e}"));
    grantpt(&master).unwrap_or_else(|e| panic!("grantpt: {e}"));
    unlockpt(&master).unwrap_or_else(|e| panic!("unlockpt: {e}"));
    let name = ptsname(&master, Vec::new()).unwrap_or_else(|e| panic!("ptsname: {e}"));
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_string_lossy().as_ref())
        .unwrap_or_else(|e| panic!("open pty slave: {e}"));
    let size = rustix::termios::Winsize {
        ws_row: 40,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&slave, size).unwrap_or_else(|e| panic!("winsize: {e}"));
    (std::fs::File::from(master), slave)
}

/// Runs a command whose stdout is a pseudo-terminal of `width` columns; stderr is a pipe.
pub fn run_tty(cmd: &mut Command, width: u16) -> Run {
    let (master, slave) = open_pty(width);
    let child = cmd
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    // `cmd` still holds the slave end; drop it so the master sees EOF when the child exits.
    cmd.stdout(Stdio::null());
    let mut master = master;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break, // EIO once the last slave fd closes
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        out
    });
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait: {e}"));
    let stdout = reader.join().unwrap_or_default();
    Run {
        stdout,
        stderr: output.stderr,
        code: exit_code(output.status),
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    condition()
}

impl World {
    /// A swarm key file (`name.key`, mode 0600) made by `ghcache swarm-key new --out`;
    /// machines given the same key form one swarm.
    pub fn swarm_key(&self, name: &str) -> PathBuf {
        let path = self.root.path().join(format!("{name}.key"));
        if !path.exists() {
            run_piped(
                Command::new(ghcache_bin())
                    .args(["swarm-key", "new", "--out"])
                    .arg(&path),
            )
            .ok();
        }
        path
    }
}

/// A running `ghcache daemon` of one machine, on loopback; stopped (SIGTERM) on drop.
pub struct Daemon {
    child: Child,
    machine: Machine,
    /// The daemon's peer id.
    pub peer_id: String,
    /// Where other daemons bootstrap from: `/ip4/127.0.0.1/tcp/PORT/p2p/PEER_ID`; empty for a
    /// daemon that does not listen.
    pub addr: String,
}

/// Where a daemon listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen<'a> {
    /// A free port on loopback.
    Loopback,
    /// This multiaddr.
    At(&'a str),
    /// Nowhere: it only dials out (`--no-listen`), as a runner behind NAT.
    Nowhere,
}

/// A TCP port that is free on loopback now (in the calling thread's network namespace).
///
/// # Errors
/// No socket can be bound.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Machine {
    /// Starts `ghcache daemon` for this machine's cache dir with swarm key `key`, listening on
    /// a free loopback port, without mDNS, plus `extra` flags; returns once it answers `status`.
    pub fn daemon(&self, key: &Path, extra: &[&str]) -> Daemon {
        self.daemon_on(key, Listen::Loopback, extra)
    }

    /// [`Machine::daemon`], listening where `listen` says.
    pub fn daemon_on(&self, key: &Path, listen: Listen<'_>, extra: &[&str]) -> Daemon {
        self.start_daemon(key, listen, extra)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `ghcache daemon` (swarm key `key`, no mDNS, listening where `listen` says, plus
    /// `extra` flags) and returns once it answers `status` and, unless it listens nowhere, once
    /// it has a listen address; or says why it did not come up within 30 s.
    ///
    /// # Errors
    /// The daemon cannot be started or does not come up.
    pub fn start_daemon(
        &self,
        key: &Path,
        listen: Listen<'_>,
        extra: &[&str],
    ) -> std::io::Result<Daemon> {
        let log = std::fs::File::create(self.home.join("daemon.log"))?;
        let mut command = self.command(&self.ghcache);
        command.arg("daemon");
        match listen {
            Listen::Loopback => command.args(["--listen", "/ip4/127.0.0.1/tcp/0"]),
            Listen::At(addr) => command.args(["--listen", addr]),
            Listen::Nowhere => command.arg("--no-listen"),
        };
        let child = command
            .args(["--no-mdns", "--swarm-key"])
            .arg(key)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let mut daemon = Daemon {
            child,
            machine: self.clone(),
            peer_id: String::new(),
            addr: String::new(),
        };
        let mut status = Status::default();
        let up = wait_until(Duration::from_secs(30), || {
            status = daemon.status();
            let listening = !status.listen_addrs.is_empty();
            !status.peer_id.is_empty() && (listening || listen == Listen::Nowhere)
        });
        if !up {
            return Err(std::io::Error::other(format!(
                "the daemon of {} did not come up in 30 s: {}",
                self.name,
                daemon.log().trim()
            )));
        }
        daemon.peer_id = status.peer_id.clone();
        if let Some(listen) = status.listen_addrs.first() {
            daemon.addr = format!("{listen}/p2p/{}", daemon.peer_id);
        }
        Ok(daemon)
    }

    /// `ghcache daemon status --json` of this machine, read as the daemon's status type; the
    /// default status (no peer id) when no daemon answers.
    pub fn daemon_status(&self) -> Status {
        let run = self.ghcache(&["daemon", "status", "--json"]);
        serde_json::from_slice(&run.stdout).unwrap_or_default()
    }
}

impl Daemon {
    /// `ghcache daemon status --json`, read as the daemon's status type; the default status
    /// (no peer id) when it does not answer.
    pub fn status(&self) -> Status {
        self.machine.daemon_status()
    }

    /// Waits up to 30 s until the daemon is connected to at least `n` peers, or says it is not.
    ///
    /// # Errors
    /// It is not, after 30 s.
    pub fn expect_peers(&self, n: usize) -> std::io::Result<()> {
        if self.wait_peers(n) {
            return Ok(());
        }
        Err(std::io::Error::other(format!(
            "the daemon of {} found {} of {n} peers in 30 s",
            self.machine.name,
            self.status().connected_peers.len()
        )))
    }

    /// Waits until the daemon is connected to at least `n` peers.
    pub fn wait_peers(&self, n: usize) -> bool {
        self.wait_peers_for(n, Duration::from_secs(30))
    }

    /// Waits up to `timeout` until the daemon is connected to at least `n` peers.
    pub fn wait_peers_for(&self, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.status().connected_peers.len() >= n)
    }

    /// The daemon's counters (`rejected`, `invalidations_received`, ...); all 0 when it does
    /// not answer.
    pub fn counters(&self) -> Counters {
        self.status().counters
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.machine.home.join("daemon.log")).unwrap_or_default()
    }

    /// Kills the daemon at once (`kill -9`): a peer that vanishes without a goodbye.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the daemon as systemd would, and waits for it.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .output();
        let exited = wait_until(Duration::from_secs(10), || {
            self.child.try_wait().ok().flatten().is_some()
        });
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

/// Where distributions install system programs (`ip`, `iptables`), beside `PATH`.
fn system_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Runs `program args`, or says what failed.
fn run_system(program: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{} {}` failed: {}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The calling thread inside a network namespace of its own, which has only `lo`, up. Every
/// program the thread starts (daemons, `ghcache`, `gh`), every socket it opens and every thread
/// it spawns (the fake GitHub's) live in that namespace, and every firewall rule made there dies
/// with it: nothing of the machine's own network is touched. On drop the thread goes back to
/// the namespace it came from and the namespace is deleted; drop it on the thread that made it,
/// after the programs that run in it.
///
/// Needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN), iproute2's `ip` and `iptables`.
pub struct Netns {
    name: String,
    ip: PathBuf,
    iptables: PathBuf,
    /// The namespace the thread came from.
    home: std::fs::File,
}

impl Netns {
    /// Makes a namespace and moves the calling thread into it, or says which step failed.
    pub fn enter(tag: &str) -> Result<Netns, String> {
        use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
        let ip = system_program("ip").ok_or("iproute2's `ip` is not installed")?;
        let iptables = system_program("iptables").ok_or("`iptables` is not installed")?;
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("ghcache-{tag}-{}-{n}", std::process::id());
        let home = std::fs::File::open("/proc/thread-self/ns/net")
            .map_err(|e| format!("cannot open this thread's network namespace: {e}"))?;
        run_system(&ip, &["netns", "add", &name])?;
        // From here on, `ns` deletes the namespace (and returns the thread) when a step fails.
        let ns = Netns {
            name,
            ip,
            iptables,
            home,
        };
        let target = std::fs::File::open(format!("/run/netns/{}", ns.name))
            .map_err(|e| format!("cannot open the new namespace: {e}"))?;
        move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&target),
            Some(LinkNameSpaceType::Network),
        )
        .map_err(|e| format!("cannot enter the new namespace: {e}"))?;
        run_system(&ns.ip, &["link", "set", "lo", "up"])?;
        // Firewall rules must be possible here, not only in the machine's own namespace.
        run_system(&ns.iptables, &["-S", "INPUT"])?;
        Ok(ns)
    }

    /// Drops new inbound TCP connections to `port` in this namespace, as NAT does to a runner:
    /// the SYN is dropped, so a dial hangs instead of being refused, while connections opened
    /// from the port's program still work both ways.
    pub fn drop_inbound(&self, port: u16) -> Result<(), String> {
        let port = port.to_string();
        run_system(
            &self.iptables,
            &[
                "-A", "INPUT", "-p", "tcp", "--dport", &port, "--syn", "-j", "DROP",
            ],
        )
    }

    /// Drops every packet from and to `ip` (a loopback address such as `127.0.0.3` that a
    /// daemon listens and dials from), as a network that went away does: connections stay open
    /// on both ends until their pings go unanswered. [`Netns::restore`] lets them through again.
    pub fn cut_off(&self, ip: &str) -> Result<(), String> {
        run_system(&self.iptables, &["-A", "INPUT", "-s", ip, "-j", "DROP"])?;
        run_system(&self.iptables, &["-A", "INPUT", "-d", ip, "-j", "DROP"])
    }

    /// Undoes [`Netns::cut_off`] of `ip`.
    pub fn restore(&self, ip: &str) -> Result<(), String> {
        run_system(&self.iptables, &["-D", "INPUT", "-s", ip, "-j", "DROP"])?;
        run_system(&self.iptables, &["-D", "INPUT", "-d", ip, "-j", "DROP"])
    }

    /// A TCP port that is free on loopback in this namespace now.
    pub fn free_port(&self) -> u16 {
        free_port().unwrap_or_else(|e| panic!("free port: {e}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
        let _ = move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&self.home),
            Some(LinkNameSpaceType::Network),
        );
        let _ = run_system(&self.ip, &["netns", "del", &self.name]);
    }
}

/// `at_ms` (ms since the epoch) as an RFC 3339 UTC time with milliseconds
/// (`2026-12-07T12:00:00.123Z`), as the triggering event's payloads of the tests give it.
pub fn rfc3339_ms(at_ms: u64) -> String {
    format!("{}.{:03}Z", civil_time(at_ms / 1000), at_ms % 1000)
}

/// `at_ms` as GitHub writes times in payloads (`2026-12-07T12:00:00Z`): whole seconds, cut off.
pub fn github_time(at_ms: u64) -> String {
    format!("{}Z", civil_time(at_ms / 1000))
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SS` (Howard Hinnant's civil_from_days).
fn civil_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}
