//! Every knob of the engine, with its default and its validation.

use core::time::Duration;

use crate::error::ConfigError;
use crate::wire::DATA_HEADER_LEN;

/// Number of priority levels (Homa uses 8; 7 is the highest).
pub const NUM_PRIORITIES: usize = 8;

/// Engine configuration. Defaults follow Linux Homa unless noted.
///
/// Build one with [`Config::default`] and adjust fields; [`Config::validate`]
/// (called by [`Endpoint::new`](crate::Endpoint::new)) rejects inconsistent
/// settings with an error instead of panicking later.
///
/// ```
/// use homa_core::Config;
/// let mut config = Config::default();
/// config.unsched_bytes = 10_000; // the paper's RTTbytes at 10 Gbit/s
/// config.link_rate_bps = 10_000_000_000;
/// assert!(config.validate().is_ok());
/// config.max_overcommit = 0;
/// assert!(config.validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Seed for the engine's randomness (the base of its RPC ids). Give every
    /// engine sharing an address a different seed. Default: 0 (the adapter
    /// passes a random seed).
    pub seed: u64,
    /// Largest Homa packet (header + payload) the datapath can carry: for
    /// UDP the largest UDP payload. Default 1472 (1500-byte MTU minus IPv4 and
    /// UDP headers).
    pub max_packet_size: usize,
    /// Bytes each packet costs on the wire beyond the Homa packet itself,
    /// for pacing: IPv4 (20) + UDP (8) + Ethernet header and FCS (18) +
    /// preamble and inter-frame gap (20) = 66 by default.
    pub packet_overhead: u32,
    /// Rate of the link the engine sends on, in bits per second; the pacer
    /// keeps the NIC queue short at this rate. Default 25 Gbit/s (Linux Homa).
    pub link_rate_bps: u64,
    /// The pacer lets at most this much transmit time queue in the NIC.
    /// Default 2 µs (Linux `max_nic_queue_ns`).
    pub max_nic_queue: Duration,
    /// Messages with at most this many bytes left to send bypass the pacer.
    /// Default 1,000 (Linux `throttle_min_bytes`).
    pub pacer_bypass_bytes: u32,
    /// Bytes a sender may transmit without a grant. Default 40,000 (the paper
    /// used about 10,000 at 10 Gbit/s). Rounded up to whole packets.
    pub unsched_bytes: u32,
    /// Most messages granted at once (overcommitment). Default 8.
    pub max_overcommit: usize,
    /// Most messages from one peer granted at once, the shortest ones
    /// (Linux's `max_rpcs_per_peer`). A sender transmits by SRPT, so grants
    /// to its longer messages mostly wait there, taking up slots of
    /// `max_overcommit` that another sender could use. Linux uses 1, and the
    /// paper's simulator schedules senders rather than messages (the
    /// simulator's policies set 1). Default: no limit, because a peer is a
    /// socket here, not a host, and one client socket with many RPCs in
    /// flight (as on loopback) is common.
    pub max_grants_per_peer: usize,
    /// Most granted-but-not-received bytes across all incoming messages,
    /// counting the unscheduled bytes of messages still arriving (so a
    /// receiver at the cap grants nothing, not even to a new, shorter
    /// message, until bytes arrive). `u32::MAX` means no cap. Default
    /// 400,000.
    pub max_incoming: u32,
    /// A fixed grant window per message; `None` (default) uses the dynamic
    /// window `max_incoming / (active + 1)` (Linux).
    pub grant_window: Option<u32>,
    /// A new GRANT must advance a message's granted offset by at least this
    /// many bytes (or finish the message). Larger values send fewer GRANT
    /// packets; the effective window shrinks by up to this much, so keep it
    /// well below the window (the dynamic window is at least
    /// `max_incoming / (max_overcommit + 1)`, 44 KB by default). The engine
    /// caps the step at half the current window, so a window smaller than
    /// this never stalls grants. Default 10,000; the paper simulation grants
    /// a packet at a time.
    pub grant_increment: u32,
    /// Percentage of granted bytes that go to the oldest incoming message, so
    /// large messages never starve. Default 5 (%); 0 disables.
    pub grant_fifo_percent: u32,
    /// Size of each FIFO grant. Default 10,000 bytes.
    pub grant_fifo_increment: u32,
    /// Percentage of transmitted bytes the sender spends on its oldest message
    /// instead of SRPT. Default 5 (%); 0 disables.
    pub send_fifo_percent: u32,
    /// Unscheduled priority cutoffs this engine announces as a receiver:
    /// `unsched_cutoffs[p]` is the largest message that senders should send
    /// at priority `p`; 0 means the level is not used for unscheduled data.
    /// Default: ≤200 B → 7, ≤2,800 → 6, ≤15,000 → 5, else 4.
    pub unsched_cutoffs: [u32; NUM_PRIORITIES],
    /// Version of [`unsched_cutoffs`](Self::unsched_cutoffs); senders with a
    /// different version get a CUTOFFS packet. Default 1.
    pub cutoff_version: u16,
    /// Highest priority used for scheduled packets; the top-ranked granted
    /// message gets it, the next one level lower, and so on down to 0. With
    /// fewer grantable messages than levels, the lowest levels are used: the
    /// lowest-ranked message gets 0.
    /// Must be below the lowest unscheduled level. Default 3.
    pub max_sched_priority: u8,
    /// Grant the end of a message as if it were a short one: once fewer
    /// than this many bytes are left to grant (counted on the wire: payload,
    /// headers and per-packet overhead), its grants carry the unscheduled
    /// priority that [`unsched_cutoffs`](Self::unsched_cutoffs) gives a
    /// message of the bytes left, when that is higher than its scheduled
    /// level. A message's last round trip then does not queue behind other
    /// messages' scheduled packets on a busy downlink. The paper's simulator
    /// does this with RTTbytes (its `boostTailBytesPrio`); Linux does not.
    /// Default 0 (off).
    pub grant_tail_boost: u32,
    /// Least time between two CUTOFFS packets to the same peer. Default 1 ms.
    pub cutoffs_interval: Duration,
    /// Period of the engine's housekeeping timer (resends, timeouts, acks)
    /// while it holds RPCs. Default 1 ms (Linux Homa's timer tick). An
    /// engine that holds none ticks only when what it remembers about its
    /// peers expires (see [`ack_memory`](Self::ack_memory)), and the RPC
    /// that starts it ticking again gets its first tick
    /// [`resend_after`](Self::resend_after) after it starts (at most), when
    /// it could first have gone silent.
    pub tick: Duration,
    /// A receiver that hears nothing for this long asks for the missing data
    /// with RESEND, and repeats every `resend_interval`. Default 5 ms.
    ///
    /// Silence (here and for [`timeout`](Self::timeout)) is counted in
    /// ticks, as Linux counts `silent_ticks`: a tick that runs late, because
    /// our own process or machine stalled, counts as one tick, so a stall is
    /// not taken for the peer's silence. The exception is the first tick of
    /// an engine that held no RPC (see [`tick`](Self::tick)), which stands
    /// for `resend_after` of silence.
    pub resend_after: Duration,
    /// See [`resend_after`](Self::resend_after). Default 5 ms.
    pub resend_interval: Duration,
    /// An RPC whose peer is silent this long, and has left two RESENDs (or
    /// NEED_ACKs) unanswered, fails with a timeout (client) or is dropped
    /// (server). Default 100 ms.
    pub timeout: Duration,
    /// How long a server remembers an acknowledged RPC id, so that a late
    /// duplicate of its request is not delivered again. Default 200 ms.
    pub ack_memory: Duration,
    /// Longest message accepted or sent. Default 1,000,000 (Linux
    /// `HOMA_MAX_MESSAGE_LENGTH`); the simulator raises it.
    pub max_message_length: u32,
    /// Most RPCs (client and server) the engine holds. Default 65,536; at
    /// most 2^20.
    pub max_rpcs: usize,
    /// Most RPCs the engine holds with one peer. Default 16,384.
    pub max_rpcs_per_peer: usize,
    /// Most bytes of partially received messages the engine buffers.
    /// Default 64 MiB.
    pub max_buffered_bytes: usize,
    /// A client with more than this many RPCs outstanding marks new requests
    /// (DATA flag byte) so servers answer with only
    /// [`incast_unsched_bytes`](Self::incast_unsched_bytes) unscheduled bytes
    /// (from the paper; Linux ignores the mark). `None` (default) disables it.
    pub incast_threshold: Option<usize>,
    /// Unscheduled bytes in responses to marked requests. Default one packet.
    pub incast_unsched_bytes: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 0,
            max_packet_size: 1472,
            packet_overhead: 66,
            link_rate_bps: 25_000_000_000,
            max_nic_queue: Duration::from_micros(2),
            pacer_bypass_bytes: 1_000,
            unsched_bytes: 40_000,
            max_overcommit: 8,
            max_grants_per_peer: usize::MAX,
            max_incoming: 400_000,
            grant_window: None,
            grant_increment: 10_000,
            grant_fifo_percent: 5,
            grant_fifo_increment: 10_000,
            send_fifo_percent: 5,
            unsched_cutoffs: [0, 0, 0, 0, u32::MAX, 15_000, 2_800, 200],
            cutoff_version: 1,
            max_sched_priority: 3,
            grant_tail_boost: 0,
            cutoffs_interval: Duration::from_millis(1),
            tick: Duration::from_millis(1),
            resend_after: Duration::from_millis(5),
            resend_interval: Duration::from_millis(5),
            timeout: Duration::from_millis(100),
            ack_memory: Duration::from_millis(200),
            max_message_length: 1_000_000,
            max_rpcs: 65_536,
            max_rpcs_per_peer: 16_384,
            max_buffered_bytes: 64 << 20,
            incast_threshold: None,
            incast_unsched_bytes: 1_416,
        }
    }
}

