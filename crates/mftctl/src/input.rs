//! Reading what the user types: passwords from a terminal without echo, or from stdin for
//! scripts (`--password-stdin`), the same convention as `docker login`.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::Path;

use mftplus_base::PrivateFileError;

use crate::error::CliError;

pub fn stdin_is_terminal() -> bool {
    io::stdin().is_terminal()
}

/// The first line of stdin, without its line ending. An empty line is refused: an empty
/// password is never what a script meant.
pub fn password_from_stdin() -> Result<String, CliError> {
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::io("cannot read the password from standard input", e))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(CliError::usage(
            "--password-stdin: standard input held no password",
        ));
    }
    Ok(password)
}

/// The first line of a file holding a secret (`--passphrase-file`). Like every secret file, it
/// is refused when group or others may read it.
pub fn secret_from_file(path: &Path, flag: &str) -> Result<String, CliError> {
    let text = read_private(path, &format!("{flag} {}", path.display()), || {
        format!(
            "{flag} {}: readable by other users; run chmod 600 on it",
            path.display()
        )
    })?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(CliError::usage(format!(
            "{flag} {}: the first line is empty",
            path.display()
        )));
    }
    Ok(line.to_string())
}

/// A file only its owner may read (a secret or a private key), refused before a byte is read
/// when group or others may. The refusal's code `insecure_file` is part of the CLI's contract;
/// `what` prefixes I/O errors, `refused` words the refusal.
pub fn read_private(
    path: &Path,
    what: &str,
    refused: impl FnOnce() -> String,
) -> Result<String, CliError> {
    mftplus_base::read_private_to_string(path).map_err(|err| match err {
        PrivateFileError::Insecure { .. } => CliError::new("insecure_file", refused()),
        PrivateFileError::Io { source, .. } => CliError::io(what, source),
    })
}

/// Asks on the terminal without echo.
pub fn prompt_password(prompt: &str) -> Result<String, CliError> {
    if !stdin_is_terminal() {
        return Err(CliError::usage(
            "no terminal to ask for the password on; pipe it in with --password-stdin",
        ));
    }
    let password = rpassword::prompt_password(prompt)
        .map_err(|e| CliError::io("cannot read the password", e))?;
    if password.is_empty() {
        return Err(CliError::usage("empty password"));
    }
    Ok(password)
}

/// Asks for one line of visible text on the terminal; `default` is taken on an empty answer.
pub fn prompt_line(prompt: &str, default: Option<&str>) -> Result<String, CliError> {
    let mut err = io::stderr().lock();
    let _ = match default {
        Some(d) => write!(err, "{prompt} [{d}]: "),
        None => write!(err, "{prompt}: "),
    };
    let _ = err.flush();
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::io("cannot read from the terminal", e))?;
    let answer = line.trim();
    match (answer.is_empty(), default) {
        (false, _) => Ok(answer.to_string()),
        (true, Some(d)) => Ok(d.to_string()),
        (true, None) => Err(CliError::usage(format!(
            "no {} given",
            prompt.to_lowercase()
        ))),
    }
}
