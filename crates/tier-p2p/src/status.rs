//! The daemon's status: one type that the node makes and every reader takes, from
//! `ghcache daemon status` (a table, or `--json`) to the metrics endpoint and the tests.
//!
//! It travels over the control socket as JSON text ([`crate::wire::Reply::Status`]) with the
//! field names that `ghcache daemon status --json` has always printed. Fields are declared in
//! name order, the order in which that JSON has always listed them, so the text is the same as
//! before the status was a type. A field that a daemon of another version does not send reads
//! as its default; one this version does not know is ignored.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ghcache_core::budget::Summary;
use serde::{Deserialize, Serialize};

use crate::traffic::Traffic;

/// A running daemon's state, as it answers a status request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Status {
    /// Producers held to a GitHub Actions OIDC token they presented (peer ids): they may sign
    /// entries only for the scopes their token allows (none for a refused token).
    pub bound_producers: Vec<String>,
    /// Peers connected now (peer ids).
    pub connected_peers: Vec<String>,
    /// What the daemon counted since it started.
    pub counters: Counters,
    /// Entries the daemon knows a holder of (announced, learned from directories, its own).
    pub directory_entries: usize,
    /// The writes to GitHub the daemon hears, by its own sources or by connected peers': while
    /// it hears a repository's, this machine's commands serve its answers up to their class's
    /// heard TTL. Empty: TTLs as usual.
    pub heard: Vec<HeardStatus>,
    /// The heard TTLs in force (ms), by TTL class.
    pub heard_ttl_ms: BTreeMap<String, u64>,
    /// A keeper's work now; `None` when the daemon is no keeper.
    pub keep: Option<Keeping>,
    /// Whether the daemon is a keeper (`--keep`).
    pub keeper: bool,
    /// Connected peers that said they are keepers (peer ids).
    pub keepers: Vec<String>,
    /// Where the daemon listens (multiaddrs); empty for one that only dials out.
    pub listen_addrs: Vec<String>,
    /// Where the daemon's metrics are served (`http://ADDR/metrics`), when they are.
    pub metrics_url: Option<String>,
    /// Since when (ms since the epoch) the daemon may have missed invalidations and is catching
    /// up: it was stopped or cut off, and no peer told it yet what it missed; `None` when it is
    /// in touch.
    pub out_of_touch_since_ms: Option<u64>,
    /// The daemon's peer id.
    pub peer_id: String,
    /// The daemon's process id.
    pub pid: u32,
    /// What this machine's rate-limit book knows of each principal's budget (GitHub's latest
    /// readings and pauses, told to this machine's commands or by its peers), as
    /// `ghcache stats --json` shows it.
    pub rate_limits: Vec<Summary>,
    /// Whether peers can dial the daemon: "dialable" (one connected to it), "not dialable" (a
    /// peer it asked could not dial it back: it stays out of the DHT), "not known yet", or
    /// "not listening"; empty from a daemon of an earlier release.
    pub reach: String,
    /// Whether the daemon is read-only: it consumes, and never announces or serves.
    pub read_only: bool,
    /// Scopes whose gossip topic the daemon follows.
    pub scopes: usize,
    /// The producers whose entries the daemon accepts (peer ids); empty for any swarm member.
    pub trusted_peers: Vec<String>,
    /// Peers that lookups skip now, because dialing them failed lately.
    pub unreachable_peers: usize,
    /// Sources of GitHub's own writes the daemon hears (a webhook receiver): since when, what
    /// they told of and counted.
    pub write_sources: Vec<SourceStatus>,
}

impl Status {
    /// The JSON text that travels over the control socket and `--json` prints.
    ///
    /// # Errors
    /// None in practice: every field is a string, a number, or a list or map of those.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Reads [`Status::to_json`]'s text.
    ///
    /// # Errors
    /// Text that is not JSON, or a field of the wrong type.
    pub fn from_json(text: &str) -> Result<Status, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// A source of writes as `daemon status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SourceStatus {
    /// What it is: `webhook on 127.0.0.1:8090`.
    pub name: String,
    /// Since when it is connected (ms since the epoch): the daemon serves it from its start.
    pub since_ms: u64,
    /// Writes it told of, applied here and sent to the swarm.
    pub writes: u64,
    /// When it last told of one (ms since the epoch).
    pub last_write_ms: Option<u64>,
    /// Its own counts, by name.
    pub counts: BTreeMap<String, u64>,
}

