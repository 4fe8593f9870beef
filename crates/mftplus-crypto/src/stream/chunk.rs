//! [`Encryptor`] and [`SealedChunk`]: the writing half of the sans-I/O core ([`super::Decryptor`]
//! is the reading half).
//!
//! It holds O(chunk size) memory, and always keeps the most recent chunk's plaintext
//! back until it sees either more data or `finish`, because only then does it know whether that
//! chunk is the last one, and the last-chunk flag is part of the nonce.

use std::io::{self, Read};

use ring::digest;
use zeroize::{Zeroize, Zeroizing};

use super::cipher::{
    chunk_nonce, fill_random, new_chunk_cipher, ChunkCipher, StreamKeys, KEY_LEN, TAG_LEN,
};
use super::header::{Header, FILE_SALT_LEN, MAX_STANZAS};
use super::manifest::{ContentDigest, Manifest, ManifestInfo, CHUNK_DIGEST_LABEL};
use super::recipients::Identity;
use super::recipients::{self, Recipient};
use super::{check_chunk_size, Compression, CompressionId, StreamError, StreamOptions};

/// One sealed chunk: `bytes` is exactly what goes on the wire inside a frame, and what the
/// server hashes (SHA-256) and stores under `index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedChunk {
    /// Position in the stream, from 0.
    pub index: u64,
    /// Whether this is the final chunk (sealed with the last-chunk flag).
    pub last: bool,
    /// Ciphertext followed by the 16-byte tag.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`: what the sender states with the upload and what a version 2
    /// manifest's digest is made of. The writer hashes each chunk once, for both.
    pub sha256: [u8; 32],
}

impl SealedChunk {
    /// [`SealedChunk::sha256`] in lowercase hex, as the API's `X-Chunk-SHA256` carries it.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    /// A chunk read back from storage or the wire, hashed here.
    pub fn from_bytes(index: u64, last: bool, bytes: Vec<u8>) -> Self {
        let sha256 = sha256(&bytes);
        SealedChunk {
            index,
            last,
            bytes,
            sha256,
        }
    }
}

/// SHA-256 of a byte string, as an array: what a sealed chunk's hash is.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    digest::digest(&digest::SHA256, bytes)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// The running content digest of a stream, by version (`docs/stream-format.md` §6).
pub(crate) enum DigestState {
    /// Version 1: every plaintext byte.
    Plaintext(digest::Context),
    /// Version 2: each sealed chunk's SHA-256, in order.
    ChunkList(digest::Context),
}

impl DigestState {
    pub(crate) fn for_version(version: u8) -> Self {
        let mut context = digest::Context::new(&digest::SHA256);
        if version == 1 {
            DigestState::Plaintext(context)
        } else {
            context.update(CHUNK_DIGEST_LABEL);
            DigestState::ChunkList(context)
        }
    }

    pub(crate) fn plaintext(&mut self, plain: &[u8]) {
        if let DigestState::Plaintext(c) = self {
            c.update(plain);
        }
    }

    pub(crate) fn sealed_chunk(&mut self, sha256: &[u8; 32]) {
        if let DigestState::ChunkList(c) = self {
            c.update(sha256);
        }
    }

    pub(crate) fn finish(self) -> ContentDigest {
        let bytes = |c: digest::Context| -> [u8; 32] {
            c.finish().as_ref().try_into().expect("SHA-256 is 32 bytes")
        };
        match self {
            DigestState::Plaintext(c) => ContentDigest::PlaintextSha256(bytes(c)),
            DigestState::ChunkList(c) => ContentDigest::ChunkList(bytes(c)),
        }
    }
}

/// What [`Encryptor::finish`] hands back: the final chunk and the sealed manifest that follows it.
#[derive(Debug, Clone)]
pub struct Trailer {
    pub last_chunk: SealedChunk,
    pub sealed_manifest: Vec<u8>,
    /// The manifest as sealed, for the sender's own records (size, SHA-256).
    pub manifest: Manifest,
}

