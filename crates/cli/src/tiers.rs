//! The tiers beyond this machine's records, wired once for every entry point: the command's own
//! lookup, the HTTP level of the gh it runs, a write's invalidation, `ghcache ipfs-store` and
//! `ghcache stats` all take them from here.
//!
//! This is the one module of the library where the tier features (`p2p`, `ipfs`) are looked at:
//! a build without a tier gets the same calls, which then find nothing to ask. Its rooms hold what
//! only a tier's build needs: the swarm key and this machine's identity (`keys`), the IPFS tier's
//! settings and messages (`ipfs`), the local store through the daemon (`daemon_store`), and the
//! p2p tier's node itself, `ghcache daemon` (`daemon`, with the OIDC key set it uses, `oidc`,
//! and the Prometheus endpoint it serves, `metrics`).
//!
//! ```text
//! local (records, index) -> p2p (this cache dir's daemon) -> ipfs (lookups only) -> GitHub
//! ```

#[cfg(feature = "p2p")]
pub mod daemon;
#[cfg(feature = "p2p")]
mod daemon_store;
#[cfg(feature = "p2p")]
mod follow;
#[cfg(feature = "ipfs")]
mod ipfs;
#[cfg(any(feature = "p2p", feature = "ipfs"))]
mod keys;
#[cfg(feature = "p2p")]
mod metrics;
#[cfg(feature = "p2p")]
mod oidc;
#[cfg(feature = "p2p")]
mod webhook;

use std::path::Path;
use std::sync::Arc;

use ghcache_core::layers::Budget;
use ghcache_core::{CacheKey, CacheTier, ChainConfig, Request, Selector, TierError};
use ghcache_tier_local as local;

use crate::config::Config;
use crate::error::Failure;

/// The p2p tier's name: its crate's, or, in a build without it, the name of the cargo feature
/// that would add it (`ghcache stats` reports the tier as not built under that name).
#[cfg(feature = "p2p")]
pub(crate) const P2P: &str = ghcache_tier_p2p::NAME;
/// The p2p tier's name: its crate's, or, in a build without it, the name of the cargo feature
/// that would add it (`ghcache stats` reports the tier as not built under that name).
#[cfg(not(feature = "p2p"))]
pub(crate) const P2P: &str = "p2p";
/// The IPFS tier's name, as [`P2P`].
#[cfg(feature = "ipfs")]
pub(crate) const IPFS: &str = ghcache_tier_ipfs::NAME;
/// The IPFS tier's name, as [`P2P`].
#[cfg(not(feature = "ipfs"))]
pub(crate) const IPFS: &str = "ipfs";

/// The names of ghcache's tiers, built into this binary or not, in the order a lookup asks them:
/// `ghcache stats` lists each, so that its lines are the same in every build.
pub(crate) const ALL: [&str; 3] = [local::NAME, P2P, IPFS];

/// Where the tiers tell the user something: the command's session. A port, so that the tiers do
/// not depend on how a command prints. Only IPFS has something to say so far.
#[cfg_attr(not(feature = "ipfs"), allow(dead_code))]
pub(crate) trait Notices {
    /// A `--debug` notice that is not about one request's answer.
    fn note(&self, line: &str);
    /// A `--debug` line about the request of key `key`.
    fn debug(&self, what: &str, key: &str);
}

/// What the remote tiers may wait in all, shared by a command's own lookup and its gh's
/// requests (DESIGN.md invariant 5).
#[derive(Clone)]
pub(crate) struct Budgets {
    #[cfg_attr(not(feature = "p2p"), allow(dead_code))]
    p2p: Arc<Budget>,
    #[cfg_attr(not(feature = "ipfs"), allow(dead_code))]
    ipfs: Arc<Budget>,
}

impl Budgets {
    /// Each remote tier's deadline, to be spent once per command.
    pub(crate) fn new(config: &Config) -> Budgets {
        Budgets {
            p2p: Budget::new(config.p2p.deadline.value),
            ipfs: Budget::new(config.ipfs.deadline.value),
        }
    }
}

/// The chain's settings for this configuration.
pub(crate) fn chain_config(config: &Config) -> ChainConfig {
    ChainConfig {
        clock_skew: config.clock_skew.value,
    }
}

