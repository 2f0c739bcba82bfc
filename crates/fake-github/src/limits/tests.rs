//! The limits as a client meets them: plain HTTP against a started server, and the sliding
//! windows of the secondary limits on a clock the test moves.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value as Json;

use super::{Ledger, Limited, Limits, Secondary, PRIMARY_DOCS, SECONDARY_DOCS};
use crate::{FakeGithub, Fault};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);
const ISSUES: &str = "/repos/o/r/issues";
const GRAPHQL_QUERY: &str = r#"{"query":"query { viewer { login } }"}"#;
const GRAPHQL_MUTATION: &str =
    r#"{"query":"mutation { addStar(input:{starrableId:\"x\"}) { clientMutationId } }"}"#;

/// One answer: status, head (lowercase), body.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key == name).then(|| value.trim())
        })
    }

    fn number(&self, name: &str) -> Result<u64, String> {
        self.header(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no number in {name}: {self:?}"))
    }

    /// `(x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-used)`.
    fn quota(&self) -> Result<(u64, u64, u64), String> {
        Ok((
            self.number("x-ratelimit-limit")?,
            self.number("x-ratelimit-remaining")?,
            self.number("x-ratelimit-used")?,
        ))
    }

    fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

/// One HTTP/1.1 exchange under `token` (none: anonymous), with `headers` and `body`.
fn send(
    port: u16,
    method: &str,
    target: &str,
    token: Option<&str>,
    headers: &[&str],
    body: &str,
) -> Result<Answer, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: api.github.localhost\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: token {token}\r\n"));
    }
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok(Answer {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    })
}

fn get(port: u16, target: &str, token: Option<&str>) -> Result<Answer, String> {
    send(port, "GET", target, token, &[], "")
}

