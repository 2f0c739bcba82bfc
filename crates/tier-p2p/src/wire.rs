//! Every message this crate sends or receives, and their bounded encodings.
//!
//! Five channels carry them: gossipsub ([`Gossip`]), three request-response protocols between
//! peers, `/ghcache/fetch/1` ([`FetchRequest`], [`FetchResponse`]), `/ghcache/directory/1`
//! ([`DirectoryRequest`], [`DirectoryResponse`]) and `/ghcache/oidc/1` ([`Presentation`],
//! [`Presented`]), and the daemon's Unix control socket
//! ([`Control`], [`Reply`]). Anything read from a peer or a socket is decoded here, with the
//! core's bounded [`Reader`] (the one that reads manifests and bodies too): size caps are checked
//! before any allocation, and nothing received makes it panic.

use std::io;
use std::ops::Deref;
use std::sync::Arc;

use ghcache_core::policy::Resources;
use ghcache_core::wire::{put_bytes, Reader};
use ghcache_core::{CacheKey, DecodeError, Manifest, ScopeId, Selector};

use crate::oidc::{MAX_PRESENTED_SCOPES, MAX_SCOPE_NAME, MAX_TOKEN};
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;
use libp2p::{PeerId, StreamProtocol};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Largest encoded body that travels between peers. Bigger entries stay on the machine that made
/// them (and in IPFS).
pub const MAX_BODY: usize = 8 << 20;
/// Largest encoded manifest: the core's one cap, which the IPFS tier uses too.
pub use ghcache_core::MAX_MANIFEST;
/// Largest repository name in an invalidation.
pub const MAX_REPO: usize = 512;
/// Largest fetch request: a tag, a key and a scope id.
pub const MAX_FETCH_REQUEST: usize = 128;
/// Largest fetch response: a manifest and a body.
pub const MAX_FETCH_RESPONSE: usize = MAX_BODY + MAX_MANIFEST + 16;
/// Largest gossip message payload.
pub const MAX_GOSSIP: usize = 8 << 10;
/// Largest control-socket frame: a reply carrying a whole entry. Requests have their own,
/// smaller caps per kind (see [`control_request_cap`]).
pub const MAX_CONTROL_FRAME: usize = MAX_FETCH_RESPONSE + 64;
/// Largest control request of any kind: a `Store` (a `Publish` and a fence mark) of the biggest
/// entry peers exchange.
pub const MAX_CONTROL_REQUEST: usize = MAX_PUBLISH + STORE_MARK;
/// Largest `Publish`: a tag and the biggest entry peers exchange.
const MAX_PUBLISH: usize = 1 + 4 + MAX_MANIFEST + 4 + MAX_BODY;
/// A `Store`'s fence mark: whether there is one, and its value.
const STORE_MARK: usize = 1 + 8;
/// Largest JSON status text.
const MAX_STATUS: usize = 1 << 20;
/// Largest error text in a reply.
const MAX_ERROR_TEXT: usize = 4 << 10;

/// Protocol name of the peer-to-peer fetch.
pub const FETCH_PROTOCOL: StreamProtocol = StreamProtocol::new("/ghcache/fetch/1");
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

/// Protocol name of a runner's presentation of its job's OIDC token (see the oidc module).
pub const OIDC_PROTOCOL: StreamProtocol = StreamProtocol::new("/ghcache/oidc/1");
/// Largest presentation: a tag, the token, a count, and the scope names.
pub const MAX_PRESENTATION: usize =
    1 + 4 + MAX_TOKEN + 1 + MAX_PRESENTED_SCOPES * (4 + MAX_SCOPE_NAME);
/// Longest reason given for a refused token (the verifier's one line, cut).
pub const MAX_REFUSAL: usize = 256;
/// Largest answer to a presentation: a tag and a count, or a tag and a reason.
pub const MAX_PRESENTED: usize = 1 + 4 + MAX_REFUSAL;

/// A message that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad {what}: {reason}")]
pub struct WireError {
    /// Which message.
    pub what: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl From<DecodeError> for WireError {
    fn from(e: DecodeError) -> Self {
        WireError {
            what: e.what,
            reason: e.reason,
        }
    }
}

impl From<WireError> for io::Error {
    fn from(e: WireError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

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

/// A request to drop the entries a write changed: some resources of a repository, all of it,
/// or (a write whose repository could not be told) everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidation {
    /// Scope whose topic carried it.
    pub scope_id: ScopeId,
    /// Repository (`owner/name`, lowercase); empty with `resources: None` for everything.
    pub repo: String,
    /// The resources the write changed; `None` for all of the repository.
    pub resources: Option<Resources>,
    /// When it was issued (sender's clock, ms since the epoch): old ones are ignored.
    pub at_ms: u64,
}

/// The resources field's value for "the whole repository".
const WHOLE_REPOSITORY: u16 = u16::MAX;

impl Invalidation {
    /// The invalidation that makes peers drop what `selector` drops here; `None` for one key,
    /// which is not a write's to announce.
    pub fn of(scope_id: ScopeId, selector: &Selector, at_ms: u64) -> Option<Invalidation> {
        let (repo, resources) = match selector {
            Selector::All => (String::new(), None),
            Selector::Repo(repo) => (repo.clone(), None),
            Selector::Resources { repo, resources } => (repo.clone(), Some(*resources)),
            Selector::Key(_) => return None,
        };
        Some(Invalidation {
            scope_id,
            repo,
            resources,
            at_ms,
        })
    }

    /// Whether the entry `manifest` describes is out of date after this invalidation. A write
    /// changes the repository for every scope, so entries of all scopes are covered.
    pub fn covers(&self, manifest: &Manifest) -> bool {
        self.selector().covers(manifest)
    }

    /// What the local store drops for this invalidation.
    pub fn selector(&self) -> Selector {
        match (&self.resources, self.repo.is_empty()) {
            (None, true) => Selector::All,
            (None, false) => Selector::Repo(self.repo.clone()),
            (Some(resources), _) => Selector::Resources {
                repo: self.repo.clone(),
                resources: *resources,
            },
        }
    }

