//! Writes made on GitHub from outside the fleet, in the trace (`--outside-writes`): the pushes
//! and pull request changes that start the workflow runs, and what people and bots do meanwhile.
//!
//! The assumption, stated once here and in `docs/benchmarks.md`:
//! - every workflow run is started by a write, at the run's arrival, which is its triggering
//!   event: half the runs by a push to the default branch (`push`), half by a push to the branch
//!   of the pull request that the run's script views (`pull_request`, `synchronize`);
//! - besides, people and bots write at [`Options::outside_per_hour`] across the fleet, at uniform
//!   random times over the span in which runs arrive, each to a repository drawn by the same
//!   Zipf distribution as the runs' repositories. The full trace takes two such writes per run:
//!   its 12 runs in 3 minutes are 240 an hour, so 480 writes an hour, of which the busiest of
//!   its 6 repositories gets 41% (about 196 an hour, three a minute). What they are: 45% a
//!   comment, 30% a label added or removed, 15% a title edited (each half on an issue, half on
//!   a pull request), 10% a push to a pull request's branch that starts no run of the fleet.
//!
//! Issues are the two every repository starts with, pull requests the three the runs view
//! (Zipf over them, as the runs' `pr view N`). The same seed gives the same writes; they come
//! from generators of their own, so that the rest of the trace is the one the replay without
//! outside writes has.

use std::time::Duration;

use fake_github::{Event, FakeGithub};

use super::options::{repo_name, Options};
use super::rng::Rng;

/// Salts of the generators of the outside writes, apart from the trace's own.
const TRIGGER_SALT: u64 = 0x7472_6967_6765_7273;
const BACKGROUND_SALT: u64 = 0x6f75_7473_6964_6521;

/// What the people and bots do, in proportions: comments, labels, titles, pull request pushes.
const KINDS: [u32; 4] = [45, 30, 15, 10];

/// One write made on GitHub from outside the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// `owner/name`.
    pub repo: String,
    pub what: What,
    /// The workflow run it starts (its number in the trace, from 0), when it is a run's
    /// triggering event.
    pub starts: Option<usize>,
}

/// What a write does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// A push to the default branch.
    Push,
    /// A push to pull request N's branch (`synchronize`).
    PrPush(u64),
    /// A comment on issue (or pull request) `number`.
    Comment { number: u64, pr: bool },
    /// A label added to (or removed from) issue (or pull request) `number`.
    Label { number: u64, pr: bool },
    /// A new title for issue (or pull request) `number`; `edit` tells titles apart.
    Title { number: u64, pr: bool, edit: usize },
}

impl What {
    /// The events GitHub tells of it, which core's event table maps to what they change: one,
    /// but for a push to a pull request's branch, told as a `push` and as the pull request's
    /// `synchronize`.
    pub fn events(self) -> &'static [&'static str] {
        match self {
            What::Push => &["push"],
            What::PrPush(_) => &["push", "pull_request"],
            What::Comment { .. } => &["issue_comment"],
            What::Label { pr: true, .. } | What::Title { pr: true, .. } => &["pull_request"],
            What::Label { .. } | What::Title { .. } => &["issues"],
        }
    }

    /// The event of the runs it starts (`GITHUB_EVENT_NAME`): the last it is told as.
    pub fn event(self) -> &'static str {
        self.events().last().copied().unwrap_or("push")
    }
}

/// The triggering write of run `run` of `repo`, whose script views pull request `pr`.
pub fn trigger(rng: &mut Rng, repo: &str, pr: u64, run: usize) -> Write {
    let what = if rng.next().is_multiple_of(2) {
        What::Push
    } else {
        What::PrPush(pr)
    };
    Write {
        repo: repo.to_owned(),
        what,
        starts: Some(run),
    }
}

/// A generator for the runs' triggering writes.
pub fn trigger_rng(o: &Options) -> Rng {
    Rng(o.seed ^ TRIGGER_SALT)
}

/// What people and bots write while the runs arrive, with the time of each.
pub fn background(o: &Options) -> Vec<(Duration, Write)> {
    let mut rng = Rng(o.seed ^ BACKGROUND_SALT);
    let count = (o.outside_per_hour * o.span.as_secs_f64() / 3600.0).round() as usize;
    (0..count)
        .map(|edit| {
            let at = rng.within(o.span);
            let repo = repo_name(rng.zipf(o.repos));
            let pr = rng.next().is_multiple_of(2);
            let number = match pr {
                true => 1 + rng.zipf(3) as u64,
                false => 1 + rng.zipf(2) as u64,
            };
            let what = match rng.weighted(&KINDS) {
                0 => What::Comment { number, pr },
                1 => What::Label { number, pr },
                2 => What::Title { number, pr, edit },
                _ => What::PrPush(1 + rng.zipf(3) as u64),
            };
            let write = Write {
                repo,
                what,
                starts: None,
            };
            (at, write)
        })
        .collect()
}

/// Makes `write` on the fake GitHub; returns the event GitHub tells of it.
pub fn apply(github: &FakeGithub, write: &Write) -> Option<Event> {
    let repo = write.repo.as_str();
    match write.what {
        What::Push => github.push(repo),
        What::PrPush(number) => github.synchronize_pr(repo, number),
        What::Comment { number, pr } => github.comment(repo, number, pr),
        What::Label { number, pr } => github.label(repo, number, pr),
        What::Title { number, pr, edit } => {
            let title = format!("Edited on github.com ({edit})");
            match pr {
                true => github.retitle_pr(repo, number, &title),
                false => github.retitle_issue(repo, number, &title),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_background_rate_follows_the_assumption() {
        let o = Options::full();
        let writes = background(&o);
        // 480 an hour over 180 s.
        assert_eq!(writes.len(), 24);
        assert!(writes
            .iter()
            .all(|(at, w)| *at < o.span && w.starts.is_none()));
        assert_eq!(background(&o), writes, "the same seed, the same writes");
        let busiest = writes
            .iter()
            .filter(|(_, w)| w.repo == repo_name(0))
            .count();
        assert!(
            busiest * 4 > writes.len(),
            "Zipf: the first repository is the busiest"
        );
        let none = Options {
            outside_per_hour: 0.0,
            ..o
        };
        assert!(background(&none).is_empty());
    }

    #[test]
    fn every_kind_of_write_is_drawn_and_named_by_its_event() {
        let o = Options {
            outside_per_hour: 100_000.0,
            ..Options::full()
        };
        let writes = background(&o);
        let events: std::collections::BTreeSet<&str> =
            writes.iter().map(|(_, w)| w.what.event()).collect();
        assert_eq!(
            events.into_iter().collect::<Vec<_>>(),
            ["issue_comment", "issues", "pull_request"]
        );
        let pushes = writes
            .iter()
            .filter(|(_, w)| matches!(w.what, What::PrPush(_)))
            .count();
        assert!(
            pushes * 20 > writes.len() && pushes * 5 < writes.len(),
            "about 10%"
        );
        assert_eq!(What::Push.event(), "push");
        assert_eq!(What::PrPush(1).events(), ["push", "pull_request"]);
        assert_eq!(What::PrPush(1).event(), "pull_request");
        for (_, w) in &writes {
            assert_eq!(w.what.events().last(), Some(&w.what.event()));
        }
    }
}
