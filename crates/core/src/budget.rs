//! The rate-limit budget (DESIGN.md, "The rate-limit budget").
//!
//! GitHub counts requests per *principal*: a token, except that every job token of a
//! repository (`GITHUB_TOKEN`) shares the repository's budget. It tells what is left on every
//! answer (`x-ratelimit-*`, a [`Reading`]), and refuses in two ways ([`Refusal`]): the primary
//! limit is spent until `x-ratelimit-reset`, or a secondary limit (too many requests at once or
//! per minute) asks the caller to wait, for `Retry-After` seconds or else at least a minute.
//!
//! A [`Book`] keeps, per principal, the newest reading per resource and the [`Pause`] a
//! secondary limit set. The HTTP level writes what GitHub said into the machine's book (a
//! [`BookStore`]) and asks it before it sends anything; the CLI asks it before it runs gh. The
//! book holds no token: a principal is named by a hash ([`Principal::of`]). Its readers (the
//! statistics, the daemon's status and metrics) see it as [`Summary`]s ([`Book::summaries`]).
//!
//! ```text
//! book      "ghcache-budget" | version | u16 n | n × principal
//! principal name | opt pause | u8 n | n × reading | u8 n | n × write time
//! pause     since | until | strikes
//! reading   resource | limit | remaining | used | reset | at
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use crate::entry::TokenHash;
use crate::error::DecodeError;
use crate::hex;
use crate::wire::{put_bytes, Reader};

mod summary;

pub use summary::{Balance, Summary};

/// Version of the book's encoding.
pub const BOOK_VERSION: u8 = 1;
/// Most principals a book keeps: a machine runs gh under a handful of tokens. Past it, the
/// principal heard of longest ago is dropped.
pub const MAX_PRINCIPALS: usize = 256;
/// Most resources kept per principal (GitHub has about ten: core, graphql, search, ...).
pub const MAX_RESOURCES: usize = 16;
/// Longest principal or resource name read.
const MAX_NAME: usize = 300;
/// Largest book file read: far above what [`MAX_PRINCIPALS`] principals take.
pub const MAX_BOOK: usize = 1 << 20;
/// How long GitHub asks to be left alone after a secondary limit that named no time: "wait
/// for at least one minute before retrying" (GitHub's documentation).
pub const FIRST_PAUSE: Duration = Duration::from_secs(60);
/// The longest pause a run of secondary limits without `Retry-After` grows to.
pub const LONGEST_PAUSE: Duration = Duration::from_secs(15 * 60);
/// A secondary limit within this long after the previous pause ended counts as the same run
/// (the next pause is twice as long); later, a pause starts again at [`FIRST_PAUSE`].
pub const STRIKE_MEMORY: Duration = Duration::from_secs(10 * 60);

/// GitHub's advice for writes: "wait at least one second between each request".
pub const WRITE_SPACING: Duration = Duration::from_secs(1);
/// GitHub's secondary limit on content-creating requests: 80 a minute.
pub const WRITES_PER_MINUTE: usize = 80;
const MINUTE_MS: u64 = 60_000;

/// The resources whose budget lasts an hour and that gh's commands draw on.
pub const HOURLY: [&str; 2] = ["core", "graphql"];

const MAGIC: &[u8] = b"ghcache-budget";

/// Who GitHub counts a request against.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal(String);

impl Principal {
    /// The principal of a request sent with the token whose hash is `token`: the repository
    /// `job_repo` when that is the declared job token of a job of it (all of the
    /// repository's jobs share its budget), else the token itself; without a token, anyone
    /// asking from this machine.
    pub fn of(token: Option<&TokenHash>, job: Option<(&TokenHash, &str)>) -> Principal {
        match (token, job) {
            (Some(token), Some((job_token, repo))) if token == job_token => {
                Principal(format!("repo:{}", repo.to_ascii_lowercase()))
            }
            // The first 8 bytes: enough to tell a machine's few tokens apart, and the book
            // (shared with the swarm) names no more of a token than that.
            (Some(token), _) => Principal(format!("token:{}", hex::encode(&token.0[..8]))),
            (None, _) => Principal("anonymous".to_owned()),
        }
    }

