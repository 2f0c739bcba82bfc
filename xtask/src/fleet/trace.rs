//! The seeded trace: CI work as it reaches a fleet, in time order, and with `--outside-writes`
//! the writes made on GitHub from outside it ([`super::outside`]).

use std::time::Duration;

use super::options::{repo_name, Options};
use super::outside::{self, Write};
use super::rng::Rng;

/// Read commands, most frequent first (`{repo}`, `{pr}` are filled in per run).
const READS: [&str; 9] = [
    "pr view {pr} -R {repo}",
    "release list -R {repo}",
    "api repos/{repo}",
    "pr list -R {repo}",
    "run list -R {repo}",
    "issue list -R {repo}",
    "repo view {repo} --json name,description",
    "workflow list -R {repo}",
    "label list -R {repo}",
];

/// What happens in the trace, in time order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A runner picks up a job of workflow run `run` (from 0) of `repo` (`owner/name`).
    Start {
        slot: usize,
        job: usize,
        run: usize,
        repo: String,
    },
    /// One of the job's gh commands (without the leading `gh`).
    Run { slot: usize, argv: Vec<String> },
    /// The job is over.
    End { slot: usize },
    /// A write made on GitHub from outside the fleet.
    Outside(Write),
}

/// The job number of the release bot's job (no run's job has it).
pub(super) const BOT_JOB: usize = 1_000_000;

/// The release bot's job: on a runner of its own (slot `o.runners`), halfway through the
/// trace, `o.burst_writes` issues filed one after another.
pub(super) fn burst(o: &Options) -> Vec<(Duration, Step)> {
    let at = o.span / 2;
    let slot = o.runners;
    let repo = repo_name(0);
    let mut steps = vec![(
        at,
        Step::Start {
            slot,
            job: BOT_JOB,
            run: o.workflow_runs,
            repo: repo.clone(),
        },
    )];
    for n in 0..o.burst_writes {
        let line =
            format!("issue create -R {repo} -t release-note-{n} -b filed-by-the-release-bot");
        let argv = line.split(' ').map(str::to_owned).collect();
        steps.push((at, Step::Run { slot, argv }));
    }
    steps.push((at, Step::End { slot }));
    steps
}

