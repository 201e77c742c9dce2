//! Busy-polled round trips against their floor, in one process.
//!
//! Homa: an echo `Server` and a `Client`, each on its own thread with its
//! own current-thread runtime and `SocketConfig::busy_poll`, one 100-byte
//! RPC outstanding. The floor: the same on two raw non-blocking UDP sockets,
//! each thread spinning on `recv_from`. This is `homa-perf loopback`'s
//! `homa-spin` / `udp-spin` floor without the processes around it, so that
//! many short rounds can be interleaved: a machine shared with other jobs
//! moves both protocols' round trips by a microsecond or two from one
//! second to the next, more than most changes under study.
//!
//! The client calls from a task spawned on its runtime (as `homa-perf`
//! does) and, in a second run, from the runtime's `block_on` future, which
//! tokio's current-thread runtime polls only when no task is ready: a
//! spinning driver must let it run (see `Driver::run`).
//!
//! `--halves` adds, to each round, each half of Homa against a raw UDP
//! peer that speaks its wire format by hand (a Homa client against a
//! spinning thread that answers each request packet with a response packet,
//! and a raw client against a Homa server), so that what each side adds to
//! the floor can be told apart.
//!
//! `cargo bench -p homa-tokio --bench spin [-- RPCS] [--rounds N]
//! [--one-queue] [--halves] [--pin]` prints, over the rounds, the median of each one's P50
//! round trip and the median of the per-round ratios to the floor. `--one-queue`
//! gives Homa's UDP datapath no second receive queue
//! (`UdpConfig::fast_queue_priority = None`).

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use homa_core::wire::{AckRecord, Common, DataPacket, DataRepr, Repr, DATA_HEADER_LEN};
use homa_tokio::{Client, Server, SocketConfig};

const SIZE: usize = 100;

