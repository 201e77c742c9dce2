//! The driver: one tokio task per endpoint that owns the [`Endpoint`] and
//! moves packets, timers, commands and events between it, the datapath and
//! the application handles. It decides nothing about the protocol.
//!
//! The part that serves the handles (commands in, events out, shutdown) is
//! [`EngineCore`]; it knows nothing of tokio or of datapaths, so that an
//! engine can also run on a thread of its own (see [`crate::host`]).

use std::collections::{HashMap, HashSet};

use crossbeam_queue::SegQueue;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use homa_core::{Config, Endpoint, Event, Instant, Metrics, RpcId, ServerRpcId, Transmit};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Sleep;

use crate::datapath::{Datapath, Incoming};
use crate::error::Error;

/// Commands the handles send to the driver.
pub(crate) enum Command {
    /// `Socket::send`: the response goes to the inbox.
    Send {
        dest: SocketAddr,
        body: Bytes,
        reply: oneshot::Sender<Result<RpcId, Error>>,
    },
    /// `Client::call`: the response goes to `done`.
    Call {
        dest: SocketAddr,
        body: Bytes,
        token: u64,
        done: oneshot::Sender<Result<Bytes, Error>>,
    },
    /// The `Client::call` future with this token was dropped.
    Cancel { token: u64 },
    /// Abort a client RPC started with `Socket::send`.
    Abort(RpcId),
    /// Answer a request.
    Respond { rpc: ServerRpcId, body: Bytes },
    /// A request was dropped unanswered.
    DropRequest(ServerRpcId),
    /// A snapshot of the engine's metrics.
    Metrics(oneshot::Sender<Metrics>),
    /// Shut the endpoint down now (pending calls fail with `Shutdown`).
    Close,
}

/// What the inbox holds: requests (without a handle; `recv` attaches one)
/// and responses to `Socket::send`.
pub(crate) enum InboxItem {
    Request {
        rpc: ServerRpcId,
        body: Bytes,
    },
    Response {
        id: RpcId,
        result: Result<Bytes, Error>,
    },
}

/// Requests and responses for `Socket::recv`: a lock-free queue, so that the
/// engine (on a driver task or a polling thread) never waits for a lock to
/// hand out a message. The waker list has a lock, but the engine takes it
/// only when a task is known to be waiting.
#[derive(Default)]
pub(crate) struct Inbox {
    queue: SegQueue<InboxItem>,
    wakers: Mutex<Vec<Waker>>,
    /// Some task registered a waker since the last wake-up.
    waiting: AtomicBool,
    closed: AtomicBool,
}

/// State shared by the driver and the handles. It holds no command sender,
/// so the driver sees the channel close when the last handle goes.
pub(crate) struct Inner {
    pub inbox: Inbox,
    pub local: SocketAddr,
    pub config: Config,
    pub next_token: AtomicU64,
}

impl Inner {
    pub fn poll_inbox(&self, cx: &mut Context<'_>) -> Poll<Option<InboxItem>> {
        let inbox = &self.inbox;
        if let Some(item) = inbox.queue.pop() {
            return Poll::Ready(Some(item));
        }
        if inbox.closed.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        {
            let mut wakers = inbox.wakers.lock().unwrap_or_else(|e| e.into_inner());
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            inbox.waiting.store(true, Ordering::SeqCst);
        }
        // Pairs with the fence in `push`: either the pusher sees `waiting`,
        // or we see its item here.
        fence(Ordering::SeqCst);
        if let Some(item) = inbox.queue.pop() {
            return Poll::Ready(Some(item));
        }
        if inbox.closed.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        Poll::Pending
    }

    fn push(&self, item: InboxItem) {
        self.inbox.queue.push(item);
        fence(Ordering::SeqCst);
        if self.inbox.waiting.load(Ordering::SeqCst) {
            self.wake_all();
        }
    }

    fn wake_all(&self) {
        let wakers = {
            let mut w = self.inbox.wakers.lock().unwrap_or_else(|e| e.into_inner());
            self.inbox.waiting.store(false, Ordering::SeqCst);
            std::mem::take(&mut *w)
        };
        // Wake every waiter: one of them may have been cancelled, and the
        // others re-check the queue.
        for w in wakers {
            w.wake();
        }
    }

