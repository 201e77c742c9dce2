//! `homa-sim`: the SIGCOMM 2018 experiments with the real Homa engine.
//!
//! ```text
//! homa-sim paper --workload w3 --load 0.8 --duration 100ms --seed 1 --out results
//! homa-sim paper --workload all --load 0.8
//! ```

mod plot;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use homa_sim::paper::{
    bucketize, reference, run, summarize, summarize_histogram, BucketStats, EngineSetup, Fabric,
    Policy, RunConfig, RunResult,
};
use homa_sim::Nanos;
use homa_workload::Workload;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Simulate Homa — the real homa-core engine on every host — on the
/// SIGCOMM 2018 datacenter, and compare per-size slowdowns with the paper.
#[derive(Parser, Debug)]
#[command(name = "homa-sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Reproduce the paper's slowdown-vs-size results: 144 hosts send Poisson
    /// streams of W1–W5 messages to random other hosts at a given load.
    /// Writes DIR/slowdown.csv, DIR/slowdown.svg and DIR/summary.md.
    Paper(PaperArgs),
}

#[derive(Args, Debug)]
struct PaperArgs {
    /// Workloads: w1..w5, a comma-separated list, or `all`.
    #[arg(long, default_value = "w3")]
    workload: String,
    /// Offered load(s) as fractions of the host link rate on the wire
    /// (headers, grants and responses included), comma-separated.
    #[arg(long, default_value = "0.8")]
    load: String,
    /// Simulated time in which measured messages start (e.g. 100ms, 1s).
    /// Default per workload: enough messages for stable bucket tails
    /// (W1 10ms, W2 20ms, W3 100ms, W4 200ms, W5 400ms).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Nanos>,
    /// Messages starting before this are not measured. Default: a tenth of
    /// the duration.
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Nanos>,
    /// After the duration, traffic continues until every measured message has
    /// completed, for at most this long; messages still incomplete then count
    /// with the slowdown they have reached (a lower bound). Default: a fifth
    /// of the duration.
    #[arg(long, value_parser = parse_duration)]
    drain: Option<Nanos>,
    /// Stop new messages at the end of the duration, so that the measured
    /// ones finish on a network that empties (the paper's simulator did
    /// this: its stopTime ends message generation, and the run goes on until
    /// every message is delivered). Give a long --drain with it, so that
    /// every message completes. Default: traffic goes on through the drain.
    #[arg(long)]
    stop_arrivals: bool,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of seeds per workload and load (seed, seed+1, ...); their
    /// samples are pooled.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Output directory.
    #[arg(long, default_value = "homa-sim-out")]
    out: PathBuf,
    /// Parallel runs (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
    /// Also write every measured message to FILE as CSV
    /// (`workload,load,seed,size_bytes,slowdown`), each run's messages in
    /// the order they completed, for analyses of your own.
    #[arg(long, value_name = "FILE")]
    samples_file: Option<PathBuf>,

    /// Engine settings to start from: `paper` (as the paper ran Homa: fixed
    /// RTTbytes window, a grant per packet, overcommitment = scheduled levels,
    /// pure SRPT) or `linux` (dynamic windows and 5 % FIFO grants).
    #[arg(long, default_value = "paper", help_heading = "Engine")]
    policy: Policy,
    /// Unscheduled bytes per message (paper: 9328).
    #[arg(long, help_heading = "Engine")]
    unsched_bytes: Option<u32>,
    /// Scheduled priority levels (paper, per workload: 1, 3, 4, 7, 7).
    #[arg(long, help_heading = "Engine")]
    sched_levels: Option<u8>,
    /// Unscheduled priority levels (paper, per workload: 7, 5, 4, 1, 1).
    #[arg(long, help_heading = "Engine")]
    unsched_levels: Option<u8>,
    /// Messages granted at once (paper: the scheduled levels).
    #[arg(long, help_heading = "Engine")]
    overcommit: Option<usize>,
    /// Messages of one sender granted at once (paper and Linux: 1).
    #[arg(long, help_heading = "Engine")]
    grants_per_peer: Option<usize>,
    /// Grant the last bytes of a message, once fewer than this many are
    /// left to grant (on the wire), at the unscheduled priority of a
    /// message that size (paper: 10000, RTTbytes; Linux: 0, off).
    #[arg(long, help_heading = "Engine")]
    tail_boost: Option<u32>,
    /// Grant window per message in bytes, or `dynamic` for Linux's
    /// max_incoming / (active + 1).
    #[arg(long, help_heading = "Engine")]
    grant_window: Option<String>,
    /// Smallest grant step in bytes (paper: one packet).
    #[arg(long, help_heading = "Engine")]
    grant_increment: Option<u32>,
    /// Cap on granted-but-unreceived bytes across messages, unscheduled
    /// bytes included (paper: none, 4294967295; Linux: 80000).
    #[arg(long, help_heading = "Engine")]
    max_incoming: Option<u32>,
    /// Percentage of grants given to the oldest message (0 = pure SRPT).
    #[arg(long, help_heading = "Engine")]
    fifo_grants: Option<u32>,
    /// Percentage of sender bandwidth given to its oldest message.
    #[arg(long, help_heading = "Engine")]
    send_fifo: Option<u32>,
    /// Most transmit time the sender queues in its NIC, ns (paper: 0, each
    /// packet chosen when the link frees; Linux: 2000).
    #[arg(long, help_heading = "Engine")]
    nic_queue_ns: Option<u64>,

