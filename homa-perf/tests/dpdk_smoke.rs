//! Smoke test of the homa-dpdk protocol (a build with `--features dpdk`):
//! `homa-perf loopback` runs it over a `net_memif` pair between two
//! processes, beside homa over UDP, for about a second each. RPCs must
//! complete with no errors, and the JSON must parse and follow the issue's
//! schema. No timing is asserted. Needs no privileges or hugepages.
#![cfg(feature = "dpdk")]

mod common;

use common::{check, loopback};

/// One test, so that the DPDK runs do not overlap (each spins two polling
/// threads).
#[test]
fn homa_dpdk_over_memif_completes_rpcs_without_errors() {
    let doc = loopback("homa-dpdk,homa", &["--sizes", "100", "--rounds", "1"]);
    check(&doc, &["homa-dpdk", "homa"]);
    // Messages of several packets each way (the port's MTU is 1500), some
    // scheduled (beyond the 40,000 unscheduled bytes), a few outstanding.
    let doc = loopback(
        "homa-dpdk",
        &["--sizes", "w3", "--outstanding", "4", "--rounds", "1"],
    );
    check(&doc, &["homa-dpdk"]);
}
