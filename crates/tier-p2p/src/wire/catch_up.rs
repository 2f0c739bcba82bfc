//! `/ghcache/catch-up/1`: a peer that was away asks another for the invalidations it missed.
//!
//! Gossip reaches the peers connected when it is sent: a daemon that was stopped, asleep or cut
//! off never hears a write made meanwhile, and would serve its copy from before it until the TTL
//! runs out. So peers keep the invalidations they saw lately (bounded), and one that comes
//! back asks for those since it last heard the swarm, for the scopes it follows (a peer learns
//! only of writes on scopes it names, as on gossip). The answer says since when it is complete:
//! one that is not complete for the gap is no catch-up.

use ghcache_core::wire::Reader;
use ghcache_core::ScopeId;
use libp2p::StreamProtocol;

use super::error::WireError;
use super::frame::{framed_codec, no_early_refusal};
use super::invalidation::{Invalidation, MAX_INVALIDATION};
use super::tag::{TAG_CATCH_UP, TAG_CAUGHT_UP};

/// Protocol name of the catch-up: "which invalidations of these scopes came since then?"
pub const CATCH_UP_PROTOCOL: StreamProtocol = StreamProtocol::new("/ghcache/catch-up/1");
/// Most scopes named in one request: a runner follows one or two; a laptop a few.
pub const MAX_CATCH_UP_SCOPES: usize = 64;
/// Most invalidations in one reply: past this, the reply holds the newest and says it is
/// complete only from the oldest of them.
pub const MAX_CATCH_UP_ITEMS: usize = 1024;
/// Largest catch-up request: a tag, a time, a count and the scopes.
pub const MAX_CATCH_UP_REQUEST: usize = 1 + 8 + 1 + 32 * MAX_CATCH_UP_SCOPES;
/// Largest catch-up reply (about 330 KiB; a real one holds a few invalidations of ~60 bytes).
pub const MAX_CAUGHT_UP: usize = 1 + 8 + 4 + MAX_CATCH_UP_ITEMS * MAX_INVALIDATION;

/// Asks a peer for the invalidations of `scopes` it saw dated at or after `since_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUp {
    /// The asker's gap starts here (ms since the epoch, less the clock skew).
    pub since_ms: u64,
    /// The scopes the asker follows; at most [`MAX_CATCH_UP_SCOPES`] are sent.
    pub scopes: Vec<ScopeId>,
}

/// A peer's answer to a [`CatchUp`]. Everything in it is to be checked before use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaughtUp {
    /// The answering peer holds every invalidation it saw of those scopes dated at or after
    /// this; the asker's gap is covered only if this is not later than its `since_ms`.
    pub complete_since_ms: u64,
    /// Those of them dated at or after `since_ms`, oldest first.
    pub invalidations: Vec<Invalidation>,
}

impl CatchUp {
    /// Wire encoding; scopes past [`MAX_CATCH_UP_SCOPES`] are left out.
    pub fn encode(&self) -> Vec<u8> {
        let scopes = &self.scopes[..self.scopes.len().min(MAX_CATCH_UP_SCOPES)];
        let mut out = Vec::with_capacity(MAX_CATCH_UP_REQUEST);
        out.push(TAG_CATCH_UP);
        out.extend_from_slice(&self.since_ms.to_le_bytes());
        out.push(scopes.len() as u8);
        for scope in scopes {
            out.extend_from_slice(scope.as_bytes());
        }
        out
    }

    /// Inverse of [`CatchUp::encode`].
    ///
    /// # Errors
    /// Anything malformed or over its cap.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes, "catch-up request");
        if r.u8()? != TAG_CATCH_UP {
            return Err(r.err("unknown tag").into());
        }
        let since_ms = r.u64()?;
        let count = usize::from(r.u8()?);
        if count > MAX_CATCH_UP_SCOPES {
            return Err(r.err("too many scopes").into());
        }
        let mut scopes = Vec::with_capacity(count);
        for _ in 0..count {
            scopes.push(ScopeId(r.array()?));
        }
        r.finish()?;
        Ok(CatchUp { since_ms, scopes })
    }
}

impl CaughtUp {
    /// Wire encoding. Past [`MAX_CATCH_UP_ITEMS`], the newest are sent and the reply says it is
    /// complete only from the oldest of those, so that what is sent always decodes and never
    /// claims more than it holds.
    pub fn encode(&self) -> Vec<u8> {
        let skip = self.invalidations.len().saturating_sub(MAX_CATCH_UP_ITEMS);
        let sent = &self.invalidations[skip..];
        let complete_since_ms = match (skip, sent.first()) {
            (0, _) | (_, None) => self.complete_since_ms,
            (_, Some(oldest)) => self.complete_since_ms.max(oldest.at_ms),
        };
        let mut out = vec![TAG_CAUGHT_UP];
        out.extend_from_slice(&complete_since_ms.to_le_bytes());
        out.extend_from_slice(&(sent.len() as u32).to_le_bytes());
        for invalidation in sent {
            invalidation.put(&mut out);
        }
        out
    }

    /// Inverse of [`CaughtUp::encode`]; the count is checked against its cap before anything
    /// is allocated for it.
    ///
    /// # Errors
    /// Anything malformed or over its cap.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes, "catch-up reply");
        if bytes.len() > MAX_CAUGHT_UP {
            return Err(r.err("too large").into());
        }
        if r.u8()? != TAG_CAUGHT_UP {
            return Err(r.err("unknown tag").into());
        }
        let complete_since_ms = r.u64()?;
        let count = r.u32()? as usize;
        if count > MAX_CATCH_UP_ITEMS {
            return Err(r.err("too many invalidations").into());
        }
        let mut invalidations = Vec::with_capacity(count);
        for _ in 0..count {
            invalidations.push(Invalidation::read(&mut r)?);
        }
        r.finish()?;
        Ok(CaughtUp {
            complete_since_ms,
            invalidations,
        })
    }
}

framed_codec!(
    /// Request-response codec of `/ghcache/catch-up/1`: one length-prefixed, capped frame each
    /// way.
    CatchUpCodec,
    CatchUp,
    MAX_CATCH_UP_REQUEST,
    CaughtUp,
    MAX_CAUGHT_UP,
    no_early_refusal
);
