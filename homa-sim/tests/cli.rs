//! End-to-end smoke run of the `homa-sim` CLI on a small fabric: every
//! workload, a few simulated milliseconds. Checks the pipeline, not the
//! figures: messages complete, no slowdown is below 1, the CSV is
//! well-formed and lines up with the paper's buckets, the plot and the
//! summary are written.

use std::path::{Path, PathBuf};
use std::process::Command;

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("homa-sim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs `homa-sim paper` with `args` on a fabric of 2 racks of 4 hosts,
/// writing to `out` (samples in `out/samples.csv`); returns its stdout.
fn run_small(out: &Path, args: &[&str]) -> String {
    let status = Command::new(env!("CARGO_BIN_EXE_homa-sim"))
        .args(["paper", "--racks", "2", "--hosts-per-rack", "4", "--quiet"])
        .args(args)
        .arg("--out")
        .arg(out)
        .arg("--samples-file")
        .arg(out.join("samples.csv"))
        .output()
        .expect("run homa-sim");
    let stdout = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        status.status.success(),
        "homa-sim failed: {}\n{stdout}",
        String::from_utf8_lossy(&status.stderr)
    );
    stdout
}

#[test]
fn paper_smoke_run_writes_a_wellformed_csv_plot_and_summary() {
    let out = out_dir("smoke");
    let stdout = run_small(
        &out,
        &[
            "--workload",
            "all",
            "--load",
            "0.5",
            "--duration",
            "3ms",
            "--warmup",
            "300us",
            "--drain",
            "30ms",
        ],
    );
    assert!(stdout.contains("smallest bucket"), "{stdout}");

    let csv = std::fs::read_to_string(out.join("slowdown.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("workload,load,size_upper_bytes,count,median_slowdown,p99_slowdown")
    );
    let mut per_workload = std::collections::BTreeMap::<String, (usize, usize)>::new();
    let mut last_bound = (String::new(), 0u64);
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 6, "{line}");
        assert_eq!(f[1], "0.5");
        let upper: u64 = f[2].parse().unwrap();
        let count: usize = f[3].parse().unwrap();
        let median: f64 = f[4].parse().unwrap();
        let p99: f64 = f[5].parse().unwrap();
        if last_bound.0 == f[0] {
            assert!(upper > last_bound.1, "bounds ascend: {line}");
        }
        last_bound = (f[0].to_string(), upper);
        if count > 0 {
            assert!(median >= 1.0 && p99 >= median, "{line}");
        } else {
            assert_eq!((median, p99), (0.0, 0.0), "{line}");
        }
        let e = per_workload.entry(f[0].to_string()).or_default();
        e.0 += 1;
        e.1 += count;
    }
    // The samples file holds every measured message, counted in the CSV.
    let samples = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    let mut lines = samples.lines();
    assert_eq!(lines.next(), Some("workload,load,seed,size_bytes,slowdown"));
    let mut per_workload_samples = std::collections::BTreeMap::<String, usize>::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 5, "{line}");
        assert_eq!((f[1], f[2]), ("0.5", "1"), "{line}");
        assert!(f[3].parse::<u64>().unwrap() > 0, "{line}");
        assert!(f[4].parse::<f64>().unwrap() >= 1.0, "{line}");
        *per_workload_samples.entry(f[0].to_string()).or_default() += 1;
    }
    for (w, (_, count)) in &per_workload {
        assert_eq!(per_workload_samples.get(w), Some(count), "{w}");
    }
    let rows = |w: &str| per_workload[w].0;
    // Rows line up with the paper's buckets for each workload.
    assert_eq!(
        (rows("W1"), rows("W2"), rows("W3"), rows("W4"), rows("W5")),
        (83, 99, 102, 91, 87)
    );
    for w in ["W1", "W2", "W3"] {
        assert!(per_workload[w].1 > 100, "{w}: {:?}", per_workload[w]);
    }
    let svg = std::fs::read_to_string(out.join("slowdown.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("paper: Homa"),
        "svg"
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("| W5 | 50% |"), "{summary}");
    assert!(
        summary.contains("P99s read as the paper read its own"),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// With several seeds, the samples file says which run each message came
/// from, and each run's messages are all there.
#[test]
fn samples_file_labels_each_seed() {
    let out = out_dir("seeds");
    run_small(
        &out,
        &[
            "--workload",
            "w3",
            "--load",
            "0.5",
            "--duration",
            "2ms",
            "--seed",
            "7",
            "--seeds",
            "2",
        ],
    );
    let samples = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    let mut per_seed = std::collections::BTreeMap::<String, usize>::new();
    for line in samples.lines().skip(1) {
        *per_seed
            .entry(line.split(',').nth(2).unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(
        per_seed.keys().collect::<Vec<_>>(),
        ["7", "8"],
        "{per_seed:?}"
    );
    let csv = std::fs::read_to_string(out.join("slowdown.csv")).unwrap();
    let counted: usize = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(per_seed.values().sum::<usize>(), counted);
    assert!(per_seed.values().all(|&n| n > 50), "{per_seed:?}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bad_arguments_get_a_clear_error() {
    for (args, want) in [
        (&["paper", "--workload", "w9"][..], "w9"),
        (&["paper", "--load", "1.5"][..], "load"),
        (&["paper", "--duration", "5parsecs"][..], "unit"),
        (
            &["paper", "--workload", "w1", "--sched-levels", "3"][..],
            "priorities",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_homa-sim"))
            .args(args)
            .arg("--out")
            .arg(out_dir("bad"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