    /// How status lines and the book name it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The principal named `name` as [`Principal::as_str`] writes it (from a peer or a file):
    /// `None` for any other text.
    pub fn parse(name: &str) -> Option<Principal> {
        let valid = match name.split_once(':') {
            Some(("repo", repo)) => {
                !repo.is_empty()
                    && repo.len() <= crate::MAX_REPO
                    && !repo.contains(char::is_whitespace)
            }
            Some(("token", hash)) => {
                hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())
            }
            _ => name == "anonymous",
        };
        valid.then(|| Principal(name.to_owned()))
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What GitHub said was left of one resource's budget (`x-ratelimit-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// `x-ratelimit-resource`: `core`, `graphql`, `search`, ...
    pub resource: String,
    /// `x-ratelimit-limit`: requests a window allows.
    pub limit: u64,
    /// `x-ratelimit-remaining`: requests left in the window.
    pub remaining: u64,
    /// `x-ratelimit-used`: requests spent in the window.
    pub used: u64,
    /// When the window ends and `remaining` is `limit` again, in epoch seconds.
    pub reset_s: u64,
    /// When the answer came, in epoch milliseconds: the newest reading wins.
    pub at_ms: u64,
}

impl Reading {
    /// The reading in an answer's headers (`header` looks one up by lowercase name), `None`
    /// when it has none or they do not parse. A missing `x-ratelimit-resource` is `core`, as
    /// GitHub's REST answers say.
    pub fn from_headers<'a>(header: impl Fn(&str) -> Option<&'a str>, at_ms: u64) -> Option<Self> {
        let number = |name: &str| header(name)?.trim().parse::<u64>().ok();
        let limit = number("x-ratelimit-limit")?;
        let remaining = number("x-ratelimit-remaining")?;
        let reset_s = number("x-ratelimit-reset")?;
        let used = number("x-ratelimit-used").unwrap_or(limit.saturating_sub(remaining));
        let resource = header("x-ratelimit-resource")
            .map(|r| r.trim().to_ascii_lowercase())
            .filter(|r| !r.is_empty() && r.len() <= MAX_NAME)
            .unwrap_or_else(|| "core".to_owned());
        Some(Reading {
            resource,
            limit,
            remaining,
            used,
            reset_s,
            at_ms,
        })
    }

    /// Whether the window it was read in is still on at `now_ms`.
    pub fn current(&self, now_ms: u64) -> bool {
        self.reset_s.saturating_mul(1000) > now_ms
    }
}

/// How GitHub refused a request because of its rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The primary limit is spent until the reading's reset.
    Primary,
    /// A secondary limit: wait `retry_after` when GitHub said, else at least a minute.
    Secondary {
        /// GitHub's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
}

impl Refusal {
    /// Whether an answer with `status`, headers (`header`, lowercase names) and `body` is a
    /// rate-limit refusal, as GitHub's documentation describes them: a 403 or 429 with
    /// `x-ratelimit-remaining: 0` is the primary limit; one with `Retry-After`, or whose
    /// message says "secondary rate limit", or any other 429, a secondary limit. Any other
    /// 403 is not about rate limits (a permission, a blocked user).
    pub fn of<'a>(
        status: u16,
        header: impl Fn(&str) -> Option<&'a str>,
        body: &[u8],
    ) -> Option<Refusal> {
        if status != 403 && status != 429 {
            return None;
        }
        if header("x-ratelimit-remaining").is_some_and(|r| r.trim() == "0") {
            return Some(Refusal::Primary);
        }
        // GitHub sends seconds; an HTTP date is not one of its forms here and counts as none.
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let says_secondary = String::from_utf8_lossy(&body[..body.len().min(4096)])
            .to_ascii_lowercase()
            .contains("secondary rate limit");
        if retry_after.is_some() || says_secondary || status == 429 {
            return Some(Refusal::Secondary { retry_after });
        }
        None
    }
}

