//! One test per row of the bad-input table in the `homa-core` crate docs:
//! what the engine does with each kind of bad packet, and the counter that
//! records it. No bad packet may create state the table does not mention.

mod support;

use bytes::Bytes;
use homa_core::wire::{
    AckRecord, AckRepr, Common, CutoffsRepr, DataRepr, GrantRepr, PacketType, Repr, ResendRepr,
    MAX_ACKS,
};
use homa_core::{Config, Endpoint, Event, Instant, Metrics};
use std::net::SocketAddr;
use std::time::Duration;
use support::*;

const NOW: Instant = Instant::ZERO;

fn server() -> (Endpoint, SocketAddr, SocketAddr) {
    let s = addr(SERVER);
    let c = addr(CLIENT);
    (Endpoint::new(Config::default(), s).unwrap(), s, c)
}

fn common(sender_id: u64) -> Common {
    Common {
        sport: 40000,
        dport: 99,
        sender_id,
    }
}

fn emit(repr: Repr, payload: &[u8]) -> Bytes {
    let mut v = vec![0u8; repr.header_len()];
    repr.emit(&mut v);
    v.extend_from_slice(payload);
    Bytes::from(v)
}

fn data(id: u64, message_length: u32, offset: u32, payload: &[u8]) -> Bytes {
    emit(
        Repr::Data(DataRepr {
            common: common(id),
            message_length,
            incoming: message_length.min(40_000),
            offset,
            ..DataRepr::default()
        }),
        payload,
    )
}

fn out_types(ep: &mut Endpoint) -> Vec<PacketType> {
    std::iter::from_fn(|| ep.poll_transmit(NOW))
        .map(|t| t.packet_type())
        .collect()
}

/// Feed one packet and return the metrics before and after.
fn feed(ep: &mut Endpoint, from: SocketAddr, pkt: Bytes) -> (Metrics, Metrics) {
    let before = ep.metrics();
    ep.handle_packet(NOW, from, pkt);
    (before, ep.metrics())
}

fn assert_no_new_state(before: &Metrics, after: &Metrics) {
    assert_eq!(before.active_server_rpcs, after.active_server_rpcs);
    assert_eq!(before.active_client_rpcs, after.active_client_rpcs);
    assert_eq!(before.active_peers, after.active_peers);
    assert_eq!(before.buffered_bytes, after.buffered_bytes);
}

#[test]
fn shorter_than_common_header_is_malformed() {
    let (mut ep, _, c) = server();
    let (b, a) = feed(&mut ep, c, Bytes::from_static(&[0x10; 27]));
    assert_eq!(a.drops_malformed, b.drops_malformed + 1);
    assert_no_new_state(&b, &a);
    assert!(out_types(&mut ep).is_empty());
}

#[test]
fn shorter_than_type_header_is_malformed() {
    let (mut ep, _, c) = server();
    for ty in [
        PacketType::Data,
        PacketType::Grant,
        PacketType::Resend,
        PacketType::Cutoffs,
        PacketType::Ack,
    ] {
        let mut pkt = emit(Repr::Busy(common(2)), &[]).to_vec();
        pkt[11] = ty as u8;
        pkt.resize(ty.header_len() - 1, 0);
        let (b, a) = feed(&mut ep, c, Bytes::from(pkt));
        assert_eq!(a.drops_malformed, b.drops_malformed + 1, "{ty:?}");
        assert_no_new_state(&b, &a);
    }
}

#[test]
fn unknown_type_is_malformed() {
    let (mut ep, _, c) = server();
    let mut pkt = data(2, 10, 0, b"0123456789").to_vec();
    pkt[11] = 0x42;
    let (b, a) = feed(&mut ep, c, Bytes::from(pkt));
    assert_eq!(a.drops_malformed, b.drops_malformed + 1);
    assert_no_new_state(&b, &a);
}

#[test]
fn ack_with_more_than_five_acks_is_malformed() {
    let (mut ep, _, c) = server();
    let mut pkt = emit(
        Repr::Ack(AckRepr {
            common: common(2),
            num_acks: 0,
            acks: [AckRecord::default(); MAX_ACKS],
        }),
        &[],
    )
    .to_vec();
    pkt[29] = 6;
    let (b, a) = feed(&mut ep, c, Bytes::from(pkt));
    assert_eq!(a.drops_malformed, b.drops_malformed + 1);
}

