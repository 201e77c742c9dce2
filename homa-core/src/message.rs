//! Per-message state: segmentation of outgoing messages and reassembly of
//! incoming ones.

use bytes::Bytes;

/// An outgoing message (a request on a client, a response on a server).
#[derive(Debug)]
pub(crate) struct OutMessage {
    pub body: Bytes,
    pub length: u32,
    /// First byte never transmitted.
    pub next_offset: u32,
    /// Packets starting below this offset may be transmitted.
    pub granted: u32,
    /// Bytes sent at the unscheduled priority (the initial `granted`).
    pub unsched: u32,
    pub unsched_priority: u8,
    /// Priority from the latest GRANT.
    pub sched_priority: u8,
    /// Range asked for again by a RESEND, transmitted before new data.
    pub resend: Option<(u32, u32)>,
    pub resend_priority: u8,
    /// At least one packet went out (a zero-length message is one packet).
    pub started: bool,
    /// DATA flag byte (incast mark).
    pub flags: u8,
}

impl OutMessage {
    pub fn new(body: Bytes, unsched: u32, unsched_priority: u8, flags: u8) -> Self {
        let length = body.len() as u32;
        let unsched = unsched.min(length);
        OutMessage {
            body,
            length,
            next_offset: 0,
            granted: unsched,
            unsched,
            unsched_priority,
            sched_priority: 0,
            resend: None,
            resend_priority: 0,
            started: false,
            flags,
        }
    }

    /// Every byte has been transmitted at least once.
    pub fn all_sent(&self) -> bool {
        self.started && self.next_offset >= self.length
    }

    /// New data may go now: the next packet starts below the grant.
    pub fn can_send_new(&self) -> bool {
        !self.all_sent() && (self.next_offset < self.granted || !self.started)
    }

    pub fn has_work(&self) -> bool {
        self.resend.is_some() || self.can_send_new()
    }

    /// Granted bytes are still to send (our own SRPT prefers other
    /// messages), or a retransmission the peer asked for (our pacer has not
    /// got to it): the RPC waits on us, so the peer's silence is not its
    /// fault.
    pub fn waits_on_us(&self) -> bool {
        self.resend.is_some() || self.next_offset < self.granted.min(self.length)
    }

    /// Bytes not yet transmitted (the SRPT key).
    pub fn remaining(&self) -> u32 {
        self.length - self.next_offset
    }

    /// The receiver has the whole message (its answer has started to
    /// arrive): nothing is left to send or resend.
    pub fn mark_delivered(&mut self) {
        self.next_offset = self.length;
        self.started = true;
        self.resend = None;
    }

    /// Forget all progress (the receiver lost the message): start again.
    pub fn restart(&mut self) {
        self.next_offset = 0;
        self.granted = self.unsched;
        self.resend = None;
        self.started = false;
    }
}

/// An incoming message being reassembled.
///
/// In-order payloads are appended to one buffer holding the contiguous prefix
/// received so far, so packet buffers are released at once and completion
/// needs no second copy. A payload that arrives ahead of a gap is kept as an
/// exact-size copy until the gap fills. Either way the engine holds only bytes
/// that arrived, never space a packet's offset or claim asks for.
#[derive(Debug)]
pub(crate) struct InMessage {
    pub length: u32,
    /// Unique bytes received.
    pub received: u32,
    /// The sender may send everything below this without further grants.
    pub granted: u32,
    /// Sorted, disjoint, non-adjacent ranges of received bytes.
    ranges: Vec<(u32, u32)>,
    /// The contiguous prefix `[0, buf.len())` of the message.
    buf: Vec<u8>,
    /// Pieces received beyond a gap: (offset, bytes), in arrival order.
    ahead: Vec<(u32, Vec<u8>)>,
    /// Bytes held in `ahead`.
    ahead_bytes: usize,
    /// Arrival order, for FIFO grants and ties.
    pub birth: u64,
    /// An empty message's one packet arrived.
    got_empty: bool,
}

/// What inserting a packet's payload did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    /// Bytes never seen before were added (count of them).
    New(u32),
    /// Every byte was already there.
    Duplicate,
}

impl InMessage {
    pub fn new(length: u32, granted: u32, birth: u64) -> Self {
        InMessage {
            length,
            received: 0,
            granted: granted.min(length),
            ranges: Vec::new(),
            buf: Vec::new(),
            ahead: Vec::new(),
            ahead_bytes: 0,
            birth,
            got_empty: false,
        }
    }

    /// Everything granted has arrived: the sender waits on us for more
    /// grants, so its silence is not its fault.
    pub fn waits_on_us(&self) -> bool {
        self.received >= self.granted
    }

