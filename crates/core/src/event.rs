//! GitHub's events as writes: which repositories an event changed, what of them, and when.
//!
//! A CI job is started by a write that ghcache did not make (a push, an edited pull request, a
//! comment): answers cached before it may be out of date (DESIGN.md invariant 6). This is the
//! one table from an event's name and payload to an invalidation ([`Trigger`]); the triggering
//! event of a job uses it, and so will every other source of GitHub's own writes, so that they
//! agree on what an event changes.
//!
//! The table leans wide: dropping an answer costs one fetch, keeping a stale one a wrong answer.
//! An event it does not know changes everything of its repository, and a payload that cannot
//! be read ([`Trigger::unreadable`]) is treated the same way, timed at the job's start.

use serde_json::Value;

use crate::policy::{Changes, Resource, Resources};

/// The most of a payload that is read: GitHub caps a webhook payload at 25 MB, and a file that
/// is larger is not one of GitHub's (its repository's everything is dropped instead).
pub const PAYLOAD_MAX: u64 = 25 * 1024 * 1024;

/// What an event changed: an invalidation of `changes` of each of `repos`, as of `at_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// `owner/name`, lowercase: the event's repository and, for a pull request from a fork, the
    /// head repository. Empty when no repository is known (then everything is dropped).
    pub repos: Vec<String>,
    /// What of them the event can change.
    pub changes: Changes,
    /// When it happened (ms since the epoch), from the payload; `None` when the payload holds no
    /// time, and the caller uses the job's start.
    pub at_ms: Option<u64>,
}

impl Trigger {
    /// The event `name` with `payload` (`None`: not read), for `repository` (the job's
    /// `GITHUB_REPOSITORY`; empty if unknown, then the payload's repository is used).
    pub fn of(name: &str, payload: Option<&Value>, repository: &str) -> Trigger {
        let Some(payload) = payload else {
            return Trigger::unreadable(repository);
        };
        let mut repos = Vec::new();
        let own = match repository.trim() {
            "" => text(payload, &["repository", "full_name"]).unwrap_or_default(),
            given => given.to_owned(),
        };
        push_repo(&mut repos, &own);
        if let Some(head) = text(payload, &["pull_request", "head", "repo", "full_name"]) {
            push_repo(&mut repos, &head);
        }
        Trigger {
            repos,
            changes: changes_of(name),
            at_ms: time_of(name, payload),
        }
    }

    /// The repositories it changed, for a log line or an answer: `o/r, fork/r`, or "every
    /// repository" when it names none.
    pub fn about(&self) -> String {
        match self.repos.as_slice() {
            [] => "every repository".to_owned(),
            repos => repos.join(", "),
        }
    }

    /// A payload that could not be read: everything of `repository`, at the job's start.
    pub fn unreadable(repository: &str) -> Trigger {
        let mut repos = Vec::new();
        push_repo(&mut repos, repository);
        Trigger {
            repos,
            changes: Changes::Repository,
            at_ms: None,
        }
    }
}

/// A write that GitHub told a daemon about, from outside ghcache (a webhook delivery, a follow
/// probe's changed answer): what it changed, and what told of it, for the daemon's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeardWrite {
    /// What the write changed, by the table.
    pub trigger: Trigger,
    /// What told of it: `pull_request delivery 72d3162e-...`.
    pub what: String,
}

