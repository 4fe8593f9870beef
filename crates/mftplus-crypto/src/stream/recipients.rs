//! Recipient stanzas: how the random per-file key is wrapped for each reader.
//!
//! Three kinds, mixable in one header: an X25519 public key (ephemeral-static key agreement), a
//! passphrase (PBKDF2-HMAC-SHA256), and a share link (`link.rs`: HKDF/PBKDF2 and AES-256-GCM,
//! what a browser's WebCrypto can unwrap). Each wrap key seals exactly one message, the 32-byte file
//! key, with ChaCha20-Poly1305 under an all-zero nonce; the wrap key is fresh per stanza (new
//! ephemeral key or new salt), which is what makes the fixed nonce safe.
//!
//! Not here: where keys are stored, how passphrases are read, or which users a transfer goes to.

use std::num::NonZeroU32;

use ring::pbkdf2;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::cipher::{
    fill_random, hkdf_sha256, new_chunk_cipher, CipherId, KEY_LEN, TAG_LEN, ZERO_NONCE,
};
use super::keys::{X25519PublicKey, X25519SecretKey, FINGERPRINT_LEN};
use super::link::{self, LinkKey, KIND_LINK, LINK_SALT_LEN};
use super::StreamError;

/// The seed's figure, and the floor: files asking for fewer iterations are refused on both sides.
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 600_000;
pub const MIN_PBKDF2_ITERATIONS: u32 = 600_000;
/// Upper bound accepted when reading, so a hostile header cannot make a reader spin for minutes.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
pub const PBKDF2_SALT_LEN: usize = 32;

pub(crate) const KIND_X25519: u8 = 0x01;
pub(crate) const KIND_PASSPHRASE: u8 = 0x02;
pub(crate) const WRAPPED_LEN: usize = KEY_LEN + TAG_LEN;
pub(crate) const X25519_BODY_LEN: usize = FINGERPRINT_LEN + 32 + WRAPPED_LEN;
pub(crate) const PASSPHRASE_BODY_LEN: usize = 4 + PBKDF2_SALT_LEN + WRAPPED_LEN;
const X25519_WRAP_LABEL: &[u8] = b"mftplus-stream-v1 x25519-wrap";

/// The random per-file key, zeroised on drop.
pub(crate) type FileKey = Zeroizing<[u8; KEY_LEN]>;

/// Someone a stream is encrypted to.
#[derive(Clone, Copy)]
pub enum Recipient<'a> {
    X25519(X25519PublicKey),
    /// The passphrase is used as its UTF-8 bytes, without Unicode normalisation.
    Passphrase {
        passphrase: &'a str,
        iterations: u32,
    },
    /// A share link: its secret, a passphrase, or both (`iterations` counts with a passphrase).
    /// Only in streams a browser can read: AES-256-GCM, no compression.
    Link {
        key: LinkKey<'a>,
        iterations: u32,
    },
}

impl<'a> Recipient<'a> {
    /// A passphrase recipient at [`DEFAULT_PBKDF2_ITERATIONS`].
    pub fn passphrase(passphrase: &'a str) -> Self {
        Recipient::Passphrase {
            passphrase,
            iterations: DEFAULT_PBKDF2_ITERATIONS,
        }
    }
}

impl std::fmt::Debug for Recipient<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recipient::X25519(pk) => write!(f, "Recipient::X25519({pk})"),
            Recipient::Passphrase { iterations, .. } => {
                write!(
                    f,
                    "Recipient::Passphrase(<redacted>, {iterations} iterations)"
                )
            }
            Recipient::Link { key, iterations } => {
                write!(f, "Recipient::Link({key:?}, {iterations} iterations)")
            }
        }
    }
}

