//! GitHub's rate limits, as its "Rate limits for the REST API" describes them, enforced for
//! tests that must meet them ([`FakeGithub::set_limits`]).
//!
//! Who pays: a request's *principal*, the token of its `Authorization` header; every Actions
//! job token of one repository ([`FakeGithub::register_job_token`]) is the one principal
//! `repo:<owner/name>`; no token is `anonymous`. (GitHub counts a personal token against its
//! user; the fake has one user for every token, so it counts per token.)
//!
//! - **Primary limit**: charged requests per principal and resource (`core`, `search`,
//!   `graphql`: [`Resource`]) in a *fixed* window that starts with the first charged request
//!   and ends [`Limits::window`] later, as GitHub's `x-ratelimit-reset` does. A 304 is never
//!   charged nor refused; a request refused by any limit is not charged. A spent limit answers
//!   403 with `x-ratelimit-remaining: 0` until the window ends.
//! - **Secondary limits**: points, content-creating requests and requests in flight per
//!   principal, counted over *sliding* windows (the last 60 s, the last 3600 s), so that a
//!   burst across a window's edge is refused too. Only admitted requests count. A refusal
//!   comes before the world changes, and leaves the primary count alone.
//!
//! The defaults are GitHub's primary limits, enforced (a test meets one only with more than 60
//! requests without a token), and none of the secondary ones.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value as Json};

#[cfg(doc)]
use crate::FakeGithub;

/// GitHub's rate limits as the fake enforces them (see GitHub's "Rate limits for the REST API").
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Primary limit: charged requests per window per principal and resource (GitHub: 5,000 an
    /// hour for a user token). Without a token: at most 60, GitHub's limit then.
    pub primary: u64,
    /// Primary limit of an Actions job token ([`FakeGithub::register_job_token`]): shared by
    /// every job token of the same repository (GitHub: 1,000 an hour per repository).
    pub job_primary: u64,
    /// The primary window (GitHub: an hour); `x-ratelimit-reset` is its end, in epoch seconds.
    pub window: Duration,
    /// Secondary limit: points per minute per principal, GET/HEAD/OPTIONS 1, other methods 5,
    /// GraphQL: a query 1, a mutation 5 (GitHub: 900 for REST). None: not enforced.
    pub points_per_minute: Option<u64>,
    /// Secondary limit: requests in flight at once per principal (GitHub: 100). None: not
    /// enforced.
    pub concurrent: Option<usize>,
    /// Secondary limit: content-creating requests (POST, PATCH, PUT, DELETE, GraphQL
    /// mutations) per minute per principal (GitHub: 80). None: not enforced.
    pub content_per_minute: Option<u64>,
    /// The same per hour (GitHub: 500). None: not enforced.
    pub content_per_hour: Option<u64>,
    /// How a secondary limit is answered: 403 or 429 (GitHub sends either).
    pub secondary_status: u16,
    /// `Retry-After` seconds sent with a secondary limit; None: no header (GitHub then says to
    /// wait at least a minute).
    pub retry_after: Option<u64>,
}

impl Default for Limits {
    /// GitHub's primary limits for a user token and a job token; no secondary limit enforced.
    fn default() -> Self {
        Limits {
            primary: 5000,
            job_primary: 1000,
            window: Duration::from_secs(3600),
            points_per_minute: None,
            concurrent: None,
            content_per_minute: None,
            content_per_hour: None,
            secondary_status: 403,
            retry_after: Some(60),
        }
    }
}

/// Which of GitHub's rate limits refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// The primary limit was spent: 403, `x-ratelimit-remaining: 0`.
    Primary,
    /// A secondary limit: [`Limits::secondary_status`], maybe `Retry-After`.
    Secondary,
}

/// GitHub's primary limit without a token: 60 an hour.
const ANONYMOUS_PRIMARY: u64 = 60;
/// GitHub's search limit with a token: 30 a minute ([`SEARCH_WINDOW`]).
const SEARCH_PRIMARY: u64 = 30;
/// GitHub's search limit without a token: 10 a minute.
const SEARCH_ANONYMOUS: u64 = 10;
/// The window of the search limit; a shorter [`Limits::window`] shortens it too, so that a
/// test reaches it as fast as the others.
const SEARCH_WINDOW: Duration = Duration::from_secs(60);
/// The sliding windows of the secondary limits.
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
/// Secondary points of a read (GET, HEAD, OPTIONS, a GraphQL query) and of anything else.
const READ_POINTS: u64 = 1;
const WRITE_POINTS: u64 = 5;

