//! The encrypted manifest at the end of a stream: file name, mode, size, chunk count and the
//! plaintext SHA-256.
//!
//! It goes last because the sender only knows the size and hash after reading everything, and
//! it lets the reader tell "the file ended" from "the stream was cut". It is sealed with its own
//! HKDF-derived key, so it can never be confused with a chunk.

use super::cipher::{ChunkCipher, TAG_LEN, ZERO_NONCE};
use super::StreamError;

/// File names longer than this are refused when writing and reading.
pub const MAX_NAME_LEN: usize = 4096;
const MANIFEST_VERSION: u8 = 1;
/// Version, size, chunk count, SHA-256, mode flag, mode, name length.
const FIXED_LEN: usize = 1 + 8 + 8 + 32 + 1 + 4 + 2;
/// Largest sealed manifest a reader accepts.
pub const MAX_SEALED_MANIFEST_LEN: usize = FIXED_LEN + MAX_NAME_LEN + TAG_LEN;
/// Permission bits only; file type bits have no meaning on the receiving side.
const MODE_MASK: u32 = 0o7777;

/// What the sender states about the file besides its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestInfo {
    /// The name as the sender knew it (no directories). Untrusted on the receiving side: use
    /// [`Manifest::safe_file_name`] before turning it into a path.
    pub name: String,
    /// Unix mode, if the sender had one; only the permission bits (`0o7777`) are kept, so
    /// `metadata.permissions().mode()` can be passed as is.
    pub mode: Option<u32>,
}

/// The decrypted, verified manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    pub mode: Option<u32>,
    /// Plaintext size in bytes (before compression).
    pub size: u64,
    pub chunk_count: u64,
    /// SHA-256 of the whole plaintext.
    pub sha256: [u8; 32],
}

impl Manifest {
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    /// The name if it is safe to use as a single path component in a download directory:
    /// non-empty, no separators, not `.`/`..`, no control characters.
    pub fn safe_file_name(&self) -> Option<&str> {
        let n = self.name.as_str();
        let ok = !n.is_empty()
            && n != "."
            && n != ".."
            && !n.contains(['/', '\\'])
            && !n.chars().any(char::is_control);
        ok.then_some(n)
    }

    pub(crate) fn new(info: ManifestInfo, size: u64, chunk_count: u64, sha256: [u8; 32]) -> Self {
        Manifest {
            name: info.name,
            mode: info.mode.map(|m| m & MODE_MASK),
            size,
            chunk_count,
            sha256,
        }
    }

    pub(crate) fn check_info(info: &ManifestInfo) -> Result<(), StreamError> {
        if info.name.len() > MAX_NAME_LEN {
            return Err(StreamError::NameTooLong {
                len: info.name.len(),
                max: MAX_NAME_LEN,
            });
        }
        Ok(())
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + self.name.len() + TAG_LEN);
        out.push(MANIFEST_VERSION);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.chunk_count.to_be_bytes());
        out.extend_from_slice(&self.sha256);
        out.push(u8::from(self.mode.is_some()));
        out.extend_from_slice(&self.mode.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&(self.name.len() as u16).to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out
    }

    fn decode(b: &[u8]) -> Result<Self, StreamError> {
        if b.len() < FIXED_LEN {
            return Err(StreamError::Malformed("manifest too short"));
        }
        if b[0] != MANIFEST_VERSION {
            return Err(StreamError::Malformed("unknown manifest version"));
        }
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let size = u64_at(1);
        let chunk_count = u64_at(9);
        let sha256: [u8; 32] = b[17..49].try_into().expect("32 bytes");
        let mode = u32::from_be_bytes(b[50..54].try_into().expect("4 bytes"));
        let mode = match b[49] {
            0 if mode == 0 => None,
            1 if mode & !MODE_MASK == 0 => Some(mode),
            _ => return Err(StreamError::Malformed("manifest mode field is invalid")),
        };
        let name_len = u16::from_be_bytes([b[54], b[55]]) as usize;
        if name_len > MAX_NAME_LEN || b.len() != FIXED_LEN + name_len {
            return Err(StreamError::Malformed("manifest name length is wrong"));
        }
        let name = std::str::from_utf8(&b[FIXED_LEN..])
            .map_err(|_| StreamError::Malformed("manifest name is not UTF-8"))?
            .to_owned();
        Ok(Manifest {
            name,
            mode,
            size,
            chunk_count,
            sha256,
        })
    }

    /// Seals under the manifest key. That key seals nothing else, so the zero nonce is unique.
    pub(crate) fn seal(&self, cipher: &dyn ChunkCipher) -> Vec<u8> {
        let mut buf = self.encode();
        cipher
            .seal_in_place(ZERO_NONCE, b"", &mut buf)
            .expect("sealing cannot fail for in-range lengths");
        buf
    }

    pub(crate) fn open(sealed: &[u8], cipher: &dyn ChunkCipher) -> Result<Self, StreamError> {
        if sealed.len() > MAX_SEALED_MANIFEST_LEN {
            return Err(StreamError::Malformed("manifest too long"));
        }
        let mut buf = sealed.to_vec();
        cipher
            .open_in_place(ZERO_NONCE, b"", &mut buf)
            .map_err(|_| StreamError::ManifestAuthFailed)?;
        Self::decode(&buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::cipher::{new_chunk_cipher, CipherId};

    fn sample(name: &str, mode: Option<u32>) -> Manifest {
        Manifest {
            name: name.into(),
            mode,
            size: 123_456_789,
            chunk_count: 12,
            sha256: [0xab; 32],
        }
    }

    #[test]
    fn round_trips() {
        let c = new_chunk_cipher(CipherId::Aes256Gcm, &[3u8; 32]);
        for m in [
            sample("report.pdf", Some(0o640)),
            sample("", None),
            sample("ü.txt", Some(0)),
        ] {
            let sealed = m.seal(c.as_ref());
            assert_eq!(Manifest::open(&sealed, c.as_ref()).unwrap(), m);
        }
    }

    #[test]
    fn wrong_key_or_bit_flip_fails() {
        let c = new_chunk_cipher(CipherId::Aes256Gcm, &[3u8; 32]);
        let other = new_chunk_cipher(CipherId::Aes256Gcm, &[4u8; 32]);
        let sealed = sample("a", None).seal(c.as_ref());
        assert!(matches!(
            Manifest::open(&sealed, other.as_ref()),
            Err(StreamError::ManifestAuthFailed)
        ));
        let mut flipped = sealed.clone();
        flipped[5] ^= 1;
        assert!(matches!(
            Manifest::open(&flipped, c.as_ref()),
            Err(StreamError::ManifestAuthFailed)
        ));
    }

    #[test]
    fn safe_names() {
        assert_eq!(sample("a.txt", None).safe_file_name(), Some("a.txt"));
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", "a\nb"] {
            assert_eq!(sample(bad, None).safe_file_name(), None, "{bad:?}");
        }
    }

    #[test]
    fn info_is_checked() {
        let long = ManifestInfo {
            name: "x".repeat(MAX_NAME_LEN + 1),
            mode: None,
        };
        assert!(matches!(
            Manifest::check_info(&long),
            Err(StreamError::NameTooLong { .. })
        ));
        let with_type_bits = ManifestInfo {
            name: "x".into(),
            mode: Some(0o100644),
        };
        Manifest::check_info(&with_type_bits).unwrap();
        assert_eq!(
            Manifest::new(with_type_bits, 0, 1, [0; 32]).mode,
            Some(0o644)
        );
    }
}
