//! Multi-host scenarios: the real engine on the simulated network
//! (`homa-sim`), seeded and deterministic. Each test is named after the
//! mechanism it pins and fails if that mechanism breaks; every one ends by
//! checking that no RPC, peer or buffer state is left behind.

use bytes::Bytes;
use homa::core::wire::{PacketType, Repr};
use homa::core::{Config, Event, RpcError, RpcId};
use homa_sim::{Faults, Frame, HomaHost, HostId, LinkSpec, Nanos, Network, Topology};
use std::collections::HashMap;

const GBPS_10: u64 = 10_000_000_000;
const US: Nanos = 1_000;
const MS: Nanos = 1_000_000;

fn link() -> LinkSpec {
    LinkSpec {
        rate_bps: GBPS_10,
        delay: 200,
    }
}

/// A config for 10 Gbit/s hosts whose wire overhead is that of raw IP over
/// Ethernet (the simulator carries Homa packets directly).
fn config() -> Config {
    Config {
        link_rate_bps: GBPS_10,
        ..Config::default()
    }
}

fn star(hosts: usize, seed: u64) -> Network<HomaHost> {
    star_with(hosts, seed, config())
}

fn star_with(hosts: usize, seed: u64, config: Config) -> Network<HomaHost> {
    let mut net = Network::new(Topology::star(hosts, link(), 250), seed);
    for i in 0..hosts {
        net.add_host_with(|_, addr| {
            HomaHost::new(
                Config {
                    seed: seed * 1000 + i as u64,
                    ..config.clone()
                },
                addr,
            )
            .unwrap()
        });
    }
    net
}

use homa::core::fuzzing::pattern;

/// The server transforms the request so a response can't be confused with an
/// echo of the wrong RPC's bytes.
fn transform(body: &Bytes) -> Bytes {
    Bytes::from(body.iter().rev().map(|b| b ^ 0x5a).collect::<Vec<u8>>())
}

fn transforming(net: &mut Network<HomaHost>) {
    for h in 0..net.num_hosts() {
        net.with_node(HostId(h), |n, _| {
            n.set_app(Box::new(|_, b| Some(transform(b))))
        });
    }
}

fn packet_type(f: &Frame) -> Option<PacketType> {
    Repr::parse(&f.data).ok().map(|r| r.packet_type())
}

/// Run until every host is idle (all RPCs ended and all per-peer memory
/// expired), then assert it. The limit is virtual time.
fn assert_no_state_left(net: &mut Network<HomaHost>) {
    let hosts: Vec<HostId> = (0..net.num_hosts())
        .map(HostId)
        .filter(|&h| !net.is_crashed(h))
        .collect();
    let limit = net.now() + 2_000 * MS;
    let idle = |net: &Network<HomaHost>| {
        hosts
            .iter()
            .all(|&h| net.node(h).endpoint().metrics().is_idle())
    };
    net.run_while(limit, |net| !idle(net));
    for &h in &hosts {
        let m = net.node(h).endpoint().metrics();
        assert!(
            m.is_idle(),
            "host {h:?} holds state after all RPCs ended: {m:#?}"
        );
    }
}

struct Outstanding {
    client: HostId,
    body: Bytes,
}

/// Responses (by client host and id) checked byte for byte against the
/// transformed request.
fn check_responses(net: &Network<HomaHost>, sent: &HashMap<(HostId, RpcId), Outstanding>) -> usize {
    let mut ok = 0;
    for h in 0..net.num_hosts() {
        for l in &net.node(HostId(h)).log {
            if let Event::Response { id, body } = &l.event {
                let o = sent
                    .get(&(HostId(h), *id))
                    .expect("response to an RPC we sent");
                assert_eq!(o.client, HostId(h));
                assert!(
                    *body == transform(&o.body),
                    "response to {id:?} has the wrong bytes"
                );
                ok += 1;
            }
        }
    }
    ok
}