    fn resources_bits(&self) -> u16 {
        self.resources.map_or(WHOLE_REPOSITORY, Resources::bits)
    }
}

/// Reads the resources field of an invalidation.
fn resources_of(bits: u16) -> Option<Option<Resources>> {
    match bits {
        WHOLE_REPOSITORY => Some(None),
        bits => Resources::from_bits(bits).map(Some),
    }
}

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

/// A runner's job token, shown to a peer it connected to, with the scopes it produces for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presentation {
    /// The GitHub Actions OIDC token (a JWT) whose audience is `ghcache:<the runner's peer id>`.
    pub token: String,
    /// Scope names (`actions:o/r`, ...) the runner asks to produce for.
    pub scopes: Vec<String>,
}

/// What a peer made of a [`Presentation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// The token holds: the runner may produce for this many of the scopes it named.
    Granted(u32),
    /// The token was refused, and why (at most [`MAX_REFUSAL`] bytes); the runner produces
    /// for nothing on that peer.
    Refused(String),
}

/// A request from a CLI process to its daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Find `key` in the swarm within `deadline_ms`.
    Get {
        /// Which entry.
        key: CacheKey,
        /// The CLI's scope.
        scope_id: ScopeId,
        /// How long the daemon may look.
        deadline_ms: u32,
    },
    /// An entry this machine fetched from GitHub: sign, announce and provide it.
    Publish {
        /// `Manifest::encode` bytes.
        manifest: Vec<u8>,
        /// `Body::encode` bytes.
        body: Vec<u8>,
    },
    /// Tell the scope's peers that a write changed what a selector names.
    Invalidate {
        /// The CLI's scope.
        scope_id: ScopeId,
        /// Repository (`owner/name`, lowercase); empty with `resources: None` for everything.
        repo: String,
        /// The resources the write changed; `None` for all of the repository.
        resources: Option<Resources>,
    },
    /// Report the daemon's state as JSON.
    Status,
    /// The manifest the swarm announced for `key`, if any: it names an IPFS CID the CLI may
    /// fetch when no peer that holds the body is reachable.
    Manifest {
        /// Which entry.
        key: CacheKey,
        /// The CLI's scope.
        scope_id: ScopeId,
    },
    /// An entry the CLI found or fetched: store it in this machine's cache, as the CLI's own
    /// store would (the daemon's index is open already, the CLI's is not), before replying.
    Store {
        /// `Manifest::encode` bytes.
        manifest: Vec<u8>,
        /// `Body::encode` bytes.
        body: Vec<u8>,
        /// The fence mark the CLI's request began under (`CacheTier::put_fenced`); `None` to
        /// store by the fence's time rule alone (`CacheTier::put`).
        mark: Option<u64>,
    },
}

/// The daemon's answer to a [`Control`] request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A verified entry, now also in the local store.
    Hit {
        /// `Manifest::encode` bytes.
        manifest: Vec<u8>,
        /// `Body::encode` bytes.
        body: Vec<u8>,
    },
    /// Nothing valid found in time.
    Miss,
    /// Done.
    Ok,
    /// JSON status text.
    Status(String),
    /// An announced manifest (`Manifest::encode` bytes), checked when it was received.
    Manifest(Vec<u8>),
    /// The request failed; the text says why.
    Error(String),
}

// Tags are distinct across message kinds so that a message sent on the wrong channel is
// rejected, not misread.
const TAG_ANNOUNCE: u8 = 0x11;
const TAG_INVALIDATE: u8 = 0x12;
const TAG_FETCH: u8 = 0x21;
const TAG_FOUND: u8 = 0x22;
const TAG_NOT_FOUND: u8 = 0x23;
const TAG_DIRECTORY_ASK: u8 = 0x24;
const TAG_DIRECTORY: u8 = 0x25;
const TAG_PRESENT: u8 = 0x26;
const TAG_GRANTED: u8 = 0x27;
const TAG_REFUSED: u8 = 0x28;
const TAG_GET: u8 = 0x31;
const TAG_PUBLISH: u8 = 0x32;
const TAG_CTL_INVALIDATE: u8 = 0x33;
const TAG_STATUS: u8 = 0x34;
const TAG_MANIFEST: u8 = 0x35;
const TAG_STORE: u8 = 0x36;
const TAG_HIT: u8 = 0x41;
const TAG_MISS: u8 = 0x42;
const TAG_OK: u8 = 0x43;
const TAG_STATUS_TEXT: u8 = 0x44;
const TAG_ERROR: u8 = 0x45;
const TAG_MANIFEST_BYTES: u8 = 0x46;

/// Largest control request of the kind that `tag` (a request's first byte) names, or `None` when
/// no request has that tag. Only a `Publish` and a `Store` carry an entry; every other request is a few
/// fixed fields, so a frame that declares more than its kind can hold is refused before any of
/// it is read.
pub fn control_request_cap(tag: u8) -> Option<usize> {
    match tag {
        TAG_GET => Some(1 + 32 + 32 + 4),
        TAG_PUBLISH => Some(MAX_PUBLISH),
        TAG_CTL_INVALIDATE => Some(1 + 32 + 4 + MAX_REPO + 2),
        TAG_STATUS => Some(1),
        TAG_MANIFEST => Some(1 + 32 + 32),
        TAG_STORE => Some(MAX_CONTROL_REQUEST),
        _ => None,
    }
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
                out.extend_from_slice(inv.scope_id.as_bytes());
                out.extend_from_slice(&inv.at_ms.to_le_bytes());
                put_bytes(&mut out, inv.repo.as_bytes());
                out.extend_from_slice(&inv.resources_bits().to_le_bytes());
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
            TAG_INVALIDATE => {
                let scope_id = ScopeId(r.array()?);
                let at_ms = r.u64()?;
                let repo = r.string(MAX_REPO)?;
                let resources = resources_of(u16::from_le_bytes(r.array()?))
                    .ok_or_else(|| r.err("unknown resources"))?;
                Gossip::Invalidation(Invalidation {
                    scope_id,
                    repo,
                    resources,
                    at_ms,
                })
            }
            _ => return Err(r.err("unknown tag").into()),
        };
        r.finish()?;
        Ok(msg)
    }
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

