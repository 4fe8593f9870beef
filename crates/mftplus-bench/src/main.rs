//! `mftplus-bench seed | load | liveness | ws-echo | ws-hold | hub-enqueue | slowloris`: see the
//! library docs, `bench/fleet_load.sh`, `bench/hub_proxy.sh`, `bench/hub_queue.sh` and
//! `bench/slowloris.sh`.

use clap::{Parser, Subcommand};
use mftplus_bench::{
    hub_enqueue, liveness, load, pages, seed, seed_transfers, slowloris, ws, BenchError,
};
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
    /// Legitimate requests at a fixed rate, alone and then beside N connections trickling a
    /// request head that never ends; latency, rate and what the attack met, per phase.
    Slowloris {
        /// `ip:port` of the server.
        #[arg(long)]
        target: std::net::SocketAddr,
        #[arg(long, default_value = "/api/v1/health")]
        path: String,
        #[arg(long, default_value_t = 2000)]
        attack_connections: usize,
        /// Local address the attacking connections are bound to; several, comma-separated,
        /// are used round-robin (a slowloris from many clients).
        #[arg(long, default_value = "127.0.0.1", value_delimiter = ',')]
        attack_source: Vec<std::net::IpAddr>,
        /// Local address the legitimate connections are bound to (another client).
        #[arg(long, default_value = "127.0.0.2")]
        legit_source: std::net::IpAddr,
        /// Legitimate requests per second (open loop, over all legitimate connections).
        #[arg(long, default_value_t = 200.0)]
        legit_rate: f64,
        #[arg(long, default_value_t = 8)]
        legit_connections: usize,
        /// Legitimate traffic before the baseline, not counted.
        #[arg(long, default_value_t = 2.0)]
        warmup_seconds: f64,
        #[arg(long, default_value_t = 20.0)]
        baseline_seconds: f64,
        #[arg(long, default_value_t = 60.0)]
        attack_seconds: f64,
        /// Between two header lines on an attacking connection.
        #[arg(long, default_value_t = 5.0)]
        trickle_seconds: f64,
        /// After the server closed an attacking connection, before it connects again.
        #[arg(long, default_value_t = 1.0)]
        reconnect_seconds: f64,
        /// A legitimate request unanswered this long is an error.
        #[arg(long, default_value_t = 10.0)]
        request_timeout_seconds: f64,
        /// The server's process id, to read its CPU, memory and descriptors from /proc.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Processes whose scheduler statistics explain the slowest requests (comma-separated;
        /// by default the server's).
        #[arg(long, value_delimiter = ',')]
        watch_pid: Vec<u32>,
    },
    /// Write TRANSFERS transfers (with chunks; nine in ten complete) through the store.
    SeedTransfers {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        transfers: usize,
    },
    /// Time dashboard pages beside a peer URL, signed in with EMAIL and the password in a file.
    Pages {
        #[arg(long)]
        url: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_file: PathBuf,
        /// `LABEL|URL|MARKER`, repeated; a URL starting with `/` is a page of `--url`, fetched
        /// with the session; a full URL is a peer, fetched without it. MARKER must be in the
        /// body.
        #[arg(long = "page", required = true)]
        pages: Vec<String>,
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        #[arg(long, default_value_t = 31)]
        rounds: usize,
    },
    /// Time from a host report to the open hosts page showing it (the seeded host whose id
    /// sorts first, so it is on the first page).
    /// Write an enrolled agent's state (identity, a desired state with one daily backup policy
    /// and one guest) without a cloud, for `bench/agent_backup.sh`.
    AgentFixture {
        #[arg(long)]
        state_dir: PathBuf,
        /// The storage target's durable id (filesystem UUID).
        #[arg(long)]
        target: String,
        #[arg(long)]
        guest: String,
    },
    ReportToPage {
        #[arg(long)]
        url: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_file: PathBuf,
        /// `host_id key` lines as `seed` writes them.
        #[arg(long)]
        keys: PathBuf,
        #[arg(long, default_value_t = 21)]
        rounds: usize,
    },
}

/// A non-negative, finite number of seconds from the command line.
fn seconds(name: &str, value: f64) -> Result<Duration, BenchError> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| BenchError::Invalid(format!("--{name} must be a number of seconds >= 0")))
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
        command @ (Command::SeedTransfers { .. }
        | Command::Pages { .. }
        | Command::ReportToPage { .. }) => run_dashboard(command),
        command @ (Command::Seed { .. } | Command::Liveness { .. }) => run_fleet(command),
        command @ (Command::Load { .. } | Command::HubEnqueue { .. }) => run_load(command),
        command @ (Command::WsEcho { .. } | Command::WsHold { .. }) => run_upgraded(command),
        command @ Command::Slowloris { .. } => run_slowloris(command),
        Command::AgentFixture {
            state_dir,
            target,
            guest,
        } => mftplus_bench::agent_fixture::write(&state_dir, &target, &guest),
    }
}

