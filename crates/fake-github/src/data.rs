//! The fake GitHub's world: deterministic repositories, and issues, pull requests, runs and
//! pushes that writes can change.
//!
//! Each repository, issue and pull request has a modification time (`Last-Modified`, the
//! `updated_at` of its answers). By default the clock is the world's own: it starts at [`TIME`]
//! and moves one second per write, deterministic, and never two changes in the same second, so
//! `If-Modified-Since` tells every change apart. [`World::use_wall_clock`] puts it on the
//! machine's clock instead (whole seconds, never going back), as GitHub's is: a payload's time
//! can then be compared with when a cache fetched an answer, and two changes within one second
//! share a `Last-Modified`, as on GitHub.
//!
//! The writes that people and bots make on github.com (comments, labels, edits, pushes) are in
//! [`writes`].

mod writes;

use std::collections::BTreeMap;

/// The fixed "now" of every timestamp, so two runs print the same.
pub const TIME: &str = "2026-01-01T00:00:00Z";

/// [`TIME`] in seconds since the Unix epoch: when everything that no write changed was modified.
pub const TIME_SECS: u64 = 1_767_225_600;

/// A commit id that looks like one: the head of every branch nobody pushed to.
pub const SHA: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// The labels every repository defines (name, colour, description); issues and pull requests
/// carry some of them.
pub const LABELS: [(&str, &str, &str); 3] = [
    ("bug", "d73a4a", "Something isn't working"),
    (
        "documentation",
        "0075ca",
        "Improvements or additions to documentation",
    ),
    ("enhancement", "a2eeef", "New feature or request"),
];

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
    /// Names of the labels on it, from [`LABELS`].
    pub labels: Vec<String>,
    /// Comments on it.
    pub comments: u64,
}

impl Issue {
    /// An open issue without labels or comments.
    pub fn new(number: u64, title: String, body: String) -> Issue {
        Issue {
            number,
            title,
            body,
            open: true,
            labels: Vec::new(),
            comments: 0,
        }
    }
}

/// One open pull request, from `feature-N` into `main`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pr {
    /// Its number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Names of the labels on it, from [`LABELS`].
    pub labels: Vec<String>,
    /// Comments on it.
    pub comments: u64,
    /// Commits on its branch: each push to it adds one (and a line to its diff).
    pub commits: u64,
    /// The head commit of its branch.
    pub head: String,
}

/// One workflow run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Its id (and run number).
    pub id: u64,
    /// The event that started it: `push`, `pull_request`.
    pub event: &'static str,
    /// The branch it runs on.
    pub branch: String,
    /// The commit it runs on.
    pub sha: String,
    /// When it was created, in seconds since the Unix epoch.
    pub at: u64,
    /// `None` while it runs; `success` or `failure` once completed.
    pub conclusion: Option<&'static str>,
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
    /// An issue was renamed (event `issues`, action `edited`).
    IssueRetitled {
        /// `owner/name`, as the write named it.
        repo: String,
        /// The issue's number.
        number: u64,
        /// Its title before.
        from: String,
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
    /// Commits were pushed to a pull request's branch (event `pull_request`, action
    /// `synchronize`), which started a run.
    PrSynchronized {
        /// `owner/name`, as the write named it.
        repo: String,
        /// The pull request's number.
        number: u64,
        /// The branch's head before and after.
        before: String,
        after: String,
        /// When: seconds since the Unix epoch, on the world's clock.
        at: u64,
    },
    /// Commits were pushed to a branch (event `push`): to the default branch, which started a
    /// run, or to a pull request's (which [`Change::PrSynchronized`] follows).
    Pushed {
        /// `owner/name`, as the write named it.
        repo: String,
        /// The branch: `main`, `feature-N`.
        branch: String,
        /// The branch's head before and after.
        before: String,
        after: String,
        /// When: seconds since the Unix epoch, on the world's clock.
        at: u64,
    },
    /// Someone commented on an issue or a pull request (event `issue_comment`, action
    /// `created`).
    Commented {
        /// `owner/name`, as the write named it.
        repo: String,
        /// The issue's or pull request's number.
        number: u64,
        /// Whether it is a pull request's.
        pr: bool,
        /// The comment's id.
        id: u64,
        /// When: seconds since the Unix epoch, on the world's clock.
        at: u64,
    },
    /// A label was added to or removed from an issue or a pull request (event `issues` or
    /// `pull_request`, action `labeled` or `unlabeled`).
    Labeled {
        /// `owner/name`, as the write named it.
        repo: String,
        /// The issue's or pull request's number.
        number: u64,
        /// Whether it is a pull request.
        pr: bool,
        /// The label's name.
        label: String,
        /// Added, else removed.
        added: bool,
        /// When: seconds since the Unix epoch, on the world's clock.
        at: u64,
    },
}

