//! The rule of longer freshness, as the chain judges by it, and the report's encoding.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::testkit::sample_entry;
use crate::{ChainConfig, Entry, KeyInput, OutputMode, Request, Verdict, CLOCK_SKEW};

const MINUTE: u64 = 60_000;

fn scope() -> ScopeId {
    ScopeId::of("test-scope")
}

/// An entry about pull requests of `o/r`, made at `created_at_ms`.
fn entry(created_at_ms: u64) -> Entry {
    let mut entry = sample_entry(7, "o/r", b"#2 title\n");
    entry.manifest.resource = Resource::PullRequests;
    entry.manifest.created_at_ms = created_at_ms;
    entry
}

/// A request for `entry` with a TTL of a minute.
fn request(entry: &Entry) -> Request {
    let input = KeyInput {
        host: "github.com".into(),
        scope: "test-scope".into(),
        repo: "o/r".into(),
        argv: vec!["pr".into(), "list".into()],
        output: OutputMode::Pipe,
    };
    let mut request = Request::new(vec![], input, "o/r".into(), Duration::from_secs(60));
    request.key = entry.manifest.key;
    request.resource = Resource::PullRequests;
    request
}

/// A report valid until `valid_until_ms`: a webhook hears everything since `since_ms`.
fn webhook_report(since_ms: u64, valid_until_ms: u64) -> Report {
    Report {
        valid_until_ms,
        scopes: vec![Covered {
            scope: Some(scope()),
            covers: vec![Cover::everything(SourceKind::Webhook, since_ms)],
        }],
    }
}

/// A report of a follow source that hears `resources` of `repo` since `since_ms`.
fn follow_report(repo: &str, resources: &[Resource], since_ms: u64, valid_until_ms: u64) -> Report {
    Report {
        valid_until_ms,
        scopes: vec![Covered {
            scope: None,
            covers: vec![Cover {
                kind: SourceKind::Follow,
                repo: Some(repo.into()),
                resources: Resources::of(resources),
                since_ms,
            }],
        }],
    }
}

/// How the chain judges `entry` at `now_ms` for a request whose heard TTL is ten minutes
/// under `report`.
fn judged(report: &Report, entry: &Entry, now_ms: u64) -> Verdict {
    let mut request = request(entry);
    request.heard = report.allowance(
        &scope(),
        "o/r",
        Resource::PullRequests,
        Duration::from_secs(600),
        now_ms,
    );
    ChainConfig::default().judge(entry, &request, None, now_ms)
}

#[test]
fn an_entry_made_while_writes_were_heard_is_fresh_past_its_ttl_until_its_heard_ttl() {
    let since = 1_000_000;
    let made = since + CLOCK_SKEW.as_millis() as u64;
    let now = made + 5 * MINUTE;
    let report = webhook_report(since, now + 30_000);
    assert_eq!(judged(&report, &entry(made), made + 1_000), Verdict::Fresh);
    assert_eq!(judged(&report, &entry(made), now), Verdict::Heard);
    let late = made + 11 * MINUTE;
    let report = webhook_report(since, late + 30_000);
    assert_eq!(
        judged(&report, &entry(made), late),
        Verdict::Stale,
        "past the heard TTL"
    );
}

#[test]
fn an_entry_made_before_writes_were_heard_is_not_extended() {
    let since = 1_000_000;
    let now = since + 5 * MINUTE;
    let report = webhook_report(since, now + 30_000);
    for made in [since - 1, since, since + CLOCK_SKEW.as_millis() as u64 - 1] {
        assert_eq!(
            judged(&report, &entry(made), now),
            Verdict::Stale,
            "made at {made}, heard since {since}: a write before it may have gone unheard"
        );
    }
}

#[test]
fn an_expired_report_extends_nothing() {
    let since = 1_000_000;
    let made = since + 10_000;
    let now = made + 5 * MINUTE;
    assert_eq!(
        judged(&webhook_report(since, now + 1), &entry(made), now),
        Verdict::Heard
    );
    assert_eq!(
        judged(&webhook_report(since, now), &entry(made), now),
        Verdict::Stale
    );
    // An allowance read from a report while it was valid ends with it too.
    let report = webhook_report(since, now);
    let allowance = report.allowance(
        &scope(),
        "o/r",
        Resource::PullRequests,
        Duration::from_secs(600),
        now - 1,
    );
    assert!(allowance.is_some_and(|a| !a.extends(&entry(made).manifest, now, CLOCK_SKEW)));
}

#[test]
fn a_resource_repository_or_scope_not_covered_is_not_extended() {
    let since = 1_000_000;
    let made = since + 10_000;
    let now = made + 5 * MINUTE;
    let valid = now + 30_000;
    let issues_only = follow_report("o/r", &[Resource::Issues], since, valid);
    assert_eq!(judged(&issues_only, &entry(made), now), Verdict::Stale);
    let elsewhere = follow_report("o/other", &[Resource::PullRequests], since, valid);
    assert_eq!(judged(&elsewhere, &entry(made), now), Verdict::Stale);
    let covered = follow_report("o/r", &[Resource::PullRequests], since, valid);
    assert_eq!(judged(&covered, &entry(made), now), Verdict::Heard);
    let mut other_scope = webhook_report(since, valid);
    other_scope.scopes[0].scope = Some(ScopeId::of("someone else"));
    assert_eq!(judged(&other_scope, &entry(made), now), Verdict::Stale);
    assert_eq!(
        judged(&Report::default(), &entry(made), now),
        Verdict::Stale
    );
    let webhook = webhook_report(since, valid);
    assert!(
        webhook.scopes[0]
            .covers
            .iter()
            .all(|cover| !cover.covers("", Resource::Other)),
        "an answer about no repository: no repository's events tell of its changes"
    );
}

