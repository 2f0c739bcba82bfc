//! The fleet replay's tables (Markdown on stdout), its JSON figures and its chart.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::floor::{self, Floor, Invalidation, Read, Sum};
use super::freshness;
use super::options::{Options, Topology};
use super::outcome::{Outcome, Replayed, Setup};
use super::trace::Step;
use crate::charts::{bar_chart, Bar};
use crate::stats::percentile;

/// The configuration the acceptance target is about, and the topology.
const TARGET: (Topology, Setup) = (Topology::Hosted, Setup::LocalP2pKeeper);
/// How close to the floor (per class), in percentage points of the requests cut, it must come.
const TARGET_POINTS: f64 = 5.0;

/// A topology's two floors, with what they cost measured by its no-cache replay.
struct Floors {
    per_class: (Floor, Sum),
    whole_repository: (Floor, Sum),
}

impl Floors {
    fn get(&self, rule: Invalidation) -> &(Floor, Sum) {
        match rule {
            Invalidation::PerClass => &self.per_class,
            Invalidation::WholeRepository => &self.whole_repository,
        }
    }
}

/// Cut of `requests` against `base`, in percent.
fn cut(requests: usize, base: usize) -> f64 {
    100.0 * (1.0 - requests as f64 / base.max(1) as f64)
}

/// A cut as the tables show it: `-86%` fewer requests, or `+30%` more (following costs some).
fn change(cut: f64) -> String {
    match cut < 0.0 {
        true => format!("+{:.0}%", -cut),
        false => format!("-{cut:.0}%"),
    }
}

/// Prints every table and returns the JSON figures.
pub fn report(o: &Options, steps: &[(Duration, Step)], replayed: &[Replayed]) -> serde_json::Value {
    let jobs = steps
        .iter()
        .filter(|(_, s)| matches!(s, Step::Start { .. }))
        .count();
    println!(
        "\n## Fleet replay: {} workflow runs over {} s, {jobs} jobs (matrices of {:?}; {}% end \
         with a write) on {} runners (seed {}, {} ms GitHub latency)",
        o.workflow_runs,
        o.span.as_secs(),
        o.matrix,
        o.write_percent,
        o.runners,
        o.seed,
        o.latency.as_millis()
    );
    let mut topologies = Vec::new();
    for r in replayed {
        // Under GitHub's rate limits the replay books how commands ended, not what each
        // read cost: its own table ([`super::limits`]) stands for the topology's.
        let mut figures = match o.rate_limits {
            true => json!({ "topology": r.topology.name(), "runners": r.runners }),
            false => topology(r, steps),
        };
        if o.outside_writes {
            figures["outside_writes"] = freshness::table(r, steps, o.outside_per_hour);
        }
        if o.rate_limits {
            figures["rate_limits"] = super::limits::table(r);
        }
        topologies.push(figures);
    }
    let by_traffic = match o.rate_limits {
        true => Vec::new(),
        false => floor::by_traffic(o),
    };
    if !by_traffic.is_empty() {
        print_by_traffic(&by_traffic);
    }
    json!({
        "seed": o.seed,
        "runners": o.runners,
        "workflow_runs": o.workflow_runs,
        "jobs": jobs,
        "repos": o.repos,
        "matrix_widths": o.matrix,
        "script_len": o.script_len,
        "span_s": o.span.as_secs_f64(),
        "gap_ms": o.gap.as_millis() as u64,
        "pickup_ms": o.pickup.as_millis() as u64,
        "write_percent_of_jobs": o.write_percent,
        "latency_ms": o.latency.as_millis() as u64,
        "topologies": topologies,
        "floor_by_traffic": by_traffic
            .iter()
            .map(|c| json!({
                "write_percent_of_jobs": c.write_percent,
                "matrix_widths": c.matrix,
                "per_class_cut_of_reads_percent": c.per_class,
                "whole_repository_cut_of_reads_percent": c.whole_repository,
            }))
            .collect::<Vec<_>>(),
    })
}

