//! An echo client in its own process: `echo_client SERVER [COUNT] [SIZE]`
//! sends COUNT sequential requests of SIZE bytes and prints latencies.
//!
//! ```sh
//! cargo run --release --example echo_server -- 127.0.0.1:4000
//! cargo run --release --example echo_client -- 127.0.0.1:4000 1000 100
//! ```

use std::net::SocketAddr;
use std::time::Instant;

use homa::tokio::{Client, SocketConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let server: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:4000".into())
        .parse()?;
    let count: usize = args.next().map_or(Ok(1000), |s| s.parse())?;
    let size: usize = args.next().map_or(Ok(100), |s| s.parse())?;
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let client = Client::bind(local, SocketConfig::default()).await?;
    let body = bytes::Bytes::from(vec![0xab; size]);
    let mut lat = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let t0 = Instant::now();
        let response = client.call(server, body.clone()).await?;
        lat.push(t0.elapsed());
        assert_eq!(response, body, "echo differs");
    }
    lat.sort();
    let at = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize].as_nanos() as f64 / 1e3;
    println!(
        "{} echoes of {size} bytes from {server}: p50 {:.1} µs, p99 {:.1} µs",
        lat.len(),
        at(0.5),
        at(0.99)
    );
    Ok(())
}
