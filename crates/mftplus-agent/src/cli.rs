//! The agent's command line, shared by `mftplus agent` (the all-in-one binary) and the slim
//! `mftplus-agent` binary boxes install: run the agent, enroll this box (`enroll`), show
//! what it is doing (`status`), or replace its host key (`rotate-key`).

use crate::config::{self, AgentConfig};
use crate::enroll::{enroll, hostname, EnrollRequestArgs};
use crate::{Agent, AgentError};
use clap::{Args, Subcommand};
use mftplus_base::{Secret, SystemClock};
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Args)]
pub struct AgentArgs {
    /// Agent config [default: $MFT_AGENT_CONFIG, ~/.config/mft-agent/config.yaml, /etc/mftplus/agent.yaml].
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    action: Option<AgentAction>,
}

#[derive(Subcommand)]
enum AgentAction {
    /// Enroll this box with a customer's retrieval password (agent first).
    Enroll(EnrollArgs),
    /// Show this box's identity, converged generation and latest journal steps.
    Status,
    /// Show the client certificate; `--recover` gets a new one after it lapsed or was revoked.
    Certificate(CertificateArgs),
    /// Replace this box's host key; the old one keeps working at the cloud for its grace, and
    /// a running agent switches to the new one at its next cycle.
    RotateKey,
    /// Backups with restic: `init` (key, repository, escrow), `run`, `test-restore`, `status`,
    /// `recover` (a replacement box, with the recovery code).
    #[command(subcommand)]
    Backup(crate::cli_backup::BackupAction),
}

#[derive(Args)]
struct CertificateArgs {
    /// Get a new certificate with the customer's retrieval password (a box that was offline
    /// past expiry, or whose certificate was revoked).
    #[arg(long)]
    recover: bool,
    #[command(flatten)]
    password: PasswordArgs,
}

