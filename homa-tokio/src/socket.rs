//! [`Socket`]: the message-level API (the Linux `sendmsg`/`recvmsg` shape).

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use homa_core::{Config, Endpoint, Metrics, RpcId, ServerRpcId};
use tokio::sync::{mpsc, oneshot};

use crate::datapath::Datapath;
use crate::driver::{Command, Direct, Driver, DriverOptions, Inbox, InboxItem, Inner};
use crate::error::Error;
use crate::host::CommandRing;
use crate::udp::{UdpConfig, UdpDatapath};

/// Configuration of a [`Socket`] (and of a [`Client`](crate::Client) or
/// [`Server`](crate::Server)).
///
/// ```
/// use homa_tokio::SocketConfig;
/// use std::time::Duration;
/// let mut config = SocketConfig::default();
/// config.engine.timeout = Duration::from_millis(500);
/// config.udp.max_packet_size = 9_000;
/// config.busy_poll = Some(Duration::from_micros(50));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SocketConfig {
    /// The engine's configuration. Its `max_packet_size` and
    /// `link_rate_bps` are overwritten with the datapath's values; a `seed`
    /// of 0 is replaced with a random one.
    pub engine: Config,
    /// Options of the UDP datapath (ignored by [`Socket::with_datapath`]).
    pub udp: UdpConfig,
    /// Busy polling: when idle, the driver spins on the datapath for up to
    /// this long before sleeping, trading a CPU for the wake-up latency
    /// (Linux Homa spins up to 100 µs). While the engine has RPCs in
    /// progress, it also spins until the engine's `resend_after` has passed
    /// since the application's last work (a message delivered to it, a
    /// call or response from it): a window shorter than a round trip with
    /// sleeping peers would otherwise, on a busy machine, leave both ends
    /// sleeping between packets for good. While it spins, the UDP
    /// datapath's sockets leave the reactor (their wake-ups cost every
    /// packet a callback in the kernel) and return when the driver sleeps.
    /// The driver probes in a tight loop for up to 10 µs at a time, then
    /// yields, so other tasks on its thread run in between (those woken
    /// from other threads wait up to that long).
    /// Default `None`.
    pub busy_poll: Option<Duration>,
}

/// The sending half every handle shares; when the last one is dropped, the
/// driver finishes what it owes and exits.
pub(crate) struct Handle {
    pub cmd: CommandTx,
    pub inner: Arc<Inner>,
}

/// Where a handle's commands go: the channel of a driver task, or the
/// lock-free ring of an engine hosted on a thread of its own.
pub(crate) enum CommandTx {
    Task {
        tx: mpsc::UnboundedSender<Command>,
        direct: Arc<Direct>,
    },
    Ring(Arc<CommandRing>),
}

impl Handle {
    pub fn send(&self, cmd: Command) -> Result<(), Error> {
        match &self.cmd {
            CommandTx::Task { tx, direct } => {
                if tx.is_closed() {
                    return Err(Error::Shutdown);
                }
                // What starts or answers an RPC runs here when the engine
                // is free; the rest (rare, or about shutting down) goes to
                // the driver task, which owns the endpoint's lifetime.
                let cmd = match cmd {
                    Command::Send { .. } | Command::Call { .. } | Command::Respond { .. } => {
                        match direct.try_run(cmd) {
                            Ok(false) => return Ok(()),
                            Ok(true) => Command::Wake,
                            Err(cmd) => cmd,
                        }
                    }
                    cmd => cmd,
                };
                tx.send(cmd).map_err(|_| Error::Shutdown)
            }
            CommandTx::Ring(ring) => ring.push(cmd),
        }
    }

    pub fn is_closed(&self) -> bool {
        match &self.cmd {
            CommandTx::Task { tx, .. } => tx.is_closed(),
            CommandTx::Ring(ring) => ring.is_closed(),
        }
    }

    pub fn next_token(&self) -> u64 {
        self.inner.next_token.fetch_add(1, Ordering::Relaxed)
    }

