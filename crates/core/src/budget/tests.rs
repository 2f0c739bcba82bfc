use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::Manifest;

/// Unwraps what a test needs, naming what was missing.
trait Must<T> {
    fn must(self) -> T;
}

impl<T> Must<T> for Option<T> {
    fn must(self) -> T {
        self.unwrap_or_else(|| panic!("expected a value, found none"))
    }
}

impl<T, E: std::fmt::Debug> Must<T> for Result<T, E> {
    fn must(self) -> T {
        self.unwrap_or_else(|e| panic!("{e:?}"))
    }
}

fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
    move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

fn reading(resource: &str, remaining: u64, at_ms: u64) -> Reading {
    Reading {
        resource: resource.to_owned(),
        limit: 1000,
        remaining,
        used: 1000 - remaining,
        reset_s: 10_000,
        at_ms,
    }
}

#[test]
fn a_job_token_counts_for_its_repository_and_any_other_token_for_itself() {
    let job = Manifest::token_hash("ghs_job");
    let pat = Manifest::token_hash("ghp_pat");
    let declared = Some((&job, "Octo/Repo"));
    assert_eq!(
        Principal::of(Some(&job), declared).as_str(),
        "repo:octo/repo"
    );
    let other = Principal::of(Some(&pat), declared);
    assert!(other.as_str().starts_with("token:"), "{other}");
    assert_eq!(other, Principal::of(Some(&pat), None));
    assert_ne!(other, Principal::of(Some(&job), None));
    assert_eq!(Principal::of(None, declared).as_str(), "anonymous");
    // The book names 8 bytes of the hash, never the token.
    assert_eq!(other.as_str().len(), "token:".len() + 16);
}

#[test]
fn readings_come_from_githubs_headers() {
    let pairs = [
        ("x-ratelimit-limit", "1000"),
        ("x-ratelimit-remaining", "998"),
        ("x-ratelimit-used", "2"),
        ("x-ratelimit-reset", "1800000000"),
        ("x-ratelimit-resource", "GraphQL"),
    ];
    let r = Reading::from_headers(headers(&pairs), 5).must();
    assert_eq!(
        (
            r.resource.as_str(),
            r.limit,
            r.remaining,
            r.used,
            r.reset_s,
            r.at_ms
        ),
        ("graphql", 1000, 998, 2, 1_800_000_000, 5)
    );
    // Without a resource, GitHub's REST default; without `used`, what the others imply.
    let r = Reading::from_headers(headers(&pairs[..2]), 5);
    assert_eq!(r, None, "no reset: no reading");
    let r = Reading::from_headers(headers(&[pairs[0], pairs[1], pairs[3]]), 5).must();
    assert_eq!((r.resource.as_str(), r.used), ("core", 2));
    let bad = [("x-ratelimit-limit", "lots"), pairs[1], pairs[3]];
    assert_eq!(Reading::from_headers(headers(&bad), 5), None);
}

#[test]
fn refusals_are_told_apart_as_githubs_documentation_describes_them() {
    let spent = [("x-ratelimit-remaining", "0")];
    assert_eq!(
        Refusal::of(403, headers(&spent), b"{}"),
        Some(Refusal::Primary)
    );
    assert_eq!(
        Refusal::of(429, headers(&spent), b"{}"),
        Some(Refusal::Primary)
    );
    let retry = [("x-ratelimit-remaining", "10"), ("retry-after", "2")];
    assert_eq!(
        Refusal::of(403, headers(&retry), b"{}"),
        Some(Refusal::Secondary {
            retry_after: Some(Duration::from_secs(2))
        })
    );
    let message = br#"{"message":"You have exceeded a secondary rate limit. Please wait."}"#;
    assert_eq!(
        Refusal::of(403, headers(&[]), message),
        Some(Refusal::Secondary { retry_after: None })
    );
    assert_eq!(
        Refusal::of(429, headers(&[]), b""),
        Some(Refusal::Secondary { retry_after: None })
    );
    // A 403 about permissions, and other statuses, are not about rate limits.
    let denied = br#"{"message":"Resource not accessible by integration"}"#;
    assert_eq!(Refusal::of(403, headers(&[]), denied), None);
    assert_eq!(Refusal::of(500, headers(&retry), message), None);
    assert_eq!(Refusal::of(200, headers(&spent), b""), None);
}

