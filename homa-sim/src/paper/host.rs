//! The host of a paper run: the real engine, an open-loop Poisson message
//! source, and a server that answers every request with an empty response.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;
use homa_core::{Endpoint, Event, Instant};
use homa_workload::SizeDistribution;

use crate::net::{host_addr, host_index, Frame, HostId, Nanos, Node};
use crate::rng::Rng;

/// Start of a message in flight.
#[derive(Debug, Clone, Copy)]
struct Pending {
    start: Nanos,
    size: u64,
    dst: u32,
}

/// Shared by all hosts of a run: messages in flight and their outcomes.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    /// Per client host: RPC id → start.
    pending: Vec<HashMap<u64, Pending>>,
    /// Messages are measured if they start in `[measure_from, measure_until)`.
    pub measure_from: Nanos,
    pub measure_until: Nanos,
    /// Measured messages: (size, slowdown).
    pub samples: Vec<(u64, f64)>,
    /// Ideal times by (size, same rack): workloads repeat sizes a lot.
    ideal: HashMap<(u64, bool), Nanos>,
    /// Measured messages not yet complete.
    pub measured_pending: u64,
    /// Messages started (all, and measured).
    pub started: u64,
    pub started_measured: u64,
    /// RPCs that failed (must stay 0: nothing is lost).
    pub failed: u64,
    /// Why they failed: the first few reasons, with times.
    pub failures: Vec<String>,
    /// Wire bytes of the measured messages (see `message_wire_bytes`).
    pub offered_wire_bytes: u64,
    /// A work-conserving bound: every host's uplink (index 0) and downlink
    /// (index 1) as a fluid queue fed with each message's wire bytes when
    /// it starts. What they drain in the measured window is the most any
    /// transport could carry given where and when the bytes were offered.
    pub fluid: [Vec<FluidQueue>; 2],
}

/// A queue drained at a fixed rate: the ideal link of [`Recorder::fluid`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FluidQueue {
    last: Nanos,
    backlog: f64,
    /// Bytes drained within the measured window.
    pub drained: f64,
}

impl FluidQueue {
    /// Drains until `now` at `bytes_per_ns`, counting what drains inside
    /// `window`.
    pub(crate) fn advance(&mut self, now: Nanos, bytes_per_ns: f64, window: (Nanos, Nanos)) {
        if now <= self.last {
            return;
        }
        let busy_until = self.last as f64 + self.backlog / bytes_per_ns;
        let from = (self.last as f64).max(window.0 as f64);
        let to = busy_until.min(now as f64).min(window.1 as f64);
        if to > from {
            self.drained += (to - from) * bytes_per_ns;
        }
        self.backlog = (self.backlog - (now - self.last) as f64 * bytes_per_ns).max(0.0);
        self.last = now;
    }
}

impl Recorder {
    pub(crate) fn new(hosts: usize, measure_from: Nanos, measure_until: Nanos) -> Self {
        Recorder {
            pending: vec![HashMap::new(); hosts],
            fluid: [
                vec![FluidQueue::default(); hosts],
                vec![FluidQueue::default(); hosts],
            ],
            measure_from,
            measure_until,
            ..Recorder::default()
        }
    }

    fn measured(&self, start: Nanos) -> bool {
        (self.measure_from..self.measure_until).contains(&start)
    }

    /// Slowdown of message `p` from host `client` if it is complete at
    /// `now`: elapsed time over the ideal time (cached per size and path:
    /// workloads repeat sizes a lot).
    fn slowdown(&mut self, traffic: &Traffic, client: usize, p: Pending, now: Nanos) -> f64 {
        let same_rack = traffic
            .fabric
            .same_rack(HostId(client), HostId(p.dst as usize));
        let ideal = *self
            .ideal
            .entry((p.size, same_rack))
            .or_insert_with(|| traffic.fabric.ideal_ns(&traffic.config, p.size, same_rack));
        (now - p.start) as f64 / ideal as f64
    }

