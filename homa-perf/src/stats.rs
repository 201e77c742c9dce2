//! What a run measures, and how it is summarised: RTT percentiles per size
//! bucket, slowdown against the idle RTT of the same size (measured in the
//! same run), the short-message summary, throughput and CPU.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Upper bounds (inclusive, bytes) of the size buckets.
pub const BUCKETS: [u64; 10] = [
    100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 600_000, 1_000_000,
];

/// One completed RPC.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Request size, bytes.
    pub size: u64,
    /// Response size, bytes.
    pub resp: u64,
    /// When it started, nanoseconds since the run's start.
    pub start_ns: u64,
    /// Round-trip time, nanoseconds.
    pub rtt_ns: u64,
}

/// Collects samples and errors from every task or thread of a client.
#[derive(Debug)]
pub struct Recorder {
    /// The run's time zero.
    pub t0: Instant,
    samples: Mutex<Vec<Sample>>,
    /// RPCs that failed, by start time: (start_ns, reason).
    errors: Mutex<Vec<(u64, String)>>,
    /// Completed RPCs so far (for the progress bar).
    pub done: AtomicU64,
    /// Open-loop arrivals not issued because too many were outstanding.
    pub skipped: AtomicU64,
    /// Stalls of the open-loop arrival clock: (when the first late arrival
    /// fell due, ns since time zero; how late it was issued, ns).
    stall_log: Mutex<Vec<(u64, u64)>>,
}

impl Recorder {
    /// A recorder whose time zero is now.
    pub fn new() -> Recorder {
        Recorder {
            t0: Instant::now(),
            samples: Mutex::new(Vec::with_capacity(1 << 16)),
            errors: Mutex::new(Vec::new()),
            done: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            stall_log: Mutex::new(Vec::new()),
        }
    }

    /// Nanoseconds since time zero.
    pub fn ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.t0).as_nanos() as u64
    }

    /// Record an RPC that started at `start` and just completed.
    pub fn ok(&self, size: u64, resp: u64, start: Instant) {
        let now = Instant::now();
        let s = Sample {
            size,
            resp,
            start_ns: self.ns(start),
            rtt_ns: now.saturating_duration_since(start).as_nanos() as u64,
        };
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(s);
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// Record an RPC that started at `start` and failed.
    pub fn err(&self, start: Instant, why: impl std::fmt::Display) {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((self.ns(start), why.to_string()));
    }

    /// The arrival clock's stalls that began in `[from_ns, to_ns)`: how
    /// many, and how late their first arrivals were issued, summed, ms (see
    /// [`StallMeter`]).
    pub fn stalls(&self, from_ns: u64, to_ns: u64) -> (u64, f64) {
        let v = self.stall_log.lock().unwrap_or_else(|e| e.into_inner());
        let inside = v.iter().filter(|s| s.0 >= from_ns && s.0 < to_ns);
        let (n, ns) = inside.fold((0, 0), |(n, ns), s| (n + 1, ns + s.1));
        (n, ns as f64 / 1e6)
    }

    /// Take everything recorded.
    pub fn take(&self) -> (Vec<Sample>, Vec<(u64, String)>) {
        (
            std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner())),
            std::mem::take(&mut *self.errors.lock().unwrap_or_else(|e| e.into_inner())),
        )
    }
}

/// Issued this late or later, an open-loop arrival marks a stall of the
/// load generator's clock thread. The thread sleeps until each arrival
/// falls due, and a sleep overruns by the kernel's timer slack (tens of
/// microseconds); this late, the thread did not run: the machine, or other
/// threads of ours that held both cores, kept it off.
pub const STALL_NS: u64 = 500_000;

/// Finds stalls of an open-loop arrival clock: told when each arrival fell
/// due and when it was issued, it records one stall per stretch of time the
/// thread did not run, with the lateness of the first arrival that fell due
/// in it (the longest: the others fell due later in the same stretch). That
/// lateness is a lower bound on the stall (it leaves out the part before
/// that arrival fell due); a stall in which no arrival fell due at least
/// [`STALL_NS`] before its end is not seen, so at low rates short stalls
/// are missed.
///
/// These stalls are not counted in any RPC's time (each RPC counts from
/// when it was issued); they are reported beside the run so that a reader
/// can see how much each protocol's rounds lost.
#[derive(Debug, Default)]
pub struct StallMeter {
    /// When the thread issued the last late arrival (`None` after an
    /// on-time one): a later arrival that fell due before then belongs to
    /// the same stall.
    last_late: Option<Instant>,
}

