//! The kernel UDP datapath: one UDP socket per endpoint, batched with
//! `recvmmsg`/`sendmmsg`, UDP GSO/GRO where the kernel has them, and the
//! Homa priority in the DSCP bits.
//!
//! All system calls go through `nix`'s safe wrappers; this module has no
//! `unsafe`.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll};

use bytes::Bytes;
use homa_core::Transmit;
use nix::errno::Errno;
use nix::libc;
use nix::sys::socket::{
    recvmmsg, recvmsg, sendmmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned,
    MsgFlags, MultiHeaders, RecvMsg, SockaddrStorage,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::datapath::{Datapath, Incoming};

/// Packets per `recvmmsg`/`sendmmsg` call, at most.
const BATCH: usize = 32;
/// Datagrams the first `recvmmsg` after a quiet spell asks for.
const MIN_RECV_BATCH: usize = 2;
/// Linux refuses more than 64 segments in one GSO send (`UDP_MAX_SEGMENTS`).
const MAX_GSO_SEGMENTS: usize = 64;
/// Largest UDP payload: a GSO send or a GRO receive is one datagram of at
/// most this many bytes.
const MAX_DATAGRAM: usize = 65_507;
/// Receive buffers grow to this on a truncated datagram: any UDP payload
/// (IPv6's are up to 65,527 bytes, and a GRO run up to its 16-bit length).
const MAX_RECV_DATAGRAM: usize = u16::MAX as usize;

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
    ///
    /// Peers need not agree on it. Without GRO the receive buffers start
    /// at this size; the first longer datagram is dropped (its data comes
    /// back by RESEND) and they grow to hold any.
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
    /// Socket send and receive buffer sizes to request. The kernel caps them
    /// at `net.core.{r,w}mem_max` unless the process has CAP_NET_ADMIN, in
    /// which case they are forced past it. Default 16 MiB.
    pub socket_buffer: usize,
    /// A second receive queue for Homa's high priorities: packets sent at
    /// this priority or above (their DSCP, see [`UdpDatapath`]) land in a
    /// second socket on the same port, which is read before the first.
    /// Default `Some(5)`: with homa-core's default cutoffs, control packets
    /// (GRANT, RESEND, BUSY, ACK: priority 7) and messages of up to 15,000
    /// bytes (5–7), while the unscheduled bytes of longer messages (4) and
    /// all granted bytes (0–3) stay in the first.
    ///
    /// A kernel socket's receive queue is first-in first-out: without this,
    /// a short request waits behind every bulk packet that arrived before it
    /// (on loopback, up to `max_incoming` bytes of 64 KB packets, hundreds
    /// of microseconds of copying). The two sockets share the port with
    /// `SO_REUSEPORT`, and a classic BPF program attached to the group
    /// steers each datagram by the priority in its IP header, so peers see
    /// one address and need nothing. `None`, or a kernel that refuses the
    /// program, gives one socket. Another process of the same user could
    /// bind the same port with `SO_REUSEPORT` too; the program never steers
    /// packets to it.
    pub fast_queue_priority: Option<u8>,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            max_packet_size: 1472,
            link_rate_bps: None,
            gso: true,
            gro: true,
            report_unreachable: true,
            socket_buffer: 16 << 20,
            fast_queue_priority: Some(5),
        }
    }
}

