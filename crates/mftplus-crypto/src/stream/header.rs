//! The stream header: parameters, recipient stanzas, and the MAC that seals them together.
//!
//! The header is parsed before any key is known (a reader needs the stanzas to find its key),
//! so everything here is checked for shape only; authenticity comes from [`Header::verify`]
//! once the file key is unwrapped. See `docs/stream-format.md` for the byte layout.

use std::io::Read;

use ring::hmac;

use super::cipher::{CipherId, KEY_LEN};
use super::recipients::Stanza;
use super::{check_chunk_size, CompressionId, StreamError};

pub const MAGIC: [u8; 4] = *b"MFTP";
/// The version writers produce. Version 2 differs from 1 only in what the manifest's digest
/// covers (`docs/stream-format.md` §6); readers take both.
pub const FORMAT_VERSION: u8 = 2;
/// The first version, still read.
pub const FORMAT_VERSION_1: u8 = 1;
pub const FILE_SALT_LEN: usize = 32;
pub const HEADER_MAC_LEN: usize = 32;
/// Bounds the header a reader will buffer: 64 stanzas of at most 1 KiB.
pub const MAX_STANZAS: usize = 64;
pub const MAX_STANZA_BODY_LEN: usize = 1024;
/// Magic, version, cipher, compression, flags, chunk size, salt, stanza count.
const FIXED_LEN: usize = 4 + 1 + 1 + 1 + 1 + 4 + FILE_SALT_LEN + 2;

/// Everything in the fixed part of a header but the stanza count.
struct Parameters {
    version: u8,
    cipher: CipherId,
    compression: CompressionId,
    chunk_size: u32,
    file_salt: [u8; FILE_SALT_LEN],
}

/// A parsed (or freshly built) header. Parsing does not authenticate it: see [`Header::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    version: u8,
    cipher: CipherId,
    compression: CompressionId,
    chunk_size: u32,
    file_salt: [u8; FILE_SALT_LEN],
    stanzas: Vec<Stanza>,
    /// The exact bytes the MAC covers, kept so verification never depends on re-encoding.
    authenticated: Vec<u8>,
    mac: [u8; HEADER_MAC_LEN],
}

impl Header {
    pub(crate) fn build(
        cipher: CipherId,
        compression: CompressionId,
        chunk_size: u32,
        file_salt: [u8; FILE_SALT_LEN],
        stanzas: Vec<Stanza>,
        header_key: &[u8; KEY_LEN],
    ) -> Result<Self, StreamError> {
        let parameters = Parameters {
            version: FORMAT_VERSION,
            cipher,
            compression,
            chunk_size,
            file_salt,
        };
        Self::build_with(parameters, stanzas, header_key)
    }

    /// The same stream's header with other stanzas (a grant adds some), keeping the version and
    /// every parameter; the MAC is recomputed with `header_key`.
    pub(crate) fn with_stanzas(
        &self,
        stanzas: Vec<Stanza>,
        header_key: &[u8; KEY_LEN],
    ) -> Result<Self, StreamError> {
        let parameters = Parameters {
            version: self.version,
            cipher: self.cipher,
            compression: self.compression,
            chunk_size: self.chunk_size,
            file_salt: self.file_salt,
        };
        Self::build_with(parameters, stanzas, header_key)
    }

    fn build_with(
        parameters: Parameters,
        stanzas: Vec<Stanza>,
        header_key: &[u8; KEY_LEN],
    ) -> Result<Self, StreamError> {
        let Parameters {
            version,
            cipher,
            compression,
            chunk_size,
            file_salt,
        } = parameters;
        check_chunk_size(chunk_size)?;
        if stanzas.is_empty() {
            return Err(StreamError::NoRecipients);
        }
        if stanzas.len() > MAX_STANZAS {
            return Err(StreamError::TooManyRecipients { max: MAX_STANZAS });
        }
        let mut out = Vec::with_capacity(FIXED_LEN + stanzas.len() * 100);
        out.extend_from_slice(&MAGIC);
        out.push(version);
        out.push(cipher.to_byte());
        out.push(compression.to_byte());
        out.push(0); // flags: none defined (version 1 readers refuse any)
        out.extend_from_slice(&chunk_size.to_be_bytes());
        out.extend_from_slice(&file_salt);
        out.extend_from_slice(&(stanzas.len() as u16).to_be_bytes());
        for stanza in &stanzas {
            let body = stanza.body();
            out.push(stanza.kind());
            out.extend_from_slice(&(body.len() as u16).to_be_bytes());
            out.extend_from_slice(&body);
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, header_key);
        let mut mac = [0u8; HEADER_MAC_LEN];
        mac.copy_from_slice(hmac::sign(&key, &out).as_ref());
        Ok(Header {
            version,
            cipher,
            compression,
            chunk_size,
            file_salt,
            stanzas,
            authenticated: out,
            mac,
        })
    }

