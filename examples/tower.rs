//! Homa in a tower stack: the client wrapped in timeout and
//! concurrency-limit layers, the server's service in a concurrency limit,
//! and a deliberately slow request that the timeout layer cuts off (which
//! drops the call future, and so aborts the RPC on both sides).
//!
//! ```sh
//! cargo run --release --example tower
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use homa::tokio::{Client, Server, SocketConfig};
use tower::{ServiceBuilder, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), tower::BoxError> {
    let localhost: SocketAddr = "127.0.0.1:0".parse()?;
    let server = Server::bind(localhost, SocketConfig::default())
        .await?
        .with_concurrency_limit(32);
    let addr = server.local_addr();
    let service = ServiceBuilder::new().concurrency_limit(16).service_fn(
        |req: homa::tokio::ServiceRequest| async move {
            let req = req.body;
            if &req[..] == b"slow" {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok::<_, std::convert::Infallible>(Bytes::from(req.to_ascii_uppercase()))
        },
    );
    let s = server.clone();
    let serving = tokio::spawn(async move { s.serve(service).await });

    let client = Client::bind(localhost, SocketConfig::default()).await?;
    let stack = ServiceBuilder::new()
        .timeout(Duration::from_millis(100))
        .concurrency_limit(8)
        .service(client.clone());

    let mut calls = Vec::new();
    for i in 0..32 {
        let svc = stack.clone();
        calls.push(tokio::spawn(async move {
            svc.oneshot((addr, Bytes::from(format!("request {i}"))))
                .await
        }));
    }
    for c in calls {
        let r = c.await??;
        assert!(r.starts_with(b"REQUEST"));
    }
    println!("32 calls through timeout + concurrency-limit layers: ok");

    match stack
        .clone()
        .oneshot((addr, Bytes::from_static(b"slow")))
        .await
    {
        Err(e) => println!("slow call: {e} (the RPC was aborted)"),
        Ok(_) => println!("slow call unexpectedly finished"),
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let m = client.metrics().await?;
    println!(
        "client RPCs still held after the abort: {}",
        m.active_client_rpcs
    );

    server.shutdown();
    serving.await??;
    Ok(())
}