impl Presentation {
    /// Wire encoding. Scope names past [`MAX_PRESENTED_SCOPES`] are left out, so what is sent
    /// always decodes.
    pub fn encode(&self) -> Vec<u8> {
        let scopes = &self.scopes[..self.scopes.len().min(MAX_PRESENTED_SCOPES)];
        let mut out = vec![TAG_PRESENT];
        put_bytes(&mut out, self.token.as_bytes());
        out.push(scopes.len() as u8);
        for scope in scopes {
            put_bytes(&mut out, scope.as_bytes());
        }
        out
    }

    /// Inverse of [`Presentation::encode`].
    ///
    /// # Errors
    /// Anything malformed or over its cap.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes, "oidc presentation");
        if r.u8()? != TAG_PRESENT {
            return Err(r.err("unknown tag").into());
        }
        let token = r.string(MAX_TOKEN)?;
        let count = usize::from(r.u8()?);
        if count > MAX_PRESENTED_SCOPES {
            return Err(r.err("too many scopes").into());
        }
        let mut scopes = Vec::with_capacity(count);
        for _ in 0..count {
            scopes.push(r.string(MAX_SCOPE_NAME)?);
        }
        r.finish()?;
        Ok(Presentation { token, scopes })
    }
}

impl Presented {
    /// Wire encoding; a reason past [`MAX_REFUSAL`] bytes is cut (at a character boundary).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Presented::Granted(n) => {
                let mut out = vec![TAG_GRANTED];
                out.extend_from_slice(&n.to_le_bytes());
                out
            }
            Presented::Refused(reason) => {
                let mut end = reason.len().min(MAX_REFUSAL);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                let mut out = vec![TAG_REFUSED];
                put_bytes(&mut out, &reason.as_bytes()[..end]);
                out
            }
        }
    }

    /// Inverse of [`Presented::encode`].
    ///
    /// # Errors
    /// Anything malformed or over its cap.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes, "oidc answer");
        let presented = match r.u8()? {
            TAG_GRANTED => Presented::Granted(u32::from_le_bytes(r.array()?)),
            TAG_REFUSED => Presented::Refused(r.string(MAX_REFUSAL)?),
            _ => return Err(r.err("unknown tag").into()),
        };
        r.finish()?;
        Ok(presented)
    }
}

impl Control {
    /// Wire encoding (one frame's payload).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Control::Get {
                key,
                scope_id,
                deadline_ms,
            } => {
                out.push(TAG_GET);
                out.extend_from_slice(&key.0);
                out.extend_from_slice(scope_id.as_bytes());
                out.extend_from_slice(&deadline_ms.to_le_bytes());
            }
            Control::Publish { manifest, body } => return pair(TAG_PUBLISH, manifest, body),
            Control::Invalidate {
                scope_id,
                repo,
                resources,
            } => {
                out.push(TAG_CTL_INVALIDATE);
                out.extend_from_slice(scope_id.as_bytes());
                put_bytes(&mut out, repo.as_bytes());
                let bits = resources.map_or(WHOLE_REPOSITORY, Resources::bits);
                out.extend_from_slice(&bits.to_le_bytes());
            }
            Control::Status => out.push(TAG_STATUS),
            Control::Manifest { key, scope_id } => {
                out.push(TAG_MANIFEST);
                out.extend_from_slice(&key.0);
                out.extend_from_slice(scope_id.as_bytes());
            }
            Control::Store {
                manifest,
                body,
                mark,
            } => {
                out.reserve(STORE_MARK + 9 + manifest.len() + body.len());
                out.push(TAG_STORE);
                out.push(u8::from(mark.is_some()));
                out.extend_from_slice(&mark.unwrap_or(0).to_le_bytes());
                put_bytes(&mut out, manifest);
                put_bytes(&mut out, body);
            }
        }
        out
    }

    /// Inverse of [`Control::encode`].
    ///
    /// # Errors
    /// Anything malformed or over its cap.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes, "control request");
        let msg = match r.u8()? {
            TAG_GET => Control::Get {
                key: CacheKey(r.array()?),
                scope_id: ScopeId(r.array()?),
                deadline_ms: u32::from_le_bytes(r.array()?),
            },
            TAG_PUBLISH => {
                let (manifest, body) = read_pair(&mut r)?;
                Control::Publish { manifest, body }
            }
            TAG_CTL_INVALIDATE => Control::Invalidate {
                scope_id: ScopeId(r.array()?),
                repo: r.string(MAX_REPO)?,
                resources: resources_of(u16::from_le_bytes(r.array()?))
                    .ok_or_else(|| r.err("unknown resources"))?,
            },
            TAG_STATUS => Control::Status,
            TAG_MANIFEST => Control::Manifest {
                key: CacheKey(r.array()?),
                scope_id: ScopeId(r.array()?),
            },
            TAG_STORE => {
                let has_mark = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(r.err("bad fence mark flag").into()),
                };
                let mark = r.u64()?;
                let (manifest, body) = read_pair(&mut r)?;
                Control::Store {
                    manifest,
                    body,
                    mark: has_mark.then_some(mark),
                }
            }
            _ => return Err(r.err("unknown tag").into()),
        };
        r.finish()?;
        Ok(msg)
    }
}

impl Reply {
    /// Wire encoding (one frame's payload).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Reply::Hit { manifest, body } => return pair(TAG_HIT, manifest, body),
            Reply::Miss => out.push(TAG_MISS),
            Reply::Ok => out.push(TAG_OK),
            Reply::Status(text) => {
                out.push(TAG_STATUS_TEXT);
                put_bytes(&mut out, text.as_bytes());
            }
            Reply::Error(text) => {
                out.push(TAG_ERROR);
                put_bytes(&mut out, text.as_bytes());
            }
            Reply::Manifest(manifest) => {
                out.push(TAG_MANIFEST_BYTES);
                put_bytes(&mut out, manifest);
            }
        }
        out
    }

    /// Inverse of [`Reply::encode`].
    ///
    /// # Errors
    /// Anything malformed or over its cap.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes, "control reply");
        let msg = match r.u8()? {
            TAG_HIT => {
                let (manifest, body) = read_pair(&mut r)?;
                Reply::Hit { manifest, body }
            }
            TAG_MISS => Reply::Miss,
            TAG_OK => Reply::Ok,
            TAG_STATUS_TEXT => Reply::Status(r.string(MAX_STATUS)?),
            TAG_ERROR => Reply::Error(r.string(MAX_ERROR_TEXT)?),
            TAG_MANIFEST_BYTES => Reply::Manifest(r.bytes(MAX_MANIFEST)?.to_vec()),
            _ => return Err(r.err("unknown tag").into()),
        };
        r.finish()?;
        Ok(msg)
    }
}

