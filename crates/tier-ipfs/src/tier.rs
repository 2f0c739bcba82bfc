//! The `ipfs` tier: manifests from the swarm's directory or the node's MFS, bodies by CID from
//! the node's API or, where no API is configured, from an HTTP gateway.
//!
//! Who may have written what a lookup uses: anyone who reaches the node's API can write to its
//! MFS and add blocks, so a manifest found there is used only when a member of the swarm wrote
//! it (it opens with the scope's [`IndexKey`]) or its producer is one the verifier trusts; with
//! neither (no swarm key, no trust list), only this machine's own ([`Tier::only_own`]).
//!
//! What the node keeps: every body is added pinned; what can no longer be served (older than
//! its TTL and `max_stale`) or was replaced, dropped or evicted from the index is unpinned and
//! removed from MFS, a bounded number per [`Tier::sweep`], off the lookup path.

use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ghcache_core::policy::Resource;
use ghcache_core::producer::ProducerId;
use ghcache_core::{
    now_ms, Body, CacheKey, CacheTier, Entry, Lookup, Manifest, ScopeId, Selector, TierError,
    MAX_MANIFEST,
};

use crate::error::Error;
use crate::gateway::Gateway;
use crate::kubo::Kubo;
use crate::seal::{BodyKey, IndexKey, SEAL_OVERHEAD};

/// The IPFS tier's name in counters, debug lines and errors.
pub const NAME: &str = "ipfs";
/// Largest manifest file in MFS: the core's cap on a manifest, sealed.
const MAX_INDEX_FILE: usize = MAX_MANIFEST + SEAL_OVERHEAD;
/// Cap on an entry's body until the composition root gives the user's `max_entry_size`
/// ([`Tier::with_max_entry`]).
const DEFAULT_MAX_ENTRY: u64 = 16 * 1024 * 1024;
/// Largest MFS directory listing a sweep reads: about 100 bytes per name, so some 40,000
/// entries of one scope; a larger scope is swept through the names that fit.
const MAX_LISTING: usize = 4 << 20;
/// Where index directories dropped whole (after a write whose repository cannot be told) wait
/// for a sweep to unpin what they name.
const EVICTED_DIR: &str = "/ghcache-v1-evicted";
/// A lookup's own bound on each node call; the chain's deadline is usually shorter.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Where announced manifests can be found besides the node: the swarm's directory (a daemon
/// that heard the announcements). Implemented by the composition root.
#[async_trait]
pub trait ManifestSource: Send + Sync {
    /// The manifest announced for `key` in scope `scope_id`, if any.
    async fn manifest(&self, key: &CacheKey, scope_id: &ScopeId) -> Option<Manifest>;
}

/// Checks a manifest's signature and producer (the swarm's trust rules).
pub type Verify = Arc<dyn Fn(&Manifest) -> Result<(), String> + Send + Sync>;
/// Signs a manifest as this machine.
pub type Sign = Arc<dyn Fn(&mut Manifest) -> Result<(), String> + Send + Sync>;

/// Where the manifest of `key` in scope `scope_id` lives in the node's MFS.
pub fn mfs_path(scope_id: &ScopeId, key: &CacheKey) -> String {
    format!("{}/{}", scope_dir(scope_id), key.to_hex())
}

fn scope_dir(scope_id: &ScopeId) -> String {
    format!("/ghcache/v1/{}", scope_id.to_hex())
}

/// Where the time of the last write to `repo` is kept: entries about the repository made before
/// it are out of date. (Manifests are stored by key, so a write cannot find them by repository;
/// the lookup finds the mark instead.) Every lookup reads it, and a node resolves an MFS path one
/// directory at a time, so it sits one level under the root; clearing a scope keeps its marks,
/// as manifests of that scope may still be announced.
fn tombstone_path(scope_id: &ScopeId, repo: &str) -> String {
    let repo = blake3::hash(repo.as_bytes()).to_hex();
    format!("/ghcache-v1-marks/{}-{repo}", scope_id.to_hex())
}