/// One source's writes as the daemon hears them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct HeardStatus {
    /// Whose source: "this daemon", or the peer id of the peer that vouches for it.
    pub by: String,
    /// What kind of source: "webhook" or "follow".
    pub kind: String,
    /// The repository whose writes it hears; `None` for every repository.
    pub repo: Option<String>,
    /// The resources whose writes it hears.
    pub resources: Vec<String>,
    /// Since when they are heard here (ms since the epoch).
    pub since_ms: u64,
    /// For a peer's source: how many of this daemon's scopes it vouches for.
    pub scopes: usize,
}

/// What a daemon counted since it started. Each only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Counters {
    /// Announcements received on gossip that passed their checks.
    pub announcements_received: u64,
    /// Peers' rate-limit news written to this machine's book (in batches: a book that cannot
    /// be written, or a daemon without one, applies none).
    pub budget_news_applied: u64,
    /// Rate-limit news received on gossip of the topic's scope from a trusted peer (news that
    /// fails those checks is counted in `rejected`).
    pub budget_news_received: u64,
    /// Of those, news refused as implausible: a pause too long or not begun near now, a
    /// reading from the future or of a window ending hours ahead, more left than the limit.
    pub budget_news_refused: u64,
    /// This machine's rate-limit news sent to its scopes' peers: a new pause at once, readings
    /// at most every 10 s per principal and scope.
    pub budget_news_sent: u64,
    /// Bytes the swarm's connections received.
    pub bytes_in: u64,
    /// Bytes the swarm's connections sent.
    pub bytes_out: u64,
    /// Control connections the daemon closed: idle or slow past a deadline, evicted to make
    /// room, or sending garbage.
    pub clients_dropped: u64,
    /// Directory requests answered.
    pub directories_served: u64,
    /// Manifests learned from peers' directories.
    pub directory_learned: u64,
    /// Entries served to peers.
    pub fetches_served: u64,
    /// Lookups for a CLI that found a valid entry.
    pub hits: u64,
    /// Invalidations received on gossip that passed their checks.
    pub invalidations_received: u64,
    /// Entries announced on a scope a keeper follows that it did not keep: its queue was full,
    /// no peer that holds it was connected, or the fetch failed its checks.
    pub keep_missed: u64,
    /// Entries a keeper fetched from the peer that announced them, checked and stored.
    pub kept: u64,
    /// Entries this machine's commands found or fetched and handed over to be stored in their
    /// cache, through the daemon's open index (one that a write made out of date since is
    /// dropped there, as the command would have dropped it).
    pub local_stores: u64,
    /// Lookups asked by CLI processes.
    pub lookups: u64,
    /// Lookups that ran out of time: their deadline came while a fetch from a connected peer
    /// was under way. One that has nobody left to ask (no holder connected, dials that failed
    /// or hang) says "miss" before it, and is not counted here.
    pub lookups_timed_out: u64,
    /// What peers asked for past their share of a table (one peer may have a keeper follow a
    /// few new scopes, and is told only so many directory records): scopes a keeper did not
    /// follow for them, and directory records of theirs that were forgotten or refused.
    pub over_share: u64,
    /// Data from peers that failed a check (forged, malformed, untrusted, off-scope, unbound).
    pub rejected: u64,
    /// OIDC tokens presented by peers that failed their checks (forged, expired, for another
    /// peer or issuer).
    pub tokens_refused: u64,
    /// Entries and manifests refused because their producer may not sign for their scope: its
    /// OIDC token names another repository, or it presented none where one is required. Also
    /// counted in `rejected`.
    pub unbound: u64,
}

