//! The seeded trace: CI work as it reaches a fleet, in time order.

use std::time::Duration;

use super::options::Options;

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
    /// A runner picks up a job of a workflow run of `repo` (`owner/name`).
    Start {
        slot: usize,
        job: usize,
        repo: String,
    },
    /// One of the job's gh commands (without the leading `gh`).
    Run { slot: usize, argv: Vec<String> },
    /// The job is over.
    End { slot: usize },
}

/// A small deterministic generator (splitmix64): the same seed, the same trace, on any machine.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform number in `0..1`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform duration in `0..max`.
    fn within(&mut self, max: Duration) -> Duration {
        max.mul_f64(self.unit())
    }

    /// Index `0..n` drawn from a Zipf distribution with exponent 1.
    pub fn zipf(&mut self, n: usize) -> usize {
        let total: f64 = (1..=n).map(|k| 1.0 / k as f64).sum();
        let mut target = self.unit() * total;
        for k in 1..=n {
            target -= 1.0 / k as f64;
            if target <= 0.0 {
                return k - 1;
            }
        }
        n - 1
    }
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

/// The trace, with the time of each step from the start of the replay.
pub fn trace(o: &Options) -> Vec<(Duration, Step)> {
    let mut rng = Rng(o.seed);
    let mut arrivals: Vec<Duration> = (0..o.workflow_runs).map(|_| rng.within(o.span)).collect();
    arrivals.sort();
    let mut free_at = vec![Duration::ZERO; o.runners.max(1)];
    let mut timed: Vec<(Duration, usize, Step)> = Vec::new();
    let mut jobs = 0;
    let mut writes = 0;
    for arrival in arrivals {
        let repo = format!("fleet/repo-{}", rng.zipf(o.repos));
        let pr = 1 + rng.zipf(3) as u64;
        let width = o.matrix[(rng.next() % o.matrix.len().max(1) as u64) as usize];
        let commands = script(&mut rng, o.script_len, &repo, pr);
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
    fn zipf_favours_the_first_items() {
        let mut rng = Rng(1);
        let mut counts = [0u32; 4];
        for _ in 0..10_000 {
            counts[rng.zipf(4)] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[2] && counts[2] > counts[3]);
    }
}