#[test]
fn data_beyond_message_length_is_bad_offset() {
    let (mut ep, _, c) = server();
    let (b, a) = feed(&mut ep, c, data(2, 5, 0, b"0123456789"));
    assert_eq!(a.drops_bad_offset, b.drops_bad_offset + 1);
    assert_no_new_state(&b, &a);
    // Empty payload in a non-empty message.
    let (b, a) = feed(&mut ep, c, data(4, 100, 0, b""));
    assert_eq!(a.drops_bad_offset, b.drops_bad_offset + 1);
    assert_no_new_state(&b, &a);
    // Offset near u32::MAX must not overflow.
    let (b, a) = feed(&mut ep, c, data(6, 100, u32::MAX - 2, b"0123456789"));
    assert_eq!(a.drops_bad_offset, b.drops_bad_offset + 1);
}

#[test]
fn data_with_changed_message_length_is_bad_offset() {
    let (mut ep, _, c) = server();
    ep.handle_packet(NOW, c, data(2, 3000, 0, &[1; 1416]));
    let (b, a) = feed(&mut ep, c, data(2, 4000, 1416, &[1; 1416]));
    assert_eq!(a.drops_bad_offset, b.drops_bad_offset + 1);
    assert_eq!(a.buffered_bytes, b.buffered_bytes);
}

#[test]
fn data_past_the_grant_is_bad_offset_and_allocates_nothing() {
    let (mut ep, _, c) = server();
    // A first packet claiming a 1 MB message but sitting at 900 KB.
    let (b, a) = feed(&mut ep, c, data(2, 1_000_000, 900_000, &[1; 10]));
    assert_eq!(a.drops_bad_offset, b.drops_bad_offset + 1);
    assert_no_new_state(&b, &a);
}

#[test]
fn data_over_max_message_length_is_too_long_and_allocates_nothing() {
    let (mut ep, _, c) = server();
    let (b, a) = feed(&mut ep, c, data(2, 1_000_001, 0, &[1; 10]));
    assert_eq!(a.drops_too_long, b.drops_too_long + 1);
    assert_no_new_state(&b, &a);
}

#[test]
fn claimed_length_is_never_allocated() {
    let (mut ep, _, c) = server();
    let (_, a) = feed(&mut ep, c, data(2, 1_000_000, 0, &[1; 10]));
    assert_eq!(a.active_server_rpcs, 1);
    assert_eq!(
        a.buffered_bytes, 10,
        "buffer holds what arrived, not what was claimed"
    );
}

#[test]
fn data_for_unknown_client_rpc_is_answered_with_rpc_unknown() {
    let (mut ep, _, c) = server();
    // Odd sender id: a response from "server" c for our (nonexistent) client RPC 2.
    let (b, a) = feed(&mut ep, c, data(3, 10, 0, b"0123456789"));
    assert_eq!(a.drops_unknown_rpc, b.drops_unknown_rpc + 1);
    assert_no_new_state(&b, &a);
    assert_eq!(out_types(&mut ep), vec![PacketType::RpcUnknown]);
}

#[test]
fn grant_busy_rpc_unknown_for_unknown_rpc_are_dropped() {
    let (mut ep, _, c) = server();
    for repr in [
        Repr::Grant(GrantRepr {
            common: common(2),
            offset: 100_000,
            priority: 3,
        }),
        Repr::Busy(common(2)),
        Repr::RpcUnknown(common(2)),
        Repr::Grant(GrantRepr {
            common: common(3),
            offset: 100_000,
            priority: 3,
        }),
    ] {
        let (b, a) = feed(&mut ep, c, emit(repr, &[]));
        assert_eq!(a.drops_unknown_rpc, b.drops_unknown_rpc + 1, "{repr:?}");
        assert_no_new_state(&b, &a);
    }
    assert!(out_types(&mut ep).is_empty());
}

#[test]
fn resend_for_unknown_rpc_is_answered_with_rpc_unknown() {
    let (mut ep, _, c) = server();
    let (b, a) = feed(
        &mut ep,
        c,
        emit(
            Repr::Resend(ResendRepr {
                common: common(2),
                offset: 0,
                length: 100,
                priority: 7,
            }),
            &[],
        ),
    );
    assert_no_new_state(&b, &a);
    assert_eq!(out_types(&mut ep), vec![PacketType::RpcUnknown]);
}