const PRIMARY_DOCS: &str =
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit";
const SECONDARY_DOCS: &str =
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits";

/// Who a request is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Principal {
    Anonymous,
    Token(String),
    /// Every job token of a repository (`owner/name`, lowercase: GitHub's names ignore case).
    Job(String),
}

impl Principal {
    /// GitHub's message when its primary limit is spent: it names the address without a
    /// token, else a user or an installation (a job token is an installation's), with an id
    /// the fake derives from the token or the repository, so that two principals read as two.
    fn exceeded(&self) -> String {
        match self {
            Principal::Anonymous => "API rate limit exceeded for 127.0.0.1. (But here's the good news: Authenticated requests get a higher rate limit. Check out the documentation for more details.)".into(),
            Principal::Token(token) => format!("API rate limit exceeded for user ID {}.", id_of(token)),
            Principal::Job(repo) => format!("API rate limit exceeded for installation ID {}.", id_of(repo)),
        }
    }
}

/// A stable id of 8 digits or fewer, like GitHub's user ids: FNV-1a, the same in every run.
fn id_of(name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash % 100_000_000
}

/// The budget a request's primary charge comes from: `x-ratelimit-resource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Resource {
    Core,
    Search,
    Graphql,
}

impl Resource {
    /// The resource of a request path (`/api/v3/...`, `/api/graphql`: GitHub Enterprise's).
    pub(crate) fn of(path: &str) -> Resource {
        let path = path.strip_prefix("/api/v3").unwrap_or(path);
        if path == "/graphql" || path == "/api/graphql" {
            Resource::Graphql
        } else if path.starts_with("/search/") {
            Resource::Search
        } else {
            Resource::Core
        }
    }

    /// Its name in `x-ratelimit-resource`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Resource::Core => "core",
            Resource::Search => "search",
            Resource::Graphql => "graphql",
        }
    }
}

/// One API request as the limits see it.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) principal: Principal,
    pub(crate) resource: Resource,
    /// Anything but a read: 5 points instead of 1, and content created. GitHub counts a
    /// GraphQL mutation as a write and a GraphQL query (a POST) as a read.
    writes: bool,
}

/// The `x-ratelimit-*` headers of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quota {
    pub(crate) limit: u64,
    pub(crate) remaining: u64,
    pub(crate) used: u64,
    /// When the window ends, in epoch seconds.
    pub(crate) reset: u64,
    pub(crate) resource: Resource,
}

impl Quota {
    /// The headers, in the order GitHub sends them.
    pub(crate) fn headers(&self) -> [(&'static str, String); 5] {
        [
            ("x-ratelimit-limit", self.limit.to_string()),
            ("x-ratelimit-remaining", self.remaining.to_string()),
            ("x-ratelimit-used", self.used.to_string()),
            ("x-ratelimit-reset", self.reset.to_string()),
            ("x-ratelimit-resource", self.resource.name().to_owned()),
        ]
    }

    /// As a spent limit shows it (the injected [`crate::Fault::RateLimited`]).
    pub(crate) fn spent(self) -> Quota {
        Quota {
            remaining: 0,
            used: self.limit,
            ..self
        }
    }
}

/// How a secondary limit is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Secondary {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<u64>,
}

/// The body of a primary refusal to `principal`.
pub(crate) fn primary_body(principal: &Principal) -> Json {
    json!({
        "message": principal.exceeded(),
        "documentation_url": PRIMARY_DOCS,
    })
}

/// The body of a secondary refusal of request `id` (`x-github-request-id`).
pub(crate) fn secondary_body(id: &str) -> Json {
    json!({
        "message": format!("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID {id}."),
        "documentation_url": SECONDARY_DOCS,
    })
}

