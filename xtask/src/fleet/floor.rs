//! The trace's floor: what an ideal fleet-wide cache would still send to GitHub.
//!
//! The ideal cache is one store shared by every job at no cost, with ghcache's TTLs, in which a
//! write drops what it can change at once. No cache can do better; the gap between it and a
//! configuration is what that configuration loses. Two ideal caches are computed: one whose
//! writes drop what ghcache's policy says they change (`policy::classify`'s [`Changes`], as
//! `Selector::covers` in core's `tier.rs` applies them), and the older, coarser one whose every
//! write drops its whole repository.
//!
//! With writes from outside the fleet in the trace, a third and a fourth are computed
//! ([`heard_floor`]): ideal caches that hear every write at once, the fleet's and GitHub's own
//! (a webhook, a triggering event), and keep an answer until a write drops it, never until a
//! TTL runs out: the floor of a cache that hears writes. Their writes from outside drop what
//! core's event table says the event changes (per class), or their whole repository.
//!
//! An expired answer is fetched again, but the ideal cache still holds it, so the request may
//! be a conditional one that GitHub answers with a free 304. The fake GitHub, like GitHub,
//! computes an ETag per token: a stored ETag earns a 304 only under the token that fetched it,
//! and `If-Modified-Since` earns one on single resources (which send `Last-Modified`) whatever
//! the token. Which token asks follows the topology ([`Tokens`]).

use std::collections::BTreeMap;
use std::time::Duration;

use ghcache_core::event::changes_of;
use ghcache_core::policy::{classify, AlsoChanged, Changes, Decision, Resource};

use super::options::{Options, Topology};
use super::trace::{trace, Step};

/// What a write drops from the ideal cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    /// What `policy::classify` says the write changes, and always the repository's
    /// unclassified answers and every search.
    PerClass,
    /// Everything about the write's repository.
    WholeRepository,
}

impl Invalidation {
    pub const ALL: [Invalidation; 2] = [Invalidation::PerClass, Invalidation::WholeRepository];

    pub fn name(self) -> &'static str {
        match self {
            Invalidation::PerClass => "per class",
            Invalidation::WholeRepository => "whole repository",
        }
    }

    /// The key in JSON documents.
    pub fn json_key(self) -> &'static str {
        match self {
            Invalidation::PerClass => "per_class",
            Invalidation::WholeRepository => "whole_repository",
        }
    }
}

/// Whose token a job's requests carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokens {
    /// Each job its own (GitHub Actions' `GITHUB_TOKEN`); a job's answers are shared with the
    /// other jobs of its repository (scope `actions:<repo>`).
    PerJob,
    /// One token for the whole fleet, and so one scope.
    Fleet,
}

impl Topology {
    /// Which token a topology's jobs ask with.
    pub(super) fn tokens(self) -> Tokens {
        match self {
            Topology::Hosted => Tokens::PerJob,
            Topology::SelfHosted => Tokens::Fleet,
        }
    }
}

/// What the ideal cache did with one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Answered from the store; the answer had been fetched this long before.
    Served(Duration),
    /// Sent to GitHub: a first fetch, an answer a write dropped, or (`stale`) an expired one.
    Fetched {
        /// The store held an expired copy: whether the token that fetched it asks again.
        stale: Option<SameToken>,
    },
}

/// Whether the token that fetched an expired copy is the one asking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SameToken(pub bool);

/// The ideal cache's answer to each read of a trace, in trace order (writes excluded).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Floor {
    pub reads: Vec<Read>,
}

impl Floor {
    /// Reads the ideal cache sent to GitHub.
    pub fn fetches(&self) -> usize {
        self.reads
            .iter()
            .filter(|r| matches!(r, Read::Fetched { .. }))
            .count()
    }

    /// How much of the reads the ideal cache kept from GitHub, in percent.
    pub fn cut_of_reads(&self) -> f64 {
        100.0 * (1.0 - self.fetches() as f64 / self.reads.len().max(1) as f64)
    }
}

/// What one read costs GitHub when it is sent, as measured in the replay without a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// Requests the read's gh command makes.
    pub requests: usize,
    /// When a conditional request for an expired copy gets a 304.
    pub revalidation: Revalidation,
}