#[test]
fn pauses_take_githubs_time_else_a_minute_that_doubles_in_a_row() {
    let first = Pause::after(None, None, 1_000);
    assert_eq!((first.until_ms, first.strikes), (61_000, 0));
    let second = Pause::after(Some(&first), None, 61_000);
    assert_eq!(
        (second.until_ms - second.since_ms, second.strikes),
        (120_000, 1)
    );
    let told = Pause::after(Some(&second), Some(Duration::from_secs(2)), 200_000);
    assert_eq!(told.until_ms, 202_000);
    // Long after the last pause: a minute again.
    let later = Pause::after(Some(&second), None, second.until_ms + 11 * 60_000);
    assert_eq!(
        (later.until_ms - later.since_ms, later.strikes),
        (60_000, 0)
    );
    // Growth stops at the longest pause.
    let mut p = first;
    for _ in 0..20 {
        p = Pause::after(Some(&p), None, p.until_ms);
    }
    assert_eq!(p.until_ms - p.since_ms, LONGEST_PAUSE.as_millis() as u64);
}

#[test]
fn the_newest_reading_and_the_latest_pause_win() {
    let p = Principal("token:00".into());
    let mut book = Book::default();
    book.observe(&p, reading("core", 500, 20));
    book.observe(&p, reading("core", 900, 10));
    assert_eq!(book.reading(&p, "core", 0).must().remaining, 500);
    book.observe(&p, reading("core", 400, 30));
    assert_eq!(book.reading(&p, "core", 0).must().remaining, 400);
    book.pause(&p, Pause::after(None, None, 100));
    book.pause(&p, Pause::after(None, Some(Duration::from_secs(1)), 50));
    assert_eq!(book.paused_until(&p, 1_000), Some(60_100));
    assert_eq!(book.paused_until(&p, 60_100), None);
    let mut other = Book::default();
    other.observe(&p, reading("core", 300, 40));
    other.observe(&p, reading("core", 100, 5));
    other.observe(&p, reading("search", 29, 5));
    book.merge(&other);
    let standing = book.standing(&p).must();
    assert_eq!(standing.readings["core"].remaining, 300);
    assert_eq!(standing.readings["search"].remaining, 29);
}

#[test]
fn a_principal_is_short_when_paused_or_at_the_reserve() {
    let p = Principal("repo:o/r".into());
    let mut book = Book::default();
    assert_eq!(book.short(&p, 50, 0), None);
    book.observe(&p, reading("core", 51, 1));
    assert_eq!(book.short(&p, 50, 0), None);
    book.observe(&p, reading("core", 50, 2));
    assert!(matches!(
        book.short(&p, 50, 0),
        Some(Shortage::Low { remaining: 50, .. })
    ));
    // Once the window is over, the reading says nothing.
    assert_eq!(book.short(&p, 50, 10_000_000), None);
    // A per-minute budget keeps no reserve.
    let q = Principal("token:02".into());
    book.observe(&q, reading("search", 3, 2));
    assert_eq!(book.short(&q, 50, 0), None);
    book.pause(&p, Pause::after(None, Some(Duration::from_secs(2)), 100));
    assert_eq!(
        book.short(&p, 0, 1_000),
        Some(Shortage::Paused { until_ms: 2_100 })
    );
    assert!(book
        .short(&p, 0, 1_000)
        .must()
        .reason(1_000)
        .contains("wait 2s"));
}

#[test]
fn pruning_forgets_what_says_nothing_any_more() {
    let p = Principal("token:01".into());
    let mut book = Book::default();
    book.observe(&p, reading("core", 10, 1));
    book.pause(&p, Pause::after(None, None, 0));
    book.prune(5_000_000);
    assert!(
        book.standing(&p).is_some(),
        "window over for less than an hour"
    );
    book.prune(10_000 * 1000 + 3_600_001);
    assert_eq!(book.standing(&p), None);
}

#[test]
fn the_book_keeps_at_most_its_bounds() {
    let mut book = Book::default();
    for i in 0..(MAX_PRINCIPALS as u64 + 10) {
        book.observe(&Principal(format!("token:{i}")), reading("core", 1, i));
    }
    assert_eq!(book.principals().count(), MAX_PRINCIPALS);
    // The principals heard of longest ago went.
    assert!(book.standing(&Principal("token:0".into())).is_none());
    let p = Principal("token:x".into());
    for i in 0..(MAX_RESOURCES + 5) {
        book.observe(&p, reading(&format!("r{i}"), 1, 1_000_000));
    }
    assert_eq!(book.standing(&p).must().readings.len(), MAX_RESOURCES);
}

#[test]
fn what_is_not_a_book_is_refused() {
    assert!(Book::decode(b"").is_err());
    assert!(Book::decode(b"ghcache-heard\x01\x00\x00").is_err());
    let mut bytes = Book::default().encode();
    bytes[MAGIC.len()] = 9;
    assert!(Book::decode(&bytes).is_err());
    let mut bytes = Book::default().encode();
    bytes.push(0);
    assert!(Book::decode(&bytes).is_err(), "trailing bytes");
}

