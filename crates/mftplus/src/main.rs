//! `mftplus`: the server binary. Parses arguments, sets up logging, and hands over to a library.

use clap::{Parser, Subcommand};
use mftplus_base::SystemClock;
use mftplus_cloud::server::{bind, shutdown_signal, Cloud};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

mod admin;
mod cloud_init;
mod dev;
mod dev_agent;
mod healthcheck;

#[derive(Parser)]
#[command(
    name = "mftplus",
    version,
    about = "MFTPlus servers: the cloud control plane, the edge hub, and a local all-in-one dev mode"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (`mftplus cloud init` first on a new database).
    Cloud {
        /// Server config file [default: /etc/mftplus/server.yaml when present].
        #[arg(long, env = "MFTPLUS_CONFIG", global = true)]
        config: Option<PathBuf>,
        /// Validate the configuration, print the problems, and exit.
        #[arg(long)]
        check_config: bool,
        #[command(subcommand)]
        action: Option<CloudAction>,
    },
    /// Run the host agent on this box (`mftplus agent enroll` first). Config:
    /// ~/.config/mft-agent/config.yaml, or /etc/mftplus/agent.yaml for the service.
    Agent(mftplus_agent::cli::AgentArgs),
    /// Run an edge hub: a transparent proxy to the cloud for agents on a local network.
    /// Configured by environment variables (CLOUD_API_URL, HUB_REGISTRATION_KEY, HUB_PORT, …;
    /// see docs/hub.md).
    Hub,
    /// Probe a hub's /health: exit 0 iff it answers 200 within 3 s. The container's health
    /// check, so the image needs no shell or curl.
    Healthcheck {
        /// URL to probe [default: http://127.0.0.1:${HUB_PORT:-3002}/health].
        #[arg(long)]
        url: Option<String>,
    },
    /// Back up the cloud's data while it runs, or restore a backup onto an empty deployment
    /// (docs/backup.md).
    Admin(admin::AdminArgs),
    /// Run the product locally on embedded SQLite and print an admin credential.
    Dev {
        /// Folder for the database and generated secrets.
        #[arg(long, default_value = ".mftplus-dev")]
        data_dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        #[arg(long, default_value = "127.0.0.1:0")]
        metrics_listen: String,
        /// Where the edge hub in front of the cloud listens.
        #[arg(long, default_value = "127.0.0.1:3002")]
        hub_listen: String,
        /// Run the cloud alone, without the edge hub.
        #[arg(long)]
        no_hub: bool,
        /// Run no host agent (by default one enrolls as customer `local` and reports).
        #[arg(long)]
        no_agent: bool,
        /// Serve HTTPS with the dev cloud's own CA; the hub and the agent get client
        /// certificates from it.
        #[arg(long)]
        tls: bool,
    },
}

