//! The SIGCOMM 2018 experiment, run with the real engine: 144 hosts sending
//! Poisson streams of W1–W5 messages to each other; per-size-bucket slowdowns
//! beside the paper's.
//!
//! * [`Fabric`] is the network (the paper's preset, every parameter
//!   overridable) and the analytic ideal time ([`Fabric::ideal_ns`]).
//! * [`EngineSetup`] is how the engine is configured ([`Policy::Paper`] as
//!   the paper ran Homa, [`Policy::Linux`] with the Linux refinements).
//! * [`run`] runs one experiment; [`bucketize`] turns its samples into the
//!   paper's rows; [`reference`](mod@reference) holds the paper's numbers.
//!
//! Messages are Homa requests; the server answers each with an empty
//! response, which acknowledges it and frees the RPC at both ends. A
//! message's completion time is from the moment the client hands it to the
//! engine to the moment the server's engine delivers the whole message, as
//! in the paper. The load counts everything on the wire: data headers, the
//! Ethernet and IP overhead, grants and the empty responses.
//!
//! # Example
//! ```
//! use homa_sim::paper::{bucketize, run, EngineSetup, Fabric, Policy, RunConfig};
//! use homa_workload::Workload;
//!
//! let mut fabric = Fabric::sigcomm18();
//! fabric.racks = 2;
//! fabric.hosts_per_rack = 4;
//! let cfg = RunConfig {
//!     duration: 1_000_000, // 1 ms
//!     warmup: 100_000,
//!     ..RunConfig::new(Workload::W2, 0.5, fabric, EngineSetup::new(Workload::W2, Policy::Paper))
//! };
//! let result = run(&cfg, &mut |_, _| {}).unwrap();
//! assert_eq!(result.failed, 0);
//! assert!(result.samples.iter().all(|&(_, s)| s >= 1.0));
//! let rows = bucketize(&result.samples, &[100, 1_000, u64::MAX]);
//! assert_eq!(rows.iter().map(|r| r.count).sum::<usize>(), result.samples.len());
//! ```

mod engine;
mod fabric;
mod host;
pub mod reference;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant as WallInstant};

use bytes::Bytes;
use homa_core::wire::{DATA_HEADER_LEN, GRANT_LEN};
use homa_core::{Config, ConfigError, Endpoint};
use homa_workload::{SizeDistribution, Workload};

pub use engine::{
    paper_priority_split, unsched_cutoffs, EngineSetup, Policy, PAPER_RTT_BYTES,
    PAPER_UNSCHED_BYTES,
};
pub use fabric::Fabric;

use crate::net::{host_addr, HostId, Nanos, Network};
use crate::rng::Rng;
use host::{PaperHost, Recorder, Traffic};

/// One experiment.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Message sizes.
    pub workload: Workload,
    /// Offered load: fraction of the host link rate on the wire.
    pub load: f64,
    /// Messages that start in `[warmup, duration)` are measured.
    pub duration: Nanos,
    /// See [`duration`](Self::duration).
    pub warmup: Nanos,
    /// After `duration`, traffic goes on (so measured messages finish under
    /// the same load) until every measured message is complete, for at most
    /// this long. Messages still incomplete then are counted with the
    /// slowdown they have reached (see [`RunResult::samples`]).
    pub drain_limit: Nanos,
    /// Stop new arrivals at `duration`, so the measured messages finish on a
    /// network that empties, as in the paper's simulator (its `stopTime`
    /// ends message generation; the run goes on until every message is
    /// delivered). Default `false`: traffic goes on through the drain.
    pub stop_arrivals: bool,
    /// Seed of all randomness (arrivals, sizes, destinations, spraying).
    pub seed: u64,
    /// The network.
    pub fabric: Fabric,
    /// The engine's settings.
    pub engine: EngineSetup,
}

