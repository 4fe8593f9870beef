//! The client side of end-to-end encrypted transfers (`docs/decisions/0008-transfer-protocol.md`,
//! `docs/stream-format.md`), shared by `mftctl` and the host agent's inbox and outbox: the
//! upload pipeline (`upload`), the download pipeline (`download`), sending a reader to a set of
//! public keys in one go (`send`), and receiving one transfer into a private temporary file
//! that is moved into place only once its manifest verified (`receive`).
//!
//! Progress is a callback, not a terminal: each program draws (or logs) it its own way.

pub mod download;
mod error;
pub mod receive;
pub mod send;
pub mod upload;

pub use error::TransferError;

/// Called with progress: bytes of ciphertext downloaded, or of plaintext sent so far.
pub type OnProgress<'a> = &'a mut (dyn FnMut(ProgressEvent) + Send);

/// What a pipeline reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressEvent {
    /// This many more bytes were moved.
    Add(u64),
    /// Everything up to this plaintext offset is on the server now (uploads).
    At(u64),
    /// Everything up to this offset was there already (a resumed upload).
    SkipTo(u64),
}
