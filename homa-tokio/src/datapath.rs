//! The [`Datapath`] trait: what the driver needs from whatever moves packets.

use std::fmt::Debug;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use bytes::Bytes;
use homa_core::Transmit;

/// Something a datapath received.
///
/// ```
/// use homa_tokio::Incoming;
/// let i = Incoming::Packet { from: "127.0.0.1:9".parse().unwrap(), data: bytes::Bytes::new() };
/// assert!(matches!(i, Incoming::Packet { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// One Homa packet (the UDP payload in UDP mode) from `from`.
    Packet {
        /// Sender's address.
        from: SocketAddr,
        /// The packet, headers included.
        data: Bytes,
    },
    /// The network reported that `destination` cannot be reached (for UDP:
    /// an ICMP port or host unreachable for a packet sent there). The driver
    /// fails the client RPCs to that address with
    /// [`Error::PeerUnreachable`](crate::Error::PeerUnreachable).
    Unreachable {
        /// The address our packet was sent to.
        destination: SocketAddr,
    },
}

/// Moves Homa packets between the engine and a network, in batches.
///
/// In the spirit of quinn's `AsyncUdpSocket`: poll-based, `&self`, and
/// batch-oriented, so that the kernel UDP datapath ([`UdpDatapath`](crate::UdpDatapath))
/// and a kernel-bypass (DPDK) datapath can both implement it. One driver task
/// calls these methods; implementations may still use interior mutability
/// freely, since calls never overlap in practice.
///
/// A datapath decides nothing about the protocol: it never drops, reorders or
/// delays a packet on purpose (test wrappers aside) and never looks inside
/// one except to batch it.
///
/// ```
/// use homa_tokio::{Datapath, Incoming};
/// use std::task::{Context, Poll};
/// use std::{io, net::SocketAddr};
///
/// /// A datapath that sends nothing anywhere and never receives.
/// #[derive(Debug)]
/// struct Void(SocketAddr);
/// impl Datapath for Void {
///     fn poll_recv(&self, _: &mut Context<'_>, _: &mut Vec<Incoming>) -> Poll<io::Result<usize>> {
///         Poll::Pending
///     }
///     fn poll_send(&self, _: &mut Context<'_>, t: &[homa_core::Transmit]) -> Poll<io::Result<usize>> {
///         Poll::Ready(Ok(t.len()))
///     }
///     fn local_addr(&self) -> io::Result<SocketAddr> { Ok(self.0) }
///     fn max_packet_size(&self) -> usize { 1472 }
///     fn link_rate_bps(&self) -> u64 { 10_000_000_000 }
/// }
/// ```
pub trait Datapath: Debug + Send + Sync + 'static {
    /// Receive a batch: append what arrived to `out` and return how many
    /// entries were appended (at least one), or `Pending` after arranging for
    /// `cx` to be woken when more may arrive.
    ///
    /// # Errors
    /// An I/O error the driver cannot recover from; the endpoint shuts down.
    fn poll_recv(&self, cx: &mut Context<'_>, out: &mut Vec<Incoming>) -> Poll<io::Result<usize>>;

    /// Send a prefix of `transmits` and return its length (at least one when
    /// `transmits` is not empty), or `Pending` after arranging for `cx` to be
    /// woken when the datapath can take more. Packets that cannot be
    /// delivered (no route, unreachable) count as sent: loss is the engine's
    /// business.
    ///
    /// # Errors
    /// An I/O error the driver cannot recover from; the endpoint shuts down.
    fn poll_send(&self, cx: &mut Context<'_>, transmits: &[Transmit]) -> Poll<io::Result<usize>>;

    /// Receive without waiting and without registering a waker, for busy
    /// polling; returns how many entries were appended (0 if nothing was
    /// waiting). The default never finds anything, which turns busy polling
    /// off for datapaths that cannot do better than [`poll_recv`](Self::poll_recv).
    ///
    /// # Errors
    /// As for [`poll_recv`](Self::poll_recv).
    fn try_recv(&self, out: &mut Vec<Incoming>) -> io::Result<usize> {
        let _ = out;
        Ok(0)
    }

    /// Like [`try_recv`](Self::try_recv), but a datapath that keeps
    /// high-priority packets in a queue of their own may look only there.
    /// Busy polling probes with this, and with `try_recv` only every few
    /// probes: a probe that finds a short message's packet then costs one
    /// look, not one per queue. The default is `try_recv`.
    ///
    /// # Errors
    /// As for [`poll_recv`](Self::poll_recv).
    fn try_recv_urgent(&self, out: &mut Vec<Incoming>) -> io::Result<usize> {
        self.try_recv(out)
    }

    /// The driver is about to busy-poll (`on`), reading with
    /// [`try_recv`](Self::try_recv) and [`try_recv_urgent`](Self::try_recv_urgent)
    /// and polling itself again without waiting to be woken, or is done and
    /// may sleep (`!on`). While it polls, a datapath may stop arranging
    /// wake-ups, which cost something per packet, and `poll_recv` may then
    /// return `Pending` without registering `cx`; once polling is off,
    /// `poll_recv` must again wake the task for anything that arrived,
    /// including what arrived while polling was on. The default does
    /// nothing.
    ///
    /// # Errors
    /// If the datapath cannot arrange wake-ups again; the endpoint shuts
    /// down.
    fn set_busy_polling(&self, on: bool) -> io::Result<()> {
        let _ = on;
        Ok(())
    }

    /// The address the engine sends from.
    ///
    /// # Errors
    /// If the datapath cannot tell (for example, its socket is gone).
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Largest Homa packet (header and payload) this datapath carries; the
    /// driver sets the engine's `max_packet_size` to it.
    fn max_packet_size(&self) -> usize;

    /// Rate of the link in bits per second; the driver sets the engine's
    /// pacer (`link_rate_bps`) to it.
    fn link_rate_bps(&self) -> u64;

    /// Most packet bytes (as [`Incoming::Packet`] hands them over) that can
    /// wait unread in this datapath's receive queues, if it knows: for UDP,
    /// its sockets' receive buffers.
    ///
    /// When the driver falls behind its queue, this bounds how far: once it
    /// has read this many bytes since an instant, everything that arrived
    /// before that instant has been read, and the engine judges peers
    /// silent as of then, not of now, so it sends no RESENDs for packets
    /// waiting in our own queue. The bound assumes the queues are read
    /// first in, first out; it is asked for once, when the driver starts.
    /// The default, `None`, means no bound: the driver then judges as of
    /// now once it has been behind for `resend_after`.
    fn recv_queue_limit(&self) -> Option<usize> {
        None
    }
}

impl<D: Datapath + ?Sized> Datapath for std::sync::Arc<D> {
    fn poll_recv(&self, cx: &mut Context<'_>, out: &mut Vec<Incoming>) -> Poll<io::Result<usize>> {
        (**self).poll_recv(cx, out)
    }
    fn poll_send(&self, cx: &mut Context<'_>, transmits: &[Transmit]) -> Poll<io::Result<usize>> {
        (**self).poll_send(cx, transmits)
    }
    fn try_recv(&self, out: &mut Vec<Incoming>) -> io::Result<usize> {
        (**self).try_recv(out)
    }
    fn try_recv_urgent(&self, out: &mut Vec<Incoming>) -> io::Result<usize> {
        (**self).try_recv_urgent(out)
    }
    fn set_busy_polling(&self, on: bool) -> io::Result<()> {
        (**self).set_busy_polling(on)
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        (**self).local_addr()
    }
    fn max_packet_size(&self) -> usize {
        (**self).max_packet_size()
    }
    fn link_rate_bps(&self) -> u64 {
        (**self).link_rate_bps()
    }
    fn recv_queue_limit(&self) -> Option<usize> {
        (**self).recv_queue_limit()
    }
}
