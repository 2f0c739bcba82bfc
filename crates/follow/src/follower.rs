//! The probe loop: one round every [`Config::every`] over the repositories asked about lately,
//! each probe conditional on the ETag of its last answer.
//!
//! GitHub's limits: a 304 does not count against the primary rate limit; every request counts
//! against the secondary ones (900 points a minute for REST reads). One round costs
//! `PROBES.len()` requests per repository, at most [`MAX_REPOS`] repositories: 5 requests per
//! repository per minute at the default interval, at most 250 a minute. A 403 or 429 pauses
//! every probe until GitHub's `Retry-After` or `x-ratelimit-reset`, else for a minute, doubling
//! while it goes on (up to [`BACKOFF_MAX`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ghcache_core::event::{changes_of, HeardWrite, Trigger};
use ghcache_core::heard::{Cover, SourceKind};
use ghcache_core::policy::Resources;
use ghcache_http::{Fetched, Upstream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::probe::PROBES;

/// Repositories followed at most: the most recently asked about first.
pub const MAX_REPOS: usize = 50;
/// The longest pause after GitHub refused probes.
const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);
/// The first pause after a refusal that names no time.
const BACKOFF_FIRST: Duration = Duration::from_secs(60);
/// Largest answer read: a page of one item.
const BODY_MAX: usize = 1 << 20;
/// Repositories asked about within this are followed.
const ASKED_WITHIN: Duration = Duration::from_secs(3600);

/// How a follower reaches GitHub.
#[derive(Debug, Clone)]
pub struct Config {
    /// The API's base URL, ending in `/`: `https://api.github.com/` ([`api_base`]).
    pub api: String,
    /// The token probes are made with (the daemon's own).
    pub token: String,
    /// Time between rounds.
    pub every: Duration,
}

/// The API base for the GitHub host `host` (`GH_HOST`; empty: github.com), as gh reaches it:
/// `api.github.com`, `api.<host>` over plain HTTP for a `localhost` one, `<host>/api/v3` for
/// GitHub Enterprise Server.
pub fn api_base(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    match host {
        "" | "github.com" => "https://api.github.com/".to_owned(),
        local if local == "localhost" || local.ends_with(".localhost") => {
            format!("http://api.{local}/")
        }
        other => format!("https://{other}/api/v3/"),
    }
}

/// What a follower counted since it started. Each only grows but `repos`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Probes sent.
    pub probes: u64,
    /// Probes GitHub answered 304: nothing changed, nothing charged.
    pub not_modified: u64,
    /// Probes whose answer changed: a write heard.
    pub changed: u64,
    /// Refusals (403, 429) that paused probing.
    pub backoffs: u64,
    /// Probes that failed otherwise (unreachable, another status).
    pub failed: u64,
    /// Repositories followed in the last round.
    pub repos: u64,
}

impl Counts {
    /// Every count with its name, as status and metrics list them.
    pub fn named(&self) -> [(&'static str, u64); 6] {
        [
            ("probes", self.probes),
            ("not_modified", self.not_modified),
            ("changed", self.changed),
            ("backoffs", self.backoffs),
            ("failed", self.failed),
            ("repos", self.repos),
        ]
    }
}

#[derive(Default)]
struct LiveCounts {
    probes: AtomicU64,
    not_modified: AtomicU64,
    changed: AtomicU64,
    backoffs: AtomicU64,
    failed: AtomicU64,
    repos: AtomicU64,
}

/// What one probe found.
enum Found {
    /// The same as last time (a 304), or a first answer to compare later ones with.
    Same,
    /// Another answer than last time.
    Changed,
    /// GitHub refused: wait this long (`None`: it named no time).
    Refused(Option<Duration>),
    Failed,
}

/// Follows repositories and tells `sink` of what changed.
pub struct Follower {
    config: Config,
    upstream: Upstream,
    repos: Arc<dyn Fn(Duration, usize) -> Vec<String> + Send + Sync>,
    sink: mpsc::Sender<HeardWrite>,
    /// The ETag of each probe's last answer, by repository and probe.
    etags: Mutex<HashMap<(String, usize), String>>,
    /// The repositories whose every probe answered with an ETag in the last round, each with
    /// the time since which it has (ms since the epoch): their writes are heard.
    heard: Mutex<HashMap<String, u64>>,
    /// Probing is paused after a refusal: no write is heard until it resumes.
    paused: AtomicBool,
    counts: LiveCounts,
}

impl Follower {
    /// A follower of the repositories `repos(within, limit)` names, reaching GitHub through
    /// `upstream`.
    pub fn new(
        config: Config,
        upstream: Upstream,
        repos: Arc<dyn Fn(Duration, usize) -> Vec<String> + Send + Sync>,
        sink: mpsc::Sender<HeardWrite>,
    ) -> Arc<Follower> {
        Arc::new(Follower {
            config,
            upstream,
            repos,
            sink,
            etags: Mutex::new(HashMap::new()),
            heard: Mutex::new(HashMap::new()),
            paused: AtomicBool::new(false),
            counts: LiveCounts::default(),
        })
    }

