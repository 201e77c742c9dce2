//! Shared by the smoke tests: run `homa-perf loopback` and check its JSON.

use std::process::Command;

/// Run `homa-perf loopback --protocols <protocols>` for about a second
/// per protocol (plus `extra`), and return its JSON.
pub fn loopback(protocols: &str, extra: &[&str]) -> serde_json::Value {
    // One run at a time: the busy-polling protocols keep both cores of a
    // 2-core machine busy, and a process starved behind them for longer
    // than Homa's timeout fails RPCs for a reason that is not under test
    // (CI once saw 152 Homa errors in a run that overlapped them).
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // One directory per test.
    let dir = std::env::temp_dir().join(format!(
        "homa-perf-smoke-{}-{}",
        std::process::id(),
        protocols.replace(',', "_")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("out.json");
    let plot = dir.join("out.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_homa-perf"))
        .args(["loopback", "--protocols", protocols])
        .args(["--duration", "1", "--warmup", "0.2", "--idle-rpcs", "20"])
        .arg("--no-progress")
        .args(extra)
        .arg("--json")
        .arg(&json)
        .arg("--plot")
        .arg(&plot)
        .output()
        .expect("run homa-perf");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "homa-perf failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    let text = std::fs::read_to_string(&json).expect("json written");
    let svg = std::fs::read_to_string(&plot).expect("plot written");
    assert!(svg.contains("<svg"), "not an SVG");
    let _ = std::fs::remove_dir_all(&dir);
    serde_json::from_str(&text).expect("JSON parses")
}

/// Every run is there, in order, with RPCs completed, no errors, and the
/// issue's JSON schema.
pub fn check(doc: &serde_json::Value, protocols: &[&str]) {
    let runs = doc["runs"].as_array().expect("runs array");
    assert_eq!(runs.len(), protocols.len(), "{doc}");
    for (run, want) in runs.iter().zip(protocols) {
        assert_eq!(run["protocol"], *want);
        for key in [
            "short_p50_us",
            "short_p99_us",
            "rpcs_per_sec",
            "throughput_gbps",
        ] {
            assert!(run[key].as_f64().is_some(), "{want}: {key} missing");
        }
        assert_eq!(
            run["errors"].as_u64(),
            Some(0),
            "{want}: errors, for example {}",
            run["error_examples"]
        );
        let buckets = run["buckets"].as_array().expect("buckets");
        let count: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
        assert!(count > 0, "{want}: no RPCs completed");
        for b in buckets {
            for key in ["size_upper", "count"] {
                assert!(b[key].as_u64().is_some(), "{want}: bucket {key}");
            }
            for key in ["p50_us", "p99_us", "p999_us", "p99_slowdown"] {
                assert!(b[key].as_f64().is_some(), "{want}: bucket {key}");
            }
        }
    }
}
