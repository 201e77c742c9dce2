//! Finds DPDK (libdpdk >= 22.11) with pkg-config and compiles the C shim
//! that wraps DPDK's inline functions.

use std::process::Command;

const MIN_VERSION: &str = "22.11";
const HELP: &str = "homa-dpdk needs DPDK >= 22.11 and pkg-config: install the packages \
`libdpdk-dev pkg-config` (Debian/Ubuntu: `apt-get install libdpdk-dev pkg-config`), \
or set PKG_CONFIG_PATH to a directory holding libdpdk.pc";

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");

    if Command::new("pkg-config")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("pkg-config not found. {HELP}");
    }
    let lib = match pkg_config::Config::new()
        .atleast_version(MIN_VERSION)
        .cargo_metadata(true)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => panic!("libdpdk >= {MIN_VERSION} not found ({e}). {HELP}"),
    };

    // The compile flags (include paths, `-include rte_config.h`, -march)
    // come from pkg-config as DPDK wants them.
    let cflags = Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("pkg-config --cflags libdpdk");
    let cflags = String::from_utf8_lossy(&cflags.stdout).into_owned();
    let mut build = cc::Build::new();
    build.file("csrc/shim.c").opt_level(2).warnings(true);
    for path in &lib.include_paths {
        build.include(path);
    }
    let mut args = cflags.split_whitespace();
    while let Some(a) = args.next() {
        if a == "-include" {
            if let Some(file) = args.next() {
                build.flag("-include").flag(file);
            }
        } else if !a.starts_with("-I") {
            build.flag(a);
        }
    }
    build.compile("homa_dpdk_shim");

    // Drivers we call directly (rte_eth_from_rings, vdev lookup) must be
    // linked, not only loaded as plugins.
    for l in [
        "rte_net_ring",
        "rte_bus_vdev",
        "rte_ethdev",
        "rte_mbuf",
        "rte_mempool",
        "rte_ring",
        "rte_eal",
    ] {
        println!("cargo:rustc-link-lib=dylib={l}");
    }
}