fn push_repo(repos: &mut Vec<String>, repo: &str) {
    let repo = repo.trim().to_ascii_lowercase();
    let valid = matches!(repo.split_once('/'), Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/'));
    if valid && !repos.contains(&repo) {
        repos.push(repo);
    }
}

/// What an event of this name can change: the table.
pub fn changes_of(name: &str) -> Changes {
    use Resource::*;
    let resources: &[Resource] = match name {
        // New commits: the branches' pull requests, the runs they start, the repository's
        // pushed time and default branch, and its contents (those are `Other`, always dropped).
        "push" => &[PullRequests, Actions, Metadata],
        "pull_request"
        | "pull_request_target"
        | "pull_request_review"
        | "pull_request_review_comment"
        | "pull_request_review_thread" => {
            // A pull request is an issue too (its number, labels and comments), and it starts runs.
            &[PullRequests, Issues, Search, Actions]
        }
        "issues" | "issue_comment" => &[Issues, PullRequests, Search],
        "release" => &[Releases, Metadata],
        // Label definitions, and the labels shown on issues and pull requests.
        "label" => &[Labels, Issues, PullRequests],
        // A branch or tag: pull requests name branches, releases name tags.
        "create" | "delete" => &[Metadata, PullRequests, Releases],
        "workflow_run"
        | "workflow_dispatch"
        | "workflow_call"
        | "schedule"
        | "check_run"
        | "check_suite"
        | "status"
        | "repository_dispatch"
        | "merge_group"
        | "deployment"
        | "deployment_status" => &[Actions],
        _ => return Changes::Repository,
    };
    Changes::Resources(Resources::of(resources))
}

/// When the event happened, as its payload says (GitHub's webhook payloads); `None` where it
/// holds no time for the write.
fn time_of(name: &str, payload: &Value) -> Option<u64> {
    let places: &[&[&str]] = match name {
        "push" => &[&["head_commit", "timestamp"], &["repository", "pushed_at"]],
        "pull_request" | "pull_request_target" | "pull_request_review_thread" => {
            &[&["pull_request", "updated_at"]]
        }
        "pull_request_review" => &[&["review", "submitted_at"], &["pull_request", "updated_at"]],
        "pull_request_review_comment" => &[&["comment", "updated_at"]],
        "issues" => &[&["issue", "updated_at"]],
        "issue_comment" => &[&["comment", "updated_at"], &["issue", "updated_at"]],
        "release" => &[&["release", "published_at"], &["release", "created_at"]],
        "create" | "delete" => &[&["repository", "pushed_at"]],
        "workflow_run" => &[&["workflow_run", "updated_at"]],
        "check_run" => &[&["check_run", "completed_at"], &["check_run", "started_at"]],
        "check_suite" => &[&["check_suite", "updated_at"]],
        "status" => &[&["updated_at"]],
        _ => &[],
    };
    // The latest of the times the payload gives: a push's head commit may have been written
    // days before it was pushed, and a fence set too early lets an answer from between through.
    places
        .iter()
        .filter_map(|path| at(payload, path).and_then(time_ms))
        .max()
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, key| value.get(key))
}

fn text(value: &Value, path: &[&str]) -> Option<String> {
    at(value, path)?.as_str().map(str::to_owned)
}

/// A payload's time: an RFC 3339 string (`2026-12-07T12:00:00Z`, `...+01:00`) or, as
/// `repository.pushed_at` is in a push, seconds since the epoch.
fn time_ms(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|s| s.checked_mul(1000)),
        Value::String(s) => rfc3339_ms(s),
        _ => None,
    }
}

