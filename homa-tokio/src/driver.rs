//! The driver: one tokio task per endpoint that owns the [`Endpoint`] and
//! moves packets, timers, commands and events between it, the datapath and
//! the application handles. It decides nothing about the protocol.
//!
//! The part that serves the handles (commands in, events out, shutdown) is
//! [`EngineCore`]; it knows nothing of tokio or of datapaths, so that an
//! engine can also run on a thread of its own (see [`crate::host`]).

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;

use crossbeam_queue::SegQueue;
use std::net::SocketAddr;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use homa_core::{
    Config, Endpoint, Event, FastHasher, Instant, Metrics, RpcId, ServerRpcId, Transmit,
};
use tokio::sync::{mpsc, oneshot};

use crate::datapath::{Datapath, Incoming};
use crate::error::Error;
use crate::horizon::ReadHorizon;
use crate::ticker::Timer;

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
    /// Nothing to do but look at the engine: a handle ran a command
    /// itself (see [`Direct::try_run`]) and left work for the driver task.
    Wake,
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

    /// Wake the tasks waiting for the inbox, whatever it holds.
    pub fn wake_receivers(&self) {
        self.wake_all();
    }

    fn wake_all(&self) {
        let (one, many) = {
            let mut w = self.inbox.wakers.lock().unwrap_or_else(|e| e.into_inner());
            self.inbox.waiting.store(false, Ordering::SeqCst);
            // There is usually one waiter, registered again for every
            // message: popping it leaves the list its allocation.
            if w.len() == 1 {
                (w.pop(), Vec::new())
            } else {
                (None, std::mem::take(&mut *w))
            }
        };
        // Wake every waiter: one of them may have been cancelled, and the
        // others re-check the queue.
        for w in one.into_iter().chain(many) {
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

/// Every this many busy-poll probes, one looks at all of the datapath's
/// queues ([`Datapath::try_recv`]); the others only at its urgent one
/// ([`Datapath::try_recv_urgent`]), where short messages and control
/// packets arrive. A probe is a system call per queue on the UDP datapath
/// (a full one two, each a `recvmmsg`), and the time between two probes is
/// how late a short message may be noticed: with one full probe in four,
/// the full ones took two fifths of a spinning server's probing (in six
/// interleaved pairs, homa-spin's floor P50 went from a median of 15.2 µs
/// to 14.0 with one in sixteen). Bulk data does not wait for the sixteenth
/// probe: a full read that finds packets (a probe's, or the timers' look
/// below) makes the next probe full too (`full_next`).
const FULL_PROBE_EVERY: u32 = 16;
/// Longest a busy-polling driver probes in one poll before it yields to the
/// runtime. A yield costs more than a probe (the task's whole round: its
/// lock, the command channel, the timers; then the runtime's scheduling,
/// and every few dozen yields a look at its reactor), and a packet that
/// arrives during it waits for it. With one probe per yield, a spinning
/// homa-perf server made 5.2 probes per 100-byte round trip; probing in a
/// loop, 6.8 (both under `perf stat`, which slows each system call). What
/// that is worth was not settled: in five interleaved pairs of `homa-perf`
/// runs homa-spin's floor ratio to udp-spin went from a median of 1.56 to
/// 1.37, but in four runs each of the `spin` bench (nine rounds, calls
/// from a spawned task) it moved by less than its noise (1.51–1.65 before,
/// 1.48–1.72 after). While it probes nothing else runs on this thread:
/// tasks woken from other threads and the reactor's events wait up to this
/// long (a command from another thread ends the spin at once). The bound
/// is per poll: packets found meanwhile do not restart it. Ten
/// microseconds is a tenth of homa-perf's busy-poll window (100 µs, as
/// Linux Homa's).
const INNER_SPIN: Duration = Duration::from_micros(10);
/// Rounds of (commands, receive, timers, transmit, events) per wake-up before
/// the driver yields to other tasks.
const MAX_ROUNDS: usize = 16;
/// Commands taken per round.
pub(crate) const CMD_BUDGET: usize = 256;
/// A deadline closer than this is waited for by yielding instead of a
/// tokio timer, whose resolution is a millisecond: the pacer's deadlines
/// are microseconds apart.
const SPIN_THRESHOLD: Duration = Duration::from_micros(50);

/// A map keyed by our own RPC ids or call tokens, looked up on every call's
/// path: the engine's fast hasher instead of SipHash.
type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

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
    calls: IdMap<RpcId, Waiter>,
    tokens: IdMap<u64, RpcId>,
    /// RPCs started with `Socket::send`.
    sends: HashSet<RpcId, BuildHasherDefault<FastHasher>>,
    /// Set once every handle is gone or `Close` arrived: finish sending,
    /// then exit.
    pub closing: Option<Instant>,
}

impl EngineCore {
    pub fn new(endpoint: Endpoint, inner: Arc<Inner>) -> Self {
        EngineCore {
            endpoint,
            inner,
            calls: IdMap::default(),
            tokens: IdMap::default(),
            sends: HashSet::default(),
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
            Command::Wake => {}
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

    /// Hand the engine's events to the handles. Returns how many there
    /// were.
    pub fn deliver_events(&mut self, now: Instant) -> usize {
        let mut any = 0;
        while let Some(ev) = self.endpoint.poll_event() {
            any += 1;
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

/// What the driver task and the handles share: the engine and the packets
/// on their way out. The handles lock it to start RPCs and send responses
/// themselves, so that a request leaves in the caller's own time slice
/// instead of after a hop through the command channel and a poll of the
/// driver task (on a current-thread runtime the lock is never contended;
/// when it is, the command goes through the channel as before).
pub(crate) struct Direct {
    state: Mutex<Shared>,
    dp: Arc<dyn Datapath>,
    start: tokio::time::Instant,
}

/// The part of the driver behind [`Direct`]'s lock.
struct Shared {
    core: EngineCore,
    /// Transmits taken from the engine, `tx[tx_sent..]` not yet sent.
    tx: Vec<Transmit>,
    tx_sent: usize,
    /// When the driver task will next look at the engine by itself: the
    /// deadline its timer is set for, `Some(ZERO)` when it will run again
    /// soon anyway (it yielded or is busy polling), `None` when it sleeps
    /// until a packet or a command wakes it. A handle that leaves the
    /// engine needing attention earlier wakes the task.
    armed: Option<Instant>,
    /// The driver task yielded to let several tasks it woke run, and will
    /// send what they start in one batch: handles leave their packets to
    /// it instead of each making its own system call.
    batching: bool,
    /// A handle ran a command here (`Direct::try_run`) since the driver
    /// last looked: application work, which restarts the busy-poll
    /// extension (see `Driver::work_at`).
    commanded: bool,
}

impl Shared {
    /// Everything taken from the engine has been sent.
    fn tx_idle(&self) -> bool {
        self.tx_sent == self.tx.len()
    }
}

impl Direct {
    fn now(&self) -> Instant {
        let d = self.start.elapsed();
        Instant::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run a command from a handle here and now, if the engine is free:
    /// hand it to the engine, send what that produced, deliver what it
    /// finished. Returns whether the driver task must be woken (packets
    /// left over, or a deadline earlier than its timer), or the command
    /// back if the driver holds the engine at this moment.
    pub fn try_run(&self, cmd: Command) -> Result<bool, Command> {
        let mut st = match self.state.try_lock() {
            Ok(st) => st,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Err(cmd),
        };
        let now = self.now();
        st.core.command(now, cmd);
        st.commanded = true;
        if st.batching {
            // The driver runs next anyway and sends for everyone at once.
            st.core.deliver_events(now);
            return Ok(false);
        }
        // No task to wake here: if the datapath cannot take everything,
        // the driver task sends the rest with its own waker.
        let mut cx = Context::from_waker(Waker::noop());
        let drained = match flush(&mut st, &*self.dp, &mut cx, now) {
            Ok(_) => st.tx_idle(),
            Err(_) => false, // the driver task meets the error and shuts down
        };
        st.core.deliver_events(now);
        let due = st.core.endpoint.poll_timeout();
        let wake = !drained
            || match (due, st.armed) {
                (Some(due), Some(armed)) => due < armed,
                (Some(_), None) => true,
                (None, _) => false,
            };
        Ok(wake)
    }
}

pub(crate) struct Driver {
    direct: Arc<Direct>,
    cmds: mpsc::UnboundedReceiver<Command>,
    /// Wakes the task at the engine's next deadline.
    timer: Timer,
    rx: Vec<Incoming>,
    busy_poll: Option<Duration>,
    /// Start of the current idle spell (reset by any progress): busy
    /// polling goes on from here for the window, or longer while a packet
    /// is due (see the spin below).
    idle_since: Option<Instant>,
    /// Last application work: a message delivered to a task, or a command
    /// from one (engine time, as each round reads it). Busy polling goes on
    /// while packets are due for up to `resend_after` after it (see the
    /// spin below).
    work_at: Option<Instant>,
    /// Busy-poll probes so far (see `FULL_PROBE_EVERY`).
    spin_probes: u32,
    /// The last full read (a probe's, or the timers') found packets: the
    /// next probe is full too, so that a stream of bulk data is read at
    /// every probe while it lasts.
    full_next: bool,
    /// The datapath was told we busy-poll ([`Datapath::set_busy_polling`]).
    polling: bool,
    /// `poll` returned to yield between two busy-poll spins (see `run`).
    spin_yield: bool,
    /// How far the driver has read its datapath (see the timers in `poll`).
    horizon: ReadHorizon,
    span: tracing::Span,
}

impl Driver {
    /// The driver task, and what its handles share with it.
    pub fn new(
        endpoint: Endpoint,
        dp: Arc<dyn Datapath>,
        inner: Arc<Inner>,
        cmds: mpsc::UnboundedReceiver<Command>,
        options: DriverOptions,
    ) -> (Self, Arc<Direct>) {
        let span = tracing::info_span!("homa_endpoint", local = %inner.local);
        let limit = dp.recv_queue_limit();
        let direct = Arc::new(Direct {
            state: Mutex::new(Shared {
                core: EngineCore::new(endpoint, inner),
                tx: Vec::with_capacity(SEND_BATCH),
                tx_sent: 0,
                armed: None,
                batching: false,
                commanded: false,
            }),
            dp,
            start: tokio::time::Instant::now(),
        });
        let driver = Driver {
            direct: direct.clone(),
            cmds,
            timer: Timer::new(),
            rx: Vec::new(),
            busy_poll: options.busy_poll,
            idle_since: None,
            work_at: None,
            spin_probes: 0,
            full_next: false,
            polling: false,
            spin_yield: false,
            horizon: ReadHorizon::new(limit, Instant::ZERO),
            span,
        };
        (driver, direct)
    }

    pub async fn run(mut self) {
        loop {
            let done = std::future::poll_fn(|cx| match self.poll(cx) {
                Poll::Ready(()) => Poll::Ready(true),
                Poll::Pending if std::mem::take(&mut self.spin_yield) => Poll::Ready(false),
                Poll::Pending => Poll::Pending,
            })
            .await;
            if done {
                break;
            }
            // A busy-polling driver between two spins. `yield_now` defers
            // the wake-up until the runtime has run every other ready task
            // and looked at its reactor; a task that woke itself instead
            // would always be ready, and tokio's current-thread runtime
            // polls its `block_on` future only once its ready tasks run out
            // or after 61 of them: a client calling from `block_on` waited
            // 60 µs for each response (120 µs with ten-microsecond spins).
            tokio::task::yield_now().await;
        }
        tracing::debug!(parent: &self.span, "endpoint driver exits");
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let span = self.span.clone();
        let _enter = span.enter();
        let direct = self.direct.clone();
        let mut st = direct.lock();
        st.batching = false;
        let dp = &*direct.dp;
        // The busy-poll spin below has just fed packets to the engine: the
        // next round skips its receive step and goes straight to sending
        // and delivering what they produced (the receive would only find
        // the socket empty, at the cost of a system call on the critical
        // path).
        let mut just_spun = false;
        // When this poll's spinning ends (`INNER_SPIN` from its first
        // probe), however many rounds the packets it finds take.
        let mut spin_deadline: Option<Instant> = None;
        for _round in 0..MAX_ROUNDS {
            let now = direct.now();
            let mut progress = false;
            // Application work since the last round: a command run through
            // `Direct`, or (below) one from the channel or a delivery.
            if std::mem::take(&mut st.commanded) {
                self.work_at = Some(now);
            }

            // Whether the command channel and the datapath were polled
            // until they had nothing more (so they will wake us), rather
            // than left with work when a budget ran out.
            let mut cmds_idle = false;
            let mut recv_idle = false;

            // Right after the spin fed packets to the engine: their
            // messages go to their tasks first. The spin has looked at the
            // command channel after each probe, so an empty one is not
            // polled again (a poll re-registers the task's waker, which
            // only a task going to sleep needs: about a tenth of a
            // microsecond on a busy-polled round trip's path).
            let spun = std::mem::take(&mut just_spun);

            // 1. commands
            let budget = if spun && self.cmds.is_empty() {
                0
            } else {
                CMD_BUDGET
            };
            for _ in 0..budget {
                match self.cmds.poll_recv(cx) {
                    Poll::Ready(Some(cmd)) => {
                        st.core.command(now, cmd);
                        progress = true;
                        self.work_at = Some(now);
                    }
                    Poll::Ready(None) => {
                        if st.core.closing.is_none() {
                            st.core.close(now);
                        }
                        cmds_idle = true;
                        break;
                    }
                    Poll::Pending => {
                        cmds_idle = true;
                        break;
                    }
                }
            }

            // 2. packets, until a batch completes a message: its task
            // should run now, not after more bulk data has been read (on a
            // busy loopback every further batch is up to two megabytes of
            // copying ahead of it).
            let mut delivered = 0;
            let batches = if spun { 0 } else { 4 };
            for _ in 0..batches {
                self.rx.clear();
                match dp.poll_recv(cx, &mut self.rx) {
                    Poll::Ready(Ok(_)) => {
                        self.horizon.read(now, batch_bytes(&self.rx));
                        feed(&mut st.core, &mut self.rx, now);
                        progress = true;
                        delivered += st.core.deliver_events(now);
                        if delivered > 0 {
                            break;
                        }
                    }
                    Poll::Ready(Err(e)) => return fail(&mut st.core, now, e),
                    Poll::Pending => {
                        recv_idle = true;
                        break;
                    }
                }
            }

            // 3. timers, once the datapath has nothing more for us. The
            // engine judges a peer silent from the packets it has been
            // given: packets still waiting in our own socket are not silence,
            // and a tick run before reading them sends RESENDs for data that
            // has arrived (seen on loopback: five RESENDs at once with 330 KB
            // of their packets queued unread, each answered by a useless
            // retransmission). Reading for `resend_after` without emptying
            // the queue is overload, though, and the timers run anyway,
            // judging silence as of how far we have read (`ReadHorizon`):
            // judged as of `now`, a peer whose packets wait behind the
            // backlog would be asked for them again, and the retransmissions
            // answering would deepen the overload.
            // (Counted from the first read after the queue was last empty:
            // a stall of our own before it does not count.)
            if recv_idle {
                self.horizon.empty(now);
            }
            if st.core.endpoint.poll_timeout().is_some_and(|t| t <= now) {
                let overloaded = self.horizon.busy_for(now) >= st.core.inner.config.resend_after;
                if overloaded {
                    let read_until = self.horizon.horizon(now);
                    st.core.endpoint.handle_timeout_read_until(now, read_until);
                } else if recv_idle {
                    // "Empty" came from the reactor's readiness, which a
                    // busy runtime refreshes only every few dozen task
                    // polls: look at the datapath itself before judging
                    // anyone silent (a W4 run had RESENDs for responses
                    // that had sat 8 ms in our socket).
                    self.rx.clear();
                    match dp.try_recv(&mut self.rx) {
                        Ok(0) => st.core.endpoint.handle_timeout(now),
                        Ok(_) => {
                            // A full read that found packets: so will the
                            // next busy-poll probe (see `FULL_PROBE_EVERY`).
                            self.full_next = true;
                            self.horizon.read(now, batch_bytes(&self.rx));
                            feed(&mut st.core, &mut self.rx, now);
                            progress = true;
                            recv_idle = false;
                        }
                        Err(e) => return fail(&mut st.core, now, e),
                    }
                }
            }

            // 4. transmit
            match flush(&mut st, dp, cx, now) {
                Ok(sent) => progress |= sent,
                Err(e) => return fail(&mut st.core, now, e),
            }

            // 5. events
            delivered += st.core.deliver_events(now);
            progress |= delivered > 0;

            let tx_idle = st.tx_idle();
            if st.core.finished(now, tx_idle) {
                return Poll::Ready(());
            }
            if delivered > 0 {
                if delivered == 1 && self.busy_poll.is_none() && cmds_idle && recv_idle && tx_idle {
                    // Nothing is left that would not wake us by itself (a
                    // command, a packet, room to send, the timer; and the
                    // task's own work through `Direct` wakes us if it must):
                    // go idle rather than be polled again for nothing. We
                    // will not pass the idle step below first, so the
                    // engine's deferred work is done here (as the engine
                    // did it on the packet's path before there was `reap`),
                    // not in one batch at its next tick.
                    self.idle_since = None;
                    self.work_at = Some(now);
                    st.core.endpoint.reap(now);
                    return self.arm_timer(&mut st, now, cx);
                }
                return self.hand_over(&mut st, now, delivered, cx);
            }
            if progress {
                self.idle_since = None;
                continue;
            }
            // Idle: the engine's deferred work (acknowledged RPCs to free)
            // is done here, off the path of the next packet. Another round
            // follows, so a closing endpoint sees the RPCs gone.
            if st.core.endpoint.reap(now) > 0 {
                continue;
            }

            // Idle. Busy polling: instead of sleeping, probe the datapath
            // for a few microseconds (`INNER_SPIN`) and yield, until the
            // window ends (the wake-up costs more than a short spin).
            // Yielding, rather than spinning through the window inside this
            // poll, lets other tasks run, first those this poll has just
            // woken (a response's caller): on a current-thread runtime a
            // spin here would hold them back for the whole window.
            //
            // The window alone is not enough while our own RPCs wait for
            // packets. When waking a sleeping thread takes longer than the
            // window (a busy machine), a caller whose response came late
            // sleeps, its peer's window runs out while it wakes, and from
            // then on every packet finds its receiver asleep: round trips
            // stay longer than the window and spinning never resumes (on
            // this project's 2-core VM, beside one busy-loop thread,
            // homa-spin's P50 went from 12–17 µs to 241–265 µs; udp-spin,
            // which never sleeps, stayed at 9.7–12.8 µs). So while the engine
            // has RPCs in progress (`awaits_packets`) the spin goes on for
            // up to `resend_after` after the last application work (a
            // message delivered, a command). Counted from that, not from
            // any packet: RESENDs and BUSYs answering them go back and forth
            // while a server's application takes its time, and a slow
            // handler or a dead peer must not keep both ends spinning.
            if let Some(spin) = self.busy_poll {
                // The round's clock reading: a probe loop that reads the
                // clock once per probe, not twice.
                let idle_since = *self.idle_since.get_or_insert(now);
                let resend_after = st.core.inner.config.resend_after;
                let due = st.core.endpoint.awaits_packets()
                    && self
                        .work_at
                        .is_some_and(|w| now.saturating_duration_since(w) < resend_after);
                if now.saturating_duration_since(idle_since) < spin || due {
                    if !self.polling {
                        // The datapath may drop its wake-ups while we spin
                        // (they cost the kernel something per packet).
                        if let Err(e) = dp.set_busy_polling(true) {
                            return fail(&mut st.core, now, e);
                        }
                        self.polling = true;
                    }
                    // Probe in a tight loop for up to `INNER_SPIN` before
                    // yielding (see there), stopping early for a packet, a
                    // command from another thread, the engine's next
                    // deadline or the end of the window.
                    let window_end = match self.work_at.filter(|_| due) {
                        Some(w) => (w + resend_after).max(idle_since + spin),
                        None => idle_since + spin,
                    };
                    let mut until = window_end.min(*spin_deadline.get_or_insert(now + INNER_SPIN));
                    if let Some(t) = st.core.endpoint.poll_timeout() {
                        until = until.min(t);
                    }
                    let found = loop {
                        self.rx.clear();
                        // Most probes look only where short messages and
                        // control packets arrive; every few look everywhere.
                        self.spin_probes = self.spin_probes.wrapping_add(1);
                        let full =
                            self.full_next || self.spin_probes.is_multiple_of(FULL_PROBE_EVERY);
                        let probe = if full {
                            dp.try_recv(&mut self.rx)
                        } else {
                            dp.try_recv_urgent(&mut self.rx)
                        };
                        match probe {
                            Ok(0) => self.full_next = false,
                            Ok(_) => {
                                self.full_next = full;
                                break true;
                            }
                            Err(e) => return fail(&mut st.core, now, e),
                        }
                        if !self.cmds.is_empty() || direct.now() >= until {
                            break false;
                        }
                    };
                    if found {
                        let now = direct.now();
                        self.horizon.read(now, batch_bytes(&self.rx));
                        feed(&mut st.core, &mut self.rx, now);
                        // What the packets finished goes to its task at
                        // once: a whole round first (another clock reading,
                        // the command, timer and `finished` checks) is on
                        // the round trip's path. What they produced to send
                        // (grants, acks, paced data) goes out first, as the
                        // round would send it, and counts as progress.
                        match flush(&mut st, dp, cx, now) {
                            Ok(true) => self.idle_since = None,
                            Ok(false) => {}
                            Err(e) => return fail(&mut st.core, now, e),
                        }
                        let delivered = st.core.deliver_events(now);
                        if delivered > 0 {
                            return self.hand_over(&mut st, now, delivered, cx);
                        }
                        just_spun = true;
                        continue;
                    }
                    st.armed = Some(Instant::ZERO);
                    self.yield_soon(cx);
                    return Poll::Pending;
                }
            }
            if self.polling {
                // The window is over and we are about to sleep: wake-ups
                // first. One more round, so that its receive step registers
                // this task with them (and reads what came meanwhile).
                if let Err(e) = dp.set_busy_polling(false) {
                    return fail(&mut st.core, now, e);
                }
                self.polling = false;
                continue;
            }
            return self.arm_timer(&mut st, now, cx);
        }
        // Out of budget with work left: let other tasks run, come back soon.
        st.armed = Some(Instant::ZERO);
        st.batching = true;
        self.yield_soon(cx);
        Poll::Pending
    }

    /// Requests or responses went to their tasks (`delivered` of them):
    /// let them run now, and come back right after. One task answers (or
    /// starts its next call) through `Direct` itself, at once; several
    /// leave their packets to us, and we send them together when we run
    /// next.
    fn hand_over(
        &mut self,
        st: &mut Shared,
        now: Instant,
        delivered: usize,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        self.idle_since = None;
        self.work_at = Some(now);
        if delivered > 1 {
            st.batching = true;
        }
        st.armed = Some(Instant::ZERO);
        self.yield_soon(cx);
        Poll::Pending
    }

    /// Have this task polled again soon, after the tasks that are ready
    /// now. Busy polling, by deferring (see `run`): a driver that spins is
    /// ready all the time, and one that woke itself would starve a
    /// `block_on` future. Otherwise by waking itself, which costs no look
    /// at the reactor (`poll` yields like this only while work is left).
    fn yield_soon(&mut self, cx: &mut Context<'_>) {
        if self.busy_poll.is_some() {
            self.spin_yield = true;
        } else {
            cx.waker().wake_by_ref();
        }
    }

    /// Sleep until the engine's next deadline (or not at all if it has
    /// none: a packet or a command will wake us).
    fn arm_timer(&mut self, st: &mut Shared, now: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let tick = st.core.inner.config.tick;
        let deadline = match st.core.closing {
            // Closing: wake at least every tick to check whether we are done.
            Some(_) => Some(
                st.core
                    .endpoint
                    .poll_timeout()
                    .unwrap_or(now + tick)
                    .min(now + tick),
            ),
            None => st.core.endpoint.poll_timeout(),
        };
        st.armed = deadline;
        if let Some(t) = deadline {
            if t.saturating_duration_since(now) < SPIN_THRESHOLD {
                st.armed = Some(Instant::ZERO);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            // On the timer thread, not as a tokio timer: see `ticker`.
            let at = (self.direct.start + Duration::from_nanos(t.as_nanos())).into_std();
            self.timer.arm(at, cx.waker());
        } else {
            self.timer.cancel();
        }
        Poll::Pending
    }
}

fn fail(core: &mut EngineCore, now: Instant, e: std::io::Error) -> Poll<()> {
    tracing::error!(error = %e, "datapath failed; endpoint shuts down");
    if core.closing.is_none() {
        core.close(now);
    }
    Poll::Ready(())
}

/// Packet bytes in a received batch.
fn batch_bytes(rx: &[Incoming]) -> usize {
    rx.iter()
        .map(|i| match i {
            Incoming::Packet { data, .. } => data.len(),
            Incoming::Unreachable { .. } => 0,
        })
        .sum()
}

fn feed(core: &mut EngineCore, rx: &mut Vec<Incoming>, now: Instant) {
    for item in rx.drain(..) {
        match item {
            Incoming::Packet { from, data } => core.endpoint.handle_packet(now, from, data),
            Incoming::Unreachable { destination } => {
                tracing::debug!(%destination, "peer unreachable");
                // The engine decides what fails; its events say so.
                core.endpoint.handle_unreachable(now, destination);
            }
        }
    }
}

/// Drain the engine's transmits into the datapath. Returns whether
/// anything was sent.
fn flush(
    st: &mut Shared,
    dp: &dyn Datapath,
    cx: &mut Context<'_>,
    now: Instant,
) -> std::io::Result<bool> {
    let mut sent_any = false;
    for _ in 0..8 {
        if st.tx_idle() {
            st.tx.clear();
            st.tx_sent = 0;
            while st.tx.len() < SEND_BATCH {
                match st.core.endpoint.poll_transmit(now) {
                    Some(t) => st.tx.push(t),
                    None => break,
                }
            }
            if st.tx.is_empty() {
                break;
            }
        }
        match dp.poll_send(cx, &st.tx[st.tx_sent..]) {
            Poll::Ready(Ok(n)) => {
                st.tx_sent = (st.tx_sent + n).min(st.tx.len());
                sent_any = true;
            }
            Poll::Ready(Err(e)) => return Err(e),
            // The datapath wakes us when it can take more.
            Poll::Pending => break,
        }
    }
    Ok(sent_any)
}
