//! The OpenSSH SSHSIG signature format (`ssh-keygen -Y sign` / `-Y verify`).
//!
//! A signature is a wire structure
//! `"SSHSIG" ‖ uint32 version=1 ‖ string publickey ‖ string namespace ‖ string reserved ‖
//! string hash_algorithm ‖ string signature`, usually armored as `SSH SIGNATURE`. The key signs
//! not the message but `"SSHSIG" ‖ string namespace ‖ string reserved ‖ string hash_algorithm ‖
//! string H(message)`, so a signature made for one namespace (say, git commits) can never be
//! replayed as one for another (our ops).
//!
//! Parsing here says nothing about trust: the embedded public key is whatever the signer
//! claims. Deciding whether that key may sign is the caller's job (see [`crate::verify_op`]).

use thiserror::Error;

use crate::armor::{self, ArmorError, SIGNATURE_LABEL};
use crate::keys::{KeyError, PublicKey, SignError, SignatureError, Signer};
use crate::wire::{Reader, WireError, Writer};

const MAGIC: &[u8; 6] = b"SSHSIG";
const VERSION: u32 = 1;

/// The message digest SSHSIG signs. ssh-keygen defaults to SHA-512.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashAlg {
    Sha256,
    #[default]
    Sha512,
}

impl HashAlg {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Self::Sha256),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    fn digest(self, message: &[u8]) -> ring::digest::Digest {
        let alg = match self {
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha512 => &ring::digest::SHA512,
        };
        ring::digest::digest(alg, message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SshSigError {
    #[error("armor: {0}")]
    Armor(#[from] ArmorError),
    #[error("malformed SSHSIG: {0}")]
    Wire(#[from] WireError),
    #[error("not an SSHSIG (bad magic)")]
    BadMagic,
    #[error("unsupported SSHSIG version {0}")]
    UnsupportedVersion(u32),
    #[error("signer key: {0}")]
    Key(#[from] KeyError),
    #[error("unsupported hash algorithm `{0}` (sha256 and sha512 are)")]
    UnsupportedHash(String),
    #[error("namespace must not be empty")]
    EmptyNamespace,
    #[error("signature is for namespace `{found}`, expected `{expected}`")]
    NamespaceMismatch { expected: String, found: String },
    #[error("{0}")]
    Signature(#[from] SignatureError),
    #[error("signing failed: {0}")]
    Sign(#[from] SignError),
}

/// A parsed SSHSIG signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSig {
    public_key: PublicKey,
    namespace: String,
    reserved: Vec<u8>,
    hash_alg: HashAlg,
    /// The SSH signature blob: `string algorithm, string signature`.
    signature: Vec<u8>,
}

impl SshSig {
    /// Signs `message` under `namespace` with `signer`.
    pub fn sign(
        signer: &dyn Signer,
        namespace: &str,
        hash_alg: HashAlg,
        message: &[u8],
    ) -> Result<Self, SshSigError> {
        if namespace.is_empty() {
            return Err(SshSigError::EmptyNamespace);
        }
        let data = signed_data(namespace, &[], hash_alg, message);
        let signature = signer.sign_ssh(&data)?;
        let sig = Self {
            public_key: signer.public_key().clone(),
            namespace: namespace.to_owned(),
            reserved: Vec::new(),
            hash_alg,
            signature,
        };
        // A signer backend (agent, token) is outside our control: refuse to hand out a
        // signature that would not verify, instead of finding out on the far end.
        sig.verify_signature(&sig.public_key, message)?;
        Ok(sig)
    }

    /// Parses the binary (un-armored) form, requiring every byte to be accounted for.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SshSigError> {
        let mut r = Reader::new(bytes);
        if r.bytes(MAGIC.len(), "magic")? != MAGIC {
            return Err(SshSigError::BadMagic);
        }
        let version = r.u32("version")?;
        if version != VERSION {
            return Err(SshSigError::UnsupportedVersion(version));
        }
        let public_key = PublicKey::from_blob(r.string("public key")?)?;
        let namespace = r.utf8("namespace")?.to_owned();
        let reserved = r.string("reserved")?.to_vec();
        let hash_name = r.utf8("hash algorithm")?;
        let hash_alg = HashAlg::from_name(hash_name)
            .ok_or_else(|| SshSigError::UnsupportedHash(hash_name.to_owned()))?;
        let signature = r.string("signature")?.to_vec();
        r.finish("SSHSIG")?;
        Ok(Self {
            public_key,
            namespace,
            reserved,
            hash_alg,
            signature,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(MAGIC)
            .u32(VERSION)
            .string(&self.public_key.to_blob())
            .string(self.namespace.as_bytes())
            .string(&self.reserved)
            .string(self.hash_alg.name().as_bytes())
            .string(&self.signature);
        w.into_bytes()
    }

    /// Parses `-----BEGIN SSH SIGNATURE-----` armor and the SSHSIG inside it.
    pub fn from_armored(text: &str) -> Result<Self, SshSigError> {
        Self::from_bytes(&armor::decode(SIGNATURE_LABEL, text)?)
    }

    /// The armored form, byte-compatible with what `ssh-keygen -Y sign` writes.
    pub fn to_armored(&self) -> String {
        armor::encode(SIGNATURE_LABEL, &self.to_bytes())
    }

    /// The key the signature claims to be from. Untrusted until matched against pinned keys.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn hash_alg(&self) -> HashAlg {
        self.hash_alg
    }

    pub fn reserved(&self) -> &[u8] {
        &self.reserved
    }

    /// The SSH signature blob (`string algorithm, string signature`).
    pub fn signature_blob(&self) -> &[u8] {
        &self.signature
    }

    /// Fails unless the signature was made for exactly `expected`.
    pub fn check_namespace(&self, expected: &str) -> Result<(), SshSigError> {
        if self.namespace != expected {
            return Err(SshSigError::NamespaceMismatch {
                expected: expected.to_owned(),
                found: self.namespace.clone(),
            });
        }
        Ok(())
    }

    /// Checks the signature over `message` with `key` (normally a pinned key that equals
    /// [`SshSig::public_key`]). Namespace and trust are separate checks.
    pub fn verify_signature(&self, key: &PublicKey, message: &[u8]) -> Result<(), SshSigError> {
        let data = signed_data(&self.namespace, &self.reserved, self.hash_alg, message);
        key.verify(&data, &self.signature)?;
        Ok(())
    }

    /// Convenience for callers outside the op pipeline: namespace, then signature with `key`.
    pub fn verify(
        &self,
        key: &PublicKey,
        namespace: &str,
        message: &[u8],
    ) -> Result<(), SshSigError> {
        self.check_namespace(namespace)?;
        self.verify_signature(key, message)
    }
}

/// The bytes the key actually signs for `message` under `namespace`.
pub fn signed_data(namespace: &str, reserved: &[u8], hash_alg: HashAlg, message: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(MAGIC)
        .string(namespace.as_bytes())
        .string(reserved)
        .string(hash_alg.name().as_bytes())
        .string(hash_alg.digest(message).as_ref());
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyAlgorithm;
    use crate::PrivateKey;

    #[test]
    fn sign_armor_parse_verify_round_trip() {
        for alg in [
            KeyAlgorithm::Ed25519,
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
        ] {
            for hash in [HashAlg::Sha256, HashAlg::Sha512] {
                let key = PrivateKey::generate(alg).unwrap();
                let sig = SshSig::sign(&key, "ns", hash, b"msg").unwrap();
                let back = SshSig::from_armored(&sig.to_armored()).unwrap();
                assert_eq!(back, sig);
                back.verify(key.public_key(), "ns", b"msg").unwrap();
                assert!(matches!(
                    back.verify(key.public_key(), "other", b"msg"),
                    Err(SshSigError::NamespaceMismatch { .. })
                ));
                assert!(matches!(
                    back.verify(key.public_key(), "ns", b"msG"),
                    Err(SshSigError::Signature(SignatureError::Invalid))
                ));
            }
        }
    }

    #[test]
    fn reserved_field_is_covered_by_the_signature() {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let mut sig = SshSig::sign(&key, "ns", HashAlg::Sha512, b"msg").unwrap();
        sig.reserved = b"x".to_vec();
        assert!(sig.verify(key.public_key(), "ns", b"msg").is_err());
    }

    #[test]
    fn parse_rejects_bad_magic_version_hash_and_trailing_bytes() {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let good = SshSig::sign(&key, "ns", HashAlg::Sha512, b"m")
            .unwrap()
            .to_bytes();
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(SshSig::from_bytes(&bad), Err(SshSigError::BadMagic));
        let mut bad = good.clone();
        bad[9] = 2;
        assert_eq!(
            SshSig::from_bytes(&bad),
            Err(SshSigError::UnsupportedVersion(2))
        );
        let mut bad = good.clone();
        bad.push(0);
        assert!(matches!(
            SshSig::from_bytes(&bad),
            Err(SshSigError::Wire(WireError::TrailingBytes(..)))
        ));
        let sig = SshSig::from_bytes(&good).unwrap();
        let mut w = Writer::new();
        w.raw(MAGIC)
            .u32(1)
            .string(&sig.public_key.to_blob())
            .string(b"ns")
            .string(b"")
            .string(b"md5")
            .string(&sig.signature);
        assert_eq!(
            SshSig::from_bytes(&w.into_bytes()),
            Err(SshSigError::UnsupportedHash("md5".into()))
        );
    }
}