    fn close(&self) -> Vec<InboxItem> {
        self.inbox.closed.store(true, Ordering::SeqCst);
        self.wake_all();
        std::iter::from_fn(|| self.inbox.queue.pop()).collect()
    }
}

/// Options of the driver.
pub(crate) struct DriverOptions {
    pub busy_poll: Option<Duration>,
}

/// Transmits handed to the datapath per `poll_send`.
const SEND_BATCH: usize = 64;
/// Rounds of (commands, receive, timers, transmit, events) per wake-up before
/// the driver yields to other tasks.
const MAX_ROUNDS: usize = 16;
/// Commands taken per round.
pub(crate) const CMD_BUDGET: usize = 256;
/// A deadline closer than this is waited for by yielding instead of a
/// tokio timer, whose resolution is a millisecond: the pacer's deadlines
/// are microseconds apart.
const SPIN_THRESHOLD: Duration = Duration::from_micros(50);

struct Waiter {
    token: u64,
    done: oneshot::Sender<Result<Bytes, Error>>,
}

/// The engine and what it owes the application handles: the calls waiting
/// for their responses, the requests sent with `Socket::send`, and the
/// shutdown state. Runs wherever its owner runs (the tokio driver task, or
/// a polling thread through [`crate::host::EngineHost`]); every method is
/// synchronous and takes the time as an argument, like the engine's.
pub(crate) struct EngineCore {
    pub endpoint: Endpoint,
    pub inner: Arc<Inner>,
    calls: HashMap<RpcId, Waiter>,
    tokens: HashMap<u64, RpcId>,
    /// RPCs started with `Socket::send`.
    sends: HashSet<RpcId>,
    /// Set once every handle is gone or `Close` arrived: finish sending,
    /// then exit.
    pub closing: Option<Instant>,
}

impl EngineCore {
    pub fn new(endpoint: Endpoint, inner: Arc<Inner>) -> Self {
        EngineCore {
            endpoint,
            inner,
            calls: HashMap::new(),
            tokens: HashMap::new(),
            sends: HashSet::new(),
            closing: None,
        }
    }

    pub fn command(&mut self, now: Instant, cmd: Command) {
        if self.closing.is_some() {
            // Start nothing new while shutting down.
            match cmd {
                Command::Send { reply, .. } => {
                    let _ = reply.send(Err(Error::Shutdown));
                    return;
                }
                Command::Call { done, .. } => {
                    let _ = done.send(Err(Error::Shutdown));
                    return;
                }
                _ => {}
            }
        }
        match cmd {
            Command::Send { dest, body, reply } => {
                let r = self.endpoint.send_request(now, dest, body);
                if let Ok(id) = r {
                    tracing::trace!(rpc = id.0, %dest, "request sent");
                    self.sends.insert(id);
                }
                let _ = reply.send(r.map_err(Error::from));
            }
            Command::Call {
                dest,
                body,
                token,
                done,
            } => match self.endpoint.send_request(now, dest, body) {
                Ok(id) => {
                    tracing::trace!(rpc = id.0, %dest, "call started");
                    self.tokens.insert(token, id);
                    self.calls.insert(id, Waiter { token, done });
                }
                Err(e) => {
                    let _ = done.send(Err(e.into()));
                }
            },
            Command::Cancel { token } => {
                if let Some(id) = self.tokens.remove(&token) {
                    self.calls.remove(&id);
                    tracing::trace!(rpc = id.0, "call cancelled: aborting");
                    self.endpoint.abort(now, id);
                }
            }
            Command::Abort(id) => {
                self.sends.remove(&id);
                self.endpoint.abort(now, id);
            }
            Command::Respond { rpc, body } => {
                if let Err(e) = self.endpoint.send_response(now, rpc, body) {
                    // The client gave up on it (aborted or timed out).
                    tracing::debug!(rpc = rpc.id, error = %e, "response not sent");
                }
            }
            Command::DropRequest(rpc) => {
                self.endpoint.abort_server(now, rpc);
            }
            Command::Metrics(reply) => {
                let _ = reply.send(self.endpoint.metrics());
            }
            Command::Close => {
                if self.closing.is_none() {
                    self.close(now);
                }
            }
        }
    }

