//! `/ghcache/catch-up/2`: a peer that was away asks another for the invalidations it missed.
//!
//! Gossip reaches the peers connected when it is sent: a daemon that was stopped, asleep or cut
//! off never hears a write made meanwhile, and would serve its copy from before it until the TTL
//! runs out. So peers keep the invalidations they saw lately (bounded), and one that comes
//! back asks for those since it last heard the swarm, for the scopes it follows (a peer learns
//! only of writes on scopes it names, as on gossip). The answer says since when it is complete:
//! one that is not complete for the gap is no catch-up.
//!
//! The answer also says which of GitHub's writes the answering peer hears ([`Vouch`]): its own
//! sources' covers, and since when it sends what they hear on each of the scopes asked. A peer
//! connected to it without a gap may then serve answers of those scopes for longer
//! (`ghcache_core::heard`). A reply without that part (from an earlier version) vouches for
//! nothing.
//!
//! ```text
//! reply  tag | complete_since | u32 n | n × invalidation
//!        [ u8 n | n × cover | u8 n | n × (scope id | since) ]      the vouch
//! ```

use ghcache_core::heard::Cover;
use ghcache_core::wire::Reader;
use ghcache_core::ScopeId;
use libp2p::StreamProtocol;

use super::error::WireError;
use super::frame::{framed_codec, no_early_refusal};
use super::invalidation::{Invalidation, MAX_INVALIDATION};
use super::tag::{TAG_CATCH_UP, TAG_CAUGHT_UP};

/// Protocol name of the catch-up: "which invalidations of these scopes came since then?"
///
/// Version 2 added the reply's vouch (which writes the answering peer hears): a peer of the
/// first version would refuse such a reply, so the two never speak it to each other (to either,
/// the other cannot vouch, as a read-only peer cannot).
pub const CATCH_UP_PROTOCOL: StreamProtocol = StreamProtocol::new("/ghcache/catch-up/2");
/// Most scopes named in one request: a runner follows one or two; a laptop a few.
pub const MAX_CATCH_UP_SCOPES: usize = 64;
/// Most invalidations in one reply: past this, the reply holds the newest and says it is
/// complete only from the oldest of them.
pub const MAX_CATCH_UP_ITEMS: usize = 1024;
/// Largest catch-up request: a tag, a time, a count and the scopes.
pub const MAX_CATCH_UP_REQUEST: usize = 1 + 8 + 1 + 32 * MAX_CATCH_UP_SCOPES;
/// Most covers a peer vouches for: one webhook, and a follow source's repositories
/// (`ghcache_follow::MAX_REPOS`, 50), with room to spare. Past this, the rest are left out: a
/// vouch that says less extends less.
pub const MAX_VOUCH_COVERS: usize = 64;
/// Largest vouch: its covers, and a time for each scope asked.
pub const MAX_VOUCH: usize =
    1 + MAX_VOUCH_COVERS * Cover::MAX_ENCODED + 1 + MAX_CATCH_UP_SCOPES * (32 + 8);
/// Largest catch-up reply (about 370 KiB; a real one holds a few invalidations of ~60 bytes,
/// and a vouch of a few covers).
pub const MAX_CAUGHT_UP: usize = 1 + 8 + 4 + MAX_CATCH_UP_ITEMS * MAX_INVALIDATION + MAX_VOUCH;

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
    /// Which of GitHub's writes the answering peer hears and sends on the scopes asked.
    pub vouch: Vouch,
}

/// What a peer says it hears of GitHub's writes, for the asker to serve longer (see the
/// module's doc). Empty from a peer with a gap of its own, a read-only one, or one with no
/// source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vouch {
    /// What its own sources hear, each since when they have without a pause and it has had no
    /// gap.
    pub covers: Vec<Cover>,
    /// The scopes asked on which it sends what they hear, each with the time since which it
    /// has (when it joined the scope's topic).
    pub scopes: Vec<(ScopeId, u64)>,
}

impl Vouch {
    /// Whether it vouches for nothing.
    pub fn is_empty(&self) -> bool {
        self.covers.is_empty() || self.scopes.is_empty()
    }

