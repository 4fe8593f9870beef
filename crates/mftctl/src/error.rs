use std::fmt;

use mftplus_client::ClientError;

/// What a command failed with, printed as `error: <message> (<code>)`. The code is the server's
/// stable error code when the server refused, or a local word (`config`, `io`, `usage`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub message: String,
    pub code: String,
}

impl CliError {
    pub fn new(code: &str, message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: code.to_string(),
        }
    }

    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::new("usage", message)
    }

    pub fn io(what: impl fmt::Display, err: std::io::Error) -> CliError {
        CliError::new("io", format!("{what}: {err}"))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for CliError {}

impl From<mftplus_transfer::TransferError> for CliError {
    fn from(err: mftplus_transfer::TransferError) -> CliError {
        CliError {
            message: err.message,
            code: err.code,
        }
    }
}

impl From<ClientError> for CliError {
    fn from(err: ClientError) -> CliError {
        CliError {
            message: err.message(),
            code: err.code().to_string(),
        }
    }
}