/// A workflow run's script: `len` distinct reads drawn by Zipf, in the order drawn.
fn script(rng: &mut Rng, len: usize, repo: &str, pr: u64) -> Vec<Vec<String>> {
    let mut picked: Vec<usize> = Vec::new();
    let want = len.min(READS.len());
    while picked.len() < want {
        let i = rng.zipf(READS.len());
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    picked
        .into_iter()
        .map(|i| {
            READS[i]
                .replace("{repo}", repo)
                .replace("{pr}", &pr.to_string())
                .split(' ')
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// How the tables group a command: `gh api` calls as one, others by their first two words
/// (`pr view`).
pub fn command(argv: &[String]) -> String {
    match argv.first().map(String::as_str) {
        Some("api") => "api".to_owned(),
        _ => argv.iter().take(2).cloned().collect::<Vec<_>>().join(" "),
    }
}

/// The trace's reads (the commands that are not writes), in order: one per answer a replay
/// books.
pub fn reads(steps: &[(Duration, Step)]) -> impl Iterator<Item = &[String]> {
    steps.iter().filter_map(|(_, step)| match step {
        Step::Run { argv, .. } => (!matches!(
            ghcache_core::policy::classify(argv),
            ghcache_core::policy::Decision::Write(_)
        ))
        .then_some(argv.as_slice()),
        _ => None,
    })
}

/// The trace, with the time of each step from the start of the replay.
pub fn trace(o: &Options) -> Vec<(Duration, Step)> {
    let mut rng = Rng(o.seed);
    let mut arrivals: Vec<Duration> = (0..o.workflow_runs).map(|_| rng.within(o.span)).collect();
    arrivals.sort();
    let mut free_at = vec![Duration::ZERO; o.runners.max(1)];
    let mut timed: Vec<(Duration, usize, Step)> = Vec::new();
    let mut jobs = 0;
    let mut writes = 0;
    // Its own generator: the rest of the trace is the same with or without outside writes.
    let mut triggers = outside::trigger_rng(o);
    for (run, arrival) in arrivals.into_iter().enumerate() {
        let repo = repo_name(rng.zipf(o.repos));
        let pr = 1 + rng.zipf(3) as u64;
        let width = o.matrix[(rng.next() % o.matrix.len().max(1) as u64) as usize];
        let commands = script(&mut rng, o.script_len, &repo, pr);
        if o.outside_writes {
            // Before the run's jobs, which may start at the same moment.
            let write = outside::trigger(&mut triggers, &repo, pr, run);
            timed.push((arrival, timed.len(), Step::Outside(write)));
        }
        for _ in 0..width {
            let ready = arrival + rng.within(o.pickup);
            // The runner that is free first takes the job.
            let (slot, free) = free_at
                .iter()
                .copied()
                .enumerate()
                .min_by_key(|(_, at)| *at)
                .unwrap_or((0, Duration::ZERO));
            let start = ready.max(free);
            let mut at = start;
            timed.push((
                at,
                timed.len(),
                Step::Start {
                    slot,
                    job: jobs,
                    run,
                    repo: repo.clone(),
                },
            ));
            jobs += 1;
            for argv in &commands {
                at += o.gap;
                timed.push((
                    at,
                    timed.len(),
                    Step::Run {
                        slot,
                        argv: argv.clone(),
                    },
                ));
            }
            if rng.next() % 100 < o.write_percent {
                writes += 1;
                at += o.gap;
                let line = format!("issue create -R {repo} -t fleet-{writes} -b filed-by-a-job");
                let argv = line.split(' ').map(str::to_owned).collect();
                timed.push((at, timed.len(), Step::Run { slot, argv }));
            }
            at += o.gap;
            timed.push((at, timed.len(), Step::End { slot }));
            free_at[slot] = at;
        }
    }
    if o.outside_writes {
        for (at, write) in outside::background(o) {
            timed.push((at, timed.len(), Step::Outside(write)));
        }
    }
    if o.rate_limits {
        for (at, step) in burst(o) {
            timed.push((at, timed.len(), step));
        }
    }
    timed.sort_by_key(|(at, order, _)| (*at, *order));
    timed.into_iter().map(|(at, _, step)| (at, step)).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_trace_and_another_seed_another() {
        let o = Options::quick();
        assert_eq!(trace(&o), trace(&o));
        let other = Options {
            seed: 7,
            ..o.clone()
        };
        assert_ne!(trace(&o), trace(&other));
    }

    #[test]
    fn every_job_starts_before_its_commands_and_ends_after_them() {
        let o = Options::full();
        let mut open = BTreeMap::new();
        let mut jobs = 0;
        let mut last = Duration::ZERO;
        for (at, step) in trace(&o) {
            assert!(at >= last, "steps are in time order");
            last = at;
            match step {
                Step::Start { slot, repo, .. } => {
                    assert!(open.insert(slot, repo).is_none(), "one job per runner");
                    jobs += 1;
                }
                Step::Run { slot, argv } => {
                    let repo = open.get(&slot).map(String::as_str).unwrap_or("?");
                    assert!(
                        argv.iter().any(|a| a.contains(repo)),
                        "a job asks about its own run's repository: {argv:?} in {repo}"
                    );
                }
                Step::End { slot } => assert!(open.remove(&slot).is_some()),
                Step::Outside(_) => panic!("no outside writes unless asked for"),
            }
            assert!(open.len() <= o.runners);
        }
        assert!(open.is_empty());
        let least = o.workflow_runs * o.matrix.iter().min().copied().unwrap_or(0);
        assert!(jobs >= least, "every run fans out into its matrix");
    }

    #[test]
    fn the_jobs_of_a_run_run_the_same_script() {
        let o = Options {
            workflow_runs: 1,
            matrix: &[4],
            write_percent: 0,
            ..Options::full()
        };
        let mut scripts: BTreeMap<usize, Vec<Vec<String>>> = BTreeMap::new();
        for (_, step) in trace(&o) {
            if let Step::Run { slot, argv } = step {
                scripts.entry(slot).or_default().push(argv);
            }
        }
        assert_eq!(scripts.len(), 4, "four jobs on four runners");
        let first = scripts.values().next().cloned().unwrap_or_default();
        assert_eq!(first.len(), o.script_len);
        assert!(scripts.values().all(|s| *s == first));
    }

    #[test]
    fn outside_writes_leave_the_rest_of_the_trace_as_it_was() {
        let o = Options::full();
        let with = Options {
            outside_writes: true,
            ..o.clone()
        };
        let outside: Vec<(Duration, Step)> = trace(&with);
        let rest: Vec<(Duration, Step)> = outside
            .iter()
            .filter(|(_, s)| !matches!(s, Step::Outside(_)))
            .cloned()
            .collect();
        assert_eq!(rest, trace(&o));
        assert_eq!(trace(&with), outside, "the same seed, the same writes");
        let other = Options { seed: 7, ..with };
        assert_ne!(trace(&other), outside);
    }

    #[test]
    fn every_run_starts_with_its_triggering_write_on_its_repository() {
        let o = Options {
            outside_writes: true,
            ..Options::full()
        };
        let steps = trace(&o);
        let mut started: BTreeMap<usize, (Duration, String)> = BTreeMap::new();
        let mut background = 0;
        let mut pr_pushes = 0;
        for (at, step) in &steps {
            match step {
                Step::Outside(w) => match w.starts {
                    Some(run) => {
                        assert!(started.insert(run, (*at, w.repo.clone())).is_none());
                        pr_pushes += usize::from(w.what != outside::What::Push);
                    }
                    None => background += 1,
                },
                Step::Start { run, repo, .. } => {
                    let (written, on) = started
                        .get(run)
                        .unwrap_or_else(|| panic!("run {run} started before its write"));
                    assert!(written <= at);
                    assert_eq!(on, repo);
                }
                _ => {}
            }
        }
        assert_eq!(started.len(), o.workflow_runs);
        assert!(pr_pushes > 0 && pr_pushes < o.workflow_runs, "{pr_pushes}");
        assert_eq!(background, outside::background(&o).len());
        // A pull request run's write is to the pull request its script views.
        let mut running = BTreeMap::new();
        let mut pushed = BTreeMap::new();
        for (_, step) in &steps {
            match step {
                Step::Outside(Write {
                    what: outside::What::PrPush(pr),
                    starts: Some(run),
                    ..
                }) => {
                    pushed.insert(*run, *pr);
                }
                Step::Start { slot, run, .. } => {
                    running.insert(*slot, *run);
                }
                Step::Run { slot, argv } if argv.starts_with(&["pr".into(), "view".into()]) => {
                    let run = running.get(slot).copied().unwrap_or(usize::MAX);
                    if let Some(pr) = pushed.get(&run) {
                        assert_eq!(argv.get(2), Some(&pr.to_string()), "run {run}");
                    }
                }
                _ => {}
            }
        }
    }
}