fn open_issue(port: u16, token: &str, title: &str) -> Result<Answer, String> {
    let body = format!(r#"{{"title":"{title}"}}"#);
    send(port, "POST", ISSUES, Some(token), &[], &body)
}

fn graphql(port: u16, token: &str, body: &str) -> Result<Answer, String> {
    send(port, "POST", "/graphql", Some(token), &[], body)
}

fn start(limits: Limits) -> Result<FakeGithub, Box<dyn std::error::Error>> {
    let github = FakeGithub::start()?;
    github.set_limits(limits);
    Ok(github)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the log says GitHub did with each request: status, charged, refused by.
fn outcomes(github: &FakeGithub) -> Vec<(u16, bool, Option<Limited>)> {
    github
        .requests()
        .iter()
        .map(|r| (r.status, r.charged, r.limited))
        .collect()
}

fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

#[test]
fn headers_count_down_per_principal_and_resource() -> TestResult {
    let github = start(Limits::default())?;
    let port = github.port();
    let first = get(port, "/repos/o/r", Some("ghp_a"))?;
    assert_eq!(first.quota()?, (5000, 4999, 1));
    assert_eq!(first.header("x-ratelimit-resource"), Some("core"));
    let reset = first.number("x-ratelimit-reset")?;
    let now = now_secs();
    assert!(
        (now + 3590..=now + 3601).contains(&reset),
        "an hour from now: {reset} vs {now}"
    );
    assert_eq!(
        get(port, "/repos/o/r", Some("ghp_a"))?.quota()?,
        (5000, 4998, 2)
    );
    let other = get(port, "/repos/o/r", Some("ghp_b"))?;
    assert_eq!(
        other.quota()?,
        (5000, 4999, 1),
        "another token, its own budget"
    );
    assert_eq!(
        get(port, "/repos/o/r", None)?.quota()?,
        (60, 59, 1),
        "without a token: 60 an hour"
    );

    let search = get(port, "/search/issues?q=repo:o/r", Some("ghp_a"))?;
    assert_eq!(search.status, 200);
    assert_eq!(search.header("x-ratelimit-resource"), Some("search"));
    assert_eq!(search.quota()?, (30, 29, 1));
    assert!(search.number("x-ratelimit-reset")? <= now_secs() + 61);
    let query = graphql(port, "ghp_a", GRAPHQL_QUERY)?;
    assert_eq!(query.status, 200, "{query:?}");
    assert_eq!(query.header("x-ratelimit-resource"), Some("graphql"));
    assert_eq!(query.quota()?, (5000, 4999, 1));
    assert_eq!(
        get(port, "/repos/o/r", Some("ghp_a"))?.quota()?,
        (5000, 4997, 3),
        "search and GraphQL left core alone"
    );
    Ok(())
}

#[test]
fn job_tokens_of_one_repository_share_one_budget_and_a_pat_does_not() -> TestResult {
    let github = start(Limits {
        primary: 10,
        job_primary: 3,
        ..Limits::default()
    })?;
    github.register_job_token("ghs_one", "o/r");
    github.register_job_token("ghs_two", "O/R");
    github.register_job_token("ghs_other", "o/other");
    let port = github.port();
    let quota = |token: &str| get(port, "/repos/o/r", Some(token)).and_then(|a| a.quota());
    assert_eq!(quota("ghs_one")?, (3, 2, 1));
    assert_eq!(quota("ghs_two")?, (3, 1, 2), "the same repository's budget");
    assert_eq!(quota("ghs_other")?, (3, 2, 1), "another repository's");
    assert_eq!(quota("ghp_pat")?, (10, 9, 1), "a PAT counts on its own");
    assert_eq!(quota("ghs_two")?, (3, 0, 3));

    let refused = get(port, "/repos/o/r", Some("ghs_one"))?;
    assert_eq!((refused.status, refused.quota()?), (403, (3, 0, 3)));
    let message = refused.json()["message"].as_str().unwrap_or("").to_owned();
    assert!(
        message.starts_with("API rate limit exceeded for installation ID "),
        "{message}"
    );
    assert_eq!(quota("ghp_pat")?, (10, 8, 2), "the PAT is still served");
    Ok(())
}

#[test]
fn a_spent_primary_limit_refuses_with_403_and_remaining_0_and_is_not_charged() -> TestResult {
    let github = start(Limits {
        primary: 2,
        ..Limits::default()
    })?;
    let port = github.port();
    for _ in 0..2 {
        assert_eq!(get(port, "/repos/o/r", Some("ghp_a"))?.status, 200);
    }
    let refused = get(port, "/repos/o/r", Some("ghp_a"))?;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.quota()?, (2, 0, 2));
    assert_eq!(refused.header("retry-after"), None);
    let body = refused.json();
    let message = body["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("API rate limit exceeded for user ID ") && message.ends_with('.'),
        "{body}"
    );
    assert_eq!(body["documentation_url"], PRIMARY_DOCS);

    let write = open_issue(port, "ghp_a", "refused write")?;
    assert_eq!((write.status, write.quota()?), (403, (2, 0, 2)));
    let listed = get(port, ISSUES, Some("ghp_b"))?;
    assert_eq!(listed.status, 200);
    assert!(
        !listed.body.contains("refused write"),
        "the write was not applied"
    );

    for _ in 0..2 {
        assert_eq!(graphql(port, "ghp_a", GRAPHQL_QUERY)?.status, 200);
    }
    let query = graphql(port, "ghp_a", GRAPHQL_QUERY)?;
    assert_eq!(
        query.status, 403,
        "GraphQL has its own budget, spent the same way"
    );
    assert_eq!(query.header("x-ratelimit-resource"), Some("graphql"));
    assert_eq!(query.quota()?, (2, 0, 2));
    assert!(query.body.contains("API rate limit exceeded"), "{query:?}");

    let primary = (403, false, Some(Limited::Primary));
    assert_eq!(
        outcomes(&github),
        [
            (200, true, None),
            (200, true, None),
            primary,
            primary,
            (200, true, None),
            (200, true, None),
            (200, true, None),
            primary
        ]
    );
    assert_eq!(github.charged_count(), 5);
    assert_eq!(github.request_count(), 8);
    Ok(())
}

#[test]
fn a_304_is_never_refused_nor_charged() -> TestResult {
    let github = start(Limits {
        primary: 1,
        ..Limits::default()
    })?;
    let port = github.port();
    let first = get(port, "/repos/o/r", Some("ghp_a"))?;
    assert_eq!((first.status, first.quota()?), (200, (1, 0, 1)));
    let etag = first.header("etag").unwrap_or("").replace('w', "W");
    let matching = format!("If-None-Match: {etag}");
    for _ in 0..3 {
        let again = send(port, "GET", "/repos/o/r", Some("ghp_a"), &[&matching], "")?;
        assert_eq!((again.status, again.quota()?), (304, (1, 0, 1)));
    }
    let stale = send(
        port,
        "GET",
        "/repos/o/r",
        Some("ghp_a"),
        &["If-None-Match: W/\"0000000000000000\""],
        "",
    )?;
    assert_eq!(stale.status, 403, "not a 304: refused, the limit is spent");
    let not_modified = (304, false, None);
    assert_eq!(
        outcomes(&github),
        [
            (200, true, None),
            not_modified,
            not_modified,
            not_modified,
            (403, false, Some(Limited::Primary))
        ]
    );
    Ok(())
}

#[test]
fn a_spent_primary_limit_is_back_once_its_window_ends() -> TestResult {
    let github = start(Limits {
        primary: 1,
        window: Duration::from_secs(1),
        ..Limits::default()
    })?;
    let port = github.port();
    let first = get(port, "/repos/o/r", Some("ghp_a"))?;
    assert_eq!(first.status, 200);
    let reset = first.number("x-ratelimit-reset")?;
    assert!(reset <= now_secs() + 2, "{reset}");
    let refused = get(port, "/repos/o/r", Some("ghp_a"))?;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.number("x-ratelimit-reset")?,
        reset,
        "the same window"
    );
    let mut last = refused;
    let back = wait_until(|| {
        last = match get(port, "/repos/o/r", Some("ghp_a")) {
            Ok(answer) => answer,
            Err(_) => return false,
        };
        last.status == 200
    });
    assert!(back, "{last:?}");
    assert_eq!(last.quota()?, (1, 0, 1), "a new window, charged once");
    assert!(now_secs() >= reset, "not before the reset it announced");
    Ok(())
}