/// What a reader holds to open a stream; give several and the first that fits is used.
#[derive(Clone, Copy)]
pub enum Identity<'a> {
    X25519(&'a X25519SecretKey),
    Passphrase(&'a str),
    Link(LinkKey<'a>),
}

/// One parsed stanza of a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stanza {
    X25519 {
        fingerprint: [u8; FINGERPRINT_LEN],
        ephemeral: [u8; 32],
        wrapped: [u8; WRAPPED_LEN],
    },
    Passphrase {
        iterations: u32,
        salt: [u8; PBKDF2_SALT_LEN],
        wrapped: [u8; WRAPPED_LEN],
    },
    /// A share link's wrap (`link.rs`); `mode` says which parts its wrap key needs.
    Link {
        mode: u8,
        iterations: u32,
        salt: [u8; LINK_SALT_LEN],
        wrapped: [u8; WRAPPED_LEN],
    },
    /// A kind this version does not know. Kept (it is covered by the header MAC) and skipped,
    /// so a later writer can add recipient kinds without breaking older readers' other stanzas.
    Unknown { kind: u8, body: Vec<u8> },
}

impl Stanza {
    pub fn kind(&self) -> u8 {
        match self {
            Stanza::X25519 { .. } => KIND_X25519,
            Stanza::Passphrase { .. } => KIND_PASSPHRASE,
            Stanza::Link { .. } => KIND_LINK,
            Stanza::Unknown { kind, .. } => *kind,
        }
    }

    pub(crate) fn body(&self) -> Vec<u8> {
        let mut body = Vec::new();
        match self {
            Stanza::X25519 {
                fingerprint,
                ephemeral,
                wrapped,
            } => {
                body.extend_from_slice(fingerprint);
                body.extend_from_slice(ephemeral);
                body.extend_from_slice(wrapped);
            }
            Stanza::Passphrase {
                iterations,
                salt,
                wrapped,
            } => {
                body.extend_from_slice(&iterations.to_be_bytes());
                body.extend_from_slice(salt);
                body.extend_from_slice(wrapped);
            }
            Stanza::Link {
                mode,
                iterations,
                salt,
                wrapped,
            } => link::encode_body(
                &link::LinkBody {
                    mode: *mode,
                    iterations: *iterations,
                    salt: *salt,
                    wrapped: *wrapped,
                },
                &mut body,
            ),
            Stanza::Unknown { body: b, .. } => body.extend_from_slice(b),
        }
        body
    }

    pub(crate) fn parse(kind: u8, body: &[u8]) -> Result<Self, StreamError> {
        match kind {
            KIND_X25519 => {
                if body.len() != X25519_BODY_LEN {
                    return Err(StreamError::Malformed("x25519 stanza has the wrong length"));
                }
                let (fingerprint, rest) = body.split_at(FINGERPRINT_LEN);
                let (ephemeral, wrapped) = rest.split_at(32);
                Ok(Stanza::X25519 {
                    fingerprint: fingerprint.try_into().expect("split length"),
                    ephemeral: ephemeral.try_into().expect("split length"),
                    wrapped: wrapped.try_into().expect("split length"),
                })
            }
            KIND_PASSPHRASE => {
                if body.len() != PASSPHRASE_BODY_LEN {
                    return Err(StreamError::Malformed(
                        "passphrase stanza has the wrong length",
                    ));
                }
                let (iterations, rest) = body.split_at(4);
                let (salt, wrapped) = rest.split_at(PBKDF2_SALT_LEN);
                Ok(Stanza::Passphrase {
                    iterations: u32::from_be_bytes(iterations.try_into().expect("split length")),
                    salt: salt.try_into().expect("split length"),
                    wrapped: wrapped.try_into().expect("split length"),
                })
            }
            KIND_LINK => link::parse_body(body),
            kind => Ok(Stanza::Unknown {
                kind,
                body: body.to_vec(),
            }),
        }
    }

    /// Associated data of the wrap AEAD: the kind byte and the stanza's cleartext fields.
    fn wrap_aad(&self) -> Vec<u8> {
        let mut aad = vec![self.kind()];
        let body = self.body();
        aad.extend_from_slice(&body[..body.len() - WRAPPED_LEN.min(body.len())]);
        aad
    }
}

pub(crate) fn check_iterations(iterations: u32) -> Result<NonZeroU32, StreamError> {
    if iterations < MIN_PBKDF2_ITERATIONS {
        return Err(StreamError::WeakKdfParameters {
            iterations,
            minimum: MIN_PBKDF2_ITERATIONS,
        });
    }
    if iterations > MAX_PBKDF2_ITERATIONS {
        return Err(StreamError::KdfTooExpensive {
            iterations,
            maximum: MAX_PBKDF2_ITERATIONS,
        });
    }
    Ok(NonZeroU32::new(iterations).expect("checked above the minimum"))
}

pub(crate) fn pbkdf2_key(
    passphrase: &str,
    salt: &[u8],
    iterations: NonZeroU32,
) -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        passphrase.as_bytes(),
        &mut key[..],
    );
    key
}

fn x25519_wrap_key(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
) -> Zeroizing<[u8; KEY_LEN]> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(recipient);
    hkdf_sha256(&salt, shared, &[X25519_WRAP_LABEL])
}

