//! Command-line interface.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::load::{rate_for_gbps, Mode, ResponseSpec, SizeSpec, Sizes};

/// Measure Homa against TCP — and against raw UDP floors — on the same
/// workload, side by side, on one machine (`loopback`) or many (`server` on
/// each server host, `client` on each client host).
///
/// Every protocol is driven by the same load generator and measured the
/// same way: RTT percentiles per message-size bucket, slowdown against the
/// idle RTT of the same size (measured at the start of the same run), a
/// short-message summary (the smallest 10 % of messages), throughput,
/// RPCs/s, client and server CPU time, and errors.
///
/// Examples:
///
///   homa-perf loopback --scenario all
///
///   homa-perf loopback --protocols homa,tcp --sizes w4 --gbps 2 --json out.json --plot out.svg
///
///   homa-perf server --protocol homa --bind 0.0.0.0:4000 --control 0.0.0.0:4001
///
///   homa-perf client --protocol homa --server 10.0.0.2:4000 --control 10.0.0.2:4001 --sizes w3 --rate 50000
///
/// Homa over DPDK (kernel bypass; a build with `--features dpdk`):
///
///   homa-perf loopback --protocols homa-dpdk,homa,udp
///
///   homa-perf server --protocol homa-dpdk --bind 10.0.0.2:4000 --control 192.168.0.2:4001 --dpdk-pci 0000:01:00.0
///
///   homa-perf client --protocol homa-dpdk --server 10.0.0.2:4000 --control 192.168.0.2:4001 --dpdk-pci 0000:01:00.0 --dpdk-ip 10.0.0.3
#[derive(Debug, Parser)]
#[command(name = "homa-perf", version, verbatim_doc_comment)]
pub struct Cli {
    /// The role to play.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Roles.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Serve one protocol: answer every request with a response of the size
    /// the request asks for. Runs until killed (homa-dpdk: until SIGTERM or
    /// SIGINT, then it releases its DPDK port and EAL). Prints
    /// `listening <data-addr> control <control-addr>` once ready.
    Server(ServerArgs),
    /// Generate load against one or more servers and report the results.
    // Boxed: by far the largest variant.
    Client(Box<ClientArgs>),
    /// Run server and client as separate processes on this machine, the
    /// protocols in turn (in interleaved rounds, see --rounds), and print
    /// them side by side.
    Loopback(LoopbackArgs),
}

/// A protocol under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// Homa (homa-tokio over kernel UDP).
    Homa,
    /// Homa with busy polling at both ends (`SocketConfig::busy_poll`, see
    /// `--busy-poll-us`).
    HomaSpin,
    /// TCP (tokio): a pool of connections per server (`--tcp-pool`),
    /// length-prefixed requests and responses.
    Tcp,
    /// Floor: raw UDP request/response ping-pong on blocking sockets
    /// (single-packet messages only).
    Udp,
    /// Floor: raw UDP with both ends busy-polling non-blocking sockets
    /// (single-packet messages only).
    UdpSpin,
    /// Homa over DPDK (homa-dpdk: kernel bypass, a thread polling the
    /// port at each end; see the --dpdk-* options). Only in a build with
    /// `--features dpdk`; `loopback` connects its two processes with a
    /// `net_memif` pair.
    HomaDpdk,
}

/// Default of `loopback --protocols`: homa-dpdk too when it is built in.
#[cfg(feature = "dpdk")]
const LOOPBACK_PROTOCOLS: &str = "homa,tcp,udp,udp-spin,homa-dpdk";
/// Default of `loopback --protocols`: homa-dpdk too when it is built in.
#[cfg(not(feature = "dpdk"))]
const LOOPBACK_PROTOCOLS: &str = "homa,tcp,udp,udp-spin";

impl Protocol {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Homa => "homa",
            Protocol::HomaSpin => "homa-spin",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::UdpSpin => "udp-spin",
            Protocol::HomaDpdk => "homa-dpdk",
        }
    }

    /// Whether this build can run the protocol (homa-dpdk needs the
    /// `dpdk` feature).
    ///
    /// # Errors
    /// Why not, and how to rebuild.
    pub fn available(self) -> Result<(), String> {
        if self == Protocol::HomaDpdk && !cfg!(feature = "dpdk") {
            return Err(crate::dpdk::UNAVAILABLE.into());
        }
        Ok(())
    }

    /// Whether this is one of the single-packet UDP floors.
    pub fn is_udp(self) -> bool {
        matches!(self, Protocol::Udp | Protocol::UdpSpin)
    }
}