    /// Begin shutting down: fail what the application still waits for, drop
    /// undelivered requests, and keep running until the engine has sent what
    /// it owes (responses) or the timeout passes.
    pub fn close(&mut self, now: Instant) {
        tracing::debug!("endpoint closing");
        self.closing = Some(now);
        for (id, w) in self.calls.drain() {
            self.endpoint.abort(now, id);
            let _ = w.done.send(Err(Error::Shutdown));
        }
        self.tokens.clear();
        for id in self.sends.drain() {
            self.endpoint.abort(now, id);
        }
        for item in self.inner.close() {
            if let InboxItem::Request { rpc, .. } = item {
                self.endpoint.abort_server(now, rpc);
            }
        }
    }

    /// Whether a closing endpoint is done: nothing left to send (the caller
    /// says whether its own transmit queue is empty) or out of time.
    pub fn finished(&self, now: Instant, tx_idle: bool) -> bool {
        let Some(since) = self.closing else {
            return false;
        };
        if now.saturating_duration_since(since) >= self.inner.config.timeout {
            return true;
        }
        let m = self.endpoint.metrics();
        m.active_client_rpcs == 0
            && m.active_server_rpcs == 0
            && m.outgoing_messages == 0
            && tx_idle
    }

    /// Hand the engine's events to the handles. Returns whether there were
    /// any.
    pub fn deliver_events(&mut self, now: Instant) -> bool {
        let mut any = false;
        while let Some(ev) = self.endpoint.poll_event() {
            any = true;
            match ev {
                Event::Request { rpc, body } => {
                    tracing::trace!(rpc = rpc.id, client = %rpc.client, len = body.len(), "request");
                    if self.closing.is_some() {
                        self.endpoint.abort_server(now, rpc);
                    } else {
                        self.inner.push(InboxItem::Request { rpc, body });
                    }
                }
                Event::Response { id, body } => self.finish(id, Ok(body)),
                Event::Failed { id, error } => self.finish(id, Err(error.into())),
                _ => {}
            }
        }
        any
    }

    fn finish(&mut self, id: RpcId, result: Result<Bytes, Error>) {
        tracing::trace!(rpc = id.0, ok = result.is_ok(), "RPC finished");
        if let Some(w) = self.calls.remove(&id) {
            self.tokens.remove(&w.token);
            let _ = w.done.send(result);
        } else if self.sends.remove(&id) {
            self.inner.push(InboxItem::Response { id, result });
        }
    }
}

pub(crate) struct Driver {
    core: EngineCore,
    dp: Arc<dyn Datapath>,
    cmds: mpsc::UnboundedReceiver<Command>,
    start: tokio::time::Instant,
    sleep: Pin<Box<Sleep>>,
    rx: Vec<Incoming>,
    tx: Vec<Transmit>,
    tx_sent: usize,
    busy_poll: Option<Duration>,
    /// End of the current busy-poll window (reset by any progress).
    spin_until: Option<std::time::Instant>,
    span: tracing::Span,
}

impl Driver {
    pub fn new(
        endpoint: Endpoint,
        dp: Arc<dyn Datapath>,
        inner: Arc<Inner>,
        cmds: mpsc::UnboundedReceiver<Command>,
        options: DriverOptions,
    ) -> Self {
        let span = tracing::info_span!("homa_endpoint", local = %inner.local);
        Driver {
            core: EngineCore::new(endpoint, inner),
            dp,
            cmds,
            start: tokio::time::Instant::now(),
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            rx: Vec::new(),
            tx: Vec::with_capacity(SEND_BATCH),
            tx_sent: 0,
            busy_poll: options.busy_poll,
            spin_until: None,
            span,
        }
    }

    pub async fn run(mut self) {
        std::future::poll_fn(|cx| self.poll(cx)).await;
        tracing::debug!(parent: &self.span, "endpoint driver exits");
    }