#[derive(Subcommand)]
enum CloudAction {
    /// Create the first administrator, once: refused (exit status 3, nothing changed) when the
    /// database already has an administrator. Uses the same configuration as `mftplus cloud`
    /// and applies the migrations. The password comes from --password-file, else the terminal
    /// (visible as typed), else one line of standard input; it must be at least 12 characters.
    Init {
        /// Email of the administrator to create.
        #[arg(long)]
        admin_email: String,
        /// File whose first line is the password; refused when group or others can read it.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Rotate the HS256 JWT signing secret without logging anyone out: the current secret moves
    /// to JWT_PREVIOUS_SECRET_FILE, a new one to JWT_SECRET_FILE; running clouds reading those
    /// files switch within seconds. Refused (exit status 3) while the previous secret still
    /// verifies live tokens, unless --force (docs/key-rotation.md).
    RotateJwt {
        /// Rotate even though tokens signed before the last rotation are still live; their
        /// sessions must sign in again.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A probe runs every few seconds in the container: no runtime, no logging set-up.
    if let Command::Healthcheck { url } = &cli.command {
        let url = url
            .clone()
            .unwrap_or_else(|| healthcheck::default_url(std::env::var("HUB_PORT").ok().as_deref()));
        return match healthcheck::probe(&url, healthcheck::DEADLINE) {
            Ok(()) => {
                println!("healthy: {url} answered 200");
                ExitCode::SUCCESS
            }
            Err(why) => {
                eprintln!("unhealthy: {why}");
                ExitCode::FAILURE
            }
        };
    }
    // Before the runtime starts its threads, so every thread's allocator sees the setting.
    mftplus_process::release_large_allocations_to_os();
    // On one CPU a work-stealing pool only adds cross-thread wake-ups to every request; the
    // single-threaded scheduler runs the same tasks without them (docs/benchmarks.md, "Edge
    // hub"). With more CPUs the pool spreads connections over them.
    // The agent is one loop waiting on the network most of the time: one thread is all it
    // uses, and a pool would only add memory.
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1)
        || matches!(cli.command, Command::Agent(_));
    let mut builder = if one_cpu {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    match builder.enable_all().build() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    mftplus_process::init_logging();
    let result = match cli.command {
        Command::Cloud {
            config,
            check_config: false,
            action:
                Some(CloudAction::Init {
                    admin_email,
                    password_file,
                }),
        } => return cloud_init::run(config, &admin_email, password_file.as_deref()).await,
        Command::Cloud {
            config,
            check_config: false,
            action: Some(CloudAction::RotateJwt { force }),
        } => return cloud_init::rotate_jwt(config, force).await,
        Command::Cloud {
            action: Some(_), ..
        } => Err(
            "--check-config checks the running configuration; give it without a subcommand".into(),
        ),
        Command::Cloud {
            config,
            check_config,
            action: None,
        } => run_cloud(config, check_config).await,
        Command::Hub => run_hub().await,
        Command::Admin(args) => return admin::run(args).await,
        Command::Agent(args) => mftplus_agent::cli::run(args).await,
        Command::Healthcheck { .. } => unreachable!("answered before the runtime starts"),
        Command::Dev {
            data_dir,
            listen,
            metrics_listen,
            hub_listen,
            no_hub,
            no_agent,
            tls,
        } => {
            let options = mftplus_cloud::dev::DevOptions {
                data_dir,
                listen,
                metrics_listen,
                tls,
            };
            dev::run(options, (!no_hub).then_some(hub_listen), !no_agent).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `mftplus cloud --check`: the configuration, the payload store, the fleet settings, the CA
/// and the TLS files, each checked for real; every problem is listed, not only the first.
async fn check_cloud(loaded: &mftplus_cloud::config::LoadedConfig) -> Result<(), String> {
    let file = loaded
        .file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(no file)".into());
    // Past the configuration itself, each check runs even when another failed, so one
    // run shows everything. The payload store is checked for real (folder writable, bucket
    // listable): a wrong bucket or credential would otherwise only show at the first upload.
    let mut failed = Vec::new();
    let mut report = |result: Result<String, String>| {
        result.unwrap_or_else(|problem| {
            failed.push(problem);
            String::new()
        })
    };
    let blobs = report(
        mftplus_cloud::blobs::check(&loaded.config.transfers)
            .await
            .map_err(|e| e.to_string()),
    );
    let fleet = report(mftplus_cloud::fleet::check(&loaded.config));
    // The CA is opened as the start would (created on first use), so its roots and CRL
    // exist for the listener check below.
    let ca = report(
        mftplus_cloud::ca::CaRuntime::open(
            &loaded.config,
            mftplus_base::Clock::now_secs(&SystemClock),
        )
        .map(|ca| match ca {
            Some(ca) => format!("built-in CA in {}", ca.dir().display()),
            None => "built-in CA off".to_string(),
        })
        .map_err(|e| e.to_string()),
    );
    // The certificate, key and client CAs are read for real, as the listener will.
    let tls = report(
        mftplus_cloud::tls::load(&loaded.config)
            .map(|tls| match tls {
                Some(tls) => format!(
                    "TLS 1.3 ({:?} client certificates)",
                    tls.settings().client_auth
                ),
                None => "off".to_string(),
            })
            .map_err(|e| e.to_string()),
    );
    if !failed.is_empty() {
        let count = match failed.len() {
            1 => "1 problem".to_string(),
            n => format!("{n} problems"),
        };
        return Err(format!(
            "configuration check failed, {count}:\n  {}",
            failed.join("\n  ")
        ));
    }
    println!(
        "configuration OK: {file}, mode {}, payload store {blobs}, fleet: {fleet}, tls: {tls}, {ca}",
        loaded.config.mode.as_str()
    );
    for warning in &loaded.warnings {
        println!("warning: {warning}");
    }
    Ok(())
}

async fn run_cloud(config_path: Option<PathBuf>, check_only: bool) -> Result<(), String> {
    let loaded = mftplus_cloud::config::load(config_path.as_deref()).map_err(|e| e.to_string())?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    if check_only {
        return check_cloud(&loaded).await;
    }
    let listen = loaded.config.server.listen.clone();
    let metrics_listen = loaded.config.server.metrics_listen.clone();
    let cloud = Cloud::build(loaded, Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())?;
    let api = bind(&listen, "API").await.map_err(|e| e.to_string())?;
    let metrics = bind(&metrics_listen, "metrics")
        .await
        .map_err(|e| e.to_string())?;
    // The bound addresses, not the configured ones: with port 0 only these say where to connect.
    let api_addr = api.local_addr().map_err(|e| e.to_string())?;
    let metrics_addr = metrics.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(api = %api_addr, metrics = %metrics_addr, backend = cloud.state().store.backend(), "mftplus cloud listening");
    cloud
        .serve(api, Some(metrics), shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("mftplus cloud stopped");
    Ok(())
}

async fn run_hub() -> Result<(), String> {
    let config = mftplus_hub::HubConfig::from_env().map_err(|e| e.to_string())?;
    let listener = mftplus_hub::bind(&config)
        .await
        .map_err(|e| e.to_string())?;
    let hub = mftplus_hub::Hub::build(config).map_err(|e| e.to_string())?;
    hub.serve(listener, mftplus_process::shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("mftplus hub stopped");
    Ok(())
}
