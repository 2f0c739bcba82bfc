//! Discovery on a real link: two daemons in two network namespaces joined by a veth pair find
//! each other with mDNS, given no bootstrap address, and then serve each other.
//!
//! Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2's `ip`; without them the test
//! prints `SKIPPED: ...` to stderr and passes without exercising anything.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ghcache_tests::{ghcache_bin, skip, wait_until, Machine, World};
use ghcache_tier_p2p::Status;

const LIST: [&str; 4] = ["pr", "list", "-R", "o/r"];

/// iproute2's `ip`: on PATH, else where distributions install it.
fn ip_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join("ip"))
        .find(|p| p.is_file())
}

/// Two network namespaces joined by a veth pair: `10.77.1.1/24` in the first, `10.77.1.2/24`
/// in the second, both links and both loopbacks up. Deleted on drop.
struct Link {
    ip: PathBuf,
    /// Namespace names, unique to this process.
    ns: [String; 2],
    /// The veth ends, one in each namespace.
    veth: [String; 2],
    /// Each namespace's address on the link.
    addr: [&'static str; 2],
}

impl Link {
    /// Sets the link up, or says which step failed and why.
    fn new() -> Result<Link, String> {
        let ip = ip_bin().ok_or("iproute2's `ip` is not installed")?;
        let pid = std::process::id();
        let link = Link {
            ip,
            ns: [
                format!("ghcache-mdns-{pid}-a"),
                format!("ghcache-mdns-{pid}-b"),
            ],
            // Interface names are at most 15 bytes.
            veth: [format!("gcm{pid}a"), format!("gcm{pid}b")],
            addr: ["10.77.1.1", "10.77.1.2"],
        };
        // `link` is dropped, and what was made so far deleted, when a step fails.
        let [na, nb] = &link.ns;
        let [va, vb] = &link.veth;
        link.run(&["netns", "add", na])?;
        link.run(&["netns", "add", nb])?;
        link.run(&["link", "add", va, "type", "veth", "peer", "name", vb])?;
        for i in 0..2 {
            let (ns, veth) = (&link.ns[i], &link.veth[i]);
            let cidr = format!("{}/24", link.addr[i]);
            link.run(&["link", "set", veth, "netns", ns])?;
            link.run(&["-n", ns, "addr", "add", &cidr, "dev", veth])?;
            link.run(&["-n", ns, "link", "set", veth, "up"])?;
            link.run(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        // Running a program inside a namespace needs more than creating one.
        let ip = link.ip.display().to_string();
        link.run(&["netns", "exec", na, &ip, "link", "show", "lo"])?;
        Ok(link)
    }

    fn run(&self, args: &[&str]) -> Result<(), String> {
        let out = Command::new(&self.ip)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.ip.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`ip {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Starts `machine`'s daemon inside namespace `i`, listening on its link address, with
    /// mDNS and no bootstrap address; returns once it answers `status`.
    fn daemon(&self, i: usize, machine: &Machine, key: &Path) -> NsDaemon {
        let log = machine.home.join("daemon.log");
        let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("daemon log: {e}"));
        // `ip netns exec` execs the daemon in place: the child is the daemon itself.
        let child = machine
            .command(&self.ip)
            .args(["netns", "exec", &self.ns[i]])
            .arg(ghcache_bin())
            .args(["daemon", "--swarm-key"])
            .arg(key)
            .args(["--listen", &format!("/ip4/{}/tcp/0", self.addr[i])])
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn daemon: {e}"));
        let mut daemon = NsDaemon {
            child,
            machine: machine.clone(),
            log,
            peer_id: String::new(),
        };
        let mut status = Status::default();
        let up = wait_until(Duration::from_secs(30), || {
            status = daemon.status();
            !status.listen_addrs.is_empty()
        });
        assert!(up, "the daemon did not come up: {}", daemon.log());
        daemon.peer_id = status.peer_id;
        daemon
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and with it the other end.
        for ns in &self.ns {
            let _ = self.run(&["netns", "del", ns]);
        }
        // Left in the root namespace when a step failed before moving it.
        let _ = self.run(&["link", "del", &self.veth[0]]);
    }
}

/// A daemon running in a namespace; killed on drop.
struct NsDaemon {
    child: Child,
    machine: Machine,
    log: PathBuf,
    peer_id: String,
}

impl NsDaemon {
    /// `ghcache daemon status --json` from the root namespace (the control socket is a file in
    /// the machine's cache dir), or the default status (no peer id) when it does not answer.
    fn status(&self) -> Status {
        let run = self.machine.ghcache(&["daemon", "status", "--json"]);
        serde_json::from_slice(&run.stdout).unwrap_or_default()
    }

    fn connected_peers(&self) -> Vec<String> {
        self.status().connected_peers
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NsDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn daemons_on_one_link_find_each_other_with_mdns_and_share_entries() {
    let link = match Link::new() {
        Ok(link) => link,
        Err(reason) => {
            skip(&format!(
                "the mDNS test needs network namespaces (root and iproute2): {reason}"
            ));
            return;
        }
    };
    let world = World::new();
    let key = world.swarm_key("team");
    let (a, b) = (world.machine("a"), world.machine("b"));
    // Declared after `link`, so dropped (killed) before the namespaces are deleted.
    let da = link.daemon(0, &a, &key);
    let db = link.daemon(1, &b, &key);

    let found = wait_until(Duration::from_secs(30), || {
        da.connected_peers() == [db.peer_id.clone()] && db.connected_peers() == [da.peer_id.clone()]
    });
    assert!(
        found,
        "the daemons did not find each other\nA: {:?}\n{}\nB: {:?}\n{}",
        da.status(),
        da.log(),
        db.status(),
        db.log()
    );
    // No bootstrap address was given: mDNS it was.
    assert!(
        da.log().contains(&format!("mdns found {}", db.peer_id))
            || db.log().contains(&format!("mdns found {}", da.peer_id)),
        "A: {}\nB: {}",
        da.log(),
        db.log()
    );

    let fetched = a.cached(&LIST).ok();
    assert_eq!(world.requests(), 1, "A asked GitHub once");
    let on_b = b.cached(&LIST).ok();
    assert_eq!(world.requests(), 1, "B made no request to GitHub");
    assert_eq!(on_b.stdout, fetched.stdout, "byte-identical on B");
    assert_eq!(on_b.stderr, fetched.stderr);
    assert_eq!(b.stats()["hits"]["p2p"], 1, "{}", db.log());
}
