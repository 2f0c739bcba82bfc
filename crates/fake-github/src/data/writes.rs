//! The writes that people and bots make on github.com, which do not come through the API that
//! gh uses here: renaming an issue or a pull request, commenting, labelling, pushing to the
//! default branch or to a pull request's branch. Each records its [`Change`], as GitHub sends a
//! webhook delivery for it.
//!
//! What each changes, as GitHub shows it:
//! - a push to `main`: the repository's `pushed_at` and `Last-Modified`, and a new workflow run
//!   (`push`) on the new head;
//! - a push to a pull request's branch: its head, commits and diff, its `updated_at`, the
//!   repository's `pushed_at` (any branch counts), and a new run (`pull_request`); told as
//!   GitHub tells it, twice: a `push` of the branch, then the pull request's `synchronize`;
//! - a comment: the issue's or pull request's comment count and `updated_at`;
//! - a label added or removed: its labels and `updated_at`;
//! - a new title: its title and `updated_at`.

use super::{item_key, pr_key, Change, Pr, Run, World, LABELS};

impl World {
    /// Renames issue `number` of `repo`; false if there is none.
    pub fn retitle_issue(&mut self, repo: &str, number: u64, title: &str) -> bool {
        let Some(issue) = self.issues(repo).iter_mut().find(|i| i.number == number) else {
            return false;
        };
        let from = std::mem::replace(&mut issue.title, title.to_owned());
        let at = self.touch(repo, &item_key(repo, number));
        self.changes.push(Change::IssueRetitled {
            repo: repo.to_owned(),
            number,
            from,
            at,
        });
        true
    }

    /// Renames pull request `number` of `repo`, as someone on github.com would.
    pub fn retitle_pr(&mut self, repo: &str, number: u64, title: &str) {
        let from = self.change_pr(repo, number, |pr| {
            std::mem::replace(&mut pr.title, title.to_owned())
        });
        let at = self.touch(repo, &pr_key(repo, number));
        self.changes.push(Change::PrRetitled {
            repo: repo.to_owned(),
            number,
            from,
            at,
        });
    }

    /// Pushes a commit to pull request `number`'s branch, which starts a `pull_request` run: a
    /// `push` change, then a `synchronize` one.
    pub fn synchronize_pr(&mut self, repo: &str, number: u64) {
        let at = self.touch(repo, &pr_key(repo, number));
        let after = commit_id(&format!("{}!{number}", repo.to_ascii_lowercase()), at);
        let before = self.change_pr(repo, number, |pr| {
            pr.commits += 1;
            std::mem::replace(&mut pr.head, after.clone())
        });
        let main = self.pushed(repo).0;
        self.pushed.insert(repo.to_ascii_lowercase(), (main, at));
        let branch = format!("feature-{number}");
        self.add_run(repo, "pull_request", &branch, &after, at);
        self.changes.push(Change::Pushed {
            repo: repo.to_owned(),
            branch,
            before: before.clone(),
            after: after.clone(),
            at,
        });
        self.changes.push(Change::PrSynchronized {
            repo: repo.to_owned(),
            number,
            before,
            after,
            at,
        });
    }

    /// Pushes a commit to `main`, which starts a `push` run.
    pub fn push(&mut self, repo: &str) {
        let at = self.tick();
        let key = repo.to_ascii_lowercase();
        self.modified.insert(key.clone(), at);
        let after = commit_id(&key, at);
        let before = self.pushed(repo).0;
        self.pushed.insert(key, (after.clone(), at));
        self.add_run(repo, "push", "main", &after, at);
        self.changes.push(Change::Pushed {
            repo: repo.to_owned(),
            branch: "main".to_owned(),
            before,
            after,
            at,
        });
    }

