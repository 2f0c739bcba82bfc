//! The IPFS tier's wiring: which node (its API, or a gateway where no API is configured), which
//! body and index keys, who signs, whose entries are used, where announced manifests are found,
//! and when the user hears that the node is down or that others' entries are passed over.
//!
//! Whose entries are used (DESIGN.md, invariant 8): anyone who reaches the node's API can write
//! to it. With the swarm key, the index's manifests are sealed with a key derived from it, so
//! only members write ones that are used; with a list of trusted producers, only theirs (and
//! this machine's) are used; with neither, only this machine's own.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ghcache_core::{CacheKey, CacheTier, Entry, Lookup, Manifest, ScopeId, TierError};
use ghcache_tier_ipfs as ipfs;

use crate::config::Config;
use crate::error::Failure;

/// Marker file holding the address of a node found unreachable, once the user was told: quiet
/// about that node until it answers again.
const UNREACHABLE_MARKER: &str = "ipfs-unreachable";
/// Marker file: the user was told that others' entries in IPFS are not used without a swarm key
/// or trusted producers; later passes are debug notices.
const OWN_ONLY_MARKER: &str = "ipfs-own-only";
/// What the user is told, once per cache dir, the first time an entry another machine added to
/// the node is passed over.
const OWN_ONLY_WARNING: &str = "an answer another machine added to IPFS was not used: without \
a swarm key (GH_CACHE_SWARM_KEY_FILE) or trusted producers (`[p2p] trusted_peers`) only this \
machine's own entries are used, as anyone who reaches the node's API could have written it";
/// Most index entries one `ghcache ipfs-store` sweeps (reads; each removal is two more calls):
/// a few tens of milliseconds in a process that nobody waits for.
pub const SWEEP_LIMIT: usize = 32;

/// The IPFS tier of one request, as the chain sees it: lookups, and whether the node answered.
pub struct Lookups {
    inner: Arc<ipfs::Tier>,
    marker: PathBuf,
    /// The node's address: the marker names it, so another node is reported afresh.
    api: String,
    /// `config.debug`: the one switch every debug notice obeys.
    debug: bool,
    /// Where the user, once told that others' entries are not used, is remembered as told.
    own_only_marker: PathBuf,
    /// The node answered the lookup (hit or miss): storing there is worth a try.
    answered: AtomicBool,
}

impl Lookups {
    /// Did the node answer this process's lookup, and does it take additions? Storing there is
    /// only worth a try if it did: a dead node then costs one refused connection per command,
    /// not two. A gateway takes none.
    pub fn answered(&self) -> bool {
        self.inner.can_store() && self.answered.load(Ordering::Relaxed)
    }

    /// Adds the entry's body to IPFS and its manifest to the node's index, within `budget`;
    /// returns the manifest with its CID, signed.
    pub async fn store(&self, entry: &Entry, budget: Duration) -> Option<Manifest> {
        if entry.manifest.cid.is_some() {
            return None;
        }
        match tokio::time::timeout(budget, self.inner.store(entry)).await {
            Ok(Ok(manifest)) => Some(manifest),
            Ok(Err(err)) => {
                self.failed(&err);
                None
            }
            Err(_) => {
                self.note(&format!(
                    "adding to IPFS took longer than {}ms; not stored there",
                    budget.as_millis()
                ));
                None
            }
        }
    }

    /// Unpins and removes from the node's index, within `budget`, at most [`SWEEP_LIMIT`]
    /// entries that can no longer be served (see [`ipfs::Tier::sweep`]).
    pub async fn sweep(&self, max_stale: Duration, budget: Duration) {
        match tokio::time::timeout(budget, self.inner.sweep(SWEEP_LIMIT, max_stale)).await {
            Ok(Ok(swept)) => self.note(&format!(
                "ipfs sweep: read {} index entries, unpinned and removed {}",
                swept.visited, swept.removed
            )),
            Ok(Err(err)) => self.note(&format!("ipfs sweep: {err}")),
            Err(_) => self.note(&format!(
                "ipfs sweep: not done within {}ms",
                budget.as_millis()
            )),
        }
    }

    /// Tells the user, once per cache dir, that an entry of another producer was passed over.
    fn passed_over(&self) {
        if self.own_only_marker.exists() {
            self.note(OWN_ONLY_WARNING);
        } else {
            warn(OWN_ONLY_WARNING);
            let _ = std::fs::write(&self.own_only_marker, b"");
        }
    }

