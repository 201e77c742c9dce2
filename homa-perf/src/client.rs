//! The client role: measure the idle RTT per size, then run the load
//! (warm-up, measured window), collect server CPU over the control channel,
//! and summarise.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinSet;

use crate::asyncproto::AsyncTransport;
use crate::cli::{ClientArgs, Protocol};
use crate::dpdk;
use crate::load::{response_size, Mode, Rng, Sizes};
use crate::stats::{self, bucket_of, IdleCurve, Recorder, RunResult, StallMeter};
use crate::udp;

/// After the measured window, wait this long for outstanding RPCs.
const GRACE: Duration = Duration::from_secs(3);

/// One stream of RPCs: its sizes and how they are issued.
#[derive(Clone)]
struct Flow {
    sizes: Sizes,
    mode: Mode,
}

/// The sizes the idle RTT is measured at: each fixed size, or the median
/// size of each bucket a distribution reaches.
fn idle_sizes(flows: &[Flow], seed: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for f in flows {
        match &f.sizes {
            Sizes::Fixed(n) => out.push(*n),
            Sizes::Dist(_) => {
                let mut rng = Rng::new(seed ^ 0x1d1e);
                let mut per: Vec<Vec<u64>> = vec![Vec::new(); stats::BUCKETS.len()];
                for _ in 0..50_000 {
                    let s = f.sizes.sample(&mut rng);
                    per[bucket_of(s)].push(s);
                }
                for mut b in per.into_iter().filter(|b| !b.is_empty()) {
                    b.sort_unstable();
                    out.push(b[b.len() / 2]);
                    out.push(*b.last().expect("non-empty"));
                }
                out.push(f.sizes.max());
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn idle_budget(size: u64, n: usize) -> (usize, Duration) {
    // Fewer repetitions for big messages.
    let n = if size > 100_000 { n.min(60) } else { n };
    (n, Duration::from_millis(400))
}

fn median(mut v: Vec<u64>) -> f64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0) as f64
}

/// The control channel to one server.
struct Control {
    stream: BufReader<TcpStream>,
}

impl Control {
    fn connect(addr: SocketAddr) -> Result<Control, String> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("control {addr}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        Ok(Control {
            stream: BufReader::new(s),
        })
    }

    fn ask(&mut self, cmd: &str) -> Option<String> {
        self.stream
            .get_mut()
            .write_all(format!("{cmd}\n").as_bytes())
            .ok()?;
        let mut line = String::new();
        self.stream.read_line(&mut line).ok()?;
        Some(line.trim().to_string())
    }
}

/// Drives the phases from its own thread: the progress bar, the client's
/// CPU snapshots and the servers' CPU accounting.
struct Phases {
    thread: std::thread::JoinHandle<(f64, Option<f64>, Vec<String>)>,
}

