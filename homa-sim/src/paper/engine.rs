//! How the engine is configured for an experiment: the paper's settings per
//! workload, and the Linux refinements to compare them with.

use homa_core::{Config, ConfigError, NUM_PRIORITIES};
use homa_workload::{SizeDistribution, Workload};

use super::Fabric;

/// Which family of protocol settings to start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// As the SIGCOMM 2018 simulations ran Homa: a fixed window of RTTbytes
    /// per granted message, a grant per packet, overcommitment equal to the
    /// number of scheduled levels, no FIFO share.
    Paper,
    /// The paper's priorities and unscheduled bytes with the Linux
    /// refinements on top: the dynamic window `max_incoming / (active + 1)`
    /// with `max_incoming` 8 RTTbytes, overcommitment 8, 5 % of grants and
    /// of sender bandwidth to the oldest message, grants in 2.5 KB steps.
    Linux,
}

impl core::str::FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "paper" => Ok(Policy::Paper),
            "linux" => Ok(Policy::Linux),
            _ => Err(format!("unknown policy {s:?} (expected paper or linux)")),
        }
    }
}

/// The protocol settings of one experiment, resolved into a [`Config`] by
/// [`EngineSetup::config`].
///
/// # Example
/// ```
/// use homa_sim::paper::{EngineSetup, Fabric, Policy};
/// use homa_workload::Workload;
///
/// let setup = EngineSetup::new(Workload::W3, Policy::Paper);
/// assert_eq!((setup.sched_levels, setup.unsched_levels), (4, 4));
/// let config = setup.config(&Fabric::sigcomm18(), &homa_workload::SizeDistribution::sigcomm18(Workload::W3)).unwrap();
/// assert_eq!(config.max_sched_priority, 3);
/// assert_eq!(config.max_overcommit, 4);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSetup {
    /// The policy the rest was derived from.
    pub policy: Policy,
    /// Unscheduled bytes per message (rounded up to whole packets by the
    /// engine). Paper: 9,328.
    pub unsched_bytes: u32,
    /// Priority levels for scheduled packets (the lowest ones).
    pub sched_levels: u8,
    /// Priority levels for unscheduled packets (the highest ones); the
    /// cutoffs between them split the unscheduled bytes of the workload
    /// evenly, as the paper does.
    pub unsched_levels: u8,
    /// Messages granted at once. Paper: the number of scheduled levels.
    pub overcommit: usize,
    /// Messages of one sender granted at once. Paper and Linux: 1 (the
    /// paper's simulator schedules senders, each by its shortest message;
    /// Linux's `max_rpcs_per_peer` is 1).
    pub grants_per_peer: usize,
    /// Once fewer than this many wire bytes of a message are left to grant,
    /// grant them at the unscheduled priority of a message that size
    /// (`Config::grant_tail_boost`). Paper: RTTbytes (its simulator's
    /// `boostTailBytesPrio`); Linux: 0.
    pub tail_boost: u32,
    /// Fixed grant window per message; `None` = the dynamic Linux window.
    pub grant_window: Option<u32>,
    /// Smallest grant step in bytes.
    pub grant_increment: u32,
    /// Cap on granted-but-unreceived bytes across messages, unscheduled
    /// bytes included. Paper: `u32::MAX` (none, as in its simulator);
    /// Linux: 8 RTTbytes.
    pub max_incoming: u32,
    /// Percentage of grants to the oldest message (0 = pure SRPT).
    pub fifo_grant_percent: u32,
    /// Percentage of sender bandwidth to its oldest message (0 = pure SRPT).
    pub send_fifo_percent: u32,
    /// Most transmit time, in ns, the sender's pacer lets wait in its NIC
    /// queue. Paper: 0.
    pub nic_queue_ns: u64,
}

/// The paper's scheduled/unscheduled priority split per workload.
pub fn paper_priority_split(w: Workload) -> (u8, u8) {
    match w {
        Workload::W1 => (1, 7),
        Workload::W2 => (3, 5),
        Workload::W3 => (4, 4),
        Workload::W4 | Workload::W5 => (7, 1),
    }
}

