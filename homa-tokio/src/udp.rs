//! The kernel UDP datapath: one UDP socket per endpoint, batched with
//! `recvmmsg`/`sendmmsg`, UDP GSO/GRO where the kernel has them, and the
//! Homa priority in the DSCP bits.
//!
//! All system calls go through `nix`'s safe wrappers; this module has no
//! `unsafe`.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use homa_core::Transmit;
use nix::errno::Errno;
use nix::sys::socket::{
    recvmmsg, recvmsg, sendmmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned,
    MsgFlags, MultiHeaders, SockaddrStorage,
};
use tokio::io::Interest;

use crate::datapath::{Datapath, Incoming};

/// Packets per `recvmmsg`/`sendmmsg` call.
const BATCH: usize = 32;
/// Linux refuses more than 64 segments in one GSO send (`UDP_MAX_SEGMENTS`).
const MAX_GSO_SEGMENTS: usize = 64;
/// Largest UDP payload: a GSO send or a GRO receive is one datagram of at
/// most this many bytes.
const MAX_DATAGRAM: usize = 65_507;

/// Options of the UDP datapath.
///
/// ```
/// use homa_tokio::UdpConfig;
/// let mut udp = UdpConfig::default();
/// udp.max_packet_size = 8_972; // a 9000-byte jumbo MTU
/// udp.link_rate_bps = Some(100_000_000_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UdpConfig {
    /// Largest UDP payload (one Homa packet) to send. Default 1472: a
    /// 1500-byte Ethernet MTU minus the IPv4 and UDP headers. Loopback takes
    /// up to 65,507; larger packets mean fewer system calls per message.
    pub max_packet_size: usize,
    /// Rate the engine's pacer assumes, in bits per second. `None` (default)
    /// picks 100 Gbit/s on a loopback address (the kernel copies, there is no
    /// NIC queue to keep short) and 25 Gbit/s otherwise.
    pub link_rate_bps: Option<u64>,
    /// Use UDP generic segmentation offload to send a run of equal-sized
    /// packets to one peer in one system call, when the kernel supports it
    /// (probed at bind). Default true.
    pub gso: bool,
    /// Ask the kernel to coalesce received packets (UDP GRO), when it
    /// supports it. Default true.
    pub gro: bool,
    /// Report ICMP unreachable errors (`IP_RECVERR`) so that RPCs to a closed
    /// port fail fast with [`Error::PeerUnreachable`](crate::Error::PeerUnreachable)
    /// instead of timing out. Default true.
    pub report_unreachable: bool,
    /// Socket send and receive buffer sizes to request (the kernel may cap
    /// them at `net.core.{r,w}mem_max`). Default 4 MiB.
    pub socket_buffer: usize,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            max_packet_size: 1472,
            link_rate_bps: None,
            gso: true,
            gro: true,
            report_unreachable: true,
            socket_buffer: 4 << 20,
        }
    }
}

/// The default datapath: kernel UDP on a tokio socket.
///
/// * receives with `recvmmsg` (up to 32 datagrams per call) and, with GRO,
///   splits coalesced datagrams into Homa packets;
/// * sends a run of packets to one peer at one priority with one GSO
///   `sendmsg`, and everything else with `sendmmsg`;
/// * maps Homa priority `p` (0–7) to DSCP `8·p` (class selector CS`p`), i.e.
///   TOS byte `p << 5`, per packet with an `IP_TOS` control message (IPv4)
///   or `IPV6_TCLASS` (IPv6);
/// * with `IP_RECVERR`, turns ICMP unreachable errors into
///   [`Incoming::Unreachable`].
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use homa_tokio::{UdpConfig, UdpDatapath, Datapath};
/// let dp = UdpDatapath::bind("127.0.0.1:0".parse().unwrap(), &UdpConfig::default())?;
/// println!("{} carries {} bytes per packet", dp.local_addr()?, dp.max_packet_size());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct UdpDatapath {
    socket: Arc<tokio::net::UdpSocket>,
    local: SocketAddr,
    max_packet_size: usize,
    link_rate_bps: u64,
    gso: AtomicBool,
    gro: bool,
    ipv4: bool,
    recv: Mutex<RecvState>,
}

