//! # homa-dpdk — Homa over DPDK, bypassing the kernel
//!
//! A kernel-bypass datapath for homa-rs. Packets go straight between a
//! DPDK port and the Homa engine as Ethernet + IPv4 (protocol 146, the
//! Linux Homa wire format) + Homa, with the packet's priority in the DSCP
//! bits (and, optionally, in an 802.1Q PCP tag). The port answers ARP for
//! its address, resolves its neighbours (holding packets meanwhile; the
//! engine's retransmission covers what is lost), and accepts static
//! entries; frames not for it are counted and dropped ([`PortStats`]).
//!
//! ## Threads
//!
//! A [`Poller`] thread, pinned to a core, runs the receive and transmit
//! bursts **and the engine** of each port: no packet
//! crosses threads. The application talks to the engine through the same
//! [`Socket`](homa_tokio::Socket), [`Client`](homa_tokio::Client) and
//! [`Server`](homa_tokio::Server) as on UDP; their commands reach the
//! polling thread over a lock-free queue, and completed messages come back
//! over lock-free queues and one-shot channels that wake the waiting task,
//! so idle tasks sleep while the polling thread spins.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use homa_dpdk::{Device, Dpdk, EalConfig, Poller, PollerConfig, Port, PortConfig};
//! use homa_tokio::{Client, Server, SocketConfig};
//!
//! let mut eal = EalConfig::default();
//! eal.vdevs.push("net_af_packet0,iface=eth1".into());
//! let dpdk = Dpdk::init(&eal)?;
//! let port = Port::open(&dpdk, PortConfig::new(Device::Name("net_af_packet0".into()), "10.0.0.1".parse()?, 4000))?;
//! let (poller, mut sockets) = Poller::spawn(PollerConfig::default(), vec![port], SocketConfig::default())?;
//! let socket = sockets.remove(0);
//! let client = Client::from_socket(socket.clone());
//! let server = Server::from_socket(socket);
//! let reply = client.call("10.0.0.2:4000".parse()?, "hello".into()).await?;
//! drop((client, server));
//! poller.shutdown(); // ports close; EAL is released when `dpdk` goes
//! # Ok(()) }
//! ```
//!
//! ## Setting up
//!
//! [`Dpdk::init`] starts DPDK's EAL from an [`EalConfig`] (once per
//! process: DPDK cannot start it twice); [`Port::open`] configures a port
//! (one receive and one transmit queue, a mempool); [`Poller::spawn`]
//! starts the thread. For tests, [`Dpdk::ring_pair`] joins two in-memory
//! ports back to back.
//!
//! The crate needs DPDK ≥ 22.11 (`libdpdk-dev`) and `pkg-config` to build.
//! `unsafe` code lives in one module, the FFI layer, next to a small C
//! shim for DPDK's inline functions.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod eal;
mod error;
mod ffi;
mod poller;
mod port;
mod stack;
mod stats;
pub mod wire;

pub use eal::{Dpdk, EalConfig};
pub use error::Error;
pub use poller::{Poller, PollerConfig};
pub use port::{Device, Port, PortConfig};
pub use stack::Stack;
pub use stats::PortStats;
pub use wire::{MacAddr, VlanTag};
