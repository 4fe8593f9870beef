//! `mftplus-bench seed | load | liveness`: see the library docs and `bench/fleet_load.sh`.

use clap::{Parser, Subcommand};
use mftplus_bench::{liveness, load, seed, BenchError};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "mftplus-bench",
    about = "Fleet ingest benchmark tool (not shipped)"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create one customer with N hosts through the store and write `host_id key` lines.
    Seed {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        hosts: usize,
        /// Guest rows per host (the load's reports update them).
        #[arg(long, default_value_t = 3)]
        guests: usize,
        /// Writers at once; 1 is enrollments arriving one by one.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Post host reports to a running cloud for DURATION seconds and measure.
    Load {
        #[arg(long)]
        url: String,
        #[arg(long)]
        keys: PathBuf,
        /// Seconds measured (after the warm-up).
        #[arg(long, default_value_t = 20)]
        duration: u64,
        /// Seconds run before measuring.
        #[arg(long, default_value_t = 3)]
        warmup: u64,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 4096)]
        report_bytes: usize,
    },
    /// Seed N reported hosts and time the liveness pass.
    Liveness {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        hosts: usize,
        /// Writers at once while seeding (PostgreSQL benefits; SQLite has one writer).
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
}

fn runtime(single_thread: bool) -> std::io::Result<tokio::runtime::Runtime> {
    if single_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
}

fn run(args: Args) -> Result<(), BenchError> {
    match args.command {
        Command::Seed {
            database_url,
            hosts,
            guests,
            concurrency,
            out,
        } => {
            let summary = runtime(false)?.block_on(seed::run(
                &database_url,
                hosts,
                guests,
                concurrency,
                &out,
            ))?;
            eprintln!(
                "seeded {} hosts and {} guests in {:.1} s: {:.0} single-row writes/s",
                summary.hosts, summary.guests, summary.seconds, summary.writes_per_second
            );
            println!(
                "{}",
                serde_json::json!({
                    "hosts": summary.hosts,
                    "guests": summary.guests,
                    "seconds": summary.seconds,
                    "writes_per_s": summary.writes_per_second,
                })
            );
        }
        Command::Load {
            url,
            keys,
            duration,
            warmup,
            connections,
            report_bytes,
        } => {
            let hosts = seed::read_keys(&keys)?;
            let options = load::LoadOptions {
                url,
                duration: Duration::from_secs(duration.max(1)),
                warmup: Duration::from_secs(warmup),
                connections,
                report_bytes,
            };
            // One thread: the script pins the generator to one CPU, and a single-threaded
            // runtime spends nothing on cross-thread wake-ups.
            let summary = runtime(true)?.block_on(load::run(&hosts, &options))?;
            eprintln!(
                "{} reports/s over {:.0} s ({} hosts, {} connections, {} B): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; errors {:?}; generator CPU {:.0}%",
                summary.reports_per_s.round(),
                summary.duration_s,
                summary.hosts,
                summary.connections,
                summary.report_bytes,
                summary.p50_ms,
                summary.p90_ms,
                summary.p99_ms,
                summary.max_ms,
                summary.errors,
                summary.generator_cpu_percent
            );
            println!("{}", serde_json::to_string(&summary)?);
        }
        Command::Liveness {
            database_url,
            hosts,
            concurrency,
        } => {
            let summary =
                runtime(false)?.block_on(liveness::run(&database_url, hosts, concurrency))?;
            eprintln!(
                "{} hosts (seeded in {:.1} s, reported in {:.1} s): first pass {:.0} ms ({} transitions), second pass {:.0} ms ({} transitions)",
                summary.hosts,
                summary.seed_s,
                summary.ingest_s,
                summary.first_pass_ms,
                summary.first_transitions,
                summary.second_pass_ms,
                summary.second_transitions
            );
            println!("{}", serde_json::to_string(&summary)?);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
