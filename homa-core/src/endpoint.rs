//! The engine: one [`Endpoint`] owns one link, its RPCs, peers, grant
//! scheduler and pacer.
//!

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::Bytes;

use crate::config::{Config, NUM_PRIORITIES};
use crate::error::{ConfigError, RpcError, SendError};
use crate::message::{InMessage, Insert, OutMessage};
use crate::metrics::{DropReason, Metrics};
use crate::peer::Peers;
use crate::time::Instant;
use crate::util::{FastMap, Rng};
use crate::wire::{
    AckRecord, AckRepr, Common, CutoffsRepr, DataRepr, GrantRepr, PacketType, Repr, ResendRepr,
    DATA_FLAG_INCAST, DATA_HEADER_LEN, MAX_ACKS, MAX_HEADER_LEN,
};

/// Priority used for control packets (grants, resends, acks, ...): the
/// highest, so they overtake data queued at switches.
const CONTROL_PRIORITY: u8 = 7;
/// Priority requested for retransmissions (DESIGN.md: resent data goes at 7).
const RESEND_PRIORITY: u8 = 7;
/// Largest port number for servers; client ports are at or above 0x8000.
const MAX_SERVER_PORT: u16 = 0x7fff;
/// Client RPC ids carry the RPC's slot in bits 1..=SLOT_BITS, so a response
/// finds its RPC by index (checked against the whole id) with no hash map.
/// The bits above come from a random base plus a sequence number, so ids are
/// even, differ between engines sharing an address, and do not repeat for
/// 2^43 RPCs. `Config::max_rpcs` is limited to 2^SLOT_BITS.
pub(crate) const SLOT_BITS: u32 = 20;
/// Piggybacked acks the engine holds before applying the oldest one at
/// once (see `Endpoint::reap`): a busy-polled server applies each one
/// within a round trip, and a few dozen cover a burst of requests.
const MAX_DEFERRED_ACKS: usize = 64;

/// Identifies a client RPC on this endpoint (an even number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RpcId(pub u64);

/// Identifies a server RPC on this endpoint: the client's address and the
/// server-side id (the client's id with the low bit set). Obtained from
/// [`Event::Request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerRpcId {
    /// Address of the client that sent the request.
    pub client: SocketAddr,
    /// Server-side RPC id (odd).
    pub id: u64,
    /// Where the engine keeps the RPC: a shortcut that is checked against
    /// `client` and `id` before use, so a stale handle is still rejected.
    slot: u32,
}

/// Something the application must hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A complete request arrived; answer it with
    /// [`Endpoint::send_response`]. Each request is reported once.
    Request {
        /// Handle for the response.
        rpc: ServerRpcId,
        /// The request message.
        body: Bytes,
    },
    /// The response to a client RPC arrived; the RPC is over.
    Response {
        /// The RPC, as returned by [`Endpoint::send_request`].
        id: RpcId,
        /// The response message.
        body: Bytes,
    },
    /// A client RPC failed; the RPC is over.
    Failed {
        /// The RPC, as returned by [`Endpoint::send_request`].
        id: RpcId,
        /// Why.
        error: RpcError,
    },
}

/// A packet for the datapath to send: a small header and a payload slice of
/// the message, so the datapath can gather without copying.
#[must_use = "a Transmit must be sent (or deliberately dropped) by the datapath"]
#[derive(Clone)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// Priority 0–7 (7 highest): map to DSCP, a PCP tag or a switch queue.
    pub priority: u8,
    header: [u8; MAX_HEADER_LEN],
    header_len: u8,
    /// DATA payload (empty for other types).
    pub payload: Bytes,
}

impl Transmit {
    pub(crate) fn new(destination: SocketAddr, priority: u8, repr: &Repr, payload: Bytes) -> Self {
        let mut header = [0u8; MAX_HEADER_LEN];
        let header_len = repr.header_len();
        repr.emit(&mut header[..header_len]);
        Transmit {
            destination,
            priority,
            header,
            header_len: header_len as u8,
            payload,
        }
    }

    /// The Homa header bytes.
    pub fn header(&self) -> &[u8] {
        &self.header[..self.header_len as usize]
    }

    /// Total packet length (header + payload).
    pub fn len(&self) -> usize {
        self.header_len as usize + self.payload.len()
    }

    /// Always false: every packet has a header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The packet type.
    pub fn packet_type(&self) -> PacketType {
        PacketType::from_u8(self.header[11]).unwrap_or(PacketType::Freeze)
    }

    /// Append the whole packet (header then payload) to `buf`.
    pub fn write_to(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self.header());
        buf.extend_from_slice(&self.payload);
    }

    /// The whole packet in one new buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        self.write_to(&mut v);
        v
    }
}

impl core::fmt::Debug for Transmit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transmit")
            .field("destination", &self.destination)
            .field("priority", &self.priority)
            .field("type", &self.packet_type())
            .field("len", &self.len())
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Client: sending the request and/or receiving the response.
    Client,
    /// Server: receiving the request.
    ServerIncoming,
    /// Server: request delivered, waiting for the application's response.
    ServerInService,
    /// Server: sending the response, then waiting for the client's ack.
    ServerOutgoing,
    /// Server: the client acknowledged the response (an ack piggybacked on
    /// a request); nothing more is sent or answered for it, and the next
    /// `Endpoint::reap` frees it.
    ServerAcked,
}

#[derive(Debug)]
pub(crate) struct Rpc {
    /// Local id: even for client RPCs, odd for server RPCs.
    pub id: u64,
    pub peer: SocketAddr,
    /// Index of `peer` in `Endpoint::peers`.
    pub peer_idx: u32,
    pub state: State,
    pub out: Option<OutMessage>,
    /// Boxed: only multi-packet messages have one, and it keeps `Rpc` small.
    pub inm: Option<Box<InMessage>>,
    pub last_heard: Instant,
    pub last_resend: Instant,
    /// Probes (RESEND or NEED_ACK) sent since `probes_since`, the value of
    /// `last_heard` when counting began: hearing from the peer restarts it.
    pub probes: u8,
    pub probes_since: Instant,
    pub birth: u64,
    /// Listed in `Endpoint::sendable`.
    pub in_sendable: bool,
    /// Listed in `Endpoint::incoming`.
    pub in_incoming: bool,
    /// Server: the client marked the request (incast).
    pub incast: bool,
}

impl Rpc {
    fn is_client(&self) -> bool {
        self.id & 1 == 0
    }
}

