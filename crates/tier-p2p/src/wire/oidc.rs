//! `/ghcache/oidc/1`: a runner shows a peer its job's OIDC token, and the peer says what it
//! made of it (the checks themselves are the crate's oidc module).

use ghcache_core::wire::{put_bytes, Reader};
use libp2p::StreamProtocol;

use super::error::WireError;
use super::frame::{framed_codec, no_early_refusal};
use super::tag::{TAG_GRANTED, TAG_PRESENT, TAG_REFUSED};

/// Protocol name of a runner's presentation of its job's OIDC token (see the oidc module).
pub const OIDC_PROTOCOL: StreamProtocol = StreamProtocol::new("/ghcache/oidc/1");
/// Largest token presented. GitHub's are about 1 KiB; room for more claims.
pub const MAX_TOKEN: usize = 8 << 10;
/// Scope names one presentation may list: a runner produces for its one scope (and a few
/// `#suffix`es of it).
pub const MAX_PRESENTED_SCOPES: usize = 16;
/// Longest scope name presented.
pub const MAX_SCOPE_NAME: usize = 256;
/// Largest presentation: a tag, the token, a count, and the scope names.
pub const MAX_PRESENTATION: usize =
    1 + 4 + MAX_TOKEN + 1 + MAX_PRESENTED_SCOPES * (4 + MAX_SCOPE_NAME);
/// Longest reason given for a refused token (the verifier's one line, cut).
pub const MAX_REFUSAL: usize = 256;
/// Largest answer to a presentation: a tag and a count, or a tag and a reason.
pub const MAX_PRESENTED: usize = 1 + 4 + MAX_REFUSAL;

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

framed_codec!(
    /// Request-response codec of `/ghcache/oidc/1`: one length-prefixed, capped frame each way.
    OidcCodec,
    Presentation,
    MAX_PRESENTATION,
    Presented,
    MAX_PRESENTED,
    no_early_refusal
);
