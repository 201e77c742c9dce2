//! Two engines joined in memory with a fixed one-way delay, stepping virtual
//! time. Tests can drop or rewrite packets on purpose. Shared by the tests
//! and the benchmarks (via `#[path]`).
#![allow(dead_code)]

use bytes::Bytes;
use homa_core::wire::{PacketType, Repr};
use homa_core::{Config, Endpoint, Event, Instant, Transmit};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

pub const CLIENT: &str = "10.0.0.1:40000";
pub const SERVER: &str = "10.0.0.2:99";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A packet as it would arrive: `repr`'s header, then `payload`.
pub fn packet(repr: Repr, payload: &[u8]) -> Bytes {
    let mut v = vec![0u8; repr.header_len()];
    repr.emit(&mut v);
    v.extend_from_slice(payload);
    Bytes::from(v)
}

pub struct InFlight {
    pub at: Instant,
    pub to_server: bool,
    pub from: SocketAddr,
    pub bytes: Bytes,
}

/// Decides whether a packet survives (direction: true = to the server).
pub type Filter = Box<dyn FnMut(bool, &Transmit) -> bool>;
/// Computes a response body from a request body.
pub type Responder = Box<dyn FnMut(&Bytes) -> Bytes>;

pub struct Pair {
    pub now: Instant,
    pub client: Endpoint,
    pub server: Endpoint,
    pub delay: Duration,
    pub wire: VecDeque<InFlight>,
    /// Return false to drop a packet (sees direction and the transmit).
    pub filter: Filter,
    pub client_events: Vec<Event>,
    pub server_events: Vec<Event>,
    /// Server answers every request with this function of the body.
    pub auto_respond: Option<Responder>,
    pub sent: Vec<(bool, homa_core::wire::PacketType)>,
}

impl Pair {
    pub fn new(config: Config) -> Pair {
        let client = Endpoint::new(
            Config {
                seed: 1,
                ..config.clone()
            },
            addr(CLIENT),
        )
        .unwrap();
        let server = Endpoint::new(Config { seed: 2, ..config }, addr(SERVER)).unwrap();
        Pair {
            now: Instant::ZERO,
            client,
            server,
            delay: Duration::from_micros(1),
            wire: VecDeque::new(),
            filter: Box::new(|_, _| true),
            client_events: Vec::new(),
            server_events: Vec::new(),
            auto_respond: Some(Box::new(|b: &Bytes| b.clone())),
            sent: Vec::new(),
        }
    }

    /// Move packets and events until nothing is in flight and no engine has
    /// output; time jumps to the next delivery or timer.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        let mut progressed = false;
        for to_server in [true, false] {
            loop {
                let ep = if to_server {
                    &mut self.client
                } else {
                    &mut self.server
                };
                let Some(t) = ep.poll_transmit(now) else {
                    break;
                };
                progressed = true;
                self.sent.push((to_server, t.packet_type()));
                if (self.filter)(to_server, &t) {
                    let from = ep.local_addr();
                    self.wire.push_back(InFlight {
                        at: now + self.delay,
                        to_server,
                        from,
                        bytes: Bytes::from(t.to_vec()),
                    });
                }
            }
        }
        while let Some(e) = self.client.poll_event() {
            self.client_events.push(e);
            progressed = true;
        }
        while let Some(e) = self.server.poll_event() {
            if let (Event::Request { rpc, body }, Some(f)) = (&e, self.auto_respond.as_mut()) {
                let resp = f(body);
                self.server.send_response(now, *rpc, resp).unwrap();
            }
            self.server_events.push(e);
            progressed = true;
        }
        if !progressed {
            // Idle, as a driver would be: the engines finish what they put
            // off (acks piggybacked on requests).
            progressed = self.client.reap(now) + self.server.reap(now) > 0;
        }
        progressed
    }

    /// Advance to the next event (delivery or timer), processing everything
    /// due. Returns false when nothing is left to do.
    pub fn advance(&mut self) -> bool {
        while self.step() {}
        let next_wire = self.wire.front().map(|p| p.at);
        let timers = [self.client.poll_timeout(), self.server.poll_timeout()];
        let next = [next_wire, timers[0], timers[1]]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else { return false };
        self.now = self.now.max(next);
        while self.wire.front().is_some_and(|p| p.at <= self.now) {
            let p = self.wire.pop_front().unwrap();
            let ep = if p.to_server {
                &mut self.server
            } else {
                &mut self.client
            };
            ep.handle_packet(self.now, p.from, p.bytes);
        }
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
        }
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
        true
    }

    /// Run until `cond` holds or `limit` of virtual time passes.
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Pair) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            while self.step() {}
            if cond(self) {
                return true;
            }
            if self.now >= end || !self.advance() {
                return cond(self);
            }
        }
    }

    pub fn call(&mut self, body: Bytes) -> homa_core::RpcId {
        self.client
            .send_request(self.now, addr(SERVER), body)
            .unwrap()
    }

    /// Packets of type `ty` the engines sent so far towards the server
    /// (`to_server`) or the client, dropped ones included.
    pub fn sent_count(&self, to_server: bool, ty: PacketType) -> usize {
        self.sent.iter().filter(|&&s| s == (to_server, ty)).count()
    }

    pub fn responses(&self) -> usize {
        self.client_events
            .iter()
            .filter(|e| matches!(e, Event::Response { .. }))
            .count()
    }
}

pub use homa_core::fuzzing::pattern;
