//! `ghcache daemon --metrics ADDR`: the daemon's status and the cache's persisted statistics in
//! Prometheus's text format on `http://ADDR/metrics`.
//!
//! ```text
//! # HELP ghcache_p2p_hits_total Daemon counter.
//! # TYPE ghcache_p2p_hits_total counter
//! ghcache_p2p_hits_total 12
//! # HELP ghcache_rate_limit_remaining Requests left of the principal's budget ...
//! # TYPE ghcache_rate_limit_remaining gauge
//! ghcache_rate_limit_remaining{principal="repo:o/r",resource="core"} 874
//! ```
//!
//! Every name starts with `ghcache_`, and a counter's ends in `_total`. Label values come from
//! the machine's rate-limit book, which peers write to: they are escaped as the format asks.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ghcache_core::budget::{Balance, Summary};
use ghcache_tier_local as local;
use ghcache_tier_p2p as p2p;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{oneshot, Semaphore};

/// Metrics connections served at once. A scraper sends its request as soon as it connects
/// and is answered in milliseconds, so a few suffice.
const METRICS_CONNECTIONS: usize = 16;
/// Largest request head read from a scraper; Prometheus sends a few hundred bytes.
const METRICS_HEAD_MAX: usize = 4096;
/// How long a metrics connection may take to send its request.
const METRICS_REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// How long a scraper may take to read the answer.
const METRICS_REPLY_DEADLINE: Duration = Duration::from_secs(5);
/// At most one line per this interval about connections closed to make room.
const METRICS_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// A minimal HTTP endpoint: `GET /metrics` in Prometheus text format, from the daemon's status
/// and the cache's persisted statistics.
///
/// At most [`METRICS_CONNECTIONS`] are served at once, one task each. When all are taken, the
/// connection that has waited longest without sending its request is closed to make room (a
/// scraper sends at once, so that one is not a scraper); when every one is being answered, the
/// newcomer waits in the listen backlog for one to finish. Refusing newcomers instead would let
/// a handful of idle connections shut scrapes out.
pub(super) async fn serve(listener: tokio::net::TcpListener, dir: PathBuf) {
    let slots = Arc::new(Semaphore::new(METRICS_CONNECTIONS));
    let waiting = Arc::new(Waiting::default());
    let mut last_log: Option<Instant> = None;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("ghcache daemon: metrics accept failed: {e}");
                // Out of file descriptors, most likely: do not spin on the error.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if waiting.evict_oldest()
                    && last_log.is_none_or(|at| at.elapsed() >= METRICS_LOG_INTERVAL)
                {
                    last_log = Some(Instant::now());
                    eprintln!(
                        "ghcache daemon: metrics: {METRICS_CONNECTIONS} connections open; closed the one idle longest"
                    );
                }
                match slots.clone().acquire_owned().await {
                    Ok(permit) => permit,
                    Err(_) => return,
                }
            }
        };
        let (id, evicted) = waiting.add();
        let dir = dir.clone();
        let waiting = waiting.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut stream = stream;
            let mut head = vec![0u8; METRICS_HEAD_MAX];
            let read = tokio::select! {
                _ = evicted => None,
                read = tokio::time::timeout(METRICS_REQUEST_DEADLINE, read_head(&mut stream, &mut head)) => Some(read),
            };
            waiting.remove(id);
            let Some(Ok(Ok(n))) = read else { return };
            let request = String::from_utf8_lossy(&head[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = if path == "/metrics" {
                ("200 OK", metrics_text(&dir).await)
            } else {
                ("404 Not Found", "not found; try /metrics\n".to_owned())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(
                METRICS_REPLY_DEADLINE,
                stream.write_all(response.as_bytes()),
            )
            .await;
        });
    }
}