    /// Ends the run at `now`: every measured message still in flight is
    /// counted with the slowdown it has reached so far, a lower bound on its
    /// real one, so that starved messages weigh on the tail instead of
    /// vanishing from it. Returns how many there were.
    pub(crate) fn finish(&mut self, now: Nanos, traffic: &Traffic) -> u64 {
        let late_ones: Vec<(usize, Pending)> = self
            .pending
            .iter()
            .enumerate()
            .flat_map(|(client, m)| m.values().map(move |&p| (client, p)))
            .filter(|(_, p)| self.measured(p.start))
            .collect();
        let mut late: Vec<(u64, f64)> = late_ones
            .into_iter()
            .map(|(client, p)| (p.size, self.slowdown(traffic, client, p, now)))
            .collect();
        late.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let n = late.len() as u64;
        self.samples.extend(late);
        n
    }
}

/// What every host shares: the workload and traffic parameters.
pub(crate) struct Traffic {
    pub dist: SizeDistribution,
    /// Mean time between two messages of one host, ns.
    pub mean_gap_ns: f64,
    /// No message starts at or after this time.
    pub stop_at: Nanos,
    pub hosts: usize,
    /// A zero-filled buffer at least as long as the largest message: request
    /// bodies are slices of it, so a message costs no allocation to send.
    pub body: Bytes,
    /// The fabric and engine config, for the ideal times.
    pub fabric: super::Fabric,
    pub config: homa_core::Config,
}

pub(crate) struct PaperHost {
    endpoint: Endpoint,
    me: HostId,
    overhead: u32,
    rng: Rng,
    next_arrival: Nanos,
    traffic: Rc<Traffic>,
    rec: Rc<RefCell<Recorder>>,
}

impl PaperHost {
    /// The host's engine.
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub(crate) fn new(
        endpoint: Endpoint,
        me: HostId,
        overhead: u32,
        mut rng: Rng,
        traffic: Rc<Traffic>,
        rec: Rc<RefCell<Recorder>>,
    ) -> Self {
        let first = exp_gap(&mut rng, traffic.mean_gap_ns);
        PaperHost {
            endpoint,
            me,
            overhead,
            rng,
            next_arrival: first,
            traffic,
            rec,
        }
    }

    /// Starts every message whose Poisson arrival time has come.
    fn arrivals(&mut self, now: Nanos) {
        while self.next_arrival <= now {
            let start = self.next_arrival;
            self.next_arrival = if start < self.traffic.stop_at {
                start + exp_gap(&mut self.rng, self.traffic.mean_gap_ns)
            } else {
                Nanos::MAX
            };
            if start >= self.traffic.stop_at {
                break;
            }
            let n = self.traffic.hosts as u64;
            let mut dst = self.rng.below(n - 1) as usize;
            if dst >= self.me.0 {
                dst += 1;
            }
            let size = self.traffic.dist.sample(self.rng.next_f64());
            let size = size.min(self.traffic.body.len() as u64);
            let body = self.traffic.body.slice(..size as usize);
            let id = match self.endpoint.send_request(
                Instant::from_nanos(start),
                host_addr(HostId(dst)),
                body,
            ) {
                Ok(id) => id,
                Err(e) => {
                    let mut rec = self.rec.borrow_mut();
                    rec.failed += 1;
                    if rec.failures.len() < 5 {
                        rec.failures.push(format!(
                            "at {start} ns host {} could not send {size} B: {e}",
                            self.me.0
                        ));
                    }
                    continue;
                }
            };
            let mut rec = self.rec.borrow_mut();
            let wire = super::message_wire_bytes(size, &self.traffic.config) as f64;
            let rate = self.traffic.fabric.host_link_bps as f64 / 8e9;
            let window = (rec.measure_from, rec.measure_until);
            for (side, h) in [(0, self.me.0), (1, dst)] {
                let q = &mut rec.fluid[side][h];
                q.advance(start, rate, window);
                q.backlog += wire;
            }
            rec.started += 1;
            if rec.measured(start) {
                rec.started_measured += 1;
                rec.measured_pending += 1;
                rec.offered_wire_bytes += super::message_wire_bytes(size, &self.traffic.config);
            }
            rec.pending[self.me.0].insert(
                id.0,
                Pending {
                    start,
                    size,
                    dst: dst as u32,
                },
            );
        }
    }

