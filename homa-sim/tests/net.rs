//! Integration tests of the homa-sim network model.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;
use homa_sim::{
    host_addr, Direction, DropReason, Endpoint, Faults, Frame, HostId, LinkSpec, Nanos, Network,
    Node, SwitchId, TapEvent, Topology, TwoTier,
};

const GBPS: u64 = 1_000_000_000;

/// Simple test host: sends whatever is pushed into `out`, records arrivals,
/// optionally echoes frames back and has one programmable timer.
#[derive(Default)]
struct TestHost {
    out: VecDeque<Frame>,
    rx: Vec<(Nanos, Frame)>,
    timer: Option<Nanos>,
    fired: Vec<Nanos>,
    echo: bool,
}

impl Node for TestHost {
    fn on_frame(&mut self, now: Nanos, frame: Frame) {
        if self.echo {
            let mut reply = frame.clone();
            reply.src = frame.dst;
            reply.dst = frame.src;
            self.out.push_back(reply);
        }
        self.rx.push((now, frame));
    }
    fn on_timer(&mut self, now: Nanos) {
        assert!(self.timer.is_some_and(|t| t <= now));
        self.timer = None;
        self.fired.push(now);
    }
    fn poll_frame(&mut self, _now: Nanos) -> Option<Frame> {
        self.out.pop_front()
    }
    fn next_timer(&self) -> Option<Nanos> {
        self.timer
    }
}

fn net_with(topo: Topology, seed: u64) -> Network<TestHost> {
    let n = topo.num_hosts();
    let mut net = Network::new(topo, seed);
    for _ in 0..n {
        net.add_host(TestHost::default());
    }
    net
}

fn frame(from: usize, to: usize, prio: u8, data: Bytes, wire: u32) -> Frame {
    Frame::new(
        host_addr(HostId(from)),
        host_addr(HostId(to)),
        prio,
        data,
        wire,
    )
}

fn seq_data(seq: u32) -> Bytes {
    let mut v = seq.to_be_bytes().to_vec();
    v.resize(64, 0xAA);
    Bytes::from(v)
}

fn seq_of(f: &Frame) -> u32 {
    u32::from_be_bytes(f.data[..4].try_into().unwrap())
}

fn send(net: &mut Network<TestHost>, from: usize, frames: impl IntoIterator<Item = Frame>) {
    net.with_node(HostId(from), |n, _| n.out.extend(frames));
}

fn link10() -> LinkSpec {
    LinkSpec::new(10 * GBPS, 100)
}

fn arrivals(net: &Network<TestHost>, h: usize) -> Vec<Nanos> {
    net.node(HostId(h)).rx.iter().map(|(t, _)| *t).collect()
}

#[test]
fn serialization_rounding() {
    assert_eq!(LinkSpec::new(10 * GBPS, 0).serialization_ns(1500), 1200);
    assert_eq!(LinkSpec::new(40 * GBPS, 0).serialization_ns(1000), 200);
    assert_eq!(LinkSpec::new(3 * GBPS, 0).serialization_ns(1), 3); // 2.67 rounds up
                                                                   // large frames on slow links take the 128-bit path
    assert_eq!(
        LinkSpec::new(8, 0).serialization_ns(u32::MAX),
        u64::from(u32::MAX) * GBPS
    );
}

#[test]
fn addresses() {
    assert_eq!(host_addr(HostId(0)).to_string(), "10.0.0.1:4000");
    assert_eq!(host_addr(HostId(300)).to_string(), "10.1.44.1:4000");
    assert_eq!(
        homa_sim::host_index(&host_addr(HostId(300))),
        Some(HostId(300))
    );
    let net = net_with(Topology::star(3, link10(), 250), 1);
    assert_eq!(net.host_of(&host_addr(HostId(2))), Some(HostId(2)));
    assert_eq!(net.host_of(&host_addr(HostId(3))), None);
    assert_eq!(net.host_of(&"10.0.1.2:4000".parse().unwrap()), None);
    assert_eq!(net.host_of(&"11.0.1.1:4000".parse().unwrap()), None);
    assert_eq!(net.host_of(&"10.0.9.1:4000".parse().unwrap()), None);
    // the port is ignored
    assert_eq!(
        net.host_of(&"10.0.1.1:9999".parse().unwrap()),
        Some(HostId(1))
    );
}

