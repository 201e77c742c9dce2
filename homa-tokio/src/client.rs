//! [`Client`]: one future per RPC, and a `tower::Service`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use homa_core::Metrics;
use tokio::sync::oneshot;

use crate::driver::Command;
use crate::error::Error;
use crate::socket::{Handle, Socket, SocketConfig};

/// An RPC client: [`call`](Client::call) sends a request and resolves to
/// its response.
///
/// Cheap to clone (clones share the endpoint). Also a
/// [`tower::Service<(SocketAddr, Bytes)>`](tower::Service), so it composes
/// with tower's timeout, concurrency-limit, retry and load-balancing layers.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> Result<(), homa_tokio::Error> {
/// use homa_tokio::{Client, SocketConfig};
/// let client = Client::bind("0.0.0.0:0".parse().unwrap(), SocketConfig::default()).await?;
/// let response = client.call("10.0.0.2:4000".parse().unwrap(), "hello".into()).await?;
/// println!("{} bytes back", response.len());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    socket: Socket,
}

impl Client {
    /// Bind a client on UDP at `addr` (usually port 0).
    ///
    /// # Errors
    /// As [`Socket::bind`].
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn bind(addr: SocketAddr, config: SocketConfig) -> Result<Client, Error> {
        Ok(Client::from_socket(Socket::bind(addr, config).await?))
    }

    /// A client on an existing socket (the socket can still serve requests).
    ///
    /// ```no_run
    /// # async fn f(socket: homa_tokio::Socket) {
    /// let client = homa_tokio::Client::from_socket(socket);
    /// # }
    /// ```
    pub fn from_socket(socket: Socket) -> Client {
        Client { socket }
    }

    /// The underlying socket.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The address servers see this client at.
    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr()
    }

    /// Send `body` to the server at `dest` and wait for the response.
    ///
    /// The returned [`Call`] future is `Send` and `'static`; it starts the
    /// RPC as soon as it is created.
    ///
    /// # Errors
    /// [`Error::Timeout`] if the server went silent for the configured
    /// timeout; [`Error::PeerUnreachable`] if nothing listens at `dest`;
    /// [`Error::MessageTooLarge`] (nothing is sent); [`Error::Refused`];
    /// [`Error::Shutdown`].
    ///
    /// # Cancel safety
    /// Dropping the future aborts the RPC: the engine frees its state, tells
    /// the server (which frees its side), and the response, if it comes, is
    /// discarded. The request may or may not have been executed.
    pub fn call(&self, dest: SocketAddr, body: Bytes) -> Call {
        Call::start(&self.socket.handle, dest, body)
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

/// The future of one RPC, from [`Client::call`]. Dropping it aborts the RPC.
///
/// ```no_run
/// # async fn f(client: homa_tokio::Client, dest: std::net::SocketAddr) {
/// let call: homa_tokio::Call = client.call(dest, "x".into());
/// let handle = tokio::spawn(call); // Send + 'static
/// # }
/// ```
#[must_use = "an RPC is aborted when its future is dropped"]
#[derive(Debug)]
pub struct Call {
    state: CallState,
    span: tracing::Span,
}

#[derive(Debug)]
enum CallState {
    Failed(Option<Error>),
    Waiting {
        rx: oneshot::Receiver<Result<Bytes, Error>>,
        handle: Arc<Handle>,
        token: u64,
    },
    Done,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("local", &self.inner.local)
            .finish()
    }
}

impl Call {
    fn start(handle: &Arc<Handle>, dest: SocketAddr, body: Bytes) -> Call {
        let span = tracing::debug_span!("homa_call", %dest, len = body.len());
        let state = match handle.check_length(body.len()) {
            Err(e) => CallState::Failed(Some(e)),
            Ok(()) => {
                let token = handle.next_token();
                let (done, rx) = oneshot::channel();
                match handle.send(Command::Call {
                    dest,
                    body,
                    token,
                    done,
                }) {
                    Ok(()) => CallState::Waiting {
                        rx,
                        handle: handle.clone(),
                        token,
                    },
                    Err(e) => CallState::Failed(Some(e)),
                }
            }
        };
        Call { state, span }
    }
}

impl Future for Call {
    type Output = Result<Bytes, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let _enter = this.span.enter();
        let out = match &mut this.state {
            CallState::Failed(e) => e.take().map_or(Err(Error::Shutdown), Err),
            CallState::Waiting { rx, .. } => match Pin::new(rx).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(r)) => r,
                Poll::Ready(Err(_)) => Err(Error::Shutdown),
            },
            CallState::Done => panic!("Call polled after completion"),
        };
        tracing::trace!(ok = out.is_ok(), "call done");
        this.state = CallState::Done;
        Poll::Ready(out)
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if let CallState::Waiting { handle, token, .. } = &self.state {
            let _ = handle.send(Command::Cancel { token: *token });
        }
    }
}

/// `client.call(dest, body)` as a service, so tower middleware can wrap it.
///
/// ```no_run
/// # async fn f(client: homa_tokio::Client, dest: std::net::SocketAddr) -> Result<(), tower::BoxError> {
/// use tower::{ServiceBuilder, ServiceExt};
/// use std::time::Duration;
/// let svc = ServiceBuilder::new()
///     .timeout(Duration::from_secs(1))
///     .concurrency_limit(64)
///     .service(client);
/// let response = svc.oneshot((dest, "hi".into())).await?;
/// # Ok(()) }
/// ```
impl tower::Service<(SocketAddr, Bytes)> for Client {
    type Response = Bytes;
    type Error = Error;
    type Future = Call;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // The engine bounds RPCs itself (and answers `Refused` at its
        // limit); add tower's concurrency limit for back-pressure.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, (dest, body): (SocketAddr, Bytes)) -> Call {
        Client::call(self, dest, body)
    }
}
