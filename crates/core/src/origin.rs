//! The origin port: where answers come from when no tier has one (GitHub, through gh), and
//! what it can answer.

use async_trait::async_trait;

use crate::entry::Entry;
use crate::request::Request;

/// What gh printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Bytes for stdout.
    pub stdout: Vec<u8>,
    /// Bytes for stderr.
    pub stderr: Vec<u8>,
    /// Exit code.
    pub exit_code: i32,
    /// gh's stdout was already written to the user while gh ran: `stdout` holds nothing that
    /// is still to be printed, and printing must not start over (no second pager).
    pub stdout_printed: bool,
}

impl Output {
    /// The output that replays a stored entry.
    pub fn of(entry: &Entry) -> Self {
        Output {
            stdout: entry.body.stdout.clone(),
            stderr: entry.body.stderr.clone(),
            exit_code: entry.manifest.exit_code,
            stdout_printed: false,
        }
    }
}

impl From<Entry> for Output {
    /// The output that replays a stored entry, without copying its body.
    fn from(entry: Entry) -> Self {
        Output {
            stdout: entry.body.stdout,
            stderr: entry.body.stderr,
            exit_code: entry.manifest.exit_code,
            stdout_printed: false,
        }
    }
}

/// What the origin answered.
#[derive(Debug, Clone, PartialEq, Eq)]
// One value per request, moved a couple of times: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Fetched {
    /// A successful answer (exit code 0): store it and print it.
    Fresh(Entry),
    /// A successful answer whose stdout the origin printed while gh ran
    /// (`output.stdout_printed`): store `entry` and print the rest of `output` (its stderr).
    /// `entry` is `None` when the answer was larger than the largest entry: nothing is stored.
    Printed {
        /// What to store, if anything.
        entry: Option<Entry>,
        /// What is left to print, and the exit code.
        output: Output,
    },
    /// GitHub said 304 for the prior entry's ETag: the prior entry is still right.
    NotModified,
    /// gh failed (or was interrupted by a signal): print its output, store nothing. `transient`
    /// marks failures of GitHub itself (5xx, network, rate limit) for which a stale entry may be
    /// served instead; it is never set once part of the output was printed.
    Failed {
        /// gh's output.
        output: Output,
        /// GitHub (not the request) failed.
        transient: bool,
    },
}

/// The origin could not be asked at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OriginError {
    /// The gh program could not be started.
    #[error("cannot run `{program}`: {reason} (install gh, or set GH_CACHE_GH to its path)")]
    Spawn {
        /// Program that was run.
        program: String,
        /// OS error text.
        reason: String,
    },
    /// Reading gh's output failed.
    #[error("reading output of `{program}` failed: {reason}")]
    Io {
        /// Program that was run.
        program: String,
        /// OS error text.
        reason: String,
    },
}

/// Where answers come from when no tier has them: GitHub, through the real `gh`.
#[async_trait]
pub trait Origin: Send + Sync {
    /// Runs the request. With `prior` (a stale entry), the origin may revalidate it instead.
    async fn fetch(&self, request: &Request, prior: Option<&Entry>)
        -> Result<Fetched, OriginError>;
}