/// When GitHub answers a read's conditional requests with 304s (for all of them: a command
/// whose one request is answered in full is charged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revalidation {
    /// Never: GraphQL, which sends neither ETags nor `Last-Modified`.
    Never,
    /// Under the token that fetched the copy (its ETags).
    SameToken,
    /// Under any token: every request is for a single resource, which sends `Last-Modified`.
    AnyToken,
}

impl Revalidation {
    /// How GitHub treats conditional requests for these requests (method, path, GraphQL or not)
    /// of one command.
    pub fn of<'a>(requests: impl IntoIterator<Item = (&'a str, &'a str, bool)>) -> Revalidation {
        let mut all_single = true;
        let mut any = false;
        for (method, path, graphql) in requests {
            any = true;
            if graphql || !(method == "GET" || method == "HEAD") {
                return Revalidation::Never;
            }
            all_single &= sends_last_modified(path);
        }
        match (any, all_single) {
            (false, _) => Revalidation::Never,
            (true, true) => Revalidation::AnyToken,
            (true, false) => Revalidation::SameToken,
        }
    }

    fn free(self, same_token: SameToken) -> bool {
        match self {
            Revalidation::Never => false,
            Revalidation::SameToken => same_token.0,
            Revalidation::AnyToken => true,
        }
    }
}

/// Whether the fake GitHub sends `Last-Modified` on a REST path (`/repos/o/r`, ...): on single
/// resources (a repository, an issue, a pull request, a release, a run), as GitHub does, and not
/// on lists. It must say what `crates/fake-github/src/rest.rs` does.
fn sends_last_modified(path: &str) -> bool {
    let path = path.trim_matches('/');
    let path = path.strip_prefix("api/v3/").unwrap_or(path);
    let parts: Vec<&str> = path.split('/').collect();
    matches!(
        parts.as_slice(),
        ["repos", _, _]
            | ["repos", _, _, "issues" | "pulls", _]
            | ["repos", _, _, "releases", "latest"]
            | ["repos", _, _, "releases", "tags", _]
            | ["repos", _, _, "actions", "runs", _]
    )
}

/// How long the ideal cache keeps an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// Until its TTL runs out: it hears the fleet's own writes only.
    Ttl,
    /// Until a write drops it: it hears every write, the fleet's and those from outside.
    Heard,
}

/// The ideal cache's answers to the trace's reads, its writes dropping what `invalidation` says
/// and its jobs asking with the tokens `tokens` says (which also decides the scope: a token per
/// job shares answers within a repository, one token across the fleet).
pub fn floor(steps: &[(Duration, Step)], invalidation: Invalidation, tokens: Tokens) -> Floor {
    ideal(steps, invalidation, tokens, Freshness::Ttl)
}

/// [`floor`] of an ideal cache that hears writes: no TTL, every write (the fleet's and those
/// from outside) dropping what `invalidation` says at once. A dropped answer is fetched in full:
/// the write may have changed it.
pub fn heard_floor(
    steps: &[(Duration, Step)],
    invalidation: Invalidation,
    tokens: Tokens,
) -> Floor {
    ideal(steps, invalidation, tokens, Freshness::Heard)
}

