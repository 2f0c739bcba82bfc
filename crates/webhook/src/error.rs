//! What can stop the receiver from starting.

/// Why a webhook receiver cannot be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The secret is empty.
    #[error(
        "the webhook secret is empty: set the same secret here and in the webhook's settings on \
         GitHub (a long random string, e.g. from `openssl rand -hex 32`)"
    )]
    EmptySecret,
}