    fn drain_events(&mut self, now: Nanos) {
        while let Some(event) = self.endpoint.poll_event() {
            match event {
                Event::Request { rpc, .. } => {
                    // The message is complete: this is the moment the paper
                    // measures. The client's id is the server id without its
                    // low bit.
                    let client = host_index(&rpc.client).map_or(usize::MAX, |h| h.0);
                    let mut rec = self.rec.borrow_mut();
                    if let Some(p) = rec
                        .pending
                        .get_mut(client)
                        .and_then(|m| m.remove(&(rpc.id & !1)))
                    {
                        if rec.measured(p.start) {
                            let slowdown = rec.slowdown(&self.traffic, client, p, now);
                            rec.samples.push((p.size, slowdown));
                            rec.measured_pending -= 1;
                        }
                    }
                    drop(rec);
                    // The empty response acknowledges the message and frees
                    // the RPC at both ends. The RPC was just delivered, so it
                    // exists.
                    self.endpoint
                        .send_response(Instant::from_nanos(now), rpc, Bytes::new())
                        .expect("respond to a just-delivered request");
                }
                Event::Response { .. } => {}
                Event::Failed { id, error } => {
                    let mut rec = self.rec.borrow_mut();
                    let p = rec.pending[self.me.0].remove(&id.0);
                    if let Some(p) = p {
                        if rec.measured(p.start) {
                            rec.measured_pending -= 1;
                        }
                    }
                    rec.failed += 1;
                    if rec.failures.len() < 5 {
                        let what = p.map_or(String::from("?"), |p| {
                            format!("{} B to host {} started at {} ns", p.size, p.dst, p.start)
                        });
                        rec.failures
                            .push(format!("at {now} ns host {}: {what}: {error}", self.me.0));
                    }
                }
                _ => {}
            }
        }
    }
}

/// An exponentially distributed gap with the given mean, in whole ns.
fn exp_gap(rng: &mut Rng, mean: f64) -> Nanos {
    let u = rng.next_f64();
    // 1 - u is in (0, 1], so the logarithm is finite.
    (-(1.0 - u).ln() * mean).round() as Nanos
}

impl Node for PaperHost {
    fn on_frame(&mut self, now: Nanos, frame: Frame) {
        self.endpoint
            .handle_packet(Instant::from_nanos(now), frame.src, frame.data);
        self.drain_events(now);
    }

    fn on_timer(&mut self, now: Nanos) {
        self.arrivals(now);
        if self
            .endpoint
            .poll_timeout()
            .is_some_and(|t| t.as_nanos() <= now)
        {
            self.endpoint.handle_timeout(Instant::from_nanos(now));
        }
        self.drain_events(now);
    }

    fn poll_frame(&mut self, now: Nanos) -> Option<Frame> {
        let t = self.endpoint.poll_transmit(Instant::from_nanos(now))?;
        let wire = t.len() as u32 + self.overhead;
        let mut data = Vec::with_capacity(t.len());
        t.write_to(&mut data);
        Some(Frame::new(
            self.endpoint.local_addr(),
            t.destination,
            t.priority,
            Bytes::from(data),
            wire,
        ))
    }

    fn next_timer(&self) -> Option<Nanos> {
        let engine = self.endpoint.poll_timeout().map(Instant::as_nanos);
        match engine {
            Some(t) => Some(t.min(self.next_arrival)),
            None => (self.next_arrival != Nanos::MAX).then_some(self.next_arrival),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FluidQueue;

    #[test]
    fn fluid_queue_counts_only_what_drains_inside_the_window() {
        // 1 byte/ns; 1,000 bytes arrive at t=0; the window is [500, 2000).
        let mut q = FluidQueue {
            backlog: 1_000.0,
            ..FluidQueue::default()
        };
        q.advance(300, 1.0, (500, 2_000));
        assert_eq!(q.drained, 0.0);
        q.advance(3_000, 1.0, (500, 2_000));
        // Busy until 1,000: 500 bytes drained inside the window.
        assert!((q.drained - 500.0).abs() < 1e-9);
        assert_eq!(q.backlog, 0.0);
    }
}
