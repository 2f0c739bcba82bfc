//! The fallthrough chain: tiers in order, then the origin; and the rules by which an entry that
//! a tier returned may answer a request ([`ChainConfig::judge`]), which any path that reads a
//! tier outside the chain must follow too.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::entry::Entry;
use crate::error::TierError;
use crate::fence::{Fence, FenceState, Mark, CLOCK_SKEW};
use crate::key::CacheKey;
use crate::origin::{Fetched, Origin, OriginError, Output};
use crate::policy::Resource;
use crate::request::Request;
use crate::stats::{Event, StatsSink};
use crate::tier::{CacheTier, Lookup, Selector};

/// Where a [`Resolved`] answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A fresh entry from the named tier.
    Tier(&'static str),
    /// An entry from the named tier past its TTL, fresh under its heard TTL: the writes to
    /// what it shows are heard (see [`crate::heard`]).
    Heard(&'static str),
    /// A new answer from GitHub.
    Origin,
    /// A stale entry that GitHub confirmed with a 304.
    Revalidated,
    /// A stale entry served because GitHub failed.
    Stale,
    /// gh failed and there was nothing to fall back to; its output is passed through.
    OriginFailed,
    /// A new answer from GitHub, printed as gh wrote it and not stored: it was larger than the
    /// largest entry.
    OriginTooLarge,
}

impl Source {
    /// How a debug line names where an answer came from: "local hit", "miss, fetched from
    /// github", ...
    pub fn label(self) -> std::borrow::Cow<'static, str> {
        match self {
            Source::Tier(tier) => format!("{tier} hit").into(),
            Source::Heard(tier) => {
                format!("{tier} hit under the heard TTL (writes are heard)").into()
            }
            Source::Origin => "miss, fetched from github".into(),
            Source::Revalidated => "revalidated (304)".into(),
            Source::Stale => "stale (github failed)".into(),
            Source::OriginFailed => "miss, github's answer passed on (not stored)".into(),
            Source::OriginTooLarge => "miss, fetched from github (too large to store)".into(),
        }
    }
}

/// The answer to a request, and what the user should be told about how it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// What to print and the exit code.
    pub output: Output,
    /// Which tier or origin produced it.
    pub source: Source,
    /// One-line warnings for stderr (a stale answer, a tier that could not store).
    pub warnings: Vec<String>,
}

/// Settings of a [`Chain`].
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// How far a producer's clock may run ahead of ours before its entries are distrusted.
    pub clock_skew: Duration,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            clock_skew: CLOCK_SKEW,
        }
    }
}

/// How an entry that a tier returned stands for a request: see [`ChainConfig::judge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not to be used at all: it names another repository or resource than the request (an
    /// honest producer names the ones the key is made of), or it is older than an invalidation
    /// this machine has seen.
    Refused,
    /// An answer to the request, past the request's TTL: kept for revalidation and for
    /// stale-if-error, never served as it is.
    Stale,
    /// Answers the request now.
    Fresh,
    /// Answers the request now, past its TTL but under its heard TTL (see [`crate::heard`]).
    Heard,
}

impl Verdict {
    /// Whether the entry answers the request now.
    pub fn answers(self) -> bool {
        matches!(self, Verdict::Fresh | Verdict::Heard)
    }
}

