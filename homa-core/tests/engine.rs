//! Each mechanism of the engine alone, with packets and time fed by hand
//! through an in-memory pair.

mod support;

use bytes::Bytes;
use homa_core::wire::PacketType;
use homa_core::{Config, Event, RpcError};
use std::time::Duration;
use support::*;

fn echo_ok(sizes: &[usize], config: Config) {
    let mut p = Pair::new(config);
    let mut want = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let body = pattern(n, i as u64);
        let id = p.call(body.clone());
        want.push((id, body));
    }
    assert!(p.run_until(Duration::from_secs(1), |p| p.responses() == sizes.len()));
    for (id, body) in want {
        assert!(
            p.client_events.iter().any(|e| *e
                == Event::Response {
                    id,
                    body: body.clone()
                }),
            "response for {id:?} ({} bytes) wrong or missing",
            body.len()
        );
    }
    // Acks flow back on the next NEED_ACK; everything is freed eventually.
    assert!(
        p.run_until(Duration::from_secs(2), |p| p.client.metrics().is_idle()
            && p.server.metrics().is_idle())
    );
}

#[test]
fn echo_of_every_size_class() {
    echo_ok(
        &[0, 1, 100, 1416, 1417, 5000, 40_000, 100_000, 1_000_000],
        Config::default(),
    );
}

#[test]
fn response_carries_piggybacked_ack_for_previous_rpc() {
    let mut p = Pair::new(Config::default());
    p.call(Bytes::from_static(b"one"));
    assert!(p.run_until(Duration::from_millis(1), |p| p.responses() == 1));
    assert_eq!(
        p.server.metrics().active_server_rpcs,
        1,
        "server waits for the ack"
    );
    p.call(Bytes::from_static(b"two"));
    assert!(p.run_until(Duration::from_millis(1), |p| p.responses() == 2));
    // The second request carried the first RPC's ack.
    assert_eq!(p.server.metrics().active_server_rpcs, 1);
}

#[test]
fn large_message_is_granted_and_uses_scheduled_priorities() {
    let mut p = Pair::new(Config::default());
    p.auto_respond = Some(Box::new(|_| Bytes::from_static(b"ok")));
    p.call(pattern(500_000, 7));
    assert!(p.run_until(Duration::from_secs(1), |p| p.responses() == 1));
    let m = p.server.metrics();
    assert!(m.grants_sent > 0);
    assert!(m.granted_bytes >= 500_000 - 40_000 - 1416);
}

#[test]
fn small_grant_windows_do_not_stall() {
    // Eight messages share a 30 KB budget: each window (30,000 / 9) is
    // below `grant_increment` (10,000). A message whose granted bytes have
    // all arrived must still get its next grant at once; it used to wait
    // for a RESEND, which here never came (the sender had nothing more it
    // was allowed to send), and the RPCs timed out.
    let mut p = Pair::new(Config {
        unsched_bytes: 5_000,
        max_incoming: 30_000,
        ..Config::default()
    });
    for i in 0..8 {
        p.call(pattern(200_000, i));
    }
    assert!(p.run_until(Duration::from_millis(4), |p| p.responses() == 8));
    assert_eq!(p.server.metrics().resends_sent, 0);
    assert_eq!(p.client.metrics().resends_sent, 0);
}

#[test]
fn an_uncapped_max_incoming_grants_every_message() {
    // `max_incoming = u32::MAX` means no total cap. The grant arithmetic
    // used to add the room left (nearly 4 GB) to a message's granted offset
    // and wrap: grants went nowhere and large messages stalled.
    let config = Config {
        max_incoming: u32::MAX,
        grant_window: Some(60_000),
        ..Config::default()
    };
    let unsched = config.unsched_bytes.div_ceil(config.max_payload()) * config.max_payload();
    let mut p = Pair::new(config);
    p.auto_respond = Some(Box::new(|_| Bytes::from_static(b"ok")));
    for i in 0..3 {
        p.call(pattern(300_000, i));
    }
    assert!(p.run_until(Duration::from_millis(20), |p| p.responses() == 3));
    assert_eq!(p.server.metrics().resends_sent, 0);
    // Every byte past the unscheduled ones was granted, once.
    assert_eq!(
        p.server.metrics().granted_bytes,
        3 * u64::from(300_000 - unsched)
    );
}

#[test]
fn resend_for_data_not_sent_yet_gets_busy() {
    // A 500 Mbit/s link: the server sends the shorter response (10 ms) before
    // starting the longer one, so the client asks for the longer one after
    // 5 ms of silence. The server has sent none of it yet: it must answer
    // BUSY (it is alive, the data will come), not stay silent.
    let mut p = Pair::new(Config {
        link_rate_bps: 500_000_000,
        ..Config::default()
    });
    p.auto_respond = Some(Box::new(|b: &Bytes| {
        Bytes::from(vec![7u8; if b.len() == 1 { 600_000 } else { 900_000 }])
    }));
    p.call(Bytes::from_static(b"a"));
    p.call(Bytes::from_static(b"bb"));
    assert!(p.run_until(Duration::from_secs(1), |p| p.responses() == 2));
    assert!(p.client.metrics().resends_sent >= 1);
    assert!(p
        .sent
        .iter()
        .any(|&(to_server, t)| !to_server && t == PacketType::Busy));
}

#[test]
fn few_resends_per_peer_per_tick() {
    // The server hears nothing: forty RPCs fall silent together. The client
    // asks about a few of them per tick (four), not all forty every
    // interval.
    let mut p = Pair::new(Config::default());
    p.filter = Box::new(|to_server, _| !to_server);
    for i in 0..40 {
        p.call(pattern(100, i));
    }
    p.run_until(Duration::from_micros(5_500), |_| false);
    let n = p.client.metrics().resends_sent;
    assert!((4..=8).contains(&n), "{n} RESENDs in 5.5 ms");
}

#[test]
fn lost_last_data_packet_is_resent() {
    let mut p = Pair::new(Config::default());
    let mut dropped = false;
    p.filter = Box::new(move |to_server, t| {
        if to_server && t.packet_type() == PacketType::Data && !dropped {
            let offset = u32::from_be_bytes(t.header()[52..56].try_into().unwrap());
            if offset == 3 * 1416 {
                // The last packet of the 5,000-byte request.
                dropped = true;
                return false;
            }
        }
        true
    });
    let body = pattern(5000, 3);
    p.call(body.clone());
    assert!(p.run_until(Duration::from_secs(1), |p| p.responses() == 1));
    assert!(p.server.metrics().resends_sent >= 1);
    assert!(p.client.metrics().retransmitted_bytes > 0);
    assert!(matches!(&p.client_events[0], Event::Response { body: b, .. } if *b == body));
}