/// One topology's tables and figures.
fn topology(r: &Replayed, steps: &[(Duration, Step)]) -> serde_json::Value {
    let Some((_, none)) = r.outcomes.first() else {
        return json!({"topology": r.topology.name(), "configurations": []});
    };
    let floor_of = |rule| {
        let f = floor::floor(steps, rule, r.topology.tokens());
        let sum = f.sum(&none.costs, none.write_requests);
        (f, sum)
    };
    let floors = Floors {
        per_class: floor_of(Invalidation::PerClass),
        whole_repository: floor_of(Invalidation::WholeRepository),
    };
    let base_requests = none.requests;
    let base_charged = none.charged.max(1) as f64;
    let local = r
        .outcomes
        .iter()
        .find(|(s, _)| *s == Setup::Local)
        .map_or(1, |(_, out)| out.requests.max(1)) as f64;
    let (what, tokens, caches) = match r.topology {
        Topology::Hosted => (
            "GitHub-hosted runners",
            "a token per job, declared as the job's own (scope: the run's repository)",
            "a fresh machine per job",
        ),
        Topology::SelfHosted => (
            "self-hosted runners",
            "one token for the fleet",
            "each runner keeps its cache dir and daemon from job to job",
        ),
    };
    println!("\n### {what}: runners {}; {tokens}; {caches}\n", r.runners);
    println!(
        "| configuration | reads | requests to GitHub | charged | 304s | local | p2p | ipfs | \
         GitHub | vs no cache | rate-limit multiplier |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let per_class = &floors.per_class.0;
    let mut rows = Vec::new();
    for (setup, out) in &r.outcomes {
        let answered_by = out.answered_by();
        let share = |tier: &str| {
            let n = answered_by.get(tier).copied().unwrap_or(0);
            100.0 * n as f64 / out.tiers.len().max(1) as f64
        };
        let github = share("github") + share("github (304)");
        let cut = cut(out.requests, base_requests);
        let multiplier = base_charged / out.charged.max(1) as f64;
        println!(
            "| {} | {} | {} | {} | {} | {:.0}% | {:.0}% | {:.0}% | {:.0}% | {} | {:.1}x |",
            setup.name(),
            out.tiers.len(),
            out.requests,
            out.charged,
            out.not_modified,
            share(ghcache_tier_local::NAME),
            share(ghcache_tier_p2p::NAME),
            share(ghcache_tier_ipfs::NAME),
            github,
            change(cut),
            multiplier
        );
        let latency: BTreeMap<&String, serde_json::Value> = out
            .latency
            .iter()
            .map(|(cmd, ms)| {
                (
                    cmd,
                    json!({"median_ms": percentile(ms, 0.5), "p95_ms": percentile(ms, 0.95), "n": ms.len()}),
                )
            })
            .collect();
        let per_tier: BTreeMap<&String, serde_json::Value> = by_tier(out)
            .into_iter()
            .map(|(tier, ms)| {
                let figures = json!({"median_ms": percentile(&ms, 0.5), "n": ms.len()});
                (tier, figures)
            })
            .collect();
        rows.push(json!({
            "configuration": setup.name(),
            "reads": out.tiers.len(),
            "writes": out.writes,
            "requests_to_github": out.requests,
            "charged_requests": out.charged,
            "not_modified_304": out.not_modified,
            "answered_by": answered_by,
            "cut_vs_no_cache_percent": cut,
            "cut_vs_local_only_factor": local / out.requests.max(1) as f64,
            "rate_limit_multiplier": multiplier,
            "worst_lag_behind_trace_ms": out.lag.as_millis() as u64,
            "latency_per_command": latency,
            "latency_per_answering_tier": per_tier,
            "missed_what_the_floor_served": missed(per_class, out, steps),
            "seed_counters": out.seed,
        }));
    }
    let mut floors_json = serde_json::Map::new();
    for rule in Invalidation::ALL {
        let (f, sum) = floors.get(rule);
        let requests_cut = cut(sum.requests, base_requests);
        println!(
            "| the trace's floor, writes dropping {} | {} | {} | {} | | | | | {} reads | -{requests_cut:.0}% | {:.1}x |",
            match rule {
                Invalidation::PerClass => "what they change",
                Invalidation::WholeRepository => "their whole repository",
            },
            f.reads.len(),
            sum.requests,
            sum.charged,
            sum.reads_to_github,
            base_charged / sum.charged.max(1) as f64,
        );
        floors_json.insert(
            rule.json_key().to_owned(),
            json!({
                "reads": f.reads.len(),
                "reads_to_github": sum.reads_to_github,
                "free_revalidations": sum.free_revalidations,
                "requests_to_github": sum.requests,
                "charged_requests": sum.charged,
                "cut_of_reads_percent": f.cut_of_reads(),
                "cut_of_requests_percent": requests_cut,
            }),
        );
    }
    println!(
        "\nThe floor is an ideal fleet-wide cache: one store shared by every job at no cost, the \
         same TTLs, every write dropping at once what it can change (per class) or its whole \
         repository; an expired answer is a conditional request, free when GitHub answers 304 \
         ({}). Its requests are each read's requests as measured without a cache, and the \
         writes'. Free revalidations: {} per class, {} whole repository.",
        match r.topology.tokens() {
            floor::Tokens::PerJob =>
                "with a token per job: only `If-Modified-Since` on single \
                                      resources; an ETag is another job's",
            floor::Tokens::Fleet => "with one token: ETags and `If-Modified-Since`",
        },
        floors.per_class.1.free_revalidations,
        floors.whole_repository.1.free_revalidations,
    );
    let target = (r.topology == TARGET.0)
        .then(|| target(r, &floors, base_requests))
        .flatten();
    print_missed(&rows);
    print_latency(&r.outcomes);
    print_tier_latency(&r.outcomes);
    json!({
        "topology": r.topology.name(),
        "runners_reachable": r.topology == Topology::SelfHosted,
        "runners": r.runners,
        "tokens": match r.topology.tokens() {
            floor::Tokens::PerJob => "per job",
            floor::Tokens::Fleet => "one for the fleet",
        },
        "persistent_runners": r.topology.persistent(),
        "configurations": rows,
        "floor": floors_json,
        "target": target,
    })
}

/// The acceptance target: on hosted runners, local + p2p with a keeper cuts the requests to
/// within [`TARGET_POINTS`] of the per-class floor's cut. Prints and returns it.
fn target(r: &Replayed, floors: &Floors, base: usize) -> Option<serde_json::Value> {
    let (_, out) = r.outcomes.iter().find(|(s, _)| *s == TARGET.1)?;
    let got = cut(out.requests, base);
    let floor = cut(floors.per_class.1.requests, base);
    let points = floor - got;
    let holds = points <= TARGET_POINTS;
    println!(
        "\nTarget: {} on {} runners cuts the requests to GitHub by {got:.1}% against no cache; \
         the floor (per class) by {floor:.1}%: {points:.1} points from it, {} (within {} points).",
        TARGET.1.name(),
        TARGET.0.name(),
        if holds { "holds" } else { "does not hold" },
        TARGET_POINTS
    );
    Some(json!({
        "configuration": TARGET.1.name(),
        "cut_percent": got,
        "floor_cut_percent": floor,
        "points_from_floor": points,
        "within_points": TARGET_POINTS,
        "holds": holds,
    }))
}

impl Outcome {
    /// Reads answered per tier.
    fn answered_by(&self) -> BTreeMap<&str, u64> {
        let mut counts = BTreeMap::new();
        for tier in &self.tiers {
            *counts.entry(tier.as_str()).or_default() += 1;
        }
        counts
    }
}

/// The reads a configuration sent to GitHub that the ideal cache answered, bucketed by how long
/// before the ideal cache had fetched the answer: within seconds, the answer was still on its
/// way (a job of the same run asking while the first one's fetch, announcement or IPFS copy
/// was in flight); later, it was lost (its only holders had gone, or nobody kept it). Also by
/// command, to tell which answers go missing.
fn missed(floor: &Floor, out: &Outcome, steps: &[(Duration, Step)]) -> serde_json::Value {
    let reads = steps.iter().filter_map(|(_, s)| match s {
        Step::Run { argv, .. } => matches!(
            ghcache_core::policy::classify(argv),
            ghcache_core::policy::Decision::Cache(_)
        )
        .then_some(argv),
        _ => None,
    });
    let mut buckets = [0u64; 3];
    let mut by_command: BTreeMap<String, u64> = BTreeMap::new();
    for ((read, tier), argv) in floor.reads.iter().zip(&out.tiers).zip(reads) {
        if let (Read::Served(age), true) = (read, tier.starts_with("github")) {
            let bucket = match age.as_secs_f64() {
                s if s < 2.0 => 0,
                s if s < 10.0 => 1,
                _ => 2,
            };
            buckets[bucket] += 1;
            *by_command.entry(super::trace::command(argv)).or_default() += 1;
        }
    }
    json!({
        "reads": buckets.iter().sum::<u64>(),
        "within_2_s": buckets[0],
        "from_2_to_10_s": buckets[1],
        "later": buckets[2],
        "by_command": by_command,
    })
}

fn print_missed(rows: &[serde_json::Value]) {
    println!(
        "\nReads that went to GitHub although the ideal cache (per class) held the answer, by \
         how long before it had been fetched:\n"
    );
    println!("| configuration | reads | within 2 s | 2 to 10 s | later |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for row in rows {
        let m = &row["missed_what_the_floor_served"];
        println!(
            "| {} | {} | {} | {} | {} |",
            row["configuration"].as_str().unwrap_or("?"),
            m["reads"],
            m["within_2_s"],
            m["from_2_to_10_s"],
            m["later"]
        );
    }
}

/// Each read's wall time, by the tier that answered it.
fn by_tier(out: &Outcome) -> BTreeMap<&String, Vec<f64>> {
    let mut by_tier: BTreeMap<&String, Vec<f64>> = BTreeMap::new();
    for (tier, ms) in out.tiers.iter().zip(&out.read_ms) {
        by_tier.entry(tier).or_default().push(*ms);
    }
    by_tier
}

/// How fast each tier's answers reached the user: a remote tier's hit is worth having only
/// when it beats asking GitHub.
fn print_tier_latency(outcomes: &[(Setup, Outcome)]) {
    println!("\nLatency per answering tier, median ms (reads):\n");
    let tiers: std::collections::BTreeSet<&String> =
        outcomes.iter().flat_map(|(_, out)| &out.tiers).collect();
    print_head(&tiers);
    for (setup, out) in outcomes {
        let by_tier = by_tier(out);
        print!("| {} |", setup.name());
        for tier in &tiers {
            match by_tier.get(*tier) {
                Some(ms) => print!(" {:.0} ({}) |", percentile(ms, 0.5), ms.len()),
                None => print!(" - |"),
            }
        }
        println!();
    }
}

/// The head of a table of configurations by `columns`, each a right-aligned number.
fn print_head<'a>(columns: impl IntoIterator<Item = &'a &'a String> + Copy) {
    print!("| configuration |");
    for column in columns {
        print!(" {column} |");
    }
    println!();
    print!("| --- |");
    for _ in columns {
        print!(" ---: |");
    }
    println!();
}

