//! Invariant 6 under load: 200 `ghcache gh` processes on two machines of one swarm at once,
//! reads and writes mixed, GitHub failing for a while and a daemon restarting meanwhile. No
//! read may answer from before a write that finished on its machine before the read began, or
//! from after one that began after it ended; every failure must fall in GitHub's outage; the
//! counters must add up and the index must pass SQLite's integrity check.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ghcache_tests::{ghcache_bin, run_piped, Fault, Machine, Run, World};

const PROCESSES: usize = 200;
const REPOS: usize = 4;
/// One process starts every this often: all 200 within two seconds.
const STAGGER: Duration = Duration::from_millis(10);
const OUTAGE: (Duration, Duration) = (Duration::from_millis(400), Duration::from_millis(900));
const RESTART_AT: Duration = Duration::from_millis(1200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `issue list` of a repository: what writes change.
    List,
    /// `repo view`: read, not changed by the writes.
    View,
    /// `issue create` with a title unique to the job.
    Write,
}

struct Job {
    machine: usize,
    repo: usize,
    kind: Kind,
    title: String,
}

struct Done {
    started: Instant,
    ended: Instant,
    run: Run,
}

fn jobs() -> Vec<Job> {
    // A fixed linear congruential sequence: the same mix every run.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..PROCESSES)
        .map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let roll = (state >> 33) % 100;
            let kind = match roll {
                0..=14 => Kind::Write,
                15..=24 => Kind::View,
                _ => Kind::List,
            };
            Job {
                machine: i % 2,
                repo: ((state >> 20) % REPOS as u64) as usize,
                kind,
                title: format!("stress write {i}"),
            }
        })
        .collect()
}

fn args(job: &Job) -> Vec<String> {
    let repo = format!("o/stress{}", job.repo);
    let words: Vec<&str> = match job.kind {
        Kind::List => vec!["issue", "list", "--limit", "200", "-R", &repo],
        Kind::View => vec!["repo", "view", &repo, "--json", "name,description"],
        Kind::Write => vec!["issue", "create", "-R", &repo, "-t", &job.title, "-b", "x"],
    };
    words.into_iter().map(String::from).collect()
}

/// Whether `run` lists the issue titled `title` (`gh issue list` prints tab-separated rows).
fn lists(run: &Run, title: &str) -> bool {
    run.out()
        .lines()
        .any(|line| line.split('\t').nth(2) == Some(title))
}

