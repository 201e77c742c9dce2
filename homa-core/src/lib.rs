//! # homa-core — a sans-IO Homa engine
//!
//! Homa is a receiver-driven datacenter transport for RPCs: messages rather
//! than byte streams; the receiver schedules incoming data with GRANTs; both
//! ends run SRPT (shortest remaining first); switch priority queues carry
//! short messages past long ones. This crate holds every protocol decision
//! and does no I/O: packets and time go in, packets and events come out
//! (the quinn-proto / smoltcp style). Datapaths (`homa-tokio` over UDP,
//! `homa-dpdk`) move the packets, and `homa-sim` runs the same engine on a
//! simulated fabric.
//!
//! * [`wire`] — the Linux kernel Homa wire format (IP protocol 146; over UDP,
//!   the same bytes are the UDP payload): checked views and `Repr`s for all
//!   nine packet types.
//! * [`Endpoint`] — one engine per link: client and server RPCs, unscheduled
//!   bytes, the grant scheduler, priorities and cutoffs, the SRPT sender and
//!   pacer, loss recovery, timeouts and at-most-once delivery.
//! * [`Config`] — every knob with its default; [`Metrics`] — a counter
//!   snapshot.
//!
//! The engine is deterministic: no clock (time is an [`Instant`] argument),
//! no global state, randomness only from [`Config::seed`].
//!
//! ## Mechanisms, in brief
//!
//! * **RPC ids**: a client's RPC ids are even; the server's id for the same
//!   RPC is `id ^ 1`. Servers key RPCs by (client address, id). A client id
//!   is `(random base + sequence) << 21 | slot << 1`: unique for 2^43 RPCs,
//!   different between engines sharing an address, and it names the RPC's
//!   slot so a response finds its RPC without a hash lookup.
//! * **Unscheduled bytes**: the first [`Config::unsched_bytes`] of a message
//!   go without a grant, at a priority picked by message size from the
//!   receiver's cutoffs (learned from CUTOFFS packets; a sender whose
//!   `cutoff_version` is stale is sent the receiver's cutoffs, at most once per
//!   [`Config::cutoffs_interval`]).
//! * **Grants**: see the `grant` module docs: overcommitment, SRPT ranking by
//!   unreceived bytes, dynamic window, `max_incoming`, and a FIFO share.
//! * **Sender**: SRPT over messages with data ready, a FIFO share, paced to
//!   [`Config::link_rate_bps`]; short messages bypass the pacer.
//! * **Loss**: a receiver silent for [`Config::resend_after`] sends RESEND for
//!   the first gap below its grant, every [`Config::resend_interval`] (at
//!   most four RESENDs per peer per tick, for the RPCs silent longest, so an
//!   overloaded peer is not flooded); the sender retransmits at priority 7,
//!   or answers BUSY when it has sent none of the range yet, or RPC_UNKNOWN
//!   when it has no such RPC (a client then restarts its request; a server
//!   frees its RPC). A RESEND also implies a grant up to its end, which
//!   recovers lost GRANTs. A server whose response waits for grants asks the
//!   client with a RESEND of no bytes, which a client that still wants the
//!   response answers with BUSY. An RPC silent for [`Config::timeout`] that
//!   has also left two RESENDs (or NEED_ACKs) unanswered fails
//!   ([`RpcError::Timeout`]) on the client and is dropped on the server:
//!   silence alone could be our own process having been descheduled.
//! * **At-most-once**: a server keeps a finished RPC until the client acks it
//!   (piggybacked on DATA, or in an ACK answering NEED_ACK), then remembers
//!   its id for [`Config::ack_memory`], so a request is delivered to the
//!   application once, whatever arrives again. An ack piggybacked on a
//!   request ends its RPC at once (it sends and answers nothing more), but
//!   freeing it and remembering its id wait, off the packet's path, until
//!   the owner calls [`Endpoint::reap`] (when idle), the next tick, an RPC
//!   that would otherwise be refused for the RPC limits, or 64 such acks.
//!
//! ## Bad input
//!
//! Nothing from the network can panic the engine, and no packet makes it
//! allocate more than the configured limits: a message buffer holds only
//! bytes that actually arrived (within [`Config::max_buffered_bytes`]), never
//! space a packet's length, offset or claim asks for. Every check on a packet
//! happens before anything changes, so a dropped packet leaves no trace but
//! its counter. What happens to each kind of bad packet
//! (each row has a test in `tests/bad_input.rs`):
//!
//! | packet | what the engine does | counted in [`Metrics`] |
//! |---|---|---|
//! | shorter than the 28-byte common header | dropped | `drops_malformed` |
//! | shorter than its type's header | dropped | `drops_malformed` |
//! | unknown type byte | dropped | `drops_malformed` |
//! | ACK with more than 5 acks | dropped | `drops_malformed` |
//! | DATA whose offset + length reach past its message length, or an empty payload in a non-empty message | dropped | `drops_bad_offset` |
//! | DATA whose message length differs from the message's first packet | dropped | `drops_bad_offset` |
//! | DATA starting at or past what the receiver granted (for a message's first packet: past the sender's `incoming` claim, capped at `max_incoming`; later claims are ignored) | dropped; nothing about the message changes | `drops_bad_offset` |
//! | DATA with a message length over [`Config::max_message_length`] | dropped; nothing allocated | `drops_too_long` |
//! | DATA for an unknown client RPC (e.g. one aborted here) | dropped; answered with RPC_UNKNOWN so the server frees its side | `drops_unknown_rpc` |
//! | GRANT, BUSY or RPC_UNKNOWN for an unknown RPC | dropped | `drops_unknown_rpc` |
//! | RESEND for an unknown RPC | answered with RPC_UNKNOWN (the protocol's answer) | — |
//! | CUTOFFS from a peer we hold no state for | dropped; no state created | `drops_unknown_rpc` |
//! | duplicate DATA (every byte already received) | dropped | `drops_duplicate` |
//! | DATA for a request already delivered and not yet acked | dropped; not delivered again | `drops_duplicate` |
//! | DATA for a request already acknowledged | dropped; not delivered again | `drops_stale` |
//! | ACK for an RPC that does not exist | ignored | `drops_unknown_rpc` |
//! | DATA that would cross [`Config::max_buffered_bytes`] | dropped (the sender retransmits later) | `drops_buffer_limit` |
//! | DATA that would create an RPC beyond [`Config::max_rpcs`] / [`Config::max_rpcs_per_peer`] | dropped | `drops_rpc_limit` |
//! | FREEZE (a debugging packet) | ignored | `drops_ignored` |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod endpoint;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod grant;
mod message;
mod metrics;
mod outgoing;
mod peer;
mod time;
mod timer;
mod util;
pub mod wire;

pub use config::{Config, NUM_PRIORITIES};
pub use endpoint::{Backlog, Endpoint, Event, RpcId, ServerRpcId, Transmit};
pub use error::{ConfigError, RpcError, SendError};
pub use metrics::{DropReason, Metrics};
pub use time::Instant;
pub use util::FastHasher;