/// A principal's requests held back after a secondary limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// When GitHub refused, in epoch milliseconds.
    pub since_ms: u64,
    /// Until when nothing is sent, in epoch milliseconds.
    pub until_ms: u64,
    /// Secondary limits in a row without a time from GitHub: each doubles the next pause.
    pub strikes: u32,
}

impl Pause {
    /// The pause after a secondary limit at `now_ms`, given the principal's previous one:
    /// GitHub's `Retry-After` when it sent one, else [`FIRST_PAUSE`], doubled for each
    /// secondary limit in a row (within [`STRIKE_MEMORY`] of the previous pause's end), up to
    /// [`LONGEST_PAUSE`].
    pub fn after(previous: Option<&Pause>, retry_after: Option<Duration>, now_ms: u64) -> Pause {
        let in_a_row = previous
            .is_some_and(|p| now_ms <= p.until_ms.saturating_add(STRIKE_MEMORY.as_millis() as u64));
        let strikes = match (in_a_row, previous) {
            (true, Some(p)) => p.strikes.saturating_add(1),
            _ => 0,
        };
        let wait = match retry_after {
            Some(wait) => wait,
            None => FIRST_PAUSE
                .saturating_mul(1u32 << strikes.min(8))
                .min(LONGEST_PAUSE),
        };
        Pause {
            since_ms: now_ms,
            until_ms: now_ms.saturating_add(wait.as_millis() as u64),
            strikes,
        }
    }
}

/// What the book knows of one principal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    /// The newest reading per resource.
    pub readings: BTreeMap<String, Reading>,
    /// The latest secondary-limit pause, ended or not.
    pub pause: Option<Pause>,
    /// When its writes were (or are due to be) sent, in epoch milliseconds, oldest first: the
    /// last minute's, at most [`WRITES_PER_MINUTE`] (see [`Book::next_write`]).
    pub writes: Vec<u64>,
}

impl Standing {
    /// When the latest reading of any resource came.
    fn heard_ms(&self) -> u64 {
        let read = self.readings.values().map(|r| r.at_ms).max().unwrap_or(0);
        let wrote = self.writes.last().copied().unwrap_or(0);
        read.max(self.pause.map_or(0, |p| p.since_ms)).max(wrote)
    }
}

/// What is known of each principal's budget (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Book {
    principals: BTreeMap<Principal, Standing>,
}

impl Book {
    /// Keeps `reading` for `principal` unless a newer one of its resource is kept.
    pub fn observe(&mut self, principal: &Principal, reading: Reading) {
        let standing = self.principals.entry(principal.clone()).or_default();
        match standing.readings.get(&reading.resource) {
            Some(kept) if kept.at_ms >= reading.at_ms => {}
            _ => {
                if standing.readings.len() >= MAX_RESOURCES
                    && !standing.readings.contains_key(&reading.resource)
                {
                    return;
                }
                standing.readings.insert(reading.resource.clone(), reading);
            }
        }
        self.bound();
    }

    /// Keeps `pause` for `principal` unless the kept one began later.
    pub fn pause(&mut self, principal: &Principal, pause: Pause) {
        let standing = self.principals.entry(principal.clone()).or_default();
        if standing
            .pause
            .is_none_or(|kept| kept.since_ms <= pause.since_ms)
        {
            standing.pause = Some(pause);
        }
        self.bound();
    }

    /// Takes what `other` knows where it is newer (each reading and pause on its own).
    pub fn merge(&mut self, other: &Book) {
        for (principal, standing) in &other.principals {
            for reading in standing.readings.values() {
                self.observe(principal, reading.clone());
            }
            if let Some(pause) = standing.pause {
                self.pause(principal, pause);
            }
            if !standing.writes.is_empty() {
                let kept = self.principals.entry(principal.clone()).or_default();
                kept.writes.extend(&standing.writes);
                kept.writes.sort_unstable();
                kept.writes.dedup();
                let extra = kept.writes.len().saturating_sub(WRITES_PER_MINUTE);
                kept.writes.drain(..extra);
            }
        }
        self.bound();
    }