fn print_latency(outcomes: &[(Setup, Outcome)]) {
    println!("\nLatency per command, median / p95 ms:\n");
    let Some((_, first)) = outcomes.first() else {
        return;
    };
    let commands: Vec<&String> = first.latency.keys().collect();
    print_head(&commands);
    for (setup, out) in outcomes {
        print!("| {} |", setup.name());
        for c in &commands {
            match out.latency.get(*c) {
                Some(ms) => print!(
                    " {:.0} / {:.0} |",
                    percentile(ms, 0.5),
                    percentile(ms, 0.95)
                ),
                None => print!(" - |"),
            }
        }
        println!();
    }
}

fn print_by_traffic(cells: &[floor::Cell]) {
    println!(
        "\nThe floor is a property of the traffic: the ideal cache's cut of the reads on this \
         trace with other write shares and matrix widths (same seed, runners and commands), \
         writes dropping what they change (their whole repository):\n"
    );
    print!("| jobs that end with a write |");
    for widths in floor::WIDTHS {
        print!(" matrix {widths:?} |");
    }
    println!();
    println!("| ---: |{}", " ---: |".repeat(floor::WIDTHS.len()));
    for row in cells.chunks(floor::WIDTHS.len()) {
        print!("| {}% |", row.first().map_or(0, |c| c.write_percent));
        for c in row {
            print!(" -{:.0}% (-{:.0}%) |", c.per_class, c.whole_repository);
        }
        println!();
    }
}