/// `--pin`: the client (main) thread runs on CPU 0 and every server thread
/// on CPU 1, so that no round depends on where the scheduler put them.
static PIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn pin(cpu: usize) {
    if PIN.load(std::sync::atomic::Ordering::Relaxed) {
        let mut set = nix::sched::CpuSet::new();
        set.set(cpu).expect("cpu index");
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).expect("pin");
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn p50(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

fn spin_recv(s: &UdpSocket, buf: &mut [u8]) -> (usize, SocketAddr) {
    loop {
        match s.recv_from(buf) {
            Ok(r) => return r,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => panic!("recv: {e}"),
        }
    }
}

/// Raw UDP, each end on its own spinning thread: the P50 round trip, µs.
fn udp_round(n: usize) -> f64 {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let b_addr = b.local_addr().unwrap();
    let warm = 1_000;
    let server = std::thread::spawn(move || {
        pin(1);
        let mut buf = vec![0u8; 2048];
        for _ in 0..warm + n {
            let (len, from) = spin_recv(&b, &mut buf);
            b.send_to(&buf[..len], from).unwrap();
        }
    });
    let body = vec![7u8; SIZE];
    let mut buf = vec![0u8; 2048];
    let mut rtts = Vec::with_capacity(n);
    for i in 0..warm + n {
        let start = Instant::now();
        a.send_to(&body, b_addr).unwrap();
        let (len, _) = spin_recv(&a, &mut buf);
        assert_eq!(len, SIZE);
        if i >= warm {
            rtts.push(start.elapsed());
        }
    }
    server.join().unwrap();
    p50(rtts)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `s`, non-blocking and sending at Homa's top priority (so that a Homa
/// datapath steers what it sends into its fast queue, as it would a short
/// message from a Homa peer).
fn raw_homa_socket(s: UdpSocket) -> UdpSocket {
    s.set_nonblocking(true).unwrap();
    socket2::SockRef::from(&s).set_tos_v4(7 << 5).unwrap();
    s
}

/// A Homa echo server with busy polling on a thread of its own (CPU 1 with
/// `--pin`); `stop` ends it.
struct EchoServer {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl EchoServer {
    fn start(config: &SocketConfig) -> EchoServer {
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let config = config.clone();
        let thread = std::thread::spawn(move || {
            pin(1);
            runtime().block_on(async move {
                let server = Server::bind("127.0.0.1:0".parse().unwrap(), config)
                    .await
                    .unwrap();
                addr_tx.send(server.local_addr()).unwrap();
                let s = server.clone();
                let serving = tokio::spawn(async move {
                    while let Some(req) = s.next_request().await {
                        let b = req.body().clone();
                        let _ = req.respond(b);
                    }
                });
                let _ = stop_rx.await;
                server.shutdown();
                serving.abort();
            })
        });
        let addr = addr_rx.recv().unwrap();
        EchoServer { addr, stop, thread }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().unwrap();
    }
}

/// A Homa client's round trips to `dest`: 1,000 calls of warm-up (the peer
/// state, the allocator's pools, the spin), then `n` timed ones.
async fn timed_calls(config: SocketConfig, dest: SocketAddr, n: usize) -> Vec<Duration> {
    let client = Client::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let body = Bytes::from(vec![7u8; SIZE]);
    for _ in 0..1_000 {
        client.call(dest, body.clone()).await.unwrap();
    }
    let mut rtts = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let r = client.call(dest, body.clone()).await.unwrap();
        rtts.push(start.elapsed());
        assert_eq!(r.len(), SIZE);
    }
    rtts
}

/// The header of a one-packet DATA message of `len` bytes.
fn data_header(
    sport: u16,
    dport: u16,
    sender_id: u64,
    len: u32,
    ack: AckRecord,
) -> [u8; DATA_HEADER_LEN] {
    let mut b = [0u8; DATA_HEADER_LEN];
    DataRepr {
        common: Common {
            sport,
            dport,
            sender_id,
        },
        message_length: len,
        incoming: len,
        ack,
        cutoff_version: 0,
        retransmit: false,
        flags: 0,
        offset: 0,
    }
    .emit(&mut DataPacket::new_unchecked(&mut b[..]));
    b
}

/// Half of Homa: a Homa `Client` against a raw UDP thread that answers
/// each request packet with a response packet built by hand (no engine,
/// no runtime), spinning on `recv_from`. The P50 round trip, µs.
fn homa_client_raw_server(config: &SocketConfig, n: usize) -> f64 {
    // Homa servers listen on ports up to 32767 (clients get the ones above).
    let s = raw_homa_socket(
        (20_000..32_768)
            .find_map(|port| UdpSocket::bind(("127.0.0.1", port)).ok())
            .expect("a free server port"),
    );
    let dest = s.local_addr().unwrap();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        pin(1);
        let mut buf = vec![0u8; 2048];
        let mut out = Vec::with_capacity(2048);
        let port = s.local_addr().unwrap().port();
        loop {
            let (len, from) = match s.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if stop_rx.try_recv().is_ok() {
                        return;
                    }
                    std::hint::spin_loop();
                    continue;
                }
                Err(e) => panic!("recv: {e}"),
            };
            // Answer requests (DATA); ignore the client's control packets.
            let Ok(Repr::Data(d)) = Repr::parse(&buf[..len]) else {
                continue;
            };
            let body = &buf[DATA_HEADER_LEN..len];
            out.clear();
            out.extend_from_slice(&data_header(
                port,
                from.port(),
                d.common.sender_id ^ 1,
                body.len() as u32,
                AckRecord::default(),
            ));
            out.extend_from_slice(body);
            s.send_to(&out, from).unwrap();
        }
    });
    let rtts = runtime().block_on(async {
        tokio::spawn(timed_calls(config.clone(), dest, n))
            .await
            .unwrap()
    });
    let _ = stop_tx.send(());
    server.join().unwrap();
    p50(rtts)
}