    /// When a write of `principal` may be sent, if it is asked for at `now_ms`: at least
    /// [`WRITE_SPACING`] after its last write, and no more than [`WRITES_PER_MINUTE`] in any
    /// minute. The time is taken (recorded as a write), so that the next asker is spaced after
    /// it: call it under [`BookStore::update`], which makes it one step across processes.
    pub fn next_write(&mut self, principal: &Principal, now_ms: u64) -> u64 {
        let standing = self.principals.entry(principal.clone()).or_default();
        standing
            .writes
            .retain(|&at| at.saturating_add(MINUTE_MS) > now_ms);
        let mut at = now_ms;
        if let Some(&last) = standing.writes.last() {
            at = at.max(last.saturating_add(WRITE_SPACING.as_millis() as u64));
        }
        if standing.writes.len() >= WRITES_PER_MINUTE {
            let oldest = standing.writes[standing.writes.len() - WRITES_PER_MINUTE];
            at = at.max(oldest.saturating_add(MINUTE_MS));
        }
        standing.writes.push(at);
        let extra = standing.writes.len().saturating_sub(WRITES_PER_MINUTE);
        standing.writes.drain(..extra);
        self.bound();
        at
    }

    /// What is known of `principal`.
    pub fn standing(&self, principal: &Principal) -> Option<&Standing> {
        self.principals.get(principal)
    }

    /// Every principal and what is known of it.
    pub fn principals(&self) -> impl Iterator<Item = (&Principal, &Standing)> {
        self.principals.iter()
    }

    /// Until when `principal`'s requests are held back at `now_ms`, if they are.
    pub fn paused_until(&self, principal: &Principal, now_ms: u64) -> Option<u64> {
        let pause = self.principals.get(principal)?.pause?;
        (pause.until_ms > now_ms).then_some(pause.until_ms)
    }

    /// The current reading of `principal`'s `resource` at `now_ms` (its window not over).
    pub fn reading(&self, principal: &Principal, resource: &str, now_ms: u64) -> Option<&Reading> {
        self.principals
            .get(principal)?
            .readings
            .get(resource)
            .filter(|r| r.current(now_ms))
    }

    /// Whether `principal` is short at `now_ms`: paused, or a current reading of one of the
    /// hourly budgets every command draws on ([`HOURLY`]: `core`, `graphql`) at or below
    /// `reserve` requests. Reads should then prefer a stale answer to a charged request. The
    /// per-minute ones (`search`: 30 a minute) come back within the minute and keep no
    /// reserve.
    pub fn short(&self, principal: &Principal, reserve: u64, now_ms: u64) -> Option<Shortage> {
        if let Some(until_ms) = self.paused_until(principal, now_ms) {
            return Some(Shortage::Paused { until_ms });
        }
        let standing = self.principals.get(principal)?;
        standing
            .readings
            .values()
            .filter(|r| {
                HOURLY.contains(&r.resource.as_str()) && r.current(now_ms) && r.remaining <= reserve
            })
            .min_by_key(|r| r.remaining)
            .map(|r| Shortage::Low {
                resource: r.resource.clone(),
                remaining: r.remaining,
                reset_s: r.reset_s,
            })
    }

    /// Drops what no longer says anything at `now_ms`: readings of windows over for an hour,
    /// pauses that ended past [`STRIKE_MEMORY`], and principals left with neither.
    pub fn prune(&mut self, now_ms: u64) {
        let hour = 3_600_000;
        self.principals.retain(|_, standing| {
            standing
                .readings
                .retain(|_, r| r.reset_s.saturating_mul(1000).saturating_add(hour) > now_ms);
            if standing.pause.is_some_and(|p| {
                p.until_ms.saturating_add(STRIKE_MEMORY.as_millis() as u64) < now_ms
            }) {
                standing.pause = None;
            }
            standing
                .writes
                .retain(|&at| at.saturating_add(MINUTE_MS) > now_ms);
            !standing.readings.is_empty() || standing.pause.is_some() || !standing.writes.is_empty()
        });
    }