/// The sans-IO Homa engine: one per link. See the crate docs for the
/// protocol.
///
/// # Call order
///
/// A driver (the tokio adapter, the DPDK polling core, the simulator) loops:
///
/// 1. feed input: [`Endpoint::handle_packet`] for every packet received,
///    [`Endpoint::handle_timeout`] when the deadline from
///    [`Endpoint::poll_timeout`] has passed, and application commands
///    ([`Endpoint::send_request`], [`Endpoint::send_response`],
///    [`Endpoint::abort`]);
/// 2. drain [`Endpoint::poll_transmit`] until it returns `None` and send each
///    [`Transmit`];
/// 3. drain [`Endpoint::poll_event`] and hand events to the application;
/// 4. sleep until the next packet, command, or [`Endpoint::poll_timeout`].
///
/// `poll_transmit` may return `None` while data is still waiting, because the
/// pacer holds it back; `poll_timeout` then includes the moment the pacer will
/// let it go.
///
/// ```
/// use homa_core::{Config, Endpoint, Event, Instant};
/// use bytes::Bytes;
///
/// let now = Instant::ZERO;
/// let a: std::net::SocketAddr = "10.0.0.1:40000".parse().unwrap();
/// let b: std::net::SocketAddr = "10.0.0.2:80".parse().unwrap();
/// let mut client = Endpoint::new(Config { seed: 1, ..Config::default() }, a).unwrap();
/// let mut server = Endpoint::new(Config { seed: 2, ..Config::default() }, b).unwrap();
///
/// let id = client.send_request(now, b, Bytes::from_static(b"ping")).unwrap();
/// while let Some(t) = client.poll_transmit(now) {
///     server.handle_packet(now, a, Bytes::from(t.to_vec()));
/// }
/// let Some(Event::Request { rpc, body }) = server.poll_event() else { panic!() };
/// assert_eq!(&body[..], b"ping");
/// server.send_response(now, rpc, Bytes::from_static(b"pong")).unwrap();
/// while let Some(t) = server.poll_transmit(now) {
///     client.handle_packet(now, b, Bytes::from(t.to_vec()));
/// }
/// assert_eq!(client.poll_event(), Some(Event::Response { id, body: Bytes::from_static(b"pong") }));
/// ```
pub struct Endpoint {
    pub(crate) config: Config,
    local: SocketAddr,
    /// Random base of the upper id bits, and the sequence added to it.
    id_base: u64,
    id_seq: u64,
    /// Client RPCs held (they are found by slot, not in a map).
    n_clients: usize,
    pub(crate) rpcs: Vec<Option<Rpc>>,
    free_slots: Vec<u32>,
    servers: FastMap<(SocketAddr, u64), u32>,
    pub(crate) peers: Peers,
    /// RPCs with an outgoing message that may have something to transmit.
    pub(crate) sendable: Vec<u32>,
    /// RPCs with an incomplete incoming message.
    pub(crate) incoming: Vec<u32>,
    pub(crate) control: VecDeque<Transmit>,
    events: VecDeque<Event>,
    pub(crate) metrics: Metrics,
    pub(crate) buffered: usize,
    births: u64,
    /// When the link will have sent everything handed to it so far.
    pub(crate) link_idle: Instant,
    /// Set when the pacer held data back: when to try again.
    pub(crate) pacer_wakeup: Option<Instant>,
    pub(crate) next_tick: Option<Instant>,
    /// Bytes granted by SRPT since the last FIFO grant.
    pub(crate) grant_fifo_credit: u64,
    /// Bytes sent by SRPT since the last oldest-first packet.
    pub(crate) send_fifo_credit: u64,
    pub(crate) grants_dirty: bool,
    pub(crate) scratch: Vec<u32>,
    /// RPCs acknowledged by acks piggybacked on requests
    /// (`State::ServerAcked`), with their ids, not freed yet (see
    /// [`reap`](Self::reap)).
    deferred_acks: VecDeque<(u32, u64)>,
}

