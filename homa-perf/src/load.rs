//! The load generator's pieces shared by every protocol: a seeded random
//! generator, message sizes (W1–W5 through `homa-workload`, or fixed), the
//! response size, and Poisson arrival times.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use homa_workload::{SizeDistribution, Workload};

/// Largest message homa-perf sends: Homa's maximum message length. W1–W5 are
/// capped here, as in the Linux Homa benchmarks.
pub const MAX_MESSAGE: u64 = 1_000_000;

/// A small, fast, seeded generator (SplitMix64); no dependency needed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// An exponentially distributed gap with the given mean rate (per second).
    pub fn exp_gap(&mut self, rate: f64) -> Duration {
        let u = self.f64();
        Duration::from_secs_f64(-(1.0 - u).ln() / rate)
    }
}

/// Where request sizes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SizeSpec {
    /// One of W1–W5 (the Linux variant, capped at [`MAX_MESSAGE`]).
    Workload(Workload),
    /// Every message this many bytes.
    Fixed(u64),
}

impl FromStr for SizeSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(w) = s.parse::<Workload>() {
            return Ok(SizeSpec::Workload(w));
        }
        match s.replace('_', "").parse::<u64>() {
            Ok(n) if (1..=MAX_MESSAGE).contains(&n) => Ok(SizeSpec::Fixed(n)),
            Ok(n) => Err(format!("size {n} is outside 1..={MAX_MESSAGE}")),
            Err(_) => Err(format!(
                "{s:?} is neither a workload (w1..w5) nor a size in bytes"
            )),
        }
    }
}

impl fmt::Display for SizeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeSpec::Workload(w) => write!(f, "{}", w.name().to_lowercase()),
            SizeSpec::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// How big responses are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResponseSpec {
    /// As big as the request (an echo).
    Same,
    /// Always this many bytes ("one-way" is 100 bytes).
    Fixed(u64),
}

impl FromStr for ResponseSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "same" => Ok(ResponseSpec::Same),
            "one-way" | "oneway" => Ok(ResponseSpec::Fixed(100)),
            _ => match s.replace('_', "").parse::<u64>() {
                Ok(n) if n <= MAX_MESSAGE => Ok(ResponseSpec::Fixed(n)),
                _ => Err(format!(
                    "{s:?}: expected same, one-way or a size in bytes up to {MAX_MESSAGE}"
                )),
            },
        }
    }
}

impl fmt::Display for ResponseSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseSpec::Same => f.write_str("same"),
            ResponseSpec::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// Draws request sizes.
#[derive(Debug, Clone)]
pub enum Sizes {
    /// From a distribution (the shared homa-workload sampler).
    Dist(SizeDistribution),
    /// Fixed.
    Fixed(u64),
}

impl Sizes {
    /// The sampler for `spec`, sizes raised to at least `min` bytes (the
    /// protocol's header inside the message).
    pub fn new(spec: &SizeSpec) -> Sizes {
        match spec {
            SizeSpec::Workload(w) => Sizes::Dist(SizeDistribution::linux(*w, Some(MAX_MESSAGE))),
            SizeSpec::Fixed(n) => Sizes::Fixed(*n),
        }
    }

    /// One request size.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        match self {
            Sizes::Dist(d) => d.sample(rng.f64()),
            Sizes::Fixed(n) => *n,
        }
    }

    /// The mean request size, as drawn (for a distribution: over evenly
    /// spaced quantiles, so the cap at [`MAX_MESSAGE`] is accounted for).
    pub fn mean(&self) -> f64 {
        match self {
            Sizes::Dist(d) => {
                const N: u32 = 100_000;
                (0..N)
                    .map(|i| d.sample((f64::from(i) + 0.5) / f64::from(N)) as f64)
                    .sum::<f64>()
                    / f64::from(N)
            }
            Sizes::Fixed(n) => *n as f64,
        }
    }

    /// The largest size this can draw.
    pub fn max(&self) -> u64 {
        match self {
            Sizes::Dist(d) => d.sample(1.0 - f64::EPSILON).min(MAX_MESSAGE),
            Sizes::Fixed(n) => *n,
        }
    }
}

/// How requests are issued.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Closed loop: this many RPCs outstanding at all times.
    Closed(usize),
    /// Open loop: Poisson arrivals at this many RPCs per second.
    Open(f64),
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Closed(n) => write!(f, "closed loop, {n} outstanding"),
            Mode::Open(r) => write!(f, "open loop, Poisson {r:.0} RPC/s"),
        }
    }
}

/// The size of a response to a request of `req` bytes.
pub fn response_size(spec: ResponseSpec, req: u64) -> u64 {
    match spec {
        ResponseSpec::Same => req,
        ResponseSpec::Fixed(n) => n,
    }
}

/// The open-loop rate (RPCs/s) that puts `gbps` of message bytes (requests
/// plus responses) on the path.
pub fn rate_for_gbps(gbps: f64, sizes: &Sizes, response: ResponseSpec) -> f64 {
    let mean = sizes.mean();
    let per_rpc = mean
        + match response {
            ResponseSpec::Same => mean,
            ResponseSpec::Fixed(n) => n as f64,
        };
    gbps * 1e9 / 8.0 / per_rpc
}