    /// Comments on issue or pull request `number` (`pr`); false if there is no such issue.
    pub fn comment(&mut self, repo: &str, number: u64, pr: bool) -> bool {
        let key = if pr {
            self.change_pr(repo, number, |pr| pr.comments += 1);
            pr_key(repo, number)
        } else {
            let Some(issue) = self.issues(repo).iter_mut().find(|i| i.number == number) else {
                return false;
            };
            issue.comments += 1;
            item_key(repo, number)
        };
        let at = self.touch(repo, &key);
        self.comments += 1;
        self.changes.push(Change::Commented {
            repo: repo.to_owned(),
            number,
            pr,
            id: 1_000_000 + self.comments,
            at,
        });
        true
    }

    /// Adds to issue or pull request `number` (`pr`) the first of the repository's labels it
    /// lacks, or, when it has them all, takes its last one off; returns the label, `None` if
    /// there is no such issue.
    pub fn label(&mut self, repo: &str, number: u64, pr: bool) -> Option<String> {
        let toggle = |labels: &mut Vec<String>| -> (String, bool) {
            match LABELS
                .iter()
                .find(|(name, ..)| !labels.iter().any(|l| l == name))
            {
                Some((name, ..)) => {
                    labels.push((*name).to_owned());
                    ((*name).to_owned(), true)
                }
                None => (labels.pop().unwrap_or_default(), false),
            }
        };
        let (key, (label, added)) = if pr {
            let toggled = self.change_pr(repo, number, |pr| toggle(&mut pr.labels));
            (pr_key(repo, number), toggled)
        } else {
            let issue = self.issues(repo).iter_mut().find(|i| i.number == number)?;
            let toggled = toggle(&mut issue.labels);
            (item_key(repo, number), toggled)
        };
        let at = self.touch(repo, &key);
        self.changes.push(Change::Labeled {
            repo: repo.to_owned(),
            number,
            pr,
            label: label.clone(),
            added,
            at,
        });
        Some(label)
    }

    /// Runs `change` on pull request `number` as it is now, keeps it changed; returns what
    /// `change` returned.
    fn change_pr<R>(&mut self, repo: &str, number: u64, change: impl FnOnce(&mut Pr) -> R) -> R {
        let mut pr = self.pr(repo, number);
        let out = change(&mut pr);
        self.prs.insert(pr_key(repo, number), pr);
        out
    }

    /// A new run, in progress, on `branch` at `sha`.
    fn add_run(&mut self, repo: &str, event: &'static str, branch: &str, sha: &str, at: u64) {
        let runs = self
            .runs
            .entry(repo.to_ascii_lowercase())
            .or_insert_with(super::seeded_runs);
        let id = runs.iter().map(|r| r.id).max().unwrap_or(0) + 1;
        runs.push(Run {
            id,
            event,
            branch: branch.to_owned(),
            sha: sha.to_owned(),
            at,
            conclusion: None,
        });
    }
}

/// A commit id for a push to `what` at `at`: 40 hex digits, the same for the same push.
fn commit_id(what: &str, at: u64) -> String {
    let hash = |salt: u64| {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
        for b in what.bytes().chain(at.to_le_bytes()) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash
    };
    let id = format!("{:016x}{:016x}{:016x}", hash(1), hash(2), hash(3));
    id[..40].to_owned()
}

#[cfg(test)]
mod tests {
    use super::super::{default_pr_title, SHA, TIME_SECS};
    use super::*;

    #[test]
    fn a_push_moves_the_head_and_pushed_time_and_starts_a_run() {
        let mut world = World::default();
        assert_eq!(world.runs("acme/widgets").len(), 2);
        world.push("Acme/Widgets");
        let (head, at) = world.pushed("acme/widgets");
        assert_ne!(head, SHA);
        assert_eq!(head.len(), 40);
        assert!(at > TIME_SECS);
        assert_eq!(world.repo_modified("acme/widgets"), at);
        let runs = world.runs("acme/widgets");
        assert_eq!(runs.len(), 3);
        assert_eq!(
            (runs[0].id, runs[0].event, runs[0].conclusion),
            (3, "push", None)
        );
        assert_eq!(runs[0].sha, head);
        assert_eq!(world.runs("acme/gadgets").len(), 2, "another repository");
        let changes = world.take_changes();
        assert!(
            matches!(&changes[..], [Change::Pushed { before, after, .. }]
            if before == SHA && *after == head)
        );
    }

