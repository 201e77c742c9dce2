//! The `homa-dpdk` protocol: Homa on homa-dpdk's kernel-bypass datapath
//! (EAL, one DPDK port, a polling thread that runs the engine). Client and
//! server use the same homa-tokio `Client` / `Server` API as over UDP;
//! only the endpoint underneath differs.
//!
//! An [`Endpoint`] holds the whole DPDK stack for the life of a role and
//! must be [`shutdown`](Endpoint::shutdown) at the end, which stops the
//! polling thread, closes the port and cleans EAL up. In a build without
//! the `dpdk` feature, [`Endpoint::start`] fails with [`UNAVAILABLE`].

use std::net::{Ipv4Addr, SocketAddr};

use crate::cli::DpdkArgs;

/// Why `homa-dpdk` cannot run in a build without the `dpdk` feature.
pub const UNAVAILABLE: &str = "protocol homa-dpdk: this homa-perf was built without DPDK; \
     rebuild it with `--features dpdk` (e.g. `cargo build --release -p homa-perf --features dpdk`; \
     needs the system's libdpdk, found with pkg-config)";

/// The Homa port of a client endpoint (Homa client ports are
/// 32768–65535; the DPDK port carries only this one endpoint).
#[cfg_attr(not(feature = "dpdk"), allow(dead_code))]
pub const CLIENT_PORT: u16 = 40_000;

/// The Homa port a server takes when `--bind` says port 0 (there is no
/// kernel to pick a free one).
#[cfg_attr(not(feature = "dpdk"), allow(dead_code))]
pub const DEFAULT_SERVER_PORT: u16 = 4000;

/// Which end of the RPCs an endpoint is.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    /// A server bound to this address (its IP is the default for
    /// `--dpdk-ip`, its port is the Homa server port).
    Server(SocketAddr),
    /// A client.
    Client,
}

/// Our IPv4 address and Homa port on the DPDK port.
#[cfg_attr(not(feature = "dpdk"), allow(dead_code))]
fn address(args: &DpdkArgs, side: Side) -> Result<(Ipv4Addr, u16), String> {
    match side {
        Side::Server(bind) => {
            let bound = match bind {
                SocketAddr::V4(a) if !a.ip().is_unspecified() => Some(*a.ip()),
                _ => None,
            };
            let ip = args.ip.or(bound).ok_or(
                "protocol homa-dpdk: give the server's IPv4 address on the DPDK port \
                 with --dpdk-ip (or as the --bind address)",
            )?;
            let port = match bind.port() {
                0 => DEFAULT_SERVER_PORT,
                p if p > 0x7fff => {
                    return Err(format!("--bind {bind}: Homa server ports are 1-32767"))
                }
                p => p,
            };
            Ok((ip, port))
        }
        Side::Client => {
            let ip = args.ip.ok_or(
                "protocol homa-dpdk: give the client's IPv4 address on the DPDK port with --dpdk-ip",
            )?;
            Ok((ip, CLIENT_PORT))
        }
    }
}

#[cfg(feature = "dpdk")]
mod imp {
    use std::time::Duration;

    use homa_dpdk::{Device, EalConfig, PollerConfig, PortConfig, Stack};
    use homa_tokio::{Client, Server, SocketConfig};

    use super::{address, Side};
    use crate::cli::DpdkArgs;

    /// A running DPDK stack: EAL, one port, the polling thread.
    pub struct Endpoint {
        stack: Stack,
    }

