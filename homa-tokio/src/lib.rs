//! # homa-tokio — Homa on tokio
//!
//! The async adapter of homa-rs: it drives a [`homa_core::Endpoint`] (the
//! sans-IO engine that makes every protocol decision) from a tokio task, over
//! a [`Datapath`] that moves the packets — kernel UDP ([`UdpDatapath`]) by
//! default.
//!
//! * [`Socket`] — the message API: [`send`](Socket::send) a request,
//!   [`recv`](Socket::recv) the next request or response,
//!   [`Request::respond`].
//! * [`Client`] — [`call`](Client::call) one RPC; dropping the future aborts
//!   it. Also a `tower::Service<(SocketAddr, Bytes)>`.
//! * [`Server`] — [`next_request`](Server::next_request) or
//!   [`serve`](Server::serve) a `tower::Service`, with a concurrency limit
//!   and graceful [`shutdown`](Server::shutdown).
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), homa_tokio::Error> {
//! use homa_tokio::{Client, Server, SocketConfig};
//!
//! let server = Server::bind("127.0.0.1:0".parse().unwrap(), SocketConfig::default()).await?;
//! let addr = server.local_addr();
//! let echo = tower::service_fn(|req: homa_tokio::ServiceRequest| async move {
//!     Ok::<_, std::convert::Infallible>(req.body)
//! });
//! tokio::spawn(async move { server.serve(echo).await });
//!
//! let client = Client::bind("127.0.0.1:0".parse().unwrap(), SocketConfig::default()).await?;
//! let response = client.call(addr, "hello".into()).await?;
//! assert_eq!(&response[..], b"hello");
//! # Ok(()) }
//! ```
//!
//! ## How it runs
//!
//! Each endpoint is one engine owned by one driver task. Handles send it
//! commands over a channel; results come back over oneshot channels (calls)
//! or a queue (`recv`). On each wake-up the driver takes commands, receives
//! batches of packets (stopping at one that completes a message, so that its
//! task runs before more bulk data is read), runs expired timers once the
//! datapath has nothing more to read (a peer's packets waiting in our own
//! socket are not its silence), sends what the engine emits in batches, and
//! hands out events, with a bounded amount of work before it yields; when
//! idle it sleeps until a packet, a command or the engine's next deadline
//! (deadlines under 50 µs away, which the pacer uses, are waited for by
//! yielding, since tokio's timer counts milliseconds). The engine's clock is
//! nanoseconds since the driver started.
//!
//! With [`SocketConfig::busy_poll`], an idle driver first spins on the
//! datapath for a while, as Linux Homa does, to save the wake-up latency.
//! Each probe looks at the UDP datapath's high-priority queue (every
//! sixteenth at both, and every one while those find packets), and while
//! the driver spins its sockets are out of the reactor, whose per-packet
//! wake-up callbacks nobody would be waiting for; they go back before the
//! driver sleeps. It probes in a tight loop for up to 10 µs, then yields to
//! the other tasks on its thread.
//!
//! A kernel-bypass datapath (`homa-dpdk`) runs the engine on its own
//! polling thread instead of a driver task: [`host::EngineHost`] is that
//! engine, and the [`Socket`] it comes with (and the `Client` and `Server`
//! made from it) work exactly as here; their commands travel over a
//! lock-free queue.
//!
//! ## Errors and timeouts
//!
//! A peer that goes silent fails the RPC with [`Error::Timeout`] after
//! [`Config::timeout`](homa_core::Config::timeout) (100 ms by default);
//! a closed port fails it at once with [`Error::PeerUnreachable`] (ICMP,
//! UDP datapath with `IP_RECVERR`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod datapath;
mod driver;
mod error;
mod horizon;
pub mod host;
mod server;
mod socket;
mod ticker;
mod udp;

pub use client::{Call, Client};
pub use datapath::{Datapath, Incoming};
pub use error::Error;
pub use homa_core::{Config, Instant, Metrics, RpcId, ServerRpcId};
pub use server::{Server, ServiceRequest, DEFAULT_CONCURRENCY_LIMIT};
pub use socket::{Message, Request, Socket, SocketConfig};
pub use udp::{UdpConfig, UdpDatapath};