#[test]
fn the_points_limit_refuses_with_the_configured_status_and_retry_after_and_leaves_the_write_unapplied(
) -> TestResult {
    let github = start(Limits {
        points_per_minute: Some(7),
        secondary_status: 429,
        retry_after: Some(7),
        ..Limits::default()
    })?;
    let port = github.port();
    assert_eq!(open_issue(port, "ghp_a", "first write")?.status, 201);
    assert_eq!(get(port, "/repos/o/r", Some("ghp_a"))?.status, 200);
    assert_eq!(get(port, "/repos/o/r", Some("ghp_a"))?.status, 200);

    let refused = open_issue(port, "ghp_a", "second write")?;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("7"));
    assert_eq!(
        refused.quota()?,
        (5000, 4997, 3),
        "the primary count, true and not charged"
    );
    let id = refused
        .header("x-github-request-id")
        .unwrap_or("")
        .to_uppercase();
    let body = refused.json();
    assert_eq!(
        body["message"].as_str().unwrap_or(""),
        format!("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID {id}.")
    );
    assert_eq!(body["documentation_url"], SECONDARY_DOCS);
    assert_eq!(
        get(port, "/repos/o/r", Some("ghp_a"))?.status,
        429,
        "a read's point is over too"
    );

    let listed = get(port, ISSUES, Some("ghp_b"))?;
    assert_eq!(listed.status, 200, "another token has its own points");
    assert!(listed.body.contains("first write"), "{}", listed.body);
    assert!(
        !listed.body.contains("second write"),
        "the refused write was not applied"
    );
    let secondary = (429, false, Some(Limited::Secondary));
    assert_eq!(
        outcomes(&github),
        [
            (201, true, None),
            (200, true, None),
            (200, true, None),
            secondary,
            secondary,
            (200, true, None)
        ]
    );
    Ok(())
}

#[test]
fn graphql_queries_cost_one_point_and_mutations_five() -> TestResult {
    let github = start(Limits {
        points_per_minute: Some(7),
        ..Limits::default()
    })?;
    let port = github.port();
    assert_eq!(graphql(port, "ghp_a", GRAPHQL_QUERY)?.status, 200);
    assert_eq!(graphql(port, "ghp_a", GRAPHQL_MUTATION)?.status, 200);
    let over = graphql(port, "ghp_a", GRAPHQL_MUTATION)?;
    assert_eq!(over.status, 403, "6 points spent, 5 more are over 7");
    assert!(over.body.contains("secondary rate limit"), "{over:?}");
    assert_eq!(
        graphql(port, "ghp_a", GRAPHQL_QUERY)?.status,
        200,
        "1 more is not"
    );
    assert_eq!(graphql(port, "ghp_a", GRAPHQL_QUERY)?.status, 403);
    Ok(())
}

#[test]
fn the_concurrency_limit_refuses_the_request_over_the_cap_while_others_are_in_flight() -> TestResult
{
    let github = start(Limits {
        concurrent: Some(2),
        ..Limits::default()
    })?;
    github.set_latency(Duration::from_secs(1));
    let port = github.port();
    let in_flight: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || get(port, "/repos/o/r", Some("ghp_a"))))
        .collect();
    assert!(
        wait_until(|| github.arrived() >= 2),
        "the two reached the server"
    );
    let other = std::thread::spawn(move || get(port, "/repos/o/r", Some("ghp_b")));
    let over = get(port, "/repos/o/r", Some("ghp_a"))?;
    assert_eq!(over.status, 403, "{over:?}");
    assert_eq!(over.header("retry-after"), Some("60"));
    assert!(over.body.contains("secondary rate limit"), "{over:?}");
    assert_eq!(
        other.join().map_err(|_| "panicked")??.status,
        200,
        "another token's requests are not counted with these"
    );
    for request in in_flight {
        assert_eq!(request.join().map_err(|_| "panicked")??.status, 200);
    }
    github.set_latency(Duration::ZERO);
    assert_eq!(
        get(port, "/repos/o/r", Some("ghp_a"))?.status,
        200,
        "answered, they are no longer in flight"
    );
    let refused = github
        .requests()
        .iter()
        .filter(|r| r.limited == Some(Limited::Secondary))
        .count();
    assert_eq!(refused, 1);
    Ok(())
}

