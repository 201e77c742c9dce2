//! The published SIGCOMM 2018 per-bucket slowdowns (`data/sigcomm18-slowdown.csv`,
//! embedded), used for the bucket bounds and for comparison.

use homa_workload::Workload;

/// The CSV as shipped with the reference results.
pub const SIGCOMM18_CSV: &str = include_str!("../../data/sigcomm18-slowdown.csv");

/// One row of the reference results.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceRow {
    /// Protocol (`Homa`, `pFabric`, `pHost`, `PIAS`, `NDP`, `SRPT-Oracle`).
    pub protocol: String,
    /// Load (0.5 or 0.8).
    pub load: f64,
    /// Workload.
    pub workload: Workload,
    /// Upper bound of the bucket (bytes, inclusive).
    pub size_upper_bytes: u64,
    /// Percentage of messages in the bucket.
    pub count_fraction: f64,
    /// Median slowdown.
    pub median_slowdown: f64,
    /// 99th-percentile slowdown.
    pub p99_slowdown: f64,
}

/// All rows of the embedded reference.
///
/// # Panics
/// Never for the embedded file (a test parses it).
pub fn rows() -> Vec<ReferenceRow> {
    SIGCOMM18_CSV
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            ReferenceRow {
                protocol: f[0].to_string(),
                load: f[1].parse().expect("load"),
                workload: f[2].parse().expect("workload"),
                size_upper_bytes: f[3].parse().expect("size"),
                count_fraction: f[4].parse().expect("count_fraction"),
                median_slowdown: f[7].parse().expect("median"),
                p99_slowdown: f[8].parse().expect("p99"),
            }
        })
        .collect()
}

/// The reference curve of `protocol` for `workload` at `load` (rows in size
/// order), or empty if the paper has none (for example at 90 % load).
pub fn curve(protocol: &str, workload: Workload, load: f64) -> Vec<ReferenceRow> {
    rows()
        .into_iter()
        .filter(|r| {
            r.protocol == protocol && r.workload == workload && (r.load - load).abs() < 1e-9
        })
        .collect()
}

/// The bucket upper bounds for `workload`: those of the paper's Homa rows at
/// `load` if it has them, else at 0.8, so our rows line up with the paper's.
pub fn bucket_bounds(workload: Workload, load: f64) -> Vec<u64> {
    let mut c = curve("Homa", workload, load);
    if c.is_empty() {
        c = curve("Homa", workload, 0.8);
    }
    c.iter().map(|r| r.size_upper_bytes).collect()
}

/// The paper's summary figures for a curve: smallest-bucket P99, worst
/// bucket P99 and the count-weighted mean of bucket P99s.
pub fn summary(curve: &[ReferenceRow]) -> Option<(f64, f64, f64)> {
    let first = curve.first()?;
    let worst = curve.iter().map(|r| r.p99_slowdown).fold(0.0, f64::max);
    let weight: f64 = curve.iter().map(|r| r.count_fraction).sum();
    let mean = curve
        .iter()
        .map(|r| r.count_fraction * r.p99_slowdown)
        .sum::<f64>()
        / weight;
    Some((first.p99_slowdown, worst, mean))
}