fn pair(tag: u8, manifest: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + manifest.len() + body.len());
    out.push(tag);
    put_bytes(&mut out, manifest);
    put_bytes(&mut out, body);
    out
}

/// The two `u32`-prefixed halves of an entry: a manifest and a body, each under its cap.
fn read_pair(r: &mut Reader<'_>) -> Result<(Vec<u8>, Vec<u8>), DecodeError> {
    let manifest = r.bytes(MAX_MANIFEST)?.to_vec();
    let body = r.bytes(MAX_BODY)?.to_vec();
    Ok((manifest, body))
}

/// First allocation for a frame; it then doubles up to the announced length, never past it, so
/// a peer that announces a big frame and sends little costs little memory.
const FIRST_CHUNK: usize = 16 << 10;

fn frame_len(prefix: [u8; 4], cap: usize) -> io::Result<usize> {
    let len = u32::from_le_bytes(prefix) as usize;
    if len > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the cap of {cap}"),
        ));
    }
    Ok(len)
}

/// Grows `buf` toward `len` without exceeding it; returns the new free space to fill.
fn grow(buf: &mut Vec<u8>, len: usize) -> usize {
    let target = (buf.len() * 2).max(FIRST_CHUNK).min(len);
    buf.reserve_exact(target.saturating_sub(buf.len()));
    target - buf.len()
}

/// Reads one `u32`-length-prefixed frame from a Unix socket. `Ok(None)` on a clean end of stream.
///
/// # Errors
/// I/O errors, a frame over `cap`, or a stream that ends inside a frame.
pub async fn read_frame<R>(r: &mut R, cap: usize) -> io::Result<Option<Vec<u8>>>
where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut prefix = [0u8; 4];
    match r.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = frame_len(prefix, cap)?;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; FIRST_CHUNK.min(len)];
    while buf.len() < len {
        let room = grow(&mut buf, len).min(chunk.len());
        let n = r.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(buf))
}

/// Memory that control requests being read may hold at once, across all connections.
///
/// A request's first 16 KiB are free (a connection reads one request at a time, and the server
/// caps connections); every byte its buffer grows past that is taken from the budget
/// before it is allocated, and given back when the [`Frame`] is dropped. So clients that send
/// part of a large frame and stall hold at most the budget between them, and small requests
/// (everything but `Publish`) never wait for it.
#[derive(Debug, Clone)]
pub struct FrameBudget(Arc<Semaphore>);

impl FrameBudget {
    /// A budget of `bytes`; it must be at least [`MAX_CONTROL_REQUEST`], or the largest request
    /// could never be read.
    pub fn new(bytes: usize) -> FrameBudget {
        FrameBudget(Arc::new(Semaphore::new(
            bytes.clamp(MAX_CONTROL_REQUEST, Semaphore::MAX_PERMITS),
        )))
    }

    /// Bytes not held by any frame now.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }

    /// Waits until `bytes` more are free and adds them to `held`.
    async fn reserve(
        &self,
        held: &mut Option<OwnedSemaphorePermit>,
        bytes: usize,
    ) -> io::Result<()> {
        let n = u32::try_from(bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
        let permit = self
            .0
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| io::Error::other("frame budget closed"))?;
        match held {
            Some(held) => held.merge(permit),
            None => *held = Some(permit),
        }
        Ok(())
    }
}

/// One control request as read by [`read_request`]: its payload, and the share of the
/// [`FrameBudget`] it holds until it is dropped.
#[derive(Debug)]
pub struct Frame {
    payload: Vec<u8>,
    _held: Option<OwnedSemaphorePermit>,
}

impl Deref for Frame {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.payload
    }
}

/// Reads the payload of one control request whose 4-byte length prefix, `prefix`, was read.
///
/// # Behavior
/// The declared length is checked against the largest request of any kind, then the tag (the
/// payload's first byte) is read and the length checked against the cap of that kind
/// ([`control_request_cap`]); nothing is allocated before both checks pass. The buffer then
/// grows with the bytes that arrive, at most doubling what it holds, never past the declared
/// length; growth past the first 16 KiB is taken from `budget` first, and waits
/// while the budget is spent (the caller's deadline ends the wait). Bytes are read straight into
/// the buffer's spare room: memory that no byte reached is never touched.
///
/// # Errors
/// I/O errors, an empty frame, an unknown tag, a length over its kind's cap, or a stream that
/// ends inside the frame.
pub async fn read_request<R>(r: &mut R, prefix: [u8; 4], budget: &FrameBudget) -> io::Result<Frame>
where
    R: tokio::io::AsyncRead + Unpin,
{
    let len = frame_len(prefix, MAX_CONTROL_REQUEST)?;
    let mut tag = [0u8; 1];
    if len == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "empty frame"));
    }
    r.read_exact(&mut tag).await?;
    let cap = control_request_cap(tag[0]).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown control request tag {:#04x}", tag[0]),
        )
    })?;
    if len > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "control request {:#04x} of {len} bytes exceeds its kind's cap of {cap}",
                tag[0]
            ),
        ));
    }
    let mut held = None;
    let mut payload = Vec::with_capacity(FIRST_CHUNK.min(len));
    payload.push(tag[0]);
    while payload.len() < len {
        if payload.len() == payload.capacity() {
            let target = (payload.capacity() * 2).min(len);
            budget
                .reserve(&mut held, target - payload.capacity())
                .await?;
            payload.reserve_exact(target - payload.len());
        }
        // `take` keeps the read inside this frame; `read_buf` fills only the spare room.
        let rest = (len - payload.len()) as u64;
        let n = (&mut *r).take(rest).read_buf(&mut payload).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(Frame {
        payload,
        _held: held,
    })
}

