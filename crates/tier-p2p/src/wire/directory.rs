//! `/ghcache/directory/1`: a peer asks another which answers of a scope it holds or knows.

use ghcache_core::wire::{put_bytes, Reader};
use ghcache_core::{ScopeId, MAX_MANIFEST};
use libp2p::{PeerId, StreamProtocol};

use super::error::WireError;
use super::frame::{framed_codec, no_early_refusal};
use super::tag::{TAG_DIRECTORY, TAG_DIRECTORY_ASK};

/// Protocol name of the directory exchange: "which answers of this scope do you hold or know?"
pub const DIRECTORY_PROTOCOL: StreamProtocol = StreamProtocol::new("/ghcache/directory/1");
/// Most manifests in one directory reply: the newest are sent first, so a joining runner learns
/// where the answers of the last minutes are, not the whole history.
pub const MAX_DIRECTORY_ITEMS: usize = 256;
/// Most holders named per manifest in a directory reply: a lookup asks two at once, and a few
/// more cover departures (as the directory itself remembers).
pub const MAX_DIRECTORY_PROVIDERS: usize = 4;
/// Largest encoded peer id (an ed25519 one is 38 bytes; other key types are never used).
const MAX_PEER_ID: usize = 64;
/// Largest directory request: a tag, a scope id and a count.
pub const MAX_DIRECTORY_REQUEST: usize = 1 + 32 + 2;
/// Largest directory reply: [`MAX_DIRECTORY_ITEMS`] manifests of the largest size, each with
/// [`MAX_DIRECTORY_PROVIDERS`] peer ids of the largest size (about 1.1 MiB; real replies are a
/// few hundred bytes per manifest).
pub const MAX_DIRECTORY_RESPONSE: usize = 1
    + 4
    + MAX_DIRECTORY_ITEMS * (4 + MAX_MANIFEST + 1 + MAX_DIRECTORY_PROVIDERS * (4 + MAX_PEER_ID));

/// Asks a peer for the manifests it holds or knows in one scope, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryRequest {
    /// The scope asked about: the answer holds only manifests of this scope.
    pub scope_id: ScopeId,
    /// At most this many manifests (and never more than [`MAX_DIRECTORY_ITEMS`]).
    pub limit: u16,
}

/// A peer's answer to a [`DirectoryRequest`]: signed manifests (no bodies) and who holds them.
/// Everything in it is to be checked by the receiver before any use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectoryResponse {
    /// Newest first.
    pub items: Vec<DirectoryItem>,
}

/// One manifest of a [`DirectoryResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryItem {
    /// `Manifest::encode` bytes.
    pub manifest: Vec<u8>,
    /// Peers said to hold the entry, the answering peer first when it holds it.
    pub providers: Vec<PeerId>,
}

impl DirectoryRequest {
    /// Wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_DIRECTORY_REQUEST);
        out.push(TAG_DIRECTORY_ASK);
        out.extend_from_slice(self.scope_id.as_bytes());
        out.extend_from_slice(&self.limit.to_le_bytes());
        out
    }

    /// Inverse of [`DirectoryRequest::encode`].
    ///
    /// # Errors
    /// Anything malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes, "directory request");
        if r.u8()? != TAG_DIRECTORY_ASK {
            return Err(r.err("unknown tag").into());
        }
        let scope_id = ScopeId(r.array()?);
        let limit = u16::from_le_bytes(r.array()?);
        r.finish()?;
        Ok(DirectoryRequest { scope_id, limit })
    }
}

impl DirectoryResponse {
    /// Wire encoding. Items past [`MAX_DIRECTORY_ITEMS`] and providers past
    /// [`MAX_DIRECTORY_PROVIDERS`] are left out, so what is sent always decodes.
    pub fn encode(&self) -> Vec<u8> {
        let items = &self.items[..self.items.len().min(MAX_DIRECTORY_ITEMS)];
        let mut out = vec![TAG_DIRECTORY];
        out.extend_from_slice(&(items.len() as u32).to_le_bytes());
        for item in items {
            put_bytes(&mut out, &item.manifest);
            let providers = &item.providers[..item.providers.len().min(MAX_DIRECTORY_PROVIDERS)];
            out.push(providers.len() as u8);
            for peer in providers {
                put_bytes(&mut out, &peer.to_bytes());
            }
        }
        out
    }

    /// Inverse of [`DirectoryResponse::encode`]. Counts are checked against their caps before
    /// anything is allocated for them.
    ///
    /// # Errors
    /// Anything malformed or over its cap, and peer ids that do not parse.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes, "directory response");
        if bytes.len() > MAX_DIRECTORY_RESPONSE {
            return Err(r.err("too large").into());
        }
        if r.u8()? != TAG_DIRECTORY {
            return Err(r.err("unknown tag").into());
        }
        let count = u32::from_le_bytes(r.array()?) as usize;
        if count > MAX_DIRECTORY_ITEMS {
            return Err(r.err("too many manifests").into());
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            let manifest = r.bytes(MAX_MANIFEST)?.to_vec();
            let n = usize::from(r.u8()?);
            if n > MAX_DIRECTORY_PROVIDERS {
                return Err(r.err("too many providers").into());
            }
            let mut providers = Vec::with_capacity(n);
            for _ in 0..n {
                let peer =
                    PeerId::from_bytes(r.bytes(MAX_PEER_ID)?).map_err(|_| r.err("bad peer id"))?;
                providers.push(peer);
            }
            items.push(DirectoryItem {
                manifest,
                providers,
            });
        }
        r.finish()?;
        Ok(DirectoryResponse { items })
    }
}

framed_codec!(
    /// Request-response codec of `/ghcache/directory/1`: one length-prefixed, capped frame each
    /// way.
    DirectoryCodec,
    DirectoryRequest,
    MAX_DIRECTORY_REQUEST,
    DirectoryResponse,
    MAX_DIRECTORY_RESPONSE,
    no_early_refusal
);