    fn now(&self) -> Instant {
        let d = self.start.elapsed();
        Instant::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let span = self.span.clone();
        let _enter = span.enter();
        for _round in 0..MAX_ROUNDS {
            let now = self.now();
            let mut progress = false;

            // 1. commands
            for _ in 0..CMD_BUDGET {
                match self.cmds.poll_recv(cx) {
                    Poll::Ready(Some(cmd)) => {
                        self.core.command(now, cmd);
                        progress = true;
                    }
                    Poll::Ready(None) => {
                        if self.core.closing.is_none() {
                            self.core.close(now);
                        }
                        break;
                    }
                    Poll::Pending => break,
                }
            }

            // 2. packets
            for _ in 0..4 {
                self.rx.clear();
                match self.dp.poll_recv(cx, &mut self.rx) {
                    Poll::Ready(Ok(_)) => {
                        self.feed(now);
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return self.fail(e),
                    Poll::Pending => break,
                }
            }

            // 3. timers
            if self.core.endpoint.poll_timeout().is_some_and(|t| t <= now) {
                self.core.endpoint.handle_timeout(now);
            }

            // 4. transmit
            match self.flush(cx, now) {
                Ok(sent) => progress |= sent,
                Err(e) => return self.fail(e),
            }

            // 5. events
            progress |= self.core.deliver_events(now);

            if self.core.finished(now, self.tx_sent == self.tx.len()) {
                return Poll::Ready(());
            }
            if progress {
                self.spin_until = None;
                continue;
            }

            // Idle. Busy polling: instead of sleeping, look at the datapath
            // once and yield, until the window ends (the wake-up costs more
            // than a short spin). Yielding, rather than spinning inside this
            // poll, lets the tasks this poll has just woken (a response's
            // caller) run first: on a current-thread runtime a spin here
            // would hold them back for the whole window.
            if let Some(spin) = self.busy_poll {
                let deadline = *self
                    .spin_until
                    .get_or_insert_with(|| std::time::Instant::now() + spin);
                if std::time::Instant::now() < deadline {
                    self.rx.clear();
                    match self.dp.try_recv(&mut self.rx) {
                        Ok(0) => {}
                        Ok(_) => {
                            let now = self.now();
                            self.feed(now);
                            continue;
                        }
                        Err(e) => return self.fail(e),
                    }
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
            return self.arm_timer(cx);
        }
        // Out of budget with work left: let other tasks run, come back soon.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Sleep until the engine's next deadline (or not at all if it has
    /// none: a packet or a command will wake us).
    fn arm_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let now = self.now();
        let tick = self.core.inner.config.tick;
        let deadline = match self.core.closing {
            // Closing: wake at least every tick to check whether we are done.
            Some(_) => Some(
                self.core
                    .endpoint
                    .poll_timeout()
                    .unwrap_or(now + tick)
                    .min(now + tick),
            ),
            None => self.core.endpoint.poll_timeout(),
        };
        if let Some(t) = deadline {
            if t.saturating_duration_since(now) < SPIN_THRESHOLD {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let at = self.start + Duration::from_nanos(t.as_nanos());
            self.sleep.as_mut().reset(at);
            if self.sleep.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            }
        }
        Poll::Pending
    }

    fn fail(&mut self, e: std::io::Error) -> Poll<()> {
        tracing::error!(error = %e, "datapath failed; endpoint shuts down");
        let now = self.now();
        if self.core.closing.is_none() {
            self.core.close(now);
        }
        Poll::Ready(())
    }

    fn feed(&mut self, now: Instant) {
        for item in self.rx.drain(..) {
            match item {
                Incoming::Packet { from, data } => {
                    self.core.endpoint.handle_packet(now, from, data)
                }
                Incoming::Unreachable { destination } => {
                    tracing::debug!(%destination, "peer unreachable");
                    // The engine decides what fails; its events say so.
                    self.core.endpoint.handle_unreachable(now, destination);
                }
            }
        }
    }

    /// Drain the engine's transmits into the datapath. Returns whether
    /// anything was sent.
    fn flush(&mut self, cx: &mut Context<'_>, now: Instant) -> std::io::Result<bool> {
        let mut sent_any = false;
        for _ in 0..8 {
            if self.tx_sent == self.tx.len() {
                self.tx.clear();
                self.tx_sent = 0;
                while self.tx.len() < SEND_BATCH {
                    match self.core.endpoint.poll_transmit(now) {
                        Some(t) => self.tx.push(t),
                        None => break,
                    }
                }
                if self.tx.is_empty() {
                    break;
                }
            }
            match self.dp.poll_send(cx, &self.tx[self.tx_sent..]) {
                Poll::Ready(Ok(n)) => {
                    self.tx_sent = (self.tx_sent + n).min(self.tx.len());
                    sent_any = true;
                }
                Poll::Ready(Err(e)) => return Err(e),
                // The datapath wakes us when it can take more.
                Poll::Pending => break,
            }
        }
        Ok(sent_any)
    }
}
