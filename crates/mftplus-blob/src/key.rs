//! Blob addressing: [`TransferId`] and [`BlobKey`], validated when they are built so that no key
//! that reaches a backend can name anything outside the store's root (filesystem) or prefix (S3).

use std::fmt;

use crate::BlobError;

/// Longest accepted transfer id or metadata name, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Characters allowed in a transfer id and in a metadata name: ASCII letters, digits, `_`, `-`.
///
/// No `.` and no `/`, so an id can never be `..`, contain a path separator, or collide with the
/// suffixes (`.chunk`, `.meta`) and temp-file prefix (`.tmp`) the backends use.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The id of one transfer, as the store uses it to group its objects: `[A-Za-z0-9_-]{1,64}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferId(String);

impl TransferId {
    /// `InvalidKey` unless `id` matches `[A-Za-z0-9_-]{1,64}`.
    pub fn new(id: impl Into<String>) -> Result<TransferId, BlobError> {
        let id = id.into();
        if valid_name(&id) {
            Ok(TransferId(id))
        } else {
            Err(BlobError::InvalidKey(format!(
                "transfer id {id:?} must match [A-Za-z0-9_-]{{1,{MAX_ID_LEN}}}"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransferId({:?})", self.0)
    }
}

impl TryFrom<&str> for TransferId {
    type Error = BlobError;
    fn try_from(id: &str) -> Result<TransferId, BlobError> {
        TransferId::new(id)
    }
}

/// What a key names inside its transfer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BlobName {
    /// Sealed chunk number `index` of the stream.
    Chunk(u64),
    /// A small per-transfer object such as the stream header or the sealed manifest. Not listed
    /// by [`BlobStore::list`](crate::BlobStore::list); removed by `delete_transfer`.
    Meta(String),
}

/// The address of one object: a transfer and a chunk index or metadata name.
///
/// Fields are private so every key was validated by one of the constructors.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlobKey {
    transfer_id: TransferId,
    name: BlobName,
}

impl BlobKey {
    /// Chunk `index` of `transfer_id`.
    pub fn chunk(transfer_id: &TransferId, index: u64) -> BlobKey {
        BlobKey {
            transfer_id: transfer_id.clone(),
            name: BlobName::Chunk(index),
        }
    }

    /// Metadata object `name` of `transfer_id` (e.g. `header`, `manifest`);
    /// `InvalidKey` unless `name` matches `[A-Za-z0-9_-]{1,64}`.
    pub fn meta(transfer_id: &TransferId, name: &str) -> Result<BlobKey, BlobError> {
        if !valid_name(name) {
            return Err(BlobError::InvalidKey(format!(
                "metadata name {name:?} must match [A-Za-z0-9_-]{{1,{MAX_ID_LEN}}}"
            )));
        }
        Ok(BlobKey {
            transfer_id: transfer_id.clone(),
            name: BlobName::Meta(name.to_string()),
        })
    }

    pub fn transfer_id(&self) -> &TransferId {
        &self.transfer_id
    }

    pub fn name(&self) -> &BlobName {
        &self.name
    }

    /// The object's file name inside its transfer's directory (or key prefix), shared by both
    /// backends: `<index as 16 lowercase hex digits>.chunk` or `<name>.meta`. Fixed-width hex
    /// makes lexical order equal numeric order, which keeps listings readable.
    pub(crate) fn object_name(&self) -> String {
        match &self.name {
            BlobName::Chunk(index) => format!("{index:016x}{CHUNK_SUFFIX}"),
            BlobName::Meta(name) => format!("{name}{META_SUFFIX}"),
        }
    }
}

pub(crate) const CHUNK_SUFFIX: &str = ".chunk";
pub(crate) const META_SUFFIX: &str = ".meta";

/// The chunk index encoded in an object name, or `None` for anything else (metadata objects,
/// temp files, strangers), so listings only ever report chunks written by this crate.
pub(crate) fn parse_chunk_name(object_name: &str) -> Option<u64> {
    let hex = object_name.strip_suffix(CHUNK_SUFFIX)?;
    if hex.len() != 16
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_ids_are_validated() {
        for good in ["a", "trf_0123-ABC", &"x".repeat(MAX_ID_LEN)] {
            assert_eq!(TransferId::new(good).unwrap().as_str(), good);
        }
        let too_long = "x".repeat(MAX_ID_LEN + 1);
        for bad in [
            "", ".", "..", "../x", "a/b", "a\\b", "a.b", "a b", "é", "a\0b", &too_long,
        ] {
            assert!(
                matches!(TransferId::new(bad), Err(BlobError::InvalidKey(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn meta_names_are_validated() {
        let id = TransferId::new("t1").unwrap();
        assert!(BlobKey::meta(&id, "header").is_ok());
        for bad in ["", "..", "a/b", "x.chunk", "a b"] {
            assert!(BlobKey::meta(&id, bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn object_names_round_trip_and_reject_strangers() {
        let id = TransferId::new("t1").unwrap();
        for index in [0, 1, 255, 1 << 40, u64::MAX] {
            let name = BlobKey::chunk(&id, index).object_name();
            assert_eq!(name.len(), 16 + CHUNK_SUFFIX.len());
            assert_eq!(parse_chunk_name(&name), Some(index));
        }
        assert_eq!(
            BlobKey::chunk(&id, 10).object_name(),
            "000000000000000a.chunk"
        );
        for stranger in [
            "header.meta",
            ".tmp-1-2-000000000000000a.chunk",
            "000000000000000A.chunk",
            "a.chunk",
            "000000000000000a",
            "+00000000000000a.chunk",
        ] {
            assert_eq!(parse_chunk_name(stranger), None, "{stranger:?}");
        }
    }
}
