//! What one end of a busy-polled round trip costs in user space: the
//! driver, the runtime's task hops and the engine, with the kernel taken out.
//!
//! On this project's VM a busy-polled Homa round trip over loopback UDP
//! takes about 1.3–1.5× the raw UDP ping-pong, and a system-call trace puts
//! most of the difference in user space: each end spends 0.7–0.8 µs more
//! between the receive that returns a packet and the `sendto` of the
//! answer than the raw floor does. That is too small to resolve in a
//! loopback round trip of 7–10 µs on a shared machine, so this bench puts
//! each end against a [`Datapath`] that answers in memory, at once, with
//! the packet a raw peer would send (built by hand, as the `spin` bench's
//! `--halves` do): a Homa `Server` fed one request after another, each
//! acknowledging the one before, as a Homa client does; and a Homa `Client`
//! whose requests are answered by a response packet. Each end runs on a
//! current-thread runtime with busy polling, as `homa-perf`'s `homa-spin`
//! does, so that everything the end does per RPC is timed: probing,
//! taking the packet in, waking the task, the application's call or
//! response, and handing the packet out. Only the system calls are
//! missing.
//!
//! The floor beside them is a raw echo end against the same in-memory
//! client: what a raw UDP server does per RPC in user space (read the
//! header, build the answer's, copy the body), plus the peer's own work
//! (building and parsing packets), which every row pays. The client row is
//! compared with that same floor: its in-memory peer does about the same
//! work (it builds a response instead of a request and acknowledges
//! nothing).
//!
//! `cargo bench -p homa-tokio --bench glue [-- RPCS] [--rounds N]
//! [--gap-us N] [--only server|client|raw]` prints the median over the
//! rounds of each end's nanoseconds per RPC, and of its difference to the
//! floor of the same round. `--gap-us` (default 5, at most 50: the ends
//! must keep busy polling between RPCs, since the in-memory datapath wakes
//! no sleeping driver) sets the time between RPCs of the turnaround runs;
//! `--only` runs one end, back to back and then with the gap, once each
//! (for a profiler).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use homa_core::wire::{AckRecord, Common, DataPacket, DataRepr, Repr, DATA_HEADER_LEN};
use homa_core::Transmit;
use homa_tokio::{Client, Datapath, Incoming, Server, Socket, SocketConfig};

const SIZE: usize = 100;
const WARM: u64 = 1_000;

/// Which end of an RPC the datapath's in-memory peer plays.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Peer {
    /// Sends requests to the Homa server under test.
    Client,
    /// Answers the Homa client under test.
    Server,
}

#[derive(Debug)]
struct Mirror {
    peer: Peer,
    local: SocketAddr,
    remote: SocketAddr,
    /// RPCs to time after the warm-up.
    rpcs: u64,
    /// How long the peer's answer takes to become visible: zero measures
    /// the end's work per RPC, back to back; a few microseconds leave it
    /// idle between RPCs, as a round trip does, so that what it defers
    /// (reaping, yielding to the runtime) happens off the packet's path,
    /// and the turnaround measures the path alone.
    gap: Duration,
    state: Mutex<MirrorState>,
    /// Notified when the timed RPCs are done.
    finished: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct MirrorState {
    /// Packets for the end under test, each with when it becomes visible.
    queue: VecDeque<(Instant, Bytes)>,
    /// When the packet being answered became visible.
    shown: Option<Instant>,
    /// Turnarounds of the timed RPCs: from the packet becoming visible to
    /// the end's answer reaching the datapath, ns.
    turnarounds: Vec<u64>,
    /// RPCs answered (server under test) or responses sent (client under test).
    done: u64,
    /// The peer client's next RPC id (even, as a client's are).
    next_id: u64,
    started: Option<Instant>,
    finished: Option<Instant>,
}

impl Mirror {
    fn new(peer: Peer, rpcs: u64, gap: Duration) -> Arc<Mirror> {
        // Homa servers use ports up to 32767, clients the ones above.
        let (server, client) = (
            "10.0.0.1:4000".parse().unwrap(),
            "10.0.0.2:40000".parse().unwrap(),
        );
        let (local, remote) = match peer {
            Peer::Client => (server, client),
            Peer::Server => (client, server),
        };
        let m = Mirror {
            peer,
            local,
            remote,
            rpcs,
            gap,
            finished: tokio::sync::Notify::new(),
            state: Mutex::new(MirrorState {
                next_id: 2,
                ..MirrorState::default()
            }),
        };
        if peer == Peer::Client {
            let mut st = m.state.lock().unwrap();
            let p = m.request(&mut st, AckRecord::default());
            st.queue.push_back((Instant::now(), p));
        }
        Arc::new(m)
    }

