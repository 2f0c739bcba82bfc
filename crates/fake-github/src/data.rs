//! The fake GitHub's world: deterministic repositories, and issues that writes can change.
//!
//! Each repository and issue has a modification time (`Last-Modified`), on a clock of its own
//! that starts at [`TIME`] and moves one second per write: deterministic, and never two changes
//! in the same second, so `If-Modified-Since` tells every change apart.

use std::collections::BTreeMap;

/// The fixed "now" of every timestamp, so two runs print the same.
pub const TIME: &str = "2026-01-01T00:00:00Z";

/// [`TIME`] in seconds since the Unix epoch: when everything that no write changed was modified.
pub const TIME_SECS: u64 = 1_767_225_600;

/// A commit id that looks like one.
pub const SHA: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// One issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Issue number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Open or closed.
    pub open: bool,
}

/// A change a write made to the world: what a webhook delivery tells ([`crate::webhook`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An issue was opened (event `issues`, action `opened`).
    IssueOpened {
        /// `owner/name`, as the write named it.
        repo: String,
        /// The new issue's number.
        number: u64,
        /// When: seconds since the Unix epoch, on the world's clock.
        at: u64,
    },
    /// An issue was closed or reopened (event `issues`, action `closed` or `reopened`).
    IssueState {
        /// `owner/name`, as the write named it.
        repo: String,
        /// The issue's number.
        number: u64,
        /// Whether it is open now.
        open: bool,
        /// When: seconds since the Unix epoch, on the world's clock.
        at: u64,
    },
    /// A pull request was renamed (event `pull_request`, action `edited`).
    PrRetitled {
        /// `owner/name`, as the write named it.
        repo: String,
        /// The pull request's number.
        number: u64,
        /// Its title before.
        from: String,
        /// When: seconds since the Unix epoch, on the world's clock.
        at: u64,
    },
}

/// The title of a pull request nobody renamed.
pub fn default_pr_title(repo: &str, number: u64) -> String {
    format!("Improve {repo}, part {number}")
}

/// Issues per repository (`owner/name`, lowercase), created on first use.
#[derive(Debug, Default)]
pub struct World {
    issues: BTreeMap<String, Vec<Issue>>,
    /// Writes so far: the modification clock's seconds past [`TIME_SECS`].
    writes: u64,
    /// When a repository (`owner/name`) or an issue (`owner/name#N`) last changed, if a write
    /// changed it.
    modified: BTreeMap<String, u64>,
    /// Pull request titles changed from outside (`owner/name#N`); the others are generated.
    pr_titles: BTreeMap<String, String>,
    /// When an issue added by a write (`owner/name#N`) was created; the seeded ones at [`TIME`].
    created: BTreeMap<String, u64>,
    /// Changes made since [`World::take_changes`], oldest first: each sends a webhook delivery.
    changes: Vec<Change>,
}

/// `owner/name` lowercase.
pub fn repo_key(owner: &str, name: &str) -> String {
    format!("{owner}/{name}").to_ascii_lowercase()
}

impl World {
    /// Renames pull request `number` of `repo`, as someone on github.com would.
    pub fn retitle_pr(&mut self, repo: &str, number: u64, title: &str) {
        let key = format!("{}#{number}", repo.to_ascii_lowercase());
        let from = self
            .pr_titles
            .insert(key, title.to_owned())
            .unwrap_or_else(|| default_pr_title(&repo.to_ascii_lowercase(), number));
        let at = self.touch(repo, number);
        self.changes.push(Change::PrRetitled {
            repo: repo.to_owned(),
            number,
            from,
            at,
        });
    }

    /// The changes made since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// The title a pull request was given from outside, if any.
    pub fn pr_title(&self, repo: &str, number: u64) -> Option<String> {
        let key = format!("{}#{number}", repo.to_ascii_lowercase());
        self.pr_titles.get(&key).cloned()
    }

    /// The issues of a repository, seeded with two open issues that name it.
    pub fn issues(&mut self, repo: &str) -> &mut Vec<Issue> {
        self.issues
            .entry(repo.to_ascii_lowercase())
            .or_insert_with(|| {
                vec![
                    Issue {
                        number: 1,
                        title: format!("Crash on start in {repo}"),
                        body: format!("Steps to reproduce the crash in {repo}."),
                        open: true,
                    },
                    Issue {
                        number: 2,
                        title: format!("Document the {repo} API"),
                        body: "The API needs documentation.".to_owned(),
                        open: true,
                    },
                ]
            })
    }

    /// Adds an open issue; returns its number. The repository (its open issue count) and the
    /// issue change.
    pub fn add_issue(&mut self, repo: &str, title: &str, body: &str) -> u64 {
        let issues = self.issues(repo);
        let number = issues.iter().map(|i| i.number).max().unwrap_or(0) + 1;
        issues.push(Issue {
            number,
            title: title.to_owned(),
            body: body.to_owned(),
            open: true,
        });
        let at = self.touch(repo, number);
        self.created
            .insert(format!("{}#{number}", repo.to_ascii_lowercase()), at);
        self.changes.push(Change::IssueOpened {
            repo: repo.to_owned(),
            number,
            at,
        });
        number
    }

