//! `homa-sim`: a deterministic discrete-event datacenter network simulator.
//!
//! Every simulated host runs a protocol engine implementing [`Node`]. Hosts are
//! attached to a [`Topology`] of store-and-forward switches whose egress ports
//! have 8 strict-priority FIFO queues. Time is virtual ([`Nanos`], u64
//! nanoseconds) and the whole simulation is fully deterministic for a given
//! seed: all randomness (fault injection, per-packet spraying) comes from the
//! seeded [`rng::Rng`], and simultaneous events are processed in the order they
//! were scheduled.
//!
//! The crate is intentionally independent of the Homa engine itself; a thin glue
//! implementing [`Node`] runs the real engine on the simulated network.
//!
//! # Example
//! ```
//! use homa_sim::{Frame, LinkSpec, Nanos, Network, Node, Topology};
//!
//! #[derive(Default)]
//! struct Host { out: Vec<Frame>, got: Vec<Nanos> }
//! impl Node for Host {
//!     fn on_frame(&mut self, now: Nanos, _frame: Frame) { self.got.push(now); }
//!     fn on_timer(&mut self, _now: Nanos) {}
//!     fn poll_frame(&mut self, _now: Nanos) -> Option<Frame> { self.out.pop() }
//!     fn next_timer(&self) -> Option<Nanos> { None }
//! }
//!
//! let link = LinkSpec { rate_bps: 10_000_000_000, delay: 100 };
//! let mut net = Network::new(Topology::star(2, link, 250), 1);
//! let a = net.add_host(Host::default());
//! let b = net.add_host(Host::default());
//! let frame = Frame::new(net.host_addr(a), net.host_addr(b), 0, bytes::Bytes::from_static(b"hi"), 1500);
//! net.with_node(a, |h, _now| h.out.push(frame));
//! net.run_until(1_000_000);
//! // 1200 ns serialization + 100 ns propagation, twice, plus 250 ns in the switch.
//! assert_eq!(net.node(b).got, vec![2 * (1200 + 100) + 250]);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod host;
pub mod net;
pub mod paper;
pub mod rng;

pub use host::{HomaHost, Logged, ServerApp};
pub use net::{
    host_addr, host_index, Direction, DropCounts, DropReason, Endpoint, Faults, Frame, HostId,
    HostLinkStats, LinkSpec, Nanos, NetStats, Network, Node, PortId, PortInfo, PortStats, SwitchId,
    TapEvent, Topology, TwoTier, MAX_PRIORITY, NUM_PRIORITIES,
};