#[test]
fn cutoffs_from_unknown_peer_create_no_state() {
    let (mut ep, _, c) = server();
    let repr = Repr::Cutoffs(CutoffsRepr {
        common: common(0),
        unsched_cutoffs: [1; 8],
        cutoff_version: 9,
    });
    let (b, a) = feed(&mut ep, c, emit(repr, &[]));
    assert_eq!(a.drops_unknown_rpc, b.drops_unknown_rpc + 1);
    assert_no_new_state(&b, &a);
}

#[test]
fn duplicate_data_is_dropped() {
    let (mut ep, _, c) = server();
    ep.handle_packet(NOW, c, data(2, 3000, 0, &[1; 1416]));
    let (b, a) = feed(&mut ep, c, data(2, 3000, 0, &[1; 1416]));
    assert_eq!(a.drops_duplicate, b.drops_duplicate + 1);
    assert_eq!(a.buffered_bytes, b.buffered_bytes);
}

#[test]
fn data_for_delivered_unacked_request_is_not_delivered_again() {
    let (mut ep, _, c) = server();
    ep.handle_packet(NOW, c, data(2, 5, 0, b"hello"));
    assert!(matches!(ep.poll_event(), Some(Event::Request { .. })));
    let (b, a) = feed(&mut ep, c, data(2, 5, 0, b"hello"));
    assert_eq!(a.drops_duplicate, b.drops_duplicate + 1);
    assert_eq!(ep.poll_event(), None);
}

#[test]
fn data_for_acknowledged_request_is_stale() {
    let mut p = Pair::new(Config::default());
    p.call(Bytes::from_static(b"once"));
    assert!(p.run_until(Duration::from_millis(1), |p| p.responses() == 1));
    // The client acks on the next request; then replay the first request.
    let first = p.client.metrics().packets_out;
    let _ = first;
    p.call(Bytes::from_static(b"twice"));
    assert!(p.run_until(Duration::from_millis(1), |p| p.responses() == 2));
    let Event::Request { rpc, .. } = p.server_events[0].clone() else {
        panic!()
    };
    let replay = data(rpc.id ^ 1, 4, 0, b"once");
    let before = p.server.metrics();
    p.server.handle_packet(p.now, addr(CLIENT), replay);
    let after = p.server.metrics();
    assert_eq!(after.drops_stale, before.drops_stale + 1);
    assert_eq!(after.requests_delivered, before.requests_delivered);
}

#[test]
fn ack_for_nonexistent_rpc_is_ignored() {
    let (mut ep, _, c) = server();
    let repr = Repr::Ack(AckRepr {
        common: common(2),
        num_acks: 1,
        acks: [AckRecord {
            client_id: 4,
            server_port: 99,
        }; MAX_ACKS],
    });
    let (b, a) = feed(&mut ep, c, emit(repr, &[]));
    assert_eq!(a.drops_unknown_rpc, b.drops_unknown_rpc + 1);
    assert_no_new_state(&b, &a);
    assert!(out_types(&mut ep).is_empty());
}

#[test]
fn data_over_buffer_limit_is_dropped_and_bounded() {
    let config = Config {
        max_buffered_bytes: 10_000,
        ..Config::default()
    };
    let mut ep = Endpoint::new(config, addr(SERVER)).unwrap();
    let c = addr(CLIENT);
    let mut drops = 0;
    for id in 0..20u64 {
        let (b, a) = feed(&mut ep, c, data(2 * id + 2, 100_000, 0, &[7; 1416]));
        drops += a.drops_buffer_limit - b.drops_buffer_limit;
        assert!(a.buffered_bytes <= 10_000);
    }
    assert_eq!(drops, 20 - 7, "7 packets of 1416 bytes fit in 10,000");
}

#[test]
fn data_beyond_rpc_limit_is_dropped() {
    let config = Config {
        max_rpcs: 4,
        ..Config::default()
    };
    let mut ep = Endpoint::new(config, addr(SERVER)).unwrap();
    let c = addr(CLIENT);
    for id in 0..10u64 {
        ep.handle_packet(NOW, c, data(2 * id + 2, 5000, 0, &[7; 1416]));
    }
    let m = ep.metrics();
    assert_eq!(m.active_server_rpcs, 4);
    assert_eq!(m.drops_rpc_limit, 6);
}

#[test]
fn freeze_is_ignored() {
    let (mut ep, _, c) = server();
    let (b, a) = feed(&mut ep, c, emit(Repr::Freeze(common(2)), &[]));
    assert_eq!(a.drops_ignored, b.drops_ignored + 1);
    assert_no_new_state(&b, &a);
}
