//! The replay with outside writes (`--outside-writes`): per configuration, stale answers beside
//! the requests that reached GitHub, and the floors of a cache that hears writes beside those of
//! a TTL cache.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::json;

use super::floor::{self, Invalidation, Sum};
use super::hearing::FOLLOW_EVERY;
use super::outcome::Replayed;
use super::outside::What;
use super::stale::{Summary, Verdict};
use super::trace::{self, Step};
use crate::stats::percentile;

/// The age a webhook's stale answers must stay under: the time a delivery takes to reach every
/// connected runner, with room.
const WEBHOOK_AGE_S: f64 = 2.0;

/// The writes from outside in a trace: those that started runs (pushes, pull request pushes),
/// and those of people and bots.
#[derive(Debug, Default, PartialEq, Eq)]
struct Writes {
    pushes: usize,
    pr_pushes: usize,
    background: usize,
}

impl Writes {
    fn of(steps: &[(Duration, Step)]) -> Writes {
        let mut writes = Writes::default();
        for (_, step) in steps {
            if let Step::Outside(w) = step {
                match (w.starts, w.what) {
                    (Some(_), What::Push) => writes.pushes += 1,
                    (Some(_), _) => writes.pr_pushes += 1,
                    (None, _) => writes.background += 1,
                }
            }
        }
        writes
    }
}

/// Prints one topology's table of stale answers and floors; returns its JSON figures.
pub fn table(r: &Replayed, steps: &[(Duration, Step)], per_hour: f64) -> serde_json::Value {
    let writes = Writes::of(steps);
    println!(
        "\n### Writes from outside the fleet, {} runners: the runs' triggering writes (pushes: {}, \
         pushes to a pull request's branch: {}) and {} by people and bots ({per_hour:.0} an hour)\n",
        r.topology.name(),
        writes.pushes,
        writes.pr_pushes,
        writes.background,
    );
    println!(
        "| configuration | reads | requests to GitHub | charged | follow probes (304s) | \
         webhook deliveries | stale answers | of reads | age max | age p99 | older than \
         {WEBHOOK_AGE_S:.0} s | older than the triggering event |"
    );
    println!("| --- |{}", " ---: |".repeat(11));
    let mut rows = Vec::new();
    for (setup, out) in &r.outcomes {
        let s = Summary::of(&out.verdicts);
        let (max, p99) = (percentile(&s.ages_s, 1.0), percentile(&s.ages_s, 0.99));
        let probes = match setup.follow() {
            true => format!("{} ({})", out.probes, out.probes_not_modified),
            false => String::new(),
        };
        let deliveries = match setup.webhook() {
            true => format!("{} ({} accepted)", out.deliveries, out.deliveries_accepted),
            false => String::new(),
        };
        let age = |secs: f64| match s.stale {
            0 => "-".to_owned(),
            _ => format!("{secs:.1} s"),
        };
        println!(
            "| {} | {} | {} | {} | {probes} | {deliveries} | {} | {:.1}% | {} | {} | {} | {} |",
            setup.name(),
            s.reads,
            out.requests,
            out.charged,
            s.stale,
            s.percent(),
            age(max),
            age(p99),
            s.older_than(WEBHOOK_AGE_S),
            s.before_event,
        );
        if s.never_current > 0 {
            eprintln!(
                "fleet replay: {} answers of {} were never GitHub's (their ages are bounds)",
                s.never_current,
                setup.name()
            );
        }
        let by_command = stale_by_command(&out.verdicts, steps);
        let mut row = json!({
            "configuration": setup.name(),
            "reads": s.reads,
            "requests_to_github": out.requests,
            "charged_requests": out.charged,
            "follow_probes": out.probes,
            "follow_probes_304": out.probes_not_modified,
            "webhook_deliveries": out.deliveries,
            "webhook_deliveries_accepted": out.deliveries_accepted,
            "jobs_that_applied_their_triggering_event": out.events_applied,
            "stale_answers": s.stale,
            "stale_percent_of_reads": s.percent(),
            "stale_age_max_s": max,
            "stale_age_p99_s": p99,
            "stale_older_than_triggering_event": s.before_event,
            "stale_never_current": s.never_current,
            "stale_by_command": by_command,
        });
        row[format!("stale_older_than_{WEBHOOK_AGE_S}_s")] = json!(s.older_than(WEBHOOK_AGE_S));
        rows.push(row);
    }
    let floors = floors(r, steps);
    println!(
        "\nStale: the answer printed differs from what plain gh printed against the fake GitHub \
         restored to the world as it was when the read began (times gh works out from the clock \
         masked). Age: from the change after which GitHub no longer gave the printed answer. \
         Older than the triggering event: already out of date when the job's run was started, \
         and the event changes what it shows. Requests to GitHub include the follow probes, \
         every {FOLLOW_EVERY} (a real keeper's default: 1m). The floors of a cache that hears \
         writes keep an answer until a write (the fleet's or one from outside, heard at once) \
         drops it, with no TTL."
    );
    let applied: Vec<String> = r
        .outcomes
        .iter()
        .filter(|(s, _)| s.event())
        .map(|(s, out)| format!("{} of {} ({})", out.events_applied, out.jobs, s.name()))
        .collect();
    if !applied.is_empty() {
        println!(
            "\nJobs that applied their triggering event: {}.",
            applied.join(", ")
        );
    }
    print_by_command(r, steps);
    json!({
        "writes_from_outside": {
            "runs_started_by_a_push": writes.pushes,
            "runs_started_by_a_pull_request_push": writes.pr_pushes,
            "by_people_and_bots": writes.background,
            "by_people_and_bots_per_hour": per_hour,
        },
        "follow_every": FOLLOW_EVERY,
        "configurations": rows,
        "floor": floors,
    })
}