/// tokio runtime flavour for the Homa and TCP processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    /// One thread runs everything (the engine's driver, the load tasks):
    /// no cross-thread wake-ups, the lowest latency.
    Current,
    /// tokio's multi-thread runtime (one worker per core).
    Multi,
}

impl RuntimeKind {
    /// Builds the tokio runtime of this kind (I/O and timers enabled).
    ///
    /// # Errors
    /// If tokio cannot create it (the message says why).
    pub fn build(self) -> Result<tokio::runtime::Runtime, String> {
        match self {
            RuntimeKind::Current => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            RuntimeKind::Multi => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build(),
        }
        .map_err(|e| e.to_string())
    }
}

/// Homa configuration presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HomaProfile {
    /// homa-tokio's and homa-core's defaults: 1472-byte packets (an
    /// Ethernet MTU), 40,000 unscheduled bytes, 400,000 max_incoming.
    Default,
    /// Sized for the loopback interface, as TCP sizes itself there: 65,000
    /// byte packets (loopback's MTU is 64 KiB; TCP uses 64 KB segments);
    /// 65,000 unscheduled bytes and grants of at least 32,000 bytes (so
    /// that scheduled packets are big too); max_incoming 260,000 (a few
    /// hundred µs of kernel copying: short messages queue behind little);
    /// incast control from 32 outstanding RPCs (without it, an open-loop
    /// client with hundreds of RPCs outstanding has its responses'
    /// unscheduled bytes overflow its socket buffer). Chosen by sweeping
    /// the `mixed` and `bulk` presets.
    Loopback,
}

/// Options of the protocols' implementations.
#[derive(Debug, Clone, Args)]
pub struct TransportArgs {
    /// tokio runtime of the Homa and TCP clients and servers. `current`
    /// (the default) avoids cross-thread wake-ups, which dominate small-RPC
    /// latency on the multi-thread runtime.
    #[arg(long, value_enum, default_value_t = RuntimeKind::Current)]
    pub runtime: RuntimeKind,
    /// How long an idle Homa driver spins on its socket before sleeping,
    /// for the `homa-spin` protocol (µs). With RPCs in progress it also
    /// spins until the engine's `resend_after` (5 ms) has passed since the
    /// application's last call, response or delivery.
    #[arg(long, default_value_t = 100)]
    pub busy_poll_us: u64,
    /// TCP connections per server per client process. RPCs go to the
    /// connection with the fewest outstanding; more RPCs than connections
    /// queue behind each other on a connection (pipelined, in order).
    #[arg(long, default_value_t = 16)]
    pub tcp_pool: usize,
    /// Homa configuration preset; the --homa-* options below override its
    /// values. Default: `loopback` for `homa-perf loopback`, `default` for
    /// `client` and `server`.
    #[arg(long, value_enum)]
    pub homa_profile: Option<HomaProfile>,
    /// Homa: largest UDP payload per packet (default: homa-tokio's 1472,
    /// an Ethernet MTU; loopback takes up to 65507, as TCP's 64 KB
    /// loopback segments do).
    #[arg(long)]
    pub homa_packet_size: Option<usize>,
    /// Homa: bytes a message may send before its first grant (default:
    /// homa-core's 40,000; the paper sizes it to the network's
    /// bandwidth-delay product).
    #[arg(long)]
    pub homa_unsched_bytes: Option<u32>,
    /// Homa: most granted-but-unreceived bytes per receiver (default:
    /// homa-core's 400,000).
    #[arg(long)]
    pub homa_max_incoming: Option<u32>,
    /// Homa: a client with more than this many RPCs outstanding marks new
    /// requests so that servers send few unscheduled bytes in the responses
    /// (incast control; default: off).
    #[arg(long)]
    pub homa_incast_threshold: Option<usize>,
    /// Homa: smallest grant a receiver sends while granted bytes are still
    /// arriving (default: homa-core's 10,000).
    #[arg(long)]
    pub homa_grant_increment: Option<u32>,
    /// Homa: the link rate the pacer assumes, Gbit/s (default: homa-tokio's
    /// choice, 100 on loopback).
    #[arg(long)]
    pub homa_link_gbps: Option<f64>,
    /// Homa over UDP: the lowest priority (0–7) that goes to the second
    /// receive queue, or `off` for one queue (`UdpConfig::fast_queue_priority`;
    /// default: homa-tokio's 5). The second queue keeps short messages from
    /// waiting behind bulk data in the kernel's first-in first-out socket
    /// queue, at a cost to every packet (a reuseport group and its steering
    /// program: about 0.3 µs per round trip in a C ping-pong here, less
    /// than the busy-polling floor's run-to-run noise).
    #[arg(long, value_parser = parse_fast_queue)]
    pub homa_fast_queue: Option<FastQueue>,
}

