//! The receiver's grant scheduler.
//!
//! Up to `max_overcommit` incoming messages are granted at once, ranked by
//! fewest unreceived bytes (ties to the oldest), at most
//! `max_grants_per_peer` of them from one sender. Each gets a window of
//! `max_incoming / (active + 1)` bytes beyond what it has received (Linux's
//! dynamic window) unless a fixed window is configured, and the total of
//! granted-but-unreceived bytes stays at or below `max_incoming`. The
//! top-ranked message gets the highest scheduled priority, the next one level
//! lower, and so on; with fewer grantable messages than scheduled levels,
//! only the lowest levels are used (the last message gets level 0).
//! With `grant_tail_boost`, the last bytes of a message are granted at the
//! unscheduled priority of a message that size, as the paper's simulator
//! does. `grant_fifo_percent` of the granted bytes go to the
//! oldest message instead, in `grant_fifo_increment` chunks, so a large
//! message cannot starve behind a stream of smaller ones; a message that
//! still has a chunk's worth granted and not received is passed over (its
//! sender is busy elsewhere).

use crate::endpoint::{unsched_priority, Endpoint};
use crate::time::Instant;

impl Endpoint {
    pub(crate) fn update_grants(&mut self, now: Instant) {
        self.grants_dirty = false;
        if self.incoming.is_empty() {
            return;
        }
        let max_incoming = self.config.max_incoming;
        let increment = self.config.grant_increment;
        let mut total: u32 = 0;
        let mut cands = std::mem::take(&mut self.scratch);
        cands.clear();
        for &idx in &self.incoming {
            let Some(m) = self.rpc(idx).inm.as_ref() else {
                continue;
            };
            total = total.saturating_add(m.outstanding());
            if m.granted < m.length {
                cands.push(idx);
            }
        }
        if cands.is_empty() {
            self.scratch = cands;
            return;
        }
        let key = |e: &Endpoint, idx: u32| {
            let m = e.rpc(idx).inm.as_ref().expect("incoming has inm");
            (m.length - m.received, m.birth)
        };
        cands.sort_unstable_by_key(|&idx| key(self, idx));

        // Whether a message is granted to its end in this call.
        let mut finished = false;

        // FIFO share first, so it is not crowded out by SRPT grants.
        let pct = u64::from(self.config.grant_fifo_percent);
        let inc = self.config.grant_fifo_increment;
        if pct > 0 && self.grant_fifo_credit * pct >= u64::from(inc) * (100 - pct) {
            // The oldest message whose sender is using its grants: one with
            // a FIFO step's worth still outstanding has a sender busy with
            // other messages, and more grants would only park there, taking
            // up `max_incoming` until nothing else could be granted.
            let oldest = cands
                .iter()
                .copied()
                .filter(|&idx| {
                    self.rpc(idx)
                        .inm
                        .as_ref()
                        .is_some_and(|m| m.outstanding() < inc)
                })
                .min_by_key(|&idx| self.rpc(idx).inm.as_ref().map_or(u64::MAX, |m| m.birth));
            let room = max_incoming.saturating_sub(total);
            if let Some(oldest) = oldest.filter(|_| room > 0) {
                self.grant_fifo_credit = 0;
                let prio = self.config.max_sched_priority;
                let m = self.rpc(oldest).inm.as_ref().expect("incoming has inm");
                let new = m.length.min(m.granted.saturating_add(inc.min(room)));
                total += new - m.granted;
                finished |= new == m.length;
                self.issue_grant(oldest, new, prio, now);
            }
        }

        // At most `max_grants_per_peer` messages of one sender, the
        // shortest: compact them to the front of `cands`, in rank order. Only
        // as many as could be used are looked for (the granted ones, and
        // enough to know how many scheduled levels go unused), so the scan of
        // each chosen peer stays short. With no effective limit (the
        // default) this runs on every packet for nothing, so it is skipped.
        let levels = usize::from(self.config.max_sched_priority) + 1;
        let per_peer = self.config.max_grants_per_peer;
        let mut held_back = false;
        if per_peer < cands.len() {
            let wanted = self.config.max_overcommit.max(levels);
            let mut chosen = 0;
            for i in 0..cands.len() {
                if chosen == wanted {
                    break;
                }
                let peer = self.rpc(cands[i]).peer_idx;
                let same = cands[..chosen]
                    .iter()
                    .filter(|&&c| self.rpc(c).peer_idx == peer)
                    .count();
                if same < per_peer {
                    cands[chosen] = cands[i];
                    chosen += 1;
                } else {
                    held_back = true;
                }
            }
            cands.truncate(chosen);
        }

        let active = cands.len().min(self.config.max_overcommit);
        let window = self
            .config
            .grant_window
            .unwrap_or(max_incoming / (active as u32 + 1));
        // A grant must move at least `grant_increment`, but never more than
        // half the window: with a window smaller than the increment no grant
        // could ever be sent and every message would stall.
        let step = increment.min((window / 2).max(1));
        // With fewer grantable messages than scheduled levels, use the lowest
        // levels (the paper's rule, and Linux Homa's): priorities then only
        // fall as messages finish. Started from the top instead, the last
        // message left would jump up to the highest level and its packets
        // would overtake those still queued, at lower levels, of a message
        // just fully granted — which then starve on a busy downlink.
        let unused = levels.saturating_sub(cands.len());
        for (rank, &idx) in cands[..active].iter().enumerate() {
            let m = self.rpc(idx).inm.as_ref().expect("incoming has inm");
            let target = m.length.min(m.received.saturating_add(window));
            if target <= m.granted {
                continue;
            }
            let room = max_incoming.saturating_sub(total);
            if room == 0 {
                break;
            }
            // Saturating: `max_incoming` may be `u32::MAX` (no cap), and
            // `granted + room` would then wrap to a small offset.
            let new = target.min(m.granted.saturating_add(room));
            // Grant at least `step` at a time (fewer GRANT packets), unless
            // this finishes the message — but only while granted bytes are
            // still arriving: a message with nothing outstanding would
            // otherwise wait for a RESEND.
            let flowing = m.granted > m.received;
            if new < m.length && flowing && new - m.granted < step {
                continue;
            }
            let (delta, left, length) = (new - m.granted, m.length - m.granted, m.length);
            total += delta;
            self.grant_fifo_credit += u64::from(delta);
            let below = u8::try_from(rank + unused).unwrap_or(u8::MAX);
            let mut prio = self.config.max_sched_priority.saturating_sub(below);
            // The message's end rides at the priority of a short message
            // of its size (`grant_tail_boost`).
            let boost = self.config.grant_tail_boost;
            if boost > 0 && self.config.data_wire_bytes(left) < u64::from(boost) {
                prio = prio.max(unsched_priority(&self.config.unsched_cutoffs, left));
            }
            finished |= new == length;
            self.issue_grant(idx, new, prio, now);
        }
        // A message granted to its end here leaves the candidates from the
        // next call on, and one that waited (held back by the per-peer
        // limit, or beyond `max_overcommit`) may then be granted. Without
        // another look it would wait for some other event at this receiver
        // (at worst that message's completion, an RTT of idle downlink
        // later); the next packet to arrive looks again, as the paper's
        // simulator grants a sender's next message a packet time after the
        // last grant.
        if finished && (held_back || cands.len() > active) {
            self.grants_dirty = true;
        }
        self.scratch = cands;
    }

    fn issue_grant(&mut self, idx: u32, offset: u32, priority: u8, now: Instant) {
        let r = self.rpc_mut(idx);
        let m = r.inm.as_mut().expect("incoming has inm");
        let delta = offset - m.granted;
        // Everything granted so far had come: the sender waited on us, and
        // its silence starts with this grant. (The tick notices too, but
        // only when it runs; see `build_data` for why that can be too late.)
        let waited_on_us = m.waits_on_us();
        m.granted = offset;
        if waited_on_us {
            r.last_heard = now;
        }
        let (peer, id) = (r.peer, r.id);
        self.metrics.grants_sent += 1;
        self.metrics.granted_bytes += u64::from(delta);
        let repr = self.grant_repr(peer, id, offset, priority);
        self.send_control(peer, repr);
    }
}
