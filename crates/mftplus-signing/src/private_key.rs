//! Signing keys read from unencrypted OpenSSH private key files (`openssh-key-v1`,
//! cipher `none`), the format `ssh-keygen -N ''` writes.
//!
//! Encrypted key files are refused with a pointer to ssh-agent rather than prompting for a
//! passphrase here: decrypting needs bcrypt-pbkdf and a cipher we do not otherwise carry, and
//! an agent keeps the key out of our process entirely. The [`Signer`] trait is where an
//! agent-backed signer plugs in.

use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use zeroize::Zeroizing;

use crate::armor::{self, PRIVATE_KEY_LABEL};
use crate::keys::{
    ecdsa_fixed_to_mpints, signature_blob, KeyAlgorithm, KeyError, PublicKey, SignError, Signer,
};
use crate::wire::{left_pad, Reader};

const AUTH_MAGIC: &[u8] = b"openssh-key-v1\0";
/// The "none" cipher pads the private section to this block size.
const NONE_BLOCK_SIZE: usize = 8;

enum Pair {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair),
}

/// A private key held in this process. `Debug` shows only the public half.
pub struct PrivateKey {
    public: PublicKey,
    comment: String,
    pair: Pair,
    rng: SystemRandom,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("public", &self.public)
            .field("comment", &self.comment)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Parses the text of an OpenSSH private key file.
    pub fn from_openssh(text: &str) -> Result<Self, KeyError> {
        let decoded = armor::decode(PRIVATE_KEY_LABEL, text)?;
        let mut r = Reader::new(&decoded);
        if r.bytes(AUTH_MAGIC.len(), "magic")? != AUTH_MAGIC {
            return Err(KeyError::BadPrivateKey("not an openssh-key-v1 file"));
        }
        let cipher = r.string("cipher name")?;
        let kdf = r.string("kdf name")?;
        let _kdf_options = r.string("kdf options")?;
        if cipher != b"none" || kdf != b"none" {
            return Err(KeyError::Encrypted);
        }
        if r.u32("key count")? != 1 {
            return Err(KeyError::BadPrivateKey(
                "files holding more than one key are not supported",
            ));
        }
        let public = PublicKey::from_blob(r.string("public key")?)?;
        let private = r.string("private section")?;
        r.finish("private key file")?;
        Self::parse_private_section(public, private)
    }

    fn parse_private_section(public: PublicKey, section: &[u8]) -> Result<Self, KeyError> {
        if section.len() % NONE_BLOCK_SIZE != 0 {
            return Err(KeyError::BadPrivateKey("private section is not padded"));
        }
        let mut r = Reader::new(section);
        // For unencrypted files the check words only catch corruption, but they are cheap.
        if r.u32("check word")? != r.u32("check word")? {
            return Err(KeyError::BadPrivateKey("check words differ"));
        }
        let name = r.utf8("key algorithm")?;
        let algorithm = KeyAlgorithm::from_name(name)
            .ok_or_else(|| KeyError::UnsupportedAlgorithm(name.to_owned()))?;
        if algorithm != public.algorithm() {
            return Err(KeyError::AlgorithmMismatch {
                outer: public.algorithm().name().to_owned(),
                inner: name.to_owned(),
            });
        }
        let rng = SystemRandom::new();
        let pair = match algorithm {
            KeyAlgorithm::Ed25519 => {
                let pk = r.string("ed25519 public key")?;
                // OpenSSH stores the 64-byte "secret key" as seed || public key.
                let sk = r.string("ed25519 secret key")?;
                if pk != public.raw() || sk.len() != 64 || &sk[32..] != pk {
                    return Err(KeyError::BadPrivateKey("ed25519 key halves do not match"));
                }
                let seed = Zeroizing::new(sk[..32].to_vec());
                Pair::Ed25519(
                    Ed25519KeyPair::from_seed_and_public_key(&seed, pk)
                        .map_err(|e| KeyError::Rejected(e.to_string()))?,
                )
            }
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => {
                let curve = r.utf8("ecdsa curve")?;
                if Some(curve) != algorithm.curve() {
                    return Err(KeyError::CurveMismatch(curve.to_owned()));
                }
                let point = r.string("ecdsa public point")?;
                if point != public.raw() {
                    return Err(KeyError::BadPrivateKey("ecdsa key halves do not match"));
                }
                let scalar = r.positive_mpint("ecdsa private scalar")?;
                // ring wants the scalar as a fixed-width big-endian integer.
                let scalar = Zeroizing::new(
                    left_pad(scalar, algorithm.scalar_len())
                        .ok_or(KeyError::BadPrivateKey("ecdsa scalar too large"))?,
                );
                Pair::Ecdsa(
                    EcdsaKeyPair::from_private_key_and_public_key(
                        ecdsa_signing_alg(algorithm)?,
                        &scalar,
                        point,
                        &rng,
                    )
                    .map_err(|e| KeyError::Rejected(e.to_string()))?,
                )
            }
        };
        let comment = r.utf8("comment")?.to_owned();
        // Padding is 1, 2, 3, … up to the block size; anything else means a misparse.
        let padding = r.bytes(r.remaining(), "padding")?;
        if padding.len() >= NONE_BLOCK_SIZE
            || padding
                .iter()
                .enumerate()
                .any(|(i, &b)| b as usize != i + 1)
        {
            return Err(KeyError::BadPrivateKey("bad padding"));
        }
        Ok(Self {
            public,
            comment,
            pair,
            rng,
        })
    }

