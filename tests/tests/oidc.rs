//! Producers bound to what they may read, end to end: `ghcache daemon --keep --require-oidc`
//! fetches the key set of the fake GitHub's OIDC issuer (discovery, then `jwks_uri`) and caches
//! it; runners present their job's token (`--oidc-token-file`, audience `ghcache:<peer id>`);
//! the keeper keeps what the job of `o/a` fetched for `actions:o/a`, and refuses and counts what
//! a job of `o/a` offers for `actions:o/b`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fake_github::oidc::{self as fake, Claims, Signer};
use ghcache_tests::{wait_until, Daemon, Listen, Machine, World};
use ghcache_tier_p2p::oidc::audience;
use ghcache_tier_p2p::PeerId;

const LIST: [&str; 4] = ["pr", "list", "-R", "o/r"];

/// A runner of a job of `o/a` whose commands use scope `scope`, presenting a token of the fake
/// issuer addressed to the peer id `ghcache daemon id` printed, bootstrapping from `seed`.
fn runner(world: &World, name: &str, key: &Path, seed: &Daemon, scope: &str) -> (Machine, Daemon) {
    let mut machine = world.machine(name);
    machine.set_env("GH_CACHE_SCOPE", scope);
    machine.set_env("GH_CACHE_P2P_DEADLINE", "2s");
    let id = machine.ghcache(&["daemon", "id"]).ok().out();
    let peer: PeerId = id
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("peer id {id:?}: {e}"));
    let claims = Claims::job(&world.github.issuer(), "o/a", &audience(&peer));
    let token = fake::mint(&claims, Signer::Issuer).unwrap_or_else(|e| panic!("mint: {e}"));
    let file: PathBuf = machine
        .cache_dir()
        .with_file_name(format!("{name}-oidc-token"));
    std::fs::write(&file, token).unwrap_or_else(|e| panic!("token file: {e}"));
    let token_arg = file.to_string_lossy().into_owned();
    let daemon = machine.daemon_on(
        key,
        Listen::Nowhere,
        &["--bootstrap", &seed.addr, "--oidc-token-file", &token_arg],
    );
    assert_eq!(
        daemon.peer_id,
        id.trim(),
        "the daemon has the id it was said to have"
    );
    let bound = wait_until(Duration::from_secs(30), || {
        seed.status().bound_producers.contains(&daemon.peer_id)
    });
    assert!(
        bound,
        "the keeper never took {name}'s token: {}",
        seed.log()
    );
    (machine, daemon)
}

#[test]
fn a_keeper_that_requires_tokens_keeps_a_job_s_answers_for_its_repository_only() {
    let world = World::new();
    let key = world.swarm_key("fleet");
    let issuer = world.github.issuer();
    let s = world.machine("seed");
    let seed = s.daemon(
        &key,
        &["--keep", "--require-oidc", "--oidc-issuer", &issuer],
    );
    let cached = std::fs::read_dir(s.cache_dir().join("p2p"))
        .map(|dir| {
            dir.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("oidc-jwks-"))
        })
        .unwrap_or(false);
    assert!(cached, "the fetched key set is cached in the cache dir");

    let (a, _da) = runner(&world, "a", &key, &seed, "actions:o/a");
    a.cached(&LIST).ok();
    // gh's command and the HTTP requests under it are answers of their own: every one is kept.
    let kept = wait_until(Duration::from_secs(30), || {
        let counters = seed.counters();
        counters.kept >= 1 && counters.kept == counters.announcements_received
    });
    assert!(kept, "o/a's answers were not kept: {}", seed.log());
    let kept_of_a = seed.counters().kept;

    // The same job's token, a runner whose commands produce for o/b: planted answers.
    let (b, _db) = runner(&world, "b", &key, &seed, "actions:o/b");
    b.cached(&LIST).ok();
    let refused = wait_until(Duration::from_secs(30), || seed.counters().unbound >= 1);
    assert!(
        refused,
        "o/b's planted answer was not refused: {}",
        seed.log()
    );
    let counters = seed.counters();
    assert_eq!(counters.kept, kept_of_a, "{counters:?}");
    assert!(counters.rejected >= 1, "{counters:?}");
    let text = s.ghcache(&["daemon", "status"]).ok().out();
    assert!(text.contains("bound producers  2"), "{text}");
    assert!(text.contains("unbound"), "{text}");
}

#[test]
fn requiring_tokens_without_a_reachable_issuer_or_key_set_says_what_to_give() {
    let world = World::new();
    let key = world.swarm_key("fleet");
    let s = world.machine("seed");
    let port = ghcache_tests::free_port().unwrap_or_else(|e| panic!("{e}"));
    let issuer = format!("http://127.0.0.1:{port}");
    let key_arg = key.to_string_lossy().into_owned();
    let run = s.ghcache(&[
        "daemon",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--swarm-key",
        &key_arg,
        "--keep",
        "--require-oidc",
        "--oidc-issuer",
        &issuer,
    ]);
    assert_ne!(run.code, 0);
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(stderr.contains("--oidc-jwks"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
