//! An echo server and client over DPDK (kernel bypass).
//!
//! ```text
//! # server: memif, waits for the client to connect
//! dpdk_echo server --vdev net_memif0,role=server,socket=/run/homa.sock,socket-abstract=no \
//!     --ip 10.0.0.1 --port 4000
//! # client: sends messages of several sizes and checks the echoes byte for byte
//! dpdk_echo client --vdev net_memif0,role=client,socket=/run/homa.sock,socket-abstract=no \
//!     --ip 10.0.0.2 --peer 10.0.0.1:4000
//! ```
//!
//! On a veth or a real interface through the kernel's packet sockets, use
//! `--vdev net_af_packet0,iface=eth1`; on a NIC bound to a DPDK driver,
//! `--pci 0000:01:00.0 --huge` (see the README). The server runs until its
//! standard input closes (or `--secs` pass); the client exits 0 when every
//! echo matched. Options: `--device NAME` (default: the first vdev's
//! name), `--prefix NAME` (EAL file prefix), `--core N` (CPU of the
//! polling thread), `--neighbor IP=MAC` (static ARP entry), `--eal ARG`
//! (more EAL arguments), `--sizes 1,100,...`, `--rounds N`.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use homa_dpdk::{Device, EalConfig, MacAddr, PollerConfig, PortConfig, Stack};
use homa_tokio::SocketConfig;

struct Args {
    server: bool,
    eal: EalConfig,
    device: Option<String>,
    ip: Ipv4Addr,
    port: u16,
    core: Option<usize>,
    neighbors: Vec<(Ipv4Addr, MacAddr)>,
    peer: Option<SocketAddr>,
    sizes: Vec<usize>,
    rounds: usize,
    secs: Option<u64>,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it
        .next()
        .ok_or("usage: dpdk_echo <server|client> [options]")?;
    let mut a = Args {
        server: match mode.as_str() {
            "server" => true,
            "client" => false,
            m => return Err(format!("unknown mode {m:?}: server or client")),
        },
        eal: EalConfig::default(),
        device: None,
        ip: Ipv4Addr::new(10, 0, 0, 1),
        port: 4000,
        core: None,
        neighbors: Vec::new(),
        peer: None,
        sizes: vec![1, 100, 1_400, 1_500, 10_000, 100_000, 1_000_000],
        rounds: 1,
        secs: None,
    };
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--vdev" => a.eal.vdevs.push(val()?),
            "--pci" => {
                a.eal.no_pci = false;
                let p = val()?;
                a.device.get_or_insert(p.clone());
                a.eal.allow_pci.push(p);
            }
            "--huge" => a.eal.no_huge = false,
            "--device" => a.device = Some(val()?),
            "--prefix" => a.eal.file_prefix = Some(val()?),
            "--eal" => a.eal.extra_args.push(val()?),
            "--ip" => a.ip = val()?.parse().map_err(|e| format!("--ip: {e}"))?,
            "--port" => a.port = val()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--core" => a.core = Some(val()?.parse().map_err(|e| format!("--core: {e}"))?),
            "--peer" => a.peer = Some(val()?.parse().map_err(|e| format!("--peer: {e}"))?),
            "--rounds" => a.rounds = val()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--secs" => a.secs = Some(val()?.parse().map_err(|e| format!("--secs: {e}"))?),
            "--sizes" => {
                a.sizes = val()?
                    .split(',')
                    .map(|s| s.parse().map_err(|e| format!("--sizes: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--neighbor" => {
                let v = val()?;
                let (ip, mac) = v.split_once('=').ok_or("--neighbor IP=MAC")?;
                a.neighbors.push((
                    ip.parse().map_err(|e| format!("--neighbor: {e}"))?,
                    mac.parse()?,
                ));
            }
            f => return Err(format!("unknown option {f}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("dpdk_echo: {e}");
            return ExitCode::from(2);
        }
    };
    let device = args
        .device
        .clone()
        .or_else(|| {
            args.eal
                .vdevs
                .first()
                .map(|v| v.split(',').next().unwrap_or(v).to_string())
        })
        .unwrap_or_else(|| "net_memif0".into());
    let mut port = PortConfig::new(Device::Name(device), args.ip, args.port);
    port.static_neighbors = args.neighbors.clone();
    if !args.server {
        // A memif client's link comes up once it has connected.
        port.link_wait = Some(Duration::from_secs(10));
    }
    let mut poller = PollerConfig::default();
    poller.core = args.core;
    let mut socket = SocketConfig::default();
    socket.engine.timeout = Duration::from_secs(2);
    let stack = match Stack::start(&args.eal, port, poller, socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dpdk_echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("ready {} mac {}", stack.socket().local_addr(), stack.mac());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let ok = if args.server {
        rt.block_on(serve(&stack, args.secs));
        true
    } else {
        rt.block_on(client(&stack, &args))
    };
    let stats = stack.stats();
    eprintln!("stats {stats:?}");
    println!(
        "arp requests_tx={} requests_rx={} replies_tx={} replies_rx={} resolved={}",
        stats.arp_requests_tx,
        stats.arp_requests_rx,
        stats.arp_replies_tx,
        stats.arp_replies_rx,
        stats.arp_resolved
    );
    drop(rt);
    stack.shutdown();
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Echo until standard input closes (or `secs` pass).
async fn serve(stack: &Stack, secs: Option<u64>) {
    let server = stack.server();
    let stop = server.clone();
    std::thread::spawn(move || {
        match secs {
            Some(s) => std::thread::sleep(Duration::from_secs(s)),
            None => {
                let _ = std::io::stdin().read_to_end(&mut Vec::new());
            }
        }
        stop.shutdown();
    });
    let mut n = 0u64;
    while let Some(req) = server.next_request().await {
        let body = req.body().clone();
        if req.respond(body).is_ok() {
            n += 1;
        }
    }
    println!("served {n} requests");
}

async fn client(stack: &Stack, args: &Args) -> bool {
    let Some(peer) = args.peer else {
        eprintln!("dpdk_echo: client needs --peer IP:PORT");
        return false;
    };
    let client = stack.client();
    let mut n = 0u64;
    for round in 0..args.rounds {
        for (i, &len) in args.sizes.iter().enumerate() {
            let body = homa_core::fuzzing::pattern(len, (round * 1000 + i) as u64);
            // The first call may wait for ARP and for the link; the engine
            // retransmits, so retry a timed-out first call a few times.
            let mut attempts = if n == 0 { 5 } else { 1 };
            let reply = loop {
                match client.call(peer, body.clone()).await {
                    Ok(r) => break r,
                    Err(e) if attempts > 1 && e.is_transient() => {
                        attempts -= 1;
                        eprintln!("retrying after: {e}");
                    }
                    Err(e) => {
                        eprintln!("dpdk_echo: {len}-byte RPC failed: {e}");
                        return false;
                    }
                }
            };
            if reply[..] != body[..] {
                eprintln!("dpdk_echo: {len}-byte echo differs");
                return false;
            }
            n += 1;
        }
    }
    println!("OK {n} RPCs verified");
    true
}