fn assert_no_failures(net: &Network<HomaHost>) {
    let f = failures(net);
    assert!(
        f.is_empty(),
        "{} RPCs failed, first: {:?}",
        f.len(),
        f.first()
    );
}

fn failures(net: &Network<HomaHost>) -> Vec<(HostId, RpcId, RpcError)> {
    let mut v = Vec::new();
    for h in 0..net.num_hosts() {
        for l in &net.node(HostId(h)).log {
            if let Event::Failed { id, error } = &l.event {
                v.push((HostId(h), *id, error.clone()));
            }
        }
    }
    v
}

/// Requests delivered to server applications, per (server, client, id).
fn deliveries(net: &Network<HomaHost>) -> HashMap<(usize, std::net::SocketAddr, u64), usize> {
    let mut m = HashMap::new();
    for h in 0..net.num_hosts() {
        for l in &net.node(HostId(h)).log {
            if let Event::Request { rpc, .. } = &l.event {
                *m.entry((h, rpc.client, rpc.id)).or_insert(0) += 1;
            }
        }
    }
    m
}

/// Start `n` RPCs at random among `hosts` hosts, sizes log-uniform in
/// [1, max], spread over `spread` ns.
fn random_rpcs(
    net: &mut Network<HomaHost>,
    n: usize,
    max: usize,
    spread: Nanos,
    seed: u64,
) -> HashMap<(HostId, RpcId), Outstanding> {
    let mut rng = homa_sim::rng::Rng::new(seed);
    let hosts = net.num_hosts();
    let mut plan = Vec::new();
    for i in 0..n {
        let c = rng.below(hosts as u64) as usize;
        let mut s = rng.below(hosts as u64 - 1) as usize;
        if s >= c {
            s += 1;
        }
        let size = ((max as f64).ln() * rng.next_f64()).exp().round().max(1.0) as usize;
        let at = rng.below(spread.max(1));
        plan.push((at, c, s, pattern(size.min(max), i as u64)));
    }
    plan.sort_by_key(|p| p.0);
    let mut sent = HashMap::new();
    for (at, c, s, body) in plan {
        net.run_until(at.max(net.now()));
        let dest = net.host_addr(HostId(s));
        let id = net.with_node(HostId(c), |n, now| n.call(now, dest, body.clone()).unwrap());
        sent.insert(
            (HostId(c), id),
            Outstanding {
                client: HostId(c),
                body,
            },
        );
    }
    sent
}

fn run_until_done(net: &mut Network<HomaHost>, expected: usize, limit: Nanos) {
    let end = net.now() + limit;
    net.run_while(end, |net| {
        (0..net.num_hosts())
            .map(|h| net.node(HostId(h)).completed as usize)
            .sum::<usize>()
            < expected
    });
}

#[test]
fn thousand_random_rpcs_among_8_hosts_verified_byte_for_byte() {
    let mut net = star(8, 1);
    transforming(&mut net);
    let sent = random_rpcs(&mut net, 1000, 1_000_000, 20 * MS, 7);
    run_until_done(&mut net, sent.len(), 5_000 * MS);
    assert_no_failures(&net);
    assert_eq!(check_responses(&net, &sent), 1000);
    assert!(deliveries(&net).values().all(|&n| n == 1));
    assert_no_state_left(&mut net);
}

#[test]
fn loss_duplication_and_reordering_every_rpc_completes_once() {
    let mut net = star(6, 2);
    transforming(&mut net);
    net.set_faults(Faults {
        loss: 0.10,
        duplicate: 0.10,
        reorder: 0.10,
        reorder_delay: 50 * US,
        corrupt: 0.0,
    });
    let sent = random_rpcs(&mut net, 300, 200_000, 10 * MS, 8);
    run_until_done(&mut net, sent.len(), 10_000 * MS);
    assert_no_failures(&net);
    assert_eq!(check_responses(&net, &sent), 300);
    let d = deliveries(&net);
    assert_eq!(d.len(), 300, "every request reached its server application");
    assert!(d.values().all(|&n| n == 1), "a request was delivered twice");
    let stats = net.stats();
    assert!(stats.dropped.fault_loss > 100 && stats.duplicated > 100 && stats.reordered > 100);
    net.set_faults(Faults::default());
    assert_no_state_left(&mut net);
}

