//! The one error of every decoder here: which message, and what is wrong with it.

use std::io;

use ghcache_core::DecodeError;

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