/// RTTbytes of the paper's fabric: what 10 Gbit/s carries in one round trip.
///
/// It covers our simulated fabric's round trip, with a little to spare.
/// Across racks (the longest path), from the moment a receiver's engine
/// takes in a DATA packet:
/// * its GRANT (33 + 58 = 91 wire bytes) reaches the sender's engine after
///   2 × 73 ns at 10 Gbit/s + 2 × 19 ns at 40 Gbit/s + 3 × 250 ns of switches
///   + 1,500 ns of host and NIC delays = 2,434 ns;
/// * the full DATA packet (1,538 wire bytes) the grant releases reaches the
///   receiver's engine after 2 × 1,231 + 2 × 308 + 3 × 250 + 1,500 = 5,328 ns.
///
/// That is 7,762 ns, 6.3 full packets' time on the 10 Gbit/s link; a window
/// of 10,000 bytes beyond what has arrived is 7.02 packets of 1,424 bytes, so
/// each grant arrives 0.7 packet (855 ns) before the sender would idle.
/// `ideal_time_matches_the_simulated_idle_network` checks it end to end: a
/// lone 1 MB message takes exactly its ideal time.
pub const PAPER_RTT_BYTES: u32 = 10_000;
/// Unscheduled bytes per message in the paper runs.
pub const PAPER_UNSCHED_BYTES: u32 = 9_328;

impl EngineSetup {
    /// The settings for workload `w` under `policy` on the paper's fabric.
    pub fn new(w: Workload, policy: Policy) -> Self {
        let (sched_levels, unsched_levels) = paper_priority_split(w);
        let packet = Fabric::sigcomm18().max_payload();
        match policy {
            Policy::Paper => EngineSetup {
                policy,
                unsched_bytes: PAPER_UNSCHED_BYTES,
                sched_levels,
                unsched_levels,
                overcommit: usize::from(sched_levels),
                grants_per_peer: 1,
                tail_boost: PAPER_RTT_BYTES,
                // Each granted message may have RTTbytes outstanding.
                grant_window: Some(PAPER_RTT_BYTES),
                grant_increment: packet,
                // And nothing caps the total, as in the paper's simulator
                // (its `maxOutstandingRecvBytes` is per message). A cap of
                // overcommitment × RTTbytes looks harmless but is not: the
                // total also holds the unscheduled bytes of messages just
                // arrived, so a receiver with all its windows open could not
                // grant a new, shorter message until the older ones had
                // drained — W5's 10–19 KB messages waited about 8 µs for their
                // first grant in a 400 ms run, and their P99 slowdowns were
                // 1.64–1.90 instead of 1.31–1.37.
                max_incoming: u32::MAX,
                fifo_grant_percent: 0,
                send_fifo_percent: 0,
                // The paper's sender picks each packet by SRPT at the moment
                // its link frees: nothing waits in the NIC. A queue would
                // fix the order early: the simulated NIC serves its queue by
                // packet priority, so a packet already handed over at a low
                // scheduled level (a short message's last granted bytes)
                // waits behind every later packet of the host's larger
                // messages granted at higher levels by other receivers, for
                // as long as they keep coming — milliseconds, until a RESEND.
                nic_queue_ns: 0,
            },
            Policy::Linux => EngineSetup {
                policy,
                unsched_bytes: PAPER_UNSCHED_BYTES,
                sched_levels,
                unsched_levels,
                // Linux grants to up to 8 messages whatever the priority split.
                overcommit: 8,
                grants_per_peer: 1,
                tail_boost: 0,
                grant_window: None,
                // A quarter of RTTbytes: fewer GRANTs than one per packet,
                // small against the dynamic window.
                grant_increment: PAPER_RTT_BYTES / 4,
                // Linux sizes max_incoming at several RTTbytes (400 KB at 25
                // Gbit/s); 8 RTTbytes here, so one message alone gets half.
                max_incoming: 8 * PAPER_RTT_BYTES,
                fifo_grant_percent: 5,
                send_fifo_percent: 5,
                // Linux lets 2 us wait in the NIC, whose one queue keeps the
                // engine's order. The simulated NIC serves by priority, so
                // any queue there invites the starvation described for the
                // paper policy: none here either.
                nic_queue_ns: 0,
            },
        }
    }

