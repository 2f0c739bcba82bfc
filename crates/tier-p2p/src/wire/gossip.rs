//! What peers publish on a scope's gossip topic: announcements and invalidations.

use ghcache_core::wire::{put_bytes, Reader};
use ghcache_core::MAX_MANIFEST;

use super::error::WireError;
use super::invalidation::Invalidation;
use super::tag::{TAG_ANNOUNCE, TAG_INVALIDATE};

/// Largest gossip message payload.
pub const MAX_GOSSIP: usize = 8 << 10;

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
            _ => return Err(r.err("unknown tag").into()),
        };
        r.finish()?;
        Ok(msg)
    }
}
