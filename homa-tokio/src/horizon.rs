//! How far the driver has read its own receive queue: the instant before
//! which every packet that reached us has been given to the engine.
//!
//! The engine judges a peer silent from the packets it has been given
//! ([`Endpoint::handle_timeout_read_until`](homa_core::Endpoint::handle_timeout_read_until)).
//! While the driver reads without ever finding the queue empty it has
//! fallen behind, and packets that arrived a while ago may still be
//! waiting. Two facts bound how far behind:
//!
//! * everything that arrived before the queue was last seen empty has been
//!   read;
//! * the queue can hold at most `limit` bytes (the sockets' receive
//!   buffers). So once `limit` bytes have been read since instant `t`,
//!   everything that was queued at `t`, and so everything that arrived
//!   before `t`, has been read.
//!
//! The second fact is what keeps the horizon moving under sustained
//! overload: without it, a queue that never empties would defer RESENDs and
//! timeouts forever. The bound errs early (the queue is rarely full), which
//! only defers a RESEND.
//!
//! Where it can err late (and then a RESEND may go for a packet still
//! queued, as every one could before the horizon, which judged as of now):
//! * the byte bound assumes the queues are read first in, first out. The
//!   UDP datapath reads its fast queue first, so a sustained stream of
//!   high-priority packets can carry the horizon past older packets waiting
//!   in the main queue;
//! * "empty" is what the datapath's `poll_recv` said, and a `Pending` from
//!   stale readiness (or while busy polling) can hide packets;
//! * the limit is read once, when the driver starts.

use std::collections::VecDeque;
use std::time::Duration;

use homa_core::Instant;

/// Marks closer together than this are not kept: the horizon moves in
/// steps of at least this much, small next to `resend_after` (5 ms).
const MARK_EVERY: Duration = Duration::from_micros(100);
/// Most marks kept. When full, new marks are skipped: the horizon then
/// moves in coarser steps (later), still bounded by the byte limit.
const MAX_MARKS: usize = 256;

#[derive(Debug)]
pub(crate) struct ReadHorizon {
    /// Most bytes the datapath can hold unread (`None`: it does not say,
    /// and the horizon is not trusted: see [`horizon`](Self::horizon)).
    limit: Option<u64>,
    /// Bytes read, in total.
    read: u64,
    /// When the queue was last seen empty.
    empty_at: Instant,
    /// When reading began without the queue running dry since (`None`:
    /// it was empty at the last look).
    busy_since: Option<Instant>,
    /// Everything that arrived before this has been read (from the byte
    /// bound).
    floor: Instant,
    /// (instant, bytes read before it), oldest first: candidates for
    /// `floor` once `limit` more bytes have been read.
    marks: VecDeque<(Instant, u64)>,
}

impl ReadHorizon {
    /// A horizon for a datapath that holds at most `limit` bytes unread
    /// (`None`: no bound known), empty at `now`.
    pub(crate) fn new(limit: Option<usize>, now: Instant) -> Self {
        ReadHorizon {
            limit: limit.map(|l| l as u64),
            read: 0,
            empty_at: now,
            busy_since: None,
            floor: now,
            marks: VecDeque::new(),
        }
    }

    /// The queue was found empty at `now`.
    pub(crate) fn empty(&mut self, now: Instant) {
        self.empty_at = now;
        self.busy_since = None;
        self.marks.clear();
    }

    /// A batch of `bytes` was read at `now`.
    pub(crate) fn read(&mut self, now: Instant, bytes: usize) {
        if self.busy_since.is_none() {
            self.busy_since = Some(now);
        }
        let recent = self
            .marks
            .back()
            .is_some_and(|&(t, _)| now.saturating_duration_since(t) < MARK_EVERY);
        self.read += bytes as u64;
        let Some(limit) = self.limit else {
            return;
        };
        if !recent && self.marks.len() < MAX_MARKS {
            // Whatever was queued at `now` is at most `limit` bytes, all
            // still to read after this batch. (Counting this batch as read
            // before the mark keeps that true whether `now` was taken
            // before the read or after it.)
            self.marks.push_back((now, self.read));
        }
        while let Some(&(t, before)) = self.marks.front() {
            if self.read - before < limit {
                break;
            }
            self.floor = self.floor.max(t);
            self.marks.pop_front();
        }
    }

    /// How long the driver has been reading without the queue running
    /// dry (zero if it was empty at the last look).
    pub(crate) fn busy_for(&self, now: Instant) -> Duration {
        self.busy_since
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
    }

    /// Everything that reached us before the returned instant has been
    /// read. Without a bound on the queue this is `now`: a queue that never
    /// empties would otherwise defer timeouts forever.
    pub(crate) fn horizon(&self, now: Instant) -> Instant {
        if self.busy_since.is_none() || self.limit.is_none() {
            return now;
        }
        self.empty_at.max(self.floor).min(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(us: u64) -> Instant {
        Instant::from_nanos(us * 1_000)
    }

    #[test]
    fn an_empty_queue_is_read_up_to_now() {
        let mut h = ReadHorizon::new(Some(1_000_000), at(0));
        assert_eq!(h.horizon(at(50)), at(50));
        h.read(at(60), 5_000);
        h.empty(at(70));
        assert_eq!(h.horizon(at(80)), at(80));
        assert_eq!(h.busy_for(at(80)), Duration::ZERO);
    }

    #[test]
    fn a_busy_queue_is_read_up_to_when_it_was_last_empty() {
        let mut h = ReadHorizon::new(Some(1_000_000), at(0));
        h.empty(at(100));
        for us in (200..5_000).step_by(50) {
            h.read(at(us), 10_000);
        }
        // 480 KB read, less than the queue can hold: nothing more is known.
        assert_eq!(h.horizon(at(5_000)), at(100));
        assert_eq!(h.busy_for(at(5_000)), Duration::from_micros(4_800));
    }

    #[test]
    fn reading_a_full_buffer_moves_the_horizon() {
        // 1 MB buffer, read at 100 KB per 100 us (1 GB/s) and never empty:
        // the horizon trails by the time it takes to read the buffer.
        let mut h = ReadHorizon::new(Some(1_000_000), at(0));
        h.empty(at(0));
        let mut now = 0;
        while now < 100_000 {
            now += 100;
            h.read(at(now), 100_000);
        }
        let behind = at(now).saturating_duration_since(h.horizon(at(now)));
        assert!(
            behind >= Duration::from_micros(900) && behind <= Duration::from_micros(1_100),
            "{behind:?} behind"
        );
    }

    #[test]
    fn with_every_mark_slot_used_the_horizon_still_moves() {
        // Reads every 200 us for a long time, a huge buffer: the marks fill
        // up, and the horizon still advances once the bound is met.
        let mut h = ReadHorizon::new(Some(100_000_000), at(0));
        let mut now = 0;
        for _ in 0..5_000 {
            now += 200;
            h.read(at(now), 50_000);
        }
        // 250 MB read in 1 s: at least the first 150 MB's marks have
        // passed the bound.
        assert!(h.horizon(at(now)) > at(0));
        assert!(h.marks.len() <= MAX_MARKS);
        let later = h.horizon(at(now));
        for _ in 0..5_000 {
            now += 200;
            h.read(at(now), 50_000);
        }
        assert!(h.horizon(at(now)) > later, "stuck at {later:?}");
    }
}
