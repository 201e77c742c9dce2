//! Quickstart: a Homa server and client in one process over loopback UDP.
//! A few echo RPCs of growing size, then a burst of 20,000 sequential
//! 100-byte RPCs with their p50/p99 latency, on tokio's multi-thread and
//! current-thread runtimes, next to a raw UDP ping-pong (blocking std
//! sockets, 100-byte request and response) measured the same way, for scale.
//!
//! ```sh
//! cargo run --release --example quickstart
//! ```

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use homa::tokio::{Client, Server, SocketConfig};

const BURST: usize = 20_000;

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |p: f64| v[((v.len() - 1) as f64 * p) as usize].as_nanos() as f64 / 1e3;
    (at(0.5), at(0.99))
}

/// Raw UDP round trips on loopback: the floor any UDP-based RPC pays.
fn udp_pingpong(n: usize) -> std::io::Result<Vec<Duration>> {
    let server = UdpSocket::bind("127.0.0.1:0")?;
    let server_addr = server.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let mut buf = [0u8; 2048];
        for _ in 0..n {
            let (len, from) = server.recv_from(&mut buf)?;
            server.send_to(&buf[..len], from)?;
        }
        Ok(())
    });
    let client = UdpSocket::bind("127.0.0.1:0")?;
    client.set_read_timeout(Some(Duration::from_secs(1)))?;
    let msg = [7u8; 100];
    let mut buf = [0u8; 2048];
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        client.send_to(&msg, server_addr)?;
        client.recv_from(&mut buf)?;
        lat.push(t0.elapsed());
    }
    echo.join().expect("echo thread")?;
    Ok(lat)
}

/// A Homa server and client on the current tokio runtime: a few echo RPCs
/// (printed if `show`), then the burst. Returns the burst's latencies.
async fn homa_burst(show: bool) -> Result<Vec<Duration>, Box<dyn std::error::Error>> {
    let localhost: SocketAddr = "127.0.0.1:0".parse()?;
    let mut config = SocketConfig::default();
    if let Ok(us) = std::env::var("HOMA_BUSY_POLL_US") {
        config.busy_poll = Some(Duration::from_micros(us.parse()?));
    }
    let server = Server::bind(localhost, config.clone()).await?;
    let server_addr = server.local_addr();
    let echo = server.clone();
    tokio::spawn(async move {
        while let Some(req) = echo.next_request().await {
            let body = req.body().clone();
            let _ = req.respond(body);
        }
    });
    let client = Client::bind(localhost, config).await?;
    if show {
        println!(
            "Homa server at {server_addr}, client at {}",
            client.local_addr()
        );
    }
    for n in [5usize, 1_000, 10_000, 100_000, 1_000_000] {
        let body = bytes::Bytes::from(vec![n as u8; n]);
        let t0 = Instant::now();
        let response = client.call(server_addr, body.clone()).await?;
        assert_eq!(response, body);
        if show {
            println!(
                "echo of {n:>9} bytes: {:>8.1} µs",
                t0.elapsed().as_nanos() as f64 / 1e3
            );
        }
    }

    let body = bytes::Bytes::from(vec![42u8; 100]);
    for _ in 0..1_000 {
        client.call(server_addr, body.clone()).await?; // warm-up
    }
    let mut lat = Vec::with_capacity(BURST);
    for _ in 0..BURST {
        let t0 = Instant::now();
        let response = client.call(server_addr, body.clone()).await?;
        lat.push(t0.elapsed());
        assert_eq!(response.len(), 100);
    }
    if show {
        let m = client.metrics().await?;
        println!(
            "client: {} responses, {} packets out, {} retransmitted bytes, {} drops",
            m.responses_delivered,
            m.packets_out.iter().sum::<u64>(),
            m.retransmitted_bytes,
            m.drops()
        );
    }
    server.shutdown();
    Ok(lat)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The same program on tokio's two runtime flavours: the default
    // multi-threaded one (client, server and their drivers hop between
    // worker threads, each hop a thread wake-up), and the current-thread one
    // (everything on one thread: no wake-ups between tasks). The raw UDP
    // ping-pong uses two blocking threads.
    let multi = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(homa_burst(true))?;
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(homa_burst(false))?;
    let udp = udp_pingpong(BURST)?;
    println!("{BURST} sequential 100-byte round trips on loopback:");
    for (name, lat) in [
        ("Homa, multi-thread tokio runtime", multi),
        ("Homa, current-thread tokio runtime", single),
        ("raw UDP ping-pong, 2 blocking threads", udp),
    ] {
        let (p50, p99) = percentiles(lat);
        println!("  {name:<40} p50 {p50:>7.1} µs   p99 {p99:>7.1} µs");
    }
    Ok(())
}