impl core::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Endpoint")
            .field("local", &self.local)
            .field("rpcs", &(self.n_clients + self.servers.len()))
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// A new engine for the link at `local` (in UDP mode, the socket address;
    /// the Homa port is the UDP port).
    ///
    /// # Errors
    /// [`ConfigError`] if the config is inconsistent (see [`Config::validate`]).
    pub fn new(config: Config, local: SocketAddr) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut rng = Rng::new(config.seed);
        // A random even base, so that engines sharing an IP address (and a
        // restarted engine) do not reuse each other's ids.
        let id_base = rng.next_u64();
        Ok(Endpoint {
            config,
            local,
            id_base,
            id_seq: 0,
            n_clients: 0,
            rpcs: Vec::new(),
            free_slots: Vec::new(),
            servers: FastMap::default(),
            peers: Peers::default(),
            sendable: Vec::new(),
            incoming: Vec::new(),
            control: VecDeque::new(),
            events: VecDeque::new(),
            metrics: Metrics::default(),
            buffered: 0,
            births: 0,
            link_idle: Instant::ZERO,
            pacer_wakeup: None,
            next_tick: None,
            grant_fifo_credit: 0,
            send_fifo_credit: 0,
            grants_dirty: false,
            deferred_acks: VecDeque::new(),
            scratch: Vec::new(),
        })
    }

    /// The engine's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The local address this engine sends from.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A snapshot of the counters and gauges.
    pub fn metrics(&self) -> Metrics {
        let mut m = self.metrics.clone();
        m.active_client_rpcs = self.n_clients as u64;
        m.active_server_rpcs = self.servers.len() as u64;
        m.active_peers = self.peers.len() as u64;
        m.buffered_bytes = self.buffered as u64;
        m.incoming_messages = self.incoming.len() as u64;
        m.incoming_granted_unreceived = self
            .incoming
            .iter()
            .filter_map(|&i| self.rpc(i).inm.as_ref())
            .map(|m| u64::from(m.outstanding()))
            .sum();
        m.outgoing_messages = self
            .rpcs
            .iter()
            .flatten()
            .filter(|r| r.out.as_ref().is_some_and(|o| !o.all_sent()))
            .count() as u64;
        m.remembered_acks = self.peers.values().map(|p| p.tombstones.len() as u64).sum();
        m
    }

    /// Whether this engine has RPCs in progress, each with packets still
    /// to come from its peer, now or once the application has answered:
    /// the response to a client RPC, the rest of a request, or the
    /// acknowledgment of a response (which a closed-loop client piggybacks
    /// on its next request). A busy-polling adapter uses it to keep
    /// spinning for a while after the application's last work, rather than
    /// only for a fixed window after the last packet.
    ///
    /// ```
    /// use homa_core::{Config, Endpoint, Instant};
    /// let mut e = Endpoint::new(Config::default(), "10.0.0.1:4000".parse().unwrap()).unwrap();
    /// assert!(!e.awaits_packets());
    /// e.send_request(Instant::ZERO, "10.0.0.2:4000".parse().unwrap(), bytes::Bytes::from_static(b"hi"))
    ///     .unwrap();
    /// assert!(e.awaits_packets()); // the response is due
    /// ```
    pub fn awaits_packets(&self) -> bool {
        // Every incoming message belongs to one of these RPCs.
        self.n_clients > 0 || !self.servers.is_empty()
    }

    /// A cheap snapshot of the scheduling state: what this engine has yet to
    /// receive and to send, and how much of it is granted. Unlike
    /// [`metrics`](Self::metrics) it looks only at incomplete messages, so a
    /// simulator can sample it often.
    pub fn backlog(&self) -> Backlog {
        let mut b = Backlog::default();
        for &i in &self.incoming {
            if let Some(m) = self.rpc(i).inm.as_ref() {
                b.in_messages += 1;
                b.in_unreceived += u64::from(m.length - m.received);
                b.in_outstanding += u64::from(m.outstanding());
                b.in_ungranted += u64::from(m.length - m.granted);
                if m.granted < m.length {
                    b.in_needing_grants += 1;
                }
            }
        }
        for &i in &self.sendable {
            if let Some(o) = self.rpc(i).out.as_ref() {
                b.out_unsent += u64::from(o.length - o.next_offset);
                b.out_granted_unsent +=
                    u64::from(o.granted.min(o.length).saturating_sub(o.next_offset));
            }
        }
        b
    }

    // ----- commands from the application -------------------------------

    /// Start a client RPC: send `body` as a request to the server at `dest`.
    ///
    /// # Errors
    /// [`SendError::MessageTooLong`], [`SendError::TooManyRpcs`] or
    /// [`SendError::InvalidDestination`]; nothing is sent then.
    pub fn send_request(
        &mut self,
        now: Instant,
        dest: SocketAddr,
        body: Bytes,
    ) -> Result<RpcId, SendError> {
        self.check_length(body.len())?;
        if dest.port() == 0 || dest.port() > MAX_SERVER_PORT {
            return Err(SendError::InvalidDestination(dest));
        }
        let known = self.peer_within_limits(now, dest)?;
        let flags = match self.config.incast_threshold {
            Some(t) if self.n_clients >= t => DATA_FLAG_INCAST,
            _ => 0,
        };
        let pidx = match known {
            Some(p) => p,
            None => self.peers.entry(dest, self.config.unsched_cutoffs),
        };
        let peer = self.peers.at_mut(pidx);
        let unsched_priority = unsched_priority(&peer.cutoffs, body.len() as u32);
        peer.rpcs += 1;
        let unsched = round_up(self.config.unsched_bytes, self.config.max_payload());
        let out = OutMessage::new(body, unsched, unsched_priority, flags);
        let idx = self.insert_rpc(now, 0, dest, pidx, State::Client, Some(out));
        let id = loop {
            self.id_seq = self.id_seq.wrapping_add(1);
            let id =
                (self.id_base.wrapping_add(self.id_seq) << (SLOT_BITS + 1)) | (u64::from(idx) << 1);
            // Client id 0 means "no ack" on the wire.
            if id != 0 {
                break id;
            }
        };
        self.rpc_mut(idx).id = id;
        self.n_clients += 1;
        self.mark_sendable(idx);
        Ok(RpcId(id))
    }

    /// Answer a request delivered as [`Event::Request`].
    ///
    /// # Errors
    /// [`SendError::MessageTooLong`], or [`SendError::UnknownRpc`] if the RPC
    /// is gone (its client aborted or went silent) or was already answered.
    pub fn send_response(
        &mut self,
        now: Instant,
        rpc: ServerRpcId,
        body: Bytes,
    ) -> Result<(), SendError> {
        self.check_length(body.len())?;
        let Some(idx) = self.server_slot(&rpc) else {
            return Err(SendError::UnknownRpc(rpc.id));
        };
        if self.rpc(idx).state != State::ServerInService {
            return Err(SendError::UnknownRpc(rpc.id));
        }
        let cutoffs = self.peers.at(self.rpc(idx).peer_idx).cutoffs;
        let max_payload = self.config.max_payload();
        let unsched = if self.rpc(idx).incast {
            round_up(self.config.incast_unsched_bytes, max_payload)
        } else {
            round_up(self.config.unsched_bytes, max_payload)
        };
        let prio = unsched_priority(&cutoffs, body.len() as u32);
        let r = self.rpc_mut(idx);
        r.out = Some(OutMessage::new(body, unsched, prio, 0));
        r.state = State::ServerOutgoing;
        // The client has been waiting on us: do not count that as silence.
        r.last_heard = now;
        self.mark_sendable(idx);
        Ok(())
    }

    /// Abort a client RPC: its state is freed now, and the server is told
    /// (RPC_UNKNOWN) so it frees its side too. No event is reported for it.
    /// Returns false if the RPC is not active (already finished or failed).
    ///
    /// `_now` is taken for symmetry with the other commands (an abort needs
    /// no time today).
    pub fn abort(&mut self, _now: Instant, id: RpcId) -> bool {
        let Some(idx) = self.client_slot(id.0) else {
            return false;
        };
        let (peer, started) = {
            let r = self.rpc(idx);
            (r.peer, r.out.as_ref().is_some_and(|o| o.started))
        };
        if started {
            self.send_control(peer, Repr::RpcUnknown(self.common(peer, id.0)));
        }
        self.free_rpc(idx);
        true
    }

    /// Drop a server RPC without answering it (for example, the application
    /// shut down). The id is remembered as finished, so the request is not
    /// delivered again; the client's retries go unanswered and it fails with
    /// a timeout. Returns false if the RPC does not exist.
    pub fn abort_server(&mut self, now: Instant, rpc: ServerRpcId) -> bool {
        let Some(idx) = self.server_slot(&rpc) else {
            return false;
        };
        self.free_server_remembered(now, idx);
        true
    }

    /// The datapath learned that `peer` cannot be reached (for example an
    /// ICMP port unreachable). Every client RPC to it fails with
    /// [`RpcError::PeerUnreachable`]; server RPCs for it are dropped, their
    /// ids remembered so a late duplicate request is not delivered again.
    pub fn handle_unreachable(&mut self, now: Instant, peer: SocketAddr) {
        for idx in 0..self.rpcs.len() as u32 {
            let Some(r) = self.rpcs[idx as usize].as_ref() else {
                continue;
            };
            if r.peer != peer {
                continue;
            }
            if r.is_client() {
                let id = r.id;
                self.free_rpc(idx);
                self.events.push_back(Event::Failed {
                    id: RpcId(id),
                    error: RpcError::PeerUnreachable(peer),
                });
            } else {
                self.free_server_remembered(now, idx);
            }
        }
    }

    // ----- output --------------------------------------------------------

    /// The next application event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if
    /// ever (an idle engine has no deadline).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_tick, self.pacer_wakeup) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Process timers: retransmission requests, timeouts, acks and
    /// housekeeping. Call when `now` reaches [`poll_timeout`](Self::poll_timeout);
    /// early calls are harmless.
    ///
    /// This assumes every packet that reached us before `now` has been given
    /// to [`handle_packet`](Self::handle_packet). A caller that knows it has
    /// fallen behind its own receive queue says how far it has read with
    /// [`handle_timeout_read_until`](Self::handle_timeout_read_until).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.handle_timeout_read_until(now, now);
    }

    /// [`handle_timeout`](Self::handle_timeout) for a caller whose own
    /// receive queue is backlogged: every packet that reached us before
    /// `read_until` has been given to [`handle_packet`](Self::handle_packet),
    /// and later ones may still be waiting unread.
    ///
    /// Peers are judged silent as of `read_until`, not `now`: a peer whose
    /// packets sit in our queue has not gone quiet, and a RESEND to it would
    /// only be answered by a retransmission on top of the backlog. RESENDs
    /// and timeouts are deferred by `now - read_until`, plus how late the
    /// tick runs (as in `handle_timeout`), so the caller must give a bound
    /// it can vouch for (the UDP driver derives one
    /// from how many bytes its socket buffers can hold). `read_until` later
    /// than `now` counts as `now`.
    ///
    /// ```
    /// use homa_core::{Config, Endpoint, Instant};
    /// let mut e = Endpoint::new(Config::default(), "127.0.0.1:4000".parse().unwrap()).unwrap();
    /// let now = Instant::from_nanos(50_000_000);
    /// // We have read everything that arrived until 20 ms ago.
    /// e.handle_timeout_read_until(now, Instant::from_nanos(30_000_000));
    /// ```
    pub fn handle_timeout_read_until(&mut self, now: Instant, read_until: Instant) {
        if self.pacer_wakeup.is_some_and(|t| t <= now) {
            self.pacer_wakeup = None;
        }
        if let Some(due) = self.next_tick.filter(|&t| t <= now) {
            self.reap(now);
            // A tick that runs late (our process stalled, or the caller was
            // busy reading) takes that time off every RPC's silence, on top
            // of judging as of `read_until`. Taking off only the larger of
            // the two made RPCs time out in homa-tokio's debug-build
            // loopback test with 10,000 RPCs in flight (not investigated
            // further; the late shift also moves `last_resend`, which
            // spaces the probes).
            self.tick(now, now - due, read_until.min(now));
            self.next_tick = self.next_tick_after(now);
        }
        if self.grants_dirty {
            self.update_grants(now);
        }
    }

    // ----- input from the network ---------------------------------------

    /// Process one packet received from `from` (in UDP mode the source
    /// socket address). Malformed or unexpected packets are counted in
    /// [`Metrics`] and dropped; nothing a packet says can panic the engine or
    /// make it allocate beyond the configured limits.
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddr, data: Bytes) {
        self.metrics.bytes_in += data.len() as u64;
        let repr = match Repr::parse(&data) {
            Ok(r) => r,
            Err(_) => {
                self.metrics.count_drop(DropReason::Malformed);
                return;
            }
        };
        self.metrics.packets_in[type_index(repr.packet_type())] += 1;
        let local_id = repr.common().sender_id ^ 1;
        match repr {
            Repr::Data(d) => self.handle_data(now, from, local_id, &d, data),
            Repr::Grant(g) => self.handle_grant(now, from, local_id, &g),
            Repr::Resend(r) => self.handle_resend(now, from, local_id, &r),
            Repr::RpcUnknown(_) => self.handle_rpc_unknown(now, from, local_id),
            Repr::Busy(_) => match self.lookup(from, local_id) {
                Some(idx) => self.rpc_mut(idx).last_heard = now,
                None => self.metrics.count_drop(DropReason::UnknownRpc),
            },
            Repr::Cutoffs(c) => self.handle_cutoffs(from, &c),
            Repr::Freeze(_) => self.metrics.count_drop(DropReason::Ignored),
            Repr::NeedAck(c) => self.handle_need_ack(from, &c),
            Repr::Ack(a) => self.handle_ack(now, from, &a),
        }
        if self.grants_dirty {
            self.update_grants(now);
        }
    }

    /// DATA: every check happens before anything changes, so a dropped
    /// packet leaves no trace but its counter.
    fn handle_data(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local_id: u64,
        d: &DataRepr,
        packet: Bytes,
    ) {
        let payload = packet.slice(DATA_HEADER_LEN..);
        if d.ack.client_id != 0 {
            self.defer_ack(now, from, d.ack);
        }
        if d.message_length > self.config.max_message_length {
            self.metrics.count_drop(DropReason::TooLong);
            return;
        }
        let len = payload.len() as u32;
        if u64::from(d.offset) + u64::from(len) > u64::from(d.message_length)
            || (len == 0 && d.message_length != 0)
        {
            self.metrics.count_drop(DropReason::BadOffset);
            return;
        }
        let whole = d.offset == 0 && len == d.message_length;
        // A sender's `incoming` is a claim: it sets the first grant of a new
        // message (capped at what we could have granted anyway) and is
        // ignored after that; grants then move only by our own decisions.
        let claim_cap = self.config.max_incoming.max(round_up(
            self.config.unsched_bytes,
            self.config.max_payload(),
        ));
        let claim = d.incoming.min(d.message_length).min(claim_cap);
        let existing = self.lookup(from, local_id);
        let reason = match existing.map(|idx| self.rpc(idx)) {
            // Acknowledged, waiting to be freed: as if it were.
            Some(r) if r.state == State::ServerAcked => Some(DropReason::Stale),
            Some(r) if matches!(r.state, State::ServerInService | State::ServerOutgoing) => {
                Some(DropReason::Duplicate)
            }
            Some(r) => match r.inm.as_deref() {
                Some(m) if m.length != d.message_length => Some(DropReason::BadOffset),
                // Packets start below the grant.
                Some(m) if d.offset >= m.granted.max(1) => Some(DropReason::BadOffset),
                None if !whole && d.offset >= claim.max(1) => Some(DropReason::BadOffset),
                _ => None,
            },
            // A client RPC we no longer have (aborted or timed out): tell
            // the server so it frees its side.
            None if local_id & 1 == 0 => Some(DropReason::UnknownRpc),
            None if !whole && d.offset >= claim.max(1) => Some(DropReason::BadOffset),
            None => None,
        };
        let reason = reason.or_else(|| {
            (!whole && self.buffered + payload.len() > self.config.max_buffered_bytes)
                .then_some(DropReason::BufferLimit)
        });
        if let Some(reason) = reason {
            self.metrics.count_drop(reason);
            if reason == DropReason::UnknownRpc {
                let repr = Repr::RpcUnknown(self.common(from, local_id));
                self.send_control(from, repr);
            }
            return;
        }
        let idx = match existing {
            Some(idx) => idx,
            None => match self.new_server_rpc(now, from, local_id, d) {
                Some(idx) => idx,
                None => return,
            },
        };
        self.maybe_send_cutoffs(now, from, d.cutoff_version);
        let birth = self.births;
        let r = self.rpcs[idx as usize].as_mut().expect("live rpc index");
        if r.inm.is_none() && whole {
            // The whole message in one packet: hand the payload over as it
            // is, without reassembly state.
            r.last_heard = now;
            if let Some(out) = r.out.as_mut() {
                // A response: the server has the whole request.
                out.mark_delivered();
            }
            self.deliver(now, idx, payload);
            return;
        }
        let created = r.inm.is_none();
        let inm = r
            .inm
            .get_or_insert_with(|| Box::new(InMessage::new(d.message_length, claim, birth)));
        let before = inm.buffered();
        if inm.insert(d.offset, &payload) == Insert::Duplicate {
            self.metrics.count_drop(DropReason::Duplicate);
            return;
        }
        let grown = inm.buffered() - before;
        let complete = inm.is_complete();
        let needs_grants = inm.granted < inm.length;
        r.last_heard = now;
        if let Some(out) = r.out.as_mut().filter(|_| r.state == State::Client) {
            // Response data: the server has the whole request.
            out.mark_delivered();
        }
        let in_incoming = r.in_incoming;
        self.buffered += grown;
        if created {
            self.births += 1;
        }
        if complete {
            self.remove_incoming(idx);
            let inm = self.rpc_mut(idx).inm.take().expect("complete message");
            self.buffered -= inm.buffered();
            self.grants_dirty = true;
            self.deliver(now, idx, inm.assemble());
        } else {
            if !in_incoming {
                self.rpc_mut(idx).in_incoming = true;
                self.incoming.push(idx);
            }
            if needs_grants || created {
                self.grants_dirty = true;
            }
        }
    }

    fn new_server_rpc(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local_id: u64,
        d: &DataRepr,
    ) -> Option<u32> {
        if self
            .peers
            .find(&from)
            .is_some_and(|p| self.peers.at(p).remembers(local_id ^ 1))
        {
            self.metrics.count_drop(DropReason::Stale);
            return None;
        }
        let Ok(known) = self.peer_within_limits(now, from) else {
            self.metrics.count_drop(DropReason::RpcLimit);
            return None;
        };
        let pidx = match known {
            Some(p) => p,
            None => self.peers.entry(from, self.config.unsched_cutoffs),
        };
        self.peers.at_mut(pidx).rpcs += 1;
        let idx = self.insert_rpc(now, local_id, from, pidx, State::ServerIncoming, None);
        self.rpc_mut(idx).incast = d.flags & DATA_FLAG_INCAST != 0;
        self.servers.insert((from, local_id), idx);
        Some(idx)
    }

    /// A message is complete: hand it to the application.
    fn deliver(&mut self, now: Instant, idx: u32, body: Bytes) {
        let r = self.rpc_mut(idx);
        if r.is_client() {
            let (id, peer, pidx) = (r.id, r.peer, r.peer_idx);
            self.metrics.responses_delivered += 1;
            self.events.push_back(Event::Response {
                id: RpcId(id),
                body,
            });
            // Owe the server an ack (piggybacked or on NEED_ACK); recorded
            // before the RPC is freed so the peer entry is kept for it.
            let ack = AckRecord {
                client_id: id,
                server_port: peer.port(),
            };
            self.peers.at_mut(pidx).pending_acks.push_back((ack, now));
            self.free_rpc(idx);
        } else {
            r.state = State::ServerInService;
            let rpc = ServerRpcId {
                client: r.peer,
                id: r.id,
                slot: idx,
            };
            self.metrics.requests_delivered += 1;
            self.events.push_back(Event::Request { rpc, body });
        }
    }

    fn handle_grant(&mut self, now: Instant, from: SocketAddr, local_id: u64, g: &GrantRepr) {
        let Some(idx) = self.lookup(from, local_id) else {
            self.metrics.count_drop(DropReason::UnknownRpc);
            return;
        };
        let r = self.rpc_mut(idx);
        r.last_heard = now;
        let Some(out) = r.out.as_mut() else {
            self.metrics.count_drop(DropReason::Ignored);
            return;
        };
        out.granted = out.granted.max(g.offset.min(out.length));
        out.sched_priority = g.priority.min(7);
        self.mark_sendable(idx);
    }

    fn handle_resend(&mut self, now: Instant, from: SocketAddr, local_id: u64, rs: &ResendRepr) {
        let Some(idx) = self.lookup(from, local_id) else {
            let remembered = self
                .peers
                .get(&from)
                .is_some_and(|p| p.remembers(local_id ^ 1));
            if remembered {
                self.metrics.count_drop(DropReason::Stale);
            } else {
                // Either side: we do not know this RPC. A client hearing this
                // restarts its request; a server frees its RPC.
                self.send_control(from, Repr::RpcUnknown(self.common(from, local_id)));
            }
            return;
        };
        if self.rpc(idx).state == State::ServerAcked {
            // Acknowledged, waiting to be freed: as if it were.
            self.metrics.count_drop(DropReason::Stale);
            return;
        }
        let max_payload = self.config.max_payload();
        let r = self.rpc_mut(idx);
        r.last_heard = now;
        let peer = r.peer;
        if rs.length == 0 {
            // A server whose response waits for our grants asks whether we
            // still want it: we do.
            self.send_control(peer, Repr::Busy(self.common(peer, local_id)));
            return;
        }
        let Some(out) = r.out.as_mut().filter(|_| r.state != State::ServerIncoming) else {
            // Nothing to send yet (still receiving the request, or the
            // application is still working on it).
            self.send_control(peer, Repr::Busy(self.common(peer, local_id)));
            return;
        };
        let end = if rs.length == u32::MAX {
            out.next_offset
        } else {
            let end = rs.offset.saturating_add(rs.length).min(out.length);
            // A RESEND implies a grant up to its end: this is how a lost
            // GRANT is recovered.
            out.granted = out.granted.max(end);
            end
        };
        let sent_end = end.min(out.next_offset);
        // Retransmit whole packets, aligned as they were first sent.
        let start = rs.offset.min(out.length) / max_payload * max_payload;
        if start < sent_end {
            let (s, e) = match out.resend {
                Some((s0, e0)) => (s0.min(start), e0.max(sent_end)),
                None => (start, sent_end),
            };
            out.resend = Some((s, e));
            out.resend_priority = rs.priority.min(7);
        } else if out.length == 0 && out.started && rs.offset == 0 {
            // An empty message was lost: send its one packet again.
            out.started = false;
        } else {
            // Nothing asked for has been sent yet: either we have nothing to
            // send, or we hold granted bytes back because our SRPT prefers
            // other messages. Either way tell the receiver we are alive
            // (Linux sends BUSY here too), or it would time the RPC out.
            let work = out.has_work();
            self.send_control(peer, Repr::Busy(self.common(peer, local_id)));
            if !work {
                return;
            }
        }
        self.mark_sendable(idx);
    }

    fn handle_rpc_unknown(&mut self, now: Instant, from: SocketAddr, local_id: u64) {
        let Some(idx) = self.lookup(from, local_id) else {
            self.metrics.count_drop(DropReason::UnknownRpc);
            return;
        };
        if local_id & 1 == 1 {
            // Our client forgot this RPC (aborted, or timed out): free ours.
            self.free_server_remembered(now, idx);
            return;
        }
        // The server has no record of our request: send it again from the
        // start, dropping any partial response.
        self.metrics.restarts += 1;
        if self.rpc(idx).in_incoming {
            self.remove_incoming(idx);
        }
        let r = self.rpc_mut(idx);
        r.last_heard = now;
        let dropped = r.inm.take().map_or(0, |m| m.buffered());
        if let Some(out) = r.out.as_mut() {
            out.restart();
        }
        self.buffered -= dropped;
        self.grants_dirty = true;
        self.mark_sendable(idx);
    }

    fn handle_cutoffs(&mut self, from: SocketAddr, c: &CutoffsRepr) {
        // Only peers we already talk to: a CUTOFFS packet must not create
        // state. Sanitize: the lowest used level must take every size.
        let Some(p) = self.peers.get_mut(&from) else {
            self.metrics.count_drop(DropReason::UnknownRpc);
            return;
        };
        let mut cutoffs = c.unsched_cutoffs;
        match cutoffs.iter().position(|&x| x != 0) {
            Some(lowest) => cutoffs[lowest] = u32::MAX,
            None => {
                self.metrics.count_drop(DropReason::Malformed);
                return;
            }
        }
        p.cutoffs = cutoffs;
        p.cutoff_version = c.cutoff_version;
    }

    fn handle_need_ack(&mut self, from: SocketAddr, c: &Common) {
        let client_id = c.sender_id ^ 1;
        if client_id & 1 == 1 {
            self.metrics.count_drop(DropReason::Malformed);
            return;
        }
        if self.lookup(from, client_id).is_some() {
            // Still waiting for (part of) the response: not done yet.
            self.metrics.count_drop(DropReason::Ignored);
            return;
        }
        let mut acks = [AckRecord::default(); MAX_ACKS];
        let mut num = 0;
        if let Some(p) = self.peers.get_mut(&from) {
            p.pending_acks.retain(|(a, _)| a.client_id != client_id);
            while num < MAX_ACKS {
                let Some((a, _)) = p.pending_acks.pop_front() else {
                    break;
                };
                acks[num] = a;
                num += 1;
            }
        }
        let repr = Repr::Ack(AckRepr {
            common: self.common(from, client_id),
            num_acks: num as u8,
            acks,
        });
        self.send_control(from, repr);
    }

    fn handle_ack(&mut self, now: Instant, from: SocketAddr, a: &AckRepr) {
        let me = AckRecord {
            client_id: a.common.sender_id,
            server_port: self.local.port(),
        };
        if !self.apply_ack(now, from, me) {
            self.metrics.count_drop(DropReason::UnknownRpc);
        }
        for ack in a.acks() {
            self.apply_ack(now, from, *ack);
        }
    }

    /// An ack piggybacked on a request: the acknowledged RPC is done at
    /// once (`State::ServerAcked`: it sends nothing more, and what arrives
    /// for it is stale), but freeing it and remembering its id wait for
    /// [`reap`](Self::reap), off the packet's path. That part took about
    /// half of a busy-polled loopback server's engine time for a 100-byte
    /// request (320 of 650 ns, with the caches as a round trip through the
    /// kernel leaves them), while the client waited. An ack for an RPC that
    /// is not sending or done sending its response is ignored, as before.
    /// At most `MAX_DEFERRED_ACKS` wait: past that the oldest is freed now,
    /// so an owner that never calls `reap` pays about what it paid before
    /// per packet, plus up to that many frees at a tick.
    fn defer_ack(&mut self, now: Instant, from: SocketAddr, ack: AckRecord) {
        if ack.server_port != self.local.port() || ack.client_id & 1 == 1 {
            return;
        }
        let Some(&idx) = self.servers.get(&(from, ack.client_id ^ 1)) else {
            return;
        };
        let r = self.rpc_mut(idx);
        if r.state != State::ServerOutgoing {
            return;
        }
        r.state = State::ServerAcked;
        let id = r.id;
        if self.deferred_acks.len() >= MAX_DEFERRED_ACKS {
            if let Some((i, id)) = self.deferred_acks.pop_front() {
                self.free_acked(now, i, id);
            }
        }
        self.deferred_acks.push_back((idx, id));
    }

    /// Free an RPC `defer_ack` marked acknowledged, if it is still that one
    /// (something else may have freed it since, and its slot been reused).
    fn free_acked(&mut self, now: Instant, idx: u32, id: u64) {
        let acked = self.rpcs[idx as usize]
            .as_ref()
            .is_some_and(|r| r.id == id && r.state == State::ServerAcked);
        if acked {
            self.free_server_remembered(now, idx);
        }
    }

    /// Do the work the engine put off to keep it off the packet path:
    /// free the server RPCs whose clients acknowledged their responses
    /// (Linux Homa reaps dead RPCs the same way, when the thread has
    /// nothing better to do). Call it when idle, for example before
    /// sleeping or busy-polling. The engine also does it at every tick of
    /// [`handle_timeout`](Self::handle_timeout) and before it refuses an RPC
    /// for the RPC limits, and an acknowledged RPC sends and answers nothing
    /// meanwhile; until then it still counts in
    /// [`Metrics::active_server_rpcs`] (and holds its slot, so slots are
    /// reused in a different order). Returns how many RPCs it freed.
    ///
    /// ```
    /// use homa_core::{Config, Endpoint, Instant};
    /// let mut e = Endpoint::new(Config::default(), "127.0.0.1:4000".parse().unwrap()).unwrap();
    /// assert_eq!(e.reap(Instant::ZERO), 0); // nothing deferred
    /// ```
    pub fn reap(&mut self, now: Instant) -> usize {
        let before = self.servers.len();
        while let Some((idx, id)) = self.deferred_acks.pop_front() {
            self.free_acked(now, idx, id);
        }
        before - self.servers.len()
    }

    /// The client `from` is done with `ack.client_id`: free our server RPC.
    /// Returns whether an RPC was freed.
    fn apply_ack(&mut self, now: Instant, from: SocketAddr, ack: AckRecord) -> bool {
        if ack.server_port != self.local.port() || ack.client_id & 1 == 1 {
            return false;
        }
        match self.servers.get(&(from, ack.client_id ^ 1)) {
            Some(&idx)
                if matches!(
                    self.rpc(idx).state,
                    State::ServerOutgoing | State::ServerAcked
                ) =>
            {
                self.free_server_remembered(now, idx);
                true
            }
            _ => false,
        }
    }

    // ----- helpers --------------------------------------------------------

    pub(crate) fn rpc(&self, idx: u32) -> &Rpc {
        self.rpcs[idx as usize].as_ref().expect("live rpc index")
    }

    pub(crate) fn rpc_mut(&mut self, idx: u32) -> &mut Rpc {
        self.rpcs[idx as usize].as_mut().expect("live rpc index")
    }

    /// The live RPC a [`ServerRpcId`] names, if it still exists.
    fn server_slot(&self, rpc: &ServerRpcId) -> Option<u32> {
        let r = self.rpcs.get(rpc.slot as usize)?.as_ref()?;
        (r.id == rpc.id && r.peer == rpc.client).then_some(rpc.slot)
    }

    /// The live client RPC with this id: its slot is in the id's low bits.
    fn client_slot(&self, id: u64) -> Option<u32> {
        let slot = ((id >> 1) & ((1 << SLOT_BITS) - 1)) as u32;
        let r = self.rpcs.get(slot as usize)?.as_ref()?;
        (r.id == id && r.is_client()).then_some(slot)
    }

    fn lookup(&self, from: SocketAddr, local_id: u64) -> Option<u32> {
        if local_id & 1 == 0 {
            let idx = self.client_slot(local_id)?;
            // A client RPC only hears from its server.
            (self.rpc(idx).peer == from).then_some(idx)
        } else {
            self.servers.get(&(from, local_id)).copied()
        }
    }

    fn check_length(&self, len: usize) -> Result<(), SendError> {
        if len > self.config.max_message_length as usize {
            return Err(SendError::MessageTooLong {
                len,
                max: self.config.max_message_length,
            });
        }
        Ok(())
    }

    /// The peer entry for `addr`, if there is one, once it is known that a
    /// new RPC with it stays within the RPC limits. Applies the deferred
    /// acks first if the limits are reached: an RPC must not be refused
    /// for RPCs that are already acknowledged. (After `reap` the peer is
    /// looked up again: freeing RPCs may drop peer entries.)
    fn peer_within_limits(
        &mut self,
        now: Instant,
        addr: SocketAddr,
    ) -> Result<Option<u32>, SendError> {
        let known = self.peers.find(&addr);
        match self.check_rpc_limits(known) {
            Err(_) if !self.deferred_acks.is_empty() => {
                self.reap(now);
                let known = self.peers.find(&addr);
                self.check_rpc_limits(known).map(|()| known)
            }
            r => r.map(|()| known),
        }
    }

    fn check_rpc_limits(&self, peer: Option<u32>) -> Result<(), SendError> {
        if self.n_clients + self.servers.len() >= self.config.max_rpcs {
            return Err(SendError::TooManyRpcs {
                limit: self.config.max_rpcs,
            });
        }
        if peer.is_some_and(|p| self.peers.at(p).rpcs >= self.config.max_rpcs_per_peer) {
            return Err(SendError::TooManyRpcs {
                limit: self.config.max_rpcs_per_peer,
            });
        }
        Ok(())
    }

    fn insert_rpc(
        &mut self,
        now: Instant,
        id: u64,
        peer: SocketAddr,
        peer_idx: u32,
        state: State,
        out: Option<OutMessage>,
    ) -> u32 {
        let birth = self.births;
        self.births += 1;
        let rpc = Rpc {
            id,
            peer,
            peer_idx,
            state,
            out,
            inm: None,
            last_heard: now,
            last_resend: now,
            probes: 0,
            probes_since: now,
            birth,
            in_sendable: false,
            in_incoming: false,
            incast: false,
        };
        // An RPC needs no tick before it could first have gone silent:
        // an engine that held none (and so stopped ticking) ticks next
        // `resend_after` from now, not `tick` (see `next_tick_after`).
        let first = now + self.config.resend_after;
        if self.next_tick.is_none_or(|t| t > first) {
            self.next_tick = Some(first);
        }
        match self.free_slots.pop() {
            Some(i) => {
                self.rpcs[i as usize] = Some(rpc);
                i
            }
            None => {
                self.rpcs.push(Some(rpc));
                (self.rpcs.len() - 1) as u32
            }
        }
    }

    fn remove_incoming(&mut self, idx: u32) {
        if std::mem::take(&mut self.rpc_mut(idx).in_incoming) {
            if let Some(pos) = self.incoming.iter().position(|&i| i == idx) {
                self.incoming.swap_remove(pos);
            }
        }
    }

    /// Free an RPC and everything it holds.
    pub(crate) fn free_rpc(&mut self, idx: u32) {
        self.remove_incoming(idx);
        if self.rpc(idx).in_sendable {
            if let Some(pos) = self.sendable.iter().position(|&i| i == idx) {
                self.sendable.swap_remove(pos);
            }
        }
        let Some(r) = self.rpcs[idx as usize].take() else {
            return;
        };
        self.free_slots.push(idx);
        if let Some(inm) = &r.inm {
            self.buffered -= inm.buffered();
            self.grants_dirty = true;
        }
        if r.is_client() {
            self.n_clients -= 1;
        } else {
            self.servers.remove(&(r.peer, r.id));
        }
        // Callers that keep something for the peer (an owed ack, a
        // remembered id) record it before freeing, so the peer survives.
        self.peers.release(r.peer_idx);
    }

    /// Free a server RPC and remember its id, so a late duplicate of its
    /// request is not delivered again.
    pub(crate) fn free_server_remembered(&mut self, now: Instant, idx: u32) {
        let (pidx, client_id) = {
            let r = self.rpc(idx);
            (r.peer_idx, r.id ^ 1)
        };
        let limit = self.config.max_rpcs_per_peer;
        let p = self.peers.at_mut(pidx);
        if p.tombstone_set.insert(client_id) {
            p.tombstones.push_back((client_id, now));
            // Bounded memory: forget the oldest beyond the limit.
            while p.tombstones.len() > limit {
                if let Some((old, _)) = p.tombstones.pop_front() {
                    p.tombstone_set.remove(&old);
                }
            }
        }
        self.free_rpc(idx);
    }

    pub(crate) fn mark_sendable(&mut self, idx: u32) {
        let r = self.rpc_mut(idx);
        if !r.in_sendable && r.out.as_ref().is_some_and(|o| o.has_work()) {
            r.in_sendable = true;
            self.sendable.push(idx);
        }
    }

    pub(crate) fn common(&self, peer: SocketAddr, sender_id: u64) -> Common {
        Common {
            sport: self.local.port(),
            dport: peer.port(),
            sender_id,
        }
    }

    /// Queue a control packet; control packets bypass the pacer.
    pub(crate) fn send_control(&mut self, dest: SocketAddr, repr: Repr) {
        self.control
            .push_back(Transmit::new(dest, CONTROL_PRIORITY, &repr, Bytes::new()));
    }

    fn maybe_send_cutoffs(&mut self, now: Instant, from: SocketAddr, version: u16) {
        if version == self.config.cutoff_version {
            return;
        }
        let interval = self.config.cutoffs_interval;
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        if p.last_cutoffs_sent.is_some_and(|t| now < t + interval) {
            return;
        }
        p.last_cutoffs_sent = Some(now);
        let repr = Repr::Cutoffs(CutoffsRepr {
            common: self.common(from, 0),
            unsched_cutoffs: self.config.unsched_cutoffs,
            cutoff_version: self.config.cutoff_version,
        });
        self.send_control(from, repr);
    }

    /// When the tick after the one that ran at `now` is due. Every `tick`
    /// while RPCs are held: their silence is counted in ticks. With none,
    /// nothing can go silent, and the only work left is forgetting what
    /// peers are remembered for (acknowledged ids and owed acks, for
    /// `ack_memory`), so the next tick is when the first of that expires,
    /// and none once nothing is left. An endpoint that makes an RPC now and
    /// then used to tick a thousand times a second for `ack_memory` after
    /// each one; in homa-tokio every tick wakes two threads, and without
    /// those wake-ups the median of 100-byte RPCs at 1,000 RPC/s went from
    /// 177 µs to 122 (TCP's: 115; homa-perf/NOTES.md). (That gain is the
    /// client's: a server holds each answered RPC until the client's next
    /// request acknowledges it, so at that rate it still ticks.) A new RPC
    /// brings the ticks back (`insert_rpc`), the first one `resend_after`
    /// after it starts.
    ///
    /// What that first tick changes, for the RPC that brought the ticks
    /// back (RPCs started after it are younger at that tick): a stall of
    /// our own process. A tick that runs late counts as one tick of
    /// silence, and this one stands for `resend_after` of it, so if the
    /// stall begins less than `resend_after` after the RPC starts, the RPC
    /// gets one RESEND after it.
    ///
    /// Silence that is not the peer's fault (granted bytes we had still to
    /// send, or everything granted received and no more granted yet) could
    /// hide between those ticks: a tick sees it only while it lasts, so an
    /// RPC that waited on us until just before its first tick would count as
    /// silent from its start (a burst of hundreds of requests started at
    /// once on an idle engine, whose pacer sends the last of them late). So
    /// the moment the wait ends is marked too: sending the last byte we may
    /// send (`build_data`) and granting a message that had everything we had
    /// granted (`issue_grant`) start its silence afresh.
    ///
    /// While RPCs are held (under load, where a stall would otherwise send
    /// a RESEND for each of many) the ticks run every `tick` as before.
    fn next_tick_after(&self, now: Instant) -> Option<Instant> {
        // Peer state is only created with an RPC (`insert_rpc`, which
        // starts the ticks), so this is the one place the tick is put off.
        if self.awaits_packets() {
            return Some(now + self.config.tick);
        }
        let memory = self.config.ack_memory;
        self.peers
            .values()
            .map(|p| {
                let ids = p.tombstones.front().map(|&(_, t)| t + memory);
                let acks = p.pending_acks.front().map(|&(_, t)| t + memory);
                match (ids, acks) {
                    (Some(a), Some(b)) => a.min(b),
                    // A peer that holds nothing is freed at the next tick.
                    (a, b) => a.or(b).unwrap_or(now),
                }
            })
            .min()
            .map(|t| t.max(now + self.config.tick))
    }

    pub(crate) fn push_event(&mut self, e: Event) {
        self.events.push_back(e);
    }

    pub(crate) fn resend_repr(&self, peer: SocketAddr, id: u64, offset: u32, length: u32) -> Repr {
        Repr::Resend(ResendRepr {
            common: self.common(peer, id),
            offset,
            length,
            priority: RESEND_PRIORITY,
        })
    }

    pub(crate) fn grant_repr(&self, peer: SocketAddr, id: u64, offset: u32, priority: u8) -> Repr {
        Repr::Grant(GrantRepr {
            common: self.common(peer, id),
            offset,
            priority,
        })
    }
}

