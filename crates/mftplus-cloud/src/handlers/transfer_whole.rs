//! What `POST /transfers` takes beyond a header (decision 0037): an id the client chose, and
//! the whole stream of a one-chunk transfer, so a small file is sent in one request, one
//! commit and no payload-store object instead of three requests and three commits.

use crate::error::{ApiError, ApiResult};
use base64::Engine;
use mftplus_store::NewChunk;
use mftplus_types::transfers::{max_sealed_len, WholeStream, MAX_WHOLE_CHUNK};
use mftplus_types::ErrorCode;

/// The longest sealed manifest accepted, as for `POST /transfers/{id}/complete`.
const MAX_MANIFEST_BYTES: usize = 64 * 1024;

/// A client's transfer id, if it has the form of the ids the server makes itself (a UUID's 32
/// lowercase hex digits): nothing else may name a transfer or its payload objects.
pub(super) fn chosen_id(id: &str) -> ApiResult<String> {
    let valid = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !valid {
        return Err(ApiError::validation(
            "id must be 32 lowercase hex digits (a UUID without its dashes)",
        ));
    }
    Ok(id.to_string())
}

/// The one chunk and the manifest of a whole stream, checked: the chunk fits a database row
/// and the transfer's chunk size and has the declared SHA-256, the manifest is 1 byte to
/// 64 KiB.
pub(super) struct Whole {
    pub chunk: NewChunk,
    pub manifest: Vec<u8>,
}

pub(super) fn whole(body: &WholeStream, chunk_size: u64, now_ms: i64) -> ApiResult<Whole> {
    let decode = |text: &str, what: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| ApiError::validation(format!("whole.{what} must be base64")))
    };
    let chunk = decode(&body.chunk, "chunk")?;
    let limit = (MAX_WHOLE_CHUNK as u64).min(max_sealed_len(chunk_size));
    if chunk.is_empty() || chunk.len() as u64 > limit {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("whole.chunk must be 1 to {limit} bytes; send a larger stream chunk by chunk"),
        ));
    }
    let sha256 = mftplus_crypto::sha256_hex(&chunk);
    if !sha256.eq_ignore_ascii_case(body.chunk_sha256.trim()) {
        return Err(ApiError::new(
            ErrorCode::ChecksumMismatch,
            format!(
                "whole.chunk arrived with SHA-256 {sha256}, not {}",
                body.chunk_sha256
            ),
        ));
    }
    let manifest = decode(&body.manifest, "manifest")?;
    if manifest.is_empty() || manifest.len() > MAX_MANIFEST_BYTES {
        return Err(ApiError::validation(
            "whole.manifest, the sealed manifest, must be 1 byte to 64 KiB",
        ));
    }
    Ok(Whole {
        chunk: NewChunk {
            idx: 0,
            size: chunk.len() as i64,
            sha256,
            last: true,
            stored_at_ms: now_ms,
            data: Some(chunk),
        },
        manifest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ids_shaped_like_the_servers_own_are_taken() {
        assert!(chosen_id("0190f5a2b3c47d8e9f0a1b2c3d4e5f60").is_ok());
        for bad in [
            "",
            "0190F5A2B3C47D8E9F0A1B2C3D4E5F60",
            "0190f5a2-b3c4-7d8e-9f0a-1b2c3d4e5f60",
            "../../../../etc/passwd0000000000",
            "0190f5a2b3c47d8e9f0a1b2c3d4e5f6",
            "0190f5a2b3c47d8e9f0a1b2c3d4e5f600",
        ] {
            assert!(chosen_id(bad).is_err(), "{bad:?} was taken");
        }
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn a_whole_stream_is_checked_before_anything_is_kept() {
        let chunk = vec![5u8; 1000];
        let good = WholeStream {
            chunk: b64(&chunk),
            chunk_sha256: mftplus_crypto::sha256_hex(&chunk),
            manifest: b64(b"sealed manifest"),
        };
        let made = whole(&good, 65_536, 7).unwrap();
        assert_eq!(
            (made.chunk.idx, made.chunk.last, made.chunk.size),
            (0, true, 1000)
        );
        assert_eq!(made.chunk.data.as_deref(), Some(chunk.as_slice()));
        assert_eq!(made.manifest, b"sealed manifest");

        let code = |w: WholeStream| whole(&w, 65_536, 7).err().map(|e| e.code);
        let big = vec![5u8; MAX_WHOLE_CHUNK + 1];
        assert_eq!(
            code(WholeStream {
                chunk: b64(&big),
                chunk_sha256: mftplus_crypto::sha256_hex(&big),
                ..good.clone()
            }),
            Some(ErrorCode::PayloadTooLarge)
        );
        assert_eq!(
            code(WholeStream {
                chunk_sha256: mftplus_crypto::sha256_hex(b"other"),
                ..good.clone()
            }),
            Some(ErrorCode::ChecksumMismatch)
        );
        assert_eq!(
            code(WholeStream {
                manifest: String::new(),
                ..good.clone()
            }),
            Some(ErrorCode::ValidationFailed)
        );
        assert_eq!(
            code(WholeStream {
                chunk: "not base64!".into(),
                ..good
            }),
            Some(ErrorCode::ValidationFailed)
        );
    }
}
