//! Each mechanism of the engine alone, with packets and time fed by hand
//! through an in-memory pair.

mod support;

use bytes::Bytes;
use homa_core::wire::PacketType;
use homa_core::{Config, Event, RpcError};
use std::time::Duration;
use support::*;

fn echo_ok(sizes: &[usize], config: Config) {
    let mut p = Pair::new(config);
    let mut want = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let body = pattern(n, i as u64);
        let id = p.call(body.clone());
        want.push((id, body));
    }
    assert!(p.run_until(Duration::from_secs(1), |p| p.responses() == sizes.len()));
    for (id, body) in want {
        assert!(
            p.client_events.iter().any(|e| *e
                == Event::Response {
                    id,
                    body: body.clone()
                }),
            "response for {id:?} ({} bytes) wrong or missing",
            body.len()
        );
    }
    // Acks flow back on the next NEED_ACK; everything is freed eventually.
    assert!(
        p.run_until(Duration::from_secs(2), |p| p.client.metrics().is_idle()
            && p.server.metrics().is_idle())
    );
}

#[test]
fn echo_of_every_size_class() {
    echo_ok(
        &[0, 1, 100, 1416, 1417, 5000, 40_000, 100_000, 1_000_000],
        Config::default(),
    );
}

#[test]
fn response_carries_piggybacked_ack_for_previous_rpc() {
    let mut p = Pair::new(Config::default());
    p.call(Bytes::from_static(b"one"));
    assert!(p.run_until(Duration::from_millis(1), |p| p.responses() == 1));
    assert_eq!(
        p.server.metrics().active_server_rpcs,
        1,
        "server waits for the ack"
    );
    p.call(Bytes::from_static(b"two"));
    assert!(p.run_until(Duration::from_millis(1), |p| p.responses() == 2));
    // The second request carried the first RPC's ack.
    assert_eq!(p.server.metrics().active_server_rpcs, 1);
}

#[test]
fn large_message_is_granted_and_uses_scheduled_priorities() {
    let mut p = Pair::new(Config::default());
    p.auto_respond = Some(Box::new(|_| Bytes::from_static(b"ok")));
    p.call(pattern(500_000, 7));
    assert!(p.run_until(Duration::from_secs(1), |p| p.responses() == 1));
    let m = p.server.metrics();
    assert!(m.grants_sent > 0);
    assert!(m.granted_bytes >= 500_000 - 40_000 - 1416);
}

#[test]
fn lost_last_data_packet_is_resent() {
    let mut p = Pair::new(Config::default());
    let mut dropped = false;
    p.filter = Box::new(move |to_server, t| {
        if to_server && t.packet_type() == PacketType::Data && !dropped {
            let offset = u32::from_be_bytes(t.header()[52..56].try_into().unwrap());
            if offset == 3 * 1416 {
                // The last packet of the 5,000-byte request.
                dropped = true;
                return false;
            }
        }
        true
    });
    let body = pattern(5000, 3);
    p.call(body.clone());
    assert!(p.run_until(Duration::from_secs(1), |p| p.responses() == 1));
    assert!(p.server.metrics().resends_sent >= 1);
    assert!(p.client.metrics().retransmitted_bytes > 0);
    assert!(matches!(&p.client_events[0], Event::Response { body: b, .. } if *b == body));
}

#[test]
fn silent_server_times_out() {
    let config = Config::default();
    let timeout = config.timeout;
    let mut p = Pair::new(config);
    p.filter = Box::new(|to_server, _| !to_server);
    p.call(Bytes::from_static(b"hello"));
    let start = p.now;
    assert!(p.run_until(Duration::from_secs(1), |p| !p.client_events.is_empty()));
    assert!(matches!(
        p.client_events[0],
        Event::Failed {
            error: RpcError::Timeout,
            ..
        }
    ));
    let took = p.now - start;
    assert!(
        took >= timeout && took <= timeout + Duration::from_millis(2),
        "took {took:?}"
    );
    assert_eq!(p.client.metrics().active_client_rpcs, 0);
}

#[test]
fn abort_frees_both_sides() {
    let mut p = Pair::new(Config::default());
    p.auto_respond = None;
    let id = p.call(pattern(3000, 1));
    assert!(p.run_until(Duration::from_millis(1), |p| !p.server_events.is_empty()));
    assert!(p.client.abort(p.now, id));
    assert!(p.run_until(Duration::from_millis(1), |p| p
        .server
        .metrics()
        .active_server_rpcs
        == 0));
    assert!(p.client_events.is_empty(), "an aborted RPC reports nothing");
}

#[test]
fn busy_server_keeps_client_alive() {
    let mut p = Pair::new(Config::default());
    p.auto_respond = None;
    p.call(Bytes::from_static(b"slow"));
    // The application takes 3 timeouts' worth of time; BUSY keeps the client waiting.
    assert!(!p.run_until(Duration::from_millis(300), |p| !p.client_events.is_empty()));
    let Event::Request { rpc, .. } = p.server_events[0].clone() else {
        panic!()
    };
    p.server
        .send_response(p.now, rpc, Bytes::from_static(b"done"))
        .unwrap();
    assert!(p.run_until(Duration::from_millis(10), |p| p.responses() == 1));
    assert!(p.client.metrics().packets_in[PacketType::Busy as usize - 0x10] > 0);
}

#[test]
fn back_to_back_rpcs_take_microseconds_not_ticks() {
    let mut p = Pair::new(Config::default());
    for i in 0..5 {
        let start = p.now;
        p.call(pattern(1000, i));
        assert!(p.run_until(Duration::from_secs(1), |p| p.responses() == i as usize + 1));
        let took = p.now - start;
        assert!(
            took < Duration::from_micros(50),
            "RPC {i} took {took:?}: {:?}",
            p.sent
        );
        p.sent.clear();
    }
}
