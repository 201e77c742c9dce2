//! Network topologies: hosts, switches and directed ports, plus builders for
//! the common shapes (single switch star, two-tier ToR/aggregation fabric).

use super::types::{Endpoint, HostId, LinkSpec, Nanos, PortId, SwitchId};

/// One directed egress port: it transmits from `from` to `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// Transmitting end.
    pub from: Endpoint,
    /// Receiving end.
    pub to: Endpoint,
    /// Rate and propagation delay.
    pub link: LinkSpec,
    /// Drop-tail limit on the bytes waiting in the queues (excluding the frame
    /// being transmitted); `None` = unlimited.
    pub buffer_limit: Option<u64>,
}

/// Parameters of [`Topology::two_tier`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TwoTier {
    /// Number of racks (one top-of-rack switch each).
    pub racks: usize,
    /// Hosts per rack.
    pub hosts_per_rack: usize,
    /// Host ↔ ToR links.
    pub host_link: LinkSpec,
    /// ToR ↔ aggregation links (every ToR is connected to every aggregation switch).
    pub core_link: LinkSpec,
    /// Number of aggregation switches.
    pub aggs: usize,
    /// Fixed forwarding delay of every switch.
    pub switch_delay: Nanos,
}

/// A network topology: host slots, switches and directed ports between them.
///
/// Every host slot has exactly one full-duplex link to a switch (its *uplink*
/// port transmits host → switch, its *downlink* port switch → host). Switches
/// may be connected arbitrarily. Routing (computed by
/// [`Network::new`](crate::Network::new)) follows shortest paths (in hops);
/// when a switch has several equal-cost next hops toward a destination, it
/// picks one uniformly at random for every packet (per-packet spraying).
#[derive(Clone, Debug, Default)]
pub struct Topology {
    pub(crate) switch_delays: Vec<Nanos>,
    pub(crate) ports: Vec<PortInfo>,
    /// (uplink, downlink) per host slot.
    pub(crate) host_ports: Vec<(PortId, PortId)>,
    pub(crate) nic_delay: Nanos,
    pub(crate) rx_delay: Nanos,
}

impl Topology {
    /// An empty topology.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a switch with a fixed forwarding delay (applied after the last bit
    /// of a frame has arrived, before it is enqueued at the egress port).
    pub fn add_switch(&mut self, delay: Nanos) -> SwitchId {
        self.switch_delays.push(delay);
        SwitchId(self.switch_delays.len() - 1)
    }

    /// Adds a host slot attached to `switch` by a link with spec `link`.
    /// Slots are numbered in order of creation; [`Network::add_host`](crate::Network::add_host)
    /// fills them in the same order.
    ///
    /// # Panics
    /// Panics if the switch does not exist, the rate is 0 or there would be
    /// more than 65536 hosts.
    pub fn add_host_slot(&mut self, switch: SwitchId, link: LinkSpec) -> HostId {
        assert!(
            switch.0 < self.switch_delays.len(),
            "unknown switch {switch:?}"
        );
        assert!(link.rate_bps > 0, "link rate must be > 0");
        let h = HostId(self.host_ports.len());
        assert!(h.0 < 65_536, "at most 65536 hosts are supported");
        let up = self.push_port(Endpoint::Host(h), Endpoint::Switch(switch), link);
        let down = self.push_port(Endpoint::Switch(switch), Endpoint::Host(h), link);
        self.host_ports.push((up, down));
        h
    }

    /// Connects two switches with a full-duplex link; returns the ports
    /// `(a → b, b → a)`. Parallel links are allowed (they share load).
    ///
    /// # Panics
    /// Panics if a switch does not exist or the rate is 0.
    pub fn connect(&mut self, a: SwitchId, b: SwitchId, link: LinkSpec) -> (PortId, PortId) {
        assert!(a.0 < self.switch_delays.len(), "unknown switch {a:?}");
        assert!(b.0 < self.switch_delays.len(), "unknown switch {b:?}");
        assert!(link.rate_bps > 0, "link rate must be > 0");
        let ab = self.push_port(Endpoint::Switch(a), Endpoint::Switch(b), link);
        let ba = self.push_port(Endpoint::Switch(b), Endpoint::Switch(a), link);
        (ab, ba)
    }

    fn push_port(&mut self, from: Endpoint, to: Endpoint, link: LinkSpec) -> PortId {
        self.ports.push(PortInfo {
            from,
            to,
            link,
            buffer_limit: None,
        });
        PortId(self.ports.len() - 1)
    }

    /// One switch (`SwitchId(0)`) with `hosts` hosts attached.
    pub fn star(hosts: usize, host_link: LinkSpec, switch_delay: Nanos) -> Self {
        let mut t = Topology::new();
        let s = t.add_switch(switch_delay);
        for _ in 0..hosts {
            t.add_host_slot(s, host_link);
        }
        t
    }

    /// A two-tier fabric: `racks` top-of-rack switches (`SwitchId(r)` for rack
    /// `r`), `aggs` aggregation switches (`SwitchId(racks + a)`), each ToR
    /// connected to every aggregation switch by `core_link`. Host slot `i` is
    /// in rack `i / hosts_per_rack`. Traffic between racks is sprayed per
    /// packet uniformly over the aggregation uplinks of the source ToR.
    pub fn two_tier(p: &TwoTier) -> Self {
        let mut t = Topology::new();
        let tors: Vec<SwitchId> = (0..p.racks).map(|_| t.add_switch(p.switch_delay)).collect();
        let aggs: Vec<SwitchId> = (0..p.aggs).map(|_| t.add_switch(p.switch_delay)).collect();
        for &tor in &tors {
            for _ in 0..p.hosts_per_rack {
                t.add_host_slot(tor, p.host_link);
            }
        }
        for &tor in &tors {
            for &agg in &aggs {
                t.connect(tor, agg, p.core_link);
            }
        }
        t
    }

