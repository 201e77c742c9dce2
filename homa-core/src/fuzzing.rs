//! The body of the `handle_packet` fuzz target, shared with a property test
//! (the s2n-quic habit: one test body, run both ways).
//!
//! Not part of the stable API.

use bytes::Bytes;
use std::net::SocketAddr;

use crate::{Config, Endpoint, Event, Instant};

/// Feed `input` to an engine that holds live client and server RPCs, as a
/// sequence of packets: `[len: u8][flags: u8][len bytes]…`. Flag bit 0 makes
/// the packet come from the server peer (else the client peer); bit 1
/// rewrites its `sender_id` to a live RPC's id so that the fuzzer reaches the
/// per-RPC paths without guessing 64-bit ids; bit 2 advances time by 3 ms
/// before the packet. Panics only if the engine breaks an invariant.
pub fn handle_packet_sequence(input: &[u8]) {
    let local: SocketAddr = "10.0.0.1:99".parse().expect("valid");
    let server: SocketAddr = "10.0.0.2:100".parse().expect("valid");
    let client: SocketAddr = "10.0.0.3:40000".parse().expect("valid");
    let config = Config {
        max_buffered_bytes: 64 << 10,
        max_rpcs: 16,
        max_message_length: 100_000,
        ..Config::default()
    };
    let max_buffered = config.max_buffered_bytes;
    let mut ep = Endpoint::new(config, local).expect("valid config");
    let mut now = Instant::ZERO;
    let live = ep
        .send_request(now, server, Bytes::from(vec![7u8; 3000]))
        .expect("request accepted");
    while ep.poll_transmit(now).is_some() {}

    let mut rest = input;
    while rest.len() >= 2 {
        let (len, flags) = (rest[0] as usize, rest[1]);
        rest = &rest[2..];
        let take = len.min(rest.len());
        let mut pkt = rest[..take].to_vec();
        rest = &rest[take..];
        if flags & 4 != 0 {
            now += std::time::Duration::from_millis(3);
            ep.handle_timeout(now);
        }
        let from = if flags & 1 != 0 { server } else { client };
        if flags & 2 != 0 && pkt.len() >= 28 {
            // Our client RPC as the server names it (odd), or a client's id.
            let id = if flags & 1 != 0 { live.0 ^ 1 } else { 1000 };
            pkt[20..28].copy_from_slice(&id.to_be_bytes());
        }
        ep.handle_packet(now, from, Bytes::from(pkt));
        while ep.poll_transmit(now).is_some() {}
        while let Some(e) = ep.poll_event() {
            if let Event::Request { rpc, .. } = e {
                let _ = ep.send_response(now, rpc, Bytes::from_static(b"r"));
            }
        }
        let m = ep.metrics();
        assert!(
            m.buffered_bytes as usize <= max_buffered,
            "buffer limit crossed"
        );
        assert!(
            m.active_client_rpcs + m.active_server_rpcs <= 16,
            "RPC limit crossed"
        );
    }
}

/// Deterministic message contents for tests: `len` bytes from an xorshift
/// stream seeded by `seed`, different for every seed. Shared by the test
/// suites of every crate, so a response can be checked byte for byte.
pub fn pattern(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    Bytes::from(
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect::<Vec<u8>>(),
    )
}
