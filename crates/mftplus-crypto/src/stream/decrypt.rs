//! [`Decryptor`]: opens a stream's chunks in order and checks its manifest.
//!
//! It never trusts an index or a length from the input: the chunk counter is its own, the
//! last-chunk claim is checked by the nonce, and every buffer is bounded by the header's chunk
//! size, so memory stays at about two chunks whatever the input says.

use std::io::Read;

use ring::digest;
use zeroize::Zeroizing;

use super::chunk::{max_sealed_chunk_len, SealedChunk};
use super::cipher::{chunk_nonce, new_chunk_cipher, ChunkCipher, StreamKeys};
use super::header::Header;
use super::manifest::Manifest;
use super::recipients::{self, Identity};
use super::{CompressionId, StreamError};

/// Opens a stream chunk by chunk, in order, and checks the manifest at the end.
pub struct Decryptor {
    header: Header,
    cipher: Box<dyn ChunkCipher>,
    manifest_cipher: Box<dyn ChunkCipher>,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
    chunk_size: usize,
    max_sealed: usize,
    /// Sealed bytes in, plaintext out (without compression).
    work: Zeroizing<Vec<u8>>,
    /// Decompressed plaintext (with compression).
    plain: Zeroizing<Vec<u8>>,
    next_index: u64,
    size: u64,
    seen_last: bool,
    hasher: digest::Context,
}

impl Decryptor {
    /// Unwraps the file key with the first fitting identity and authenticates the header.
    pub fn new(header: Header, identities: &[Identity<'_>]) -> Result<Self, StreamError> {
        let file_key = recipients::unwrap(header.stanzas(), identities)?;
        let keys = StreamKeys::derive(&file_key, header.file_salt(), header.cipher());
        header.verify(&keys.header_mac)?;
        let chunk_size = header.chunk_size() as usize;
        let max_sealed = max_sealed_chunk_len(header.chunk_size(), header.compression());
        let decompressor = match header.compression() {
            CompressionId::None => None,
            CompressionId::Zstd => {
                Some(zstd::bulk::Decompressor::new().map_err(StreamError::Compression)?)
            }
        };
        let plain = match decompressor {
            Some(_) => Vec::with_capacity(chunk_size),
            None => Vec::new(),
        };
        Ok(Decryptor {
            cipher: new_chunk_cipher(header.cipher(), &keys.payload),
            manifest_cipher: new_chunk_cipher(header.cipher(), &keys.manifest),
            header,
            decompressor,
            chunk_size,
            max_sealed,
            work: Zeroizing::new(Vec::with_capacity(max_sealed)),
            plain: Zeroizing::new(plain),
            next_index: 0,
            size: 0,
            seen_last: false,
            hasher: digest::Context::new(&digest::SHA256),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Index of the chunk [`Decryptor::open_chunk`] expects next.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Largest sealed chunk this stream may contain; larger frames are rejected unread.
    pub fn max_sealed_chunk_len(&self) -> usize {
        self.max_sealed
    }

    /// Authenticates and decrypts the next chunk. `last` is what the framing (or the server's
    /// chunk count) claims; a wrong claim fails authentication, it cannot be used to cut the
    /// stream short. The returned plaintext is valid until the next call.
    pub fn open_chunk(&mut self, sealed: &[u8], last: bool) -> Result<&[u8], StreamError> {
        self.check_len(sealed.len())?;
        self.work.clear();
        self.work.extend_from_slice(sealed);
        self.open_work(last)
    }

    /// [`Decryptor::open_chunk`] for a [`SealedChunk`], also checking its index.
    pub fn open(&mut self, chunk: &SealedChunk) -> Result<&[u8], StreamError> {
        if chunk.index != self.next_index {
            return Err(StreamError::ChunkOutOfOrder {
                expected: self.next_index,
                got: chunk.index,
            });
        }
        self.open_chunk(&chunk.bytes, chunk.last)
    }

    /// Reads a `len`-byte sealed chunk from `reader` straight into the work buffer and opens it.
    pub(crate) fn open_from_reader<R: Read>(
        &mut self,
        reader: &mut R,
        len: usize,
        last: bool,
    ) -> Result<&[u8], StreamError> {
        self.check_len(len)?;
        self.work.clear();
        self.work.resize(len, 0);
        reader
            .read_exact(&mut self.work)
            .map_err(StreamError::from_read)?;
        self.open_work(last)
    }

    /// Checks the sealed manifest against everything seen. `Ok` is the only point at which the
    /// output may be treated as the complete file.
    pub fn finish(self, sealed_manifest: &[u8]) -> Result<Manifest, StreamError> {
        if !self.seen_last {
            return Err(StreamError::Truncated);
        }
        let manifest = Manifest::open(sealed_manifest, self.manifest_cipher.as_ref())?;
        let sha256 = self.hasher.finish();
        if manifest.size != self.size {
            return Err(mismatch("size", manifest.size, self.size));
        }
        if manifest.chunk_count != self.next_index {
            return Err(mismatch(
                "chunk count",
                manifest.chunk_count,
                self.next_index,
            ));
        }
        if manifest.sha256[..] != *sha256.as_ref() {
            return Err(mismatch(
                "sha256",
                manifest.sha256_hex(),
                hex::encode(sha256.as_ref()),
            ));
        }
        Ok(manifest)
    }

    fn check_len(&self, len: usize) -> Result<(), StreamError> {
        if self.seen_last {
            return Err(StreamError::TrailingData);
        }
        if len > self.max_sealed {
            return Err(StreamError::ChunkTooLarge {
                index: self.next_index,
                len,
                max: self.max_sealed,
            });
        }
        Ok(())
    }

    fn open_work(&mut self, last: bool) -> Result<&[u8], StreamError> {
        let index = self.next_index;
        self.cipher
            .open_in_place(chunk_nonce(index, last), b"", &mut self.work)
            .map_err(|_| StreamError::ChunkAuthFailed { index })?;
        let plain: &[u8] = match &mut self.decompressor {
            None => &self.work,
            Some(d) => {
                self.plain.clear();
                // The buffer's capacity is the chunk size, so a zstd frame that expands past
                // one chunk fails here instead of allocating.
                d.decompress_to_buffer(&self.work, &mut *self.plain)
                    .map_err(|_| StreamError::InvalidChunk {
                        index,
                        reason: "zstd data is corrupt or larger than a chunk",
                    })?;
                &self.plain
            }
        };
        // The writer's layout is canonical: full chunks, then a last one that is short, and
        // empty only when the whole file is. Anything else did not come from a correct writer.
        if plain.len() > self.chunk_size || (!last && plain.len() != self.chunk_size) {
            return Err(StreamError::InvalidChunk {
                index,
                reason: "chunk plaintext has the wrong length",
            });
        }
        if last && plain.is_empty() && index != 0 {
            return Err(StreamError::InvalidChunk {
                index,
                reason: "empty last chunk after data",
            });
        }
        self.hasher.update(plain);
        self.size += plain.len() as u64;
        self.next_index = index
            .checked_add(1)
            .ok_or(StreamError::Malformed("chunk counter overflow"))?;
        self.seen_last = last;
        Ok(plain)
    }
}

fn mismatch(field: &'static str, manifest: impl ToString, actual: impl ToString) -> StreamError {
    StreamError::ManifestMismatch {
        field,
        manifest: manifest.to_string(),
        actual: actual.to_string(),
    }
}
