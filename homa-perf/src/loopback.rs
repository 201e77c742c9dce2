//! `homa-perf loopback`: server and client as separate processes of this
//! binary on this machine, the protocols in turn (in rounds, pooled); the
//! preset comparisons of issue 6 §5 and their verdicts.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{DpdkArgs, LoadArgs, LoopbackArgs, Protocol, Scenario, TransportArgs};
use crate::load::{ResponseSpec, SizeSpec, Sizes};
use crate::report;
use crate::stats::{self, RawRun, RunResult};
use crate::udp;

/// Default offered load of the W3 preset, Gbit/s (requests + responses).
/// At 1.5 the processes sometimes fall more than Homa's 100 ms timeout
/// behind and RPCs fail; at 1.2 no run had an error (see the README).
pub const W3_GBPS: f64 = 1.2;
/// Default offered load of the W4 preset, Gbit/s (requests + responses).
pub const W4_GBPS: f64 = 4.0;

/// homa-dpdk in `loopback`: the server's and the client's addresses on
/// their ends of the `net_memif` pair (a private subnet: the kernel never
/// sees it).
const DPDK_SERVER: &str = "10.77.0.1:4000";
const DPDK_CLIENT_IP: &str = "10.77.0.2";

/// Stops the server child when dropped: SIGTERM (a homa-dpdk server then
/// shuts its DPDK stack down cleanly; the others just end), SIGKILL if it
/// has not exited within 10 s.
struct ServerChild(Child);