/// The local tier's settings for this configuration.
pub(crate) fn local_config(dir: &Path, config: &Config) -> local::Config {
    let mut local_config = local::Config::new(dir);
    local_config.max_bytes = config.max_size.value;
    local_config.clock_skew = config.clock_skew.value;
    local_config
}

/// Checks the remote tiers' settings before a cached command runs, so that a bad one is one
/// clear line rather than a command that silently runs without the tier.
///
/// # Errors
/// The swarm is required (`GH_CACHE_P2P=1`) without a usable key; an IPFS setting is not usable.
#[cfg_attr(not(any(feature = "p2p", feature = "ipfs")), allow(unused_variables))]
pub(crate) fn check(config: &Config) -> Result<(), Failure> {
    #[cfg(feature = "p2p")]
    if config.p2p.enabled.value == Some(true) {
        keys::swarm_key(config)?;
    }
    #[cfg(feature = "ipfs")]
    ipfs::check(config)?;
    Ok(())
}

/// The tiers beyond this machine for one scope: the swarm (through the daemon) and IPFS.
#[derive(Default)]
pub(crate) struct Tiers {
    #[cfg(feature = "p2p")]
    peers: Option<Arc<ghcache_tier_p2p::Tier>>,
    #[cfg(feature = "ipfs")]
    ipfs: Option<Arc<ipfs::Lookups>>,
}

