//! A plain snapshot of the engine's counters.

/// Why an incoming packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Shorter than the common header or its type's header, unknown type, or a
    /// malformed field (see the crate docs' bad-input table).
    Malformed,
    /// DATA whose offset and length reach past its message length.
    BadOffset,
    /// DATA whose message length exceeds `max_message_length`.
    TooLong,
    /// A packet for an RPC this engine does not know, and no answer is due.
    UnknownRpc,
    /// DATA that was already received.
    Duplicate,
    /// DATA that would cross `max_buffered_bytes`.
    BufferLimit,
    /// DATA that would create an RPC beyond `max_rpcs` or `max_rpcs_per_peer`.
    RpcLimit,
    /// DATA for a request that was already acknowledged (at-most-once).
    Stale,
    /// A packet type that carries nothing for this engine (FREEZE), or a packet
    /// inconsistent with the RPC's state.
    Ignored,
}

impl DropReason {
    /// The reason in a few words, for reports ("bad offset", "unknown RPC").
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::BadOffset => "bad offset",
            DropReason::TooLong => "too long",
            DropReason::UnknownRpc => "unknown RPC",
            DropReason::Duplicate => "duplicate",
            DropReason::BufferLimit => "buffer limit",
            DropReason::RpcLimit => "RPC limit",
            DropReason::Stale => "stale",
            DropReason::Ignored => "ignored",
        }
    }
}

/// Counters and gauges of one engine. Counters only grow; gauges
/// (`active_*`, `buffered_bytes`, `incoming_*`) describe the present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Packets received, indexed by type code − 0x10 (DATA … ACK).
    pub packets_in: [u64; 9],
    /// Packets sent, indexed by type code − 0x10 (DATA … ACK).
    pub packets_out: [u64; 9],
    /// Bytes of Homa packets received (headers and payload).
    pub bytes_in: u64,
    /// Bytes of Homa packets sent (headers and payload).
    pub bytes_out: u64,
    /// Payload bytes of DATA packets sent again after a RESEND.
    pub retransmitted_bytes: u64,
    /// RESEND packets sent.
    pub resends_sent: u64,
    /// Client RPCs that failed with a timeout.
    pub client_timeouts: u64,
    /// Server RPCs dropped because their client went silent.
    pub server_timeouts: u64,
    /// Requests restarted from byte 0 after the server answered RPC_UNKNOWN.
    pub restarts: u64,
    /// GRANT packets sent.
    pub grants_sent: u64,
    /// Bytes granted (scheduled), including FIFO grants.
    pub granted_bytes: u64,
    /// Requests delivered to the application.
    pub requests_delivered: u64,
    /// Responses delivered to the application.
    pub responses_delivered: u64,
    /// Dropped packets: malformed.
    pub drops_malformed: u64,
    /// Dropped packets: offset/length beyond the message.
    pub drops_bad_offset: u64,
    /// Dropped packets: message longer than the limit.
    pub drops_too_long: u64,
    /// Dropped packets: unknown RPC with no answer due.
    pub drops_unknown_rpc: u64,
    /// Dropped packets: duplicate data.
    pub drops_duplicate: u64,
    /// Dropped packets: buffer limit.
    pub drops_buffer_limit: u64,
    /// Dropped packets: RPC limit.
    pub drops_rpc_limit: u64,
    /// Dropped packets: request already acknowledged.
    pub drops_stale: u64,
    /// Dropped packets: ignored (FREEZE, or inconsistent with the RPC state).
    pub drops_ignored: u64,
    /// Gauge: client RPCs held.
    pub active_client_rpcs: u64,
    /// Gauge: server RPCs held.
    pub active_server_rpcs: u64,
    /// Gauge: peers with state held.
    pub active_peers: u64,
    /// Gauge: bytes of partially received messages held.
    pub buffered_bytes: u64,
    /// Gauge: incoming messages not yet complete.
    pub incoming_messages: u64,
    /// Gauge: granted (or unscheduled) but not yet received bytes over all
    /// incoming messages. Grants keep this at most `max_incoming`, except for
    /// unscheduled bytes that senders send without asking.
    pub incoming_granted_unreceived: u64,
    /// Gauge: outgoing messages with bytes not yet transmitted.
    pub outgoing_messages: u64,
    /// Gauge: remembered acknowledged RPC ids (at-most-once).
    pub remembered_acks: u64,
}

impl Metrics {
    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        let c = match reason {
            DropReason::Malformed => &mut self.drops_malformed,
            DropReason::BadOffset => &mut self.drops_bad_offset,
            DropReason::TooLong => &mut self.drops_too_long,
            DropReason::UnknownRpc => &mut self.drops_unknown_rpc,
            DropReason::Duplicate => &mut self.drops_duplicate,
            DropReason::BufferLimit => &mut self.drops_buffer_limit,
            DropReason::RpcLimit => &mut self.drops_rpc_limit,
            DropReason::Stale => &mut self.drops_stale,
            DropReason::Ignored => &mut self.drops_ignored,
        };
        *c += 1;
    }

    /// Packets dropped, per reason.
    ///
    /// # Example
    /// ```
    /// let m = homa_core::Metrics::default();
    /// let nonzero: Vec<String> = m
    ///     .drops_by_reason()
    ///     .iter()
    ///     .filter(|(_, n)| *n > 0)
    ///     .map(|(why, n)| format!("{n} {}", why.as_str()))
    ///     .collect();
    /// assert!(nonzero.is_empty());
    /// ```
    pub fn drops_by_reason(&self) -> [(DropReason, u64); 9] {
        [
            (DropReason::Malformed, self.drops_malformed),
            (DropReason::BadOffset, self.drops_bad_offset),
            (DropReason::TooLong, self.drops_too_long),
            (DropReason::UnknownRpc, self.drops_unknown_rpc),
            (DropReason::Duplicate, self.drops_duplicate),
            (DropReason::BufferLimit, self.drops_buffer_limit),
            (DropReason::RpcLimit, self.drops_rpc_limit),
            (DropReason::Stale, self.drops_stale),
            (DropReason::Ignored, self.drops_ignored),
        ]
    }

    /// Total packets dropped, all reasons.
    pub fn drops(&self) -> u64 {
        self.drops_by_reason().iter().map(|(_, n)| n).sum()
    }

    /// True when the engine holds no RPC, peer or buffer state.
    pub fn is_idle(&self) -> bool {
        self.active_client_rpcs == 0
            && self.active_server_rpcs == 0
            && self.active_peers == 0
            && self.buffered_bytes == 0
            && self.incoming_messages == 0
            && self.outgoing_messages == 0
            && self.remembered_acks == 0
    }
}