    /// Parses a header from the start of `bytes`; returns it and how many bytes it took.
    /// [`StreamError::Truncated`] if `bytes` ends inside the header.
    pub fn parse(bytes: &[u8]) -> Result<(Self, usize), StreamError> {
        let mut rest = bytes;
        let header = Self::read_from(&mut rest)?;
        Ok((header, bytes.len() - rest.len()))
    }

    /// Reads exactly one header from `reader`, and nothing past it.
    pub fn read_from<R: Read>(reader: &mut R) -> Result<Self, StreamError> {
        let mut fixed = [0u8; FIXED_LEN];
        // Magic first, so a non-MFTPlus input says so rather than "truncated".
        reader
            .read_exact(&mut fixed[..4])
            .map_err(StreamError::from_read)?;
        if fixed[..4] != MAGIC {
            return Err(StreamError::BadMagic);
        }
        reader
            .read_exact(&mut fixed[4..])
            .map_err(StreamError::from_read)?;
        let version = fixed[4];
        if version != FORMAT_VERSION && version != FORMAT_VERSION_1 {
            return Err(StreamError::UnsupportedVersion(version));
        }
        let cipher = CipherId::from_byte(fixed[5])?;
        let compression = CompressionId::from_byte(fixed[6])?;
        if fixed[7] != 0 {
            return Err(StreamError::Malformed("reserved header flags are set"));
        }
        let chunk_size = u32::from_be_bytes(fixed[8..12].try_into().expect("4 bytes"));
        check_chunk_size(chunk_size)?;
        let file_salt: [u8; FILE_SALT_LEN] = fixed[12..44].try_into().expect("32 bytes");
        let count = u16::from_be_bytes(fixed[44..46].try_into().expect("2 bytes")) as usize;
        if count == 0 {
            return Err(StreamError::Malformed("header has no recipient stanzas"));
        }
        if count > MAX_STANZAS {
            return Err(StreamError::Malformed("header has too many stanzas"));
        }

        let mut authenticated = fixed.to_vec();
        let mut stanzas = Vec::with_capacity(count);
        for _ in 0..count {
            let mut head = [0u8; 3];
            reader
                .read_exact(&mut head)
                .map_err(StreamError::from_read)?;
            let len = u16::from_be_bytes([head[1], head[2]]) as usize;
            if len > MAX_STANZA_BODY_LEN {
                return Err(StreamError::Malformed("stanza body too long"));
            }
            let mut body = vec![0u8; len];
            reader
                .read_exact(&mut body)
                .map_err(StreamError::from_read)?;
            stanzas.push(Stanza::parse(head[0], &body)?);
            authenticated.extend_from_slice(&head);
            authenticated.extend_from_slice(&body);
        }
        let mut mac = [0u8; HEADER_MAC_LEN];
        reader
            .read_exact(&mut mac)
            .map_err(StreamError::from_read)?;
        Ok(Header {
            version,
            cipher,
            compression,
            chunk_size,
            file_salt,
            stanzas,
            authenticated,
            mac,
        })
    }

