//! [`Server`]: accept requests and respond, or serve a `tower::Service`.

use std::net::SocketAddr;
use std::task::{Context, Poll};

use bytes::Bytes;
use homa_core::Metrics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

use crate::error::Error;
use crate::socket::{Message, Request, Socket, SocketConfig};

/// Default most requests [`Server::serve`] handles at once.
pub const DEFAULT_CONCURRENCY_LIMIT: usize = 1024;

/// What a service run by [`Server::serve`] receives.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServiceRequest {
    /// Address of the client that sent the request.
    pub client: SocketAddr,
    /// The request message.
    pub body: Bytes,
}

/// An RPC server.
///
/// Take requests one by one with [`next_request`](Server::next_request) and
/// answer each with [`Request::respond`], or hand a `tower::Service` to
/// [`serve`](Server::serve). [`shutdown`](Server::shutdown) stops taking
/// requests and lets the ones in progress finish.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), homa_tokio::Error> {
/// use homa_tokio::{Client, Server, SocketConfig};
/// let server = Server::bind("127.0.0.1:0".parse().unwrap(), SocketConfig::default()).await?;
/// let addr = server.local_addr();
/// tokio::spawn(async move {
///     while let Some(req) = server.next_request().await {
///         let body = req.body().clone();
///         let _ = req.respond(body);
///     }
/// });
/// let client = Client::bind("127.0.0.1:0".parse().unwrap(), SocketConfig::default()).await?;
/// assert_eq!(&client.call(addr, "echo".into()).await?[..], b"echo");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Server {
    socket: Socket,
    /// Set by `shutdown`, for every clone. (A flag checked where requests
    /// are taken, not a watch channel raced against the inbox: subscribing
    /// and registering with it on every request cost a few tenths of a
    /// microsecond of a busy-polled round trip.)
    shutdown: Arc<AtomicBool>,
    concurrency_limit: usize,
}