impl Drop for ServerChild {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        if let Ok(pid) = i32::try_from(self.0.id()) {
            if kill(Pid::from_raw(pid), Signal::SIGTERM).is_ok() {
                let end = Instant::now() + Duration::from_secs(10);
                while Instant::now() < end {
                    if let Ok(Some(_)) = self.0.try_wait() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A homa-dpdk pair's `--dpdk-*` options: one `net_memif` socket file,
/// the server's end `role=server`, the client's `role=client`; the
/// client's polling thread on CPU 0, the server's on the last CPU (the
/// poller's default), so that the two do not share a core.
fn dpdk_pair(sock: &Path) -> (DpdkArgs, DpdkArgs) {
    let vdev = |role: &str| {
        format!(
            "net_memif0,role={role},id=0,socket={},socket-abstract=no",
            sock.display()
        )
    };
    let server = DpdkArgs {
        vdevs: vec![vdev("server")],
        ..DpdkArgs::default()
    };
    let client = DpdkArgs {
        vdevs: vec![vdev("client")],
        ip: Some(DPDK_CLIENT_IP.parse().expect("address")),
        core: Some(0),
        ..DpdkArgs::default()
    };
    (server, client)
}

/// Removes a file when dropped (the memif socket, the client's result and
/// samples files).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))
}

/// One protocol: start its server, run a client against it, stop the server.
/// With `raw`, the client's raw samples come back too.
fn run_one(
    p: Protocol,
    load: &LoadArgs,
    transport: &TransportArgs,
    no_progress: bool,
    raw: bool,
) -> Result<(RunResult, Option<RawRun>), String> {
    let exe = exe()?;
    // homa-dpdk: the memif socket (removed after the run, after the
    // server, which is dropped first).
    let (memif, dpdk) = if p == Protocol::HomaDpdk {
        let sock = std::env::temp_dir().join(format!("homa-perf-{}.memif", std::process::id()));
        let _ = std::fs::remove_file(&sock);
        let pair = dpdk_pair(&sock);
        (Some(RemoveOnDrop(sock)), Some(pair))
    } else {
        (None, None)
    };
    let bind = if dpdk.is_some() {
        DPDK_SERVER
    } else {
        "127.0.0.1:0"
    };
    let mut server = Command::new(&exe);
    server
        .args(["server", "--protocol", p.name()])
        .args(["--bind", bind, "--control", "127.0.0.1:0"])
        .args(transport.to_args())
        .args(dpdk.as_ref().map(|d| d.0.to_args()).unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = ServerChild(server.spawn().map_err(|e| format!("spawn server: {e}"))?);
    let out = child.0.stdout.take().ok_or("server stdout")?;
    // The announcement, past anything else the server may print first
    // (DPDK's log goes to standard output).
    let mut out = BufReader::new(out);
    let (data, control) = loop {
        let mut line = String::new();
        let n = out
            .read_line(&mut line)
            .map_err(|e| format!("server: {e}"))?;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["listening", d, "control", c] => break (d.to_string(), c.to_string()),
            _ if n == 0 => return Err(format!("{} server did not start", p.name())),
            _ => eprint!("{} server: {line}", p.name()),
        }
    };

    let result = std::env::temp_dir().join(format!(
        "homa-perf-{}-{}.json",
        std::process::id(),
        p.name()
    ));
    let samples = raw.then(|| RemoveOnDrop(result.with_extension("samples.json")));
    let mut client = Command::new(&exe);
    client
        .args(["client", "--protocol", p.name()])
        .args(["--server", &data, "--control", &control])
        .args(load.to_args())
        .args(transport.to_args())
        .args(dpdk.as_ref().map(|d| d.1.to_args()).unwrap_or_default())
        .arg("--result-file")
        .arg(&result);
    if let Some(f) = &samples {
        client.arg("--samples-file").arg(&f.0);
    }
    if no_progress {
        client.arg("--no-progress");
    }
    let result = RemoveOnDrop(result);
    let status = client.status().map_err(|e| format!("spawn client: {e}"))?;
    drop(child);
    drop(memif);
    if !status.success() {
        return Err(format!("{} client failed ({status})", p.name()));
    }
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| format!("client result {}: {e}", path.display()))
    };
    let run = serde_json::from_str(&read(&result.0)?).map_err(|e| format!("client result: {e}"))?;
    let raw = match &samples {
        Some(f) => {
            Some(serde_json::from_str(&read(&f.0)?).map_err(|e| format!("client samples: {e}"))?)
        }
        None => None,
    };
    Ok((run, raw))
}

/// A scenario's load and protocols, from the base options.
fn preset(s: Scenario, base: &LoadArgs) -> (LoadArgs, Vec<Protocol>) {
    let mut l = base.clone();
    l.response = ResponseSpec::Same;
    l.bg_sizes = None;
    l.rate = None;
    l.outstanding = None;
    let gbps = base.gbps;
    l.gbps = None;
    let two = vec![Protocol::Homa, Protocol::Tcp];
    match s {
        Scenario::Floor => {
            l.sizes = SizeSpec::Fixed(100);
            l.outstanding = Some(1);
            let mut all = vec![
                Protocol::Homa,
                Protocol::Tcp,
                Protocol::Udp,
                Protocol::HomaSpin,
                Protocol::UdpSpin,
            ];
            if cfg!(feature = "dpdk") {
                all.push(Protocol::HomaDpdk);
            }
            (l, all)
        }
        Scenario::Mixed => {
            l.sizes = SizeSpec::Fixed(100);
            l.outstanding = Some(1);
            l.bg_sizes = Some(SizeSpec::Fixed(1_000_000));
            l.bg_outstanding = 8;
            (l, two)
        }
        Scenario::W3 => {
            l.sizes = SizeSpec::Workload(homa_workload::Workload::W3);
            l.gbps = Some(gbps.unwrap_or(W3_GBPS));
            (l, two)
        }
        Scenario::W4 => {
            l.sizes = SizeSpec::Workload(homa_workload::Workload::W4);
            l.gbps = Some(gbps.unwrap_or(W4_GBPS));
            (l, two)
        }
        Scenario::Rate => {
            l.sizes = SizeSpec::Fixed(100);
            l.outstanding = Some(64);
            (l, two)
        }
        Scenario::Bulk => {
            l.sizes = SizeSpec::Fixed(1_000_000);
            l.outstanding = Some(8);
            (l, two)
        }
        Scenario::All => unreachable!("expanded by the caller"),
    }
}

fn scenario_name(s: Scenario) -> &'static str {
    match s {
        Scenario::Floor => "floor",
        Scenario::Mixed => "mixed",
        Scenario::W3 => "w3",
        Scenario::W4 => "w4",
        Scenario::Rate => "rate",
        Scenario::Bulk => "bulk",
        Scenario::All => "all",
    }
}

