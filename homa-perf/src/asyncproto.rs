//! The protocols that run on tokio: Homa (homa-tokio over UDP, or over
//! DPDK: the same `Client` and `Server` on another endpoint) and TCP (a
//! pool of length-prefixed connections per server). Clients and servers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use homa_tokio::{Client, Server, SocketConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::load::ResponseSpec;
use crate::wire;

/// An engine's counters in one line for the report: packets, RESENDs sent,
/// bytes retransmitted, timeouts, and drops by reason (the nonzero ones).
/// Duplicates and packets for RPCs already finished (unknown RPC, stale) are
/// mostly the trail of retransmissions; buffer and RPC limits are real
/// losses.
pub fn engine_line(m: &homa_tokio::Metrics) -> String {
    let reasons: Vec<String> = m
        .drops_by_reason()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(why, n)| format!("{n} {}", why.as_str()))
        .collect();
    let why = if reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", reasons.join(", "))
    };
    format!(
        "{} packets out, {} in, {} RESENDs sent, {} bytes retransmitted, {} timeouts, {} drops{why}",
        m.packets_out.iter().sum::<u64>(),
        m.packets_in.iter().sum::<u64>(),
        m.resends_sent,
        m.retransmitted_bytes,
        m.client_timeouts + m.server_timeouts,
        m.drops()
    )
}

/// Frames up to this size are written with one system call.
const COALESCE: usize = 16 * 1024;

/// A client side of Homa or TCP.
pub enum AsyncTransport {
    /// homa-tokio's client; `body` is a zero buffer with the response code
    /// in front, sliced per request.
    Homa {
        /// The client.
        client: Client,
        /// Template request body.
        body: Bytes,
        /// Servers.
        servers: Vec<SocketAddr>,
    },
    /// One pool of connections per server.
    Tcp {
        /// Pools, by server.
        pools: Vec<TcpPool>,
        /// Response code sent with each request.
        code: u32,
    },
}

impl AsyncTransport {
    /// Connect a Homa client.
    pub async fn homa(
        servers: Vec<SocketAddr>,
        response: ResponseSpec,
        config: SocketConfig,
    ) -> Result<AsyncTransport, String> {
        let bind: SocketAddr = if servers.iter().all(|s| s.is_ipv4()) {
            "0.0.0.0:0".parse().expect("addr")
        } else {
            "[::]:0".parse().expect("addr")
        };
        let client = Client::bind(bind, config)
            .await
            .map_err(|e| format!("homa client bind: {e}"))?;
        Ok(AsyncTransport::homa_on(client, servers, response))
    }

    /// A Homa client on an endpoint made elsewhere (homa-dpdk's).
    pub fn homa_on(
        client: Client,
        servers: Vec<SocketAddr>,
        response: ResponseSpec,
    ) -> AsyncTransport {
        let mut body = wire::zeros().to_vec();
        body[..4].copy_from_slice(&wire::code(response).to_be_bytes());
        AsyncTransport::Homa {
            client,
            body: Bytes::from(body),
            servers,
        }
    }

    /// Connect `pool` TCP connections to each server.
    pub async fn tcp(
        servers: Vec<SocketAddr>,
        response: ResponseSpec,
        pool: usize,
    ) -> Result<AsyncTransport, String> {
        let mut pools = Vec::new();
        for s in servers {
            pools.push(TcpPool::connect(s, pool.max(1)).await?);
        }
        Ok(AsyncTransport::Tcp {
            pools,
            code: wire::code(response),
        })
    }

    /// A line of transport counters for the report (Homa: the client
    /// engine's, see [`engine_line`]).
    pub async fn notes(&self) -> Option<String> {
        match self {
            AsyncTransport::Homa { client, .. } => {
                let m = client.metrics().await.ok()?;
                Some(format!("client engine: {}", engine_line(&m)))
            }
            AsyncTransport::Tcp { .. } => None,
        }
    }

    /// Number of servers.
    pub fn servers(&self) -> usize {
        match self {
            AsyncTransport::Homa { servers, .. } => servers.len(),
            AsyncTransport::Tcp { pools, .. } => pools.len(),
        }
    }

    /// One RPC to server `server` with a request of `size` bytes, expecting
    /// `resp` bytes back.
    pub async fn call(&self, server: usize, size: u64, resp: u64) -> Result<(), String> {
        let got = match self {
            AsyncTransport::Homa {
                client,
                body,
                servers,
            } => {
                let len = (size as usize).max(4);
                client
                    .call(servers[server], body.slice(..len))
                    .await
                    .map_err(|e| e.to_string())?
                    .len()
            }
            AsyncTransport::Tcp { pools, code } => pools[server].call(size, *code).await?,
        };
        if got as u64 != resp {
            return Err(format!("response of {got} bytes, expected {resp}"));
        }
        Ok(())
    }
}

struct TcpReq {
    size: u64,
    code: u32,
    done: oneshot::Sender<usize>,
}

struct TcpConn {
    tx: mpsc::UnboundedSender<TcpReq>,
    load: Arc<AtomicUsize>,
}

/// A pool of TCP connections to one server. Each RPC goes to the connection
/// with the fewest RPCs outstanding; requests on one connection are
/// pipelined and answered in order.
pub struct TcpPool {
    conns: Vec<TcpConn>,
    next: AtomicUsize,
}

