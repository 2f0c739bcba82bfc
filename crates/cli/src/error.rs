//! What can go wrong in ghcache itself (not in gh, whose failures are answers): the binary's
//! [`Failure`], which decides its exit code, and the library's [`Error`].
//!
//! Every module reports through these, so they sit in a module of their own that names no other:
//! the crate's root only re-exports them.

use crate::config::Config;

/// Why ghcache itself (not gh) failed; the binary prints it as one line.
#[doc(hidden)]
#[derive(Debug)]
pub enum Failure {
    /// Bad input: exit 2.
    Usage(String),
    /// Something failed at run time: exit 1.
    Runtime(String),
}

/// What went wrong in ghcache itself (not in gh, whose failures are answers: see
/// `Answered::exit_code`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting, an argument or the environment is not usable; the message says which.
    #[error("{0}")]
    Usage(String),
    /// Something failed while answering (the cache could not be opened, gh could not run).
    #[error("{0}")]
    Runtime(String),
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Usage(line) => Error::Usage(line),
            Failure::Runtime(line) => Error::Runtime(line),
        }
    }
}

/// The failure of a gh that could not be started: one line that says what to install or set.
pub(crate) fn spawn_failure(config: &Config, err: &std::io::Error) -> Failure {
    Failure::Runtime(format!(
        "cannot run `{}`: {err} (install gh, or set GH_CACHE_GH to its path)",
        config.gh.value.to_string_lossy()
    ))
}
