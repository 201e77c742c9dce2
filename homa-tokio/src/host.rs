//! Hosting an engine outside tokio, for kernel-bypass datapaths.
//!
//! A [`Socket`] normally talks to a driver task that owns the engine and a
//! [`Datapath`](crate::Datapath). A kernel-bypass datapath (`homa-dpdk`)
//! instead runs the engine on its polling thread, next to the packets, so
//! that no packet crosses threads: [`EngineHost::new`] returns the engine's
//! host, to be moved to that thread, and a [`Socket`] (from which a
//! [`Client`](crate::Client) and a [`Server`](crate::Server) are made as
//! usual). Commands from the handles reach the host over a lock-free queue;
//! completed messages go back over lock-free queues and one-shot channels
//! that wake the waiting task, so idle tasks sleep while the polling thread
//! spins.
//!
//! The host's owner calls, in a loop: [`EngineHost::process`] (commands,
//! timers, events), and moves packets between the network and
//! [`EngineHost::endpoint`] (`handle_packet`, `poll_transmit`); in rounds
//! that found nothing to do, [`EngineHost::reap`]. It stops when
//! [`EngineHost::finished`] says so.
//!
//! ```
//! use homa_tokio::host::EngineHost;
//! use homa_tokio::{Instant, SocketConfig};
//! let (mut host, socket) =
//!     EngineHost::new("10.0.0.1:4000".parse().unwrap(), 1480, 10_000_000_000, SocketConfig::default())?;
//! std::thread::spawn(move || {
//!     let start = std::time::Instant::now();
//!     loop {
//!         let now = Instant::from_nanos(start.elapsed().as_nanos() as u64);
//!         let mut busy = host.process(now);
//!         while let Some(t) = host.endpoint().poll_transmit(now) {
//!             drop(t); // a real host puts it on the wire
//!             busy = true;
//!         }
//!         if !busy {
//!             host.reap(now); // idle: the engine's deferred work
//!         }
//!         if host.finished(now, true) {
//!             break;
//!         }
//!         std::thread::yield_now();
//!     }
//! });
//! drop(socket); // the host sees the last handle go and stops
//! # Ok::<(), homa_tokio::Error>(())
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_queue::SegQueue;
use homa_core::{Endpoint, Instant};

use crate::driver::{Command, EngineCore, CMD_BUDGET};
use crate::error::Error;
use crate::socket::{build_engine, CommandTx, Socket, SocketConfig};

/// The lock-free queue that carries commands from the handles to a hosted
/// engine.
pub(crate) struct CommandRing {
    queue: SegQueue<Command>,
    /// The host is gone: commands fail with `Shutdown`.
    closed: AtomicBool,
    /// The last handle is gone: the host finishes and stops.
    handles_gone: AtomicBool,
}

impl CommandRing {
    pub fn push(&self, cmd: Command) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Shutdown);
        }
        self.queue.push(cmd);
        // The host may have closed between the check and the push; then no
        // one would take the command, so drop it here (its reply channel
        // closing tells the waiter `Shutdown`).
        if self.closed.load(Ordering::SeqCst) {
            self.drain();
        }
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub fn handles_gone(&self) {
        self.handles_gone.store(true, Ordering::Release);
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.drain();
    }

    fn drain(&self) {
        while self.queue.pop().is_some() {}
    }
}

/// An engine hosted on a thread of the caller's choosing (typically a
/// kernel-bypass polling thread), serving the [`Socket`] returned with it.
///
/// See the [module docs](self) for the loop its owner runs. Dropping the
/// host shuts the endpoint down: calls in flight fail with
/// [`Error::Shutdown`].
pub struct EngineHost {
    core: EngineCore,
    ring: Arc<CommandRing>,
    last_now: Instant,
    span: tracing::Span,
}

impl fmt::Debug for EngineHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineHost")
            .field("local", &self.core.inner.local)
            .field("closing", &self.core.closing.is_some())
            .finish_non_exhaustive()
    }
}