    /// The peer client's next request, acknowledging `ack`.
    fn request(&self, st: &mut MirrorState, ack: AckRecord) -> Bytes {
        let id = st.next_id;
        st.next_id += 2;
        packet(self.remote.port(), self.local.port(), id, ack)
    }

    /// Once the timed RPCs are done: ns per RPC, and the median turnaround
    /// (ns).
    fn result(&self) -> Option<(f64, f64)> {
        let st = self.state.lock().unwrap();
        let (s, f) = (st.started?, st.finished?);
        let mut t = st.turnarounds.clone();
        t.sort_unstable();
        Some((
            f.duration_since(s).as_nanos() as f64 / self.rpcs as f64,
            t[t.len() / 2] as f64,
        ))
    }

    /// The peer takes in a packet with this header: a DATA packet is a
    /// response (to the peer client) or a request (to the peer server),
    /// and the peer's answer waits for the next probe.
    fn take(&self, header: &[u8], body: &[u8]) {
        // The turnaround ends here, before the peer's own work.
        let now = Instant::now();
        let Ok(Repr::Data(d)) = Repr::parse(header) else {
            return; // control packets: nothing to answer
        };
        if d.retransmit {
            return; // not a new answer (none are expected here)
        }
        // Every answer is a one-packet echo of the 7s we send (requests and
        // responses alike).
        assert!(
            body.len() == SIZE && body.iter().all(|&b| b == 7),
            "a wrong answer"
        );
        let mut st = self.state.lock().unwrap();
        if let Some(shown) = st.shown.take() {
            if st.done >= WARM {
                st.turnarounds
                    .push(now.duration_since(shown).as_nanos() as u64);
            }
        }
        let more = self.count(&mut st);
        let next = match self.peer {
            // The last response: no more requests.
            Peer::Client if !more => return,
            // A response: the peer client acknowledges it in its next
            // request, as a Homa client does.
            Peer::Client => self.request(
                &mut st,
                AckRecord {
                    client_id: d.common.sender_id ^ 1,
                    server_port: self.local.port(),
                },
            ),
            // A request: answer it.
            Peer::Server => packet(
                self.remote.port(),
                self.local.port(),
                d.common.sender_id ^ 1,
                AckRecord::default(),
            ),
        };
        st.queue.push_back((now + self.gap, next));
    }