/// Ask for `size`-byte socket buffers. The kernel caps the plain request at
/// `net.core.{r,w}mem_max` (208 KiB by default): a root process
/// (CAP_NET_ADMIN) may go past the cap, which it does. Unscheduled bytes
/// arrive unannounced, so when the process is descheduled for a few
/// milliseconds the receive buffer is all that stands between a burst and
/// lost packets (recovered only by RESEND, 5 ms later). Best effort
/// throughout: a small buffer still works, it only loses more.
fn set_buffers(socket: &socket2::Socket, size: usize) {
    let want = size.min(i32::MAX as usize);
    let _ = socket.set_recv_buffer_size(want);
    let _ = socket.set_send_buffer_size(want);
    // Linux reports twice the size it granted (its bookkeeping overhead), so
    // a capped request reads back below `want`.
    if socket.recv_buffer_size().is_ok_and(|got| got < want) {
        let _ = setsockopt(socket, sockopt::RcvBufForce, &want);
    }
    if socket.send_buffer_size().is_ok_and(|got| got < want) {
        let _ = setsockopt(socket, sockopt::SndBufForce, &want);
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
/// * receives the high priorities on a second socket of the same port, read
///   first ([`UdpConfig::fast_queue_priority`]): two of Homa's priority
///   queues at the host, where a kernel socket has one first-in first-out
///   queue;
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
    /// The socket that sends and receives (the fast queue only receives),
    /// registered with the reactor for reading only. A registration for
    /// writing would wake the reactor after every send (each datagram's
    /// buffer space coming back is an edge), and when client and server
    /// share a core that extra turn sits between our send and the peer
    /// running.
    main: RxSocket,
    /// Write readiness, registered only while sends find the socket buffer
    /// full.
    writer: Mutex<Writer>,
    /// Times a send found the socket buffer full and waited for room.
    full_buffer_waits: std::sync::atomic::AtomicU64,
    local: SocketAddr,
    max_packet_size: usize,
    link_rate_bps: u64,
    gso: AtomicBool,
    gro: bool,
    ipv4: bool,
    /// The high-priority receive queue (`UdpConfig::fast_queue_priority`).
    fast: Option<RxSocket>,
    /// The TOS (IPv4) or traffic class (IPv6) byte set on the socket
    /// itself, if setting it worked: a lone packet at that priority goes
    /// out without a control message (see `send_one_plain`).
    socket_tos: Option<u8>,
}

/// A lone packet up to this size is copied into one buffer and sent with
/// `sendto`, when it needs no control message.
const PLAIN_SEND_MAX: usize = 2048;
/// The priority whose TOS byte the socket carries by default: that of
/// control packets and the shortest messages, the ones whose latency a
/// system call's setup shows in.
const SOCKET_PRIORITY: u8 = 7;

/// A receiving socket (the main one also sends) and its registration with
/// the reactor.
#[derive(Debug)]
struct RxSocket {
    socket: std::net::UdpSocket,
    /// A duplicate of the socket's descriptor, registered with the reactor
    /// for reading; `None` while the driver busy-polls
    /// ([`Datapath::set_busy_polling`]). A registration costs every datagram
    /// in and out a wake-up callback in the kernel, taken under a lock with
    /// interrupts off: about 1.5 to 2 us of a busy-polled round trip on
    /// loopback, for wake-ups nobody waits for while the driver spins.
    reg: Mutex<Option<AsyncFd<OwnedFd>>>,
    recv: Mutex<RecvState>,
}

impl RxSocket {
    fn new(socket: socket2::Socket, buf_len: usize) -> io::Result<Self> {
        let socket = std::net::UdpSocket::from(socket);
        let reg = Mutex::new(Some(register_dup(&socket, Interest::READABLE)?));
        Ok(RxSocket {
            socket,
            reg,
            recv: Mutex::new(RecvState::new(buf_len)),
        })
    }

    fn reg(&self) -> std::sync::MutexGuard<'_, Option<AsyncFd<OwnedFd>>> {
        self.reg.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Register a duplicate of `socket`'s descriptor with the reactor for
/// `interest` (dropping the registration later leaves the socket open).
fn register_dup(socket: &std::net::UdpSocket, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    register(socket.as_fd().try_clone_to_owned()?, interest)
}

/// Which receive queue to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    Fast,
    Main,
}

impl RecvState {
    fn new(buf_len: usize) -> Self {
        RecvState {
            // One allocation each (zeroed pages come lazily from the
            // kernel), not one buffer cloned 31 times.
            bufs: (0..BATCH).map(|_| vec![0; buf_len]).collect(),
            batch: MIN_RECV_BATCH,
            unreachable: Vec::new(),
            cmsg: nix::cmsg_space!(libc_int),
        }
    }

    /// A datagram did not fit its buffer (`MSG_TRUNC`): it is dropped, and
    /// the buffers grow so that the next one fits. Without GRO they are
    /// `max_packet_size` long, and a peer configured for larger packets
    /// would otherwise have every such packet cut short. A DATA packet's
    /// length is its datagram's, so the engine would take the cut one for a
    /// shorter packet, and the RPC would hang: each RESEND brings back the
    /// same oversized packet, cut the same way, and hearing it resets the
    /// silence that would time the RPC out. The dropped packet is recovered
    /// by RESEND, now into a buffer that holds it.
    fn truncated(&mut self, from: SocketAddr) {
        if self.bufs[0].len() >= MAX_RECV_DATAGRAM {
            return;
        }
        tracing::warn!(
            %from,
            buffer = self.bufs[0].len(),
            "a datagram was longer than the receive buffer (the peer's \
             max_packet_size is larger than ours): dropped, and the buffers \
             grow to {MAX_RECV_DATAGRAM} bytes; its data comes back by RESEND"
        );
        for b in &mut self.bufs {
            // A fresh zeroed allocation, not `resize`: its pages come from
            // the kernel lazily, as in `new`.
            *b = vec![0; MAX_RECV_DATAGRAM];
        }
    }
}

#[derive(Debug)]
struct RecvState {
    bufs: Vec<Vec<u8>>,
    /// Datagrams the next `recvmmsg` asks for: setting up its headers costs
    /// in proportion (nix builds them afresh each call), so it starts small
    /// and grows (2, 8, 32) while calls come back full. A request/response at a time
    /// costs a 2-header call; a burst gets 8, then 32.
    batch: usize,
    /// Unreachable destinations learned while sending, reported by the next
    /// receive.
    unreachable: Vec<SocketAddr>,
    /// Room for a probe's GRO control message (nix takes it as a `Vec`;
    /// kept, so that a probe allocates nothing).
    cmsg: Vec<u8>,
}

/// What a received datagram is: its sender (`None` if it has none, and
/// then it cannot be answered and is skipped), its length, the size of the
/// packets it holds (see [`gro_segment`]), and whether it was cut short to
/// fit its buffer (`MSG_TRUNC`, see `RecvState::truncated`).
fn datagram_of(
    msg: &RecvMsg<'_, '_, SockaddrStorage>,
    gro: bool,
) -> (Option<SocketAddr>, usize, usize, bool) {
    let from = msg.address.as_ref().and_then(to_socket_addr);
    let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
    (from, msg.bytes, gro_segment(msg, gro), truncated)
}

/// The size of the packets a received datagram holds: with GRO, the
/// segment size its control message gives (a coalesced run); otherwise the
/// whole datagram. At least 1.
fn gro_segment(msg: &RecvMsg<'_, '_, SockaddrStorage>, gro: bool) -> usize {
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
    segment.max(1)
}

/// The Homa packets of one received datagram: a GRO datagram is several
/// packets of `segment` bytes (the last may be shorter), all from `from`.
fn push_datagram(out: &mut Vec<Incoming>, from: SocketAddr, datagram: &[u8], segment: usize) {
    for chunk in datagram.chunks(segment) {
        out.push(Incoming::Packet {
            from,
            data: Bytes::copy_from_slice(chunk),
        });
    }
}

/// A duplicate of the socket's descriptor registered for writing, kept while
/// sends meet a full socket buffer.
#[derive(Debug, Default)]
struct Writer {
    fd: Option<AsyncFd<OwnedFd>>,
    /// `poll_send` calls in a row whose first attempt went through; after
    /// [`WRITER_IDLE_SENDS`] of them the registration is dropped.
    clear_sends: u32,
}

/// Sends in a row that found room, after which the write registration is
/// dropped: registering costs three system calls (dup, two epoll_ctl),
/// keeping it costs a reactor turn per send.
const WRITER_IDLE_SENDS: u32 = 64;

/// Register `io` with the current runtime's reactor for `interest`.
///
/// tokio 1.54 deprecated the safe constructor in favour of an `unsafe` one,
/// because an arbitrary `AsRawFd` could close or swap its descriptor while
/// registered. Ours cannot: `io` is an owned socket or descriptor that the
/// `AsyncFd` keeps, unchanged, until it is dropped (which deregisters it),
/// so the contract holds and no `unsafe` is needed (this crate has none).
#[allow(deprecated)]
fn register<T: AsRawFd>(io: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    AsyncFd::with_interest(io, interest)
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

/// An unbound UDP socket of `addr`'s family (IPv6 sockets take IPv6 only).
fn udp_socket(addr: SocketAddr) -> io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    Ok(socket)
}

/// The address a bound socket got.
fn bound_addr(socket: &socket2::Socket) -> io::Result<SocketAddr> {
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an IP socket"))
}

/// A nonblocking UDP socket for `addr` with the configured buffers, bound
/// (with `SO_REUSEPORT` first if `reuse_port`).
fn new_socket(
    addr: SocketAddr,
    config: &UdpConfig,
    reuse_port: bool,
) -> io::Result<socket2::Socket> {
    let socket = udp_socket(addr)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    set_buffers(&socket, config.socket_buffer);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// The main socket and the fast queue's, both bound to one port, with the
/// steering program attached (see [`UdpConfig::fast_queue_priority`]).
fn bind_pair(
    addr: SocketAddr,
    config: &UdpConfig,
    priority: u8,
) -> io::Result<(socket2::Socket, socket2::Socket)> {
    // SO_REUSEPORT would let our sockets join another process's group on
    // the same port (same user), where they would receive nothing: so first
    // take the port alone, as a plain bind would (the error if it is in
    // use, the kernel's pick for port 0), and only then share it between
    // our two sockets.
    let local = {
        let probe = udp_socket(addr)?;
        probe.bind(&addr.into())?;
        bound_addr(&probe)?
    };
    let main = new_socket(local, config, true)?;
    // Joins the group second: index 1.
    let fast = new_socket(local, config, true)?;
    let program = steering_program(local.is_ipv4(), priority);
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        // The kernel copies the program during the call; it only reads it.
        filter: program.as_ptr().cast_mut(),
    };
    setsockopt(&main, sockopt::AttachReusePortCbpf, &prog)?;
    Ok((main, fast))
}

/// A classic BPF program for the reuseport group of [`bind_pair`]: the index
/// of the socket (0 main, 1 fast) for a datagram, from the Homa priority in
/// its IP header (the sender maps priority `p` to TOS `p << 5`). The
/// kernel runs it with the packet's data at the UDP payload; the
/// `SKF_NET_OFF` offsets reach back to the IP header.
fn steering_program(ipv4: bool, priority: u8) -> Vec<libc::sock_filter> {
    const fn op(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
        libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        }
    }
    let net = libc::SKF_NET_OFF as u32;
    let ld_b = libc::BPF_LD | libc::BPF_B | libc::BPF_ABS;
    let rsh = libc::BPF_ALU | libc::BPF_RSH | libc::BPF_K;
    let and = libc::BPF_ALU | libc::BPF_AND | libc::BPF_K;
    let jge = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    let mut p = if ipv4 {
        // The TOS byte; its top three bits are the priority.
        vec![op(ld_b, 0, 0, net.wrapping_add(1)), op(rsh, 0, 0, 5)]
    } else {
        // The traffic class straddles the first two bytes: its top three
        // bits are bits 3..1 of the first.
        vec![op(ld_b, 0, 0, net), op(and, 0, 0, 0x0f), op(rsh, 0, 0, 1)]
    };
    p.extend([
        op(jge, 0, 1, u32::from(priority.min(7))),
        op(ret, 0, 0, 1),
        op(ret, 0, 0, 0),
    ]);
    p
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
        let (socket, fast) = match config.fast_queue_priority {
            Some(p) => match bind_pair(addr, config, p) {
                Ok((main, fast)) => (main, Some(fast)),
                Err(e) => {
                    tracing::debug!(error = %e, "no second receive queue; one socket");
                    (new_socket(addr, config, false)?, None)
                }
            },
            None => (new_socket(addr, config, false)?, None),
        };
        let local = bound_addr(&socket)?;
        if config.report_unreachable {
            // Best effort: without it, RPCs to a closed port time out. On
            // both sockets: the kernel files an ICMP error with whichever
            // socket of the port's group its lookup picks (by hash, not by
            // our program), so half of them reach the fast queue.
            for s in std::iter::once(&socket).chain(&fast) {
                let _ = if local.is_ipv4() {
                    setsockopt(s, sockopt::Ipv4RecvErr, &true)
                } else {
                    setsockopt(s, sockopt::Ipv6RecvErr, &true)
                };
            }
        }
        let gro = config.gro && setsockopt(&socket, sockopt::UdpGroSegment, &true).is_ok();
        let buf_len = if gro {
            MAX_DATAGRAM
        } else {
            config.max_packet_size
        };
        let fast = match fast {
            Some(f) => {
                // The fast queue must split what GRO coalesces exactly as
                // the main one does. If it cannot, closing it leaves the
                // group to the main socket, which then gets everything.
                if gro != (config.gro && setsockopt(&f, sockopt::UdpGroSegment, &true).is_ok()) {
                    tracing::debug!("UDP GRO on one receive queue only; one socket");
                    None
                } else {
                    Some(RxSocket::new(f, buf_len)?)
                }
            }
            None => None,
        };
        let gso = config.gso && gso_supported(&local);
        // Packets at SOCKET_PRIORITY then need no per-packet control
        // message. Best effort: without it every packet carries one.
        let socket_tos = {
            let t = tos(SOCKET_PRIORITY);
            let set = if local.is_ipv4() {
                setsockopt(&socket, sockopt::Ipv4Tos, &i32::from(t))
            } else {
                setsockopt(&socket, sockopt::Ipv6TClass, &i32::from(t))
            };
            set.is_ok().then_some(t)
        };
        let main = RxSocket::new(socket, buf_len)?;
        let link_rate_bps = config.link_rate_bps.unwrap_or(if local.ip().is_loopback() {
            100_000_000_000
        } else {
            25_000_000_000
        });
        tracing::debug!(%local, gso, gro, fast_queue = fast.is_some(), "UDP datapath bound");
        Ok(UdpDatapath {
            main,
            writer: Mutex::new(Writer::default()),
            full_buffer_waits: std::sync::atomic::AtomicU64::new(0),
            local,
            max_packet_size: config.max_packet_size,
            link_rate_bps,
            gso: AtomicBool::new(gso),
            gro,
            ipv4: local.is_ipv4(),
            fast,
            socket_tos,
        })
    }

    /// Whether high-priority packets arrive on a second socket
    /// ([`UdpConfig::fast_queue_priority`]; off if the kernel refused it).
    pub fn fast_queue_enabled(&self) -> bool {
        self.fast.is_some()
    }

    /// Read one batch from `queue` if it has any; if not, register the
    /// task's waker with it.
    fn poll_queue(
        &self,
        queue: Queue,
        cx: &mut Context<'_>,
        out: &mut Vec<Incoming>,
    ) -> Poll<io::Result<usize>> {
        let reg = self.queue(queue).reg();
        let Some(fd) = reg.as_ref() else {
            // Busy polling: the driver reads with `try_recv` and comes back
            // by itself; nothing to register.
            return Poll::Pending;
        };
        loop {
            let mut guard = std::task::ready!(fd.poll_read_ready(cx))?;
            match self.recv_batch(queue, out) {
                Ok((n, drained)) => {
                    if drained {
                        // The batch left the socket empty: the next datagram
                        // is a new edge, so clear the readiness now instead
                        // of paying for a `recvmmsg` that would only say
                        // `EAGAIN` (as tokio does for a short TCP read).
                        // Readiness that arrived since `poll_read_ready` is
                        // kept, so no wake-up is lost.
                        guard.clear_ready();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
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

    /// How many times a send found the socket buffer full and waited for
    /// room (a sign that `socket_buffer` is small for the load, or that the
    /// NIC's queue is full).
    pub fn full_buffer_waits(&self) -> u64 {
        self.full_buffer_waits.load(Ordering::Relaxed)
    }

    /// A receive queue's socket and state (the main one's if there is no
    /// fast queue).
    fn queue(&self, queue: Queue) -> &RxSocket {
        match (queue, &self.fast) {
            (Queue::Fast, Some(fast)) => fast,
            _ => &self.main,
        }
    }

    /// One `recvmmsg`, without waiting. Returns the entries appended and
    /// whether the socket was left empty: `recvmmsg` stops early only when
    /// the queue runs dry (or on an error, which the kernel reports with a
    /// fresh wake-up), so fewer datagrams than asked for means there is
    /// nothing left to read.
    fn recv_batch(&self, queue: Queue, out: &mut Vec<Incoming>) -> io::Result<(usize, bool)> {
        let rx = self.queue(queue);
        let socket = &rx.socket;
        // The stack arrays below are sized at compile time, so that a
        // two-datagram call does not set up thirty-two.
        let mut st = rx.recv.lock().unwrap_or_else(|e| e.into_inner());
        if st.batch <= MIN_RECV_BATCH {
            self.recv_up_to::<MIN_RECV_BATCH>(socket, &mut st, out)
        } else if st.batch <= 8 {
            self.recv_up_to::<8>(socket, &mut st, out)
        } else {
            self.recv_up_to::<BATCH>(socket, &mut st, out)
        }
    }

    /// One datagram from `queue`, if one is waiting: a busy-poll probe.
    /// Asking for one, not a batch, saves the kernel a second look at the
    /// queue after the datagram it finds (packets come one at a time when
    /// polling pays; a burst is left to the batched reads). It is a plain
    /// `recvmsg`, not a `recvmmsg` of one: on an empty socket, the common
    /// case while spinning, that is about 480 ns against 600 here (the
    /// headers nix builds for `recvmmsg` are allocated on every call, and
    /// the kernel copies them in), and the probe's length is how late a
    /// packet may be noticed.
    fn recv_probe(&self, queue: Queue, out: &mut Vec<Incoming>) -> io::Result<usize> {
        let rx = self.queue(queue);
        let mut st = rx.recv.lock().unwrap_or_else(|e| e.into_inner());
        let before = out.len();
        for destination in st.unreachable.drain(..) {
            out.push(Incoming::Unreachable { destination });
        }
        let gro = self.gro;
        let RecvState { bufs, cmsg, .. } = &mut *st;
        let buf = &mut bufs[0];
        let res = {
            let mut iov = [IoSliceMut::new(&mut buf[..])];
            recvmsg::<SockaddrStorage>(
                rx.socket.as_raw_fd(),
                &mut iov,
                if gro { Some(cmsg) } else { None },
                MsgFlags::MSG_DONTWAIT,
            )
            .map(|msg| datagram_of(&msg, gro))
        };
        match res {
            // A datagram without a sender cannot be answered: skipped.
            Ok((None, ..)) => {}
            Ok((Some(from), _, _, true)) => st.truncated(from),
            Ok((Some(from), len, segment, false)) => {
                push_datagram(out, from, &st.bufs[0][..len], segment)
            }
            Err(Errno::ECONNREFUSED | Errno::EHOSTUNREACH | Errno::ENETUNREACH) => {
                self.report_unreachable(&rx.socket, out);
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(e) => {
                if out.len() == before {
                    return Err(e.into());
                }
            }
        }
        Ok(out.len() - before)
    }

    /// [`recv_batch`](Self::recv_batch) for at most `N` datagrams.
    ///
    /// The call's outcome sizes the next batch (`RecvState::batch`).
    fn recv_up_to<const N: usize>(
        &self,
        socket: &std::net::UdpSocket,
        st: &mut RecvState,
        out: &mut Vec<Incoming>,
    ) -> io::Result<(usize, bool)> {
        let before = out.len();
        for destination in st.unreachable.drain(..) {
            out.push(Incoming::Unreachable { destination });
        }
        let gro = self.gro;
        // What each datagram was: sender, length, GRO segment size. On the
        // stack, like the I/O vectors: this runs for every read, and for
        // the full busy-poll probes. (nix's
        // `MultiHeaders` below still allocates on every call.)
        let mut got: [Option<(SocketAddr, usize, usize, bool)>; N] = [None; N];
        let res = {
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(
                N,
                gro.then(|| nix::cmsg_space!(libc_int)),
            );
            let mut bufs = st.bufs.iter_mut();
            let mut iovs: [[IoSliceMut<'_>; 1]; N] = std::array::from_fn(|_| {
                [IoSliceMut::new(
                    bufs.next().map(|b| &mut b[..]).unwrap_or_default(),
                )]
            });
            recvmmsg(
                socket.as_raw_fd(),
                &mut headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            )
            .map(|msgs| {
                let mut n = 0;
                for (slot, msg) in got.iter_mut().zip(msgs) {
                    n += 1;
                    // A datagram without a sender cannot be answered; skip
                    // it (its slot stays empty, so later ones keep their
                    // buffer index).
                    if let (Some(from), len, segment, truncated) = datagram_of(&msg, gro) {
                        *slot = Some((from, len, segment, truncated));
                    }
                }
                n
            })
        };
        let received = match res {
            Ok(r) => r,
            Err(Errno::ECONNREFUSED | Errno::EHOSTUNREACH | Errno::ENETUNREACH) => {
                self.report_unreachable(socket, out);
                let n = out.len() - before;
                return if n > 0 {
                    Ok((n, false))
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            Err(e) => {
                if out.len() > before {
                    return Ok((out.len() - before, false));
                }
                return Err(e.into());
            }
        };
        let drained = received < N;
        st.batch = if drained {
            MIN_RECV_BATCH
        } else {
            (N * 4).min(BATCH)
        };
        let mut cut = None;
        for (i, (from, len, segment, truncated)) in got
            .into_iter()
            .enumerate()
            .take(received)
            .filter_map(|(i, g)| Some((i, g?)))
        {
            if truncated {
                cut = Some(from);
            } else {
                push_datagram(out, from, &st.bufs[i][..len], segment);
            }
        }
        if let Some(from) = cut {
            st.truncated(from);
        }
        let n = out.len() - before;
        if n == 0 && received > 0 {
            // Everything read was skipped (truncated, or without a
            // sender): not "empty", which would clear the readiness with
            // datagrams still queued; the caller reads again.
            Err(io::ErrorKind::Interrupted.into())
        } else if n == 0 {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok((n, drained))
        }
    }

    /// A receive failed with an ICMP error pending (IP_RECVERR): learn for
    /// which destinations from the error queue, and report them.
    fn report_unreachable(&self, socket: &impl AsRawFd, out: &mut Vec<Incoming>) {
        let dests = self.drain_error_queue(socket);
        out.extend(
            dests
                .into_iter()
                .map(|destination| Incoming::Unreachable { destination }),
        );
    }

    /// Read the socket's error queue (IP_RECVERR) until it is empty: the
    /// destinations whose packets bounced.
    fn drain_error_queue(&self, socket: &impl AsRawFd) -> Vec<SocketAddr> {
        let mut dests = Vec::new();
        let mut buf = [0u8; 64];
        let mut cmsg = nix::cmsg_space!(libc_sock_extended_err, libc_sockaddr_in6);
        for _ in 0..64 {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<SockaddrStorage>(
                socket.as_raw_fd(),
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
                    let dests = self.drain_error_queue(&self.main.socket);
                    self.main
                        .recv
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
        self.send_one(&iov, &cmsgs, first.destination)
    }

    /// A lone packet at the socket's own priority: copied into one buffer
    /// and sent with `sendto`, which the kernel sets up for less than a
    /// `sendmsg` with a control message (measured on loopback: about 0.4 µs
    /// of a 4.5 µs send).
    fn send_one_plain(&self, t: &Transmit) -> io::Result<()> {
        PLAIN_BUF.with(|cell| {
            // A buffer kept per thread: a fresh one on the stack was zeroed
            // in full (2 KB) for every packet.
            let mut buf = cell.borrow_mut();
            buf.clear();
            t.write_to(&mut buf);
            self.main.socket.send_to(&buf, t.destination)?;
            Ok(())
        })
    }

    /// One `sendmsg` of `iov` to `dest`, without waiting.
    fn send_one(
        &self,
        iov: &[IoSlice<'_>],
        cmsgs: &[ControlMessage<'_>],
        dest: SocketAddr,
    ) -> io::Result<()> {
        sendmsg(
            self.main.socket.as_raw_fd(),
            iov,
            cmsgs,
            MsgFlags::MSG_DONTWAIT,
            Some(&SockaddrStorage::from(dest)),
        )?;
        Ok(())
    }

    /// One `sendmmsg` (or, for a single packet, `sendmsg`) of packets that
    /// share a priority. Nothing here allocates but `sendmsg`'s control
    /// buffer: the headers are kept per thread, and the I/O vectors and
    /// addresses live on the stack.
    fn send_mmsg(&self, run: &[Transmit]) -> io::Result<usize> {
        let run = &run[..run.len().min(BATCH)];
        let tos_byte = tos(run[0].priority);
        let tclass = i32::from(tos_byte);
        let cmsgs = [self.tos_cmsg(&tos_byte, &tclass)];
        if let [t] = run {
            if self.socket_tos == Some(tos_byte) && t.len() <= PLAIN_SEND_MAX {
                self.send_one_plain(t)?;
                return Ok(1);
            }
            let iov = [IoSlice::new(t.header()), IoSlice::new(&t.payload)];
            self.send_one(&iov, &cmsgs, t.destination)?;
            return Ok(1);
        }
        let mut iovs: [[IoSlice<'_>; 2]; BATCH] = [[IoSlice::new(&[]), IoSlice::new(&[])]; BATCH];
        let mut addrs: [Option<SockaddrStorage>; BATCH] = [None; BATCH];
        for ((iov, addr), t) in iovs.iter_mut().zip(addrs.iter_mut()).zip(run) {
            *iov = [IoSlice::new(t.header()), IoSlice::new(&t.payload)];
            *addr = Some(SockaddrStorage::from(t.destination));
        }
        let ipv4 = self.ipv4;
        SEND_HEADERS.with(|cell| {
            let mut cache = cell.borrow_mut();
            // sendmmsg leaves the headers as it found them (it writes only
            // each message's length), so they can be used again; one set per
            // address family, whose control space differs.
            let headers = &mut cache[usize::from(ipv4)];
            let headers = headers.get_or_insert_with(|| {
                let space = if ipv4 {
                    nix::cmsg_space!(u8)
                } else {
                    nix::cmsg_space!(libc_int)
                };
                MultiHeaders::<SockaddrStorage>::preallocate(BATCH, Some(space))
            });
            let results = sendmmsg(
                self.main.socket.as_raw_fd(),
                headers,
                &iovs[..run.len()],
                &addrs[..run.len()],
                cmsgs,
                MsgFlags::MSG_DONTWAIT,
            )?;
            let n = results.count();
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        })
    }
}

thread_local! {
    /// `send_one_plain`'s buffer, reused by every UDP datapath on this
    /// thread.
    static PLAIN_BUF: std::cell::RefCell<Vec<u8>> =
        std::cell::RefCell::new(Vec::with_capacity(PLAIN_SEND_MAX));
    /// `sendmmsg` headers for IPv6 (index 0) and IPv4 (index 1), reused by
    /// every UDP datapath on this thread.
    static SEND_HEADERS: std::cell::RefCell<[Option<MultiHeaders<SockaddrStorage>>; 2]> =
        const { std::cell::RefCell::new([None, None]) };
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
            let mut st = self.main.recv.lock().unwrap_or_else(|e| e.into_inner());
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
        // ICMP errors (IP_RECVERR): an error alone does not make a socket
        // readable (tokio wakes readers for data only), and the next send
        // that would report it may never come. So look at each socket's
        // error readiness here, which costs no system call while it is
        // clear; the driver polls at least every engine tick while RPCs are
        // active (the first tick of an engine that held none comes
        // `resend_after` after its first RPC starts, so an unreachable peer
        // may be reported that late). With a fast queue the kernel files
        // each error with whichever socket of the port its lookup hashes
        // to. (While busy polling nothing is registered: the driver's reads
        // meet the error.)
        for rx in std::iter::once(&self.main).chain(&self.fast) {
            let reg = rx.reg();
            let Some(fd) = reg.as_ref() else { continue };
            if let Ok(dests) = fd.try_io(Interest::ERROR, |_| {
                let dests = self.drain_error_queue(&rx.socket);
                if dests.is_empty() {
                    Err(io::ErrorKind::WouldBlock.into())
                } else {
                    Ok(dests)
                }
            }) {
                let n = dests.len();
                out.extend(
                    dests
                        .into_iter()
                        .map(|destination| Incoming::Unreachable { destination }),
                );
                return Poll::Ready(Ok(n));
            }
        }
        if self.fast.is_none() {
            return self.poll_queue(Queue::Main, cx, out);
        }
        // The fast queue first: whatever is there was sent at a higher
        // priority than anything in the main one. Polling it also registers
        // our waker with it, so a packet there wakes us like one here.
        if let Poll::Ready(r) = self.poll_queue(Queue::Fast, cx, out) {
            return Poll::Ready(r);
        }
        // The fast queue's readiness comes from the reactor, which a busy
        // current-thread runtime polls only every few dozen task polls: a
        // packet may be waiting there although the readiness says not. So
        // whenever the main queue gives a batch (up to two megabytes of
        // copying on loopback, during which more short packets arrive), look
        // at the fast one directly too, and put what it has first. When the
        // main queue is empty this costs nothing.
        let before = out.len();
        let r = std::task::ready!(self.poll_queue(Queue::Main, cx, out));
        let main = r?;
        match self.recv_batch(Queue::Fast, out) {
            Ok((n, _)) => {
                out[before..].rotate_right(n);
                Poll::Ready(Ok(main + n))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Poll::Ready(Ok(main))
            }
            // The main queue's batch is handed out; the error comes back
            // on the next call.
            Err(_) => Poll::Ready(Ok(main)),
        }
    }

    fn try_recv(&self, out: &mut Vec<Incoming>) -> io::Result<usize> {
        // Busy polling calls this in a loop; a quiet socket costs one
        // `recvmmsg` of a few headers (the batch shrinks when calls come
        // back short), and a packet is read by the same call that finds it.
        let queues: &[Queue] = if self.fast.is_some() {
            &[Queue::Fast, Queue::Main]
        } else {
            &[Queue::Main]
        };
        for &q in queues {
            match self.recv_batch(q, out) {
                Ok((n, _)) => return Ok(n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(0)
    }

    fn set_busy_polling(&self, on: bool) -> io::Result<()> {
        for rx in std::iter::once(&self.main).chain(&self.fast) {
            let mut reg = rx.reg();
            if on {
                // Dropping the registration takes the socket out of the
                // reactor (one epoll_ctl, one close).
                *reg = None;
            } else if reg.is_none() {
                // A new registration reports what is already queued, so
                // nothing that arrived meanwhile goes unnoticed.
                *reg = Some(register_dup(&rx.socket, Interest::READABLE)?);
            }
        }
        Ok(())
    }

    fn try_recv_urgent(&self, out: &mut Vec<Incoming>) -> io::Result<usize> {
        // The fast queue holds every packet at a priority of at least
        // `fast_queue_priority` (control, short messages): one look there.
        let queue = if self.fast.is_some() {
            Queue::Fast
        } else {
            Queue::Main
        };
        self.recv_probe(queue, out)
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmits: &[Transmit]) -> Poll<io::Result<usize>> {
        if transmits.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut first = true;
        loop {
            // Try first: the socket buffer is almost never full, and write
            // readiness is registered only once it has been.
            let result = match self.send_batch(transmits) {
                Ok(0) => Err(io::ErrorKind::WouldBlock.into()),
                r => r,
            };
            match result {
                Ok(n) => {
                    if first {
                        writer.clear_sends = writer.clear_sends.saturating_add(1);
                        if writer.clear_sends >= WRITER_IDLE_SENDS {
                            writer.fd = None;
                        }
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_fatal_send_error(&e) => return Poll::Ready(Err(e)),
                Err(e) => {
                    // A packet the kernel refuses (say, no route to its
                    // destination) is a lost packet, not a dead endpoint.
                    tracing::debug!(error = %e, dest = %transmits[0].destination, "packet dropped by the kernel");
                    return Poll::Ready(Ok(1));
                }
            }
            // The socket buffer is full: wait for room.
            if first {
                self.full_buffer_waits.fetch_add(1, Ordering::Relaxed);
            }
            first = false;
            writer.clear_sends = 0;
            let fd = match &mut writer.fd {
                Some(fd) => fd,
                slot @ None => {
                    // A new registration reports the socket's state at the
                    // time it is made, so room freed since the failed send
                    // is not missed.
                    slot.insert(register_dup(&self.main.socket, Interest::WRITABLE)?)
                }
            };
            let mut guard = std::task::ready!(fd.poll_write_ready(cx))?;
            // The readiness may be stale (edges from sends that went
            // through): clear it and let the next attempt decide.
            guard.clear_ready();
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

    fn recv_queue_limit(&self) -> Option<usize> {
        // The kernel queues a datagram while the socket's memory, counted in
        // `truesize` (payload plus buffer overhead, so more than the packet
        // bytes we count), is at most SO_RCVBUF as read back; the last one
        // admitted may go over by its own size, a GRO batch at most. The
        // slack covers that.
        const SLACK: usize = 256 << 10;
        let mut limit = 0usize;
        for rx in std::iter::once(&self.main).chain(&self.fast) {
            let size = socket2::SockRef::from(&rx.socket).recv_buffer_size().ok()?;
            limit = limit.saturating_add(size).saturating_add(SLACK);
        }
        Some(limit)
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

    /// The unscheduled DATA packets of a `body` request from `a` to `b`,
    /// built by a real engine (so that runs of them exercise GSO grouping).
    fn request_packets(a: &UdpDatapath, b: &UdpDatapath, body: Bytes) -> Vec<Transmit> {
        let mut engine =
            homa_core::Endpoint::new(homa_core::Config::default(), a.local_addr().unwrap())
                .unwrap();
        let mut dest = b.local_addr().unwrap();
        dest.set_port(1000);
        engine
            .send_request(homa_core::Instant::ZERO, dest, body)
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
        ts
    }

    /// Send all of `ts` from `a`.
    async fn send_all(a: &UdpDatapath, ts: &[Transmit]) {
        let mut sent = 0;
        while sent < ts.len() {
            sent += futures::future::poll_fn(|cx| a.poll_send(cx, &ts[sent..]))
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn packets_cross_loopback_in_batches() {
        let a = UdpDatapath::bind("127.0.0.1:0".parse().unwrap(), &UdpConfig::default()).unwrap();
        let b = UdpDatapath::bind("127.0.0.1:0".parse().unwrap(), &UdpConfig::default()).unwrap();
        let ts = request_packets(&a, &b, Bytes::from(vec![7u8; 20_000]));
        assert!(ts.len() > 10);
        send_all(&a, &ts).await;
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

    /// A busy-poll probe reads one datagram; when GSO and GRO carried a run
    /// of packets as one, the probe splits it back into the same packets.
    /// (Where the kernel has no GSO or GRO, the run travels as separate
    /// datagrams and only the packets' bytes are checked.)
    #[tokio::test]
    async fn a_probe_splits_a_coalesced_run_into_its_packets() {
        let a = UdpDatapath::bind("127.0.0.1:0".parse().unwrap(), &UdpConfig::default()).unwrap();
        let b = UdpDatapath::bind("127.0.0.1:0".parse().unwrap(), &UdpConfig::default()).unwrap();
        assert!(b.fast_queue_enabled());
        // 14,000 bytes: all unscheduled, at priority 5, so the fast queue.
        let body: Vec<u8> = (0..14_000u32).map(|i| (i % 251) as u8).collect();
        let ts = request_packets(&a, &b, Bytes::from(body));
        assert!(
            ts.len() >= 10 && ts.iter().all(|t| t.priority == 5),
            "{}",
            ts.len()
        );
        send_all(&a, &ts).await;
        let mut got = Vec::new();
        let mut most = 0;
        // Probe until everything is in (a hang guard of 10 s, not a timing).
        for _ in 0..10_000 {
            if got.len() >= ts.len() {
                break;
            }
            match b.try_recv_urgent(&mut got).unwrap() {
                0 => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
                n => most = most.max(n),
            }
        }
        assert_eq!(got.len(), ts.len());
        for (t, g) in ts.iter().zip(&got) {
            let Incoming::Packet { from, data } = g else {
                panic!("unexpected {g:?}")
            };
            assert_eq!(*from, a.local_addr().unwrap());
            assert_eq!(&data[..], &t.to_vec()[..]);
        }
        if a.gso.load(Ordering::Relaxed) && b.gro {
            assert!(
                most > 1,
                "GSO and GRO on, yet no probe found a coalesced run"
            );
        }
    }

    /// Send `payload` to `to` from `from` with the TOS / traffic class of
    /// Homa priority `priority`.
    fn send_at(from: &socket2::Socket, to: SocketAddr, priority: u8, payload: &[u8]) {
        if to.is_ipv4() {
            from.set_tos_v4(u32::from(tos(priority))).unwrap();
        } else {
            from.set_tclass_v6(u32::from(tos(priority))).unwrap();
        }
        from.send_to(payload, &to.into()).unwrap();
    }

    fn payloads(got: &[Incoming]) -> Vec<Vec<u8>> {
        got.iter()
            .map(|g| match g {
                Incoming::Packet { data, .. } => data.to_vec(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    async fn steers_by_priority(local: &str) {
        let Ok(dp) = UdpDatapath::bind(local.parse().unwrap(), &UdpConfig::default()) else {
            eprintln!("cannot bind {local}: skipped");
            return;
        };
        assert!(dp.fast_queue_enabled());
        let to = dp.local_addr().unwrap();
        let tx = socket2::Socket::new(socket2::Domain::for_address(to), socket2::Type::DGRAM, None)
            .unwrap();
        // Bulk first, then the short ones: a single FIFO queue would hand
        // them out in this order.
        for p in 0..=4 {
            send_at(&tx, to, p, &[p; 3000]);
        }
        for p in 5..=7 {
            send_at(&tx, to, p, &[p; 10]);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut got = Vec::new();
        futures::future::poll_fn(|cx| dp.poll_recv(cx, &mut got))
            .await
            .unwrap();
        while got.len() < 8 {
            futures::future::poll_fn(|cx| dp.poll_recv(cx, &mut got))
                .await
                .unwrap();
        }
        let firsts: Vec<u8> = payloads(&got).iter().map(|p| p[0]).collect();
        assert_eq!(firsts, [5, 6, 7, 0, 1, 2, 3, 4], "priorities 5..7 first");
    }

    /// Our own sends carry their priority whichever way they go out (a
    /// lone packet at the socket's own priority, 7, without a control
    /// message; the others with one), and a busy-poll probe reads one
    /// datagram, from the fast queue only.
    #[tokio::test]
    async fn our_priorities_reach_their_queues_and_probes_read_the_fast_one() {
        let a = UdpDatapath::bind("127.0.0.1:0".parse().unwrap(), &UdpConfig::default()).unwrap();
        let b = UdpDatapath::bind("127.0.0.1:0".parse().unwrap(), &UdpConfig::default()).unwrap();
        assert!(b.fast_queue_enabled());
        assert_eq!(a.socket_tos, Some(tos(SOCKET_PRIORITY)));
        let to = b.local_addr().unwrap();
        let mut engine =
            homa_core::Endpoint::new(homa_core::Config::default(), a.local_addr().unwrap())
                .unwrap();
        let mut dest = to;
        dest.set_port(1000);
        engine
            .send_request(homa_core::Instant::ZERO, dest, Bytes::from_static(b"x"))
            .unwrap();
        let mut first = engine.poll_transmit(homa_core::Instant::ZERO).unwrap();
        first.destination = to;
        // Bulk priorities first: one FIFO queue would hand them out first.
        for p in 0..=7u8 {
            let mut t = first.clone();
            t.priority = p;
            t.payload = Bytes::from(vec![p; 10]);
            let n = futures::future::poll_fn(|cx| a.poll_send(cx, std::slice::from_ref(&t)))
                .await
                .unwrap();
            assert_eq!(n, 1);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut got = Vec::new();
        for want in 1..=3 {
            assert_eq!(b.try_recv_urgent(&mut got).unwrap(), 1);
            assert_eq!(got.len(), want);
        }
        assert_eq!(
            b.try_recv_urgent(&mut got).unwrap(),
            0,
            "the main queue is not probed"
        );
        while got.len() < 8 {
            assert!(b.try_recv(&mut got).unwrap() > 0);
        }
        let lasts: Vec<u8> = payloads(&got).iter().map(|p| *p.last().unwrap()).collect();
        assert_eq!(lasts, [5, 6, 7, 0, 1, 2, 3, 4]);
    }

    /// While the driver busy-polls, the sockets are out of the reactor:
    /// `poll_recv` reads and registers nothing. Switched back, what arrived
    /// meanwhile (on either queue) is delivered, and a later datagram wakes
    /// a waiting task: nothing is lost across the switch.
    #[tokio::test]
    async fn busy_polling_leaves_the_reactor_and_loses_nothing() {
        let b = UdpDatapath::bind("127.0.0.1:0".parse().unwrap(), &UdpConfig::default()).unwrap();
        assert!(b.fast_queue_enabled());
        let to = b.local_addr().unwrap();
        let tx = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        let regs = |b: &UdpDatapath| {
            [
                b.main.reg().is_some(),
                b.fast.as_ref().unwrap().reg().is_some(),
            ]
        };
        assert_eq!(regs(&b), [true, true]);
        b.set_busy_polling(true).unwrap();
        assert_eq!(regs(&b), [false, false]);
        send_at(&tx, to, 0, b"main");
        send_at(&tx, to, 7, b"fast");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let mut got = Vec::new();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(b.poll_recv(&mut cx, &mut got).is_pending());
        assert!(got.is_empty());

        b.set_busy_polling(false).unwrap();
        assert_eq!(regs(&b), [true, true]);
        let read_two = async {
            while got.len() < 2 {
                futures::future::poll_fn(|cx| b.poll_recv(cx, &mut got))
                    .await
                    .unwrap();
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), read_two)
            .await
            .expect("datagrams that arrived while polling are delivered");
        assert_eq!(payloads(&got), [b"fast".to_vec(), b"main".to_vec()]);

        let mut later = Vec::new();
        let wait = futures::future::poll_fn(|cx| b.poll_recv(cx, &mut later));
        let send = async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            send_at(&tx, to, 7, b"later");
        };
        let (r, ()) = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            futures::future::join(wait, send),
        )
        .await
        .expect("a datagram after the switch wakes the task");
        r.unwrap();
        assert_eq!(payloads(&later), [b"later".to_vec()]);
    }

    #[tokio::test]
    async fn high_priorities_are_read_first_ipv4() {
        steers_by_priority("127.0.0.1:0").await;
    }

    #[tokio::test]
    async fn high_priorities_are_read_first_ipv6() {
        steers_by_priority("[::1]:0").await;
    }

    #[tokio::test]
    async fn unreachable_is_reported_whichever_socket_the_error_reaches() {
        // The kernel files each ICMP error with one socket of the port's
        // group, chosen by a hash of the addresses: with eight dead ports,
        // the chance that none of their errors reaches the fast socket is
        // 1 in 256.
        let dp = UdpDatapath::bind("127.0.0.1:0".parse().unwrap(), &UdpConfig::default()).unwrap();
        assert!(dp.fast_queue_enabled());
        // Free ports a server could have (Homa servers use ports below the
        // ephemeral range).
        let dead: Vec<SocketAddr> = (20_000..30_000u16)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .filter(|a| std::net::UdpSocket::bind(a).is_ok())
            .take(8)
            .collect();
        let mut engine =
            homa_core::Endpoint::new(homa_core::Config::default(), dp.local_addr().unwrap())
                .unwrap();
        let mut ts = Vec::new();
        for d in &dead {
            engine
                .send_request(homa_core::Instant::ZERO, *d, Bytes::from_static(b"anyone?"))
                .unwrap();
        }
        while let Some(t) = engine.poll_transmit(homa_core::Instant::ZERO) {
            ts.push(t);
        }
        let mut reported = std::collections::HashSet::new();
        for t in &ts {
            // One at a time: a send can meet the error of the one before.
            futures::future::poll_fn(|cx| dp.poll_send(cx, std::slice::from_ref(t)))
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        for _ in 0..200 {
            let mut got = Vec::new();
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(10),
                futures::future::poll_fn(|cx| dp.poll_recv(cx, &mut got)),
            )
            .await;
            for g in got {
                if let Incoming::Unreachable { destination } = g {
                    reported.insert(destination);
                }
            }
            if reported.len() == dead.len() {
                break;
            }
        }
        let missing: Vec<_> = dead.iter().filter(|d| !reported.contains(d)).collect();
        assert!(
            missing.is_empty(),
            "never reported unreachable: {missing:?}"
        );
    }

    /// Without GRO the receive buffers are `max_packet_size` long. A
    /// longer datagram (from a peer configured for larger packets) is
    /// dropped, not handed on cut short, and the buffers grow: the next
    /// one comes through whole, by a batched read and by a probe alike.
    #[tokio::test]
    async fn a_datagram_longer_than_the_buffers_is_dropped_and_they_grow() {
        // The batched read gets two datagrams first, both cut short (the
        // buffers grow after the batch): nothing is kept from that read,
        // and the next one finds what came after. A probe reads one at a
        // time, so the second 9,000-byte datagram already fits.
        for probe in [false, true] {
            let config = UdpConfig {
                gro: false,
                fast_queue_priority: None,
                ..UdpConfig::default()
            };
            let dp = UdpDatapath::bind("127.0.0.1:0".parse().unwrap(), &config).unwrap();
            let to = dp.local_addr().unwrap();
            let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let sends: &[(u8, usize)] = if probe {
                &[(1, 9000), (2, 100), (3, 9000)]
            } else {
                &[(1, 9000), (4, 9000), (2, 100), (3, 9000)]
            };
            for &(b, n) in sends {
                tx.send_to(&vec![b; n], to).unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let mut got = Vec::new();
            let read = async {
                while got.len() < 2 {
                    if probe {
                        let _ = dp.try_recv_urgent(&mut got).unwrap();
                    } else {
                        let _ = futures::future::poll_fn(|cx| dp.poll_recv(cx, &mut got))
                            .await
                            .unwrap();
                    }
                    tokio::task::yield_now().await;
                }
            };
            tokio::time::timeout(std::time::Duration::from_secs(10), read)
                .await
                .expect("the datagrams after the long ones never came");
            let lens: Vec<(u8, usize)> = payloads(&got).iter().map(|p| (p[0], p.len())).collect();
            assert_eq!(lens, [(2, 100), (3, 9000)], "probe: {probe}");
        }
    }

    #[tokio::test]
    async fn one_queue_when_asked() {
        let config = UdpConfig {
            fast_queue_priority: None,
            ..UdpConfig::default()
        };
        let dp = UdpDatapath::bind("127.0.0.1:0".parse().unwrap(), &config).unwrap();
        assert!(!dp.fast_queue_enabled());
    }

    #[tokio::test]
    async fn a_port_in_use_is_refused_not_shared() {
        let a = UdpDatapath::bind("127.0.0.1:0".parse().unwrap(), &UdpConfig::default()).unwrap();
        // Another endpoint on the same port would have joined the first's
        // SO_REUSEPORT group and received nothing.
        let err = UdpDatapath::bind(a.local_addr().unwrap(), &UdpConfig::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
