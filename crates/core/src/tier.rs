//! The tier port: [`CacheTier`], what every tier implements (the local store, the swarm, IPFS,
//! the chain itself), what a lookup finds ([`Lookup`]) and what an invalidation drops
//! ([`Selector`]).

use async_trait::async_trait;

use crate::entry::{Entry, Manifest};
use crate::error::TierError;
use crate::fence::Mark;
use crate::invalidation_id::InvalidationId;
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

    /// Whether dropping what this selector names drops at least what `other` names: a write's
    /// second invalidation that the first already made is not sent again (two invalidations of
    /// one write would make peers wait out the clock margin after the first, see
    /// [`crate::FenceState::admits`]).
    pub fn includes(&self, other: &Selector) -> bool {
        match (self, other) {
            (Selector::All, _) => true,
            (Selector::Repo(mine), Selector::Repo(theirs))
            | (Selector::Repo(mine), Selector::Resources { repo: theirs, .. }) => mine == theirs,
            (
                Selector::Resources {
                    repo: mine,
                    resources: ours,
                },
                Selector::Resources {
                    repo: theirs,
                    resources: their,
                },
            ) => mine == theirs && their.iter().all(|resource| ours.contains(resource)),
            (Selector::Key(mine), Selector::Key(theirs)) => mine == theirs,
            _ => false,
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

impl InvalidationId {
    /// The id of the invalidation of `selector` issued at `at_ms`; never 0 (which files use for
    /// "none"). One key, which has no fence of its own, counts as everything, as fences do.
    pub fn of(selector: &Selector, at_ms: u64) -> InvalidationId {
        let mut hasher = blake3::Hasher::new_derive_key("ghcache invalidation id v1");
        match selector {
            Selector::All | Selector::Key(_) => {
                hasher.update(&[0]);
            }
            Selector::Repo(repo) => {
                hasher.update(&[1]);
                hasher.update(&(repo.len() as u64).to_le_bytes());
                hasher.update(repo.as_bytes());
            }
            Selector::Resources { repo, resources } => {
                hasher.update(&[2]);
                hasher.update(&(repo.len() as u64).to_le_bytes());
                hasher.update(repo.as_bytes());
                hasher.update(&resources.bits().to_le_bytes());
            }
        }
        hasher.update(&at_ms.to_le_bytes());
        let mut n = [0u8; 8];
        n.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
        InvalidationId(u64::from_le_bytes(n).max(1))
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

    /// [`CacheTier::invalidate`] for an invalidation that other machines know as `id` (one a
    /// peer gossiped, or the CLI's own write, issued at a time it also gave the swarm): a tier
    /// that keeps fences records which invalidation moved them last.
    async fn invalidate_known(
        &self,
        selector: &Selector,
        id: InvalidationId,
    ) -> Result<u64, TierError> {
        let _ = id;
        self.invalidate(selector).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Resources;

    #[test]
    fn ids_tell_invalidations_apart_by_what_and_when() {
        let repo = Selector::Repo("o/r".into());
        assert_eq!(InvalidationId::of(&repo, 7), InvalidationId::of(&repo, 7));
        assert_ne!(InvalidationId::of(&repo, 7), InvalidationId::of(&repo, 8));
        assert_ne!(
            InvalidationId::of(&repo, 7),
            InvalidationId::of(&Selector::Repo("o/s".into()), 7)
        );
        let issues = Selector::Resources {
            repo: "o/r".into(),
            resources: Resources::of(&[Resource::Issues]),
        };
        assert_ne!(InvalidationId::of(&repo, 7), InvalidationId::of(&issues, 7));
        assert_ne!(InvalidationId::of(&Selector::All, 7).0, 0);
    }

    #[test]
    fn a_selector_includes_what_it_drops_at_least() {
        let issues = Selector::Resources {
            repo: "o/r".into(),
            resources: Resources::of(&[Resource::Issues]),
        };
        let issues_and_pulls = Selector::Resources {
            repo: "o/r".into(),
            resources: Resources::of(&[Resource::Issues, Resource::PullRequests]),
        };
        let repo = Selector::Repo("o/r".into());
        assert!(Selector::All.includes(&repo));
        assert!(repo.includes(&issues) && repo.includes(&repo));
        assert!(issues_and_pulls.includes(&issues));
        assert!(!issues.includes(&issues_and_pulls));
        assert!(!issues.includes(&repo) && !repo.includes(&Selector::All));
        assert!(!Selector::Repo("o/s".into()).includes(&issues));
    }
}