async fn integrity(db: &std::path::Path) -> String {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::ConnectOptions as _;
    let mut conn = match SqliteConnectOptions::new()
        .filename(db)
        .read_only(true)
        .connect()
        .await
    {
        Ok(conn) => conn,
        Err(err) => return err.to_string(),
    };
    sqlx::query_scalar::<_, String>("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| e.to_string())
}

#[test]
fn two_hundred_processes_with_writes_an_outage_and_a_restart_never_answer_wrong() {
    let world = World::new();
    world.github.set_latency(Duration::from_millis(30));
    let key = world.swarm_key("stress");
    let machines = [world.machine("stress-a"), world.machine("stress-b")];
    let seed = machines[0].daemon(&key, &[]);
    let bootstrap = seed.addr.clone();
    let second = machines[1].daemon(&key, &["--bootstrap", &bootstrap]);
    assert!(second.wait_peers(1), "the two daemons connect");

    let jobs = jobs();
    let results: Arc<Mutex<Vec<Option<Done>>>> =
        Arc::new(Mutex::new((0..jobs.len()).map(|_| None).collect()));
    let t0 = Instant::now();
    let threads: Vec<_> = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| {
            let machine: Machine = machines[job.machine].clone();
            let args = args(job);
            let results = results.clone();
            let at = t0 + STAGGER * i as u32;
            thread::spawn(move || {
                // Shapes the load over time; nothing waits on another process through it.
                thread::sleep(at.saturating_duration_since(Instant::now()));
                let started = Instant::now();
                let run = run_piped(machine.command(ghcache_bin()).arg("gh").args(&args));
                let done = Done {
                    started,
                    ended: Instant::now(),
                    run,
                };
                if let Ok(mut results) = results.lock() {
                    results[i] = Some(done);
                }
            })
        })
        .collect();

    thread::sleep(OUTAGE.0.saturating_sub(t0.elapsed()));
    world.github.set_fault(Some(Fault::ServerError));
    let outage_began = Instant::now();
    thread::sleep(OUTAGE.1.saturating_sub(t0.elapsed()));
    world.github.set_fault(None);
    let outage_ended = Instant::now();
    thread::sleep(RESTART_AT.saturating_sub(t0.elapsed()));
    second.stop();
    let second = machines[1].daemon(&key, &["--bootstrap", &bootstrap]);
    for thread in threads {
        let _ = thread.join();
    }
    let elapsed = t0.elapsed();

    let results = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    let done: Vec<&Done> = results.iter().flatten().collect();
    assert_eq!(done.len(), PROCESSES, "every process ran");
    let in_outage = |d: &Done| d.started <= outage_ended && d.ended >= outage_began;
    let mut failures_in_outage = 0;
    let mut wrong = Vec::new();
    for (job, result) in jobs.iter().zip(&results) {
        let Some(result) = result else { continue };
        if result.run.code != 0 {
            if in_outage(result) && !result.run.err().contains("ghcache: error") {
                failures_in_outage += 1;
                continue;
            }
            wrong.push(format!("{:?} failed: {}", job.kind, result.run.err()));
            continue;
        }
        if job.kind != Kind::List {
            continue;
        }
        for (other, written) in jobs.iter().zip(&results) {
            let Some(written) = written else { continue };
            if other.kind != Kind::Write || other.repo != job.repo || written.run.code != 0 {
                continue;
            }
            let listed = lists(&result.run, &other.title);
            if other.machine == job.machine && written.ended < result.started && !listed {
                wrong.push(format!(
                    "a list of o/stress{} missed {:?}, written on its machine before it began",
                    job.repo, other.title
                ));
            }
            if written.started > result.ended && listed {
                wrong.push(format!(
                    "a list of o/stress{} showed {:?}, written after it ended",
                    job.repo, other.title
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong answers:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    let mut totals = Vec::new();
    for (index, machine) in machines.iter().enumerate() {
        let ran = jobs.iter().filter(|j| j.machine == index).count() as u64;
        let stats = machine.stats();
        let n = |path: &[&str]| {
            path.iter()
                .fold(&stats, |v, k| &v[*k])
                .as_u64()
                .unwrap_or(0)
        };
        let answered = n(&["hits", "local"])
            + n(&["hits", "p2p"])
            + n(&["hits", "ipfs"])
            + n(&["misses"])
            + n(&["bypassed"]);
        assert_eq!(n(&["requests"]), ran, "every process counted once: {stats}");
        assert_eq!(answered, ran, "the counters add up: {stats}");
        let check = tokio::runtime::Builder::new_current_thread()
            .build()
            .map(|rt| rt.block_on(integrity(&machine.cache_dir().join("index.db"))))
            .unwrap_or_else(|e| e.to_string());
        assert_eq!(check, "ok", "pragma integrity_check");
        totals.push(format!(
            "machine {index}: {ran} processes, local hits {}, p2p hits {}, misses {}, \
             bypassed {}, stale served {}",
            n(&["hits", "local"]),
            n(&["hits", "p2p"]),
            n(&["misses"]),
            n(&["bypassed"]),
            n(&["stale_served"]),
        ));
    }
    drop(second);
    drop(seed);
    eprintln!(
        "stress: {PROCESSES} processes in {:.1}s, {} requests reached GitHub, {failures_in_outage} \
         failed inside the outage, 0 wrong answers; {}",
        elapsed.as_secs_f64(),
        world.requests(),
        totals.join("; ")
    );
}