    /// Racks (paper: 9).
    #[arg(long, help_heading = "Fabric")]
    racks: Option<usize>,
    /// Hosts per rack (paper: 16).
    #[arg(long, help_heading = "Fabric")]
    hosts_per_rack: Option<usize>,
    /// Aggregation switches (paper: 4).
    #[arg(long, help_heading = "Fabric")]
    aggs: Option<usize>,
    /// Host link rate in Gbit/s (paper: 10).
    #[arg(long, help_heading = "Fabric")]
    host_gbps: Option<u64>,
    /// ToR–aggregation link rate in Gbit/s (paper: 40).
    #[arg(long, help_heading = "Fabric")]
    core_gbps: Option<u64>,
    /// Fixed delay per switch, ns (paper: 250).
    #[arg(long, help_heading = "Fabric")]
    switch_delay_ns: Option<u64>,
    /// Host software turnaround at each end, ns (paper: 500).
    #[arg(long, help_heading = "Fabric")]
    host_delay_ns: Option<u64>,
    /// NIC think time per frame, ns (paper: 500).
    #[arg(long, help_heading = "Fabric")]
    nic_delay_ns: Option<u64>,
    /// Switch egress buffer limit in bytes (paper: unlimited).
    #[arg(long, help_heading = "Fabric")]
    switch_buffer: Option<u64>,
}

/// Parses `100ms`, `1s`, `250us`, `5000ns` (a bare number is ms).
fn parse_duration(s: &str) -> Result<Nanos, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "ms"),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {s:?} (try 100ms, 1s, 250us)"))?;
    let scale = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return Err(format!("bad unit in {s:?} (use ns, us, ms or s)")),
    };
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok((v * scale).round() as Nanos)
}

fn parse_workloads(s: &str) -> Result<Vec<Workload>, String> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(Workload::ALL.to_vec());
    }
    s.split(',')
        .map(|w| w.trim().parse::<Workload>().map_err(|e| e.to_string()))
        .collect()
}

fn parse_loads(s: &str) -> Result<Vec<f64>, String> {
    s.split(',')
        .map(|l| match l.trim().parse::<f64>() {
            Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
            _ => Err(format!("load {l:?} must be a fraction in (0, 1)")),
        })
        .collect()
}

fn default_duration(w: Workload) -> Nanos {
    match w {
        // Each gives a few hundred messages or more in every bucket (W1
        // and W2 have millions of messages per 10 ms; W5 ~45,000 per second).
        Workload::W1 => 10_000_000,
        Workload::W2 => 20_000_000,
        Workload::W3 => 100_000_000,
        Workload::W4 => 200_000_000,
        Workload::W5 => 400_000_000,
    }
}

