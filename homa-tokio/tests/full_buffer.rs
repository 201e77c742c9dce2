//! The UDP datapath when the socket's send buffer fills (as root).
//!
//! On plain loopback a UDP send never meets a full buffer: the kernel hands
//! the space back as it delivers the datagram. Here the test runs in a
//! network namespace of its own whose loopback has a rate-limiting queue
//! (`tc ... tbf`), so datagrams wait in the queue holding the sender's
//! buffer, sends fail with EAGAIN, and the datapath must register for write
//! readiness, wait for room and carry on. A 1 MB RPC must come back intact,
//! and the datapath must have waited at least once. Skipped, with the reason
//! printed, when not root or without iproute2. The namespace is removed
//! however the test ends.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use homa_tokio::{Client, Server, Socket, SocketConfig, UdpConfig, UdpDatapath};

fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root: network namespaces need CAP_NET_ADMIN".into());
    }
    for tool in ["ip", "tc"] {
        if Command::new(tool).arg("-V").output().is_err() {
            return Some(format!("`{tool}` (iproute2) not installed"));
        }
    }
    None
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A network namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(name: String) -> Result<Netns, String> {
        let _ = run(&["ip", "netns", "del", &name]);
        run(&["ip", "netns", "add", &name])?;
        Ok(Netns(name))
    }

    fn exec(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["ip", "netns", "exec", &self.0];
        all.extend_from_slice(args);
        run(&all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.0]);
    }
}

#[test]
fn a_full_send_buffer_is_waited_out() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED a_full_send_buffer_is_waited_out: {why}");
        return;
    }
    let ns = Netns::new(format!("homa-tokio-fullbuf-{}", std::process::id())).expect("netns");
    ns.exec(&["ip", "link", "set", "lo", "up"]).expect("lo up");
    // 100 Mbit/s with room for a second of backlog: datagrams queue (and
    // hold their sender's buffer) rather than being dropped.
    ns.exec(&[
        "tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "100mbit", "burst", "16kb",
        "latency", "1s",
    ])
    .expect("tc tbf on lo");
    let path = format!("/var/run/netns/{}", ns.0);

    // setns changes the calling thread's network namespace only: do all the
    // networking on a thread of its own.
    let result = std::thread::spawn(move || {
        let f = std::fs::File::open(&path).expect("open netns");
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut udp = UdpConfig::default();
            // Small buffers (the kernel doubles the figure): a few dozen
            // packets fill them.
            udp.socket_buffer = 32 * 1024;
            let mut config = SocketConfig::default();
            config.udp = udp.clone();
            config.engine.timeout = Duration::from_secs(10);

            let server_addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
            let server_dp = Arc::new(UdpDatapath::bind(server_addr, &udp).expect("server bind"));
            let server = Server::from_socket(
                Socket::with_datapath(server_dp.clone(), config.clone()).expect("server"),
            );
            let s = server.clone();
            tokio::spawn(async move {
                while let Some(req) = s.next_request().await {
                    let b = req.body().clone();
                    let _ = req.respond(b);
                }
            });

            let client_dp = Arc::new(
                UdpDatapath::bind("127.0.0.1:0".parse().unwrap(), &udp).expect("client bind"),
            );
            let client = Client::from_socket(
                Socket::with_datapath(client_dp.clone(), config).expect("client"),
            );
            let body = homa_core::fuzzing::pattern(1_000_000, 7);
            let got = client
                .call(server_addr, body.clone())
                .await
                .expect("RPC through a full send buffer");
            assert_eq!(got, body, "response differs from the request");
            (client_dp.full_buffer_waits(), server_dp.full_buffer_waits())
        })
    })
    .join();
    let (client_waits, server_waits) = result.expect("test thread panicked");
    assert!(
        client_waits + server_waits > 0,
        "no send met a full buffer: the test did not exercise the path"
    );
    eprintln!("full-buffer waits: client {client_waits}, server {server_waits}");
}
