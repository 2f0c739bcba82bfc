//! What a fleet's operator sees of a daemon: every metric that the Grafana dashboard in
//! `contrib/grafana/` queries is one a running daemon serves, and the machine's rate-limit
//! budgets (GitHub's readings from a gh run, a pause, a principal that needs escaping) are in
//! its metrics, in `ghcache daemon status` and in `--json`, as `ghcache stats --json` has them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use ghcache_core::budget::{BookStore as _, Pause, Principal, Reading};
use ghcache_tests::{wait_until, Daemon, Machine, World};
use ghcache_tier_local::BookFile;

/// A principal whose name needs escaping in a label: peers may send any repository name.
const ODD: &str = r#"repo:o/a"b\c"#;
/// How long the test waits for what a gh run wrote to show.
const SHOW_WAIT: Duration = Duration::from_secs(10);

fn dashboard() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/grafana/ghcache-fleet.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("the dashboard is not JSON: {e}"))
}

/// Every value of a key named `key` anywhere in `value`, that is a string.
fn strings_at(value: &serde_json::Value, key: &str, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if k == key {
                    if let Some(text) = v.as_str() {
                        out.push(text.to_owned());
                    }
                }
                strings_at(v, key, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                strings_at(item, key, out);
            }
        }
        _ => {}
    }
}

/// The metric names in a PromQL expression: identifiers `ghcache_[a-z0-9_]+`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("ghcache_") {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        // `xghcache_y` is another identifier, not a ghcache metric.
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// One sample of a scrape: its metric name, labels and value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a Prometheus text exposition (comments skipped, label values unescaped);
/// a line that does not parse is a failure.
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| sample(line).unwrap_or_else(|| panic!("not a sample: {line:?}")))
        .collect()
}

fn sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let (label, tail) = inner.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = tail.char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break i + 1,
                    c => value.push(c),
                }
            };
            labels.insert(label.to_owned(), value);
            inner = &tail[end..];
            inner = inner.strip_prefix(',').unwrap_or(inner);
        }
    }
    let value = rest.trim().parse::<f64>().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// `GET /metrics` of the daemon whose metrics are at `url` (`http://host:port/metrics`): the
/// body, or what failed.
fn scrape(url: &str) -> Result<String, std::io::Error> {
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics");
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200 ") => Ok(body.to_owned()),
        _ => Err(std::io::Error::other(format!("not a scrape: {response}"))),
    }
}

/// The value of `name` with exactly `labels`, if the samples have it.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == wanted)
        .map(|s| s.value)
}

/// A machine with a daemon serving metrics, whose book holds GitHub's readings from two gh
/// runs (a REST one, `core`, and a GraphQL one, `graphql`) and, written as a peer's news would
/// be, a reading and a pause of [`ODD`].
fn daemon_with_budgets(world: &World) -> (Machine, Daemon, String) {
    let machine = world.machine("a");
    let daemon = machine.daemon(&world.swarm_key("team"), &["--metrics", "127.0.0.1:0"]);
    let url = daemon.status().metrics_url.unwrap_or_default();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    machine.cached(&["api", "repos/o/r"]).ok();
    machine.cached(&["issue", "list", "-R", "o/r"]).ok();
    let odd = Principal::parse(ODD).unwrap_or_else(|| panic!("{ODD} is a principal"));
    let now = ghcache_core::now_ms();
    let reading = Reading {
        resource: "core".into(),
        limit: 1000,
        remaining: 7,
        used: 993,
        reset_s: now / 1000 + 1800,
        at_ms: now,
    };
    let pause = Pause {
        since_ms: now,
        until_ms: now + 600_000,
        strikes: 0,
    };
    BookFile::in_dir(&machine.cache_dir())
        .update(&mut |book| {
            book.observe(&odd, reading.clone());
            book.pause(&odd, pause);
        })
        .unwrap_or_else(|e| panic!("write the book: {e}"));
    (machine, daemon, url)
}

/// The token principal of the machine's gh runs, and its readings, as `ghcache stats --json`
/// shows them.
fn token_budget(machine: &Machine) -> (String, serde_json::Value) {
    let stats = machine.stats();
    let all = stats["rate_limits"].as_array().cloned().unwrap_or_default();
    let token = all
        .iter()
        .find(|p| {
            p["principal"]
                .as_str()
                .is_some_and(|n| n.starts_with("token:"))
        })
        .unwrap_or_else(|| panic!("a token's budget in ghcache stats: {stats}"));
    let name = token["principal"].as_str().unwrap_or_default().to_owned();
    (name, token["resources"].clone())
}