impl Phases {
    fn start(
        rec: Arc<Recorder>,
        warm_end: Instant,
        end: Instant,
        mut controls: Vec<Control>,
        progress: bool,
    ) -> Phases {
        let thread = std::thread::spawn(move || {
            let total = end.saturating_duration_since(rec.t0);
            let bar = if progress {
                let b = ProgressBar::new(total.as_millis() as u64);
                b.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>10} [{bar:30}] {elapsed:>3}/{duration:3} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                b
            } else {
                ProgressBar::hidden()
            };
            let mut cpu0 = None;
            let mut last = (Instant::now(), 0u64);
            let cpu = loop {
                let now = Instant::now();
                if cpu0.is_none() && now >= warm_end {
                    cpu0 = Some(stats::cpu_seconds());
                    for c in &mut controls {
                        let _ = c.ask("START");
                    }
                }
                if now >= end {
                    break stats::cpu_seconds() - cpu0.unwrap_or(0.0);
                }
                let done = rec.done.load(Ordering::Relaxed);
                let dt = now.duration_since(last.0).as_secs_f64();
                if dt >= 0.5 {
                    let rps = (done - last.1) as f64 / dt;
                    bar.set_message(format!("{done} RPCs, {rps:.0}/s"));
                    last = (now, done);
                }
                bar.set_prefix(if now < warm_end {
                    "warm-up"
                } else {
                    "measuring"
                });
                bar.set_position(now.saturating_duration_since(rec.t0).as_millis() as u64);
                let wake = if now < warm_end { warm_end } else { end };
                std::thread::sleep(
                    wake.saturating_duration_since(now)
                        .min(Duration::from_millis(100)),
                );
            };
            let mut server = Some(0.0);
            let mut engines = Vec::new();
            let n = controls.len();
            for (i, c) in controls.iter_mut().enumerate() {
                let v = c
                    .ask("STOP")
                    .and_then(|l| l.strip_prefix("cpu ").and_then(|v| v.parse::<f64>().ok()));
                server = match (server, v) {
                    (Some(a), Some(b)) => Some(a + b),
                    _ => None,
                };
                // The server's Homa engine (none for TCP and the udp
                // floors): its RESENDs and drops are the other half of the
                // client's.
                let line = c.ask("ENGINE");
                if let Some(e) = line.as_deref().and_then(|l| l.strip_prefix("engine ")) {
                    if e != "none" {
                        let who = if n > 1 {
                            format!("server {} engine", i + 1)
                        } else {
                            "server engine".to_string()
                        };
                        engines.push(format!("{who}: {e}"));
                    }
                }
            }
            if controls.is_empty() {
                server = None;
            }
            bar.finish_and_clear();
            (cpu, server, engines)
        });
        Phases { thread }
    }

    /// The client's and the servers' CPU seconds, and the servers' engine
    /// counters.
    fn join(self) -> (f64, Option<f64>, Vec<String>) {
        self.thread.join().unwrap_or((0.0, None, Vec::new()))
    }
}

/// Run the client role; returns the summarised result.
pub fn run(args: &ClientArgs) -> Result<RunResult, String> {
    args.protocol.available()?;
    let load = &args.load;
    let mut flows = vec![Flow {
        sizes: Sizes::new(&load.sizes),
        mode: load.mode(),
    }];
    if let Some(bg) = &load.bg_sizes {
        flows.push(Flow {
            sizes: Sizes::new(bg),
            mode: Mode::Closed(load.bg_outstanding.max(1)),
        });
    }
    if args.protocol.is_udp() {
        for f in &flows {
            udp::check_single_packet(&f.sizes, load.response)?;
        }
        if flows.len() > 1 {
            return Err("udp and udp-spin do not support a background flow".into());
        }
    }
    let controls = args
        .controls
        .iter()
        .map(|a| Control::connect(*a))
        .collect::<Result<Vec<_>, _>>()?;

    let idle_points = idle_sizes(&flows, load.seed);
    let warmup = Duration::from_secs_f64(load.warmup.max(0.0));
    let duration = Duration::from_secs_f64(load.duration.max(0.01));
    let progress = !args.output.no_progress;

    let mut notes = Vec::new();
    let (idle, rec, phases) = if args.protocol.is_udp() {
        let spin = args.protocol == Protocol::UdpSpin;
        let mut pp = udp::PingPong::new(args.servers[0], spin, load.response)
            .map_err(|e| format!("udp socket: {e}"))?;
        let mut points = Vec::new();
        for &size in &idle_points {
            let resp = response_size(load.response, size);
            let (n, budget) = idle_budget(size, load.idle_rpcs);
            for _ in 0..5 {
                pp.call(args.servers[0], size, resp)?;
            }
            let t = Instant::now();
            let mut lat = Vec::new();
            while lat.len() < n && t.elapsed() < budget {
                let s = Instant::now();
                pp.call(args.servers[0], size, resp)?;
                lat.push(s.elapsed().as_nanos() as u64);
            }
            points.push((size, median(lat)));
        }
        drop(pp);
        let rec = Arc::new(Recorder::new());
        let (warm_end, end) = (rec.t0 + warmup, rec.t0 + warmup + duration);
        let phases = Phases::start(rec.clone(), warm_end, end, controls, progress);
        udp::run(
            udp::UdpLoad {
                servers: args.servers.clone(),
                spin,
                sizes: flows[0].sizes.clone(),
                response: load.response,
                mode: flows[0].mode,
                stop: end,
                max_outstanding: load.max_outstanding,
                seed: load.seed,
            },
            &rec,
        )?;
        (IdleCurve::new(points), rec, phases)
    } else {
        // homa-dpdk: the DPDK stack lives for the whole run, outside the
        // runtime (its polling thread runs the engine).
        let endpoint = match args.protocol {
            Protocol::HomaDpdk => Some(dpdk::Endpoint::start(
                &args.dpdk,
                dpdk::Side::Client,
                args.transport.homa_config(Protocol::HomaDpdk),
            )?),
            _ => None,
        };
        let homa_client = endpoint.as_ref().map(|e| e.client());
        let r = args.transport.runtime.build().and_then(|rt| {
            // On a spawned task, not as the block_on future (see server.rs).
            let a = args.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    run_async(
                        &a,
                        homa_client,
                        flows,
                        idle_points,
                        controls,
                        warmup,
                        duration,
                    )
                    .await
                })
                .await
                .map_err(|e| e.to_string())?
            })
        });
        if let Some(e) = endpoint {
            if r.is_ok() {
                notes.push(e.notes());
            }
            e.shutdown();
        }
        let (idle, rec, phases, note) = r?;
        notes.extend(note);
        (idle, rec, phases)
    };

    let (client_cpu, server_cpu, engines) = phases.join();
    notes.extend(engines);
    let (samples, errors) = rec.take();
    let from = warmup.as_nanos() as u64;
    let to = (warmup + duration).as_nanos() as u64;
    let mut result = stats::summarize(
        args.protocol.name(),
        load.describe(),
        &samples,
        &errors,
        rec.skipped.load(Ordering::Relaxed),
        from,
        to,
        &idle,
        client_cpu,
        server_cpu,
    );
    result.notes = notes;
    (result.stalls, result.stall_ms) = rec.stalls(from, to);
    if let Some(path) = &args.samples_file {
        let raw = stats::RawRun::new(&samples, &errors, from, to, &idle);
        let text = serde_json::to_string(&raw).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(result)
}

