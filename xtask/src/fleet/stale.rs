//! Stale answers: an answer that differs from what GitHub (the fake) would have answered at
//! that moment, and how long it had been out of date.
//!
//! How they are found, without touching the replay: the fake GitHub keeps the world as every
//! change left it (`FakeGithub::keep_history`). After a configuration's replay, a second fake
//! GitHub is restored to the world as it was when each read began, and plain gh asks it the
//! same command, piped as in the replay. The world changes only between the trace's steps
//! (outside writes are applied by the replay itself, and a job's write ends before the next
//! step), so that is the world the read met. An answer whose stdout differs from that one is
//! stale. Times that gh works out from the clock are masked first (a run's age, `3m` or `about
//! 1 hour ago`, and a running run's elapsed time, `1m5s`): they change with the clock, not with
//! GitHub.
//!
//! Its age: the time from the change after which the printed answer was no longer GitHub's
//! (the earliest change of the read's repository after the last moment at which the restored
//! world still answered what was printed) to the read. It is exact to the replay's clock: the
//! world is asked at every change in between, not bounded. An answer that no moment of the
//! history gave is counted apart, its age taken from the start of the history (an upper bound).
//!
//! No request of the check reaches the replay's fake GitHub, so nothing of it is counted.
//!
//! A stale answer is **older than its triggering event** when it had stopped being current by
//! the time of its job's triggering write and that write's event changes what it shows (core's
//! event table): the event told ghcache, before the job's first answer, to drop exactly such
//! answers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use ghcache_core::event::changes_of;
use ghcache_core::policy::Resource;

use super::floor::drops;

/// One read through ghcache, as the replay saw it.
#[derive(Debug, Clone)]
pub struct Read {
    /// When it began.
    pub at: Instant,
    /// The command, without the leading `gh`.
    pub argv: Vec<String>,
    /// The repository it is about (`owner/name`, lowercase; empty if none).
    pub repo: String,
    /// What of the repository it shows.
    pub resource: Resource,
    /// What it printed.
    pub stdout: Vec<u8>,
    /// Its job's triggering write: when it was made and the event GitHub told of it.
    pub event: Option<(Instant, &'static str)>,
}

/// What the check found of one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// What GitHub answered at that moment.
    Current,
    /// Not what GitHub answered.
    Stale {
        /// Since when it was out of date (see the module's documentation).
        age: Duration,
        /// It was out of date by its job's triggering event, which changes what it shows.
        before_event: bool,
        /// No moment of the history answered it: `age` is an upper bound.
        never_current: bool,
    },
}

/// One moment of the world's history: when, and the repositories its changes touched (none
/// for the history's start).
pub type Moment = (Instant, Vec<String>);

/// The verdict on each read. `ask(i, argv)` is plain gh's stdout for `argv` against the world
/// as it was at `moments[i]`; each is asked at most once.
///
/// # Errors
/// What `ask` returns.
pub fn judge(
    reads: &[Read],
    moments: &[Moment],
    mut ask: impl FnMut(usize, &[String]) -> Result<Vec<u8>>,
) -> Result<Vec<Verdict>> {
    let mut asked: HashMap<(usize, Vec<String>), Vec<u8>> = HashMap::new();
    let mut answer = |i: usize, argv: &[String]| -> Result<Vec<u8>> {
        let key = (i, argv.to_vec());
        if let Some(known) = asked.get(&key) {
            return Ok(known.clone());
        }
        let masked = mask(&ask(i, argv)?);
        asked.insert(key, masked.clone());
        Ok(masked)
    };
    let mut verdicts = Vec::with_capacity(reads.len());
    for read in reads {
        // The moments that can have changed this read's answer, up to the read.
        let relevant: Vec<usize> = (0..moments.len())
            .filter(|i| {
                let (at, repos) = &moments[*i];
                *at <= read.at
                    && (repos.is_empty() || read.repo.is_empty() || repos.contains(&read.repo))
            })
            .collect();
        let Some(&now) = relevant.last() else {
            verdicts.push(Verdict::Current);
            continue;
        };
        let printed = mask(&read.stdout);
        if answer(now, &read.argv)? == printed {
            verdicts.push(Verdict::Current);
            continue;
        }
        // The last moment that still answered what was printed; the change after it made the
        // answer stale.
        let mut since = None;
        for pair in relevant.windows(2).rev() {
            if answer(pair[0], &read.argv)? == printed {
                since = Some(pair[1]);
                break;
            }
        }
        let never_current = since.is_none();
        let start = moments[since.unwrap_or(relevant[0])].0;
        let before_event = read.event.is_some_and(|(at, event)| {
            start <= at && drops(&read.repo, changes_of(event), &read.repo, read.resource)
        });
        verdicts.push(Verdict::Stale {
            age: read.at.saturating_duration_since(start),
            before_event,
            never_current,
        });
    }
    Ok(verdicts)
}