    /// What it counted so far.
    pub fn counts(&self) -> Counts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let c = &self.counts;
        Counts {
            probes: get(&c.probes),
            not_modified: get(&c.not_modified),
            changed: get(&c.changed),
            backoffs: get(&c.backoffs),
            failed: get(&c.failed),
            repos: get(&c.repos),
        }
    }

    /// What it hears now: the writes to the resources its probes show, of each repository
    /// whose every probe answered in the last round, since the round it first did after the
    /// follower started or resumed. Nothing while probing is paused.
    pub fn covers(&self) -> Vec<Cover> {
        if self.paused.load(Ordering::Relaxed) {
            return Vec::new();
        }
        let resources: Vec<_> = PROBES.iter().map(|p| p.covers).collect();
        let resources = Resources::of(&resources);
        let heard = self.heard.lock().unwrap_or_else(PoisonError::into_inner);
        let mut covers: Vec<Cover> = heard
            .iter()
            .map(|(repo, since_ms)| Cover {
                kind: SourceKind::Follow,
                repo: Some(repo.clone()),
                resources,
                since_ms: *since_ms,
            })
            .collect();
        covers.sort_by(|a, b| a.repo.cmp(&b.repo));
        covers
    }

    /// Probes, a round every [`Config::every`], until the task is dropped or the daemon stops
    /// taking writes.
    pub async fn run(self: Arc<Self>) {
        let mut rounds = tokio::time::interval(self.config.every);
        rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backoff = BACKOFF_FIRST;
        let mut paused_until: Option<Instant> = None;
        loop {
            rounds.tick().await;
            if paused_until.is_some_and(|until| Instant::now() < until) {
                continue;
            }
            self.paused.store(false, Ordering::Relaxed);
            let repos = (self.repos)(ASKED_WITHIN, MAX_REPOS);
            self.counts
                .repos
                .store(repos.len() as u64, Ordering::Relaxed);
            self.forget_all_but(&repos);
            match self.round(&repos).await {
                Ok(()) => backoff = BACKOFF_FIRST,
                Err(Stop::Refused(named)) => {
                    let wait = named.unwrap_or(backoff).min(BACKOFF_MAX);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    self.counts.backoffs.fetch_add(1, Ordering::Relaxed);
                    eprintln!(
                        "ghcache daemon: follow: GitHub refused a probe; pausing for {} s",
                        wait.as_secs()
                    );
                    paused_until = Some(Instant::now() + wait);
                    // A write made while paused is found when probing resumes, late: nothing
                    // is heard until then, and what is heard after is heard from then on.
                    self.paused.store(true, Ordering::Relaxed);
                    self.heard
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clear();
                }
                Err(Stop::Closed) => return,
            }
        }
    }

    async fn round(&self, repos: &[String]) -> Result<(), Stop> {
        for repo in repos {
            let mut answered = true;
            for (index, probe) in PROBES.iter().enumerate() {
                let found = self.probe(repo, index).await;
                answered &=
                    matches!(found, Found::Same | Found::Changed) && self.has_etag(repo, index);
                match found {
                    Found::Same | Found::Failed => {}
                    Found::Refused(wait) => return Err(Stop::Refused(wait)),
                    Found::Changed => {
                        let write = HeardWrite {
                            trigger: Trigger {
                                repos: vec![repo.clone()],
                                changes: changes_of(probe.event),
                                at_ms: None,
                            },
                            what: format!("a change of {}", probe.path_of(repo)),
                        };
                        if self.sink.send(write).await.is_err() {
                            return Err(Stop::Closed);
                        }
                    }
                }
            }
            self.note_heard(repo, answered);
        }
        Ok(())
    }