#[derive(Debug)]
struct RecvState {
    bufs: Vec<Vec<u8>>,
    /// Unreachable destinations learned while sending, reported by the next
    /// receive.
    unreachable: Vec<SocketAddr>,
}

/// DSCP class selector for a Homa priority, as the TOS/traffic class byte.
fn tos(priority: u8) -> u8 {
    // DSCP = 8 * priority (CS0..CS7); the DSCP field is the top six bits of
    // the TOS byte, so TOS = DSCP << 2 = priority << 5.
    (priority.min(7)) << 5
}

fn gso_supported(local: &SocketAddr) -> bool {
    let domain = socket2::Domain::for_address(*local);
    let Ok(probe) = socket2::Socket::new(domain, socket2::Type::DGRAM, None) else {
        return false;
    };
    setsockopt(&probe, sockopt::UdpGsoSegment, &1200).is_ok()
}

impl UdpDatapath {
    /// Bind a UDP socket at `addr` (port 0: the kernel picks one). Must be
    /// called inside a tokio runtime.
    ///
    /// # Errors
    /// The socket could not be created or bound, or `max_packet_size` is
    /// not in 64..=65,507.
    pub fn bind(addr: SocketAddr, config: &UdpConfig) -> io::Result<Self> {
        if !(64..=MAX_DATAGRAM).contains(&config.max_packet_size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "max_packet_size must be in 64..=65507",
            ));
        }
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        // Best effort: the kernel caps these at its limits.
        let _ = socket.set_recv_buffer_size(config.socket_buffer);
        let _ = socket.set_send_buffer_size(config.socket_buffer);
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        let local = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("not an IP socket"))?;
        if config.report_unreachable {
            // Best effort: without it, RPCs to a closed port time out.
            let _ = if local.is_ipv4() {
                setsockopt(&socket, sockopt::Ipv4RecvErr, &true)
            } else {
                setsockopt(&socket, sockopt::Ipv6RecvErr, &true)
            };
        }
        let gro = config.gro && setsockopt(&socket, sockopt::UdpGroSegment, &true).is_ok();
        let gso = config.gso && gso_supported(&local);
        let socket = tokio::net::UdpSocket::from_std(socket.into())?;
        let link_rate_bps = config.link_rate_bps.unwrap_or(if local.ip().is_loopback() {
            100_000_000_000
        } else {
            25_000_000_000
        });
        let buf_len = if gro {
            MAX_DATAGRAM
        } else {
            config.max_packet_size
        };
        tracing::debug!(%local, gso, gro, "UDP datapath bound");
        Ok(UdpDatapath {
            socket: Arc::new(socket),
            local,
            max_packet_size: config.max_packet_size,
            link_rate_bps,
            gso: AtomicBool::new(gso),
            gro,
            ipv4: local.is_ipv4(),
            recv: Mutex::new(RecvState {
                bufs: vec![vec![0; buf_len]; BATCH],
                unreachable: Vec::new(),
            }),
        })
    }

    /// Whether sends use UDP GSO (probed at bind; turned off if the kernel
    /// later refuses a GSO send).
    pub fn gso_enabled(&self) -> bool {
        self.gso.load(Ordering::Relaxed)
    }

    /// Whether the kernel coalesces received packets (UDP GRO).
    pub fn gro_enabled(&self) -> bool {
        self.gro
    }

    /// One `recvmmsg`, without waiting.
    fn recv_batch(&self, out: &mut Vec<Incoming>) -> io::Result<usize> {
        let mut st = self.recv.lock().unwrap_or_else(|e| e.into_inner());
        let before = out.len();
        for destination in st.unreachable.drain(..) {
            out.push(Incoming::Unreachable { destination });
        }
        let gro = self.gro;
        let res = {
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(
                BATCH,
                gro.then(|| nix::cmsg_space!(libc_int)),
            );
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> = st
                .bufs
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b[..])])
                .collect();
            recvmmsg(
                self.socket.as_raw_fd(),
                &mut headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            )
            .map(|msgs| {
                msgs.filter_map(|msg| {
                    let from = msg.address.as_ref().and_then(to_socket_addr)?;
                    let mut segment = msg.bytes;
                    if gro {
                        if let Ok(cmsgs) = msg.cmsgs() {
                            for c in cmsgs {
                                if let ControlMessageOwned::UdpGroSegments(s) = c {
                                    segment = usize::try_from(s).unwrap_or(msg.bytes);
                                }
                            }
                        }
                    }
                    Some((from, msg.bytes, segment.max(1)))
                })
                .collect::<Vec<_>>()
            })
        };
        let received = match res {
            Ok(r) => r,
            Err(Errno::ECONNREFUSED | Errno::EHOSTUNREACH | Errno::ENETUNREACH) => {
                // IP_RECVERR: an ICMP error is pending; learn for which
                // destination from the error queue.
                let dests = self.drain_error_queue();
                out.extend(
                    dests
                        .into_iter()
                        .map(|destination| Incoming::Unreachable { destination }),
                );
                let n = out.len() - before;
                return if n > 0 {
                    Ok(n)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            Err(e) => {
                if out.len() > before {
                    return Ok(out.len() - before);
                }
                return Err(e.into());
            }
        };
        for (i, (from, len, segment)) in received.into_iter().enumerate() {
            // A GRO datagram is several packets of `segment` bytes (the
            // last may be shorter), all from `from`.
            for chunk in st.bufs[i][..len].chunks(segment) {
                out.push(Incoming::Packet {
                    from,
                    data: Bytes::copy_from_slice(chunk),
                });
            }
        }
        let n = out.len() - before;
        if n == 0 {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(n)
        }
    }

    /// Read the socket's error queue (IP_RECVERR) until it is empty: the
    /// destinations whose packets bounced.
    fn drain_error_queue(&self) -> Vec<SocketAddr> {
        let mut dests = Vec::new();
        let mut buf = [0u8; 64];
        let mut cmsg = nix::cmsg_space!(libc_sock_extended_err, libc_sockaddr_in6);
        for _ in 0..64 {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<SockaddrStorage>(
                self.socket.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(msg) => {
                    if let Some(d) = msg.address.as_ref().and_then(to_socket_addr) {
                        if !dests.contains(&d) {
                            dests.push(d);
                        }
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        dests
    }

    /// Send as many of `transmits` as the socket takes now.
    fn send_batch(&self, transmits: &[Transmit]) -> io::Result<usize> {
        let mut sent = 0;
        while sent < transmits.len() {
            let rest = &transmits[sent..];
            let group = if self.gso.load(Ordering::Relaxed) {
                gso_run(rest)
            } else {
                1
            };
            let result = if group >= 2 {
                match self.send_gso(&rest[..group]) {
                    Err(e) if e.raw_os_error() == Some(Errno::EIO as i32) => {
                        // The device cannot segment (no checksum offload):
                        // stop using GSO and send these one by one.
                        tracing::debug!("UDP GSO refused by the kernel; turning it off");
                        self.gso.store(false, Ordering::Relaxed);
                        continue;
                    }
                    r => r.map(|()| group),
                }
            } else {
                let run = rest
                    .iter()
                    .take(BATCH)
                    .take_while(|t| t.priority == rest[0].priority)
                    .count();
                // Stop the run where a GSO group would start.
                let run = if self.gso.load(Ordering::Relaxed) {
                    (1..run).find(|&i| gso_run(&rest[i..]) >= 2).unwrap_or(run)
                } else {
                    run
                };
                self.send_mmsg(&rest[..run])
            };
            match result {
                Ok(n) => sent += n,
                Err(e) if is_unreachable(&e) => {
                    // A pending ICMP error (IP_RECVERR) was reported on this
                    // send instead of the packet going out; remember where
                    // packets bounced and try again.
                    let dests = self.drain_error_queue();
                    self.recv
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .unreachable
                        .extend(dests);
                }
                Err(e) if sent > 0 => {
                    tracing::trace!(error = %e, "send batch cut short");
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    fn tos_cmsg<'a>(&self, tos: &'a u8, tclass: &'a i32) -> ControlMessage<'a> {
        if self.ipv4 {
            ControlMessage::Ipv4Tos(tos)
        } else {
            ControlMessage::Ipv6TClass(tclass)
        }
    }

    fn send_gso(&self, group: &[Transmit]) -> io::Result<()> {
        let first = &group[0];
        let mut iov = Vec::with_capacity(group.len() * 2);
        for t in group {
            iov.push(IoSlice::new(t.header()));
            if !t.payload.is_empty() {
                iov.push(IoSlice::new(&t.payload));
            }
        }
        let segment = first.len() as u16;
        let tos_byte = tos(first.priority);
        let tclass = i32::from(tos_byte);
        let cmsgs = [
            ControlMessage::UdpGsoSegments(&segment),
            self.tos_cmsg(&tos_byte, &tclass),
        ];
        let dest = SockaddrStorage::from(first.destination);
        sendmsg(
            self.socket.as_raw_fd(),
            &iov,
            &cmsgs,
            MsgFlags::MSG_DONTWAIT,
            Some(&dest),
        )?;
        Ok(())
    }

    /// One `sendmmsg` of packets that share a priority.
    fn send_mmsg(&self, run: &[Transmit]) -> io::Result<usize> {
        let tos_byte = tos(run[0].priority);
        let tclass = i32::from(tos_byte);
        let cmsgs = [self.tos_cmsg(&tos_byte, &tclass)];
        let iovs: Vec<[IoSlice<'_>; 2]> = run
            .iter()
            .map(|t| [IoSlice::new(t.header()), IoSlice::new(&t.payload)])
            .collect();
        let addrs: Vec<Option<SockaddrStorage>> = run
            .iter()
            .map(|t| Some(SockaddrStorage::from(t.destination)))
            .collect();
        let space = if self.ipv4 {
            nix::cmsg_space!(u8)
        } else {
            nix::cmsg_space!(libc_int)
        };
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(run.len(), Some(space));
        let results = sendmmsg(
            self.socket.as_raw_fd(),
            &mut headers,
            &iovs,
            &addrs,
            cmsgs,
            MsgFlags::MSG_DONTWAIT,
        )?;
        let n = results.count();
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }
}

#[allow(non_camel_case_types)]
type libc_int = i32;
/// Sizes for the error-queue control buffer (`struct sock_extended_err`
/// followed by the offender's address); only their sizes matter.
#[allow(non_camel_case_types)]
type libc_sock_extended_err = [u32; 4];
#[allow(non_camel_case_types)]
type libc_sockaddr_in6 = [u8; 28];

fn is_unreachable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::ECONNREFUSED | Errno::EHOSTUNREACH | Errno::ENETUNREACH)
    )
}

fn to_socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

/// How many transmits at the front of `ts` can go as one GSO datagram: same
/// destination and priority, all as long as the first except a possibly
/// shorter last one, at most 64 segments and 64 KiB.
fn gso_run(ts: &[Transmit]) -> usize {
    let first = &ts[0];
    let seg = first.len();
    let mut n = 1;
    let mut total = seg;
    while n < ts.len() && n < MAX_GSO_SEGMENTS {
        let t = &ts[n];
        if t.destination != first.destination
            || t.priority != first.priority
            || t.len() > seg
            || total + t.len() > MAX_DATAGRAM
        {
            break;
        }
        n += 1;
        total += t.len();
        if t.len() < seg {
            // A shorter segment must be the last one.
            break;
        }
    }
    n
}

impl Datapath for UdpDatapath {
    fn poll_recv(&self, cx: &mut Context<'_>, out: &mut Vec<Incoming>) -> Poll<io::Result<usize>> {
        {
            // Unreachable destinations learned while sending (the kernel
            // reports a pending ICMP error on whichever call comes first).
            let mut st = self.recv.lock().unwrap_or_else(|e| e.into_inner());
            if !st.unreachable.is_empty() {
                let n = st.unreachable.len();
                out.extend(
                    st.unreachable
                        .drain(..)
                        .map(|destination| Incoming::Unreachable { destination }),
                );
                return Poll::Ready(Ok(n));
            }
        }
        loop {
            std::task::ready!(self.socket.poll_recv_ready(cx))?;
            match self
                .socket
                .try_io(Interest::READABLE, || self.recv_batch(out))
            {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn try_recv(&self, out: &mut Vec<Incoming>) -> io::Result<usize> {
        match self.recv_batch(out) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmits: &[Transmit]) -> Poll<io::Result<usize>> {
        if transmits.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            std::task::ready!(self.socket.poll_send_ready(cx))?;
            match self
                .socket
                .try_io(Interest::WRITABLE, || match self.send_batch(transmits) {
                    Ok(0) => Err(io::ErrorKind::WouldBlock.into()),
                    r => r,
                }) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_fatal_send_error(&e) => return Poll::Ready(Err(e)),
                Err(e) => {
                    // A packet the kernel refuses (say, no route to its
                    // destination) is a lost packet, not a dead endpoint.
                    tracing::debug!(error = %e, dest = %transmits[0].destination, "packet dropped by the kernel");
                    return Poll::Ready(Ok(1));
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    fn link_rate_bps(&self) -> u64 {
        self.link_rate_bps
    }
}

fn is_fatal_send_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EBADF | Errno::ENOTSOCK | Errno::EFAULT)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dscp_is_class_selector() {
        assert_eq!(tos(0), 0);
        assert_eq!(tos(7), 0xe0);
        assert_eq!(tos(3) >> 2, 24); // DSCP CS3 = 24
    }

    #[tokio::test]
    async fn packets_cross_loopback_in_batches() {
        let a = UdpDatapath::bind("127.0.0.1:0".parse().unwrap(), &UdpConfig::default()).unwrap();
        let b = UdpDatapath::bind("127.0.0.1:0".parse().unwrap(), &UdpConfig::default()).unwrap();
        // Build real DATA packets with an engine, to exercise GSO grouping.
        let mut engine =
            homa_core::Endpoint::new(homa_core::Config::default(), a.local_addr().unwrap())
                .unwrap();
        let mut dest = b.local_addr().unwrap();
        dest.set_port(1000);
        engine
            .send_request(
                homa_core::Instant::ZERO,
                dest,
                Bytes::from(vec![7u8; 20_000]),
            )
            .unwrap();
        let mut ts = Vec::new();
        // Step time past the pacer until the unscheduled bytes are out.
        for us in 0..1000 {
            let now = homa_core::Instant::from_nanos(us * 1_000);
            while let Some(mut t) = engine.poll_transmit(now) {
                t.destination = b.local_addr().unwrap();
                ts.push(t);
            }
        }
        assert!(ts.len() > 10);
        let mut sent = 0;
        while sent < ts.len() {
            sent += futures::future::poll_fn(|cx| a.poll_send(cx, &ts[sent..]))
                .await
                .unwrap();
        }
        let mut got = Vec::new();
        while got.len() < ts.len() {
            futures::future::poll_fn(|cx| b.poll_recv(cx, &mut got))
                .await
                .unwrap();
        }
        for (t, g) in ts.iter().zip(&got) {
            let Incoming::Packet { from, data } = g else {
                panic!("unexpected {g:?}")
            };
            assert_eq!(*from, a.local_addr().unwrap());
            assert_eq!(&data[..], &t.to_vec()[..]);
        }
    }
}