fn ideal(
    steps: &[(Duration, Step)],
    invalidation: Invalidation,
    tokens: Tokens,
    freshness: Freshness,
) -> Floor {
    /// One held answer.
    struct Held {
        repo: String,
        resource: Resource,
        fetched: Duration,
        ttl: Duration,
        /// The job whose token fetched it.
        job: usize,
    }
    let mut held: BTreeMap<String, Held> = BTreeMap::new();
    // Which job (and so which token and repository) each runner runs now.
    let mut jobs: BTreeMap<usize, (usize, &str)> = BTreeMap::new();
    let mut floor = Floor::default();
    for (at, step) in steps {
        let (slot, argv) = match step {
            Step::Start {
                slot, job, repo, ..
            } => {
                jobs.insert(*slot, (*job, repo.as_str()));
                continue;
            }
            Step::End { slot } => {
                jobs.remove(slot);
                continue;
            }
            Step::Outside(write) => {
                if freshness == Freshness::Heard {
                    let repo = write.repo.to_ascii_lowercase();
                    for event in write.what.events() {
                        let changes = match invalidation {
                            Invalidation::PerClass => changes_of(event),
                            Invalidation::WholeRepository => Changes::Repository,
                        };
                        held.retain(|_, h| !drops(&repo, changes, &h.repo, h.resource));
                    }
                }
                continue;
            }
            Step::Run { slot, argv } => (slot, argv),
        };
        let (job, job_repo) = jobs.get(slot).copied().unwrap_or((usize::MAX, ""));
        // The repository a command is about, as ghcache's own policy reads it.
        let about = |flag: &Option<String>, named: &Option<String>| {
            flag.clone()
                .or_else(|| named.clone())
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        match classify(argv) {
            Decision::Cache(c) => {
                let scope = match tokens {
                    Tokens::PerJob => format!("actions:{job_repo}"),
                    Tokens::Fleet => "fleet".to_owned(),
                };
                let key = format!("{scope}\n{}", argv.join(" "));
                match held.get(&key) {
                    Some(h) if freshness == Freshness::Heard || *at < h.fetched + h.ttl => {
                        floor.reads.push(Read::Served(at.saturating_sub(h.fetched)));
                    }
                    stale => {
                        let same_token = match tokens {
                            Tokens::PerJob => stale.map(|h| SameToken(h.job == job)),
                            Tokens::Fleet => stale.map(|_| SameToken(true)),
                        };
                        floor.reads.push(Read::Fetched { stale: same_token });
                        let entry = Held {
                            repo: about(&c.repo_flag, &c.named_repo),
                            resource: c.resource,
                            fetched: *at,
                            ttl: c.class.default_ttl(),
                            job,
                        };
                        held.insert(key, entry);
                    }
                }
            }
            Decision::Write(w) => {
                // Empty: a write whose repository is not proven, which drops everything.
                let repo = match w.unproven {
                    true => String::new(),
                    false => about(&w.repo_flag, &w.named_repo),
                };
                let changes = match invalidation {
                    Invalidation::PerClass => w.changes,
                    Invalidation::WholeRepository => Changes::Repository,
                };
                let also = match &w.also {
                    Some(AlsoChanged::Repo(other)) => Some(other.clone()),
                    Some(AlsoChanged::SameOwner(name)) => repo
                        .split_once('/')
                        .map(|(owner, _)| format!("{owner}/{name}")),
                    None => None,
                };
                held.retain(|_, h| {
                    !drops(&repo, changes, &h.repo, h.resource)
                        && !also
                            .as_deref()
                            .is_some_and(|other| drops(other, changes, &h.repo, h.resource))
                });
            }
            Decision::Passthrough(_) => {}
        }
    }
    floor
}

/// Whether a write to `repo` that changes `changes` drops an answer about `resource` of
/// `answer_repo`: `Selector::covers` in core's `tier.rs`, on the fields the floor keeps. A write
/// whose repository cannot be told drops everything, and every write every search, as
/// ghcache's do.
pub fn drops(repo: &str, changes: Changes, answer_repo: &str, resource: Resource) -> bool {
    if repo.is_empty() || resource == Resource::Search {
        return true;
    }
    match changes {
        Changes::Repository => answer_repo == repo,
        Changes::Resources(resources) => {
            answer_repo == repo && (resources.contains(resource) || resource == Resource::Other)
        }
    }
}

/// What the ideal cache's fetches cost GitHub, with each read's cost measured in the replay
/// without a cache.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sum {
    /// Reads sent to GitHub.
    pub reads_to_github: usize,
    /// Of those, expired answers whose conditional requests all got 304s.
    pub free_revalidations: usize,
    /// Requests that reached GitHub: the reads' and the writes'.
    pub requests: usize,
    /// Of those, the ones charged against the rate limit (all but the 304s).
    pub charged: usize,
}

impl Floor {
    /// What it cost, given each read's cost (`costs`, in trace order) and the requests of the
    /// writes, which every cache sends.
    pub fn sum(&self, costs: &[Cost], write_requests: usize) -> Sum {
        let mut sum = Sum {
            requests: write_requests,
            charged: write_requests,
            ..Sum::default()
        };
        for (read, cost) in self.reads.iter().zip(costs) {
            let Read::Fetched { stale } = read else {
                continue;
            };
            sum.reads_to_github += 1;
            sum.requests += cost.requests;
            match stale {
                Some(same) if cost.revalidation.free(*same) => sum.free_revalidations += 1,
                _ => sum.charged += cost.requests,
            }
        }
        sum
    }
}