impl StallMeter {
    /// An arrival that fell due at `due` was issued at `issued`.
    pub fn arrival(&mut self, rec: &Recorder, due: Instant, issued: Instant) {
        let late = issued.saturating_duration_since(due).as_nanos() as u64;
        if late < STALL_NS {
            self.last_late = None;
            return;
        }
        // A new stall unless this arrival fell due before the thread last
        // ran (at `last_late`): one due after that was missed anew.
        if self.last_late.is_none_or(|t| due > t) {
            rec.stall_log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((rec.ns(due), late));
        }
        self.last_late = Some(issued);
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// One size bucket of a run's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bucket {
    /// Largest request size in the bucket, bytes.
    pub size_upper: u64,
    /// RPCs measured.
    pub count: u64,
    /// Median RTT, µs.
    pub p50_us: f64,
    /// 99th percentile RTT, µs.
    pub p99_us: f64,
    /// 99.9th percentile RTT, µs.
    pub p999_us: f64,
    /// 99th percentile of RTT / idle RTT of the same size.
    pub p99_slowdown: f64,
    /// Idle (one outstanding, nothing else running) median RTT at the
    /// bucket's typical size, µs.
    pub idle_us: f64,
}

/// Everything one client measured in one run of one protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// Protocol name (homa, homa-spin, tcp, udp, udp-spin).
    pub protocol: String,
    /// The load, in words.
    pub load: String,
    /// Measured seconds (after warm-up).
    pub duration_s: f64,
    /// RPCs completed in the measured window.
    pub rpcs: u64,
    /// RPCs that failed.
    pub errors: u64,
    /// A few error messages, for the log.
    pub error_examples: Vec<String>,
    /// Open-loop arrivals not issued because the outstanding limit was hit.
    pub skipped: u64,
    /// RPCs per second.
    pub rpcs_per_sec: f64,
    /// Message bytes (requests plus responses) per second, Gbit/s.
    pub throughput_gbps: f64,
    /// Largest size counted as short (the smallest 10 % of messages).
    pub short_max_size: u64,
    /// Short messages: median RTT, µs.
    pub short_p50_us: f64,
    /// Short messages: 99th percentile RTT, µs.
    pub short_p99_us: f64,
    /// All RPCs: median RTT, µs.
    pub p50_us: f64,
    /// All RPCs: 99th percentile RTT, µs.
    pub p99_us: f64,
    /// Per size bucket.
    pub buckets: Vec<Bucket>,
    /// Client CPU seconds (user + system) in the measured window.
    pub client_cpu_s: f64,
    /// Server CPU seconds (user + system) in the measured window, summed
    /// over servers; `None` if a server did not report.
    pub server_cpu_s: Option<f64>,
    /// Transport counters worth a look (e.g. Homa retransmissions).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Open loop: stalls of the arrival clock in the measured window (the
    /// thread issued an arrival [`STALL_NS`] or more late: it did not run;
    /// see [`StallMeter`]). Always 0 in closed loop.
    #[serde(default)]
    pub stalls: u64,
    /// How late each stall's first arrival was issued, summed, ms: a lower
    /// bound on the time the stalls lasted.
    #[serde(default)]
    pub stall_ms: f64,
}

/// Nearest-rank percentile of a sorted slice (`p` in 0..=1).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

/// The bucket index of a size.
pub fn bucket_of(size: u64) -> usize {
    BUCKETS
        .iter()
        .position(|&b| size <= b)
        .unwrap_or(BUCKETS.len() - 1)
}

/// Idle RTT as a function of size: piecewise linear through measured
/// points (size, median RTT ns), flat beyond the ends.
#[derive(Debug, Clone, Default)]
pub struct IdleCurve {
    points: Vec<(u64, f64)>,
}

impl IdleCurve {
    /// A curve through `points` (any order).
    pub fn new(mut points: Vec<(u64, f64)>) -> IdleCurve {
        points.sort_by_key(|p| p.0);
        points.dedup_by_key(|p| p.0);
        IdleCurve { points }
    }

