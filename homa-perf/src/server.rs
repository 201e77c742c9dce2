//! The server role: serve one protocol, and a control channel (TCP, line
//! based) over which clients start and stop the server's CPU accounting and
//! read its Homa engine's counters: `START` → `ok`; `STOP` → `cpu <seconds
//! used since START>`; `ENGINE` → `engine <counters>`, or `engine none`
//! for a protocol without an engine (or before the engine is up).
//!
//! The CPU time is the whole process's (`getrusage`), so for homa-dpdk it
//! includes the polling thread's. A homa-dpdk server stops cleanly on
//! SIGTERM or SIGINT (it must release its DPDK port and EAL); the others
//! run until killed.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{mpsc, Arc, OnceLock};

use homa_tokio::Server;

use crate::asyncproto;
use crate::cli::{Protocol, ServerArgs};
use crate::dpdk;
use crate::stats::cpu_seconds;
use crate::udp;

/// Reads the Homa engine's counters for `ENGINE`, once the server is up.
type EngineReport = Arc<OnceLock<Box<dyn Fn() -> Option<String> + Send + Sync>>>;

/// Let `ENGINE` answer with `server`'s counters. Called on the runtime the
/// server's driver runs on; the control thread then waits for the answer
/// with that runtime's handle (the driver, driven by the runtime's own
/// thread, answers).
fn report_engine(report: &EngineReport, server: &Server) {
    let (server, rt) = (server.clone(), tokio::runtime::Handle::current());
    let _ = report.set(Box::new(move || {
        let m = rt.block_on(server.metrics()).ok()?;
        Some(asyncproto::engine_line(&m))
    }));
}

fn control(listener: TcpListener, engine: EngineReport) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let engine = engine.clone();
        std::thread::spawn(move || {
            let Ok(w) = conn.try_clone() else { return };
            let mut w = w;
            let mut start = cpu_seconds();
            for line in BufReader::new(conn).lines() {
                let Ok(line) = line else { return };
                let reply = match line.trim() {
                    "START" => {
                        start = cpu_seconds();
                        "ok".to_string()
                    }
                    "STOP" => format!("cpu {:.6}", cpu_seconds() - start),
                    "ENGINE" => match engine.get().and_then(|f| f()) {
                        Some(line) => format!("engine {line}"),
                        None => "engine none".to_string(),
                    },
                    other => format!("error unknown command {other:?}"),
                };
                if writeln!(w, "{reply}").is_err() {
                    return;
                }
            }
        });
    }
}

/// Run the server role until the process is killed (homa-dpdk: until
/// SIGTERM or SIGINT, then shut the DPDK stack down).
pub fn run(args: &ServerArgs) -> Result<(), String> {
    args.protocol.available()?;
    let listener = TcpListener::bind(args.control)
        .map_err(|e| format!("control bind {}: {e}", args.control))?;
    let control_addr = listener.local_addr().map_err(|e| e.to_string())?;
    let engine = EngineReport::default();
    std::thread::spawn({
        let engine = engine.clone();
        move || control(listener, engine)
    });

    let (tx, rx) = mpsc::channel::<SocketAddr>();
    let announce = std::thread::spawn(move || {
        if let Ok(addr) = rx.recv() {
            println!("listening {addr} control {control_addr}");
            let _ = std::io::stdout().flush();
        }
    });
    let ready = move |a: SocketAddr| {
        let _ = tx.send(a);
    };
    let bind = args.bind;
    let result = match args.protocol {
        Protocol::Udp | Protocol::UdpSpin => {
            udp::server(bind, args.protocol == Protocol::UdpSpin, ready)
        }
        Protocol::HomaDpdk => {
            let config = args.transport.homa_config(Protocol::HomaDpdk);
            let endpoint = dpdk::Endpoint::start(&args.dpdk, dpdk::Side::Server(bind), config)?;
            let r = args.transport.runtime.build().and_then(|rt| {
                let (server, addr) = (endpoint.server(), endpoint.local_addr());
                rt.block_on(async { report_engine(&engine, &server) });
                rt.block_on(async move {
                    tokio::spawn(serve_until_signalled(server, addr, ready))
                        .await
                        .map_err(|e| e.to_string())?
                })
            });
            endpoint.shutdown();
            r
        }
        p => {
            let rt = args.transport.runtime.build()?;
            let config = args.transport.homa_config(p);
            // The server loop runs as a spawned task, not as the block_on
            // future itself: on the current-thread runtime, waking the
            // block_on future costs an extra epoll_wait (and sometimes an
            // eventfd write) per request.
            rt.block_on(async move {
                tokio::spawn(async move {
                    if p == Protocol::Tcp {
                        asyncproto::tcp_server(bind, ready).await
                    } else {
                        asyncproto::homa_server(bind, config, |addr, server| {
                            report_engine(&engine, server);
                            ready(addr)
                        })
                        .await
                    }
                })
                .await
                .map_err(|e| e.to_string())?
            })
        }
    };
    let _ = announce.join();
    result
}

/// Serve until SIGTERM or SIGINT; calls `ready` with `addr` once the
/// signals are caught (so that a signal never kills the process before the
/// DPDK stack is shut down).
async fn serve_until_signalled(
    server: homa_tokio::Server,
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT: {e}"))?;
    let stop = server.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        stop.shutdown();
    });
    ready(addr);
    asyncproto::homa_serve(server).await;
    Ok(())
}
