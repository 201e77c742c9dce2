//! The two kernel-path floors for single-packet messages: `udp` (blocking
//! sockets, a request/response ping-pong) and `udp-spin` (the same with
//! non-blocking sockets busy-polled at both ends). No retransmission: a
//! datagram lost is an error.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::load::{response_size, Mode, ResponseSpec, Rng, Sizes};
use crate::stats::{Recorder, StallMeter};
use crate::wire::{self, UDP_HEADER, UDP_MAX};

/// A response that has not come after this long is lost.
const LOST_AFTER: Duration = Duration::from_secs(1);

fn bind_for(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = if server.is_ipv4() {
        UdpSocket::bind("0.0.0.0:0")?
    } else {
        UdpSocket::bind("[::]:0")?
    };
    // Big buffers: many requests may be in flight at once.
    let s2 = socket2::Socket::from(s);
    let _ = s2.set_recv_buffer_size(4 << 20);
    let _ = s2.set_send_buffer_size(4 << 20);
    Ok(s2.into())
}

fn request(buf: &mut [u8], id: u64, code: u32, size: u64) -> usize {
    let len = (size as usize).clamp(UDP_HEADER, UDP_MAX as usize);
    buf[..8].copy_from_slice(&id.to_be_bytes());
    buf[8..12].copy_from_slice(&code.to_be_bytes());
    len
}

fn expected_response(resp: u64) -> usize {
    (resp as usize).max(8)
}

/// Checks that `sizes` and `response` fit in one packet.
pub fn check_single_packet(sizes: &Sizes, response: ResponseSpec) -> Result<(), String> {
    let max = sizes.max();
    let resp = response_size(response, max);
    if max > UDP_MAX || resp > UDP_MAX {
        return Err(format!(
            "udp and udp-spin carry single-packet messages only (up to {UDP_MAX} bytes); \
             this load has messages up to {} bytes",
            max.max(resp)
        ));
    }
    Ok(())
}

/// A client socket for sequential ping-pong RPCs (closed loop, idle RTT).
pub struct PingPong {
    sock: UdpSocket,
    spin: bool,
    code: u32,
    next_id: u64,
    buf: Vec<u8>,
    rbuf: Vec<u8>,
}

impl PingPong {
    /// A new socket; `spin` busy-polls a non-blocking socket.
    pub fn new(server: SocketAddr, spin: bool, response: ResponseSpec) -> std::io::Result<Self> {
        let sock = bind_for(server)?;
        if spin {
            sock.set_nonblocking(true)?;
        } else {
            sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        }
        Ok(PingPong {
            sock,
            spin,
            code: wire::code(response),
            next_id: 1,
            buf: vec![0u8; 2048],
            rbuf: vec![0u8; 2048],
        })
    }

    /// One RPC; returns when the response came (or failed).
    pub fn call(&mut self, dest: SocketAddr, size: u64, resp: u64) -> Result<(), String> {
        let id = self.next_id;
        self.next_id += 1;
        let len = request(&mut self.buf, id, self.code, size);
        let start = Instant::now();
        loop {
            match self.sock.send_to(&self.buf[..len], dest) {
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
                Err(e) => return Err(format!("udp send: {e}")),
            }
        }
        loop {
            match self.sock.recv_from(&mut self.rbuf) {
                Ok((n, _)) if n >= 8 => {
                    let got = u64::from_be_bytes(self.rbuf[..8].try_into().expect("8 bytes"));
                    if got != id {
                        continue; // a late response to an RPC given up on
                    }
                    if n != expected_response(resp) {
                        return Err(format!("udp response of {n} bytes"));
                    }
                    return Ok(());
                }
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if start.elapsed() > LOST_AFTER {
                        return Err("udp response lost".into());
                    }
                    if self.spin {
                        std::hint::spin_loop();
                    }
                }
                Err(e) => return Err(format!("udp recv: {e}")),
            }
        }
    }
}

/// Everything a UDP load needs.
pub struct UdpLoad {
    /// Servers.
    pub servers: Vec<SocketAddr>,
    /// Busy polling.
    pub spin: bool,
    /// Request sizes.
    pub sizes: Sizes,
    /// Response sizes.
    pub response: ResponseSpec,
    /// Closed or open loop.
    pub mode: Mode,
    /// Stop issuing at this time.
    pub stop: Instant,
    /// Open loop: most RPCs outstanding.
    pub max_outstanding: usize,
    /// Seed.
    pub seed: u64,
}

/// Run a UDP load to completion (threads), recording into `rec`.
pub fn run(load: UdpLoad, rec: &Arc<Recorder>) -> Result<(), String> {
    match load.mode {
        Mode::Closed(n) => {
            let mut threads = Vec::new();
            for i in 0..n {
                let mut pp = PingPong::new(load.servers[0], load.spin, load.response)
                    .map_err(|e| format!("udp socket: {e}"))?;
                let rec = rec.clone();
                let (servers, sizes, response, stop) = (
                    load.servers.clone(),
                    load.sizes.clone(),
                    load.response,
                    load.stop,
                );
                let mut rng = Rng::new(load.seed.wrapping_add(i as u64 * 7919));
                threads.push(std::thread::spawn(move || {
                    while Instant::now() < stop {
                        let size = sizes.sample(&mut rng);
                        let resp = response_size(response, size);
                        let dest = servers[rng.below(servers.len())];
                        let start = Instant::now();
                        match pp.call(dest, size, resp) {
                            Ok(()) => rec.ok(size, resp, start),
                            Err(e) => rec.err(start, e),
                        }
                    }
                }));
            }
            for t in threads {
                let _ = t.join();
            }
            Ok(())
        }
        Mode::Open(rate) => open_loop(load, rate, rec),
    }
}

