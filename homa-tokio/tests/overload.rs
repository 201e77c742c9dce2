//! A driver that has fallen behind its own receive queue must not judge
//! peers silent as of now: their packets may be waiting unread.
//!
//! A datapath that never runs dry (a flood of junk, as from a busy network
//! on a machine too slow to keep up) hands the driver packets forever, so
//! it reads for longer than `resend_after` without once finding the queue
//! empty, and runs its timers anyway. The client's one RPC hears nothing.
//! With a queue that can hold a lot, the driver cannot know whether the
//! response is in it, and sends no RESEND for as long as reading has not
//! got through a queue's worth of bytes. With a small queue, reading gets
//! through it quickly, and the RESEND follows: deferred, never withheld.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use homa_core::wire::PacketType;
use homa_core::Transmit;
use homa_tokio::{Client, Datapath, Incoming, Socket, SocketConfig};

/// Every read finds a batch of junk packets; sends are recorded.
#[derive(Debug)]
struct Flood {
    local: SocketAddr,
    limit: Option<usize>,
    sent: Mutex<Vec<Transmit>>,
}

const JUNK_FROM: &str = "10.0.0.9:9999";

impl Flood {
    fn junk(out: &mut Vec<Incoming>) -> usize {
        for _ in 0..8 {
            out.push(Incoming::Packet {
                from: JUNK_FROM.parse().unwrap(),
                data: Bytes::from_static(&[0u8; 1000]),
            });
        }
        8
    }

    fn resends(&self) -> usize {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|t| t.packet_type() == PacketType::Resend)
            .count()
    }
}

impl Datapath for Flood {
    fn poll_recv(&self, _: &mut Context<'_>, out: &mut Vec<Incoming>) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(Self::junk(out)))
    }

    fn try_recv(&self, out: &mut Vec<Incoming>) -> io::Result<usize> {
        Ok(Self::junk(out))
    }

    fn poll_send(&self, _: &mut Context<'_>, transmits: &[Transmit]) -> Poll<io::Result<usize>> {
        self.sent.lock().unwrap().extend(transmits.iter().cloned());
        Poll::Ready(Ok(transmits.len()))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn max_packet_size(&self) -> usize {
        1472
    }

    fn link_rate_bps(&self) -> u64 {
        10_000_000_000
    }

    fn recv_queue_limit(&self) -> Option<usize> {
        self.limit
    }
}

/// A client on a flooded datapath with one RPC out (to a server that never
/// answers), and the datapath to watch.
fn flooded(limit: Option<usize>) -> (Client, Arc<Flood>, tokio::task::JoinHandle<()>) {
    let dp = Arc::new(Flood {
        local: "10.0.0.1:1000".parse().unwrap(),
        limit,
        sent: Mutex::new(Vec::new()),
    });
    let client =
        Client::from_socket(Socket::with_datapath(dp.clone(), SocketConfig::default()).unwrap());
    let call = tokio::spawn({
        let client = client.clone();
        async move {
            // Fails only when the client is dropped at the end of the test.
            let _ = client
                .call(
                    "10.0.0.2:2000".parse().unwrap(),
                    Bytes::from_static(b"ping"),
                )
                .await;
        }
    });
    (client, dp, call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_backlog_defers_resends() {
    let config = SocketConfig::default();
    // Ten times `resend_after`: without the horizon the driver sends its
    // first RESEND after about one.
    let watch = config.engine.resend_after * 10;
    // A queue of a terabyte: reading never gets through it in the test.
    let (client, dp, call) = flooded(Some(1 << 40));
    tokio::time::sleep(watch).await;
    let m = client.metrics().await.unwrap();
    assert!(
        m.drops() > 10_000,
        "the driver read the flood ({} drops)",
        m.drops()
    );
    assert_eq!(dp.resends(), 0, "RESEND while the response may be queued");
    assert_eq!(m.resends_sent, 0);
    call.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shallow_backlog_only_delays_resends() {
    for limit in [Some(64 << 10), None] {
        let (_client, dp, call) = flooded(limit);
        let mut waited = Duration::ZERO;
        while dp.resends() == 0 {
            assert!(
                waited < Duration::from_secs(20),
                "no RESEND with queue limit {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
            waited += Duration::from_millis(5);
        }
        call.abort();
    }
}