impl Counters {
    /// Every counter with its JSON name, in name order: how `ghcache daemon status` lists them
    /// and the metrics endpoint exports them.
    pub fn named(&self) -> [(&'static str, u64); 22] {
        [
            ("announcements_received", self.announcements_received),
            ("budget_news_applied", self.budget_news_applied),
            ("budget_news_received", self.budget_news_received),
            ("budget_news_refused", self.budget_news_refused),
            ("budget_news_sent", self.budget_news_sent),
            ("bytes_in", self.bytes_in),
            ("bytes_out", self.bytes_out),
            ("clients_dropped", self.clients_dropped),
            ("directories_served", self.directories_served),
            ("directory_learned", self.directory_learned),
            ("fetches_served", self.fetches_served),
            ("hits", self.hits),
            ("invalidations_received", self.invalidations_received),
            ("keep_missed", self.keep_missed),
            ("kept", self.kept),
            ("local_stores", self.local_stores),
            ("lookups", self.lookups),
            ("lookups_timed_out", self.lookups_timed_out),
            ("over_share", self.over_share),
            ("rejected", self.rejected),
            ("tokens_refused", self.tokens_refused),
            ("unbound", self.unbound),
        ]
    }
}

/// A keeper's work now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Keeping {
    /// Bytes the fetches under way may bring.
    pub bytes_in_flight: u64,
    /// Fetches under way.
    pub in_flight: usize,
    /// Fetches waiting.
    pub queued: usize,
    /// Scopes followed.
    pub scopes: usize,
}

impl Keeping {
    /// Each number with its JSON name, in name order, as `ghcache daemon status` lists them.
    pub fn named(&self) -> [(&'static str, u64); 4] {
        [
            ("bytes_in_flight", self.bytes_in_flight),
            ("in_flight", self.in_flight as u64),
            ("queued", self.queued as u64),
            ("scopes", self.scopes as u64),
        ]
    }
}

/// The counters while the daemon runs: its tasks bump them, a status request reads them.
#[derive(Debug, Default)]
pub(crate) struct LiveCounters {
    pub(crate) announcements_received: AtomicU64,
    /// Shared with the machine's book, which counts what it wrote.
    pub(crate) budget_news_applied: Arc<AtomicU64>,
    pub(crate) budget_news_received: AtomicU64,
    pub(crate) budget_news_refused: AtomicU64,
    pub(crate) budget_news_sent: AtomicU64,
    pub(crate) invalidations_received: AtomicU64,
    pub(crate) fetches_served: AtomicU64,
    pub(crate) lookups: AtomicU64,
    pub(crate) lookups_timed_out: AtomicU64,
    pub(crate) hits: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) clients_dropped: AtomicU64,
    pub(crate) kept: AtomicU64,
    pub(crate) local_stores: AtomicU64,
    pub(crate) keep_missed: AtomicU64,
    pub(crate) directories_served: AtomicU64,
    pub(crate) directory_learned: AtomicU64,
    pub(crate) tokens_refused: AtomicU64,
    /// Shared with the producer binding, which counts its own refusals.
    pub(crate) unbound: Arc<AtomicU64>,
    pub(crate) over_share: AtomicU64,
}

impl LiveCounters {
    /// Their values now, with the bytes that `traffic` counted.
    pub(crate) fn snapshot(&self, traffic: &Traffic) -> Counters {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counters {
            announcements_received: n(&self.announcements_received),
            budget_news_applied: n(&self.budget_news_applied),
            budget_news_received: n(&self.budget_news_received),
            budget_news_refused: n(&self.budget_news_refused),
            budget_news_sent: n(&self.budget_news_sent),
            bytes_in: traffic.bytes_in(),
            bytes_out: traffic.bytes_out(),
            clients_dropped: n(&self.clients_dropped),
            directories_served: n(&self.directories_served),
            directory_learned: n(&self.directory_learned),
            fetches_served: n(&self.fetches_served),
            hits: n(&self.hits),
            invalidations_received: n(&self.invalidations_received),
            keep_missed: n(&self.keep_missed),
            kept: n(&self.kept),
            local_stores: n(&self.local_stores),
            lookups: n(&self.lookups),
            lookups_timed_out: n(&self.lookups_timed_out),
            over_share: n(&self.over_share),
            rejected: n(&self.rejected),
            tokens_refused: n(&self.tokens_refused),
            unbound: n(&self.unbound),
        }
    }
}