impl RunConfig {
    /// 100 ms measured after 10 ms of warm-up, at most 20 ms of drain, seed 1.
    pub fn new(workload: Workload, load: f64, fabric: Fabric, engine: EngineSetup) -> Self {
        RunConfig {
            workload,
            load,
            duration: 100_000_000,
            warmup: 10_000_000,
            drain_limit: 20_000_000,
            stop_arrivals: false,
            seed: 1,
            fabric,
            engine,
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Measured messages: (size in bytes, slowdown). Messages still
    /// incomplete at the end are included with the slowdown they had reached
    /// (a lower bound), so starvation shows in the tail.
    pub samples: Vec<(u64, f64)>,
    /// Measured messages that had not completed when the drain limit ran out
    /// (included in `samples` with a lower bound).
    pub incomplete: u64,
    /// Messages that failed or could not be sent (nothing is lost: 0 expected).
    pub failed: u64,
    /// RESEND packets all hosts sent, and the DATA bytes they retransmitted
    /// (over the whole run, warm-up included): without fault injection the
    /// fabric loses nothing, so every retransmitted byte duplicates one
    /// still queued somewhere.
    pub resends: u64,
    /// See [`resends`](Self::resends).
    pub retransmitted_bytes: u64,
    /// The first few failures, each with its reason.
    pub failures: Vec<String>,
    /// Messages started in all, and within the measured window.
    pub started: u64,
    /// See [`started`](Self::started).
    pub started_measured: u64,
    /// Mean busy fraction of the host uplinks over the measured window: the
    /// load actually offered on the wire.
    pub measured_load: f64,
    /// Simulator events processed.
    pub events: u64,
    /// Simulated time at the end.
    pub sim_time: Nanos,
    /// Wall-clock time of the run.
    pub wall: Duration,
    /// The engine config every host ran.
    pub config: Config,
    /// Where the link bandwidth went, sampled every 100 µs of the measured
    /// window.
    pub diagnosis: Diagnosis,
}

/// Where bandwidth goes: every host's scheduling state sampled at the start
/// of each 100 µs step of the measured window, beside how busy its links
/// were during that step.
///
/// A receiver is *backlogged* for a step if, at its start, it has at least
/// a full step's worth of bytes (125,000 at 10 Gbit/s) still to receive: a
/// work-conserving transport would keep its downlink busy for the whole step.
/// Likewise a sender is backlogged if it has that much still to send.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Diagnosis {
    /// Load offered in the measured window, from the messages that actually
    /// started in it (wire bytes as [`mean_wire_bytes`] counts them) over
    /// the link capacity. Differs from the requested load by sampling noise.
    pub offered_load: f64,
    /// The most load any transport could have carried: every uplink as an
    /// ideal work-conserving queue of the bytes its host offered, drained at
    /// the link rate (a message's bytes enter when it starts). Below
    /// `offered_load` when some hosts were offered more than their link's
    /// worth during the window.
    pub fluid_tx_load: f64,
    /// The same bound for downlinks (bytes enter at the receiver's queue
    /// when the message starts).
    pub fluid_rx_load: f64,
    /// Fraction of host-steps in which the receiver was backlogged.
    pub rx_backlogged: f64,
    /// Downlink utilisation during backlogged receiver steps.
    pub rx_util_backlogged: f64,
    /// Mean granted-but-unreceived bytes at a backlogged receiver.
    pub rx_outstanding_backlogged: f64,
    /// Mean number of messages still needing grants at a backlogged receiver.
    pub rx_needing_grants_backlogged: f64,
    /// Fraction of host-steps in which the sender was backlogged.
    pub tx_backlogged: f64,
    /// Uplink utilisation during backlogged sender steps.
    pub tx_util_backlogged: f64,
    /// Mean bytes granted (or unscheduled) but not yet sent at a backlogged
    /// sender.
    pub tx_granted_unsent_backlogged: f64,
    /// Of all granted-but-unreceived bytes (summed over receivers), the
    /// fraction not yet sent (summed over senders): grants parked at senders
    /// that are busy with other messages, instead of data in flight. The
    /// senders' side also counts unscheduled bytes of messages whose first
    /// packet has not reached the receiver yet, so with many short messages
    /// (W1) it can exceed 1.
    pub granted_parked: f64,
}

/// Accumulates [`Diagnosis`] samples.
#[derive(Default)]
struct DiagAcc {
    steps: u64,
    rx_n: u64,
    rx_busy: u64,
    rx_out: u64,
    rx_need: u64,
    tx_n: u64,
    tx_busy: u64,
    tx_gu: u64,
    outstanding: u64,
    parked: u64,
    last: Vec<(homa_core::Backlog, u64, u64)>,
}

impl DiagAcc {
    /// Ends the step that started at the last call and starts the next one.
    fn sample(&mut self, net: &Network<PaperHost>, threshold: u64, count: bool) {
        let hosts = net.num_hosts();
        let mut next = Vec::with_capacity(hosts);
        for h in 0..hosts {
            let b = net.node(HostId(h)).endpoint().backlog();
            let st = net.host_stats(HostId(h));
            next.push((b, st.rx_busy_ns, st.tx_busy_ns));
        }
        if count && self.last.len() == hosts {
            for ((b, rx0, tx0), (_, rx1, tx1)) in self.last.iter().zip(&next) {
                self.steps += 1;
                if b.in_unreceived >= threshold {
                    self.rx_n += 1;
                    self.rx_busy += rx1 - rx0;
                    self.rx_out += b.in_outstanding;
                    self.rx_need += b.in_needing_grants;
                }
                if b.out_unsent >= threshold {
                    self.tx_n += 1;
                    self.tx_busy += tx1 - tx0;
                    self.tx_gu += b.out_granted_unsent;
                }
                self.outstanding += b.in_outstanding;
                self.parked += b.out_granted_unsent;
            }
        }
        self.last = next;
    }