/// Drop the first frame of `ty` (matching `extra`), run one RPC of `size`
/// bytes each way from host 0 to host 1, and return the network.
fn one_rpc_losing(
    ty: PacketType,
    size: usize,
    extra: impl Fn(&Repr) -> bool + 'static,
) -> (Network<HomaHost>, RpcId) {
    let mut net = star(2, 3);
    transforming(&mut net);
    let mut dropped = false;
    net.add_drop_filter(Box::new(move |f| {
        if dropped || packet_type(f) != Some(ty) {
            return false;
        }
        let Ok(repr) = Repr::parse(&f.data) else {
            return false;
        };
        dropped = extra(&repr);
        dropped
    }));
    let dest = net.host_addr(HostId(1));
    let body = pattern(size, 1);
    let id = net.with_node(HostId(0), |n, now| n.call(now, dest, body).unwrap());
    run_until_done(&mut net, 1, 1_000 * MS);
    (net, id)
}

fn assert_response(net: &Network<HomaHost>, id: RpcId, size: usize) {
    let resp = net.node(HostId(0)).log.iter().find_map(|l| match &l.event {
        Event::Response { id: i, body } if *i == id => Some(body.clone()),
        _ => None,
    });
    assert_eq!(resp, Some(transform(&pattern(size, 1))));
}

#[test]
fn lost_grant_recovers() {
    let (mut net, id) = one_rpc_losing(PacketType::Grant, 200_000, |_| true);
    assert_response(&net, id, 200_000);
    assert!(net.node(HostId(1)).endpoint().metrics().resends_sent >= 1);
    assert_no_state_left(&mut net);
    assert_eq!(net.stats().dropped.filter, 1);
}

#[test]
fn lost_last_data_packet_recovers() {
    let (mut net, id) = one_rpc_losing(PacketType::Data, 50_000, |r| match r {
        Repr::Data(d) => d.message_length == 50_000 && d.offset + 1_416 >= 50_000,
        _ => false,
    });
    assert_response(&net, id, 50_000);
    assert!(net.node(HostId(0)).endpoint().metrics().retransmitted_bytes > 0);
    assert_no_state_left(&mut net);
    assert_eq!(net.stats().dropped.filter, 1);
}

/// Lose the first `ty` of the end-of-RPC handshake (the server's NEED_ACK or
/// the client's ACK): the server asks again and frees its RPC on the next ACK.
fn lost_ack_handshake_packet_recovers(ty: PacketType) {
    let (mut net, id) = one_rpc_losing(ty, 100, |_| true);
    assert_response(&net, id, 100);
    assert_no_state_left(&mut net);
    assert_eq!(net.stats().dropped.filter, 1, "exactly one packet was lost");
    let need_acks =
        net.node(HostId(1)).endpoint().metrics().packets_out[PacketType::NeedAck as usize - 0x10];
    assert!(need_acks >= 2, "the server asked again");
}

#[test]
fn lost_ack_recovers() {
    lost_ack_handshake_packet_recovers(PacketType::Ack);
}

#[test]
fn lost_need_ack_recovers() {
    lost_ack_handshake_packet_recovers(PacketType::NeedAck);
}

