//! A key-value microservice over Homa with a small binary encoding.
//!
//! Request:  `b'G' key` (get) or `b'P' u16-BE key-length, key, value` (put).
//! Response: `b'V' value` (found), `b'N'` (not found), `b'K'` (stored),
//! `b'E' message` (bad request). Application errors travel in responses:
//! Homa has no error replies.
//!
//! ```sh
//! cargo run --release --example kv                      # server and client in one process
//! cargo run --release --example kv -- server 127.0.0.1:4100
//! cargo run --release --example kv -- client 127.0.0.1:4100
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use homa::tokio::{Client, Error, Server, SocketConfig};

fn encode_get(key: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(1 + key.len());
    b.put_u8(b'G');
    b.put_slice(key);
    b.freeze()
}

fn encode_put(key: &[u8], value: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(3 + key.len() + value.len());
    b.put_u8(b'P');
    b.put_u16(key.len() as u16);
    b.put_slice(key);
    b.put_slice(value);
    b.freeze()
}

fn handle(store: &Mutex<HashMap<Bytes, Bytes>>, req: &Bytes) -> Bytes {
    match req.first() {
        Some(b'G') => match store.lock().unwrap().get(&req[1..]) {
            Some(v) => {
                let mut b = BytesMut::with_capacity(1 + v.len());
                b.put_u8(b'V');
                b.put_slice(v);
                b.freeze()
            }
            None => Bytes::from_static(b"N"),
        },
        Some(b'P') if req.len() >= 3 => {
            let klen = u16::from_be_bytes([req[1], req[2]]) as usize;
            if req.len() < 3 + klen {
                return Bytes::from_static(b"Ekey longer than request");
            }
            let key = req.slice(3..3 + klen);
            let value = req.slice(3 + klen..);
            store.lock().unwrap().insert(key, value);
            Bytes::from_static(b"K")
        }
        _ => Bytes::from_static(b"Eunknown request"),
    }
}

async fn run_server(addr: SocketAddr) -> Result<Server, Error> {
    let server = Server::bind(addr, SocketConfig::default()).await?;
    let store = Arc::new(Mutex::new(HashMap::new()));
    let s = server.clone();
    tokio::spawn(async move {
        let svc = tower::service_fn(move |req: homa::tokio::ServiceRequest| {
            let store = store.clone();
            async move { Ok::<_, std::convert::Infallible>(handle(&store, &req.body)) }
        });
        s.serve(svc).await
    });
    Ok(server)
}

async fn run_client(server: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::bind("127.0.0.1:0".parse()?, SocketConfig::default()).await?;
    for i in 0..100u32 {
        let key = format!("user:{i}");
        let value = format!("{{\"id\":{i},\"name\":\"user {i}\"}}");
        let r = client
            .call(server, encode_put(key.as_bytes(), value.as_bytes()))
            .await?;
        assert_eq!(&r[..], b"K");
    }
    let r = client.call(server, encode_get(b"user:42")).await?;
    println!("get user:42 -> {}", String::from_utf8_lossy(&r[1..]));
    let r = client.call(server, encode_get(b"user:1000")).await?;
    println!(
        "get user:1000 -> {}",
        if &r[..] == b"N" { "not found" } else { "?" }
    );
    // A big value: Homa messages go up to 1 MB.
    let big = vec![b'x'; 500_000];
    client.call(server, encode_put(b"big", &big)).await?;
    let r = client.call(server, encode_get(b"big")).await?;
    println!("get big -> {} bytes", r.len() - 1);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("server") => {
            let addr = args
                .get(1)
                .map_or("127.0.0.1:4100", String::as_str)
                .parse()?;
            let server = run_server(addr).await?;
            println!("kv server on {}; ctrl-c to stop", server.local_addr());
            tokio::signal::ctrl_c().await?;
            server.shutdown();
        }
        Some("client") => {
            let addr = args
                .get(1)
                .map_or("127.0.0.1:4100", String::as_str)
                .parse()?;
            run_client(addr).await?;
        }
        _ => {
            let server = run_server("127.0.0.1:0".parse()?).await?;
            run_client(server.local_addr()).await?;
            server.shutdown();
        }
    }
    Ok(())
}