    /// Sets the NIC think time: every frame handed to a host NIC waits this
    /// long before it is enqueued at the uplink port. Default 0.
    pub fn with_nic_delay(mut self, nic_delay: Nanos) -> Self {
        self.nic_delay = nic_delay;
        self
    }

    /// Sets the receive-side host delay: every frame reaches its node this
    /// long after its last bit arrived (software turnaround on receive; it
    /// delays delivery but does not occupy the link). Default 0.
    pub fn with_rx_delay(mut self, rx_delay: Nanos) -> Self {
        self.rx_delay = rx_delay;
        self
    }

    /// Sets the buffer limit (bytes, drop-tail) of every switch egress port
    /// that exists now. Host NIC queues are not affected.
    pub fn with_switch_buffer(mut self, limit: Option<u64>) -> Self {
        for p in &mut self.ports {
            if matches!(p.from, Endpoint::Switch(_)) {
                p.buffer_limit = limit;
            }
        }
        self
    }

    /// Sets the buffer limit of one egress port (`None` = unlimited).
    pub fn set_port_buffer(&mut self, port: PortId, limit: Option<u64>) {
        self.ports[port.0].buffer_limit = limit;
    }

    /// NIC think time per frame.
    pub fn nic_delay(&self) -> Nanos {
        self.nic_delay
    }

    /// Receive-side host delay per frame.
    pub fn rx_delay(&self) -> Nanos {
        self.rx_delay
    }

    /// Number of host slots.
    pub fn num_hosts(&self) -> usize {
        self.host_ports.len()
    }

    /// Number of switches.
    pub fn num_switches(&self) -> usize {
        self.switch_delays.len()
    }

    /// Forwarding delay of a switch.
    pub fn switch_delay(&self, s: SwitchId) -> Nanos {
        self.switch_delays[s.0]
    }

    /// All directed ports, indexed by [`PortId`].
    pub fn ports(&self) -> &[PortInfo] {
        &self.ports
    }

    /// One port.
    pub fn port(&self, p: PortId) -> &PortInfo {
        &self.ports[p.0]
    }

    /// The host's uplink (NIC egress) port.
    pub fn host_uplink(&self, h: HostId) -> PortId {
        self.host_ports[h.0].0
    }

    /// The switch egress port feeding the host.
    pub fn host_downlink(&self, h: HostId) -> PortId {
        self.host_ports[h.0].1
    }

    /// The switch a host is attached to.
    pub fn host_switch(&self, h: HostId) -> SwitchId {
        match self.ports[self.host_uplink(h).0].to {
            Endpoint::Switch(s) => s,
            Endpoint::Host(_) => unreachable!("host uplinks end at switches"),
        }
    }

    /// All ports transmitting from `from` to `to`, in creation order.
    pub fn ports_between(&self, from: Endpoint, to: Endpoint) -> Vec<PortId> {
        (0..self.ports.len())
            .filter(|&i| self.ports[i].from == from && self.ports[i].to == to)
            .map(PortId)
            .collect()
    }

    /// The first port transmitting from `from` to `to`, if any.
    pub fn find_port(&self, from: Endpoint, to: Endpoint) -> Option<PortId> {
        self.ports
            .iter()
            .position(|p| p.from == from && p.to == to)
            .map(PortId)
    }

    /// Computes the routing table: for switch `s` and destination host `d`,
    /// entry `s * num_hosts + d` lists the equal-cost egress ports.
    pub(crate) fn routes(&self) -> Vec<Box<[u32]>> {
        let ns = self.num_switches();
        let nh = self.num_hosts();
        // incoming switch-to-switch ports per switch, outgoing ones too
        let mut incoming: Vec<Vec<usize>> = vec![Vec::new(); ns];
        let mut outgoing: Vec<Vec<usize>> = vec![Vec::new(); ns];
        for (i, p) in self.ports.iter().enumerate() {
            if let (Endpoint::Switch(a), Endpoint::Switch(b)) = (p.from, p.to) {
                outgoing[a.0].push(i);
                incoming[b.0].push(i);
            }
        }
        let mut routes: Vec<Box<[u32]>> = Vec::with_capacity(ns * nh);
        routes.resize_with(ns * nh, Default::default);
        let mut dist = vec![u32::MAX; ns];
        let mut queue = std::collections::VecDeque::new();
        for d in 0..nh {
            let home = self.host_switch(HostId(d)).0;
            dist.iter_mut().for_each(|x| *x = u32::MAX);
            dist[home] = 0;
            queue.clear();
            queue.push_back(home);
            while let Some(b) = queue.pop_front() {
                for &pi in &incoming[b] {
                    if let Endpoint::Switch(a) = self.ports[pi].from {
                        if dist[a.0] == u32::MAX {
                            dist[a.0] = dist[b] + 1;
                            queue.push_back(a.0);
                        }
                    }
                }
            }
            for s in 0..ns {
                let entry: Box<[u32]> = if s == home {
                    Box::new([self.host_downlink(HostId(d)).0 as u32])
                } else if dist[s] == u32::MAX {
                    Box::new([])
                } else {
                    outgoing[s]
                        .iter()
                        .copied()
                        .filter(|&pi| match self.ports[pi].to {
                            Endpoint::Switch(t) => dist[t.0].wrapping_add(1) == dist[s],
                            Endpoint::Host(_) => false,
                        })
                        .map(|pi| pi as u32)
                        .collect()
                };
                routes[s * nh + d] = entry;
            }
        }
        routes
    }
}