    #[test]
    fn a_push_to_a_pull_requests_branch_synchronizes_it() {
        let mut world = World::default();
        world.synchronize_pr("acme/widgets", 2);
        let pr = world.pr("acme/widgets", 2);
        assert_eq!(pr.commits, 2);
        assert_ne!(pr.head, SHA);
        assert_eq!(pr.title, default_pr_title("acme/widgets", 2));
        let at = world.pr_modified("acme/widgets", 2);
        assert!(at > TIME_SECS);
        assert_eq!(world.pushed("acme/widgets"), (SHA.to_owned(), at));
        assert_eq!(world.issue_modified("acme/widgets", 2), TIME_SECS);
        let run = &world.runs("acme/widgets")[0];
        assert_eq!(
            (run.event, run.branch.as_str()),
            ("pull_request", "feature-2")
        );
        assert_eq!(run.sha, pr.head);
        let changes = world.take_changes();
        let told = matches!(&changes[..], [
            Change::Pushed { branch, after, .. },
            Change::PrSynchronized { after: synced, .. },
        ] if branch == "feature-2" && *after == pr.head && *synced == pr.head);
        assert!(
            told,
            "a push of the branch, then the synchronize: {changes:?}"
        );
    }

    #[test]
    fn comments_labels_and_titles_change_their_item_only() {
        let mut world = World::default();
        assert!(world.comment("acme/widgets", 1, false));
        assert!(!world.comment("acme/widgets", 9, false), "no issue 9");
        assert!(world.comment("acme/widgets", 1, true));
        assert_eq!(world.issue("acme/widgets", 1).map(|i| i.comments), Some(1));
        assert_eq!(world.pr("acme/widgets", 1).comments, 1);
        assert_eq!(world.issue("acme/widgets", 2).map(|i| i.comments), Some(0));

        let labels = |world: &mut World| world.issue("acme/widgets", 1).map(|i| i.labels);
        assert_eq!(labels(&mut world), Some(vec!["bug".to_owned()]));
        assert_eq!(
            world.label("acme/widgets", 1, false).as_deref(),
            Some("documentation")
        );
        assert_eq!(
            world.label("acme/widgets", 1, false).as_deref(),
            Some("enhancement")
        );
        assert_eq!(
            world.label("acme/widgets", 1, false).as_deref(),
            Some("enhancement")
        );
        assert_eq!(
            labels(&mut world),
            Some(vec!["bug".to_owned(), "documentation".to_owned()]),
            "all three on, the last came off"
        );
        assert_eq!(world.label("acme/widgets", 3, true).as_deref(), Some("bug"));
        assert_eq!(world.pr("acme/widgets", 3).labels, ["enhancement", "bug"]);

        assert!(world.retitle_issue("acme/widgets", 2, "Renamed"));
        assert_eq!(
            world.issue("acme/widgets", 2).map(|i| i.title).as_deref(),
            Some("Renamed")
        );
        let changes = world.take_changes();
        assert_eq!(changes.len(), 7, "{changes:?}");
        assert!(changes.iter().all(|c| c.repo() == "acme/widgets"));
        let times: Vec<u64> = changes
            .iter()
            .map(|c| match c {
                Change::Commented { at, .. }
                | Change::Labeled { at, .. }
                | Change::IssueRetitled { at, .. } => *at,
                _ => 0,
            })
            .collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    }

    #[test]
    fn the_wall_clock_times_changes_now_and_never_goes_back() {
        let mut world = World::default();
        world.use_wall_clock();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        world.push("acme/widgets");
        world.push("acme/widgets");
        let (_, at) = world.pushed("acme/widgets");
        assert!(at >= now && at <= now + 5, "{at} vs {now}");
        assert_eq!(commit_id("a", 1), commit_id("a", 1));
        assert_ne!(commit_id("a", 1), commit_id("a", 2));
    }
}