#[test]
fn crashed_server_gives_timeout_after_about_the_configured_timeout() {
    let mut net = star(2, 4);
    // The server application holds the request; the server then crashes.
    net.with_node(HostId(1), |n, _| n.set_app(Box::new(|_, _| None)));
    let dest = net.host_addr(HostId(1));
    let start = net.now();
    net.with_node(HostId(0), |n, now| {
        n.call(now, dest, pattern(20_000, 1)).unwrap()
    });
    net.run_until(start + MS);
    assert_eq!(net.node(HostId(1)).requests, 1);
    net.crash(HostId(1));
    run_until_done(&mut net, 1, 1_000 * MS);
    let f = failures(&net);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].2, RpcError::Timeout);
    let at = net.node(HostId(0)).log.last().unwrap().at;
    let timeout = config().timeout.as_nanos() as u64;
    // Silent since the server's last packet (< 1 ms after start); the
    // timeout fires on the first tick after it.
    eprintln!(
        "crash: client RPC failed with Timeout after {:.1} ms (timeout {} ms)",
        (at - start) as f64 / 1e6,
        timeout / MS
    );
    assert!(
        at >= start + timeout && at <= start + timeout + 3 * MS,
        "failed after {} ms",
        (at - start) / MS
    );
    // The restarted server holds nothing for it, and neither does the client.
    let addr = net.host_addr(HostId(1));
    net.restart(
        HostId(1),
        HomaHost::new(
            Config {
                seed: 99,
                ..config()
            },
            addr,
        )
        .unwrap(),
    );
    assert_no_state_left(&mut net);
}

#[test]
fn incast_32_clients_bounded_by_max_incoming_and_downlink_busy() {
    let cfg = config();
    let mut net = star_with(33, 5, cfg.clone());
    let server = HostId(32);
    net.with_node(server, |n, _| {
        n.set_app(Box::new(|_, _| Some(Bytes::from_static(b"ok"))))
    });
    let dest = net.host_addr(server);
    for c in 0..32 {
        net.with_node(HostId(c), |n, now| {
            n.call(now, dest, pattern(500_000, c as u64)).unwrap()
        });
    }
    // Unscheduled bytes arrive without asking; grants keep the rest bounded.
    let unsched = cfg.unsched_bytes.div_ceil(cfg.max_payload()) * cfg.max_payload();
    let mut worst = 0u64;
    let mut first_rx = None;
    let mut last_done = 0;
    let mut violations = 0;
    while net.step() {
        let m = net.node(server).endpoint().metrics();
        let bound = u64::from(cfg.max_incoming) + u64::from(unsched) * m.incoming_messages;
        if m.incoming_granted_unreceived > bound {
            violations += 1;
        }
        worst = worst.max(
            m.incoming_granted_unreceived
                .saturating_sub(u64::from(unsched) * m.incoming_messages),
        );
        if first_rx.is_none() && net.host_stats(server).rx_bytes > 0 {
            first_rx = Some(net.now());
        }
        let done: u64 = (0..32).map(|c| net.node(HostId(c)).completed).sum();
        if done == 32 && last_done == 0 {
            last_done = net.now();
            break;
        }
    }
    assert_eq!(
        violations, 0,
        "granted-but-unreceived exceeded max_incoming + unscheduled bytes"
    );
    assert!(
        worst <= u64::from(cfg.max_incoming),
        "scheduled outstanding {worst}"
    );
    assert_no_failures(&net);
    let busy = net.host_stats(server).rx_busy_ns as f64 / (last_done - first_rx.unwrap()) as f64;
    eprintln!(
        "incast: worst scheduled granted-but-unreceived {worst} B (max_incoming {}), downlink busy {:.1}%, done at {:.2} ms",
        cfg.max_incoming,
        busy * 100.0,
        last_done as f64 / 1e6
    );
    assert!(
        busy > 0.9,
        "server downlink busy only {:.1}% of the incast",
        busy * 100.0
    );
    assert_no_state_left(&mut net);
}

/// Round-trip time of a 1 KB RPC from host 0 to the server (host 1), in ns.
fn small_rpc_rtt(net: &mut Network<HomaHost>, seed: u64) -> Nanos {
    let dest = net.host_addr(HostId(1));
    let start = net.now();
    let id = net.with_node(HostId(0), |n, now| {
        n.call(now, dest, pattern(1000, seed)).unwrap()
    });
    let end = start + 100 * MS;
    net.run_while(end, |net| {
        !net.node(HostId(0))
            .log
            .iter()
            .any(|l| matches!(&l.event, Event::Response { id: i, .. } if *i == id))
    });
    let at = net.node(HostId(0)).log.iter().find_map(|l| match &l.event {
        Event::Response { id: i, .. } if *i == id => Some(l.at),
        _ => None,
    });
    at.expect("small RPC completed") - start
}

