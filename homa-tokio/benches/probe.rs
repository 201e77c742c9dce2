//! What one busy-poll probe of an empty UDP socket costs, by system call.
//!
//! The UDP datapath's probe (`Datapath::try_recv_urgent`) is a `recvmsg`
//! of one datagram; this compares it with the alternatives on the same
//! empty, non-blocking socket: `recvfrom` (no control message, so no GRO
//! segment size) and `recvmmsg` of one (nix builds and the kernel copies a
//! header array on every call). The time between two probes is how late a
//! busy-polling driver notices a packet.
//!
//! `cargo bench -p homa-tokio --bench probe [-- CALLS]` prints the median
//! over several rounds of each, interleaved.

use std::io::IoSliceMut;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::Instant;

use nix::sys::socket::{recvmmsg, recvmsg, MsgFlags, MultiHeaders, SockaddrStorage};

const ROUNDS: usize = 5;

fn per_call(n: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_nonblocking(true).unwrap();
    let fd = s.as_raw_fd();
    let mut buf = vec![0u8; 65_536];
    let mut cmsg = nix::cmsg_space!(i32);
    let (mut from, mut mmsg, mut msg) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        from.push(per_call(n, || {
            assert!(s.recv_from(&mut buf).is_err());
        }));
        mmsg.push(per_call(n, || {
            let mut headers =
                MultiHeaders::<SockaddrStorage>::preallocate(1, Some(nix::cmsg_space!(i32)));
            let mut iovs = [[IoSliceMut::new(&mut buf[..])]];
            let r = recvmmsg(
                fd,
                &mut headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            )
            .map(|m| m.count());
            assert!(r.is_err());
        }));
        msg.push(per_call(n, || {
            let mut iov = [IoSliceMut::new(&mut buf[..])];
            let r =
                recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT)
                    .map(|m| m.bytes);
            assert!(r.is_err());
        }));
    }
    println!("probe of an empty UDP socket, {n} calls per round, median of {ROUNDS} rounds");
    println!("  recvfrom            {:>6.0} ns", median(from));
    println!("  recvmsg (the probe) {:>6.0} ns", median(msg));
    println!("  recvmmsg of one     {:>6.0} ns", median(mmsg));
}