/// Largest sealed chunk a reader accepts for these parameters. With zstd this allows for
/// incompressible data: zstd's worst case is well under `n + n/128 + 1024`.
pub fn max_sealed_chunk_len(chunk_size: u32, compression: CompressionId) -> usize {
    let n = chunk_size as usize;
    match compression {
        CompressionId::None => n + TAG_LEN,
        CompressionId::Zstd => n + n / 128 + 1024 + TAG_LEN,
    }
}

/// Turns plaintext into a header, sealed chunks and a sealed manifest.
pub struct Encryptor {
    header: Header,
    header_bytes: Vec<u8>,
    cipher: Box<dyn ChunkCipher>,
    manifest_cipher: Box<dyn ChunkCipher>,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    chunk_size: usize,
    /// Pending plaintext: always `chunk_size` long, of which `filled` bytes are data.
    buf: Plaintext,
    filled: usize,
    /// A buffer handed back by [`Encryptor::recycle`], reused for the next chunk.
    spare: Option<Vec<u8>>,
    next_index: u64,
    size: u64,
    digest: DigestState,
}

impl Encryptor {
    /// Starts a stream to `recipients` with a fresh random file key and file salt.
    pub fn new(options: &StreamOptions, recipients: &[Recipient<'_>]) -> Result<Self, StreamError> {
        check_chunk_size(options.chunk_size)?;
        if recipients.is_empty() {
            return Err(StreamError::NoRecipients);
        }
        if recipients.len() > MAX_STANZAS {
            return Err(StreamError::TooManyRecipients { max: MAX_STANZAS });
        }
        let compressor = compressor(options.compression)?;
        let has_link = recipients
            .iter()
            .any(|r| matches!(r, Recipient::Link { .. }));
        if has_link && !super::browser_readable(options.cipher, options.compression.id()) {
            return Err(StreamError::NotBrowserReadable);
        }

        let mut file_key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(&mut file_key[..])?;
        let mut file_salt = [0u8; FILE_SALT_LEN];
        fill_random(&mut file_salt)?;
        let stanzas = recipients
            .iter()
            .map(|r| recipients::wrap(r, &file_key))
            .collect::<Result<Vec<_>, _>>()?;
        let keys = StreamKeys::derive(&file_key, &file_salt, options.cipher);
        let header = Header::build(
            options.cipher,
            options.compression.id(),
            options.chunk_size,
            file_salt,
            stanzas,
            &keys.header_mac,
        )?;
        Ok(Encryptor::assemble(header, &keys, compressor))
    }

    /// Rebuilds the writer of an existing stream from its encoded header, so that the same
    /// plaintext produces byte-identical chunks and manifest (for resuming an interrupted
    /// upload: the server's recorded chunk hashes can be compared and only missing chunks sent).
    ///
    /// `identities` must open one of the header's stanzas (a sender always adds its own key).
    /// `compression` must carry the same zstd level as the original writer used: the level is
    /// not recorded in the header, and a different level gives different (still valid) chunks.
    ///
    /// Sealing the same chunk index twice is only safe because the plaintext is the same: the
    /// caller must make sure the input has not changed (a different plaintext under the same
    /// key and nonce would break the AEAD's confidentiality for that chunk).
    pub fn resume(
        header_bytes: &[u8],
        identities: &[Identity<'_>],
        compression: Compression,
    ) -> Result<Self, StreamError> {
        let (header, used) = Header::parse(header_bytes)?;
        if used != header_bytes.len() {
            return Err(StreamError::TrailingData);
        }
        if header.compression() != compression.id() {
            return Err(StreamError::ResumeMismatch(
                "the compression differs from the stream header's",
            ));
        }
        let compressor = compressor(compression)?;
        let file_key = recipients::unwrap(header.stanzas(), identities)?;
        let keys = StreamKeys::derive(&file_key, header.file_salt(), header.cipher());
        header.verify(&keys.header_mac)?;
        Ok(Encryptor::assemble(header, &keys, compressor))
    }

    fn assemble(
        header: Header,
        keys: &StreamKeys,
        compressor: Option<zstd::bulk::Compressor<'static>>,
    ) -> Self {
        let chunk_size = header.chunk_size() as usize;
        Encryptor {
            header_bytes: header.to_bytes(),
            cipher: new_chunk_cipher(header.cipher(), &keys.payload),
            manifest_cipher: new_chunk_cipher(header.cipher(), &keys.manifest),
            compressor,
            chunk_size,
            buf: Plaintext::fresh(chunk_size),
            filled: 0,
            spare: None,
            next_index: 0,
            size: 0,
            digest: DigestState::for_version(header.version()),
            header,
        }
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Hands a chunk's buffer back once its bytes are written out. Optional; it saves
    /// allocating and faulting in a fresh chunk-sized buffer for every chunk.
    pub fn recycle(&mut self, chunk: SealedChunk) {
        self.recycle_buffer(chunk.bytes);
    }

    /// [`Encryptor::recycle`] for a buffer already taken out of its chunk.
    pub fn recycle_buffer(&mut self, bytes: Vec<u8>) {
        if bytes.capacity() >= self.chunk_size + TAG_LEN {
            self.spare = Some(bytes);
        }
    }

    /// The encoded header: the first bytes of the stream.
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    /// Plaintext bytes taken so far.
    pub fn bytes_in(&self) -> u64 {
        self.size
    }

    /// Takes more plaintext; returns the chunks that became complete (possibly none). The last
    /// chunk is only ever produced by [`Encryptor::finish`].
    pub fn push(&mut self, mut data: &[u8]) -> Result<Vec<SealedChunk>, StreamError> {
        let mut out = Vec::new();
        while !data.is_empty() {
            if self.filled == self.chunk_size {
                out.push(self.seal_pending(false)?);
            }
            let take = (self.chunk_size - self.filled).min(data.len());
            self.buf[self.filled..self.filled + take].copy_from_slice(&data[..take]);
            self.absorb(take);
            data = &data[take..];
        }
        Ok(out)
    }

    /// Reads from `reader` until a (non-last) chunk is complete and returns it; `None` means the
    /// reader is exhausted and [`Encryptor::finish`] comes next. Reads straight into the
    /// chunk buffer, so a file never takes more than one chunk of plaintext memory.
    pub fn fill_from<R: Read>(
        &mut self,
        reader: &mut R,
    ) -> Result<Option<SealedChunk>, StreamError> {
        loop {
            if self.filled == self.chunk_size {
                // Full: one more byte decides whether this chunk is the last one.
                let mut one = [0u8; 1];
                if read_some(reader, &mut one)? == 0 {
                    return Ok(None);
                }
                let chunk = self.seal_pending(false)?;
                self.buf[0] = one[0];
                self.absorb(1);
                return Ok(Some(chunk));
            }
            let n = read_some(reader, &mut self.buf[self.filled..])?;
            if n == 0 {
                return Ok(None);
            }
            self.absorb(n);
        }
    }

    /// Seals the final chunk (empty only for an empty file) and the manifest.
    pub fn finish(mut self, info: ManifestInfo) -> Result<Trailer, StreamError> {
        Manifest::check_info(&info)?;
        let last_chunk = self.seal_pending(true)?;
        let manifest = Manifest::new(info, self.size, self.next_index, self.digest.finish());
        let sealed_manifest = manifest.seal(self.manifest_cipher.as_ref());
        Ok(Trailer {
            last_chunk,
            sealed_manifest,
            manifest,
        })
    }

    /// Counts the `n` bytes just placed after `filled`.
    fn absorb(&mut self, n: usize) {
        self.buf.wrote(self.filled + n);
        self.digest
            .plaintext(&self.buf[self.filled..self.filled + n]);
        self.filled += n;
        self.size += n as u64;
    }

    fn seal_pending(&mut self, last: bool) -> Result<SealedChunk, StreamError> {
        let index = self.next_index;
        let plain = &self.buf[..self.filled];
        let mut bytes = match &mut self.compressor {
            Some(c) => {
                let bound = max_sealed_chunk_len(self.chunk_size as u32, CompressionId::Zstd);
                let mut out = Vec::with_capacity(bound);
                c.compress_to_buffer(plain, &mut out)
                    .map_err(StreamError::Compression)?;
                out
            }
            // Hand the buffer itself to the cipher instead of copying 10 MiB per chunk.
            None => {
                let next = match (last, self.spare.take()) {
                    // Nothing follows the last chunk: no buffer for a next one.
                    (true, _) => Plaintext::empty(),
                    (false, Some(spare)) => Plaintext::reuse(spare, self.chunk_size),
                    (false, None) => Plaintext::fresh(self.chunk_size),
                };
                let mut out = self.buf.replace(next);
                out.truncate(self.filled);
                out
            }
        };
        self.cipher
            .seal_in_place(chunk_nonce(index, last), b"", &mut bytes)
            .map_err(|_| StreamError::Malformed("sealing a chunk failed"))?;
        let sha256 = sha256(&bytes);
        self.digest.sealed_chunk(&sha256);
        self.filled = 0;
        self.next_index = index
            .checked_add(1)
            .ok_or(StreamError::Malformed("chunk counter overflow"))?;
        Ok(SealedChunk {
            index,
            last,
            bytes,
            sha256,
        })
    }
}

fn compressor(
    compression: Compression,
) -> Result<Option<zstd::bulk::Compressor<'static>>, StreamError> {
    match compression {
        Compression::None => Ok(None),
        Compression::Zstd { level } => {
            if !(1..=19).contains(&level) {
                return Err(StreamError::InvalidCompressionLevel(level));
            }
            Ok(Some(
                zstd::bulk::Compressor::new(level).map_err(StreamError::Compression)?,
            ))
        }
    }
}

/// The pending plaintext of an [`Encryptor`], wiped on drop as far as it was ever written.
/// The rest of a fresh buffer is pages the allocator has not touched yet; wiping them too (as
/// `Zeroizing<Vec<u8>>` does, to the capacity) faulted in a whole chunk, 10 MiB, for every
/// file however small: most of an outbox's time per small file.
struct Plaintext {
    bytes: Vec<u8>,
    /// Bytes from here on are zeroes, never plaintext.
    written: usize,
}

impl Plaintext {
    /// `chunk_size` zero bytes with room for the tag, so sealing in place never reallocates.
    /// `vec![0; n]` gets lazily zeroed pages from the allocator instead of writing them.
    fn fresh(chunk_size: usize) -> Plaintext {
        let mut bytes = vec![0u8; chunk_size + TAG_LEN];
        bytes.truncate(chunk_size);
        Plaintext { bytes, written: 0 }
    }

    /// A sealed chunk's buffer for the next chunk. What it holds is ciphertext, nothing
    /// secret, so it is not cleared: the reader overwrites it and only what was read is ever
    /// sealed; zeroing it would be one more pass over 10 MiB per chunk.
    fn reuse(mut bytes: Vec<u8>, chunk_size: usize) -> Plaintext {
        if bytes.len() >= chunk_size {
            bytes.truncate(chunk_size);
        } else {
            bytes.resize(chunk_size, 0);
        }
        Plaintext { bytes, written: 0 }
    }

    fn empty() -> Plaintext {
        Plaintext {
            bytes: Vec::new(),
            written: 0,
        }
    }

    /// Records that bytes up to `end` may now hold plaintext.
    fn wrote(&mut self, end: usize) {
        self.written = self.written.max(end);
    }

    /// Takes the bytes out to be sealed in place (the caller encrypts them), leaving `next`.
    fn replace(&mut self, next: Plaintext) -> Vec<u8> {
        let mut old = std::mem::replace(self, next);
        // Not wiped on drop: these bytes leave, to be sealed in place.
        old.written = 0;
        std::mem::take(&mut old.bytes)
    }
}

impl std::ops::Deref for Plaintext {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::ops::DerefMut for Plaintext {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        let written = self.written.min(self.bytes.len());
        self.bytes[..written].zeroize();
    }
}

fn read_some<R: Read>(reader: &mut R, buf: &mut [u8]) -> Result<usize, StreamError> {
    loop {
        match reader.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StreamError::Io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::keys::X25519SecretKey;
    use crate::stream::Decryptor;
    use crate::stream::{CipherId, MIN_CHUNK_SIZE};

    fn setup(compression: Compression) -> (X25519SecretKey, Encryptor) {
        let sk = X25519SecretKey::generate().unwrap();
        let opts = StreamOptions {
            cipher: CipherId::Aes256Gcm,
            compression,
            chunk_size: MIN_CHUNK_SIZE,
        };
        let enc = Encryptor::new(&opts, &[Recipient::X25519(sk.public_key())]).unwrap();
        (sk, enc)
    }

    /// The wipe on drop covers exactly what may hold plaintext: what was written into the
    /// current buffer, from `push` and from `fill_from`, and nothing of a buffer handed out.
    #[test]
    fn the_plaintext_buffer_knows_how_far_it_holds_plaintext() {
        let chunk = MIN_CHUNK_SIZE as usize;
        let (_, mut enc) = setup(Compression::None);
        assert_eq!(enc.buf.written, 0);
        assert!(enc.push(&[1u8; 100]).unwrap().is_empty());
        assert_eq!(enc.buf.written, 100);
        // Filling the chunk and one byte more seals it: the fresh buffer holds that one byte.
        assert_eq!(enc.push(&vec![2u8; chunk - 100 + 1]).unwrap().len(), 1);
        assert_eq!(enc.buf.written, 1);
        let (_, mut enc) = setup(Compression::None);
        let mut reader = &vec![3u8; 3000][..];
        assert!(enc.fill_from(&mut reader).unwrap().is_none());
        assert_eq!(enc.buf.written, 3000);
        // A buffer handed out to be sealed leaves with its bytes intact, not wiped.
        let mut taken = Plaintext::fresh(chunk);
        taken[..4].copy_from_slice(b"data");
        taken.wrote(4);
        let bytes = taken.replace(Plaintext::empty());
        assert_eq!(
            (&bytes[..4], bytes.len(), taken.written),
            (&b"data"[..], chunk, 0)
        );
    }

    /// Runs a stream whose sender was tampered with by `lie` just before `finish`.
    fn finish_with(lie: impl FnOnce(&mut Encryptor)) -> Result<Manifest, StreamError> {
        let (sk, mut enc) = setup(Compression::None);
        let mut chunks = enc.push(&[7u8; 100_000]).unwrap();
        lie(&mut enc);
        let header = enc.header().clone();
        let trailer = enc.finish(ManifestInfo::default()).unwrap();
        chunks.push(trailer.last_chunk);
        let mut dec = Decryptor::new(header, &[Identity::X25519(&sk)]).unwrap();
        for c in &chunks {
            dec.open(c).unwrap();
        }
        dec.finish(&trailer.sealed_manifest)
    }

    #[test]
    fn honest_manifest_verifies() {
        let m = finish_with(|_| {}).unwrap();
        assert_eq!(m.size, 100_000);
        assert_eq!(m.chunk_count, 2);
    }

    #[test]
    fn manifest_size_mismatch_is_reported() {
        let e = finish_with(|enc| enc.size += 1).unwrap_err();
        assert!(
            matches!(e, StreamError::ManifestMismatch { field: "size", .. }),
            "{e:?}"
        );
    }

    #[test]
    fn manifest_digest_mismatch_is_reported() {
        let e = finish_with(|enc| enc.digest.sealed_chunk(&[1; 32])).unwrap_err();
        assert!(
            matches!(
                e,
                StreamError::ManifestMismatch {
                    field: "digest",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn each_chunk_carries_its_hash_and_the_manifest_their_digest() {
        let (sk, mut enc) = setup(Compression::None);
        assert_eq!(enc.header().version(), super::super::FORMAT_VERSION);
        let mut chunks = enc.push(&[5u8; 150_000]).unwrap();
        let header = enc.header().clone();
        let trailer = enc.finish(ManifestInfo::default()).unwrap();
        chunks.push(trailer.last_chunk);
        let mut expected = digest::Context::new(&digest::SHA256);
        expected.update(CHUNK_DIGEST_LABEL);
        for c in &chunks {
            assert_eq!(c.sha256, sha256(&c.bytes));
            expected.update(&c.sha256);
        }
        let expected: [u8; 32] = expected.finish().as_ref().try_into().unwrap();
        assert_eq!(trailer.manifest.digest, ContentDigest::ChunkList(expected));
        let mut dec = Decryptor::new(header, &[Identity::X25519(&sk)]).unwrap();
        for c in &chunks {
            dec.open(c).unwrap();
        }
        assert_eq!(
            dec.finish(&trailer.sealed_manifest).unwrap().digest,
            ContentDigest::ChunkList(expected)
        );
    }

    #[test]
    fn non_canonical_chunks_are_refused_after_authentication() {
        // A sender that seals a short chunk in the middle of the stream.
        let (sk, mut enc) = setup(Compression::None);
        enc.push(&[1u8; 10]).unwrap();
        let short = enc.seal_pending(false).unwrap();
        let mut dec = Decryptor::new(enc.header().clone(), &[Identity::X25519(&sk)]).unwrap();
        assert!(matches!(
            dec.open(&short),
            Err(StreamError::InvalidChunk { index: 0, .. })
        ));
    }

    #[test]
    fn a_recycled_buffer_carries_nothing_of_its_last_chunk_into_the_next() {
        let (sk, mut enc) = setup(Compression::None);
        let chunk = MIN_CHUNK_SIZE as usize;
        // Two full chunks, then a short one sealed from the first chunk's buffer, which still
        // holds that chunk's ciphertext past the short one's end.
        let data: Vec<u8> = (0..2 * chunk + 100).map(|i| (i % 253) as u8).collect();
        let mut reader = &data[..];
        let mut sealed = Vec::new();
        while let Some(c) = enc.fill_from(&mut reader).unwrap() {
            sealed.push((c.index, c.last, c.bytes.clone(), c.sha256));
            enc.recycle(c);
        }
        let header = enc.header().clone();
        let trailer = enc.finish(ManifestInfo::default()).unwrap();
        assert_eq!(trailer.last_chunk.bytes.len(), 100 + TAG_LEN);
        let mut dec = Decryptor::new(header, &[Identity::X25519(&sk)]).unwrap();
        let mut out = Vec::new();
        for (index, last, bytes, sha256) in sealed {
            let c = SealedChunk {
                index,
                last,
                bytes,
                sha256,
            };
            out.extend_from_slice(dec.open(&c).unwrap());
        }
        out.extend_from_slice(dec.open(&trailer.last_chunk).unwrap());
        assert_eq!(out, data);
        dec.finish(&trailer.sealed_manifest).unwrap();
    }

    #[test]
    fn zstd_bound_covers_zstd_worst_case() {
        for n in [MIN_CHUNK_SIZE, 10 << 20, super::super::MAX_CHUNK_SIZE] {
            assert!(
                zstd::zstd_safe::compress_bound(n as usize) + TAG_LEN
                    <= max_sealed_chunk_len(n, CompressionId::Zstd)
            );
        }
    }

    #[test]
    fn zstd_chunks_round_trip_through_push_and_open() {
        let (sk, mut enc) = setup(Compression::zstd());
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut chunks = enc.push(&data).unwrap();
        let header = enc.header().clone();
        let trailer = enc.finish(ManifestInfo::default()).unwrap();
        chunks.push(trailer.last_chunk);
        assert!(chunks.iter().all(|c| c.bytes.len() < 10_000));
        let mut dec = Decryptor::new(header, &[Identity::X25519(&sk)]).unwrap();
        let mut out = Vec::new();
        for c in &chunks {
            out.extend_from_slice(dec.open(c).unwrap());
        }
        assert_eq!(out, data);
        dec.finish(&trailer.sealed_manifest).unwrap();
    }

    /// Every chunk and the manifest of `data`, from the first `Encryptor` or a resumed one.
    fn seal_all(mut enc: Encryptor, data: &[u8]) -> (Vec<SealedChunk>, Vec<u8>) {
        let mut reader = data;
        let mut chunks = Vec::new();
        while let Some(chunk) = enc.fill_from(&mut reader).unwrap() {
            chunks.push(chunk);
        }
        let info = ManifestInfo {
            name: "f.bin".into(),
            mode: Some(0o640),
        };
        let trailer = enc.finish(info).unwrap();
        chunks.push(trailer.last_chunk);
        (chunks, trailer.sealed_manifest)
    }

    #[test]
    fn resume_reproduces_every_byte() {
        let data: Vec<u8> = (0..(3 * MIN_CHUNK_SIZE as usize + 17))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        for cipher in CipherId::ALL {
            for compression in [Compression::None, Compression::Zstd { level: 5 }] {
                let sk = X25519SecretKey::generate().unwrap();
                let other = X25519SecretKey::generate().unwrap();
                let opts = StreamOptions {
                    cipher,
                    compression,
                    chunk_size: MIN_CHUNK_SIZE,
                };
                let recipients = [
                    Recipient::X25519(other.public_key()),
                    Recipient::X25519(sk.public_key()),
                ];
                let first = Encryptor::new(&opts, &recipients).unwrap();
                let header = first.header_bytes().to_vec();
                let (chunks, manifest) = seal_all(first, &data);
                assert_eq!(chunks.len(), 4);

                let again =
                    Encryptor::resume(&header, &[Identity::X25519(&sk)], compression).unwrap();
                assert_eq!(again.header_bytes(), &header[..]);
                let (chunks2, manifest2) = seal_all(again, &data);
                assert_eq!(chunks, chunks2, "{cipher:?} {compression:?}");
                assert_eq!(manifest, manifest2);

                // And the result is still a stream the other recipient reads.
                let (parsed, _) = Header::parse(&header).unwrap();
                let mut dec = Decryptor::new(parsed, &[Identity::X25519(&other)]).unwrap();
                let mut out = Vec::new();
                for c in &chunks2 {
                    out.extend_from_slice(dec.open(c).unwrap());
                }
                assert_eq!(out, data);
                dec.finish(&manifest2).unwrap();
            }
        }
    }

    #[test]
    fn resume_refuses_wrong_key_level_or_header() {
        let sk = X25519SecretKey::generate().unwrap();
        let opts = StreamOptions {
            compression: Compression::zstd(),
            chunk_size: MIN_CHUNK_SIZE,
            ..StreamOptions::default()
        };
        let enc = Encryptor::new(&opts, &[Recipient::X25519(sk.public_key())]).unwrap();
        let header = enc.header_bytes().to_vec();
        let stranger = X25519SecretKey::generate().unwrap();
        assert!(matches!(
            Encryptor::resume(&header, &[Identity::X25519(&stranger)], Compression::zstd()),
            Err(StreamError::NoMatchingRecipient)
        ));
        assert!(matches!(
            Encryptor::resume(&header, &[Identity::X25519(&sk)], Compression::None),
            Err(StreamError::ResumeMismatch(_))
        ));
        let mut tampered = header.clone();
        tampered[8] ^= 0x01; // chunk size 64 KiB -> 64 KiB + 16 MiB: still valid, but MAC'd
        assert!(matches!(
            Encryptor::resume(&tampered, &[Identity::X25519(&sk)], Compression::zstd()),
            Err(StreamError::HeaderTampered)
        ));
        let mut long = header;
        long.push(0);
        assert!(matches!(
            Encryptor::resume(&long, &[Identity::X25519(&sk)], Compression::zstd()),
            Err(StreamError::TrailingData)
        ));
    }
}
