//! Granting access to an existing stream: a header re-issued with X25519 stanzas appended for
//! recipients who had no key when the file was sent (decision 0022).
//!
//! The file key, the file salt and so every payload and manifest key stay the same, so the
//! chunks already stored keep opening; only the header changes, and because its MAC covers
//! every stanza, the MAC is recomputed. That needs the file key, so only someone who can open
//! the stream (its sender, whose own stanza is always there) can write a grant:
//! [`add_x25519_recipients`]. Whoever stores the stream cannot check the new MAC, but can check
//! the shape without any key: [`check_extension`] — the same parameters and salt, every earlier
//! stanza byte for byte, and only X25519 stanzas added.

use super::cipher::StreamKeys;
use super::header::{Header, FILE_SALT_LEN, HEADER_MAC_LEN};
use super::keys::{X25519PublicKey, FINGERPRINT_LEN};
use super::recipients::{self, Identity, Recipient, Stanza};
use super::StreamError;

/// Magic, version, cipher, compression, flags, chunk size and salt: what a grant keeps as is.
const PARAMETERS_LEN: usize = 4 + 1 + 1 + 1 + 1 + 4 + FILE_SALT_LEN;
/// Where the stanzas begin: after the parameters and the stanza count.
const STANZAS_AT: usize = PARAMETERS_LEN + 2;

/// Why a header is not its base with stanzas appended. The messages are for the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    #[error("the new header is not a stream header: {0}")]
    Malformed(String),
    #[error("the stored header cannot be read: {0}")]
    Base(String),
    #[error("the new header changes the stream's parameters or salt")]
    ParametersChanged,
    #[error("the new header drops or changes stanza {index} of the current header")]
    StanzaChanged { index: usize },
    #[error("the new header adds no stanza")]
    NothingAdded,
    #[error("new stanza {index} is not an X25519 stanza")]
    NotX25519 { index: usize },
    #[error("new stanza {index} is for a key the header already holds")]
    DuplicateRecipient { index: usize },
}

fn parse_whole(bytes: &[u8]) -> Result<Header, String> {
    let (header, used) = Header::parse(bytes).map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err("bytes follow the header".into());
    }
    Ok(header)
}

/// Checks, without any key, that `extended` is `base` with X25519 stanzas appended: the same
/// parameters and salt, every stanza of `base` byte for byte and in place, at least one new
/// stanza, each new one X25519 and for a key the header does not hold yet. Returns the new
/// stanzas' fingerprints, in order. The MAC is not checked (it needs the file key).
pub fn check_extension(
    base: &[u8],
    extended: &[u8],
) -> Result<Vec<[u8; FINGERPRINT_LEN]>, ExtensionError> {
    let old = parse_whole(base).map_err(ExtensionError::Base)?;
    let new = parse_whole(extended).map_err(ExtensionError::Malformed)?;
    if base[..PARAMETERS_LEN] != extended[..PARAMETERS_LEN] {
        return Err(ExtensionError::ParametersChanged);
    }
    let old_stanzas = &base[STANZAS_AT..base.len() - HEADER_MAC_LEN];
    let kept = extended
        .get(STANZAS_AT..STANZAS_AT + old_stanzas.len())
        .filter(|kept| *kept == old_stanzas)
        .is_some()
        && new.stanzas().len() >= old.stanzas().len();
    if !kept {
        // Name the first stanza that differs, for the message.
        let index = old
            .stanzas()
            .iter()
            .zip(new.stanzas())
            .position(|(a, b)| a != b)
            .unwrap_or(new.stanzas().len().min(old.stanzas().len()));
        return Err(ExtensionError::StanzaChanged { index });
    }
    let added = &new.stanzas()[old.stanzas().len()..];
    if added.is_empty() {
        return Err(ExtensionError::NothingAdded);
    }
    let mut held: Vec<[u8; FINGERPRINT_LEN]> = old.x25519_fingerprints().copied().collect();
    let mut fingerprints = Vec::with_capacity(added.len());
    for (offset, stanza) in added.iter().enumerate() {
        let index = old.stanzas().len() + offset;
        let Stanza::X25519 { fingerprint, .. } = stanza else {
            return Err(ExtensionError::NotX25519 { index });
        };
        if held.contains(fingerprint) {
            return Err(ExtensionError::DuplicateRecipient { index });
        }
        held.push(*fingerprint);
        fingerprints.push(*fingerprint);
    }
    Ok(fingerprints)
}

