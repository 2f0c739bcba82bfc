//! The errors of the ports: [`TierError`], why a tier could not answer (a miss is no error), and
//! [`DecodeError`], a byte string that is not a valid encoding of a ghcache value.

use std::time::Duration;

/// Why a tier could not answer. A miss is not an error: see [`crate::Lookup::Miss`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TierError {
    /// The tier did not answer within its deadline.
    #[error("{tier} tier did not answer within {deadline:?}")]
    Deadline {
        /// Which tier.
        tier: &'static str,
        /// The deadline it missed.
        deadline: Duration,
    },
    /// The tier's backing store or service is unavailable (disk, daemon, node).
    #[error("{tier} tier unavailable: {reason}")]
    Unavailable {
        /// Which tier.
        tier: &'static str,
        /// What failed, in words the user can act on.
        reason: String,
    },
    /// Stored or received data failed a check (digest, signature, size, scope). It was dropped.
    #[error("{tier} tier dropped a bad entry: {reason}")]
    Corrupt {
        /// Which tier.
        tier: &'static str,
        /// Which check failed.
        reason: String,
    },
    /// The tier does not accept writes (read-only mode, read-only cache dir).
    #[error("{tier} tier is read-only")]
    ReadOnly {
        /// Which tier.
        tier: &'static str,
    },
}

/// A byte string that is not a valid encoding of a ghcache value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {what}: {reason}")]
pub struct DecodeError {
    /// What was being decoded.
    pub what: &'static str,
    /// Why it is invalid.
    pub reason: &'static str,
}
