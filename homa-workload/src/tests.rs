use super::*;
use sha2::{Digest, Sha256};

/// The mean over `n` draws at stratified points u = (i + 0.5) / n: a large,
/// deterministic sample of the inverse CDF.
fn stratified_mean(d: &SizeDistribution, n: u64) -> f64 {
    (0..n)
        .map(|i| d.sample((i as f64 + 0.5) / n as f64) as f64)
        .sum::<f64>()
        / n as f64
}

#[test]
fn embedded_files_are_the_shared_ones() {
    // sha256 prefixes from shared/workloads/README.md.
    let want = [
        "24e7f8fc23a5",
        "9a68c51e8466",
        "278094f9c961",
        "0032b6f5a3e1",
        "4439d5b2feb3",
    ];
    for (text, prefix) in SIGCOMM18.iter().zip(want) {
        let hex: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(hex.starts_with(prefix), "{hex} vs {prefix}");
    }
}

#[test]
fn sampled_means_match_the_files_first_line_within_1_percent() {
    for w in Workload::ALL {
        let d = SizeDistribution::sigcomm18(w);
        // W1's tail is heavy (k = 0.35): more points for its mean to settle.
        let n = if w == Workload::W1 {
            20_000_000
        } else {
            2_000_000
        };
        let got = stratified_mean(&d, n);
        let want = d.mean_bytes();
        let err = (got - want).abs() / want;
        eprintln!(
            "{w}: sampled mean {got:.1} B vs file {want:.1} B ({:+.3}%)",
            (got - want) / want * 100.0
        );
        assert!(
            err < 0.01,
            "{w}: sampled mean {got:.1} vs file {want:.1} ({:.2}%)",
            err * 100.0
        );
    }
}

#[test]
fn w5_is_in_packets_of_1442_bytes() {
    let d = SizeDistribution::sigcomm18(Workload::W5);
    assert!(
        (d.mean_bytes() - 2_515_857.0).abs() < 1.0,
        "{}",
        d.mean_bytes()
    );
    assert_eq!(d.sample(0.0), 1442);
    assert_eq!(d.sample(0.025), 1442);
    assert_eq!(d.sample(0.0251), 2 * 1442);
}

#[test]
fn steps_take_the_first_size_whose_probability_reaches_u() {
    let d = SizeDistribution::sigcomm18(Workload::W1);
    assert_eq!(d.sample(0.0), 1);
    assert_eq!(d.sample(0.00583), 1);
    assert_eq!(d.sample(0.00584), 2);
    assert_eq!(d.sample(0.47), 15);
}

#[test]
fn w1_tail_is_the_generalized_pareto_above_047() {
    let d = SizeDistribution::sigcomm18(Workload::W1);
    assert_eq!(d.sample(0.470_000_1), 15);
    // p = 0.735: (0.53/0.265)^k = 2^0.348238 = 1.27305...; 15 + 0.27305 * 615.89 = 183.2
    assert_eq!(d.sample(0.735), 183);
    let mut last = 0;
    for i in 0..1000 {
        let s = d.sample(0.47 + 0.53 * (i as f64 + 0.5) / 1000.0);
        assert!(s >= last);
        last = s;
    }
    assert!(d.sample(1.0 - 1e-15) <= 1 << 30);
}

#[test]
fn linux_weights_are_normalized_small_sizes_merged_and_capped() {
    let d = SizeDistribution::parse_linux("2 1\n8 1\n100 2\n").unwrap();
    assert_eq!(d.sample(0.0), 8);
    assert_eq!(d.sample(0.5), 8); // 2 and 8 merged: half the weight
    assert_eq!(d.sample(0.51), 100);
    assert!((d.mean_bytes() - 54.0).abs() < 1e-9);
    let w5 = SizeDistribution::linux(Workload::W5, Some(1_000_000));
    assert!((0..1000).all(|i| w5.sample(i as f64 / 1000.0) <= 1_000_000));
    assert!(SizeDistribution::linux(Workload::W5, None).max_step_bytes() > 1_000_000);
    for w in Workload::ALL {
        let d = SizeDistribution::linux(w, None);
        let got = stratified_mean(&d, 1_000_000);
        assert!((got - d.mean_bytes()).abs() / d.mean_bytes() < 0.01, "{w}");
    }
}

#[test]
fn malformed_files_are_errors() {
    assert!(SizeDistribution::parse_sigcomm18("", 1).is_err());
    assert!(SizeDistribution::parse_sigcomm18("abc\n1 0.5\n", 1).is_err());
    assert!(SizeDistribution::parse_sigcomm18("10\n5 0.5\n3 0.9\n", 1).is_err());
    assert!(SizeDistribution::parse_sigcomm18("10\n5 0.5\n6 0.4\n", 1).is_err());
    assert!(SizeDistribution::parse_sigcomm18("10\n", 1).is_err());
    assert!(SizeDistribution::parse_linux("8 x\n").is_err());
    assert!(SizeDistribution::parse_linux("8 0\n").is_err());
    assert_eq!("W3".parse::<Workload>(), Ok(Workload::W3));
    assert!("w6".parse::<Workload>().is_err());
}

#[test]
fn out_of_range_u_never_panics() {
    for w in Workload::ALL {
        let d = SizeDistribution::sigcomm18(w);
        for u in [-1.0, 0.0, 1.0, 2.0, f64::NAN, f64::INFINITY] {
            let _ = d.sample(u);
        }
    }
}