impl Server {
    /// Bind a server on UDP at `addr`. Port 0 picks a free port in the
    /// Homa server range (1024–32767), since the kernel's choice would be
    /// a client port.
    ///
    /// # Errors
    /// As [`Socket::bind`]; binding `addr` with a port above 32767 is refused
    /// with [`Error::Io`] (Homa clients could not address it).
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn bind(addr: SocketAddr, config: SocketConfig) -> Result<Server, Error> {
        if addr.port() > 0x7fff {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "Homa server ports are 1-32767",
            )));
        }
        if addr.port() != 0 {
            return Ok(Server::from_socket(Socket::bind(addr, config).await?));
        }
        // Try ports from a random start; give up after a while.
        let span = 32_767 - 1024 + 1;
        let start = std::collections::hash_map::RandomState::new();
        let start = {
            use std::hash::BuildHasher;
            (start.hash_one(addr) % span) as u16
        };
        let mut last = None;
        for i in 0..512u16 {
            let port = 1024 + (start + i * 61) % span as u16;
            let mut a = addr;
            a.set_port(port);
            match Socket::bind(a, config.clone()).await {
                Ok(s) => return Ok(Server::from_socket(s)),
                Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(Error::Io(last.unwrap_or_else(|| {
            std::io::Error::from(std::io::ErrorKind::AddrInUse)
        })))
    }

    /// A server on an existing socket.
    ///
    /// ```no_run
    /// # async fn f(socket: homa_tokio::Socket) {
    /// let server = homa_tokio::Server::from_socket(socket);
    /// # }
    /// ```
    pub fn from_socket(socket: Socket) -> Server {
        Server {
            socket,
            shutdown: Arc::new(AtomicBool::new(false)),
            concurrency_limit: DEFAULT_CONCURRENCY_LIMIT,
        }
    }

    /// Handle at most `limit` requests at once in [`serve`](Self::serve);
    /// further requests wait in the queue (their clients see no timeout: the
    /// engine answers their retransmission requests). Default
    /// [`DEFAULT_CONCURRENCY_LIMIT`].
    ///
    /// ```no_run
    /// # async fn f(server: homa_tokio::Server) {
    /// let server = server.with_concurrency_limit(16);
    /// # }
    /// ```
    pub fn with_concurrency_limit(mut self, limit: usize) -> Server {
        self.concurrency_limit = limit.max(1);
        self
    }

    /// The address clients reach this server at.
    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr()
    }

    /// The underlying socket.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The next request, or `None` once [`shutdown`](Self::shutdown) was
    /// called or the endpoint closed.
    ///
    /// # Cancel safety
    /// Cancel safe: a request is taken only when the future completes.
    pub async fn next_request(&self) -> Option<Request> {
        std::future::poll_fn(|cx| self.poll_next_request(cx)).await
    }

    /// The poll twin of [`next_request`](Self::next_request).
    pub fn poll_next_request(&self, cx: &mut Context<'_>) -> Poll<Option<Request>> {
        if self.shutdown.load(Ordering::SeqCst) {
            return Poll::Ready(None);
        }
        loop {
            match self.socket.poll_recv(cx) {
                Poll::Ready(Ok(Message::Request(r))) => return Poll::Ready(Some(r)),
                // Responses to requests sent on the underlying socket are
                // not a server's business.
                Poll::Ready(Ok(Message::Response { .. })) => continue,
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                // `shutdown` sets the flag, then wakes the tasks waiting
                // here; our waker is registered now, so either it wakes us
                // or we see the flag.
                Poll::Pending if self.shutdown.load(Ordering::SeqCst) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Serve `service` until [`shutdown`](Self::shutdown): each request goes
    /// to the service as a [`ServiceRequest`] (the client's address and the
    /// body), and its output is the response. At most
    /// the concurrency limit of requests are in service at once. On shutdown,
    /// no new request is taken, and `serve` returns once every request in
    /// service has been answered.
    ///
    /// A service error drops the request unanswered (Homa has no error
    /// responses; the client times out): encode application errors in the
    /// response instead.
    ///
    /// # Errors
    /// [`Error::Shutdown`] if the endpoint closed underneath.
    ///
    /// # Cancel safety
    /// Dropping the future stops taking requests; requests already in
    /// service still get their responses (they run on their own tasks).
    ///
    /// ```no_run
    /// # async fn f(server: homa_tokio::Server) -> Result<(), homa_tokio::Error> {
    /// use bytes::Bytes;
    /// use homa_tokio::ServiceRequest;
    /// let echo = tower::service_fn(|req: ServiceRequest| async move {
    ///     Ok::<Bytes, std::convert::Infallible>(req.body)
    /// });
    /// server.serve(echo).await
    /// # }
    /// ```
    pub async fn serve<S>(&self, mut service: S) -> Result<(), Error>
    where
        S: tower::Service<ServiceRequest, Response = Bytes>,
        S::Error: std::fmt::Display,
        S::Future: Send + 'static,
    {
        let limit = std::sync::Arc::new(Semaphore::new(self.concurrency_limit));
        let mut in_service = tokio::task::JoinSet::new();
        let mut result = Ok(());
        loop {
            let Ok(permit) = limit.clone().acquire_owned().await else {
                break;
            };
            let Some(mut req) = self.next_request().await else {
                if self.socket.is_closed() {
                    result = Err(Error::Shutdown);
                }
                break;
            };
            if std::future::poll_fn(|cx| service.poll_ready(cx))
                .await
                .is_err()
            {
                drop(req);
                break;
            }
            let fut = service.call(ServiceRequest {
                client: req.client(),
                body: req.take_body(),
            });
            in_service.spawn(async move {
                match fut.await {
                    Ok(body) => {
                        if let Err(e) = req.respond(body) {
                            tracing::debug!(error = %e, "response refused");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "service failed; request dropped"),
                }
                drop(permit);
            });
            while in_service.try_join_next().is_some() {}
        }
        // Graceful: the requests in service finish.
        while in_service.join_next().await.is_some() {}
        result
    }

    /// Stop taking requests: [`next_request`](Self::next_request) returns
    /// `None` and [`serve`](Self::serve) returns after the requests in service
    /// are answered. Responses already given are still delivered; the
    /// endpoint closes when the last handle is dropped.
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.socket.wake_receivers();
    }

    /// A snapshot of the engine's counters and gauges.
    ///
    /// # Errors
    /// [`Error::Shutdown`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn metrics(&self) -> Result<Metrics, Error> {
        self.socket.metrics().await
    }
}
