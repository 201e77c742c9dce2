//! Engine benchmarks (`cargo bench -p homa-core`):
//!
//! * `wire/*`: encode and decode of each packet type;
//! * `pair/rpc_1pkt`: two engines joined in memory doing 100-byte RPCs back to
//!   back (one iteration = one whole RPC: request, response, ack);
//! * `pair/rpc_1MB`: the same moving 1 MB requests (1-byte responses), beside
//!   `floor/copy_1MB`, the two memcpys of 1 MB any datapath pays.
//!
//! The pair advances virtual time by 1 µs per RPC and runs the engines' timers,
//! so housekeeping is included. The link rate is set very high so the pacer
//! never binds: this measures the engine, not a link.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use homa_core::wire::{
    AckRecord, AckRepr, Common, CutoffsRepr, DataRepr, GrantRepr, Repr, ResendRepr,
};
use homa_core::{Config, Endpoint, Event, Instant};
use std::net::SocketAddr;
use std::time::Duration;

fn reprs() -> Vec<(&'static str, Repr)> {
    let common = Common {
        sport: 40000,
        dport: 99,
        sender_id: 0x1234_5678_9abc_def0,
    };
    let ack = AckRecord {
        client_id: 42,
        server_port: 99,
    };
    vec![
        (
            "data",
            Repr::Data(DataRepr {
                common,
                message_length: 1_000_000,
                incoming: 40_000,
                ack,
                cutoff_version: 1,
                retransmit: false,
                flags: 0,
                offset: 14_160,
            }),
        ),
        (
            "grant",
            Repr::Grant(GrantRepr {
                common,
                offset: 100_000,
                priority: 3,
            }),
        ),
        (
            "resend",
            Repr::Resend(ResendRepr {
                common,
                offset: 0,
                length: 1416,
                priority: 7,
            }),
        ),
        (
            "cutoffs",
            Repr::Cutoffs(CutoffsRepr {
                common,
                unsched_cutoffs: [0, 0, 0, 0, u32::MAX, 15_000, 2_800, 200],
                cutoff_version: 1,
            }),
        ),
        (
            "ack",
            Repr::Ack(AckRepr {
                common,
                num_acks: 3,
                acks: [ack; 5],
            }),
        ),
        ("busy", Repr::Busy(common)),
    ]
}

fn wire(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire");
    for (name, repr) in reprs() {
        let mut buf = [0u8; 80];
        g.bench_function(format!("encode_{name}"), |b| {
            b.iter(|| black_box(&repr).emit(black_box(&mut buf)))
        });
        repr.emit(&mut buf);
        let len = repr.header_len();
        g.bench_function(format!("decode_{name}"), |b| {
            b.iter(|| Repr::parse(black_box(&buf[..len])).unwrap())
        });
    }
    g.finish();
}

/// Copy a packet out of the sender and into a receive buffer, as a datapath
/// would: one copy, into a reused arena (no allocation per packet).
fn carry(arena: &mut BytesMut, t: &homa_core::Transmit) -> Bytes {
    if arena.capacity() < t.len() {
        arena.reserve(64 * 1024);
    }
    arena.extend_from_slice(t.header());
    arena.extend_from_slice(&t.payload);
    arena.split().freeze()
}

struct Pair {
    arena: BytesMut,
    now: Instant,
    client: Endpoint,
    server: Endpoint,
    caddr: SocketAddr,
    saddr: SocketAddr,
}

impl Pair {
    fn new() -> Pair {
        let config = Config {
            link_rate_bps: 1 << 60,
            ..Config::default()
        };
        let caddr: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let saddr: SocketAddr = "10.0.0.2:99".parse().unwrap();
        Pair {
            arena: BytesMut::with_capacity(64 * 1024),
            now: Instant::ZERO,
            client: Endpoint::new(
                Config {
                    seed: 1,
                    ..config.clone()
                },
                caddr,
            )
            .unwrap(),
            server: Endpoint::new(Config { seed: 2, ..config }, saddr).unwrap(),
            caddr,
            saddr,
        }
    }

    /// One whole RPC; returns the response length.
    fn rpc(&mut self, body: &Bytes, response: &Bytes) -> usize {
        self.now += Duration::from_micros(1);
        let now = self.now;
        for ep in [&mut self.client, &mut self.server] {
            if ep.poll_timeout().is_some_and(|t| t <= now) {
                ep.handle_timeout(now);
            }
        }
        self.client
            .send_request(now, self.saddr, body.clone())
            .unwrap();
        loop {
            let mut moved = false;
            while let Some(t) = self.client.poll_transmit(now) {
                let pkt = carry(&mut self.arena, &t);
                self.server.handle_packet(now, self.caddr, pkt);
                moved = true;
            }
            while let Some(e) = self.server.poll_event() {
                if let Event::Request { rpc, .. } = e {
                    self.server
                        .send_response(now, rpc, response.clone())
                        .unwrap();
                }
            }
            while let Some(t) = self.server.poll_transmit(now) {
                let pkt = carry(&mut self.arena, &t);
                self.client.handle_packet(now, self.saddr, pkt);
                moved = true;
            }
            if let Some(Event::Response { body, .. }) = self.client.poll_event() {
                return body.len();
            }
            assert!(moved, "pair stalled");
        }
    }
}

fn pair(c: &mut Criterion) {
    let mut g = c.benchmark_group("pair");
    let small = Bytes::from(vec![1u8; 100]);
    g.throughput(Throughput::Elements(1));
    g.bench_function("rpc_1pkt", |b| {
        let mut p = Pair::new();
        b.iter(|| p.rpc(&small, &small))
    });
    let big = Bytes::from(vec![2u8; 1_000_000]);
    let one = Bytes::from_static(b"k");
    g.throughput(Throughput::Bytes(1_000_000));
    g.bench_function("rpc_1MB", |b| {
        let mut p = Pair::new();
        b.iter(|| p.rpc(&big, &one))
    });
    g.finish();

    let mut g = c.benchmark_group("floor");
    g.throughput(Throughput::Bytes(1_000_000));
    let mut dst = vec![0u8; 1_000_000];
    g.bench_function("copy_1MB", |b| {
        b.iter(|| {
            // The pair copies each packet into the receive arena, and the
            // receiver copies the payloads into one message: two copies.
            dst.copy_from_slice(black_box(&big));
            black_box(&mut dst).copy_from_slice(black_box(&big));
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = wire, pair
}
criterion_main!(benches);
