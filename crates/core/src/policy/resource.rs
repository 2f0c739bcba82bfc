//! What an answer shows ([`Resource`]) and what a write can change ([`Changes`]): the words the
//! policy, the manifests and the invalidations share. A module of its own that names nothing
//! else, because every encoding reads and writes these codes.

/// What part of a repository an answer shows, and so which writes can change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// Issues, their comments and the labels on them.
    Issues,
    /// Pull requests, their reviews, diffs and checks.
    PullRequests,
    /// Releases and their assets.
    Releases,
    /// Workflows, their runs, and Actions caches.
    Actions,
    /// The repository's label definitions.
    Labels,
    /// The repository itself: description, settings, rulesets.
    Metadata,
    /// Search results, and every answer whose repository the request does not prove (`gh api
    /// user`, `repo list`, a GraphQL query that names no repository): they span repositories,
    /// so every write, to any repository, drops them.
    Search,
    /// Anything not classified (GraphQL queries, other REST paths): every write to the
    /// repository may change it.
    Other,
}

impl Resource {
    /// Every resource, in the order of their codes.
    pub const ALL: [Resource; 8] = [
        Resource::Issues,
        Resource::PullRequests,
        Resource::Releases,
        Resource::Actions,
        Resource::Labels,
        Resource::Metadata,
        Resource::Search,
        Resource::Other,
    ];

    /// Name in debug lines and docs.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Issues => "issues",
            Resource::PullRequests => "pull requests",
            Resource::Releases => "releases",
            Resource::Actions => "actions",
            Resource::Labels => "labels",
            Resource::Metadata => "metadata",
            Resource::Search => "search",
            Resource::Other => "other",
        }
    }

    /// Stable number for encodings (manifests, the index, the wire): never reuse one.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Inverse of [`Resource::code`].
    pub fn from_code(code: u8) -> Option<Resource> {
        Resource::ALL.get(usize::from(code)).copied()
    }
}

/// A set of [`Resource`]s, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Resources(u16);

impl Resources {
    /// The set of `list`.
    pub fn of(list: &[Resource]) -> Resources {
        Resources(list.iter().fold(0, |bits, r| bits | 1 << r.code()))
    }

    /// Whether `resource` is in the set.
    pub fn contains(self, resource: Resource) -> bool {
        self.0 & 1 << resource.code() != 0
    }

    /// The resources in the set, in code order.
    pub fn iter(self) -> impl Iterator<Item = Resource> {
        Resource::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// The bits, for encodings.
    pub fn bits(self) -> u16 {
        self.0
    }

    /// Inverse of [`Resources::bits`]; bits of unknown resources are an error.
    pub fn from_bits(bits: u16) -> Option<Resources> {
        (bits >> Resource::ALL.len() == 0).then_some(Resources(bits))
    }
}

/// What a write can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changes {
    /// Anything about the repository: a write whose effects are not known.
    Repository,
    /// These resources of the repository (and, always, what is [`Resource::Other`]).
    Resources(Resources),
}
