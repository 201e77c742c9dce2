//! (a) No privileges: two ports joined back to back by DPDK's `net_ring`
//! driver in one process (one EAL, two ports, two engines on one polling
//! thread), real RPCs from 1 byte to 1 MiB verified byte for byte, ARP
//! included; then over a second pair that drops every 7th packet each way,
//! so the engine's loss recovery has to work. One test per binary: EAL starts once per process.

use std::net::Ipv4Addr;
use std::time::Duration;

use homa_core::fuzzing::pattern;
use homa_dpdk::{Device, Dpdk, EalConfig, Poller, PollerConfig, Port, PortConfig};
use homa_tokio::{Client, Server, SocketConfig};

#[test]
fn ring_pair_rpcs_from_1_byte_to_1_mib() {
    let dpdk = Dpdk::init(&EalConfig::default()).expect("EAL starts without privileges");
    let runtime_dir = dpdk.runtime_dir().map(|p| p.to_path_buf());
    let (pa, pb) = dpdk.ring_pair().expect("ring pair");
    let a = Port::open(
        &dpdk,
        PortConfig::new(Device::PortId(pa), Ipv4Addr::new(10, 9, 0, 1), 4001),
    )
    .expect("port a");
    let b = Port::open(
        &dpdk,
        PortConfig::new(Device::PortId(pb), Ipv4Addr::new(10, 9, 0, 2), 4002),
    )
    .expect("port b");
    assert_ne!(a.mac(), b.mac(), "ring ports have distinct MACs");
    // A second pair that loses every 7th packet each way: the engine's
    // loss recovery (RESEND, retransmission) must make up for it.
    let (pc, pd) = dpdk.ring_pair().expect("ring pair");
    let lossy = |id, ip, port| {
        let mut cfg = PortConfig::new(Device::PortId(id), ip, port);
        cfg.drop_every = Some(7);
        Port::open(&dpdk, cfg).expect("lossy port")
    };
    let c = lossy(pc, Ipv4Addr::new(10, 9, 1, 1), 4003);
    let d = lossy(pd, Ipv4Addr::new(10, 9, 1, 2), 4004);
    let mut config = SocketConfig::default();
    config.engine.max_message_length = 1 << 20;
    let (poller, mut sockets) =
        Poller::spawn(PollerConfig::default(), vec![a, b, c, d], config).expect("poller");
    let lossy_server = sockets.pop().unwrap();
    let lossy_client = sockets.pop().unwrap();
    let server_socket = sockets.pop().unwrap();
    let client_socket = sockets.pop().unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = Server::from_socket(server_socket);
        let addr = server.local_addr();
        let srv = server.clone();
        let echo = tokio::spawn(async move {
            while let Some(req) = srv.next_request().await {
                // Echo reversed, so a response is not the request by accident.
                let mut body = req.body().to_vec();
                body.reverse();
                req.respond(body.into()).expect("respond");
            }
        });
        let client = Client::from_socket(client_socket);
        let sizes = [
            1usize,
            2,
            100,
            1_000,
            1_452,
            1_453,
            5_000,
            40_000,
            100_000,
            500_000,
            1_000_000,
            1 << 20,
        ];
        for (i, &len) in sizes.iter().enumerate() {
            let body = pattern(len, i as u64);
            let got =
                tokio::time::timeout(Duration::from_secs(30), client.call(addr, body.clone()))
                    .await
                    .unwrap_or_else(|_| panic!("{len}-byte RPC timed out"))
                    .unwrap_or_else(|e| panic!("{len}-byte RPC failed: {e}"));
            let mut want = body.to_vec();
            want.reverse();
            assert!(got[..] == want[..], "{len}-byte response differs");
        }
        // Several at once, mixed sizes.
        let calls: Vec<_> = (0..32)
            .map(|i| {
                let len = [7usize, 3_000, 70_000, 250_000][i % 4];
                let body = pattern(len, 1000 + i as u64);
                let call = client.call(addr, body.clone());
                async move { (body, call.await) }
            })
            .collect();
        for (body, got) in futures::future::join_all(calls).await {
            let got = got.expect("concurrent RPC");
            let mut want = body.to_vec();
            want.reverse();
            assert!(
                got[..] == want[..],
                "{}-byte concurrent response differs",
                body.len()
            );
        }
        server.shutdown();
        echo.await.unwrap();

        // Over the lossy pair.
        let server = Server::from_socket(lossy_server);
        let addr = server.local_addr();
        let srv = server.clone();
        let echo = tokio::spawn(async move {
            while let Some(req) = srv.next_request().await {
                let body = req.body().clone();
                req.respond(body).expect("respond");
            }
        });
        let client = Client::from_socket(lossy_client);
        for (i, len) in [1usize, 1_000, 3_000, 20_000, 100_000, 1_000_000]
            .into_iter()
            .enumerate()
        {
            let body = pattern(len, 500 + i as u64);
            let got =
                tokio::time::timeout(Duration::from_secs(60), client.call(addr, body.clone()))
                    .await
                    .unwrap_or_else(|_| panic!("lossy {len}-byte RPC timed out"))
                    .unwrap_or_else(|e| panic!("lossy {len}-byte RPC failed: {e}"));
            assert!(got == body, "lossy {len}-byte response differs");
        }
        server.shutdown();
        echo.await.unwrap();
    });
    drop(rt);

    let sa = poller.stats(0).unwrap();
    let sb = poller.stats(1).unwrap();
    eprintln!("port a: {sa:?}\nport b: {sb:?}");
    assert!(sa.rx_homa > 0 && sb.rx_homa > 0);
    assert_eq!(
        sa.arp_requests_tx, 1,
        "the client resolved the server by ARP"
    );
    assert_eq!(sb.arp_replies_tx, 1);
    assert!(sa.arp_resolved >= 1 && sb.arp_resolved >= 1);
    assert_eq!(sa.rx_bad_checksum + sb.rx_bad_checksum, 0);
    let (sc, sd) = (poller.stats(2).unwrap(), poller.stats(3).unwrap());
    eprintln!("lossy c: {sc:?}\nlossy d: {sd:?}");
    assert!(sc.rx_injected_drops > 0 && sd.rx_injected_drops > 0);
    poller.shutdown();
    assert_eq!(dpdk.mbufs_in_use(), 0, "no mbuf leaked");
    drop(dpdk);
    if let Some(dir) = runtime_dir {
        assert!(!dir.exists(), "{} removed", dir.display());
    }
}
