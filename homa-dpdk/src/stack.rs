//! [`Stack`]: EAL, one port and its polling thread in one value, for the
//! common case of one endpoint per process.

use std::sync::Arc;

use homa_tokio::{Client, Server, Socket, SocketConfig};

use crate::eal::{Dpdk, EalConfig};
use crate::error::Error;
use crate::poller::{Poller, PollerConfig};
use crate::port::{Port, PortConfig};
use crate::stats::PortStats;
use crate::wire::MacAddr;

/// A whole DPDK endpoint: EAL started, one port open, the polling thread
/// running its engine, and the [`Socket`] to use it. Dropping it (or
/// [`shutdown`](Stack::shutdown)) stops the thread, closes the port,
/// cleans EAL up and removes its runtime directory.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use homa_dpdk::{Device, EalConfig, PollerConfig, PortConfig, Stack};
/// let mut eal = EalConfig::default();
/// eal.vdevs.push("net_memif0,role=client,socket=/run/homa.sock,socket-abstract=no".into());
/// let port = PortConfig::new(Device::Name("net_memif0".into()), "10.0.0.2".parse()?, 4000);
/// let stack = Stack::start(&eal, port, PollerConfig::default(), Default::default())?;
/// let reply = stack.client().call("10.0.0.1:4000".parse()?, "hi".into()).await?;
/// stack.shutdown();
/// # Ok(()) }
/// ```
pub struct Stack {
    socket: Option<Socket>,
    poller: Option<Poller>,
    mac: MacAddr,
    dpdk: Option<Arc<Dpdk>>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("socket", &self.socket)
            .field("mac", &self.mac.to_string())
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Start EAL with `eal`, open `port`, and start the polling thread
    /// with an engine configured by `socket`. Set
    /// [`PortConfig::link_wait`] to wait for the link first (a memif client).
    ///
    /// # Errors
    /// As [`Dpdk::init`], [`Port::open`] and [`Poller::spawn`].
    pub fn start(
        eal: &EalConfig,
        port: PortConfig,
        poller: PollerConfig,
        socket: SocketConfig,
    ) -> Result<Stack, Error> {
        let dpdk = Dpdk::init(eal)?;
        let port = Port::open(&dpdk, port)?;
        let mac = port.mac();
        let (poller, mut sockets) = Poller::spawn(poller, vec![port], socket)?;
        Ok(Stack {
            socket: sockets.pop(),
            poller: Some(poller),
            mac,
            dpdk: Some(dpdk),
        })
    }

    /// The endpoint's socket.
    pub fn socket(&self) -> &Socket {
        self.socket.as_ref().expect("socket present until drop")
    }

    /// A client on the endpoint.
    pub fn client(&self) -> Client {
        Client::from_socket(self.socket().clone())
    }

    /// A server on the endpoint (give the port a Homa server port,
    /// 1–32767).
    pub fn server(&self) -> Server {
        Server::from_socket(self.socket().clone())
    }

    /// Our MAC address.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The port's statistics.
    pub fn stats(&self) -> PortStats {
        self.poller
            .as_ref()
            .and_then(|p| p.stats(0))
            .unwrap_or_default()
    }

    /// Stop the polling thread (the endpoint closes: calls in flight fail,
    /// owed responses are sent), close the port, release EAL.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.socket = None;
        if let Some(p) = self.poller.take() {
            p.shutdown();
        }
        // EAL goes with the last reference (normally this one).
        self.dpdk = None;
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
    }
}
