//! The one error type of the stream format.
//!
//! Variants are precise on purpose: the CLI and the server turn them into messages and stable
//! codes, and the tests assert on them. Nothing here carries secret material.

use std::io;

/// Everything that can go wrong while writing or reading an encrypted stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("not an MFTPlus encrypted stream (bad magic)")]
    BadMagic,
    #[error("unsupported stream format version {0}")]
    UnsupportedVersion(u8),
    #[error("unsupported cipher id {0}")]
    UnsupportedCipher(u8),
    #[error("unsupported compression id {0}")]
    UnsupportedCompression(u8),
    #[error("chunk size {0} is outside the allowed range")]
    InvalidChunkSize(u32),
    #[error("zstd compression level {0} is outside 1..=19")]
    InvalidCompressionLevel(i32),
    /// Structure that cannot be parsed (bad lengths, reserved bits set, unknown frame kind).
    #[error("malformed stream: {0}")]
    Malformed(&'static str),
    /// The header MAC does not verify under the unwrapped file key, or the stanza meant for us
    /// was altered: someone changed the header after it was written.
    #[error("the stream header has been tampered with")]
    HeaderTampered,
    #[error("the stream is not encrypted to any of the given keys")]
    NoMatchingRecipient,
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("PBKDF2 iteration count {iterations} is below the minimum of {minimum}")]
    WeakKdfParameters { iterations: u32, minimum: u32 },
    #[error("PBKDF2 iteration count {iterations} is above the maximum of {maximum}")]
    KdfTooExpensive { iterations: u32, maximum: u32 },
    #[error("at least one recipient is required")]
    NoRecipients,
    #[error("too many recipients (at most {max})")]
    TooManyRecipients { max: usize },
    /// A share-link stanza asked for in a stream a browser cannot read (decision 0023).
    #[error("a share link needs a stream a browser can read: AES-256-GCM without compression")]
    NotBrowserReadable,
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// The chunk does not open under its expected position: flipped bits, reordered, duplicated,
    /// dropped or spliced in from another stream.
    #[error("chunk {index} failed authentication")]
    ChunkAuthFailed { index: u64 },
    #[error("chunk {index} is {len} bytes, more than the maximum of {max}")]
    ChunkTooLarge { index: u64, len: usize, max: usize },
    #[error("chunk {got} given where chunk {expected} was expected")]
    ChunkOutOfOrder { expected: u64, got: u64 },
    /// Authenticated, but not what a correct sender produces (wrong plaintext length, bad zstd).
    #[error("chunk {index} is invalid: {reason}")]
    InvalidChunk { index: u64, reason: &'static str },
    /// The stream ended before its last chunk and manifest.
    #[error("the stream is truncated")]
    Truncated,
    #[error("unexpected data after the end of the stream")]
    TrailingData,
    #[error("the manifest failed authentication")]
    ManifestAuthFailed,
    #[error("the file name in the manifest is too long ({len} bytes, at most {max})")]
    NameTooLong { len: usize, max: usize },
    /// The decrypted data disagrees with what the sender recorded in the manifest.
    #[error("manifest mismatch on {field}: manifest says {manifest}, stream has {actual}")]
    ManifestMismatch {
        field: &'static str,
        manifest: String,
        actual: String,
    },
    /// [`super::Encryptor::resume`] was given parameters the original stream was not written
    /// with.
    #[error("cannot resume this stream: {0}")]
    ResumeMismatch(&'static str),
    #[error("compression failed: {0}")]
    Compression(io::Error),
    #[error("the system random number generator failed")]
    Rng,
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

impl StreamError {
    /// Reading past the end of the input means the stream was cut short, not an I/O fault.
    pub(crate) fn from_read(err: io::Error) -> Self {
        if err.kind() == io::ErrorKind::UnexpectedEof {
            StreamError::Truncated
        } else {
            StreamError::Io(err)
        }
    }
}