#[test]
fn srpt_small_rpc_overtakes_saturating_large_ones() {
    let mut net = star(6, 6);
    net.with_node(HostId(1), |n, _| {
        n.set_app(Box::new(|_, _| Some(Bytes::from_static(b"ok"))))
    });
    let idle = small_rpc_rtt(&mut net, 1);
    // Hosts 2..6 keep 2 × 1 MB requests each in flight to the server.
    let dest = net.host_addr(HostId(1));
    for c in 2..6 {
        for k in 0..2 {
            net.with_node(HostId(c), |n, now| {
                n.call(now, dest, pattern(1_000_000, k)).unwrap()
            });
        }
    }
    net.run_until(net.now() + 2 * MS);
    let rx_before = net.host_stats(HostId(1)).rx_busy_ns;
    let t0 = net.now();
    let mut worst = 0;
    for i in 0..20 {
        worst = worst.max(small_rpc_rtt(&mut net, 10 + i));
        net.run_until(net.now() + 50 * US);
    }
    let busy = (net.host_stats(HostId(1)).rx_busy_ns - rx_before) as f64 / (net.now() - t0) as f64;
    eprintln!(
        "srpt: 1 KB RPC idle {idle} ns, worst of 20 under load {worst} ns ({:.2}x), receiver busy {:.1}%",
        worst as f64 / idle as f64,
        busy * 100.0
    );
    assert!(busy > 0.9, "receiver not saturated ({:.0}%)", busy * 100.0);
    assert!(
        worst <= 3 * idle,
        "1 KB RPC took {worst} ns loaded vs {idle} ns idle"
    );
    run_until_done(&mut net, 21 + 8, 1_000 * MS);
    assert_no_state_left(&mut net);
}

/// A 1 MB message to a receiver kept busy by a stream of 100 KB messages
/// (always more than `max_overcommit` of them, all ranked ahead of it).
/// Returns whether the 1 MB RPC completed, and small RPCs completed after it.
fn starvation_run(fifo_percent: u32) -> (bool, u64) {
    let cfg = Config {
        grant_fifo_percent: fifo_percent,
        ..config()
    };
    let mut net = star_with(12, 7, cfg);
    net.with_node(HostId(0), |n, _| {
        n.set_app(Box::new(|_, _| Some(Bytes::from_static(b"ok"))))
    });
    let dest = net.host_addr(HostId(0));
    let big = net.with_node(HostId(1), |n, now| {
        n.call(now, dest, pattern(1_000_000, 1)).unwrap()
    });
    // Ten clients each keep one 100 KB RPC outstanding, re-sending on completion.
    let horizon = 80 * MS;
    for c in 2..12 {
        net.with_node(HostId(c), |n, now| {
            n.call(now, dest, pattern(100_000, c as u64)).unwrap()
        });
    }
    let mut seen = [0u64; 12];
    let mut big_done_small_count = None;
    while net.now() < horizon && net.step() {
        for (c, seen) in seen.iter_mut().enumerate().skip(2) {
            let done = net.node(HostId(c)).completed;
            if done > *seen {
                *seen = done;
                net.with_node(HostId(c), |n, now| {
                    n.call(now, dest, pattern(100_000, done)).unwrap()
                });
            }
        }
        if big_done_small_count.is_none() && net.node(HostId(1)).completed > 0 {
            big_done_small_count = Some(seen.iter().sum::<u64>());
        }
    }
    let done = net
        .node(HostId(1))
        .log
        .iter()
        .any(|l| matches!(&l.event, Event::Response { id, .. } if *id == big));
    let small_after = big_done_small_count.map_or(0, |at| seen.iter().sum::<u64>() - at);
    (done, small_after)
}