    /// Whether the last answer of probe `index` of `repo` had an ETag: a change of what it
    /// shows is seen only against one.
    fn has_etag(&self, repo: &str, index: usize) -> bool {
        self.etags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&(repo.to_owned(), index))
    }

    /// Records whether every probe of `repo` answered in this round: its writes are heard from
    /// the first round that did, until one that did not.
    fn note_heard(&self, repo: &str, answered: bool) {
        let mut heard = self.heard.lock().unwrap_or_else(PoisonError::into_inner);
        if answered {
            heard
                .entry(repo.to_owned())
                .or_insert_with(ghcache_core::now_ms);
        } else {
            heard.remove(repo);
        }
    }

    async fn probe(&self, repo: &str, index: usize) -> Found {
        let key = (repo.to_owned(), index);
        let known = self
            .etags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        let url = format!("{}{}", self.config.api, PROBES[index].path_of(repo));
        let authorization = format!("Bearer {}", self.config.token);
        let mut headers = vec![
            ("authorization", authorization.as_str()),
            ("accept", "application/vnd.github+json"),
            ("x-github-api-version", "2022-11-28"),
        ];
        if let Some(etag) = &known {
            headers.push(("if-none-match", etag.as_str()));
        }
        self.counts.probes.fetch_add(1, Ordering::Relaxed);
        let answer = match self.upstream.fetch(&url, &headers, BODY_MAX).await {
            Ok(answer) => answer,
            Err(_) => {
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
                return Found::Failed;
            }
        };
        match answer.status {
            304 => {
                self.counts.not_modified.fetch_add(1, Ordering::Relaxed);
                Found::Same
            }
            200 => {
                let etag = answer.header("etag").map(str::to_owned);
                let changed = known.is_some() && etag != known;
                let mut etags = self.etags.lock().unwrap_or_else(PoisonError::into_inner);
                match etag {
                    Some(etag) => etags.insert(key, etag),
                    None => etags.remove(&key),
                };
                if changed {
                    self.counts.changed.fetch_add(1, Ordering::Relaxed);
                    Found::Changed
                } else {
                    Found::Same
                }
            }
            403 | 429 => Found::Refused(wait_of(&answer)),
            _ => {
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
                Found::Failed
            }
        }
    }

    /// Lets go of the ETags of repositories no longer followed.
    fn forget_all_but(&self, repos: &[String]) {
        let followed: HashSet<&String> = repos.iter().collect();
        self.etags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(repo, _), _| followed.contains(repo));
        self.heard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|repo, _| followed.contains(repo));
    }
}

/// Why a round stopped early.
enum Stop {
    Refused(Option<Duration>),
    /// The daemon takes no more writes: it is stopping.
    Closed,
}

/// How long GitHub said to wait: `Retry-After` (seconds), else, when the primary limit is spent
/// (`x-ratelimit-remaining: 0`), until `x-ratelimit-reset`.
fn wait_of(answer: &Fetched) -> Option<Duration> {
    if let Some(secs) = answer
        .header("retry-after")
        .and_then(|v| v.trim().parse().ok())
    {
        return Some(Duration::from_secs(secs));
    }
    if answer.header("x-ratelimit-remaining").map(str::trim) == Some("0") {
        let reset: u64 = answer.header("x-ratelimit-reset")?.trim().parse().ok()?;
        let now = ghcache_core::now_ms() / 1000;
        return Some(Duration::from_secs(reset.saturating_sub(now).max(1)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)]) -> Fetched {
        Fetched {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
        }
    }

    #[test]
    fn the_api_is_reached_as_gh_reaches_it() {
        assert_eq!(api_base(""), "https://api.github.com/");
        assert_eq!(api_base("github.com"), "https://api.github.com/");
        assert_eq!(api_base("github.localhost"), "http://api.github.localhost/");
        assert_eq!(
            api_base("ghe.example.com"),
            "https://ghe.example.com/api/v3/"
        );
    }

    #[test]
    fn a_refusal_waits_as_long_as_github_says() {
        assert_eq!(
            wait_of(&answer(429, &[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        let reset = (ghcache_core::now_ms() / 1000 + 30).to_string();
        let spent = answer(
            403,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset),
            ],
        );
        assert!(wait_of(&spent).is_some_and(|w| w <= Duration::from_secs(30)));
        assert_eq!(
            wait_of(&answer(403, &[])),
            None,
            "a secondary limit names no time"
        );
    }
}