impl PaperArgs {
    fn fabric(&self) -> Fabric {
        let mut f = Fabric::sigcomm18();
        f.racks = self.racks.unwrap_or(f.racks);
        f.hosts_per_rack = self.hosts_per_rack.unwrap_or(f.hosts_per_rack);
        f.aggs = self.aggs.unwrap_or(f.aggs);
        if let Some(g) = self.host_gbps {
            f.host_link_bps = g * 1_000_000_000;
        }
        if let Some(g) = self.core_gbps {
            f.core_link_bps = g * 1_000_000_000;
        }
        f.switch_delay = self.switch_delay_ns.unwrap_or(f.switch_delay);
        f.host_delay = self.host_delay_ns.unwrap_or(f.host_delay);
        f.nic_delay = self.nic_delay_ns.unwrap_or(f.nic_delay);
        if self.switch_buffer.is_some() {
            f.switch_buffer = self.switch_buffer;
        }
        f
    }

    fn engine(&self, w: Workload) -> Result<EngineSetup, String> {
        let mut e = EngineSetup::new(w, self.policy);
        if let Some(v) = self.unsched_bytes {
            e.unsched_bytes = v;
        }
        if let Some(v) = self.sched_levels {
            e.sched_levels = v;
            if self.overcommit.is_none() && self.policy == Policy::Paper {
                e.overcommit = usize::from(v);
            }
        }
        if let Some(v) = self.unsched_levels {
            e.unsched_levels = v;
        }
        if let Some(v) = self.overcommit {
            e.overcommit = v;
        }
        if let Some(v) = self.grants_per_peer {
            e.grants_per_peer = v;
        }
        if let Some(v) = self.tail_boost {
            e.tail_boost = v;
        }
        match self.grant_window.as_deref() {
            None => {}
            Some("dynamic") => e.grant_window = None,
            Some(v) => {
                e.grant_window = Some(v.parse().map_err(|_| {
                    format!("--grant-window {v:?}: expected a byte count or `dynamic`")
                })?)
            }
        }
        if let Some(v) = self.grant_increment {
            e.grant_increment = v;
        }
        if let Some(v) = self.max_incoming {
            e.max_incoming = v;
        }
        if let Some(v) = self.fifo_grants {
            e.fifo_grant_percent = v;
        }
        if let Some(v) = self.send_fifo {
            e.send_fifo_percent = v;
        }
        if let Some(v) = self.nic_queue_ns {
            e.nic_queue_ns = v;
        }
        Ok(e)
    }
}

/// One finished group: a workload at a load, seeds pooled.
struct Group {
    workload: Workload,
    load: f64,
    rows: Vec<BucketStats>,
    runs: Vec<RunResult>,
}

fn main() {
    let cli = Cli::parse();
    let Command::Paper(args) = cli.command;
    if let Err(e) = paper(&args) {
        eprintln!("homa-sim: {e}");
        std::process::exit(2);
    }
}

