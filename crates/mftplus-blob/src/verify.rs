//! What both backends share for [`put_stream`](crate::BlobStore::put_stream): counting and
//! hashing a body as it passes, and the final decision whether it may be published.

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::{BlobError, BlobResult, ByteStream};

/// How much of a streamed body the filesystem backend gathers before one write: large enough
/// that a 10 MiB chunk takes a handful of writes, small enough that many concurrent uploads
/// stay cheap in memory.
pub const STREAM_WRITE_BATCH: usize = 1024 * 1024;

/// What [`put_stream`](crate::BlobStore::put_stream) stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub len: u64,
    pub sha256: [u8; 32],
}

/// Length and SHA-256 of a body seen so far, refusing it as soon as it passes `max_len`.
pub(crate) struct Digesting {
    hasher: Sha256,
    len: u64,
    max_len: u64,
}

impl Digesting {
    pub(crate) fn new(max_len: u64) -> Digesting {
        Digesting {
            hasher: Sha256::new(),
            len: 0,
            max_len,
        }
    }

    /// Counts a piece that arrived, before it is kept anywhere: `TooLarge` once the body is
    /// over the limit, so an oversized body is never buffered or written past it.
    pub(crate) fn admit(&mut self, piece_len: usize) -> BlobResult<()> {
        self.len = self.len.saturating_add(piece_len as u64);
        if self.len > self.max_len {
            return Err(BlobError::TooLarge {
                max_len: self.max_len,
            });
        }
        Ok(())
    }

    pub(crate) fn update(&mut self, piece: &[u8]) {
        self.hasher.update(piece);
    }

    fn digest(self) -> StoredObject {
        StoredObject {
            len: self.len,
            sha256: self.hasher.finalize().into(),
        }
    }

    /// The stored object if the body's digest is the expected one, else `DigestMismatch`.
    pub(crate) fn finish(self, expected: &[u8; 32]) -> BlobResult<StoredObject> {
        let sha256: [u8; 32] = self.hasher.finalize().into();
        if &sha256 != expected {
            return Err(BlobError::DigestMismatch {
                actual: to_hex(&sha256),
            });
        }
        Ok(StoredObject {
            len: self.len,
            sha256,
        })
    }
}

/// Length and SHA-256 of a body (at most `max_len` bytes, else `TooLarge`) without storing
/// it: for checking a stored object from [`get_stream`](crate::BlobStore::get_stream), or a
/// retried upload against what is recorded, in constant memory.
pub async fn digest_stream(mut body: ByteStream, max_len: u64) -> BlobResult<StoredObject> {
    let mut digest = Digesting::new(max_len);
    while let Some(piece) = body.next().await {
        let piece = piece?;
        digest.admit(piece.len())?;
        digest.update(&piece);
    }
    Ok(digest.digest())
}

/// A small body read whole (at most `max_len` bytes, else `TooLarge`), checked against the
/// `expected` SHA-256 (else `DigestMismatch`): for a chunk kept outside the payload store.
pub async fn read_verified(
    mut body: ByteStream,
    max_len: u64,
    expected: &[u8; 32],
) -> BlobResult<(Vec<u8>, StoredObject)> {
    let mut digest = Digesting::new(max_len);
    let mut bytes = Vec::new();
    while let Some(piece) = body.next().await {
        let piece = piece?;
        digest.admit(piece.len())?;
        digest.update(&piece);
        bytes.extend_from_slice(&piece);
    }
    let stored = digest.finish(expected)?;
    Ok((bytes, stored))
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]])
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    #[test]
    fn accepts_the_declared_digest_within_the_limit() {
        let mut d = Digesting::new(5);
        for piece in [&b"ab"[..], b"", b"cde"] {
            d.admit(piece.len()).unwrap();
            d.update(piece);
        }
        let stored = d.finish(&sha(b"abcde")).unwrap();
        assert_eq!(stored.len, 5);
        assert_eq!(stored.sha256, sha(b"abcde"));
    }

    #[test]
    fn refuses_one_byte_over_the_limit() {
        let mut d = Digesting::new(5);
        d.admit(5).unwrap();
        assert!(matches!(
            d.admit(1),
            Err(BlobError::TooLarge { max_len: 5 })
        ));
    }

    #[test]
    fn refuses_another_digest_and_names_the_actual_one() {
        let mut d = Digesting::new(10);
        d.admit(3).unwrap();
        d.update(b"abc");
        match d.finish(&sha(b"abd")) {
            Err(BlobError::DigestMismatch { actual }) => assert_eq!(
                actual,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            ),
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }
}
