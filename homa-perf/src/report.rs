//! Reports: the side-by-side table, the JSON file, the SVG plot.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::stats::{RunResult, BUCKETS};

/// Write `text` to `path`, creating its directory if needed.
pub fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The side-by-side table of `runs` (one column per protocol).
pub fn table(runs: &[RunResult]) -> String {
    let mut s = String::new();
    if runs.is_empty() {
        return s;
    }
    let w = 14;
    let row = |s: &mut String, name: &str, vals: Vec<String>| {
        let _ = write!(s, "{name:<26}");
        for v in vals {
            let _ = write!(s, "{v:>w$}");
        }
        s.push('\n');
    };
    let _ = writeln!(s, "load: {}", runs[0].load);
    row(
        &mut s,
        "",
        runs.iter().map(|r| r.protocol.clone()).collect(),
    );
    let f = |v: f64| {
        if v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    row(
        &mut s,
        "RPCs",
        runs.iter().map(|r| r.rpcs.to_string()).collect(),
    );
    row(
        &mut s,
        "RPCs/s",
        runs.iter().map(|r| f(r.rpcs_per_sec)).collect(),
    );
    row(
        &mut s,
        "throughput Gbit/s",
        runs.iter()
            .map(|r| format!("{:.3}", r.throughput_gbps))
            .collect(),
    );
    row(
        &mut s,
        "errors",
        runs.iter().map(|r| r.errors.to_string()).collect(),
    );
    if runs.iter().any(|r| r.skipped > 0) {
        row(
            &mut s,
            "skipped (open loop)",
            runs.iter().map(|r| r.skipped.to_string()).collect(),
        );
    }
    if runs.iter().any(|r| r.stalls > 0) {
        row(
            &mut s,
            "clock stalls (ms late)",
            runs.iter()
                .map(|r| format!("{} ({:.1})", r.stalls, r.stall_ms))
                .collect(),
        );
    }
    row(
        &mut s,
        "short (≤ B)",
        runs.iter().map(|r| r.short_max_size.to_string()).collect(),
    );
    row(
        &mut s,
        "short P50 µs",
        runs.iter().map(|r| f(r.short_p50_us)).collect(),
    );
    row(
        &mut s,
        "short P99 µs",
        runs.iter().map(|r| f(r.short_p99_us)).collect(),
    );
    row(
        &mut s,
        "all P50 µs",
        runs.iter().map(|r| f(r.p50_us)).collect(),
    );
    row(
        &mut s,
        "all P99 µs",
        runs.iter().map(|r| f(r.p99_us)).collect(),
    );
    row(
        &mut s,
        "client CPU (cores)",
        runs.iter()
            .map(|r| format!("{:.2}", r.client_cpu_s / r.duration_s))
            .collect(),
    );
    row(
        &mut s,
        "server CPU (cores)",
        runs.iter()
            .map(|r| {
                r.server_cpu_s
                    .map_or("-".into(), |c| format!("{:.2}", c / r.duration_s))
            })
            .collect(),
    );
    for &b in BUCKETS.iter() {
        let cells: Vec<Option<&crate::stats::Bucket>> = runs
            .iter()
            .map(|r| r.buckets.iter().find(|x| x.size_upper == b))
            .collect();
        if cells.iter().all(|c| c.is_none()) {
            continue;
        }
        let _ = writeln!(s, "size ≤ {b} B");
        let get = |g: fn(&crate::stats::Bucket) -> String| -> Vec<String> {
            cells.iter().map(|c| c.map_or("-".into(), g)).collect()
        };
        row(&mut s, "  count", get(|b| b.count.to_string()));
        row(
            &mut s,
            "  idle RTT µs",
            get(|b| format!("{:.1}", b.idle_us)),
        );
        row(&mut s, "  P50 µs", get(|b| format!("{:.1}", b.p50_us)));
        row(&mut s, "  P99 µs", get(|b| format!("{:.1}", b.p99_us)));
        row(&mut s, "  P99.9 µs", get(|b| format!("{:.1}", b.p999_us)));
        row(
            &mut s,
            "  P99 slowdown",
            get(|b| format!("{:.2}", b.p99_slowdown)),
        );
    }
    for r in runs {
        for n in &r.notes {
            let _ = writeln!(s, "{}: {n}", r.protocol);
        }
        for e in &r.error_examples {
            let _ = writeln!(s, "{}: error: {e}", r.protocol);
        }
    }
    s
}

#[derive(Serialize)]
struct JsonBucket {
    size_upper: u64,
    count: u64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    p99_slowdown: f64,
}

#[derive(Serialize)]
struct JsonRun {
    protocol: String,
    short_p50_us: f64,
    short_p99_us: f64,
    rpcs_per_sec: f64,
    throughput_gbps: f64,
    errors: u64,
    /// Up to five error messages, so a failed run says why.
    error_examples: Vec<String>,
    /// Transport counters (Homa: the client's and the servers' engines;
    /// homa-dpdk: the port), one line each, as printed below the table.
    notes: Vec<String>,
    /// Open loop: stalls of the arrival clock in the measured window (it
    /// issued an arrival 0.5 ms or more late: it did not run), and how late
    /// each stall's first arrival was, summed (ms; 0 in closed loop).
    stalls: u64,
    stall_ms: f64,
    buckets: Vec<JsonBucket>,
}

#[derive(Serialize)]
struct JsonFile {
    runs: Vec<JsonRun>,
}

/// The JSON document of issue 6: `{"runs":[...]}`.
pub fn json(runs: &[RunResult]) -> String {
    let doc = JsonFile {
        runs: runs
            .iter()
            .map(|r| JsonRun {
                protocol: r.protocol.clone(),
                short_p50_us: r.short_p50_us,
                short_p99_us: r.short_p99_us,
                rpcs_per_sec: r.rpcs_per_sec,
                throughput_gbps: r.throughput_gbps,
                errors: r.errors,
                error_examples: r.error_examples.clone(),
                notes: r.notes.clone(),
                stalls: r.stalls,
                stall_ms: r.stall_ms,
                buckets: r
                    .buckets
                    .iter()
                    .map(|b| JsonBucket {
                        size_upper: b.size_upper,
                        count: b.count,
                        p50_us: b.p50_us,
                        p99_us: b.p99_us,
                        p999_us: b.p999_us,
                        p99_slowdown: b.p99_slowdown,
                    })
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
}

/// Write the plot of P99 slowdown per size bucket, one line per protocol.
pub fn plot(runs: &[RunResult], path: &Path, title: &str) -> Result<(), String> {
    use plotters::prelude::*;
    write_file(path, "")?;
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let xmax = runs
        .iter()
        .flat_map(|r| r.buckets.iter().map(|b| b.size_upper))
        .max()
        .unwrap_or(1_000_000)
        .max(1000) as f64
        * 1.5;
    let ymax = runs
        .iter()
        .flat_map(|r| r.buckets.iter().map(|b| b.p99_slowdown))
        .fold(2.0f64, f64::max)
        * 1.3;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((50f64..xmax).log_scale(), (1f64..ymax).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("message size (bucket upper bound, bytes)")
        .y_desc("P99 slowdown (RTT / idle RTT)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(|e| e.to_string())?;
    let colors = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
    for (i, r) in runs.iter().enumerate() {
        let c = colors[i % colors.len()];
        let pts: Vec<(f64, f64)> = r
            .buckets
            .iter()
            .map(|b| (b.size_upper as f64, b.p99_slowdown.max(1.0)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(r.protocol.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