fn err(field: &'static str, reason: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError {
        field,
        reason: reason.into(),
    })
}

impl Config {
    /// Payload bytes in a full DATA packet.
    pub fn max_payload(&self) -> u32 {
        // Validated: max_packet_size > DATA_HEADER_LEN and fits u32.
        (self.max_packet_size.saturating_sub(DATA_HEADER_LEN)) as u32
    }

    /// Bytes on the wire for `payload` bytes of DATA: full packets, each
    /// with its header and `packet_overhead`.
    pub fn data_wire_bytes(&self, payload: u32) -> u64 {
        let packets = u64::from(payload.div_ceil(self.max_payload().max(1)));
        let per_packet = (DATA_HEADER_LEN as u64) + u64::from(self.packet_overhead);
        u64::from(payload) + packets * per_packet
    }

    /// Lowest priority level used for unscheduled packets.
    pub fn min_unsched_priority(&self) -> u8 {
        self.unsched_cutoffs
            .iter()
            .position(|&c| c != 0)
            .unwrap_or(NUM_PRIORITIES - 1) as u8
    }

    /// Check that the settings are consistent.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field that is out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_packet_size <= DATA_HEADER_LEN || self.max_packet_size > 65_507 {
            return err(
                "max_packet_size",
                format!(
                    "{} is not in {}..=65507",
                    self.max_packet_size,
                    DATA_HEADER_LEN + 1
                ),
            );
        }
        if self.link_rate_bps < 1_000_000 {
            return err("link_rate_bps", "must be at least 1 Mbit/s");
        }
        if self.max_overcommit == 0 || self.max_overcommit > 64 {
            return err("max_overcommit", "must be in 1..=64");
        }
        if self.max_grants_per_peer == 0 {
            return err("max_grants_per_peer", "must be positive");
        }
        if self.max_incoming < self.max_payload() {
            return err("max_incoming", "must hold at least one full packet");
        }
        if matches!(self.grant_window, Some(w) if w < self.max_payload()) {
            return err("grant_window", "must hold at least one full packet");
        }
        if self.grant_increment == 0 || self.grant_increment > self.max_incoming {
            return err("grant_increment", "must be in 1..=max_incoming");
        }
        if self.grant_fifo_percent >= 100 {
            return err("grant_fifo_percent", "must be below 100");
        }
        if self.grant_fifo_percent > 0 && self.grant_fifo_increment == 0 {
            return err("grant_fifo_increment", "must be positive");
        }
        if self.send_fifo_percent >= 100 {
            return err("send_fifo_percent", "must be below 100");
        }
        if self.unsched_cutoffs.iter().all(|&c| c == 0) {
            return err("unsched_cutoffs", "at least one level must be used");
        }
        let lowest = self.min_unsched_priority() as usize;
        if self.unsched_cutoffs[lowest..].contains(&0) {
            return err(
                "unsched_cutoffs",
                "unscheduled levels must be contiguous up to 7",
            );
        }
        if self.unsched_cutoffs[lowest] != u32::MAX {
            return err(
                "unsched_cutoffs",
                "the lowest unscheduled level must take every size (u32::MAX)",
            );
        }
        if self.unsched_cutoffs[lowest..]
            .windows(2)
            .any(|w| w[0] < w[1])
        {
            return err(
                "unsched_cutoffs",
                "cutoffs must not grow with priority (higher levels carry smaller messages)",
            );
        }
        if self.max_sched_priority as usize >= lowest {
            return err(
                "max_sched_priority",
                format!("must be below the lowest unscheduled level {lowest}"),
            );
        }
        if self.tick.is_zero() {
            return err("tick", "must be positive");
        }
        if self.resend_after < self.tick || self.resend_interval < self.tick {
            return err("resend_after", "resend intervals must be at least one tick");
        }
        if self.timeout <= self.resend_after {
            return err("timeout", "must be longer than resend_after");
        }
        if self.max_message_length == 0 || self.max_message_length == u32::MAX {
            return err("max_message_length", "must be in 1..u32::MAX");
        }
        if self.max_rpcs == 0 || self.max_rpcs_per_peer == 0 {
            return err("max_rpcs", "RPC limits must be positive");
        }
        if self.max_rpcs > 1 << crate::endpoint::SLOT_BITS {
            return err(
                "max_rpcs",
                "at most 2^20 (client RPC ids carry the RPC's slot)",
            );
        }
        if self.max_buffered_bytes < self.max_payload() as usize {
            return err("max_buffered_bytes", "must hold at least one full packet");
        }
        if self.incast_unsched_bytes == 0 {
            return err("incast_unsched_bytes", "must be positive");
        }
        Ok(())
    }
}
