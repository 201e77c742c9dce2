//! The housekeeping tick: RESEND after silence, NEED_ACK, timeouts, and
//! expiry of per-peer memory.
//!
//! At most [`RESENDS_PER_PEER_PER_TICK`] RESENDs go to each peer per tick,
//! for its RPCs that have been silent longest (Linux Homa sends one): when a
//! peer is overloaded, hundreds of its RPCs fall silent at once, and a
//! RESEND for each of them, every interval, answered by retransmissions,
//! only adds to its load.

use crate::endpoint::{Endpoint, Event, RpcId, State};
use crate::error::RpcError;
use crate::time::Instant;
use crate::wire::Repr;

/// Most RESENDs sent to one peer per tick.
pub(crate) const RESENDS_PER_PEER_PER_TICK: usize = 4;

/// Probes (RESEND or NEED_ACK) that must go unanswered before an RPC times
/// out, on top of [`Config::timeout`](crate::Config::timeout) of silence.
/// Silence alone is not enough: if our own process was descheduled for
/// longer than the timeout, the peer's answers are waiting in our socket,
/// unread, and the first tick after the stall may run before we read them.
/// A peer that was never asked has not failed to answer. Two probes, one
/// resend interval apart, give a live peer a full interval to answer.
pub(crate) const TIMEOUT_PROBES: u8 = 2;

enum Action {
    None,
    Resend { offset: u32, length: u32 },
    NeedAck,
    Fail,
    Drop,
}