/// `out` with the times gh works out from the clock replaced by `~`: a tab-separated field that
/// is one (`0m`, `3h`, `2d`, `1m5s`, `less than a minute ago`, `about 1 hour ago`).
pub fn mask(out: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(out);
    let mut masked = String::with_capacity(text.len());
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            masked.push('\n');
        }
        let fields: Vec<&str> = line
            .split('\t')
            .map(|f| if relative(f) { "~" } else { f })
            .collect();
        masked.push_str(&fields.join("\t"));
    }
    masked.into_bytes()
}

/// Whether a field is a time gh works out from the clock: an age (abbreviated or spelled out)
/// or an elapsed time, numbers each followed by a unit (`d`, `h`, `m`, `s`).
fn relative(field: &str) -> bool {
    let mut digits = 0;
    let mut units = 0;
    let abbreviated = !field.is_empty()
        && field.bytes().all(|b| match b {
            b'0'..=b'9' => {
                digits += 1;
                true
            }
            b'd' | b'h' | b'm' | b's' if digits > 0 => {
                digits = 0;
                units += 1;
                true
            }
            _ => false,
        })
        && digits == 0
        && units > 0;
    let spelled = field == "less than a minute ago"
        || field
            .strip_prefix("about ")
            .and_then(|rest| rest.strip_suffix(" ago"))
            .and_then(|rest| rest.split_once(' '))
            .is_some_and(|(n, unit)| {
                n.parse::<u64>().is_ok()
                    && ["minute", "hour", "day", "month", "year"]
                        .iter()
                        .any(|u| unit == *u || unit.strip_suffix('s') == Some(*u))
            });
    abbreviated || spelled
}

/// What the verdicts add up to, for the report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Reads checked.
    pub reads: usize,
    /// Stale answers.
    pub stale: usize,
    /// Their ages, in seconds, ascending.
    pub ages_s: Vec<f64>,
    /// Stale answers older than their triggering event.
    pub before_event: usize,
    /// Stale answers that no moment of the history gave.
    pub never_current: usize,
}

impl Summary {
    pub fn of(verdicts: &[Verdict]) -> Summary {
        let mut summary = Summary {
            reads: verdicts.len(),
            ..Summary::default()
        };
        for verdict in verdicts {
            if let Verdict::Stale {
                age,
                before_event,
                never_current,
            } = verdict
            {
                summary.stale += 1;
                summary.ages_s.push(age.as_secs_f64());
                summary.before_event += usize::from(*before_event);
                summary.never_current += usize::from(*never_current);
            }
        }
        summary.ages_s.sort_by(f64::total_cmp);
        summary
    }

    /// Stale answers in percent of the reads.
    pub fn percent(&self) -> f64 {
        100.0 * self.stale as f64 / self.reads.max(1) as f64
    }