/// `--homa-fast-queue`: a priority, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastQueue {
    /// One receive queue.
    Off,
    /// Packets at this priority or above go to the second queue.
    From(u8),
}

fn parse_fast_queue(s: &str) -> Result<FastQueue, String> {
    if s == "off" {
        return Ok(FastQueue::Off);
    }
    match s.parse::<u8>() {
        Ok(p) if p <= 7 => Ok(FastQueue::From(p)),
        _ => Err(format!("`{s}`: expected a priority 0-7 or `off`")),
    }
}

impl TransportArgs {
    /// Command-line form, for child processes.
    pub fn to_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--runtime".into(),
            match self.runtime {
                RuntimeKind::Current => "current".into(),
                RuntimeKind::Multi => "multi".into(),
            },
            "--busy-poll-us".into(),
            self.busy_poll_us.to_string(),
            "--tcp-pool".into(),
            self.tcp_pool.to_string(),
        ];
        let mut opt = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                a.extend([name.to_string(), v]);
            }
        };
        opt(
            "--homa-packet-size",
            self.homa_packet_size.map(|v| v.to_string()),
        );
        opt(
            "--homa-unsched-bytes",
            self.homa_unsched_bytes.map(|v| v.to_string()),
        );
        opt(
            "--homa-max-incoming",
            self.homa_max_incoming.map(|v| v.to_string()),
        );
        opt(
            "--homa-link-gbps",
            self.homa_link_gbps.map(|v| v.to_string()),
        );
        opt(
            "--homa-incast-threshold",
            self.homa_incast_threshold.map(|v| v.to_string()),
        );
        opt(
            "--homa-grant-increment",
            self.homa_grant_increment.map(|v| v.to_string()),
        );
        opt(
            "--homa-fast-queue",
            self.homa_fast_queue.map(|q| match q {
                FastQueue::Off => "off".to_string(),
                FastQueue::From(p) => p.to_string(),
            }),
        );
        opt(
            "--homa-profile",
            self.homa_profile.map(|p| match p {
                HomaProfile::Default => "default".to_string(),
                HomaProfile::Loopback => "loopback".to_string(),
            }),
        );
        a
    }

    /// The Homa socket configuration for protocol `p`. The `loopback`
    /// profile sizes Homa for the kernel's loopback interface and does not
    /// apply to homa-dpdk, whose packets the port's MTU sizes; the
    /// --homa-* engine options (unscheduled bytes, max_incoming, grant
    /// increment, incast, link rate) do; the packet size and busy polling
    /// do not.
    pub fn homa_config(&self, p: Protocol) -> homa_tokio::SocketConfig {
        let mut c = homa_tokio::SocketConfig::default();
        c.busy_poll = self.busy_poll(p);
        if self.homa_profile == Some(HomaProfile::Loopback) && p != Protocol::HomaDpdk {
            c.udp.max_packet_size = 65_000;
            c.engine.unsched_bytes = 65_000;
            c.engine.grant_increment = 32_000;
            c.engine.max_incoming = 260_000;
            c.engine.incast_threshold = Some(32);
        }
        if let Some(v) = self.homa_packet_size {
            c.udp.max_packet_size = v;
        }
        if let Some(v) = self.homa_link_gbps {
            c.udp.link_rate_bps = Some((v * 1e9) as u64);
        }
        if let Some(v) = self.homa_unsched_bytes {
            c.engine.unsched_bytes = v;
        }
        if let Some(v) = self.homa_max_incoming {
            c.engine.max_incoming = v;
        }
        if let Some(v) = self.homa_incast_threshold {
            c.engine.incast_threshold = Some(v);
        }
        if let Some(v) = self.homa_grant_increment {
            c.engine.grant_increment = v;
        }
        match self.homa_fast_queue {
            Some(FastQueue::Off) => c.udp.fast_queue_priority = None,
            Some(FastQueue::From(p)) => c.udp.fast_queue_priority = Some(p),
            None => {}
        }
        c
    }

    /// The Homa settings in words, for reports.
    pub fn describe_homa(&self) -> String {
        let c = self.homa_config(Protocol::Homa);
        format!(
            "Homa: {} B packets, {} unscheduled bytes, grant increment {}, max_incoming {}, incast threshold {:?}, second receive queue from priority {}",
            c.udp.max_packet_size,
            c.engine.unsched_bytes,
            c.engine.grant_increment,
            c.engine.max_incoming,
            c.engine.incast_threshold,
            c.udp
                .fast_queue_priority
                .map_or("(off)".to_string(), |p| p.to_string())
        )
    }

    /// homa-dpdk's Homa settings in words, for reports.
    pub fn describe_homa_dpdk(&self) -> String {
        let c = self.homa_config(Protocol::HomaDpdk);
        format!(
            "homa-dpdk: packets sized by the port's MTU, {} unscheduled bytes, grant increment {}, max_incoming {}, incast threshold {:?}",
            c.engine.unsched_bytes,
            c.engine.grant_increment,
            c.engine.max_incoming,
            c.engine.incast_threshold
        )
    }

    /// Busy polling for `p`, if any.
    pub fn busy_poll(&self, p: Protocol) -> Option<Duration> {
        (p == Protocol::HomaSpin).then(|| Duration::from_micros(self.busy_poll_us))
    }
}