impl Endpoint {
    /// One tick, `late` after it was due. Silence is counted in ticks, as
    /// Linux counts `silent_ticks`, not in wall time: a tick that runs late
    /// (our process, or the whole machine, stalled; or the driver was busy
    /// reading) counts as one tick, so the time it was late is taken off
    /// every RPC's silence. Otherwise a stall longer than `resend_after`
    /// turns into RESENDs for everything in flight at once, each answered
    /// by a retransmission, on top of the backlog the stall left. (The
    /// first tick of an engine that held no RPC comes `resend_after` after
    /// the RPC that starts it ticking, and stands for that much silence:
    /// see `Endpoint::next_tick_after`.)
    ///
    /// Silence is judged as of `read_until` (at most `now`): packets that
    /// reached us after it may still wait unread in our own queue, so a
    /// peer heard from after it, or silent for less than `resend_after`
    /// before it, has not gone quiet.
    pub(crate) fn tick(&mut self, now: Instant, late: std::time::Duration, read_until: Instant) {
        let resend_after = self.config.resend_after;
        let resend_interval = self.config.resend_interval;
        let timeout = self.config.timeout;
        let unsched = self.config.unsched_bytes;
        // RESENDs this tick would send: (peer, silence, rpc, offset, length).
        let mut resends: Vec<(std::net::SocketAddr, std::time::Duration, u32, u32, u32)> =
            Vec::new();
        for i in 0..self.rpcs.len() {
            let Some(r) = self.rpcs[i].as_mut() else {
                continue;
            };
            if !late.is_zero() {
                // `probes_since` moves with `last_heard`, so that a shift is
                // not mistaken for hearing from the peer.
                let keep = r.probes_since == r.last_heard;
                r.last_heard = (r.last_heard + late).min(now);
                r.last_resend = (r.last_resend + late).min(now);
                if keep {
                    r.probes_since = r.last_heard;
                }
            }
            if r.inm.as_ref().is_some_and(|m| m.waits_on_us()) {
                // Everything we granted has arrived: the sender is silent
                // because we have not granted more, which is not its fault
                // (Linux resets silent_ticks here too).
                r.last_heard = now;
            }
            if r.out.as_ref().is_some_and(|o| o.waits_on_us()) {
                // We may send bytes we have not sent, or owe a retransmission
                // the peer asked for: the RPC waits on us (our own SRPT
                // prefers other messages, or our pacer has not got to it), not
                // on the peer, so the peer's silence is not its fault either
                // (Linux does not count silent ticks while the RPC is blocked
                // on the sender).
                r.last_heard = now;
            }
            if r.probes_since != r.last_heard {
                // We heard from the peer since counting began.
                r.probes_since = r.last_heard;
                r.probes = 0;
            }
            let r = &*r;
            // Saturating: we may have heard from the peer after `read_until`.
            let silent = read_until - r.last_heard;
            let may_resend = silent >= resend_after && now - r.last_resend >= resend_interval;
            let timed_out = silent >= timeout && r.probes >= TIMEOUT_PROBES;
            let action = match r.state {
                State::Client if timed_out => Action::Fail,
                State::Client => {
                    // Everything granted is sent (or there is no request). A
                    // retransmission still owed keeps the RPC from being
                    // silent at all (`waits_on_us`, above).
                    let out_done = r.out.as_ref().is_none_or(|o| !o.can_send_new());
                    if may_resend && out_done {
                        // Ask for the response: the first gap, up to what we
                        // granted (or the unscheduled bytes if none came).
                        match &r.inm {
                            Some(m) => match m.first_gap(m.granted.max(1)) {
                                Some((s, e)) => Action::Resend {
                                    offset: s,
                                    length: e - s,
                                },
                                None => Action::Resend {
                                    offset: m.received,
                                    length: m.granted.saturating_sub(m.received).max(1),
                                },
                            },
                            None => Action::Resend {
                                offset: 0,
                                length: unsched,
                            },
                        }
                    } else {
                        Action::None
                    }
                }
                State::ServerIncoming if timed_out => Action::Drop,
                State::ServerIncoming => match (&r.inm, may_resend) {
                    (Some(m), true) => match m.first_gap(m.granted.max(1)) {
                        Some((s, e)) => Action::Resend {
                            offset: s,
                            length: e - s,
                        },
                        // Everything granted has come (the tick refreshes
                        // `last_heard` then, so this is not reached).
                        None => Action::None,
                    },
                    _ => Action::None,
                },
                // The application owns it until it responds.
                State::ServerInService => Action::None,
                // Freed by the reap that runs before every tick; nothing
                // to do if it is still here.
                State::ServerAcked => Action::None,
                State::ServerOutgoing if timed_out => Action::Drop,
                State::ServerOutgoing => {
                    let sent = r.out.as_ref().is_some_and(|o| o.all_sent());
                    match (sent, may_resend) {
                        (true, true) => Action::NeedAck,
                        // We have sent all the client granted and it is
                        // silent: its SRPT prefers other responses, or it
                        // is gone. A RESEND of no bytes asks which; a
                        // client that still wants the response answers
                        // BUSY.
                        (false, true) => Action::Resend {
                            offset: 0,
                            length: 0,
                        },
                        (_, false) => Action::None,
                    }
                }
            };
            let idx = i as u32;
            match action {
                Action::None => {}
                Action::Resend { offset, length } => {
                    resends.push((r.peer, silent, idx, offset, length));
                }
                Action::NeedAck => {
                    let (peer, id) = (r.peer, r.id);
                    let r = self.rpc_mut(idx);
                    r.last_resend = now;
                    r.probes = r.probes.saturating_add(1);
                    let repr = Repr::NeedAck(self.common(peer, id));
                    self.send_control(peer, repr);
                }
                Action::Fail => {
                    let id = r.id;
                    self.metrics.client_timeouts += 1;
                    self.free_rpc(idx);
                    self.push_event(Event::Failed {
                        id: RpcId(id),
                        error: RpcError::Timeout,
                    });
                }
                Action::Drop => {
                    self.metrics.server_timeouts += 1;
                    self.free_rpc(idx);
                }
            }
        }
        // Per peer, only the RPCs silent longest (ties: the first found).
        resends.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut last: Option<(std::net::SocketAddr, usize)> = None;
        resends.retain(|r| {
            let n = match last {
                Some((p, n)) if p == r.0 => n + 1,
                _ => 1,
            };
            last = Some((r.0, n));
            n <= RESENDS_PER_PEER_PER_TICK
        });
        for (peer, _, idx, offset, length) in resends {
            let r = self.rpc_mut(idx);
            let id = r.id;
            r.last_resend = now;
            r.probes = r.probes.saturating_add(1);
            self.metrics.resends_sent += 1;
            let repr = self.resend_repr(peer, id, offset, length);
            self.send_control(peer, repr);
        }
        self.expire_peers(now);
    }

    fn expire_peers(&mut self, now: Instant) {
        let memory = self.config.ack_memory;
        self.peers.retain(|p| {
            while p
                .tombstones
                .front()
                .is_some_and(|&(_, t)| now - t >= memory)
            {
                if let Some((id, _)) = p.tombstones.pop_front() {
                    p.tombstone_set.remove(&id);
                }
            }
            // An ack nobody asked for within the memory time is not needed:
            // the server forgets the RPC on its own after its timeout.
            while p
                .pending_acks
                .front()
                .is_some_and(|&(_, t)| now - t >= memory)
            {
                p.pending_acks.pop_front();
            }
            p.rpcs > 0 || !p.tombstones.is_empty() || !p.pending_acks.is_empty()
        });
    }
}