    pub fn check_length(&self, len: usize) -> Result<(), Error> {
        let max = self.inner.config.max_message_length;
        if len > max as usize {
            return Err(Error::MessageTooLarge { len, max });
        }
        Ok(())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // A driver task sees its channel close by itself; a host thread is
        // told, so that it finishes what it owes and stops.
        if let CommandTx::Ring(ring) = &self.cmd {
            ring.handles_gone();
        }
    }
}

/// A Homa endpoint: send requests, receive requests and responses, reply.
///
/// One socket is one engine driven by one tokio task, on one datapath (a
/// UDP socket by default). Cloning is cheap and shares the endpoint; the
/// endpoint shuts down when the last clone (and every [`Request`] and call
/// in flight) is gone, after it has finished sending the responses it owes.
///
/// Homa server ports are 1–32767 and client ports 32768–65535: a socket
/// bound to port 0 gets a kernel-chosen port, which on Linux is a client
/// port (use [`Server::bind`](crate::Server::bind) to get a free server
/// port).
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), homa_tokio::Error> {
/// use homa_tokio::{Message, Server, Socket, SocketConfig};
/// // Requests need a server port (1..=32767): Server::bind picks a free one.
/// let server = Server::bind("127.0.0.1:0".parse().unwrap(), SocketConfig::default()).await?;
/// let server: Socket = server.socket().clone();
/// let client = Socket::bind("127.0.0.1:0".parse().unwrap(), SocketConfig::default()).await?;
/// let id = client.send(server.local_addr(), "ping".into()).await?;
/// let Message::Request(req) = server.recv().await? else { unreachable!() };
/// assert_eq!(&req.body()[..], b"ping");
/// req.respond("pong".into())?;
/// let Message::Response { id: done, result } = client.recv().await? else { unreachable!() };
/// assert_eq!(done, id);
/// assert_eq!(&result?[..], b"pong");
/// # Ok(()) }
/// ```
pub struct Socket {
    pub(crate) handle: Arc<Handle>,
    /// The request a [`poll_send`](Socket::poll_send) has handed to the
    /// driver and is waiting on (one per `Socket` value).
    pending_send: Mutex<Option<oneshot::Receiver<Result<RpcId, Error>>>>,
}

impl Clone for Socket {
    /// Another handle on the same endpoint (with its own `poll_send` slot).
    fn clone(&self) -> Self {
        Socket {
            handle: self.handle.clone(),
            pending_send: Mutex::new(None),
        }
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("local", &self.handle.inner.local)
            .finish_non_exhaustive()
    }
}

/// What [`Socket::recv`] returns.
#[derive(Debug)]
#[non_exhaustive]
pub enum Message {
    /// A request from a client; answer it with [`Request::respond`].
    Request(Request),
    /// The outcome of a request sent with [`Socket::send`].
    Response {
        /// The id [`Socket::send`] returned.
        id: RpcId,
        /// The response, or why the RPC failed.
        result: Result<Bytes, Error>,
    },
}

/// A request received by a server. Answer it with
/// [`respond`](Request::respond); dropping it unanswered drops the RPC (the
/// client then times out, and a retransmitted copy is not delivered again).
///
/// ```no_run
/// # async fn f(server: homa_tokio::Server) -> Result<(), homa_tokio::Error> {
/// while let Some(req) = server.next_request().await {
///     let reply = req.body().to_ascii_uppercase();
///     req.respond(reply.into())?;
/// }
/// # Ok(()) }
/// ```
pub struct Request {
    rpc: ServerRpcId,
    body: Bytes,
    handle: Option<Arc<Handle>>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("rpc", &self.rpc)
            .field("len", &self.body.len())
            .finish()
    }
}

impl Request {
    /// The request message.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Take the request message out (the request can still be answered).
    pub fn take_body(&mut self) -> Bytes {
        std::mem::take(&mut self.body)
    }

    /// Who sent it, and the server-side RPC id.
    pub fn rpc(&self) -> ServerRpcId {
        self.rpc
    }

    /// The client's address.
    pub fn client(&self) -> SocketAddr {
        self.rpc.client
    }