#[test]
fn refuse_next_as_secondary_refuses_exactly_n() -> TestResult {
    let github = start(Limits::default())?;
    github.refuse_next_as_secondary(2, 429, None);
    let port = github.port();
    let first = get(port, "/repos/o/r", Some("ghp_a"))?;
    assert_eq!((first.status, first.quota()?), (429, (5000, 5000, 0)));
    assert_eq!(first.header("retry-after"), None);
    assert!(first.body.contains("secondary rate limit"), "{first:?}");
    assert_eq!(
        get(port, "/repos/o/r", Some("ghp_b"))?.status,
        429,
        "any token"
    );
    let third = get(port, "/repos/o/r", Some("ghp_a"))?;
    assert_eq!((third.status, third.quota()?), (200, (5000, 4999, 1)));
    let secondary = (429, false, Some(Limited::Secondary));
    assert_eq!(outcomes(&github), [secondary, secondary, (200, true, None)]);
    Ok(())
}

#[test]
fn the_defaults_refuse_nothing_a_test_does_and_faults_work_as_before() -> TestResult {
    let github = start(Limits::default())?;
    let port = github.port();
    // More writes than GitHub's 80 a minute: not enforced.
    for n in 0..85 {
        assert_eq!(
            open_issue(port, "ghp_a", &format!("issue {n}"))?.status,
            201
        );
    }
    for _ in 0..30 {
        assert_eq!(get(port, "/repos/o/r", Some("ghp_a"))?.status, 200);
    }
    let last = get(port, "/repos/o/r", Some("ghp_a"))?;
    assert_eq!(last.quota()?, (5000, 5000 - 116, 116));
    assert!(github.requests().iter().all(|r| r.limited.is_none()));

    github.set_fault(Some(Fault::RateLimited));
    let faulted = get(port, "/repos/o/r", Some("ghp_a"))?;
    assert_eq!((faulted.status, faulted.quota()?), (403, (5000, 0, 5000)));
    assert!(
        faulted.body.contains("API rate limit exceeded"),
        "{faulted:?}"
    );
    github.set_fault(Some(Fault::ServerError));
    assert_eq!(get(port, "/repos/o/r", Some("ghp_a"))?.status, 502);
    github.set_fault(None);
    let served = get(port, "/repos/o/r", Some("ghp_a"))?;
    assert_eq!((served.status, served.quota()?), (200, (5000, 4881, 119)));
    let log = outcomes(&github);
    assert_eq!(
        log[log.len() - 3..],
        [
            (403, true, Some(Limited::Primary)),
            (502, true, None),
            (200, true, None)
        ]
    );
    Ok(())
}

#[test]
fn content_limits_slide_over_the_last_minute_and_hour() {
    let mut ledger = Ledger::default();
    ledger.set_limits(Limits {
        content_per_minute: Some(2),
        content_per_hour: Some(3),
        secondary_status: 429,
        retry_after: None,
        ..Limits::default()
    });
    let write = ledger.call(Some("ghp_a"), "POST", ISSUES, None);
    let read = ledger.call(Some("ghp_a"), "GET", ISSUES, None);
    let start = Instant::now();
    let at = |secs: u64| start + Duration::from_secs(secs);
    let refused = Err(Secondary {
        status: 429,
        retry_after: None,
    });
    let mut admit = |call, secs| {
        let admitted = ledger.admit(call, at(secs));
        if admitted.is_ok() {
            ledger.leave(&call.principal);
        }
        admitted
    };
    assert_eq!(admit(&write, 0), Ok(()));
    assert_eq!(admit(&write, 30), Ok(()));
    assert_eq!(admit(&write, 59), refused, "3 in the last minute");
    assert_eq!(admit(&read, 59), Ok(()), "reads create nothing");
    assert_eq!(admit(&write, 61), Ok(()), "the first left the minute");
    assert_eq!(admit(&write, 200), refused, "3 in the last hour");
    assert_eq!(admit(&write, 3600), Ok(()), "the first left the hour");
    assert_eq!(
        admit(&write, 3601),
        refused,
        "30, 61, 3600: 3 in the last hour"
    );
}
