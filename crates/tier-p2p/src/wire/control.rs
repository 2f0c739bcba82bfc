//! What local commands send: the requests a CLI process makes of its daemon over the Unix
//! control socket, the daemon's replies, and how a request is read under its kind's cap and a
//! memory budget shared by all connections. Nothing here travels between peers.

use std::io;
use std::ops::Deref;
use std::sync::Arc;

use ghcache_core::budget::News;
use ghcache_core::policy::Resources;
use ghcache_core::wire::{put_bytes, Reader};
use ghcache_core::{CacheKey, ScopeId, MAX_MANIFEST, MAX_REPO};
use tokio::io::AsyncReadExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::entry::{pair, read_pair, MAX_BODY};
use super::error::WireError;
use super::fetch::MAX_FETCH_RESPONSE;
use super::frame::{frame_len, FIRST_CHUNK};
use super::gossip::MAX_BUDGET_MESSAGE;
use super::invalidation::{resources_of, WHOLE_REPOSITORY};
use super::tag::{
    TAG_CTL_BUDGET, TAG_CTL_INVALIDATE, TAG_ERROR, TAG_GET, TAG_HIT, TAG_MANIFEST,
    TAG_MANIFEST_BYTES, TAG_MISS, TAG_OK, TAG_PUBLISH, TAG_STATUS, TAG_STATUS_TEXT, TAG_STORE,
};

/// Largest control-socket frame: a reply carrying a whole entry. Requests have their own,
/// smaller caps per kind (see [`control_request_cap`]).
pub const MAX_CONTROL_FRAME: usize = MAX_FETCH_RESPONSE + 64;
/// Largest control request of any kind: a `Store` (a `Publish` and a fence mark) of the biggest
/// entry peers exchange.
pub const MAX_CONTROL_REQUEST: usize = MAX_PUBLISH + STORE_MARK;
/// Largest `Publish`: a tag and the biggest entry peers exchange.
pub(super) const MAX_PUBLISH: usize = 1 + 4 + MAX_MANIFEST + 4 + MAX_BODY;
/// A `Store`'s fence mark: whether there is one, and its value.
pub(super) const STORE_MARK: usize = 1 + 8;
/// Largest JSON status text.
pub(super) const MAX_STATUS: usize = 1 << 20;
/// Largest error text in a reply.
pub(super) const MAX_ERROR_TEXT: usize = 4 << 10;

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
        /// When the command recorded the write in its cache (ms since the epoch; 0: not said,
        /// as an earlier release's command sends it): peers get the same time, so that every
        /// machine knows the invalidation by the same id.
        at_ms: u64,
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
    /// What GitHub told a command of a principal's rate-limit budget: merge it into the
    /// machine's book and tell the scope's peers (a new pause at once, readings now and then).
    Budget {
        /// The CLI's scope.
        scope_id: ScopeId,
        /// What the command knows of the principal.
        news: News,
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

/// Largest control request of the kind that `tag` (a request's first byte) names, or `None` when
/// no request has that tag. Only a `Publish` and a `Store` carry an entry; a `Budget` carries one
/// principal's news (a few KiB at most), every other request a few fixed fields, so a frame that
/// declares more than its kind can hold is refused before any of it is read.
pub fn control_request_cap(tag: u8) -> Option<usize> {
    match tag {
        TAG_GET => Some(1 + 32 + 32 + 4),
        TAG_PUBLISH => Some(MAX_PUBLISH),
        TAG_CTL_INVALIDATE => Some(1 + 32 + 4 + MAX_REPO + 2 + 8),
        TAG_STATUS => Some(1),
        TAG_MANIFEST => Some(1 + 32 + 32),
        TAG_STORE => Some(MAX_CONTROL_REQUEST),
        TAG_CTL_BUDGET => Some(MAX_BUDGET_MESSAGE),
        _ => None,
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
                at_ms,
            } => {
                out.push(TAG_CTL_INVALIDATE);
                out.extend_from_slice(scope_id.as_bytes());
                put_bytes(&mut out, repo.as_bytes());
                let bits = resources.map_or(WHOLE_REPOSITORY, Resources::bits);
                out.extend_from_slice(&bits.to_le_bytes());
                out.extend_from_slice(&at_ms.to_le_bytes());
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
            Control::Budget { scope_id, news } => {
                out.push(TAG_CTL_BUDGET);
                out.extend_from_slice(scope_id.as_bytes());
                news.put(&mut out);
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
                // An earlier release's command ends here.
                at_ms: match r.remaining() {
                    0 => 0,
                    _ => r.u64()?,
                },
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
            TAG_CTL_BUDGET => Control::Budget {
                scope_id: ScopeId(r.array()?),
                news: News::read(&mut r)?,
            },
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