#[derive(Args)]
struct PasswordArgs {
    /// Read the retrieval password from this file (refused when group/other can read it).
    #[arg(long, conflicts_with = "password_stdin")]
    password_file: Option<PathBuf>,
    /// Read the retrieval password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Args)]
struct EnrollArgs {
    /// The cloud or an edge hub [default: server.url of the config].
    #[arg(long)]
    server: Option<String>,
    /// The customer this box belongs to.
    #[arg(long)]
    customer: String,
    #[command(flatten)]
    password: PasswordArgs,
    /// Take over this lost host's identity (the operator must arm recovery mode first).
    #[arg(long, value_name = "HOST_ID")]
    restore: Option<String>,
    /// The name this box enrolls under [default: the system's host name].
    #[arg(long)]
    hostname: Option<String>,
    /// Where the agent keeps its state [default: per user, or /var/lib/mftplus-agent as root].
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// PEM CA bundle that signed the server's TLS certificate, when it is not a public CA.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// With --restore: the customer's recovery code, to unwrap the escrowed backup key and
    /// restore the guests' data at once (else `mftplus agent backup recover` does it later).
    #[arg(long, requires = "restore")]
    recovery_code_file: Option<PathBuf>,
}

pub async fn run(args: AgentArgs) -> Result<(), String> {
    let env = |name: &str| std::env::var(name).ok();
    match args.action {
        None => run_agent(args.config.as_deref()).await,
        Some(AgentAction::Status) => {
            let path = config::locate(args.config.as_deref(), &env).map_err(|e| e.to_string())?;
            status(&AgentConfig::load(&path).map_err(|e| e.to_string())?)
        }
        Some(AgentAction::Enroll(enroll_args)) => {
            run_enroll(args.config.as_deref(), enroll_args).await
        }
        Some(AgentAction::RotateKey) => {
            let path = config::locate(args.config.as_deref(), &env).map_err(|e| e.to_string())?;
            rotate_key(&AgentConfig::load(&path).map_err(|e| e.to_string())?).await
        }
        Some(AgentAction::Backup(action)) => {
            let path = config::locate(args.config.as_deref(), &env).map_err(|e| e.to_string())?;
            let config = AgentConfig::load(&path).map_err(|e| e.to_string())?;
            crate::cli_backup::run(&config, action).await
        }
        Some(AgentAction::Certificate(cert_args)) => {
            let path = config::locate(args.config.as_deref(), &env).map_err(|e| e.to_string())?;
            let config = AgentConfig::load(&path).map_err(|e| e.to_string())?;
            certificate(&config, &cert_args).await
        }
    }
}

async fn run_agent(explicit: Option<&Path>) -> Result<(), String> {
    let env = |name: &str| std::env::var(name).ok();
    let path = config::locate(explicit, &env).map_err(|e| e.to_string())?;
    let config = AgentConfig::load(&path).map_err(|e| e.to_string())?;
    let host_id = crate::enrolled_host(&config).map_err(|e| describe(&e))?;
    let driver = crate::select_driver(&config, &host_id)
        .await
        .map_err(|e| e.to_string())?;
    let clock: mftplus_base::SharedClock = Arc::new(SystemClock);
    let backups = crate::backup::Backups::open(&config, clock.clone()).map_err(|e| describe(&e))?;
    let files = crate::files::FileMover::open(&config, clock.clone()).map_err(|e| describe(&e))?;
    let agent = Agent::open(config, driver, clock).map_err(|e| describe(&e))?;
    let (stop, stopping) = watch::channel(false);
    if let Some(backups) = backups {
        tokio::spawn(backups.run(stopping.clone()));
    }
    if let Some(files) = files {
        tokio::spawn(files.run(stopping.clone()));
    }
    tokio::spawn(async move {
        mftplus_process::shutdown_signal().await;
        tracing::info!("stop requested: finishing the current step");
        let _ = stop.send(true);
    });
    agent.run(stopping).await.map_err(|e| describe(&e))
}

fn describe(err: &AgentError) -> String {
    format!("{err} [{}]", err.code())
}

async fn run_enroll(explicit: Option<&Path>, args: EnrollArgs) -> Result<(), String> {
    let env = |name: &str| std::env::var(name).ok();
    let is_root = rustix::process::geteuid().is_root();
    // An existing config supplies the server; a first enrollment writes one.
    let located = config::locate(explicit, &env).ok().filter(|p| p.exists());
    let mut config = match (&located, &args.server) {
        (Some(path), _) => AgentConfig::load(path).map_err(|e| e.to_string())?,
        (None, Some(server)) => {
            AgentConfig::for_server(server, config::default_state_dir(&env, is_root))?
        }
        (None, None) => {
            return Err("no agent config yet: pass --server URL (the cloud or an edge hub)".into());
        }
    };
    if let Some(server) = &args.server {
        config.server_url = config::validate_url(server)?;
    }
    if let Some(dir) = &args.state_dir {
        config.state_dir = dir.clone();
    }
    if let Some(ca_file) = &args.ca_file {
        config.server_ca_file = Some(ca_file.clone());
    }
    let password = read_password(&args.password, &args.customer)?;
    let request = EnrollRequestArgs {
        customer_id: args.customer.clone(),
        password,
        restore: args.restore.clone(),
        hostname: args.hostname.clone().unwrap_or_else(hostname),
    };
    let enrolled = enroll(&config, &request, &SystemClock)
        .await
        .map_err(|e| describe(&e))?;
    if located.is_none()
        || args.server.is_some()
        || args.state_dir.is_some()
        || args.ca_file.is_some()
    {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None if is_root => PathBuf::from(config::SYSTEM_CONFIG),
            None => config::user_config_path(&env).ok_or("HOME is not set")?,
        };
        write_config(&path, &config)?;
        println!("Config:     {}", path.display());
    }
    println!(
        "{} host {} of customer {} ({} operator key(s) pinned).",
        if enrolled.restored {
            "Restored"
        } else {
            "Enrolled"
        },
        enrolled.host_id,
        enrolled.customer_id,
        enrolled.pinned_keys
    );
    match &enrolled.certificate {
        Ok((serial, not_after)) => println!(
            "Certificate: serial {serial}, valid until {} (renewed automatically)",
            rfc3339(*not_after)
        ),
        Err(why) => println!("Certificate: none yet ({why})"),
    }
    println!("State:      {}", config.state_dir.display());
    if enrolled.escrow_stored {
        match &args.recovery_code_file {
            Some(file) => {
                let code = crate::cli_backup::RecoveryCodeArgs {
                    recovery_code_file: Some(file.clone()),
                    ..Default::default()
                };
                crate::cli_backup::run(&config, crate::cli_backup::BackupAction::Recover(code))
                    .await?;
            }
            None => println!(
                "Backups:    the lost box's backup key is escrowed; restore the guests' data with \
                 `mftplus agent backup recover` (the customer's recovery code) before starting the agent"
            ),
        }
    }
    println!("Next:       mftplus agent   (or start the mftplus-agent service)");
    Ok(())
}

