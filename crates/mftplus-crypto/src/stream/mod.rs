//! The versioned, encrypted, chunked stream format of MFTPlus transfers.
//!
//! A stream is a header (parameters and one stanza per recipient, MAC'd), then the file as
//! fixed-size chunks each sealed with AES-256-GCM or ChaCha20-Poly1305 under a STREAM nonce
//! (chunk counter and last-chunk flag), then a sealed manifest with the file's name, mode, size
//! and plaintext SHA-256. `docs/stream-format.md` is the byte-level specification.
//!
//! What this is: a pure, synchronous library over byte slices and `std::io`, with memory bounded
//! by the chunk size whatever the file size. [`Encryptor`] and [`Decryptor`] are sans-I/O: the
//! caller moves [`SealedChunk`]s wherever it likes (HTTP uploads, blob stores) and can hash each
//! chunk's bytes for the server's integrity checks. [`encrypt_reader_to_writer`] and
//! [`decrypt_reader_to_writer`] wrap them for files and pipes.
//!
//! What this is not: a transport, a key store, or a place that decides who may read a file.
//! No async, no HTTP, no database.
//!
//! # Output contract for readers
//!
//! A chunk's plaintext is only ever returned after that chunk authenticated. But whether the
//! stream is *complete* (not truncated, hash and size as the sender stated) is only known when
//! [`Decryptor::finish`] (or [`decrypt_reader_to_writer`]) returns `Ok`. Write plaintext to a
//! temporary file next to the destination and rename it into place only after that `Ok`;
//! delete it on any error. Never present earlier output as the file.

mod chunk;
mod cipher;
mod decrypt;
mod error;
mod grant;
mod header;
mod io;
mod keys;
mod link;
mod manifest;
mod recipients;

pub use chunk::{max_sealed_chunk_len, sha256 as chunk_sha256, Encryptor, SealedChunk, Trailer};
pub use cipher::{
    chunk_nonce, new_chunk_cipher, AeadFailure, ChunkCipher, CipherId, RingCipher, KEY_LEN,
    NONCE_LEN, TAG_LEN,
};
pub use decrypt::Decryptor;
pub use error::StreamError;
pub use grant::{add_x25519_recipients, check_extension, ExtensionError};
pub use header::{
    Header, FILE_SALT_LEN, FORMAT_VERSION, FORMAT_VERSION_1, HEADER_MAC_LEN, MAGIC, MAX_STANZAS,
    MAX_STANZA_BODY_LEN,
};
pub use io::{
    decrypt_reader_to_writer, encrypt_reader_to_writer, frame_head, read_frame, write_chunk_frame,
    write_manifest_frame, Frame, FRAME_CHUNK, FRAME_HEAD_LEN, FRAME_LAST_CHUNK, FRAME_MANIFEST,
};
pub use keys::{
    X25519PublicKey, X25519SecretKey, FINGERPRINT_LEN, PUBLIC_KEY_PREFIX, SECRET_KEY_PREFIX,
};
pub use link::{
    LinkKey, LinkSecret, LINK_MODE_PASSPHRASE, LINK_MODE_SECRET, LINK_SALT_LEN, LINK_SECRET_LEN,
};
pub use manifest::{
    ContentDigest, Manifest, ManifestInfo, CHUNK_DIGEST_LABEL, MAX_NAME_LEN,
    MAX_SEALED_MANIFEST_LEN,
};
pub use recipients::{
    Identity, Recipient, Stanza, DEFAULT_PBKDF2_ITERATIONS, MAX_PBKDF2_ITERATIONS,
    MIN_PBKDF2_ITERATIONS, PBKDF2_SALT_LEN,
};

/// 10 MiB: large enough that per-chunk overhead (a tag, a frame, one server round trip and
/// one stored object) is negligible, small enough to keep memory flat.
pub const DEFAULT_CHUNK_SIZE: u32 = 10 * 1024 * 1024;
pub const MIN_CHUNK_SIZE: u32 = 64 * 1024;
pub const MAX_CHUNK_SIZE: u32 = 64 * 1024 * 1024;
/// zstd's own default; a good speed/ratio point for data that compresses at all.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// Compression applied to each chunk's plaintext before sealing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    /// The level is the writer's business and is not recorded; readers do not need it.
    Zstd { level: i32 },
}

impl Compression {
    pub fn zstd() -> Self {
        Compression::Zstd {
            level: DEFAULT_ZSTD_LEVEL,
        }
    }

    pub fn id(self) -> CompressionId {
        match self {
            Compression::None => CompressionId::None,
            Compression::Zstd { .. } => CompressionId::Zstd,
        }
    }
}

/// The compression recorded in the header, as one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompressionId {
    /// `0x00`
    None,
    /// `0x01`: each chunk is one zstd frame.
    Zstd,
}

impl CompressionId {
    pub fn to_byte(self) -> u8 {
        match self {
            CompressionId::None => 0x00,
            CompressionId::Zstd => 0x01,
        }
    }

    pub fn from_byte(b: u8) -> Result<Self, StreamError> {
        match b {
            0x00 => Ok(CompressionId::None),
            0x01 => Ok(CompressionId::Zstd),
            other => Err(StreamError::UnsupportedCompression(other)),
        }
    }
}

/// How a writer lays out a stream. Everything here is recorded in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    pub cipher: CipherId,
    pub compression: Compression,
    /// Plaintext bytes per chunk, in `MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE`.
    pub chunk_size: u32,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            cipher: CipherId::Aes256Gcm,
            compression: Compression::None,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

/// Whether a browser's WebCrypto can read a stream with these options: AES-256-GCM (WebCrypto
/// has no ChaCha20-Poly1305) and no compression (it has no zstd). Share links need it.
pub fn browser_readable(cipher: CipherId, compression: CompressionId) -> bool {
    cipher == CipherId::Aes256Gcm && compression == CompressionId::None
}

pub(crate) fn check_chunk_size(chunk_size: u32) -> Result<(), StreamError> {
    if (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        Ok(())
    } else {
        Err(StreamError::InvalidChunkSize(chunk_size))
    }
}
