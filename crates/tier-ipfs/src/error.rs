//! [`Error`]: what went wrong talking to the IPFS node, each naming the node and the endpoint,
//! so that a user can tell a node that is down from one that is slow or answers nonsense.

use std::time::Duration;

/// What went wrong talking to the IPFS node. Every message names the node and the endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configured address (the API's, a gateway's) cannot be used.
    #[error("{what} {url:?} {reason}; expected http://HOST:PORT, e.g. {example}")]
    BadUrl {
        /// Which address: `IPFS API address`, `IPFS gateway address`.
        what: &'static str,
        /// The address as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
        /// A valid address of that kind.
        example: &'static str,
    },
    /// No connection: the node is not running or not listening there.
    #[error("cannot reach the IPFS node at {url} ({endpoint}): {reason}; start it (`ipfs daemon`) or set GH_CACHE_IPFS_API")]
    Unreachable {
        /// The node's API address.
        url: String,
        /// The RPC endpoint, e.g. `/api/v0/cat`.
        endpoint: &'static str,
        /// The connection error.
        reason: String,
    },
    /// The node accepted the request but did not answer in time.
    #[error("the IPFS node at {url} did not answer {endpoint} within {after:?}")]
    Deadline {
        /// The node's API address.
        url: String,
        /// The RPC endpoint.
        endpoint: &'static str,
        /// How long was waited.
        after: Duration,
    },
    /// The answer was larger than the caller accepts; the rest was not read.
    #[error("the IPFS node at {url} sent more than {limit} bytes for {endpoint}")]
    TooLarge {
        /// The node's API address.
        url: String,
        /// The RPC endpoint.
        endpoint: &'static str,
        /// The cap.
        limit: usize,
    },
    /// The node does not have what was asked for (an MFS path).
    #[error("the IPFS node at {url} has no such file ({endpoint})")]
    NotFound {
        /// The node's API address.
        url: String,
        /// The RPC endpoint.
        endpoint: &'static str,
    },
    /// The node answered with an error.
    #[error("the IPFS node at {url} failed {endpoint}: HTTP {status}: {message}")]
    Node {
        /// The node's API address.
        url: String,
        /// The RPC endpoint.
        endpoint: &'static str,
        /// HTTP status.
        status: u16,
        /// The node's `Message`, or the start of its body.
        message: String,
    },
    /// The gateway could not be reached or did not give the body.
    #[error(
        "cannot read {cid} from the IPFS gateway at {url}: {reason}; check GH_CACHE_IPFS_GATEWAY"
    )]
    Gateway {
        /// The gateway's address.
        url: String,
        /// The CID asked for.
        cid: String,
        /// What went wrong.
        reason: String,
    },
    /// The answer was not what the endpoint returns.
    #[error("unexpected answer from the IPFS node at {url} ({endpoint}): {reason}")]
    Protocol {
        /// The node's API address.
        url: String,
        /// The RPC endpoint.
        endpoint: &'static str,
        /// What was wrong.
        reason: String,
    },
}