/// The comparison a scenario makes, as lines of text.
pub fn verdict(s: Scenario, runs: &[RunResult]) -> Vec<String> {
    let get = |n: &str| runs.iter().find(|r| r.protocol == n);
    let mut out = Vec::new();
    let mut check = |what: String, ok: bool| {
        out.push(format!("{} {what}", if ok { "MET  " } else { "SHORT" }));
    };
    match s {
        Scenario::Floor => {
            // `a`'s P50 over `b`'s, at most `limit`.
            for (a, b, limit) in [
                ("homa", "udp", 1.25),
                ("homa", "tcp", 1.0),
                ("homa-spin", "udp-spin", 1.5),
                ("homa-dpdk", "homa", 0.5),
            ] {
                if let (Some(x), Some(y)) = (get(a), get(b)) {
                    let r = x.p50_us / y.p50_us;
                    check(
                        format!(
                            "{a} P50 {:.1} µs / {b} P50 {:.1} µs = {r:.2} (target ≤ {limit})",
                            x.p50_us, y.p50_us
                        ),
                        r <= limit,
                    );
                }
            }
        }
        Scenario::Mixed | Scenario::W3 | Scenario::W4 => {
            if let (Some(h), Some(t)) = (get("homa"), get("tcp")) {
                let r = t.short_p99_us / h.short_p99_us;
                let target = if s == Scenario::Mixed { 10.0 } else { 1.0 };
                check(
                    format!(
                        "tcp short P99 {:.1} µs / homa short P99 {:.1} µs = {r:.2} (target {} {target})",
                        t.short_p99_us,
                        h.short_p99_us,
                        if s == Scenario::Mixed { "≥" } else { ">" }
                    ),
                    if s == Scenario::Mixed { r >= target } else { r > target },
                );
            }
        }
        Scenario::Rate => {
            if let (Some(h), Some(t)) = (get("homa"), get("tcp")) {
                let r = h.rpcs_per_sec / t.rpcs_per_sec;
                check(
                    format!(
                        "homa {:.0} RPC/s / tcp {:.0} RPC/s = {r:.2} (target ≥ 1)",
                        h.rpcs_per_sec, t.rpcs_per_sec
                    ),
                    r >= 1.0,
                );
            }
        }
        Scenario::Bulk => {
            if let (Some(h), Some(t)) = (get("homa"), get("tcp")) {
                let r = h.throughput_gbps / t.throughput_gbps;
                check(
                    format!(
                        "homa {:.2} Gbit/s / tcp {:.2} Gbit/s = {r:.2} (target ≥ 0.5)",
                        h.throughput_gbps, t.throughput_gbps
                    ),
                    r >= 0.5,
                );
            }
        }
        Scenario::All => {}
    }
    for r in runs {
        if r.errors > 0 {
            out.push(format!("NOTE  {} had {} errors", r.protocol, r.errors));
        }
    }
    out
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|s| format!(".{}", s.to_string_lossy()))
        .unwrap_or_default();
    path.with_file_name(format!("{stem}-{suffix}{ext}"))
}

/// The order of the protocols (indices) in round `round` (from 0): as
/// given in even rounds, reversed in odd ones, so that over two rounds each
/// protocol runs as often early as late in a pair.
fn round_order(n: usize, round: u32) -> Vec<usize> {
    if round & 1 == 0 {
        (0..n).collect()
    } else {
        (0..n).rev().collect()
    }
}

/// The load of one round: its share of the measured time, and its own seed
/// (so that the rounds do not replay one sequence of sizes and gaps).
fn round_load(load: &LoadArgs, rounds: u32, round: u32) -> LoadArgs {
    let mut l = load.clone();
    l.duration = load.duration / f64::from(rounds);
    l.seed = load.seed.wrapping_add(u64::from(round));
    l
}

/// Run the protocols in turn, `args.rounds` times, pool each protocol's
/// rounds, and report.
fn run_set(
    name: &str,
    load: &LoadArgs,
    protocols: &[Protocol],
    args: &LoopbackArgs,
    json: Option<PathBuf>,
    plot: Option<PathBuf>,
) -> Result<Vec<RunResult>, String> {
    let rounds = args.rounds.max(1);
    eprintln!(
        "== {name}: {}{}",
        load.describe(),
        if rounds > 1 {
            format!(", {rounds} rounds")
        } else {
            String::new()
        }
    );
    let mut runnable = Vec::new();
    for &p in protocols {
        if p.is_udp() {
            let bad = udp::check_single_packet(&Sizes::new(&load.sizes), load.response)
                .err()
                .or_else(|| {
                    load.bg_sizes
                        .as_ref()
                        .map(|_| "background flow".to_string())
                });
            if let Some(why) = bad {
                eprintln!("   skipping {}: {why}", p.name());
                continue;
            }
        }
        runnable.push(p);
    }
    let mut per: Vec<Vec<(RunResult, Option<RawRun>)>> = vec![Vec::new(); runnable.len()];
    for round in 0..rounds {
        let l = round_load(load, rounds, round);
        for i in round_order(runnable.len(), round) {
            let p = runnable[i];
            if rounds > 1 {
                eprintln!("-- {} (round {}/{rounds})", p.name(), round + 1);
            } else {
                eprintln!("-- {}", p.name());
            }
            per[i].push(run_one(
                p,
                &l,
                &args.transport,
                args.output.no_progress,
                rounds > 1,
            )?);
        }
    }
    let runs: Vec<RunResult> = per
        .into_iter()
        .map(|mut v| {
            if v.len() == 1 {
                return Ok(v.remove(0).0);
            }
            let pooled: Vec<(RunResult, RawRun)> = v
                .into_iter()
                .map(|(r, raw)| {
                    let raw = raw.ok_or_else(|| format!("{}: no raw samples", r.protocol))?;
                    Ok((r, raw))
                })
                .collect::<Result<_, String>>()?;
            stats::pool(&pooled).ok_or_else(|| "no rounds".to_string())
        })
        .collect::<Result<_, String>>()?;
    println!("\n### {name}");
    print!("{}", report::table(&runs));
    if let Some(j) = json {
        report::write_file(&j, &report::json(&runs))?;
    }
    if let Some(p) = plot {
        report::plot(&runs, &p, &format!("homa-perf loopback: {name}"))?;
    }
    Ok(runs)
}