/// Write shares (percent of jobs) and matrix widths the floor is shown for.
pub const WRITE_PERCENTS: [u64; 4] = [0, 5, 10, 20];
pub const WIDTHS: [&[usize]; 3] = [&[2, 3, 4], &[4, 6, 8, 12], &[12, 16, 24]];

/// One cell of the floor on other traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub write_percent: u64,
    pub matrix: &'static [usize],
    /// The ideal cache's cut of the reads, per class and whole repository.
    pub per_class: f64,
    pub whole_repository: f64,
}

/// The floor's cut of the reads for other write shares and matrix widths, row by row. Traces
/// only, nothing is replayed: it takes milliseconds. (The cut of the reads does not depend on
/// the tokens: an expired answer is sent to GitHub either way.)
pub fn by_traffic(o: &Options) -> Vec<Cell> {
    let mut cells = Vec::new();
    for write_percent in WRITE_PERCENTS {
        for matrix in WIDTHS {
            let steps = trace(&Options {
                write_percent,
                matrix,
                ..o.clone()
            });
            let cut = |rule| floor(&steps, rule, Tokens::Fleet).cut_of_reads();
            cells.push(Cell {
                write_percent,
                matrix,
                per_class: cut(Invalidation::PerClass),
                whole_repository: cut(Invalidation::WholeRepository),
            });
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::super::outside::{What, Write};
    use super::*;

    fn start(at: u64, slot: usize, job: usize, repo: &str) -> (Duration, Step) {
        (
            Duration::from_secs(at),
            Step::Start {
                slot,
                job,
                run: job,
                repo: repo.to_owned(),
            },
        )
    }

    fn outside(at: u64, repo: &str, what: What) -> (Duration, Step) {
        let write = Write {
            repo: repo.to_owned(),
            what,
            starts: None,
        };
        (Duration::from_secs(at), Step::Outside(write))
    }

    fn run(at: u64, slot: usize, line: &str) -> (Duration, Step) {
        (
            Duration::from_secs(at),
            Step::Run {
                slot,
                argv: line.split(' ').map(str::to_owned).collect(),
            },
        )
    }

    fn end(at: u64, slot: usize) -> (Duration, Step) {
        (Duration::from_secs(at), Step::End { slot })
    }

    const FETCHED: Read = Read::Fetched { stale: None };

    fn served(secs: u64) -> Read {
        Read::Served(Duration::from_secs(secs))
    }

    fn stale(same: bool) -> Read {
        Read::Fetched {
            stale: Some(SameToken(same)),
        }
    }

    /// Two jobs of fleet/a, one after the other, on one runner; a job of fleet/b beside them.
    fn steps() -> Vec<(Duration, Step)> {
        vec![
            start(0, 0, 0, "fleet/a"),
            run(0, 0, "pr list -R fleet/a"),
            run(1, 0, "release list -R fleet/a"),
            run(2, 0, "api repos/fleet/a"),
            end(3, 0),
            start(3, 0, 1, "fleet/a"),
            run(4, 0, "pr list -R fleet/a"),
            run(70, 0, "api repos/fleet/a"),
            run(71, 0, "pr list -R fleet/a"),
            run(72, 0, "issue create -R fleet/a -t x -b y"),
            run(73, 0, "api repos/fleet/a"),
            run(74, 0, "release list -R fleet/a"),
            run(75, 0, "issue list -R fleet/a"),
            end(76, 0),
            start(76, 1, 2, "fleet/b"),
            run(77, 1, "pr list -R fleet/b"),
            end(78, 1),
        ]
    }

    #[test]
    fn a_write_drops_only_what_it_changes_per_class_and_everything_per_repository() {
        // pr list: first, served, expired (60 s); api: first, expired, then dropped by the
        // write (issue create changes the repository's metadata); release list: served after
        // the write per class, which keeps releases; issue list: first; b: first.
        let per_class = floor(&steps(), Invalidation::PerClass, Tokens::PerJob);
        assert_eq!(
            per_class.reads,
            [
                FETCHED,
                FETCHED,
                FETCHED,
                served(4),
                stale(false),
                stale(false),
                FETCHED,
                served(73),
                FETCHED,
                FETCHED,
            ]
        );
        let whole = floor(&steps(), Invalidation::WholeRepository, Tokens::PerJob);
        assert_eq!(
            whole.reads[7], FETCHED,
            "the write dropped the releases too"
        );
        assert_eq!(whole.fetches(), per_class.fetches() + 1);
        assert!((per_class.cut_of_reads() - 20.0).abs() < 1e-9);
    }

    #[test]
    fn expired_copies_are_free_under_their_own_token_or_with_last_modified() {
        let cost = |requests, revalidation| Cost {
            requests,
            revalidation,
        };
        // The lists are GraphQL; `api repos/o/r` asks for one single resource. In the order of
        // `steps()`'s reads.
        let graphql = cost(1, Revalidation::Never);
        let api = cost(1, Revalidation::AnyToken);
        let costs = [
            graphql, graphql, api, graphql, api, graphql, api, graphql, graphql, graphql,
        ];
        let per_job = floor(&steps(), Invalidation::PerClass, Tokens::PerJob).sum(&costs, 3);
        assert_eq!(
            per_job,
            Sum {
                reads_to_github: 8,
                free_revalidations: 1,
                requests: 11,
                charged: 10,
            },
            "the expired repository answer is free under another job's token"
        );
        // A list under the token that fetched it is free; under another, charged.
        let mut lists = costs;
        lists[5] = cost(2, Revalidation::SameToken);
        let per_job = floor(&steps(), Invalidation::PerClass, Tokens::PerJob).sum(&lists, 0);
        let fleet = floor(&steps(), Invalidation::PerClass, Tokens::Fleet).sum(&lists, 0);
        assert_eq!(per_job.requests, fleet.requests);
        assert_eq!(per_job.free_revalidations, 1);
        assert_eq!(fleet.free_revalidations, 2);
        assert_eq!(per_job.charged, fleet.charged + 2);
    }

    #[test]
    fn tokens_per_job_share_within_a_repository_only() {
        let steps = vec![
            start(0, 0, 0, "fleet/a"),
            start(0, 1, 1, "fleet/b"),
            run(1, 0, "search issues crash"),
            run(2, 1, "search issues crash"),
            end(3, 0),
            end(3, 1),
        ];
        let per_job = floor(&steps, Invalidation::PerClass, Tokens::PerJob);
        assert_eq!(per_job.reads, [FETCHED, FETCHED], "two scopes");
        let fleet = floor(&steps, Invalidation::PerClass, Tokens::Fleet);
        assert_eq!(fleet.reads, [FETCHED, served(1)], "one scope");
    }

    #[test]
    fn a_write_that_changes_search_drops_every_search() {
        let steps = vec![
            start(0, 0, 0, "fleet/a"),
            run(1, 0, "search issues crash"),
            run(2, 0, "release list -R fleet/b"),
            run(3, 0, "issue create -R fleet/a -t x -b y"),
            run(4, 0, "search issues crash"),
            run(5, 0, "release list -R fleet/b"),
            end(6, 0),
        ];
        let f = floor(&steps, Invalidation::PerClass, Tokens::Fleet);
        assert_eq!(f.reads, [FETCHED, FETCHED, FETCHED, served(3)]);
    }

    #[test]
    fn every_write_drops_every_search_and_an_unproven_one_everything() {
        let steps = vec![
            start(0, 0, 0, "fleet/a"),
            run(1, 0, "search issues crash"),
            run(2, 0, "release list -R fleet/b"),
            run(3, 0, "release create v9 -R fleet/c"),
            run(4, 0, "search issues crash"),
            run(5, 0, "release list -R fleet/b"),
            run(6, 0, "api -X POST user/repos -f name=x"),
            run(7, 0, "release list -R fleet/b"),
            end(8, 0),
        ];
        let f = floor(&steps, Invalidation::PerClass, Tokens::Fleet);
        assert_eq!(f.reads, [FETCHED, FETCHED, FETCHED, served(3), FETCHED]);
    }

    #[test]
    fn revalidation_follows_what_the_fake_github_sends() {
        let rest = |path| ("GET", path, false);
        assert_eq!(
            Revalidation::of([rest("/repos/o/r")]),
            Revalidation::AnyToken
        );
        assert_eq!(
            Revalidation::of([
                rest("/repos/o/r/actions/runs"),
                rest("/repos/o/r/actions/runs/5")
            ]),
            Revalidation::SameToken,
            "one list among them"
        );
        assert_eq!(
            Revalidation::of([rest("/repos/o/r"), ("POST", "/graphql", true)]),
            Revalidation::Never
        );
        assert_eq!(Revalidation::of([]), Revalidation::Never);
        for single in [
            "/repos/o/r/issues/3",
            "/repos/o/r/pulls/2",
            "/repos/o/r/releases/latest",
            "/repos/o/r/releases/tags/v1.0.0",
            "/api/v3/repos/o/r",
        ] {
            assert!(sends_last_modified(single), "{single}");
        }
        for list in ["/repos/o/r/issues", "/repos/o/r/labels", "/user"] {
            assert!(!sends_last_modified(list), "{list}");
        }
    }

    #[test]
    fn the_floor_rises_with_fewer_writes_and_wider_matrices() {
        let cells = by_traffic(&Options::full());
        let cut = |writes: u64, widths: &[usize]| {
            cells
                .iter()
                .find(|c| c.write_percent == writes && c.matrix == widths)
                .map(|c| c.per_class)
                .unwrap_or(f64::NAN)
        };
        assert_eq!(cells.len(), WRITE_PERCENTS.len() * WIDTHS.len());
        assert!(cut(0, WIDTHS[1]) > cut(20, WIDTHS[1]));
        assert!(cut(10, WIDTHS[2]) > cut(10, WIDTHS[0]));
        assert!(cells.iter().all(|c| c.per_class >= c.whole_repository));
        let replayed = floor(
            &trace(&Options::full()),
            Invalidation::PerClass,
            Tokens::Fleet,
        );
        assert_eq!(
            cut(10, WIDTHS[1]),
            replayed.cut_of_reads(),
            "the replayed trace's own cell"
        );
    }

    #[test]
    fn a_cache_that_hears_writes_keeps_answers_until_a_write_drops_them() {
        let comment = What::Comment {
            number: 1,
            pr: false,
        };
        let steps = vec![
            start(0, 0, 0, "fleet/a"),
            run(0, 0, "release list -R fleet/a"),
            run(1, 0, "issue list -R fleet/a"),
            run(2, 0, "run list -R fleet/a"),
            outside(3, "fleet/a", comment),
            outside(4, "fleet/b", What::Push),
            // 5 minutes later: past the lists' TTL, within the releases'.
            run(300, 0, "release list -R fleet/a"),
            run(301, 0, "issue list -R fleet/a"),
            run(302, 0, "run list -R fleet/a"),
            outside(303, "fleet/a", What::Push),
            run(304, 0, "run list -R fleet/a"),
            run(305, 0, "release list -R fleet/a"),
            end(306, 0),
        ];
        let ttl = floor(&steps, Invalidation::PerClass, Tokens::Fleet);
        assert_eq!(
            ttl.reads,
            [
                FETCHED,
                FETCHED,
                FETCHED,
                served(300),
                stale(true),
                stale(true),
                served(2),
                served(305)
            ],
            "the TTL cache hears no outside write: it fetches when answers expire"
        );
        let heard = heard_floor(&steps, Invalidation::PerClass, Tokens::Fleet);
        assert_eq!(
            heard.reads,
            [
                FETCHED,
                FETCHED,
                FETCHED,
                served(300),
                FETCHED,
                served(300),
                FETCHED,
                served(305)
            ],
            "the comment drops the issues, the push the runs; fleet/b's push nothing of fleet/a"
        );
        let whole = heard_floor(&steps, Invalidation::WholeRepository, Tokens::Fleet);
        assert_eq!(
            whole.fetches(),
            3 + 3 + 2,
            "each write to fleet/a drops all of it"
        );
    }
}