    /// Idle RTT (ns) at `size`; `None` without points.
    pub fn at(&self, size: u64) -> Option<f64> {
        let p = &self.points;
        let first = p.first()?;
        if size <= first.0 {
            return Some(first.1);
        }
        for w in p.windows(2) {
            let ((s0, r0), (s1, r1)) = (w[0], w[1]);
            if size <= s1 {
                let f = (size - s0) as f64 / (s1 - s0) as f64;
                return Some(r0 + f * (r1 - r0));
            }
        }
        p.last().map(|l| l.1)
    }

    /// The measured points (size, idle RTT ns), by size.
    pub fn points(&self) -> &[(u64, f64)] {
        &self.points
    }
}

/// A run's raw measurements: what `loopback --rounds` needs to pool a
/// protocol's rounds into one result (percentiles do not pool; samples do).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RawRun {
    /// Start of the measured window, ns since the run's time zero.
    pub from_ns: u64,
    /// End of the measured window (exclusive).
    pub to_ns: u64,
    /// (request size, response size, start ns, RTT ns) of every RPC that
    /// started in the window.
    pub samples: Vec<(u64, u64, u64, u64)>,
    /// (start ns, reason) of every RPC that started in the window and failed.
    pub errors: Vec<(u64, String)>,
    /// The idle RTT curve's points: (size, median RTT ns).
    pub idle: Vec<(u64, f64)>,
}

impl RawRun {
    /// The samples and errors of `[from_ns, to_ns)`, with the idle curve.
    pub fn new(
        samples: &[Sample],
        errors: &[(u64, String)],
        from_ns: u64,
        to_ns: u64,
        idle: &IdleCurve,
    ) -> RawRun {
        let inside = |t: u64| t >= from_ns && t < to_ns;
        RawRun {
            from_ns,
            to_ns,
            samples: samples
                .iter()
                .filter(|s| inside(s.start_ns))
                .map(|s| (s.size, s.resp, s.start_ns, s.rtt_ns))
                .collect(),
            errors: errors.iter().filter(|e| inside(e.0)).cloned().collect(),
            idle: idle.points().to_vec(),
        }
    }
}

/// Pools the rounds of one protocol into one result, as if they were one
/// run: their measured windows laid end to end (so rates are over the sum
/// of the windows), the idle RTT the median of the rounds' (slowdowns are
/// against it), skipped arrivals, clock stalls and CPU times summed, and every round's
/// notes kept, numbered. `None` without rounds.
///
/// Each round measured its idle RTTs at sizes drawn with its own seed, so
/// the pooled curve has a point at every size any round measured, each the
/// median of all the rounds' curves there (interpolated where a round did
/// not measure that size).
pub fn pool(rounds: &[(RunResult, RawRun)]) -> Option<RunResult> {
    let (first, _) = rounds.first()?;
    let mut samples = Vec::new();
    let mut errors = Vec::new();
    let mut end = 0;
    for (_, raw) in rounds {
        // Window-relative times, shifted past the previous rounds.
        let shift = |t: u64| t - raw.from_ns + end;
        let inside = |t: u64| t >= raw.from_ns && t < raw.to_ns;
        samples.extend(raw.samples.iter().filter(|s| inside(s.2)).map(
            |&(size, resp, start, rtt)| Sample {
                size,
                resp,
                start_ns: shift(start),
                rtt_ns: rtt,
            },
        ));
        errors.extend(
            raw.errors
                .iter()
                .filter(|e| inside(e.0))
                .map(|(t, why)| (shift(*t), why.clone())),
        );
        end += raw.to_ns.saturating_sub(raw.from_ns);
    }
    let curve = pooled_idle(rounds.iter().map(|r| &r.1));
    let server_cpu = rounds.iter().map(|r| r.0.server_cpu_s).sum::<Option<f64>>();
    let mut out = summarize(
        &first.protocol,
        first.load.clone(),
        &samples,
        &errors,
        rounds.iter().map(|r| r.0.skipped).sum(),
        0,
        end,
        &curve,
        rounds.iter().map(|r| r.0.client_cpu_s).sum(),
        server_cpu,
    );
    out.stalls = rounds.iter().map(|r| r.0.stalls).sum();
    out.stall_ms = rounds.iter().map(|r| r.0.stall_ms).sum();
    out.notes = rounds
        .iter()
        .enumerate()
        .flat_map(|(i, (r, _))| r.notes.iter().map(move |n| format!("round {}: {n}", i + 1)))
        .collect();
    Some(out)
}