/// `homa-perf loopback`.
pub fn run(args: &LoopbackArgs) -> Result<(), String> {
    let mut args = args.clone();
    args.transport.homa_profile = Some(
        args.transport
            .homa_profile
            .unwrap_or(crate::cli::HomaProfile::Loopback),
    );
    let args = &args;
    if args.scenario.is_none() {
        for p in &args.protocols {
            p.available()?;
        }
    }
    println!(
        "runtime {:?}, {}, TCP pool {} connections",
        args.transport.runtime,
        args.transport.describe_homa(),
        args.transport.tcp_pool
    );
    let dpdk_runs = match args.scenario {
        None => args.protocols.contains(&Protocol::HomaDpdk),
        Some(s) => cfg!(feature = "dpdk") && matches!(s, Scenario::Floor | Scenario::All),
    };
    if dpdk_runs {
        println!("{}", args.transport.describe_homa_dpdk());
    }
    let Some(scenario) = args.scenario else {
        run_set(
            "loopback",
            &args.load,
            &args.protocols,
            args,
            args.output.json.clone(),
            args.output.plot.clone(),
        )?;
        return Ok(());
    };
    let list = if scenario == Scenario::All {
        vec![
            Scenario::Floor,
            Scenario::Mixed,
            Scenario::W3,
            Scenario::W4,
            Scenario::Rate,
            Scenario::Bulk,
        ]
    } else {
        vec![scenario]
    };
    let many = list.len() > 1;
    let mut verdicts = Vec::new();
    for s in list {
        let (load, protocols) = preset(s, &args.load);
        let name = scenario_name(s);
        let out = |p: &Option<PathBuf>| {
            p.as_ref().map(|p| {
                if many {
                    with_suffix(p, name)
                } else {
                    p.clone()
                }
            })
        };
        let runs = run_set(
            name,
            &load,
            &protocols,
            args,
            out(&args.output.json),
            out(&args.output.plot),
        )?;
        let v = verdict(s, &runs);
        for l in &v {
            println!("{l}");
        }
        verdicts.push((name, v));
    }
    if many {
        println!("\n### summary");
        for (name, v) in verdicts {
            for l in v {
                println!("{name:<6} {l}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn rounds_alternate_the_order() {
        assert_eq!(round_order(3, 0), [0, 1, 2]);
        assert_eq!(round_order(3, 1), [2, 1, 0]);
        assert_eq!(round_order(3, 2), [0, 1, 2]);
        assert!(round_order(0, 1).is_empty());
    }

    #[test]
    fn a_round_has_its_share_of_the_time_and_its_own_seed() {
        let cli = crate::cli::Cli::parse_from([
            "homa-perf",
            "loopback",
            "--duration",
            "6",
            "--seed",
            "7",
        ]);
        let crate::cli::Cmd::Loopback(a) = cli.cmd else {
            panic!("not loopback")
        };
        assert_eq!(a.rounds, 3, "the default");
        let l = round_load(&a.load, a.rounds, 2);
        assert_eq!(l.duration, 2.0);
        assert_eq!(l.seed, 9);
        assert_eq!(l.warmup, a.load.warmup, "every round warms up in full");
        assert!(
            crate::cli::Cli::try_parse_from(["homa-perf", "loopback", "--rounds", "0"]).is_err()
        );
    }
}
