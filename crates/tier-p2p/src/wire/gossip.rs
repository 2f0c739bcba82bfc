//! What peers publish on a scope's gossip topic: announcements, invalidations, and what a
//! machine learnt of GitHub's rate-limit budget.

use ghcache_core::budget::{News, MAX_NEWS};
use ghcache_core::wire::{put_bytes, Reader};
use ghcache_core::{ScopeId, MAX_MANIFEST};

use super::error::WireError;
use super::invalidation::Invalidation;
use super::tag::{TAG_ANNOUNCE, TAG_BUDGET, TAG_INVALIDATE};

/// Largest gossip message payload.
pub const MAX_GOSSIP: usize = 8 << 10;

/// Largest budget message, on gossip or from a command to its daemon: a tag, a scope id and
/// the largest news.
pub(super) const MAX_BUDGET_MESSAGE: usize = 1 + 32 + MAX_NEWS;

// The largest news a machine may tell must fit a gossip message.
const _: () = assert!(MAX_BUDGET_MESSAGE <= MAX_GOSSIP);

/// What peers tell each other on a scope's gossip topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gossip {
    /// "I have this entry": a signed, encoded manifest (no body).
    Announcement {
        /// `Manifest::encode` bytes.
        manifest: Vec<u8>,
    },
    /// "Entries about this repository are out of date."
    Invalidation(Invalidation),
    /// "GitHub said this of a principal's rate-limit budget": a secondary limit's pause, the
    /// readings of `x-ratelimit-*`. Receivers merge it into their machine's book.
    Budget {
        /// Scope whose topic carries it.
        scope_id: ScopeId,
        /// What is known of the principal.
        news: News,
    },
}

impl Gossip {
    /// Encoding published on the topic.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Gossip::Announcement { manifest } => {
                out.push(TAG_ANNOUNCE);
                put_bytes(&mut out, manifest);
            }
            Gossip::Invalidation(inv) => {
                out.push(TAG_INVALIDATE);
                inv.put(&mut out);
            }
            Gossip::Budget { scope_id, news } => {
                out.push(TAG_BUDGET);
                out.extend_from_slice(scope_id.as_bytes());
                news.put(&mut out);
            }
        }
        out
    }

    /// Inverse of [`Gossip::encode`].
    ///
    /// # Errors
    /// Anything malformed or over its cap.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes, "gossip message");
        if bytes.len() > MAX_GOSSIP {
            return Err(r.err("too large").into());
        }
        let msg = match r.u8()? {
            TAG_ANNOUNCE => Gossip::Announcement {
                manifest: r.bytes(MAX_MANIFEST)?.to_vec(),
            },
            TAG_INVALIDATE => Gossip::Invalidation(Invalidation::read(&mut r)?),
            TAG_BUDGET => Gossip::Budget {
                scope_id: ScopeId(r.array()?),
                news: News::read(&mut r)?,
            },
            _ => return Err(r.err("unknown tag").into()),
        };
        r.finish()?;
        Ok(msg)
    }
}
