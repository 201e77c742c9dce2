//! One DPDK port: its queues and mempool, Ethernet/IPv4 framing of Homa
//! packets, ARP, and the port's statistics. Used by the polling thread; it
//! moves packets and decides nothing about the protocol.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use homa_core::Transmit;

use crate::eal::Dpdk;
use crate::error::Error;
use crate::ffi::{self, Mbuf, Mempool};
use crate::stats::{Counters, PortStats};
use crate::wire::{self, Arp, Frame, MacAddr, VlanTag, ARP_REPLY, ARP_REQUEST, IPV4_LEN};

/// Which DPDK port to use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Device {
    /// A device by name: a vdev given to EAL (`net_af_packet0`,
    /// `net_memif0`) or a PCI address (`0000:01:00.0`).
    Name(String),
    /// A port id, e.g. from [`Dpdk::ring_pair`].
    PortId(u16),
}

/// Configuration of one [`Port`].
///
/// ```
/// use homa_dpdk::{Device, PortConfig};
/// let mut cfg = PortConfig::new(Device::Name("net_memif0".into()), "10.0.0.1".parse().unwrap(), 4000);
/// cfg.static_neighbors.push(("10.0.0.2".parse().unwrap(), "02:00:00:00:00:02".parse().unwrap()));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PortConfig {
    /// The device.
    pub device: Device,
    /// Our IPv4 address on this port.
    pub ip: Ipv4Addr,
    /// The Homa port of the endpoint on this DPDK port (1–32767 to serve
    /// requests). Packets for other Homa ports are counted and dropped.
    pub homa_port: u16,
    /// Prefix length of the local subnet. Default 24.
    pub prefix_len: u8,
    /// Router for destinations outside the subnet; `None` treats every
    /// destination as a neighbour.
    pub gateway: Option<Ipv4Addr>,
    /// Use this MAC address instead of the port's own.
    pub mac: Option<MacAddr>,
    /// IP MTU. Default 1500: Homa packets of up to 1480 bytes.
    pub mtu: u16,
    /// Tag sent frames with 802.1Q (the packet's priority goes into PCP as
    /// well as DSCP). Default `None`.
    pub vlan: Option<VlanTag>,
    /// Neighbours that need no ARP.
    pub static_neighbors: Vec<(Ipv4Addr, MacAddr)>,
    /// Mbufs in the port's pool. Default 4095.
    pub mbufs: u32,
    /// Receive and transmit descriptors. Default 1024.
    pub descriptors: u16,
    /// Link rate for the engine's pacer; `None` takes the link's reported
    /// speed (10 Gbit/s if it reports none).
    pub link_rate_bps: Option<u64>,
    /// Resend an unanswered ARP request after this long. Default 50 ms.
    pub arp_retry: Duration,
    /// ARP requests per neighbour before its waiting packets are dropped
    /// (the engine retransmits them later, which starts over). Default 5.
    pub arp_attempts: u32,
    /// Packets held per unresolved neighbour. Default 256.
    pub arp_queue: usize,
    /// Wait up to this long in [`Port::open`] for the link to come up (a
    /// memif client's link is up once it has connected to the server; a
    /// link still down is not an error). Default `None`: do not wait.
    pub link_wait: Option<Duration>,
    /// Fault injection for tests: drop every `n`th Homa packet received
    /// (counted in [`PortStats::rx_injected_drops`]), to exercise the
    /// engine's loss recovery. Default `None`.
    pub drop_every: Option<u32>,
}

impl PortConfig {
    /// Defaults for `device`, with our address `ip` and Homa port.
    pub fn new(device: Device, ip: Ipv4Addr, homa_port: u16) -> Self {
        PortConfig {
            device,
            ip,
            homa_port,
            prefix_len: 24,
            gateway: None,
            mac: None,
            mtu: 1500,
            vlan: None,
            static_neighbors: Vec::new(),
            mbufs: 4095,
            descriptors: 1024,
            link_rate_bps: None,
            arp_retry: Duration::from_millis(50),
            arp_attempts: 5,
            arp_queue: 256,
            drop_every: None,
            link_wait: None,
        }
    }
}

/// Packets waiting for a neighbour's MAC address.
struct Unresolved {
    packets: VecDeque<(u8, Vec<u8>)>,
    attempts: u32,
    next_request: Instant,
}

/// Most transmit mbufs kept for retry when the queue is full.
const TX_BACKLOG: usize = 1024;
/// Frames taken per receive burst.
const RX_BURST: usize = 32;
/// Mbuf data room: DPDK's default (2048 bytes plus 128 of headroom).
const DATA_ROOM: u16 = 2048 + 128;