/// The tokio protocols' run. `homa_client` is homa-dpdk's client (on the
/// endpoint the caller started).
async fn run_async(
    args: &ClientArgs,
    homa_client: Option<homa_tokio::Client>,
    flows: Vec<Flow>,
    idle_points: Vec<u64>,
    controls: Vec<Control>,
    warmup: Duration,
    duration: Duration,
) -> Result<(IdleCurve, Arc<Recorder>, Phases, Option<String>), String> {
    let load = &args.load;
    let t = match args.protocol {
        Protocol::Homa | Protocol::HomaSpin => {
            AsyncTransport::homa(
                args.servers.clone(),
                load.response,
                args.transport.homa_config(args.protocol),
            )
            .await?
        }
        Protocol::Tcp => {
            AsyncTransport::tcp(args.servers.clone(), load.response, args.transport.tcp_pool)
                .await?
        }
        Protocol::HomaDpdk => AsyncTransport::homa_on(
            homa_client.ok_or("homa-dpdk: no DPDK endpoint")?,
            args.servers.clone(),
            load.response,
        ),
        Protocol::Udp | Protocol::UdpSpin => unreachable!("udp runs on threads"),
    };
    let t = Arc::new(t);
    if args.protocol == Protocol::HomaDpdk {
        // The first RPC waits for the link and for ARP; should a packet be
        // lost on the way, the engine may time the RPC out. Retry it a few
        // times before the measurements start.
        let (size, resp) = (100, response_size(load.response, 100));
        let mut attempts = 5;
        while let Err(e) = t.call(0, size, resp).await {
            attempts -= 1;
            if attempts == 0 {
                return Err(format!(
                    "homa-dpdk: no answer from {}: {e}",
                    args.servers[0]
                ));
            }
            eprintln!("homa-dpdk: first RPC failed ({e}); retrying");
        }
    }

    // Idle RTT, one RPC at a time.
    let mut points = Vec::new();
    for &size in &idle_points {
        let resp = response_size(load.response, size);
        let (n, budget) = idle_budget(size, load.idle_rpcs);
        for _ in 0..5 {
            t.call(0, size, resp).await?;
        }
        let start = Instant::now();
        let mut lat = Vec::new();
        while lat.len() < n && start.elapsed() < budget {
            let s = Instant::now();
            t.call(0, size, resp).await?;
            lat.push(s.elapsed().as_nanos() as u64);
        }
        points.push((size, median(lat)));
    }

    let rec = Arc::new(Recorder::new());
    let (warm_end, end) = (rec.t0 + warmup, rec.t0 + warmup + duration);
    let phases = Phases::start(
        rec.clone(),
        warm_end,
        end,
        controls,
        !args.output.no_progress,
    );
    let mut tasks = JoinSet::new();
    for (fi, flow) in flows.into_iter().enumerate() {
        let seed = load.seed.wrapping_add(1_000_003 * fi as u64);
        match flow.mode {
            Mode::Closed(n) => {
                for i in 0..n {
                    let (t, rec, sizes) = (t.clone(), rec.clone(), flow.sizes.clone());
                    let response = load.response;
                    let mut rng = Rng::new(seed.wrapping_add(i as u64 * 7919));
                    tasks.spawn(async move {
                        while Instant::now() < end {
                            let size = sizes.sample(&mut rng);
                            let resp = response_size(response, size);
                            let server = rng.below(t.servers());
                            let start = Instant::now();
                            match t.call(server, size, resp).await {
                                Ok(()) => rec.ok(size, resp, start),
                                Err(e) => rec.err(start, format!("{size}-byte RPC: {e}")),
                            }
                        }
                    });
                }
            }
            Mode::Open(rate) => {
                let (t, rec, sizes) = (t.clone(), rec.clone(), flow.sizes.clone());
                let response = load.response;
                let max = load.max_outstanding;
                tasks.spawn(open_loop(t, rec, sizes, response, rate, end, max, seed));
            }
        }
    }
    let deadline = end + GRACE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tasks.join_next()).await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                tasks.abort_all();
                break;
            }
        }
    }
    let notes = t.notes().await;
    Ok((IdleCurve::new(points), rec, phases, notes))
}