#[test]
fn the_earliest_cover_that_hears_a_write_decides_since_when() {
    let report = Report {
        valid_until_ms: 10_000,
        scopes: vec![
            Covered {
                scope: None,
                covers: vec![Cover {
                    kind: SourceKind::Follow,
                    repo: Some("o/r".into()),
                    resources: Resources::of(&[Resource::PullRequests]),
                    since_ms: 500,
                }],
            },
            Covered {
                scope: Some(scope()),
                covers: vec![Cover::everything(SourceKind::Webhook, 700)],
            },
        ],
    };
    assert_eq!(
        report.since_ms(&scope(), "o/r", Resource::PullRequests, 1_000),
        Some(500)
    );
    assert_eq!(
        report.since_ms(&scope(), "o/r", Resource::Labels, 1_000),
        Some(700)
    );
    let other = ScopeId::of("other");
    assert_eq!(
        report.since_ms(&other, "o/x", Resource::Issues, 1_000),
        None
    );
}

#[test]
fn an_entry_ttl_caps_the_heard_ttl_as_it_caps_the_ttl() {
    let since = 1_000_000;
    let made = since + 10_000;
    let now = made + 5 * MINUTE;
    let mut request = request(&entry(made));
    request.capped_by_entry_ttl = true;
    request.heard = webhook_report(since, now + 30_000).allowance(
        &scope(),
        "o/r",
        Resource::PullRequests,
        Duration::from_secs(600),
        now,
    );
    // The producer kept GitHub's max-age of a minute: never fresher than that.
    let verdict = ChainConfig::default().judge(&entry(made), &request, None, now);
    assert_eq!(verdict, Verdict::Stale);
}

#[test]
fn reports_round_trip_and_are_bounded() {
    let report = Report {
        valid_until_ms: 42,
        scopes: vec![
            Covered {
                scope: None,
                covers: vec![Cover::everything(SourceKind::Webhook, 7)],
            },
            Covered {
                scope: Some(scope()),
                covers: vec![Cover {
                    kind: SourceKind::Follow,
                    repo: Some("o".repeat(MAX_REPO)),
                    resources: Resources::of(&[Resource::Issues, Resource::Metadata]),
                    since_ms: 9,
                }],
            },
        ],
    };
    assert_eq!(Report::decode(&report.encode()), Ok(report.clone()));
    assert_eq!(
        Report::decode(&Report::default().encode()),
        Ok(Report::default())
    );
    let mut other_version = report.encode();
    other_version[MAGIC.len()] = REPORT_VERSION + 1;
    assert!(Report::decode(&other_version).is_err());
    assert!(Report::decode(&report.encode()[..20]).is_err());
    assert!(Report::decode(b"garbage").is_err());
    assert!(Report::decode(&vec![0; MAX_REPORT + 1]).is_err());

    // Far over every cap: what is written still decodes, and says less.
    let huge = Report {
        valid_until_ms: 1,
        scopes: (0..MAX_REPORT_SCOPES + 5)
            .map(|n| Covered {
                scope: Some(ScopeId([n as u8; 32])),
                covers: (0..MAX_REPORT_COVERS + 5)
                    .map(|_| Cover {
                        kind: SourceKind::Follow,
                        repo: Some("r".repeat(MAX_REPO)),
                        resources: Resources::of(&[Resource::Issues]),
                        since_ms: 1,
                    })
                    .collect(),
            })
            .collect(),
    };
    let bytes = huge.encode();
    assert!(bytes.len() <= MAX_REPORT);
    let Ok(read) = Report::decode(&bytes) else {
        panic!("what is written decodes");
    };
    assert!(read.scopes.len() < huge.scopes.len());
    assert!(read
        .scopes
        .iter()
        .all(|s| huge.scopes.contains(s) || s.covers.len() <= MAX_REPORT_COVERS));
}

#[test]
fn a_cover_with_an_unknown_kind_or_resource_is_refused() {
    let mut bytes = Vec::new();
    Cover::everything(SourceKind::Follow, 3).put(&mut bytes);
    let mut unknown_kind = bytes.clone();
    unknown_kind[0] = 9;
    assert!(Cover::read(&mut Reader::new(&unknown_kind, "cover")).is_err());
    let mut unknown_resource = bytes.clone();
    unknown_resource[9..11].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(Cover::read(&mut Reader::new(&unknown_resource, "cover")).is_err());
    assert_eq!(
        Cover::read(&mut Reader::new(&bytes, "cover")),
        Ok(Cover::everything(SourceKind::Follow, 3))
    );
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Report::decode(&bytes);
        let mut with_magic = MAGIC.to_vec();
        with_magic.push(REPORT_VERSION);
        with_magic.extend_from_slice(&bytes);
        let _ = Report::decode(&with_magic);
    }
}
