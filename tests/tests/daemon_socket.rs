//! The daemon's control socket and metrics port under clients that hold connections and send
//! nothing, or half a request: users still get their answers and writes still reach peers,
//! memory stays bounded and is given back, and `daemon status` says what is wrong when a daemon
//! does not answer instead of claiming there is none.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::DirBuilderExt as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ghcache_tests::{wait_until, Daemon, Machine, World};
use ghcache_tier_p2p::wire::{Control, MAX_BODY};

const ISSUES: [&str; 4] = ["issue", "list", "-R", "o/r"];
/// More connections than the daemon serves at once (and than it used to).
const IDLE_CLIENTS: usize = 200;
/// How long a test waits for the daemon to close a client that broke a deadline: the longest
/// of those deadlines is a few seconds.
const CLOSE_WAIT: Duration = Duration::from_secs(20);

fn socket(machine: &Machine) -> PathBuf {
    machine.cache_dir().join("p2p").join("daemon.sock")
}

/// `n` connections to the machine's daemon that never send anything.
fn idle_clients(machine: &Machine, n: usize) -> Vec<UnixStream> {
    (0..n)
        .map(|i| {
            UnixStream::connect(socket(machine))
                .unwrap_or_else(|e| panic!("idle connection {i}: {e}"))
        })
        .collect()
}

