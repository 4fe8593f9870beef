//! [`Decryptor`]: opens a stream's chunks in order and checks its manifest.
//!
//! It never trusts an index or a length from the input: the chunk counter is its own, the
//! last-chunk claim is checked by the nonce, and every buffer is bounded by the header's chunk
//! size, so memory stays at about two chunks whatever the input says.

use std::io::Read;

use zeroize::{Zeroize, Zeroizing};

use super::chunk::{max_sealed_chunk_len, sha256, DigestState, SealedChunk};
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
    digest: DigestState,
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
            decompressor,
            chunk_size,
            max_sealed,
            work: Zeroizing::new(Vec::new()),
            plain: Zeroizing::new(plain),
            next_index: 0,
            size: 0,
            seen_last: false,
            digest: DigestState::for_version(header.version()),
            header,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Index of the chunk [`Decryptor::open_chunk`] expects next.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Empties the work buffer with room for `len` bytes. It grows to the largest chunk seen
    /// rather than starting at the largest possible: `Zeroizing` wipes to the capacity on drop,
    /// and a chunk-sized capacity faulted in 10 MiB for every small file. What it held is wiped
    /// before it grows, so the reallocation leaves no plaintext behind.
    fn make_room(&mut self, len: usize) {
        if self.work.capacity() < len {
            self.work.zeroize();
            self.work.reserve_exact(len);
        }
        self.work.clear();
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
        self.digest.sealed_chunk(&sha256(sealed));
        self.make_room(sealed.len());
        self.work.extend_from_slice(sealed);
        let mut work = std::mem::take(&mut *self.work);
        let opened = self.open_buffer(&mut work, last);
        *self.work = work;
        let plain_len = opened?;
        Ok(match self.decompressor {
            None => &self.work[..plain_len],
            Some(_) => &self.plain,
        })
    }

    /// [`Decryptor::open_chunk`] without copies: `buffer` holds the sealed chunk and, on
    /// success, the chunk's plaintext (decrypted in place; with compression, decompressed into
    /// it). `sealed_sha256` is the SHA-256 of the sealed bytes if the caller already computed
    /// it (while downloading, on another thread); `None` hashes here. On error the buffer's
    /// content is unspecified.
    pub fn open_chunk_into(
        &mut self,
        buffer: &mut Vec<u8>,
        last: bool,
        sealed_sha256: Option<[u8; 32]>,
    ) -> Result<(), StreamError> {
        self.check_len(buffer.len())?;
        let hash = sealed_sha256.unwrap_or_else(|| sha256(buffer));
        self.digest.sealed_chunk(&hash);
        let plain_len = self.open_buffer(buffer, last)?;
        match self.decompressor {
            None => buffer.truncate(plain_len),
            Some(_) => {
                buffer.clear();
                buffer.extend_from_slice(&self.plain);
            }
        }
        Ok(())
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
        self.make_room(len);
        self.work.resize(len, 0);
        reader
            .read_exact(&mut self.work)
            .map_err(StreamError::from_read)?;
        self.digest.sealed_chunk(&sha256(&self.work));
        let mut work = std::mem::take(&mut *self.work);
        let opened = self.open_buffer(&mut work, last);
        *self.work = work;
        let plain_len = opened?;
        Ok(match self.decompressor {
            None => &self.work[..plain_len],
            Some(_) => &self.plain,
        })
    }

    /// Checks the sealed manifest against everything seen. `Ok` is the only point at which the
    /// output may be treated as the complete file.
    pub fn finish(self, sealed_manifest: &[u8]) -> Result<Manifest, StreamError> {
        if !self.seen_last {
            return Err(StreamError::Truncated);
        }
        let manifest = Manifest::open(
            sealed_manifest,
            self.manifest_cipher.as_ref(),
            self.header.version(),
        )?;
        let digest = self.digest.finish();
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
        if manifest.digest != digest {
            return Err(mismatch(
                "digest",
                manifest.digest.labelled_hex(),
                digest.labelled_hex(),
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

    /// Authenticates and decrypts `sealed` in place and accounts for the chunk. Returns the
    /// plaintext's length: in `sealed` without compression, in `self.plain` with it.
    fn open_buffer(&mut self, sealed: &mut Vec<u8>, last: bool) -> Result<usize, StreamError> {
        let index = self.next_index;
        self.cipher
            .open_in_place(chunk_nonce(index, last), b"", sealed)
            .map_err(|_| StreamError::ChunkAuthFailed { index })?;
        let plain: &[u8] = match &mut self.decompressor {
            None => sealed,
            Some(d) => {
                self.plain.clear();
                // The buffer's capacity is the chunk size, so a zstd frame that expands past
                // one chunk fails here instead of allocating.
                d.decompress_to_buffer(&sealed[..], &mut *self.plain)
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
        let plain_len = plain.len();
        self.digest.plaintext(plain);
        self.size += plain_len as u64;
        self.next_index = index
            .checked_add(1)
            .ok_or(StreamError::Malformed("chunk counter overflow"))?;
        self.seen_last = last;
        Ok(plain_len)
    }
}

fn mismatch(field: &'static str, manifest: impl ToString, actual: impl ToString) -> StreamError {
    StreamError::ManifestMismatch {
        field,
        manifest: manifest.to_string(),
        actual: actual.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::keys::X25519SecretKey;
    use crate::stream::{
        CipherId, Compression, Encryptor, Identity, ManifestInfo, Recipient, StreamOptions,
        MIN_CHUNK_SIZE,
    };

    /// What `Zeroizing` wipes on drop is the capacity: it must follow the chunks opened, not
    /// the largest chunk the stream allows.
    #[test]
    fn the_work_buffer_grows_to_the_chunks_it_opens() {
        let sk = X25519SecretKey::generate().unwrap();
        let options = StreamOptions {
            cipher: CipherId::Aes256Gcm,
            compression: Compression::None,
            chunk_size: MIN_CHUNK_SIZE,
        };
        let mut enc = Encryptor::new(&options, &[Recipient::X25519(sk.public_key())]).unwrap();
        assert!(enc.push(&[5u8; 100]).unwrap().is_empty());
        let header = enc.header().clone();
        let info = ManifestInfo {
            name: "f".into(),
            mode: None,
        };
        let trailer = enc.finish(info).unwrap();
        let mut dec = Decryptor::new(header, &[Identity::X25519(&sk)]).unwrap();
        assert_eq!(dec.open(&trailer.last_chunk).unwrap(), &[5u8; 100][..]);
        assert!(dec.work.capacity() < 1024, "{}", dec.work.capacity());
    }
}
