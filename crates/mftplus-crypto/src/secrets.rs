//! Generation and hashing of bearer secrets (API keys, refresh-token ids, passwords made for users).

use base64::Engine;
use rand::{rngs::OsRng, Rng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Characters after the `mftpk_` prefix. 40 base62 characters carry 238 bits of randomness,
/// well above the 128 the spec asks for, and stay copy-paste friendly (no `+/=`).
pub const API_KEY_BODY_LEN: usize = 40;

/// A fresh API key: `mftpk_` followed by [`API_KEY_BODY_LEN`] base62 characters from the OS RNG.
pub fn generate_api_key() -> String {
    let mut key = String::with_capacity(mftplus_types::API_KEY_PREFIX.len() + API_KEY_BODY_LEN);
    key.push_str(mftplus_types::API_KEY_PREFIX);
    key.push_str(&random_base62(API_KEY_BODY_LEN));
    key
}

/// Uniform base62 characters; `gen_range` rejects biased draws, so no character is favoured.
pub fn random_base62(len: usize) -> String {
    let mut rng = OsRng;
    (0..len)
        .map(|_| BASE62[rng.gen_range(0..BASE62.len())] as char)
        .collect()
}

/// `bytes` of OS randomness, URL-safe base64 without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// What is stored for an API key: its SHA-256 in hex. A key has enough entropy that a fast hash
/// is safe here, and lookups stay O(1) by index instead of a slow KDF per request.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(api_key_digest(key))
}

/// The raw SHA-256 of a key: [`hash_api_key`] without the hex, for in-memory lookups.
pub fn api_key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_have_prefix_length_and_differ() {
        let a = generate_api_key();
        let b = generate_api_key();
        assert!(a.starts_with("mftpk_"));
        assert_eq!(a.len(), 6 + API_KEY_BODY_LEN);
        assert!(a[6..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"sama"));
        assert!(!constant_time_eq(b"same", b"same-longer"));
    }
}