    /// Marks the answers `selector` names out of date in the node, within `deadline`: a write
    /// through ghcache must not be followed by an old answer from IPFS.
    pub async fn after_write(&self, selector: &ghcache_core::Selector, deadline: Duration) {
        match tokio::time::timeout(deadline, self.inner.invalidate(selector)).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => self.failed(&err),
            Err(_) => self.note(&format!(
                "IPFS did not take the write's invalidation within {}ms",
                deadline.as_millis()
            )),
        }
    }

    /// A debug notice, under the configuration's one debug switch (`GH_CACHE_DEBUG=1`,
    /// `--debug`, the file's `debug`).
    fn note(&self, line: &str) {
        use std::io::Write as _;
        if self.debug {
            let _ = writeln!(std::io::stderr(), "ghcache: {line}");
        }
    }

    fn failed(&self, err: &TierError) {
        let line = match err {
            // A bad entry is counted by the chain and warned about by the caller.
            TierError::Corrupt { .. } => return,
            // An entry over the size cap is not added; nothing is wrong with the node.
            TierError::ReadOnly { .. } => return,
            TierError::Unavailable { reason, .. } => format!("{reason} (answering without IPFS)"),
            other => format!("{other} (answering without IPFS)"),
        };
        let told = std::fs::read_to_string(&self.marker).is_ok_and(|api| api == self.api);
        if told {
            self.note(&line);
        } else {
            warn(&line);
            let _ = std::fs::write(&self.marker, &self.api);
        }
    }
}

#[async_trait]
impl CacheTier for Lookups {
    fn name(&self) -> &'static str {
        ipfs::NAME
    }

    async fn get(&self, key: &CacheKey) -> Result<Lookup, TierError> {
        let passed_over = self.inner.passed_over();
        let result = self.inner.get(key).await;
        if self.inner.passed_over() > passed_over {
            self.passed_over();
        }
        match &result {
            Ok(_) | Err(TierError::Corrupt { .. }) => {
                self.answered.store(true, Ordering::Relaxed);
                if self.marker.exists() {
                    let _ = std::fs::remove_file(&self.marker);
                    self.note("IPFS node reachable again");
                }
            }
            Err(err) => self.failed(err),
        }
        result
    }

    async fn put(&self, entry: &Entry) -> Result<(), TierError> {
        self.inner.put(entry).await
    }

    async fn invalidate(&self, selector: &ghcache_core::Selector) -> Result<u64, TierError> {
        self.inner.invalidate(selector).await
    }
}

/// The swarm's directory of announced manifests, through this cache dir's daemon.
#[cfg(feature = "p2p")]
pub struct Directory(pub Arc<ghcache_tier_p2p::Tier>);

#[cfg(feature = "p2p")]
#[async_trait]
impl ipfs::ManifestSource for Directory {
    async fn manifest(&self, key: &CacheKey, _scope_id: &ScopeId) -> Option<Manifest> {
        self.0.announced_manifest(key).await
    }
}

/// Checks the IPFS settings before anything runs, so a bad one is one clear line.
///
/// # Errors
/// A URL that is not `http://host:port`, encryption asked for without a swarm key, a bad
/// trusted peer id.
pub fn check(config: &Config) -> Result<(), Failure> {
    if !config.ipfs.enabled.value {
        return Ok(());
    }
    settings(config).map(|_| ())
}

/// Where bodies come from.
enum Node {
    Api(ipfs::Kubo),
    Gateway(ipfs::Gateway),
}

impl Node {
    fn url(&self) -> &str {
        match self {
            Node::Api(kubo) => kubo.url(),
            Node::Gateway(gateway) => gateway.url(),
        }
    }
}

struct Settings {
    node: Node,
    /// The swarm key, if one is configured: it seals the index's manifests.
    psk: Option<[u8; 32]>,
    /// Bodies are sealed (with a key derived from `psk`).
    encrypt: bool,
    trusted: Vec<ghcache_core::producer::ProducerId>,
}

