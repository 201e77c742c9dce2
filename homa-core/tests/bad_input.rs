//! The "Bad input" table of the `homa-core` crate docs, one test per row
//! (`rowNN_…`, in table order), plus resource-bound tests.
//!
//! Each row test feeds crafted packets to an `Endpoint` through
//! `handle_packet` and checks
//! (a) what the engine does: the packet is dropped (nothing to transmit) or
//!     answered with the documented packet, read back from `poll_transmit`
//!     by type and header bytes;
//! (b) that exactly the documented counter of `Metrics` went up by one, and
//!     no other drop counter moved;
//! (c) that no state was created where the table says so (the gauges
//!     `active_server_rpcs`, `active_client_rpcs`, `active_peers`,
//!     `buffered_bytes`, `incoming_messages`).
//!
//! Live RPCs to aim at come from a real exchange in the `Pair` harness, or
//! from packets fed to a lone endpoint by hand.

mod support;

use bytes::Bytes;
use homa_core::wire::{
    AckRecord, AckRepr, Common, CommonHeader, CutoffsRepr, DataRepr, GrantPacket, GrantRepr,
    PacketType, Repr, ResendRepr, MAX_ACKS,
};
use homa_core::{Config, Endpoint, Event, Instant, Metrics, Transmit};
use std::net::SocketAddr;
use std::time::Duration;
use support::*;

const NOW: Instant = Instant::ZERO;
const CLIENT_PORT: u16 = 40000;
const SERVER_PORT: u16 = 99;
/// A third party on the network.
const STRANGER: &str = "10.0.0.66:40000";

// ----- building packets -------------------------------------------------------

/// Common header of a packet travelling client → server (`to_server`) or
/// server → client; `sender_id` is the id as the sender knows it.
fn common(to_server: bool, sender_id: u64) -> Common {
    let (sport, dport) = if to_server {
        (CLIENT_PORT, SERVER_PORT)
    } else {
        (SERVER_PORT, CLIENT_PORT)
    };
    Common {
        sport,
        dport,
        sender_id,
    }
}

/// A DATA header from a client to a server. `cutoff_version` matches the
/// default config, so no CUTOFFS packet is owed in return.
fn data_repr(client_id: u64, message_length: u32, incoming: u32, offset: u32) -> DataRepr {
    DataRepr {
        common: common(true, client_id),
        message_length,
        incoming,
        offset,
        cutoff_version: Config::default().cutoff_version,
        ..DataRepr::default()
    }
}

/// A request DATA packet (client id is even).
fn data(client_id: u64, message_length: u32, incoming: u32, offset: u32, payload: &[u8]) -> Bytes {
    packet(
        Repr::Data(data_repr(client_id, message_length, incoming, offset)),
        payload,
    )
}

/// A whole small request in one packet.
fn request(client_id: u64, body: &[u8]) -> Bytes {
    data(client_id, body.len() as u32, body.len() as u32, 0, body)
}

fn ack_packet(client_id: u64, acks: &[AckRecord]) -> Bytes {
    let mut slots = [AckRecord::default(); MAX_ACKS];
    slots[..acks.len()].copy_from_slice(acks);
    packet(
        Repr::Ack(AckRepr {
            common: common(true, client_id),
            num_acks: acks.len() as u8,
            acks: slots,
        }),
        &[],
    )
}

// ----- observing the engine ---------------------------------------------------

fn server_endpoint(config: Config) -> Endpoint {
    Endpoint::new(Config { seed: 2, ..config }, addr(SERVER)).unwrap()
}

fn client_endpoint(config: Config) -> Endpoint {
    Endpoint::new(Config { seed: 1, ..config }, addr(CLIENT)).unwrap()
}

/// Feed one packet; the metrics before and after.
fn inject(ep: &mut Endpoint, now: Instant, from: SocketAddr, pkt: Bytes) -> (Metrics, Metrics) {
    let before = ep.metrics();
    ep.handle_packet(now, from, pkt);
    (before, ep.metrics())
}

fn drain(ep: &mut Endpoint, now: Instant) -> Vec<Transmit> {
    std::iter::from_fn(|| ep.poll_transmit(now)).collect()
}

fn types(ts: &[Transmit]) -> Vec<PacketType> {
    ts.iter().map(Transmit::packet_type).collect()
}

fn header_common(t: &Transmit) -> Common {
    CommonHeader::new_checked(t.header()).unwrap().common()
}