/// Re-issues `header` with one X25519 stanza appended per key of `new`, under the same file
/// key and salt, with a new MAC. `identities` must open the header (the sender's own key); the
/// header is authenticated before anything is written, so a tampered header is never extended.
/// A key the header already holds is refused, as is an empty `new`.
pub fn add_x25519_recipients(
    header: &[u8],
    identities: &[Identity<'_>],
    new: &[X25519PublicKey],
) -> Result<Vec<u8>, StreamError> {
    if new.is_empty() {
        return Err(StreamError::NoRecipients);
    }
    let (parsed, used) = Header::parse(header)?;
    if used != header.len() {
        return Err(StreamError::TrailingData);
    }
    let file_key = recipients::unwrap(parsed.stanzas(), identities)?;
    let keys = StreamKeys::derive(&file_key, parsed.file_salt(), parsed.cipher());
    parsed.verify(&keys.header_mac)?;
    let mut held: Vec<[u8; FINGERPRINT_LEN]> = parsed.x25519_fingerprints().copied().collect();
    let mut stanzas = parsed.stanzas().to_vec();
    for key in new {
        if held.contains(&key.fingerprint()) {
            return Err(StreamError::InvalidKey(
                "the stream is already encrypted to this key",
            ));
        }
        held.push(key.fingerprint());
        stanzas.push(recipients::wrap(&Recipient::X25519(*key), &file_key)?);
    }
    // The base's version too: a grant must not turn a version 1 stream into a version 2 one.
    let extended = parsed.with_stanzas(stanzas, &keys.header_mac)?;
    Ok(extended.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{
        decrypt_reader_to_writer, encrypt_reader_to_writer, Encryptor, ManifestInfo, StreamOptions,
        X25519SecretKey, MIN_CHUNK_SIZE,
    };

    fn options() -> StreamOptions {
        StreamOptions {
            chunk_size: MIN_CHUNK_SIZE,
            ..StreamOptions::default()
        }
    }

    fn info() -> ManifestInfo {
        ManifestInfo {
            name: "f.bin".into(),
            mode: None,
        }
    }

    /// A stream to `sender` only, as a send to someone without a key leaves it.
    fn sent_to(sender: &X25519SecretKey, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encrypt_reader_to_writer(
            &mut &data[..],
            &mut out,
            &options(),
            &[Recipient::X25519(sender.public_key())],
            info(),
        )
        .unwrap();
        out
    }

    fn open(who: &X25519SecretKey, stream: &[u8]) -> Result<Vec<u8>, StreamError> {
        let mut out = Vec::new();
        decrypt_reader_to_writer(&mut &stream[..], &mut out, &[Identity::X25519(who)])?;
        Ok(out)
    }

    fn header_len(stream: &[u8]) -> usize {
        Header::parse(stream).unwrap().1
    }

    #[test]
    fn a_granted_recipient_opens_the_unchanged_chunks() {
        let sender = X25519SecretKey::generate().unwrap();
        let late = X25519SecretKey::generate().unwrap();
        let data = vec![7u8; 3 * MIN_CHUNK_SIZE as usize + 5];
        let stream = sent_to(&sender, &data);
        let n = header_len(&stream);
        let (base, body) = stream.split_at(n);
        assert!(matches!(
            open(&late, &stream),
            Err(StreamError::NoMatchingRecipient)
        ));

        let granted =
            add_x25519_recipients(base, &[Identity::X25519(&sender)], &[late.public_key()])
                .unwrap();
        assert_eq!(
            check_extension(base, &granted).unwrap(),
            vec![late.public_key().fingerprint()]
        );
        for who in [&late, &sender] {
            let regranted = [granted.as_slice(), body].concat();
            assert_eq!(open(who, &regranted).unwrap(), data);
        }
        // The old header still opens the same chunks: a download in flight is unaffected.
        assert_eq!(open(&sender, &stream).unwrap(), data);
    }

    #[test]
    fn only_an_opener_can_grant_and_never_twice() {
        let sender = X25519SecretKey::generate().unwrap();
        let stranger = X25519SecretKey::generate().unwrap();
        let late = X25519SecretKey::generate().unwrap();
        let encryptor =
            Encryptor::new(&options(), &[Recipient::X25519(sender.public_key())]).unwrap();
        let base = encryptor.header_bytes().to_vec();
        assert!(matches!(
            add_x25519_recipients(&base, &[Identity::X25519(&stranger)], &[late.public_key()]),
            Err(StreamError::NoMatchingRecipient)
        ));
        assert!(matches!(
            add_x25519_recipients(&base, &[Identity::X25519(&sender)], &[sender.public_key()]),
            Err(StreamError::InvalidKey(_))
        ));
        assert!(matches!(
            add_x25519_recipients(&base, &[Identity::X25519(&sender)], &[]),
            Err(StreamError::NoRecipients)
        ));
        let mut tampered = base.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(
            add_x25519_recipients(
                &tampered,
                &[Identity::X25519(&sender)],
                &[late.public_key()]
            ),
            Err(StreamError::HeaderTampered)
        ));
    }

    #[test]
    fn every_other_shape_is_refused() {
        let sender = X25519SecretKey::generate().unwrap();
        let late = X25519SecretKey::generate().unwrap();
        let other = X25519SecretKey::generate().unwrap();
        let me = [Identity::X25519(&sender)];
        let base = Encryptor::new(&options(), &[Recipient::X25519(sender.public_key())])
            .unwrap()
            .header_bytes()
            .to_vec();
        let good = add_x25519_recipients(&base, &me, &[late.public_key()]).unwrap();

        // A changed salt (or any parameter).
        let mut salted = good.clone();
        salted[20] ^= 1;
        assert_eq!(
            check_extension(&base, &salted),
            Err(ExtensionError::ParametersChanged)
        );
        let mut chunked = good.clone();
        chunked[6] = 1;
        assert_eq!(
            check_extension(&base, &chunked),
            Err(ExtensionError::ParametersChanged)
        );
        // The sender's stanza changed.
        let mut changed = good.clone();
        changed[STANZAS_AT + 3 + 20] ^= 1;
        assert_eq!(
            check_extension(&base, &changed),
            Err(ExtensionError::StanzaChanged { index: 0 })
        );
        // The sender's stanza dropped: a fresh stream to the late recipient alone.
        let fresh = Encryptor::new(&options(), &[Recipient::X25519(late.public_key())])
            .unwrap()
            .header_bytes()
            .to_vec();
        assert!(matches!(
            check_extension(&base, &fresh),
            Err(ExtensionError::ParametersChanged | ExtensionError::StanzaChanged { .. })
        ));
        // Nothing added; the same key twice; a passphrase stanza added.
        assert_eq!(
            check_extension(&base, &base),
            Err(ExtensionError::NothingAdded)
        );
        let twice = add_x25519_recipients(&good, &me, &[other.public_key()]).unwrap();
        assert_eq!(check_extension(&base, &twice).unwrap().len(), 2);
        assert_eq!(
            check_extension(&good, &base),
            Err(ExtensionError::StanzaChanged { index: 1 })
        );
        let (parsed, _) = Header::parse(&good).unwrap();
        let mut stanzas = parsed.stanzas().to_vec();
        stanzas.push(stanzas[1].clone());
        let duplicate = parsed.with_stanzas(stanzas, &[0u8; 32]).unwrap().to_bytes();
        assert_eq!(
            check_extension(&good, &duplicate),
            Err(ExtensionError::DuplicateRecipient { index: 2 })
        );
        let mut stanzas = parsed.stanzas()[..1].to_vec();
        stanzas.push(Stanza::Unknown {
            kind: 0x7f,
            body: b"not a key".to_vec(),
        });
        let opaque = parsed.with_stanzas(stanzas, &[0u8; 32]).unwrap().to_bytes();
        assert_eq!(
            check_extension(&base, &opaque),
            Err(ExtensionError::NotX25519 { index: 1 })
        );
        assert!(matches!(
            check_extension(&base, b"MFTPgarbage"),
            Err(ExtensionError::Malformed(_))
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(
            check_extension(&base, &trailing),
            Err(ExtensionError::Malformed(_))
        ));
    }
}
