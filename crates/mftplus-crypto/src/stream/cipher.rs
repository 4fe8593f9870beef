//! The AEAD behind the stream, and the small primitives around it (nonces, HKDF, randomness).
//!
//! The AEAD sits behind [`ChunkCipher`] so that another implementation (aws-lc-rs, RustCrypto)
//! can be swapped in after measurement without touching the format code. Only `ring` is used
//! today; it is already the workspace's TLS backend.

use ring::aead;
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::StreamError;

/// AEAD nonce length in bytes (both ciphers).
pub const NONCE_LEN: usize = 12;
/// AEAD tag length in bytes (both ciphers).
pub const TAG_LEN: usize = 16;
/// Symmetric key length in bytes (file key, derived keys, wrap keys).
pub const KEY_LEN: usize = 32;

/// The payload cipher, recorded in the header as one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CipherId {
    /// AES-256-GCM, id `0x01`. The default: hardware AES and carry-less multiply are on every
    /// server CPU we target.
    #[default]
    Aes256Gcm,
    /// ChaCha20-Poly1305, id `0x02`, for CPUs without AES instructions.
    ChaCha20Poly1305,
}

impl CipherId {
    pub const ALL: [CipherId; 2] = [CipherId::Aes256Gcm, CipherId::ChaCha20Poly1305];

    pub fn to_byte(self) -> u8 {
        match self {
            CipherId::Aes256Gcm => 0x01,
            CipherId::ChaCha20Poly1305 => 0x02,
        }
    }

    pub fn from_byte(b: u8) -> Result<Self, StreamError> {
        match b {
            0x01 => Ok(CipherId::Aes256Gcm),
            0x02 => Ok(CipherId::ChaCha20Poly1305),
            other => Err(StreamError::UnsupportedCipher(other)),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CipherId::Aes256Gcm => "AES-256-GCM",
            CipherId::ChaCha20Poly1305 => "ChaCha20-Poly1305",
        }
    }
}

/// An AEAD keyed once, sealing and opening buffers in place.
///
/// Implementations must use 12-byte nonces and append a 16-byte tag; the format depends on it.
pub trait ChunkCipher: Send + Sync {
    /// Encrypts `buf` in place and appends the tag.
    fn seal_in_place(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), AeadFailure>;

    /// Verifies and decrypts `buf` (ciphertext followed by tag) in place, truncating the tag.
    /// On failure `buf`'s contents are unspecified and must not be used.
    fn open_in_place(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), AeadFailure>;
}

/// An AEAD operation failed; deliberately carries no detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadFailure;

/// [`ChunkCipher`] over `ring`.
pub struct RingCipher {
    key: aead::LessSafeKey,
}

impl RingCipher {
    pub fn new(id: CipherId, key: &[u8; KEY_LEN]) -> Self {
        let alg = match id {
            CipherId::Aes256Gcm => &aead::AES_256_GCM,
            CipherId::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        };
        // Only fails on a wrong key length, which the array type rules out.
        let unbound = aead::UnboundKey::new(alg, key).expect("32-byte key");
        // LessSafeKey because the format manages nonces itself (counter || last flag, or a fresh
        // key per use); ring's NonceSequence would hide exactly what the spec pins down.
        RingCipher {
            key: aead::LessSafeKey::new(unbound),
        }
    }
}

impl ChunkCipher for RingCipher {
    fn seal_in_place(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), AeadFailure> {
        self.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                buf,
            )
            .map_err(|_| AeadFailure)
    }

    fn open_in_place(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), AeadFailure> {
        let plain_len = self
            .key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                buf,
            )
            .map_err(|_| AeadFailure)?
            .len();
        buf.truncate(plain_len);
        Ok(())
    }
}

/// The payload cipher for a stream. One place to change when another backend wins on speed.
pub fn new_chunk_cipher(id: CipherId, key: &[u8; KEY_LEN]) -> Box<dyn ChunkCipher> {
    Box::new(RingCipher::new(id, key))
}

/// STREAM nonce: 11-byte big-endian chunk counter, then `0x01` on the last chunk, else `0x00`.
/// The counter stops reordering and duplication, the flag stops truncation at a chunk boundary.
pub fn chunk_nonce(index: u64, last: bool) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    // Bytes 0..3 of the 11-byte counter stay zero: a u64 index never reaches them.
    nonce[3..11].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

/// For keys that seal exactly one message (wrap keys, the manifest key).
pub const ZERO_NONCE: [u8; NONCE_LEN] = [0u8; NONCE_LEN];

struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        KEY_LEN
    }
}

/// HKDF-SHA256 (extract with `salt`, expand with the concatenation of `info`) to 32 bytes.
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; KEY_LEN]> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    // expand/fill only fail when the output is longer than 255 hash lengths.
    prk.expand(info, Len32)
        .and_then(|okm| okm.fill(&mut out[..]))
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

const HEADER_MAC_LABEL: &[u8] = b"mftplus-stream-v1 header-mac";
const PAYLOAD_LABEL: &[u8] = b"mftplus-stream-v1 payload";
const MANIFEST_LABEL: &[u8] = b"mftplus-stream-v1 manifest";

/// The three keys of one stream, all from HKDF-SHA256(salt = file salt, ikm = file key).
///
/// The random per-file salt makes every stream's keys unrelated even if a file key were ever
/// reused, which is what stops chunks from being spliced between streams. The cipher id is in
/// the payload and manifest labels so one key never serves two algorithms.
pub(crate) struct StreamKeys {
    pub header_mac: Zeroizing<[u8; KEY_LEN]>,
    pub payload: Zeroizing<[u8; KEY_LEN]>,
    pub manifest: Zeroizing<[u8; KEY_LEN]>,
}

impl StreamKeys {
    pub fn derive(file_key: &[u8; KEY_LEN], file_salt: &[u8], cipher: CipherId) -> Self {
        let id = [cipher.to_byte()];
        StreamKeys {
            header_mac: hkdf_sha256(file_salt, file_key, &[HEADER_MAC_LABEL]),
            payload: hkdf_sha256(file_salt, file_key, &[PAYLOAD_LABEL, &id]),
            manifest: hkdf_sha256(file_salt, file_key, &[MANIFEST_LABEL, &id]),
        }
    }
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<(), StreamError> {
    SystemRandom::new().fill(buf).map_err(|_| StreamError::Rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_layout_is_counter_then_flag() {
        assert_eq!(
            chunk_nonce(0x0102030405060708, true),
            [0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1]
        );
        assert_eq!(chunk_nonce(0, false), [0u8; 12]);
        assert_ne!(chunk_nonce(5, false), chunk_nonce(5, true));
    }

    #[test]
    fn both_ciphers_round_trip_and_reject_wrong_nonce() {
        for id in CipherId::ALL {
            let c = new_chunk_cipher(id, &[7u8; 32]);
            let mut buf = b"hello".to_vec();
            c.seal_in_place(chunk_nonce(1, false), b"", &mut buf)
                .unwrap();
            assert_eq!(buf.len(), 5 + TAG_LEN);
            let mut wrong = buf.clone();
            assert!(c
                .open_in_place(chunk_nonce(1, true), b"", &mut wrong)
                .is_err());
            c.open_in_place(chunk_nonce(1, false), b"", &mut buf)
                .unwrap();
            assert_eq!(buf, b"hello");
        }
    }

    #[test]
    fn cipher_ids_round_trip() {
        for id in CipherId::ALL {
            assert_eq!(CipherId::from_byte(id.to_byte()).unwrap(), id);
        }
        assert!(matches!(
            CipherId::from_byte(9),
            Err(StreamError::UnsupportedCipher(9))
        ));
    }
}