/// An open DPDK port with our addresses on it. Closed when dropped.
pub struct Port {
    id: u16,
    mac: MacAddr,
    cfg: PortConfig,
    mask: u32,
    counters: Arc<Counters>,
    neighbors: HashMap<Ipv4Addr, MacAddr>,
    unresolved: HashMap<Ipv4Addr, Unresolved>,
    rx: Vec<Mbuf>,
    tx: Vec<Mbuf>,
    ident: u16,
    /// Homa packets received, for `drop_every`.
    homa_seen: u32,
    // Fields drop in declaration order, after `Drop::drop`: the mbufs in
    // `rx` and `tx` go back to `pool` before it can be freed, and `dpdk`,
    // possibly the last handle on the EAL, is cleaned up last of all.
    pool: Arc<Mempool>,
    _dpdk: Arc<Dpdk>,
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("id", &self.id)
            .field("mac", &self.mac.to_string())
            .field("ip", &self.cfg.ip)
            .finish_non_exhaustive()
    }
}

impl Port {
    /// Open and start the port: one receive and one transmit queue, a
    /// mempool of its own, promiscuous mode.
    ///
    /// # Errors
    /// [`Error::NoSuchPort`] for an unknown device, [`Error::Config`] for
    /// an MTU that a Homa packet does not fit, [`Error::Dpdk`] if DPDK
    /// refuses the setup.
    pub fn open(dpdk: &Arc<Dpdk>, cfg: PortConfig) -> Result<Port, Error> {
        if usize::from(cfg.mtu) < IPV4_LEN + 100 || cfg.mtu > 9000 {
            return Err(Error::Config(format!("MTU {} out of range", cfg.mtu)));
        }
        if cfg.prefix_len > 32 {
            return Err(Error::Config(format!("prefix length {}", cfg.prefix_len)));
        }
        let id = match &cfg.device {
            Device::Name(n) => ffi::port_by_name(n).map_err(|_| Error::NoSuchPort(n.clone()))?,
            Device::PortId(p) => {
                if !ffi::port_valid(*p) {
                    return Err(Error::NoSuchPort(format!("port {p}")));
                }
                *p
            }
        };
        let data_room = DATA_ROOM.max(cfg.mtu + 128 + 64);
        let pool = Mempool::create(&dpdk.unique_name("homa_pool"), cfg.mbufs, 256, data_room)
            .map_err(|e| Error::dpdk("rte_pktmbuf_pool_create", e))?;
        let pool = Arc::new(pool);
        // The pool is freed by `Dpdk`, after every port is closed.
        dpdk.resources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pools
            .push(pool.clone());
        ffi::port_setup(id, &pool, cfg.descriptors, cfg.descriptors, cfg.mtu)
            .map_err(|e| Error::dpdk("port setup", e))?;
        let mac = match cfg.mac {
            Some(m) => m,
            None => match ffi::port_mac(id) {
                // Some vdevs (ports made from rings) have no address: make
                // up a locally administered one, unique per process and port.
                Ok([0, 0, 0, 0, 0, 0]) => {
                    let pid = std::process::id().to_be_bytes();
                    let [hi, lo] = id.to_be_bytes();
                    MacAddr([0x02, pid[1], pid[2], pid[3], hi, lo])
                }
                Ok(m) => MacAddr(m),
                Err(e) => {
                    ffi::port_close(id);
                    return Err(Error::dpdk("rte_eth_macaddr_get", e));
                }
            },
        };
        let neighbors = cfg.static_neighbors.iter().copied().collect();
        let mask = if cfg.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(cfg.prefix_len))
        };
        tracing::info!(port = id, %mac, ip = %cfg.ip, "DPDK port started");
        let link_wait = cfg.link_wait;
        let port = Port {
            _dpdk: dpdk.clone(),
            id,
            pool,
            mac,
            cfg,
            mask,
            counters: Arc::new(Counters::default()),
            neighbors,
            unresolved: HashMap::new(),
            rx: Vec::with_capacity(RX_BURST),
            tx: Vec::with_capacity(256),
            ident: 0,
            homa_seen: 0,
        };
        if let Some(wait) = link_wait {
            if !port.wait_link_up(wait) {
                tracing::warn!(port = id, "link still down after {wait:?}");
            }
        }
        Ok(port)
    }

    /// The DPDK port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Our MAC address on this port.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The address of the Homa endpoint on this port (IP and Homa port).
    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.cfg.ip, self.cfg.homa_port))
    }

    /// Largest Homa packet: the MTU less the IPv4 header.
    pub fn max_packet_size(&self) -> usize {
        usize::from(self.cfg.mtu) - IPV4_LEN
    }

    /// Rate for the engine's pacer: configured, else the link's speed,
    /// else 10 Gbit/s.
    pub fn link_rate_bps(&self) -> u64 {
        if let Some(r) = self.cfg.link_rate_bps {
            return r;
        }
        match ffi::port_link(self.id) {
            Ok((_, mbps)) if mbps > 0 => u64::from(mbps) * 1_000_000,
            _ => 10_000_000_000,
        }
    }

    /// Whether the link is up.
    pub fn link_up(&self) -> bool {
        matches!(ffi::port_link(self.id), Ok((true, _)))
    }

    /// Wait up to `timeout` for the link to come up (a memif port is up
    /// once its peer connected). Returns whether it is up.
    pub fn wait_link_up(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.link_up() {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Add or replace a static neighbour entry.
    pub fn add_neighbor(&mut self, ip: Ipv4Addr, mac: MacAddr) {
        self.neighbors.insert(ip, mac);
    }

    /// The MAC address ARP (or configuration) gave for `ip`, if any.
    pub fn neighbor(&self, ip: Ipv4Addr) -> Option<MacAddr> {
        self.neighbors.get(&ip).copied()
    }

    /// A snapshot of the port's counters (the datapath's and the NIC's).
    pub fn stats(&self) -> PortStats {
        stats_of(self.id, &self.counters)
    }

    /// Mbufs of this port's pool in use (in queues, in flight, or leaked):
    /// 0 on an idle port of a virtual device.
    pub fn mbufs_in_use(&self) -> u32 {
        self.pool.in_use()
    }

    pub(crate) fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Queue a raw Ethernet frame for sending, as it is (diagnostics and
    /// tests: the bad-frame tests inject frames this way). Sent by the next
    /// [`flush`](Self::flush). Returns `false` if it was dropped (no mbuf,
    /// too long).
    pub fn send_raw(&mut self, frame: &[u8]) -> bool {
        let Ok(len) = u16::try_from(frame.len()) else {
            Counters::add(&self.counters.tx_too_big, 1);
            return false;
        };
        let Some(mut m) = self.pool.alloc() else {
            Counters::add(&self.counters.tx_no_mbuf, 1);
            return false;
        };
        let Some(buf) = m.append(len) else {
            Counters::add(&self.counters.tx_too_big, 1);
            return false; // `m` is freed here
        };
        buf.copy_from_slice(frame);
        self.push_tx(m, u64::from(len));
        true
    }

    fn push_tx(&mut self, m: Mbuf, len: u64) {
        if self.tx.len() >= TX_BACKLOG {
            Counters::add(&self.counters.tx_queue_full, 1);
            return; // `m` is freed here
        }
        Counters::add(&self.counters.tx_bytes, len);
        self.tx.push(m);
    }

    /// Frame a Homa packet from the engine and queue it (sent by the next
    /// [`flush`](Self::flush)); a packet for a neighbour not yet resolved
    /// waits for ARP.
    pub fn send(&mut self, now: Instant, t: &Transmit) {
        let SocketAddr::V4(dest) = t.destination else {
            Counters::add(&self.counters.tx_unroutable, 1);
            return;
        };
        if t.len() > self.max_packet_size() {
            Counters::add(&self.counters.tx_too_big, 1);
            return;
        }
        let hop = self.next_hop(*dest.ip());
        match self.neighbors.get(&hop).copied() {
            Some(mac) => self.frame_homa(mac, *dest.ip(), t.priority, &[t.header(), &t.payload]),
            None => {
                let mut packet = Vec::with_capacity(t.len());
                packet.extend_from_slice(t.header());
                packet.extend_from_slice(&t.payload);
                self.hold(now, hop, *dest.ip(), t.priority, packet);
            }
        }
    }

    fn next_hop(&self, ip: Ipv4Addr) -> Ipv4Addr {
        let same = (u32::from(ip) & self.mask) == (u32::from(self.cfg.ip) & self.mask);
        match self.cfg.gateway {
            Some(gw) if !same => gw,
            _ => ip,
        }
    }

    fn frame_homa(&mut self, dst: MacAddr, dst_ip: Ipv4Addr, priority: u8, parts: &[&[u8]]) {
        let payload_len: usize = parts.iter().map(|p| p.len()).sum();
        let hl = wire::frame_header_len(self.cfg.vlan);
        let frame_len = (hl + payload_len).max(wire::MIN_FRAME);
        let Ok(len) = u16::try_from(frame_len) else {
            Counters::add(&self.counters.tx_too_big, 1);
            return;
        };
        let Some(mut m) = self.pool.alloc() else {
            Counters::add(&self.counters.tx_no_mbuf, 1);
            return;
        };
        let Some(buf) = m.append(len) else {
            Counters::add(&self.counters.tx_too_big, 1);
            return;
        };
        self.ident = self.ident.wrapping_add(1);
        let mut off = wire::write_headers(
            buf,
            dst,
            self.mac,
            self.cfg.vlan,
            priority,
            self.cfg.ip,
            dst_ip,
            self.ident,
            payload_len,
        );
        for p in parts {
            buf[off..off + p.len()].copy_from_slice(p);
            off += p.len();
        }
        buf[off..].fill(0);
        Counters::add(&self.counters.tx_homa, 1);
        self.push_tx(m, u64::from(len));
    }

    fn hold(&mut self, now: Instant, hop: Ipv4Addr, dst_ip: Ipv4Addr, prio: u8, packet: Vec<u8>) {
        let limit = self.cfg.arp_queue;
        let entry = self.unresolved.entry(hop).or_insert_with(|| Unresolved {
            packets: VecDeque::new(),
            attempts: 0,
            next_request: now,
        });
        if entry.packets.len() >= limit {
            Counters::add(&self.counters.arp_drops, 1);
            return;
        }
        // The final destination rides along with the packet's priority:
        // both are needed to frame it once the next hop's MAC is known.
        let mut held = Vec::with_capacity(4 + packet.len());
        held.extend_from_slice(&dst_ip.octets());
        held.extend_from_slice(&packet);
        entry.packets.push_back((prio, held));
        self.poll_arp(now);
    }

    /// Send ARP requests that are due, and give up on neighbours that did
    /// not answer. Call it every round.
    pub fn poll_arp(&mut self, now: Instant) {
        if self.unresolved.is_empty() {
            return;
        }
        let mut requests = Vec::new();
        let mut dropped = 0u64;
        let attempts = self.cfg.arp_attempts;
        let retry = self.cfg.arp_retry;
        self.unresolved.retain(|ip, u| {
            if u.next_request > now {
                return true;
            }
            if u.attempts >= attempts {
                dropped += u.packets.len() as u64;
                tracing::debug!(%ip, "neighbour did not answer ARP");
                return false;
            }
            u.attempts += 1;
            u.next_request = now + retry;
            requests.push(*ip);
            true
        });
        Counters::add(&self.counters.arp_drops, dropped);
        for ip in requests {
            let req = Arp {
                op: ARP_REQUEST,
                sha: self.mac,
                spa: self.cfg.ip,
                tha: MacAddr::default(),
                tpa: ip,
            };
            let f = req.frame(MacAddr::BROADCAST, self.mac, self.cfg.vlan);
            if self.send_raw(&f) {
                Counters::add(&self.counters.arp_requests_tx, 1);
            }
        }
    }

    fn learned(&mut self, ip: Ipv4Addr, mac: MacAddr) {
        if ip.is_unspecified() || mac.is_multicast() {
            return;
        }
        let known = self.neighbors.insert(ip, mac);
        if known != Some(mac) {
            tracing::debug!(%ip, %mac, "neighbour resolved");
            Counters::add(&self.counters.arp_resolved, 1);
        }
        if let Some(u) = self.unresolved.remove(&ip) {
            for (prio, held) in u.packets {
                if held.len() < 4 {
                    continue;
                }
                let dst_ip = Ipv4Addr::new(held[0], held[1], held[2], held[3]);
                self.frame_homa(mac, dst_ip, prio, &[&held[4..]]);
            }
        }
    }

    /// Receive a burst: Homa packets for us go to `deliver` (sender's
    /// address, packet), ARP is answered and learned from, everything else
    /// is counted and dropped. Returns how many frames arrived.
    pub fn recv(&mut self, deliver: &mut dyn FnMut(SocketAddr, Bytes)) -> usize {
        let mut rx = std::mem::take(&mut self.rx);
        let n = ffi::rx_burst(self.id, &mut rx, RX_BURST);
        for m in rx.drain(..) {
            // `m` is freed at the end of each iteration, whatever happened.
            self.frame_in(&m, deliver);
        }
        self.rx = rx;
        n
    }

    fn frame_in(&mut self, m: &Mbuf, deliver: &mut dyn FnMut(SocketAddr, Bytes)) {
        let c = &self.counters;
        let (data, segs) = m.data();
        Counters::add(&c.rx_frames, 1);
        Counters::add(&c.rx_bytes, data.len() as u64);
        if segs > 1 {
            Counters::add(&c.rx_multi_segment, 1);
            return;
        }
        match wire::parse(data, self.mac) {
            Ok(Frame::Homa { src, dst, packet }) => {
                if dst != self.cfg.ip {
                    Counters::add(&c.rx_not_for_us, 1);
                } else if packet.len() < 4 {
                    Counters::add(&c.rx_truncated, 1);
                } else if u16::from_be_bytes([packet[2], packet[3]]) != self.cfg.homa_port {
                    Counters::add(&c.rx_wrong_port, 1);
                } else if self.cfg.drop_every.is_some_and(|n| {
                    self.homa_seen = self.homa_seen.wrapping_add(1);
                    n > 0 && self.homa_seen.is_multiple_of(n)
                }) {
                    Counters::add(&c.rx_injected_drops, 1);
                } else {
                    Counters::add(&c.rx_homa, 1);
                    let sport = u16::from_be_bytes([packet[0], packet[1]]);
                    let from = SocketAddr::V4(SocketAddrV4::new(src, sport));
                    deliver(from, Bytes::copy_from_slice(packet));
                }
            }
            Ok(Frame::Arp(a)) => self.arp_in(a),
            Err(d) => {
                let counter = match d {
                    wire::Drop::Truncated => &c.rx_truncated,
                    wire::Drop::Ethertype => &c.rx_bad_ethertype,
                    wire::Drop::Protocol => &c.rx_bad_protocol,
                    wire::Drop::IpHeader => &c.rx_bad_ip_header,
                    wire::Drop::Checksum => &c.rx_bad_checksum,
                    wire::Drop::Fragment => &c.rx_fragments,
                    wire::Drop::NotForUs => &c.rx_not_for_us,
                };
                Counters::add(counter, 1);
            }
        }
    }

    fn arp_in(&mut self, a: Arp) {
        if a.tpa != self.cfg.ip {
            Counters::add(&self.counters.rx_not_for_us, 1);
            return;
        }
        match a.op {
            ARP_REQUEST => {
                Counters::add(&self.counters.arp_requests_rx, 1);
                // Whoever asks for us is about to talk to us: remember them.
                self.learned(a.spa, a.sha);
                let reply = Arp {
                    op: ARP_REPLY,
                    sha: self.mac,
                    spa: self.cfg.ip,
                    tha: a.sha,
                    tpa: a.spa,
                };
                let f = reply.frame(a.sha, self.mac, self.cfg.vlan);
                if self.send_raw(&f) {
                    Counters::add(&self.counters.arp_replies_tx, 1);
                }
            }
            ARP_REPLY => {
                Counters::add(&self.counters.arp_replies_rx, 1);
                self.learned(a.spa, a.sha);
            }
            _ => Counters::add(&self.counters.rx_bad_ethertype, 1),
        }
    }

    /// Hand the queued frames to the NIC. Frames it cannot take now stay
    /// queued for the next call (up to a limit, then they are dropped).
    /// Returns whether anything was sent.
    pub fn flush(&mut self) -> bool {
        if self.tx.is_empty() {
            return false;
        }
        let n = ffi::tx_burst(self.id, &mut self.tx);
        Counters::add(&self.counters.tx_frames, n as u64);
        n > 0
    }

    /// Whether no frame waits to be sent.
    pub fn tx_idle(&self) -> bool {
        self.tx.is_empty()
    }
}

pub(crate) fn stats_of(id: u16, counters: &Counters) -> PortStats {
    let mut s = counters.snapshot();
    if let Ok(n) = ffi::port_stats(id) {
        s.nic_rx_packets = n[0];
        s.nic_tx_packets = n[1];
        s.nic_rx_missed = n[4];
        s.nic_rx_errors = n[5];
        s.nic_tx_errors = n[6];
        s.nic_rx_nombuf = n[7];
    }
    s
}

impl Drop for Port {
    fn drop(&mut self) {
        // Unsent frames are freed, then the port (and the mbufs in its
        // queues). The pool stays until `Dpdk` goes.
        self.tx.clear();
        self.rx.clear();
        // Free what arrived and was not read: a ring port's queue is a
        // ring that outlives the port, and would keep those mbufs.
        for _ in 0..1024 {
            if ffi::rx_burst(self.id, &mut self.rx, RX_BURST) == 0 {
                break;
            }
            self.rx.clear();
        }
        ffi::port_close(self.id);
        tracing::info!(port = self.id, "DPDK port closed");
    }
}