    /// One issue by number.
    pub fn issue(&mut self, repo: &str, number: u64) -> Option<Issue> {
        self.issues(repo)
            .iter()
            .find(|i| i.number == number)
            .cloned()
    }

    /// Opens or closes an issue; false if there is none. When its state changes, so do the
    /// repository (its open issue count) and the issue.
    pub fn set_open(&mut self, repo: &str, number: u64, open: bool) -> bool {
        let Some(issue) = self.issues(repo).iter_mut().find(|i| i.number == number) else {
            return false;
        };
        let changed = issue.open != open;
        issue.open = open;
        if changed {
            let at = self.touch(repo, number);
            self.changes.push(Change::IssueState {
                repo: repo.to_owned(),
                number,
                open,
                at,
            });
        }
        true
    }

    /// When the repository last changed, in seconds since the Unix epoch.
    pub fn repo_modified(&self, repo: &str) -> u64 {
        self.modified_at(&repo.to_ascii_lowercase())
    }

    /// When an issue last changed, in seconds since the Unix epoch.
    pub fn issue_modified(&self, repo: &str, number: u64) -> u64 {
        self.modified_at(&format!("{}#{number}", repo.to_ascii_lowercase()))
    }

    /// When an issue was created, in seconds since the Unix epoch.
    pub fn issue_created(&self, repo: &str, number: u64) -> u64 {
        let key = format!("{}#{number}", repo.to_ascii_lowercase());
        self.created.get(&key).copied().unwrap_or(TIME_SECS)
    }

    fn modified_at(&self, what: &str) -> u64 {
        self.modified.get(what).copied().unwrap_or(TIME_SECS)
    }

    /// A write changed the repository and one of its issues: both are modified now, one second
    /// after the previous write; returns that time.
    fn touch(&mut self, repo: &str, number: u64) -> u64 {
        self.writes += 1;
        let now = TIME_SECS + self.writes;
        let repo = repo.to_ascii_lowercase();
        self.modified.insert(format!("{repo}#{number}"), now);
        self.modified.insert(repo, now);
        now
    }

    /// Issues in the given state, newest first.
    pub fn listed(&mut self, repo: &str, open: Option<bool>) -> Vec<Issue> {
        let mut out: Vec<Issue> = self
            .issues(repo)
            .iter()
            .filter(|i| open.is_none_or(|o| i.open == o))
            .cloned()
            .collect();
        out.sort_by_key(|i| std::cmp::Reverse(i.number));
        out
    }
}

/// A base64 encoder for REST `content` fields (the readme).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn issues_are_seeded_per_repo_and_listed_newest_first() {
        let mut world = World::default();
        assert!(world.issues("acme/widgets")[0]
            .title
            .contains("acme/widgets"));
        let n = world.add_issue("acme/widgets", "new", "");
        assert_eq!(n, 3);
        assert_eq!(world.listed("acme/widgets", Some(true))[0].number, 3);
        assert!(world.set_open("acme/widgets", 1, false));
        assert_eq!(world.listed("acme/widgets", Some(true)).len(), 2);
        assert_eq!(world.listed("acme/gadgets", None).len(), 2);
    }

    #[test]
    fn writes_move_the_modification_times_of_what_they_change() {
        let mut world = World::default();
        assert_eq!(world.repo_modified("acme/widgets"), TIME_SECS);
        let n = world.add_issue("Acme/Widgets", "new", "");
        let created = world.repo_modified("acme/widgets");
        assert!(created > TIME_SECS);
        assert_eq!(world.issue_modified("acme/widgets", n), created);
        assert_eq!(world.issue_modified("acme/widgets", 1), TIME_SECS);
        assert_eq!(world.repo_modified("acme/gadgets"), TIME_SECS);
        assert!(world.set_open("acme/widgets", 1, false));
        let closed = world.issue_modified("acme/widgets", 1);
        assert!(closed > created);
        assert_eq!(world.repo_modified("acme/widgets"), closed);
        // Closing what is closed changes nothing.
        assert!(world.set_open("acme/widgets", 1, false));
        assert_eq!(world.issue_modified("acme/widgets", 1), closed);
    }

    #[test]
    fn writes_record_their_changes_once() {
        let mut world = World::default();
        let n = world.add_issue("Acme/Widgets", "new", "");
        world.set_open("acme/widgets", 1, false);
        world.set_open("acme/widgets", 1, false);
        world.retitle_pr("acme/widgets", 7, "Renamed");
        world.retitle_pr("acme/widgets", 7, "Again");
        let changes = world.take_changes();
        assert_eq!(changes.len(), 4, "{changes:?}");
        assert_eq!(
            changes[0],
            Change::IssueOpened {
                repo: "Acme/Widgets".into(),
                number: n,
                at: world.issue_created("acme/widgets", n)
            }
        );
        assert!(matches!(changes[1], Change::IssueState { open: false, .. }));
        assert!(
            matches!(&changes[2], Change::PrRetitled { from, .. } if *from == default_pr_title("acme/widgets", 7))
        );
        assert!(matches!(&changes[3], Change::PrRetitled { from, at, .. }
            if from == "Renamed" && *at == world.issue_modified("acme/widgets", 7)));
        assert!(world.take_changes().is_empty());
    }
}
