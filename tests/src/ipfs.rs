//! A real IPFS node for tests, benchmarks and the demo: js-ipfs from npm, serving the Kubo RPC
//! API on a free loopback port, with its own repository, cut off from the public network.
//!
//! `cargo xtask ipfs-node install` puts js-ipfs (pinned by `xtask/ipfs-node/package-lock.json`)
//! into `target/ipfs-node`. js-ipfs is used because it installs from npm alone; the Rust client
//! speaks only the Kubo RPC API, which Kubo serves the same way.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a node may take to answer its API after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Where js-ipfs is installed: `GHCACHE_IPFS_NODE_DIR`, else the workspace's `target/ipfs-node`.
pub fn install_dir() -> PathBuf {
    match std::env::var_os("GHCACHE_IPFS_NODE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target/ipfs-node"),
    }
}

/// The npm package the install is made from (package.json and its lockfile).
pub fn package_dir() -> PathBuf {
    workspace_root().join("xtask/ipfs-node")
}

fn workspace_root() -> &'static Path {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests.parent().unwrap_or(tests)
}

fn cli_js(install: &Path) -> PathBuf {
    install.join("node_modules/ipfs/src/cli.js")
}

/// Where, in the install dir, the repository that nodes are copied from is kept.
const TEMPLATE_REPO: &str = "template-repo";

/// Installs js-ipfs with `npm ci` into [`install_dir`], unless the same lockfile is installed.
///
/// # Errors
/// Node.js (>= 18) or npm missing, or npm failing; the message says which.
pub fn install() -> Result<PathBuf, String> {
    let dir = install_dir();
    let package = package_dir();
    let version = Command::new("node").arg("--version").output();
    let version = match version {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => {
            return Err(
                "node not found: install Node.js >= 18 (apt-get install -y nodejs npm)".into(),
            )
        }
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 18 {
        return Err(format!(
            "Node.js >= 18 is needed for the test IPFS node; found {version}"
        ));
    }
    let lock = std::fs::read(package.join("package-lock.json")).map_err(|e| {
        format!(
            "reading {}: {e}",
            package.join("package-lock.json").display()
        )
    })?;
    let manifest = std::fs::read(package.join("package.json"))
        .map_err(|e| format!("reading {}: {e}", package.join("package.json").display()))?;
    let stamp = format!("{}\n", fingerprint(&[&lock[..], &manifest[..]].concat()));
    let stamp_file = dir.join(".installed");
    if cli_js(&dir).is_file()
        && std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(&stamp)
    {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    // A template made by another js-ipfs version may not suit this one (if there is one).
    let _ = std::fs::remove_dir_all(dir.join(TEMPLATE_REPO));
    std::fs::write(dir.join("package.json"), &manifest).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("package-lock.json"), &lock).map_err(|e| e.to_string())?;
    let status = Command::new("npm")
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--omit=optional",
            "--loglevel=error",
        ])
        .current_dir(&dir)
        .status()
        .map_err(|e| format!("npm not found ({e}): install it (apt-get install -y npm)"))?;
    if !status.success() || !cli_js(&dir).is_file() {
        return Err(format!("npm ci in {} failed ({status})", dir.display()));
    }
    std::fs::write(&stamp_file, stamp).map_err(|e| e.to_string())?;
    Ok(dir)
}

