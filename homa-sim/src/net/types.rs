//! Basic types shared by the network model: frames, the [`Node`] trait, link
//! and fault specifications, identifiers and statistics.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::Bytes;

/// Virtual time in nanoseconds since the start of the simulation.
pub type Nanos = u64;

/// Number of strict-priority queues per egress port.
pub const NUM_PRIORITIES: usize = 8;

/// Highest frame priority (priorities are `0..=MAX_PRIORITY`, higher is served first).
pub const MAX_PRIORITY: u8 = (NUM_PRIORITIES - 1) as u8;

/// UDP-style port used in every simulated host address (see [`host_addr`]).
pub const HOST_PORT: u16 = 4000;

/// One frame (packet) on the simulated network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Source address (informational; the network does not check it).
    pub src: SocketAddr,
    /// Destination address. The network routes on the IP address only; the
    /// port number is passed through untouched.
    pub dst: SocketAddr,
    /// Priority `0..=7`, 7 highest. Values above 7 are treated as 7.
    pub priority: u8,
    /// Payload handed to the destination [`Node`].
    pub data: Bytes,
    /// Bytes occupied on the wire including all headers, preamble, inter-frame
    /// gap, etc. Serialization time is `ceil(wire_bytes * 8 * 1e9 / rate_bps)` ns.
    pub wire_bytes: u32,
}

impl Frame {
    /// Convenience constructor.
    pub fn new(
        src: SocketAddr,
        dst: SocketAddr,
        priority: u8,
        data: Bytes,
        wire_bytes: u32,
    ) -> Self {
        Frame {
            src,
            dst,
            priority,
            data,
            wire_bytes,
        }
    }
}

/// A simulated host's protocol engine.
///
/// The network calls into the node only from the event loop or from
/// [`Network::with_node`](crate::Network::with_node); after every such call it
/// drains [`Node::poll_frame`] into the host's NIC and re-reads
/// [`Node::next_timer`].
pub trait Node {
    /// A frame addressed to this host arrived (its last bit) at `now`.
    fn on_frame(&mut self, now: Nanos, frame: Frame);
    /// The time returned by [`Node::next_timer`] was reached.
    fn on_timer(&mut self, now: Nanos);
    /// Next frame the host wants to transmit now, if any. Called repeatedly
    /// after every `on_*` call and after every `with_node()`, until `None`.
    fn poll_frame(&mut self, now: Nanos) -> Option<Frame>;
    /// Earliest time the host wants [`Node::on_timer`], if any (re-read after
    /// every call into the node). A time in the past means "as soon as possible".
    fn next_timer(&self) -> Option<Nanos>;
}

/// Properties of one (full-duplex) link; both directions use the same spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkSpec {
    /// Line rate in bits per second (must be > 0).
    pub rate_bps: u64,
    /// One-way propagation delay in nanoseconds.
    pub delay: Nanos,
}

impl LinkSpec {
    /// Creates a link spec.
    pub const fn new(rate_bps: u64, delay: Nanos) -> Self {
        LinkSpec { rate_bps, delay }
    }

    /// Serialization time of `wire_bytes` bytes on this link, rounded up to
    /// whole nanoseconds.
    #[inline]
    pub fn serialization_ns(&self, wire_bytes: u32) -> Nanos {
        let rate = self.rate_bps;
        match u64::from(wire_bytes).checked_mul(8_000_000_000) {
            Some(bits_ns) => bits_ns.div_ceil(rate),
            None => (u128::from(wire_bytes) * 8_000_000_000).div_ceil(u128::from(rate)) as u64,
        }
    }
}

/// Random fault injection probabilities, applied independently per frame.
///
/// Order of application to one frame: loss (the frame disappears); otherwise
/// duplication (a second, independent copy is made); then, separately for each
/// copy, corruption and reordering.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Probability that a frame is lost.
    pub loss: f64,
    /// Probability that a frame is duplicated (the copy travels independently).
    pub duplicate: f64,
    /// Probability that a frame is delayed by an extra uniform random delay in
    /// `[0, reorder_delay]` on its next link hop (without blocking the link).
    pub reorder: f64,
    /// Maximum extra delay of a reordered frame.
    pub reorder_delay: Nanos,
    /// Probability that one random byte of the frame's data is changed (the
    /// data is copied first; frames with empty data are never corrupted).
    pub corrupt: f64,
}

impl Faults {
    /// No faults at all.
    pub const NONE: Faults = Faults {
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        reorder_delay: 0,
        corrupt: 0.0,
    };

    /// True if no fault can ever be injected with these settings.
    pub fn is_none(&self) -> bool {
        !(self.loss > 0.0 || self.duplicate > 0.0 || self.reorder > 0.0 || self.corrupt > 0.0)
    }
}

/// Direction of a host's access link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Host → network (the host's NIC uplink).
    Up,
    /// Network → host (the switch port feeding the host).
    Down,
}

/// Identifier of a host: its slot index in the topology (`0..num_hosts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(pub usize);

impl HostId {
    /// The host's index.
    pub fn index(self) -> usize {
        self.0
    }
}

/// Identifier of a switch in a [`Topology`](crate::Topology).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SwitchId(pub usize);

/// Identifier of a directed egress port (one direction of a link).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(pub usize);

/// Either end of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A host slot.
    Host(HostId),
    /// A switch.
    Switch(SwitchId),
}