#[test]
fn starvation_large_message_completes_under_a_stream_of_smaller_ones() {
    let (done, small_after) = starvation_run(5);
    eprintln!(
        "starvation: 1 MB RPC completed: {done}; 100 KB RPCs completed after it: {small_after}"
    );
    assert!(done, "the 1 MB RPC starved");
    assert!(
        small_after > 10,
        "the receiver was not kept busy by the stream"
    );
    // Without the FIFO share, SRPT alone starves it: the test can fail.
    let (done_without, _) = starvation_run(0);
    assert!(
        !done_without,
        "control run: without FIFO grants the 1 MB RPC should starve"
    );
}

#[test]
fn corrupted_frames_are_dropped_by_the_checksum_and_recovered() {
    let mut net = star(4, 9);
    transforming(&mut net);
    net.set_faults(Faults {
        corrupt: 0.05,
        ..Faults::default()
    });
    let sent = random_rpcs(&mut net, 150, 200_000, 5 * MS, 10);
    run_until_done(&mut net, sent.len(), 10_000 * MS);
    assert_no_failures(&net);
    assert_eq!(check_responses(&net, &sent), 150);
    let drops: u64 = (0..4).map(|h| net.node(HostId(h)).checksum_drops).sum();
    assert!(
        drops > 50,
        "corrupted frames were seen and dropped ({drops})"
    );
    assert!(deliveries(&net).values().all(|&n| n == 1));
    net.set_faults(Faults::default());
    assert_no_state_left(&mut net);
}

/// A sender that keeps a granted message waiting because its own SRPT
/// prefers shorter ones is alive, not silent: neither end may time the RPC
/// out, however long that lasts (Linux answers the receiver's RESEND with
/// BUSY and does not count silence while the RPC is blocked on itself).
#[test]
fn a_message_starved_by_its_own_sender_is_not_timed_out() {
    let cfg = Config {
        send_fifo_percent: 0,
        ..config()
    };
    let mut net = star_with(3, 11, cfg);
    let (a, b) = (net.host_addr(HostId(1)), net.host_addr(HostId(2)));
    let big = net.with_node(HostId(0), |n, now| {
        n.call(now, a, pattern(1_000_000, 1)).unwrap()
    });
    // Host 0 keeps eight shorter, fully unscheduled requests to B
    // outstanding for 300 ms (three timeouts): it always has one of them to
    // send, so its SRPT never picks the big one.
    let horizon = 300 * MS;
    let mut calls = 0u64;
    for _ in 0..8 {
        net.with_node(HostId(0), |n, now| {
            n.call(now, b, pattern(30_000, 7)).unwrap()
        });
        calls += 1;
    }
    let mut seen = 0;
    while net.now() < horizon && net.step() {
        let done = net.node(HostId(0)).completed;
        while seen < done {
            seen += 1;
            net.with_node(HostId(0), |n, now| {
                n.call(now, b, pattern(30_000, 7)).unwrap()
            });
            calls += 1;
        }
    }
    let early = net
        .node(HostId(0))
        .log
        .iter()
        .any(|l| matches!(&l.event, Event::Response { id, .. } if *id == big));
    assert!(
        !early,
        "the stream did not starve the big request; the test would prove nothing"
    );
    assert!(
        calls > 100,
        "the stream kept the sender busy ({calls} calls)"
    );
    // Stop the stream: the big request goes out and completes.
    let end = net.now() + 200 * MS;
    net.run_while(end, |net| {
        !net.node(HostId(0))
            .log
            .iter()
            .any(|l| matches!(&l.event, Event::Response { id, .. } if *id == big))
    });
    assert_no_failures(&net);
    assert!(
        net.node(HostId(0))
            .log
            .iter()
            .any(|l| matches!(&l.event, Event::Response { id, .. } if *id == big)),
        "the big RPC never completed"
    );
}