    fn finish(&self, step: Nanos, offered_load: f64, fluid: [f64; 2]) -> Diagnosis {
        let div = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Diagnosis {
            offered_load,
            fluid_tx_load: fluid[0],
            fluid_rx_load: fluid[1],
            rx_backlogged: div(self.rx_n, self.steps),
            rx_util_backlogged: div(self.rx_busy, self.rx_n * step),
            rx_outstanding_backlogged: div(self.rx_out, self.rx_n),
            rx_needing_grants_backlogged: div(self.rx_need, self.rx_n),
            tx_backlogged: div(self.tx_n, self.steps),
            tx_util_backlogged: div(self.tx_busy, self.tx_n * step),
            tx_granted_unsent_backlogged: div(self.tx_gu, self.tx_n),
            granted_parked: div(self.parked, self.outstanding),
        }
    }
}

impl RunResult {
    /// Simulator events per second of wall time.
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Mean wire bytes a message puts on host uplinks: its DATA frames, the grants
/// for its scheduled bytes and the empty response. By symmetry (every host
/// sends and receives alike) this is what each host's uplink carries per
/// message it sends.
pub fn mean_wire_bytes(dist: &SizeDistribution, config: &Config) -> f64 {
    const N: u64 = 1 << 16;
    let frame = DATA_HEADER_LEN as u64 + u64::from(config.packet_overhead);
    let per_message_overhead: f64 = (0..N)
        .map(|i| {
            let s = dist.sample((i as f64 + 0.5) / N as f64);
            (message_wire_bytes(s, config) - s - frame) as f64
        })
        .sum::<f64>()
        / N as f64;
    // The data bytes themselves from the file's stated mean (exact, tail
    // included); the response is one header-only frame.
    dist.mean_bytes() + per_message_overhead + frame as f64
}

/// Wire bytes one `s`-byte message puts on host uplinks: its DATA frames,
/// the grants for its scheduled bytes and the empty response's frame.
pub fn message_wire_bytes(s: u64, config: &Config) -> u64 {
    let payload = u64::from(config.max_payload());
    let frame = DATA_HEADER_LEN as u64 + u64::from(config.packet_overhead);
    let unsched = u64::from(config.unsched_bytes).div_ceil(payload) * payload;
    let grant = GRANT_LEN as u64 + u64::from(config.packet_overhead);
    let step = u64::from(config.grant_increment).max(payload);
    let packets = s.div_ceil(payload).max(1);
    let grants = s.saturating_sub(unsched).div_ceil(step);
    s + packets * frame + grants * grant + frame
}

/// Runs one experiment. `progress(now, end)` is called every 100 µs of
/// simulated time (`end` is the planned end without draining).
///
/// # Errors
/// If the engine settings do not form a valid config.
pub fn run(
    cfg: &RunConfig,
    progress: &mut dyn FnMut(Nanos, Nanos),
) -> Result<RunResult, ConfigError> {
    let wall = WallInstant::now();
    let dist = SizeDistribution::sigcomm18(cfg.workload);
    let config = cfg.engine.config(&cfg.fabric, &dist)?;
    let hosts = cfg.fabric.hosts();
    // Poisson arrivals per host at the rate that fills `load` of the link.
    let bytes_per_ns = cfg.load * cfg.fabric.host_link_bps as f64 / 8e9;
    let mean_gap_ns = mean_wire_bytes(&dist, &config) / bytes_per_ns;
    let largest = if cfg.workload == Workload::W1 {
        1 << 30
    } else {
        dist.max_step_bytes()
    };
    let end = cfg.duration;
    let traffic = Rc::new(Traffic {
        dist,
        mean_gap_ns,
        // Arrivals go on through the drain, unless the run stops them at
        // the end of the window as the paper's simulator did.
        stop_at: if cfg.stop_arrivals {
            end
        } else {
            end + cfg.drain_limit
        },
        hosts,
        // Zero-filled by the allocator on demand: untouched pages cost nothing.
        body: Bytes::from(vec![0u8; largest as usize]),
        fabric: cfg.fabric.clone(),
        config: config.clone(),
    });
    let rec = Rc::new(RefCell::new(Recorder::new(hosts, cfg.warmup, end)));
    let mut net = Network::new(cfg.fabric.topology(), cfg.seed);
    let mut seeds = Rng::new(cfg.seed ^ 0x5eed_0f7a_ff1c);
    for h in 0..hosts {
        let engine_config = Config {
            seed: seeds.next_u64(),
            ..config.clone()
        };
        let endpoint = Endpoint::new(engine_config, host_addr(HostId(h)))?;
        net.add_host(PaperHost::new(
            endpoint,
            HostId(h),
            config.packet_overhead,
            seeds.fork(),
            Rc::clone(&traffic),
            Rc::clone(&rec),
        ));
    }
    let busy = |net: &Network<PaperHost>| -> u64 {
        (0..hosts)
            .map(|h| net.host_stats(HostId(h)).tx_busy_ns)
            .sum()
    };
    const STEP: Nanos = 100_000;
    let mut t = 0;
    let mut busy_at_warmup = None;
    let mut busy_at_end = None;
    let mut diag = DiagAcc::default();
    // A step's worth of bytes at the host link rate.
    let threshold = STEP * cfg.fabric.host_link_bps / 8_000_000_000;
    loop {
        t += STEP;
        if busy_at_warmup.is_none() && t > cfg.warmup {
            net.run_until(cfg.warmup);
            busy_at_warmup = Some(busy(&net));
        }
        if busy_at_end.is_none() && t > end {
            net.run_until(end);
            busy_at_end = Some(busy(&net));
        }
        net.run_until(t);
        if t > cfg.warmup && t <= end + STEP {
            // The step ending at `t` counts if it started in the window.
            diag.sample(&net, threshold, t > cfg.warmup + STEP);
        }
        progress(t.min(end), end);
        let drained = rec.borrow().measured_pending == 0;
        if t >= end && (drained || t >= end + cfg.drain_limit) {
            break;
        }
    }
    let window = (end - cfg.warmup.min(end)).max(1) as f64 * hosts as f64;
    let measured_load = (busy_at_end.unwrap_or(0) - busy_at_warmup.unwrap_or(0)) as f64 / window;
    let mut rec = rec.borrow_mut();
    let incomplete = rec.finish(net.now(), &traffic);
    let capacity = window * cfg.fabric.host_link_bps as f64 / 8e9;
    let offered_load = rec.offered_wire_bytes as f64 / capacity;
    let rate = cfg.fabric.host_link_bps as f64 / 8e9;
    let measured = (cfg.warmup.min(end), end);
    let fluid = rec.fluid.each_mut().map(|side| {
        side.iter_mut()
            .map(|q| {
                q.advance(end, rate, measured);
                q.drained
            })
            .sum::<f64>()
            / capacity
    });
    let (resends, retransmitted_bytes) = (0..hosts).fold((0, 0), |(n, b), h| {
        let m = net.node(HostId(h)).endpoint().metrics();
        (n + m.resends_sent, b + m.retransmitted_bytes)
    });
    Ok(RunResult {
        samples: std::mem::take(&mut rec.samples),
        incomplete,
        failed: rec.failed,
        resends,
        retransmitted_bytes,
        failures: std::mem::take(&mut rec.failures),
        started: rec.started,
        started_measured: rec.started_measured,
        measured_load,
        events: net.stats().events,
        sim_time: net.now(),
        wall: wall.elapsed(),
        config,
        diagnosis: diag.finish(STEP, offered_load, fluid),
    })
}

/// Statistics of one size bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketStats {
    /// Largest size in the bucket (inclusive); the previous bucket's bound is
    /// exclusive.
    pub size_upper_bytes: u64,
    /// Messages in the bucket.
    pub count: usize,
    /// Median slowdown (0 if the bucket is empty).
    pub median_slowdown: f64,
    /// 99th-percentile slowdown (0 if the bucket is empty).
    pub p99_slowdown: f64,
    /// The 99th percentile as the paper's analysis read it, from a
    /// histogram of the slowdowns in completion order (see
    /// [`histogram_p99`]); 0 if the bucket is empty.
    pub p99_histogram: f64,
}

/// Sorts `samples` (size, slowdown) into buckets with the given inclusive
/// upper bounds (ascending); sizes above the last bound go to the last
/// bucket. Percentiles are nearest-rank; `p99_histogram` reads the samples
/// in the order given, which for a run's samples is completion order.
///
/// # Example
/// ```
/// let rows = homa_sim::paper::bucketize(&[(10, 1.0), (10, 3.0), (500, 2.0)], &[100, 1000]);
/// assert_eq!(rows[0].count, 2);
/// assert_eq!(rows[0].median_slowdown, 1.0);
/// assert_eq!(rows[0].p99_slowdown, 3.0);
/// assert_eq!(rows[1].count, 1);
/// ```
pub fn bucketize(samples: &[(u64, f64)], bounds: &[u64]) -> Vec<BucketStats> {
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); bounds.len()];
    for &(size, slowdown) in samples {
        let i = bounds.partition_point(|&b| b < size).min(bounds.len() - 1);
        per[i].push(slowdown);
    }
    bounds
        .iter()
        .zip(per)
        .map(|(&b, mut v)| {
            let p99_histogram = histogram_p99(&v);
            v.sort_by(f64::total_cmp);
            BucketStats {
                size_upper_bytes: b,
                count: v.len(),
                median_slowdown: percentile(&v, 0.5),
                p99_slowdown: percentile(&v, 0.99),
                p99_histogram,
            }
        })
        .collect()
}