/// The other half: a raw UDP client, spinning on `recv_from`, that sends
/// each request as one hand-built DATA packet (acknowledging the previous
/// RPC in it, as a Homa client does) to a Homa `Server`. The P50 round
/// trip, µs.
fn raw_client_homa_server(config: &SocketConfig, n: usize) -> f64 {
    let server = EchoServer::start(config);
    let dest = server.addr;
    let s = raw_homa_socket(UdpSocket::bind("127.0.0.1:0").unwrap());
    let port = s.local_addr().unwrap().port();
    let body = vec![7u8; SIZE];
    let mut buf = vec![0u8; 2048];
    let mut out = Vec::with_capacity(2048);
    let mut rtts = Vec::with_capacity(n);
    let mut ack = AckRecord::default();
    let warm = 1_000;
    for i in 0..warm + n {
        // Client ids are even; the server knows the RPC by id ^ 1.
        let id = 2 * (i as u64 + 1);
        out.clear();
        out.extend_from_slice(&data_header(port, dest.port(), id, SIZE as u32, ack));
        out.extend_from_slice(&body);
        let start = Instant::now();
        s.send_to(&out, dest).unwrap();
        loop {
            let (len, _) = spin_recv(&s, &mut buf);
            if let Ok(Repr::Data(d)) = Repr::parse(&buf[..len]) {
                if d.common.sender_id == id ^ 1 {
                    assert_eq!(len - DATA_HEADER_LEN, SIZE);
                    break;
                }
            }
        }
        if i >= warm {
            rtts.push(start.elapsed());
        }
        ack = AckRecord {
            client_id: id,
            server_port: dest.port(),
        };
    }
    server.stop();
    p50(rtts)
}

/// Homa with busy polling, client and server on their own threads: the P50
/// round trip, µs. The client calls from its runtime's `block_on` future,
/// or from a task spawned on it (`spawned`), as `homa-perf` does.
fn homa_round(config: &SocketConfig, n: usize, spawned: bool) -> f64 {
    let server = EchoServer::start(config);
    let calls = timed_calls(config.clone(), server.addr, n);
    let rtts = runtime().block_on(async {
        if spawned {
            tokio::spawn(calls).await.unwrap()
        } else {
            calls.await
        }
    });
    server.stop();
    p50(rtts)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000)
        .max(1);
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|a| a.parse().ok())
        .unwrap_or(15)
        .max(1);
    if args.iter().any(|a| a == "--pin") {
        PIN.store(true, std::sync::atomic::Ordering::Relaxed);
        pin(0);
    }
    let mut config = SocketConfig::default();
    config.busy_poll = Some(Duration::from_micros(100));
    if args.iter().any(|a| a == "--one-queue") {
        config.udp.fast_queue_priority = None;
    }
    let (mut udp, mut spawned, mut block_on) = (Vec::new(), Vec::new(), Vec::new());
    let (mut spawned_ratio, mut block_on_ratio) = (Vec::new(), Vec::new());
    let halves = args.iter().any(|a| a == "--halves");
    let (mut client_half, mut server_half) = (Vec::new(), Vec::new());
    let (mut client_half_ratio, mut server_half_ratio) = (Vec::new(), Vec::new());
    // Interleaved, in alternating order, so that a burst of load from
    // elsewhere hits all three.
    for r in 0..rounds {
        let (u, s, b) = if r % 2 == 0 {
            let u = udp_round(n);
            let s = homa_round(&config, n, true);
            (u, s, homa_round(&config, n, false))
        } else {
            let b = homa_round(&config, n, false);
            let s = homa_round(&config, n, true);
            (udp_round(n), s, b)
        };
        udp.push(u);
        spawned.push(s);
        block_on.push(b);
        spawned_ratio.push(s / u);
        block_on_ratio.push(b / u);
        if halves {
            let c = homa_client_raw_server(&config, n);
            let v = raw_client_homa_server(&config, n);
            client_half.push(c);
            server_half.push(v);
            client_half_ratio.push(c / u);
            server_half_ratio.push(v / u);
        }
    }
    println!(
        "100-byte round trips, busy-polled, client and server on two threads, \
         {n} per round, {rounds} rounds (medians of the rounds' P50s and ratios)"
    );
    println!(
        "  raw UDP, spinning (floor)             {:>8.2} µs",
        median(udp)
    );
    println!(
        "  homa-tokio, calls from a spawned task {:>8.2} µs  {:>5.2}×",
        median(spawned),
        median(spawned_ratio)
    );
    println!(
        "  homa-tokio, calls from block_on       {:>8.2} µs  {:>5.2}×",
        median(block_on),
        median(block_on_ratio)
    );
    if halves {
        println!(
            "  homa-tokio client, raw UDP server     {:>8.2} µs  {:>5.2}×",
            median(client_half),
            median(client_half_ratio)
        );
        println!(
            "  raw UDP client, homa-tokio server     {:>8.2} µs  {:>5.2}×",
            median(server_half),
            median(server_half_ratio)
        );
    }
}
