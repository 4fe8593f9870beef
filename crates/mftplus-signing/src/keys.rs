//! OpenSSH public keys: the wire blob, the `authorized_keys`-style text line, the
//! `SHA256:` fingerprint, checking an SSH signature blob, and the [`Signer`] trait.
//!
//! Supported: `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ecdsa-sha2-nistp384` (the curves ring
//! implements). Not supported: RSA, `ecdsa-sha2-nistp521`, FIDO `sk-*` keys and certificates;
//! those are refused by name so an operator sees why.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use ring::signature::{self as ring_sig, UnparsedPublicKey};
use thiserror::Error;

use crate::wire::{left_pad, Reader, WireError, Writer};

/// The key algorithms this crate can verify and sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    Ed25519,
    EcdsaP256,
    EcdsaP384,
}

impl KeyAlgorithm {
    /// The SSH algorithm name, used for both the key and its signatures.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "ssh-ed25519",
            Self::EcdsaP256 => "ecdsa-sha2-nistp256",
            Self::EcdsaP384 => "ecdsa-sha2-nistp384",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ssh-ed25519" => Some(Self::Ed25519),
            "ecdsa-sha2-nistp256" => Some(Self::EcdsaP256),
            "ecdsa-sha2-nistp384" => Some(Self::EcdsaP384),
            _ => None,
        }
    }

    /// The curve identifier inside an ECDSA blob (`nistp256`), `None` for Ed25519.
    pub(crate) fn curve(self) -> Option<&'static str> {
        match self {
            Self::Ed25519 => None,
            Self::EcdsaP256 => Some("nistp256"),
            Self::EcdsaP384 => Some("nistp384"),
        }
    }

    /// Byte length of a field element / scalar (ECDSA) or of the public key (Ed25519).
    pub(crate) fn scalar_len(self) -> usize {
        match self {
            Self::Ed25519 | Self::EcdsaP256 => 32,
            Self::EcdsaP384 => 48,
        }
    }

    fn public_len(self) -> usize {
        match self {
            Self::Ed25519 => 32,
            // SEC1 uncompressed point: 0x04 || X || Y.
            Self::EcdsaP256 | Self::EcdsaP384 => 1 + 2 * self.scalar_len(),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key (public or private) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("unsupported key algorithm `{0}` (supported: ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384)")]
    UnsupportedAlgorithm(String),
    #[error("malformed key: {0}")]
    Wire(#[from] WireError),
    #[error("key text is not `<algorithm> <base64> [comment]`")]
    BadText,
    #[error("key base64 is invalid")]
    Base64,
    #[error("key says `{outer}` outside but `{inner}` inside")]
    AlgorithmMismatch { outer: String, inner: String },
    #[error("ECDSA key names curve `{0}` which does not match its algorithm")]
    CurveMismatch(String),
    #[error("{0} public key has the wrong length or encoding")]
    BadPublicKey(KeyAlgorithm),
    #[error("private key armor: {0}")]
    Armor(#[from] crate::armor::ArmorError),
    #[error("encrypted keys are not supported; use ssh-agent")]
    Encrypted,
    #[error("malformed private key: {0}")]
    BadPrivateKey(&'static str),
    #[error("private key was rejected by the crypto library: {0}")]
    Rejected(String),
}

/// Why an SSH signature blob does not check out against a key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    #[error("malformed signature: {0}")]
    Wire(#[from] WireError),
    #[error("signature algorithm `{found}` does not match the {expected} key")]
    AlgorithmMismatch {
        expected: KeyAlgorithm,
        found: String,
    },
    #[error("signature has the wrong length or encoding for {0}")]
    BadEncoding(KeyAlgorithm),
    #[error("signature does not verify")]
    Invalid,
}

/// An OpenSSH public key. Equality is by algorithm and key material, which is what pinning
/// means: comments and principals are labels, not identity.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    algorithm: KeyAlgorithm,
    /// Ed25519: the 32-byte key. ECDSA: the SEC1 uncompressed point.
    key: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.algorithm, self.fingerprint())
    }
}

