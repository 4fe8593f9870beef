use mftplus_client::ClientError;
use mftplus_crypto::stream::StreamError;
use std::fmt;

/// A failed step of a transfer: a stable code (the server's, or one of this crate's:
/// `integrity`, `wrong_passphrase`, `crypto`, `no_key`, `io`, `file_changed`, `exists`,
/// `unsafe_name`, `conflict`, `internal`) and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferError {
    pub code: String,
    pub message: String,
}

impl TransferError {
    pub fn new(code: &str, message: impl Into<String>) -> TransferError {
        TransferError {
            code: code.to_string(),
            message: message.into(),
        }
    }

    pub fn io(what: impl fmt::Display, err: std::io::Error) -> TransferError {
        TransferError::new("io", format!("{what}: {err}"))
    }

    /// A stream error with the code a person can act on: tampering and truncation are
    /// `integrity`, a wrong passphrase is `wrong_passphrase`.
    pub fn crypto(e: StreamError) -> TransferError {
        let code = match e {
            StreamError::ChunkAuthFailed { .. }
            | StreamError::ManifestAuthFailed
            | StreamError::ManifestMismatch { .. }
            | StreamError::HeaderTampered
            | StreamError::Truncated
            | StreamError::TrailingData
            | StreamError::ChunkTooLarge { .. }
            | StreamError::InvalidChunk { .. } => "integrity",
            StreamError::WrongPassphrase => "wrong_passphrase",
            _ => "crypto",
        };
        TransferError::new(code, format!("decryption failed: {e}"))
    }
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.message, self.code)
    }
}

impl std::error::Error for TransferError {}

impl From<ClientError> for TransferError {
    fn from(err: ClientError) -> TransferError {
        TransferError {
            message: err.message(),
            code: err.code().to_string(),
        }
    }
}
