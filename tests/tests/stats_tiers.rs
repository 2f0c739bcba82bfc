//! `ghcache stats` says which tiers beyond this machine `ghcache gh` uses, and why one is off.

use ghcache_tests::World;

/// The first two lines of `ghcache stats`: the swarm's and IPFS's.
fn tier_lines(machine: &ghcache_tests::Machine) -> Vec<String> {
    let shown = machine.ghcache(&["stats"]).ok().out();
    shown.lines().take(2).map(str::to_owned).collect()
}

#[test]
fn stats_says_which_tiers_are_on_and_why_not() {
    let world = World::new();
    let mut machine = world.machine("a");
    assert_eq!(
        tier_lines(&machine),
        [
            "P2P: disabled (no daemon runs for this cache dir; start one: ghcache daemon)",
            "IPFS: disabled (GH_CACHE_IPFS=1 turns it on)",
        ]
    );

    let key = world.swarm_key("team");
    let daemon = machine.daemon(&key, &[]);
    assert_eq!(
        tier_lines(&machine)[0],
        "P2P: enabled (daemon running, 0 peers connected)"
    );
    let json = machine.stats();
    assert_eq!(json["tiers"]["p2p"]["enabled"], true, "{json}");
    machine.set_env("GH_CACHE_P2P", "0");
    assert_eq!(
        tier_lines(&machine)[0],
        "P2P: disabled (switched off: env GH_CACHE_P2P)"
    );
    drop(daemon);

    // A node that is not there: on, and named as not answering.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("free port: {e}"));
    let api = format!("http://127.0.0.1:{port}");
    machine.set_env("GH_CACHE_IPFS", "1");
    machine.set_env("GH_CACHE_IPFS_API", &api);
    let line = &tier_lines(&machine)[1];
    assert!(
        line.starts_with(&format!(
            "IPFS: enabled (node {api}, which does not answer: cannot reach the IPFS node"
        )),
        "{line}"
    );
    let json = machine.stats();
    assert_eq!(json["tiers"]["ipfs"]["enabled"], true, "{json}");

    // A gateway is used only where no API is configured.
    machine.set_env("GH_CACHE_IPFS_GATEWAY", "http://127.0.0.1:8080");
    let line = &tier_lines(&machine)[1];
    assert!(
        line.starts_with(&format!("IPFS: enabled (node {api}")),
        "{line}"
    );
    machine.unset_env("GH_CACHE_IPFS_API");
    assert_eq!(
        tier_lines(&machine)[1],
        "IPFS: enabled (gateway http://127.0.0.1:8080, lookups only)"
    );
    machine.set_env("GH_CACHE_IPFS_GATEWAY", "https://ipfs.io");
    assert_eq!(
        tier_lines(&machine)[1],
        "IPFS: enabled (but unusable: IPFS gateway address \"https://ipfs.io\" does not start \
         with http://; expected http://HOST:PORT, e.g. http://127.0.0.1:8080 \
         (env GH_CACHE_IPFS_GATEWAY))"
    );
}
