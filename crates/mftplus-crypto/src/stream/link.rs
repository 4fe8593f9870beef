//! The link stanza (kind `0x03`): the file key wrapped so that a web browser can unwrap it with
//! nothing but WebCrypto, for share links (`docs/stream-format.md` §2.3, decision 0023).
//!
//! The X25519 and passphrase stanzas wrap with ChaCha20-Poly1305, which WebCrypto does not
//! offer. A link stanza uses only primitives every browser has: HKDF-SHA256 over a 32-byte
//! random link secret (carried in the URL's fragment, which browsers never send to a server),
//! optionally combined with PBKDF2-HMAC-SHA256 of a passphrase, and AES-256-GCM for the wrap.
//!
//! ```text
//! ikm      = secret (mode bit 0x01)  ||  PBKDF2-HMAC-SHA256(passphrase, salt, iterations) (mode bit 0x02)
//! wrap key = HKDF-SHA256(salt = salt, ikm, info = "mftplus-stream-v1 link-wrap" || mode)
//! wrapped  = AES-256-GCM(wrap key, nonce = 12 zero bytes, aad = 0x03 || mode || iterations || salt, file key)
//! ```
//!
//! The salt is fresh per stanza, so each wrap key seals exactly one message and the zero nonce
//! is safe. A writer only puts a link stanza into a stream a browser can read (AES-256-GCM
//! payload, no compression); [`super::Header::is_browser_readable`] is the reader's test.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use zeroize::Zeroizing;

use super::cipher::{fill_random, hkdf_sha256, new_chunk_cipher, CipherId, KEY_LEN, ZERO_NONCE};
use super::recipients::{check_iterations, pbkdf2_key, FileKey, Stanza, WRAPPED_LEN};
use super::StreamError;

pub(crate) const KIND_LINK: u8 = 0x03;
/// Mode bit: the wrap key needs the link secret from the URL fragment.
pub const LINK_MODE_SECRET: u8 = 0x01;
/// Mode bit: the wrap key needs the passphrase.
pub const LINK_MODE_PASSPHRASE: u8 = 0x02;
/// Length of a link secret in bytes; 43 characters as unpadded URL-safe base64.
pub const LINK_SECRET_LEN: usize = 32;
pub const LINK_SALT_LEN: usize = 32;
/// Mode, iterations, salt, wrapped key.
pub(crate) const LINK_BODY_LEN: usize = 1 + 4 + LINK_SALT_LEN + WRAPPED_LEN;
const LINK_WRAP_LABEL: &[u8] = b"mftplus-stream-v1 link-wrap";

/// The random secret a share link carries in its fragment. Zeroised on drop; `Debug` and
/// `Display` never show it.
#[derive(Clone)]
pub struct LinkSecret(Zeroizing<[u8; LINK_SECRET_LEN]>);

impl LinkSecret {
    /// A fresh secret from the OS CSPRNG.
    pub fn generate() -> Result<Self, StreamError> {
        let mut bytes = Zeroizing::new([0u8; LINK_SECRET_LEN]);
        fill_random(&mut bytes[..])?;
        Ok(LinkSecret(bytes))
    }

    pub fn from_bytes(bytes: [u8; LINK_SECRET_LEN]) -> Self {
        LinkSecret(Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; LINK_SECRET_LEN] {
        &self.0
    }

    /// Unpadded URL-safe base64: what goes after the `#` of a link.
    pub fn to_encoded(&self) -> Zeroizing<String> {
        Zeroizing::new(URL_SAFE_NO_PAD.encode(&self.0[..]))
    }

    pub fn from_encoded(text: &str) -> Result<Self, StreamError> {
        let decoded =
            Zeroizing::new(URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| {
                StreamError::InvalidKey("a link secret is unpadded URL-safe base64")
            })?);
        let bytes: [u8; LINK_SECRET_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| StreamError::InvalidKey("a link secret is 32 bytes"))?;
        Ok(LinkSecret::from_bytes(bytes))
    }
}

impl fmt::Debug for LinkSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkSecret(<redacted>)")
    }
}

/// What a link needs to be opened: the fragment's secret, a passphrase, or both.
#[derive(Clone, Copy)]
pub struct LinkKey<'a> {
    pub secret: Option<&'a LinkSecret>,
    pub passphrase: Option<&'a str>,
}

