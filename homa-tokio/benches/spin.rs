//! Busy-polled round trips against their floor, in one process.
//!
//! Homa: an echo `Server` and a `Client`, each on its own thread with its
//! own current-thread runtime and `SocketConfig::busy_poll`, one 100-byte
//! RPC outstanding. The floor: the same on two raw non-blocking UDP sockets,
//! each thread spinning on `recv_from`. This is `homa-perf loopback`'s
//! `homa-spin` / `udp-spin` floor without the processes around it, so that
//! many short rounds can be interleaved: a machine shared with other jobs
//! moves both protocols' round trips by a microsecond or two from one
//! second to the next, more than most changes under study.
//!
//! The client calls from a task spawned on its runtime (as `homa-perf`
//! does) and, in a second run, from the runtime's `block_on` future, which
//! tokio's current-thread runtime polls only when no task is ready: a
//! spinning driver must let it run (see `Driver::run`).
//!
//! `cargo bench -p homa-tokio --bench spin [-- RPCS] [--rounds N]
//! [--one-queue]` prints, over the rounds, the median of each one's P50
//! round trip and the median of the per-round ratios to the floor. `--one-queue`
//! gives Homa's UDP datapath no second receive queue
//! (`UdpConfig::fast_queue_priority = None`).

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use homa_tokio::{Client, Server, SocketConfig};

const SIZE: usize = 100;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn p50(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

fn spin_recv(s: &UdpSocket, buf: &mut [u8]) -> (usize, SocketAddr) {
    loop {
        match s.recv_from(buf) {
            Ok(r) => return r,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => panic!("recv: {e}"),
        }
    }
}

/// Raw UDP, each end on its own spinning thread: the P50 round trip, µs.
fn udp_round(n: usize) -> f64 {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let b_addr = b.local_addr().unwrap();
    let warm = 1_000;
    let server = std::thread::spawn(move || {
        let mut buf = vec![0u8; 2048];
        for _ in 0..warm + n {
            let (len, from) = spin_recv(&b, &mut buf);
            b.send_to(&buf[..len], from).unwrap();
        }
    });
    let body = vec![7u8; SIZE];
    let mut buf = vec![0u8; 2048];
    let mut rtts = Vec::with_capacity(n);
    for i in 0..warm + n {
        let start = Instant::now();
        a.send_to(&body, b_addr).unwrap();
        let (len, _) = spin_recv(&a, &mut buf);
        assert_eq!(len, SIZE);
        if i >= warm {
            rtts.push(start.elapsed());
        }
    }
    server.join().unwrap();
    p50(rtts)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Homa with busy polling, client and server on their own threads: the P50
/// round trip, µs. The client calls from its runtime's `block_on` future,
/// or from a task spawned on it (`spawned`), as `homa-perf` does.
fn homa_round(config: &SocketConfig, n: usize, spawned: bool) -> f64 {
    let (addr_tx, addr_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_config = config.clone();
    let server = std::thread::spawn(move || {
        runtime().block_on(async move {
            let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let server = Server::bind(local, server_config).await.unwrap();
            addr_tx.send(server.local_addr()).unwrap();
            let s = server.clone();
            let serving = tokio::spawn(async move {
                while let Some(req) = s.next_request().await {
                    let b = req.body().clone();
                    let _ = req.respond(b);
                }
            });
            let _ = stop_rx.await;
            server.shutdown();
            serving.abort();
        })
    });
    let dest = addr_rx.recv().unwrap();
    let rtts = runtime().block_on(async {
        let config = config.clone();
        let task = async move {
            let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let client = Client::bind(local, config).await.unwrap();
            let body = Bytes::from(vec![7u8; SIZE]);
            // Warm up: the peer state, the allocator's pools, the spin.
            for _ in 0..1_000 {
                client.call(dest, body.clone()).await.unwrap();
            }
            let mut rtts = Vec::with_capacity(n);
            for _ in 0..n {
                let start = Instant::now();
                let r = client.call(dest, body.clone()).await.unwrap();
                rtts.push(start.elapsed());
                assert_eq!(r.len(), SIZE);
            }
            rtts
        };
        if spawned {
            tokio::spawn(task).await.unwrap()
        } else {
            task.await
        }
    });
    let _ = stop_tx.send(());
    server.join().unwrap();
    p50(rtts)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000)
        .max(1);
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|a| a.parse().ok())
        .unwrap_or(15)
        .max(1);
    let mut config = SocketConfig::default();
    config.busy_poll = Some(Duration::from_micros(100));
    if args.iter().any(|a| a == "--one-queue") {
        config.udp.fast_queue_priority = None;
    }
    let (mut udp, mut spawned, mut block_on) = (Vec::new(), Vec::new(), Vec::new());
    let (mut spawned_ratio, mut block_on_ratio) = (Vec::new(), Vec::new());
    // Interleaved, in alternating order, so that a burst of load from
    // elsewhere hits all three.
    for r in 0..rounds {
        let (u, s, b) = if r % 2 == 0 {
            let u = udp_round(n);
            let s = homa_round(&config, n, true);
            (u, s, homa_round(&config, n, false))
        } else {
            let b = homa_round(&config, n, false);
            let s = homa_round(&config, n, true);
            (udp_round(n), s, b)
        };
        udp.push(u);
        spawned.push(s);
        block_on.push(b);
        spawned_ratio.push(s / u);
        block_on_ratio.push(b / u);
    }
    println!(
        "100-byte round trips, busy-polled, client and server on two threads, \
         {n} per round, {rounds} rounds (medians of the rounds' P50s and ratios)"
    );
    println!(
        "  raw UDP, spinning (floor)             {:>8.2} µs",
        median(udp)
    );
    println!(
        "  homa-tokio, calls from a spawned task {:>8.2} µs  {:>5.2}×",
        median(spawned),
        median(spawned_ratio)
    );
    println!(
        "  homa-tokio, calls from block_on       {:>8.2} µs  {:>5.2}×",
        median(block_on),
        median(block_on_ratio)
    );
}
