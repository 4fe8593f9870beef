//! The encrypted manifest at the end of a stream: file name, mode, size, chunk count and a
//! digest of the content: in version 2 the SHA-256 of the list of the sealed chunks' SHA-256
//! values, in version 1 the SHA-256 of the whole plaintext.
//!
//! It goes last because the sender only knows the size and hash after reading everything, and
//! it lets the reader tell "the file ended" from "the stream was cut". It is sealed with its own
//! HKDF-derived key, so it can never be confused with a chunk.

use super::cipher::{ChunkCipher, TAG_LEN, ZERO_NONCE};
use super::StreamError;

/// File names longer than this are refused when writing and reading.
pub const MAX_NAME_LEN: usize = 4096;
/// Version, size, chunk count, digest, mode flag, mode, name length.
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
    pub digest: ContentDigest,
}

/// What the manifest's 32-byte digest is, by stream version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentDigest {
    /// Version 1: SHA-256 of the whole plaintext.
    PlaintextSha256([u8; 32]),
    /// Version 2: SHA-256 over [`CHUNK_DIGEST_LABEL`] and each sealed chunk's SHA-256 in
    /// order — the values the sender states with every upload and the server records.
    ChunkList([u8; 32]),
}

/// Domain label of the version 2 chunk-list digest.
pub const CHUNK_DIGEST_LABEL: &[u8] = b"mftplus-stream-v2 chunk-digest";

impl ContentDigest {
    /// The manifest version that carries this kind of digest (the same as the stream's).
    pub fn version(&self) -> u8 {
        match self {
            ContentDigest::PlaintextSha256(_) => 1,
            ContentDigest::ChunkList(_) => 2,
        }
    }

    pub fn bytes(&self) -> &[u8; 32] {
        match self {
            ContentDigest::PlaintextSha256(b) | ContentDigest::ChunkList(b) => b,
        }
    }

    fn from_version(version: u8, bytes: [u8; 32]) -> Option<Self> {
        match version {
            1 => Some(ContentDigest::PlaintextSha256(bytes)),
            2 => Some(ContentDigest::ChunkList(bytes)),
            _ => None,
        }
    }

    /// `sha256:<hex>` for a version 1 stream (comparable with `sha256sum`), `chunks-sha256:<hex>`
    /// for version 2.
    pub fn labelled_hex(&self) -> String {
        match self {
            ContentDigest::PlaintextSha256(b) => format!("sha256:{}", hex::encode(b)),
            ContentDigest::ChunkList(b) => format!("chunks-sha256:{}", hex::encode(b)),
        }
    }
}

impl Manifest {
    /// The plaintext's SHA-256, which only version 1 manifests carry.
    pub fn plaintext_sha256(&self) -> Option<[u8; 32]> {
        match self.digest {
            ContentDigest::PlaintextSha256(b) => Some(b),
            ContentDigest::ChunkList(_) => None,
        }
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

    pub(crate) fn new(
        info: ManifestInfo,
        size: u64,
        chunk_count: u64,
        digest: ContentDigest,
    ) -> Self {
        Manifest {
            name: info.name,
            mode: info.mode.map(|m| m & MODE_MASK),
            size,
            chunk_count,
            digest,
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
        out.push(self.digest.version());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.chunk_count.to_be_bytes());
        out.extend_from_slice(self.digest.bytes());
        out.push(u8::from(self.mode.is_some()));
        out.extend_from_slice(&self.mode.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&(self.name.len() as u16).to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out
    }

    /// `version` is the stream's (from its authenticated header): a manifest of another
    /// version is refused, so a digest is never read as the other kind.
    fn decode(b: &[u8], version: u8) -> Result<Self, StreamError> {
        if b.len() < FIXED_LEN {
            return Err(StreamError::Malformed("manifest too short"));
        }
        if b[0] != version {
            return Err(StreamError::Malformed(
                "the manifest's version is not the stream's",
            ));
        }
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let size = u64_at(1);
        let chunk_count = u64_at(9);
        let digest = ContentDigest::from_version(version, b[17..49].try_into().expect("32 bytes"))
            .ok_or(StreamError::Malformed("unknown manifest version"))?;
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
            digest,
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

    pub(crate) fn open(
        sealed: &[u8],
        cipher: &dyn ChunkCipher,
        version: u8,
    ) -> Result<Self, StreamError> {
        if sealed.len() > MAX_SEALED_MANIFEST_LEN {
            return Err(StreamError::Malformed("manifest too long"));
        }
        let mut buf = sealed.to_vec();
        cipher
            .open_in_place(ZERO_NONCE, b"", &mut buf)
            .map_err(|_| StreamError::ManifestAuthFailed)?;
        Self::decode(&buf, version)
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
            digest: ContentDigest::ChunkList([0xab; 32]),
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
            assert_eq!(Manifest::open(&sealed, c.as_ref(), 2).unwrap(), m);
        }
        let v1 = Manifest {
            digest: ContentDigest::PlaintextSha256([0xcd; 32]),
            ..sample("old.txt", None)
        };
        let sealed = v1.seal(c.as_ref());
        assert_eq!(Manifest::open(&sealed, c.as_ref(), 1).unwrap(), v1);
    }

    #[test]
    fn a_manifest_of_the_other_version_is_refused() {
        // A digest must never be read as the other kind: the stream's authenticated version
        // decides, and the manifest must agree with it.
        let c = new_chunk_cipher(CipherId::Aes256Gcm, &[3u8; 32]);
        let sealed = sample("a", None).seal(c.as_ref());
        assert!(matches!(
            Manifest::open(&sealed, c.as_ref(), 1),
            Err(StreamError::Malformed(_))
        ));
    }

    #[test]
    fn wrong_key_or_bit_flip_fails() {
        let c = new_chunk_cipher(CipherId::Aes256Gcm, &[3u8; 32]);
        let other = new_chunk_cipher(CipherId::Aes256Gcm, &[4u8; 32]);
        let sealed = sample("a", None).seal(c.as_ref());
        assert!(matches!(
            Manifest::open(&sealed, other.as_ref(), 2),
            Err(StreamError::ManifestAuthFailed)
        ));
        let mut flipped = sealed.clone();
        flipped[5] ^= 1;
        assert!(matches!(
            Manifest::open(&flipped, c.as_ref(), 2),
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
            Manifest::new(with_type_bits, 0, 1, ContentDigest::ChunkList([0; 32])).mode,
            Some(0o644)
        );
    }
}