/// The chart of the fleet figures (`report`'s JSON): requests that reached GitHub per
/// topology and configuration, with the floors; its file name and SVG.
pub fn chart(fleet: &serde_json::Value) -> (&'static str, String) {
    fn rows(v: &serde_json::Value) -> &[serde_json::Value] {
        v.as_array().map_or(&[], Vec::as_slice)
    }
    let number = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let mut bars = Vec::new();
    for t in rows(&fleet["topologies"]) {
        let topology = t["topology"].as_str().unwrap_or("?");
        for c in rows(&t["configurations"]) {
            bars.push(Bar {
                label: format!("{topology}: {}", c["configuration"].as_str().unwrap_or("?")),
                value: number(&c["requests_to_github"]),
                note: Some(format!(
                    "{} charged",
                    c["charged_requests"].as_u64().unwrap_or(0)
                )),
            });
        }
        // Under GitHub's rate limits: what each configuration sent, and how many commands
        // failed.
        for c in rows(&t["rate_limits"]) {
            let failed =
                c["reads_failed"].as_u64().unwrap_or(0) + c["writes_failed"].as_u64().unwrap_or(0);
            bars.push(Bar {
                label: format!("{topology}: {}", c["configuration"].as_str().unwrap_or("?")),
                value: number(&c["requests_to_github"]),
                note: Some(format!("{failed} commands failed")),
            });
        }
        // The TTL floors; with outside writes, those of a cache that hears them too.
        let heard = &t["outside_writes"]["floor"]["heard"];
        for (floors, which) in [(&t["floor"], ""), (heard, "writes heard, ")] {
            for rule in Invalidation::ALL {
                let f = &floors[rule.json_key()];
                if f.is_null() {
                    continue;
                }
                bars.push(Bar {
                    label: format!("{topology}: floor, {which}{}", rule.name()),
                    value: number(&f["requests_to_github"]),
                    note: Some(format!(
                        "{} charged",
                        f["charged_requests"].as_u64().unwrap_or(0)
                    )),
                });
            }
        }
    }
    (
        "fleet-github-requests.svg",
        bar_chart(
            "Fleet replay: requests that reached GitHub, per topology and configuration",
            "requests",
            &bars,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_a_bar_per_configuration_and_floor_of_each_topology() {
        let topology = |name: &str| {
            json!({
                "topology": name,
                "configurations": [
                    {"configuration": "no cache (plain gh)", "requests_to_github": 10, "charged_requests": 10},
                    {"configuration": "local only", "requests_to_github": 8, "charged_requests": 7},
                ],
                "floor": {
                    "per_class": {"requests_to_github": 3, "charged_requests": 2},
                    "whole_repository": {"requests_to_github": 4, "charged_requests": 3},
                },
            })
        };
        let fleet = json!({"topologies": [topology("hosted"), topology("self-hosted")]});
        let (name, svg) = chart(&fleet);
        assert_eq!(name, "fleet-github-requests.svg");
        assert_eq!(svg.matches(r#"<rect class="bar""#).count(), 8);
        let mut outside = topology("hosted");
        outside["outside_writes"] = json!({"floor": {"heard": {
            "per_class": {"requests_to_github": 2, "charged_requests": 2},
            "whole_repository": {"requests_to_github": 3, "charged_requests": 3},
        }}});
        let (_, heard) = chart(&json!({ "topologies": [outside] }));
        assert_eq!(heard.matches(r#"<rect class="bar""#).count(), 6);
        assert!(
            heard.contains(">hosted: floor, writes heard, per class</text>"),
            "{heard}"
        );
        assert!(svg.contains(">hosted: local only</text>"), "{svg}");
        assert!(
            svg.contains(">self-hosted: floor, per class</text>"),
            "{svg}"
        );
        assert!(svg.contains(">3 requests (2 charged)</text>"), "{svg}");
    }

    #[test]
    fn more_requests_than_without_a_cache_read_as_more() {
        assert_eq!(change(cut(79, 552)), "-86%");
        assert_eq!(change(cut(717, 552)), "+30%");
        assert_eq!(change(cut(552, 552)), "-0%");
    }
}