/// Poisson arrivals at `rate` until `end`; each RPC on its own task.
#[allow(clippy::too_many_arguments)]
async fn open_loop(
    t: Arc<AsyncTransport>,
    rec: Arc<Recorder>,
    sizes: Sizes,
    response: crate::load::ResponseSpec,
    rate: f64,
    end: Instant,
    max: usize,
    seed: u64,
) {
    // Arrival times come from a thread that sleeps between them (the
    // kernel's timers are precise to tens of µs; tokio's to a millisecond),
    // so the load generator does not spin a core that the protocol under
    // test could use. Arrivals that fall due together are issued together.
    //
    // Each RPC's time counts from the moment the clock thread issues it,
    // not from when its task first runs: an open-loop load must not let
    // the client's own backlog (a runtime busy with earlier RPCs' packets)
    // hide from the latency it causes. The clock thread's lateness waking
    // up (timer slack) is the load generator's, not the transport's, and is
    // not counted.
    //
    // How late the thread issues arrivals is recorded, though: a thread
    // that did not run for half a millisecond marks a stall (`StallMeter`),
    // reported beside the run.
    let (tx, mut due) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let clock_rec = rec.clone();
    let clock = std::thread::spawn(move || {
        let mut rng = Rng::new(seed ^ 0xa11);
        let mut meter = StallMeter::default();
        let mut next = Instant::now();
        while next < end {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
                continue;
            }
            meter.arrival(&clock_rec, next, now);
            if tx.send(now).is_err() {
                return;
            }
            next += rng.exp_gap(rate);
        }
    });
    let mut rng = Rng::new(seed);
    let mut rpcs = JoinSet::new();
    while let Some(start) = due.recv().await {
        while rpcs.try_join_next().is_some() {}
        if rpcs.len() >= max {
            rec.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let size = sizes.sample(&mut rng);
        let resp = response_size(response, size);
        let server = rng.below(t.servers());
        let (t, rec) = (t.clone(), rec.clone());
        rpcs.spawn(async move {
            match t.call(server, size, resp).await {
                Ok(()) => rec.ok(size, resp, start),
                Err(e) => rec.err(start, format!("{size}-byte RPC: {e}")),
            }
        });
    }
    let _ = clock.join();
    while rpcs.join_next().await.is_some() {}
}