fn any_book() -> impl Strategy<Value = Book> {
    let reading = (
        "[a-z]{1,8}",
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(resource, limit, remaining, used, reset_s, at_ms)| Reading {
                resource,
                limit,
                remaining,
                used,
                reset_s,
                at_ms,
            },
        );
    let pause = proptest::option::of((any::<u64>(), any::<u64>(), any::<u32>()).prop_map(
        |(since_ms, until_ms, strikes)| Pause {
            since_ms,
            until_ms,
            strikes,
        },
    ));
    proptest::collection::vec(
        (
            "[a-z:/0-9]{1,20}",
            pause,
            proptest::collection::vec(reading, 0..4),
            proptest::option::of(0..u64::MAX / 2),
        ),
        0..6,
    )
    .prop_map(|principals| {
        let mut book = Book::default();
        for (name, pause, readings, wrote) in principals {
            let p = Principal(name);
            for r in readings {
                book.observe(&p, r);
            }
            if let Some(pause) = pause {
                book.pause(&p, pause);
            }
            if let Some(at) = wrote {
                book.next_write(&p, at);
            }
        }
        book
    })
}

proptest! {
    #[test]
    fn books_round_trip(book in any_book()) {
        prop_assert_eq!(Book::decode(&book.encode()).must(), book);
    }

    #[test]
    fn any_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Book::decode(&bytes);
        let mut framed = MAGIC.to_vec();
        framed.push(BOOK_VERSION);
        framed.extend_from_slice(&bytes);
        let _ = Book::decode(&framed);
    }

    #[test]
    fn merging_is_order_free(a in any_book(), b in any_book()) {
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        // Equal except where two sources tie on time with different values.
        for (p, s) in ab.principals() {
            let t = ba.standing(p).must();
            for (resource, r) in &s.readings {
                prop_assert_eq!(r.at_ms, t.readings[resource].at_ms);
            }
            prop_assert_eq!(s.pause.map(|p| p.since_ms), t.pause.map(|p| p.since_ms));
        }
    }
}

#[test]
fn principals_parse_only_as_they_are_written() {
    let token = Principal::of(Some(&Manifest::token_hash("t")), None);
    assert_eq!(Principal::parse(token.as_str()), Some(token));
    assert_eq!(
        Principal::parse("repo:o/r").map(|p| p.as_str().to_owned()),
        Some("repo:o/r".to_owned())
    );
    assert!(Principal::parse("anonymous").is_some());
    for bad in [
        "",
        "token:xyz",
        "token:0011",
        "repo:",
        "repo:o r",
        "user:me",
        "anonymous2",
    ] {
        assert_eq!(Principal::parse(bad), None, "{bad}");
    }
}

#[test]
fn news_round_trips_and_refuses_what_names_no_principal() {
    let principal = Principal("repo:o/r".into());
    let mut book = Book::default();
    book.observe(&principal, reading("core", 7, 3));
    book.pause(&principal, Pause::after(None, None, 5));
    let standing = book.standing(&principal).cloned().must();
    let news = News {
        principal,
        standing,
    };
    let mut bytes = Vec::new();
    news.put(&mut bytes);
    assert!(bytes.len() <= MAX_NEWS);
    let read = News::read(&mut Reader::new(&bytes, "news")).must();
    assert_eq!(read, news);
    assert_eq!(read.into_book(), book);
    let forged = News {
        principal: Principal("root".into()),
        standing: Standing::default(),
    };
    let mut bytes = Vec::new();
    forged.put(&mut bytes);
    assert!(News::read(&mut Reader::new(&bytes, "news")).is_err());
}

#[test]
fn writes_are_spaced_a_second_apart_and_eighty_a_minute() {
    let p = Principal("repo:o/r".into());
    let mut book = Book::default();
    assert_eq!(book.next_write(&p, 10_000), 10_000);
    // Asked at once: a second after the last.
    assert_eq!(book.next_write(&p, 10_000), 11_000);
    assert_eq!(book.next_write(&p, 10_500), 12_000);
    // Later than that: at once.
    assert_eq!(book.next_write(&p, 20_000), 20_000);
    // Spaced a second apart, one machine never reaches 80 a minute; peers' writes merged
    // together can: the 81st of a minute waits for the first of them to be a minute old.
    let mut crowded = Book::default();
    crowded.principals.entry(p.clone()).or_default().writes = (0..WRITES_PER_MINUTE as u64)
        .map(|i| 1_000 + i * 100)
        .collect();
    assert_eq!(crowded.next_write(&p, 9_000), 61_000);
    // Peers' writes count: merged, they space this machine's next one.
    let mut mine = Book::default();
    let mut theirs = Book::default();
    theirs.next_write(&p, 50_000);
    mine.merge(&theirs);
    assert_eq!(mine.next_write(&p, 50_200), 51_000);
}