impl LinkKey<'_> {
    /// The mode byte of a stanza this key makes (or can open exactly).
    pub fn mode(&self) -> u8 {
        let mut mode = 0;
        if self.secret.is_some() {
            mode |= LINK_MODE_SECRET;
        }
        if self.passphrase.is_some() {
            mode |= LINK_MODE_PASSPHRASE;
        }
        mode
    }
}

impl fmt::Debug for LinkKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LinkKey(secret: {}, passphrase: {})",
            if self.secret.is_some() {
                "<redacted>"
            } else {
                "none"
            },
            if self.passphrase.is_some() {
                "<redacted>"
            } else {
                "none"
            }
        )
    }
}

/// The parsed body of a link stanza.
pub(crate) struct LinkBody {
    pub mode: u8,
    pub iterations: u32,
    pub salt: [u8; LINK_SALT_LEN],
    pub wrapped: [u8; WRAPPED_LEN],
}

pub(crate) fn parse_body(body: &[u8]) -> Result<Stanza, StreamError> {
    if body.len() != LINK_BODY_LEN {
        return Err(StreamError::Malformed("link stanza has the wrong length"));
    }
    Ok(Stanza::Link {
        mode: body[0],
        iterations: u32::from_be_bytes(body[1..5].try_into().expect("4 bytes")),
        salt: body[5..5 + LINK_SALT_LEN].try_into().expect("32 bytes"),
        wrapped: body[5 + LINK_SALT_LEN..].try_into().expect("48 bytes"),
    })
}

pub(crate) fn encode_body(body: &LinkBody, out: &mut Vec<u8>) {
    out.push(body.mode);
    out.extend_from_slice(&body.iterations.to_be_bytes());
    out.extend_from_slice(&body.salt);
    out.extend_from_slice(&body.wrapped);
}

/// The wrap key of a link stanza from what the reader holds. The caller has checked that `key`
/// provides every part `mode` asks for, and the iteration count when a passphrase is part.
fn wrap_key(
    key: &LinkKey<'_>,
    mode: u8,
    iterations: u32,
    salt: &[u8; LINK_SALT_LEN],
) -> Result<Zeroizing<[u8; KEY_LEN]>, StreamError> {
    let mut ikm = Zeroizing::new(Vec::with_capacity(2 * KEY_LEN));
    if mode & LINK_MODE_SECRET != 0 {
        let secret = key
            .secret
            .ok_or(StreamError::InvalidKey("this link needs its secret"))?;
        ikm.extend_from_slice(secret.as_bytes());
    }
    if mode & LINK_MODE_PASSPHRASE != 0 {
        let passphrase = key
            .passphrase
            .ok_or(StreamError::InvalidKey("this link needs its passphrase"))?;
        let rounds = check_iterations(iterations)?;
        ikm.extend_from_slice(&pbkdf2_key(passphrase, salt, rounds)[..]);
    }
    Ok(hkdf_sha256(salt, &ikm, &[LINK_WRAP_LABEL, &[mode]]))
}

/// The associated data of the wrap: the kind and every cleartext field of the stanza.
fn aad(mode: u8, iterations: u32, salt: &[u8; LINK_SALT_LEN]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(2 + 4 + LINK_SALT_LEN);
    aad.push(KIND_LINK);
    aad.push(mode);
    aad.extend_from_slice(&iterations.to_be_bytes());
    aad.extend_from_slice(salt);
    aad
}

/// Wraps `file_key` for a link, with a fresh salt. `iterations` only counts with a passphrase
/// (and is written as 0 without one).
pub(crate) fn wrap(
    key: &LinkKey<'_>,
    iterations: u32,
    file_key: &FileKey,
) -> Result<Stanza, StreamError> {
    let mode = key.mode();
    if mode == 0 {
        return Err(StreamError::InvalidKey(
            "a link needs its secret, a passphrase, or both",
        ));
    }
    if key.passphrase.is_some_and(str::is_empty) {
        return Err(StreamError::EmptyPassphrase);
    }
    let iterations = if mode & LINK_MODE_PASSPHRASE != 0 {
        check_iterations(iterations)?;
        iterations
    } else {
        0
    };
    let mut salt = [0u8; LINK_SALT_LEN];
    fill_random(&mut salt)?;
    wrap_with_salt(key, mode, iterations, salt, file_key)
}

