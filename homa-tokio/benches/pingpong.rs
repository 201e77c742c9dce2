//! The cost of the adapter on the critical path, against its floor.
//!
//! Client and server share one current-thread runtime, so that loopback
//! delivers each datagram inside the sender's system call and no process
//! ever sleeps: what is measured is the CPU work per round trip, not the
//! kernel's wake-ups (which dominate, and vary, across processes; see
//! `homa-perf loopback --scenario floor` for those). The floor is the same
//! ping-pong on two raw non-blocking UDP sockets: `send_to`, `recv_from`,
//! answer, `recv_from`, in one run beside Homa's.
//!
//! `cargo bench -p homa-tokio --bench pingpong [-- RPCS]` prints the median
//! round trip of each over several rounds and their ratio. Under
//! `valgrind --tool=callgrind` the instruction counts are repeatable even on
//! a busy machine.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use homa_tokio::{Client, Server, SocketConfig};

const SIZE: usize = 100;
const ROUNDS: usize = 7;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Raw UDP: both ends in this thread, non-blocking.
fn udp_round(n: usize) -> Duration {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let b_addr = b.local_addr().unwrap();
    let body = vec![7u8; SIZE];
    let mut buf = vec![0u8; 2048];
    let recv = |s: &UdpSocket, buf: &mut [u8]| -> (usize, SocketAddr) {
        loop {
            match s.recv_from(buf) {
                Ok(r) => return r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
                Err(e) => panic!("recv: {e}"),
            }
        }
    };
    let start = Instant::now();
    for _ in 0..n {
        a.send_to(&body, b_addr).unwrap();
        let (len, from) = recv(&b, &mut buf);
        b.send_to(&buf[..len], from).unwrap();
        let (len, _) = recv(&a, &mut buf);
        assert_eq!(len, SIZE);
    }
    start.elapsed() / n as u32
}

/// Homa: a `Client` and an echo `Server` on one current-thread runtime.
fn homa_round(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    rt.block_on(async {
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = Server::bind(local, SocketConfig::default()).await.unwrap();
        let s = server.clone();
        let serving = tokio::spawn(async move {
            while let Some(req) = s.next_request().await {
                let b = req.body().clone();
                let _ = req.respond(b);
            }
        });
        let client = Client::bind(local, SocketConfig::default()).await.unwrap();
        let dest = server.local_addr();
        let body = Bytes::from(vec![7u8; SIZE]);
        // Warm up: the peer state and the allocator's pools.
        for _ in 0..100 {
            client.call(dest, body.clone()).await.unwrap();
        }
        let start = Instant::now();
        for _ in 0..n {
            let r = client.call(dest, body.clone()).await.unwrap();
            assert_eq!(r.len(), SIZE);
        }
        let per = start.elapsed() / n as u32;
        server.shutdown();
        serving.abort();
        per
    })
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut homa, mut udp) = (Vec::new(), Vec::new());
    // Interleaved, so that a burst of load from elsewhere hits both.
    for _ in 0..ROUNDS {
        udp.push(udp_round(n));
        homa.push(homa_round(&rt, n));
    }
    let (h, u) = (median(homa), median(udp));
    println!("100-byte round trips, one thread, {n} per round, median of {ROUNDS} rounds");
    println!("  raw UDP (floor)   {:>8.2} µs", u.as_secs_f64() * 1e6);
    println!("  homa-tokio        {:>8.2} µs", h.as_secs_f64() * 1e6);
    println!(
        "  ratio             {:>8.2}×",
        h.as_secs_f64() / u.as_secs_f64()
    );
}