/// One primary budget: charges in the current fixed window.
#[derive(Debug, Default)]
struct Bucket {
    used: u64,
    /// When the window ends, as an instant and in epoch seconds; `None` until the first charge.
    ends: Option<(Instant, u64)>,
}

/// A principal's recent admitted requests, for the sliding secondary windows; oldest first.
#[derive(Debug, Default)]
struct Recent {
    points: VecDeque<(Instant, u64)>,
    content: VecDeque<Instant>,
}

impl Recent {
    /// Forgets what no window looks at any more: the log stays as long as the limits it serves.
    fn prune(&mut self, now: Instant) {
        let old = |at: Instant, window: Duration| now.saturating_duration_since(at) >= window;
        while self.points.front().is_some_and(|&(at, _)| old(at, MINUTE)) {
            self.points.pop_front();
        }
        while self.content.front().is_some_and(|&at| old(at, HOUR)) {
            self.content.pop_front();
        }
    }

    fn points(&self) -> u64 {
        self.points.iter().map(|&(_, points)| points).sum()
    }

    fn content_within(&self, now: Instant, window: Duration) -> u64 {
        let within = self
            .content
            .iter()
            .rev()
            .take_while(|&&at| now.saturating_duration_since(at) < window)
            .count();
        u64::try_from(within).unwrap_or(u64::MAX)
    }
}

/// The fake's counts of every limit: budgets, recent requests, requests in flight.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    limits: Limits,
    /// Job token → its repository (`owner/name`, lowercase).
    job_tokens: HashMap<String, String>,
    buckets: HashMap<(Principal, Resource), Bucket>,
    recent: HashMap<Principal, Recent>,
    in_flight: HashMap<Principal, usize>,
    /// Requests still to refuse as a secondary limit whatever the counts, and how.
    forced: Option<(usize, Secondary)>,
}