/// Where the time of the last write to any repository is kept: every write drops every search
/// and every answer about no repository its request proves (`Resource::Search`).
fn searches_mark_path(scope_id: &ScopeId) -> String {
    format!("/ghcache-v1-marks/{}-searches", scope_id.to_hex())
}

/// The mark that dates the writes which make an entry about `resource` of `repo` out of date.
fn mark_of(scope_id: &ScopeId, repo: &str, resource: Resource) -> Option<String> {
    match resource {
        Resource::Search => Some(searches_mark_path(scope_id)),
        _ if repo.is_empty() => None,
        _ => Some(tombstone_path(scope_id, repo)),
    }
}

/// A mark read before the manifest it dates was known (see [`Tier::about`]): where it was
/// read, and what was found there.
struct EarlyMark {
    path: String,
    read: Result<Option<u64>, TierError>,
}

/// Where bodies are read from (and added to).
enum Node {
    /// A Kubo RPC API: bodies, additions, the MFS index of manifests and the marks of writes.
    Api(Kubo),
    /// An HTTP gateway: bodies by CID, nothing else.
    Gateway(Gateway),
}

impl Node {
    fn url(&self) -> &str {
        match self {
            Node::Api(kubo) => kubo.url(),
            Node::Gateway(gateway) => gateway.url(),
        }
    }

    async fn cat(&self, cid: &str, max_bytes: usize, timeout: Duration) -> Result<Vec<u8>, Error> {
        match self {
            Node::Api(kubo) => kubo.cat(cid, max_bytes, timeout).await,
            Node::Gateway(gateway) => gateway.cat(cid, max_bytes, timeout).await,
        }
    }
}

/// What one [`Tier::sweep`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Manifests read.
    pub visited: usize,
    /// Manifests removed from MFS (their bodies unpinned).
    pub removed: usize,
}

/// The IPFS tier of one scope.
pub struct Tier {
    node: Node,
    scope_id: ScopeId,
    seal: Option<BodyKey>,
    index: Option<IndexKey>,
    /// `Some`: only manifests this producer signed are used (`None` inside: no identity yet,
    /// so none are).
    own: Option<Option<ProducerId>>,
    /// Manifests of other producers passed over because of `own`.
    passed_over: AtomicU64,
    verify: Verify,
    sign: Sign,
    directory: Option<Arc<dyn ManifestSource>>,
    max_entry: u64,
    /// The repository and resource the lookups are about, if the caller said ([`Tier::about`]).
    about: Option<(String, Resource)>,
}

impl std::fmt::Debug for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tier")
            .field("node", &self.node.url())
            .field("gateway", &matches!(self.node, Node::Gateway(_)))
            .field("sealed", &self.seal.is_some())
            .field("index_sealed", &self.index.is_some())
            .field("only_own", &self.own.is_some())
            .finish_non_exhaustive()
    }
}

impl Tier {
    /// The tier for entries of `scope_id` on the node `kubo`. With `seal`, bodies are sealed
    /// before they are added and opened after they are read.
    pub fn new(
        kubo: Kubo,
        scope_id: ScopeId,
        seal: Option<BodyKey>,
        verify: Verify,
        sign: Sign,
    ) -> Tier {
        Tier {
            node: Node::Api(kubo),
            scope_id,
            seal,
            index: None,
            own: None,
            passed_over: AtomicU64::new(0),
            verify,
            sign,
            directory: None,
            max_entry: DEFAULT_MAX_ENTRY,
            about: None,
        }
    }

