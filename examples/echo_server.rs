//! An echo server in its own process.
//!
//! ```sh
//! cargo run --release --example echo_server -- 127.0.0.1:4000
//! cargo run --release --example echo_client -- 127.0.0.1:4000 1000 100
//! ```

use homa::tokio::{Server, SocketConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4000".into())
        .parse()?;
    let server = Server::bind(addr, SocketConfig::default()).await?;
    println!("echo server listening on {}", server.local_addr());
    let s = server.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        s.shutdown();
    });
    let echo = tower::service_fn(|req: homa::tokio::ServiceRequest| async move {
        Ok::<_, std::convert::Infallible>(req.body)
    });
    server.serve(echo).await?;
    let m = server.metrics().await?;
    println!("served {} requests", m.requests_delivered);
    Ok(())
}
