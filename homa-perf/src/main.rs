//! `homa-perf`: Homa against TCP (and raw UDP floors) on the same workload,
//! side by side, on one machine (`homa-perf loopback`) or many
//! (`homa-perf server` / `homa-perf client`). See `homa-perf --help`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod asyncproto;
mod cli;
mod client;
mod dpdk;
mod load;
mod loopback;
mod report;
mod server;
mod stats;
mod udp;
mod wire;

use clap::Parser;

use cli::{Cli, Cmd};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let r = match &cli.cmd {
        Cmd::Server(a) => server::run(a),
        Cmd::Client(a) => client::run(a).and_then(|r| {
            if let Some(path) = &a.result_file {
                let text = serde_json::to_string(&r).map_err(|e| e.to_string())?;
                return std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()));
            }
            let runs = [r];
            print!("{}", report::table(&runs));
            if let Some(j) = &a.output.json {
                report::write_file(j, &report::json(&runs))?;
            }
            if let Some(p) = &a.output.plot {
                report::plot(&runs, p, "homa-perf")?;
            }
            Ok(())
        }),
        Cmd::Loopback(a) => loopback::run(a),
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("homa-perf: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
