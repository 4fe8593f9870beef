//! `mftctl`, the command-line client of an MFTPlus server: sign in, manage users, API keys and
//! tokens, read the server's configuration, verify or export the audit log, send and receive
//! end-to-end-encrypted files, and operate the fleet (customers, hosts, desired state, signing
//! destructive ops with the operator's SSH key on this machine, events), its edge hubs (the
//! registry and deploy keys) and the box certificates of the cloud's built-in CA.
//!
//! The commands live here as a library so they can be unit-tested; `src/main.rs` only parses the
//! arguments and calls [`main_with`]. Every request goes through `mftplus-client`.
//!
//! This crate is not a server. It keeps the client config file (`~/.config/mftplus/config.yaml`:
//! server URL and stored credentials, written 0600), the X25519 key pair next to it, and, while
//! a send is unfinished, its resume state (`~/.local/state/mftplus/uploads/<id>.json`, 0600, no
//! secrets), and the certificates `mftctl certificates` gets (`~/.config/mftplus/certificates/`:
//! `client.key` 0600, `client.crt` and `ca.crt` 0644). It never prints a token or key except
//! when a command's purpose is to hand out a new one, once.

mod apikeys;
mod audit;
mod ca_rotation;
mod certificates;
pub mod cli;
mod cli_certificates;
mod cli_fleet;
pub mod completions;
pub mod config_file;
pub mod context;
mod customers;
mod desired;
mod error;
mod events;
mod grants;
mod hosts;
mod hubs;
mod input;
mod keys;
mod links;
mod op_sign;
mod ops;
mod output;
mod passwords;
mod progress;
mod receive;
mod requests;
mod resume;
mod send;
mod server_config;
mod session;
mod tokens;
mod transfers;
mod upload_state;
mod users;

pub use cli::Cli;
pub use error::CliError;

use cli::Command;
use context::Context;

/// Runs a parsed command line and returns the process exit status: 0 on success, 1 on any
/// failure (the reason already printed on stderr as `error: <message> (<code>)`).
pub fn main_with(cli: Cli) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            report(&CliError::io("cannot start the async runtime", e));
            return 1;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(status) => status,
        Err(err) => {
            report(&err);
            1
        }
    }
}

fn report(err: &CliError) {
    output::note(&format!("error: {err}"));
}

/// Runs one command. `Ok` carries the exit status, which is not always 0: `audit verify` reports
/// a broken chain itself and exits 1.
pub async fn run(cli: Cli) -> Result<u8, CliError> {
    if let Some(result) = completions::run_local(&cli.command) {
        return result;
    }
    let mut ctx = Context::load(cli.global)?;
    run_in(&mut ctx, &cli.command).await
}

/// What [`run_with`] takes instead of the process environment, for tests that run commands
/// in-process (several users at once, each with their own HOME).
pub struct RunOptions<'a> {
    /// Looks up environment variables (`HOME`, `XDG_STATE_HOME`, `MFTPLUS_SERVER`, …).
    pub env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// `send` fails, as a dropped connection would, after this many chunk uploads: how tests
    /// interrupt a send at a known point to exercise `send --resume`.
    pub interrupt_send_after: Option<u64>,
}

pub async fn run_with(cli: Cli, options: RunOptions<'_>) -> Result<u8, CliError> {
    if let Some(result) = completions::run_local(&cli.command) {
        return result;
    }
    let mut ctx = Context::load_with_env(cli.global, options.env)?;
    ctx.interrupt_send_after = options.interrupt_send_after;
    run_in(&mut ctx, &cli.command).await
}

async fn run_in(ctx: &mut Context, command: &Command) -> Result<u8, CliError> {
    let result = dispatch(ctx, command).await;
    // The sender's next run grants what waits for it (decision 0022); best effort, on stderr.
    let explicit = matches!(
        command,
        Command::Logout | Command::Transfers(cli::TransfersCommand::Grant { .. })
    );
    if !explicit {
        grants::auto(ctx).await;
    }
    // Even a failed command may have received a renewed token worth keeping.
    ctx.persist_renewal();
    result
}

async fn dispatch(ctx: &mut Context, command: &Command) -> Result<u8, CliError> {
    match command {
        Command::Login(args) => {
            let status = session::login(ctx, args).await?;
            keys::register_after_login(ctx).await;
            Ok(status)
        }
        Command::Logout => session::logout(ctx).await,
        Command::Passwd(args) => passwords::passwd(ctx, args).await,
        Command::Status(args) => match &args.id {
            Some(id) if args.watch => transfers::watch(ctx, id, args.interval).await,
            Some(id) => transfers::show(ctx, id).await,
            None => session::status(ctx).await,
        },
        Command::Users(command) => users::run(ctx, command).await,
        Command::ApiKeys(command) => apikeys::run(ctx, command).await,
        Command::Auth(command) => tokens::run(ctx, command).await,
        Command::Config(command) => server_config::run(ctx, command).await,
        Command::Audit(command) => audit::run(ctx, command).await,
        Command::Keys(command) => keys::run(ctx, command).await,
        Command::Send(args) => send::send(ctx, args).await,
        Command::Receive(args) => receive::receive(ctx, args).await,
        Command::Transfers(command) => transfers::run(ctx, command).await,
        Command::Requests(command) => requests::run(ctx, command).await,
        Command::Customers(command) => customers::run(ctx, command).await,
        Command::Hosts(command) => hosts::run(ctx, command).await,
        Command::Guests(command) => hosts::run_guests(ctx, command).await,
        Command::Recovery(command) => hosts::run_recovery(ctx, command).await,
        Command::Desired(command) => desired::run(ctx, command).await,
        Command::Ops(command) => ops::run(ctx, command).await,
        Command::Events(args) => events::run(ctx, args).await,
        Command::Notifications(command) => events::run_notifications(ctx, command).await,
        Command::Hubs(command) => hubs::run(ctx, command).await,
        Command::Certificates(command) => certificates::run(ctx, command).await,
        // Answered by `run`/`run_with` before a context is loaded; kept here for completeness.
        Command::Completions(args) => completions::print(args),
        Command::Man(args) => completions::man(args),
    }
}
