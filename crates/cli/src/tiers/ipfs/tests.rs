//! The IPFS lookups under the conformance suite, built as a command builds them: from the
//! settings a user gives (IPFS on, the node's API, a swarm key or none) and a cache dir, against
//! a real IPFS node. Run without and with a swarm key, which seals the bodies and the index.

use ghcache_core::swarm_key::SwarmKey;
use ghcache_core::testkit::{conformance, skip, Capabilities, Invalidation};
use ghcache_tests::ipfs::IpfsNode;

use crate::config::{Config, Flags};

/// The lookups of a cache dir of their own, for the suite's scope, with the settings of `vars`
/// and nothing from this machine's environment or config file.
fn lookups(cache: &std::path::Path, vars: &[(&str, String)]) -> super::Lookups {
    let mut vars = vars.to_vec();
    vars.push(("GH_CACHE_DIR", cache.display().to_string()));
    vars.push((
        "GH_CACHE_CONFIG",
        cache.join("no-config.toml").display().to_string(),
    ));
    let env = move |name: &str| {
        vars.iter()
            .find(|(var, _)| *var == name)
            .map(|(_, value)| value.clone())
    };
    let config =
        Config::load(&env, &Flags::default()).unwrap_or_else(|e| panic!("settings: {e:?}"));
    super::check(&config).unwrap_or_else(|e| panic!("IPFS settings: {e:?}"));
    // The lookups read this machine's identity once, when they are made (a lookup never writes
    // to the cache dir): here, as on any machine that stored before, there is one.
    super::super::keys::identity(cache).unwrap_or_else(|e| panic!("identity: {e:?}"));
    super::tier(&config, cache, "test-scope", None, None).unwrap_or_else(|| panic!("IPFS is on"))
}

#[tokio::test]
async fn the_ipfs_lookups_pass_the_conformance_suite_plain_and_sealed() {
    let node = match IpfsNode::try_start() {
        Ok(node) => node,
        Err(why) => {
            skip(&format!("the IPFS lookups need a real IPFS node: {why}"));
            return;
        }
    };
    // What the IPFS tier itself declares: it signs what it adds, and a write marks the
    // repository's entries out of date in the node without counting them.
    let capabilities = Capabilities {
        signs: true,
        invalidation: Invalidation::Marks,
        ..Capabilities::STORES
    };
    let on = vec![
        ("GH_CACHE_IPFS", "1".to_owned()),
        ("GH_CACHE_IPFS_API", node.api_url()),
    ];
    let mut sealed = on.clone();
    sealed.push((
        "GH_CACHE_SWARM_KEY",
        SwarmKey::from_bytes([9; 32]).to_string(),
    ));
    for vars in [on, sealed] {
        let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let tier = lookups(cache.path(), &vars);
        conformance(&tier, capabilities).await;
    }
}