/// Nearest-rank percentile of sorted values (0 if empty).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The 99th percentile of `values` (in the order they were recorded) as
/// the paper's analysis read it.
///
/// The paper's simulator recorded each bucket's slowdowns in an OMNeT++ 4.6
/// `cHistogram`, and its `MetricsDashBoard.py` read the P99 off the recorded
/// bins. Its build instructions (the HomaSimulation README) patch OMNeT++'s
/// histogram defaults first (`cDensityEstBase`, `cHistogram::setupRangeDouble`);
/// with that patch:
/// * the range is `[0, max)`, `max` the largest of the first 10,000 values
///   (all of them, if fewer were recorded; 1 if that is not above 0);
/// * 100 equal cells over it; a later value at or beyond the range's end only
///   counts in an overflow cell.
///
/// The script takes the bins in order (underflow, the 100 cells, overflow),
/// finds the first whose cumulative share is at least 0.99, and reads its
/// lower edge (the range's end for the overflow cell), but no less than the
/// smallest value. So it rounds a P99 down to a cell's edge, by less than a
/// hundredth of the bucket's largest value; only a bucket of more than
/// 10,000 values can be capped.
///
/// One default is left out on purpose. When every one of the first values
/// is a whole number, `cHistogram` switches to whole-number cells (at most
/// 200, each at least 1 wide). Ours can be exactly 1.0 (a message that meets
/// no queue takes exactly its ideal time, in whole nanoseconds); the paper's
/// would have needed its simulated times to equal its ideal-time formula
/// exactly. Reading ours in that mode would not read them as the paper read
/// its own, so this always uses the 100 cells. Returns 0 for no values.
///
/// # Example
/// ```
/// // 200 values, 1.01 to 3.00: the range is [0, 3.0) in cells of 0.03, and
/// // the 198th value (2.98, the exact P99) is in the cell from 2.97.
/// let v: Vec<f64> = (1..=200).map(|i| 1.0 + f64::from(i) / 100.0).collect();
/// let p = homa_sim::paper::histogram_p99(&v);
/// assert!((p - 2.97).abs() < 1e-9, "{p}");
/// ```
pub fn histogram_p99(values: &[f64]) -> f64 {
    const FIRST_VALUES: usize = 10_000; // num_firstvals, as patched
    const CELLS: usize = 100; // setupRangeDouble's default, as patched
    if values.is_empty() {
        return 0.0;
    }
    // RANGE_AUTOUPPER with the range's start left at 0 and an extension
    // factor of 1: the range ends at the largest of the first values.
    let first = &values[..values.len().min(FIRST_VALUES)];
    let hi = first.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let range_min = 0.0;
    let range_max = if range_min >= hi { range_min + 1.0 } else { hi };
    let cell = (range_max - range_min) / CELLS as f64;
    // bins[0] underflow, bins[1..=CELLS] the cells, bins[CELLS + 1] overflow.
    let mut bins = [0u64; CELLS + 2];
    for &v in values {
        let k = ((v - range_min) / cell).floor();
        let i = if k < 0.0 || v < range_min {
            0
        } else if k >= CELLS as f64 || v >= range_max {
            CELLS + 1
        } else {
            k as usize + 1
        };
        bins[i] += 1;
    }
    let lower_edge = |i: usize| match i {
        // The script reads the underflow bin (edge -inf) as the next edge.
        0 | 1 => range_min,
        i if i == CELLS + 1 => range_max,
        i => range_min + (i - 1) as f64 * cell,
    };
    // The script's cumulative share: a running sum of count / total.
    let total = values.len() as f64;
    let mut cumulative = 0.0;
    let mut at = CELLS + 1;
    for (i, &n) in bins.iter().enumerate() {
        cumulative += n as f64 / total;
        if cumulative >= 0.99 {
            at = i;
            break;
        }
    }
    let smallest = values.iter().copied().fold(f64::INFINITY, f64::min);
    lower_edge(at).max(smallest)
}

