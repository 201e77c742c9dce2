//! The network model: [`Network`] runs [`Node`]s on a [`Topology`].
//!
//! # Mechanics
//! * Each host has a NIC egress port (the *uplink*) with 8 strict-priority
//!   FIFO queues (priority 7 served first) feeding its access link. Every
//!   frame handed to the NIC first waits the topology's NIC think time
//!   ([`Topology::with_nic_delay`]), if any, before it is enqueued; every frame
//!   a host receives reaches its node [`Topology::with_rx_delay`] after its
//!   last bit arrived.
//! * Switches are store-and-forward: a frame is forwarded only after its last
//!   bit has arrived, plus the switch's fixed delay; it is then enqueued at the
//!   egress port chosen by routing (8 strict-priority queues per port).
//! * A port transmits one frame at a time at the link rate (serialization
//!   `ceil(wire_bytes * 8 * 1e9 / rate_bps)` ns); the frame's last bit reaches
//!   the far end `delay` ns after its serialization ends.
//! * Egress ports may have a buffer limit (drop-tail on the bytes waiting,
//!   excluding the frame being transmitted).
//! * The network routes on the destination IP address only (the port number is
//!   ignored); see [`host_addr`] for the address scheme.
//!
//! # Determinism
//! All randomness comes from generators seeded by [`Network::new`]'s seed
//! (one stream for fault injection, one for per-packet spraying); events with
//! equal times are processed in the order they were scheduled.

mod queue;
mod topology;
mod types;

use std::collections::VecDeque;

use queue::EventQueue;

use bytes::BytesMut;

use crate::rng::Rng;

pub use topology::{PortInfo, Topology, TwoTier};
pub use types::{
    host_addr, host_index, Direction, DropCounts, DropReason, Endpoint, Faults, Frame, HostId,
    HostLinkStats, LinkSpec, Nanos, NetStats, Node, PortId, PortStats, SwitchId, TapEvent,
    HOST_PORT, MAX_PRIORITY, NUM_PRIORITIES,
};

/// Drop filter: returns `true` to drop the frame.
pub type DropFilter = Box<dyn FnMut(&Frame) -> bool>;

/// Observer of frame events (see [`Network::set_tap`]).
pub type Tap = Box<dyn FnMut(Nanos, TapEvent, &Frame)>;

#[derive(Clone, Copy, Debug)]
enum EventKind {
    /// Last bit of `pkt` reached the far end of `port` (plus the switch delay
    /// if the far end is a switch).
    Arrive { port: u32, pkt: u32 },
    /// `port` finished serializing its current frame.
    TxDone { port: u32 },
    /// The NIC think time of `pkt` at `host` elapsed.
    NicEnqueue { host: u32, pkt: u32, epoch: u32 },
    /// Timer of `host` (ignored unless `gen` is current).
    Timer { host: u32, gen: u64 },
}

struct Packet {
    frame: Frame,
    dst: u32,
    /// Extra (reordering) delay added to the next link hop.
    extra_delay: Nanos,
}

#[derive(Default)]
struct PortState {
    queues: [VecDeque<u32>; NUM_PRIORITIES],
    /// Bit `i` set iff `queues[i]` is non-empty.
    nonempty: u8,
    queued_bytes: u64,
    /// The port transmits until then.
    busy_until: Nanos,
    /// A `TxDone` event is scheduled (only while frames wait: a port whose
    /// queue is empty when it finishes needs no event, which saves one event
    /// per hop on a quiet link).
    txdone_pending: bool,
    stats: PortStats,
}

struct HostState<N> {
    node: N,
    crashed: bool,
    epoch: u32,
    timer_at: Option<Nanos>,
    timer_gen: u64,
    sent_frames: u64,
    rx_frames: u64,
    rx_bytes: u64,
    up_faults: Faults,
    down_faults: Faults,
}

/// Simulated network running one [`Node`] per host.
pub struct Network<N: Node> {
    topo: Topology,
    /// Equal-cost egress ports, indexed `switch * num_hosts + dst`.
    routes: Vec<Box<[u32]>>,
    /// Resolved per-port data: receiving end and the delay added on arrival.
    port_to: Vec<Endpoint>,
    now: Nanos,
    seq: u64,
    events: EventQueue<EventKind>,
    ports: Vec<PortState>,
    pkts: Vec<Option<Packet>>,
    free_pkts: Vec<u32>,
    hosts: Vec<HostState<N>>,
    faults: Faults,
    /// Whether any host has down-link faults (fast path check).
    any_down_faults: bool,
    fault_rng: Rng,
    route_rng: Rng,
    filters: Vec<DropFilter>,
    tap: Option<Tap>,
    stats: NetStats,
}

