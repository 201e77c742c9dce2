//! The adapter's error type.

use std::io;
use std::net::SocketAddr;

use homa_core::{RpcError, SendError};

/// Why an operation on a [`Socket`](crate::Socket), [`Client`](crate::Client)
/// or [`Server`](crate::Server) failed.
///
/// ```
/// use homa_tokio::Error;
/// let e = Error::MessageTooLarge { len: 2_000_000, max: 1_000_000 };
/// assert!(e.to_string().contains("2000000"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer was silent for the configured timeout
    /// ([`Config::timeout`](homa_core::Config::timeout)) despite
    /// retransmission requests: it crashed, or the network lost it.
    #[error("peer did not respond within the timeout")]
    Timeout,
    /// The network reported the peer unreachable (an ICMP port or host
    /// unreachable: nothing listens at that address).
    #[error("peer {0} is unreachable")]
    PeerUnreachable(SocketAddr),
    /// The message is longer than
    /// [`Config::max_message_length`](homa_core::Config::max_message_length);
    /// nothing was sent.
    #[error("message of {len} bytes exceeds the maximum of {max} bytes")]
    MessageTooLarge {
        /// Length of the refused message.
        len: usize,
        /// The configured maximum.
        max: u32,
    },
    /// The RPC was aborted: locally, or the server dropped it (the request
    /// was dropped without a response).
    #[error("RPC aborted")]
    Aborted,
    /// The endpoint is shut down (every handle dropped, or its datapath
    /// failed).
    #[error("endpoint shut down")]
    Shutdown,
    /// The engine refused the command: too many RPCs, an invalid
    /// destination (Homa server ports are 1–32767), or a response to an RPC
    /// that no longer exists.
    #[error(transparent)]
    Refused(SendError),
    /// An I/O error from the datapath.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        match e {
            SendError::MessageTooLong { len, max } => Error::MessageTooLarge { len, max },
            other => Error::Refused(other),
        }
    }
}

impl From<RpcError> for Error {
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::Timeout => Error::Timeout,
            RpcError::PeerUnreachable(addr) => Error::PeerUnreachable(addr),
            _ => Error::Aborted,
        }
    }
}

impl Error {
    /// Whether retrying the same RPC later might succeed (timeouts,
    /// unreachable peers, a full RPC table).
    ///
    /// ```
    /// assert!(homa_tokio::Error::Timeout.is_transient());
    /// assert!(!homa_tokio::Error::Shutdown.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Timeout
                | Error::PeerUnreachable(_)
                | Error::Refused(SendError::TooManyRpcs { .. })
        )
    }
}
