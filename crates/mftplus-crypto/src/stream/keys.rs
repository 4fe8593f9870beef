//! X25519 key pairs for recipients: generation, text encoding and fingerprints.
//!
//! `x25519-dalek` rather than `ring` because the recipient's key is static (created once,
//! stored 0600, used for every transfer) and ring's agreement API only has ephemeral keys.
//!
//! Text form: `mftx25519_` + unpadded URL-safe base64 of the 32-byte public key, and
//! `mftx25519sk_` + the same encoding of the 32-byte secret scalar. The prefixes make a pasted
//! key recognisable and keep a secret key from being mistaken for a public one.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::digest;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::cipher::fill_random;
use super::StreamError;

pub const PUBLIC_KEY_PREFIX: &str = "mftx25519_";
pub const SECRET_KEY_PREFIX: &str = "mftx25519sk_";
/// Length of the recipient fingerprint stored in each X25519 stanza.
pub const FINGERPRINT_LEN: usize = 16;
const FINGERPRINT_LABEL: &[u8] = b"mftplus-x25519-fingerprint-v1";

/// A recipient's public key: what is registered with the server and encrypted to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct X25519PublicKey([u8; 32]);

impl X25519PublicKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        X25519PublicKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `mftx25519_…`
    pub fn to_encoded(&self) -> String {
        format!("{PUBLIC_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(self.0))
    }

    pub fn from_encoded(s: &str) -> Result<Self, StreamError> {
        let body = s
            .trim()
            .strip_prefix(PUBLIC_KEY_PREFIX)
            .ok_or(StreamError::InvalidKey(
                "public key must start with mftx25519_",
            ))?;
        Ok(X25519PublicKey(decode_32(body)?))
    }

    /// First 16 bytes of SHA-256(label || public key). Stored in the stanza so a recipient
    /// finds its stanza directly instead of trying every one; not secret.
    pub fn fingerprint(&self) -> [u8; FINGERPRINT_LEN] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(FINGERPRINT_LABEL);
        ctx.update(&self.0);
        let mut out = [0u8; FINGERPRINT_LEN];
        out.copy_from_slice(&ctx.finish().as_ref()[..FINGERPRINT_LEN]);
        out
    }

    /// The fingerprint in lower-case hex, for display and lookups.
    pub fn fingerprint_hex(&self) -> String {
        hex::encode(self.fingerprint())
    }

    pub(crate) fn dalek(&self) -> PublicKey {
        PublicKey::from(self.0)
    }
}

impl fmt::Debug for X25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X25519PublicKey({})", self.to_encoded())
    }
}

impl fmt::Display for X25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_encoded())
    }
}

impl std::str::FromStr for X25519PublicKey {
    type Err = StreamError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_encoded(s)
    }
}

/// A recipient's secret key. Zeroised on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct X25519SecretKey {
    secret: StaticSecret,
    /// Derived once: opening a header needs it twice (the stanza's fingerprint and the wrap
    /// key's salt), and each derivation is a scalar multiplication — per received file.
    public: X25519PublicKey,
}

impl X25519SecretKey {
    fn from_secret(secret: StaticSecret) -> Self {
        let public = X25519PublicKey(PublicKey::from(&secret).to_bytes());
        X25519SecretKey { secret, public }
    }

    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Result<Self, StreamError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        fill_random(&mut bytes[..])?;
        Ok(Self::from_secret(StaticSecret::from(*bytes)))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self::from_secret(StaticSecret::from(bytes))
    }

    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    pub fn public_key(&self) -> X25519PublicKey {
        self.public
    }

    /// `mftx25519sk_…`, for the 0600 key file.
    pub fn to_encoded(&self) -> Zeroizing<String> {
        let bytes = self.to_bytes();
        Zeroizing::new(format!(
            "{SECRET_KEY_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(&bytes[..])
        ))
    }

    pub fn from_encoded(s: &str) -> Result<Self, StreamError> {
        let body = s
            .trim()
            .strip_prefix(SECRET_KEY_PREFIX)
            .ok_or(StreamError::InvalidKey(
                "secret key must start with mftx25519sk_",
            ))?;
        let bytes = Zeroizing::new(decode_32(body)?);
        Ok(Self::from_secret(StaticSecret::from(*bytes)))
    }

    pub(crate) fn dalek(&self) -> &StaticSecret {
        &self.secret
    }
}

impl fmt::Debug for X25519SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "X25519SecretKey(public: {}, secret: <redacted>)",
            self.public_key()
        )
    }
}

fn decode_32(body: &str) -> Result<[u8; 32], StreamError> {
    let decoded = Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| StreamError::InvalidKey("not unpadded URL-safe base64"))?,
    );
    decoded
        .as_slice()
        .try_into()
        .map_err(|_| StreamError::InvalidKey("a key is 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip() {
        let sk = X25519SecretKey::generate().unwrap();
        let pk = sk.public_key();
        let pk_text = pk.to_encoded();
        assert!(pk_text.starts_with("mftx25519_"));
        assert_eq!(pk_text.len(), PUBLIC_KEY_PREFIX.len() + 43);
        assert_eq!(X25519PublicKey::from_encoded(&pk_text).unwrap(), pk);
        let sk_text = sk.to_encoded();
        assert!(sk_text.starts_with("mftx25519sk_"));
        let sk2 = X25519SecretKey::from_encoded(&sk_text).unwrap();
        assert_eq!(sk2.public_key(), pk);
    }

    #[test]
    fn bad_encodings_are_rejected() {
        let pk = X25519SecretKey::generate()
            .unwrap()
            .public_key()
            .to_encoded();
        let sk = X25519SecretKey::generate().unwrap().to_encoded();
        assert!(X25519PublicKey::from_encoded(&sk).is_err());
        assert!(X25519SecretKey::from_encoded(&pk).is_err());
        assert!(X25519PublicKey::from_encoded("mftx25519_abc").is_err());
        assert!(X25519PublicKey::from_encoded("mftx25519_!!!").is_err());
        assert!(X25519PublicKey::from_encoded("").is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let sk = X25519SecretKey::generate().unwrap();
        let shown = format!("{sk:?}");
        let body = sk.to_encoded();
        assert!(!shown.contains(&body[SECRET_KEY_PREFIX.len()..]));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn fingerprints_differ_per_key() {
        let a = X25519SecretKey::generate().unwrap().public_key();
        let b = X25519SecretKey::generate().unwrap().public_key();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint_hex().len(), 32);
    }
}
