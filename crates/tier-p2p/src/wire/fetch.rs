//! `/ghcache/fetch/1`: a peer asks another for one entry.

use ghcache_core::wire::Reader;
use ghcache_core::{CacheKey, DecodeError, ScopeId, MAX_MANIFEST};
use libp2p::StreamProtocol;

use super::entry::{pair, read_pair, MAX_BODY};
use super::error::WireError;
use super::frame::framed_codec;
use super::tag::{TAG_FETCH, TAG_FOUND, TAG_NOT_FOUND};

/// Protocol name of the peer-to-peer fetch.
pub const FETCH_PROTOCOL: StreamProtocol = StreamProtocol::new("/ghcache/fetch/1");
/// Largest fetch request: a tag, a key and a scope id.
pub const MAX_FETCH_REQUEST: usize = 128;
/// Largest fetch response: a manifest and a body.
pub const MAX_FETCH_RESPONSE: usize = MAX_BODY + MAX_MANIFEST + 16;

/// Asks a peer for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// Which entry.
    pub key: CacheKey,
    /// Scope the asker is in: the server answers only with entries of this scope.
    pub scope_id: ScopeId,
}

/// A peer's answer to a [`FetchRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchResponse {
    /// The entry: to be checked by the receiver before any use.
    Found {
        /// `Manifest::encode` bytes.
        manifest: Vec<u8>,
        /// `Body::encode` bytes.
        body: Vec<u8>,
    },
    /// The peer has no fresh entry of that key and scope.
    NotFound,
}

impl FetchRequest {
    /// Wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(65);
        out.push(TAG_FETCH);
        out.extend_from_slice(&self.key.0);
        out.extend_from_slice(self.scope_id.as_bytes());
        out
    }

    /// Inverse of [`FetchRequest::encode`].
    ///
    /// # Errors
    /// Anything malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes, "fetch request");
        if r.u8()? != TAG_FETCH {
            return Err(r.err("unknown tag").into());
        }
        let key = CacheKey(r.array()?);
        let scope_id = ScopeId(r.array()?);
        r.finish()?;
        Ok(FetchRequest { key, scope_id })
    }
}

impl FetchResponse {
    /// Wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            FetchResponse::Found { manifest, body } => pair(TAG_FOUND, manifest, body),
            FetchResponse::NotFound => vec![TAG_NOT_FOUND],
        }
    }

    /// Inverse of [`FetchResponse::encode`].
    ///
    /// # Errors
    /// Anything malformed or over its cap.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes, "fetch response");
        let msg = match r.u8()? {
            TAG_FOUND => {
                let (manifest, body) = read_pair(&mut r)?;
                FetchResponse::Found { manifest, body }
            }
            TAG_NOT_FOUND => FetchResponse::NotFound,
            _ => return Err(r.err("unknown tag").into()),
        };
        r.finish()?;
        Ok(msg)
    }

    /// Whether the first bytes of a response frame already show it cannot decode: a field
    /// whose length prefix is over its cap. A peer that declares a body over the cap is refused
    /// when its prefix arrives, not after the megabytes that follow it.
    fn refuse_early(head: &[u8]) -> Result<(), DecodeError> {
        let mut r = Reader::new(head, "fetch response");
        if head.is_empty() || r.u8()? != TAG_FOUND {
            return Ok(());
        }
        let Ok(manifest_len) = r.u32() else {
            return Ok(());
        };
        if manifest_len as usize > MAX_MANIFEST {
            return Err(r.err("field too large"));
        }
        if r.take(manifest_len as usize).is_err() {
            return Ok(());
        }
        match r.u32() {
            Ok(body_len) if body_len as usize > MAX_BODY => Err(r.err("field too large")),
            _ => Ok(()),
        }
    }
}

framed_codec!(
    /// Request-response codec of `/ghcache/fetch/1`: one length-prefixed, capped frame each way.
    FetchCodec,
    FetchRequest,
    MAX_FETCH_REQUEST,
    FetchResponse,
    MAX_FETCH_RESPONSE,
    FetchResponse::refuse_early
);
