//! The book as its readers see it: `ghcache stats --json` and `ghcache daemon status --json`
//! print it as `rate_limits`, the daemon's metrics and the GitHub Action's job summary read it.
//! One type, so that both commands print the same fields and a reader takes fields, not JSON
//! text read by name.
//!
//! ```text
//! [{"paused_until_ms": 1767000030000 | null,
//!   "principal": "token:0123456789abcdef",
//!   "resources": {"core": {"limit": 5000, "read_at_ms": 1767000000000,
//!                          "remaining": 4990, "reset": 1767003600, "used": 10}}}]
//! ```
//!
//! Fields are declared in name order, the order in which `ghcache stats --json` has always
//! listed them. A field that a writer of another version does not send reads as its default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Book, Reading, HOURLY};

/// What the book knows of one principal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Summary {
    /// Until when (epoch milliseconds) the latest secondary-limit pause held the principal's
    /// requests back, ended or not; `None` when none is known.
    pub paused_until_ms: Option<u64>,
    /// Whose budget, as [`super::Principal::as_str`] names it: `token:<hash>`,
    /// `repo:owner/name` or `anonymous`.
    pub principal: String,
    /// The newest reading of each resource (`core`, `graphql`, `search`, ...), by name, its
    /// window over or not.
    pub resources: BTreeMap<String, Balance>,
}

/// What GitHub last said was left of one resource's budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Balance {
    /// Requests a window allows.
    pub limit: u64,
    /// When GitHub said it, in epoch milliseconds.
    pub read_at_ms: u64,
    /// Requests left in the window.
    pub remaining: u64,
    /// When the window ends and `remaining` is `limit` again, in epoch seconds.
    pub reset: u64,
    /// Requests spent in the window.
    pub used: u64,
}

impl Balance {
    /// Whether its window is still on at `now_ms`, as [`Reading::current`] says.
    pub fn current(&self, now_ms: u64) -> bool {
        self.reset.saturating_mul(1000) > now_ms
    }

    /// Seconds from `now_ms` until the window ends (0 once it has).
    pub fn resets_in_s(&self, now_ms: u64) -> u64 {
        self.reset
            .saturating_mul(1000)
            .saturating_sub(now_ms)
            .div_ceil(1000)
    }
}

impl From<&Reading> for Balance {
    fn from(r: &Reading) -> Balance {
        Balance {
            limit: r.limit,
            read_at_ms: r.at_ms,
            remaining: r.remaining,
            reset: r.reset_s,
            used: r.used,
        }
    }
}

impl Summary {
    /// Until when the principal is paused at `now_ms`, if it is.
    pub fn paused_at(&self, now_ms: u64) -> Option<u64> {
        self.paused_until_ms.filter(|&until| until > now_ms)
    }

    /// The resources whose window is on at `now_ms`, by name.
    pub fn current(&self, now_ms: u64) -> impl Iterator<Item = (&str, &Balance)> {
        self.resources
            .iter()
            .filter(move |(_, b)| b.current(now_ms))
            .map(|(name, b)| (name.as_str(), b))
    }

    /// Of those, the hourly budgets every command draws on ([`HOURLY`]: `core`, `graphql`).
    pub fn hourly(&self, now_ms: u64) -> impl Iterator<Item = (&str, &Balance)> {
        self.current(now_ms)
            .filter(|(name, _)| HOURLY.contains(name))
    }
}

impl Book {
    /// What the book knows of each principal, in name order.
    pub fn summaries(&self) -> Vec<Summary> {
        self.principals()
            .map(|(principal, standing)| Summary {
                paused_until_ms: standing.pause.map(|p| p.until_ms),
                principal: principal.as_str().to_owned(),
                resources: standing
                    .readings
                    .values()
                    .map(|r| (r.resource.clone(), Balance::from(r)))
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Pause, Principal};
    use super::*;

    fn reading(resource: &str, remaining: u64, reset_s: u64) -> Reading {
        Reading {
            resource: resource.to_owned(),
            limit: 5000,
            remaining,
            used: 5000 - remaining,
            reset_s,
            at_ms: 1_000,
        }
    }

    fn book() -> Book {
        let mut book = Book::default();
        let token = Principal::parse("token:0123456789abcdef");
        let repo = Principal::parse("repo:o/r");
        let (Some(token), Some(repo)) = (token, repo) else {
            panic!("the principals parse");
        };
        book.observe(&token, reading("core", 4990, 3_600));
        book.observe(&token, reading("graphql", 4000, 10));
        book.observe(&token, reading("search", 29, 3_600));
        book.pause(
            &repo,
            Pause {
                since_ms: 1_000,
                until_ms: 61_000,
                strikes: 0,
            },
        );
        book
    }

    /// The text `ghcache stats --json` printed when it was built field by field: the Action's
    /// job summary and users' scripts read these names.
    #[test]
    fn the_json_keeps_the_names_stats_always_printed() -> Result<(), serde_json::Error> {
        let expected = concat!(
            r#"[{"paused_until_ms":61000,"principal":"repo:o/r","resources":{}},"#,
            r#"{"paused_until_ms":null,"principal":"token:0123456789abcdef","resources":{"#,
            r#""core":{"limit":5000,"read_at_ms":1000,"remaining":4990,"reset":3600,"used":10},"#,
            r#""graphql":{"limit":5000,"read_at_ms":1000,"remaining":4000,"reset":10,"used":1000},"#,
            r#""search":{"limit":5000,"read_at_ms":1000,"remaining":29,"reset":3600,"used":4971}}}]"#,
        );
        let summaries = book().summaries();
        assert_eq!(serde_json::to_string(&summaries)?, expected);
        let read: Vec<Summary> = serde_json::from_str(expected)?;
        assert_eq!(read, summaries);
        Ok(())
    }

    #[test]
    fn only_windows_still_on_and_pauses_not_over_are_current() {
        let summaries = book().summaries();
        let [repo, token] = summaries.as_slice() else {
            panic!("two principals: {summaries:?}");
        };
        let at = 20_000;
        let hourly: Vec<&str> = token.hourly(at).map(|(name, _)| name).collect();
        assert_eq!(
            hourly,
            ["core"],
            "graphql's window ended, search is not hourly"
        );
        let current: Vec<&str> = token.current(at).map(|(name, _)| name).collect();
        assert_eq!(current, ["core", "search"]);
        assert_eq!(token.resources["core"].resets_in_s(at), 3_580);
        assert_eq!(token.resources["graphql"].resets_in_s(at), 0);
        assert_eq!(repo.paused_at(at), Some(61_000));
        assert_eq!(repo.paused_at(61_000), None);
        assert_eq!(token.paused_at(at), None);
    }
}