/// The load.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Request sizes: a workload w1..w5 (the Linux Homa distributions,
    /// capped at 1,000,000 bytes) or a fixed size in bytes.
    #[arg(long, default_value = "100")]
    pub sizes: SizeSpec,
    /// Response sizes: `same` (as big as the request), `one-way` (100
    /// bytes), or a size in bytes.
    #[arg(long, default_value = "same")]
    pub response: ResponseSpec,
    /// Closed loop: keep this many RPCs outstanding (default 1 when neither
    /// --rate nor --gbps is given).
    #[arg(long, conflicts_with_all = ["rate", "gbps"])]
    pub outstanding: Option<usize>,
    /// Open loop: Poisson arrivals at this many RPCs per second (per client
    /// process). An RPC's latency counts from its arrival (when the load
    /// generator's clock issues it), so time it spends waiting for a busy
    /// client counts too.
    #[arg(long, conflicts_with = "gbps")]
    pub rate: Option<f64>,
    /// Open loop: Poisson arrivals at the rate that offers this many Gbit/s
    /// of message bytes (requests plus responses).
    #[arg(long)]
    pub gbps: Option<f64>,
    /// A background flow beside the main one, measured too: its request
    /// sizes (e.g. 1000000 to keep the path busy with big messages).
    #[arg(long)]
    pub bg_sizes: Option<SizeSpec>,
    /// RPCs the background flow keeps outstanding (closed loop).
    #[arg(long, default_value_t = 8)]
    pub bg_outstanding: usize,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// RPCs per size for the idle RTT (one outstanding, before the load
    /// starts) that slowdown is computed against.
    #[arg(long, default_value_t = 300)]
    pub idle_rpcs: usize,
    /// Open loop: arrivals beyond this many outstanding RPCs are skipped
    /// (and counted) instead of issued.
    #[arg(long, default_value_t = 1000)]
    pub max_outstanding: usize,
    /// Seed of the load's random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl LoadArgs {
    /// The main flow's issue mode.
    pub fn mode(&self) -> Mode {
        if let Some(r) = self.rate {
            Mode::Open(r)
        } else if let Some(g) = self.gbps {
            Mode::Open(rate_for_gbps(g, &Sizes::new(&self.sizes), self.response))
        } else {
            Mode::Closed(self.outstanding.unwrap_or(1).max(1))
        }
    }

    /// The load in words.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "sizes {}, response {}, {}",
            self.sizes,
            self.response,
            self.mode()
        );
        if let Some(g) = self.gbps {
            s.push_str(&format!(" ({g} Gbit/s offered)"));
        }
        if let Some(bg) = &self.bg_sizes {
            s.push_str(&format!(
                "; background sizes {bg}, {} outstanding",
                self.bg_outstanding
            ));
        }
        s
    }

    /// Command-line form, for child processes.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "--sizes".into(),
            self.sizes.to_string(),
            "--response".into(),
            self.response.to_string(),
        ];
        if let Some(n) = self.outstanding {
            a.extend(["--outstanding".into(), n.to_string()]);
        }
        if let Some(r) = self.rate {
            a.extend(["--rate".into(), r.to_string()]);
        }
        if let Some(g) = self.gbps {
            a.extend(["--gbps".into(), g.to_string()]);
        }
        if let Some(bg) = &self.bg_sizes {
            a.extend(["--bg-sizes".into(), bg.to_string()]);
        }
        a.extend([
            "--bg-outstanding".into(),
            self.bg_outstanding.to_string(),
            "--duration".into(),
            self.duration.to_string(),
            "--warmup".into(),
            self.warmup.to_string(),
            "--idle-rpcs".into(),
            self.idle_rpcs.to_string(),
            "--max-outstanding".into(),
            self.max_outstanding.to_string(),
            "--seed".into(),
            self.seed.to_string(),
        ]);
        a
    }
}