fn drop_counters(m: &Metrics) -> [(&'static str, u64); 9] {
    [
        ("drops_malformed", m.drops_malformed),
        ("drops_bad_offset", m.drops_bad_offset),
        ("drops_too_long", m.drops_too_long),
        ("drops_unknown_rpc", m.drops_unknown_rpc),
        ("drops_duplicate", m.drops_duplicate),
        ("drops_buffer_limit", m.drops_buffer_limit),
        ("drops_rpc_limit", m.drops_rpc_limit),
        ("drops_stale", m.drops_stale),
        ("drops_ignored", m.drops_ignored),
    ]
}

/// `counter` went up by exactly one and no other drop counter moved.
#[track_caller]
fn assert_counted(before: &Metrics, after: &Metrics, counter: &str) {
    let b = drop_counters(before);
    let a = drop_counters(after);
    assert!(
        b.iter().any(|(n, _)| *n == counter),
        "no counter named {counter}"
    );
    for ((name, vb), (_, va)) in b.iter().zip(a.iter()) {
        let want = if *name == counter { vb + 1 } else { *vb };
        assert_eq!(*va, want, "{name}: before {vb}, after {va}");
    }
}

/// No drop counter moved.
#[track_caller]
fn assert_not_counted(before: &Metrics, after: &Metrics) {
    assert_eq!(drop_counters(before), drop_counters(after));
}

/// No RPC, peer or buffer was created (or freed).
#[track_caller]
fn assert_same_state(before: &Metrics, after: &Metrics) {
    assert_eq!(
        before.active_server_rpcs, after.active_server_rpcs,
        "server RPCs"
    );
    assert_eq!(
        before.active_client_rpcs, after.active_client_rpcs,
        "client RPCs"
    );
    assert_eq!(before.active_peers, after.active_peers, "peers");
    assert_eq!(
        before.buffered_bytes, after.buffered_bytes,
        "buffered bytes"
    );
    assert_eq!(
        before.incoming_messages, after.incoming_messages,
        "incoming messages"
    );
}

/// The packet was dropped and counted in `counter`: nothing to send, no new
/// state.
#[track_caller]
fn assert_dropped_without_trace(
    ep: &mut Endpoint,
    now: Instant,
    before: &Metrics,
    after: &Metrics,
    counter: &str,
) {
    assert_counted(before, after, counter);
    assert_same_state(before, after);
    assert_eq!(
        types(&drain(ep, now)),
        vec![],
        "a dropped packet is not answered"
    );
}

/// A pair that has finished one echo RPC: the server still holds it (in
/// `ServerOutgoing`, waiting for the client's ack). Returns the client id.
fn pair_after_one_exchange(body: &'static [u8]) -> (Pair, u64) {
    let mut p = Pair::new(Config::default());
    let id = p.call(Bytes::from_static(body));
    assert!(p.run_until(Duration::from_millis(1), |p| p.responses() == 1));
    while p.step() {}
    assert_eq!(
        p.server.metrics().active_server_rpcs,
        1,
        "waiting for the ack"
    );
    (p, id.0)
}

// ----- one test per row -------------------------------------------------------

/// | shorter than the 28-byte common header | dropped | `drops_malformed` |
#[test]
fn row01_shorter_than_common_header_is_dropped_as_malformed() {
    let mut ep = server_endpoint(Config::default());
    let whole = request(2, b"hello");
    for len in [0usize, 1, 11, 12, 27] {
        let (b, a) = inject(&mut ep, NOW, addr(CLIENT), whole.slice(..len));
        assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_malformed");
        assert_eq!(a.packets_in, b.packets_in, "not counted as any type");
    }
    assert_eq!(ep.poll_event(), None);
    assert!(ep.metrics().is_idle());
}

/// | shorter than its type's header | dropped | `drops_malformed` |
#[test]
fn row02_shorter_than_its_type_header_is_dropped_as_malformed() {
    // Aim every truncated packet at a live exchange: a server holding a
    // finished RPC, whose client could GRANT, RESEND, ACK, send CUTOFFS or
    // DATA to it.
    let (mut p, id) = pair_after_one_exchange(b"hi");
    let c = addr(CLIENT);
    let full = [
        data(id, 3000, 3000, 0, &[7; 1416]),
        packet(
            Repr::Grant(GrantRepr {
                common: common(true, id),
                offset: 1000,
                priority: 2,
            }),
            &[],
        ),
        packet(
            Repr::Resend(ResendRepr {
                common: common(true, id),
                offset: 0,
                length: 2,
                priority: 7,
            }),
            &[],
        ),
        packet(
            Repr::Cutoffs(CutoffsRepr {
                common: common(true, 0),
                unsched_cutoffs: [u32::MAX, 0, 0, 0, 0, 0, 0, 0],
                cutoff_version: 7,
            }),
            &[],
        ),
        ack_packet(id, &[]),
    ];
    for pkt in &full {
        let ty = PacketType::from_u8(pkt[11]).unwrap();
        let need = ty.header_len();
        assert!(need > 28);
        let (b, a) = inject(&mut p.server, p.now, c, pkt.slice(..need - 1));
        assert_dropped_without_trace(&mut p.server, p.now, &b, &a, "drops_malformed");
        assert_eq!(a.packets_in, b.packets_in, "{}", ty.name());
    }
    // The RPC the ACK was aimed at is still there; the full ACK frees it.
    assert_eq!(p.server.metrics().active_server_rpcs, 1);
    p.server.handle_packet(p.now, c, full[4].clone());
    assert_eq!(p.server.metrics().active_server_rpcs, 0);
}

/// | unknown type byte | dropped | `drops_malformed` |
#[test]
fn row03_unknown_type_byte_is_dropped_as_malformed() {
    let mut ep = server_endpoint(Config::default());
    let good = request(2, b"hello");
    for ty in [0x00u8, 0x01, 0x0f, 0x19, 0x42, 0xff] {
        let mut bad = good.to_vec();
        bad[11] = ty;
        let (b, a) = inject(&mut ep, NOW, addr(CLIENT), Bytes::from(bad));
        assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_malformed");
        assert_eq!(a.packets_in, b.packets_in);
    }
    assert_eq!(ep.poll_event(), None, "nothing was delivered");
    // The same bytes with the DATA type are a request.
    ep.handle_packet(NOW, addr(CLIENT), good);
    assert!(matches!(ep.poll_event(), Some(Event::Request { body, .. }) if &body[..] == b"hello"));
}

/// | ACK with more than 5 acks | dropped | `drops_malformed` |
#[test]
fn row04_ack_with_more_than_five_acks_is_dropped_as_malformed() {
    let (mut p, id) = pair_after_one_exchange(b"hi");
    let c = addr(CLIENT);
    let good = ack_packet(
        id,
        &[AckRecord {
            client_id: id,
            server_port: SERVER_PORT,
        }],
    );
    for num_acks in [6u16, 7, 0x0100, u16::MAX] {
        let mut bad = good.to_vec();
        bad[28..30].copy_from_slice(&num_acks.to_be_bytes());
        let (b, a) = inject(&mut p.server, p.now, c, Bytes::from(bad));
        assert_dropped_without_trace(&mut p.server, p.now, &b, &a, "drops_malformed");
        assert_eq!(a.active_server_rpcs, 1, "the RPC was not acked");
    }
    // The well-formed ACK does free it.
    let (b, a) = inject(&mut p.server, p.now, c, good);
    assert_not_counted(&b, &a);
    assert_eq!(a.active_server_rpcs, 0);
}

/// | DATA whose offset + length reach past its message length, or an empty
/// payload in a non-empty message | dropped | `drops_bad_offset` |
#[test]
fn row05_data_reaching_past_message_length_or_empty_is_bad_offset() {
    let mut ep = server_endpoint(Config::default());
    let c = addr(CLIENT);
    for pkt in [
        // 10 bytes in a 5-byte message.
        data(2, 5, 5, 0, b"0123456789"),
        // Ends one byte past the end.
        data(4, 3000, 3000, 1585, &[1; 1416]),
        // offset + length overflows u32.
        data(6, 100, 100, u32::MAX - 2, b"0123456789"),
        data(8, 1_000_000, 40_000, u32::MAX, b"x"),
        // Empty payload in a non-empty message, at its start and at its end.
        data(10, 100, 100, 0, b""),
        data(12, 100, 100, 100, b""),
    ] {
        let (b, a) = inject(&mut ep, NOW, c, pkt);
        assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_bad_offset");
    }
    // Against a live incoming message: its state is untouched.
    ep.handle_packet(NOW, c, data(20, 3000, 3000, 0, &[1; 1416]));
    let (b, a) = inject(&mut ep, NOW, c, data(20, 3000, 3000, 2000, &[2; 1416]));
    assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_bad_offset");
    let (b, a) = inject(&mut ep, NOW, c, data(20, 3000, 3000, 1416, b""));
    assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_bad_offset");
    // The message still completes normally.
    ep.handle_packet(NOW, c, data(20, 3000, 3000, 1416, &[2; 1584]));
    let Some(Event::Request { body, .. }) = ep.poll_event() else {
        panic!("request expected")
    };
    assert_eq!(body.len(), 3000);
    assert!(body[..1416].iter().all(|&x| x == 1) && body[1416..].iter().all(|&x| x == 2));
}

/// | DATA whose message length differs from the message's first packet |
/// dropped | `drops_bad_offset` |
#[test]
fn row06_data_with_changed_message_length_is_bad_offset() {
    let mut ep = server_endpoint(Config::default());
    let c = addr(CLIENT);
    ep.handle_packet(NOW, c, data(2, 3000, 3000, 0, &[1; 1416]));
    let _ = drain(&mut ep, NOW);
    for other_length in [2832u32, 4000, 1_000_000] {
        let pkt = data(2, other_length, 3000, 1416, &[9; 1416]);
        let (b, a) = inject(&mut ep, NOW, c, pkt);
        assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_bad_offset");
    }
    assert_eq!(ep.poll_event(), None);
    // The rest, with the first packet's length, completes the message.
    ep.handle_packet(NOW, c, data(2, 3000, 3000, 1416, &[2; 1416]));
    ep.handle_packet(NOW, c, data(2, 3000, 3000, 2832, &[3; 168]));
    let Some(Event::Request { body, .. }) = ep.poll_event() else {
        panic!("request expected")
    };
    assert_eq!(body.len(), 3000);
    assert_eq!(
        &body[1416..1420],
        &[2, 2, 2, 2],
        "the bad packet left no bytes"
    );
}

/// | DATA starting at or past what the receiver granted (or, for a message's
/// first packet, past its unscheduled claim capped at `max_incoming`) |
/// dropped; the buffer never grows on a claim | `drops_bad_offset` |
#[test]
fn row07_data_past_the_grant_is_bad_offset() {
    let c = addr(CLIENT);
    let config = Config::default();
    let max_incoming = config.max_incoming;

    // A first packet at its unscheduled claim (40,000), or far past it.
    let mut ep = server_endpoint(config.clone());
    for (id, incoming, offset) in [
        (2u64, 40_000u32, 40_000u32),
        (4, 40_000, 900_000),
        (6, 0, 1416),
        // The claim is believed only up to max_incoming.
        (8, u32::MAX, max_incoming),
        (10, 1_000_000, 999_990),
    ] {
        let pkt = data(id, 1_000_000, incoming, offset, &[5; 10]);
        let (b, a) = inject(&mut ep, NOW, c, pkt);
        assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_bad_offset");
    }

    // A live message: after its first packet the receiver grants up to G;
    // a packet starting at G or beyond is dropped and the buffer keeps its
    // size.
    ep.handle_packet(NOW, c, data(20, 1_000_000, 40_000, 0, &[1; 1416]));
    let grants: Vec<u32> = drain(&mut ep, NOW)
        .iter()
        .filter(|t| t.packet_type() == PacketType::Grant)
        .map(|t| {
            assert_eq!(header_common(t).sender_id, 21, "server's id for the RPC");
            GrantPacket::new_checked(t.header()).unwrap().offset()
        })
        .collect();
    let granted = grants.iter().copied().max().unwrap_or(40_000).max(40_000);
    assert!(granted < 1_000_000);
    for offset in [granted, granted + 1416, 999_000] {
        let pkt = data(20, 1_000_000, 40_000, offset, &[2; 1000]);
        let (b, a) = inject(&mut ep, NOW, c, pkt);
        assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_bad_offset");
        assert_eq!(a.buffered_bytes, 1416);
    }
    // Just below the grant is accepted.
    let (b, a) = inject(
        &mut ep,
        NOW,
        c,
        data(20, 1_000_000, 40_000, granted - 1000, &[2; 1000]),
    );
    assert_not_counted(&b, &a);
    assert!(a.buffered_bytes > b.buffered_bytes);
    assert!(a.buffered_bytes <= u64::from(granted));
}

/// | DATA with a message length over `max_message_length` | dropped; nothing
/// allocated | `drops_too_long` |
#[test]
fn row08_data_over_max_message_length_is_too_long() {
    let mut ep = server_endpoint(Config::default());
    let c = addr(CLIENT);
    for (id, len) in [(2u64, 1_000_001u32), (4, 40_000_000), (6, u32::MAX)] {
        let pkt = data(id, len, len, 0, &[1; 10]);
        let (b, a) = inject(&mut ep, NOW, c, pkt);
        assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_too_long");
    }
    // A whole (large) packet claiming to be a complete message too long.
    let (b, a) = inject(&mut ep, NOW, c, data(8, 1_000_001, 0, 0, &[1; 1416]));
    assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_too_long");
    assert!(ep.metrics().is_idle());
}

/// | DATA for an unknown client RPC (e.g. one aborted here) | dropped;
/// answered with RPC_UNKNOWN so the server frees its side |
/// `drops_unknown_rpc` |
#[test]
fn row09_data_for_unknown_client_rpc_is_answered_with_rpc_unknown() {
    let mut p = Pair::new(Config::default());
    p.auto_respond = None;
    let id = p.call(Bytes::from_static(b"question"));
    assert!(p.run_until(Duration::from_millis(1), |p| p.server_events.len() == 1));
    let Event::Request { rpc, .. } = p.server_events[0].clone() else {
        panic!("request expected")
    };
    // The client aborts; its RPC_UNKNOWN is lost.
    assert!(p.client.abort(p.now, id));
    let lost = drain(&mut p.client, p.now);
    assert_eq!(types(&lost), vec![PacketType::RpcUnknown]);
    // The server answers anyway.
    p.server
        .send_response(p.now, rpc, Bytes::from_static(b"answer"))
        .unwrap();
    let response = drain(&mut p.server, p.now);
    assert_eq!(types(&response), vec![PacketType::Data]);

    let (b, a) = inject(
        &mut p.client,
        p.now,
        addr(SERVER),
        Bytes::from(response[0].to_vec()),
    );
    assert_counted(&b, &a, "drops_unknown_rpc");
    assert_same_state(&b, &a);
    assert_eq!(a.responses_delivered, b.responses_delivered);
    assert_eq!(p.client.poll_event(), None);
    let answer = drain(&mut p.client, p.now);
    assert_eq!(types(&answer), vec![PacketType::RpcUnknown]);
    let t = &answer[0];
    assert_eq!(t.destination, addr(SERVER));
    assert_eq!(t.header().len(), 28);
    assert_eq!(
        header_common(t),
        Common {
            sport: CLIENT_PORT,
            dport: SERVER_PORT,
            sender_id: id.0,
        },
        "RPC_UNKNOWN names the RPC by the client's id"
    );
    // It makes the server free its side.
    assert_eq!(p.server.metrics().active_server_rpcs, 1);
    p.server
        .handle_packet(p.now, addr(CLIENT), Bytes::from(t.to_vec()));
    assert_eq!(p.server.metrics().active_server_rpcs, 0);

    // An id this client never used gets the same answer.
    let mut lone = client_endpoint(Config::default());
    let response = packet(
        Repr::Data(DataRepr {
            common: common(false, 0x1235),
            message_length: 5,
            incoming: 5,
            cutoff_version: 1,
            ..DataRepr::default()
        }),
        b"hello",
    );
    let (b, a) = inject(&mut lone, NOW, addr(SERVER), response);
    assert_counted(&b, &a, "drops_unknown_rpc");
    assert_same_state(&b, &a);
    let answer = drain(&mut lone, NOW);
    assert_eq!(types(&answer), vec![PacketType::RpcUnknown]);
    assert_eq!(header_common(&answer[0]).sender_id, 0x1234);
}

/// | GRANT, BUSY or RPC_UNKNOWN for an unknown RPC | dropped |
/// `drops_unknown_rpc` |
#[test]
fn row10_grant_busy_rpc_unknown_for_unknown_rpc_are_dropped() {
    // A client with one RPC in flight (a large request, so GRANTs matter).
    let mut p = Pair::new(Config::default());
    p.auto_respond = None;
    let id = p.call(pattern(200_000, 1)).0;
    // Let the pacer release every unscheduled packet (time moves in 1 µs
    // steps), so that anything drained later was caused by the injected
    // packet.
    let mut now = p.now;
    let mut sent = 0;
    for _ in 0..1000 {
        now += Duration::from_micros(1);
        sent += drain(&mut p.client, now).len();
    }
    assert_eq!(
        sent, 29,
        "40,000 unscheduled bytes (rounded up) in 1416-byte packets"
    );
    let server = addr(SERVER);
    let stranger = addr(STRANGER);
    let grant = |sender_id| {
        packet(
            Repr::Grant(GrantRepr {
                common: common(false, sender_id),
                offset: 200_000,
                priority: 3,
            }),
            &[],
        )
    };
    let cases = [
        // Ids the client never used (as the server would name them: odd).
        (server, grant(id ^ 0x1001)),
        (server, packet(Repr::Busy(common(false, id ^ 0x1001)), &[])),
        (
            server,
            packet(Repr::RpcUnknown(common(false, id ^ 0x1001)), &[]),
        ),
        // The live RPC's id, but from someone who is not its server.
        (stranger, grant(id ^ 1)),
        (stranger, packet(Repr::Busy(common(false, id ^ 1)), &[])),
        (
            stranger,
            packet(Repr::RpcUnknown(common(false, id ^ 1)), &[]),
        ),
        // Server-side ids (a client id from the wire): no such server RPC.
        (server, grant(id)),
        (server, packet(Repr::Busy(common(false, id)), &[])),
        (server, packet(Repr::RpcUnknown(common(false, id)), &[])),
    ];
    for (from, pkt) in cases {
        let (b, a) = inject(&mut p.client, now, from, pkt);
        assert_dropped_without_trace(&mut p.client, now, &b, &a, "drops_unknown_rpc");
        assert_eq!(a.restarts, b.restarts, "no restart");
        assert_eq!(a.outgoing_messages, b.outgoing_messages);
    }
    // The real server's GRANT for the real id is accepted (and lets more
    // data go).
    let (b, a) = inject(&mut p.client, now, server, grant(id ^ 1));
    assert_not_counted(&b, &a);
    assert!(types(&drain(&mut p.client, now)).contains(&PacketType::Data));
}

/// | RESEND for an unknown RPC | answered with RPC_UNKNOWN (the protocol's
/// answer) | — |
#[test]
fn row11_resend_for_unknown_rpc_is_answered_with_rpc_unknown() {
    let mut ep = server_endpoint(Config::default());
    // From a client, naming its client id 0x40 (the server's would be 0x41).
    let resend = |sender_id, to_server| {
        packet(
            Repr::Resend(ResendRepr {
                common: common(to_server, sender_id),
                offset: 0,
                length: 10_000,
                priority: 7,
            }),
            &[],
        )
    };
    let (b, a) = inject(&mut ep, NOW, addr(CLIENT), resend(0x40, true));
    assert_not_counted(&b, &a);
    assert_same_state(&b, &a);
    let out = drain(&mut ep, NOW);
    assert_eq!(types(&out), vec![PacketType::RpcUnknown]);
    assert_eq!(out[0].destination, addr(CLIENT));
    assert_eq!(out[0].header().len(), 28);
    assert_eq!(out[0].header()[11], 0x13);
    assert_eq!(
        header_common(&out[0]),
        Common {
            sport: SERVER_PORT,
            dport: CLIENT_PORT,
            sender_id: 0x41,
        }
    );

    // The same from a server about a client RPC we do not have.
    let mut ep = client_endpoint(Config::default());
    let (b, a) = inject(&mut ep, NOW, addr(SERVER), resend(0x41, false));
    assert_not_counted(&b, &a);
    assert_same_state(&b, &a);
    let out = drain(&mut ep, NOW);
    assert_eq!(types(&out), vec![PacketType::RpcUnknown]);
    assert_eq!(out[0].destination, addr(SERVER));
    assert_eq!(
        header_common(&out[0]),
        Common {
            sport: CLIENT_PORT,
            dport: SERVER_PORT,
            sender_id: 0x40,
        }
    );
    assert!(ep.metrics().is_idle());
}

/// | CUTOFFS from a peer we hold no state for | dropped; no state created |
/// `drops_unknown_rpc` |
#[test]
fn row12_cutoffs_from_unknown_peer_create_no_state() {
    let mut ep = client_endpoint(Config::default());
    // Cutoffs that would put every message at priority 0.
    let cutoffs = packet(
        Repr::Cutoffs(CutoffsRepr {
            common: common(false, 0),
            unsched_cutoffs: [u32::MAX, 0, 0, 0, 0, 0, 0, 0],
            cutoff_version: 9,
        }),
        &[],
    );
    let (b, a) = inject(&mut ep, NOW, addr(SERVER), cutoffs);
    assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_unknown_rpc");
    assert_eq!(a.active_peers, 0);
    // They were not remembered: a small request still goes at the default
    // priority for its size (7), and says it has not heard cutoffs yet.
    ep.send_request(NOW, addr(SERVER), Bytes::from_static(b"tiny"))
        .unwrap();
    let out = drain(&mut ep, NOW);
    assert_eq!(types(&out), vec![PacketType::Data]);
    assert_eq!(out[0].priority, 7);
    let Ok(Repr::Data(d)) = Repr::parse(&out[0].to_vec()) else {
        panic!("DATA expected")
    };
    assert_ne!(d.cutoff_version, 9);
}

/// | duplicate DATA (every byte already received) | dropped |
/// `drops_duplicate` |
#[test]
fn row13_duplicate_data_is_dropped() {
    let mut ep = server_endpoint(Config::default());
    let c = addr(CLIENT);
    ep.handle_packet(NOW, c, data(2, 5000, 5000, 0, &[1; 1416]));
    ep.handle_packet(NOW, c, data(2, 5000, 5000, 2832, &[3; 1416]));
    let _ = drain(&mut ep, NOW);
    for pkt in [
        data(2, 5000, 5000, 0, &[1; 1416]),
        data(2, 5000, 5000, 2832, &[3; 1416]),
        // A sub-range of what arrived, with different bytes.
        data(2, 5000, 5000, 100, &[9; 200]),
    ] {
        let (b, a) = inject(&mut ep, NOW, c, pkt);
        assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_duplicate");
    }
    assert_eq!(ep.poll_event(), None);
    // The gap and the tail complete it with the original bytes.
    ep.handle_packet(NOW, c, data(2, 5000, 5000, 1416, &[2; 1416]));
    ep.handle_packet(NOW, c, data(2, 5000, 5000, 4248, &[4; 752]));
    let Some(Event::Request { body, .. }) = ep.poll_event() else {
        panic!("request expected")
    };
    assert!(
        body[..1416].iter().all(|&x| x == 1),
        "duplicate overwrote data"
    );
}

/// | DATA for a request already delivered and not yet acked | dropped; not
/// delivered again | `drops_duplicate` |
#[test]
fn row14_data_for_delivered_unacked_request_is_not_delivered_again() {
    let mut p = Pair::new(Config::default());
    p.auto_respond = None;
    let id = p.call(Bytes::from_static(b"ping")).0;
    assert!(p.run_until(Duration::from_millis(1), |p| p.server_events.len() == 1));
    let c = addr(CLIENT);
    // Delivered, the application has not answered yet.
    let (b, a) = inject(&mut p.server, p.now, c, request(id, b"ping"));
    assert_dropped_without_trace(&mut p.server, p.now, &b, &a, "drops_duplicate");
    assert_eq!(a.requests_delivered, 1);
    assert_eq!(p.server.poll_event(), None);

    // Answered, waiting for the client's ack.
    let Event::Request { rpc, .. } = p.server_events[0].clone() else {
        panic!("request expected")
    };
    p.server
        .send_response(p.now, rpc, Bytes::from_static(b"pong"))
        .unwrap();
    assert!(p.run_until(Duration::from_millis(1), |p| p.responses() == 1));
    while p.step() {}
    assert_eq!(p.server.metrics().active_server_rpcs, 1);
    // Also a request packet that differs from the original: still the same
    // RPC, still not delivered again.
    for pkt in [request(id, b"ping"), request(id, b"PONG!")] {
        let (b, a) = inject(&mut p.server, p.now, c, pkt);
        assert_dropped_without_trace(&mut p.server, p.now, &b, &a, "drops_duplicate");
        assert_eq!(a.requests_delivered, 1);
        assert_eq!(p.server.poll_event(), None);
    }
}

/// | DATA for a request already acknowledged | dropped; not delivered
/// again | `drops_stale` |
#[test]
fn row15_data_for_acknowledged_request_is_stale() {
    let (mut p, first) = pair_after_one_exchange(b"once");
    // The next request carries the ack for the first.
    p.call(Bytes::from_static(b"twice"));
    assert!(p.run_until(Duration::from_millis(1), |p| p.responses() == 2));
    while p.step() {}
    let m = p.server.metrics();
    assert_eq!(m.active_server_rpcs, 1, "the first RPC was acked and freed");
    assert!(m.remembered_acks >= 1);
    assert_eq!(m.requests_delivered, 2);

    let c = addr(CLIENT);
    let (b, a) = inject(&mut p.server, p.now, c, request(first, b"once"));
    assert_dropped_without_trace(&mut p.server, p.now, &b, &a, "drops_stale");
    assert_eq!(a.requests_delivered, 2);
    assert_eq!(p.server.poll_event(), None);
    // The first packet of a longer version of it, too.
    let (b, a) = inject(
        &mut p.server,
        p.now,
        c,
        data(first, 5000, 5000, 0, &[1; 1416]),
    );
    assert_dropped_without_trace(&mut p.server, p.now, &b, &a, "drops_stale");
}

// ----- acks piggybacked on requests (applied later: `Endpoint::reap`) ---------

/// A request from the client that acknowledges the client's RPC `acked`.
fn request_acking(client_id: u64, acked: u64, body: &[u8]) -> Bytes {
    let len = body.len() as u32;
    packet(
        Repr::Data(DataRepr {
            ack: AckRecord {
                client_id: acked,
                server_port: SERVER_PORT,
            },
            ..data_repr(client_id, len, len, 0)
        }),
        body,
    )
}

/// Deliver request `id` from the client to `ep` and answer it, so that the
/// RPC waits for the client's ack.
fn answered(ep: &mut Endpoint, now: Instant, pkt: Bytes) {
    ep.handle_packet(now, addr(CLIENT), pkt);
    let Some(Event::Request { rpc, .. }) = ep.poll_event() else {
        panic!("request expected")
    };
    ep.send_response(now, rpc, Bytes::from_static(b"pong"))
        .unwrap();
    drain(ep, now);
}

/// An ack that rides on the next request frees its RPC when the owner
/// reaps (as a driver does when idle), or at the next tick if it never
/// does; either way the id is remembered, so a late copy of the request
/// is stale.
#[test]
fn piggybacked_acks_free_their_rpcs_at_reap_or_at_the_tick() {
    let mut ep = server_endpoint(Config::default());
    let c = addr(CLIENT);
    answered(&mut ep, NOW, request(2, b"one"));
    answered(&mut ep, NOW, request_acking(4, 2, b"two"));
    // Deferred: the acknowledged RPC is still there.
    assert_eq!(ep.metrics().active_server_rpcs, 2);
    assert_eq!(ep.reap(NOW), 1);
    assert_eq!(ep.metrics().active_server_rpcs, 1);
    assert_eq!(ep.reap(NOW), 0, "nothing left to reap");
    let (b, a) = inject(&mut ep, NOW, c, request(2, b"one"));
    assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_stale");

    // Never reaped: the tick applies it.
    answered(&mut ep, NOW, request_acking(6, 4, b"three"));
    assert_eq!(ep.metrics().active_server_rpcs, 2);
    let tick = ep.poll_timeout().expect("a tick is due while RPCs live");
    ep.handle_timeout(tick);
    // (The first tick comes `resend_after` after the RPCs started, so it
    // also asks the client of the RPC still held for its ack.)
    drain(&mut ep, tick);
    assert_eq!(ep.metrics().active_server_rpcs, 1);
    let (b, a) = inject(&mut ep, tick, c, request(4, b"two"));
    assert_dropped_without_trace(&mut ep, tick, &b, &a, "drops_stale");
}

/// A peer at its RPC limit whose next request acknowledges the previous
/// one is not refused for the RPC it just acknowledged.
#[test]
fn a_deferred_ack_does_not_count_against_the_rpc_limits() {
    let mut ep = server_endpoint(Config {
        max_rpcs_per_peer: 1,
        ..Config::default()
    });
    answered(&mut ep, NOW, request(2, b"one"));
    let (_, a) = inject(&mut ep, NOW, addr(CLIENT), request_acking(4, 2, b"two"));
    assert_eq!(a.drops_rpc_limit, 0);
    assert_eq!(a.requests_delivered, 2);
    assert_eq!(a.active_server_rpcs, 1);
}

/// Until it is freed, an acknowledged RPC is done: a late copy of its
/// request and a RESEND for its response are stale, and nothing is sent
/// for it (a retransmission it owed is dropped too).
#[test]
fn an_acknowledged_rpc_waiting_for_reap_sends_and_answers_nothing() {
    let mut ep = server_endpoint(Config::default());
    let c = addr(CLIENT);
    answered(&mut ep, NOW, request(2, b"one"));
    // The client asks for the response again, then acknowledges it (in
    // its next request) before we got to the retransmission.
    let resend = packet(
        Repr::Resend(ResendRepr {
            common: common(true, 2),
            offset: 0,
            length: 10_000,
            priority: 7,
        }),
        &[],
    );
    ep.handle_packet(NOW, c, resend.clone());
    ep.handle_packet(NOW, c, request_acking(4, 2, b"two"));
    let Some(Event::Request { .. }) = ep.poll_event() else {
        panic!("the second request is delivered")
    };
    assert!(drain(&mut ep, NOW).is_empty(), "nothing for the acked RPC");
    assert_eq!(ep.metrics().active_server_rpcs, 2, "not freed yet");
    let (b, a) = inject(&mut ep, NOW, c, request(2, b"one"));
    assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_stale");
    let (b, a) = inject(&mut ep, NOW, c, resend);
    assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_stale");
    assert_eq!(ep.reap(NOW), 1);
}

/// An ack for an RPC the application has not answered yet is ignored, as
/// an ack for an unknown RPC is: the response still goes out when given.
#[test]
fn an_ack_for_an_rpc_still_in_service_is_ignored() {
    let mut ep = server_endpoint(Config::default());
    let c = addr(CLIENT);
    ep.handle_packet(NOW, c, request(2, b"one"));
    let Some(Event::Request { rpc: first, .. }) = ep.poll_event() else {
        panic!("request expected")
    };
    answered(&mut ep, NOW, request_acking(4, 2, b"two"));
    assert_eq!(ep.reap(NOW), 0);
    ep.send_response(NOW, first, Bytes::from_static(b"pong"))
        .unwrap();
    assert_eq!(types(&drain(&mut ep, NOW)), vec![PacketType::Data]);
    assert_eq!(ep.metrics().active_server_rpcs, 2);
}

/// An endpoint that is a client and a server at once: RPCs its clients
/// acknowledged do not count against its own new requests either.
#[test]
fn a_deferred_ack_does_not_refuse_a_request_of_our_own() {
    let mut ep = server_endpoint(Config {
        max_rpcs: 2,
        ..Config::default()
    });
    answered(&mut ep, NOW, request(2, b"one"));
    answered(&mut ep, NOW, request_acking(4, 2, b"two"));
    assert_eq!(ep.metrics().active_server_rpcs, 2, "one of them acked");
    ep.send_request(NOW, addr("10.0.0.66:99"), Bytes::from_static(b"mine"))
        .expect("room once the acked RPC is freed");
    let m = ep.metrics();
    assert_eq!((m.active_server_rpcs, m.active_client_rpcs), (1, 1));
}

/// An owner that never reaps and never ticks still holds only a bounded
/// number of acknowledged RPCs.
#[test]
fn deferred_acks_are_bounded_without_reaping() {
    let mut ep = server_endpoint(Config::default());
    answered(&mut ep, NOW, request(2, b"0"));
    for i in 1..1_000u64 {
        answered(&mut ep, NOW, request_acking(2 * (i + 1), 2 * i, b"x"));
    }
    let live = ep.metrics().active_server_rpcs;
    assert!(
        (2..=100).contains(&live),
        "{live} RPCs live: acks are deferred, but a bounded number"
    );
    assert_eq!(ep.reap(NOW) as u64, live - 1);
    assert_eq!(ep.metrics().active_server_rpcs, 1);
}

/// | ACK for an RPC that does not exist | ignored | `drops_unknown_rpc` |
#[test]
fn row16_ack_for_nonexistent_rpc_is_ignored() {
    let mut ep = server_endpoint(Config::default());
    let c = addr(CLIENT);
    let other = |client_id| AckRecord {
        client_id,
        server_port: SERVER_PORT,
    };
    for pkt in [
        ack_packet(2, &[]),
        ack_packet(4, &[other(6), other(8), other(10), other(12), other(14)]),
    ] {
        let (b, a) = inject(&mut ep, NOW, c, pkt);
        assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_unknown_rpc");
    }
    assert!(ep.metrics().is_idle());

    // Against a live server: an ACK for another id leaves its RPC alone.
    let (mut p, id) = pair_after_one_exchange(b"hi");
    let (b, a) = inject(&mut p.server, p.now, c, ack_packet(id ^ 0x100, &[]));
    assert_dropped_without_trace(&mut p.server, p.now, &b, &a, "drops_unknown_rpc");
    assert_eq!(a.active_server_rpcs, 1);
}

/// | DATA that would cross `max_buffered_bytes` | dropped (the sender
/// retransmits later) | `drops_buffer_limit` |
#[test]
fn row17_data_over_the_buffer_limit_is_dropped() {
    let config = Config {
        max_buffered_bytes: 10_000,
        ..Config::default()
    };
    let mut ep = server_endpoint(config);
    let c = addr(CLIENT);
    // Seven first packets of 1416 bytes fit (9,912 bytes)...
    for i in 0..7u64 {
        let (b, a) = inject(
            &mut ep,
            NOW,
            c,
            data(2 + 2 * i, 100_000, 40_000, 0, &[1; 1416]),
        );
        assert_not_counted(&b, &a);
    }
    let _ = drain(&mut ep, NOW);
    assert_eq!(ep.metrics().buffered_bytes, 9912);
    // ...the eighth does not, and leaves no RPC behind.
    let (b, a) = inject(&mut ep, NOW, c, data(100, 100_000, 40_000, 0, &[1; 1416]));
    assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_buffer_limit");
    // Nor does the next packet of a live message (which keeps its state).
    let (b, a) = inject(&mut ep, NOW, c, data(2, 100_000, 40_000, 1416, &[1; 1416]));
    assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_buffer_limit");
    assert!(ep.metrics().buffered_bytes <= 10_000);
    // A packet that fits exactly is still taken.
    let (b, a) = inject(&mut ep, NOW, c, data(2, 100_000, 40_000, 1416, &[1; 88]));
    assert_not_counted(&b, &a);
    assert_eq!(a.buffered_bytes, 10_000);
}

/// | DATA that would create an RPC beyond `max_rpcs` / `max_rpcs_per_peer`
/// | dropped | `drops_rpc_limit` |
#[test]
fn row18_data_beyond_rpc_limits_is_dropped() {
    let config = Config {
        max_rpcs: 4,
        max_rpcs_per_peer: 2,
        ..Config::default()
    };
    let mut ep = server_endpoint(config);
    let peers: Vec<SocketAddr> = (1..=3)
        .map(|i| addr(&format!("10.0.1.{i}:40000")))
        .collect();
    // Two RPCs from the first peer, then its third is over the per-peer
    // limit.
    for id in [2u64, 4] {
        ep.handle_packet(NOW, peers[0], request(id, b"req"));
    }
    let (b, a) = inject(&mut ep, NOW, peers[0], request(6, b"req"));
    assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_rpc_limit");
    // A second peer still gets two...
    for id in [2u64, 4] {
        ep.handle_packet(NOW, peers[1], request(id, b"req"));
    }
    assert_eq!(ep.metrics().active_server_rpcs, 4);
    // ...and now the engine is full for everybody.
    for (i, from) in peers.iter().enumerate() {
        let (b, a) = inject(
            &mut ep,
            NOW,
            *from,
            data(100 + 2 * i as u64, 5000, 5000, 0, &[1; 1416]),
        );
        assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_rpc_limit");
    }
    let delivered = std::iter::from_fn(|| ep.poll_event()).count();
    assert_eq!(delivered, 4);
}

/// | FREEZE (a debugging packet) | ignored | `drops_ignored` |
#[test]
fn row19_freeze_is_ignored() {
    let mut ep = server_endpoint(Config::default());
    let (b, a) = inject(
        &mut ep,
        NOW,
        addr(CLIENT),
        packet(Repr::Freeze(common(true, 2)), &[]),
    );
    assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_ignored");
    assert!(ep.metrics().is_idle());
    // Aimed at a live RPC, it changes nothing either.
    let (mut p, id) = pair_after_one_exchange(b"hi");
    let (b, a) = inject(
        &mut p.server,
        p.now,
        addr(CLIENT),
        packet(Repr::Freeze(common(true, id)), &[]),
    );
    assert_dropped_without_trace(&mut p.server, p.now, &b, &a, "drops_ignored");
}

// ----- resource bounds --------------------------------------------------------

#[test]
fn claimed_max_length_message_buffers_only_the_bytes_that_arrived() {
    let mut ep = server_endpoint(Config::default());
    let max = ep.config().max_message_length;
    assert_eq!(max, 1_000_000);
    let (b, a) = inject(&mut ep, NOW, addr(CLIENT), data(2, max, max, 0, &[7; 10]));
    assert_not_counted(&b, &a);
    assert_eq!(a.active_server_rpcs, 1);
    assert_eq!(a.incoming_messages, 1);
    assert_eq!(
        a.buffered_bytes,
        b.buffered_bytes + 10,
        "not the claimed 1 MB"
    );
    // Granting more does not allocate either.
    let _ = drain(&mut ep, NOW);
    ep.handle_timeout(NOW + Duration::from_millis(1));
    assert_eq!(ep.metrics().buffered_bytes, 10);
}

#[test]
fn rpc_creating_packets_stop_at_max_rpcs() {
    let config = Config {
        max_rpcs: 8,
        ..Config::default()
    };
    let mut ep = server_endpoint(config);
    let mut accepted = 0;
    for i in 0..200u64 {
        let from = addr(&format!("10.0.2.{}:{}", i % 5 + 1, 40000 + i % 7));
        let (b, a) = inject(
            &mut ep,
            NOW,
            from,
            data(2 * i + 2, 1_000_000, 40_000, 0, &[3; 10]),
        );
        if a.active_server_rpcs > b.active_server_rpcs {
            accepted += 1;
            assert_not_counted(&b, &a);
        } else {
            assert_counted(&b, &a, "drops_rpc_limit");
            assert_same_state(&b, &a);
        }
        assert!(a.active_server_rpcs <= 8);
    }
    let m = ep.metrics();
    assert_eq!(accepted, 8);
    assert_eq!(m.active_server_rpcs, 8);
    assert_eq!(m.drops_rpc_limit, 192);
    assert_eq!(m.buffered_bytes, 80);
}

/// Many messages, offsets, claims and peers, in and out of order; the
/// buffered bytes stay within the limit after every packet and timer.
#[test]
fn buffered_bytes_never_exceed_max_buffered_bytes() {
    const LIMIT: usize = 50_000;
    let config = Config {
        max_buffered_bytes: LIMIT,
        ..Config::default()
    };
    let mut ep = server_endpoint(config);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut now = NOW;
    let mut peak = 0;
    for step in 0..20_000 {
        let r = next();
        let from = addr(&format!("10.0.3.{}:40000", r % 4 + 1));
        let id = 2 * ((r >> 8) % 40) + 2;
        let message_length = [3000u32, 60_000, 500_000, 1_000_000][(r >> 16) as usize % 4];
        let packet_no = (r >> 20) as u32 % (message_length / 1416 + 1);
        let offset = packet_no * 1416;
        let len = (message_length - offset).min(1416) as usize;
        let incoming = [0u32, 1416, 40_000, u32::MAX][(r >> 40) as usize % 4];
        let pkt = data(id, message_length, incoming, offset, &vec![1; len]);
        ep.handle_packet(now, from, pkt);
        let m = ep.metrics();
        assert!(
            m.buffered_bytes as usize <= LIMIT,
            "step {step}: {}",
            m.buffered_bytes
        );
        peak = peak.max(m.buffered_bytes);
        let _ = drain(&mut ep, now);
        while ep.poll_event().is_some() {}
        if step % 100 == 99 {
            now += Duration::from_millis(1);
            ep.handle_timeout(now);
            assert!(ep.metrics().buffered_bytes as usize <= LIMIT);
        }
    }
    let m = ep.metrics();
    assert!(m.drops_buffer_limit > 0, "the limit was reached");
    assert!(peak > (LIMIT / 2) as u64);
}

// ----- engine bugs these tests found (fixed; kept as regressions) ---------

/// Row 7 says the bound for a message's later packets is what the receiver
/// granted; only the first packet's `incoming` claim is believed.
#[test]
fn row07_later_packet_claim_does_not_extend_the_grant() {
    let mut ep = server_endpoint(Config::default());
    let c = addr(CLIENT);
    ep.handle_packet(NOW, c, data(2, 1_000_000, 40_000, 0, &[1; 1416]));
    let granted = drain(&mut ep, NOW)
        .iter()
        .filter(|t| t.packet_type() == PacketType::Grant)
        .map(|t| GrantPacket::new_checked(t.header()).unwrap().offset())
        .max()
        .unwrap_or(40_000);
    assert!(granted < 300_000);
    // A later packet claims 400,000 bytes of "incoming" and sits at 300,000,
    // well past anything the receiver granted.
    let (b, a) = inject(
        &mut ep,
        NOW,
        c,
        data(2, 1_000_000, 400_000, 300_000, &[2; 1416]),
    );
    assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_bad_offset");
}

/// The crate docs: "a message buffer holds only bytes that actually
/// arrived". A first packet of 10 bytes
/// placed at its claimed offset should not make the engine hold ~400 KB.
#[test]
fn out_of_order_first_packet_buffers_only_the_bytes_that_arrived() {
    let mut ep = server_endpoint(Config::default());
    let (b, a) = inject(
        &mut ep,
        NOW,
        addr(CLIENT),
        data(2, 1_000_000, 400_000, 399_990, &[7; 10]),
    );
    assert_not_counted(&b, &a);
    assert!(
        a.buffered_bytes <= 10 + 1416,
        "10 bytes arrived, {} bytes buffered",
        a.buffered_bytes
    );
}

/// A DATA packet that is dropped must not change the message it names; in
/// particular its `incoming` claim must not raise the receiver's idea of
/// what it granted.
#[test]
fn row07_dropped_packet_claim_leaves_the_message_alone() {
    let mut ep = server_endpoint(Config::default());
    let c = addr(CLIENT);
    ep.handle_packet(NOW, c, data(2, 1_000_000, 40_000, 0, &[1; 1416]));
    let _ = drain(&mut ep, NOW);
    let (b, a) = inject(
        &mut ep,
        NOW,
        c,
        data(2, 1_000_000, 400_000, 990_000, &[2; 1416]),
    );
    assert_dropped_without_trace(&mut ep, NOW, &b, &a, "drops_bad_offset");
    assert_eq!(
        a.incoming_granted_unreceived, b.incoming_granted_unreceived,
        "granted-but-unreceived bytes moved on a dropped packet"
    );
}

/// A response DATA that is dropped (here: it starts past its unscheduled
/// claim) must leave the client's RPC as it was. The engine instead first
/// takes any response DATA as proof that the server has the whole request.
#[test]
fn row07_dropped_response_data_leaves_the_request_alone() {
    let mut p = Pair::new(Config::default());
    p.auto_respond = None;
    let id = p.call(pattern(200_000, 1)).0;
    let mut now = p.now;
    for _ in 0..1000 {
        now += Duration::from_micros(1);
        let _ = drain(&mut p.client, now);
    }
    // From the real server, for the real RPC, but past its claim.
    let bad = packet(
        Repr::Data(DataRepr {
            common: common(false, id ^ 1),
            message_length: 100_000,
            incoming: 1416,
            offset: 50_000,
            cutoff_version: 1,
            ..DataRepr::default()
        }),
        &[1; 100],
    );
    let (b, a) = inject(&mut p.client, now, addr(SERVER), bad);
    assert_dropped_without_trace(&mut p.client, now, &b, &a, "drops_bad_offset");
    assert_eq!(
        a.outgoing_messages, b.outgoing_messages,
        "request still unsent"
    );
    // The server's GRANT still releases the rest of the request.
    let grant = packet(
        Repr::Grant(GrantRepr {
            common: common(false, id ^ 1),
            offset: 200_000,
            priority: 3,
        }),
        &[],
    );
    p.client.handle_packet(now, addr(SERVER), grant);
    let mut sent = 0;
    for _ in 0..1000 {
        now += Duration::from_micros(1);
        sent += drain(&mut p.client, now).len();
    }
    assert!(sent > 100, "{sent} DATA packets after the GRANT");
}
