//! What is asked of GitHub for each followed repository, and what a changed answer means.
//!
//! Each probe is a list sorted so that any change of what it covers moves its first item (or
//! the repository itself): one item per page keeps the answer small, and its ETag changes when
//! anything it covers does. While nothing changed, GitHub answers `304 Not Modified` to the
//! `If-None-Match` of the last answer, which does not count against the rate limit.

use ghcache_core::policy::Resource;

/// One request made for each followed repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The API path and query, `{repo}` for `owner/name`.
    pub path: &'static str,
    /// The event whose classes a changed answer drops (core's table): what GitHub would have
    /// delivered for the change.
    pub event: &'static str,
    /// What its answer shows, so that any write to it changes the answer: while the probe
    /// answers, the writes to this are heard (`ghcache_core::heard`).
    pub covers: Resource,
}

/// The probes, one request each per repository and round.
pub const PROBES: [Probe; 5] = [
    // Issues and pull requests (GitHub lists both here), most recently changed first.
    Probe {
        path: "repos/{repo}/issues?state=all&sort=updated&direction=desc&per_page=1",
        event: "issues",
        covers: Resource::Issues,
    },
    Probe {
        path: "repos/{repo}/pulls?state=all&sort=updated&direction=desc&per_page=1",
        event: "pull_request",
        covers: Resource::PullRequests,
    },
    Probe {
        path: "repos/{repo}/actions/runs?per_page=1",
        event: "workflow_run",
        covers: Resource::Actions,
    },
    Probe {
        path: "repos/{repo}/releases?per_page=1",
        event: "release",
        covers: Resource::Releases,
    },
    // The repository itself: its pushed time, default branch, description, counts.
    Probe {
        path: "repos/{repo}",
        event: "push",
        covers: Resource::Metadata,
    },
];

impl Probe {
    /// The path for `repo`.
    pub fn path_of(&self, repo: &str) -> String {
        self.path.replace("{repo}", repo)
    }
}

#[cfg(test)]
mod tests {
    use ghcache_core::event::changes_of;
    use ghcache_core::policy::Changes;

    use super::*;

    /// A probe whose changed answer did not drop what it shows would let a heard TTL keep an
    /// answer that a change it saw made out of date.
    #[test]
    fn a_changed_answer_drops_what_the_probe_shows() {
        for probe in PROBES {
            let drops = match changes_of(probe.event) {
                Changes::Repository => true,
                Changes::Resources(resources) => resources.contains(probe.covers),
            };
            assert!(drops, "{}: {:?}", probe.path, probe.covers);
        }
    }
}
