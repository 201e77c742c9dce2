//! The polling thread: pinned to a core, it runs receive and transmit
//! bursts on its ports and the Homa engine of each, and serves the
//! `Socket`s of those engines through lock-free queues.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use homa_tokio::host::EngineHost;
use homa_tokio::{Instant, Socket, SocketConfig};

use crate::error::Error;
use crate::port::{stats_of, Port};
use crate::stats::{Counters, PortStats};

/// How the polling thread runs.
///
/// ```
/// let mut cfg = homa_dpdk::PollerConfig::default();
/// cfg.core = Some(1);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PollerConfig {
    /// The CPU to pin the polling thread to. `None` picks the last CPU the
    /// process may run on (tokio's threads tend to start on the first).
    /// If pinning fails (a CPU set of one, a container), the thread runs
    /// unpinned and says so in a log message.
    pub core: Option<usize>,
    /// When a round finds no work, yield the CPU (`sched_yield`) before the
    /// next. Costs a system call per idle round, but on a machine with
    /// fewer cores than busy threads it lets the application's threads run
    /// promptly. On a dedicated core set it to `false`. Default `true`.
    pub yield_when_idle: bool,
    /// Name of the thread. Default `"homa-dpdk"`.
    pub name: String,
}

impl Default for PollerConfig {
    fn default() -> Self {
        PollerConfig {
            core: None,
            yield_when_idle: true,
            name: "homa-dpdk".into(),
        }
    }
}

/// One port and the engine it carries.
struct Station {
    port: Port,
    host: EngineHost,
    done: bool,
}

/// The polling thread and its ports. [`spawn`](Poller::spawn) it with the
/// ports to run; it returns one [`Socket`] per port, from which
/// [`Client`](homa_tokio::Client)s and [`Server`](homa_tokio::Server)s are
/// made as on any datapath.
///
/// The thread stops when [`shutdown`](Poller::shutdown) is called (or the
/// `Poller` dropped), or by itself once every socket of every port is gone
/// and the engines have sent what they owed. On the way out it closes the
/// ports; EAL is released when the last [`Dpdk`](crate::Dpdk) reference
/// goes.
pub struct Poller {
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    ports: Vec<(u16, Arc<Counters>, SocketAddr)>,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("ports", &self.ports.iter().map(|p| p.2).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Poller {
    /// Start the polling thread on `ports`, with one Homa engine per port
    /// configured by `socket_config` (its packet size and link rate come
    /// from the port; its `udp` and `busy_poll` fields do not apply: the
    /// polling thread always spins). Returns the poller and the sockets, in
    /// port order. No tokio runtime is needed to call it.
    ///
    /// # Errors
    /// [`Error::Homa`] for an invalid engine configuration, [`Error::Io`]
    /// if the thread cannot be spawned.
    pub fn spawn(
        config: PollerConfig,
        ports: Vec<Port>,
        socket_config: SocketConfig,
    ) -> Result<(Poller, Vec<Socket>), Error> {
        let mut stations = Vec::with_capacity(ports.len());
        let mut sockets = Vec::with_capacity(ports.len());
        let mut info = Vec::with_capacity(ports.len());
        for port in ports {
            let (host, socket) = EngineHost::new(
                port.local_addr(),
                port.max_packet_size(),
                port.link_rate_bps(),
                socket_config.clone(),
            )?;
            info.push((port.id(), port.counters(), port.local_addr()));
            stations.push(Station {
                port,
                host,
                done: false,
            });
            sockets.push(socket);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let core = config.core.or_else(last_allowed_cpu);
        let yield_when_idle = config.yield_when_idle;
        let thread = std::thread::Builder::new()
            .name(config.name)
            .spawn(move || run(stations, stop2, core, yield_when_idle))?;
        Ok((
            Poller {
                thread: Some(thread),
                stop,
                ports: info,
            },
            sockets,
        ))
    }

    /// The statistics of the `i`th port (in the order given to
    /// [`spawn`](Self::spawn)), or `None` if there is no such port.
    pub fn stats(&self, i: usize) -> Option<PortStats> {
        self.ports.get(i).map(|(id, c, _)| stats_of(*id, c))
    }

    /// Whether the thread has exited.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stop: every endpoint closes (calls in flight fail with
    /// [`Shutdown`](homa_tokio::Error::Shutdown)), sends the responses it
    /// already owes (for at most the engine's timeout), then the thread
    /// closes the ports and exits. Blocks until it has.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("DPDK polling thread panicked");
            }
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn last_allowed_cpu() -> Option<usize> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()?;
    (0..nix::sched::CpuSet::count())
        .rev()
        .find(|&c| set.is_set(c).unwrap_or(false))
}

fn pin(core: Option<usize>) {
    let Some(core) = core else { return };
    let mut set = nix::sched::CpuSet::new();
    let r = set
        .set(core)
        .and_then(|_| nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set));
    match r {
        Ok(()) => tracing::debug!(core, "polling thread pinned"),
        Err(e) => {
            tracing::warn!(core, error = %e, "cannot pin the polling thread; running unpinned")
        }
    }
}

/// Transmits taken from an engine per round, so that receiving keeps up.
const TX_PER_ROUND: usize = 128;

fn run(mut stations: Vec<Station>, stop: Arc<AtomicBool>, core: Option<usize>, yield_idle: bool) {
    pin(core);
    let registered = crate::ffi::thread_register();
    let start = std::time::Instant::now();
    let clock = |t: std::time::Instant| {
        Instant::from_nanos(u64::try_from(t.duration_since(start).as_nanos()).unwrap_or(u64::MAX))
    };
    let mut stopping = false;
    loop {
        let wall = std::time::Instant::now();
        let now = clock(wall);
        if !stopping && stop.load(Ordering::Acquire) {
            stopping = true;
            for s in &mut stations {
                s.host.close(now);
            }
        }
        let mut progress = false;
        for s in stations.iter_mut().filter(|s| !s.done) {
            // 1. packets in, straight into the engine
            let host = &mut s.host;
            let got = s
                .port
                .recv(&mut |from, data| host.endpoint().handle_packet(now, from, data));
            progress |= got > 0;
            // 2. commands from the sockets, timers, events to the sockets
            progress |= s.host.process(now);
            // 3. packets out
            for _ in 0..TX_PER_ROUND {
                match s.host.endpoint().poll_transmit(now) {
                    Some(t) => s.port.send(wall, &t),
                    None => break,
                }
            }
            s.port.poll_arp(wall);
            progress |= s.port.flush();
            if s.host.finished(now, s.port.tx_idle()) {
                s.done = true;
            }
        }
        if stations.iter().all(|s| s.done) {
            break;
        }
        if !progress {
            // Idle: the engines' deferred work, off the packets' path.
            for s in stations.iter_mut().filter(|s| !s.done) {
                progress |= s.host.reap(now);
            }
        }
        if !progress {
            if yield_idle {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
    // Give the last frames a moment to leave, then close the ports.
    let end = std::time::Instant::now() + Duration::from_millis(10);
    while stations.iter().any(|s| !s.port.tx_idle()) && std::time::Instant::now() < end {
        for s in &mut stations {
            s.port.flush();
        }
    }
    drop(stations);
    if registered {
        crate::ffi::thread_unregister();
    }
    tracing::debug!("DPDK polling thread exits");
}