fn wrap_with_salt(
    key: &LinkKey<'_>,
    mode: u8,
    iterations: u32,
    salt: [u8; LINK_SALT_LEN],
    file_key: &FileKey,
) -> Result<Stanza, StreamError> {
    let wrap_key = wrap_key(key, mode, iterations, &salt)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(WRAPPED_LEN));
    buf.extend_from_slice(&file_key[..]);
    new_chunk_cipher(CipherId::Aes256Gcm, &wrap_key)
        .seal_in_place(ZERO_NONCE, &aad(mode, iterations, &salt), &mut buf)
        .map_err(|_| StreamError::Malformed("sealing the file key failed"))?;
    Ok(Stanza::Link {
        mode,
        iterations,
        salt,
        wrapped: buf.as_slice().try_into().expect("key plus tag"),
    })
}

/// Tries `key` on every link stanza it can open (the mode's parts are all in `key`), cheapest
/// first: stanzas without a passphrase cost one HKDF, those with one a full PBKDF2 run.
pub(crate) fn unwrap(stanzas: &[Stanza], key: &LinkKey<'_>) -> Result<FileKey, StreamError> {
    let held = key.mode();
    let mut candidates: Vec<LinkBody> = stanzas
        .iter()
        .filter_map(|s| match s {
            Stanza::Link {
                mode,
                iterations,
                salt,
                wrapped,
            } => Some(LinkBody {
                mode: *mode,
                iterations: *iterations,
                salt: *salt,
                wrapped: *wrapped,
            }),
            _ => None,
        })
        // A mode this version does not know, or one needing a part the reader lacks, is skipped.
        .filter(|b| b.mode != 0 && b.mode & !(LINK_MODE_SECRET | LINK_MODE_PASSPHRASE) == 0)
        .filter(|b| b.mode & !held == 0)
        .collect();
    candidates.sort_by_key(|b| b.mode & LINK_MODE_PASSPHRASE);
    let mut refused: Option<StreamError> = None;
    let mut tried_passphrase = false;
    for body in &candidates {
        let wrap_key = match wrap_key(key, body.mode, body.iterations, &body.salt) {
            Ok(k) => k,
            Err(e) => {
                refused.get_or_insert(e);
                continue;
            }
        };
        tried_passphrase |= body.mode & LINK_MODE_PASSPHRASE != 0;
        let mut buf = Zeroizing::new(body.wrapped.to_vec());
        let opened = new_chunk_cipher(CipherId::Aes256Gcm, &wrap_key).open_in_place(
            ZERO_NONCE,
            &aad(body.mode, body.iterations, &body.salt),
            &mut buf,
        );
        if opened.is_ok() {
            let mut file_key = Zeroizing::new([0u8; KEY_LEN]);
            file_key.copy_from_slice(&buf);
            return Ok(file_key);
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
    use crate::stream::recipients::{Identity, Recipient};
    use crate::stream::{
        decrypt_reader_to_writer, encrypt_reader_to_writer, Compression, Header, ManifestInfo,
        StreamOptions, X25519SecretKey, DEFAULT_PBKDF2_ITERATIONS, MIN_CHUNK_SIZE,
    };

    fn file_key() -> FileKey {
        Zeroizing::new([42u8; KEY_LEN])
    }

    /// Computed independently (Python `cryptography`: PBKDF2HMAC, HKDF, AESGCM) from the
    /// construction in the module doc, so this pins the spec, not only the code.
    #[test]
    fn known_answers() {
        let secret = LinkSecret::from_bytes(std::array::from_fn(|i| i as u8));
        let cases: [(Option<&LinkSecret>, Option<&str>, u32, &str); 3] = [
            (Some(&secret), None, 0, "65f00fb74b56b761cfd2da2737d5d749d5e466192457cba751a8bcec9e4e4cf164f12c66d80472121cf242a08f08e238"),
            (None, Some("correct horse"), 600_000, "b237ab8ae9d0630f94fe4255b5dbe0877199a47cf4990ecc5674e7d917693aafee87ee39c017130769d0a1385815199c"),
            (Some(&secret), Some("correct horse"), 600_000, "1f04fb705e798a25e83900171dacfcc58a8de2f5a6f0e8f1874528723538d65f0950f9ae4d5fdcc0d164db057064912d"),
        ];
        for (secret, passphrase, iterations, expected) in cases {
            let key = LinkKey { secret, passphrase };
            let stanza =
                wrap_with_salt(&key, key.mode(), iterations, [0xa5; 32], &file_key()).unwrap();
            let Stanza::Link { wrapped, .. } = &stanza else {
                panic!("a link stanza")
            };
            assert_eq!(hex::encode(wrapped), expected, "mode {}", key.mode());
            let opened = unwrap(std::slice::from_ref(&stanza), &key).unwrap();
            assert_eq!(*opened, *file_key());
        }
    }

    #[test]
    fn each_mode_round_trips_and_refuses_the_wrong_key() {
        let secret = LinkSecret::generate().unwrap();
        let other = LinkSecret::generate().unwrap();
        let with = |secret, passphrase| LinkKey { secret, passphrase };
        let fragment = wrap(&with(Some(&secret), None), 0, &file_key()).unwrap();
        assert_eq!(
            Stanza::parse(KIND_LINK, &fragment.body()).unwrap(),
            fragment
        );
        assert_eq!(fragment.body().len(), LINK_BODY_LEN);
        let got = unwrap(std::slice::from_ref(&fragment), &with(Some(&secret), None)).unwrap();
        assert_eq!(*got, *file_key());
        assert!(matches!(
            unwrap(std::slice::from_ref(&fragment), &with(Some(&other), None)),
            Err(StreamError::NoMatchingRecipient)
        ));

        let both = wrap(
            &with(Some(&secret), Some("pw")),
            DEFAULT_PBKDF2_ITERATIONS,
            &file_key(),
        )
        .unwrap();
        // The secret alone cannot open a stanza that also needs the passphrase: skipped.
        assert!(matches!(
            unwrap(std::slice::from_ref(&both), &with(Some(&secret), None)),
            Err(StreamError::NoMatchingRecipient)
        ));
        assert!(matches!(
            unwrap(
                std::slice::from_ref(&both),
                &with(Some(&secret), Some("nope"))
            ),
            Err(StreamError::WrongPassphrase)
        ));
        assert!(matches!(
            unwrap(std::slice::from_ref(&both), &with(Some(&other), Some("pw"))),
            Err(StreamError::WrongPassphrase)
        ));
        let got = unwrap(&[both], &with(Some(&secret), Some("pw"))).unwrap();
        assert_eq!(*got, *file_key());
    }

    #[test]
    fn writers_refuse_empty_keys_and_weak_iterations_and_readers_too() {
        let none = LinkKey {
            secret: None,
            passphrase: None,
        };
        assert!(matches!(
            wrap(&none, 0, &file_key()),
            Err(StreamError::InvalidKey(_))
        ));
        let empty = LinkKey {
            secret: None,
            passphrase: Some(""),
        };
        assert!(matches!(
            wrap(&empty, DEFAULT_PBKDF2_ITERATIONS, &file_key()),
            Err(StreamError::EmptyPassphrase)
        ));
        let pw = LinkKey {
            secret: None,
            passphrase: Some("pw"),
        };
        assert!(matches!(
            wrap(&pw, 1000, &file_key()),
            Err(StreamError::WeakKdfParameters { .. })
        ));
        let forged = Stanza::Link {
            mode: LINK_MODE_PASSPHRASE,
            iterations: 1000,
            salt: [0; 32],
            wrapped: [0; WRAPPED_LEN],
        };
        assert!(matches!(
            unwrap(std::slice::from_ref(&forged), &pw),
            Err(StreamError::WeakKdfParameters { .. })
        ));
        // A mode of a later version is kept and skipped, not an error.
        let future = Stanza::Link {
            mode: 0x04,
            iterations: 0,
            salt: [0; 32],
            wrapped: [0; WRAPPED_LEN],
        };
        assert!(matches!(
            unwrap(&[future], &pw),
            Err(StreamError::NoMatchingRecipient)
        ));
        assert!(Stanza::parse(KIND_LINK, &[0u8; 10]).is_err());
    }

    #[test]
    fn every_cleartext_field_is_bound_by_the_wrap() {
        let secret = LinkSecret::generate().unwrap();
        let key = LinkKey {
            secret: Some(&secret),
            passphrase: Some("pw"),
        };
        let stanza = wrap(&key, DEFAULT_PBKDF2_ITERATIONS, &file_key()).unwrap();
        let body = stanza.body();
        // Flip the iteration count's low byte, a salt byte and a wrapped byte in turn.
        for at in [4, 10, LINK_BODY_LEN - 1] {
            let mut bent = body.clone();
            bent[at] ^= 0x01;
            let bent = Stanza::parse(KIND_LINK, &bent).unwrap();
            assert!(
                unwrap(&[bent], &key).is_err(),
                "a flip at body byte {at} went unnoticed"
            );
        }
    }

    #[test]
    fn secrets_encode_for_urls_and_never_show() {
        let secret = LinkSecret::generate().unwrap();
        let text = secret.to_encoded();
        assert_eq!(text.len(), 43);
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let back = LinkSecret::from_encoded(&text).unwrap();
        assert_eq!(back.as_bytes(), secret.as_bytes());
        assert!(!format!("{secret:?}").contains(text.as_str()));
        assert!(LinkSecret::from_encoded("short").is_err());
        assert!(LinkSecret::from_encoded("!!!").is_err());
    }

    fn options(cipher: CipherId, compression: Compression) -> StreamOptions {
        StreamOptions {
            cipher,
            compression,
            chunk_size: MIN_CHUNK_SIZE,
        }
    }

    #[test]
    fn a_link_stream_round_trips_beside_x25519_and_is_flagged_browser_readable() {
        let sender = X25519SecretKey::generate().unwrap();
        let secret = LinkSecret::generate().unwrap();
        let key = LinkKey {
            secret: Some(&secret),
            passphrase: None,
        };
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
        let mut sealed = Vec::new();
        encrypt_reader_to_writer(
            &mut data.as_slice(),
            &mut sealed,
            &options(CipherId::Aes256Gcm, Compression::None),
            &[
                Recipient::X25519(sender.public_key()),
                Recipient::Link { key, iterations: 0 },
            ],
            ManifestInfo {
                name: "a.bin".into(),
                mode: None,
            },
        )
        .unwrap();
        let (header, _) = Header::parse(&sealed).unwrap();
        assert!(header.is_browser_readable());
        for identity in [Identity::Link(key), Identity::X25519(&sender)] {
            let mut out = Vec::new();
            let manifest =
                decrypt_reader_to_writer(&mut sealed.as_slice(), &mut out, &[identity]).unwrap();
            assert_eq!(out, data);
            assert_eq!(manifest.name, "a.bin");
        }
        // The link's stanza is covered by the header MAC like any other.
        let stanza_at = 46 + 3 + crate::stream::recipients::X25519_BODY_LEN + 3;
        let mut bent = sealed.clone();
        bent[stanza_at + 1] ^= 0x01; // the link stanza's iteration count
        let mut out = Vec::new();
        assert!(decrypt_reader_to_writer(
            &mut bent.as_slice(),
            &mut out,
            &[Identity::X25519(&sender)]
        )
        .is_err());
    }

    #[test]
    fn links_are_refused_for_streams_a_browser_cannot_read() {
        let secret = LinkSecret::generate().unwrap();
        let link = Recipient::Link {
            key: LinkKey {
                secret: Some(&secret),
                passphrase: None,
            },
            iterations: 0,
        };
        for (cipher, compression) in [
            (CipherId::ChaCha20Poly1305, Compression::None),
            (CipherId::Aes256Gcm, Compression::zstd()),
        ] {
            assert!(matches!(
                crate::stream::Encryptor::new(&options(cipher, compression), &[link]),
                Err(StreamError::NotBrowserReadable)
            ));
        }
        let sk = X25519SecretKey::generate().unwrap();
        let plain = crate::stream::Encryptor::new(
            &options(CipherId::Aes256Gcm, Compression::None),
            &[Recipient::X25519(sk.public_key())],
        )
        .unwrap();
        assert!(!plain.header().is_browser_readable(), "no link stanza");
    }
}
