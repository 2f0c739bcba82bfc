//! A malicious swarm member (it holds the swarm key) that announces an entry and then answers
//! the fetch with a lie: every lie is refused and counted, the liar is cut off where it cannot
//! have been an honest mistake, and the user gets GitHub's answer.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ghcache_tests::{wait_until, Machine, World};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _};

const LIST: [&str; 4] = ["pr", "list", "-R", "o/r"];

/// Writes the only entry of `machine`'s store (manifest and body encodings) to two files.
fn export_only_entry(machine: &Machine) -> (PathBuf, PathBuf) {
    let cache = machine.cache_dir();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let (manifest, digest): (Vec<u8>, String) = runtime.block_on(async {
        let mut conn = SqliteConnectOptions::new()
            .filename(cache.join("index.db"))
            .busy_timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("open index: {e}"));
        let row = sqlx::query_as("SELECT manifest, digest FROM entries")
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("read index: {e}"));
        let _ = conn.close().await;
        row
    });
    let body = std::fs::read(cache.join("blobs").join(&digest[..2]).join(&digest))
        .unwrap_or_else(|e| panic!("read blob: {e}"));
    let (m, b) = (
        machine.home.join("entry.manifest"),
        machine.home.join("entry.body"),
    );
    std::fs::write(&m, manifest).unwrap_or_else(|e| panic!("write: {e}"));
    std::fs::write(&b, body).unwrap_or_else(|e| panic!("write: {e}"));
    (m, b)
}

/// The liar, killed on drop, and what it printed.
struct Liar(Child, mpsc::Receiver<String>);

impl Liar {
    /// Was it asked for the entry (it says so on stdout)?
    fn was_asked(&self) -> bool {
        self.1.try_iter().any(|line| line == "asked")
    }
}

impl Drop for Liar {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the hostile peer and waits until it has announced `entry` to `bootstrap`.
fn liar(key: &std::path::Path, entry: &(PathBuf, PathBuf), bootstrap: &str, lie: &str) -> Liar {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hostile_peer"))
        .arg("--swarm-key")
        .arg(key)
        .arg("--manifest")
        .arg(&entry.0)
        .arg("--body")
        .arg(&entry.1)
        .args(["--bootstrap", bootstrap, "--lie", lie])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn hostile peer: {e}"));
    let stdout = child.stdout.take();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if let Some(stdout) = stdout {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    let liar = Liar(child, rx);
    assert_eq!(
        line.as_deref().ok(),
        Some("announced"),
        "the liar never announced"
    );
    liar
}

/// A world where B's daemon has heard the hostile peer announce the entry B is about to ask
/// for, and what GitHub answers for it.
struct Scene {
    world: World,
    b: Machine,
    db: ghcache_tests::Daemon,
    peer: Liar,
    expected: ghcache_tests::Run,
}

fn scene(behaviour: &str) -> Scene {
    let world = World::new();
    let key = world.swarm_key("team");
    let (mut honest, mut b) = (world.machine("honest"), world.machine("b"));
    honest.set_env("GH_CACHE_SCOPE", "team");
    b.set_env("GH_CACHE_SCOPE", "team");
    // An honest copy of the answer, to build the lie from (the same key as B's).
    let expected = honest.cached(&LIST).ok();
    let entry = export_only_entry(&honest);
    let db = b.daemon(&key, &[]);
    // B's daemon follows the scope's announcements once a command of that scope ran.
    b.cached(&["repo", "view", "o/r"]).ok();
    let peer = liar(&key, &entry, &db.addr, behaviour);
    assert!(
        wait_until(Duration::from_secs(15), || db
            .counters()
            .announcements_received
            >= 1),
        "B heard the announcement: {}",
        db.log()
    );
    Scene {
        world,
        b,
        db,
        peer,
        expected,
    }
}

/// B's daemon hears the liar's announcement of the entry B then asks for; the liar answers with
/// `lie`. `cut_off`: the lie cannot be an honest mistake, so B disconnects the liar.
fn a_lie_is_refused_and_github_answers(lie: &str, cut_off: bool) {
    let Scene {
        world,
        b,
        db,
        peer: liar,
        expected,
    } = scene(lie);
    let before = world.requests();
    let answer = b.cached(&LIST).ok();
    assert_eq!(world.requests(), before + 1, "GitHub answered");
    assert!(liar.was_asked(), "B asked the liar");
    assert_eq!(answer.stdout, expected.stdout, "the right answer");
    assert_eq!(answer.stderr, expected.stderr);
    assert_eq!(b.stats()["hits"]["p2p"], 0, "{}", b.stats());
    // A large lie may still be arriving when the lookup's deadline sends B to GitHub.
    assert!(
        wait_until(Duration::from_secs(15), || db.counters().rejected >= 1),
        "counted: {:?}\nB's daemon: {}",
        db.status(),
        db.log()
    );
    let peers = || db.status().connected_peers.len();
    if cut_off {
        assert!(
            wait_until(Duration::from_secs(5), || peers() == 0),
            "the liar was cut off: {:?}",
            db.status()
        );
    } else {
        assert_eq!(peers(), 1, "a stale entry is not a lie: {:?}", db.status());
    }
}

#[test]
fn a_signature_that_does_not_cover_the_manifest_is_refused() {
    a_lie_is_refused_and_github_answers("bad-signature", true);
}

#[test]
fn another_scope_s_entry_is_refused() {
    a_lie_is_refused_and_github_answers("wrong-scope", true);
}

#[test]
fn another_key_s_entry_is_refused() {
    a_lie_is_refused_and_github_answers("wrong-key", true);
}

#[test]
fn an_expired_entry_is_refused_but_not_held_against_the_peer() {
    a_lie_is_refused_and_github_answers("expired", false);
}

#[test]
fn an_entry_over_the_size_cap_is_refused() {
    a_lie_is_refused_and_github_answers("oversized", true);
}

/// B's daemon knows the provider from its announcement; the provider fails while B waits.
/// B still prints GitHub's answer, after at most the p2p deadline more than plain gh.
fn a_provider_that_fails_mid_fetch_costs_at_most_the_deadline(how: &str) {
    // Bound, not `..`: the world (its directories, fake GitHub) and B's daemon must live on.
    let Scene {
        world: _world,
        b,
        db: _db,
        peer,
        expected,
    } = scene(how);
    let started = std::time::Instant::now();
    b.gh(&LIST).ok();
    let plain = started.elapsed();
    let started = std::time::Instant::now();
    let answer = b.cached(&LIST).ok();
    let took = started.elapsed();
    assert!(peer.was_asked(), "B asked the provider");
    assert_eq!(answer.stdout, expected.stdout, "GitHub's answer");
    assert_eq!(answer.stderr, expected.stderr);
    assert_eq!(b.stats()["hits"]["p2p"], 0);
    // The p2p deadline is 150 ms; a generous margin for a noisy machine.
    assert!(
        took < plain + Duration::from_millis(150 + 1500),
        "{took:?} vs plain gh {plain:?}"
    );
}

#[test]
fn a_provider_that_dies_as_it_is_asked_costs_at_most_the_deadline() {
    a_provider_that_fails_mid_fetch_costs_at_most_the_deadline("vanish");
}

#[test]
fn a_provider_that_never_answers_costs_at_most_the_deadline() {
    a_provider_that_fails_mid_fetch_costs_at_most_the_deadline("stall");
}