impl Change {
    /// The repository it changed (`owner/name`, as the write named it).
    pub fn repo(&self) -> &str {
        match self {
            Change::IssueOpened { repo, .. }
            | Change::IssueState { repo, .. }
            | Change::IssueRetitled { repo, .. }
            | Change::PrRetitled { repo, .. }
            | Change::PrSynchronized { repo, .. }
            | Change::Pushed { repo, .. }
            | Change::Commented { repo, .. }
            | Change::Labeled { repo, .. } => repo,
        }
    }
}

/// The title of a pull request nobody renamed.
pub fn default_pr_title(repo: &str, number: u64) -> String {
    format!("Improve {repo}, part {number}")
}

/// Which clock the world's changes are timed by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Clock {
    /// [`TIME`], one second later per write.
    #[default]
    Counter,
    /// The machine's clock, in whole seconds, never going back.
    Wall,
}

/// Issues, pull requests, runs and pushes per repository (`owner/name`, lowercase), created on
/// first use.
#[derive(Debug, Default, Clone)]
pub struct World {
    issues: BTreeMap<String, Vec<Issue>>,
    /// Writes so far: the counter clock's seconds past [`TIME_SECS`].
    writes: u64,
    clock: Clock,
    /// The last time a write was given: the wall clock never goes back from it.
    last: u64,
    /// When a repository (`owner/name`), an issue (`owner/name#N`) or a pull request
    /// (`owner/name!N`) last changed, if a write changed it.
    modified: BTreeMap<String, u64>,
    /// Pull requests changed by a write (`owner/name!N`); the others are as generated.
    prs: BTreeMap<String, Pr>,
    /// Workflow runs of repositories with a run added by a write, oldest first.
    runs: BTreeMap<String, Vec<Run>>,
    /// The head of `main` and when it was last pushed to, of repositories pushed to.
    pushed: BTreeMap<String, (String, u64)>,
    /// When an issue added by a write (`owner/name#N`) was created; the seeded ones at [`TIME`].
    created: BTreeMap<String, u64>,
    /// Comments made so far, for their ids.
    comments: u64,
    /// Changes made since [`World::take_changes`], oldest first: each sends a webhook delivery.
    changes: Vec<Change>,
}

/// `owner/name` lowercase.
pub fn repo_key(owner: &str, name: &str) -> String {
    format!("{owner}/{name}").to_ascii_lowercase()
}

/// `owner/name#N`, lowercase: the key of an issue.
fn item_key(repo: &str, number: u64) -> String {
    format!("{}#{number}", repo.to_ascii_lowercase())
}

/// `owner/name!N`, lowercase: the key of a pull request's modification time.
fn pr_key(repo: &str, number: u64) -> String {
    format!("{}!{number}", repo.to_ascii_lowercase())
}

impl World {
    /// Times every later change by the machine's clock (see the module's documentation).
    pub fn use_wall_clock(&mut self) {
        self.clock = Clock::Wall;
    }

    /// The changes made since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// A pull request as it is now (generated, unless a write changed it).
    pub fn pr(&self, repo: &str, number: u64) -> Pr {
        let repo = repo.to_ascii_lowercase();
        self.prs
            .get(&pr_key(&repo, number))
            .cloned()
            .unwrap_or_else(|| Pr {
                number,
                title: default_pr_title(&repo, number),
                labels: vec![LABELS[2].0.to_owned()],
                comments: 0,
                commits: 1,
                head: SHA.to_owned(),
            })
    }