    /// Count one RPC done; `false` once the timed ones are over.
    fn count(&self, st: &mut MirrorState) -> bool {
        st.done += 1;
        if st.done == WARM {
            st.started = Some(Instant::now());
        } else if st.done == WARM + self.rpcs {
            st.finished = Some(Instant::now());
            self.finished.notify_one();
        }
        st.done < WARM + self.rpcs
    }
}

/// A one-packet DATA message of `SIZE` bytes, header and body.
fn packet(sport: u16, dport: u16, sender_id: u64, ack: AckRecord) -> Bytes {
    let mut b = BytesMut::zeroed(DATA_HEADER_LEN + SIZE);
    DataRepr {
        common: Common {
            sport,
            dport,
            sender_id,
        },
        message_length: SIZE as u32,
        incoming: SIZE as u32,
        ack,
        cutoff_version: 0,
        retransmit: false,
        flags: 0,
        offset: 0,
    }
    .emit(&mut DataPacket::new_unchecked(&mut b[..DATA_HEADER_LEN]));
    b[DATA_HEADER_LEN..].fill(7);
    b.freeze()
}

impl Datapath for Mirror {
    fn poll_recv(&self, _cx: &mut Context<'_>, out: &mut Vec<Incoming>) -> Poll<io::Result<usize>> {
        // Busy polling probes with `try_recv*` and never sleeps while the
        // gaps are this short (`--gap-us` is capped below the busy-poll
        // window), so nothing needs waking: this datapath keeps no waker.
        match self.try_recv(out) {
            Ok(0) => Poll::Pending,
            r => Poll::Ready(r),
        }
    }

    fn try_recv(&self, out: &mut Vec<Incoming>) -> io::Result<usize> {
        let mut st = self.state.lock().unwrap();
        let Some(&(at, _)) = st.queue.front() else {
            return Ok(0);
        };
        let now = Instant::now();
        if at > now {
            return Ok(0);
        }
        let (_, data) = st.queue.pop_front().expect("a packet");
        st.shown = Some(at);
        out.push(Incoming::Packet {
            from: self.remote,
            data,
        });
        Ok(1)
    }