    impl Endpoint {
        /// Start EAL and the port that `args` describe, and the polling
        /// thread with an engine configured by `config` (its packet size
        /// comes from the port's MTU; `config.udp.link_rate_bps`, if set,
        /// is the pacer's link rate). A client waits up to 10 s for its
        /// link (a memif client's link is up once it has connected to the
        /// server); a server does not wait (a memif server's link comes up
        /// when a client connects).
        ///
        /// # Errors
        /// A missing address, no device, or DPDK's own errors, as text.
        pub fn start(
            args: &DpdkArgs,
            side: Side,
            config: SocketConfig,
        ) -> Result<Endpoint, String> {
            let (ip, homa_port) = address(args, side)?;
            let mut eal = EalConfig::default();
            eal.vdevs = args.vdevs.clone();
            if !args.pci.is_empty() {
                eal.no_pci = false;
                eal.no_huge = false;
                eal.allow_pci = args.pci.clone();
            }
            eal.file_prefix = args.prefix.clone();
            eal.extra_args = args.eal.clone();
            let device = args
                .device
                .clone()
                .or_else(|| args.pci.first().cloned())
                .or_else(|| {
                    args.vdevs
                        .first()
                        .map(|v| v.split(',').next().unwrap_or(v).to_string())
                })
                .ok_or(
                    "protocol homa-dpdk: name a DPDK device with --dpdk-vdev, --dpdk-pci or --dpdk-device",
                )?;
            let mut port = PortConfig::new(Device::Name(device), ip, homa_port);
            port.link_rate_bps = config.udp.link_rate_bps;
            if matches!(side, Side::Client) {
                port.link_wait = Some(Duration::from_secs(10));
            }
            let mut poller = PollerConfig::default();
            poller.core = args.core;
            poller.name = "homa-perf-dpdk".into();
            let stack =
                Stack::start(&eal, port, poller, config).map_err(|e| format!("homa-dpdk: {e}"))?;
            Ok(Endpoint { stack })
        }

        /// Our address: IPv4 address and Homa port on the DPDK port.
        pub fn local_addr(&self) -> std::net::SocketAddr {
            self.stack.socket().local_addr()
        }

        /// A client on the endpoint.
        pub fn client(&self) -> Client {
            self.stack.client()
        }

        /// A server on the endpoint.
        pub fn server(&self) -> Server {
            self.stack.server()
        }

        /// A line of the port's counters for the report.
        pub fn notes(&self) -> String {
            let s = self.stack.stats();
            format!(
                "DPDK port {}: {} frames in, {} out, {} dropped on receive, {} on send, ARP {} requests sent / {} received, {} resolved",
                self.stack.mac(),
                s.rx_frames,
                s.tx_frames,
                s.rx_not_for_us
                    + s.rx_wrong_port
                    + s.rx_truncated
                    + s.rx_bad_ethertype
                    + s.rx_bad_protocol
                    + s.rx_bad_ip_header
                    + s.rx_bad_checksum
                    + s.rx_fragments
                    + s.rx_multi_segment
                    + s.nic_rx_missed
                    + s.nic_rx_nombuf,
                s.arp_drops + s.tx_no_mbuf + s.tx_queue_full + s.tx_too_big + s.tx_unroutable,
                s.arp_requests_tx,
                s.arp_requests_rx,
                s.arp_resolved
            )
        }

        /// Stop the polling thread, close the port, clean EAL up.
        pub fn shutdown(self) {
            self.stack.shutdown();
        }
    }
}

#[cfg(not(feature = "dpdk"))]
mod imp {
    use homa_tokio::{Client, Server, SocketConfig};

    use super::{Side, UNAVAILABLE};
    use crate::cli::DpdkArgs;

    /// A running DPDK stack; none can exist in a build without the `dpdk`
    /// feature.
    pub enum Endpoint {}

    impl Endpoint {
        /// Always fails with [`UNAVAILABLE`] in this build.
        ///
        /// # Errors
        /// Always.
        pub fn start(
            _args: &DpdkArgs,
            _side: Side,
            _config: SocketConfig,
        ) -> Result<Endpoint, String> {
            Err(UNAVAILABLE.into())
        }

        /// Our address.
        pub fn local_addr(&self) -> std::net::SocketAddr {
            match *self {}
        }

        /// A client on the endpoint.
        pub fn client(&self) -> Client {
            match *self {}
        }

        /// A server on the endpoint.
        pub fn server(&self) -> Server {
            match *self {}
        }

        /// A line of the port's counters for the report.
        pub fn notes(&self) -> String {
            match *self {}
        }

        /// Stop the stack.
        pub fn shutdown(self) {
            match self {}
        }
    }
}

pub use imp::Endpoint;