/// Smallest-bucket P99, worst-bucket P99 and the count-weighted mean of bucket
/// P99s (empty buckets ignored), the paper's three headline figures.
pub fn summarize(rows: &[BucketStats]) -> (f64, f64, f64) {
    summarize_by(rows, |r| r.p99_slowdown)
}

/// [`summarize`] with each bucket's P99 read as the paper's analysis read
/// it ([`BucketStats::p99_histogram`]).
pub fn summarize_histogram(rows: &[BucketStats]) -> (f64, f64, f64) {
    summarize_by(rows, |r| r.p99_histogram)
}

fn summarize_by(rows: &[BucketStats], p99: impl Fn(&BucketStats) -> f64) -> (f64, f64, f64) {
    let used: Vec<&BucketStats> = rows.iter().filter(|r| r.count > 0).collect();
    // The smallest bucket lines up with the paper's first row; if a short
    // run left it empty, the first bucket with messages stands in.
    let first = used.first().map_or(0.0, |r| p99(r));
    let worst = used.iter().map(|r| p99(r)).fold(0.0, f64::max);
    let n: usize = used.iter().map(|r| r.count).sum();
    let mean = used.iter().map(|r| r.count as f64 * p99(r)).sum::<f64>() / n.max(1) as f64;
    (first, worst, mean)
}

#[cfg(test)]
mod tests;