impl<N: Node> Network<N> {
    /// Creates a network with no hosts attached yet. `seed` determines all
    /// random choices (faults, spraying).
    pub fn new(topology: Topology, seed: u64) -> Self {
        let routes = topology.routes();
        let port_to = topology.ports.iter().map(|p| p.to).collect();
        let ports = topology
            .ports
            .iter()
            .map(|_| PortState::default())
            .collect();
        let mut master = Rng::new(seed);
        let fault_rng = master.fork();
        let route_rng = master.fork();
        Network {
            topo: topology,
            routes,
            port_to,
            now: 0,
            seq: 0,
            events: EventQueue::new(),
            ports,
            pkts: Vec::new(),
            free_pkts: Vec::new(),
            hosts: Vec::new(),
            faults: Faults::NONE,
            any_down_faults: false,
            fault_rng,
            route_rng,
            filters: Vec::new(),
            tap: None,
            stats: NetStats::default(),
        }
    }

    /// Attaches `node` to the next free host slot and returns its id. Host `i`
    /// has address [`host_addr`]`(HostId(i))` = `10.(i/256).(i%256).1:4000`.
    /// The node is polled for frames and its timer read immediately.
    ///
    /// # Panics
    /// Panics if all topology slots are taken.
    pub fn add_host(&mut self, node: N) -> HostId {
        let h = self.next_host_id();
        assert!(
            h.0 < self.topo.num_hosts(),
            "topology has only {} host slots",
            self.topo.num_hosts()
        );
        self.hosts.push(HostState {
            node,
            crashed: false,
            epoch: 0,
            timer_at: None,
            timer_gen: 0,
            sent_frames: 0,
            rx_frames: 0,
            rx_bytes: 0,
            up_faults: Faults::NONE,
            down_faults: Faults::NONE,
        });
        self.after_call(h.0);
        h
    }

    /// Like [`Network::add_host`], but builds the node from its id and address.
    pub fn add_host_with(
        &mut self,
        make: impl FnOnce(HostId, std::net::SocketAddr) -> N,
    ) -> HostId {
        let h = self.next_host_id();
        let node = make(h, host_addr(h));
        self.add_host(node)
    }

    /// The id the next [`Network::add_host`] will return.
    pub fn next_host_id(&self) -> HostId {
        HostId(self.hosts.len())
    }

    /// Number of hosts attached so far.
    pub fn num_hosts(&self) -> usize {
        self.hosts.len()
    }

    /// Address of a host (same as the free function [`host_addr`]).
    pub fn host_addr(&self, h: HostId) -> std::net::SocketAddr {
        host_addr(h)
    }

    /// The host an address belongs to, if such a host has been added.
    pub fn host_of(&self, addr: &std::net::SocketAddr) -> Option<HostId> {
        host_index(addr).filter(|h| h.0 < self.hosts.len())
    }

    /// The topology.
    pub fn topology(&self) -> &Topology {
        &self.topo
    }

    /// Current virtual time.
    pub fn now(&self) -> Nanos {
        self.now
    }

    /// Shared access to a host's node.
    pub fn node(&self, h: HostId) -> &N {
        &self.hosts[h.0].node
    }

    /// Whether a host is currently crashed.
    pub fn is_crashed(&self, h: HostId) -> bool {
        self.hosts[h.0].crashed
    }

    /// Runs `f` on a host's node at the current time, then drains the node's
    /// [`Node::poll_frame`] into its NIC and reschedules its timer. On a crashed
    /// host `f` still runs, but nothing is polled and no timer is scheduled.
    pub fn with_node<R>(&mut self, h: HostId, f: impl FnOnce(&mut N, Nanos) -> R) -> R {
        let now = self.now;
        let r = f(&mut self.hosts[h.0].node, now);
        self.after_call(h.0);
        r
    }

