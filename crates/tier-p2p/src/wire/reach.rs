//! `/ghcache/reach/1`: a node that listens asks a peer it connected to to dial it back, and
//! learns whether others can reach it (a runner behind a firewall that drops inbound
//! connections cannot tell from inside).

use ghcache_core::wire::Reader;
use libp2p::StreamProtocol;

use super::error::WireError;
use super::frame::{framed_codec, no_early_refusal};
use super::tag::{TAG_DIALED, TAG_DIAL_BACK, TAG_NOT_CHECKED, TAG_NOT_DIALED};

/// Protocol name of the dial-back.
pub const REACH_PROTOCOL: StreamProtocol = StreamProtocol::new("/ghcache/reach/1");
/// Ports one dial-back request may name: a node listens on a few addresses at most.
pub const MAX_REACH_PORTS: usize = 8;
/// Largest dial-back request: a tag, a count and the ports.
pub const MAX_REACH_REQUEST: usize = 2 + 2 * MAX_REACH_PORTS;
/// Largest answer: a tag.
pub const MAX_REACH_RESPONSE: usize = 1;

/// Asks the peer to dial the asker back on these TCP ports, at the address the asker's
/// connection comes from: a peer never dials an address the asker chose, so it cannot be
/// made to dial a third party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialBack {
    /// The TCP ports the asker listens on.
    pub ports: Vec<u16>,
}

/// What came of a [`DialBack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialedBack {
    /// A connection to one of the ports was made: the asker can be dialed.
    Dialed,
    /// None connected in the time a lookup would wait: to lookups, the asker cannot be dialed.
    NotDialed,
    /// The peer did not try (too many dial-backs under way, no address to dial): ask another.
    NotChecked,
}

impl DialBack {
    /// Wire encoding. Ports past [`MAX_REACH_PORTS`] are left out, so what is sent always
    /// decodes.
    pub fn encode(&self) -> Vec<u8> {
        let ports = &self.ports[..self.ports.len().min(MAX_REACH_PORTS)];
        let mut out = vec![TAG_DIAL_BACK, ports.len() as u8];
        for port in ports {
            out.extend_from_slice(&port.to_be_bytes());
        }
        out
    }

    /// Inverse of [`DialBack::encode`].
    ///
    /// # Errors
    /// Anything malformed, or more than [`MAX_REACH_PORTS`] ports.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes, "dial-back request");
        if r.u8()? != TAG_DIAL_BACK {
            return Err(r.err("unknown tag").into());
        }
        let count = r.u8()? as usize;
        if count > MAX_REACH_PORTS {
            return Err(r.err("too many ports").into());
        }
        let mut ports = Vec::with_capacity(count);
        for _ in 0..count {
            let [hi, lo] = r.array()?;
            ports.push(u16::from_be_bytes([hi, lo]));
        }
        r.finish()?;
        Ok(DialBack { ports })
    }
}

impl DialedBack {
    /// Wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        vec![match self {
            DialedBack::Dialed => TAG_DIALED,
            DialedBack::NotDialed => TAG_NOT_DIALED,
            DialedBack::NotChecked => TAG_NOT_CHECKED,
        }]
    }

    /// Inverse of [`DialedBack::encode`].
    ///
    /// # Errors
    /// Anything but one known tag.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes, "dial-back answer");
        let answer = match r.u8()? {
            TAG_DIALED => DialedBack::Dialed,
            TAG_NOT_DIALED => DialedBack::NotDialed,
            TAG_NOT_CHECKED => DialedBack::NotChecked,
            _ => return Err(r.err("unknown tag").into()),
        };
        r.finish()?;
        Ok(answer)
    }
}

framed_codec!(
    /// Request-response codec of `/ghcache/reach/1`: one length-prefixed, capped frame each way.
    ReachCodec,
    DialBack,
    MAX_REACH_REQUEST,
    DialedBack,
    MAX_REACH_RESPONSE,
    no_early_refusal
);