#[test]
fn star_timing_exact() {
    let mut net = net_with(Topology::star(3, link10(), 250), 1);
    net.with_node(HostId(1), |n, _| n.echo = true);
    // two back-to-back 1500-byte frames: 1200 ns serialization each.
    send(
        &mut net,
        0,
        (0..2).map(|i| frame(0, 1, 0, seq_data(i), 1500)),
    );
    net.run_until(1_000_000);
    let one_way = 1200 + 100 + 250 + 1200 + 100;
    assert_eq!(arrivals(&net, 1), vec![one_way, one_way + 1200]);
    // echoes: each reply leaves host 1 immediately on arrival.
    assert_eq!(arrivals(&net, 0), vec![2 * one_way, 2 * one_way + 1200]);
    assert_eq!(net.now(), 1_000_000);
    assert_eq!(net.stats().frames_delivered, 4);
    let hs = net.host_stats(HostId(1));
    assert_eq!((hs.rx_frames, hs.rx_bytes, hs.rx_busy_ns), (2, 3000, 2400));
    assert_eq!((hs.tx_frames, hs.tx_bytes, hs.tx_busy_ns), (2, 3000, 2400));

    // NIC think time adds once per frame (the NIC pipelines frames).
    let mut net = net_with(Topology::star(2, link10(), 250).with_nic_delay(500), 1);
    send(
        &mut net,
        0,
        (0..2).map(|i| frame(0, 1, 0, seq_data(i), 1500)),
    );
    net.run_until(1_000_000);
    assert_eq!(arrivals(&net, 1), vec![one_way + 500, one_way + 500 + 1200]);
}

#[test]
fn two_tier_timing_exact() {
    let p = TwoTier {
        racks: 2,
        hosts_per_rack: 2,
        host_link: link10(),
        core_link: LinkSpec::new(40 * GBPS, 200),
        aggs: 2,
        switch_delay: 250,
    };
    for nic in [0, 500] {
        let mut net = net_with(Topology::two_tier(&p).with_nic_delay(nic), 9);
        net.with_node(HostId(0), |n, _| {
            n.out.push_back(frame(0, 1, 0, seq_data(0), 1000)); // same rack: 1 switch
        });
        net.run_until(100_000);
        send(&mut net, 0, [frame(0, 2, 0, seq_data(1), 1000)]); // other rack: 3 switches
        net.run_until(200_000);
        let host_hop = 800 + 100;
        let core_hop = 200 + 200;
        assert_eq!(arrivals(&net, 1), vec![nic + host_hop + 250 + host_hop]);
        assert_eq!(
            arrivals(&net, 2),
            vec![100_000 + nic + host_hop + 250 + core_hop + 250 + core_hop + 250 + host_hop]
        );
    }
}