/// Where results go.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Write the results as JSON:
    /// {"runs":[{"protocol","short_p50_us","short_p99_us","rpcs_per_sec",
    /// "throughput_gbps","errors","error_examples","notes","stalls","stall_ms",
    /// "buckets":[{"size_upper","count","p50_us","p99_us","p999_us",
    /// "p99_slowdown"}]}]}, where error_examples holds up to five error
    /// messages, notes the transport's counters (Homa: the client's and the
    /// servers' engines: packets, RESENDs, retransmitted bytes, timeouts,
    /// drops), and stalls/stall_ms (open loop) how often the load generator's
    /// arrival clock issued an arrival 0.5 ms or more late (the thread did
    /// not run) and how late, summed over those stalls, in ms: "clock
    /// stalls" in the table. With `--scenario all`, one file per scenario
    /// (`FILE-<scenario>.json`).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write an SVG plot of P99 slowdown per size bucket, one line per
    /// protocol (with `--scenario all`, `FILE-<scenario>.svg`).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Options of the DPDK endpoint, for protocol `homa-dpdk` (`server` and
/// `client`; `loopback` sets them itself).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "DPDK options (protocol homa-dpdk)")]
pub struct DpdkArgs {
    /// A virtual device for DPDK's EAL (`--vdev`), repeatable. E.g.
    /// `net_memif0,role=server,socket=/tmp/homa.sock,socket-abstract=no`
    /// (shared memory with a `role=client` process on this machine) or
    /// `net_af_packet0,iface=eth1` (a kernel interface, through packet
    /// sockets).
    #[arg(long = "dpdk-vdev", value_name = "SPEC")]
    pub vdevs: Vec<String>,
    /// A NIC bound to a DPDK driver, by PCI address (e.g. `0000:01:00.0`),
    /// repeatable. Turns on PCI scanning and hugepages (without it, EAL
    /// runs with `--no-pci --no-huge`).
    #[arg(long = "dpdk-pci", value_name = "ADDR")]
    pub pci: Vec<String>,
    /// The DPDK port to run on: a vdev's name (`net_memif0`) or a PCI
    /// address. Default: the first --dpdk-pci, else the first --dpdk-vdev's
    /// name.
    #[arg(long = "dpdk-device", value_name = "NAME")]
    pub device: Option<String>,
    /// Our IPv4 address on the DPDK port (the kernel does not see the
    /// port; the endpoint answers ARP for this address itself). Required
    /// for a client; a server defaults to its --bind address.
    #[arg(long = "dpdk-ip", value_name = "IPV4")]
    pub ip: Option<Ipv4Addr>,
    /// CPU to pin the polling thread to. Default: the last CPU this
    /// process may run on.
    #[arg(long = "dpdk-core", value_name = "CPU")]
    pub core: Option<usize>,
    /// An extra EAL argument, passed as is after the others, repeatable
    /// (write `--dpdk-eal=--arg` for one that starts with `-`).
    #[arg(long = "dpdk-eal", value_name = "ARG", allow_hyphen_values = true)]
    pub eal: Vec<String>,
    /// EAL's `--file-prefix` (the name of its runtime directory; two DPDK
    /// processes on one machine need different ones). Default: unique per
    /// process.
    #[arg(long = "dpdk-prefix", value_name = "NAME")]
    pub prefix: Option<String>,
}

