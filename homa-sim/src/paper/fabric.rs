//! The simulated datacenter of the SIGCOMM 2018 experiments and the analytic
//! idle-network message time every slowdown is divided by.

use homa_core::wire::DATA_HEADER_LEN;
use homa_core::Config;

use crate::net::{HostId, LinkSpec, Nanos, Topology, TwoTier};

/// Shape and timing of the fabric. [`Fabric::sigcomm18`] is the paper's; every
/// field can be overridden.
///
/// # Example
/// ```
/// use homa_sim::paper::Fabric;
///
/// let f = Fabric::sigcomm18();
/// assert_eq!(f.hosts(), 144);
/// // A full data packet is 1538 bytes on the wire, as in the paper.
/// assert_eq!(f.max_packet_size() + f.packet_overhead as usize, 1538);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Fabric {
    /// Racks (one top-of-rack switch each). Paper: 9.
    pub racks: usize,
    /// Hosts per rack. Paper: 16.
    pub hosts_per_rack: usize,
    /// Aggregation switches; every ToR connects to each. Paper: 4.
    pub aggs: usize,
    /// Host ↔ ToR link rate. Paper: 10 Gbit/s.
    pub host_link_bps: u64,
    /// ToR ↔ aggregation link rate. Paper: 40 Gbit/s.
    pub core_link_bps: u64,
    /// Propagation delay of every link. Paper: 0.
    pub link_delay: Nanos,
    /// Fixed forwarding delay of every switch (after store-and-forward).
    /// Paper: 250 ns.
    pub switch_delay: Nanos,
    /// Host software turnaround at each end: added before a frame reaches
    /// the sender's NIC and after it reaches the receiving host. Paper: 500 ns.
    pub host_delay: Nanos,
    /// NIC think time per transmitted frame. Paper: 500 ns.
    pub nic_delay: Nanos,
    /// Drop-tail limit of every switch egress port; `None` (paper) = large
    /// enough that nothing is dropped.
    pub switch_buffer: Option<u64>,
    /// A full data frame on the wire, all overheads included. Paper: 1538.
    pub max_frame_bytes: u32,
    /// Wire bytes of a frame beyond the Homa packet: Ethernet header, FCS,
    /// preamble and inter-frame gap (38) plus IPv4 (20), Homa's own IP
    /// protocol as in Linux. Default 58.
    pub packet_overhead: u32,
}

impl Fabric {
    /// The topology and host model of the SIGCOMM 2018 simulations (see
    /// `data/REFERENCE.md`): 144 hosts in 9 racks of 16, 4 aggregation
    /// switches, 10/40 Gbit/s, 0.25 µs per switch, 0.5 µs host turnaround and
    /// NIC think time, 1538-byte full frames.
    pub fn sigcomm18() -> Self {
        Fabric {
            racks: 9,
            hosts_per_rack: 16,
            aggs: 4,
            host_link_bps: 10_000_000_000,
            core_link_bps: 40_000_000_000,
            link_delay: 0,
            switch_delay: 250,
            host_delay: 500,
            nic_delay: 500,
            switch_buffer: None,
            max_frame_bytes: 1538,
            packet_overhead: 58,
        }
    }

    /// Number of hosts.
    pub fn hosts(&self) -> usize {
        self.racks * self.hosts_per_rack
    }

    /// The largest Homa packet (header + payload) a frame carries.
    pub fn max_packet_size(&self) -> usize {
        (self.max_frame_bytes - self.packet_overhead) as usize
    }

    /// Payload bytes in a full DATA packet.
    pub fn max_payload(&self) -> u32 {
        (self.max_packet_size() - DATA_HEADER_LEN) as u32
    }

    /// The network topology, delays included. With one rack the ToR is the
    /// only switch (no aggregation layer).
    pub fn topology(&self) -> Topology {
        let host_link = LinkSpec::new(self.host_link_bps, self.link_delay);
        let core_link = LinkSpec::new(self.core_link_bps, self.link_delay);
        let t = if self.racks == 1 {
            Topology::star(self.hosts_per_rack, host_link, self.switch_delay)
        } else {
            Topology::two_tier(&TwoTier {
                racks: self.racks,
                hosts_per_rack: self.hosts_per_rack,
                host_link,
                core_link,
                aggs: self.aggs,
                switch_delay: self.switch_delay,
            })
        };
        // The send-side turnaround and the NIC think time are pure latency
        // in front of the NIC queue, the same for every frame; the
        // receive-side turnaround is latency after the last bit arrives.
        // Every frame's path gets all three, and a host acts only on frames
        // it receives (or on its own clock, for new messages), so moving the
        // send-side delays to the receive side shifts the whole schedule by
        // a constant and changes no time the experiment measures. It saves
        // the simulator one event per frame.
        t.with_rx_delay(2 * self.host_delay + self.nic_delay)
            .with_switch_buffer(self.switch_buffer)
    }

