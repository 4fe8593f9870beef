//! The payload store of MFTPlus: where the cloud keeps the ciphertext of transfers (sealed
//! chunks, the stream header, the sealed manifest) as opaque objects.
//!
//! One trait, [`BlobStore`], with two implementations chosen once at start-up:
//! [`FsBlobStore`] on the local filesystem (the default) and [`S3BlobStore`] on any
//! S3-compatible service (through the `object_store` crate). [`contract`] is the
//! backend-agnostic test suite both run unchanged.
//!
//! What it is not: it knows nothing about encryption, chunk hashes, transfer status or who may
//! read what. Those live in the cloud and in `mftplus-store`; the rows there say which objects
//! are complete and what their SHA-256 must be. The bytes stored here are already encrypted, so
//! the store never sees plaintext and never needs to.
//!
//! # Guarantees every backend gives
//! - **Atomic objects**: a reader sees either no object or a whole one, never a prefix, even if
//!   the writer is killed mid-`put`. Overwriting replaces the object as a whole (last writer
//!   wins; the cloud refuses different bytes for a stored index before it gets here).
//! - **Contained keys**: transfer ids and metadata names are validated when a [`TransferId`] or
//!   [`BlobKey`] is built (`[A-Za-z0-9_-]{1,64}`), so no key can escape the root or prefix.
//! - **Group durability**: `put` does not flush to stable storage; [`BlobStore::sync_transfer`]
//!   does, for every object of a transfer at once, so there is one flush per group, never one
//!   fsync per chunk. A killed process loses nothing `put` acknowledged (the data is in the
//!   OS); an OS crash or power loss may lose objects written since the last `sync_transfer`,
//!   and some filesystems may then show them empty. So callers call `sync_transfer` before they
//!   acknowledge a transfer as complete, and before committing a batch of rows that promise
//!   its blobs exist.
//!
//! - **Verified streaming writes**: [`BlobStore::put_stream`] stores a body as it arrives,
//!   hashing it on the way, and publishes the object only when the whole body arrived within
//!   its size limit with the declared SHA-256. A refused, failed or abandoned write leaves no
//!   object and (on the filesystem) no temp file. The filesystem backend holds at most
//!   [`STREAM_WRITE_BATCH`] of a body in memory; the S3 backend buffers one whole object
//!   (one chunk), because a single `PutObject` needs the body and its length up front.
//!
//! Call [`BlobStore::check`] at start-up: it is the only way to tell a missing bucket from
//! absent objects on S3.

pub mod contract;
mod fs;
mod key;
mod s3;
#[cfg(feature = "testing")]
pub mod testing;
mod verify;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;

pub use fs::FsBlobStore;
pub use key::{BlobKey, BlobName, TransferId, MAX_ID_LEN};
pub use s3::{S3BlobStore, S3Config};
pub use verify::{digest_stream, read_verified, StoredObject, STREAM_WRITE_BATCH};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A transfer id, metadata name or configured prefix is not acceptable.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The local filesystem failed (permissions, full disk, I/O error).
    #[error("blob store I/O error: {0}")]
    Io(String),
    /// The local filesystem has no space (or quota) left; nothing was stored. Kept apart from
    /// `Io` so the API can say so instead of answering an anonymous internal error.
    #[error("blob store is out of space: {0}")]
    StorageFull(String),
    /// The remote service failed or answered with an error; details are in the string.
    #[error("blob store backend error: {0}")]
    Backend(String),
    /// The store's configuration cannot work (e.g. the root is not a directory).
    #[error("blob store configuration error: {0}")]
    Config(String),
    /// A streamed body was longer than the limit given to `put_stream`; nothing was stored.
    #[error("object is larger than {max_len} bytes")]
    TooLarge { max_len: u64 },
    /// A streamed body's SHA-256 was not the expected one; nothing was stored.
    #[error("object has SHA-256 {actual}, not the expected one")]
    DigestMismatch {
        /// The body's SHA-256 in lowercase hex.
        actual: String,
    },
    /// The body being stored failed (e.g. the client's connection dropped); nothing was stored.
    #[error("the body being stored failed: {0}")]
    Source(String),
}

impl From<std::io::Error> for BlobError {
    fn from(err: std::io::Error) -> BlobError {
        match err.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                BlobError::StorageFull(err.to_string())
            }
            _ => BlobError::Io(err.to_string()),
        }
    }
}

pub type BlobResult<T> = Result<T, BlobError>;

/// A body handed to [`BlobStore::put_stream`], in pieces as they arrive. A piece that is an
/// error aborts the write (use [`BlobError::Source`]).
pub type ByteStream = BoxStream<'static, BlobResult<Bytes>>;

