//! Writes made on github.com, not through the API (people and bots: comments, labels, edits,
//! pushes), and the world's history, for a replay that asks afterwards what GitHub would have
//! answered at a given moment.
//!
//! Each write returns the [`Event`] GitHub tells of it, the same name and payload that a
//! webhook delivery carries (and sends one when a webhook is set): what a GitHub Actions job
//! that the write started finds in its `GITHUB_EVENT_PATH`.

use std::time::Instant;

use crate::data::World;
use crate::FakeGithub;

/// A write as GitHub tells of it: the event's name (`push`, `pull_request`, ...) and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `X-GitHub-Event`, `GITHUB_EVENT_NAME`.
    pub name: String,
    /// The delivery's body, the file at `GITHUB_EVENT_PATH`.
    pub payload: serde_json::Value,
}

/// The world as one or more changes left it ([`FakeGithub::keep_history`]).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the changes were made.
    pub at: Instant,
    /// The repositories they changed (`owner/name`, lowercase); none for the world as it was
    /// when the history began.
    pub repos: Vec<String>,
    pub(crate) world: World,
}

impl FakeGithub {
    /// Times the changes from now on by the machine's clock, in whole seconds, as GitHub does,
    /// rather than on the deterministic clock that starts on 2026-01-01: payload times and
    /// `Last-Modified` can then be compared with when an answer was fetched.
    pub fn use_wall_clock(&self) {
        self.shared.lock().world.use_wall_clock();
    }

    /// Keeps, from now on, the world as it is and as every change leaves it
    /// ([`FakeGithub::history`]).
    pub fn keep_history(&self) {
        let mut state = self.shared.lock();
        let now = Snapshot {
            at: Instant::now(),
            repos: Vec::new(),
            world: state.world.clone(),
        };
        state.history = Some(vec![now]);
    }

    /// The world when [`FakeGithub::keep_history`] was called and after each change since,
    /// oldest first; empty if it was not called.
    pub fn history(&self) -> Vec<Snapshot> {
        self.shared.lock().history.clone().unwrap_or_default()
    }

    /// Puts the world back as `snapshot` has it (another server's snapshot too): from now on,
    /// it answers as it did then.
    pub fn restore(&self, snapshot: &Snapshot) {
        self.shared.lock().world = snapshot.world.clone();
    }

    /// Pushes a commit to `main` of `repo` (`owner/name`): its `pushed_at` moves and a `push`
    /// run starts. Returns the `push` event (a push always makes one).
    pub fn push(&self, repo: &str) -> Option<Event> {
        self.told(|world| world.push(repo))
    }

    /// Pushes a commit to pull request `number`'s branch: its head, commits and diff change and
    /// a `pull_request` run starts. GitHub tells of it twice, a `push` of the branch and then
    /// the pull request's `synchronize` (two webhook deliveries); returns the second, the event
    /// of the run it starts (always one).
    pub fn synchronize_pr(&self, repo: &str, number: u64) -> Option<Event> {
        self.told(|world| world.synchronize_pr(repo, number))
    }

    /// Comments on issue `number` (or, with `pr`, pull request `number`) of `repo`. Returns the
    /// `issue_comment` `created` event; `None` if there is no such issue.
    pub fn comment(&self, repo: &str, number: u64, pr: bool) -> Option<Event> {
        self.told(|world| world.comment(repo, number, pr))
    }

    /// Adds to issue (or, with `pr`, pull request) `number` of `repo` the first label of the
    /// repository it lacks, or takes its last one off when it has all. Returns the `issues` (or
    /// `pull_request`) `labeled` or `unlabeled` event; `None` if there is no such issue.
    pub fn label(&self, repo: &str, number: u64, pr: bool) -> Option<Event> {
        self.told(|world| world.label(repo, number, pr))
    }

    /// Renames issue `number` of `repo`. Returns the `issues` `edited` event; `None` if there is
    /// no such issue.
    pub fn retitle_issue(&self, repo: &str, number: u64, title: &str) -> Option<Event> {
        self.told(|world| world.retitle_issue(repo, number, title))
    }

    /// Runs a write and returns the event of the last change it made, if it made one.
    fn told<R>(&self, write: impl FnOnce(&mut World) -> R) -> Option<Event> {
        let (_, events) = self.shared.change_told(write, true);
        events.into_iter().last()
    }
}
