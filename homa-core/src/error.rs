//! Errors returned by the engine's commands and reported for failed RPCs.

use thiserror::Error;

/// Why a command (`send_request`, `send_response`) was refused. Nothing was
/// sent when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// The message is longer than [`Config::max_message_length`](crate::Config::max_message_length).
    #[error("message of {len} bytes exceeds the maximum message length of {max} bytes")]
    MessageTooLong {
        /// Length of the refused message.
        len: usize,
        /// The configured maximum.
        max: u32,
    },
    /// The engine already holds its configured maximum number of RPCs, in total
    /// or for this peer.
    #[error("too many RPCs outstanding ({limit} allowed)")]
    TooManyRpcs {
        /// The limit that was hit.
        limit: usize,
    },
    /// The destination cannot receive Homa requests (port 0, or a client port
    /// where a server port is required).
    #[error("invalid destination {0}: Homa server ports are 1 to 32767")]
    InvalidDestination(std::net::SocketAddr),
    /// The server RPC does not exist (already answered, aborted by its client,
    /// or never existed), or is not waiting for a response.
    #[error("no server RPC {0} is waiting for a response")]
    UnknownRpc(u64),
}

/// Why an RPC failed. Reported in [`Event::Failed`](crate::Event::Failed).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The peer was silent for the configured
    /// [`timeout`](crate::Config::timeout) despite retransmission requests.
    #[error("peer did not respond within the timeout")]
    Timeout,
    /// The RPC was aborted locally.
    #[error("RPC aborted")]
    Aborted,
    /// The network reported the peer unreachable (for example an ICMP port
    /// unreachable from the kernel: nothing listens there).
    #[error("peer {0} is unreachable")]
    PeerUnreachable(std::net::SocketAddr),
}

/// An invalid [`Config`](crate::Config).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid Homa config: {field}: {reason}")]
pub struct ConfigError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}