    /// Send `body` as the response. Returns as soon as the driver has the
    /// response; the engine then sends it (and retransmits it as needed).
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] (nothing is sent; the request is dropped),
    /// or [`Error::Shutdown`].
    pub fn respond(mut self, body: Bytes) -> Result<(), Error> {
        let handle = self.handle.take().ok_or(Error::Shutdown)?;
        if let Err(e) = handle.check_length(body.len()) {
            let _ = handle.send(Command::DropRequest(self.rpc));
            return Err(e);
        }
        handle.send(Command::Respond {
            rpc: self.rpc,
            body,
        })
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.send(Command::DropRequest(self.rpc));
        }
    }
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() | 1
}

/// The engine and the state its handles share, for an endpoint at `local` on
/// a datapath with these packet size and link rate.
pub(crate) fn build_engine(
    local: SocketAddr,
    max_packet_size: usize,
    link_rate_bps: u64,
    mut engine: Config,
) -> Result<(Endpoint, Arc<Inner>), Error> {
    engine.max_packet_size = max_packet_size;
    engine.link_rate_bps = link_rate_bps;
    if engine.seed == 0 {
        engine.seed = random_seed();
    }
    let endpoint = Endpoint::new(engine.clone(), local)
        .map_err(|e| Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let inner = Arc::new(Inner {
        inbox: Inbox::default(),
        local,
        config: engine,
        next_token: AtomicU64::new(0),
    });
    Ok((endpoint, inner))
}

impl Socket {
    /// Bind a socket on UDP at `addr` and start its driver task. Must be
    /// called inside a tokio runtime.
    ///
    /// # Errors
    /// [`Error::Io`] if the UDP socket cannot be bound or the configuration
    /// is invalid.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is started until the future completes.
    pub async fn bind(addr: SocketAddr, config: SocketConfig) -> Result<Socket, Error> {
        let dp = UdpDatapath::bind(addr, &config.udp)?;
        Socket::with_datapath(Arc::new(dp), config)
    }

    /// Start an endpoint on any [`Datapath`] (a test wrapper, a kernel
    /// bypass datapath). Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`Error::Io`] if the datapath has no local address or the engine
    /// configuration is invalid.
    ///
    /// ```no_run
    /// # fn f() -> Result<(), homa_tokio::Error> {
    /// use homa_tokio::{Socket, SocketConfig, UdpConfig, UdpDatapath};
    /// use std::sync::Arc;
    /// let dp = UdpDatapath::bind("127.0.0.1:4000".parse().unwrap(), &UdpConfig::default())?;
    /// let socket = Socket::with_datapath(Arc::new(dp), SocketConfig::default())?;
    /// # Ok(()) }
    /// ```
    pub fn with_datapath(dp: Arc<dyn Datapath>, config: SocketConfig) -> Result<Socket, Error> {
        let local = dp.local_addr()?;
        let (endpoint, inner) = build_engine(
            local,
            dp.max_packet_size(),
            dp.link_rate_bps(),
            config.engine,
        )?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (driver, direct) = Driver::new(
            endpoint,
            dp,
            inner.clone(),
            rx,
            DriverOptions {
                busy_poll: config.busy_poll,
            },
        );
        tokio::spawn(driver.run());
        Ok(Socket::from_handle(CommandTx::Task { tx, direct }, inner))
    }

    /// Wake every task waiting in `recv` (or `Server::next_request`), so
    /// that it looks again at what it waits for.
    pub(crate) fn wake_receivers(&self) {
        self.handle.inner.wake_receivers();
    }

    pub(crate) fn from_handle(cmd: CommandTx, inner: Arc<Inner>) -> Socket {
        Socket {
            handle: Arc::new(Handle { cmd, inner }),
            pending_send: Mutex::new(None),
        }
    }

    /// The address peers reach this socket at.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.inner.local
    }

    /// The engine configuration in use (with the datapath's packet size and
    /// link rate filled in).
    pub fn config(&self) -> &Config {
        &self.handle.inner.config
    }

    /// Send `body` as a request to the server at `dest`; the response (or
    /// the failure) arrives later from [`recv`](Self::recv) as
    /// [`Message::Response`] with the returned id.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] (nothing is sent), [`Error::Refused`] (too
    /// many RPCs, or `dest` is not a server port), [`Error::Shutdown`].
    ///
    /// # Cancel safety
    /// Not cancel safe: if the future is dropped after the driver took the
    /// request, the request is sent and its response arrives from `recv`
    /// under an id the caller never learned.
    pub async fn send(&self, dest: SocketAddr, body: Bytes) -> Result<RpcId, Error> {
        self.handle.check_length(body.len())?;
        let (reply, rx) = oneshot::channel();
        self.handle.send(Command::Send { dest, body, reply })?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// Poll twin of [`send`](Self::send). The first call hands `body` to the
    /// endpoint; later calls (until `Ready`) wait for its id, and their
    /// `dest` and `body` are ignored. One send is in progress per `Socket`
    /// value at a time; clone the socket for more.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn poll_send(
        &self,
        cx: &mut Context<'_>,
        dest: SocketAddr,
        body: Bytes,
    ) -> Poll<Result<RpcId, Error>> {
        let mut slot = self.pending_send.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            self.handle.check_length(body.len())?;
            let (reply, rx) = oneshot::channel();
            self.handle.send(Command::Send { dest, body, reply })?;
            *slot = Some(rx);
        }
        let rx = slot.as_mut().expect("a send is in progress");
        let result = std::task::ready!(std::pin::Pin::new(rx).poll(cx));
        *slot = None;
        Poll::Ready(result.map_err(|_| Error::Shutdown)?)
    }

    /// Answer the request `rpc` (from a [`Request`] taken apart with
    /// [`Request::rpc`]); most code calls [`Request::respond`] instead.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] or [`Error::Shutdown`].
    pub fn reply(&self, rpc: ServerRpcId, body: Bytes) -> Result<(), Error> {
        self.handle.check_length(body.len())?;
        self.handle.send(Command::Respond { rpc, body })
    }

    /// Abort a request sent with [`send`](Self::send): its state is freed on
    /// both sides and no response is reported. Does nothing if it already
    /// finished.
    ///
    /// # Errors
    /// [`Error::Shutdown`].
    pub fn abort(&self, id: RpcId) -> Result<(), Error> {
        self.handle.send(Command::Abort(id))
    }

    /// The next request for this socket, or the next response to a request
    /// it sent.
    ///
    /// # Errors
    /// [`Error::Shutdown`] once the endpoint is closed.
    ///
    /// # Cancel safety
    /// Cancel safe: a message is taken from the queue only when the future
    /// completes.
    pub async fn recv(&self) -> Result<Message, Error> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The poll twin of [`recv`](Self::recv): `Ready` with the next message,
    /// or `Pending` after registering `cx` to be woken when one arrives.
    ///
    /// # Errors
    /// [`Error::Shutdown`] once the endpoint is closed.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<Message, Error>> {
        self.handle.inner.poll_inbox(cx).map(|item| match item {
            None => Err(Error::Shutdown),
            Some(InboxItem::Request { rpc, body }) => Ok(Message::Request(Request {
                rpc,
                body,
                handle: Some(self.handle.clone()),
            })),
            Some(InboxItem::Response { id, result }) => Ok(Message::Response { id, result }),
        })
    }

    /// A snapshot of the engine's counters and gauges.
    ///
    /// # Errors
    /// [`Error::Shutdown`] once the endpoint is closed.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn metrics(&self) -> Result<Metrics, Error> {
        let (reply, rx) = oneshot::channel();
        self.handle.send(Command::Metrics(reply))?;
        rx.await.map_err(|_| Error::Shutdown)
    }

    /// Shut the endpoint down now, for every clone: calls in flight fail with
    /// [`Error::Shutdown`], queued requests are dropped, and the driver exits
    /// once the responses already given are delivered (or after the
    /// configured timeout).
    pub fn close(&self) {
        let _ = self.handle.send(Command::Close);
    }

    /// Whether the endpoint's driver has exited.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }
}