impl Ledger {
    /// Enforces `limits` from now on, every count started afresh (requests in flight stay in
    /// flight).
    pub(crate) fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        self.buckets.clear();
        self.recent.clear();
    }

    pub(crate) fn register_job_token(&mut self, token: &str, repo: &str) {
        self.job_tokens
            .insert(token.to_owned(), repo.to_ascii_lowercase());
    }

    /// Refuses the next `n` admissions as a secondary limit, answered as `refusal` says.
    pub(crate) fn refuse_next(&mut self, n: usize, refusal: Secondary) {
        self.forced = (n > 0).then_some((n, refusal));
    }

    /// A request of `method` to `path` under `token`; `operation` is a GraphQL request's
    /// (`query`, `mutation`).
    pub(crate) fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        operation: Option<&str>,
    ) -> Call {
        let principal = match token {
            None => Principal::Anonymous,
            Some(token) => match self.job_tokens.get(token) {
                Some(repo) => Principal::Job(repo.clone()),
                None => Principal::Token(token.to_owned()),
            },
        };
        let resource = Resource::of(path);
        let writes = if resource == Resource::Graphql {
            operation == Some("mutation")
        } else {
            !matches!(method, "GET" | "HEAD" | "OPTIONS")
        };
        Call {
            principal,
            resource,
            writes,
        }
    }

    /// Lets `call` through the secondary limits, or says how to refuse it. Once let through,
    /// it counts in its principal's recent requests and requests in flight: the caller must
    /// [`Ledger::leave`] once it is answered.
    pub(crate) fn admit(&mut self, call: &Call, now: Instant) -> Result<(), Secondary> {
        if let Some((left, refusal)) = &mut self.forced {
            let refusal = *refusal;
            *left -= 1;
            if *left == 0 {
                self.forced = None;
            }
            return Err(refusal);
        }
        let limits = &self.limits;
        let refusal = Secondary {
            status: limits.secondary_status,
            retry_after: limits.retry_after,
        };
        let in_flight = self.in_flight.get(&call.principal).copied().unwrap_or(0);
        if limits.concurrent.is_some_and(|cap| in_flight >= cap) {
            return Err(refusal);
        }
        let recent = self.recent.entry(call.principal.clone()).or_default();
        recent.prune(now);
        let points = if call.writes {
            WRITE_POINTS
        } else {
            READ_POINTS
        };
        let over = |cap: Option<u64>, count: u64| cap.is_some_and(|cap| count > cap);
        if over(limits.points_per_minute, recent.points() + points) {
            return Err(refusal);
        }
        if call.writes
            && (over(
                limits.content_per_minute,
                recent.content_within(now, MINUTE) + 1,
            ) || over(
                limits.content_per_hour,
                recent.content_within(now, HOUR) + 1,
            ))
        {
            return Err(refusal);
        }
        if limits.points_per_minute.is_some() {
            recent.points.push_back((now, points));
        }
        if call.writes && (limits.content_per_minute.is_some() || limits.content_per_hour.is_some())
        {
            recent.content.push_back(now);
        }
        if recent.points.is_empty() && recent.content.is_empty() {
            self.recent.remove(&call.principal);
        }
        *self.in_flight.entry(call.principal.clone()).or_default() += 1;
        Ok(())
    }

    /// A request of `principal` that [`Ledger::admit`] let through was answered (or given up).
    pub(crate) fn leave(&mut self, principal: &Principal) {
        if let Some(n) = self.in_flight.get_mut(principal) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(principal);
            }
        }
    }

    /// The limit and window of a principal's resource.
    fn limit(&self, principal: &Principal, resource: Resource) -> (u64, Duration) {
        let limits = &self.limits;
        let budget = match principal {
            Principal::Anonymous => limits.primary.min(ANONYMOUS_PRIMARY),
            Principal::Token(_) => limits.primary,
            Principal::Job(_) => limits.job_primary,
        };
        match resource {
            Resource::Search => {
                let search = match principal {
                    Principal::Anonymous => SEARCH_ANONYMOUS,
                    _ => SEARCH_PRIMARY,
                };
                (budget.min(search), limits.window.min(SEARCH_WINDOW))
            }
            Resource::Core | Resource::Graphql => (budget, limits.window),
        }
    }

    /// The headers of an answer to `call` that is not charged (a 304, a refusal).
    pub(crate) fn quota(&mut self, call: &Call, now: Instant) -> Quota {
        self.settle(call, now, false).0
    }

    /// Charges `call` against its primary limit: the headers after the charge, or, when the
    /// limit is spent, `Err` with the headers of a refusal (not charged).
    pub(crate) fn charge(&mut self, call: &Call, now: Instant) -> Result<Quota, Quota> {
        match self.settle(call, now, true) {
            (quota, true) => Ok(quota),
            (quota, false) => Err(quota),
        }
    }

    /// The headers of `call`'s bucket once its window is current, after charging it if
    /// `charge` and the limit allows; and whether it was charged.
    fn settle(&mut self, call: &Call, now: Instant, charge: bool) -> (Quota, bool) {
        let (limit, window) = self.limit(&call.principal, call.resource);
        let bucket = self
            .buckets
            .entry((call.principal.clone(), call.resource))
            .or_default();
        if bucket.ends.is_some_and(|(ends, _)| now >= ends) {
            *bucket = Bucket::default();
        }
        let charged = charge && bucket.used < limit;
        if charged {
            bucket.used += 1;
            bucket.ends.get_or_insert_with(|| window_end(now, window));
        }
        let quota = Quota {
            limit,
            remaining: limit.saturating_sub(bucket.used),
            used: bucket.used,
            // A window not started yet would start now.
            reset: bucket
                .ends
                .map_or_else(|| window_end(now, window).1, |(_, reset)| reset),
            resource: call.resource,
        };
        (quota, charged)
    }
}

/// The end of a window of `window` that starts at `now`: as an instant, and in epoch seconds
/// for `x-ratelimit-reset`. It ends on a whole second, rounded up, so that a client that waits
/// until the reset it was told is never refused, and none is served before it.
fn window_end(now: Instant, window: Duration) -> (Instant, u64) {
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let end = epoch + window;
    let reset = end.as_secs() + u64::from(end.subsec_nanos() > 0);
    (
        now + Duration::from_secs(reset).saturating_sub(epoch),
        reset,
    )
}

#[cfg(test)]
mod tests;
