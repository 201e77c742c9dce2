//! Smoke test: `homa-perf loopback` for about a second per protocol. Every
//! protocol must complete RPCs with no errors, and the JSON must parse and
//! follow the schema. No timing is asserted.

mod common;

use common::{check, loopback};

#[test]
fn every_protocol_completes_rpcs_without_errors() {
    // Two rounds: each protocol's two runs are pooled into one result.
    let doc = loopback(
        "homa,tcp,udp,udp-spin,homa-spin",
        &["--sizes", "100", "--rounds", "2"],
    );
    check(&doc, &["homa", "tcp", "udp", "udp-spin", "homa-spin"]);
    for run in doc["runs"].as_array().unwrap() {
        // Pooled over the two rounds' windows, half of --duration each:
        // RPCs / (RPCs per second) is the whole second.
        let rpcs: u64 = run["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum();
        let secs = rpcs as f64 / run["rpcs_per_sec"].as_f64().unwrap();
        assert!((secs - 1.0).abs() < 1e-6, "{}: {secs} s", run["protocol"]);
    }
    // Homa runs carry both ends' engine counters, once per round; the
    // others none.
    for run in doc["runs"].as_array().unwrap() {
        let notes: Vec<&str> = run["notes"]
            .as_array()
            .expect("notes array")
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        let homa = run["protocol"].as_str().unwrap().starts_with("homa");
        for round in ["round 1: ", "round 2: "] {
            for who in ["client engine: ", "server engine: "] {
                let want = format!("{round}{who}");
                let line = notes.iter().find(|n| n.starts_with(&want));
                assert_eq!(line.is_some(), homa, "{}: {notes:?}", run["protocol"]);
                if let Some(line) = line {
                    assert!(line.contains(" RESENDs sent, "), "{line}");
                }
            }
        }
    }
}

#[test]
fn workload_open_loop_with_background_flow() {
    let doc = loopback(
        "homa,tcp",
        &[
            "--sizes",
            "w3",
            "--rate",
            "2000",
            "--bg-sizes",
            "200000",
            "--bg-outstanding",
            "2",
            // One run per protocol, not pooled rounds.
            "--rounds",
            "1",
        ],
    );
    check(&doc, &["homa", "tcp"]);
}

/// In a build without the `dpdk` feature, the homa-dpdk protocol is on
/// the command line but fails, saying how to rebuild.
#[cfg(not(feature = "dpdk"))]
#[test]
fn homa_dpdk_without_the_feature_says_how_to_rebuild() {
    use std::process::Command;
    let runs = [
        vec!["loopback", "--protocols", "homa-dpdk", "--duration", "0.1"],
        vec![
            "client",
            "--protocol",
            "homa-dpdk",
            "--server",
            "10.0.0.1:4000",
        ],
        vec![
            "server",
            "--protocol",
            "homa-dpdk",
            "--control",
            "127.0.0.1:0",
        ],
    ];
    for args in runs {
        let out = Command::new(env!("CARGO_BIN_EXE_homa-perf"))
            .args(&args)
            .output()
            .expect("run homa-perf");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr.contains("built without DPDK") && stderr.contains("--features dpdk"),
            "{args:?}: {stderr}"
        );
    }
}
