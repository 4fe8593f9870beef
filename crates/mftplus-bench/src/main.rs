//! `mftplus-bench seed | load | liveness | ws-echo | ws-hold | hub-enqueue`: see the library
//! docs, `bench/fleet_load.sh`, `bench/hub_proxy.sh` and `bench/hub_queue.sh`.

use clap::{Parser, Subcommand};
use mftplus_bench::{hub_enqueue, liveness, load, seed, ws, BenchError};
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
    /// Push host reports through the hub's offline-queue writer (no HTTP) into a fresh hub.db.
    HubEnqueue {
        /// An existing, empty directory for hub.db.
        #[arg(long)]
        data_dir: PathBuf,
        /// Concurrent producers (as many as the HTTP run's connections).
        #[arg(long, default_value_t = 64)]
        tasks: usize,
        #[arg(long, default_value_t = 10)]
        duration: u64,
        #[arg(long, default_value_t = 2)]
        warmup: u64,
        #[arg(long, default_value_t = 4096)]
        report_bytes: usize,
    },
    /// Upstream for ws-hold: answers upgrade requests with 101 and echoes; 503 otherwise.
    WsEcho {
        /// Address to listen on, e.g. 127.0.0.1:0 (the bound address is printed on stdout).
        #[arg(long)]
        listen: String,
        /// Exit after this many seconds, so a forgotten echo does not linger.
        #[arg(long, default_value_t = 900)]
        max_seconds: u64,
    },
    /// Open upgraded connections through a proxy and hold them, pinging each one.
    WsHold {
        /// `host:port` of the proxy.
        #[arg(long)]
        via: String,
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        #[arg(long, default_value_t = 64)]
        open_concurrency: usize,
        /// Seconds between two pings on one connection.
        #[arg(long, default_value_t = 5)]
        ping_every: u64,
        /// Seconds to hold once every connection is open.
        #[arg(long, default_value_t = 20)]
        hold: u64,
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
        Command::HubEnqueue {
            data_dir,
            tasks,
            duration,
            warmup,
            report_bytes,
        } => {
            let options = hub_enqueue::EnqueueOptions {
                data_dir,
                tasks,
                duration: Duration::from_secs(duration.max(1)),
                warmup: Duration::from_secs(warmup),
                report_bytes,
            };
            // One thread, like the hub pinned to one CPU (its writer thread is extra).
            let summary = runtime(true)?.block_on(hub_enqueue::run(&options))?;
            eprintln!(
                "{:.0} rows/s committed over {:.0} s ({} producers, {} B): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; errors {}",
                summary.writes_per_s,
                summary.duration_s,
                summary.tasks,
                summary.report_bytes,
                summary.p50_ms,
                summary.p99_ms,
                summary.max_ms,
                summary.errors
            );
            println!("{}", serde_json::to_string(&summary)?);
        }
        Command::WsEcho {
            listen,
            max_seconds,
        } => {
            runtime(true)?.block_on(async {
                let listener = tokio::net::TcpListener::bind(&listen).await?;
                println!("{}", listener.local_addr()?);
                match tokio::time::timeout(Duration::from_secs(max_seconds), ws::echo(listener))
                    .await
                {
                    Ok(result) => result,
                    Err(_) => Ok(()),
                }
            })?;
        }
        Command::WsHold {
            via,
            connections,
            open_concurrency,
            ping_every,
            hold,
        } => {
            let options = ws::HoldOptions {
                via,
                connections,
                open_concurrency,
                ping_every: Duration::from_secs(ping_every.max(1)),
                hold: Duration::from_secs(hold),
            };
            let summary = runtime(true)?.block_on(ws::hold(&options))?;
            eprintln!(
                "{} of {} connections opened in {:.2} s; {} pings answered, {} failed; {} alive at the end{}",
                summary.opened,
                summary.requested,
                summary.open_seconds,
                summary.pings_ok,
                summary.ping_failures,
                summary.alive_at_end,
                summary
                    .first_error
                    .as_deref()
                    .map(|e| format!("; first error: {e}"))
                    .unwrap_or_default()
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