impl Tiers {
    /// The remote tiers of cache dir `dir` for requests of `scope`. The caller accepted `dir`
    /// (the local tier opened it): a refused dir refuses everything in it, its daemon's socket and
    /// the identity that signs IPFS marks too.
    ///
    /// The swarm costs one refused connect when no daemon runs, and nothing when p2p is switched
    /// off. The second value is the warning to give, once, when the daemon's socket is not one to
    /// talk to (another user's process listens on it, or its directory is not private): the
    /// command then goes on without the swarm.
    #[cfg_attr(
        not(any(feature = "p2p", feature = "ipfs")),
        allow(unused_variables, clippy::unused_async)
    )]
    pub(crate) async fn connect(
        config: &Config,
        dir: &Path,
        scope: &str,
    ) -> (Tiers, Option<String>) {
        Tiers::connect_about(config, dir, scope, None).await
    }

    /// As [`Tiers::connect`], for the lookups of one request, about `resource` of `repo`
    /// (`about`): IPFS then reads the mark of their last write beside the manifest (see
    /// `ghcache_tier_ipfs::Tier::about`).
    #[cfg_attr(not(feature = "ipfs"), allow(unused_variables))]
    #[cfg_attr(
        not(any(feature = "p2p", feature = "ipfs")),
        allow(clippy::unused_async)
    )]
    pub(crate) async fn connect_about(
        config: &Config,
        dir: &Path,
        scope: &str,
        about: Option<(&str, ghcache_core::policy::Resource)>,
    ) -> (Tiers, Option<String>) {
        #[cfg_attr(not(feature = "p2p"), allow(unused_mut))]
        let mut warning = None;
        #[cfg(feature = "p2p")]
        let peers = match p2p_client(config, dir, scope).await {
            Ok(peers) => peers,
            Err(refused) => {
                warning = Some(refused);
                None
            }
        };
        // The daemon knows which manifests (and CIDs) the swarm announced.
        #[cfg(all(feature = "ipfs", feature = "p2p"))]
        let directory = peers.clone().map(|daemon| {
            Arc::new(ipfs::Directory(daemon)) as Arc<dyn ghcache_tier_ipfs::ManifestSource>
        });
        #[cfg(all(feature = "ipfs", not(feature = "p2p")))]
        let directory = None;
        let tiers = Tiers {
            #[cfg(feature = "ipfs")]
            ipfs: ipfs::tier(config, dir, scope, directory, about).map(Arc::new),
            #[cfg(feature = "p2p")]
            peers,
        };
        (tiers, warning)
    }

    /// Whether a chain stores into this machine's cache through its daemon ([`Tiers::local_store`]):
    /// otherwise the command opens the index itself to store what it finds.
    pub(crate) fn stores_through_daemon(&self) -> bool {
        #[cfg(feature = "p2p")]
        let through = self.peers.is_some();
        #[cfg(not(feature = "p2p"))]
        let through = false;
        through
    }

    /// This machine's cache as a chain stores into it: through the daemon when one runs (its
    /// index is open already), else directly.
    pub(crate) fn local_store(&self, local: &Arc<local::LazyTier>) -> Arc<dyn CacheTier> {
        #[cfg(feature = "p2p")]
        if let Some(daemon) = &self.peers {
            return Arc::new(daemon_store::StoredByDaemon::new(
                local.clone(),
                daemon.clone(),
            ));
        }
        local.clone()
    }

    /// The remote tiers as a lookup asks them, nearest first, each within its deadline and what
    /// is left of the command's budget. IPFS is asked, never stored into while an answer waits:
    /// what GitHub answered is added afterwards (see [`Tiers::after_origin`]).
    #[cfg_attr(
        not(any(feature = "p2p", feature = "ipfs")),
        allow(unused_variables, unused_mut)
    )]
    pub(crate) fn lookups(&self, config: &Config, budgets: &Budgets) -> Vec<Arc<dyn CacheTier>> {
        let mut tiers = Vec::new();
        #[cfg(feature = "p2p")]
        if let Some(peers) = &self.peers {
            tiers.push(ghcache_core::layers::Deadline::budgeted(
                peers.clone() as Arc<dyn CacheTier>,
                config.p2p.deadline.value,
                budgets.p2p.clone(),
            ));
        }
        #[cfg(feature = "ipfs")]
        if let Some(ipfs) = &self.ipfs {
            tiers.push(ghcache_core::layers::LookupOnly::wrap(
                ghcache_core::layers::Deadline::budgeted(
                    ipfs.clone() as Arc<dyn CacheTier>,
                    config.ipfs.deadline.value,
                    budgets.ipfs.clone(),
                ),
            ));
        }
        tiers
    }

    /// Where the machine's peers are told what GitHub said of a rate-limit budget: the daemon,
    /// when one runs.
    pub(crate) fn budget_share(&self) -> Option<Arc<dyn ghcache_core::budget::BudgetShare>> {
        #[cfg(feature = "p2p")]
        if let Some(peers) = &self.peers {
            return Some(peers.clone() as Arc<dyn ghcache_core::budget::BudgetShare>);
        }
        None
    }

    /// Whether the IPFS tier is on: what GitHub answered is then added to it.
    pub(crate) fn adds_to_ipfs(&self) -> bool {
        #[cfg(feature = "ipfs")]
        let on = self.ipfs.is_some();
        #[cfg(not(feature = "ipfs"))]
        let on = false;
        on
    }

    /// Tells the swarm of a write, recorded here as issued at `at_ms`, then marks IPFS copies of
    /// the old answers out of date for everyone who reads them. `peers_failed` hears why the
    /// swarm could not be told.
    #[cfg_attr(not(all(feature = "p2p", feature = "ipfs")), allow(unused_variables))]
    #[cfg_attr(
        not(any(feature = "p2p", feature = "ipfs")),
        allow(clippy::unused_async)
    )]
    pub(crate) async fn invalidate(
        &self,
        selector: &Selector,
        at_ms: u64,
        config: &Config,
        peers_failed: impl FnOnce(TierError),
    ) {
        #[cfg(feature = "p2p")]
        if let Some(peers) = &self.peers {
            if let Err(err) = peers.invalidate_at(selector, at_ms).await {
                peers_failed(err);
            }
        }
        #[cfg(feature = "ipfs")]
        if let Some(ipfs) = &self.ipfs {
            ipfs.after_write(selector, config.ipfs.deadline.value).await;
        }
    }

    /// After a GitHub answer is printed: add it to IPFS, then announce the manifest that names
    /// its CID, so runners that start after this one is gone still find it. A detached
    /// `ghcache ipfs-store` does it, so that this process exits now (adding to a node takes tens
    /// of milliseconds); if it cannot be started, this process does it.
    #[cfg_attr(not(feature = "ipfs"), allow(unused_variables, clippy::unused_async))]
    pub(crate) async fn after_origin(
        &self,
        config: &Config,
        local: &dyn CacheTier,
        request: &Request,
        notices: &dyn Notices,
    ) {
        #[cfg(feature = "ipfs")]
        if let Some(ipfs) = &self.ipfs {
            if !ipfs.answered() {
                return;
            }
            match spawn_ipfs_store(config, &request.key, &request.input.scope) {
                Ok(()) => notices.debug("adding to ipfs in the background", &request.key.short()),
                Err(err) => {
                    notices.note(&format!(
                        "cannot start ghcache ipfs-store ({err}); adding now"
                    ));
                    self.store_in_ipfs(local, &request.key, config.ipfs.deadline.value, notices)
                        .await;
                }
            }
        }
    }

    /// `ghcache ipfs-store`'s work: adds the local entry of `key` to IPFS and announces it, then
    /// unpins a few entries that can no longer be served, so that the node does not grow
    /// forever (nobody waits for that process).
    #[cfg_attr(not(feature = "ipfs"), allow(unused_variables, clippy::unused_async))]
    pub(crate) async fn store_in_background(
        &self,
        config: &Config,
        local: &dyn CacheTier,
        key: &CacheKey,
        notices: &dyn Notices,
    ) {
        #[cfg(feature = "ipfs")]
        {
            self.store_in_ipfs(local, key, BACKGROUND_STORE_BUDGET, notices)
                .await;
            if let Some(ipfs) = &self.ipfs {
                ipfs.sweep(config.max_stale.value, BACKGROUND_STORE_BUDGET)
                    .await;
            }
        }
    }

    /// Adds the local entry of `key` to IPFS within `budget`, records its CID locally and hands
    /// the signed manifest to the daemon to announce.
    #[cfg(feature = "ipfs")]
    async fn store_in_ipfs(
        &self,
        local: &dyn CacheTier,
        key: &CacheKey,
        budget: std::time::Duration,
        notices: &dyn Notices,
    ) {
        use ghcache_core::Lookup;
        let Some(ipfs) = &self.ipfs else {
            return;
        };
        let Ok(Lookup::Hit(entry)) = local.get(key).await else {
            return;
        };
        let Some(manifest) = ipfs.store(&entry, budget).await else {
            return;
        };
        notices.note(&format!("added {} to ipfs", key.short()));
        let entry = ghcache_core::Entry {
            manifest,
            body: entry.body,
        };
        if let Err(err) = local.put(&entry).await {
            notices.note(&format!("could not record the IPFS CID locally: {err}"));
        }
        #[cfg(feature = "p2p")]
        if let Some(peers) = &self.peers {
            if let Err(err) = peers.put(&entry).await {
                notices.note(&format!("could not announce the IPFS CID: {err}"));
            }
        }
    }
}