    /// A fresh random key that lives only in memory (tests, ephemeral tooling).
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let crypto = |e: ring::error::Unspecified| KeyError::Rejected(e.to_string());
        let (pair, raw_public) = match algorithm {
            KeyAlgorithm::Ed25519 => {
                let mut seed = Zeroizing::new([0u8; 32]);
                rng.fill(&mut seed[..]).map_err(crypto)?;
                let pair = Ed25519KeyPair::from_seed_unchecked(&seed[..])
                    .map_err(|e| KeyError::Rejected(e.to_string()))?;
                let raw = pair.public_key().as_ref().to_vec();
                (Pair::Ed25519(pair), raw)
            }
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => {
                let alg = ecdsa_signing_alg(algorithm)?;
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(crypto)?;
                let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
                    .map_err(|e| KeyError::Rejected(e.to_string()))?;
                let raw = pair.public_key().as_ref().to_vec();
                (Pair::Ecdsa(pair), raw)
            }
        };
        Ok(Self {
            public: PublicKey::from_raw(algorithm, &raw_public)?,
            comment: String::new(),
            pair,
            rng,
        })
    }

    /// The comment stored in the key file (often `user@host`).
    pub fn comment(&self) -> &str {
        &self.comment
    }
}

impl Signer for PrivateKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign_ssh(&self, data: &[u8]) -> Result<Vec<u8>, SignError> {
        let algorithm = self.public.algorithm();
        let raw = match &self.pair {
            Pair::Ed25519(pair) => pair.sign(data).as_ref().to_vec(),
            Pair::Ecdsa(pair) => {
                let fixed = pair.sign(&self.rng, data).map_err(|_| SignError::Crypto)?;
                ecdsa_fixed_to_mpints(algorithm, fixed.as_ref())
            }
        };
        Ok(signature_blob(algorithm, &raw))
    }
}

fn ecdsa_signing_alg(
    algorithm: KeyAlgorithm,
) -> Result<&'static ring::signature::EcdsaSigningAlgorithm, KeyError> {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => Ok(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING),
        KeyAlgorithm::EcdsaP384 => Ok(&ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING),
        KeyAlgorithm::Ed25519 => Err(KeyError::UnsupportedAlgorithm(
            "ssh-ed25519 is not an ECDSA algorithm".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_verify() {
        for alg in [
            KeyAlgorithm::Ed25519,
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
        ] {
            let key = PrivateKey::generate(alg).unwrap();
            let sig = key.sign_ssh(b"data").unwrap();
            key.public_key().verify(b"data", &sig).unwrap();
            assert!(key.public_key().verify(b"datA", &sig).is_err());
            assert!(!format!("{key:?}").contains("pair"));
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let armored = armor::encode(PRIVATE_KEY_LABEL, b"openssh-key-v1\0\0\0\0\x04none");
        assert!(PrivateKey::from_openssh(&armored).is_err());
        assert!(PrivateKey::from_openssh("not a key").is_err());
    }
}
