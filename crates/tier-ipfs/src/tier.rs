//! The `ipfs` tier: manifests from the swarm's directory or the node's MFS, bodies by CID from
//! the node's API or, where no API is configured, from an HTTP gateway.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ghcache_core::{
    now_ms, Body, CacheKey, CacheTier, Entry, Lookup, Manifest, ScopeId, Selector, TierError,
};

use crate::error::Error;
use crate::gateway::Gateway;
use crate::kubo::Kubo;
use crate::seal::{BodyKey, SEAL_OVERHEAD};

const NAME: &str = "ipfs";
/// Encoded manifests are a few hundred bytes; anything much larger is not one.
const MAX_MANIFEST: usize = 16 * 1024;
/// Default cap on an entry's body.
const DEFAULT_MAX_ENTRY: u64 = 16 * 1024 * 1024;
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

/// The IPFS tier of one scope.
pub struct Tier {
    node: Node,
    scope_id: ScopeId,
    seal: Option<BodyKey>,
    verify: Verify,
    sign: Sign,
    directory: Option<Arc<dyn ManifestSource>>,
    max_entry: u64,
}

impl std::fmt::Debug for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tier")
            .field("node", &self.node.url())
            .field("gateway", &matches!(self.node, Node::Gateway(_)))
            .field("sealed", &self.seal.is_some())
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
            verify,
            sign,
            directory: None,
            max_entry: DEFAULT_MAX_ENTRY,
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
            verify,
            sign: Arc::new(|_: &mut Manifest| Err("a gateway takes no additions".to_owned())),
            directory,
            max_entry: DEFAULT_MAX_ENTRY,
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

    /// Refuses entries whose body is larger than `bytes`.
    pub fn with_max_entry(mut self, bytes: u64) -> Tier {
        self.max_entry = bytes;
        self
    }

    /// Adds the entry's body (sealed, if configured) to the node, pinned; signs the manifest with
    /// its CID and writes it to the node's MFS. Returns the signed manifest.
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
        kubo.files_write(&mfs_path(&self.scope_id, &manifest.key), manifest.encode())
            .await
            .map_err(unavailable)?;
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
            .files_read(&path, MAX_MANIFEST, LOOKUP_TIMEOUT)
            .await
            .map_err(unavailable)?;
        match bytes {
            None => Ok(None),
            Some(bytes) => Manifest::decode(&bytes)
                .map(Some)
                .map_err(|e| corrupt(format!("manifest at {path}: {e}"))),
        }
    }

    /// Was `manifest`'s repository written to after the manifest was made, as far as the node's
    /// marks tell? (A gateway cannot read them: see [`Tier::with_gateway`].)
    async fn outdated(&self, manifest: &Manifest) -> Result<bool, TierError> {
        let Node::Api(kubo) = &self.node else {
            return Ok(false);
        };
        if manifest.repo.is_empty() {
            return Ok(false);
        }
        let path = tombstone_path(&self.scope_id, &manifest.repo);
        let mark = kubo
            .files_read(&path, 64, LOOKUP_TIMEOUT)
            .await
            .map_err(unavailable)?;
        let written_at = mark
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.trim().parse::<u64>().ok());
        Ok(written_at.is_some_and(|at| manifest.created_at_ms <= at))
    }

    /// Checks `manifest` and fetches, opens and checks its body; `None` if it is out of date.
    async fn entry_of(
        &self,
        key: &CacheKey,
        manifest: Manifest,
    ) -> Result<Option<Entry>, TierError> {
        if manifest.key != *key || manifest.scope_id != self.scope_id {
            return Err(corrupt("the manifest answers another key or scope".into()));
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
        // Both round trips are needed; the node answers them at once.
        let (outdated, body) = tokio::join!(
            self.outdated(&manifest),
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
                    match self.entry_of(key, manifest).await {
                        Ok(Some(entry)) => return Ok(Lookup::Hit(entry)),
                        // Out of date: so is the node's copy of the same answer.
                        Ok(None) => return Ok(Lookup::Miss),
                        // The CID may be gone; the node's own index may still know a good one.
                        Err(e) => first_error = Some(e),
                    }
                }
            }
        }
        let from_mfs = match self.mfs_manifest(key).await {
            Ok(Some(manifest)) => self.entry_of(key, manifest).await,
            Ok(None) => return first_error.map_or(Ok(Lookup::Miss), Err),
            Err(e) => Err(e),
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
                let path = tombstone_path(&self.scope_id, repo);
                kubo.files_write(&path, now_ms().to_string().into_bytes())
                    .await
            }
            Selector::Key(key) => kubo.files_rm(&mfs_path(&self.scope_id, key)).await,
            Selector::All => kubo.files_rm(&scope_dir(&self.scope_id)).await,
        };
        done.map(|()| 0).map_err(unavailable)
    }
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