impl DpdkArgs {
    /// Command-line form, for child processes.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        for v in &self.vdevs {
            a.extend(["--dpdk-vdev".to_string(), v.clone()]);
        }
        for p in &self.pci {
            a.extend(["--dpdk-pci".to_string(), p.clone()]);
        }
        if let Some(d) = &self.device {
            a.extend(["--dpdk-device".to_string(), d.clone()]);
        }
        if let Some(ip) = self.ip {
            a.extend(["--dpdk-ip".to_string(), ip.to_string()]);
        }
        if let Some(c) = self.core {
            a.extend(["--dpdk-core".to_string(), c.to_string()]);
        }
        for e in &self.eal {
            a.push(format!("--dpdk-eal={e}"));
        }
        if let Some(p) = &self.prefix {
            a.extend(["--dpdk-prefix".to_string(), p.clone()]);
        }
        a
    }
}

/// `homa-perf server`.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Protocol to serve.
    #[arg(long, value_enum)]
    pub protocol: Protocol,
    /// Address to serve on (port 0: any free port; Homa server ports are
    /// 1–32767). homa-dpdk: its IP is the default of --dpdk-ip, port 0
    /// means 4000.
    #[arg(long, default_value = "0.0.0.0:4000")]
    pub bind: SocketAddr,
    /// TCP address of the control channel, over which clients start and
    /// stop the server's CPU accounting and collect it.
    #[arg(long, default_value = "0.0.0.0:4001")]
    pub control: SocketAddr,
    /// Protocol options.
    #[command(flatten)]
    pub transport: TransportArgs,
    /// DPDK endpoint.
    #[command(flatten)]
    pub dpdk: DpdkArgs,
}

/// `homa-perf client`.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Protocol to use.
    #[arg(long, value_enum)]
    pub protocol: Protocol,
    /// A server's data address (repeat for several servers; each RPC goes
    /// to one chosen at random).
    #[arg(long = "server", required = true)]
    pub servers: Vec<SocketAddr>,
    /// A server's control address (repeat; optional: without it, server CPU
    /// is not reported).
    #[arg(long = "control")]
    pub controls: Vec<SocketAddr>,
    /// The load.
    #[command(flatten)]
    pub load: LoadArgs,
    /// Protocol options.
    #[command(flatten)]
    pub transport: TransportArgs,
    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
    /// Write the full result (internal JSON) here instead of printing a
    /// report (used by `loopback`).
    #[arg(long, hide = true)]
    pub result_file: Option<PathBuf>,
    /// Also write the raw samples of the measured window (internal JSON)
    /// here (used by `loopback --rounds`, which pools them).
    #[arg(long, hide = true)]
    pub samples_file: Option<PathBuf>,
    /// DPDK endpoint (last: its help heading applies to what follows).
    #[command(flatten)]
    pub dpdk: DpdkArgs,
}

/// Preset comparisons (issue 6 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// 100-byte RPCs, one outstanding: homa, homa-spin, tcp, udp, udp-spin,
    /// and homa-dpdk in a build with the `dpdk` feature.
    Floor,
    /// 100-byte RPCs (one outstanding) beside 1 MB RPCs (8 outstanding).
    Mixed,
    /// W3, open loop, Poisson at 1.2 Gbit/s (override with --gbps): the most
    /// both Homa and TCP sustain, run after run, on a shared 2-core machine.
    /// At 1.5 Gbit/s the processes fall behind in some runs and Homa times
    /// RPCs out.
    W3,
    /// W4, open loop, Poisson at 4 Gbit/s (override with --gbps): about the
    /// most both sustain there.
    W4,
    /// 100-byte RPCs, 64 outstanding.
    Rate,
    /// 1 MB RPCs, 8 outstanding.
    Bulk,
    /// All of the above, one after another.
    All,
}