#[test]
fn every_metric_the_dashboard_queries_is_one_a_daemon_serves() {
    let dashboard = dashboard();
    let mut exprs = Vec::new();
    strings_at(&dashboard, "expr", &mut exprs);
    assert!(exprs.len() >= 20, "{exprs:?}");
    assert!(exprs.iter().all(|e| !e.trim().is_empty()), "{exprs:?}");
    // The instance variable's query names a metric too.
    let mut queried = exprs.clone();
    strings_at(&dashboard, "definition", &mut queried);
    let wanted: BTreeSet<String> = queried.iter().flat_map(|e| metric_names(e)).collect();
    for name in [
        "ghcache_hits_local_total",
        "ghcache_hits_p2p_total",
        "ghcache_rate_limit_remaining",
        "ghcache_rate_limit_paused",
        "ghcache_p2p_invalidations_received_total",
        "ghcache_p2p_budget_news_received_total",
    ] {
        assert!(
            wanted.contains(name),
            "the dashboard shows {name}: {wanted:?}"
        );
    }

    let world = World::new();
    let (_machine, daemon, url) = daemon_with_budgets(&world);
    let mut served = BTreeSet::new();
    let all_there = wait_until(SHOW_WAIT, || {
        let text = scrape(&url).unwrap_or_default();
        served = samples(&text).into_iter().map(|s| s.name).collect();
        wanted.is_subset(&served)
    });
    let missing: Vec<&String> = wanted.difference(&served).collect();
    assert!(
        all_there,
        "queried by the dashboard, not served: {missing:?}\nserved: {served:?}\n{}",
        daemon.log()
    );
    // Every panel asks the data source the dashboard's variable picks.
    let variables = dashboard["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "{variables:?}"
    );
    let panels = dashboard["panels"].as_array().cloned().unwrap_or_default();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{panel}");
        assert!(
            panel["targets"].as_array().is_some_and(|t| !t.is_empty()),
            "{panel}"
        );
    }
}

#[test]
fn the_metrics_and_daemon_status_show_each_principals_budget_and_pause() {
    let world = World::new();
    let (machine, daemon, url) = daemon_with_budgets(&world);
    let (token, resources) = token_budget(&machine);
    let core = &resources["core"];
    assert!(core["limit"].as_u64() > Some(0), "{resources}");
    assert!(
        resources["graphql"]["limit"].as_u64() > Some(0),
        "{resources}"
    );

    // The metrics: what GitHub last said of each resource's window, and who is paused.
    let odd_core = [("principal", ODD), ("resource", "core")];
    let token_core = [("principal", token.as_str()), ("resource", "core")];
    let token_graphql = [("principal", token.as_str()), ("resource", "graphql")];
    let mut scraped = Vec::new();
    let shown = wait_until(SHOW_WAIT, || {
        scraped = samples(&scrape(&url).unwrap_or_default());
        value(&scraped, "ghcache_rate_limit_remaining", &token_graphql).is_some()
            && value(&scraped, "ghcache_rate_limit_paused", &[("principal", ODD)]).is_some()
    });
    assert!(shown, "{scraped:?}\n{}", daemon.log());
    let number = |v: &serde_json::Value| v.as_u64().map(|n| n as f64);
    assert_eq!(
        value(&scraped, "ghcache_rate_limit_remaining", &token_core),
        number(&core["remaining"])
    );
    assert_eq!(
        value(&scraped, "ghcache_rate_limit_limit", &token_core),
        number(&core["limit"])
    );
    assert_eq!(
        value(&scraped, "ghcache_rate_limit_reset_seconds", &token_core),
        number(&core["reset"])
    );
    assert_eq!(
        value(&scraped, "ghcache_rate_limit_remaining", &token_graphql),
        number(&resources["graphql"]["remaining"])
    );
    assert_eq!(
        value(&scraped, "ghcache_rate_limit_remaining", &odd_core),
        Some(7.0)
    );
    assert_eq!(
        value(&scraped, "ghcache_rate_limit_limit", &odd_core),
        Some(1000.0)
    );
    assert_eq!(
        value(&scraped, "ghcache_rate_limit_paused", &[("principal", ODD)]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &scraped,
            "ghcache_rate_limit_paused",
            &[("principal", token.as_str())]
        ),
        Some(0.0)
    );

    // `--json`: the same `rate_limits` as `ghcache stats --json`, from the same book.
    let status = machine.ghcache(&["daemon", "status", "--json"]).ok();
    let json: serde_json::Value = serde_json::from_slice(&status.stdout)
        .unwrap_or_else(|e| panic!("daemon status --json: {e}: {}", status.out()));
    assert_eq!(
        json["rate_limits"],
        machine.stats()["rate_limits"],
        "{json}"
    );
    let odd = json["rate_limits"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["principal"] == ODD))
        .unwrap_or_else(|| panic!("{ODD} in daemon status: {json}"));
    assert!(
        odd["paused_until_ms"].as_u64() > Some(ghcache_core::now_ms()),
        "{odd}"
    );
    assert_eq!(odd["resources"]["core"]["remaining"], 7, "{odd}");

    // The table: the hourly budgets left, and the pause.
    let table = machine.ghcache(&["daemon", "status"]).ok().out();
    let left = format!(
        "{token} core: {} of {} left, resets in ",
        core["remaining"], core["limit"]
    );
    assert!(table.contains(&left), "{left}\n{table}");
    assert!(table.contains(&format!("{token} graphql: ")), "{table}");
    assert!(
        table.contains(&format!("{ODD}: paused by a secondary limit for ")),
        "{table}"
    );
}

#[test]
fn the_samples_parser_reads_escaped_labels() {
    let line = r#"ghcache_rate_limit_paused{principal="repo:o/a\"b\\c",resource="core"} 1"#;
    let parsed = sample(line).unwrap_or_else(|| panic!("parses"));
    assert_eq!(
        parsed.labels.get("principal").map(String::as_str),
        Some(ODD)
    );
    assert_eq!(
        parsed.labels.get("resource").map(String::as_str),
        Some("core")
    );
    assert_eq!(parsed.value, 1.0);
    assert_eq!(sample("ghcache_entries 3").map(|s| s.value), Some(3.0));
    assert_eq!(
        metric_names("sum(rate(ghcache_hits_local_total{a=\"b\"}[5m])) / xghcache_no"),
        BTreeSet::from(["ghcache_hits_local_total".to_owned()])
    );
}
