//! Longer freshness where writes are heard (DESIGN.md, "GitHub's own writes").
//!
//! A cached answer goes out of date only when GitHub changes what it shows. Where a source of
//! GitHub's own writes is connected (a webhook receiver, follow probes), each write it hears
//! drops the answers it changed, here and on the peers of its scopes; an answer that no heard
//! write dropped may then be served past its class TTL, up to the class's *heard* TTL. The
//! cost: an answer can be as old as the delivery delay of a write that was missed.
//!
//! The rule is [`Allowance::extends`], which [`crate::ChainConfig::judge`] asks of every entry
//! past its TTL, whichever tier it came from, so that no path serves longer than another. An
//! entry is fresh under the heard TTL only if it was made while writes were heard: its
//! `created_at` is at least the clock skew after the time since which they are
//! ([`Cover::since_ms`]); one made before may predate a write that nothing told of.
//!
//! A daemon tells its machine's commands what it hears with a [`Report`], a small file in its
//! directory ([`crate::cache_dir::HEARD_FILE`]) that it rewrites when what it hears changes and
//! at least every [`REPORT_REFRESH`], each time valid for [`REPORT_VALID`]. A file that is
//! missing, expired, corrupt or unreadable means "not heard": today's TTLs.
//!
//! ```text
//! report  "ghcache-heard" | version | valid_until | u16 n | n × scope
//! scope   0 (every scope: the daemon's own sources) | 1, scope id | u16 n | n × cover
//! cover   kind | since | resources | repo? (none: every repository)
//! ```

use std::time::Duration;

use crate::entry::{Manifest, MAX_REPO};
use crate::error::DecodeError;
use crate::policy::{Resource, Resources};
use crate::scope::ScopeId;
use crate::wire::{put_opt_bytes, Reader};

/// How long a report is valid after it was written: a daemon that stopped without removing
/// it (killed, crashed) extends nothing past this.
pub const REPORT_VALID: Duration = Duration::from_secs(30);
/// How often a daemon rewrites its report at least, well inside [`REPORT_VALID`].
pub const REPORT_REFRESH: Duration = Duration::from_secs(10);
/// Version of the report's encoding.
pub const REPORT_VERSION: u8 = 1;
/// Largest report file read: a few scopes of a few dozen covers are a few KiB. A larger file
/// is not one of ours and means "not heard".
pub const MAX_REPORT: usize = 256 << 10;
/// Most scope groups in a report: the daemon's own, and the scopes it asks peers about.
pub const MAX_REPORT_SCOPES: usize = 128;
/// Most covers in one scope group of a report: several peers' follow sources.
pub const MAX_REPORT_COVERS: usize = 512;

const MAGIC: &[u8] = b"ghcache-heard";

/// A kind of source of GitHub's own writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// Webhook deliveries to a daemon (`ghcache daemon --webhook ADDR`).
    Webhook,
    /// Follow probes (`ghcache daemon --follow`).
    Follow,
}

impl SourceKind {
    /// Every kind, in the order of their codes.
    pub const ALL: [SourceKind; 2] = [SourceKind::Webhook, SourceKind::Follow];

    /// Name in `daemon status` and the logs.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Webhook => "webhook",
            SourceKind::Follow => "follow",
        }
    }

    /// Stable number for encodings: never reuse one.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Inverse of [`SourceKind::code`].
    pub fn from_code(code: u8) -> Option<SourceKind> {
        SourceKind::ALL.get(usize::from(code)).copied()
    }
}

/// What one source hears: the writes to `resources` of `repo` (every repository when `None`),
/// since `since_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cover {
    /// What kind of source hears them.
    pub kind: SourceKind,
    /// The repository (`owner/name`, lowercase); `None` for every repository.
    pub repo: Option<String>,
    /// The resources whose writes it hears.
    pub resources: Resources,
    /// Since when (ms since the epoch, the hearer's clock) it has heard them without a pause.
    pub since_ms: u64,
}