/// Starts one detached `ghcache ipfs-store` for each of `fetched` (key and scope), for answers
/// that gh's HTTP level fetched from GitHub; stops at the first that cannot be started.
#[cfg_attr(not(feature = "ipfs"), allow(unused_variables))]
pub(crate) fn add_to_ipfs_later<'a>(
    config: &Config,
    fetched: impl IntoIterator<Item = &'a (CacheKey, String)>,
    notices: &dyn Notices,
) {
    #[cfg(feature = "ipfs")]
    for (key, scope) in fetched {
        if let Err(err) = spawn_ipfs_store(config, key, scope) {
            notices.note(&format!("cannot start ghcache ipfs-store: {err}"));
            break;
        }
    }
}

/// How long a background `ghcache ipfs-store` may take: nobody waits for it.
#[cfg(feature = "ipfs")]
const BACKGROUND_STORE_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// Starts `ghcache ipfs-store` for `key`, detached, with this process's effective settings.
#[cfg(feature = "ipfs")]
fn spawn_ipfs_store(config: &Config, key: &CacheKey, scope: &str) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt as _;
    use std::process::{Command, Stdio};
    let dir = config
        .cache_dir()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg("--cache-dir")
        .arg(dir)
        .args(["--ipfs", "--ipfs-api", &config.ipfs.api.value])
        .args(match config.ipfs.encrypt.value {
            Some(true) => &["--ipfs-encrypt"][..],
            Some(false) => &["--no-ipfs-encrypt"][..],
            None => &[][..],
        })
        .args(["ipfs-store", &key.to_hex(), "--scope", scope])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C meant for the next command does not cut it short.
        .process_group(0);
    command.spawn().map(|_| ())
}