#[test]
fn strict_priority_at_switch_and_nic() {
    let mut net = net_with(Topology::star(6, link10(), 250), 3);
    // incast: 3 senders x 20 low-priority frames toward host 5 build a queue.
    for s in 0..3 {
        send(
            &mut net,
            s,
            (0..20).map(|i| frame(s, 5, 0, seq_data(i), 1500)),
        );
    }
    net.run_until(10_000);
    send(&mut net, 4, [frame(4, 5, 7, seq_data(999), 1500)]);
    net.run_until(1_000_000);
    let rx = &net.node(HostId(5)).rx;
    assert_eq!(rx.len(), 61);
    let pos = rx.iter().position(|(_, f)| f.priority == 7).unwrap();
    let (t_high, _) = rx[pos];
    // arrives at the switch at 10_000 + 1300 + 250, waits at most for the
    // frame being transmitted, then takes 1200 + 100 more.
    assert!(t_high <= 10_000 + 1550 + 1200 + 1300, "{t_high}");
    let overtaken = rx.len() - pos - 1;
    assert!(
        overtaken >= 45,
        "high-priority frame overtook only {overtaken}"
    );
    assert!(net.host_stats(HostId(5)).max_downlink_queue_bytes >= 40 * 1500);

    // NIC: the high-priority frame queued after 10 low ones leaves second.
    let mut net = net_with(Topology::star(2, link10(), 250), 3);
    let mut frames: Vec<Frame> = (0..10).map(|i| frame(0, 1, 1, seq_data(i), 1500)).collect();
    frames.push(frame(0, 1, 6, seq_data(100), 1500));
    send(&mut net, 0, frames);
    net.run_until(1_000_000);
    let order: Vec<u32> = net
        .node(HostId(1))
        .rx
        .iter()
        .map(|(_, f)| seq_of(f))
        .collect();
    assert_eq!(order, vec![0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(net.host_stats(HostId(0)).max_nic_queue_bytes, 10 * 1500);
}

#[test]
fn spraying_uses_all_aggregation_switches() {
    let p = TwoTier {
        racks: 2,
        hosts_per_rack: 2,
        host_link: link10(),
        core_link: LinkSpec::new(40 * GBPS, 200),
        aggs: 4,
        switch_delay: 250,
    };
    let mut net = net_with(Topology::two_tier(&p), 5);
    let n = 4000;
    send(
        &mut net,
        0,
        (0..n).map(|i| frame(0, 3, 0, seq_data(i), 1500)),
    );
    // intra-rack traffic must not touch the aggregation layer
    send(
        &mut net,
        1,
        (0..100).map(|i| frame(1, 0, 0, seq_data(i), 1500)),
    );
    net.run_until(100_000_000);
    assert_eq!(net.node(HostId(3)).rx.len(), n as usize);
    assert_eq!(net.node(HostId(0)).rx.len(), 100);
    let topo = net.topology();
    let mut up_total = 0;
    for a in 0..4 {
        let agg = Endpoint::Switch(SwitchId(2 + a));
        let up = topo.find_port(Endpoint::Switch(SwitchId(0)), agg).unwrap();
        let down = topo.find_port(agg, Endpoint::Switch(SwitchId(1))).unwrap();
        let up_frames = net.port_stats(up).tx_frames;
        assert!((850..=1150).contains(&up_frames), "agg {a}: {up_frames}");
        assert_eq!(net.port_stats(down).tx_frames, up_frames);
        up_total += up_frames;
    }
    assert_eq!(up_total, u64::from(n));
}

/// Sends `n` 1500-byte frames 0 → 1 on a 2-host star with `faults`; returns
/// the receiver's frames and the network.
fn fault_run(faults: Faults, seed: u64, n: u32) -> Network<TestHost> {
    let mut net = net_with(Topology::star(2, link10(), 250), seed);
    net.set_faults(faults);
    send(
        &mut net,
        0,
        (0..n).map(|i| frame(0, 1, 0, seq_data(i), 1500)),
    );
    net.run_until(u64::MAX / 2);
    net
}

#[test]
fn fault_rates_match_probabilities() {
    let n = 20_000u32;
    let nf = f64::from(n);
    let near = |x: u64, expect: f64| (x as f64 - expect).abs() < 0.1 * expect;

    let net = fault_run(
        Faults {
            loss: 0.1,
            ..Faults::NONE
        },
        1,
        n,
    );
    let got = net.node(HostId(1)).rx.len() as u64;
    assert!(near(got, 0.9 * nf), "loss: delivered {got}");
    assert_eq!(got + net.stats().dropped.fault_loss, u64::from(n));

    let net = fault_run(
        Faults {
            duplicate: 0.1,
            ..Faults::NONE
        },
        1,
        n,
    );
    let got = net.node(HostId(1)).rx.len() as u64;
    assert!(near(got - u64::from(n), 0.1 * nf), "dup: delivered {got}");
    assert_eq!(net.stats().duplicated, got - u64::from(n));

    let net = fault_run(
        Faults {
            corrupt: 0.1,
            ..Faults::NONE
        },
        1,
        n,
    );
    let rx = &net.node(HostId(1)).rx;
    assert_eq!(rx.len() as u32, n);
    let bad = rx
        .iter()
        .enumerate()
        .filter(|(i, (_, f))| f.data != seq_data(*i as u32))
        .count() as u64;
    assert!(near(bad, 0.1 * nf), "corrupt: {bad}");
    assert_eq!(bad, net.stats().corrupted);
    assert!(rx.iter().all(|(_, f)| f.data.len() == 64));

    let net = fault_run(
        Faults {
            reorder: 0.2,
            reorder_delay: 20_000,
            ..Faults::NONE
        },
        1,
        n,
    );
    let rx = &net.node(HostId(1)).rx;
    assert_eq!(rx.len() as u32, n);
    assert!(
        near(net.stats().reordered, 0.2 * nf),
        "reordered {}",
        net.stats().reordered
    );
    let mut max_seen = 0;
    let mut inversions = 0u64;
    for (_, f) in rx {
        let s = seq_of(f);
        if s < max_seen {
            inversions += 1;
        }
        max_seen = max_seen.max(s);
    }
    assert!(
        (2_000..5_000).contains(&inversions),
        "inversions {inversions}"
    );
    // reordering does not block the link
    let last = rx.iter().map(|(t, _)| *t).max().unwrap();
    assert!(last <= u64::from(n) * 1200 + 2850 + 20_000, "last {last}");
}

type Trace = Vec<(Nanos, TapEvent, u32, String, Bytes)>;

fn traced_run(seed: u64) -> (Trace, homa_sim::NetStats) {
    let p = TwoTier {
        racks: 2,
        hosts_per_rack: 4,
        host_link: link10(),
        core_link: LinkSpec::new(40 * GBPS, 200),
        aggs: 2,
        switch_delay: 250,
    };
    let mut net = net_with(Topology::two_tier(&p).with_nic_delay(500), seed);
    let trace = Rc::new(RefCell::new(Trace::new()));
    let t2 = trace.clone();
    net.set_tap(Box::new(move |now, ev, f| {
        t2.borrow_mut()
            .push((now, ev, f.wire_bytes, f.dst.to_string(), f.data.clone()))
    }));
    net.set_faults(Faults {
        loss: 0.05,
        duplicate: 0.05,
        reorder: 0.05,
        reorder_delay: 5_000,
        corrupt: 0.05,
    });
    for h in 0..8 {
        send(
            &mut net,
            h,
            (0..200).map(|i| {
                frame(
                    h,
                    (h + 1 + i as usize % 7) % 8,
                    (i % 8) as u8,
                    seq_data(i),
                    200 + i * 7,
                )
            }),
        );
    }
    net.run_until(10_000_000);
    let stats = *net.stats();
    drop(net);
    (Rc::try_unwrap(trace).unwrap().into_inner(), stats)
}

#[test]
fn deterministic_for_a_seed() {
    let (a, sa) = traced_run(42);
    let (b, sb) = traced_run(42);
    let (c, _) = traced_run(43);
    assert!(a.len() > 3000);
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    assert_ne!(a, c);
    // conservation: every sent frame (plus duplicates) is delivered or dropped
    assert_eq!(
        sa.frames_sent + sa.duplicated,
        sa.frames_delivered + sa.dropped.total()
    );
}

#[test]
fn crash_drops_frames_and_timers_restart_brings_new_node() {
    let mut net = net_with(Topology::star(3, link10(), 250), 1);
    net.with_node(HostId(1), |n, _| n.timer = Some(100_000));
    send(
        &mut net,
        0,
        (0..10).map(|i| frame(0, 1, 0, seq_data(i), 1500)),
    );
    net.run_until(5_000); // 2 frames delivered (2850, 4050)
    assert_eq!(net.node(HostId(1)).rx.len(), 2);
    net.crash(HostId(1));
    assert!(net.is_crashed(HostId(1)));
    net.run_until(200_000);
    assert_eq!(net.node(HostId(1)).rx.len(), 2);
    assert!(net.node(HostId(1)).fired.is_empty());
    assert_eq!(net.stats().dropped.host_crashed, 8);

    let fresh = TestHost {
        timer: Some(300_000),
        ..Default::default()
    };
    net.restart(HostId(1), fresh);
    assert!(!net.is_crashed(HostId(1)));
    send(
        &mut net,
        0,
        (0..5).map(|i| frame(0, 1, 0, seq_data(i), 1500)),
    );
    net.run_until(400_000);
    assert_eq!(net.node(HostId(1)).rx.len(), 5);
    assert_eq!(net.node(HostId(1)).fired, vec![300_000]);
    assert_eq!(net.stats().dropped.host_crashed, 8);

    // A crashing sender: the frame already on the wire completes, queued ones vanish.
    send(
        &mut net,
        2,
        (0..10).map(|i| frame(2, 0, 0, seq_data(i), 1500)),
    );
    net.crash(HostId(2));
    net.run_until(500_000);
    assert_eq!(net.node(HostId(0)).rx.len(), 1);
    assert_eq!(net.stats().dropped.host_crashed, 8 + 9);

    // With NIC think time nothing has reached the wire yet.
    let mut net = net_with(Topology::star(2, link10(), 250).with_nic_delay(500), 1);
    send(
        &mut net,
        0,
        (0..10).map(|i| frame(0, 1, 0, seq_data(i), 1500)),
    );
    net.run_until(100);
    net.crash(HostId(0));
    // with_node on a crashed host runs the closure but polls nothing
    send(&mut net, 0, [frame(0, 1, 0, seq_data(0), 1500)]);
    net.run_until(100_000);
    assert_eq!(net.node(HostId(1)).rx.len(), 0);
    assert_eq!(net.stats().dropped.host_crashed, 10);
    assert_eq!(net.node(HostId(0)).out.len(), 1);
}

#[test]
fn timers_follow_latest_next_timer() {
    let mut net = net_with(Topology::star(2, link10(), 250), 1);
    net.with_node(HostId(0), |n, _| n.timer = Some(1_000));
    net.with_node(HostId(0), |n, _| n.timer = Some(3_000));
    net.run_until(2_000);
    assert!(net.node(HostId(0)).fired.is_empty());
    net.run_until(5_000);
    assert_eq!(net.node(HostId(0)).fired, vec![3_000]);
    // a deadline in the past fires at the current time; cancelling works
    net.with_node(HostId(0), |n, now| n.timer = Some(now - 10));
    net.with_node(HostId(1), |n, _| n.timer = Some(6_000));
    net.with_node(HostId(1), |n, _| n.timer = None);
    net.run_until(10_000);
    assert_eq!(net.node(HostId(0)).fired, vec![3_000, 5_000]);
    assert!(net.node(HostId(1)).fired.is_empty());
    assert!(!net.step(), "no events left");
}

#[test]
fn buffer_limit_drops_and_counts() {
    let topo = Topology::star(4, link10(), 250).with_switch_buffer(Some(3_000));
    let mut net = net_with(topo, 1);
    for s in 0..3 {
        send(
            &mut net,
            s,
            (0..10).map(|i| frame(s, 3, 0, seq_data(i), 1500)),
        );
    }
    net.run_until(1_000_000);
    let got = net.node(HostId(3)).rx.len() as u64;
    let st = net.stats().dropped;
    let hs = net.host_stats(HostId(3));
    assert!(st.buffer_overflow > 0);
    assert_eq!(got + st.buffer_overflow, 30);
    assert_eq!(hs.downlink_overflow_drops, st.buffer_overflow);
    assert!(hs.max_downlink_queue_bytes <= 3_000);
    // host NIC queues are unlimited
    assert_eq!(net.host_stats(HostId(0)).max_nic_queue_bytes, 9 * 1500);
}

#[test]
fn saturated_downlink_busy_time() {
    let mut net = net_with(Topology::star(3, link10(), 250), 1);
    for s in 0..2 {
        send(
            &mut net,
            s,
            (0..1000).map(|i| frame(s, 2, 0, seq_data(i), 1500)),
        );
    }
    let t = 1_000_000;
    net.run_until(t);
    let busy = net.host_stats(HostId(2)).rx_busy_ns;
    // busy from the first arrival at the switch (1550) on, including the frame in progress
    assert!(busy >= t - 1550 && busy <= t - 1550 + 1200, "busy {busy}");
    net.run_until(10_000_000);
    let hs = net.host_stats(HostId(2));
    assert_eq!(hs.rx_busy_ns, 2000 * 1200);
    assert_eq!(hs.rx_frames, 2000);
    assert_eq!(
        arrivals(&net, 2).last().copied(),
        Some(1550 + 2000 * 1200 + 100)
    );
}

#[test]
fn filters_unknown_destinations_link_faults_and_tap() {
    let mut net = net_with(Topology::star(3, link10(), 250), 1);
    let log = Rc::new(RefCell::new(Vec::new()));
    let l2 = log.clone();
    net.set_tap(Box::new(move |t, ev, f| {
        l2.borrow_mut().push((t, ev, seq_of(f)))
    }));
    // drop the first priority-7 frame only
    let mut dropped_one = false;
    net.add_drop_filter(Box::new(move |f| {
        if f.priority == 7 && !dropped_one {
            dropped_one = true;
            true
        } else {
            false
        }
    }));
    send(
        &mut net,
        0,
        [
            frame(0, 1, 7, seq_data(1), 100),
            frame(0, 1, 7, seq_data(2), 100),
        ],
    );
    let mut lost = frame(0, 1, 0, seq_data(3), 100);
    lost.dst = "10.0.9.1:4000".parse().unwrap();
    let mut v6 = frame(0, 1, 0, seq_data(4), 100);
    v6.dst = "[::1]:4000".parse().unwrap();
    send(&mut net, 0, [lost, v6]);
    net.run_until(100_000);
    assert_eq!(net.node(HostId(1)).rx.len(), 1);
    assert_eq!(seq_of(&net.node(HostId(1)).rx[0].1), 2);
    let st = net.stats().dropped;
    assert_eq!((st.filter, st.unknown_destination, st.total()), (1, 2, 3));
    let log = log.borrow().clone();
    assert!(log.contains(&(
        0,
        TapEvent::Dropped {
            reason: DropReason::Filter
        },
        1
    )));
    assert!(log.contains(&(0, TapEvent::Sent { host: HostId(0) }, 2)));
    assert!(log
        .iter()
        .any(|&(_, ev, s)| ev == TapEvent::Delivered { host: HostId(1) } && s == 2));
    assert_eq!(
        log.iter()
            .filter(|(_, ev, _)| matches!(ev, TapEvent::Sent { .. }))
            .count(),
        4
    );

    // per-link faults: everything toward host 1 is lost, host 2 unaffected.
    net.clear_drop_filters();
    net.set_link_faults(
        HostId(1),
        Direction::Down,
        Faults {
            loss: 1.0,
            ..Faults::NONE
        },
    );
    send(
        &mut net,
        0,
        (0..5).map(|i| frame(0, 1, 0, seq_data(i), 100)),
    );
    send(
        &mut net,
        0,
        (0..5).map(|i| frame(0, 2, 0, seq_data(i), 100)),
    );
    net.run_until(200_000);
    assert_eq!(net.node(HostId(1)).rx.len(), 1);
    assert_eq!(net.node(HostId(2)).rx.len(), 5);
    assert_eq!(net.stats().dropped.fault_loss, 5);
    // uplink faults: host 2 cannot send
    net.set_link_faults(HostId(1), Direction::Down, Faults::NONE);
    net.set_link_faults(
        HostId(2),
        Direction::Up,
        Faults {
            loss: 1.0,
            ..Faults::NONE
        },
    );
    send(
        &mut net,
        2,
        (0..5).map(|i| frame(2, 1, 0, seq_data(i), 100)),
    );
    send(
        &mut net,
        0,
        (0..5).map(|i| frame(0, 1, 0, seq_data(i), 100)),
    );
    net.run_until(300_000);
    assert_eq!(net.node(HostId(1)).rx.len(), 6);
    assert_eq!(net.stats().dropped.fault_loss, 10);
}

#[test]
fn no_route_and_run_while() {
    let p = TwoTier {
        racks: 2,
        hosts_per_rack: 1,
        host_link: link10(),
        core_link: link10(),
        aggs: 0,
        switch_delay: 0,
    };
    let mut net = net_with(Topology::two_tier(&p), 1);
    send(&mut net, 0, [frame(0, 1, 0, seq_data(0), 100)]);
    net.run_until(10_000);
    assert_eq!(net.stats().dropped.no_route, 1);

    let mut net = net_with(Topology::star(2, link10(), 250), 1);
    send(
        &mut net,
        0,
        (0..10).map(|i| frame(0, 1, 0, seq_data(i), 1500)),
    );
    let reached = net.run_while(1_000_000, |n| n.node(HostId(1)).rx.len() < 3);
    assert!(reached);
    assert_eq!(net.now(), 2850 + 2 * 1200);
    let reached = net.run_while(1_000_000, |n| n.node(HostId(1)).rx.len() < 100);
    assert!(!reached);
    assert_eq!(net.now(), 1_000_000);
    assert_eq!(net.node(HostId(1)).rx.len(), 10);
}

#[test]
fn add_host_with_and_general_topology() {
    // a line of three switches: s0 - s1 - s2, one host on each end switch
    let mut t = Topology::new();
    let s: Vec<SwitchId> = (0..3).map(|_| t.add_switch(100)).collect();
    t.connect(s[0], s[1], link10());
    t.connect(s[1], s[2], link10());
    let h0 = t.add_host_slot(s[0], link10());
    let h1 = t.add_host_slot(s[2], link10());
    let mut net: Network<TestHost> = Network::new(t, 3);
    let a = net.add_host_with(|id, addr| {
        assert_eq!(addr, host_addr(id));
        TestHost::default()
    });
    let b = net.add_host(TestHost::default());
    assert_eq!((a, b), (h0, h1));
    send(&mut net, 0, [frame(0, 1, 0, seq_data(0), 1500)]);
    net.run_until(100_000);
    assert_eq!(arrivals(&net, 1), vec![4 * (1200 + 100) + 3 * 100]);
}