    /// Sets the faults applied to every frame once, when its sending host hands
    /// it to the NIC (host → network egress), before any per-link faults.
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// Sets additional faults on one host's access link. [`Direction::Up`]
    /// faults are applied when the host hands a frame to its NIC (after the
    /// global faults); [`Direction::Down`] faults when a frame is enqueued at
    /// the switch port feeding the host (a reordering delay then applies to the
    /// final hop).
    pub fn set_link_faults(&mut self, h: HostId, dir: Direction, faults: Faults) {
        let hs = &mut self.hosts[h.0];
        match dir {
            Direction::Up => hs.up_faults = faults,
            Direction::Down => hs.down_faults = faults,
        }
        self.any_down_faults = self.hosts.iter().any(|h| !h.down_faults.is_none());
    }

    /// Adds a drop filter, consulted once per frame when the sending host
    /// hands it to its NIC (before faults); the frame is dropped if any filter
    /// returns `true`. Filters run in the order they were added; later filters
    /// are not consulted for a frame once one has dropped it.
    pub fn add_drop_filter(&mut self, f: DropFilter) {
        self.filters.push(f);
    }

    /// Removes all drop filters.
    pub fn clear_drop_filters(&mut self) {
        self.filters.clear();
    }

    /// Installs an observer called on every [`TapEvent`] (replaces any previous one).
    pub fn set_tap(&mut self, f: Tap) {
        self.tap = Some(f);
    }

    /// Removes the observer.
    pub fn clear_tap(&mut self) {
        self.tap = None;
    }

    /// Crashes a host: it goes silent. Its pending timer is cancelled, frames
    /// waiting in its NIC (queued or in the NIC think time) are discarded and
    /// counted as [`DropReason::HostCrashed`], and frames arriving for it are
    /// dropped and counted the same way. A frame whose transmission already
    /// started still completes. The node object is kept (readable via
    /// [`Network::node`]) but never called until [`Network::restart`].
    pub fn crash(&mut self, h: HostId) {
        let hs = &mut self.hosts[h.0];
        if hs.crashed {
            return;
        }
        hs.crashed = true;
        hs.epoch = hs.epoch.wrapping_add(1);
        hs.timer_gen += 1;
        hs.timer_at = None;
        let up = self.topo.host_uplink(h).0;
        let port = &mut self.ports[up];
        let mut dropped = Vec::new();
        for q in port.queues.iter_mut().rev() {
            dropped.extend(q.drain(..));
        }
        port.nonempty = 0;
        port.queued_bytes = 0;
        for pkt in dropped {
            self.drop_pkt(pkt, DropReason::HostCrashed);
        }
    }

    /// Replaces a host's node with `node` and brings the host back up (crashing
    /// it first if it was running). The new node is polled and its timer read.
    pub fn restart(&mut self, h: HostId, node: N) {
        self.crash(h);
        let hs = &mut self.hosts[h.0];
        hs.node = node;
        hs.crashed = false;
        self.after_call(h.0);
    }

    /// Network-wide counters.
    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    /// Counters of one directed port.
    pub fn port_stats(&self, p: PortId) -> &PortStats {
        &self.ports[p.0].stats
    }

    /// Bytes currently waiting in a port's queues (excluding the frame being
    /// transmitted).
    pub fn queue_bytes(&self, p: PortId) -> u64 {
        self.ports[p.0].queued_bytes
    }

    /// Bytes currently waiting in a host's NIC queues.
    pub fn nic_queue_bytes(&self, h: HostId) -> u64 {
        self.queue_bytes(self.topo.host_uplink(h))
    }

    /// Access link statistics of one host.
    pub fn host_stats(&self, h: HostId) -> HostLinkStats {
        let hs = &self.hosts[h.0];
        let up = &self.ports[self.topo.host_uplink(h).0].stats;
        let down = &self.ports[self.topo.host_downlink(h).0].stats;
        HostLinkStats {
            sent_frames: hs.sent_frames,
            tx_frames: up.tx_frames,
            tx_bytes: up.tx_bytes,
            tx_busy_ns: up.busy_ns,
            rx_frames: hs.rx_frames,
            rx_bytes: hs.rx_bytes,
            rx_busy_ns: down.busy_ns,
            max_nic_queue_bytes: up.max_queue_bytes,
            max_downlink_queue_bytes: down.max_queue_bytes,
            downlink_overflow_drops: down.overflow_drops,
        }
    }