    /// The tier that reads bodies from `gateway`, for the manifests that `directory` (the
    /// swarm's) names, checked as [`Tier::new`]'s are.
    ///
    /// # Behavior
    /// A gateway has no MFS and takes no additions: lookups without a directory are misses,
    /// [`Tier::store`] fails with [`TierError::ReadOnly`], and [`CacheTier::invalidate`] has
    /// nothing to mark. Answers from before a write are kept out by the swarm (an invalidation
    /// drops the directory's manifests) and by this machine's own fence, as for every tier;
    /// the node's write marks cannot be read through a gateway.
    pub fn with_gateway(
        gateway: Gateway,
        scope_id: ScopeId,
        seal: Option<BodyKey>,
        verify: Verify,
        directory: Option<Arc<dyn ManifestSource>>,
    ) -> Tier {
        Tier {
            node: Node::Gateway(gateway),
            scope_id,
            seal,
            index: None,
            own: None,
            passed_over: AtomicU64::new(0),
            verify,
            sign: Arc::new(|_: &mut Manifest| Err("a gateway takes no additions".to_owned())),
            directory,
            max_entry: DEFAULT_MAX_ENTRY,
            about: None,
        }
    }

    /// Can answers be added here? Not through a gateway.
    pub fn can_store(&self) -> bool {
        matches!(self.node, Node::Api(_))
    }

    /// Also asks `directory` for manifests, before the node's MFS.
    pub fn with_directory(mut self, directory: Arc<dyn ManifestSource>) -> Tier {
        self.directory = Some(directory);
        self
    }

    /// Refuses entries whose body is larger than `bytes`: they are neither added nor taken from
    /// the node (the user's `max_entry_size`, as for every tier).
    pub fn with_max_entry(mut self, bytes: u64) -> Tier {
        self.max_entry = bytes;
        self
    }

    /// Seals the manifests written to the node's MFS with `key`, and uses only manifests there
    /// that open with it: a manifest planted by someone who reaches the node's API without the
    /// swarm key is refused, whatever key signed it.
    pub fn with_index_key(mut self, key: IndexKey) -> Tier {
        self.index = Some(key);
        self
    }

    /// Uses only the manifests that `own` (this machine) signed; `None`: this machine has no
    /// identity yet, so none. For a node shared without a swarm key or a list of trusted
    /// producers: anyone who reaches its API can write a manifest signed by a key of their own.
    /// Others' manifests are misses, counted ([`Tier::passed_over`]), not errors.
    pub fn only_own(mut self, own: Option<ProducerId>) -> Tier {
        self.own = Some(own);
        self
    }

    /// Says what the lookups are about: `resource` of `repo`, which every manifest that
    /// answers them names (the chain refuses one that names others). The node's mark of their
    /// last write is then read beside the manifest rather than beside the body: both are MFS
    /// reads, a node's slowest answers, and only the body (by CID, quicker) is left to follow
    /// the manifest. A manifest that names others is judged by its own mark, read then. A
    /// lookup that finds no manifest does not wait for the mark.
    pub fn about(mut self, repo: &str, resource: Resource) -> Tier {
        self.about = Some((repo.to_owned(), resource));
        self
    }

    /// How many manifests of other producers lookups passed over ([`Tier::only_own`]).
    pub fn passed_over(&self) -> u64 {
        self.passed_over.load(Ordering::Relaxed)
    }

    /// A manifest as it is written to MFS: sealed with the index key, if there is one.
    fn index_bytes(&self, manifest: &Manifest) -> Vec<u8> {
        match &self.index {
            Some(key) => key.seal(&manifest.encode()),
            None => manifest.encode(),
        }
    }

    /// Inverse of [`Tier::index_bytes`].
    fn index_manifest(&self, bytes: &[u8]) -> Result<Manifest, String> {
        let opened;
        let encoded = match &self.index {
            Some(key) => {
                opened = key.open(bytes).map_err(|e| {
                    format!("{e} (not written by a member of the swarm, or another swarm's)")
                })?;
                &opened[..]
            }
            None => bytes,
        };
        Manifest::decode(encoded).map_err(|e| e.to_string())
    }

    /// The manifest at `path` in MFS, if there is one that opens and decodes.
    async fn read_index(&self, kubo: &Kubo, path: &str) -> Option<Manifest> {
        let bytes = kubo
            .files_read(path, MAX_INDEX_FILE, LOOKUP_TIMEOUT)
            .await
            .ok()??;
        self.index_manifest(&bytes).ok()
    }