/// Writes one `u32`-length-prefixed frame to a Unix socket.
///
/// # Errors
/// I/O errors, or a payload over 4 GiB.
pub async fn write_frame<W>(w: &mut W, payload: &[u8]) -> io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    w.write_all(&len.to_le_bytes()).await?;
    w.write_all(payload).await?;
    w.flush().await
}

/// The same framing over a libp2p stream.
/// Reads one frame of at most `cap` bytes; `refuse_early` is asked after each read whether the
/// bytes so far already show the frame cannot decode, so that the rest is not waited for.
async fn read_stream_frame<T>(
    io: &mut T,
    cap: usize,
    refuse_early: fn(&[u8]) -> Result<(), DecodeError>,
) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let len = frame_len(prefix, cap)?;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; FIRST_CHUNK.min(len)];
    while buf.len() < len {
        let room = grow(&mut buf, len).min(chunk.len());
        let n = io.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        refuse_early(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    }
    Ok(buf)
}

/// For frames whose first bytes tell nothing in advance.
fn no_early_refusal(_: &[u8]) -> Result<(), DecodeError> {
    Ok(())
}

async fn write_stream_frame<T>(io: &mut T, payload: &[u8]) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    io.write_all(&len.to_le_bytes()).await?;
    io.write_all(payload).await?;
    io.close().await
}