    /// Time of the next pending event, if any (may be a stale timer event).
    pub fn next_event_time(&self) -> Option<Nanos> {
        self.events.peek_key().map(|k| (k >> 64) as Nanos)
    }

    /// Processes one event. Returns `false` if there were no events left.
    pub fn step(&mut self) -> bool {
        let Some((key, kind)) = self.events.pop() else {
            return false;
        };
        let time = (key >> 64) as Nanos;
        debug_assert!(time >= self.now);
        self.now = time;
        self.stats.events += 1;
        match kind {
            EventKind::Arrive { port, pkt } => self.on_arrive(port as usize, pkt),
            EventKind::TxDone { port } => {
                let ps = &mut self.ports[port as usize];
                ps.txdone_pending = false;
                if self.now < ps.busy_until {
                    // A frame arriving at the very end of the previous one
                    // started it before this event ran: wait for that one.
                    if ps.nonempty != 0 {
                        ps.txdone_pending = true;
                        let at = ps.busy_until;
                        self.schedule(at, EventKind::TxDone { port });
                    }
                } else {
                    self.try_start(port as usize);
                }
            }
            EventKind::NicEnqueue { host, pkt, epoch } => {
                let h = host as usize;
                if self.hosts[h].epoch == epoch {
                    let up = self.topo.host_ports[h].0 .0;
                    self.enqueue(up, pkt);
                } else {
                    self.drop_pkt(pkt, DropReason::HostCrashed);
                }
            }
            EventKind::Timer { host, gen } => {
                let h = host as usize;
                let hs = &mut self.hosts[h];
                if hs.timer_gen == gen && !hs.crashed {
                    hs.timer_at = None;
                    if hs.node.next_timer().is_some_and(|t| t <= self.now) {
                        hs.node.on_timer(self.now);
                    }
                    self.after_call(h);
                }
            }
        }
        true
    }

    /// Processes all events with time `<= t`, then sets the time to `t` (if
    /// it is later than the current time).
    pub fn run_until(&mut self, t: Nanos) {
        while self
            .events
            .peek_key()
            .is_some_and(|k| (k >> 64) as Nanos <= t)
        {
            self.step();
        }
        self.now = self.now.max(t);
    }