    /// Adds the entry's body (sealed, if configured) to the node, pinned; signs the manifest with
    /// its CID and writes it to the node's MFS (sealed with the index key, if configured),
    /// replacing the key's last one, whose body is unpinned if it was another. Returns the
    /// signed manifest.
    ///
    /// # Errors
    /// [`TierError::Unavailable`] when the node cannot be reached or fails;
    /// [`TierError::Corrupt`] when signing fails; [`TierError::ReadOnly`] for an entry over the
    /// size cap, which is not added, and with a gateway, which takes no additions.
    pub async fn store(&self, entry: &Entry) -> Result<Manifest, TierError> {
        let Node::Api(kubo) = &self.node else {
            return Err(TierError::ReadOnly { tier: NAME });
        };
        if entry.manifest.body_size > self.max_entry {
            // Lookups refuse it: adding it would only fill the node.
            return Err(TierError::ReadOnly { tier: NAME });
        }
        let encoded = entry.body.encode();
        let bytes = match &self.seal {
            Some(key) => key.seal(&encoded),
            None => encoded,
        };
        let cid = kubo.add(bytes).await.map_err(unavailable)?;
        let mut manifest = entry.manifest.clone();
        manifest.cid = Some(cid);
        manifest.producer = None;
        manifest.signature = None;
        (self.sign)(&mut manifest).map_err(|reason| TierError::Corrupt { tier: NAME, reason })?;
        let path = mfs_path(&self.scope_id, &manifest.key);
        let replaced = self.read_index(kubo, &path).await;
        kubo.files_write(&path, self.index_bytes(&manifest))
            .await
            .map_err(unavailable)?;
        if let Some(old) = replaced
            .and_then(|m| m.cid)
            .filter(|c| manifest.cid.as_ref() != Some(c))
        {
            // Nothing names it any more; if unpinning fails, the body only takes room.
            let _ = kubo.pin_rm(&old).await;
        }
        Ok(manifest)
    }

    /// The manifest for `key` from the node's MFS index, if it has one that decodes (a gateway
    /// has no index).
    async fn mfs_manifest(&self, key: &CacheKey) -> Result<Option<Manifest>, TierError> {
        let Node::Api(kubo) = &self.node else {
            return Ok(None);
        };
        let path = mfs_path(&self.scope_id, key);
        let bytes = kubo
            .files_read(&path, MAX_INDEX_FILE, LOOKUP_TIMEOUT)
            .await
            .map_err(unavailable)?;
        match bytes {
            None => Ok(None),
            Some(bytes) => self
                .index_manifest(&bytes)
                .map(Some)
                .map_err(|e| corrupt(format!("manifest at {path}: {e}"))),
        }
    }

    /// The manifest for `key` from the node's MFS index, with the mark of what the lookups are
    /// about ([`Tier::about`]) read at the same time; the mark only if a manifest was found.
    async fn mfs_lookup(
        &self,
        key: &CacheKey,
    ) -> (Result<Option<Manifest>, TierError>, Option<EarlyMark>) {
        let path = match (&self.node, &self.about) {
            (Node::Api(_), Some((repo, resource))) => mark_of(&self.scope_id, repo, *resource),
            _ => None,
        };
        let Some(path) = path else {
            return (self.mfs_manifest(key).await, None);
        };
        let (found, read) = {
            let manifest = self.mfs_manifest(key);
            let mark = self.written_at(&path);
            tokio::pin!(manifest, mark);
            let mut read = None;
            let found = loop {
                tokio::select! {
                    found = &mut manifest => break found,
                    at = &mut mark, if read.is_none() => read = Some(at),
                }
            };
            match (&found, read) {
                (Ok(Some(_)), Some(read)) => (found, Some(read)),
                (Ok(Some(_)), None) => (found, Some(mark.await)),
                // Nothing to date: a miss does not wait for the mark.
                _ => (found, None),
            }
        };
        (found, read.map(|read| EarlyMark { path, read }))
    }