    /// Stale answers older than `secs`.
    pub fn older_than(&self, secs: f64) -> usize {
        self.ages_s.iter().filter(|a| **a > secs).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    /// A world of one repository whose `issue list` answer is `answers[i]` at moment `i`.
    struct World {
        start: Instant,
        moments: Vec<Moment>,
        answers: Vec<&'static str>,
    }

    impl World {
        /// Moment 0 at 0 s, then one change of `fleet/a` per answer after the first, 10 s
        /// apart.
        fn new(answers: &[&'static str]) -> World {
            let start = Instant::now();
            let moments = (0..answers.len())
                .map(|i| {
                    let repos = match i {
                        0 => Vec::new(),
                        _ => vec!["fleet/a".to_owned()],
                    };
                    (start + Duration::from_secs(10 * i as u64), repos)
                })
                .collect();
            World {
                start,
                moments,
                answers: answers.to_vec(),
            }
        }

        fn read(&self, at: u64, printed: &str, event: Option<(u64, &'static str)>) -> Read {
            Read {
                at: self.start + Duration::from_secs(at),
                argv: argv("issue list -R fleet/a"),
                repo: "fleet/a".to_owned(),
                resource: Resource::Issues,
                stdout: printed.as_bytes().to_vec(),
                event: event.map(|(at, name)| (self.start + Duration::from_secs(at), name)),
            }
        }

        fn judge(&self, reads: &[Read]) -> (Vec<Verdict>, usize) {
            let mut asked = 0;
            let verdicts = judge(reads, &self.moments, |i, _| {
                asked += 1;
                Ok(self.answers[i].as_bytes().to_vec())
            });
            (verdicts.unwrap_or_else(|e| panic!("{e}")), asked)
        }
    }

    fn stale(age: u64, before_event: bool) -> Verdict {
        Verdict::Stale {
            age: Duration::from_secs(age),
            before_event,
            never_current: false,
        }
    }

    #[test]
    fn an_answer_is_stale_from_the_change_after_which_github_no_longer_gave_it() {
        // "a" until 10 s, "b" from 10 s, "b" still after the change at 20 s, "c" from 30 s.
        let world = World::new(&["a", "b", "b", "c"]);
        let (verdicts, asked) = world.judge(&[
            world.read(5, "a", None),
            world.read(15, "b", None),
            world.read(25, "a", None),
            world.read(35, "b", None),
            world.read(36, "b", None),
        ]);
        assert_eq!(
            verdicts,
            [
                Verdict::Current,
                Verdict::Current,
                stale(15, false),
                stale(5, false),
                stale(6, false),
            ]
        );
        assert!(asked <= 4, "each moment asked once: {asked}");
    }

    #[test]
    fn changes_of_other_repositories_do_not_move_the_age() {
        let mut world = World::new(&["a", "b", "b"]);
        world.moments[2].1 = vec!["fleet/other".to_owned()];
        let (verdicts, _) = world.judge(&[world.read(25, "a", None)]);
        assert_eq!(verdicts, [stale(15, false)]);
    }

    #[test]
    fn older_than_the_triggering_event_only_if_the_event_changes_what_it_shows() {
        let world = World::new(&["a", "b", "c"]);
        let (verdicts, _) = world.judge(&[
            // Stale since 10 s; the job's event at 20 s, a comment: it changes issues.
            world.read(25, "a", Some((20, "issue_comment"))),
            // The same, its event a push, which does not change issues.
            world.read(25, "a", Some((20, "push"))),
            // Stale since 20 s, the event at 15 s: it went stale after the event.
            world.read(25, "b", Some((15, "issue_comment"))),
        ]);
        assert_eq!(
            verdicts,
            [stale(15, true), stale(15, false), stale(5, false)]
        );
    }

    #[test]
    fn an_answer_never_given_is_aged_from_the_start() {
        let world = World::new(&["a", "b"]);
        let (verdicts, _) = world.judge(&[world.read(15, "z", None)]);
        assert_eq!(
            verdicts,
            [Verdict::Stale {
                age: Duration::from_secs(15),
                before_event: false,
                never_current: true
            }]
        );
    }

    #[test]
    fn relative_times_are_masked_and_nothing_else() {
        let run = "in_progress\t\tBuild #4\tCI\tmain\tpush\t4\t1m5s\t3m\n";
        assert_eq!(
            mask(run.as_bytes()),
            b"in_progress\t\tBuild #4\tCI\tmain\tpush\t4\t~\t~\n"
        );
        for field in [
            "12h",
            "2d",
            "0s",
            "1h2m3s",
            "less than a minute ago",
            "about 1 hour ago",
            "about 3 days ago",
        ] {
            assert_eq!(mask(field.as_bytes()), b"~", "{field}");
        }
        for field in [
            "m",
            "3x",
            "1m5",
            "s5",
            "",
            "Jan  1, 2026",
            "about it",
            "2026-12-07 23:41:05 +0000 UTC",
            "main",
        ] {
            assert_eq!(mask(field.as_bytes()), field.as_bytes(), "{field}");
        }
    }

    #[test]
    fn the_summary_counts_and_sorts() {
        let verdicts = [
            Verdict::Current,
            stale(3, true),
            stale(1, false),
            Verdict::Current,
        ];
        let summary = Summary::of(&verdicts);
        assert_eq!(
            (summary.reads, summary.stale, summary.before_event),
            (4, 2, 1)
        );
        assert_eq!(summary.ages_s, [1.0, 3.0]);
        assert!((summary.percent() - 50.0).abs() < 1e-9);
        assert_eq!(summary.older_than(2.0), 1);
    }
}