/// A YAML scalar for `value`: JSON strings are valid YAML, and quoting keeps odd paths intact.
fn quoted(value: &impl serde::Serialize) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| e.to_string())
}

/// Writes what enrollment decided (server, CA, state folder). An existing file keeps every
/// other key it has (driver, poll, backoff…); only comments are lost.
fn write_config(path: &Path, config: &AgentConfig) -> Result<(), String> {
    let text = match std::fs::read_to_string(path) {
        Ok(existing) => patched_config(&existing, config)?,
        Err(_) => fresh_config(config)?,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    mftplus_base::write_private(path, text.as_bytes()).map_err(|e| e.to_string())
}

fn fresh_config(config: &AgentConfig) -> Result<String, String> {
    let mut text = format!(
        "# Written by `mftplus agent enroll`. Pointing server.url at an edge hub is the only\n\
         # change an agent needs to work through it.\nserver:\n  url: {}\n  timeout: {}s\n",
        quoted(&config.server_url)?,
        config.server_timeout.as_secs(),
    );
    if let Some(ca_file) = &config.server_ca_file {
        text.push_str(&format!("  ca_file: {}\n", quoted(ca_file)?));
    }
    text.push_str(&format!("state_dir: {}\n", quoted(&config.state_dir)?));
    Ok(text)
}

fn patched_config(existing: &str, config: &AgentConfig) -> Result<String, String> {
    use serde_yaml::{Mapping, Value};
    let mut root: Value =
        serde_yaml::from_str(existing).map_err(|e| format!("the existing config: {e}"))?;
    let map = root
        .as_mapping_mut()
        .ok_or("the existing config is not a YAML mapping")?;
    let server = map
        .entry(Value::from("server"))
        .or_insert_with(|| Value::Mapping(Mapping::new()))
        .as_mapping_mut()
        .ok_or("server: is not a mapping")?;
    server.insert("url".into(), Value::from(config.server_url.clone()));
    if let Some(ca_file) = &config.server_ca_file {
        server.insert("ca_file".into(), Value::from(ca_file.display().to_string()));
    }
    map.insert(
        "state_dir".into(),
        Value::from(config.state_dir.display().to_string()),
    );
    serde_yaml::to_string(&root).map_err(|e| e.to_string())
}

fn read_password(args: &PasswordArgs, customer: &str) -> Result<Secret, String> {
    let text = if let Some(file) = &args.password_file {
        mftplus_base::read_private_to_string(file).map_err(|e| e.to_string())?
    } else if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        line
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Retrieval password of {customer}: "))
            .map_err(|e| format!("cannot read the password: {e}"))?
    } else {
        return Err(
            "no retrieval password: use --password-file, --password-stdin, or a terminal".into(),
        );
    };
    let password = text.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err("the retrieval password is empty".into());
    }
    Ok(Secret::new(password))
}

fn status(config: &AgentConfig) -> Result<(), String> {
    let db = crate::state::StateDb::open_to_read(&config.state_dir).map_err(|e| e.to_string())?;
    let Some(identity) = db.identity().map_err(|e| e.to_string())? else {
        return Err(describe(&AgentError::NotEnrolled {
            state_dir: config.state_dir.display().to_string(),
        }));
    };
    let (generation, _) = db.desired().map_err(|e| e.to_string())?;
    let applied = db.applied_generation().map_err(|e| e.to_string())?;
    println!(
        "Host:       {} (customer {})",
        identity.host_id, identity.customer_id
    );
    println!("Server:     {}", config.server_url);
    println!("Desired:    generation {generation} (cached)");
    println!("Converged:  generation {applied}");
    print_certificate(config, &db)?;
    if let Some(pending) = db.pending_key_rotation().map_err(|e| e.to_string())? {
        println!(
            "Key rotation: pending since {} (finished by the running agent or `mftplus agent rotate-key`)",
            mftplus_base::clock::rfc3339(pending.begun_at_ms)
        );
    }
    println!("Journal (newest first):");
    for entry in db.journal(10).map_err(|e| e.to_string())? {
        println!(
            "  #{:<5} gen {:<4} {:<10} {:<10} {}{}",
            entry.seq,
            entry.generation,
            entry.guest_id,
            entry.action,
            entry.state,
            entry.detail.map(|d| format!(": {d}")).unwrap_or_default()
        );
    }
    Ok(())
}

