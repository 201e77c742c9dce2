//! (c) Bad frames are dropped and counted: truncated, wrong EtherType,
//! wrong IP protocol, bad IP header (version, header length, total length,
//! checksum), fragments, and frames for another host or Homa port; an
//! 802.1Q-tagged Homa frame is accepted; ARP retries and static entries. Two
//! `net_ring` ports back to back: one injects raw frames, the other
//! receives them. No privileges needed.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use homa_dpdk::wire::{checksum, frame_header_len, write_headers, MacAddr, VlanTag};
use homa_dpdk::{Device, Dpdk, EalConfig, Port, PortConfig};

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 2);
const B_PORT: u16 = 4000;

/// A valid frame from a to b carrying a 28-byte Homa header (a BUSY
/// packet from Homa port 0x8001 to `dport`).
fn homa_frame(dst_mac: MacAddr, src_mac: MacAddr, dst_ip: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut homa = [0u8; 28];
    homa[0..2].copy_from_slice(&0x8001u16.to_be_bytes());
    homa[2..4].copy_from_slice(&dport.to_be_bytes());
    homa[11] = 0x14; // BUSY
    homa[12] = 0x50;
    homa[20..28].copy_from_slice(&42u64.to_be_bytes());
    let hl = frame_header_len(None);
    let mut f = vec![0u8; hl + homa.len()];
    write_headers(
        &mut f,
        dst_mac,
        src_mac,
        None,
        3,
        A_IP,
        dst_ip,
        1,
        homa.len(),
    );
    f[hl..].copy_from_slice(&homa);
    f
}

