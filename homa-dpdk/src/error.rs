//! The crate's error type.

/// What can go wrong setting up or running the DPDK datapath.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A DPDK call failed.
    #[error("{call} failed: {message} ({code})")]
    Dpdk {
        /// The DPDK function.
        call: &'static str,
        /// DPDK's description of the error.
        message: String,
        /// The (negative) error code.
        code: i32,
    },
    /// EAL was already started in this process; DPDK allows it once.
    #[error("DPDK's EAL can be started once per process")]
    AlreadyStarted,
    /// A port name that no DPDK device has.
    #[error("no DPDK port named {0:?}")]
    NoSuchPort(String),
    /// An invalid configuration value.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// From the Homa adapter (engine configuration).
    #[error(transparent)]
    Homa(#[from] homa_tokio::Error),
    /// An operating-system error (spawning the polling thread).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    pub(crate) fn dpdk(call: &'static str, code: i32) -> Self {
        Error::Dpdk {
            call,
            message: crate::ffi::strerror(code),
            code,
        }
    }
}