    /// When the node's mark at `path` says the last write was; `None` without one (or a gateway).
    async fn written_at(&self, path: &str) -> Result<Option<u64>, TierError> {
        let Node::Api(kubo) = &self.node else {
            return Ok(None);
        };
        let mark = kubo
            .files_read(path, 64, LOOKUP_TIMEOUT)
            .await
            .map_err(unavailable)?;
        Ok(mark
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.trim().parse::<u64>().ok()))
    }

    /// Was `manifest`'s repository written to after the manifest was made, as far as the node's
    /// marks tell? `early`: a mark read already, used if it is this manifest's. (A gateway
    /// cannot read them: see [`Tier::with_gateway`].)
    async fn outdated(
        &self,
        manifest: &Manifest,
        early: Option<EarlyMark>,
    ) -> Result<bool, TierError> {
        if !matches!(self.node, Node::Api(_)) {
            return Ok(false);
        }
        let Some(path) = mark_of(&self.scope_id, &manifest.repo, manifest.resource) else {
            return Ok(false);
        };
        let written_at = match early {
            Some(early) if early.path == path => early.read?,
            _ => self.written_at(&path).await?,
        };
        Ok(written_at.is_some_and(|at| manifest.created_at_ms <= at))
    }

    /// Checks `manifest` and fetches, opens and checks its body; `None` if it is out of date.
    /// `early`: a mark read beside the manifest (see [`Tier::outdated`]).
    async fn entry_of(
        &self,
        key: &CacheKey,
        manifest: Manifest,
        early: Option<EarlyMark>,
    ) -> Result<Option<Entry>, TierError> {
        if manifest.key != *key || manifest.scope_id != self.scope_id {
            return Err(corrupt("the manifest answers another key or scope".into()));
        }
        if let Some(own) = &self.own {
            let producer = manifest.producer.as_deref();
            if own.as_ref().map(ProducerId::as_bytes) != producer || producer.is_none() {
                self.passed_over.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
        }
        (self.verify)(&manifest).map_err(corrupt)?;
        let Some(cid) = manifest.cid.clone() else {
            return Err(corrupt("the manifest names no CID".into()));
        };
        if manifest.body_size > self.max_entry {
            return Err(corrupt(format!(
                "the body is {} bytes, over the {} byte cap",
                manifest.body_size, self.max_entry
            )));
        }
        let overhead = if self.seal.is_some() {
            SEAL_OVERHEAD
        } else {
            0
        };
        let cap = usize::try_from(manifest.body_size)
            .unwrap_or(usize::MAX)
            .saturating_add(overhead);
        // Both round trips are needed (unless the mark was read already); the node answers
        // them at once.
        let (outdated, body) = tokio::join!(
            self.outdated(&manifest, early),
            self.node.cat(&cid, cap, LOOKUP_TIMEOUT)
        );
        if outdated? {
            return Ok(None);
        }
        let bytes = match body {
            Ok(bytes) => bytes,
            Err(Error::TooLarge { .. }) => {
                return Err(corrupt(format!("{cid} is larger than the manifest says")))
            }
            Err(e) => return Err(unavailable(e)),
        };
        let encoded = match &self.seal {
            Some(key) => key
                .open(&bytes)
                .map_err(|e| corrupt(format!("{cid}: {e}")))?,
            None => bytes,
        };
        let body = Body::decode(&encoded).map_err(|e| corrupt(format!("{cid}: {e}")))?;
        let entry = Entry { manifest, body };
        if !entry.verify_body() {
            return Err(corrupt(format!(
                "{cid} does not match the manifest's digest"
            )));
        }
        Ok(Some(entry))
    }
}

