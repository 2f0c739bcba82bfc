//! What a daemon is told when it starts: its swarm, its identity, where it listens, what it
//! does for the swarm (read-only, keeper) and whom it takes entries from.
//!
//! One `#[non_exhaustive]` struct with public fields: the composition crate fills it from the
//! settings and flags, and tests adjust it field by field. What the fields allow together is
//! decided in one place, [`crate::role`], when the daemon starts.

use std::sync::Arc;
use std::time::Duration;

use ghcache_core::budget::BookStore;
use ghcache_core::producer::Identity;
use ghcache_core::{CacheKey, ScopeId};
use libp2p::{Multiaddr, PeerId};

use crate::swarm_key::SwarmKey;

/// How a p2p daemon joins and behaves in the swarm.
///
/// Built with [`Config::new`], then adjusted field by field.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The private swarm's pre-shared key: only holders can connect.
    pub swarm_key: SwarmKey,
    /// The node's identity: its peer id, and the key that signs the manifests it produces.
    /// A new one by default; the `ghcache` binary gives the one kept in the cache dir, so that
    /// the node keeps its peer id across restarts.
    pub identity: Identity,
    /// Addresses to listen on. Default `/ip4/0.0.0.0/tcp/4001`. Empty: listen nowhere and only
    /// dial out, as a runner behind NAT that nobody can dial; the DHT then runs in client mode,
    /// so that no peer's query waits on a dial to this node.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start, as `/ip4/.../tcp/N/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Find peers on the local network with mDNS. Default on.
    pub mdns: bool,
    /// Consume only: never serve, announce, provide or invalidate (for untrusted CI runners).
    pub read_only: bool,
    /// Be a keeper: fetch, check, store, provide and serve every entry announced on the scopes
    /// that connected peers subscribe to (bounded; the store's own size cap evicts least
    /// recently used entries). For a long-lived peer that runners dial, usually the seed.
    /// Excludes `read_only`.
    pub keep: bool,
    /// Scopes followed from the start: the scope that this machine's CLI uses, so the daemon
    /// hears its announcements and asks peers for its directory before the first lookup.
    pub scopes: Vec<ScopeId>,
    /// If not empty, the only producers whose entries and invalidations are accepted.
    pub trusted_peers: Vec<PeerId>,
    /// How far a producer's clock may run ahead of ours (`ghcache_core::CLOCK_SKEW` by
    /// default): entries dated further ahead are refused, and entries made less than this after
    /// an invalidation are not used.
    pub clock_skew: Duration,
    /// How long one fetch request to a peer may take before it is abandoned.
    pub fetch_timeout: Duration,
    /// Keys already in the local store when the daemon starts: provided in the DHT again, so
    /// that peers find them after a restart (announcements only happen when an entry arrives).
    pub held: Vec<CacheKey>,
    /// Where the daemon's Prometheus metrics are served, if they are (the server runs beside
    /// the node, in the CLI): reported by `status`, so that a port chosen by the system (`:0`)
    /// can be found.
    pub metrics: Option<std::net::SocketAddr>,
    /// A file holding this job's GitHub Actions OIDC token, whose audience is
    /// `ghcache:<this node's peer id>`: presented to each peer on connecting, so that peers take
    /// this node's entries for the scopes its repository allows. Read at each connection, so
    /// that a refreshed token is presented to peers met later.
    pub oidc_token_file: Option<std::path::PathBuf>,
    /// The scope names presented with the token: the scopes this node produces for.
    pub produces_for: Vec<String>,
    /// Checks the tokens peers present. Without one, presentations are answered as refused and
    /// peers are taken as before.
    pub oidc: Option<crate::oidc::Verifier>,
    /// Take entries only from producers bound to their scope by a verified token, or named in
    /// `trusted_peers` (for keepers). Needs `oidc`.
    pub require_oidc: bool,
    /// Where the repositories the swarm asked about lately are noted (what this machine and
    /// the peers of its scopes fetched, and what a keeper kept), for a follow source to watch.
    pub recent_repos: Option<std::sync::Arc<crate::repos::RecentRepos>>,
    /// The heard TTLs this machine's commands apply (ms, by TTL class name), for `status` to
    /// tell: the daemon tells the commands which writes it hears, they apply their own TTLs.
    pub heard_ttl_ms: std::collections::BTreeMap<String, u64>,
    /// The machine's rate-limit book (the one its commands keep in the cache dir): what a
    /// command or a peer tells of GitHub's rate-limit budget is merged into it, so that every
    /// gh run of the machine waits out a pause a peer met. `None`: news is passed on to peers
    /// but kept nowhere here.
    pub book: Option<Arc<dyn BookStore>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Every field named, so that a new one is not forgotten here.
        let Config {
            swarm_key,
            identity,
            listen,
            bootstrap,
            mdns,
            read_only,
            keep,
            scopes,
            trusted_peers,
            clock_skew,
            fetch_timeout,
            held,
            metrics,
            oidc_token_file,
            produces_for,
            oidc,
            require_oidc,
            recent_repos,
            heard_ttl_ms,
            book,
        } = self;
        f.debug_struct("Config")
            .field("swarm_key", swarm_key)
            .field("identity", identity)
            .field("listen", listen)
            .field("bootstrap", bootstrap)
            .field("mdns", mdns)
            .field("read_only", read_only)
            .field("keep", keep)
            .field("scopes", scopes)
            .field("trusted_peers", trusted_peers)
            .field("clock_skew", clock_skew)
            .field("fetch_timeout", fetch_timeout)
            .field("held", held)
            .field("metrics", metrics)
            .field("oidc_token_file", oidc_token_file)
            .field("produces_for", produces_for)
            .field("oidc", oidc)
            .field("require_oidc", require_oidc)
            .field("recent_repos", recent_repos)
            .field("heard_ttl_ms", heard_ttl_ms)
            // A book is a file or a test's memory: whether there is one is what tells.
            .field("book", &book.as_ref().map(|_| "BookStore"))
            .finish()
    }
}

impl Config {
    /// Defaults for a swarm with this key, and a new identity.
    pub fn new(swarm_key: SwarmKey) -> Self {
        let mut secret = [0u8; 32];
        // A failing system random source leaves the identity derived from the swarm key's hash
        // and the time: still unique enough for a test, and the binary always sets its own.
        if getrandom::fill(&mut secret).is_err() {
            let seed = format!("{:?}", std::time::SystemTime::now());
            secret = blake3::keyed_hash(swarm_key.as_bytes(), seed.as_bytes()).into();
        }
        let listen = "/ip4/0.0.0.0/tcp/4001"
            .parse()
            .map(|a| vec![a])
            .unwrap_or_default();
        Config {
            swarm_key,
            identity: Identity::from_secret(&secret),
            listen,
            bootstrap: Vec::new(),
            mdns: true,
            read_only: false,
            keep: false,
            scopes: Vec::new(),
            trusted_peers: Vec::new(),
            clock_skew: ghcache_core::CLOCK_SKEW,
            fetch_timeout: Duration::from_secs(5),
            held: Vec::new(),
            metrics: None,
            oidc_token_file: None,
            produces_for: Vec::new(),
            oidc: None,
            require_oidc: false,
            recent_repos: None,
            heard_ttl_ms: std::collections::BTreeMap::new(),
            book: None,
        }
    }
}
