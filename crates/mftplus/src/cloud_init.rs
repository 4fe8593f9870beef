//! `mftplus cloud init --admin-email EMAIL [--password-file FILE]`: the first administrator of
//! a fresh deployment (decision 0017), and `mftplus cloud rotate-jwt`. Thin: the rules live in
//! `Cloud::init_first_admin` and `Cloud::rotate_jwt`.
//!
//! Exit status: 0 created; 1 any other failure (configuration, database, a refused email or
//! password); 2 a usage error; [`EXIT_ADMIN_EXISTS`] when the database already has an
//! administrator (nothing changed).

use mftplus_base::SystemClock;
use mftplus_cloud::jwt_rotation::RotateJwtError;
use mftplus_cloud::server::{Cloud, CloudError};
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Stable: scripts and configuration management tell "already initialised" from a failure.
pub const EXIT_ADMIN_EXISTS: u8 = 3;

/// Stable: `rotate-jwt` refused because the last rotation is too recent; nothing changed.
pub const EXIT_TOO_SOON: u8 = 3;

pub async fn run(
    config: Option<PathBuf>,
    admin_email: &str,
    password_file: Option<&Path>,
) -> ExitCode {
    let password = match read_password(password_file) {
        Ok(password) => password,
        Err(message) => return fail(&message),
    };
    let loaded = match mftplus_cloud::config::load(config.as_deref()) {
        Ok(loaded) => loaded,
        Err(err) => return fail(&err.to_string()),
    };
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    // Opens the database and applies the migrations, as the start does.
    let cloud = match Cloud::build(loaded, Arc::new(SystemClock)).await {
        Ok(cloud) => cloud,
        Err(err) => return fail(&err.to_string()),
    };
    match cloud.init_first_admin(admin_email, &password).await {
        Ok(user) => {
            println!(
                "created the first administrator {}; sign in with `mftctl login --email {}`",
                user.email, user.email
            );
            ExitCode::SUCCESS
        }
        Err(err @ CloudError::AdminExists(_)) => {
            eprintln!("error: {err}");
            ExitCode::from(EXIT_ADMIN_EXISTS)
        }
        Err(err) => fail(&err.to_string()),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// From the file (refused when group or others may read it), else the terminal, else one line
/// of standard input.
fn read_password(file: Option<&Path>) -> Result<String, String> {
    if let Some(path) = file {
        let text = mftplus_base::read_private_to_string(path)
            .map_err(|err| format!("--password-file: {err}"))?;
        let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
        if line.is_empty() {
            return Err(format!(
                "--password-file {}: the first line is empty",
                path.display()
            ));
        }
        return Ok(line.to_string());
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = prompt("Password for the first administrator: ")?;
        let again = prompt("The same password again: ")?;
        if first != again {
            return Err("the two passwords differ; nothing was changed".into());
        }
        return Ok(first);
    }
    let line = read_line(&stdin)?;
    if line.is_empty() {
        return Err("standard input held no password (give one line, or --password-file)".into());
    }
    Ok(line)
}

/// Asks on the terminal without echoing what is typed.
fn prompt(text: &str) -> Result<String, String> {
    let line = rpassword::prompt_password(text)
        .map_err(|e| format!("cannot read the password from the terminal: {e}"))?;
    if line.is_empty() {
        return Err("empty password".into());
    }
    Ok(line)
}

fn read_line(stdin: &std::io::Stdin) -> Result<String, String> {
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// `mftplus cloud rotate-jwt [--force]`. Exit status: 0 rotated; [`EXIT_TOO_SOON`] refused
/// because the previous secret still verifies live tokens (nothing changed); 1 any other failure.
pub async fn rotate_jwt(config: Option<PathBuf>, force: bool) -> ExitCode {
    let loaded = match mftplus_cloud::config::load(config.as_deref()) {
        Ok(loaded) => loaded,
        Err(err) => return fail(&err.to_string()),
    };
    // Opens the database too: the rotation is written to the audit log.
    let cloud = match Cloud::build(loaded, Arc::new(SystemClock)).await {
        Ok(cloud) => cloud,
        Err(err) => return fail(&err.to_string()),
    };
    match cloud.rotate_jwt(force).await {
        Ok(rotation) => {
            println!(
                "rotated the JWT signing secret: key {} signs from now on (running clouds reading \
                 these files switch within {} s); key {} keeps verifying until {}",
                rotation.new_kid,
                mftplus_cloud::auth::keyring::RELOAD_INTERVAL.as_secs(),
                rotation.old_kid,
                mftplus_base::clock::rfc3339(rotation.old_key_needed_until * 1000),
            );
            ExitCode::SUCCESS
        }
        Err(err @ RotateJwtError::TooSoon { .. }) => {
            eprintln!("error: {err}");
            ExitCode::from(EXIT_TOO_SOON)
        }
        Err(err) => fail(&err.to_string()),
    }
}
