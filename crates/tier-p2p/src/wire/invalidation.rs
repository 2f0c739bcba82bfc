//! What a write made out of date, as peers gossip it and as a local command asks for it: a
//! repository (or everything) and the resources changed.

use ghcache_core::policy::Resources;
use ghcache_core::wire::{put_bytes, Reader};
use ghcache_core::{DecodeError, InvalidationId, Manifest, ScopeId, Selector, MAX_REPO};

/// A request to drop the entries a write changed: some resources of a repository, all of it,
/// or (a write whose repository could not be told) everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidation {
    /// Scope whose topic carried it.
    pub scope_id: ScopeId,
    /// Repository (`owner/name`, lowercase); empty with `resources: None` for everything.
    pub repo: String,
    /// The resources the write changed; `None` for all of the repository.
    pub resources: Option<Resources>,
    /// When it was issued (sender's clock, ms since the epoch): old ones are ignored.
    pub at_ms: u64,
}

/// The resources field's value for "the whole repository".
pub(super) const WHOLE_REPOSITORY: u16 = u16::MAX;

impl Invalidation {
    /// The invalidation that makes peers drop what `selector` drops here; `None` for one key,
    /// which is not a write's to announce.
    pub fn of(scope_id: ScopeId, selector: &Selector, at_ms: u64) -> Option<Invalidation> {
        let (repo, resources) = match selector {
            Selector::All => (String::new(), None),
            Selector::Repo(repo) => (repo.clone(), None),
            Selector::Resources { repo, resources } => (repo.clone(), Some(*resources)),
            Selector::Key(_) => return None,
        };
        Some(Invalidation {
            scope_id,
            repo,
            resources,
            at_ms,
        })
    }

    /// Whether the entry `manifest` describes is out of date after this invalidation. A write
    /// changes the repository for every scope, so entries of all scopes are covered.
    pub fn covers(&self, manifest: &Manifest) -> bool {
        self.selector().covers(manifest)
    }

    /// How every machine knows this invalidation: what it drops and when it was issued.
    pub fn id(&self) -> InvalidationId {
        InvalidationId::of(&self.selector(), self.at_ms)
    }

    /// What the local store drops for this invalidation.
    pub fn selector(&self) -> Selector {
        match (&self.resources, self.repo.is_empty()) {
            (None, true) => Selector::All,
            (None, false) => Selector::Repo(self.repo.clone()),
            (Some(resources), _) => Selector::Resources {
                repo: self.repo.clone(),
                resources: *resources,
            },
        }
    }

    pub(super) fn resources_bits(&self) -> u16 {
        self.resources.map_or(WHOLE_REPOSITORY, Resources::bits)
    }

    /// Appends its encoding (after a message's tag): gossip and catch-up replies share it.
    pub(super) fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.scope_id.as_bytes());
        out.extend_from_slice(&self.at_ms.to_le_bytes());
        put_bytes(out, self.repo.as_bytes());
        out.extend_from_slice(&self.resources_bits().to_le_bytes());
    }

    /// Reads what [`Invalidation::put`] wrote.
    pub(super) fn read(r: &mut Reader<'_>) -> Result<Invalidation, DecodeError> {
        let scope_id = ScopeId(r.array()?);
        let at_ms = r.u64()?;
        let repo = r.string(MAX_REPO)?;
        let resources = resources_of(u16::from_le_bytes(r.array()?))
            .ok_or_else(|| r.err("unknown resources"))?;
        Ok(Invalidation {
            scope_id,
            repo,
            resources,
            at_ms,
        })
    }
}

/// Largest encoded invalidation (after a tag).
pub(super) const MAX_INVALIDATION: usize = 32 + 8 + 4 + MAX_REPO + 2;

/// Reads the resources field of an invalidation.
pub(super) fn resources_of(bits: u16) -> Option<Option<Resources>> {
    match bits {
        WHOLE_REPOSITORY => Some(None),
        bits => Resources::from_bits(bits).map(Some),
    }
}