/// Reads a request's head (request line and headers) into `head`, up to the blank line that ends
/// it or until `head` is full; returns its length. A head may arrive in several reads: parsing
/// only the first one would answer part of a request, and closing with the rest unread makes
/// the kernel reset the connection before the client reads the answer.
async fn read_head(stream: &mut tokio::net::TcpStream, head: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < head.len() {
        let n = stream.read(&mut head[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
        if head[..filled].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    Ok(filled)
}

/// Metrics connections that have not sent their request yet, oldest first.
#[derive(Default)]
struct Waiting(Mutex<WaitQueue>);

#[derive(Default)]
struct WaitQueue {
    next_id: u64,
    /// Each connection's id, and the sender whose drop closes it.
    open: VecDeque<(u64, oneshot::Sender<()>)>,
}

impl Waiting {
    fn queue(&self) -> std::sync::MutexGuard<'_, WaitQueue> {
        // One push, retain or pop at a time: a panic cannot leave the queue half-changed.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self) -> (u64, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let mut queue = self.queue();
        let id = queue.next_id;
        queue.next_id += 1;
        queue.open.push_back((id, tx));
        (id, rx)
    }

    fn remove(&self, id: u64) {
        self.queue().open.retain(|(other, _)| *other != id);
    }

    /// Closes the connection that has waited longest; `false` if none is waiting.
    fn evict_oldest(&self) -> bool {
        self.queue().open.pop_front().is_some()
    }
}

/// Prometheus's text format (version 0.0.4), written one family at a time.
#[derive(Default)]
struct Exposition(String);

/// One sample of a family: its labels (name, value) and its value.
type Sample<'a> = (Vec<(&'static str, &'a str)>, u64);

impl Exposition {
    /// A family of one sample without labels, `ghcache_{name}`.
    fn one(&mut self, name: &str, help: &str, kind: &str, value: u64) {
        self.family(name, help, kind, vec![(Vec::new(), value)]);
    }

    /// A family, `ghcache_{name}`: its `HELP` and `TYPE` lines, then each sample; nothing at
    /// all when it has no sample.
    fn family(&mut self, name: &str, help: &str, kind: &str, samples: Vec<Sample<'_>>) {
        if samples.is_empty() {
            return;
        }
        let out = &mut self.0;
        let _ = writeln!(out, "# HELP ghcache_{name} {help}");
        let _ = writeln!(out, "# TYPE ghcache_{name} {kind}");
        for (labels, value) in samples {
            let _ = write!(out, "ghcache_{name}");
            for (i, (label, text)) in labels.iter().enumerate() {
                let open = if i == 0 { '{' } else { ',' };
                let _ = write!(out, "{open}{label}=\"{}\"", escape(text));
            }
            if !labels.is_empty() {
                out.push('}');
            }
            let _ = writeln!(out, " {value}");
        }
    }
}

/// A label value as the text format writes it: a backslash, a double quote and a line feed
/// escaped with a backslash. A principal may be `repo:` and whatever repository name a peer
/// sent.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The rate-limit families: per principal, each resource whose window is on at `now_ms` (what
/// is left, of how many, until when), and whether a secondary limit pauses it.
fn rate_limits(out: &mut Exposition, summaries: &[Summary], now_ms: u64) {
    let per_resource = |value: fn(&Balance) -> u64| -> Vec<Sample<'_>> {
        summaries
            .iter()
            .flat_map(|s| {
                s.current(now_ms).map(move |(resource, balance)| {
                    let labels = vec![("principal", s.principal.as_str()), ("resource", resource)];
                    (labels, value(balance))
                })
            })
            .collect()
    };
    out.family(
        "rate_limit_remaining",
        "Requests left of the principal's budget of the resource in its window, as GitHub last told this machine or its peers.",
        "gauge",
        per_resource(|b| b.remaining),
    );
    out.family(
        "rate_limit_limit",
        "Requests the principal's window of the resource allows.",
        "gauge",
        per_resource(|b| b.limit),
    );
    out.family(
        "rate_limit_reset_seconds",
        "When the principal's window of the resource ends and its budget is whole again, in seconds since the epoch.",
        "gauge",
        per_resource(|b| b.reset),
    );
    let paused = summaries
        .iter()
        .map(|s| {
            let labels = vec![("principal", s.principal.as_str())];
            (labels, u64::from(s.paused_at(now_ms).is_some()))
        })
        .collect();
    out.family(
        "rate_limit_paused",
        "1 while a secondary rate limit holds the principal's requests back, else 0.",
        "gauge",
        paused,
    );
}

async fn metrics_text(dir: &Path) -> String {
    let mut out = Exposition::default();
    if let Ok(status) = p2p::status(dir).await {
        let peers = status.connected_peers.len() as u64;
        out.one(
            "p2p_connected_peers",
            "Peers connected now.",
            "gauge",
            peers,
        );
        for (name, n) in status.counters.named() {
            out.one(
                &format!("p2p_{name}_total"),
                "Daemon counter.",
                "counter",
                n,
            );
        }
        out.one(
            "heard_sources",
            "Sources of GitHub's writes heard now (own or a connected peer's): answers live longer.",
            "gauge",
            status.heard.len() as u64,
        );
        // One source of each kind runs at most: its kind names the metric.
        for source in &status.write_sources {
            let kind = source.name.split_whitespace().next().unwrap_or("source");
            out.one(
                &format!("{kind}_writes_total"),
                "GitHub's own writes this source told of, sent to the swarm.",
                "counter",
                source.writes,
            );
            for (name, n) in &source.counts {
                out.one(
                    &format!("{kind}_{name}_total"),
                    "Counter of a source of GitHub's writes.",
                    "counter",
                    *n,
                );
            }
        }
        rate_limits(&mut out, &status.rate_limits, ghcache_core::now_ms());
    }
    if let Ok(tier) = local::Tier::open(local::Config::new(dir)).await {
        if let Ok(stats) = tier.stats().await {
            // The tiers of a full build, in chain order, whichever this one was built with.
            let hits = [local::NAME, p2p::NAME, super::IPFS]
                .map(|tier| (format!("hits_{tier}"), stats.hits_of(tier)));
            let rest = [
                ("misses", stats.misses),
                ("revalidated", stats.revalidated),
                ("stale_served", stats.stale_served),
                ("bypassed", stats.bypassed),
            ];
            let rows = [("requests".to_owned(), stats.requests)]
                .into_iter()
                .chain(hits)
                .chain(rest.map(|(name, value)| (name.to_owned(), value)));
            for (name, value) in rows {
                out.one(&format!("{name}_total"), "Cache counter.", "counter", value);
            }
            out.one("entries", "Entries stored.", "gauge", stats.entries);
            out.one("bytes", "Bytes stored.", "gauge", stats.bytes);
        }
        tier.close().await;
    }
    out.0
}

#[cfg(test)]
mod tests {
    use ghcache_core::budget::{Book, Pause, Principal, Reading};

    use super::*;

    #[test]
    fn label_values_are_escaped_as_the_text_format_asks() {
        assert_eq!(escape("repo:o/r"), "repo:o/r");
        assert_eq!(escape(r#"repo:o/a"b\c"#), r#"repo:o/a\"b\\c"#);
        assert_eq!(escape("a\nb"), r"a\nb");
    }

    #[test]
    fn windows_still_on_are_exported_and_every_principal_says_whether_it_is_paused() {
        let mut book = Book::default();
        let (Some(odd), Some(token)) = (
            Principal::parse(r#"repo:o/a"b\c"#),
            Principal::parse("token:0123456789abcdef"),
        ) else {
            panic!("the principals parse");
        };
        let reading = |resource: &str, remaining: u64, reset_s: u64| Reading {
            resource: resource.to_owned(),
            limit: 5000,
            remaining,
            used: 5000 - remaining,
            reset_s,
            at_ms: 1_000,
        };
        book.observe(&token, reading("core", 4990, 3_600));
        book.observe(&token, reading("graphql", 4000, 10));
        book.observe(&odd, reading("core", 12, 3_600));
        let pause = Pause {
            since_ms: 1_000,
            until_ms: 61_000,
            strikes: 0,
        };
        book.pause(&odd, pause);
        let mut out = Exposition::default();
        rate_limits(&mut out, &book.summaries(), 20_000);
        let odd = r#"principal="repo:o/a\"b\\c""#;
        let token = r#"principal="token:0123456789abcdef""#;
        let expected = [
            "# HELP ghcache_rate_limit_remaining Requests left of the principal's budget of the resource in its window, as GitHub last told this machine or its peers.".to_owned(),
            "# TYPE ghcache_rate_limit_remaining gauge".to_owned(),
            format!(r#"ghcache_rate_limit_remaining{{{odd},resource="core"}} 12"#),
            format!(r#"ghcache_rate_limit_remaining{{{token},resource="core"}} 4990"#),
            "# HELP ghcache_rate_limit_limit Requests the principal's window of the resource allows.".to_owned(),
            "# TYPE ghcache_rate_limit_limit gauge".to_owned(),
            format!(r#"ghcache_rate_limit_limit{{{odd},resource="core"}} 5000"#),
            format!(r#"ghcache_rate_limit_limit{{{token},resource="core"}} 5000"#),
            "# HELP ghcache_rate_limit_reset_seconds When the principal's window of the resource ends and its budget is whole again, in seconds since the epoch.".to_owned(),
            "# TYPE ghcache_rate_limit_reset_seconds gauge".to_owned(),
            format!(r#"ghcache_rate_limit_reset_seconds{{{odd},resource="core"}} 3600"#),
            format!(r#"ghcache_rate_limit_reset_seconds{{{token},resource="core"}} 3600"#),
            "# HELP ghcache_rate_limit_paused 1 while a secondary rate limit holds the principal's requests back, else 0.".to_owned(),
            "# TYPE ghcache_rate_limit_paused gauge".to_owned(),
            format!("ghcache_rate_limit_paused{{{odd}}} 1"),
            format!("ghcache_rate_limit_paused{{{token}}} 0"),
        ];
        assert_eq!(out.0.lines().collect::<Vec<_>>(), expected);

        // Past every window and pause: no budget left to show, and nobody paused.
        let mut later = Exposition::default();
        rate_limits(&mut later, &book.summaries(), 4_000_000);
        assert!(!later.0.contains("rate_limit_remaining"), "{}", later.0);
        assert!(
            later
                .0
                .contains(&format!("ghcache_rate_limit_paused{{{token}}} 0")),
            "{}",
            later.0
        );
    }

    #[test]
    fn a_family_without_labels_is_one_line_after_its_help_and_type() {
        let mut out = Exposition::default();
        out.one("entries", "Entries stored.", "gauge", 3);
        out.family("empty", "Never written.", "gauge", Vec::new());
        assert_eq!(
            out.0,
            "# HELP ghcache_entries Entries stored.\n# TYPE ghcache_entries gauge\nghcache_entries 3\n"
        );
    }
}
