//! The driver must not judge a peer silent while the peer's packets wait
//! unread in our own datapath.
//!
//! A datapath hands the driver one packet per `poll_recv`, like a socket
//! read in small batches. A client has two RPCs out; its runtime thread
//! stalls (a blocking sleep in a task) for longer than the engine's
//! `resend_after`, and meanwhile both responses arrive, the first in a dozen
//! packets. When the driver runs again its timer is due and all the packets
//! are queued: it must read them before it runs the timer, so both RPCs
//! complete without a single RESEND. (The driver used to read four batches,
//! run the timer, find the second RPC silent and ask for the packet it was
//! about to read.)
//!
//! A second datapath hides what it holds from `poll_recv` (as a socket's
//! readiness does when the runtime has not polled its reactor lately) and
//! gives it only to `try_recv`: the driver must look there before its timer
//! judges anyone silent.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use homa_core::{Endpoint, Event, Instant, Transmit};
use homa_tokio::{Client, Datapath, Incoming, Socket, SocketConfig};

#[derive(Debug, Default)]
struct Wire {
    inbox: VecDeque<Incoming>,
    waker: Option<Waker>,
    sent: Vec<Transmit>,
}

/// One packet per `poll_recv`; sends are recorded. With `stale`,
/// `poll_recv` finds nothing once packets start arriving (stale readiness)
/// and only `try_recv` hands them over, one per call.
#[derive(Debug)]
struct Trickle {
    local: SocketAddr,
    wire: Mutex<Wire>,
    stale: bool,
}

impl Datapath for Trickle {
    fn try_recv(&self, out: &mut Vec<Incoming>) -> io::Result<usize> {
        let mut w = self.wire.lock().unwrap();
        Ok(w.inbox.pop_front().map(|p| out.push(p)).map_or(0, |()| 1))
    }

    fn poll_recv(&self, cx: &mut Context<'_>, out: &mut Vec<Incoming>) -> Poll<io::Result<usize>> {
        let mut w = self.wire.lock().unwrap();
        if self.stale {
            w.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        match w.inbox.pop_front() {
            Some(p) => {
                out.push(p);
                Poll::Ready(Ok(1))
            }
            None => {
                w.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn poll_send(&self, _: &mut Context<'_>, transmits: &[Transmit]) -> Poll<io::Result<usize>> {
        self.wire
            .lock()
            .unwrap()
            .sent
            .extend(transmits.iter().cloned());
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
}

#[tokio::test(flavor = "current_thread")]
async fn packets_queued_in_our_datapath_are_not_silence() {
    two_responses_after_a_stall(false).await;
}

#[tokio::test(flavor = "current_thread")]
async fn packets_hidden_by_stale_readiness_are_not_silence() {
    two_responses_after_a_stall(true).await;
}

async fn two_responses_after_a_stall(stale: bool) {
    let client_addr: SocketAddr = "10.0.0.1:1000".parse().unwrap();
    let server_addr: SocketAddr = "10.0.0.2:2000".parse().unwrap();
    let dp = Arc::new(Trickle {
        local: client_addr,
        wire: Mutex::new(Wire::default()),
        stale,
    });
    let config = SocketConfig::default();
    let resend_after = config.engine.resend_after;
    let client = Client::from_socket(Socket::with_datapath(dp.clone(), config).unwrap());

    // The requests go out, one after the other.
    let mut calls = Vec::new();
    let mut requests: Vec<Transmit> = Vec::new();
    for body in [&b"first"[..], &b"second"[..]] {
        calls.push(tokio::spawn({
            let client = client.clone();
            async move { client.call(server_addr, Bytes::from_static(body)).await }
        }));
        loop {
            tokio::task::yield_now().await;
            let sent = std::mem::take(&mut dp.wire.lock().unwrap().sent);
            if !sent.is_empty() {
                requests.extend(sent);
                break;
            }
        }
    }

    // A real engine answers: the first response in a dozen packets, the
    // second in one.
    let mut server = Endpoint::new(homa_core::Config::default(), server_addr).unwrap();
    for t in &requests {
        server.handle_packet(Instant::ZERO, client_addr, Bytes::from(t.to_vec()));
    }
    let mut rpcs = Vec::new();
    while let Some(ev) = server.poll_event() {
        if let Event::Request { rpc, body } = ev {
            rpcs.push((rpc, body));
        }
    }
    rpcs.sort_by_key(|(_, body)| body.len()); // "first" before "second"
    assert_eq!(rpcs.len(), 2, "the server engine got both requests");
    let bodies = [
        Bytes::from(vec![5u8; 12 * 1400]),
        Bytes::from_static(b"pong"),
    ];
    let mut response = Vec::new();
    for ((rpc, _), body) in rpcs.into_iter().zip(&bodies) {
        server
            .send_response(Instant::ZERO, rpc, body.clone())
            .unwrap();
        // Each response's packets in turn, all of the first before the
        // second.
        for us in 0..1_000u64 {
            while let Some(t) = server.poll_transmit(Instant::from_nanos(us * 1_000)) {
                response.push(t);
            }
        }
    }
    assert!(
        response.len() > 8,
        "more packets than the driver reads per round"
    );

    // All of it arrives while the client's thread is stalled for longer
    // than `resend_after`.
    {
        let mut w = dp.wire.lock().unwrap();
        w.inbox.extend(response.iter().map(|t| Incoming::Packet {
            from: server_addr,
            data: Bytes::from(t.to_vec()),
        }));
        if let Some(waker) = w.waker.take() {
            waker.wake();
        }
    }
    std::thread::sleep(resend_after + Duration::from_millis(2));

    for (call, body) in calls.into_iter().zip(&bodies) {
        let got = call
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("RPC failed ({e}): its response was never read"));
        assert_eq!(&got, body);
    }
    let m = client.metrics().await.unwrap();
    assert_eq!(
        m.resends_sent, 0,
        "RESENDs for packets waiting in our own datapath"
    );
    let resends = dp
        .wire
        .lock()
        .unwrap()
        .sent
        .iter()
        .filter(|t| t.packet_type() == homa_core::wire::PacketType::Resend)
        .count();
    assert_eq!(resends, 0);
}