/// An object opened for streaming: its length (for `Content-Length`) and its bytes in pieces,
/// so a download never holds a whole chunk in memory.
pub struct BlobReader {
    pub len: u64,
    pub stream: BoxStream<'static, BlobResult<Bytes>>,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Where transfer payloads live. Implementations are shared between tasks as
/// `Arc<dyn BlobStore>`; all methods may be called concurrently, also for the same key.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// `fs` or `s3`.
    fn backend(&self) -> &'static str;

    /// Verifies the store is usable (the root is a writable directory; the bucket exists and
    /// the credentials can list it). Call at start-up: on S3 a missing bucket otherwise only
    /// shows as objects that read as absent.
    async fn check(&self) -> BlobResult<()>;

    /// Stores `bytes` under `key`, replacing any previous object atomically. Not durable until
    /// [`sync_transfer`](BlobStore::sync_transfer) returns.
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<()>;

    /// Stores the pieces of `body` under `key` if, and only if, the body is at most `max_len`
    /// bytes and its SHA-256 is `expected_sha256`; then replaces any previous object
    /// atomically, like [`put`](BlobStore::put). Otherwise (`TooLarge`, `DigestMismatch`,
    /// `Source` when the body fails, or the future dropped mid-way) nothing is stored and no
    /// leftover remains. Not durable until [`sync_objects`](BlobStore::sync_objects) or
    /// [`sync_transfer`](BlobStore::sync_transfer) returns.
    async fn put_stream(
        &self,
        key: &BlobKey,
        body: ByteStream,
        max_len: u64,
        expected_sha256: &[u8; 32],
    ) -> BlobResult<StoredObject>;

    /// The whole object, or `None` when absent. Buffers the object: meant for chunks (at most
    /// tens of MiB) and metadata; use [`get_stream`](BlobStore::get_stream) to serve downloads.
    async fn get(&self, key: &BlobKey) -> BlobResult<Option<Bytes>>;

    /// The object as a stream of pieces, or `None` when absent. The stream reads one consistent
    /// version even if the object is overwritten or deleted meanwhile.
    async fn get_stream(&self, key: &BlobKey) -> BlobResult<Option<BlobReader>>;

    async fn exists(&self, key: &BlobKey) -> BlobResult<bool>;

    /// Removes one object; `Ok` when it was already absent.
    async fn delete(&self, key: &BlobKey) -> BlobResult<()>;

    /// Removes every object of a transfer (chunks and metadata); idempotent.
    async fn delete_transfer(&self, transfer_id: &TransferId) -> BlobResult<()>;

    /// Indexes of the chunks stored for a transfer, ascending; empty when there are none.
    /// Metadata objects are not listed.
    async fn list(&self, transfer_id: &TransferId) -> BlobResult<Vec<u64>>;

    /// Makes every object of the transfer written so far durable, in one go. A no-op where
    /// writes are durable when acknowledged (S3).
    async fn sync_transfer(&self, transfer_id: &TransferId) -> BlobResult<()>;

    /// Makes the named objects durable, with the directory entries that reach them; objects
    /// that are absent (deleted meanwhile) are skipped. Cheaper than
    /// [`sync_transfer`](BlobStore::sync_transfer) when a transfer already has many synced
    /// objects: the chunk committer calls it once per batch with the batch's chunks.
    async fn sync_objects(&self, keys: &[BlobKey]) -> BlobResult<()> {
        let mut done: Vec<&TransferId> = Vec::new();
        for key in keys {
            if !done.contains(&key.transfer_id()) {
                self.sync_transfer(key.transfer_id()).await?;
                done.push(key.transfer_id());
            }
        }
        Ok(())
    }

    /// Removes leftovers of writes interrupted by a crash (never visible as objects) that are
    /// older than `older_than`, and returns how many it removed. Safe to run while writes are in
    /// flight as long as `older_than` is longer than any write takes. A no-op where a write
    /// leaves nothing behind (S3 single-part uploads).
    async fn sweep_incomplete(&self, older_than: Duration) -> BlobResult<u64>;
}

#[cfg(test)]
mod tests {
    use super::BlobError;
    use std::io::Write;

    /// A real ENOSPC, from the kernel's always-full device, is reported as a full store.
    #[test]
    fn a_full_disk_is_not_an_anonymous_io_error() {
        let mut full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let err = full
            .write_all(b"x")
            .and_then(|()| full.flush())
            .unwrap_err();
        assert!(matches!(BlobError::from(err), BlobError::StorageFull(_)));
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(matches!(BlobError::from(other), BlobError::Io(_)));
    }
}
