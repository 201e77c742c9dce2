//! RTT of 100-byte RPCs, one outstanding: Homa over DPDK (`net_memif`
//! between two processes) against Homa over the UDP datapath (homa-tokio,
//! loopback, two processes), measured in the same run.
//!
//! ```text
//! cargo bench -p homa-dpdk --bench rtt            # as root or not
//! HOMA_RTT_ITERS=50000 cargo bench -p homa-dpdk --bench rtt
//! ```
//!
//! Prints P50, P99 and mean for each, and the ratio of the medians. The
//! server of each pair is this program again, started as a child process
//! (`HOMA_RTT_ROLE`); EAL runs once per process, so each DPDK side needs
//! its own. The UDP pair is measured first, before any DPDK polling thread
//! takes a core. Cores: `HOMA_RTT_CLIENT_CORE` / `HOMA_RTT_SERVER_CORE` pin
//! the two polling threads (default: CPU 0 for the client's, the last CPU
//! for the server's).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use homa_dpdk::{Device, EalConfig, PollerConfig, PortConfig, Stack};
use homa_tokio::{Client, Server, SocketConfig};

const SIZE: usize = 100;

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn memif_vdev(role: &str, sock: &str) -> String {
    format!("net_memif0,role={role},id=0,socket={sock},socket-abstract=no")
}

/// The polling thread's core: from the environment, else the first CPU
/// for the client and the last for the server, so that the two polling
/// threads do not share a core.
fn poller(core_var: &str, default: Option<usize>) -> PollerConfig {
    let mut p = PollerConfig::default();
    p.core = env_usize(core_var).or(default);
    p
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Echo until stdin closes.
async fn echo(server: Server) {
    let stop = server.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        stop.shutdown();
    });
    while let Some(req) = server.next_request().await {
        let body = req.body().clone();
        let _ = req.respond(body);
    }
}

fn child_main(role: &str) {
    let rt = rt();
    match role {
        "udp-server" => rt.block_on(async {
            let server = Server::bind("127.0.0.1:0".parse().unwrap(), SocketConfig::default())
                .await
                .expect("bind");
            println!("ready {}", server.local_addr());
            echo(server).await;
        }),
        "memif-server" => {
            let sock = std::env::var("HOMA_RTT_SOCK").expect("socket path");
            let mut eal = EalConfig::default();
            eal.vdevs.push(memif_vdev("server", &sock));
            let port = PortConfig::new(
                Device::Name("net_memif0".into()),
                "10.55.0.1".parse().unwrap(),
                4000,
            );
            let stack = Stack::start(
                &eal,
                port,
                poller("HOMA_RTT_SERVER_CORE", None),
                SocketConfig::default(),
            )
            .expect("DPDK server");
            println!("ready {}", stack.socket().local_addr());
            rt.block_on(echo(stack.server()));
            drop(rt);
            stack.shutdown();
        }
        r => panic!("unknown role {r}"),
    }
}

struct ServerProcess(Child);

impl ServerProcess {
    fn start(role: &str, sock: &str) -> (ServerProcess, SocketAddr) {
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .env("HOMA_RTT_ROLE", role)
            .env("HOMA_RTT_SOCK", sock)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("server output");
        let addr = line
            .trim()
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("server said {line:?}"))
            .parse()
            .expect("address");
        (ServerProcess(child), addr)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        drop(self.0.stdin.take()); // the server stops when stdin closes
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `iters` sequential calls after `warmup`; the RTTs in nanoseconds.
async fn measure(client: &Client, dest: SocketAddr, warmup: usize, iters: usize) -> Vec<u64> {
    let body = Bytes::from(vec![0x5a; SIZE]);
    for _ in 0..warmup {
        let r = client.call(dest, body.clone()).await.expect("warm-up RPC");
        assert_eq!(r.len(), SIZE);
    }
    let mut rtts = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let r = client.call(dest, body.clone()).await.expect("RPC");
        rtts.push(t.elapsed().as_nanos() as u64);
        assert_eq!(r.len(), SIZE);
    }
    rtts.sort_unstable();
    rtts
}

struct Summary {
    p50: f64,
    p99: f64,
    mean: f64,
}

fn summarize(name: &str, rtts: &[u64]) -> Summary {
    let pct = |p: f64| rtts[((rtts.len() as f64 * p) as usize).min(rtts.len() - 1)] as f64 / 1e3;
    let s = Summary {
        p50: pct(0.50),
        p99: pct(0.99),
        mean: rtts.iter().sum::<u64>() as f64 / rtts.len() as f64 / 1e3,
    };
    println!(
        "{name:<34} P50 {:>8.1} us   P99 {:>8.1} us   mean {:>8.1} us   ({} RPCs)",
        s.p50,
        s.p99,
        s.mean,
        rtts.len()
    );
    s
}

fn main() {
    if let Ok(role) = std::env::var("HOMA_RTT_ROLE") {
        child_main(&role);
        return;
    }
    let iters = env_usize("HOMA_RTT_ITERS").unwrap_or(20_000);
    let warmup = (iters / 10).max(100);
    println!("RTT of {SIZE}-byte RPCs, one outstanding, {iters} RPCs each, client and server in two processes");

    // 1. UDP on loopback (kernel sockets, tokio driver task).
    let udp = {
        let (_server, addr) = ServerProcess::start("udp-server", "");
        rt().block_on(async {
            let client = Client::bind("127.0.0.1:0".parse().unwrap(), SocketConfig::default())
                .await
                .expect("bind");
            measure(&client, addr, warmup, iters).await
        })
    };
    let udp = summarize("homa-tokio UDP (loopback)", &udp);

    // 2. DPDK over memif.
    let sock = std::env::temp_dir()
        .join(format!("homa-rtt-{}.sock", std::process::id()))
        .display()
        .to_string();
    let _ = std::fs::remove_file(&sock);
    let dpdk = {
        let (server, addr) = ServerProcess::start("memif-server", &sock);
        let mut eal = EalConfig::default();
        eal.vdevs.push(memif_vdev("client", &sock));
        let mut port = PortConfig::new(
            Device::Name("net_memif0".into()),
            "10.55.0.2".parse().unwrap(),
            4001,
        );
        port.link_wait = Some(Duration::from_secs(10));
        let stack = Stack::start(
            &eal,
            port,
            poller("HOMA_RTT_CLIENT_CORE", Some(0)),
            SocketConfig::default(),
        )
        .expect("DPDK client");
        let rtts = rt().block_on(measure(&stack.client(), addr, warmup, iters));
        stack.shutdown();
        drop(server);
        rtts
    };
    let _ = std::fs::remove_file(&sock);
    let dpdk = summarize("homa-dpdk (net_memif)", &dpdk);
    println!(
        "DPDK/UDP: P50 {:.2}x, P99 {:.2}x, mean {:.2}x  (target: P50 <= 0.5x)",
        dpdk.p50 / udp.p50,
        dpdk.p99 / udp.p99,
        dpdk.mean / udp.mean
    );
}