impl PublicKey {
    /// Builds a key from raw material, checking only its shape (length and point prefix).
    pub fn from_raw(algorithm: KeyAlgorithm, key: &[u8]) -> Result<Self, KeyError> {
        let uncompressed = algorithm == KeyAlgorithm::Ed25519 || key.first() == Some(&0x04);
        if key.len() != algorithm.public_len() || !uncompressed {
            return Err(KeyError::BadPublicKey(algorithm));
        }
        Ok(Self {
            algorithm,
            key: key.to_vec(),
        })
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Raw key material (see [`PublicKey::from_raw`]).
    pub fn raw(&self) -> &[u8] {
        &self.key
    }

    /// Parses the SSH wire blob (`string algorithm, …`) with nothing left over.
    pub fn from_blob(blob: &[u8]) -> Result<Self, KeyError> {
        let mut r = Reader::new(blob);
        let key = Self::read(&mut r)?;
        r.finish("public key")?;
        Ok(key)
    }

    /// Reads one public key from the middle of a larger wire structure.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, KeyError> {
        let name = r.utf8("key algorithm")?;
        let algorithm = KeyAlgorithm::from_name(name)
            .ok_or_else(|| KeyError::UnsupportedAlgorithm(name.to_owned()))?;
        if let Some(curve) = algorithm.curve() {
            let found = r.utf8("ecdsa curve")?;
            if found != curve {
                return Err(KeyError::CurveMismatch(found.to_owned()));
            }
        }
        let key = r.string("public key material")?;
        Self::from_raw(algorithm, key)
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.string(self.algorithm.name().as_bytes());
        if let Some(curve) = self.algorithm.curve() {
            w.string(curve.as_bytes());
        }
        w.string(&self.key);
    }

    /// The SSH wire blob, as embedded in SSHSIG and base64-encoded in `.pub` files.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_bytes()
    }

    /// Parses an OpenSSH public key line `<algorithm> <base64> [comment]`, ignoring the comment.
    pub fn from_openssh(line: &str) -> Result<Self, KeyError> {
        Self::from_openssh_with_comment(line).map(|(key, _)| key)
    }

    /// Like [`PublicKey::from_openssh`], also returning the comment (empty if none).
    pub fn from_openssh_with_comment(line: &str) -> Result<(Self, String), KeyError> {
        let line = line.trim();
        let (name, rest) = line.split_once([' ', '\t']).ok_or(KeyError::BadText)?;
        let rest = rest.trim_start();
        let (b64, comment) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
        let key = Self::from_name_and_base64(name, b64)?;
        Ok((key, comment.trim().to_owned()))
    }

    /// Parses the two key fields of a line whose other fields were already split off.
    pub(crate) fn from_name_and_base64(name: &str, b64: &str) -> Result<Self, KeyError> {
        if KeyAlgorithm::from_name(name).is_none() {
            return Err(KeyError::UnsupportedAlgorithm(name.to_owned()));
        }
        let blob = STANDARD.decode(b64).map_err(|_| KeyError::Base64)?;
        let key = Self::from_blob(&blob)?;
        if key.algorithm.name() != name {
            return Err(KeyError::AlgorithmMismatch {
                outer: name.to_owned(),
                inner: key.algorithm.name().to_owned(),
            });
        }
        Ok(key)
    }

    /// `<algorithm> <base64>`, the form of a `.pub` file without its comment.
    pub fn to_openssh(&self) -> String {
        format!(
            "{} {}",
            self.algorithm.name(),
            STANDARD.encode(self.to_blob())
        )
    }

    /// `SHA256:<unpadded base64>` of the blob, the same string `ssh-keygen -l` prints.
    pub fn fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.to_blob());
        format!("SHA256:{}", STANDARD_NO_PAD.encode(digest.as_ref()))
    }

    /// Checks an SSH signature blob (`string algorithm, string signature`) over `data`.
    pub fn verify(&self, data: &[u8], signature_blob: &[u8]) -> Result<(), SignatureError> {
        let mut r = Reader::new(signature_blob);
        let name = r.utf8("signature algorithm")?;
        if name != self.algorithm.name() {
            return Err(SignatureError::AlgorithmMismatch {
                expected: self.algorithm,
                found: name.to_owned(),
            });
        }
        let sig = r.string("signature")?;
        r.finish("signature blob")?;

        let (alg, raw): (&'static dyn ring_sig::VerificationAlgorithm, Vec<u8>) =
            match self.algorithm {
                KeyAlgorithm::Ed25519 => {
                    if sig.len() != 64 {
                        return Err(SignatureError::BadEncoding(self.algorithm));
                    }
                    (&ring_sig::ED25519, sig.to_vec())
                }
                KeyAlgorithm::EcdsaP256 => (
                    &ring_sig::ECDSA_P256_SHA256_FIXED,
                    ecdsa_mpints_to_fixed(self.algorithm, sig)?,
                ),
                KeyAlgorithm::EcdsaP384 => (
                    &ring_sig::ECDSA_P384_SHA384_FIXED,
                    ecdsa_mpints_to_fixed(self.algorithm, sig)?,
                ),
            };
        UnparsedPublicKey::new(alg, &self.key)
            .verify(data, &raw)
            .map_err(|_| SignatureError::Invalid)
    }
}