#[async_trait]
impl CacheTier for Tier {
    fn name(&self) -> &'static str {
        NAME
    }

    /// The manifest from the directory, else from MFS; then the body by its CID.
    ///
    /// # Errors
    /// [`TierError::Corrupt`] when a manifest or body fails a check (signature, scope, CID,
    /// digest, size); [`TierError::Unavailable`] when the node cannot be reached.
    async fn get(&self, key: &CacheKey) -> Result<Lookup, TierError> {
        let mut first_error = None;
        if let Some(directory) = &self.directory {
            if let Some(manifest) = directory.manifest(key, &self.scope_id).await {
                if manifest.cid.is_some() {
                    match self.entry_of(key, manifest, None).await {
                        Ok(Some(entry)) => return Ok(Lookup::Hit(entry)),
                        // Out of date: so is the node's copy of the same answer.
                        Ok(None) => return Ok(Lookup::Miss),
                        // The CID may be gone; the node's own index may still know a good one.
                        Err(e) => first_error = Some(e),
                    }
                }
            }
        }
        let from_mfs = match self.mfs_lookup(key).await {
            (Ok(Some(manifest)), early) => self.entry_of(key, manifest, early).await,
            (Ok(None), _) => return first_error.map_or(Ok(Lookup::Miss), Err),
            (Err(e), _) => Err(e),
        };
        match (from_mfs, first_error) {
            (Ok(Some(entry)), _) => Ok(Lookup::Hit(entry)),
            (Ok(None), _) => Ok(Lookup::Miss),
            (Err(_), Some(first)) => Err(first),
            (Err(e), None) => Err(e),
        }
    }

    /// Same as [`Tier::store`], without the manifest.
    async fn put(&self, entry: &Entry) -> Result<(), TierError> {
        self.store(entry).await.map(|_| ())
    }

    /// After a write: marks the repository's entries out of date (every machine that reads the
    /// node checks the mark), or drops one entry's manifest, or the whole scope's.
    async fn invalidate(&self, selector: &Selector) -> Result<u64, TierError> {
        let Node::Api(kubo) = &self.node else {
            return Ok(0);
        };
        let done = match selector {
            // The mark is per repository: a write of known effects marks it whole, which only
            // costs fetches.
            Selector::Repo(repo) | Selector::Resources { repo, .. } => {
                let at = now_ms().to_string().into_bytes();
                let searches = searches_mark_path(&self.scope_id);
                match kubo.files_write(&searches, at.clone()).await {
                    Ok(()) => {
                        let path = tombstone_path(&self.scope_id, repo);
                        kubo.files_write(&path, at).await
                    }
                    err => err,
                }
            }
            Selector::Key(key) => {
                let path = mfs_path(&self.scope_id, key);
                let dropped = self.read_index(kubo, &path).await;
                let done = kubo.files_rm(&path).await;
                if let (Ok(()), Some(cid)) = (&done, dropped.and_then(|m| m.cid)) {
                    let _ = kubo.pin_rm(&cid).await;
                }
                done
            }
            // One move, however many entries the scope has: a later sweep unpins their bodies.
            Selector::All => self.evict_scope(kubo).await,
        };
        done.map(|()| 0).map_err(unavailable)
    }
}