type InFlight = Mutex<HashMap<u64, (Instant, u64, u64)>>;

fn open_loop(load: UdpLoad, rate: f64, rec: &Arc<Recorder>) -> Result<(), String> {
    let sock = Arc::new(bind_for(load.servers[0]).map_err(|e| e.to_string())?);
    let inflight: Arc<InFlight> = Arc::new(Mutex::new(HashMap::new()));
    let sending = Arc::new(AtomicBool::new(true));
    let code = wire::code(load.response);
    let mut rng = Rng::new(load.seed);

    let receive = {
        let (sock, inflight, sending, rec) =
            (sock.clone(), inflight.clone(), sending.clone(), rec.clone());
        let spin = load.spin;
        move || {
            let mut rbuf = vec![0u8; 2048];
            let mut last_sent = None;
            loop {
                if !sending.load(Ordering::Acquire) {
                    let t = *last_sent.get_or_insert_with(Instant::now);
                    let empty = inflight.lock().map(|m| m.is_empty()).unwrap_or(true);
                    if empty || t.elapsed() > LOST_AFTER {
                        break;
                    }
                }
                match sock.recv_from(&mut rbuf) {
                    Ok((n, _)) if n >= 8 => {
                        let id = u64::from_be_bytes(rbuf[..8].try_into().expect("8 bytes"));
                        let hit = inflight.lock().ok().and_then(|mut m| m.remove(&id));
                        if let Some((start, size, resp)) = hit {
                            if n == expected_response(resp) {
                                rec.ok(size, resp, start);
                            } else {
                                rec.err(start, format!("udp response of {n} bytes"));
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        if spin {
                            std::hint::spin_loop();
                        }
                    }
                    Err(_) => break,
                }
            }
            if let Ok(mut m) = inflight.lock() {
                for (_, (start, _, _)) in m.drain() {
                    rec.err(start, "udp response lost");
                }
            }
        }
    };
    if load.spin {
        sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    } else {
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .map_err(|e| e.to_string())?;
    }
    let receiver = std::thread::spawn(receive);

    let mut buf = vec![0u8; 2048];
    let mut meter = StallMeter::default();
    let mut next = Instant::now();
    let mut id = 1u64;
    while next < load.stop {
        let now = Instant::now();
        if now < next {
            let gap = next - now;
            if !load.spin && gap > Duration::from_micros(200) {
                std::thread::sleep(gap - Duration::from_micros(100));
            } else {
                std::hint::spin_loop();
            }
            continue;
        }
        // This thread also sends each request, so its own sends (and a
        // full socket buffer) count towards its lateness here.
        meter.arrival(rec, next, now);
        next += rng.exp_gap(rate);
        let size = load.sizes.sample(&mut rng);
        let resp = response_size(load.response, size);
        let dest = load.servers[rng.below(load.servers.len())];
        {
            let mut m = inflight.lock().map_err(|_| "poisoned")?;
            if m.len() >= load.max_outstanding {
                rec.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            m.insert(id, (Instant::now(), size, resp));
        }
        let len = request(&mut buf, id, code, size);
        id += 1;
        loop {
            match sock.send_to(&buf[..len], dest) {
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
                Err(e) => return Err(format!("udp send: {e}")),
            }
        }
    }
    sending.store(false, Ordering::Release);
    let _ = receiver.join();
    Ok(())
}

/// Serve UDP on `bind` forever (one thread); calls `ready` with the bound
/// address first.
pub fn server(bind: SocketAddr, spin: bool, ready: impl FnOnce(SocketAddr)) -> Result<(), String> {
    let sock = UdpSocket::bind(bind).map_err(|e| format!("udp bind {bind}: {e}"))?;
    let s2 = socket2::Socket::from(sock);
    let _ = s2.set_recv_buffer_size(4 << 20);
    let _ = s2.set_send_buffer_size(4 << 20);
    let sock: UdpSocket = s2.into();
    sock.set_nonblocking(spin).map_err(|e| e.to_string())?;
    ready(sock.local_addr().map_err(|e| e.to_string())?);
    let mut buf = vec![0u8; 65536];
    let mut out = vec![0u8; 65536];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if n >= UDP_HEADER => {
                let code = u32::from_be_bytes(buf[8..12].try_into().expect("4 bytes"));
                let len = wire::response_len(code, n).clamp(8, UDP_MAX as usize);
                out[..8].copy_from_slice(&buf[..8]);
                while let Err(e) = sock.send_to(&out[..len], from) {
                    if e.kind() != ErrorKind::WouldBlock {
                        break;
                    }
                }
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(_) => {} // e.g. ICMP from a client that went away
        }
    }
}