fn rfc3339(unix: i64) -> String {
    mftplus_base::clock::rfc3339(unix * 1000)
}

fn print_certificate(config: &AgentConfig, db: &crate::state::StateDb) -> Result<(), String> {
    if let Some(cert) = &config.client_cert {
        println!(
            "Certificate: {} (from the config; not managed)",
            cert.display()
        );
        return Ok(());
    }
    let now = mftplus_base::Clock::now_secs(&SystemClock);
    match db.certificate().map_err(|e| e.to_string())? {
        None => println!("Certificate: none (asked for when the agent runs)"),
        Some(cert) => {
            let state = if cert.not_after <= now {
                "EXPIRED: recover with `mftplus agent certificate --recover`"
            } else if now >= cert.renew_at() {
                "renewal due"
            } else {
                "valid"
            };
            println!(
                "Certificate: serial {}, valid until {}, renews from {} ({state})",
                cert.serial,
                rfc3339(cert.not_after),
                rfc3339(cert.renew_at())
            );
        }
    }
    Ok(())
}

/// `mftplus agent rotate-key`: one command, safe against a crash at any point (a rotation left
/// pending is finished by the next run of this command or by the running agent). The new key
/// goes to `agent.db` only; it is never printed.
async fn rotate_key(config: &AgentConfig) -> Result<(), String> {
    // Does not touch the journal, so it is safe beside a running agent.
    let db = crate::state::StateDb::open_to_read(&config.state_dir).map_err(|e| e.to_string())?;
    let Some(identity) = db.identity().map_err(|e| e.to_string())? else {
        return Err(describe(&AgentError::NotEnrolled {
            state_dir: config.state_dir.display().to_string(),
        }));
    };
    let now_ms = mftplus_base::Clock::now_ms(&SystemClock);
    let client = crate::enroll::enrolled_client(config, &db, &identity, &SystemClock)
        .map_err(|e| describe(&e))?;
    let rotated = crate::key_rotation::rotate(&db, &client, &identity.host_id, now_ms)
        .await
        .map_err(|e| match e {
            crate::key_rotation::RotateError::Retry(_) => format!(
                "{e} [{}]; the rotation stays pending: run this again, or let the running agent                  finish it",
                e.code()
            ),
            other => format!("{other} [{}]", other.code()),
        })?;
    println!(
        "Rotated the host key of host {}{}; the new key is in {}.",
        identity.host_id,
        if rotated.repeated {
            " (finishing an interrupted rotation)"
        } else {
            ""
        },
        db.path().display()
    );
    println!(
        "The old key keeps working until {}; a running agent switches at its next cycle.",
        rotated.previous_key_valid_until
    );
    Ok(())
}

async fn certificate(config: &AgentConfig, args: &CertificateArgs) -> Result<(), String> {
    if !args.recover {
        let db =
            crate::state::StateDb::open_to_read(&config.state_dir).map_err(|e| e.to_string())?;
        return print_certificate(config, &db);
    }
    let (db, _) = crate::state::StateDb::open(&config.state_dir).map_err(|e| e.to_string())?;
    let Some(identity) = db.identity().map_err(|e| e.to_string())? else {
        return Err(describe(&AgentError::NotEnrolled {
            state_dir: config.state_dir.display().to_string(),
        }));
    };
    let password = read_password(&args.password, &identity.customer_id)?;
    let options = crate::enroll::client_options(config, None).map_err(|e| describe(&e))?;
    let client = mftplus_client::AgentClient::with_options(
        &config.server_url,
        Some(identity.host_key.expose()),
        options,
    )
    .map_err(|e| e.to_string())?;
    let now_ms = mftplus_base::Clock::now_ms(&SystemClock);
    let ask = crate::certificate::Ask::Recover {
        password: password.expose(),
    };
    let cert = crate::certificate::obtain(&db, &client, &identity.host_id, ask, now_ms)
        .await
        .map_err(|e| format!("{} [{}]", e.message(), e.code()))?;
    println!(
        "Recovered: serial {}, valid until {}. A running agent picks it up within minutes.",
        cert.serial,
        rfc3339(cert.not_after)
    );
    Ok(())
}