fn seal_file_key(
    wrap_key: &[u8; KEY_LEN],
    aad: &[u8],
    file_key: &FileKey,
) -> Result<[u8; WRAPPED_LEN], StreamError> {
    let mut buf = Zeroizing::new(Vec::with_capacity(WRAPPED_LEN));
    buf.extend_from_slice(&file_key[..]);
    new_chunk_cipher(CipherId::ChaCha20Poly1305, wrap_key)
        .seal_in_place(ZERO_NONCE, aad, &mut buf)
        .map_err(|_| StreamError::Malformed("sealing the file key failed"))?;
    Ok(buf.as_slice().try_into().expect("key plus tag"))
}

fn open_file_key(
    wrap_key: &[u8; KEY_LEN],
    aad: &[u8],
    wrapped: &[u8; WRAPPED_LEN],
) -> Option<FileKey> {
    let mut buf = Zeroizing::new(wrapped.to_vec());
    new_chunk_cipher(CipherId::ChaCha20Poly1305, wrap_key)
        .open_in_place(ZERO_NONCE, aad, &mut buf)
        .ok()?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&buf);
    Some(key)
}

/// Wraps `file_key` for one recipient, with fresh randomness.
pub(crate) fn wrap(recipient: &Recipient<'_>, file_key: &FileKey) -> Result<Stanza, StreamError> {
    match recipient {
        Recipient::X25519(pk) => {
            let mut eph_bytes = Zeroizing::new([0u8; 32]);
            fill_random(&mut eph_bytes[..])?;
            let eph = StaticSecret::from(*eph_bytes);
            let ephemeral = PublicKey::from(&eph).to_bytes();
            let shared = eph.diffie_hellman(&pk.dalek());
            // A low-order "public key" would give an all-zero secret anyone can compute.
            if !shared.was_contributory() {
                return Err(StreamError::InvalidKey(
                    "recipient key is a low-order point",
                ));
            }
            let wrap_key = x25519_wrap_key(shared.as_bytes(), &ephemeral, pk.as_bytes());
            let mut stanza = Stanza::X25519 {
                fingerprint: pk.fingerprint(),
                ephemeral,
                wrapped: [0u8; WRAPPED_LEN],
            };
            let sealed = seal_file_key(&wrap_key, &stanza.wrap_aad(), file_key)?;
            if let Stanza::X25519 { wrapped, .. } = &mut stanza {
                *wrapped = sealed;
            }
            Ok(stanza)
        }
        Recipient::Passphrase {
            passphrase,
            iterations,
        } => {
            if passphrase.is_empty() {
                return Err(StreamError::EmptyPassphrase);
            }
            let rounds = check_iterations(*iterations)?;
            let mut salt = [0u8; PBKDF2_SALT_LEN];
            fill_random(&mut salt)?;
            let wrap_key = pbkdf2_key(passphrase, &salt, rounds);
            let mut stanza = Stanza::Passphrase {
                iterations: *iterations,
                salt,
                wrapped: [0u8; WRAPPED_LEN],
            };
            let sealed = seal_file_key(&wrap_key, &stanza.wrap_aad(), file_key)?;
            if let Stanza::Passphrase { wrapped, .. } = &mut stanza {
                *wrapped = sealed;
            }
            Ok(stanza)
        }
        Recipient::Link { key, iterations } => link::wrap(key, *iterations, file_key),
    }
}