/// SSH carries an ECDSA signature as `mpint r, mpint s`; ring wants `r || s`, each left-padded
/// to the scalar length. Any other shape is refused rather than guessed at.
fn ecdsa_mpints_to_fixed(alg: KeyAlgorithm, sig: &[u8]) -> Result<Vec<u8>, SignatureError> {
    let mut r = Reader::new(sig);
    let width = alg.scalar_len();
    let bad = |_| SignatureError::BadEncoding(alg);
    let big_r = r.positive_mpint("ecdsa r").map_err(bad)?;
    let big_s = r.positive_mpint("ecdsa s").map_err(bad)?;
    r.finish("ecdsa signature").map_err(bad)?;
    let mut out = left_pad(big_r, width).ok_or(SignatureError::BadEncoding(alg))?;
    out.extend(left_pad(big_s, width).ok_or(SignatureError::BadEncoding(alg))?);
    Ok(out)
}

/// The inverse of [`ecdsa_mpints_to_fixed`], for signatures made with ring.
pub(crate) fn ecdsa_fixed_to_mpints(alg: KeyAlgorithm, fixed: &[u8]) -> Vec<u8> {
    let (big_r, big_s) = fixed.split_at(alg.scalar_len());
    let mut w = Writer::new();
    w.positive_mpint(big_r).positive_mpint(big_s);
    w.into_bytes()
}

/// Wraps raw signature bytes as an SSH signature blob.
pub(crate) fn signature_blob(alg: KeyAlgorithm, sig: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(alg.name().as_bytes()).string(sig);
    w.into_bytes()
}

/// Why signing failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignError {
    #[error("the crypto library failed to sign")]
    Crypto,
    /// For signers that talk to something else (ssh-agent, a token): its own message.
    #[error("signer backend failed: {0}")]
    Backend(String),
    #[error("ssh-agent: {0}")]
    Agent(#[from] crate::agent::AgentError),
}

/// Something that can make SSH signatures with one key.
///
/// The contract is the one ssh-agent's sign request has: given the data, return the SSH
/// signature blob (`string algorithm, string signature`). A file-backed key
/// ([`crate::PrivateKey`]) and an ssh-agent key ([`crate::AgentSigner`]) implement it; SSHSIG
/// code does not know which it has.
pub trait Signer {
    /// The public half, which SSHSIG embeds so the verifier can match it against pinned keys.
    fn public_key(&self) -> &PublicKey;

    /// Signs `data` (for SSHSIG: the signed-data structure, not the raw message).
    fn sign_ssh(&self, data: &[u8]) -> Result<Vec<u8>, SignError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    // A key generated once with `ssh-keygen -t ed25519`; its fingerprint as printed by
    // `ssh-keygen -l`.
    const ED25519_PUB: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOPFtXrskxsfZWusGBFtoKVKEPr/9GjOg9ELsewVBRHT op@laptop";
    const ED25519_FPR: &str = "SHA256:CeUygFUByZQuza8hWanBBkwHD3g4jhvX6p14WqSSj0A";

    #[test]
    fn parses_openssh_line_and_fingerprints_like_ssh_keygen() {
        let (key, comment) = PublicKey::from_openssh_with_comment(ED25519_PUB).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Ed25519);
        assert_eq!(comment, "op@laptop");
        assert_eq!(key.fingerprint(), ED25519_FPR);
        assert_eq!(format!("{} op@laptop", key.to_openssh()), ED25519_PUB);
    }

    #[test]
    fn refuses_unsupported_and_mismatched_keys() {
        assert!(matches!(
            PublicKey::from_openssh("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC x"),
            Err(KeyError::UnsupportedAlgorithm(_))
        ));
        let b64 = ED25519_PUB.split(' ').nth(1).unwrap();
        assert!(matches!(
            PublicKey::from_name_and_base64("ecdsa-sha2-nistp256", b64),
            Err(KeyError::AlgorithmMismatch { .. })
        ));
        assert_eq!(
            PublicKey::from_raw(KeyAlgorithm::EcdsaP256, &[2u8; 33]),
            Err(KeyError::BadPublicKey(KeyAlgorithm::EcdsaP256))
        );
    }

    #[test]
    fn ecdsa_signature_conversion_round_trips() {
        let mut fixed = vec![0u8; 64];
        fixed[0] = 0x80; // r needs a sign-padding zero
        fixed[63] = 1; // s is tiny: leading zeros stripped
        let mpints = ecdsa_fixed_to_mpints(KeyAlgorithm::EcdsaP256, &fixed);
        assert_eq!(
            ecdsa_mpints_to_fixed(KeyAlgorithm::EcdsaP256, &mpints).unwrap(),
            fixed
        );
        // An r wider than the curve is refused, not truncated.
        let mut w = Writer::new();
        w.positive_mpint(&[1u8; 33]).positive_mpint(&[1]);
        assert_eq!(
            ecdsa_mpints_to_fixed(KeyAlgorithm::EcdsaP256, &w.into_bytes()),
            Err(SignatureError::BadEncoding(KeyAlgorithm::EcdsaP256))
        );
    }
}