fn settings(config: &Config) -> Result<Settings, Failure> {
    let ipfs = &config.ipfs;
    let node = match &ipfs.gateway.value {
        Some(gateway) if uses_gateway(config) => ipfs::Gateway::new(gateway)
            .map(Node::Gateway)
            .map_err(|e| Failure::Usage(format!("{e} ({})", ipfs.gateway.source)))?,
        _ => ipfs::Kubo::new(&ipfs.api.value)
            .map(Node::Api)
            .map_err(|e| Failure::Usage(format!("{e} ({})", ipfs.api.source)))?,
    };
    let key = match config.p2p.swarm_key.value {
        Some(_) => Some(super::keys::swarm_key(config)?),
        None => None,
    };
    let psk = key.map(|key| *key.as_bytes());
    let encrypt = ipfs.encrypt.value.unwrap_or(psk.is_some());
    if encrypt && psk.is_none() {
        return Err(Failure::Usage(
            "--ipfs-encrypt derives its key from the swarm key: set GH_CACHE_SWARM_KEY or \
             --swarm-key (make one with `ghcache swarm-key new`), or pass --no-ipfs-encrypt"
                .to_owned(),
        ));
    }
    Ok(Settings {
        node,
        psk,
        encrypt,
        trusted: super::keys::trusted_producers(config)?,
    })
}

/// Are bodies read from the gateway? Only when one is set and no API is: a configured node's API
/// also takes additions and knows the marks of writes.
pub fn uses_gateway(config: &Config) -> bool {
    config.ipfs.gateway.value.is_some() && config.ipfs.api.source == crate::config::Source::Default
}

/// Where lookups go: the API's or the gateway's address.
pub fn node_url(config: &Config) -> String {
    match (&config.ipfs.gateway.value, uses_gateway(config)) {
        (Some(gateway), true) => gateway.clone(),
        _ => config.ipfs.api.value.clone(),
    }
}

/// The IPFS tier for requests of `scope`, or `None` when it is switched off. `directory` is the
/// daemon, when one runs: it knows the manifests the swarm announced. `about`: the repository
/// and resource of the one request the lookups are for, if there is one.
pub fn tier(
    config: &Config,
    dir: &Path,
    scope: &str,
    directory: Option<Arc<dyn ipfs::ManifestSource>>,
    about: Option<(&str, ghcache_core::policy::Resource)>,
) -> Option<Lookups> {
    if !config.ipfs.enabled.value {
        return None;
    }
    // Checked before the request started (see `check`); a failure here is not expected.
    let settings = settings(config).ok()?;
    let scope_id = ScopeId::of(scope);
    let own = super::keys::own_id(dir);
    // Nobody else is trusted without a swarm key or a list: only this machine's entries.
    let only_own = settings.psk.is_none() && settings.trusted.is_empty();
    let mut trusted = settings.trusted;
    if !trusted.is_empty() {
        // This machine's own entries are as good as its disk.
        trusted.extend(own.clone());
    }
    let verify: ipfs::Verify = Arc::new(move |manifest: &Manifest| {
        ghcache_core::producer::verify(manifest, &trusted)
            .map(|_| ())
            .map_err(|r| r.to_string())
    });
    let identity_dir = dir.to_path_buf();
    let sign: ipfs::Sign = Arc::new(move |manifest: &mut Manifest| {
        // The daemon's identity: peers see one producer per machine.
        let identity = super::keys::identity(&identity_dir).map_err(|e| format!("{e:?}"))?;
        identity.sign(manifest);
        Ok(())
    });
    let seal = settings
        .psk
        .filter(|_| settings.encrypt)
        .map(|psk| ipfs::BodyKey::derive(&psk, &scope_id));
    let api = settings.node.url().to_owned();
    let mut tier = match settings.node {
        Node::Api(kubo) => {
            let tier = ipfs::Tier::new(kubo, scope_id, seal, verify, sign);
            match directory {
                Some(directory) => tier.with_directory(directory),
                None => tier,
            }
        }
        Node::Gateway(gateway) => {
            ipfs::Tier::with_gateway(gateway, scope_id, seal, verify, directory)
        }
    };
    if let Some(psk) = &settings.psk {
        tier = tier.with_index_key(ipfs::IndexKey::derive(psk, &scope_id));
    }
    if only_own {
        tier = tier.only_own(own);
    }
    if let Some((repo, resource)) = about {
        tier = tier.about(repo, resource);
    }
    let tier = tier.with_max_entry(config.largest_entry());
    Some(Lookups {
        inner: Arc::new(tier),
        marker: dir.join(UNREACHABLE_MARKER),
        api,
        debug: config.debug.value,
        own_only_marker: dir.join(OWN_ONLY_MARKER),
        answered: AtomicBool::new(false),
    })
}

fn warn(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "ghcache: warning: {line}");
}

#[cfg(test)]
mod tests;