/// Adds one to `counter`.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use ghcache_core::budget::{Book, Pause, Principal, Reading};

    use super::*;

    /// A book with one reading of a token's and one pause of a repository's.
    fn book() -> Book {
        let mut book = Book::default();
        let (Some(token), Some(repo)) = (
            Principal::parse("token:0123456789abcdef"),
            Principal::parse("repo:o/r"),
        ) else {
            panic!("the principals parse");
        };
        let reading = Reading {
            resource: "core".into(),
            limit: 5000,
            remaining: 4990,
            used: 10,
            reset_s: 3_600,
            at_ms: 1_000,
        };
        book.observe(&token, reading);
        let pause = Pause {
            since_ms: 1_000,
            until_ms: 61_000,
            strikes: 0,
        };
        book.pause(&repo, pause);
        book
    }

    fn sample() -> Status {
        let mut counters = Counters::default();
        for (i, value) in [
            &mut counters.announcements_received,
            &mut counters.budget_news_applied,
            &mut counters.budget_news_received,
            &mut counters.budget_news_refused,
            &mut counters.budget_news_sent,
            &mut counters.bytes_in,
            &mut counters.bytes_out,
            &mut counters.clients_dropped,
            &mut counters.directories_served,
            &mut counters.directory_learned,
            &mut counters.fetches_served,
            &mut counters.hits,
            &mut counters.invalidations_received,
            &mut counters.keep_missed,
            &mut counters.kept,
            &mut counters.local_stores,
            &mut counters.lookups,
            &mut counters.lookups_timed_out,
            &mut counters.over_share,
            &mut counters.rejected,
            &mut counters.tokens_refused,
            &mut counters.unbound,
        ]
        .into_iter()
        .enumerate()
        {
            *value = i as u64 + 1;
        }
        Status {
            bound_producers: vec!["12D3KooWA".into()],
            connected_peers: vec!["12D3KooWA".into(), "12D3KooWB".into()],
            counters,
            directory_entries: 7,
            heard: vec![HeardStatus {
                by: "this daemon".into(),
                kind: "webhook".into(),
                repo: None,
                resources: vec!["issues".into()],
                since_ms: 1_000,
                scopes: 0,
            }],
            heard_ttl_ms: [("list".to_owned(), 600_000)].into(),
            keep: Some(Keeping {
                bytes_in_flight: 4096,
                in_flight: 2,
                queued: 3,
                scopes: 1,
            }),
            keeper: true,
            keepers: vec!["12D3KooWB".into()],
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            metrics_url: Some("http://127.0.0.1:9100/metrics".into()),
            out_of_touch_since_ms: None,
            peer_id: "12D3KooWC".into(),
            pid: 4242,
            rate_limits: book().summaries(),
            reach: "dialable".into(),
            read_only: false,
            scopes: 1,
            trusted_peers: Vec::new(),
            unreachable_peers: 0,
            write_sources: vec![SourceStatus {
                name: "webhook on 127.0.0.1:8090".into(),
                since_ms: 1_000,
                writes: 2,
                last_write_ms: Some(3_000),
                counts: [
                    ("deliveries".to_owned(), 2),
                    ("bad_signatures".to_owned(), 1),
                ]
                .into(),
            }],
        }
    }

    #[test]
    fn the_status_round_trips_through_its_json() -> Result<(), serde_json::Error> {
        let status = sample();
        assert_eq!(Status::from_json(&status.to_json()?)?, status);
        let idle = Status::default();
        assert_eq!(Status::from_json(&idle.to_json()?)?, idle);
        Ok(())
    }

    /// The text `--json` printed when the status was built field by field: users' scripts read
    /// these names.
    #[test]
    fn the_json_keeps_the_names_and_order_it_always_had() -> Result<(), serde_json::Error> {
        let expected = concat!(
            r#"{"bound_producers":["12D3KooWA"],"#,
            r#""connected_peers":["12D3KooWA","12D3KooWB"],"counters":{"#,
            r#""announcements_received":1,"budget_news_applied":2,"budget_news_received":3,"#,
            r#""budget_news_refused":4,"budget_news_sent":5,"bytes_in":6,"bytes_out":7,"#,
            r#""clients_dropped":8,"directories_served":9,"directory_learned":10,"#,
            r#""fetches_served":11,"hits":12,"invalidations_received":13,"keep_missed":14,"#,
            r#""kept":15,"local_stores":16,"lookups":17,"lookups_timed_out":18,"#,
            r#""over_share":19,"rejected":20,"tokens_refused":21,"unbound":22},"#,
            r#""directory_entries":7,"heard":[{"by":"this daemon","kind":"webhook","repo":null,"#,
            r#""resources":["issues"],"since_ms":1000,"scopes":0}],"heard_ttl_ms":{"list":600000},"#,
            r#""keep":{"bytes_in_flight":4096,"in_flight":2,"queued":3,"#,
            r#""scopes":1},"keeper":true,"keepers":["12D3KooWB"],"#,
            r#""listen_addrs":["/ip4/127.0.0.1/tcp/4001"],"#,
            r#""metrics_url":"http://127.0.0.1:9100/metrics","out_of_touch_since_ms":null,"#,
            r#""peer_id":"12D3KooWC","pid":4242,"#,
            r#""rate_limits":[{"paused_until_ms":61000,"principal":"repo:o/r","resources":{}},"#,
            r#"{"paused_until_ms":null,"principal":"token:0123456789abcdef","resources":{"#,
            r#""core":{"limit":5000,"read_at_ms":1000,"remaining":4990,"reset":3600,"used":10}}}],"#,
            r#""reach":"dialable","read_only":false,"scopes":1,"trusted_peers":[],"unreachable_peers":0,"#,
            r#""write_sources":[{"name":"webhook on 127.0.0.1:8090","since_ms":1000,"writes":2,"#,
            r#""last_write_ms":3000,"counts":{"bad_signatures":1,"deliveries":2}}]}"#,
        );
        assert_eq!(sample().to_json()?, expected);
        let plain = Status::default().to_json()?;
        assert!(plain.contains(r#""keep":null"#), "{plain}");
        assert!(plain.contains(r#""metrics_url":null"#), "{plain}");
        Ok(())
    }

    #[test]
    fn named_lists_match_the_json_names_in_order() -> Result<(), serde_json::Error> {
        let status = sample();
        let json: serde_json::Value = serde_json::from_str(&status.to_json()?)?;
        let names = |value: &serde_json::Value| -> Vec<String> {
            value
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        let counters: Vec<(String, u64)> = status
            .counters
            .named()
            .iter()
            .map(|(name, n)| ((*name).to_owned(), *n))
            .collect();
        let in_json: Vec<(String, u64)> = names(&json["counters"])
            .into_iter()
            .map(|name| {
                let n = json["counters"][&name].as_u64().unwrap_or(u64::MAX);
                (name, n)
            })
            .collect();
        assert_eq!(counters, in_json);
        let keeping = status.keep.unwrap_or_default();
        let keep_names: Vec<&str> = keeping.named().iter().map(|(name, _)| *name).collect();
        assert_eq!(keep_names, names(&json["keep"]));
        Ok(())
    }

    #[test]
    fn a_status_from_another_version_reads_what_it_can() -> Result<(), serde_json::Error> {
        let older = r#"{"peer_id":"12D3KooWC","counters":{"hits":3},"listen_addrs":[]}"#;
        let status = Status::from_json(older)?;
        assert_eq!(status.peer_id, "12D3KooWC");
        assert_eq!(status.counters.hits, 3);
        assert_eq!(status.counters.lookups, 0);
        assert_eq!(status.keep, None);
        assert!(status.rate_limits.is_empty(), "{status:?}");
        let newer = r#"{"peer_id":"p","a_field_from_later":{"x":1},"counters":{"new":1}}"#;
        assert_eq!(Status::from_json(newer)?.peer_id, "p");
        assert!(Status::from_json(r#"{"pid":"not a number"}"#).is_err());
        assert!(Status::from_json("").is_err());
        Ok(())
    }

    #[test]
    fn a_snapshot_reads_every_live_counter() {
        let live = LiveCounters::default();
        bump(&live.hits);
        bump(&live.hits);
        bump(&live.rejected);
        let counters = live.snapshot(&Traffic::default());
        assert_eq!(counters.hits, 2);
        assert_eq!(counters.rejected, 1);
        assert_eq!(counters.named().iter().map(|(_, n)| n).sum::<u64>(), 3);
    }
}