/// Finds the file key with the first identity that opens a stanza.
///
/// X25519 identities go first: they cost one scalar multiplication, a passphrase costs a full
/// PBKDF2 run per passphrase stanza.
pub(crate) fn unwrap(
    stanzas: &[Stanza],
    identities: &[Identity<'_>],
) -> Result<FileKey, StreamError> {
    for identity in identities {
        let Identity::X25519(sk) = identity else {
            continue;
        };
        let fingerprint = sk.public_key().fingerprint();
        for stanza in stanzas {
            let Stanza::X25519 {
                fingerprint: fp,
                ephemeral,
                wrapped,
            } = stanza
            else {
                continue;
            };
            if *fp != fingerprint {
                continue;
            }
            let shared = sk.dalek().diffie_hellman(&PublicKey::from(*ephemeral));
            // The stanza names us, so a failure from here on means it was altered.
            if !shared.was_contributory() {
                return Err(StreamError::HeaderTampered);
            }
            let wrap_key =
                x25519_wrap_key(shared.as_bytes(), ephemeral, sk.public_key().as_bytes());
            return open_file_key(&wrap_key, &stanza.wrap_aad(), wrapped)
                .ok_or(StreamError::HeaderTampered);
        }
    }

    let mut tried_passphrase = false;
    let mut refused: Option<StreamError> = None;
    for identity in identities {
        let Identity::Link(key) = identity else {
            continue;
        };
        match link::unwrap(stanzas, key) {
            Ok(file_key) => return Ok(file_key),
            Err(StreamError::NoMatchingRecipient) => {}
            Err(StreamError::WrongPassphrase) => tried_passphrase = true,
            Err(e) => {
                refused.get_or_insert(e);
            }
        }
    }
    for identity in identities {
        let Identity::Passphrase(passphrase) = identity else {
            continue;
        };
        for stanza in stanzas {
            let Stanza::Passphrase {
                iterations,
                salt,
                wrapped,
            } = stanza
            else {
                continue;
            };
            let rounds = match check_iterations(*iterations) {
                Ok(rounds) => rounds,
                Err(e) => {
                    refused.get_or_insert(e);
                    continue;
                }
            };
            tried_passphrase = true;
            let wrap_key = pbkdf2_key(passphrase, salt, rounds);
            if let Some(key) = open_file_key(&wrap_key, &stanza.wrap_aad(), wrapped) {
                return Ok(key);
            }
        }
    }
    match (refused, tried_passphrase) {
        (Some(e), _) => Err(e),
        (None, true) => Err(StreamError::WrongPassphrase),
        (None, false) => Err(StreamError::NoMatchingRecipient),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FileKey {
        Zeroizing::new([42u8; KEY_LEN])
    }

    #[test]
    fn x25519_wrap_unwrap() {
        let sk = X25519SecretKey::generate().unwrap();
        let other = X25519SecretKey::generate().unwrap();
        let stanza = wrap(&Recipient::X25519(sk.public_key()), &key()).unwrap();
        let parsed = Stanza::parse(stanza.kind(), &stanza.body()).unwrap();
        assert_eq!(parsed, stanza);
        let got = unwrap(std::slice::from_ref(&stanza), &[Identity::X25519(&sk)]).unwrap();
        assert_eq!(*got, *key());
        assert!(matches!(
            unwrap(&[stanza], &[Identity::X25519(&other)]),
            Err(StreamError::NoMatchingRecipient)
        ));
    }

    #[test]
    fn x25519_stanza_altered_is_tampering() {
        let sk = X25519SecretKey::generate().unwrap();
        let mut stanza = wrap(&Recipient::X25519(sk.public_key()), &key()).unwrap();
        if let Stanza::X25519 { wrapped, .. } = &mut stanza {
            wrapped[0] ^= 1;
        }
        assert!(matches!(
            unwrap(&[stanza], &[Identity::X25519(&sk)]),
            Err(StreamError::HeaderTampered)
        ));
    }

    #[test]
    fn low_order_recipient_is_refused() {
        let zero = X25519PublicKey::from_bytes([0u8; 32]);
        assert!(matches!(
            wrap(&Recipient::X25519(zero), &key()),
            Err(StreamError::InvalidKey(_))
        ));
    }

    #[test]
    fn weak_iterations_refused_on_both_sides() {
        let weak = Recipient::Passphrase {
            passphrase: "pw",
            iterations: 1000,
        };
        assert!(matches!(
            wrap(&weak, &key()),
            Err(StreamError::WeakKdfParameters {
                iterations: 1000,
                ..
            })
        ));
        let forged = Stanza::Passphrase {
            iterations: 1000,
            salt: [0u8; 32],
            wrapped: [0u8; WRAPPED_LEN],
        };
        assert!(matches!(
            unwrap(&[forged], &[Identity::Passphrase("pw")]),
            Err(StreamError::WeakKdfParameters { .. })
        ));
        let huge = Stanza::Passphrase {
            iterations: u32::MAX,
            salt: [0u8; 32],
            wrapped: [0u8; WRAPPED_LEN],
        };
        assert!(matches!(
            unwrap(&[huge], &[Identity::Passphrase("pw")]),
            Err(StreamError::KdfTooExpensive { .. })
        ));
    }

    #[test]
    fn unknown_stanzas_are_kept_and_skipped() {
        let s = Stanza::parse(0x7f, b"future").unwrap();
        assert_eq!(s.body(), b"future");
        assert!(matches!(
            unwrap(&[s], &[Identity::Passphrase("pw")]),
            Err(StreamError::NoMatchingRecipient)
        ));
        assert!(Stanza::parse(KIND_X25519, &[0u8; 10]).is_err());
        assert!(Stanza::parse(KIND_PASSPHRASE, &[0u8; 10]).is_err());
    }
}
