//! A simulated host that runs the real `homa-core` engine.
//!
//! The glue is thin on purpose: frames in become `handle_packet`, the timer
//! becomes `handle_timeout`, `poll_transmit` becomes frames out (with the
//! engine's per-packet overhead as the wire size). The host's application is
//! a server callback that answers requests (or not), and a log of what the
//! application saw, with times, for tests and measurements.
//!
//! Homa carries no checksum of its own: on a real network the UDP checksum
//! (or the Ethernet FCS) drops a corrupted packet before Homa sees it. The
//! glue models that: each frame carries a 4-byte checksum trailer (not
//! counted in `wire_bytes`, where the real checksum already is), and a frame
//! that fails it is dropped and counted in [`HomaHost::checksum_drops`].

use bytes::Bytes;
use homa_core::{Config, ConfigError, Endpoint, Event, Instant, RpcId, ServerRpcId};
use std::net::SocketAddr;

use crate::net::{Frame, Nanos, Node};

/// What the server application does with a request: return the response
/// body, or `None` to hold the request (answer later with
/// [`HomaHost::respond`]).
pub type ServerApp = Box<dyn FnMut(ServerRpcId, &Bytes) -> Option<Bytes>>;

/// One thing the application saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// Virtual time, ns.
    pub at: Nanos,
    /// The event.
    pub event: Event,
}

/// A host running a Homa [`Endpoint`] with a simple application.
pub struct HomaHost {
    endpoint: Endpoint,
    overhead: u32,
    app: Option<ServerApp>,
    /// Every event the application received, in order.
    pub log: Vec<Logged>,
    /// Completed client RPCs (responses and failures).
    pub completed: u64,
    /// Requests handed to the server application.
    pub requests: u64,
    /// Frames dropped because their checksum did not match (corrupted in
    /// the network).
    pub checksum_drops: u64,
}

impl core::fmt::Debug for HomaHost {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HomaHost")
            .field("endpoint", &self.endpoint)
            .field("events", &self.log.len())
            .finish_non_exhaustive()
    }
}

impl HomaHost {
    /// A host at `addr` whose server echoes every request.
    ///
    /// # Errors
    /// If the config is invalid.
    pub fn new(config: Config, addr: SocketAddr) -> Result<Self, ConfigError> {
        let overhead = config.packet_overhead;
        Ok(HomaHost {
            endpoint: Endpoint::new(config, addr)?,
            overhead,
            app: Some(Box::new(|_, body| Some(body.clone()))),
            log: Vec::new(),
            completed: 0,
            requests: 0,
            checksum_drops: 0,
        })
    }

    /// Replace the server application.
    pub fn set_app(&mut self, app: ServerApp) {
        self.app = Some(app);
    }

    /// The engine (for metrics and inspection).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Start a client RPC at `now`.
    ///
    /// # Errors
    /// As [`Endpoint::send_request`].
    pub fn call(
        &mut self,
        now: Nanos,
        dest: SocketAddr,
        body: Bytes,
    ) -> Result<RpcId, homa_core::SendError> {
        self.endpoint
            .send_request(Instant::from_nanos(now), dest, body)
    }

    /// Answer a request held by the application.
    ///
    /// # Errors
    /// As [`Endpoint::send_response`].
    pub fn respond(
        &mut self,
        now: Nanos,
        rpc: ServerRpcId,
        body: Bytes,
    ) -> Result<(), homa_core::SendError> {
        self.endpoint
            .send_response(Instant::from_nanos(now), rpc, body)
    }

    /// Abort a client RPC.
    pub fn abort(&mut self, now: Nanos, id: RpcId) -> bool {
        self.endpoint.abort(Instant::from_nanos(now), id)
    }

    fn drain_events(&mut self, now: Nanos) {
        while let Some(event) = self.endpoint.poll_event() {
            match &event {
                Event::Request { rpc, body } => {
                    self.requests += 1;
                    if let Some(resp) = self.app.as_mut().and_then(|app| app(*rpc, body)) {
                        // The RPC was just delivered, so it exists; an error
                        // here would be an engine bug worth seeing.
                        self.endpoint
                            .send_response(Instant::from_nanos(now), *rpc, resp)
                            .expect("respond to a just-delivered request");
                    }
                }
                _ => self.completed += 1,
            }
            self.log.push(Logged { at: now, event });
        }
    }
}

impl Node for HomaHost {
    fn on_frame(&mut self, now: Nanos, frame: Frame) {
        let mut data = frame.data;
        if data.len() < 4 {
            self.checksum_drops += 1;
            return;
        }
        let trailer = data.split_off(data.len() - 4);
        if trailer[..] != checksum(&data).to_be_bytes() {
            self.checksum_drops += 1;
            return;
        }
        self.endpoint
            .handle_packet(Instant::from_nanos(now), frame.src, data);
        self.drain_events(now);
    }

    fn on_timer(&mut self, now: Nanos) {
        self.endpoint.handle_timeout(Instant::from_nanos(now));
        self.drain_events(now);
    }

    fn poll_frame(&mut self, now: Nanos) -> Option<Frame> {
        // Commands issued through `with_node` may have produced events.
        self.drain_events(now);
        let t = self.endpoint.poll_transmit(Instant::from_nanos(now))?;
        let wire = t.len() as u32 + self.overhead;
        let src = self.endpoint.local_addr();
        let mut data = Vec::with_capacity(t.len() + 4);
        t.write_to(&mut data);
        let sum = checksum(&data);
        data.extend_from_slice(&sum.to_be_bytes());
        Some(Frame::new(
            src,
            t.destination,
            t.priority,
            Bytes::from(data),
            wire,
        ))
    }

    fn next_timer(&self) -> Option<Nanos> {
        self.endpoint.poll_timeout().map(Instant::as_nanos)
    }
}

/// FNV-1a over the frame: any single flipped byte changes it.
fn checksum(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}