/// Address of host number `h`: `10.(h / 256).(h % 256).1:4000`.
///
/// # Panics
/// Panics if `h >= 65536`.
pub fn host_addr(h: HostId) -> SocketAddr {
    let i = h.0;
    assert!(i < 65_536, "at most 65536 hosts are addressable");
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, (i / 256) as u8, (i % 256) as u8, 1)),
        HOST_PORT,
    )
}

/// Inverse of [`host_addr`] on the IP part: the host index an address refers
/// to, if it has the form `10.a.b.1` (any port). Does not check that such a
/// host exists.
pub fn host_index(addr: &SocketAddr) -> Option<HostId> {
    match addr.ip() {
        IpAddr::V4(ip) => {
            let o = ip.octets();
            (o[0] == 10 && o[3] == 1).then(|| HostId(usize::from(o[1]) * 256 + usize::from(o[2])))
        }
        IpAddr::V6(_) => None,
    }
}

/// Why a frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Random loss from [`Faults::loss`].
    FaultLoss,
    /// A drop filter returned `true`.
    Filter,
    /// Drop-tail at an egress port whose buffer limit was exceeded.
    BufferOverflow,
    /// The destination host was crashed at delivery time, or the frame was
    /// still queued in the NIC of a host when it crashed.
    HostCrashed,
    /// No host has the destination address.
    UnknownDestination,
    /// The topology has no path from a switch to the destination.
    NoRoute,
}

/// Event reported to the tap (see [`Network::set_tap`](crate::Network::set_tap)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TapEvent {
    /// The node of `host` handed the frame to its NIC (before filters/faults).
    Sent {
        /// Sending host.
        host: HostId,
    },
    /// The frame was delivered to the node of `host`.
    Delivered {
        /// Receiving host.
        host: HostId,
    },
    /// The frame was dropped.
    Dropped {
        /// Why.
        reason: DropReason,
    },
}

/// Drop counters by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// Random fault loss.
    pub fault_loss: u64,
    /// Dropped by a drop filter.
    pub filter: u64,
    /// Drop-tail at a full egress buffer.
    pub buffer_overflow: u64,
    /// Destination crashed, or discarded from a crashing host's NIC.
    pub host_crashed: u64,
    /// Destination address unknown.
    pub unknown_destination: u64,
    /// No route in the topology.
    pub no_route: u64,
}

impl DropCounts {
    /// Total number of dropped frames.
    pub fn total(&self) -> u64 {
        self.fault_loss
            + self.filter
            + self.buffer_overflow
            + self.host_crashed
            + self.unknown_destination
            + self.no_route
    }

    pub(crate) fn count(&mut self, reason: DropReason) {
        let c = match reason {
            DropReason::FaultLoss => &mut self.fault_loss,
            DropReason::Filter => &mut self.filter,
            DropReason::BufferOverflow => &mut self.buffer_overflow,
            DropReason::HostCrashed => &mut self.host_crashed,
            DropReason::UnknownDestination => &mut self.unknown_destination,
            DropReason::NoRoute => &mut self.no_route,
        };
        *c += 1;
    }
}

/// Network-wide counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Frames handed by nodes to their NICs.
    pub frames_sent: u64,
    /// Frames delivered to nodes (duplicates count separately).
    pub frames_delivered: u64,
    /// Wire bytes of delivered frames.
    pub bytes_delivered: u64,
    /// Dropped frames by reason.
    pub dropped: DropCounts,
    /// Extra copies created by fault duplication.
    pub duplicated: u64,
    /// Frames corrupted by fault injection.
    pub corrupted: u64,
    /// Frames given an extra reordering delay.
    pub reordered: u64,
    /// Events processed (including stale timer events).
    pub events: u64,
}

/// Counters of one directed egress port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames whose transmission started on this port.
    pub tx_frames: u64,
    /// Wire bytes whose transmission started on this port.
    pub tx_bytes: u64,
    /// Total serialization time of the frames counted in `tx_frames` (the time
    /// the port was transmitting, including any frame still in progress).
    pub busy_ns: Nanos,
    /// Largest number of bytes ever waiting in the queues (excluding the frame
    /// being transmitted).
    pub max_queue_bytes: u64,
    /// Frames dropped because the buffer limit would have been exceeded.
    pub overflow_drops: u64,
}

/// Per-host access link statistics (see [`Network::host_stats`](crate::Network::host_stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostLinkStats {
    /// Frames the node handed to its NIC.
    pub sent_frames: u64,
    /// Frames transmitted on the host uplink.
    pub tx_frames: u64,
    /// Wire bytes transmitted on the host uplink.
    pub tx_bytes: u64,
    /// Time the host uplink was transmitting.
    pub tx_busy_ns: Nanos,
    /// Frames delivered to the node.
    pub rx_frames: u64,
    /// Wire bytes delivered to the node.
    pub rx_bytes: u64,
    /// Time the host downlink (switch → host) was transmitting toward the host.
    pub rx_busy_ns: Nanos,
    /// Maximum bytes waiting in the host's NIC queues.
    pub max_nic_queue_bytes: u64,
    /// Maximum bytes waiting in the switch port feeding the host.
    pub max_downlink_queue_bytes: u64,
    /// Frames dropped at the downlink port because of its buffer limit.
    pub downlink_overflow_drops: u64,
}