impl TcpPool {
    async fn connect(server: SocketAddr, n: usize) -> Result<TcpPool, String> {
        let mut conns = Vec::new();
        for _ in 0..n {
            let s = TcpStream::connect(server)
                .await
                .map_err(|e| format!("tcp connect {server}: {e}"))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            let (r, w) = s.into_split();
            let (tx, rx) = mpsc::unbounded_channel();
            let (ptx, prx) = mpsc::unbounded_channel();
            tokio::spawn(tcp_writer(w, rx, ptx));
            tokio::spawn(tcp_reader(r, prx));
            conns.push(TcpConn {
                tx,
                load: Arc::new(AtomicUsize::new(0)),
            });
        }
        Ok(TcpPool {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    async fn call(&self, size: u64, code: u32) -> Result<usize, String> {
        let n = self.conns.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut best = start % n;
        let mut best_load = usize::MAX;
        for i in 0..n {
            let c = (start + i) % n;
            let l = self.conns[c].load.load(Ordering::Relaxed);
            if l < best_load {
                best = c;
                best_load = l;
                if l == 0 {
                    break;
                }
            }
        }
        let conn = &self.conns[best];
        conn.load.fetch_add(1, Ordering::Relaxed);
        let (done, rx) = oneshot::channel();
        let r = match conn.tx.send(TcpReq { size, code, done }) {
            Ok(()) => rx.await.map_err(|_| "tcp connection closed".to_string()),
            Err(_) => Err("tcp connection closed".to_string()),
        };
        conn.load.fetch_sub(1, Ordering::Relaxed);
        r
    }
}

async fn write_frame(
    w: &mut OwnedWriteHalf,
    header: &[u8],
    len: usize,
    scratch: &mut Vec<u8>,
) -> std::io::Result<()> {
    let body = &wire::zeros()[..len];
    if header.len() + len <= COALESCE {
        scratch.clear();
        scratch.extend_from_slice(header);
        scratch.extend_from_slice(body);
        w.write_all(scratch).await
    } else {
        w.write_all(header).await?;
        w.write_all(body).await
    }
}

async fn tcp_writer(
    mut w: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<TcpReq>,
    pending: mpsc::UnboundedSender<oneshot::Sender<usize>>,
) {
    let mut scratch = Vec::with_capacity(COALESCE);
    while let Some(req) = rx.recv().await {
        if pending.send(req.done).is_err() {
            return;
        }
        let mut h = [0u8; 8];
        h[..4].copy_from_slice(&(req.size as u32).to_be_bytes());
        h[4..].copy_from_slice(&req.code.to_be_bytes());
        if write_frame(&mut w, &h, req.size as usize, &mut scratch)
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn skip(
    r: &mut BufReader<OwnedReadHalf>,
    mut len: usize,
    buf: &mut [u8],
) -> std::io::Result<()> {
    while len > 0 {
        let n = len.min(buf.len());
        r.read_exact(&mut buf[..n]).await?;
        len -= n;
    }
    Ok(())
}

async fn tcp_reader(
    r: OwnedReadHalf,
    mut pending: mpsc::UnboundedReceiver<oneshot::Sender<usize>>,
) {
    let mut r = BufReader::with_capacity(64 * 1024, r);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let Ok(len) = r.read_u32().await else { return };
        if skip(&mut r, len as usize, &mut buf).await.is_err() {
            return;
        }
        let Some(w) = pending.recv().await else {
            return;
        };
        let _ = w.send(len as usize);
    }
}

/// Serve Homa on `bind` until the process ends; calls `ready` with the
/// bound address first.
pub async fn homa_server(
    bind: SocketAddr,
    config: SocketConfig,
    ready: impl FnOnce(SocketAddr, &Server),
) -> Result<(), String> {
    let server = Server::bind(bind, config)
        .await
        .map_err(|e| format!("homa server bind {bind}: {e}"))?;
    ready(server.local_addr(), &server);
    homa_serve(server).await;
    Ok(())
}

/// Answer `server`'s requests until it shuts down.
pub async fn homa_serve(server: Server) {
    while let Some(mut req) = server.next_request().await {
        let body = req.take_body();
        if body.len() < 4 {
            continue; // not ours: dropped unanswered
        }
        let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let resp = if code == wire::SAME {
            body
        } else {
            wire::zeros().slice(..wire::response_len(code, body.len()))
        };
        let _ = req.respond(resp);
    }
}

/// Serve TCP on `bind` until the process ends; calls `ready` with the
/// bound address first.
pub async fn tcp_server(bind: SocketAddr, ready: impl FnOnce(SocketAddr)) -> Result<(), String> {
    let l = TcpListener::bind(bind)
        .await
        .map_err(|e| format!("tcp bind {bind}: {e}"))?;
    ready(l.local_addr().map_err(|e| e.to_string())?);
    loop {
        let (s, _) = l.accept().await.map_err(|e| e.to_string())?;
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let (r, mut w) = s.into_split();
            let mut r = BufReader::with_capacity(64 * 1024, r);
            let mut buf = vec![0u8; 64 * 1024];
            let mut scratch = Vec::with_capacity(COALESCE);
            loop {
                let Ok(len) = r.read_u32().await else { return };
                let Ok(code) = r.read_u32().await else { return };
                if skip(&mut r, len as usize, &mut buf).await.is_err() {
                    return;
                }
                let resp = wire::response_len(code, len as usize);
                let h = (resp as u32).to_be_bytes();
                if write_frame(&mut w, &h, resp, &mut scratch).await.is_err() {
                    return;
                }
            }
        });
    }
}