impl ChainConfig {
    /// How `entry` stands for `request` at `now_ms`, under the fence of the request's
    /// repository as read now (`None`: the caller keeps no fences).
    ///
    /// # Behavior
    /// The chain asks this of every entry a tier returns. A path that reads a tier outside the
    /// chain (the CLI's hit path, which answers from the local records without starting the
    /// chain) asks it too, so that no answer is served there that the chain would refuse.
    /// Freshness is this machine's call, from the request's TTL and the producer's
    /// `created_at`, trusted up to `clock_skew` ahead of our clock. Past the TTL, an entry is
    /// [`Verdict::Heard`] when the request's heard allowance extends it
    /// ([`crate::heard::Allowance::extends`]); an entry's own TTL caps that as it caps the TTL.
    pub fn judge(
        &self,
        entry: &Entry,
        request: &Request,
        fence: Option<&FenceState>,
        now_ms: u64,
    ) -> Verdict {
        if !admits(
            entry,
            &request.repo,
            request.resource,
            fence,
            self.clock_skew,
        ) {
            return Verdict::Refused;
        }
        if request.fresh_only {
            return Verdict::Stale;
        }
        let capped = |ttl: Duration| match request.capped_by_entry_ttl {
            true => ttl.min(Duration::from_millis(entry.manifest.ttl_ms)),
            false => ttl,
        };
        if entry
            .manifest
            .is_fresh_for(capped(request.ttl), now_ms, self.clock_skew)
        {
            return Verdict::Fresh;
        }
        let heard = request.heard.is_some_and(|heard| {
            let heard = crate::heard::Allowance {
                ttl: capped(heard.ttl),
                ..heard
            };
            heard.extends(&entry.manifest, now_ms, self.clock_skew)
        });
        if heard {
            Verdict::Heard
        } else {
            Verdict::Stale
        }
    }
}

/// Whether `entry` may be used for an answer about `resource` of `repo` under `fence`.
fn admits(
    entry: &Entry,
    repo: &str,
    resource: Resource,
    fence: Option<&FenceState>,
    skew: Duration,
) -> bool {
    // Both are derived from what the key is made of, so an honest producer names the same
    // ones; one that names others would slip past the fence.
    if entry.manifest.repo != repo || entry.manifest.resource != resource {
        return false;
    }
    fence.is_none_or(|state| state.admits(&entry.manifest, skew))
}

/// Reads tiers in order, falls through to the origin, backfills and writes through.
///
/// # Behavior
/// - Each tier is asked in turn; a tier that fails is recorded and skipped. Deadlines and
///   lookup-only tiers are [layers](crate::layers) around the tiers given, not rules of the chain.
/// - A fresh hit in tier *i* is copied into tiers `0..i` (backfill) before it is returned.
/// - A stale hit is kept as the *prior* entry: the origin may revalidate it (ETag), and it is
///   served with a warning if GitHub fails and it is younger than `max_stale`.
/// - An origin answer with exit code 0 is written to every tier (a tier that refuses stores
///   with [`TierError::ReadOnly`] is skipped without a warning).
/// - With a [`Fence`], the fence of the request's repository is read before anything else: an
///   answer is stored only if no invalidation of the repository happened since (it may have been
///   fetched before a write finished), and an entry from any tier is used only if
///   [`ChainConfig::judge`] does not refuse it under the fence as read then.
///
/// The chain is itself a [`CacheTier`] (without the origin), so chains compose.
pub struct Chain {
    tiers: Vec<Arc<dyn CacheTier>>,
    origin: Arc<dyn Origin>,
    stats: Arc<dyn StatsSink>,
    fence: Option<Arc<dyn Fence>>,
    config: ChainConfig,
}

/// How the fence stood when a request began.
enum Start {
    /// No fence: everything may be stored.
    Unfenced,
    /// The fence read this.
    Read(FenceState),
    /// The fence could not be read: nothing may be stored.
    Unreadable,
}

impl Start {
    /// The last invalidation seen before the fetch began: what the answer names, so that peers
    /// that saw the same one last take it without waiting out the clock skew.
    fn last(&self) -> Option<crate::InvalidationId> {
        match self {
            Start::Read(state) => state.last,
            Start::Unfenced | Start::Unreadable => None,
        }
    }
}

impl Chain {
    /// A chain with no tiers yet: every request goes to `origin`.
    pub fn new(origin: Arc<dyn Origin>, stats: Arc<dyn StatsSink>) -> Self {
        Chain {
            tiers: Vec::new(),
            origin,
            stats,
            fence: None,
            config: ChainConfig::default(),
        }
    }

    /// Appends a tier, asked after the ones before it. A tier with a deadline, or one that the
    /// chain must not store into, comes wrapped in its [layer](crate::layers).
    pub fn with_tier(mut self, tier: Arc<dyn CacheTier>) -> Self {
        self.tiers.push(tier);
        self
    }