fn fingerprint(bytes: &[u8]) -> String {
    // The tests crate has no hashing dependency of its own; a stable FNV-1a is enough to tell
    // one lockfile from another.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// A running js-ipfs daemon (one `node` process); killed on drop.
pub struct IpfsNode {
    child: Option<Child>,
    port: u16,
    gateway_port: u16,
    root: tempfile::TempDir,
}

impl IpfsNode {
    /// Starts a node with a fresh repository on a free loopback port; panics with the node's log
    /// if it does not come up.
    pub fn start() -> IpfsNode {
        IpfsNode::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`IpfsNode::start`], with the failure as a value.
    ///
    /// # Errors
    /// Not installed, or the daemon did not come up (the message ends with its log).
    pub fn try_start() -> Result<IpfsNode, String> {
        let install = install_dir();
        if !cli_js(&install).is_file() {
            return Err("IPFS test node not installed: run cargo xtask ipfs-node install".into());
        }
        let root = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let repo = root.path().join("repo");
        copy_dir(&template(&install)?, &repo)?;
        let port = free_port()?;
        let gateway_port = free_port()?;
        configure(&repo, port, gateway_port)?;
        let log =
            std::fs::File::create(root.path().join("daemon.log")).map_err(|e| e.to_string())?;
        let mut command = Command::new("node");
        command
            .arg(cli_js(&install))
            .args(["daemon", "--enable-preload=false"])
            .env("IPFS_PATH", &repo)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let child = command.spawn().map_err(|e| format!("starting node: {e}"))?;
        let mut node = IpfsNode {
            child: Some(child),
            port,
            gateway_port,
            root,
        };
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            // The gateway starts after the API.
            if node.api_answers() && TcpStream::connect(("127.0.0.1", gateway_port)).is_ok() {
                return Ok(node);
            }
            if let Some(child) = node.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("the IPFS node exited ({status}):\n{}", node.log()));
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "the IPFS node did not answer within {START_TIMEOUT:?}:\n{}",
            node.log()
        ))
    }

    /// The Kubo RPC API address, `http://127.0.0.1:PORT`.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The read-only HTTP gateway (`GET /ipfs/<cid>`), `http://127.0.0.1:PORT`.
    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.gateway_port)
    }

    /// Is `cid` pinned (recursively), as `pin/ls` tells?
    pub fn pinned(&self, cid: &str) -> bool {
        pinned(self.port, cid)
    }

    /// What the daemon printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("daemon.log")).unwrap_or_default()
    }

    /// Freezes the node (SIGSTOP): connections are accepted by the kernel, nothing answers.
    pub fn pause(&self) {
        self.signal(rustix::process::Signal::STOP);
    }

    /// Thaws a paused node.
    pub fn resume(&self) {
        self.signal(rustix::process::Signal::CONT);
    }

    /// Stops the node and waits for it; its port is then closed.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn signal(&self, signal: rustix::process::Signal) {
        if let Some(pid) = self.pid() {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }

    fn pid(&self) -> Option<rustix::process::Pid> {
        let id = self.child.as_ref()?.id();
        rustix::process::Pid::from_raw(i32::try_from(id).ok()?)
    }

    fn shut_down(&mut self) {
        self.signal(rustix::process::Signal::CONT);
        self.signal(rustix::process::Signal::KILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// `POST /api/v0/id` answers 200.
    fn api_answers(&self) -> bool {
        post(self.port, "/api/v0/id", Duration::from_secs(2)).is_ok_and(|(status, _)| status == 200)
    }
}

impl Drop for IpfsNode {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// A freshly initialised repository, made once per installation and copied for each node:
/// `init` generates a key and takes seconds; a copy takes milliseconds. Nodes then share a peer
/// id, which is harmless: they never dial each other or anyone else. It lives in the install
/// dir (not in a temp dir that a static would never remove) and goes with a reinstall.
fn template(install: &Path) -> Result<PathBuf, String> {
    let repo = install.join(TEMPLATE_REPO);
    if repo.join("config").is_file() {
        return Ok(repo);
    }
    // Made aside and renamed into place, so that a process racing this one sees either no
    // template or a whole one.
    let staging = tempfile::Builder::new()
        .prefix(".template-")
        .tempdir_in(install)
        .map_err(|e| format!("tempdir in {}: {e}", install.display()))?;
    let staged = staging.path().join("repo");
    let out = Command::new("node")
        .arg(cli_js(install))
        .args(["init", "--profile", "test", "--empty-repo"])
        .env("IPFS_PATH", &staged)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ipfs init: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ipfs init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    match std::fs::rename(&staged, &repo) {
        Ok(()) => Ok(repo),
        // Another process put its template in place first: use that one.
        Err(_) if repo.join("config").is_file() => Ok(repo),
        Err(e) => Err(format!("placing {}: {e}", repo.display())),
    }
}

/// Rewrites the repository's config: API on `port`, the gateway on `gateway_port`, everything
/// else on loopback and random ports, no bootstrap peers, no mDNS, no gRPC endpoint: a node
/// that talks to nobody.
fn configure(repo: &Path, port: u16, gateway_port: u16) -> Result<(), String> {
    let path = repo.join("config");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    config["Addresses"] = serde_json::json!({
        "API": format!("/ip4/127.0.0.1/tcp/{port}"),
        "Gateway": format!("/ip4/127.0.0.1/tcp/{gateway_port}"),
        "Swarm": ["/ip4/127.0.0.1/tcp/0"],
        "Announce": [],
        "NoAnnounce": [],
        "Delegates": [],
    });
    config["Bootstrap"] = serde_json::json!([]);
    config["Discovery"] = serde_json::json!({
        "MDNS": { "Enabled": false, "Interval": 10 },
        "webRTCStar": { "Enabled": false },
    });
    config["Swarm"]["DisableNatPortMap"] = serde_json::json!(true);
    std::fs::write(&path, config.to_string()).map_err(|e| format!("{}: {e}", path.display()))
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)
                .map_err(|e| format!("{}: {e}", target.display()))?;
        }
    }
    Ok(())
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Is `cid` pinned (recursively) on the node whose API is on loopback port `port`, as
/// `pin/ls` tells? (Kubo and js-ipfs both refuse to list a CID that is not pinned.)
pub fn pinned(port: u16, cid: &str) -> bool {
    let path = format!("/api/v0/pin/ls?arg={cid}&type=recursive");
    post(port, &path, Duration::from_secs(10))
        .is_ok_and(|(status, body)| status == 200 && String::from_utf8_lossy(&body).contains(cid))
}

/// A bodiless `POST` to the node's API over a plain socket: status and body.
///
/// # Errors
/// The node cannot be reached or the answer is not HTTP.
pub fn post(port: u16, path_and_query: &str, timeout: Duration) -> Result<(u16, Vec<u8>), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            format!(
                "not an HTTP answer: {:?}",
                text.chars().take(80).collect::<String>()
            )
        })?;
    let body = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| answer[at + 4..].to_vec())
        .unwrap_or_default();
    Ok((status, body))
}