/// The rounds' idle RTT curves pooled (see [`pool`]): a point at every
/// size any round measured, the median of every round's curve there.
fn pooled_idle<'a>(raws: impl Iterator<Item = &'a RawRun> + Clone) -> IdleCurve {
    let curves: Vec<IdleCurve> = raws
        .clone()
        .map(|r| IdleCurve::new(r.idle.clone()))
        .collect();
    let mut sizes: Vec<u64> = raws.flat_map(|r| r.idle.iter().map(|p| p.0)).collect();
    sizes.sort_unstable();
    sizes.dedup();
    IdleCurve::new(
        sizes
            .into_iter()
            .filter_map(|size| {
                let at: Vec<f64> = curves.iter().filter_map(|c| c.at(size)).collect();
                median(at).map(|m| (size, m))
            })
            .collect(),
    )
}

/// The median of `v` (the mean of the middle two for an even count);
/// `None` if empty.
fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Summarise the samples that started in `[from_ns, to_ns)`.
#[allow(clippy::too_many_arguments)]
pub fn summarize(
    protocol: &str,
    load: String,
    samples: &[Sample],
    errors: &[(u64, String)],
    skipped: u64,
    from_ns: u64,
    to_ns: u64,
    idle: &IdleCurve,
    client_cpu_s: f64,
    server_cpu_s: Option<f64>,
) -> RunResult {
    let win: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.start_ns >= from_ns && s.start_ns < to_ns)
        .collect();
    let errs: Vec<&(u64, String)> = errors
        .iter()
        .filter(|e| e.0 >= from_ns && e.0 < to_ns)
        .collect();
    let secs = (to_ns - from_ns) as f64 / 1e9;
    let bytes: u64 = win.iter().map(|s| s.size + s.resp).sum();

    let mut all: Vec<u64> = win.iter().map(|s| s.rtt_ns).collect();
    all.sort_unstable();

    // Short messages: sizes up to the 10th percentile size.
    let mut sizes: Vec<u64> = win.iter().map(|s| s.size).collect();
    sizes.sort_unstable();
    let short_max = percentile(&sizes, 0.10);
    let mut short: Vec<u64> = win
        .iter()
        .filter(|s| s.size <= short_max)
        .map(|s| s.rtt_ns)
        .collect();
    short.sort_unstable();

    let mut per: Vec<(Vec<u64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); BUCKETS.len()];
    for s in &win {
        let b = &mut per[bucket_of(s.size)];
        b.0.push(s.rtt_ns);
        let idle_ns = idle.at(s.size).unwrap_or(s.rtt_ns as f64).max(1.0);
        b.1.push(s.rtt_ns as f64 / idle_ns);
    }
    let mut buckets = Vec::new();
    for (i, (mut rtts, mut slow)) in per.into_iter().enumerate() {
        if rtts.is_empty() {
            continue;
        }
        rtts.sort_unstable();
        slow.sort_by(f64::total_cmp);
        let rank = ((0.99 * slow.len() as f64).ceil() as usize).clamp(1, slow.len()) - 1;
        let lo = if i == 0 { 1 } else { BUCKETS[i - 1] + 1 };
        let typical = (lo + BUCKETS[i]) / 2;
        buckets.push(Bucket {
            size_upper: BUCKETS[i],
            count: rtts.len() as u64,
            p50_us: us(percentile(&rtts, 0.5)),
            p99_us: us(percentile(&rtts, 0.99)),
            p999_us: us(percentile(&rtts, 0.999)),
            p99_slowdown: slow[rank],
            idle_us: idle.at(typical).unwrap_or(0.0) / 1e3,
        });
    }

    RunResult {
        protocol: protocol.to_string(),
        load,
        duration_s: secs,
        rpcs: win.len() as u64,
        errors: errs.len() as u64,
        error_examples: errs.iter().take(5).map(|e| e.1.clone()).collect(),
        skipped,
        rpcs_per_sec: win.len() as f64 / secs,
        throughput_gbps: bytes as f64 * 8.0 / secs / 1e9,
        short_max_size: short_max,
        short_p50_us: us(percentile(&short, 0.5)),
        short_p99_us: us(percentile(&short, 0.99)),
        p50_us: us(percentile(&all, 0.5)),
        p99_us: us(percentile(&all, 0.99)),
        buckets,
        client_cpu_s,
        server_cpu_s,
        notes: Vec::new(),
        stalls: 0,
        stall_ms: 0.0,
    }
}