    /// Appends its encoding (after a reply's invalidations).
    pub(super) fn put(&self, out: &mut Vec<u8>) {
        let covers = &self.covers[..self.covers.len().min(MAX_VOUCH_COVERS)];
        out.push(covers.len() as u8);
        for cover in covers {
            cover.put(out);
        }
        let scopes = &self.scopes[..self.scopes.len().min(MAX_CATCH_UP_SCOPES)];
        out.push(scopes.len() as u8);
        for (scope, since_ms) in scopes {
            out.extend_from_slice(scope.as_bytes());
            out.extend_from_slice(&since_ms.to_le_bytes());
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Vouch, WireError> {
        let count = usize::from(r.u8()?);
        if count > MAX_VOUCH_COVERS {
            return Err(r.err("too many covers").into());
        }
        let mut covers = Vec::with_capacity(count);
        for _ in 0..count {
            covers.push(Cover::read(r)?);
        }
        let count = usize::from(r.u8()?);
        if count > MAX_CATCH_UP_SCOPES {
            return Err(r.err("too many scopes").into());
        }
        let mut scopes = Vec::with_capacity(count);
        for _ in 0..count {
            scopes.push((ScopeId(r.array()?), r.u64()?));
        }
        Ok(Vouch { covers, scopes })
    }
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
        self.vouch.put(&mut out);
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
        let vouch = match r.remaining() {
            0 => Vouch::default(),
            _ => Vouch::read(&mut r)?,
        };
        r.finish()?;
        Ok(CaughtUp {
            complete_since_ms,
            invalidations,
            vouch,
        })
    }
}

framed_codec!(
    /// Request-response codec of `/ghcache/catch-up/2`: one length-prefixed, capped frame each
    /// way.
    CatchUpCodec,
    CatchUp,
    MAX_CATCH_UP_REQUEST,
    CaughtUp,
    MAX_CAUGHT_UP,
    no_early_refusal
);

#[cfg(test)]
mod tests {
    use ghcache_core::heard::{Cover, SourceKind};
    use ghcache_core::policy::{Resource, Resources};

    use super::super::tag::TAG_CAUGHT_UP;
    use super::*;
    /// A vouch of `covers` covers of the longest repository name, for `scopes` scopes.
    fn largest_vouch(covers: usize, scopes: usize) -> Vouch {
        Vouch {
            covers: (0..covers)
                .map(|n| Cover {
                    kind: SourceKind::Follow,
                    repo: Some(format!("{n:0>width$}", width = ghcache_core::MAX_REPO)),
                    resources: Resources::of(&[Resource::Issues, Resource::PullRequests]),
                    since_ms: n as u64,
                })
                .collect(),
            scopes: (0..scopes)
                .map(|n| (ScopeId([n as u8; 32]), 100 + n as u64))
                .collect(),
        }
    }

    #[test]
    fn a_vouch_round_trips_within_its_caps_and_one_over_them_is_refused() {
        let reply = CaughtUp {
            complete_since_ms: 1,
            invalidations: Vec::new(),
            vouch: Vouch {
                covers: vec![Cover::everything(SourceKind::Webhook, 77)],
                scopes: vec![(ScopeId([1; 32]), 70)],
            },
        };
        assert_eq!(CaughtUp::decode(&reply.encode()), Ok(reply.clone()));
        let largest = largest_vouch(MAX_VOUCH_COVERS, MAX_CATCH_UP_SCOPES);
        let mut bytes = Vec::new();
        largest.put(&mut bytes);
        assert!(bytes.len() <= MAX_VOUCH, "{} > {MAX_VOUCH}", bytes.len());

        // The largest reply, its vouch over its caps: it fits, decodes, and says less.
        let invalidation = |at_ms: u64| Invalidation {
            scope_id: ScopeId([3; 32]),
            repo: "o".repeat(ghcache_core::MAX_REPO),
            resources: None,
            at_ms,
        };
        let many = CaughtUp {
            complete_since_ms: 5,
            invalidations: (0..MAX_CATCH_UP_ITEMS as u64 + 10)
                .map(invalidation)
                .collect(),
            vouch: largest_vouch(MAX_VOUCH_COVERS + 3, MAX_CATCH_UP_SCOPES + 3),
        };
        let bytes = many.encode();
        assert!(bytes.len() <= MAX_CAUGHT_UP);
        assert_eq!(CaughtUp::decode(&bytes).map(|r| r.vouch), Ok(largest));

        // Counts past the caps, and an unknown source kind, are refused before anything is read.
        let head = |covers: u8| {
            let mut out = vec![TAG_CAUGHT_UP];
            out.extend_from_slice(&1u64.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.push(covers);
            out
        };
        assert!(CaughtUp::decode(&head(MAX_VOUCH_COVERS as u8 + 1)).is_err());
        let mut scopes_over = head(0);
        scopes_over.push(MAX_CATCH_UP_SCOPES as u8 + 1);
        assert!(CaughtUp::decode(&scopes_over).is_err());
        let mut unknown_kind = reply.encode();
        let at = 1 + 8 + 4 + 1;
        unknown_kind[at] = 0xff;
        assert!(CaughtUp::decode(&unknown_kind).is_err());
        let mut trailing = reply.encode();
        trailing.push(0);
        assert!(CaughtUp::decode(&trailing).is_err());
    }
}
