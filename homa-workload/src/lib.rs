//! # homa-workload — the W1–W5 message-size distributions
//!
//! The five workloads every Homa evaluation uses, embedded in the crate (the
//! data files are in `data/`), and one sampler that the simulator
//! (`homa-sim`) and the benchmark tool (`homa-perf`) share, so both draw the
//! same sizes the same way.
//!
//! | name | source trace | mean size |
//! |------|--------------|-----------|
//! | W1 | Facebook memcached | ~185 B |
//! | W2 | Google search RPCs | ~441 B |
//! | W3 | all Google RPCs | ~2.9 KB |
//! | W4 | Facebook Hadoop | ~128 KB |
//! | W5 | web search (DCTCP) | ~2.5 MB |
//!
//! Two variants of each:
//! * [`SizeDistribution::sigcomm18`]: the distributions behind the SIGCOMM
//!   2018 simulations. A step CDF (`size cumulative_probability`); W1 above
//!   probability 0.47 draws from the original simulator's generalized Pareto
//!   tail; W5 is in packets of 1442 bytes.
//! * [`SizeDistribution::linux`]: the same workloads as the Linux Homa
//!   benchmarks use them (`size weight`, bytes, sizes below 8 merged into 8),
//!   optionally capped (the Linux benchmarks cap at 1,000,000 bytes, Homa's
//!   maximum message length).
//!
//! Sampling takes a uniform `u` in `[0, 1)` from the caller's own seeded
//! generator, so the crate has no randomness (and no dependency) of its own:
//!
//! ```
//! use homa_workload::{SizeDistribution, Workload};
//! let w3 = SizeDistribution::sigcomm18(Workload::W3);
//! assert_eq!(w3.sample(0.0), 3); // the smallest size in the file
//! assert!(w3.sample(0.999_999) > 100_000);
//! assert!((w3.mean_bytes() - 2927.354).abs() < 1e-6);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use core::fmt;
use core::str::FromStr;

/// One of the five workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// Facebook memcached (key-value).
    W1,
    /// Google search RPCs.
    W2,
    /// All Google RPCs (aggregated).
    W3,
    /// Facebook Hadoop.
    W4,
    /// Web search (DCTCP paper).
    W5,
}

impl Workload {
    /// All five, in order.
    pub const ALL: [Workload; 5] = [
        Workload::W1,
        Workload::W2,
        Workload::W3,
        Workload::W4,
        Workload::W5,
    ];

    /// "W1" … "W5".
    pub fn name(self) -> &'static str {
        match self {
            Workload::W1 => "W1",
            Workload::W2 => "W2",
            Workload::W3 => "W3",
            Workload::W4 => "W4",
            Workload::W5 => "W5",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A workload name that is not W1–W5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWorkload(pub String);

impl fmt::Display for UnknownWorkload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown workload {:?}: expected w1, w2, w3, w4 or w5",
            self.0
        )
    }
}

impl std::error::Error for UnknownWorkload {}

impl FromStr for Workload {
    type Err = UnknownWorkload;
    /// Case-insensitive "w1" … "w5".
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "w1" => Ok(Workload::W1),
            "w2" => Ok(Workload::W2),
            "w3" => Ok(Workload::W3),
            "w4" => Ok(Workload::W4),
            "w5" => Ok(Workload::W5),
            _ => Err(UnknownWorkload(s.to_string())),
        }
    }
}

const SIGCOMM18: [&str; 5] = [
    include_str!("../data/sigcomm18/w1.txt"),
    include_str!("../data/sigcomm18/w2.txt"),
    include_str!("../data/sigcomm18/w3.txt"),
    include_str!("../data/sigcomm18/w4.txt"),
    include_str!("../data/sigcomm18/w5.txt"),
];

const LINUX: [&str; 5] = [
    include_str!("../data/linux/w1.txt"),
    include_str!("../data/linux/w2.txt"),
    include_str!("../data/linux/w3.txt"),
    include_str!("../data/linux/w4.txt"),
    include_str!("../data/linux/w5.txt"),
];

/// Bytes per packet in the SIGCOMM 2018 simulator (W5's sizes are packets).
pub const SIGCOMM18_W5_PACKET_BYTES: u64 = 1442;

/// W1's tail above the last line of its file: the original simulator's
/// generalized Pareto distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ParetoTail {
    /// Cumulative probability where the tail starts (the file's last line).
    from_p: f64,
    /// Size at the start of the tail.
    from_size: f64,
    k: f64,
    sigma: f64,
    cap: u64,
}

impl ParetoTail {
    const W1: ParetoTail = ParetoTail {
        from_p: 0.47,
        from_size: 15.0,
        k: 0.348238,
        sigma: 214.476,
        cap: 1 << 30,
    };

    /// Inverse CDF for `p` in `(from_p, 1)`:
    /// `round(15 + ((0.53 / (1 - p))^k - 1) * sigma / k)`, capped.
    fn size(&self, p: f64) -> u64 {
        let rest = 1.0 - self.from_p;
        let x = self.from_size + ((rest / (1.0 - p)).powf(self.k) - 1.0) * self.sigma / self.k;
        (x.round() as u64).min(self.cap)
    }
}

/// Why a workload file did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "workload file line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// A message-size distribution: a step CDF, optionally with W1's Pareto
/// tail, scaled to bytes and optionally capped.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeDistribution {
    /// (size in bytes, cumulative probability), increasing in both.
    steps: Vec<(u64, f64)>,
    tail: Option<ParetoTail>,
    cap: Option<u64>,
    /// Mean in bytes as the file states it (sigcomm18), or computed from the
    /// weights (linux).
    stated_mean: f64,
}

