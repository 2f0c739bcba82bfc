use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::entry::Entry;
use crate::error::TierError;
use crate::key::CacheKey;
use crate::origin::{Fetched, Origin, OriginError, Output};
use crate::request::Request;
use crate::stats::{Event, StatsSink};
use crate::tier::{CacheTier, Lookup, Selector};

/// Where a [`Resolved`] answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A fresh entry from the named tier.
    Tier(&'static str),
    /// A new answer from GitHub.
    Origin,
    /// A stale entry that GitHub confirmed with a 304.
    Revalidated,
    /// A stale entry served because GitHub failed.
    Stale,
    /// gh failed and there was nothing to fall back to; its output is passed through.
    OriginFailed,
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
            clock_skew: Duration::from_secs(30),
        }
    }
}

struct Level {
    tier: Arc<dyn CacheTier>,
    deadline: Option<Duration>,
}

/// Reads tiers in order, falls through to the origin, backfills and writes through.
///
/// # Behavior
/// - Each tier is asked within its deadline; a tier that fails or is late is recorded and skipped.
/// - A fresh hit in tier *i* is copied into tiers `0..i` (backfill) before it is returned.
/// - A stale hit is kept as the *prior* entry: the origin may revalidate it (ETag), and it is
///   served with a warning if GitHub fails and it is younger than `max_stale`.
/// - An origin answer with exit code 0 is written to every tier.
///
/// The chain is itself a [`CacheTier`] (without the origin), so chains compose.
pub struct Chain {
    levels: Vec<Level>,
    origin: Arc<dyn Origin>,
    stats: Arc<dyn StatsSink>,
    config: ChainConfig,
}

impl Chain {
    /// A chain with no tiers yet: every request goes to `origin`.
    pub fn new(origin: Arc<dyn Origin>, stats: Arc<dyn StatsSink>) -> Self {
        Chain {
            levels: Vec::new(),
            origin,
            stats,
            config: ChainConfig::default(),
        }
    }

    /// Appends a tier, asked after the ones before it, with an optional deadline.
    pub fn with_tier(mut self, tier: Arc<dyn CacheTier>, deadline: Option<Duration>) -> Self {
        self.levels.push(Level { tier, deadline });
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
        let now = crate::now_ms();
        let mut warnings = Vec::new();
        let mut prior: Option<Entry> = None;
        for (index, level) in self.levels.iter().enumerate() {
            let Some(entry) = self.lookup(level, &request.key).await else {
                continue;
            };
            if entry.manifest.is_fresh(now, self.config.clock_skew) {
                self.stats.record(Event::Hit(level.tier.name()));
                self.backfill(&entry, index, &mut warnings).await;
                return Ok(Resolved {
                    output: Output::of(&entry),
                    source: Source::Tier(level.tier.name()),
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
        let fetched = match self.origin.fetch(request, prior.as_ref()).await {
            Ok(fetched) => fetched,
            Err(err) => match usable_stale(prior, request, now) {
                Some(stale) => {
                    return Ok(self.serve_stale(stale, &err.to_string(), warnings));
                }
                None => return Err(err),
            },
        };
        match fetched {
            Fetched::Fresh(entry) => {
                self.write_through(&entry, &mut warnings).await;
                Ok(Resolved {
                    output: Output::of(&entry),
                    source: Source::Origin,
                    warnings,
                })
            }
            Fetched::NotModified => match prior {
                Some(mut entry) => {
                    self.stats.record(Event::Revalidated);
                    entry.manifest.created_at_ms = crate::now_ms();
                    entry.manifest.signature = None;
                    self.write_through(&entry, &mut warnings).await;
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
            Fetched::Failed { output, transient } => {
                if transient {
                    if let Some(stale) = usable_stale(prior, request, now) {
                        let reason = first_line(&output.stderr);
                        return Ok(self.serve_stale(stale, &reason, warnings));
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

    async fn lookup(&self, level: &Level, key: &CacheKey) -> Option<Entry> {
        let name = level.tier.name();
        let result = match level.deadline {
            Some(deadline) => match tokio::time::timeout(deadline, level.tier.get(key)).await {
                Ok(result) => result,
                Err(_) => Err(TierError::Deadline {
                    tier: name,
                    deadline,
                }),
            },
            None => level.tier.get(key).await,
        };
        match result {
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

    async fn put_level(&self, level: &Level, entry: &Entry) -> Result<(), TierError> {
        match level.deadline {
            Some(deadline) => tokio::time::timeout(deadline, level.tier.put(entry))
                .await
                .unwrap_or(Err(TierError::Deadline {
                    tier: level.tier.name(),
                    deadline,
                })),
            None => level.tier.put(entry).await,
        }
    }

    async fn backfill(&self, entry: &Entry, upto: usize, warnings: &mut Vec<String>) {
        for level in &self.levels[..upto] {
            if let Err(err) = self.put_level(level, entry).await {
                self.stats.record(Event::Error(level.tier.name()));
                warnings.push(format!("could not store the answer: {err}"));
            }
        }
    }

    async fn write_through(&self, entry: &Entry, warnings: &mut Vec<String>) {
        self.backfill(entry, self.levels.len(), warnings).await;
    }

    fn serve_stale(&self, entry: Entry, reason: &str, mut warnings: Vec<String>) -> Resolved {
        self.stats.record(Event::StaleServed);
        let age = crate::now_ms().saturating_sub(entry.manifest.created_at_ms) / 1000;
        warnings.push(format!(
            "GitHub request failed ({reason}); showing a cached answer from {age}s ago"
        ));
        Resolved {
            output: Output::of(&entry),
            source: Source::Stale,
            warnings,
        }
    }
}

fn usable_stale(prior: Option<Entry>, request: &Request, now: u64) -> Option<Entry> {
    let entry = prior?;
    let limit = entry
        .manifest
        .ttl_ms
        .saturating_add(request.max_stale.as_millis() as u64);
    (entry.manifest.age_ms(now) < limit).then_some(entry)
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
        for (index, level) in self.levels.iter().enumerate() {
            if let Some(entry) = self.lookup(level, key).await {
                self.backfill(&entry, index, &mut warnings).await;
                return Ok(Lookup::Hit(entry));
            }
        }
        Ok(Lookup::Miss)
    }

    async fn put(&self, entry: &Entry) -> Result<(), TierError> {
        let mut warnings = Vec::new();
        self.write_through(entry, &mut warnings).await;
        Ok(())
    }

    async fn invalidate(&self, selector: &Selector) -> Result<u64, TierError> {
        let mut dropped = 0;
        for level in &self.levels {
            match level.tier.invalidate(selector).await {
                Ok(n) => dropped += n,
                Err(_) => self.stats.record(Event::Error(level.tier.name())),
            }
        }
        Ok(dropped)
    }
}