fn paper(args: &PaperArgs) -> Result<(), String> {
    let workloads = parse_workloads(&args.workload)?;
    let loads = parse_loads(&args.load)?;
    if args.seeds == 0 {
        return Err("--seeds must be at least 1".into());
    }
    let fabric = args.fabric();
    if fabric.hosts() < 2 || fabric.racks == 0 || fabric.aggs == 0 {
        return Err("the fabric needs at least 2 hosts, 1 rack and 1 aggregation switch".into());
    }
    let mut jobs = Vec::new();
    for &w in &workloads {
        let engine = args.engine(w)?;
        for &load in &loads {
            for s in 0..args.seeds {
                let duration = args.duration.unwrap_or_else(|| default_duration(w));
                jobs.push(RunConfig {
                    duration,
                    warmup: args.warmup.unwrap_or(duration / 10).min(duration / 2),
                    drain_limit: args.drain.unwrap_or(duration / 5),
                    stop_arrivals: args.stop_arrivals,
                    seed: args.seed + s,
                    ..RunConfig::new(w, load, fabric.clone(), engine.clone())
                });
            }
        }
    }
    // Validate every config before starting anything.
    for j in &jobs {
        let dist = homa_workload::SizeDistribution::sigcomm18(j.workload);
        j.engine
            .config(&j.fabric, &dist)
            .map_err(|e| format!("{}: {e}", j.workload))?;
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args.jobs.unwrap_or(cores).clamp(1, jobs.len());
    let multi = MultiProgress::new();
    if args.quiet {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template(
        "{prefix:>14} [{bar:30}] {pos:>7}/{len:7} µs simulated  {elapsed_precise} {msg}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    let bars: Vec<ProgressBar> = jobs
        .iter()
        .map(|j| {
            let b = multi.add(ProgressBar::new(j.duration / 1000));
            b.set_style(style.clone());
            b.set_prefix(format!("{} {:.0}% s{}", j.workload, j.load * 100.0, j.seed));
            b
        })
        .collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<RunResult>>> = Mutex::new(vec![None; jobs.len()]);
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let bar = &bars[i];
                let mut progress = |now: Nanos, _end: Nanos| bar.set_position(now / 1000);
                match run(job, &mut progress) {
                    Ok(r) => {
                        bar.finish_with_message(format!(
                            "{:.1} M events/s, {} msgs",
                            r.events_per_sec() / 1e6,
                            r.samples.len()
                        ));
                        results.lock().expect("no panics")[i] = Some(r);
                    }
                    Err(e) => {
                        bar.abandon_with_message(e.to_string());
                        errors.lock().expect("no panics").push(e.to_string());
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().expect("no panics");
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let results: Vec<RunResult> = results
        .into_inner()
        .expect("no panics")
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect();

    // Pool seeds per (workload, load).
    let mut groups: Vec<Group> = Vec::new();
    for (job, r) in jobs.iter().zip(results) {
        match groups
            .iter_mut()
            .find(|g| g.workload == job.workload && g.load == job.load)
        {
            Some(g) => g.runs.push(r),
            None => groups.push(Group {
                workload: job.workload,
                load: job.load,
                rows: Vec::new(),
                runs: vec![r],
            }),
        }
    }
    for g in &mut groups {
        let samples: Vec<(u64, f64)> = g
            .runs
            .iter()
            .flat_map(|r| r.samples.iter().copied())
            .collect();
        g.rows = bucketize(&samples, &reference::bucket_bounds(g.workload, g.load));
    }

    if let Some(path) = &args.samples_file {
        write_samples(path, &groups, args.seed).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let csv = write_csv(&groups);
    let csv_path = args.out.join("slowdown.csv");
    std::fs::write(&csv_path, csv).map_err(|e| format!("{}: {e}", csv_path.display()))?;
    let svg_path = args.out.join("slowdown.svg");
    plot::plot(&svg_path, &groups).map_err(|e| format!("{}: {e}", svg_path.display()))?;
    let summary = summary_table(&groups, args, started.elapsed().as_secs_f64());
    let md_path = args.out.join("summary.md");
    std::fs::write(&md_path, &summary).map_err(|e| format!("{}: {e}", md_path.display()))?;
    println!("{summary}");
    println!(
        "wrote {}, {} and {}",
        csv_path.display(),
        svg_path.display(),
        md_path.display()
    );
    let lost: u64 = groups.iter().flat_map(|g| &g.runs).map(|r| r.failed).sum();
    if lost > 0 {
        return Err(format!("{lost} messages failed"));
    }
    Ok(())
}

/// Every measured message, each run's in completion order (streamed: a W3
/// run has millions).
fn write_samples(path: &std::path::Path, groups: &[Group], first_seed: u64) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "workload,load,seed,size_bytes,slowdown")?;
    for g in groups {
        for (i, r) in g.runs.iter().enumerate() {
            let seed = first_seed + i as u64;
            for &(size, slowdown) in &r.samples {
                writeln!(out, "{},{},{seed},{size},{slowdown:.6}", g.workload, g.load)?;
            }
        }
    }
    out.flush()
}

fn write_csv(groups: &[Group]) -> String {
    let mut out =
        String::from("workload,load,size_upper_bytes,count,median_slowdown,p99_slowdown\n");
    for g in groups {
        for r in &g.rows {
            let _ = writeln!(
                out,
                "{},{},{},{},{:.4},{:.4}",
                g.workload, g.load, r.size_upper_bytes, r.count, r.median_slowdown, r.p99_slowdown
            );
        }
    }
    out
}

fn summary_table(groups: &[Group], args: &PaperArgs, wall: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "P99 slowdown per size bucket, ours (policy `{}`) vs the paper's Homa (SIGCOMM 2018)\n",
        format!("{:?}", args.policy).to_lowercase()
    );
    let _ = writeln!(
        s,
        "| workload | load | messages | smallest bucket (ours / paper) | worst bucket (ours / paper) | count-weighted mean (ours / paper) | ours, P99s read as the paper read its own: smallest / mean |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for g in groups {
        let (small, worst, mean) = summarize(&g.rows);
        // The paper read one run's histogram; with several seeds, read each
        // run on its own and average (a histogram over runs laid end to end
        // would take its range from the first run alone).
        let bounds = reference::bucket_bounds(g.workload, g.load);
        let per_run: Vec<(f64, f64, f64)> = g
            .runs
            .iter()
            .map(|r| summarize_histogram(&bucketize(&r.samples, &bounds)))
            .collect();
        let n_runs = per_run.len().max(1) as f64;
        let small_h = per_run.iter().map(|h| h.0).sum::<f64>() / n_runs;
        let mean_h = per_run.iter().map(|h| h.2).sum::<f64>() / n_runs;
        let paper = reference::summary(&reference::curve("Homa", g.workload, g.load));
        let fmt = |ours: f64, theirs: Option<f64>| match theirs {
            Some(t) => format!("{ours:.2} / {t:.2}"),
            None => format!("{ours:.2} / –"),
        };
        let n: usize = g.rows.iter().map(|r| r.count).sum();
        let _ = writeln!(
            s,
            "| {} | {:.0}% | {} | {} | {} | {} | {:.2} / {:.2} |",
            g.workload,
            g.load * 100.0,
            n,
            fmt(small, paper.map(|p| p.0)),
            fmt(worst, paper.map(|p| p.1)),
            fmt(mean, paper.map(|p| p.2)),
            small_h,
            mean_h,
        );
    }
    let _ = writeln!(
        s,
        "\nP99s are nearest-rank. The last column reads each bucket's P99 as the paper's \
         analysis did: off a histogram of the slowdowns in completion order, kept as its \
         patched OMNeT++ 4.6 kept it (100 cells up to the largest of the bucket's first \
         10,000 values; `homa_sim::paper::histogram_p99`); with several seeds, each run is \
         read on its own and the figures averaged."
    );
    let _ = writeln!(
        s,
        "\n| run | seed | measured load | incomplete | failed | RESENDs / bytes retransmitted | events | wall | events/s |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for g in groups {
        for (i, r) in g.runs.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {} {:.0}% | {} | {:.3} | {} | {} | {} / {} | {:.1} M | {:.1} s | {:.2} M |",
                g.workload,
                g.load * 100.0,
                args.seed + i as u64,
                r.measured_load,
                r.incomplete,
                r.failed,
                r.resends,
                r.retransmitted_bytes,
                r.events as f64 / 1e6,
                r.wall.as_secs_f64(),
                r.events_per_sec() / 1e6
            );
        }
    }
    let _ = writeln!(
        s,
        "\nWhere the bandwidth went (host-steps of 100 µs; backlogged = at least a step's worth of bytes left):\n\n| run | offered load | fluid bound tx / rx | rx backlogged | downlink util when backlogged | granted-unreceived B / backlogged rx | msgs needing grants / backlogged rx | tx backlogged | uplink util when backlogged | granted-unsent B / backlogged tx | granted bytes parked at senders |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for g in groups {
        for r in &g.runs {
            let d = &r.diagnosis;
            let _ = writeln!(
                s,
                "| {} {:.0}% | {:.3} | {:.3} / {:.3} | {:.3} | {:.3} | {:.0} | {:.1} | {:.3} | {:.3} | {:.0} | {:.3} |",
                g.workload,
                g.load * 100.0,
                d.offered_load,
                d.fluid_tx_load,
                d.fluid_rx_load,
                d.rx_backlogged,
                d.rx_util_backlogged,
                d.rx_outstanding_backlogged,
                d.rx_needing_grants_backlogged,
                d.tx_backlogged,
                d.tx_util_backlogged,
                d.tx_granted_unsent_backlogged,
                d.granted_parked,
            );
        }
    }
    for g in groups {
        for r in &g.runs {
            for f in &r.failures {
                let _ = writeln!(s, "\nFailure in {} {:.0}%: {f}", g.workload, g.load * 100.0);
            }
        }
    }
    let _ = writeln!(s, "\nTotal wall time {wall:.1} s.");
    s
}