    fn bound(&mut self) {
        while self.principals.len() > MAX_PRINCIPALS {
            let oldest = self
                .principals
                .iter()
                .min_by_key(|(_, s)| s.heard_ms())
                .map(|(p, _)| p.clone());
            match oldest {
                Some(p) => {
                    self.principals.remove(&p);
                }
                None => break,
            }
        }
    }

    /// The book's bytes (see the module doc).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.principals.len() * 96);
        out.extend_from_slice(MAGIC);
        out.push(BOOK_VERSION);
        out.extend_from_slice(&(self.principals.len() as u16).to_le_bytes());
        for (principal, standing) in &self.principals {
            put_principal(&mut out, principal, standing);
        }
        out
    }

    /// Reads a book written by [`Book::encode`].
    ///
    /// # Errors
    /// The bytes are not a book of this version, or exceed its bounds.
    pub fn decode(bytes: &[u8]) -> Result<Book, DecodeError> {
        if bytes.len() > MAX_BOOK {
            return Err(Reader::new(bytes, "budget book").err("too large"));
        }
        let mut r = Reader::new(bytes, "budget book");
        if r.take(MAGIC.len())? != MAGIC {
            return Err(r.err("not a budget book"));
        }
        if r.u8()? != BOOK_VERSION {
            return Err(r.err("unknown version"));
        }
        let n = r.u16()? as usize;
        if n > MAX_PRINCIPALS {
            return Err(r.err("too many principals"));
        }
        let mut book = Book::default();
        for _ in 0..n {
            let (principal, standing) = read_principal(&mut r)?;
            book.principals.insert(principal, standing);
        }
        r.finish()?;
        Ok(book)
    }
}

/// The largest encoded [`News`]: a principal, a pause and [`MAX_RESOURCES`] readings.
pub const MAX_NEWS: usize =
    4 + MAX_NAME + 1 + 20 + 1 + MAX_RESOURCES * (4 + MAX_NAME + 40) + 1 + WRITES_PER_MINUTE * 8;

/// What one machine tells its peers of a principal's budget: its latest pause and readings.
/// The receiver merges it into its own book ([`Book::merge`]: the newest of each wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct News {
    /// Whose budget.
    pub principal: Principal,
    /// What is known of it.
    pub standing: Standing,
}

impl News {
    /// Appends its encoding (as a book encodes one principal).
    pub fn put(&self, out: &mut Vec<u8>) {
        put_principal(out, &self.principal, &self.standing);
    }

    /// Reads what [`News::put`] wrote; a principal that [`Principal::parse`] refuses is an
    /// error.
    ///
    /// # Errors
    /// Malformed, over its bounds, or naming no principal.
    pub fn read(r: &mut Reader<'_>) -> Result<News, DecodeError> {
        let (principal, standing) = read_principal(r)?;
        let principal =
            Principal::parse(principal.as_str()).ok_or_else(|| r.err("not a principal"))?;
        Ok(News {
            principal,
            standing,
        })
    }

    /// A book that holds just this news.
    pub fn into_book(self) -> Book {
        let mut book = Book::default();
        book.principals.insert(self.principal, self.standing);
        book
    }
}

/// Why a principal is short of budget ([`Book::short`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortage {
    /// A secondary limit holds its requests back until then.
    Paused {
        /// Until when, in epoch milliseconds.
        until_ms: u64,
    },
    /// A resource's remaining requests are at or below the reserve.
    Low {
        /// The resource (`core`, `graphql`, ...).
        resource: String,
        /// Requests left in its window.
        remaining: u64,
        /// When its window ends, in epoch seconds.
        reset_s: u64,
    },
}

impl Shortage {
    /// Why a stale answer was served instead, for the user's warning line.
    pub fn reason(&self, now_ms: u64) -> String {
        match self {
            Shortage::Paused { until_ms } => format!(
                "GitHub's secondary rate limit asked to wait {}s more",
                until_ms.saturating_sub(now_ms).div_ceil(1000)
            ),
            Shortage::Low {
                resource,
                remaining,
                reset_s,
            } => format!(
                "{remaining} requests left of the {resource} rate limit until it resets in {}s",
                (reset_s.saturating_mul(1000))
                    .saturating_sub(now_ms)
                    .div_ceil(1000)
            ),
        }
    }
}