    /// Guards every lookup and store with `fence` (see the type's behaviour).
    pub fn with_fence(mut self, fence: Arc<dyn Fence>) -> Self {
        self.fence = Some(fence);
        self
    }

    /// Replaces the settings.
    pub fn with_config(mut self, config: ChainConfig) -> Self {
        self.config = config;
        self
    }

    /// Answers `request` from the nearest tier with a fresh entry, else from the origin.
    ///
    /// # Errors
    /// Only when the origin cannot be run at all and no stale entry can stand in.
    pub async fn resolve(&self, request: &Request) -> Result<Resolved, OriginError> {
        // Read before anything is fetched: what follows may race a write.
        let start = self.start(request);
        let now = crate::now_ms();
        let mut warnings = Vec::new();
        let mut prior: Option<Entry> = None;
        for (index, tier) in self.tiers.iter().enumerate() {
            let Some(entry) = self.lookup(tier.as_ref(), &request.key).await else {
                continue;
            };
            // The fence is read anew: an invalidation may have finished while the tier looked.
            let fence = match self.fence_now(&request.repo, request.resource) {
                Ok(fence) => fence,
                Err(()) => continue,
            };
            let verdict = self.config.judge(&entry, request, fence.as_ref(), now);
            if verdict == Verdict::Refused {
                continue;
            }
            if verdict.answers() {
                self.stats.record(Event::Hit(tier.name()));
                let mark = self.storable(request, &start);
                self.backfill(&entry, index, mark, &mut warnings).await;
                let source = match verdict {
                    Verdict::Heard => Source::Heard(tier.name()),
                    _ => Source::Tier(tier.name()),
                };
                return Ok(Resolved {
                    output: Output::from(entry),
                    source,
                    warnings,
                });
            }
            if prior
                .as_ref()
                .is_none_or(|p| p.manifest.created_at_ms < entry.manifest.created_at_ms)
            {
                prior = Some(entry);
            }
        }
        self.stats.record(Event::Miss);
        if let Some(reason) = &request.prefer_stale {
            if let Some(stale) = usable_stale(prior.clone(), request, now) {
                let why = format!("GitHub not asked ({reason})");
                return Ok(self.serve_stale(stale, &why, warnings));
            }
        }
        let fetch_began = crate::now_ms();
        let fetched = match self.origin.fetch(request, prior.as_ref()).await {
            Ok(fetched) => fetched,
            Err(err) => match usable_stale(prior, request, now) {
                Some(stale) => {
                    let why = format!("GitHub request failed ({err})");
                    return Ok(self.serve_stale(stale, &why, warnings));
                }
                None => return Err(err),
            },
        };
        match fetched {
            Fetched::Fresh(entry) => {
                let entry = self
                    .store_fetched(entry, request, &start, fetch_began, &mut warnings)
                    .await;
                Ok(Resolved {
                    output: Output::from(entry),
                    source: Source::Origin,
                    warnings,
                })
            }
            Fetched::NotModified => match prior {
                Some(mut entry) => {
                    self.stats.record(Event::Revalidated);
                    // GitHub vouched for it again: it is this machine's entry now, to be
                    // signed anew by whoever announces it.
                    entry.manifest.created_at_ms = fetch_began;
                    entry.manifest.producer = None;
                    entry.manifest.signature = None;
                    entry.manifest.after = start.last();
                    let mark = self.storable(request, &start);
                    self.write_through(&entry, mark, &mut warnings).await;
                    Ok(Resolved {
                        output: Output::of(&entry),
                        source: Source::Revalidated,
                        warnings,
                    })
                }
                // An origin that answers 304 without a prior entry is broken; say so plainly.
                None => Err(OriginError::Io {
                    program: "gh".into(),
                    reason: "GitHub answered 304 Not Modified but no cached entry exists".into(),
                }),
            },
            Fetched::Printed { entry, output } => {
                let source = match entry {
                    Some(entry) => {
                        self.store_fetched(entry, request, &start, fetch_began, &mut warnings)
                            .await;
                        Source::Origin
                    }
                    None => Source::OriginTooLarge,
                };
                Ok(Resolved {
                    output,
                    source,
                    warnings,
                })
            }
            Fetched::Failed { output, transient } => {
                // Once part of gh's answer is on the user's screen, a stale one cannot replace it.
                if transient && !output.stdout_printed {
                    if let Some(stale) = usable_stale(prior, request, now) {
                        let reason = first_line(&output.stderr);
                        let why = format!("GitHub request failed ({reason})");
                        return Ok(self.serve_stale(stale, &why, warnings));
                    }
                }
                Ok(Resolved {
                    output,
                    source: Source::OriginFailed,
                    warnings,
                })
            }
        }
    }