    /// Whether two hosts share a rack (one switch between them instead of three).
    pub fn same_rack(&self, a: HostId, b: HostId) -> bool {
        a.0 / self.hosts_per_rack == b.0 / self.hosts_per_rack
    }

    /// The links a packet crosses from one host to another: host → ToR → host
    /// within a rack, host → ToR → aggregation → ToR → host across racks.
    fn path(&self, same_rack: bool) -> Vec<LinkSpec> {
        let edge = LinkSpec::new(self.host_link_bps, self.link_delay);
        let core = LinkSpec::new(self.core_link_bps, self.link_delay);
        if same_rack || self.racks == 1 {
            vec![edge, edge]
        } else {
            vec![edge, core, core, edge]
        }
    }

    /// The time a `size`-byte message takes from `send` to complete delivery
    /// on an idle network: the paper's analytic ideal, which slowdowns are
    /// divided by.
    ///
    /// The message is cut into packets exactly as the engine cuts it
    /// (`config.max_payload()` bytes each, one DATA header per packet, plus
    /// `packet_overhead` on the wire). The time is: the send-side host and NIC
    /// delays; the frames serialized back to back on the sender's link; one
    /// store-and-forward per later hop with each switch's fixed delay; then
    /// the receive-side host delay. Computed packet by packet so that it is
    /// exact, with the simulator's rounding (`LinkSpec::serialization_ns` per
    /// frame):
    /// * the first and the last link are shared by all packets in order of
    ///   arrival (a frame cannot start before the previous one has left);
    /// * the links between switches are sprayed per packet, so a packet is
    ///   assumed never to wait there behind another of the same message. (On
    ///   one path a short last packet would queue behind the full one before
    ///   it at each 40 Gbit/s hop; sprayed, it may overtake it, and the
    ///   ideal must be the best case.)
    ///
    /// Grants are assumed to arrive in time, as in the paper.
    ///
    /// # Example
    /// ```
    /// use homa_sim::paper::Fabric;
    ///
    /// let f = Fabric::sigcomm18();
    /// let config = f.engine_config_base();
    /// // 100 bytes within a rack: 500+500 ns send side, the 214-byte frame at
    /// // 10 Gbit/s twice (172 ns each, rounded up), one switch (250 ns), 500 ns
    /// // receive side.
    /// assert_eq!(f.ideal_ns(&config, 100, true), 500 + 500 + 172 + 250 + 172 + 500);
    /// ```
    pub fn ideal_ns(&self, config: &Config, size: u64, same_rack: bool) -> Nanos {
        let path = self.path(same_rack);
        let (first, rest) = path.split_first().expect("a path has two links at least");
        let (last, middle) = rest.split_last().expect("a path has two links at least");
        let payload = u64::from(config.max_payload());
        let header = DATA_HEADER_LEN as u64 + u64::from(config.packet_overhead);
        let packets = size.div_ceil(payload).max(1);
        let wire = |i: u64| -> u32 {
            let bytes = if i + 1 == packets {
                size - payload * (packets - 1)
            } else {
                payload
            };
            (header + bytes) as u32
        };
        // When each packet reaches the last switch: the sender's link in
        // order, then the sprayed middle hops without waiting.
        let mut sent = 0;
        let mut at_last: Vec<(Nanos, u32)> = (0..packets)
            .map(|i| {
                let w = wire(i);
                sent += first.serialization_ns(w);
                let mut t = sent + first.delay + self.switch_delay;
                for link in middle {
                    t += link.serialization_ns(w) + link.delay + self.switch_delay;
                }
                (t, w)
            })
            .collect();
        // The last link serves them in order of arrival.
        at_last.sort_by_key(|&(t, _)| t);
        let mut done = 0;
        for (t, w) in at_last {
            done = done.max(t) + last.serialization_ns(w);
        }
        self.host_delay + self.nic_delay + done + last.delay + self.host_delay
    }

    /// An engine config with this fabric's packet size, overhead and link
    /// rate, and limits opened up for simulation (messages up to 2^30 bytes,
    /// unbounded buffering); protocol settings at their defaults. See
    /// [`EngineSetup`](super::EngineSetup) for the paper's settings.
    pub fn engine_config_base(&self) -> Config {
        Config {
            max_packet_size: self.max_packet_size(),
            packet_overhead: self.packet_overhead,
            link_rate_bps: self.host_link_bps,
            max_message_length: 1 << 30,
            max_buffered_bytes: usize::MAX,
            ..Config::default()
        }
    }
}