/// Milliseconds since the epoch of an RFC 3339 date-time; `None` if it is not one.
pub fn rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = 19;
    let mut millis = 0;
    if b.get(rest) == Some(&b'.') {
        let digits = b[rest + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        millis = num(rest + 1, digits.min(3))? * 10_i64.pow(3 - digits.min(3) as u32);
        rest += 1 + digits;
    }
    let offset_s = match s.get(rest..)? {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && matches!(zone.as_bytes()[0], b'+' | b'-') => {
            if zone.as_bytes()[3] != b':' {
                return None;
            }
            let minutes = num(rest + 1, 2)? * 60 + num(rest + 4, 2)?;
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * minutes * 60
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    u64::try_from(seconds * 1000 + millis).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn resources(changes: Changes) -> Vec<Resource> {
        match changes {
            Changes::Repository => Resource::ALL.to_vec(),
            Changes::Resources(set) => set.iter().collect(),
        }
    }

    #[test]
    fn each_family_drops_what_it_can_change() {
        use Resource::*;
        let has = |name: &str, want: &[Resource]| {
            let got = resources(changes_of(name));
            for r in want {
                assert!(got.contains(r), "{name} must drop {}", r.name());
            }
        };
        has("push", &[PullRequests, Actions, Metadata]);
        for name in ["pull_request", "pull_request_target", "pull_request_review"] {
            has(name, &[PullRequests, Issues, Search, Actions]);
        }
        has("issues", &[Issues, PullRequests, Search]);
        has("issue_comment", &[Issues, PullRequests, Search]);
        has("release", &[Releases]);
        has("label", &[Labels]);
        has("create", &[Metadata]);
        has("delete", &[Metadata]);
        for name in [
            "workflow_run",
            "workflow_dispatch",
            "schedule",
            "check_run",
            "status",
        ] {
            has(name, &[Actions]);
        }
        assert_eq!(changes_of("something_new"), Changes::Repository);
    }

    #[test]
    fn the_time_is_the_event_s_own() {
        let pr = json!({"pull_request": {"updated_at": "2026-12-07T12:00:01Z",
            "head": {"repo": {"full_name": "Fork/R"}}}});
        let trigger = Trigger::of("pull_request", Some(&pr), "O/R");
        assert_eq!(trigger.repos, vec!["o/r".to_owned(), "fork/r".to_owned()]);
        assert_eq!(trigger.at_ms, Some(1_796_644_801_000));
        let push = json!({"head_commit": {"timestamp": "2026-12-07T13:00:01+01:00"}});
        assert_eq!(
            Trigger::of("push", Some(&push), "o/r").at_ms,
            Some(1_796_644_801_000)
        );
        let pushed = json!({"repository": {"pushed_at": 1_796_644_801_u64}});
        assert_eq!(
            Trigger::of("push", Some(&pushed), "o/r").at_ms,
            Some(1_796_644_801_000)
        );
        assert_eq!(Trigger::of("schedule", Some(&json!({})), "o/r").at_ms, None);
    }

    #[test]
    fn a_push_of_an_old_commit_is_fenced_when_it_was_pushed() {
        // The head commit was written a day before the push: answers fetched in between are
        // older than the push and must be refused.
        let push = json!({"head_commit": {"timestamp": "2026-12-06T12:00:01Z"},
            "repository": {"pushed_at": 1_796_644_801_u64}});
        assert_eq!(
            Trigger::of("push", Some(&push), "o/r").at_ms,
            Some(1_796_644_801_000)
        );
    }

    #[test]
    fn an_unreadable_payload_drops_everything_of_the_repository() {
        let trigger = Trigger::of("pull_request", None, "o/r");
        assert_eq!(trigger.changes, Changes::Repository);
        assert_eq!(trigger.repos, vec!["o/r".to_owned()]);
        assert_eq!(trigger.at_ms, None);
        // No repository at all: everything (an empty list, as a write whose repository is
        // not proven).
        assert!(Trigger::of("push", Some(&json!({})), "").repos.is_empty());
    }

    #[test]
    fn dates_parse_as_rfc3339_and_nothing_else_does() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_ms("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(rfc3339_ms("2000-03-01T00:00:00Z"), Some(951_868_800_000));
        for bad in [
            "",
            "2026-12-07",
            "2026-13-01T00:00:00Z",
            "2026-12-07T12:00:00",
            "x",
        ] {
            assert_eq!(rfc3339_ms(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn no_event_maps_to_nothing(name in "[a-z_]{0,24}", repo in "[a-z]{1,5}/[a-z]{1,5}") {
            let trigger = Trigger::of(&name, Some(&json!({})), &repo);
            prop_assert_eq!(trigger.repos, vec![repo]);
            match trigger.changes {
                Changes::Repository => {}
                Changes::Resources(set) => prop_assert!(set.iter().next().is_some()),
            }
        }

        #[test]
        fn no_payload_panics(name in "[a-z_]{0,24}", body in ".{0,64}") {
            let payload = serde_json::from_str::<Value>(&body).ok();
            let _ = Trigger::of(&name, payload.as_ref(), "o/r");
            let _ = rfc3339_ms(&body);
        }
    }
}