    /// The engine config for `fabric` and the workload distribution `dist`.
    ///
    /// # Errors
    /// If the settings do not form a valid config (for example more than 8
    /// priority levels in all).
    pub fn config(&self, fabric: &Fabric, dist: &SizeDistribution) -> Result<Config, ConfigError> {
        let mut c = fabric.engine_config_base();
        let levels = usize::from(self.sched_levels) + usize::from(self.unsched_levels);
        if self.sched_levels == 0 || self.unsched_levels == 0 || levels > NUM_PRIORITIES {
            return Err(ConfigError {
                field: "priorities",
                reason: format!(
                    "need at least one scheduled and one unscheduled level and at most {NUM_PRIORITIES} in all (got {}/{})",
                    self.sched_levels, self.unsched_levels
                ),
            });
        }
        c.unsched_bytes = self.unsched_bytes;
        let unsched = self.unsched_bytes.div_ceil(c.max_payload()) * c.max_payload();
        c.unsched_cutoffs = unsched_cutoffs(dist, unsched, self.unsched_levels);
        c.max_sched_priority = (NUM_PRIORITIES - usize::from(self.unsched_levels) - 1) as u8;
        c.max_overcommit = self.overcommit;
        c.max_grants_per_peer = self.grants_per_peer;
        c.grant_tail_boost = self.tail_boost;
        c.grant_window = self.grant_window;
        c.grant_increment = self.grant_increment;
        c.max_incoming = self.max_incoming;
        c.grant_fifo_percent = self.fifo_grant_percent;
        c.send_fifo_percent = self.send_fifo_percent;
        c.max_nic_queue = core::time::Duration::from_nanos(self.nic_queue_ns);
        c.validate()?;
        Ok(c)
    }
}

/// Unscheduled priority cutoffs that give each of the top `levels` priorities
/// the same share of the workload's unscheduled bytes (the paper's rule).
/// A message of size `s` sends `min(s, unsched)` unscheduled bytes; the
/// cutoffs are message sizes, smallest messages on the highest level.
///
/// The distribution is read through 2^16 stratified samples, which resolves
/// every step of the workload files.
///
/// # Example
/// ```
/// use homa_sim::paper::unsched_cutoffs;
/// use homa_workload::{SizeDistribution, Workload};
///
/// let c = unsched_cutoffs(&SizeDistribution::sigcomm18(Workload::W4), 9_968, 1);
/// assert_eq!(c, [0, 0, 0, 0, 0, 0, 0, u32::MAX]);
/// ```
pub fn unsched_cutoffs(dist: &SizeDistribution, unsched: u32, levels: u8) -> [u32; NUM_PRIORITIES] {
    let levels = usize::from(levels).clamp(1, NUM_PRIORITIES);
    const N: u64 = 1 << 16;
    let sizes: Vec<u64> = (0..N)
        .map(|i| dist.sample((i as f64 + 0.5) / N as f64))
        .collect(); // stratified, so already sorted
    let weight = |s: u64| s.min(u64::from(unsched));
    let total: u64 = sizes.iter().map(|&s| weight(s)).sum();
    let mut cutoffs = [0u32; NUM_PRIORITIES];
    // Level k (0 = highest priority 7) ends where the running share of
    // unscheduled bytes first reaches (k+1)/levels.
    let mut acc = 0u64;
    let mut k = 0;
    for &s in &sizes {
        acc += weight(s);
        while k + 1 < levels && acc * levels as u64 >= total * (k as u64 + 1) {
            cutoffs[NUM_PRIORITIES - 1 - k] = u32::try_from(s).unwrap_or(u32::MAX - 1);
            k += 1;
        }
    }
    // Several levels may end at the same size (a step holding many bytes);
    // keep the cutoffs strictly decreasing with priority where possible so
    // every level is used, and make them non-increasing in any case.
    for p in (NUM_PRIORITIES - levels + 1..NUM_PRIORITIES).rev() {
        if p + 1 < NUM_PRIORITIES && cutoffs[p] < cutoffs[p + 1] {
            cutoffs[p] = cutoffs[p + 1];
        }
    }
    cutoffs[NUM_PRIORITIES - levels] = u32::MAX;
    cutoffs
}