impl Cover {
    /// Largest encoded cover.
    pub const MAX_ENCODED: usize = 1 + 8 + 2 + 1 + 4 + MAX_REPO;

    /// What a webhook hears, since `since_ms`: every write to every repository.
    pub fn everything(kind: SourceKind, since_ms: u64) -> Cover {
        Cover {
            kind,
            repo: None,
            resources: Resources::of(&Resource::ALL),
            since_ms,
        }
    }

    /// Whether it hears the writes to `resource` of `repo`. An answer about no repository
    /// (`api user`, a search across them) is never covered: no repository's events tell of
    /// what changes it.
    pub fn covers(&self, repo: &str, resource: Resource) -> bool {
        !repo.is_empty()
            && self.repo.as_deref().is_none_or(|own| own == repo)
            && self.resources.contains(resource)
    }

    /// The same cover, heard only since `since_ms` if that is later.
    #[must_use]
    pub fn since_at_least(&self, since_ms: u64) -> Cover {
        Cover {
            since_ms: self.since_ms.max(since_ms),
            ..self.clone()
        }
    }

    /// Appends its encoding: the report and the p2p catch-up reply share it.
    pub fn put(&self, out: &mut Vec<u8>) {
        out.push(self.kind.code());
        out.extend_from_slice(&self.since_ms.to_le_bytes());
        out.extend_from_slice(&self.resources.bits().to_le_bytes());
        put_opt_bytes(out, self.repo.as_deref().map(str::as_bytes));
    }

    /// Reads what [`Cover::put`] wrote.
    ///
    /// # Errors
    /// Anything malformed or over its cap: an unknown kind or resource, a repository name
    /// longer than [`MAX_REPO`].
    pub fn read(r: &mut Reader<'_>) -> Result<Cover, DecodeError> {
        let kind = SourceKind::from_code(r.u8()?).ok_or_else(|| r.err("unknown source kind"))?;
        let since_ms = r.u64()?;
        let resources = Resources::from_bits(r.u16()?).ok_or_else(|| r.err("unknown resources"))?;
        let repo = r.opt_string(MAX_REPO)?;
        Ok(Cover {
            kind,
            repo,
            resources,
            since_ms,
        })
    }
}

/// The covers a report holds for one scope, or for every scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covered {
    /// The scope they hold for; `None` for every scope (the daemon's own sources, whose writes
    /// it drops from this machine's cache whatever the scope).
    pub scope: Option<ScopeId>,
    /// What is heard there.
    pub covers: Vec<Cover>,
}

/// What a daemon tells its machine's commands of the writes it hears: the file
/// [`crate::cache_dir::HEARD_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Until when (ms since the epoch) it may be used.
    pub valid_until_ms: u64,
    /// What is heard, by scope.
    pub scopes: Vec<Covered>,
}

impl Report {
    /// Whether it covers nothing.
    pub fn is_empty(&self) -> bool {
        self.scopes.iter().all(|s| s.covers.is_empty())
    }

    /// Since when writes to `resource` of `repo` are heard for `scope`, at `now_ms`: the
    /// earliest time of the covers that hear them; `None` when none does or the report
    /// expired.
    pub fn since_ms(
        &self,
        scope: &ScopeId,
        repo: &str,
        resource: Resource,
        now_ms: u64,
    ) -> Option<u64> {
        if now_ms >= self.valid_until_ms {
            return None;
        }
        self.scopes
            .iter()
            .filter(|s| s.scope.is_none_or(|own| own == *scope))
            .flat_map(|s| &s.covers)
            .filter(|c| c.covers(repo, resource))
            .map(|c| c.since_ms)
            .min()
    }

    /// The allowance of a request about `resource` of `repo` in `scope`, whose class's heard
    /// TTL is `ttl`, at `now_ms`; `None` when its writes are not heard.
    pub fn allowance(
        &self,
        scope: &ScopeId,
        repo: &str,
        resource: Resource,
        ttl: Duration,
        now_ms: u64,
    ) -> Option<Allowance> {
        let since_ms = self.since_ms(scope, repo, resource, now_ms)?;
        Some(Allowance {
            ttl,
            since_ms,
            valid_until_ms: self.valid_until_ms,
        })
    }