/// Appends one principal's part of a book (see the module doc).
fn put_principal(out: &mut Vec<u8>, principal: &Principal, standing: &Standing) {
    put_bytes(out, principal.0.as_bytes());
    match standing.pause {
        Some(p) => {
            out.push(1);
            out.extend_from_slice(&p.since_ms.to_le_bytes());
            out.extend_from_slice(&p.until_ms.to_le_bytes());
            out.extend_from_slice(&p.strikes.to_le_bytes());
        }
        None => out.push(0),
    }
    out.push(standing.readings.len() as u8);
    for r in standing.readings.values() {
        put_bytes(out, r.resource.as_bytes());
        for n in [r.limit, r.remaining, r.used, r.reset_s, r.at_ms] {
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
    let writes = &standing.writes[standing.writes.len().saturating_sub(WRITES_PER_MINUTE)..];
    out.push(writes.len() as u8);
    for at in writes {
        out.extend_from_slice(&at.to_le_bytes());
    }
}

/// Reads what [`put_principal`] wrote.
fn read_principal(r: &mut Reader<'_>) -> Result<(Principal, Standing), DecodeError> {
    let principal = Principal(r.string(MAX_NAME)?);
    let pause = match r.u8()? {
        0 => None,
        1 => Some(Pause {
            since_ms: r.u64()?,
            until_ms: r.u64()?,
            strikes: r.u32()?,
        }),
        _ => return Err(r.err("bad pause flag")),
    };
    let readings = r.u8()? as usize;
    if readings > MAX_RESOURCES {
        return Err(r.err("too many resources"));
    }
    let mut standing = Standing {
        pause,
        ..Standing::default()
    };
    for _ in 0..readings {
        let resource = r.string(MAX_NAME)?;
        let reading = Reading {
            resource: resource.clone(),
            limit: r.u64()?,
            remaining: r.u64()?,
            used: r.u64()?,
            reset_s: r.u64()?,
            at_ms: r.u64()?,
        };
        standing.readings.insert(resource, reading);
    }
    let writes = r.u8()? as usize;
    if writes > WRITES_PER_MINUTE {
        return Err(r.err("too many writes"));
    }
    for _ in 0..writes {
        standing.writes.push(r.u64()?);
    }
    standing.writes.sort_unstable();
    Ok((principal, standing))
}

/// Where a machine keeps its book (the local tier keeps it as a file in the cache dir):
/// shared by every process of the machine, so that what one gh run heard from GitHub holds
/// back the next.
pub trait BookStore: Send + Sync {
    /// The book as stored now; an empty one when there is none or it cannot be read.
    fn load(&self) -> Book;
    /// Applies `change` to the stored book and stores it, as one step against other
    /// processes doing the same.
    ///
    /// # Errors
    /// The book could not be stored; what was known before stays.
    fn update(&self, change: &mut dyn FnMut(&mut Book)) -> std::io::Result<()>;
}

/// Slots for a principal's requests in flight on this machine (the local tier keeps them as
/// locked files in the cache dir, shared by every process): GitHub refuses more than 100 at
/// once per principal, across every machine that uses its token.
pub trait InFlight: Send + Sync {
    /// Takes one of `principal`'s `cap` slots if one is free, without waiting; it is given
    /// back when the value is dropped. `None`: all are taken (or none can be: a read-only or
    /// unwritable cache dir, where the request goes without one).
    fn try_take(&self, principal: &Principal, cap: usize) -> Option<Slot>;
}

/// A slot taken from [`InFlight::try_take`], held while the request is in flight.
pub struct Slot(pub Box<dyn Send + Sync>);

/// Where a machine tells its peers what GitHub said of a principal's budget (the p2p tier,
/// through the machine's daemon): a pause at once, readings when a gh run is done.
#[async_trait::async_trait]
pub trait BudgetShare: Send + Sync {
    /// Tells the peers `news`; a failure is the caller's to ignore (each machine still learns
    /// from its own answers).
    async fn share(&self, news: &News);
}

#[cfg(test)]
mod tests;