/// Dashboard timings and their seeding.
fn run_dashboard(command: Command) -> Result<(), BenchError> {
    match command {
        Command::SeedTransfers {
            database_url,
            transfers,
        } => {
            let seconds =
                runtime(false)?.block_on(seed_transfers::run(&database_url, transfers))?;
            eprintln!("seeded {transfers} transfers in {seconds:.1} s");
        }
        Command::Pages {
            url,
            email,
            password_file,
            pages,
            warmup,
            rounds,
        } => {
            let password = std::fs::read_to_string(password_file)?;
            runtime(false)?.block_on(pages::run_pages(
                &url,
                &email,
                password.trim_end(),
                &pages,
                warmup,
                rounds,
            ))?;
        }
        Command::ReportToPage {
            url,
            email,
            password_file,
            keys,
            rounds,
        } => {
            let password = std::fs::read_to_string(password_file)?;
            let hosts = seed::read_keys(&keys)?;
            runtime(false)?.block_on(pages::run_report_to_page(
                &url,
                &email,
                password.trim_end(),
                &hosts,
                rounds,
            ))?;
        }
        _ => unreachable!("dispatched by run"),
    }
    Ok(())
}

/// The fleet: seeding and the liveness pass.
fn run_fleet(command: Command) -> Result<(), BenchError> {
    match command {
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
            for (pass, statements) in [
                ("first", &summary.first_pass_statements),
                ("second", &summary.second_pass_statements),
            ] {
                for statement in statements {
                    eprintln!(
                        "  {pass} pass {:>9.1} ms {:>3}x {}",
                        statement.ms, statement.count, statement.sql
                    );
                }
            }
            println!("{}", serde_json::to_string(&summary)?);
        }
        _ => unreachable!("dispatched by run"),
    }
    Ok(())
}

/// Load on a cloud or a hub.
fn run_load(command: Command) -> Result<(), BenchError> {
    match command {
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
        _ => unreachable!("dispatched by run"),
    }
    Ok(())
}

/// Connections held through a proxy.
fn run_upgraded(command: Command) -> Result<(), BenchError> {
    match command {
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
        _ => unreachable!("dispatched by run"),
    }
    Ok(())
}

/// Legitimate traffic beside a slowloris.
fn run_slowloris(command: Command) -> Result<(), BenchError> {
    match command {
        Command::Slowloris {
            target,
            path,
            attack_connections,
            attack_source,
            legit_source,
            legit_rate,
            legit_connections,
            warmup_seconds,
            baseline_seconds,
            attack_seconds,
            trickle_seconds,
            reconnect_seconds,
            request_timeout_seconds,
            server_pid,
            watch_pid,
        } => {
            let options = slowloris::SlowlorisOptions {
                target,
                path,
                attack_connections,
                attack_sources: attack_source,
                legit_source,
                legit_rate,
                legit_connections,
                warmup: seconds("warmup-seconds", warmup_seconds)?,
                baseline: seconds("baseline-seconds", baseline_seconds)?,
                attack: seconds("attack-seconds", attack_seconds)?,
                trickle: seconds("trickle-seconds", trickle_seconds)?,
                reconnect_wait: seconds("reconnect-seconds", reconnect_seconds)?,
                refused_within: Duration::from_secs(1),
                request_timeout: seconds("request-timeout-seconds", request_timeout_seconds)?,
                server_pid,
                watch_pids: if watch_pid.is_empty() {
                    server_pid.into_iter().collect()
                } else {
                    watch_pid
                },
            };
            // One thread: the script pins the tool to one CPU.
            let summary = runtime(true)?.block_on(slowloris::run(options))?;
            let (b, u, a) = (&summary.baseline, &summary.under_attack, &summary.attack);
            eprintln!(
                "{}: baseline p50 {:.2} ms, p99 {:.2} ms, {:.0} req/s, {} errors; under attack p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {:.0} req/s, {} errors; attack: {} opened, {} closed by the server ({} refused at once), lifetime p50 {:.1} s, max {:.1} s, {:.0} held on average",
                summary.target,
                b.p50_ms,
                b.p99_ms,
                b.rate_per_s,
                b.error_count,
                u.p50_ms,
                u.p99_ms,
                u.max_ms,
                u.rate_per_s,
                u.error_count,
                a.opened,
                a.closed_by_server,
                a.refused_at_once,
                a.lifetime_p50_s,
                a.lifetime_max_s,
                a.held_avg
            );
            println!("{}", serde_json::to_string(&summary)?);
        }
        _ => unreachable!("dispatched by run"),
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