/// A request-response codec: one length-prefixed frame each way, each read under its cap.
macro_rules! framed_codec {
    ($(#[$doc:meta])* $name:ident, $request:ty, $request_cap:expr, $response:ty, $response_cap:expr, $refuse_early:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl request_response::Codec for $name {
            type Protocol = StreamProtocol;
            type Request = $request;
            type Response = $response;

            async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<$request>
            where
                T: AsyncRead + Unpin + Send,
            {
                let frame = read_stream_frame(io, $request_cap, no_early_refusal).await?;
                Ok(<$request>::decode(&frame)?)
            }

            async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<$response>
            where
                T: AsyncRead + Unpin + Send,
            {
                let frame = read_stream_frame(io, $response_cap, $refuse_early).await?;
                Ok(<$response>::decode(&frame)?)
            }

            async fn write_request<T>(
                &mut self,
                _: &StreamProtocol,
                io: &mut T,
                req: $request,
            ) -> io::Result<()>
            where
                T: AsyncWrite + Unpin + Send,
            {
                write_stream_frame(io, &req.encode()).await
            }

            async fn write_response<T>(
                &mut self,
                _: &StreamProtocol,
                io: &mut T,
                res: $response,
            ) -> io::Result<()>
            where
                T: AsyncWrite + Unpin + Send,
            {
                write_stream_frame(io, &res.encode()).await
            }
        }
    };
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

framed_codec!(
    /// Request-response codec of `/ghcache/oidc/1`: one length-prefixed, capped frame each way.
    OidcCodec,
    Presentation,
    MAX_PRESENTATION,
    Presented,
    MAX_PRESENTED,
    no_early_refusal
);

#[cfg(test)]
mod tests {
    use super::*;
    use ghcache_core::policy::Resource;
    use proptest::prelude::*;
    use std::time::Duration;

    fn samples() -> (Vec<Gossip>, Vec<FetchResponse>, Vec<Control>, Vec<Reply>) {
        let gossip = vec![
            Gossip::Announcement {
                manifest: vec![1, 2, 3],
            },
            Gossip::Invalidation(Invalidation {
                scope_id: ScopeId([3; 32]),
                repo: "o/r".into(),
                resources: Some(Resources::of(&[Resource::Issues, Resource::Search])),
                at_ms: 42,
            }),
            Gossip::Invalidation(Invalidation {
                scope_id: ScopeId([3; 32]),
                repo: String::new(),
                resources: None,
                at_ms: 43,
            }),
        ];
        let fetch = vec![
            FetchResponse::Found {
                manifest: vec![9; 10],
                body: vec![8; 100],
            },
            FetchResponse::NotFound,
        ];
        let control = vec![
            Control::Get {
                key: CacheKey([1; 32]),
                scope_id: ScopeId([2; 32]),
                deadline_ms: 150,
            },
            Control::Publish {
                manifest: vec![1],
                body: vec![2, 3],
            },
            Control::Invalidate {
                scope_id: ScopeId([4; 32]),
                repo: "o/r".into(),
                resources: None,
            },
            Control::Status,
            Control::Manifest {
                key: CacheKey([7; 32]),
                scope_id: ScopeId([8; 32]),
            },
            Control::Store {
                manifest: vec![5],
                body: vec![6, 7],
                mark: Some(u64::MAX),
            },
            Control::Store {
                manifest: vec![],
                body: vec![],
                mark: None,
            },
        ];
        let replies = vec![
            Reply::Hit {
                manifest: vec![1],
                body: vec![],
            },
            Reply::Miss,
            Reply::Ok,
            Reply::Status("{}".into()),
            Reply::Error("nope".into()),
            Reply::Manifest(vec![4, 5]),
        ];
        (gossip, fetch, control, replies)
    }

    fn presentations() -> Vec<Presentation> {
        vec![
            Presentation {
                token: "a.b.c".into(),
                scopes: vec!["actions:o/a".into(), "actions:o/a#x".into()],
            },
            Presentation {
                token: String::new(),
                scopes: Vec::new(),
            },
        ]
    }

    fn answers() -> Vec<Presented> {
        vec![Presented::Granted(2), Presented::Refused("expired".into())]
    }

    #[test]
    fn presentations_round_trip_and_stay_under_their_caps() {
        for m in presentations() {
            assert_eq!(Presentation::decode(&m.encode()), Ok(m));
        }
        for m in answers() {
            assert_eq!(Presented::decode(&m.encode()), Ok(m));
        }
        let largest = Presentation {
            token: "t".repeat(MAX_TOKEN),
            scopes: vec!["s".repeat(MAX_SCOPE_NAME); MAX_PRESENTED_SCOPES + 3],
        };
        let bytes = largest.encode();
        assert!(bytes.len() <= MAX_PRESENTATION);
        assert_eq!(
            Presentation::decode(&bytes).map(|p| p.scopes.len()),
            Ok(MAX_PRESENTED_SCOPES)
        );
        let long = Presented::Refused("é".repeat(MAX_REFUSAL));
        assert!(long.encode().len() <= MAX_PRESENTED);
        assert!(Presented::decode(&long.encode()).is_ok());
        let mut too_many = vec![TAG_PRESENT, 0, 0, 0, 0];
        too_many.push(MAX_PRESENTED_SCOPES as u8 + 1);
        assert!(Presentation::decode(&too_many).is_err());
    }

    /// Every tag of every message kind, for the fuzz test to start messages with.
    const ALL_TAGS: [u8; 22] = [
        TAG_PRESENT,
        TAG_GRANTED,
        TAG_REFUSED,
        TAG_ANNOUNCE,
        TAG_INVALIDATE,
        TAG_FETCH,
        TAG_FOUND,
        TAG_NOT_FOUND,
        TAG_DIRECTORY_ASK,
        TAG_DIRECTORY,
        TAG_GET,
        TAG_PUBLISH,
        TAG_CTL_INVALIDATE,
        TAG_STATUS,
        TAG_MANIFEST,
        TAG_STORE,
        TAG_HIT,
        TAG_MISS,
        TAG_OK,
        TAG_STATUS_TEXT,
        TAG_ERROR,
        TAG_MANIFEST_BYTES,
    ];

    #[test]
    fn the_fuzz_test_covers_every_message_kind_and_tags_are_distinct() {
        let (gossip, fetch, control, replies) = samples();
        let mut encoded: Vec<Vec<u8>> = Vec::new();
        encoded.extend(gossip.iter().map(Gossip::encode));
        encoded.extend(fetch.iter().map(FetchResponse::encode));
        encoded.extend(control.iter().map(Control::encode));
        encoded.extend(replies.iter().map(Reply::encode));
        encoded.push(
            FetchRequest {
                key: CacheKey([5; 32]),
                scope_id: ScopeId([6; 32]),
            }
            .encode(),
        );
        encoded.push(
            DirectoryRequest {
                scope_id: ScopeId([4; 32]),
                limit: 1,
            }
            .encode(),
        );
        encoded.push(DirectoryResponse::default().encode());
        encoded.extend(presentations().iter().map(Presentation::encode));
        encoded.extend(answers().iter().map(Presented::encode));
        let mut used: Vec<u8> = encoded.iter().map(|bytes| bytes[0]).collect();
        used.sort_unstable();
        used.dedup();
        let mut fuzzed = ALL_TAGS.to_vec();
        fuzzed.sort_unstable();
        fuzzed.dedup();
        assert_eq!(fuzzed.len(), ALL_TAGS.len(), "tags are distinct");
        assert_eq!(used, fuzzed, "every kind sent is fuzzed, and only those");
    }

    #[test]
    fn every_message_round_trips() {
        let (gossip, fetch, control, replies) = samples();
        for m in gossip {
            assert_eq!(Gossip::decode(&m.encode()), Ok(m));
        }
        for m in fetch {
            assert_eq!(FetchResponse::decode(&m.encode()), Ok(m));
        }
        for m in control {
            assert_eq!(Control::decode(&m.encode()), Ok(m));
        }
        for m in replies {
            assert_eq!(Reply::decode(&m.encode()), Ok(m));
        }
        let req = FetchRequest {
            key: CacheKey([5; 32]),
            scope_id: ScopeId([6; 32]),
        };
        assert!(req.encode().len() <= MAX_FETCH_REQUEST);
        assert_eq!(FetchRequest::decode(&req.encode()), Ok(req));
    }

    #[test]
    fn directory_messages_round_trip_within_their_caps() {
        let request = DirectoryRequest {
            scope_id: ScopeId([4; 32]),
            limit: u16::MAX,
        };
        assert_eq!(request.encode().len(), MAX_DIRECTORY_REQUEST);
        assert_eq!(DirectoryRequest::decode(&request.encode()), Ok(request));
        let peers: Vec<PeerId> = (0..MAX_DIRECTORY_PROVIDERS + 3)
            .map(|_| PeerId::random())
            .collect();
        let item = DirectoryItem {
            manifest: vec![7; 300],
            providers: peers.clone(),
        };
        let reply = DirectoryResponse {
            items: vec![item; MAX_DIRECTORY_ITEMS + 5],
        };
        // What is sent is cut to the caps, so it always decodes.
        let decoded = DirectoryResponse::decode(&reply.encode());
        let Ok(decoded) = decoded else {
            panic!("{decoded:?}");
        };
        assert_eq!(decoded.items.len(), MAX_DIRECTORY_ITEMS);
        assert_eq!(
            decoded.items[0].providers,
            peers[..MAX_DIRECTORY_PROVIDERS].to_vec()
        );
        // The largest reply fits the frame cap.
        let largest = DirectoryResponse {
            items: vec![
                DirectoryItem {
                    manifest: vec![0; MAX_MANIFEST],
                    providers: peers[..MAX_DIRECTORY_PROVIDERS].to_vec(),
                };
                MAX_DIRECTORY_ITEMS
            ],
        };
        assert!(largest.encode().len() <= MAX_DIRECTORY_RESPONSE);
        assert_eq!(
            DirectoryResponse::decode(&DirectoryResponse::default().encode()),
            Ok(DirectoryResponse::default())
        );
    }

    #[test]
    fn directory_replies_over_their_caps_are_refused_before_allocating() {
        let mut too_many = vec![TAG_DIRECTORY];
        too_many.extend_from_slice(&u32::MAX.to_le_bytes());
        let err = DirectoryResponse::decode(&too_many);
        assert_eq!(err.map_err(|e| e.reason), Err("too many manifests"));

        let mut providers = vec![TAG_DIRECTORY];
        providers.extend_from_slice(&1u32.to_le_bytes());
        put_bytes(&mut providers, b"m");
        providers.push(MAX_DIRECTORY_PROVIDERS as u8 + 1);
        let err = DirectoryResponse::decode(&providers);
        assert_eq!(err.map_err(|e| e.reason), Err("too many providers"));

        let mut bad_peer = vec![TAG_DIRECTORY];
        bad_peer.extend_from_slice(&1u32.to_le_bytes());
        put_bytes(&mut bad_peer, b"m");
        bad_peer.push(1);
        put_bytes(&mut bad_peer, b"not a peer id");
        let err = DirectoryResponse::decode(&bad_peer);
        assert_eq!(err.map_err(|e| e.reason), Err("bad peer id"));

        let mut big_manifest = vec![TAG_DIRECTORY];
        big_manifest.extend_from_slice(&1u32.to_le_bytes());
        big_manifest.extend_from_slice(&((MAX_MANIFEST + 1) as u32).to_le_bytes());
        assert!(DirectoryResponse::decode(&big_manifest).is_err());
        assert!(DirectoryResponse::decode(&vec![0; MAX_DIRECTORY_RESPONSE + 1]).is_err());
        assert!(DirectoryRequest::decode(&[TAG_DIRECTORY_ASK, 1, 2]).is_err());
    }

    #[test]
    fn oversized_fields_are_refused() {
        let big = FetchResponse::Found {
            manifest: vec![0; MAX_MANIFEST + 1],
            body: vec![],
        };
        assert!(FetchResponse::decode(&big.encode()).is_err());
        let big = Gossip::Announcement {
            manifest: vec![0; MAX_GOSSIP],
        };
        assert!(Gossip::decode(&big.encode()).is_err());
    }

    #[tokio::test]
    async fn frames_over_the_cap_are_refused_before_reading() {
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0x7f, 1, 2, 3];
        let result = read_frame(&mut input, 1024).await;
        assert!(result.is_err());
        // Nothing past the prefix was consumed: the body was never read into memory.
        assert_eq!(input, &[1, 2, 3]);
    }

    #[tokio::test]
    async fn frames_round_trip_and_end_cleanly() -> io::Result<()> {
        let mut out = Vec::new();
        write_frame(&mut out, b"hello").await?;
        write_frame(&mut out, &[7; 100_000]).await?;
        let mut input: &[u8] = &out;
        assert_eq!(
            read_frame(&mut input, 1 << 20).await?,
            Some(b"hello".to_vec())
        );
        let big = read_frame(&mut input, 1 << 20).await?.unwrap_or_default();
        assert_eq!(big.len(), 100_000);
        assert!(big.capacity() <= 100_000, "never allocates past the frame");
        assert_eq!(read_frame(&mut input, 1 << 20).await?, None);
        Ok(())
    }

    #[test]
    fn each_request_kind_fits_its_cap_exactly_at_its_largest() {
        let largest = [
            Control::Get {
                key: CacheKey([1; 32]),
                scope_id: ScopeId([2; 32]),
                deadline_ms: u32::MAX,
            },
            Control::Publish {
                manifest: vec![0; MAX_MANIFEST],
                body: vec![0; MAX_BODY],
            },
            Control::Invalidate {
                scope_id: ScopeId([4; 32]),
                repo: "r".repeat(MAX_REPO),
                resources: Some(Resources::of(&Resource::ALL)),
            },
            Control::Status,
            Control::Manifest {
                key: CacheKey([7; 32]),
                scope_id: ScopeId([8; 32]),
            },
            Control::Store {
                manifest: vec![0; MAX_MANIFEST],
                body: vec![0; MAX_BODY],
                mark: Some(1),
            },
        ];
        for request in largest {
            let bytes = request.encode();
            assert_eq!(
                control_request_cap(bytes[0]),
                Some(bytes.len()),
                "{bytes:.8?}"
            );
        }
        assert_eq!(control_request_cap(TAG_HIT), None, "a reply is no request");
    }

    /// A length prefix and the first `sent` bytes of a control request declaring `len` bytes.
    fn partial_request(tag: u8, len: u32, sent: usize) -> Vec<u8> {
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.push(tag);
        bytes.extend(std::iter::repeat_n(0u8, sent.saturating_sub(1)));
        bytes
    }

    #[tokio::test]
    async fn a_request_longer_than_its_kind_allows_is_refused_after_its_tag() {
        let budget = FrameBudget::new(0);
        for (tag, len) in [
            (TAG_GET, 70),
            (TAG_STATUS, 2),
            (TAG_MANIFEST, MAX_CONTROL_REQUEST as u32),
            (TAG_CTL_INVALIDATE, 1 << 20),
        ] {
            let bytes = partial_request(tag, len, 64);
            let mut input: &[u8] = &bytes[4..];
            let result = read_request(&mut input, len.to_le_bytes(), &budget).await;
            let err = result.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("exceeds its kind's cap"), "{tag:#x}: {err}");
            // Only the tag was read: nothing past it was taken into memory.
            assert_eq!(input.len(), 63, "{tag:#x}");
        }
        let bytes = partial_request(0x77, 10, 10);
        let mut input: &[u8] = &bytes[4..];
        let unknown = read_request(&mut input, [10, 0, 0, 0], &budget).await;
        assert!(unknown.is_err());
        assert_eq!(input.len(), 9);
    }

    #[tokio::test]
    async fn a_stalled_large_request_holds_memory_for_what_arrived_not_what_it_declared(
    ) -> io::Result<()> {
        let budget = FrameBudget::new(MAX_CONTROL_REQUEST);
        let full = budget.available();
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        let arrived = 100 << 10;
        let len = MAX_CONTROL_REQUEST as u32;
        let bytes = partial_request(TAG_STORE, len, arrived);
        client.write_all(&bytes[4..]).await?;
        let prefix = len.to_le_bytes();
        let reader = read_request(&mut server, prefix, &budget);
        // The client sends nothing more: the read waits, holding only what the bytes needed.
        let waited = tokio::time::timeout(Duration::from_millis(200), reader).await;
        assert!(waited.is_err(), "the frame is not complete");
        let held = full - budget.available();
        assert!(
            held <= 2 * arrived,
            "{held} bytes held for {arrived} that arrived"
        );
        // Dropping the read (the server's deadline) gives all of it back.
        assert_eq!(budget.available(), full);
        Ok(())
    }

    #[tokio::test]
    async fn large_requests_wait_for_the_budget_small_ones_do_not() -> io::Result<()> {
        let budget = FrameBudget::new(MAX_CONTROL_REQUEST);
        let publish = Control::Publish {
            manifest: vec![1; 100],
            body: vec![2; MAX_BODY],
        }
        .encode();
        let prefix = (publish.len() as u32).to_le_bytes();
        let mut input: &[u8] = &publish;
        let first = read_request(&mut input, prefix, &budget).await?;
        assert_eq!(
            Control::decode(&first).map(|c| matches!(c, Control::Publish { .. })),
            Ok(true)
        );
        // While `first` is held the budget cannot cover a second publish as large...
        let mut again: &[u8] = &publish;
        let second = tokio::time::timeout(
            Duration::from_millis(200),
            read_request(&mut again, prefix, &budget),
        )
        .await;
        assert!(
            second.is_err(),
            "a second large request waits for the budget"
        );
        // ...but a status request is read at once.
        let status = Control::Status.encode();
        let mut input: &[u8] = &status;
        let small = read_request(&mut input, [1, 0, 0, 0], &budget).await?;
        assert_eq!(Control::decode(&small), Ok(Control::Status));
        drop(first);
        let mut again: &[u8] = &publish;
        assert!(read_request(&mut again, prefix, &budget).await.is_ok());
        Ok(())
    }

    /// Gives `head`, then never another byte: a peer that stalls after its first bytes.
    struct Stalls {
        head: Vec<u8>,
    }

    impl AsyncRead for Stalls {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            if self.head.is_empty() {
                return std::task::Poll::Pending;
            }
            let n = buf.len().min(self.head.len());
            buf[..n].copy_from_slice(&self.head[..n]);
            self.head.drain(..n);
            std::task::Poll::Ready(Ok(n))
        }
    }

    /// The first bytes of a fetch response frame: its length prefix, the tag, a small manifest
    /// and the body's length prefix, which declares `body_len`.
    fn response_head(body_len: usize) -> Vec<u8> {
        let manifest = [7u8; 100];
        let len = 1 + 4 + manifest.len() + 4 + body_len;
        let mut head = (len as u32).to_le_bytes().to_vec();
        head.push(TAG_FOUND);
        put_bytes(&mut head, &manifest);
        head.extend_from_slice(&(body_len as u32).to_le_bytes());
        head.extend_from_slice(&[0; 64]);
        head
    }

    #[tokio::test]
    async fn a_body_declared_over_the_cap_is_refused_before_it_arrives() {
        use request_response::Codec as _;
        let protocol = FETCH_PROTOCOL;
        let mut codec = FetchCodec;
        let mut over = Stalls {
            head: response_head(MAX_BODY + 1),
        };
        let read = codec.read_response(&protocol, &mut over);
        match tokio::time::timeout(Duration::from_secs(5), read).await {
            Ok(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}"),
            Ok(Ok(_)) => panic!("an oversized body was accepted"),
            Err(_) => panic!("the read waited for the megabytes behind the prefix"),
        }
        // At the cap, the read waits for the body, as it must.
        let mut at_cap = Stalls {
            head: response_head(MAX_BODY),
        };
        let read = codec.read_response(&protocol, &mut at_cap);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), read)
                .await
                .is_err(),
            "a body at the cap is read to its end"
        );
    }

    #[tokio::test]
    async fn a_whole_response_still_reads_through_the_codec() -> io::Result<()> {
        let found = FetchResponse::Found {
            manifest: vec![1; 300],
            body: vec![2; 70_000],
        };
        let payload = found.encode();
        let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&payload);
        let mut input = Stalls { head: frame };
        let read =
            request_response::Codec::read_response(&mut FetchCodec, &FETCH_PROTOCOL, &mut input)
                .await?;
        assert_eq!(read, found);
        Ok(())
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = Gossip::decode(&bytes);
            let _ = FetchRequest::decode(&bytes);
            let _ = FetchResponse::decode(&bytes);
            let _ = Control::decode(&bytes);
            let _ = Reply::decode(&bytes);
            let _ = DirectoryRequest::decode(&bytes);
            let _ = DirectoryResponse::decode(&bytes);
            let _ = Presentation::decode(&bytes);
            let _ = Presented::decode(&bytes);
        }

        #[test]
        fn tags_with_random_tails_never_panic(
            tag in prop::sample::select(ALL_TAGS.to_vec()),
            tail in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut bytes = vec![tag];
            bytes.extend_from_slice(&tail);
            let _ = Gossip::decode(&bytes);
            let _ = FetchRequest::decode(&bytes);
            let _ = FetchResponse::decode(&bytes);
            let _ = Control::decode(&bytes);
            let _ = Reply::decode(&bytes);
            let _ = DirectoryRequest::decode(&bytes);
            let _ = DirectoryResponse::decode(&bytes);
            let _ = Presentation::decode(&bytes);
            let _ = Presented::decode(&bytes);
        }

        #[test]
        fn huge_length_prefixes_are_errors(len in any::<u32>(), tail in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut bytes = vec![TAG_FOUND];
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(&tail);
            // Either the field fits in what was sent, or decoding fails: never a read past it.
            if let Ok(FetchResponse::Found { manifest, body }) = FetchResponse::decode(&bytes) {
                prop_assert!(manifest.len() + body.len() <= tail.len());
            }
        }

        #[test]
        fn random_frames_never_allocate_past_the_cap(
            bytes in proptest::collection::vec(any::<u8>(), 0..4096),
            cap in 0usize..2048,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build();
            prop_assert!(rt.is_ok());
            if let Ok(rt) = rt {
                rt.block_on(async {
                    let mut input: &[u8] = &bytes;
                    while let Ok(Some(frame)) = read_frame(&mut input, cap).await {
                        assert!(frame.len() <= cap && frame.capacity() <= cap.max(1));
                    }
                });
            }
        }
    }
}