/// Recompute the IPv4 header checksum after an edit.
fn fix_checksum(f: &mut [u8]) {
    f[24] = 0;
    f[25] = 0;
    let ihl = usize::from(f[14] & 0xf) * 4;
    let c = checksum(&f[14..14 + ihl.clamp(20, f.len() - 14)]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn bad_frames_are_dropped_and_counted() {
    let dpdk = Dpdk::init(&EalConfig::default()).expect("EAL");
    let runtime_dir = dpdk.runtime_dir().map(|p| p.to_path_buf());
    let (pa, pb) = dpdk.ring_pair().expect("ring pair");
    let mut a = Port::open(&dpdk, PortConfig::new(Device::PortId(pa), A_IP, 4001)).unwrap();
    let mut b = Port::open(&dpdk, PortConfig::new(Device::PortId(pb), B_IP, B_PORT)).unwrap();
    let (am, bm) = (a.mac(), b.mac());
    let good = homa_frame(bm, am, B_IP, B_PORT);

    // The same packet in an 802.1Q tag (priority in PCP) is good too.
    let tagged = {
        let hl = frame_header_len(Some(VlanTag { vid: 7 }));
        let mut f = vec![0u8; hl + 28];
        write_headers(
            &mut f,
            bm,
            am,
            Some(VlanTag { vid: 7 }),
            6,
            A_IP,
            B_IP,
            2,
            28,
        );
        f[hl..].copy_from_slice(&good[34..]);
        f
    };
    let mut frames: Vec<(&str, Vec<u8>)> = vec![("good", good.clone()), ("tagged", tagged)];
    frames.push(("truncated: 10 bytes", good[..10].to_vec()));
    frames.push(("truncated: half an IP header", good[..24].to_vec()));
    frames.push(("truncated: IP total length past the frame", {
        let mut f = good.clone();
        f.truncate(f.len() - 8);
        f
    }));
    frames.push(("wrong ethertype (IPv6)", {
        let mut f = good.clone();
        f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        f
    }));
    frames.push(("wrong IP protocol (UDP)", {
        let mut f = good.clone();
        f[23] = 17;
        fix_checksum(&mut f);
        f
    }));
    frames.push(("bad IP checksum", {
        let mut f = good.clone();
        f[24] ^= 0x55;
        f
    }));
    frames.push(("bad IP version", {
        let mut f = good.clone();
        f[14] = 0x65;
        fix_checksum(&mut f);
        f
    }));
    frames.push(("bad IP header length", {
        let mut f = good.clone();
        f[14] = 0x43;
        f
    }));
    frames.push(("IP total length below the header", {
        let mut f = good.clone();
        f[16..18].copy_from_slice(&10u16.to_be_bytes());
        fix_checksum(&mut f);
        f
    }));
    frames.push(("fragment", {
        let mut f = good.clone();
        f[20..22].copy_from_slice(&0x2000u16.to_be_bytes()); // more fragments
        fix_checksum(&mut f);
        f
    }));
    frames.push((
        "another MAC",
        homa_frame(MacAddr([2, 9, 9, 9, 9, 9]), am, B_IP, B_PORT),
    ));
    frames.push((
        "another IP",
        homa_frame(bm, am, Ipv4Addr::new(10, 8, 0, 77), B_PORT),
    ));
    frames.push(("another Homa port", homa_frame(bm, am, B_IP, B_PORT + 1)));

    for (what, f) in &frames {
        assert!(a.send_raw(f), "queued: {what}");
    }
    a.flush();
    let mut delivered = Vec::new();
    let mut got = 0;
    for _ in 0..100 {
        got += b.recv(&mut |from, data| delivered.push((from, data)));
        if got >= frames.len() {
            break;
        }
    }
    assert_eq!(got, frames.len(), "every frame arrived");
    let s = b.stats();
    eprintln!("{s:?}");
    assert_eq!(delivered.len(), 2, "only the good frames are delivered");
    for (from, packet) in &delivered {
        assert_eq!(*from, "10.8.0.1:32769".parse().unwrap());
        assert_eq!(&packet[..], &good[34..]);
    }
    assert_eq!(s.rx_frames, frames.len() as u64);
    assert_eq!(s.rx_homa, 2);
    assert_eq!(s.rx_truncated, 3);
    assert_eq!(s.rx_bad_ethertype, 1);
    assert_eq!(s.rx_bad_protocol, 1);
    assert_eq!(s.rx_bad_checksum, 1);
    assert_eq!(s.rx_bad_ip_header, 3);
    assert_eq!(s.rx_fragments, 1);
    assert_eq!(s.rx_not_for_us, 2);
    assert_eq!(s.rx_wrong_port, 1);

    // ARP: a neighbour that never answers is asked `arp_attempts` times,
    // then its waiting packets are dropped and counted; a static entry
    // needs no ARP at all.
    let mut engine =
        homa_core::Endpoint::new(homa_core::Config::default(), a.local_addr()).unwrap();
    let t0 = homa_core::Instant::ZERO;
    engine
        .send_request(t0, "10.8.0.99:4000".parse().unwrap(), vec![1; 10].into())
        .unwrap();
    let t = engine.poll_transmit(t0).expect("a DATA packet");
    let start = Instant::now();
    a.send(start, &t);
    for i in 1..=10 {
        a.poll_arp(start + Duration::from_millis(60 * i));
    }
    a.flush();
    let s = a.stats();
    assert_eq!(s.arp_requests_tx, 5, "{s:?}");
    assert_eq!(s.arp_drops, 1, "{s:?}");
    assert_eq!(s.tx_homa, 0);
    a.add_neighbor(Ipv4Addr::new(10, 8, 0, 98), MacAddr([2, 1, 2, 3, 4, 5]));
    let mut engine =
        homa_core::Endpoint::new(homa_core::Config::default(), a.local_addr()).unwrap();
    engine
        .send_request(t0, "10.8.0.98:4000".parse().unwrap(), vec![1; 10].into())
        .unwrap();
    a.send(start, &engine.poll_transmit(t0).unwrap());
    a.flush();
    assert_eq!(a.stats().tx_homa, 1);
    assert_eq!(
        a.stats().arp_requests_tx,
        5,
        "no ARP for a static neighbour"
    );
    // b saw the ARP requests (not for it) and the frame (not its MAC).
    let mut more = 0;
    for _ in 0..100 {
        more += b.recv(&mut |_, _| panic!("nothing is for b"));
    }
    assert_eq!(more, 6);

    // Every frame was freed by the receiver: nothing of a's pool is held.
    assert_eq!(a.mbufs_in_use(), 0, "no mbuf leaked");
    assert_eq!(b.mbufs_in_use(), 0, "no mbuf leaked");
    drop((a, b));
    assert_eq!(dpdk.mbufs_in_use(), 0);
    drop(dpdk);
    if let Some(dir) = runtime_dir {
        assert!(!dir.exists());
    }
}