    async fn lookup(&self, tier: &dyn CacheTier, key: &CacheKey) -> Option<Entry> {
        let name = tier.name();
        match tier.get(key).await {
            Ok(Lookup::Hit(entry)) if entry.manifest.key == *key && entry.verify_body() => {
                Some(entry)
            }
            Ok(Lookup::Hit(_)) | Err(TierError::Corrupt { .. }) => {
                self.stats.record(Event::Corrupt(name));
                None
            }
            Ok(Lookup::Miss) => None,
            Err(_) => {
                self.stats.record(Event::Error(name));
                None
            }
        }
    }

    /// Stores an answer the origin fetched for `request`, under the fence the request began
    /// with, and returns it. The answer is dated when its fetch began: GitHub may have answered
    /// at any moment since, and a write that finished meanwhile must be seen as newer.
    async fn store_fetched(
        &self,
        mut entry: Entry,
        request: &Request,
        start: &Start,
        fetch_began: u64,
        warnings: &mut Vec<String>,
    ) -> Entry {
        if entry.manifest.producer.is_none() {
            entry.manifest.created_at_ms = entry.manifest.created_at_ms.min(fetch_began);
            entry.manifest.resource = request.resource;
            entry.manifest.after = start.last();
        }
        let mark = self.storable(request, start);
        self.write_through(&entry, mark, warnings).await;
        entry
    }

    /// The fence of what `request` asks about, before its first lookup.
    fn start(&self, request: &Request) -> Start {
        match &self.fence {
            None => Start::Unfenced,
            Some(fence) => fence
                .read(&request.repo, request.resource)
                .map_or(Start::Unreadable, Start::Read),
        }
    }

    /// The fence of `resource` of `repo` as it reads now: `Ok(None)` without a fence, `Err`
    /// when it cannot be read (nothing about the repository may then be used).
    fn fence_now(&self, repo: &str, resource: Resource) -> Result<Option<FenceState>, ()> {
        match &self.fence {
            None => Ok(None),
            Some(fence) => fence.read(repo, resource).map(Some).map_err(drop),
        }
    }

    /// How an answer to `request`, which began at `start`, may be stored now: `Some(None)` as
    /// it is, `Some(Some(mark))` under the mark the fence had then, `None` not at all (the fence
    /// moved: the answer may predate a write, or the fence cannot be read).
    fn storable(&self, request: &Request, start: &Start) -> Option<Option<Mark>> {
        match (start, &self.fence) {
            (Start::Unfenced, _) | (_, None) => Some(None),
            (Start::Read(then), Some(fence)) => match fence.read(&request.repo, request.resource) {
                Ok(now) if now.mark == then.mark => Some(Some(then.mark)),
                _ => None,
            },
            (Start::Unreadable, Some(_)) => None,
        }
    }