/// The swarm, through the daemon of cache dir `dir`, which the caller accepted; `None` when no
/// daemon runs, or when p2p is switched off.
///
/// # Errors
/// The warning to give when the socket is not one to talk to.
#[cfg(feature = "p2p")]
async fn p2p_client(
    config: &Config,
    dir: &Path,
    scope: &str,
) -> Result<Option<Arc<ghcache_tier_p2p::Tier>>, String> {
    if config.p2p.enabled.value == Some(false) {
        return Ok(None);
    }
    let scope_id = ghcache_core::ScopeId::of(scope);
    match ghcache_tier_p2p::Tier::connect(dir, scope_id, config.p2p.deadline.value).await {
        Ok(tier) => Ok(tier.map(Arc::new)),
        Err(err) => Err(format!("{err}; answering without the swarm")),
    }
}

/// Whether `ghcache gh` uses a tier beyond this machine now, and what says so.
pub(crate) struct State {
    /// The tier's name ([`P2P`], [`IPFS`]).
    pub(crate) name: &'static str,
    enabled: bool,
    detail: String,
}

impl State {
    /// The `ghcache stats` line, after `label`.
    pub(crate) fn line(&self, label: &str) -> String {
        let word = if self.enabled { "enabled" } else { "disabled" };
        format!("{label}: {word} ({})", self.detail)
    }

    /// The `ghcache stats --json` object.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({ "enabled": self.enabled, "detail": self.detail })
    }
}

/// The state of the swarm and of IPFS, asked at once.
pub(crate) async fn states(config: &Config) -> (State, State) {
    tokio::join!(p2p_state(config), ipfs_state(config))
}

/// The swarm is used when p2p is not switched off and this cache dir's daemon answers.
#[cfg(feature = "p2p")]
async fn p2p_state(config: &Config) -> State {
    let off = |detail: String| State {
        name: P2P,
        enabled: false,
        detail,
    };
    if config.p2p.enabled.value == Some(false) {
        return off(format!("switched off: {}", config.p2p.enabled.source));
    }
    let Ok(dir) = config.cache_dir() else {
        return off("no cache dir".to_owned());
    };
    match ghcache_tier_p2p::status(dir).await {
        Ok(status) => {
            let peers = status.connected_peers.len();
            let mut detail = format!(
                "daemon running, {peers} peer{} connected",
                if peers == 1 { "" } else { "s" }
            );
            if status.keeper {
                detail.push_str(", keeper");
            }
            if status.read_only {
                detail.push_str(", read-only");
            }
            State {
                name: P2P,
                enabled: true,
                detail,
            }
        }
        Err(ghcache_tier_p2p::Error::NoDaemon { .. }) => {
            off("no daemon runs for this cache dir; start one: ghcache daemon".to_owned())
        }
        Err(e) => off(e.to_string()),
    }
}

#[cfg(not(feature = "p2p"))]
async fn p2p_state(_: &Config) -> State {
    State {
        name: P2P,
        enabled: false,
        detail: "this ghcache was built without the p2p tier".to_owned(),
    }
}

/// IPFS is used when it is switched on; a node that does not answer is named.
#[cfg(feature = "ipfs")]
async fn ipfs_state(config: &Config) -> State {
    if !config.ipfs.enabled.value {
        return State {
            name: IPFS,
            enabled: false,
            detail: "GH_CACHE_IPFS=1 turns it on".to_owned(),
        };
    }
    let url = ipfs::node_url(config);
    let detail = if let Err(Failure::Usage(line) | Failure::Runtime(line)) = ipfs::check(config) {
        format!("but unusable: {line}")
    } else if ipfs::uses_gateway(config) {
        format!("gateway {url}, lookups only")
    } else {
        let answer = match ghcache_tier_ipfs::Kubo::new(&url) {
            Ok(kubo) => tokio::time::timeout(IPFS_PROBE_TIMEOUT, kubo.id())
                .await
                .map_err(|_| format!("no answer within {IPFS_PROBE_TIMEOUT:?}"))
                .and_then(|id| id.map_err(|e| e.to_string())),
            Err(e) => Err(e.to_string()),
        };
        match answer {
            Ok(_) => format!("node {url}"),
            Err(reason) => format!("node {url}, which does not answer: {reason}"),
        }
    };
    State {
        name: IPFS,
        enabled: true,
        detail,
    }
}

/// How long `ghcache stats` waits for the IPFS node to say who it is.
#[cfg(feature = "ipfs")]
const IPFS_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(not(feature = "ipfs"))]
async fn ipfs_state(_: &Config) -> State {
    State {
        name: IPFS,
        enabled: false,
        detail: "this ghcache was built without the IPFS tier".to_owned(),
    }
}