impl EngineHost {
    /// An engine at `local` for a datapath that carries Homa packets of up
    /// to `max_packet_size` bytes on a link of `link_rate_bps`, and the
    /// socket that talks to it. No tokio runtime is needed to create either;
    /// the socket's futures run on any executor.
    ///
    /// # Errors
    /// [`Error::Io`] if the engine configuration is invalid.
    pub fn new(
        local: SocketAddr,
        max_packet_size: usize,
        link_rate_bps: u64,
        config: SocketConfig,
    ) -> Result<(EngineHost, Socket), Error> {
        let (endpoint, inner) = build_engine(local, max_packet_size, link_rate_bps, config.engine)?;
        let ring = Arc::new(CommandRing {
            queue: SegQueue::new(),
            closed: AtomicBool::new(false),
            handles_gone: AtomicBool::new(false),
        });
        let socket = Socket::from_handle(CommandTx::Ring(ring.clone()), inner.clone());
        let span = tracing::info_span!("homa_endpoint", local = %local);
        let host = EngineHost {
            core: EngineCore::new(endpoint, inner),
            ring,
            last_now: Instant::ZERO,
            span,
        };
        Ok((host, socket))
    }

    /// The address the engine sends from.
    pub fn local_addr(&self) -> SocketAddr {
        self.core.inner.local
    }

    /// The engine, to feed it packets (`handle_packet`) and take its
    /// packets (`poll_transmit`). Start and answer RPCs through the socket,
    /// not here: the host keeps track of who waits for what.
    pub fn endpoint(&mut self) -> &mut Endpoint {
        &mut self.core.endpoint
    }

    /// Take the commands the handles sent, run the engine's timers if due,
    /// and hand its events to the handles. Returns whether anything
    /// happened. Call it often (every poll round); it is cheap when idle.
    pub fn process(&mut self, now: Instant) -> bool {
        let _enter = self.span.enter();
        self.last_now = now;
        let mut progress = false;
        for _ in 0..CMD_BUDGET {
            match self.ring.queue.pop() {
                Some(cmd) => {
                    self.core.command(now, cmd);
                    progress = true;
                }
                None => break,
            }
        }
        if self.core.closing.is_none() && self.ring.handles_gone.load(Ordering::Acquire) {
            self.core.close(now);
            progress = true;
        }
        if self.core.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            self.core.endpoint.handle_timeout(now);
            progress = true;
        }
        progress |= self.core.deliver_events(now) > 0;
        progress
    }

    /// Do the engine's deferred work ([`Endpoint::reap`]: free the RPCs
    /// whose clients acknowledged them). Call it when a round found nothing
    /// to do, not between a packet and what the engine sends for it.
    /// Returns whether there was any.
    pub fn reap(&mut self, now: Instant) -> bool {
        self.core.endpoint.reap(now) > 0
    }

    /// Shut the endpoint down as [`Socket::close`] does: fail the calls in
    /// flight, drop queued requests, and go on sending the responses owed
    /// until [`finished`](Self::finished).
    pub fn close(&mut self, now: Instant) {
        let _enter = self.span.enter();
        if self.core.closing.is_none() {
            self.core.close(now);
        }
    }

    /// Whether the endpoint is closing (closed by a handle, by
    /// [`close`](Self::close), or because every handle is gone).
    pub fn is_closing(&self) -> bool {
        self.core.closing.is_some()
    }

    /// Whether a closing endpoint is done and its host may stop: it owes
    /// nothing more (`tx_idle` says the owner has no packets of it left
    /// unsent), or the engine's timeout passed since closing began. Always
    /// `false` before closing.
    pub fn finished(&self, now: Instant, tx_idle: bool) -> bool {
        self.core.finished(now, tx_idle)
    }
}

impl Drop for EngineHost {
    fn drop(&mut self) {
        if self.core.closing.is_none() {
            self.core.close(self.last_now);
        }
        // Commands still queued are dropped: their waiters see `Shutdown`.
        self.ring.close();
    }
}