    /// Processes events in order while `cond(self)` holds and the next event is
    /// at or before `limit`. Returns `true` if it stopped because `cond`
    /// became false (checked before every event); otherwise (limit reached or
    /// no events left) the time is advanced to `limit` and `false` returned.
    pub fn run_while(&mut self, limit: Nanos, mut cond: impl FnMut(&Self) -> bool) -> bool {
        loop {
            if !cond(self) {
                return true;
            }
            match self.events.peek_key().map(|k| (k >> 64) as Nanos) {
                Some(e) if e <= limit => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(limit);
                    return false;
                }
            }
        }
    }

    // ----- internals -----

    fn schedule(&mut self, time: Nanos, kind: EventKind) {
        let seq = self.seq;
        self.seq += 1;
        self.events
            .push((u128::from(time) << 64) | u128::from(seq), kind);
    }

    fn alloc(&mut self, p: Packet) -> u32 {
        match self.free_pkts.pop() {
            Some(i) => {
                self.pkts[i as usize] = Some(p);
                i
            }
            None => {
                self.pkts.push(Some(p));
                (self.pkts.len() - 1) as u32
            }
        }
    }

    fn take(&mut self, id: u32) -> Packet {
        self.free_pkts.push(id);
        self.pkts[id as usize].take().expect("live packet")
    }

    fn pkt(&self, id: u32) -> &Packet {
        self.pkts[id as usize].as_ref().expect("live packet")
    }

    fn pkt_mut(&mut self, id: u32) -> &mut Packet {
        self.pkts[id as usize].as_mut().expect("live packet")
    }

    fn tap(&mut self, event: TapEvent, frame: &Frame) {
        if let Some(tap) = self.tap.as_mut() {
            tap(self.now, event, frame);
        }
    }

    fn drop_frame(&mut self, frame: &Frame, reason: DropReason) {
        self.stats.dropped.count(reason);
        self.tap(TapEvent::Dropped { reason }, frame);
    }

    fn drop_pkt(&mut self, id: u32, reason: DropReason) {
        let p = self.take(id);
        self.drop_frame(&p.frame, reason);
    }

    /// After any call into a node: drain its frames, reschedule its timer.
    fn after_call(&mut self, h: usize) {
        if self.hosts[h].crashed {
            return;
        }
        let now = self.now;
        while let Some(frame) = self.hosts[h].node.poll_frame(now) {
            self.handoff(h, frame);
        }
        let hs = &mut self.hosts[h];
        let want = hs.node.next_timer().map(|t| t.max(now));
        if want != hs.timer_at {
            hs.timer_gen += 1;
            hs.timer_at = want;
            if let Some(t) = want {
                let gen = hs.timer_gen;
                self.schedule(
                    t,
                    EventKind::Timer {
                        host: h as u32,
                        gen,
                    },
                );
            }
        }
    }

    /// A node handed `frame` to its NIC.
    fn handoff(&mut self, h: usize, frame: Frame) {
        self.stats.frames_sent += 1;
        self.hosts[h].sent_frames += 1;
        self.tap(TapEvent::Sent { host: HostId(h) }, &frame);
        if !self.filters.is_empty() && self.filters.iter_mut().any(|f| f(&frame)) {
            self.drop_frame(&frame, DropReason::Filter);
            return;
        }
        let Some(dst) = self.host_of(&frame.dst) else {
            self.drop_frame(&frame, DropReason::UnknownDestination);
            return;
        };
        let pkt = self.alloc(Packet {
            frame,
            dst: dst.0 as u32,
            extra_delay: 0,
        });
        let global = self.faults;
        let up = self.hosts[h].up_faults;
        let (a, b) = self.apply_faults(&global, pkt);
        for p in [a, b].into_iter().flatten() {
            let (c, d) = self.apply_faults(&up, p);
            for q in [c, d].into_iter().flatten() {
                self.nic_accept(h, q);
            }
        }
    }

    fn nic_accept(&mut self, h: usize, pkt: u32) {
        let nic_delay = self.topo.nic_delay;
        if nic_delay == 0 {
            let up = self.topo.host_ports[h].0 .0;
            self.enqueue(up, pkt);
        } else {
            let epoch = self.hosts[h].epoch;
            self.schedule(
                self.now + nic_delay,
                EventKind::NicEnqueue {
                    host: h as u32,
                    pkt,
                    epoch,
                },
            );
        }
    }

    /// Applies `faults` to `pkt`; returns the surviving copies.
    fn apply_faults(&mut self, faults: &Faults, pkt: u32) -> (Option<u32>, Option<u32>) {
        if faults.is_none() {
            return (Some(pkt), None);
        }
        if self.fault_rng.chance(faults.loss) {
            self.drop_pkt(pkt, DropReason::FaultLoss);
            return (None, None);
        }
        let dup = if self.fault_rng.chance(faults.duplicate) {
            let p = self.pkt(pkt);
            let copy = Packet {
                frame: p.frame.clone(),
                dst: p.dst,
                extra_delay: p.extra_delay,
            };
            self.stats.duplicated += 1;
            Some(self.alloc(copy))
        } else {
            None
        };
        for id in [Some(pkt), dup].into_iter().flatten() {
            if self.fault_rng.chance(faults.corrupt) && !self.pkt(id).frame.data.is_empty() {
                let len = self.pkt(id).frame.data.len() as u64;
                let idx = self.fault_rng.below(len) as usize;
                let flip = 1 + self.fault_rng.below(255) as u8;
                let p = self.pkt_mut(id);
                let mut data = BytesMut::from(&p.frame.data[..]);
                data[idx] ^= flip;
                p.frame.data = data.freeze();
                self.stats.corrupted += 1;
            }
            if self.fault_rng.chance(faults.reorder) {
                let extra = self.fault_rng.range_inclusive(0, faults.reorder_delay);
                self.pkt_mut(id).extra_delay += extra;
                self.stats.reordered += 1;
            }
        }
        (Some(pkt), dup)
    }

    /// Enqueues `pkt` at egress port `port` (drop-tail), starting transmission
    /// if the port is idle.
    fn enqueue(&mut self, port: usize, pkt: u32) {
        let (prio, wire) = {
            let f = &self.pkt(pkt).frame;
            (
                f.priority.min(MAX_PRIORITY) as usize,
                u64::from(f.wire_bytes),
            )
        };
        let ps = &mut self.ports[port];
        if let Some(limit) = self.topo.ports[port].buffer_limit {
            if ps.queued_bytes + wire > limit {
                ps.stats.overflow_drops += 1;
                self.drop_pkt(pkt, DropReason::BufferOverflow);
                return;
            }
        }
        ps.queues[prio].push_back(pkt);
        ps.nonempty |= 1 << prio;
        ps.queued_bytes += wire;
        ps.stats.max_queue_bytes = ps.stats.max_queue_bytes.max(ps.queued_bytes);
        if self.now >= ps.busy_until {
            self.try_start(port);
        } else if !ps.txdone_pending {
            ps.txdone_pending = true;
            let at = ps.busy_until;
            self.schedule(at, EventKind::TxDone { port: port as u32 });
        }
    }

    /// Starts transmitting the highest-priority queued frame if the port is idle.
    fn try_start(&mut self, port: usize) {
        let ps = &mut self.ports[port];
        if self.now < ps.busy_until || ps.nonempty == 0 {
            return;
        }
        let prio = 7 - ps.nonempty.leading_zeros() as usize;
        let q = &mut ps.queues[prio];
        let pkt = q.pop_front().expect("non-empty queue");
        if q.is_empty() {
            ps.nonempty &= !(1 << prio);
        }
        let p = self.pkts[pkt as usize].as_mut().expect("live packet");
        let wire = p.frame.wire_bytes;
        let extra = std::mem::take(&mut p.extra_delay);
        ps.queued_bytes -= u64::from(wire);
        let info = &self.topo.ports[port];
        let ser = info.link.serialization_ns(wire);
        ps.busy_until = self.now + ser;
        let more = ps.nonempty != 0 && !ps.txdone_pending;
        if more {
            ps.txdone_pending = true;
        }
        ps.stats.tx_frames += 1;
        ps.stats.tx_bytes += u64::from(wire);
        ps.stats.busy_ns += ser;
        let mut arrive = self.now + ser + info.link.delay + extra;
        match self.port_to[port] {
            Endpoint::Switch(s) => arrive += self.topo.switch_delays[s.0],
            Endpoint::Host(_) => arrive += self.topo.rx_delay,
        }
        if more {
            let done = self.now + ser;
            self.schedule(done, EventKind::TxDone { port: port as u32 });
        }
        self.schedule(
            arrive,
            EventKind::Arrive {
                port: port as u32,
                pkt,
            },
        );
    }

    fn on_arrive(&mut self, port: usize, pkt: u32) {
        match self.port_to[port] {
            Endpoint::Host(h) => self.deliver(h.0, pkt),
            Endpoint::Switch(s) => {
                let dst = self.pkt(pkt).dst as usize;
                let nh = self.topo.num_hosts();
                let cands = &self.routes[s.0 * nh + dst];
                let out = match cands.len() {
                    0 => {
                        self.drop_pkt(pkt, DropReason::NoRoute);
                        return;
                    }
                    1 => cands[0],
                    n => cands[self.route_rng.below(n as u64) as usize],
                } as usize;
                if self.any_down_faults {
                    if let Endpoint::Host(h) = self.port_to[out] {
                        let faults = self.hosts[h.0].down_faults;
                        let (a, b) = self.apply_faults(&faults, pkt);
                        for p in [a, b].into_iter().flatten() {
                            self.enqueue(out, p);
                        }
                        return;
                    }
                }
                self.enqueue(out, pkt);
            }
        }
    }

    fn deliver(&mut self, h: usize, pkt: u32) {
        let p = self.take(pkt);
        if self.hosts[h].crashed {
            self.drop_frame(&p.frame, DropReason::HostCrashed);
            return;
        }
        let wire = u64::from(p.frame.wire_bytes);
        self.stats.frames_delivered += 1;
        self.stats.bytes_delivered += wire;
        let hs = &mut self.hosts[h];
        hs.rx_frames += 1;
        hs.rx_bytes += wire;
        self.tap(TapEvent::Delivered { host: HostId(h) }, &p.frame);
        self.hosts[h].node.on_frame(self.now, p.frame);
        self.after_call(h);
    }
}