    fn poll_send(&self, _cx: &mut Context<'_>, transmits: &[Transmit]) -> Poll<io::Result<usize>> {
        for t in transmits {
            self.take(t.header(), &t.payload);
        }
        Poll::Ready(Ok(transmits.len()))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn max_packet_size(&self) -> usize {
        1500
    }

    fn link_rate_bps(&self) -> u64 {
        // Fast enough that the pacer never holds a packet back.
        1_000_000_000_000
    }
}

fn config() -> SocketConfig {
    let mut config = SocketConfig::default();
    config.busy_poll = Some(Duration::from_micros(100));
    config
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A Homa echo server against in-memory requests: ns per RPC.
fn server_end(rpcs: u64, gap: Duration) -> (f64, f64) {
    let dp = Mirror::new(Peer::Client, rpcs, gap);
    runtime().block_on(async {
        let socket = Socket::with_datapath(dp.clone(), config()).unwrap();
        let server = Server::from_socket(socket);
        let s = server.clone();
        let serving = tokio::spawn(async move {
            while let Some(req) = s.next_request().await {
                let body = req.body().clone();
                if req.respond(body).is_err() {
                    break;
                }
            }
        });
        dp.finished.notified().await;
        server.shutdown();
        serving.abort();
    });
    dp.result().unwrap()
}

/// A Homa client calling from a spawned task against in-memory responses:
/// ns per RPC.
fn client_end(rpcs: u64, gap: Duration) -> (f64, f64) {
    let dp = Mirror::new(Peer::Server, rpcs, gap);
    runtime().block_on(async {
        let socket = Socket::with_datapath(dp.clone(), config()).unwrap();
        let client = Client::from_socket(socket);
        let dest = dp.remote;
        let body = Bytes::from(vec![7u8; SIZE]);
        tokio::spawn(async move {
            for _ in 0..WARM + rpcs {
                let r = client.call(dest, body.clone()).await.unwrap();
                assert_eq!(r, body, "the response's bytes");
            }
        })
        .await
        .unwrap();
    });
    dp.result().unwrap()
}

/// The floor: a raw server end against the same in-memory client, doing
/// per RPC what a raw UDP echo server does in user space (take the packet,
/// read its header, build the answer's header and copy the body after it)
/// plus the peer's own work, which every row pays. ns per RPC.
fn raw_end(rpcs: u64, gap: Duration) -> (f64, f64) {
    let dp = Mirror::new(Peer::Client, rpcs, gap);
    let mut rx = Vec::new();
    let mut out = Vec::with_capacity(2048);
    while dp.result().is_none() {
        rx.clear();
        dp.try_recv(&mut rx).unwrap();
        for p in rx.drain(..) {
            let Incoming::Packet { data, .. } = p else {
                continue;
            };
            let Ok(Repr::Data(d)) = Repr::parse(&data) else {
                continue;
            };
            let body = &data[DATA_HEADER_LEN..];
            out.clear();
            let answer = DataRepr {
                common: Common {
                    sport: d.common.dport,
                    dport: d.common.sport,
                    sender_id: d.common.sender_id ^ 1,
                },
                message_length: body.len() as u32,
                incoming: body.len() as u32,
                ack: AckRecord::default(),
                ..d
            };
            out.resize(DATA_HEADER_LEN, 0);
            answer.emit(&mut DataPacket::new_unchecked(&mut out[..]));
            out.extend_from_slice(body);
            dp.take(&out[..DATA_HEADER_LEN], &out[DATA_HEADER_LEN..]);
        }
    }
    dp.result().unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

type End = fn(u64, Duration) -> (f64, f64);

fn main() {
    let mut rpcs = 200_000u64;
    let mut rounds = 5usize;
    let mut gap = Duration::from_micros(5);
    let mut only = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds N")
            }
            "--gap-us" => {
                gap = Duration::from_micros(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .expect("--gap-us N"),
                )
            }
            "--only" => only = args.next(),
            "--bench" => {}
            s => {
                if let Ok(n) = s.parse() {
                    rpcs = n;
                }
            }
        }
    }
    let ends: [(&str, End); 3] = [
        ("raw echo end, in-memory client (floor)", raw_end),
        ("homa-tokio server, in-memory client   ", server_end),
        ("homa-tokio client, in-memory server   ", client_end),
    ];
    assert!(
        gap <= Duration::from_micros(50),
        "--gap-us at most 50: longer gaps would let the ends stop busy polling"
    );
    if let Some(end) = only {
        // For a profiler: one end alone, back to back and then with gaps.
        let i = match end.as_str() {
            "server" => 1,
            "client" => 2,
            "raw" => 0,
            other => panic!("--only {other}: server, client or raw"),
        };
        let (per_rpc, _) = ends[i].1(rpcs, Duration::ZERO);
        let (_, turn) = ends[i].1(rpcs, gap);
        println!("{end}: {per_rpc:.0} ns per RPC, turnaround {turn:.0} ns");
        return;
    }
    // work[e][round], turn[e][round]
    let mut work = vec![Vec::new(); ends.len()];
    let mut turn = vec![Vec::new(); ends.len()];
    for _ in 0..rounds {
        for (e, (_, f)) in ends.iter().enumerate() {
            work[e].push(f(rpcs, Duration::ZERO).0);
            turn[e].push(f(rpcs, gap).1);
        }
    }
    println!(
        "one end of a 100-byte RPC, busy-polled, kernel taken out: {rpcs} RPCs per run, {rounds} rounds; \
         medians of the rounds, and of each round's difference to its floor"
    );
    println!("                                          work per RPC, back to back     turnaround, {} µs between RPCs", gap.as_micros());
    for (e, (name, _)) in ends.iter().enumerate() {
        let over = |v: &Vec<Vec<f64>>| -> f64 {
            median(v[e].iter().zip(&v[0]).map(|(x, f)| x - f).collect())
        };
        if e == 0 {
            println!(
                "  {name} {:7.0} ns                      {:7.0} ns",
                median(work[e].clone()),
                median(turn[e].clone())
            );
        } else {
            println!(
                "  {name} {:7.0} ns ({:+5.0} over floor)   {:7.0} ns ({:+5.0} over floor)",
                median(work[e].clone()),
                over(&work),
                median(turn[e].clone()),
                over(&turn)
            );
        }
    }
}