    /// The file's bytes. Past [`MAX_REPORT_SCOPES`], [`MAX_REPORT_COVERS`] or
    /// [`MAX_REPORT`] bytes, the rest is left out: a report that says less extends less.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(MAGIC);
        out.push(REPORT_VERSION);
        out.extend_from_slice(&self.valid_until_ms.to_le_bytes());
        let count_at = out.len();
        out.extend_from_slice(&0u16.to_le_bytes());
        let mut count: u16 = 0;
        for covered in self.scopes.iter().take(MAX_REPORT_SCOPES) {
            let mut group = Vec::new();
            match &covered.scope {
                None => group.push(0),
                Some(scope) => {
                    group.push(1);
                    group.extend_from_slice(scope.as_bytes());
                }
            }
            let covers = &covered.covers[..covered.covers.len().min(MAX_REPORT_COVERS)];
            group.extend_from_slice(&(covers.len() as u16).to_le_bytes());
            for cover in covers {
                cover.put(&mut group);
            }
            if out.len() + group.len() > MAX_REPORT {
                break;
            }
            out.extend_from_slice(&group);
            count += 1;
        }
        out[count_at..count_at + 2].copy_from_slice(&count.to_le_bytes());
        out
    }

    /// Inverse of [`Report::encode`]; counts are checked against their caps before anything
    /// is allocated for them.
    ///
    /// # Errors
    /// Anything malformed, of another version, or over a cap.
    pub fn decode(bytes: &[u8]) -> Result<Report, DecodeError> {
        let mut r = Reader::new(bytes, "heard report");
        if bytes.len() > MAX_REPORT {
            return Err(r.err("too large"));
        }
        if r.take(MAGIC.len())? != MAGIC {
            return Err(r.err("bad magic"));
        }
        if r.u8()? != REPORT_VERSION {
            return Err(r.err("unsupported version"));
        }
        let valid_until_ms = r.u64()?;
        let count = usize::from(r.u16()?);
        if count > MAX_REPORT_SCOPES {
            return Err(r.err("too many scopes"));
        }
        let mut scopes = Vec::with_capacity(count);
        for _ in 0..count {
            let scope = match r.u8()? {
                0 => None,
                1 => Some(ScopeId(r.array()?)),
                _ => return Err(r.err("bad scope tag")),
            };
            let n = usize::from(r.u16()?);
            if n > MAX_REPORT_COVERS {
                return Err(r.err("too many covers"));
            }
            let mut covers = Vec::with_capacity(n);
            for _ in 0..n {
                covers.push(Cover::read(&mut r)?);
            }
            scopes.push(Covered { scope, covers });
        }
        r.finish()?;
        Ok(Report {
            valid_until_ms,
            scopes,
        })
    }
}

/// A request's longer freshness: writes to what it asks about are heard since `since_ms`,
/// and the report that says so is valid until `valid_until_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// The heard TTL of the request's class (never shorter than its TTL).
    pub ttl: Duration,
    /// Since when the writes are heard (ms since the epoch).
    pub since_ms: u64,
    /// Until when the report that said so may be used.
    pub valid_until_ms: u64,
}

impl Allowance {
    /// Whether the entry `manifest` describes is fresh at `now_ms` under the heard TTL: the
    /// report is still valid, the entry was made at least `skew` after writes were heard (so
    /// that no write before it can have gone unheard), and it is younger than the heard TTL.
    pub fn extends(&self, manifest: &Manifest, now_ms: u64, skew: Duration) -> bool {
        let skew_ms = skew.as_millis() as u64;
        now_ms < self.valid_until_ms
            && manifest.created_at_ms >= self.since_ms.saturating_add(skew_ms)
            && manifest.is_fresh_for(self.ttl, now_ms, skew)
    }
}

#[cfg(test)]
mod tests;