    /// Stores `entry` in the tiers before `upto`; `mark` as from [`Chain::storable`].
    async fn backfill(
        &self,
        entry: &Entry,
        upto: usize,
        mark: Option<Option<Mark>>,
        warnings: &mut Vec<String>,
    ) {
        let Some(mark) = mark else {
            return;
        };
        for tier in &self.tiers[..upto] {
            let stored = match mark {
                Some(mark) => tier.put_fenced(entry, mark).await,
                None => tier.put(entry).await,
            };
            match stored {
                Ok(()) => {}
                // A tier that is read-only said so when it was opened (a read-only cache dir, a
                // consume-only daemon), and a lookup-only layer stores nothing by design: one
                // warning per problem, not one per store.
                Err(TierError::ReadOnly { .. }) => {}
                Err(err) => {
                    self.stats.record(Event::Error(tier.name()));
                    warnings.push(format!("could not store the answer: {err}"));
                }
            }
        }
    }

    async fn write_through(
        &self,
        entry: &Entry,
        mark: Option<Option<Mark>>,
        warnings: &mut Vec<String>,
    ) {
        self.backfill(entry, self.tiers.len(), mark, warnings).await;
    }

    /// Serves `entry` past its TTL, saying `why` (GitHub failed, or should not be asked now:
    /// [`Request::prefer_stale`]) and how old it is.
    fn serve_stale(&self, entry: Entry, why: &str, mut warnings: Vec<String>) -> Resolved {
        self.stats.record(Event::StaleServed);
        let age = crate::now_ms().saturating_sub(entry.manifest.created_at_ms) / 1000;
        warnings.push(format!("{why}; showing a cached answer from {age}s ago"));
        Resolved {
            output: Output::of(&entry),
            source: Source::Stale,
            warnings,
        }
    }
}

fn usable_stale(prior: Option<Entry>, request: &Request, now: u64) -> Option<Entry> {
    let entry = prior?;
    let limit = request.ttl.saturating_add(request.max_stale).as_millis();
    (u128::from(entry.manifest.age_ms(now)) < limit).then_some(entry)
}

fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    line.unwrap_or("gh failed").chars().take(160).collect()
}

#[async_trait]
impl CacheTier for Chain {
    fn name(&self) -> &'static str {
        "chain"
    }

    async fn get(&self, key: &CacheKey) -> Result<Lookup, TierError> {
        let mut warnings = Vec::new();
        for (index, tier) in self.tiers.iter().enumerate() {
            let Some(entry) = self.lookup(tier.as_ref(), key).await else {
                continue;
            };
            let (repo, resource) = (&entry.manifest.repo, entry.manifest.resource);
            let admitted = self.fence_now(repo, resource).is_ok_and(|fence| {
                admits(
                    &entry,
                    repo,
                    resource,
                    fence.as_ref(),
                    self.config.clock_skew,
                )
            });
            if admitted {
                // The fence is read after the lookup: a backfill is checked by the tiers that
                // keep fences, against the entry's own time, as a plain put is.
                self.backfill(&entry, index, Some(None), &mut warnings)
                    .await;
                return Ok(Lookup::Hit(entry));
            }
        }
        Ok(Lookup::Miss)
    }

    async fn put(&self, entry: &Entry) -> Result<(), TierError> {
        let mut warnings = Vec::new();
        self.write_through(entry, Some(None), &mut warnings).await;
        Ok(())
    }

    async fn put_fenced(&self, entry: &Entry, mark: Mark) -> Result<(), TierError> {
        let mut warnings = Vec::new();
        self.write_through(entry, Some(Some(mark)), &mut warnings)
            .await;
        Ok(())
    }

    async fn invalidate(&self, selector: &Selector) -> Result<u64, TierError> {
        let mut dropped = 0;
        for tier in &self.tiers {
            match tier.invalidate(selector).await {
                Ok(n) => dropped += n,
                Err(_) => self.stats.record(Event::Error(tier.name())),
            }
        }
        Ok(dropped)
    }

    async fn invalidate_known(
        &self,
        selector: &Selector,
        id: crate::InvalidationId,
    ) -> Result<u64, TierError> {
        let mut dropped = 0;
        for tier in &self.tiers {
            match tier.invalidate_known(selector, id).await {
                Ok(n) => dropped += n,
                Err(_) => self.stats.record(Event::Error(tier.name())),
            }
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests;
