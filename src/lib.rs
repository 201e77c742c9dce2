//! # homa
//!
//! Homa, the receiver-driven datacenter RPC transport, as a Rust library.
//! This facade re-exports the member crates:
//!
//! * [`core`] — the sans-IO protocol engine (`homa-core`).
//! * [`tokio`] — the async adapter: UDP datapath, `Socket`, `Client`,
//!   `Server` and tower glue (`homa-tokio`).
//! * [`workload`] — the W1–W5 message-size distributions and their sampler
//!   (`homa-workload`).
//!
//! See the repository README for how the crates fit together.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use homa_core as core;
pub use homa_tokio as tokio;
pub use homa_workload as workload;