impl Tier {
    /// Moves the scope's whole index aside ([`EVICTED_DIR`]) for sweeps to unpin.
    async fn evict_scope(&self, kubo: &Kubo) -> Result<(), Error> {
        kubo.files_mkdir(EVICTED_DIR).await?;
        let aside = format!("{EVICTED_DIR}/{}-{}", self.scope_id.to_hex(), now_ms());
        match kubo.files_mv(&scope_dir(&self.scope_id), &aside).await {
            Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Unpins and removes from MFS, reading at most `limit` manifests, what the scope's index
    /// no longer serves: what was evicted from it whole (after a write whose repository could
    /// not be told), then, from a random place in the index on, entries that can no longer be
    /// served even stale (older than their TTL and `max_stale`, by the producer's clock) and
    /// manifests that do not open or decode. Bounded so that the command or daemon that runs it
    /// pays a known cost; repeated runs cover the whole index.
    ///
    /// # Behavior
    /// A body is not unpinned while the index's manifest of the same key names it (the answer
    /// was fetched again and came out the same). Two keys whose answers are byte for byte the
    /// same share a body; once one of them is swept, the other's body may be collected by the
    /// node, and that entry is then a miss until it is stored again.
    ///
    /// # Errors
    /// [`TierError::ReadOnly`] through a gateway; [`TierError::Unavailable`] when the node
    /// cannot be reached or fails.
    pub async fn sweep(&self, limit: usize, max_stale: Duration) -> Result<Swept, TierError> {
        let Node::Api(kubo) = &self.node else {
            return Err(TierError::ReadOnly { tier: NAME });
        };
        let mut swept = Swept::default();
        self.sweep_evicted(kubo, limit, &mut swept)
            .await
            .map_err(unavailable)?;
        let dir = scope_dir(&self.scope_id);
        let names = kubo
            .files_ls(&dir, MAX_LISTING)
            .await
            .map_err(unavailable)?;
        if names.is_empty() || swept.visited >= limit {
            return Ok(swept);
        }
        let start = random_index(names.len());
        let now = now_ms();
        let stale_ms = u64::try_from(max_stale.as_millis()).unwrap_or(u64::MAX);
        for name in names.iter().cycle().skip(start).take(names.len()) {
            if swept.visited >= limit {
                break;
            }
            swept.visited += 1;
            let path = format!("{dir}/{name}");
            let bytes = match kubo.files_read(&path, MAX_INDEX_FILE, LOOKUP_TIMEOUT).await {
                Ok(Some(bytes)) => Some(bytes),
                Ok(None) => continue,
                // Too large to be a manifest: not one.
                Err(Error::TooLarge { .. }) => None,
                Err(e) => return Err(unavailable(e)),
            };
            let manifest = bytes.and_then(|bytes| self.index_manifest(&bytes).ok());
            let dead = manifest.as_ref().is_none_or(|m| {
                let servable_until = m
                    .created_at_ms
                    .saturating_add(m.ttl_ms)
                    .saturating_add(stale_ms);
                now > servable_until
            });
            if !dead {
                continue;
            }
            kubo.files_rm(&path).await.map_err(unavailable)?;
            swept.removed += 1;
            if let Some(cid) = manifest.and_then(|m| m.cid) {
                kubo.pin_rm(&cid).await.map_err(unavailable)?;
            }
        }
        Ok(swept)
    }

    /// The part of [`Tier::sweep`] that empties this scope's evicted indexes.
    async fn sweep_evicted(
        &self,
        kubo: &Kubo,
        limit: usize,
        swept: &mut Swept,
    ) -> Result<(), Error> {
        let prefix = format!("{}-", self.scope_id.to_hex());
        let evicted = kubo.files_ls(EVICTED_DIR, MAX_LISTING).await?;
        for aside in evicted.iter().filter(|name| name.starts_with(&prefix)) {
            let dir = format!("{EVICTED_DIR}/{aside}");
            let names = kubo.files_ls(&dir, MAX_LISTING).await?;
            for name in &names {
                if swept.visited >= limit {
                    return Ok(());
                }
                swept.visited += 1;
                let path = format!("{dir}/{name}");
                let dropped = self.read_index(kubo, &path).await;
                kubo.files_rm(&path).await?;
                swept.removed += 1;
                let Some(manifest) = dropped else { continue };
                let Some(cid) = manifest.cid else { continue };
                let live = self
                    .read_index(kubo, &mfs_path(&self.scope_id, &manifest.key))
                    .await;
                if live.and_then(|m| m.cid).as_ref() != Some(&cid) {
                    kubo.pin_rm(&cid).await?;
                }
            }
            kubo.files_rm(&dir).await?;
        }
        Ok(())
    }
}

/// A random index below `len` (> 0): where a sweep starts, so that runs that each read a part
/// of a large index cover all of it.
fn random_index(len: usize) -> usize {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(now_ms());
    usize::try_from(hasher.finish() % len.max(1) as u64).unwrap_or(0)
}

fn unavailable(e: Error) -> TierError {
    TierError::Unavailable {
        tier: NAME,
        reason: e.to_string(),
    }
}

fn corrupt(reason: String) -> TierError {
    TierError::Corrupt { tier: NAME, reason }
}