/// CPU seconds (user + system) this process has used so far, all threads.
pub fn cpu_seconds() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        }
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_is_counted_once_with_its_first_lateness() {
        use std::time::Duration;
        let rec = Recorder::new();
        let t0 = rec.t0;
        let at = |us: u64| t0 + Duration::from_micros(us);
        let mut m = StallMeter::default();
        // On time, and late by less than STALL_NS: no stall.
        m.arrival(&rec, at(100), at(110));
        m.arrival(&rec, at(200), at(699));
        // A 2 ms stall: three arrivals fell due during it and are issued
        // together at 3,000 µs; one stall, as long as the first is late.
        m.arrival(&rec, at(1_000), at(3_000));
        m.arrival(&rec, at(1_500), at(3_000));
        m.arrival(&rec, at(2_900), at(3_000));
        // Back on time, then a second stall of 0.5 ms exactly.
        m.arrival(&rec, at(3_100), at(3_120));
        m.arrival(&rec, at(4_000), at(4_500));
        // A third right after it, with no arrival due in between: the
        // thread ran at 4,500 µs, so one due at 4,600 and issued at 5,800
        // was missed anew.
        m.arrival(&rec, at(4_600), at(5_800));
        m.arrival(&rec, at(5_000), at(5_800));
        assert_eq!(rec.stalls(0, u64::MAX), (3, 3.7));
        // By when the stall began: the window [0, 4 ms) holds the first.
        assert_eq!(rec.stalls(0, 4_000_000), (1, 2.0));
        assert_eq!(rec.stalls(1_000_001, 4_000_000), (0, 0.0));
    }

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 0.999), 100);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn idle_curve_interpolates() {
        let c = IdleCurve::new(vec![(1000, 30.0), (100, 10.0)]);
        assert_eq!(c.at(50), Some(10.0));
        assert_eq!(c.at(550), Some(20.0));
        assert_eq!(c.at(5000), Some(30.0));
        assert_eq!(IdleCurve::default().at(5), None);
    }

    #[test]
    fn buckets_and_short_summary() {
        let samples: Vec<Sample> = (0..1000u64)
            .map(|i| Sample {
                size: if i % 10 == 0 { 100 } else { 50_000 },
                resp: 100,
                start_ns: i,
                rtt_ns: if i % 10 == 0 { 10_000 } else { 100_000 },
            })
            .collect();
        let idle = IdleCurve::new(vec![(100, 5_000.0), (50_000, 50_000.0)]);
        let r = summarize(
            "x",
            String::new(),
            &samples,
            &[],
            0,
            0,
            1_000,
            &idle,
            0.0,
            None,
        );
        assert_eq!(r.rpcs, 1000);
        assert_eq!(r.short_max_size, 100);
        assert_eq!(r.short_p99_us, 10.0);
        assert_eq!(r.buckets.len(), 2);
        assert_eq!(r.buckets[0].size_upper, 100);
        assert_eq!(r.buckets[0].count, 100);
        assert!((r.buckets[0].p99_slowdown - 2.0).abs() < 1e-9);
    }

    #[test]
    fn pooled_rounds_are_one_run_laid_end_to_end() {
        // Round 1: window [1 s, 1 s + 1000 ns) after a warm-up, 10 RPCs of
        // 100 µs, one sample before the window that `RawRun::new` leaves
        // out, and a failure. Idle RTT 40 µs at 100 B and 400 µs at 10 kB.
        let warm = 1_000_000_000;
        let mut samples: Vec<Sample> = (0..10)
            .map(|i| Sample {
                size: 100,
                resp: 100,
                start_ns: warm + i * 10,
                rtt_ns: 100_000,
            })
            .collect();
        samples.push(Sample {
            size: 100,
            resp: 100,
            start_ns: warm - 1,
            rtt_ns: 1,
        });
        let errors = vec![(warm + 5, "late".to_string())];
        let curve = IdleCurve::new(vec![(100, 40_000.0), (10_000, 400_000.0)]);
        let raw1 = RawRun::new(&samples, &errors, warm, warm + 1000, &curve);
        assert_eq!(
            raw1.samples.len(),
            10,
            "the sample before the window is left out"
        );
        let mut r1 = summarize(
            "homa",
            "load".into(),
            &samples,
            &errors,
            2,
            warm,
            warm + 1000,
            &curve,
            0.25,
            Some(0.5),
        );
        r1.notes = vec!["client engine: 0 RESENDs".into()];
        // Round 2, built by hand: window [500, 1500), 10 RPCs of 300 µs and
        // one after the window that `pool` must leave out (pooled first, it
        // would land inside the pooled window). Idle RTT 60 µs at 100 B and
        // 260 µs at 5 kB (it measured other sizes).
        let raw2 = RawRun {
            from_ns: 500,
            to_ns: 1_500,
            samples: (0..10)
                .map(|i| (100, 100, 500 + i * 10, 300_000))
                .chain([(100, 100, 1_500, 1)])
                .collect(),
            errors: vec![],
            idle: vec![(100, 60_000.0), (5_000, 260_000.0)],
        };
        r1.stalls = 1;
        r1.stall_ms = 0.75;
        let mut r2 = r1.clone();
        r2.skipped = 3;
        r2.stalls = 2;
        r2.stall_ms = 1.5;
        r2.server_cpu_s = None;
        let p = pool(&[(r2, raw2), (r1, raw1)]).expect("pooled");
        assert_eq!(p.rpcs, 20);
        assert_eq!(p.errors, 1);
        assert_eq!(p.skipped, 5);
        assert_eq!((p.stalls, p.stall_ms), (3, 2.25));
        // 20 RPCs over 2 × 1000 ns: the windows laid end to end, not the
        // span from the first round's start to the last one's end.
        assert!((p.duration_s - 2e-6).abs() < 1e-15, "{}", p.duration_s);
        assert!((p.rpcs_per_sec - 1e7).abs() < 1e-3, "{}", p.rpcs_per_sec);
        assert_eq!(p.p50_us, 100.0);
        assert_eq!(p.p99_us, 300.0);
        // The idle RTT at 100 B is the median of 40 and 60 µs: 50 µs.
        assert_eq!(p.buckets[0].idle_us, 50.0);
        assert!((p.buckets[0].p99_slowdown - 6.0).abs() < 1e-9);
        assert!((p.client_cpu_s - 0.5).abs() < 1e-12);
        assert_eq!(p.server_cpu_s, None, "one round had no server figure");
        assert_eq!(
            p.notes,
            [
                "round 1: client engine: 0 RESENDs",
                "round 2: client engine: 0 RESENDs"
            ]
        );
        assert!(pool(&[]).is_none());
    }

    #[test]
    fn pooled_idle_curve_has_every_rounds_sizes() {
        let raw = |idle: Vec<(u64, f64)>| RawRun {
            idle,
            ..RawRun::default()
        };
        let a = raw(vec![(100, 40_000.0), (10_000, 400_000.0)]);
        let b = raw(vec![(100, 60_000.0), (5_000, 260_000.0)]);
        let p = pooled_idle([&a, &b].into_iter());
        // At 5 kB, `a` interpolates 40 + 360 × 4,900 / 9,900 µs; at 10 kB
        // `b` stays flat at its last point.
        let a_at_5k = 40_000.0 + 360_000.0 * 4_900.0 / 9_900.0;
        assert_eq!(
            p.points(),
            [
                (100, 50_000.0),
                (5_000, (a_at_5k + 260_000.0) / 2.0),
                (10_000, (400_000.0 + 260_000.0) / 2.0)
            ]
        );
        // Three rounds: the middle value.
        let c = raw(vec![(100, 45_000.0)]);
        let p = pooled_idle([&a, &b, &c].into_iter());
        assert_eq!(p.at(100), Some(45_000.0));
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
