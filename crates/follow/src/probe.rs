//! What is asked of GitHub for each followed repository, and what a changed answer means.
//!
//! Each probe is a list sorted so that any change of what it covers moves its first item (or
//! the repository itself): one item per page keeps the answer small, and its ETag changes when
//! anything it covers does. While nothing changed, GitHub answers `304 Not Modified` to the
//! `If-None-Match` of the last answer, which does not count against the rate limit.

/// One request made for each followed repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The API path and query, `{repo}` for `owner/name`.
    pub path: &'static str,
    /// The event whose classes a changed answer drops (core's table): what GitHub would have
    /// delivered for the change.
    pub event: &'static str,
}

/// The probes, one request each per repository and round.
pub const PROBES: [Probe; 5] = [
    // Issues and pull requests (GitHub lists both here), most recently changed first.
    Probe {
        path: "repos/{repo}/issues?state=all&sort=updated&direction=desc&per_page=1",
        event: "issues",
    },
    Probe {
        path: "repos/{repo}/pulls?state=all&sort=updated&direction=desc&per_page=1",
        event: "pull_request",
    },
    Probe {
        path: "repos/{repo}/actions/runs?per_page=1",
        event: "workflow_run",
    },
    Probe {
        path: "repos/{repo}/releases?per_page=1",
        event: "release",
    },
    // The repository itself: its pushed time, default branch, description, counts.
    Probe {
        path: "repos/{repo}",
        event: "push",
    },
];

impl Probe {
    /// The path for `repo`.
    pub fn path_of(&self, repo: &str) -> String {
        self.path.replace("{repo}", repo)
    }
}