impl SizeDistribution {
    /// The SIGCOMM 2018 distribution of `w` (W5 in bytes: packets × 1442).
    pub fn sigcomm18(w: Workload) -> Self {
        let unit = if w == Workload::W5 {
            SIGCOMM18_W5_PACKET_BYTES
        } else {
            1
        };
        let mut d = Self::parse_sigcomm18(SIGCOMM18[w.index()], unit)
            .expect("embedded workload files parse");
        if w == Workload::W1 {
            d.tail = Some(ParetoTail::W1);
        }
        d
    }

    /// The Linux-benchmark distribution of `w`, capped at `cap` bytes if
    /// given (the Linux benchmarks use 1,000,000).
    pub fn linux(w: Workload, cap: Option<u64>) -> Self {
        let mut d = Self::parse_linux(LINUX[w.index()]).expect("embedded workload files parse");
        d.cap = cap;
        d
    }

    /// Parse the sigcomm18 format: line 1 the mean, then `size cum_prob`
    /// lines; sizes are multiplied by `unit`.
    ///
    /// # Errors
    /// A [`ParseError`] for a malformed line, or probabilities or sizes that
    /// decrease.
    pub fn parse_sigcomm18(text: &str, unit: u64) -> Result<Self, ParseError> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, first) = lines.next().ok_or(ParseError {
            line: 1,
            reason: "empty file".into(),
        })?;
        let mean: f64 = first.trim().parse().map_err(|_| ParseError {
            line: 1,
            reason: format!("mean {first:?} is not a number"),
        })?;
        let mut steps = Vec::new();
        for (i, line) in lines {
            let (size, p) = two_numbers(line, i + 1)?;
            steps.push(((size as u64) * unit, p));
        }
        check_steps(&steps)?;
        Ok(SizeDistribution {
            steps,
            tail: None,
            cap: None,
            stated_mean: mean * unit as f64,
        })
    }

    /// Parse the linux format: `size weight` lines (weights need not sum to
    /// 1); sizes below 8 are merged into 8.
    ///
    /// # Errors
    /// A [`ParseError`] for a malformed line or no positive weight.
    pub fn parse_linux(text: &str) -> Result<Self, ParseError> {
        let mut pairs: Vec<(u64, f64)> = Vec::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let (size, w) = two_numbers(line, i + 1)?;
            if w < 0.0 {
                return Err(ParseError {
                    line: i + 1,
                    reason: "negative weight".into(),
                });
            }
            pairs.push(((size as u64).max(8), w));
        }
        pairs.sort_by_key(|p| p.0);
        let total: f64 = pairs.iter().map(|p| p.1).sum();
        if total <= 0.0 {
            return Err(ParseError {
                line: 1,
                reason: "no positive weight".into(),
            });
        }
        let mut steps: Vec<(u64, f64)> = Vec::new();
        let mut cum = 0.0;
        let mut mean = 0.0;
        for (size, w) in pairs {
            cum += w / total;
            mean += size as f64 * w / total;
            match steps.last_mut() {
                Some(last) if last.0 == size => last.1 = cum,
                _ => steps.push((size, cum)),
            }
        }
        if let Some(last) = steps.last_mut() {
            last.1 = 1.0;
        }
        Ok(SizeDistribution {
            steps,
            tail: None,
            cap: None,
            stated_mean: mean,
        })
    }

    /// Draw a size in bytes for a uniform `u` in `[0, 1)` (inverse CDF):
    /// the first size whose cumulative probability is ≥ `u`; for W1 above its
    /// last line, the Pareto tail.
    pub fn sample(&self, u: f64) -> u64 {
        let u = if u.is_finite() {
            u.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let size = match self.tail {
            Some(t) if u > t.from_p => t.size(u.min(1.0 - 1e-12)),
            _ => {
                let i = self.steps.partition_point(|s| s.1 < u);
                self.steps.get(i).or(self.steps.last()).map_or(0, |s| s.0)
            }
        };
        match self.cap {
            Some(c) => size.min(c),
            None => size,
        }
    }

    /// The mean in bytes the file states (sigcomm18, scaled to bytes) or the
    /// weighted mean (linux), before any cap.
    pub fn mean_bytes(&self) -> f64 {
        self.stated_mean
    }

    /// The largest size the step part can produce (the tail may exceed it).
    pub fn max_step_bytes(&self) -> u64 {
        self.steps.last().map_or(0, |s| s.0)
    }
}

fn two_numbers(line: &str, n: usize) -> Result<(f64, f64), ParseError> {
    let mut it = line.split_whitespace();
    let mut next = |what: &str| -> Result<f64, ParseError> {
        it.next()
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or(ParseError {
                line: n,
                reason: format!("expected a non-negative {what}"),
            })
    };
    Ok((next("size")?, next("number")?))
}

fn check_steps(steps: &[(u64, f64)]) -> Result<(), ParseError> {
    for (i, w) in steps.windows(2).enumerate() {
        if w[1].0 < w[0].0 || w[1].1 < w[0].1 {
            return Err(ParseError {
                line: i + 3,
                reason: "sizes and probabilities must not decrease".into(),
            });
        }
    }
    if steps.is_empty() {
        return Err(ParseError {
            line: 2,
            reason: "no distribution lines".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