#[test]
fn silent_server_times_out() {
    let config = Config::default();
    let timeout = config.timeout;
    let mut p = Pair::new(config);
    p.filter = Box::new(|to_server, _| !to_server);
    p.call(Bytes::from_static(b"hello"));
    let start = p.now;
    assert!(p.run_until(Duration::from_secs(1), |p| !p.client_events.is_empty()));
    assert!(matches!(
        p.client_events[0],
        Event::Failed {
            error: RpcError::Timeout,
            ..
        }
    ));
    let took = p.now - start;
    assert!(
        took >= timeout && took <= timeout + Duration::from_millis(2),
        "took {took:?}"
    );
    assert_eq!(p.client.metrics().active_client_rpcs, 0);
}

#[test]
fn abort_frees_both_sides() {
    let mut p = Pair::new(Config::default());
    p.auto_respond = None;
    let id = p.call(pattern(3000, 1));
    assert!(p.run_until(Duration::from_millis(1), |p| !p.server_events.is_empty()));
    assert!(p.client.abort(p.now, id));
    assert!(p.run_until(Duration::from_millis(1), |p| p
        .server
        .metrics()
        .active_server_rpcs
        == 0));
    assert!(p.client_events.is_empty(), "an aborted RPC reports nothing");
}

#[test]
fn busy_server_keeps_client_alive() {
    let mut p = Pair::new(Config::default());
    p.auto_respond = None;
    p.call(Bytes::from_static(b"slow"));
    // The application takes 3 timeouts' worth of time; BUSY keeps the client waiting.
    assert!(!p.run_until(Duration::from_millis(300), |p| !p.client_events.is_empty()));
    let Event::Request { rpc, .. } = p.server_events[0].clone() else {
        panic!()
    };
    p.server
        .send_response(p.now, rpc, Bytes::from_static(b"done"))
        .unwrap();
    assert!(p.run_until(Duration::from_millis(10), |p| p.responses() == 1));
    assert!(p.client.metrics().packets_in[PacketType::Busy as usize - 0x10] > 0);
}

#[test]
fn back_to_back_rpcs_take_microseconds_not_ticks() {
    let mut p = Pair::new(Config::default());
    for i in 0..5 {
        let start = p.now;
        p.call(pattern(1000, i));
        assert!(p.run_until(Duration::from_secs(1), |p| p.responses() == i as usize + 1));
        let took = p.now - start;
        assert!(
            took < Duration::from_micros(50),
            "RPC {i} took {took:?}: {:?}",
            p.sent
        );
        p.sent.clear();
    }
}

#[test]
fn stale_cutoff_version_gets_cutoffs_once_and_sender_adopts_them() {
    // The server wants messages up to 1,000 B at the top level.
    let server_cfg = Config {
        unsched_cutoffs: [0, 0, 0, 0, u32::MAX, 15_000, 2_800, 1_000],
        cutoff_version: 7,
        ..Config::default()
    };
    let mut p = Pair::new(Config::default());
    p.server = homa_core::Endpoint::new(
        Config {
            seed: 2,
            ..server_cfg
        },
        addr(SERVER),
    )
    .unwrap();
    p.call(pattern(500, 1));
    assert!(p.run_until(Duration::from_millis(1), |p| p.responses() == 1));
    let cutoffs = |p: &Pair, to_client| p.sent_count(to_client, PacketType::Cutoffs);
    assert_eq!(cutoffs(&p, false), 1, "server announced its cutoffs once");
    // The next 500-byte request goes at priority 7 under the server's cutoffs
    // (it would be 6 under the defaults).
    p.filter = Box::new(move |to_server, t| {
        if to_server && t.packet_type() == PacketType::Data {
            assert_eq!(t.priority, 7);
        }
        true
    });
    p.call(pattern(500, 2));
    assert!(p.run_until(Duration::from_millis(1), |p| p.responses() == 2));
    assert_eq!(
        cutoffs(&p, false),
        1,
        "no more CUTOFFS once the version matches"
    );
}

#[test]
fn many_outstanding_requests_are_marked_and_answered_with_few_unscheduled_bytes() {
    let config = Config {
        incast_threshold: Some(2),
        ..Config::default()
    };
    let mut p = Pair::new(config);
    p.auto_respond = Some(Box::new(|_| pattern(30_000, 9)));
    let flagged = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = flagged.clone();
    p.filter = Box::new(move |to_server, t| {
        if t.packet_type() == PacketType::Data {
            // pad[0] (byte 49) carries the mark; incoming (32..36) the unscheduled limit.
            let incoming = u32::from_be_bytes(t.header()[32..36].try_into().unwrap());
            seen.borrow_mut()
                .push((to_server, t.header()[49], incoming));
        }
        true
    });
    for i in 0..4 {
        p.call(pattern(100, i));
    }
    assert!(p.run_until(Duration::from_secs(1), |p| p.responses() == 4));
    let f = flagged.borrow().clone();
    let marked = f
        .iter()
        .filter(|(to_server, flag, _)| *to_server && *flag == 1)
        .count();
    assert_eq!(marked, 2, "requests 3 and 4 were sent with 2 outstanding");
    // Responses to marked requests start with one packet of unscheduled data.
    let small_first = f
        .iter()
        .filter(|(to_server, _, incoming)| !*to_server && *incoming == 1416)
        .count();
    assert!(small_first >= 2, "{f:?}");
}

#[test]
fn scheduled_priority_follows_rank() {
    // Two large messages to one receiver, neither fully granted at once
    // (window 400 KB / 3): the shorter gets the higher scheduled priority,
    // the longer the next level down. Two messages use the two lowest of the
    // four scheduled levels (1 and 0), see
    // `grants_use_the_lowest_scheduled_levels`. FIFO grants (at the top
    // level) are off: this is about SRPT ranks.
    let mut p = Pair::new(Config {
        grant_fifo_percent: 0,
        ..Config::default()
    });
    p.auto_respond = Some(Box::new(|_| Bytes::from_static(b"ok")));
    let grants = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let g = grants.clone();
    p.filter = Box::new(move |to_server, t| {
        if !to_server && t.packet_type() == PacketType::Grant {
            let id = u64::from_be_bytes(t.header()[20..28].try_into().unwrap());
            g.borrow_mut().push((id, t.header()[32]));
        }
        true
    });
    let long = p.call(pattern(900_000, 1));
    let short = p.call(pattern(600_000, 2));
    assert!(p.run_until(Duration::from_secs(1), |p| p.responses() == 2));
    let grants = grants.borrow();
    let prios = |id: u64| -> Vec<u8> {
        grants
            .iter()
            .filter(|(g, _)| *g == id ^ 1)
            .map(|g| g.1)
            .collect()
    };
    // The shorter one is alone at first (level 0), then above the longer.
    let (short, long) = (prios(short.0), prios(long.0));
    assert_eq!(short.iter().max(), Some(&1), "{short:?}");
    assert_eq!(long.iter().max(), Some(&0), "{long:?}");
}