/// Index into the per-type packet counters.
pub(crate) fn type_index(t: PacketType) -> usize {
    (t as u8 - 0x10) as usize
}

/// Highest priority whose cutoff admits a message of `len` bytes.
pub(crate) fn unsched_priority(cutoffs: &[u32; NUM_PRIORITIES], len: u32) -> u8 {
    (0..NUM_PRIORITIES)
        .rev()
        .find(|&p| cutoffs[p] != 0 && len <= cutoffs[p])
        .unwrap_or(0) as u8
}

pub(crate) fn round_up(bytes: u32, unit: u32) -> u32 {
    bytes.div_ceil(unit).saturating_mul(unit)
}

/// What an engine has yet to receive and to send (see [`Endpoint::backlog`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Incomplete incoming messages.
    pub in_messages: u64,
    /// Of those, messages not yet granted to their end.
    pub in_needing_grants: u64,
    /// Bytes of incoming messages not yet received.
    pub in_unreceived: u64,
    /// Bytes granted (or sent unscheduled) but not yet received.
    pub in_outstanding: u64,
    /// Bytes of incoming messages not yet granted.
    pub in_ungranted: u64,
    /// Bytes not yet sent (retransmissions excluded) of the outgoing
    /// messages listed as having something to send; a message waiting for
    /// grants may have left that list.
    pub out_unsent: u64,
    /// Of those, bytes the receivers have granted (or that are unscheduled):
    /// sendable now, held back only by this sender's own choice or pacing.
    pub out_granted_unsent: u64,
}