/// Stale answers per command (`pr view`, `api`, ...).
fn stale_by_command(verdicts: &[Verdict], steps: &[(Duration, Step)]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (verdict, argv) in verdicts.iter().zip(trace::reads(steps)) {
        if matches!(verdict, Verdict::Stale { .. }) {
            *counts.entry(trace::command(argv)).or_default() += 1;
        }
    }
    counts
}

fn print_by_command(r: &Replayed, steps: &[(Duration, Step)]) {
    let counts: Vec<BTreeMap<String, usize>> = r
        .outcomes
        .iter()
        .map(|(_, out)| stale_by_command(&out.verdicts, steps))
        .collect();
    let commands: BTreeSet<&String> = counts.iter().flat_map(BTreeMap::keys).collect();
    if commands.is_empty() {
        return;
    }
    println!("\nStale answers by command:\n");
    print!("| configuration |");
    for command in &commands {
        print!(" {command} |");
    }
    println!("\n| --- |{}", " ---: |".repeat(commands.len()));
    for ((setup, _), counts) in r.outcomes.iter().zip(&counts) {
        print!("| {} |", setup.name());
        for command in &commands {
            print!(" {} |", counts.get(*command).copied().unwrap_or(0));
        }
        println!();
    }
}

/// The four floors' rows and figures: TTL and heard, per class and whole repository, costed
/// with the no-cache replay's requests.
fn floors(r: &Replayed, steps: &[(Duration, Step)]) -> serde_json::Value {
    let Some((_, none)) = r.outcomes.first() else {
        return json!({});
    };
    let tokens = r.topology.tokens();
    let mut figures = serde_json::Map::new();
    for (freshness, key) in [("TTLs", "ttl"), ("writes heard", "heard")] {
        let mut by_rule = serde_json::Map::new();
        for rule in Invalidation::ALL {
            let f = match key {
                "ttl" => floor::floor(steps, rule, tokens),
                _ => floor::heard_floor(steps, rule, tokens),
            };
            let sum: Sum = f.sum(&none.costs, none.write_requests);
            println!(
                "| the trace's floor, {freshness}, writes dropping {} | {} | {} | {} | | | | | | \
                 | | |",
                match rule {
                    Invalidation::PerClass => "what they change",
                    Invalidation::WholeRepository => "their whole repository",
                },
                f.reads.len(),
                sum.requests,
                sum.charged,
            );
            by_rule.insert(
                rule.json_key().to_owned(),
                json!({
                    "reads": f.reads.len(),
                    "reads_to_github": sum.reads_to_github,
                    "requests_to_github": sum.requests,
                    "charged_requests": sum.charged,
                    "cut_of_reads_percent": f.cut_of_reads(),
                }),
            );
        }
        figures.insert(key.to_owned(), serde_json::Value::Object(by_rule));
    }
    serde_json::Value::Object(figures)
}

#[cfg(test)]
mod tests {
    use super::super::options::Options;
    use super::super::trace::trace;
    use super::*;

    #[test]
    fn the_writes_are_told_apart() {
        let o = Options {
            outside_writes: true,
            ..Options::full()
        };
        let writes = Writes::of(&trace(&o));
        assert_eq!(writes.pushes + writes.pr_pushes, o.workflow_runs);
        assert_eq!(writes.background, 24);
        assert_eq!(Writes::of(&trace(&Options::full())), Writes::default());
    }
}