#[test]
fn invalid_configs_are_errors_not_panics() {
    let bad = [
        Config {
            max_packet_size: 40,
            ..Config::default()
        },
        Config {
            max_overcommit: 0,
            ..Config::default()
        },
        Config {
            unsched_cutoffs: [0; 8],
            ..Config::default()
        },
        Config {
            unsched_cutoffs: [0, 0, 0, 0, 100, 15_000, 2_800, 200],
            ..Config::default()
        },
        Config {
            max_sched_priority: 4,
            ..Config::default()
        },
        Config {
            timeout: Duration::from_millis(1),
            ..Config::default()
        },
        Config {
            grant_fifo_percent: 100,
            ..Config::default()
        },
        Config {
            grant_increment: 0,
            ..Config::default()
        },
        Config {
            tick: Duration::ZERO,
            ..Config::default()
        },
    ];
    for c in bad {
        let e = homa_core::Endpoint::new(c, addr(SERVER)).unwrap_err();
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn request_over_max_length_is_refused_and_nothing_is_sent() {
    let mut p = Pair::new(Config::default());
    let err = p
        .client
        .send_request(p.now, addr(SERVER), pattern(1_000_001, 1))
        .unwrap_err();
    assert!(matches!(
        err,
        homa_core::SendError::MessageTooLong {
            len: 1_000_001,
            max: 1_000_000
        }
    ));
    assert!(p.client.poll_transmit(p.now).is_none());
    assert!(p.client.metrics().is_idle());
}

#[test]
fn unreachable_peer_fails_its_client_rpcs_and_drops_its_server_rpcs() {
    let mut p = Pair::new(Config::default());
    p.auto_respond = None;
    let a = p.call(pattern(10, 1));
    let b = p.call(pattern(20_000, 2));
    assert!(p.run_until(Duration::from_millis(1), |p| p.server_events.len() == 2));
    p.client.handle_unreachable(p.now, addr(SERVER));
    let failed: Vec<_> = std::iter::from_fn(|| p.client.poll_event()).collect();
    assert_eq!(failed.len(), 2);
    for (e, id) in failed.iter().zip([a, b]) {
        assert_eq!(
            *e,
            Event::Failed {
                id,
                error: RpcError::PeerUnreachable(addr(SERVER))
            }
        );
    }
    assert_eq!(p.client.metrics().active_client_rpcs, 0);
    // The server learns its client is gone: its RPCs are dropped and their
    // requests are not delivered again if a duplicate arrives.
    p.server.handle_unreachable(p.now, addr(CLIENT));
    let m = p.server.metrics();
    assert_eq!(m.active_server_rpcs, 0);
    assert_eq!(m.remembered_acks, 2);
}

/// A grant step larger than the window (a dynamic window shrinks as messages
/// arrive) must not stall grants: the engine caps the step at half the
/// window. Before that cap, this message waited for RESENDs to move at all.
#[test]
fn a_window_smaller_than_the_grant_increment_still_grants() {
    for window in [Some(5_000), None] {
        let config = Config {
            grant_window: window,
            // The dynamic window here is 20,000 / 2 = 10,000.
            max_incoming: 20_000,
            grant_increment: 15_000,
            ..Config::default()
        };
        let mut p = Pair::new(config);
        let body = pattern(300_000, 9);
        let id = p.call(body.clone());
        assert!(
            p.run_until(Duration::from_millis(4), |p| p.responses() == 1),
            "window {window:?}: the message stalled"
        );
        assert!(p.client_events.contains(&Event::Response { id, body }));
        assert_eq!(p.server.metrics().resends_sent, 0, "window {window:?}");
        assert_eq!(p.client.metrics().resends_sent, 0, "window {window:?}");
    }
}

/// An empty message (here an empty response, the usual acknowledgment of a
/// one-way request) goes at its unscheduled priority. It used to go at the
/// lowest scheduled level, where on a busy link it starved behind granted
/// data until its RPC timed out (found by the paper simulation on W5).
#[test]
fn an_empty_response_goes_at_the_unscheduled_priority() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let mut p = Pair::new(Config::default());
    p.auto_respond = Some(Box::new(|_| Bytes::new()));
    let seen: Rc<RefCell<Vec<(u8, usize)>>> = Rc::default();
    let log = Rc::clone(&seen);
    p.filter = Box::new(move |to_server, t| {
        if !to_server && t.packet_type() == PacketType::Data {
            log.borrow_mut().push((t.priority, t.payload.len()));
        }
        true
    });
    p.call(Bytes::from_static(b"ping"));
    assert!(p.run_until(Duration::from_millis(1), |p| p.responses() == 1));
    // Default cutoffs: messages of at most 200 bytes go at priority 7.
    assert_eq!(seen.borrow().as_slice(), &[(7, 0)]);
}

/// With fewer grantable messages than scheduled levels, grants use the
/// lowest levels (the paper's §3.4 rule; Linux Homa does the same): here two
/// messages get levels 1 and 0 of 0–6, and once the shorter one is fully
/// granted the longer one stays at 0. The engine used to start from the top
/// (6 and 5), so the longer message jumped to 6 when the shorter one left
/// the grant list and its packets overtook the shorter one's last packets,
/// still queued at 5 on the receiver's downlink; on a busy link those
/// starved until a RESEND (a 26 KB W5 message took 5 ms, 195 times its
/// ideal, in the paper simulation).
#[test]
fn grants_use_the_lowest_scheduled_levels() {
    let mut cutoffs = [0u32; homa_core::NUM_PRIORITIES];
    cutoffs[7] = u32::MAX;
    let mut p = Pair::new(Config {
        unsched_bytes: 10_000,
        unsched_cutoffs: cutoffs,
        max_sched_priority: 6,
        max_overcommit: 7,
        grant_window: Some(10_000),
        max_incoming: 1_000_000,
        grant_fifo_percent: 0,
        send_fifo_percent: 0,
        ..Config::default()
    });
    p.auto_respond = Some(Box::new(|_| Bytes::new()));
    let seen = log_grants(&mut p);
    let long = p.call(pattern(300_000, 1));
    let short = p.call(pattern(100_000, 2));
    assert!(p.run_until(Duration::from_secs(1), |p| p.responses() == 2));
    // Grant priorities by RPC, in order.
    let prios = |id: u64| -> Vec<u8> {
        seen.borrow()
            .iter()
            .filter(|g| g.0 == id)
            .map(|g| g.2)
            .collect()
    };
    let (long, short) = (&prios(long.0), &prios(short.0));
    assert!(!long.is_empty() && !short.is_empty());
    // The shorter message may be alone at first (level 0); beside the
    // longer one it gets level 1, never more.
    assert!(
        short.iter().all(|&prio| prio <= 1) && short.contains(&1),
        "shorter message: {short:?}"
    );
    assert!(
        long.iter().all(|&prio| prio == 0),
        "longer message: {long:?}"
    );
}

/// Everything the server sends from now on, kept out of the client (as if
/// it waited unread in the client's socket); the client's packets go through.
fn hold_responses(p: &mut Pair) -> std::rc::Rc<std::cell::RefCell<Vec<Bytes>>> {
    let held: std::rc::Rc<std::cell::RefCell<Vec<Bytes>>> = Default::default();
    let hold = std::rc::Rc::clone(&held);
    p.filter = Box::new(move |to_server, t| {
        if !to_server {
            hold.borrow_mut().push(Bytes::from(t.to_vec()));
        }
        to_server
    });
    held
}

/// Grants seen by the client, in order: (client RPC id, offset, priority).
fn log_grants(p: &mut Pair) -> std::rc::Rc<std::cell::RefCell<Vec<(u64, u32, u8)>>> {
    use homa_core::wire::Repr;
    let seen: std::rc::Rc<std::cell::RefCell<Vec<(u64, u32, u8)>>> = Default::default();
    let log = std::rc::Rc::clone(&seen);
    p.filter = Box::new(move |to_server, t| {
        if !to_server && t.packet_type() == PacketType::Grant {
            let mut buf = Vec::new();
            t.write_to(&mut buf);
            if let Ok(Repr::Grant(g)) = Repr::parse(&buf) {
                log.borrow_mut()
                    .push((g.common.sender_id & !1, g.offset, g.priority));
            }
        }
        true
    });
    seen
}

/// The paper's configuration: one unscheduled level (7) above seven
/// scheduled ones, RTTbytes windows, a grant per packet.
fn paper_like(config: Config) -> Config {
    let mut cutoffs = [0u32; homa_core::NUM_PRIORITIES];
    cutoffs[7] = u32::MAX;
    Config {
        unsched_bytes: 10_000,
        unsched_cutoffs: cutoffs,
        max_sched_priority: 6,
        max_overcommit: 7,
        grant_window: Some(10_000),
        grant_increment: 1_400,
        max_incoming: 1_000_000,
        grant_fifo_percent: 0,
        send_fifo_percent: 0,
        ..config
    }
}

/// With `grant_tail_boost`, the grants that cover a message's last bytes
/// (fewer than the boost left to grant, on the wire) carry the unscheduled
/// priority of a message that size; the others keep their scheduled level.
/// Without it, every grant is scheduled.
#[test]
fn the_end_of_a_message_is_granted_at_the_unscheduled_priority() {
    for boost in [0, 10_000] {
        let mut p = Pair::new(paper_like(Config {
            grant_tail_boost: boost,
            ..Config::default()
        }));
        p.auto_respond = Some(Box::new(|_| Bytes::new()));
        let seen = log_grants(&mut p);
        let len = 40_000u32;
        p.call(pattern(len as usize, 1));
        assert!(p.run_until(Duration::from_secs(1), |p| p.responses() == 1));
        let seen = seen.borrow();
        assert!(seen.len() > 10, "{seen:?}");
        let config = paper_like(Config::default());
        // A grant was issued with `len - before` bytes left to grant, where
        // `before` is the previous grant's offset (the unscheduled bytes
        // for the first one).
        let mut before = config.unsched_bytes.div_ceil(config.max_payload()) * config.max_payload();
        for &(_, offset, prio) in seen.iter() {
            let boosted = config.data_wire_bytes(len - before) < u64::from(boost);
            if boosted {
                assert_eq!(
                    prio,
                    7,
                    "grant to {offset} with {} left: {seen:?}",
                    len - before
                );
            } else {
                assert!(
                    prio <= 6,
                    "grant to {offset} with {} left: {seen:?}",
                    len - before
                );
            }
            before = offset;
        }
        let boosted = seen.iter().filter(|g| g.2 == 7).count();
        if boost == 0 {
            assert_eq!(boosted, 0, "{seen:?}");
        } else {
            assert!(boosted >= 5, "{seen:?}");
        }
    }
}

/// With `max_grants_per_peer` 1, of two messages from one client only the
/// shorter is granted until it is fully granted (as the paper's simulator
/// and Linux do): alone on the grant list, it keeps the lowest scheduled
/// level. Without a limit, once the longer one's first packets arrive both
/// are on the list and the shorter one's grants move up a level.
#[test]
fn one_message_per_peer_is_granted_at_a_time() {
    for per_peer in [1, usize::MAX] {
        let mut p = Pair::new(paper_like(Config {
            max_grants_per_peer: per_peer,
            ..Config::default()
        }));
        p.auto_respond = Some(Box::new(|_| Bytes::new()));
        let seen = log_grants(&mut p);
        let long = p.call(pattern(80_000, 1));
        let short = p.call(pattern(40_000, 2));
        assert!(p.run_until(Duration::from_secs(1), |p| p.responses() == 2));
        let seen = seen.borrow();
        let last_short = seen.iter().rposition(|g| g.0 == short.0).unwrap();
        let first_long = seen.iter().position(|g| g.0 == long.0).unwrap();
        let short_levels: Vec<u8> = seen
            .iter()
            .filter(|g| g.0 == short.0)
            .map(|g| g.2)
            .collect();
        if per_peer == 1 {
            assert!(last_short < first_long, "{seen:?}");
            assert!(short_levels.iter().all(|&l| l == 0), "{seen:?}");
        } else {
            assert!(short_levels.contains(&1), "{seen:?}");
        }
    }
}

/// With `max_grants_per_peer` 1, the client's next message is granted as
/// soon as the one ahead of it is granted to its end, while that one's last
/// window is still arriving, not once it has all arrived: the downlink
/// would otherwise idle for that window's round trip whenever the sender
/// has nothing else for this receiver. (The paper's simulator grants the
/// next message a packet time after the last grant.)
#[test]
fn a_peers_next_message_is_granted_before_the_one_ahead_completes() {
    use homa_core::wire::{Common, DataRepr, Repr};
    let config = paper_like(Config {
        max_grants_per_peer: 1,
        ..Config::default()
    });
    let payload = config.max_payload();
    let unsched = config.unsched_bytes;
    let mut server = homa_core::Endpoint::new(config, addr(SERVER)).unwrap();
    let now = homa_core::Instant::ZERO;
    // A DATA packet of request `id` (a client's id: even) from the client.
    let data = |id: u64, length: u32, offset: u32| {
        let repr = Repr::Data(DataRepr {
            common: Common {
                sport: 40000,
                dport: 99,
                sender_id: id,
            },
            message_length: length,
            incoming: unsched.min(length),
            offset,
            cutoff_version: Config::default().cutoff_version,
            ..DataRepr::default()
        });
        packet(repr, &vec![7u8; payload.min(length - offset) as usize])
    };
    // Grants the server sends now: (id as the server knows it, offset).
    let grants = |server: &mut homa_core::Endpoint| -> Vec<(u64, u32)> {
        std::iter::from_fn(|| server.poll_transmit(now))
            .filter_map(|t| {
                let mut buf = Vec::new();
                t.write_to(&mut buf);
                match Repr::parse(&buf) {
                    Ok(Repr::Grant(g)) => Some((g.common.sender_id, g.offset)),
                    _ => None,
                }
            })
            .collect()
    };
    let (long, short) = (2u64, 4u64);
    let (long_len, short_len) = (80_000u32, 40_000u32);
    // All of the long message's unscheduled bytes: it is granted a window.
    for off in (0..unsched).step_by(payload as usize) {
        server.handle_packet(now, addr(CLIENT), data(long, long_len, off));
    }
    let long_granted = grants(&mut server)
        .iter()
        .filter(|g| g.0 == long + 1)
        .map(|g| g.1)
        .max()
        .expect("the long message alone is granted");
    // Then the short one's: ranked first, it takes the client's one grant
    // slot. The long one's granted bytes arrive, and it waits.
    for off in (0..unsched).step_by(payload as usize) {
        server.handle_packet(now, addr(CLIENT), data(short, short_len, off));
    }
    for off in (unsched..long_granted).step_by(payload as usize) {
        server.handle_packet(now, addr(CLIENT), data(long, long_len, off));
    }
    let mut granted = grants(&mut server);
    // The short message's granted bytes, until it is granted to its end.
    let mut off = unsched;
    while !granted
        .iter()
        .any(|&(id, o)| id == short + 1 && o == short_len)
    {
        assert!(
            off < short_len,
            "the short message was never granted to its end: {granted:?}"
        );
        server.handle_packet(now, addr(CLIENT), data(short, short_len, off));
        off += payload;
        granted.extend(grants(&mut server));
    }
    let before = granted.len();
    assert!(
        !granted.iter().any(|&(id, _)| id == long + 1),
        "the long message was granted beside the short one: {granted:?}"
    );
    // The next packet of the short message's last window: the long one
    // is granted now, while that window is still arriving.
    assert!(off < short_len);
    server.handle_packet(now, addr(CLIENT), data(short, short_len, off));
    granted.extend(grants(&mut server));
    assert!(
        granted[before..].iter().any(|&(id, _)| id == long + 1),
        "the long message waited for the short one to complete: {granted:?}"
    );
}

/// FIFO grants go only to a message whose sender is using what it was
/// granted. The oldest message's sender here sends nothing beyond its
/// unscheduled bytes (as a sender busy with other messages does); FIFO
/// grants used to pile 10 KB after 10 KB onto it, and those parked bytes
/// took up `max_incoming` until the receiver could grant nothing else (W5
/// messages starved for 30 ms under the Linux policy).
#[test]
fn fifo_grants_skip_a_sender_that_is_not_sending() {
    use homa_core::wire::Repr;
    let config = Config {
        unsched_bytes: 10_000,
        max_incoming: 100_000,
        grant_window: None,
        grant_fifo_percent: 5,
        grant_fifo_increment: 10_000,
        ..Config::default()
    };
    let mut p = Pair::new(config);
    p.auto_respond = Some(Box::new(|_| Bytes::new()));
    let old = p.call(pattern(1_000_000, 1));
    let old_id = old.0;
    p.filter = Box::new(move |to_server, t| {
        if to_server && t.packet_type() == PacketType::Data {
            let mut buf = Vec::new();
            t.write_to(&mut buf);
            if let Ok(Repr::Data(d)) = Repr::parse(&buf) {
                return !(d.common.sender_id == old_id && d.offset >= 10_000);
            }
        }
        true
    });
    // Let the old message's unscheduled bytes arrive and its first grants
    // go out, then send a second message that flows.
    p.run_until(Duration::from_micros(200), |_| false);
    p.call(pattern(1_000_000, 2));
    assert!(p.run_until(Duration::from_millis(50), |p| p.responses() == 1));
    // Only the old message is left: it holds its dynamic window (100 KB / 2)
    // and no more.
    let parked = p.server.metrics().incoming_granted_unreceived;
    assert!(parked <= 50_000, "{parked} bytes parked at a silent sender");
}

/// Drops the given packet types in one direction while `block` is set.
fn block_types(
    block: &std::rc::Rc<std::cell::Cell<bool>>,
    towards_server: bool,
    types: &'static [PacketType],
) -> Filter {
    let block = block.clone();
    Box::new(move |to_server, t| {
        !(block.get() && to_server == towards_server && types.contains(&t.packet_type()))
    })
}

#[test]
fn a_request_waiting_for_grants_does_not_time_out() {
    // The server withholds grants for three timeouts (here by losing them,
    // and the RESENDs that would imply them; under load its SRPT does the
    // same to a long request). The client has sent everything it may: it
    // asks the server, which answers BUSY, and neither side gives up.
    let block = std::rc::Rc::new(std::cell::Cell::new(true));
    let mut p = Pair::new(Config::default());
    p.filter = block_types(&block, false, &[PacketType::Grant, PacketType::Resend]);
    let body = pattern(200_000, 3);
    p.call(body.clone());
    assert!(!p.run_until(Duration::from_millis(300), |p| !p.client_events.is_empty()));
    assert_eq!(p.server.metrics().active_server_rpcs, 1);
    block.set(false);
    assert!(p.run_until(Duration::from_millis(50), |p| p.responses() == 1));
    assert!(matches!(&p.client_events[0], Event::Response { body: b, .. } if *b == body));
    assert_eq!(p.client.metrics().client_timeouts, 0);
    assert_eq!(p.client.metrics().restarts, 0);
}

#[test]
fn a_response_waiting_for_grants_is_not_dropped() {
    // The mirror image: the client withholds grants for the response. The
    // server has sent all it may; it asks the client whether it still
    // wants the response (a RESEND of no bytes), the client answers BUSY,
    // and the server keeps the RPC instead of dropping it.
    let block = std::rc::Rc::new(std::cell::Cell::new(true));
    let mut p = Pair::new(Config::default());
    p.filter = block_types(&block, true, &[PacketType::Grant, PacketType::Resend]);
    let body = pattern(200_000, 4);
    p.call(Bytes::from_static(b"x"));
    p.auto_respond = Some(Box::new(move |_| body.clone()));
    let want = pattern(200_000, 4);
    assert!(!p.run_until(Duration::from_millis(300), |p| !p.client_events.is_empty()));
    assert_eq!(p.server.metrics().server_timeouts, 0);
    assert_eq!(p.server.metrics().active_server_rpcs, 1);
    block.set(false);
    assert!(p.run_until(Duration::from_millis(50), |p| p.responses() == 1));
    assert!(matches!(&p.client_events[0], Event::Response { body: b, .. } if *b == want));
    assert_eq!(p.client.metrics().restarts, 0, "the request ran once");
}

#[test]
fn a_stall_of_our_own_does_not_count_as_silence() {
    // The client's process is descheduled for longer than `resend_after`
    // while its RPC waits for the response, which has not reached it. The
    // first tick after the stall runs
    // late: it counts as one tick of silence, as Linux counts silent ticks,
    // so it sends no RESEND (a stall of the whole machine would otherwise
    // turn into a RESEND for everything in flight).
    //
    // The stall comes once the engine is ticking. (The RPC that starts an
    // idle engine ticking gets its first tick `resend_after` after it
    // starts, when it could first have gone silent, so a stall before that
    // tick counts in full for it: one RESEND.)
    let mut p = Pair::new(Config::default());
    // The response never reaches the client: it stays silent to it.
    let _held = hold_responses(&mut p);
    p.call(Bytes::from_static(b"ping"));
    p.run_until(Duration::from_micros(100), |p| !p.server_events.is_empty());
    assert_eq!(p.server_events.len(), 1, "the request arrived");
    // Ticks on time, past the first RESEND (5 ms of silence).
    let first = Config::default().resend_after + Duration::from_millis(1);
    p.run_until(first, |_| false);
    assert_eq!(p.client.metrics().resends_sent, 1, "the first tick asked");
    let before = p.client.metrics().resends_sent;
    while p.step() {}
    let stalled = p.now + Config::default().resend_after + Duration::from_millis(3);
    p.client.handle_timeout(stalled);
    let mut resends = 0;
    while let Some(t) = p.client.poll_transmit(stalled) {
        if t.packet_type() == homa_core::wire::PacketType::Resend {
            resends += 1;
        }
    }
    assert_eq!(resends, 0, "a RESEND for our own stall");
    assert_eq!(p.client.metrics().resends_sent, before);
    // Real silence still counts: ticks on time, and the RESEND follows.
    let mut now = stalled;
    for _ in 0..8 {
        now += Config::default().tick;
        p.client.handle_timeout(now);
    }
    assert!(
        p.client.metrics().resends_sent > before,
        "no RESEND for real silence"
    );
}

#[test]
fn an_endpoint_without_rpcs_ticks_only_when_its_memory_expires() {
    // Every tick of homa-tokio's driver wakes two threads; an endpoint
    // that serves an RPC now and then must not tick a thousand times a
    // second for `ack_memory` after each one.
    let cfg = Config::default();
    let mut p = Pair::new(cfg.clone());
    let start = p.now;
    p.call(Bytes::from_static(b"ping"));
    // The RPC's first tick: when it could first have gone silent.
    assert_eq!(p.client.poll_timeout(), Some(start + cfg.resend_after));
    p.run_until(Duration::from_millis(1), |p| p.responses() == 1);
    assert_eq!(p.responses(), 1);
    // A second RPC: its request carries the first one's ack.
    p.call(Bytes::from_static(b"ping"));
    p.run_until(Duration::from_millis(1), |p| p.responses() == 2);
    while p.step() {}
    let mut ticks = 0;
    let end = p.now + cfg.ack_memory * 3;
    while p.now < end {
        let due = [p.client.poll_timeout(), p.server.poll_timeout()];
        if !p.advance() {
            break; // nothing left to do, ever
        }
        ticks += due.iter().flatten().filter(|&&d| d <= p.now).count();
    }
    // While an RPC is held (the server's second, until it asks for its ack
    // with NEED_ACK after `resend_after` and the client answers, which
    // also settles the ack the client owed), ticks come every `tick`; after
    // that only when what a peer is remembered for (the server's
    // acknowledged ids) expires, and then never. Before, both ticked every
    // `tick` for `ack_memory`: over two hundred ticks here.
    assert!(ticks < 20, "{ticks} ticks over three ack_memory periods");
    // Everything was forgotten on time: the last tick was the one at which
    // the server's memory of the second RPC expired.
    assert!(
        p.now <= start + cfg.ack_memory + Duration::from_millis(20),
        "the last tick came at {:?}, not when the memory expired",
        p.now - start
    );
    assert_eq!(
        p.client.poll_timeout(),
        None,
        "the client forgot everything"
    );
    assert_eq!(
        p.server.poll_timeout(),
        None,
        "the server forgot everything"
    );
    assert_eq!(p.client.metrics().active_peers, 0);
    assert_eq!(p.server.metrics().active_peers, 0);
    assert_eq!(p.client.metrics().active_client_rpcs, 0);
    assert_eq!(p.server.metrics().active_server_rpcs, 0);
}

#[test]
fn our_own_stall_is_not_the_peers_silence() {
    // The client's process is descheduled for longer than the timeout while
    // the response waits in its socket, and its timer happens to run before
    // it reads the socket. The peer was not silent: it was never asked.
    // The tick asks (RESEND) instead of failing, and the response, read
    // next, completes the RPC.
    let mut p = Pair::new(Config::default());
    // Deliver the request; keep the server's answer out of the client.
    let held = hold_responses(&mut p);
    p.call(Bytes::from_static(b"ping"));
    p.run_until(Duration::from_micros(100), |p| !p.server_events.is_empty());
    assert_eq!(p.server_events.len(), 1);
    while p.step() {}
    let held = held.take();
    assert!(!held.is_empty());
    let late = p.now + Duration::from_millis(150);
    p.client.handle_timeout(late);
    assert!(
        p.client.poll_event().is_none(),
        "failed during our own stall"
    );
    for b in held {
        p.client.handle_packet(late, addr(SERVER), b);
    }
    assert!(matches!(
        p.client.poll_event(),
        Some(Event::Response { body, .. }) if body.as_ref() == b"ping"
    ));
}

#[test]
fn packets_waiting_in_our_own_queue_are_not_silence() {
    // The client has fallen behind its own receive queue: the response has
    // reached it but waits unread. Its timer runs on time (no stall the
    // engine could see), so only the caller knows, and it says how far it
    // has read. Silence is judged as of then: no RESEND for a response that
    // is already here. Deferred, not lost: once what it has read is itself
    // `resend_after` old, the RESEND goes, and the held response completes
    // the RPC.
    let config = Config::default();
    let (tick, resend_after) = (config.tick, config.resend_after);
    let mut p = Pair::new(config);
    let held = hold_responses(&mut p);
    let sent_at = p.now;
    p.call(pattern(3000, 5));
    p.run_until(Duration::from_micros(100), |p| !p.server_events.is_empty());
    while p.step() {}
    assert!(!held.borrow().is_empty(), "the response was sent");
    // Everything up to the response's arrival has been read; the response
    // has not.
    let read_until = p.now;
    let resends = |p: &mut Pair, now| {
        let mut n = 0;
        while let Some(t) = p.client.poll_transmit(now) {
            n += usize::from(t.packet_type() == PacketType::Resend);
        }
        n
    };
    // With every tick on time, a plain `handle_timeout` would send RESENDs
    // from `resend_after` on.
    let mut now = p.now;
    while now < read_until + resend_after * 2 {
        now += tick;
        p.client.handle_timeout_read_until(now, read_until);
        assert_eq!(resends(&mut p, now), 0, "RESEND for a response we hold");
    }
    // Reading resumes `lag` behind: silence counts again, as of what has
    // been read, and the RESEND goes `resend_after` after the last packet
    // heard, `lag` late.
    let lag = resend_after * 2 + Duration::from_millis(3);
    let first = loop {
        now += tick;
        let behind =
            homa_core::Instant::from_nanos(now.as_nanos().saturating_sub(lag.as_nanos() as u64));
        p.client
            .handle_timeout_read_until(now, behind.max(read_until));
        if resends(&mut p, now) > 0 {
            break now;
        }
        assert!(
            now - read_until < Duration::from_millis(100),
            "no RESEND at all"
        );
    };
    assert!(
        first >= sent_at + resend_after + lag,
        "RESEND at {first:?}, too early"
    );
    assert!(
        first <= read_until + resend_after + lag + tick * 2,
        "RESEND at {first:?}, too late"
    );
    for b in held.take() {
        p.client.handle_packet(now, addr(SERVER), b);
    }
    assert!(matches!(
        p.client.poll_event(),
        Some(Event::Response { body, .. }) if body == pattern(3000, 5)
    ));
    assert_eq!(p.client.metrics().client_timeouts, 0);
}

/// `awaits_packets` holds while packets are still to come: at the client
/// from its request until the response is in, at the server from the
/// request's first packet until the client has acknowledged the response.
#[test]
fn awaits_packets_until_the_response_and_its_acknowledgment_are_in() {
    let mut p = Pair::new(Config::default());
    assert!(!p.client.awaits_packets() && !p.server.awaits_packets());
    p.auto_respond = Some(Box::new(|b| b.clone()));
    p.call(pattern(200_000, 1));
    assert!(p.client.awaits_packets(), "the response is due");
    assert!(p.run_until(Duration::from_secs(1), |p| p.server.awaits_packets()));
    assert!(p.run_until(Duration::from_secs(1), |p| p.responses() == 1));
    assert!(
        !p.client.awaits_packets(),
        "nothing is due once the response is in"
    );
    assert!(
        p.server.awaits_packets(),
        "the acknowledgment is still to come"
    );
    // With no next request to carry it, the server asks (NEED_ACK).
    assert!(p.run_until(Duration::from_secs(1), |p| !p.server.awaits_packets()));
}

#[test]
fn bytes_we_sent_late_do_not_make_the_first_tick_resend() {
    // The engine counts silence from what it last heard, and an RPC that
    // waits on us (granted bytes we have not sent) is not silent. But an
    // engine that held no RPC ticks first `resend_after` after the RPC that
    // starts it, and that tick stands for `resend_after` of silence: if our
    // own pacer sent the request's last bytes just before it, the server
    // had them for a moment only and must not be asked for its answer. A
    // request of unscheduled bytes only (the server sends nothing back
    // until it answers), paced out over nearly `resend_after`; the server's
    // application answers 1 ms after it has the whole request.
    let cfg = Config {
        // 40,000 bytes at 68 Mbit/s: about 4.8 ms on the wire.
        link_rate_bps: 68_000_000,
        ..Config::default()
    };
    let mut p = Pair::new(cfg.clone());
    p.auto_respond = None;
    let start = p.now;
    let id = p.call(Bytes::from(vec![7u8; 40_000]));
    p.run_until(cfg.resend_after, |p| !p.server_events.is_empty());
    let rpc = match p.server_events.first() {
        Some(Event::Request { rpc, .. }) => *rpc,
        other => panic!("no request at the server: {other:?}"),
    };
    // The scenario: the request was whole at the server (its last byte
    // left the client one wire delay before) less than a tick before the
    // client's first tick.
    let sent_late = p.now - start;
    assert!(
        sent_late > cfg.resend_after - cfg.tick && sent_late < cfg.resend_after,
        "the request arrived after {sent_late:?}"
    );
    let answer_at = p.now + Duration::from_millis(1);
    p.run_until(answer_at - p.now, |_| false);
    p.server
        .send_response(p.now, rpc, Bytes::from_static(b"pong"))
        .unwrap();
    p.run_until(Duration::from_millis(10), |p| p.responses() == 1);
    assert!(matches!(
        p.client_events.last(),
        Some(Event::Response { id: got, .. }) if *got == id
    ));
    let resends = p.sent_count(true, PacketType::Resend);
    assert_eq!(
        resends, 0,
        "the client asked for an answer the server had had the request for only a moment"
    );
}

#[test]
fn a_grant_we_gave_late_starts_the_senders_silence_afresh() {
    // The receiver's side of the same: a message that has everything we
    // granted waits on us, not on its sender, and the tick notices that
    // only when it runs. Two requests from one client arrive together at a
    // server that grants one message at a time (and no FIFO share): the
    // longer one, B, waits with its first packet until the shorter one is
    // granted to its end, just before the server's first tick (`resend_after`
    // after the first request arrived), so no tick saw B wait. Its sender
    // then finishes the shorter request first (SRPT), and B's data comes
    // 1.5 ms after its grant: the second tick must count B's silence from
    // the grant, not from B's first packet 6 ms before. (The first tick
    // finds B silent just under `resend_after` either way.)
    let cfg = Config {
        unsched_bytes: 1,
        max_overcommit: 1,
        grant_fifo_percent: 0,
        link_rate_bps: 1_000_000_000,
        ..Config::default()
    };
    let mut p = Pair::new(cfg.clone());
    p.delay = Duration::from_micros(200);
    p.auto_respond = None;
    let grants = log_grants(&mut p);
    let start = p.now;
    p.call(Bytes::from(vec![1u8; 700_000]));
    let b = p.call(Bytes::from(vec![2u8; 900_000]));
    let first_tick = start + p.delay + cfg.resend_after;
    let mut b_granted = None;
    while p.now < first_tick + 2 * cfg.tick && p.advance() {
        if b_granted.is_none() && grants.borrow().iter().any(|g| g.0 == b.0) {
            b_granted = Some(p.now);
        }
    }
    // The scenario: B's first grant (seen a step late here) came less than a
    // round trip before the server's first tick, and two ticks have run.
    let at = b_granted.expect("B was granted");
    assert!(
        at + 2 * p.delay > first_tick && at < first_tick,
        "B was first granted {:?} after the start",
        at - start
    );
    let resends = p.sent_count(false, PacketType::Resend);
    assert_eq!(
        resends, 0,
        "the server asked B's sender for data it had granted a moment before"
    );
    p.run_until(Duration::from_millis(20), |p| p.server_events.len() == 2);
    assert_eq!(p.server_events.len(), 2, "both requests arrived");
}

#[test]
fn a_retransmission_our_pacer_holds_is_a_wait_on_us() {
    // A RESEND asks for bytes we sent once; until our pacer has sent them
    // again the RPC waits on us, as it does while granted bytes are unsent,
    // and the peer's silence is not its fault. A server that lost a
    // 40,000-byte request asks for all of it again; on a 40 Mbit/s link the
    // retransmission takes about 8.4 ms, longer than `resend_after`, and the
    // server (whose application holds the request) sends nothing meanwhile.
    // The client must not ask for the response before it has even finished
    // sending the request again, and its silence counts from the last
    // retransmitted byte.
    let cfg = Config {
        unsched_bytes: 40_000,
        link_rate_bps: 40_000_000,
        ..Config::default()
    };
    let mut p = Pair::new(cfg.clone());
    p.auto_respond = None;
    let id = p.call(Bytes::from(vec![3u8; 40_000]));
    p.run_until(Duration::from_millis(20), |p| !p.server_events.is_empty());
    let rpc = match p.server_events.first() {
        Some(Event::Request { rpc, .. }) => *rpc,
        other => panic!("no request at the server: {other:?}"),
    };
    // The server's RESEND for the whole request (as if its packets had been
    // lost), built with the wire format and handed to the client.
    let resend = {
        use homa_core::wire::{Common, Repr, ResendRepr};
        let repr = Repr::Resend(ResendRepr {
            common: Common {
                sport: addr(SERVER).port(),
                dport: addr(CLIENT).port(),
                sender_id: id.0 ^ 1,
            },
            offset: 0,
            length: 40_000,
            priority: 7,
        });
        packet(repr, &[])
    };
    let client_data = |p: &Pair| p.sent_count(true, PacketType::Data);
    let client_resends = |p: &Pair| p.sent_count(true, PacketType::Resend);
    assert_eq!(client_resends(&p), 0);
    let asked = p.now;
    p.client.handle_packet(p.now, addr(SERVER), resend);
    // Follow the retransmission to its last packet, and note when the
    // client asks for the response (the server's application still holds
    // the request, so in the end it will, and hear BUSY).
    let mut sent = client_data(&p);
    let mut last_sent = p.now;
    let mut asked_back = Vec::new();
    while p.now < asked + Duration::from_millis(30) && p.advance() {
        if client_data(&p) > sent {
            sent = client_data(&p);
            last_sent = p.now;
        }
        while client_resends(&p) > asked_back.len() {
            asked_back.push(p.now);
        }
    }
    // The scenario: the pacer held the retransmission for longer than
    // `resend_after` (29 packets of 1,400-odd bytes).
    assert!(
        last_sent - asked > cfg.resend_after,
        "the retransmission took only {:?}",
        last_sent - asked
    );
    assert!(
        asked_back
            .iter()
            .all(|&t| t >= last_sent + cfg.resend_after),
        "the client asked for the response {:?} after the server's RESEND; its retransmission ended after {:?}",
        asked_back.iter().map(|&t| t - asked).collect::<Vec<_>>(),
        last_sent - asked
    );
    // And the silence counts from then: the first RESEND comes at the first
    // tick `resend_after` after the last retransmitted packet (times here
    // are read when the next event is due, at most one wire delay late).
    let first = *asked_back
        .first()
        .expect("a silent server is asked in the end");
    assert!(
        first <= last_sent + cfg.resend_after + cfg.tick + p.delay,
        "the first RESEND came {:?} after the retransmission ended",
        first - last_sent
    );
    // Then the server answers, and the RPC completes.
    p.server
        .send_response(p.now, rpc, Bytes::from_static(b"done"))
        .unwrap();
    p.run_until(Duration::from_millis(10), |p| p.responses() == 1);
    assert_eq!(p.responses(), 1);
}