    /// The issues of a repository, seeded with two open issues that name it.
    pub fn issues(&mut self, repo: &str) -> &mut Vec<Issue> {
        self.issues
            .entry(repo.to_ascii_lowercase())
            .or_insert_with(|| {
                let mut crash = Issue::new(
                    1,
                    format!("Crash on start in {repo}"),
                    format!("Steps to reproduce the crash in {repo}."),
                );
                crash.labels = vec![LABELS[0].0.to_owned()];
                let mut document = Issue::new(
                    2,
                    format!("Document the {repo} API"),
                    "The API needs documentation.".to_owned(),
                );
                document.labels = vec![LABELS[1].0.to_owned()];
                vec![crash, document]
            })
    }

    /// Adds an open issue; returns its number. The repository (its open issue count) and the
    /// issue change.
    pub fn add_issue(&mut self, repo: &str, title: &str, body: &str) -> u64 {
        let issues = self.issues(repo);
        let number = issues.iter().map(|i| i.number).max().unwrap_or(0) + 1;
        issues.push(Issue::new(number, title.to_owned(), body.to_owned()));
        let at = self.touch(repo, &item_key(repo, number));
        self.created.insert(item_key(repo, number), at);
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
            let at = self.touch(repo, &item_key(repo, number));
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
        self.modified_at(&item_key(repo, number))
    }

    /// When a pull request last changed, in seconds since the Unix epoch.
    pub fn pr_modified(&self, repo: &str, number: u64) -> u64 {
        self.modified_at(&pr_key(repo, number))
    }

    /// When an issue was created, in seconds since the Unix epoch.
    pub fn issue_created(&self, repo: &str, number: u64) -> u64 {
        self.created
            .get(&item_key(repo, number))
            .copied()
            .unwrap_or(TIME_SECS)
    }

    /// The head of `main` and when it was last pushed to (seconds since the Unix epoch).
    pub fn pushed(&self, repo: &str) -> (String, u64) {
        self.pushed
            .get(&repo.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(|| (SHA.to_owned(), TIME_SECS))
    }

    /// The repository's workflow runs, newest first: two completed ones before any push, and
    /// one more per push.
    pub fn runs(&self, repo: &str) -> Vec<Run> {
        let mut runs = self
            .runs
            .get(&repo.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(seeded_runs);
        runs.reverse();
        runs
    }

    fn modified_at(&self, what: &str) -> u64 {
        self.modified.get(what).copied().unwrap_or(TIME_SECS)
    }

    /// The time of a new write: one second after the previous one (counter clock), or the
    /// machine's time in whole seconds, never before the previous write's (wall clock).
    fn tick(&mut self) -> u64 {
        self.writes += 1;
        let now = match self.clock {
            Clock::Counter => TIME_SECS + self.writes,
            Clock::Wall => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(TIME_SECS, |d| d.as_secs()),
        };
        self.last = self.last.max(now);
        self.last
    }

    /// A write changed the repository and one of its items (`item`: an issue's or a pull
    /// request's key): both are modified now; returns that time.
    fn touch(&mut self, repo: &str, item: &str) -> u64 {
        let now = self.tick();
        self.modified.insert(item.to_owned(), now);
        self.modified.insert(repo.to_ascii_lowercase(), now);
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

/// The runs of a repository nobody pushed to: a failed one, then a successful one.
fn seeded_runs() -> Vec<Run> {
    [(1, "failure"), (2, "success")]
        .into_iter()
        .map(|(id, conclusion)| Run {
            id,
            event: "push",
            branch: "main".to_owned(),
            sha: SHA.to_owned(),
            at: TIME_SECS,
            conclusion: Some(conclusion),
        })
        .collect()
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
            if from == "Renamed" && *at == world.pr_modified("acme/widgets", 7)));
        assert_eq!(world.issue_modified("acme/widgets", 7), TIME_SECS);
        assert!(world.take_changes().is_empty());
    }
}
