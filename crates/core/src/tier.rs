//! The tier port: [`CacheTier`], what every tier implements (the local store, the swarm, IPFS,
//! the chain itself), what a lookup finds ([`Lookup`]) and what an invalidation drops
//! ([`Selector`]).

use async_trait::async_trait;

use crate::entry::{Entry, Manifest};
use crate::error::TierError;
use crate::fence::Mark;
use crate::key::CacheKey;
use crate::policy::{Changes, Resource, Resources};

/// What a tier has for a key. A miss is a value, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
// One value per request, moved a couple of times: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Lookup {
    /// An entry whose body matched its digest. It may be stale: the caller judges freshness,
    /// because a stale entry is still useful for revalidation and stale-if-error.
    Hit(Entry),
    /// Nothing usable for this key.
    Miss,
}

/// Which entries to drop.
///
/// Every selector of a write also drops every entry of
/// [`Resource::Search`](crate::policy::Resource::Search), whatever its repository: searches, and
/// answers about no repository their request proves, span repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Every entry about this repository (`owner/name`, lowercase), in every scope.
    Repo(String),
    /// The entries about these resources of a repository and its entries of
    /// [`Resource::Other`](crate::policy::Resource::Other), in every scope: what a write whose
    /// effects are known can change.
    Resources {
        /// `owner/name`, lowercase.
        repo: String,
        /// What the write can change.
        resources: Resources,
    },
    /// One entry.
    Key(CacheKey),
    /// Everything.
    All,
}

impl Selector {
    /// What a write that can change `changes` of `repo` drops; everything when `repo` is
    /// empty (a write whose repository is not proven).
    pub fn of_write(repo: &str, changes: Changes) -> Selector {
        match changes {
            _ if repo.is_empty() => Selector::All,
            Changes::Repository => Selector::Repo(repo.to_owned()),
            Changes::Resources(resources) => Selector::Resources {
                repo: repo.to_owned(),
                resources,
            },
        }
    }

    /// Whether the entry that `manifest` describes is one this selector names. A write changes
    /// GitHub for everyone, so the scope does not matter.
    pub fn covers(&self, manifest: &Manifest) -> bool {
        match self {
            Selector::All => true,
            Selector::Key(key) => manifest.key == *key,
            Selector::Repo(repo) => manifest.resource == Resource::Search || manifest.repo == *repo,
            Selector::Resources { repo, resources } => {
                let resource = manifest.resource;
                resource == Resource::Search
                    || (manifest.repo == *repo
                        && (resources.contains(resource) || resource == Resource::Other))
            }
        }
    }
}

/// A place that holds cached entries: this machine's disk, the swarm, IPFS.
///
/// # Behavior
/// `get` returns only entries whose body matches the manifest's digest and size; anything else is
/// dropped and reported as [`TierError::Corrupt`] or a miss. `put` of an existing key replaces it.
///
/// # Errors
/// A tier that cannot be reached returns [`TierError::Unavailable`]; the chain records it and
/// falls through to the next tier.
#[async_trait]
pub trait CacheTier: Send + Sync {
    /// Short lowercase name used in stats and debug lines (`local`, `p2p`, `ipfs`).
    fn name(&self) -> &'static str;

    /// Looks up `key`.
    async fn get(&self, key: &CacheKey) -> Result<Lookup, TierError>;

    /// Stores `entry`, replacing any entry of the same key.
    async fn put(&self, entry: &Entry) -> Result<(), TierError>;

    /// Stores `entry`, which was fetched after the fence of its repository read `mark`.
    ///
    /// # Behavior
    /// A tier that keeps fences (the local tier) stores it only if the fence still reads `mark`,
    /// and serves it only while it does, so that an answer fetched before a write finished is
    /// never kept. Other tiers store it as [`CacheTier::put`] does.
    async fn put_fenced(&self, entry: &Entry, mark: Mark) -> Result<(), TierError> {
        let _ = mark;
        self.put(entry).await
    }

    /// Drops the entries `selector` names; returns how many. Tiers that cannot drop are no-ops.
    async fn invalidate(&self, selector: &Selector) -> Result<u64, TierError> {
        let _ = selector;
        Ok(0)
    }
}