    /// Checks the MAC with the key derived from the unwrapped file key.
    pub(crate) fn verify(&self, header_key: &[u8; KEY_LEN]) -> Result<(), StreamError> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, header_key);
        hmac::verify(&key, &self.authenticated, &self.mac).map_err(|_| StreamError::HeaderTampered)
    }

    /// The encoded header, MAC included: what goes first on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&self.authenticated);
        out.extend_from_slice(&self.mac);
        out
    }

    pub fn encoded_len(&self) -> usize {
        self.authenticated.len() + HEADER_MAC_LEN
    }

    /// The format version (1 or 2): it decides what the manifest's digest covers.
    pub fn version(&self) -> u8 {
        self.version
    }

    pub fn cipher(&self) -> CipherId {
        self.cipher
    }

    pub fn compression(&self) -> CompressionId {
        self.compression
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    pub fn file_salt(&self) -> &[u8; FILE_SALT_LEN] {
        &self.file_salt
    }

    pub fn stanzas(&self) -> &[Stanza] {
        &self.stanzas
    }

    /// Fingerprints of the X25519 recipients, e.g. to tell a user which of their keys fits.
    pub fn x25519_fingerprints(&self) -> impl Iterator<Item = &[u8; 16]> {
        self.stanzas.iter().filter_map(|s| match s {
            Stanza::X25519 { fingerprint, .. } => Some(fingerprint),
            _ => None,
        })
    }

    /// Whether a browser can open this stream through a share link: a payload WebCrypto can
    /// decrypt (AES-256-GCM, no compression) and at least one link stanza. The format has no
    /// flag bit for it (version 1 readers refuse any flag): the link stanza is the flag, and
    /// writers only put one into such a stream.
    pub fn is_browser_readable(&self) -> bool {
        super::browser_readable(self.cipher, self.compression) && self.has_link_stanza()
    }

    pub fn has_link_stanza(&self) -> bool {
        self.stanzas
            .iter()
            .any(|s| matches!(s, Stanza::Link { .. }))
    }

    pub fn has_passphrase_stanza(&self) -> bool {
        self.stanzas
            .iter()
            .any(|s| matches!(s, Stanza::Passphrase { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::DEFAULT_CHUNK_SIZE;

    fn sample() -> Header {
        let stanzas = vec![
            Stanza::parse(0x7e, b"one").unwrap(),
            Stanza::parse(0x7f, b"").unwrap(),
        ];
        Header::build(
            CipherId::ChaCha20Poly1305,
            CompressionId::Zstd,
            DEFAULT_CHUNK_SIZE,
            [9u8; 32],
            stanzas,
            &[1u8; 32],
        )
        .unwrap()
    }

    #[test]
    fn round_trips_and_verifies() {
        let h = sample();
        let mut bytes = h.to_bytes();
        assert_eq!(bytes.len(), h.encoded_len());
        assert_eq!(&bytes[..4], b"MFTP");
        bytes.extend_from_slice(b"next");
        let (parsed, used) = Header::parse(&bytes).unwrap();
        assert_eq!(used, h.encoded_len());
        assert_eq!(parsed, h);
        parsed.verify(&[1u8; 32]).unwrap();
        assert!(matches!(
            parsed.verify(&[2u8; 32]),
            Err(StreamError::HeaderTampered)
        ));
    }

    #[test]
    fn every_prefix_is_truncated_and_every_flip_is_caught() {
        let bytes = sample().to_bytes();
        for cut in 0..bytes.len() {
            assert!(matches!(
                Header::parse(&bytes[..cut]),
                Err(StreamError::Truncated) | Err(StreamError::BadMagic)
            ));
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            let caught = match Header::parse(&b) {
                Err(_) => true,
                Ok((h, _)) => h.verify(&[1u8; 32]).is_err(),
            };
            assert!(caught, "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn version_magic_and_chunk_size_are_checked() {
        let bytes = sample().to_bytes();
        let mut b = bytes.clone();
        b[0] = b'X';
        assert!(matches!(Header::parse(&b), Err(StreamError::BadMagic)));
        for unknown in [0, 3, 0xff] {
            let mut b = bytes.clone();
            b[4] = unknown;
            assert!(matches!(
                Header::parse(&b),
                Err(StreamError::UnsupportedVersion(v)) if v == unknown
            ));
        }
        // Version 1 still parses (and its MAC, over the version byte, tells it from 2).
        let mut b = bytes.clone();
        b[4] = FORMAT_VERSION_1;
        let (old, _) = Header::parse(&b).unwrap();
        assert_eq!(old.version(), 1);
        assert!(old.verify(&[1u8; 32]).is_err());
        let mut b = bytes.clone();
        b[8..12].copy_from_slice(&1u32.to_be_bytes());
        assert!(matches!(
            Header::parse(&b),
            Err(StreamError::InvalidChunkSize(1))
        ));
        let mut b = bytes;
        b[6] = 9;
        assert!(matches!(
            Header::parse(&b),
            Err(StreamError::UnsupportedCompression(9))
        ));
    }
}