    /// Bytes of memory this message holds (counted against
    /// `max_buffered_bytes`): only bytes that arrived.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.ahead_bytes
    }

    /// Record `payload` at `offset`. The caller has checked that
    /// `offset + payload.len() <= length`. [`buffered`](Self::buffered) grows
    /// by at most `payload.len()`.
    pub fn insert(&mut self, offset: u32, payload: &[u8]) -> Insert {
        let end = offset + payload.len() as u32;
        let added = add_range(&mut self.ranges, offset, end);
        if added == 0 {
            if self.length == 0 && !self.got_empty {
                self.got_empty = true;
                return Insert::New(0);
            }
            return Insert::Duplicate;
        }
        self.received += added;
        let (start, end) = (offset as usize, end as usize);
        let filled = self.buf.len();
        if start > filled {
            // Ahead of a gap: keep an exact copy until the gap fills.
            self.ahead_bytes += payload.len();
            self.ahead.push((offset, payload.to_vec()));
            return Insert::New(added);
        }
        if end > filled {
            self.buf.extend_from_slice(&payload[filled - start..]);
            self.absorb_ahead();
        }
        Insert::New(added)
    }

    /// Move pieces that now touch the prefix into it.
    fn absorb_ahead(&mut self) {
        while !self.ahead.is_empty() {
            let filled = self.buf.len();
            let Some(i) = self.ahead.iter().position(|(o, _)| *o as usize <= filled) else {
                return;
            };
            let (o, piece) = self.ahead.swap_remove(i);
            self.ahead_bytes -= piece.len();
            let skip = filled - o as usize;
            if piece.len() > skip {
                self.buf.extend_from_slice(&piece[skip..]);
            }
        }
    }

    pub fn is_complete(&self) -> bool {
        self.received >= self.length && (self.length > 0 || self.got_empty)
    }

    /// Granted (or unscheduled) bytes not received yet.
    pub fn outstanding(&self) -> u32 {
        self.granted.saturating_sub(self.received)
    }

    /// The first missing range below `limit`, if any.
    pub fn first_gap(&self, limit: u32) -> Option<(u32, u32)> {
        let mut start = 0;
        for &(s, e) in &self.ranges {
            if s > start {
                return Some((start, s.min(limit))).filter(|(a, b)| a < b);
            }
            start = e;
        }
        (start < limit).then_some((start, limit))
    }

    /// The whole message; only call when complete. No copy.
    pub fn assemble(self) -> Bytes {
        debug_assert_eq!(self.buf.len(), self.length as usize);
        debug_assert!(self.ahead.is_empty());
        Bytes::from(self.buf)
    }
}

/// Add `[start, end)` to a sorted set of disjoint ranges; returns how many
/// bytes were not covered before. In-order arrival takes the O(1) path.
fn add_range(ranges: &mut Vec<(u32, u32)>, start: u32, end: u32) -> u32 {
    if start >= end {
        return 0;
    }
    match ranges.last_mut() {
        None => {
            ranges.push((start, end));
            return end - start;
        }
        Some(last) if start == last.1 => {
            last.1 = end;
            return end - start;
        }
        Some(last) if start > last.1 => {
            ranges.push((start, end));
            return end - start;
        }
        _ => {}
    }
    // First range that ends at or after `start` (touching ranges merge).
    let i = ranges.partition_point(|r| r.1 < start);
    let (mut lo, mut hi, mut covered) = (start, end, 0);
    let mut j = i;
    while j < ranges.len() && ranges[j].0 <= end {
        let (s, e) = ranges[j];
        covered += e.min(end).saturating_sub(s.max(start));
        lo = lo.min(s);
        hi = hi.max(e);
        j += 1;
    }
    ranges.splice(i..j, [(lo, hi)]);
    (end - start) - covered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_count() {
        let mut r = Vec::new();
        assert_eq!(add_range(&mut r, 10, 20), 10);
        assert_eq!(add_range(&mut r, 0, 5), 5);
        assert_eq!(add_range(&mut r, 3, 12), 5);
        assert_eq!(r, vec![(0, 20)]);
        assert_eq!(add_range(&mut r, 0, 20), 0);
        assert_eq!(add_range(&mut r, 30, 40), 10);
        assert_eq!(add_range(&mut r, 20, 30), 10);
        assert_eq!(r, vec![(0, 40)]);
    }

    #[test]
    fn reassembly_out_of_order_with_duplicates() {
        let body: Vec<u8> = (0..100u8).collect();
        let mut m = InMessage::new(100, 100, 0);
        assert_eq!(m.insert(50, &body[50..]), Insert::New(50));
        assert_eq!(m.first_gap(100), Some((0, 50)));
        assert_eq!(m.insert(50, &body[50..]), Insert::Duplicate);
        assert_eq!(m.insert(0, &body[..60]), Insert::New(50));
        assert!(m.is_complete());
        assert_eq!(&m.assemble()[..], &body[..]);
    }

    #[test]
    fn out_of_order_piece_holds_only_its_bytes() {
        let body: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let mut m = InMessage::new(3000, 3000, 0);
        m.insert(2990, &body[2990..]);
        assert_eq!(m.buffered(), 10);
        m.insert(1000, &body[1000..2000]);
        assert_eq!(m.buffered(), 1010);
        m.insert(0, &body[..1500]); // overlaps the piece at 1000
        m.insert(2000, &body[2000..2995]); // overlaps the piece at 2990
        assert!(m.is_complete());
        assert_eq!(m.buffered(), 3000);
        assert_eq!(&m.assemble()[..], &body[..]);
    }

    #[test]
    fn gaps_respect_limit() {
        let mut m = InMessage::new(100, 100, 0);
        m.insert(0, &[0; 10]);
        m.insert(20, &[0; 10]);
        assert_eq!(m.first_gap(100), Some((10, 20)));
        assert_eq!(m.first_gap(5), None);
        let mut full = InMessage::new(30, 30, 0);
        full.insert(0, &[0; 30]);
        assert_eq!(full.first_gap(30), None);
    }

    #[test]
    fn empty_message_completes_once() {
        let mut m = InMessage::new(0, 0, 0);
        assert!(!m.is_complete());
        assert_eq!(m.insert(0, &[]), Insert::New(0));
        assert!(m.is_complete());
        assert_eq!(m.insert(0, &[]), Insert::Duplicate);
    }
}