/// The daemon's process id, as `daemon status` reports it.
fn pid(daemon: &Daemon) -> u64 {
    let status = daemon.status();
    assert_ne!(status.pid, 0, "no pid in status: {status:?}");
    u64::from(status.pid)
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in bytes.
fn memory(pid: u64, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    let kb = text
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in {text}"));
    kb * 1024
}

/// Has the daemon closed `stream` (end of stream or reset), waiting at most `CLOSE_WAIT`?
fn closed_by_daemon(stream: &mut UnixStream) -> bool {
    let deadline = Instant::now() + CLOSE_WAIT;
    let mut buf = [0u8; 64];
    while Instant::now() < deadline {
        let _ = stream.set_read_timeout(Some(deadline - Instant::now()));
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
    false
}

/// `GET path` on `addr`; the whole response, or what failed.
fn http_get(addr: &str, path: &str) -> Result<String, std::io::Error> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// The `host:port` of a `http://host:port/metrics` URL.
fn host_port(url: &str) -> &str {
    url.trim_start_matches("http://")
        .trim_end_matches("/metrics")
}

#[test]
fn idle_connections_lock_no_one_out_of_the_daemon() {
    let world = World::new();
    let key = world.swarm_key("team");
    let (a, b) = (world.machine("a"), world.machine("b"));
    let da = a.daemon(&key, &[]);
    let db = b.daemon(&key, &["--bootstrap", &da.addr]);
    assert!(db.wait_peers(1), "{}", db.log());
    b.cached(&["repo", "view", "o/r"]).ok(); // B's daemon now follows the scope's gossip.

    let _idle_on_a = idle_clients(&a, IDLE_CLIENTS);
    let _idle_on_b = idle_clients(&b, IDLE_CLIENTS);

    let status = b.ghcache(&["daemon", "status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.err());
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
    assert_eq!(json["peer_id"], db.peer_id.as_str(), "{}", status.out());
    assert!(
        json["counters"]["clients_dropped"].as_u64() > Some(0),
        "status counts the idle connections it closed: {json}"
    );

    // What A fetched, B gets from the swarm: both daemons still serve their CLIs.
    let fetched = a.cached(&ISSUES).ok();
    let before = world.requests();
    let on_b = b.cached(&ISSUES).ok();
    assert_eq!(world.requests(), before, "B made no request to GitHub");
    assert_eq!(on_b.stdout, fetched.stdout);
    assert_eq!(b.stats()["hits"]["p2p"], 1);

    // And a write on A still reaches B.
    a.cached(&[
        "issue",
        "create",
        "-R",
        "o/r",
        "-t",
        "written on A",
        "-b",
        "x",
    ])
    .ok();
    assert!(
        wait_until(Duration::from_secs(10), || db
            .counters()
            .invalidations_received
            >= 1),
        "B heard of the write: {}",
        db.log()
    );
    let after = b.cached(&ISSUES).ok();
    assert!(after.out().contains("written on A"), "{}", after.out());
}

#[test]
fn silent_and_half_sent_clients_are_disconnected() {
    let world = World::new();
    let machine = world.machine("a");
    let daemon = machine.daemon(&world.swarm_key("team"), &[]);
    let connect =
        || UnixStream::connect(socket(&machine)).unwrap_or_else(|e| panic!("connect: {e}"));
    let mut silent = connect();
    let mut half_prefix = connect();
    half_prefix
        .write_all(&[1, 0])
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut half_frame = connect();
    let get = Control::Get {
        key: ghcache_core::CacheKey([1; 32]),
        scope_id: ghcache_core::ScopeId([2; 32]),
        deadline_ms: 100,
    }
    .encode();
    let mut partial = (get.len() as u32).to_le_bytes().to_vec();
    partial.extend_from_slice(&get[..get.len() / 2]);
    half_frame
        .write_all(&partial)
        .unwrap_or_else(|e| panic!("write: {e}"));

    for (what, stream) in [
        ("a client that sends nothing", &mut silent),
        ("half a length prefix", &mut half_prefix),
        ("half a request", &mut half_frame),
    ] {
        assert!(closed_by_daemon(stream), "{what} is still connected");
    }
    assert!(
        daemon.counters().clients_dropped >= 3,
        "{:?}",
        daemon.status()
    );
    // A client that asks gets its answer on the same socket.
    let run = machine.ghcache(&["daemon", "status"]).ok();
    assert!(run.out().contains(&daemon.peer_id), "{}", run.out());
}

#[test]
fn partial_large_requests_cost_bounded_memory_that_is_given_back() {
    const CLIENTS: usize = 64;
    let world = World::new();
    let machine = world.machine("a");
    let daemon = machine.daemon(&world.swarm_key("team"), &[]);
    let pid = pid(&daemon);
    let before = memory(pid, "VmRSS");

    // Each client declares a publish of 8 MiB, sends half of it, and stalls.
    let publish = Control::Publish {
        manifest: vec![0; 64],
        body: vec![0; MAX_BODY - 64],
    }
    .encode();
    let mut partial = (publish.len() as u32).to_le_bytes().to_vec();
    partial.extend_from_slice(&publish[..publish.len() / 2]);
    let partial = std::sync::Arc::new(partial);
    let senders: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let partial = partial.clone();
            let path = socket(&machine);
            std::thread::spawn(move || {
                let mut stream =
                    UnixStream::connect(path).unwrap_or_else(|e| panic!("connect: {e}"));
                let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
                // Refused part way (the daemon stops reading, then closes) or taken whole.
                let _ = stream.write_all(&partial);
                stream
            })
        })
        .collect();
    let streams: Vec<UnixStream> = senders
        .into_iter()
        .map(|sender| sender.join().unwrap_or_else(|_| panic!("sender panicked")))
        .collect();

    // While they are connected, the daemon answers, and it never held much of what they sent.
    let status = machine.ghcache(&["daemon", "status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.err());
    let peak = memory(pid, "VmHWM");
    assert!(
        peak < before + (64 << 20),
        "peak {} MiB over {} MiB before",
        peak >> 20,
        before >> 20
    );

    drop(streams);
    let given_back = wait_until(Duration::from_secs(20), || {
        memory(pid, "VmRSS") < before + (32 << 20)
    });
    assert!(
        given_back,
        "{} MiB kept over {} MiB before",
        memory(pid, "VmRSS") >> 20,
        before >> 20
    );
}

#[test]
fn a_daemon_that_does_not_answer_is_reported_busy_and_costs_gh_only_the_p2p_deadline() {
    let world = World::new();
    let machine = world.machine("a");
    let dir = machine.cache_dir().join("p2p");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .unwrap_or_else(|e| panic!("mkdir: {e}"));
    // A daemon that is there but never gets to its socket: connections wait in the backlog.
    let _hung = UnixListener::bind(socket(&machine)).unwrap_or_else(|e| panic!("bind: {e}"));

    let run = machine.ghcache(&["daemon", "status"]);
    assert_ne!(run.code, 0);
    assert_eq!(run.err().lines().count(), 1, "{}", run.err());
    assert!(
        run.err().contains("did not answer within 3s (busy?)"),
        "{}",
        run.err()
    );
    assert!(!run.err().contains("no ghcache daemon"), "{}", run.err());

    let plain_started = Instant::now();
    let plain = machine.gh(&ISSUES).ok();
    let plain_took = plain_started.elapsed();
    let started = Instant::now();
    let answer = machine.cached(&ISSUES).ok();
    let took = started.elapsed();
    assert_eq!(answer.stdout, plain.stdout, "the right answer, from GitHub");
    // The p2p deadline is 150 ms for the lookup and for the store; the rest is gh itself. A
    // generous margin for a noisy machine.
    assert!(
        took < plain_took + Duration::from_millis(1500),
        "{took:?} vs plain gh {plain_took:?}"
    );
}

#[test]
fn metrics_on_port_zero_say_where_they_are() {
    let world = World::new();
    let machine = world.machine("a");
    let daemon = machine.daemon(&world.swarm_key("team"), &["--metrics", "127.0.0.1:0"]);
    let url = daemon.status().metrics_url.unwrap_or_default();
    let port = host_port(&url)
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok());
    assert!(
        url.starts_with("http://127.0.0.1:") && port.is_some_and(|p| p != 0),
        "{url}"
    );
    assert!(
        daemon.log().contains(&format!("metrics on {url}")),
        "{}",
        daemon.log()
    );
    let table = machine.ghcache(&["daemon", "status"]).ok();
    assert!(table.out().contains(&url), "{}", table.out());
    let scrape = http_get(host_port(&url), "/metrics").unwrap_or_else(|e| e.to_string());
    assert!(
        scrape.starts_with("HTTP/1.1 200 OK"),
        "{scrape}\n{}",
        daemon.log()
    );
    assert!(scrape.contains("ghcache_p2p_connected_peers 0"), "{scrape}");
}

#[test]
fn idle_metrics_connections_hold_few_of_the_daemons_resources() {
    let world = World::new();
    let machine = world.machine("a");
    let daemon = machine.daemon(&world.swarm_key("team"), &["--metrics", "127.0.0.1:0"]);
    let url = daemon.status().metrics_url.unwrap_or_default();
    let addr = host_port(&url).to_owned();
    let pid = pid(&daemon);
    let open_files = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|dir| dir.count())
            .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
    };
    let before = open_files();

    let _idle: Vec<TcpStream> = (0..IDLE_CLIENTS)
        .map(|i| TcpStream::connect(&addr).unwrap_or_else(|e| panic!("idle {i}: {e}")))
        .collect();
    // The daemon takes connections in order: once a scrape made after them is answered, it
    // has dealt with every idle one.
    let scrape = http_get(&addr, "/metrics").unwrap_or_else(|e| e.to_string());
    assert!(
        scrape.starts_with("HTTP/1.1 200 OK"),
        "{scrape}\n{}",
        daemon.log()
    );
    let held = open_files().saturating_sub(before);
    assert!(
        held <= 32,
        "{held} more files open for {IDLE_CLIENTS} idle metrics connections"
    );
}