/// `homa-perf loopback`.
#[derive(Debug, Clone, Args)]
pub struct LoopbackArgs {
    /// Protocols to run, in turn (ignored with --scenario, which
    /// picks its own). The udp floors are skipped when messages do not fit
    /// one packet. homa-dpdk (in the default list only in a build with the
    /// `dpdk` feature) runs its two processes over a `net_memif` pair, with
    /// the client's polling thread on CPU 0 and the server's on the last.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = LOOPBACK_PROTOCOLS
    )]
    pub protocols: Vec<Protocol>,
    /// Run a preset comparison instead of the load given by the options
    /// (--duration, --warmup, --seed and the transport options still apply).
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,
    /// Split each protocol's measured time (--duration) into this many
    /// rounds and run the protocols in turn, in reverse order every other
    /// round (A B B A A B ...), so that a slow spell of a shared machine
    /// falls on all of them alike rather than on whichever ran then. Each
    /// round is a fresh server and client with its own warm-up, idle-RTT
    /// measurement and seed (--seed plus the round's index); a protocol's
    /// rounds are pooled into one result, as if it were one run of
    /// --duration seconds. 1 runs each protocol once, one after another.
    /// Every round repeats the warm-up and the idle-RTT measurement, so a
    /// run takes longer than with 1 (the skipped-arrival count, which
    /// includes warm-ups, then includes every round's); every sample is
    /// kept until the rounds are pooled.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// The load.
    #[command(flatten)]
    pub load: LoadArgs,
    /// Protocol options.
    #[command(flatten)]
    pub transport: TransportArgs,
    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `loopback` hands its children must parse back to the same
    /// options (a flag missing here silently runs the children with
    /// defaults).
    #[test]
    fn child_arguments_round_trip() {
        let cli = Cli::parse_from([
            "homa-perf",
            "loopback",
            "--sizes",
            "w4",
            "--gbps",
            "2.5",
            "--bg-sizes",
            "1000000",
            "--homa-profile",
            "loopback",
            "--homa-packet-size",
            "9000",
            "--homa-unsched-bytes",
            "1234",
            "--homa-max-incoming",
            "5678",
            "--homa-incast-threshold",
            "9",
            "--homa-link-gbps",
            "10",
            "--homa-grant-increment",
            "777",
            "--homa-fast-queue",
            "off",
            "--runtime",
            "multi",
            "--tcp-pool",
            "3",
        ]);
        let Cmd::Loopback(l) = cli.cmd else {
            panic!("not loopback")
        };
        let mut argv = vec!["homa-perf".to_string(), "client".into()];
        argv.extend(["--protocol".into(), "homa".into()]);
        argv.extend(["--server".into(), "127.0.0.1:1".into()]);
        argv.extend(l.load.to_args());
        argv.extend(l.transport.to_args());
        let Cmd::Client(c) = Cli::parse_from(argv).cmd else {
            panic!("not client")
        };
        assert_eq!(format!("{:?}", c.load), format!("{:?}", l.load));
        assert_eq!(format!("{:?}", c.transport), format!("{:?}", l.transport));
        let cfg = c.transport.homa_config(Protocol::Homa);
        assert_eq!(cfg.udp.max_packet_size, 9000);
        assert_eq!(cfg.engine.incast_threshold, Some(9));
        assert_eq!(cfg.engine.grant_increment, 777);
        assert_eq!(cfg.udp.fast_queue_priority, None);
        assert_eq!(parse_fast_queue("6"), Ok(FastQueue::From(6)));
        assert!(parse_fast_queue("8").is_err());
    }

    /// The `--dpdk-*` options `loopback` hands its children parse back to
    /// the same values.
    #[test]
    fn dpdk_arguments_round_trip() {
        let d = DpdkArgs {
            vdevs: vec!["net_memif0,role=client,socket=/tmp/x.sock".into()],
            pci: vec!["0000:01:00.0".into()],
            device: Some("net_memif0".into()),
            ip: Some(Ipv4Addr::new(10, 77, 0, 2)),
            core: Some(0),
            eal: vec!["--log-level=debug".into()],
            prefix: Some("p".into()),
        };
        let mut argv = vec!["homa-perf".to_string(), "client".into()];
        argv.extend(["--protocol".into(), "homa-dpdk".into()]);
        argv.extend(["--server".into(), "10.77.0.1:4000".into()]);
        argv.extend(d.to_args());
        let Cmd::Client(c) = Cli::parse_from(argv).cmd else {
            panic!("not client")
        };
        assert_eq!(c.protocol, Protocol::HomaDpdk);
        assert_eq!(format!("{:?}", c.dpdk), format!("{d:?}"));
    }
}
