//! Sending: control packets first, then DATA chosen by SRPT (with a small
//! oldest-first share) and paced to the link rate.

use crate::endpoint::{type_index, Endpoint, State, Transmit};
use crate::time::Instant;
use crate::wire::{DataRepr, PacketType, Repr, DATA_HEADER_LEN};
use core::time::Duration;

impl Endpoint {
    /// The next packet to send, if any. Call repeatedly until `None` after
    /// every input. DATA is held back while the NIC queue would exceed
    /// [`Config::max_nic_queue`](crate::Config::max_nic_queue) at the link rate;
    /// [`poll_timeout`](Self::poll_timeout) then says when to ask again.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if let Some(t) = self.control.pop_front() {
            self.account_tx(now, &t);
            return Some(t);
        }
        let idx = self.pick_message(now)?;
        let t = self.build_data(now, idx);
        self.account_tx(now, &t);
        Some(t)
    }

    fn account_tx(&mut self, now: Instant, t: &Transmit) {
        self.metrics.packets_out[type_index(t.packet_type())] += 1;
        self.metrics.bytes_out += t.len() as u64;
        let wire_bits = (t.len() as u64 + u64::from(self.config.packet_overhead)) * 8;
        // Serialization time at the link rate, rounded up to whole ns.
        let ns = (wire_bits * 1_000_000_000).div_ceil(self.config.link_rate_bps);
        self.link_idle = self.link_idle.max(now) + Duration::from_nanos(ns);
    }

    /// Choose the message for the next DATA packet: a pending retransmission
    /// first, else the fewest bytes left (SRPT), except that
    /// `send_fifo_percent` of the bytes go to the oldest message. The pacer
    /// holds back messages with more than `pacer_bypass_bytes` left while the
    /// NIC queue is full.
    fn pick_message(&mut self, now: Instant) -> Option<u32> {
        // Drop entries with nothing to send.
        let mut i = 0;
        while i < self.sendable.len() {
            let idx = self.sendable[i];
            let r = self.rpcs[idx as usize]
                .as_mut()
                .expect("listed rpc is live");
            // An acknowledged response (`State::ServerAcked`) has nothing
            // left to send, whatever its message says.
            if r.state != State::ServerAcked && r.out.as_ref().is_some_and(|o| o.has_work()) {
                i += 1;
            } else {
                r.in_sendable = false;
                self.sendable.swap_remove(i);
            }
        }
        if self.sendable.is_empty() {
            self.pacer_wakeup = None;
            return None;
        }
        let fifo_pct = u64::from(self.config.send_fifo_percent);
        let use_fifo = fifo_pct > 0
            && self.send_fifo_credit * fifo_pct
                >= u64::from(self.config.max_payload()) * (100 - fifo_pct);
        let key = |e: &Endpoint, idx: u32| {
            let r = e.rpc(idx);
            let o = r.out.as_ref().expect("sendable has out");
            (
                o.resend.is_none(),
                if use_fifo { 0 } else { o.remaining() },
                r.birth,
            )
        };
        let mut best = self.sendable[0];
        let mut best_key = key(self, best);
        for &idx in &self.sendable[1..] {
            let k = key(self, idx);
            if k < best_key {
                best = idx;
                best_key = k;
            }
        }
        let queue_limit = now + self.config.max_nic_queue;
        if self.link_idle > queue_limit {
            // NIC queue full: only a short message may bypass the pacer.
            let bypass = self.config.pacer_bypass_bytes;
            let small = self.sendable.iter().copied().find(|&idx| {
                let o = self.rpc(idx).out.as_ref().expect("sendable has out");
                o.resend.is_none() && o.remaining() <= bypass
            });
            match small {
                Some(idx) => return Some(idx),
                None => {
                    self.pacer_wakeup = Some(Instant::from_nanos(
                        self.link_idle.as_nanos() - self.config.max_nic_queue.as_nanos() as u64,
                    ));
                    return None;
                }
            }
        }
        self.pacer_wakeup = None;
        if use_fifo {
            self.send_fifo_credit = 0;
        }
        Some(best)
    }

    fn build_data(&mut self, now: Instant, idx: u32) -> Transmit {
        let max_payload = self.config.max_payload();
        let local_port = self.local_addr().port();
        let (peer, id, pidx) = {
            let r = self.rpc(idx);
            (r.peer, r.id, r.peer_idx)
        };
        // Piggyback one owed ack for this peer (we were its client).
        let p = self.peers.at_mut(pidx);
        let ack = p
            .pending_acks
            .pop_front()
            .map(|(a, _)| a)
            .unwrap_or_default();
        let cutoff_version = p.cutoff_version;
        let r = self.rpc_mut(idx);
        let out = r.out.as_mut().expect("picked rpc has out");
        let (offset, len, priority, retransmit) = match out.resend {
            Some((s, e)) => {
                let len = max_payload.min(e - s).min(out.length - s);
                out.resend = (s + len < e).then_some((s + len, e));
                (s, len, out.resend_priority, true)
            }
            None => {
                let offset = out.next_offset;
                let len = max_payload.min(out.length - offset);
                out.next_offset += len;
                out.started = true;
                // Unscheduled bytes go at the unscheduled priority; so does
                // the one packet of an empty message (its `unsched` is 0, but
                // nobody granted it: it must not fall to the scheduled level,
                // where it starves behind granted data).
                let prio = if offset < out.unsched || out.length == 0 {
                    out.unsched_priority
                } else {
                    out.sched_priority
                };
                (offset, len, prio, false)
            }
        };
        let payload = out.body.slice(offset as usize..(offset + len) as usize);
        let repr = Repr::Data(DataRepr {
            common: crate::wire::Common {
                sport: local_port,
                dport: peer.port(),
                sender_id: id,
            },
            message_length: out.length,
            incoming: out.granted.min(out.length),
            ack,
            cutoff_version,
            retransmit,
            flags: out.flags,
            offset,
        });
        let still = out.has_work();
        if !out.waits_on_us() {
            // The last byte we may send (new or asked for again) has left:
            // the RPC stops waiting on us, and any silence of the peer's
            // starts now. The tick notices this too, but only when it runs,
            // and the first tick of an engine that held no RPC stands for
            // `resend_after` of silence (see `next_tick_after`): bytes our
            // pacer held back until just before it would look like a peer
            // silent all along.
            r.last_heard = now;
        }
        if !still {
            r.in_sendable = false;
            if let Some(pos) = self.sendable.iter().position(|&i| i == idx) {
                self.sendable.swap_remove(pos);
            }
        }
        if retransmit {
            self.metrics.retransmitted_bytes += u64::from(len);
        }
        self.send_fifo_credit += u64::from(len);
        debug_assert_eq!(repr.packet_type(), PacketType::Data);
        debug_assert_eq!(repr.header_len(), DATA_HEADER_LEN);
        Transmit::new(peer, priority, &repr, payload)
    }
}
