//! Per-port statistics.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A snapshot of one port's counters: what the datapath did with
        /// each frame (from [`Port::stats`](crate::Port::stats) or
        /// [`Poller::stats`](crate::Poller::stats)), and the NIC's own
        /// counters.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct PortStats {
            $($(#[$doc])* pub $name: u64,)*
            /// NIC: packets received (`rte_eth_stats.ipackets`).
            pub nic_rx_packets: u64,
            /// NIC: packets sent.
            pub nic_tx_packets: u64,
            /// NIC: packets dropped for lack of receive descriptors.
            pub nic_rx_missed: u64,
            /// NIC: receive errors.
            pub nic_rx_errors: u64,
            /// NIC: transmit errors.
            pub nic_tx_errors: u64,
            /// NIC: receive mbuf allocation failures.
            pub nic_rx_nombuf: u64,
        }

        /// The live counters, updated by the polling thread and read by
        /// anyone.
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub $name: AtomicU64,)*
        }

        impl Counters {
            pub fn snapshot(&self) -> PortStats {
                PortStats {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                    ..PortStats::default()
                }
            }
        }
    };
}

counters! {
    /// Frames received.
    rx_frames,
    /// Bytes of the frames received.
    rx_bytes,
    /// Homa packets handed to the engine.
    rx_homa,
    /// Frames dropped: not addressed to our MAC or IP address.
    rx_not_for_us,
    /// Frames dropped: Homa packets for another Homa port.
    rx_wrong_port,
    /// Frames dropped: shorter than their headers say.
    rx_truncated,
    /// Frames dropped: neither IPv4 nor ARP (or ARP for another protocol).
    rx_bad_ethertype,
    /// Frames dropped: IPv4 but not protocol 146.
    rx_bad_protocol,
    /// Frames dropped: bad IPv4 version, header length or total length.
    rx_bad_ip_header,
    /// Frames dropped: wrong IPv4 header checksum.
    rx_bad_checksum,
    /// Frames dropped: IPv4 fragments.
    rx_fragments,
    /// Frames dropped: in more than one segment.
    rx_multi_segment,
    /// Homa packets dropped on purpose
    /// ([`PortConfig::drop_every`](crate::PortConfig::drop_every)).
    rx_injected_drops,
    /// ARP requests received for our address.
    arp_requests_rx,
    /// ARP replies received.
    arp_replies_rx,
    /// ARP requests sent to resolve a neighbour.
    arp_requests_tx,
    /// ARP replies sent.
    arp_replies_tx,
    /// Neighbours resolved.
    arp_resolved,
    /// Packets dropped because their neighbour did not answer ARP, or too
    /// many waited for it (the engine retransmits).
    arp_drops,
    /// Frames sent (Homa and ARP).
    tx_frames,
    /// Bytes of the frames queued for sending.
    tx_bytes,
    /// Homa packets sent.
    tx_homa,
    /// Packets dropped: no mbuf free.
    tx_no_mbuf,
    /// Packets dropped: the transmit queue stayed full.
    tx_queue_full,
    /// Packets dropped: larger than the MTU.
    tx_too_big,
    /// Packets dropped: the destination is not an IPv4 address.
    tx_unroutable,
}

impl Counters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        // Only the polling thread writes, so load + store suffices (no
        // locked read-modify-write on the hot path).
        c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }
}
