//! `PUT /transfers/{id}/chunks/{idx}`: one sealed chunk, streamed from the request into the
//! blob store while its SHA-256 is computed, published only if it matches the declared one,
//! and acknowledged only once its row is committed by the group committer
//! ([`crate::chunk_commit`]). Memory per upload stays at one write batch of the blob store,
//! whatever the chunk size (the S3 backend buffers one chunk; see `mftplus_blob::s3`).

use super::transfers::{own_upload, transfer_key};
use crate::chunk_commit::CommitError;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::principal::Party;
use crate::state::{AppState, ChunkClaim};
use axum::body::Body;
use axum::extract::State;
use axum::{Extension, Json};
use futures_util::{StreamExt, TryStreamExt};
use mftplus_blob::{BlobError, BlobKey, ByteStream};
use mftplus_pki::identity::PeerCertificate;
use mftplus_store::{ChunkOutcome, NewChunk, TransferRow, MAX_INLINE_CHUNK};
use mftplus_types::transfers::{ChunkReceipt, CHUNK_LAST_HEADER, CHUNK_SHA256_HEADER};
use mftplus_types::ErrorCode;

pub use mftplus_types::transfers::max_sealed_len;

/// How long an upload waits for another upload of the same chunk (a cut-off earlier try still
/// ending) before it is refused as concurrent.
const CLAIM_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

fn declared_sha256(headers: &http::HeaderMap) -> ApiResult<[u8; 32]> {
    headers
        .get(CHUNK_SHA256_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() == 64)
        .and_then(|v| hex::decode(v).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| {
            ApiError::validation(format!(
                "{CHUNK_SHA256_HEADER} must carry the chunk's SHA-256 in hex"
            ))
        })
}

fn last_flag(headers: &http::HeaderMap) -> ApiResult<bool> {
    match headers
        .get(CHUNK_LAST_HEADER)
        .map(|v| v.to_str().unwrap_or(""))
    {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::validation(format!(
            "{CHUNK_LAST_HEADER} must be true or false"
        ))),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        "chunk is larger than the transfer's chunk size allows",
    )
}

/// The body as the blob store's input; a failure of the connection aborts the write.
fn body_stream(body: Body) -> ByteStream {
    body.into_data_stream()
        .map_err(|err| BlobError::Source(err.to_string()))
        .boxed()
}

/// Blob errors of a streamed upload in the API's terms: the sender's mistakes are 4xx, the
/// store's failures 500.
fn upload_error(index: u64, declared: &[u8; 32], err: BlobError) -> ApiError {
    match err {
        BlobError::TooLarge { .. } => too_large(),
        BlobError::DigestMismatch { actual } => ApiError::new(
            ErrorCode::ChecksumMismatch,
            format!(
                "chunk {index} arrived with SHA-256 {actual}, not {}",
                hex::encode(declared)
            ),
        ),
        BlobError::Source(why) => ApiError::new(
            ErrorCode::BadRequest,
            format!("reading the chunk failed: {why}"),
        ),
        BlobError::StorageFull(why) => {
            tracing::error!(error = %why, "the payload store is full: a chunk was refused");
            ApiError::new(
                ErrorCode::InsufficientStorage,
                format!("chunk {index} not stored: the server has no space left; retry later"),
            )
        }
        other => ApiError::internal(other),
    }
}

fn commit_error(index: u64, err: CommitError) -> ApiError {
    match err {
        CommitError::NotFound => ApiError::not_found("transfer"),
        CommitError::NotUploading(why) => ApiError::new(
            ErrorCode::Conflict,
            format!("chunk {index} not recorded: {why}"),
        ),
        CommitError::Failed(why) => ApiError::internal(why),
        CommitError::Stopped => ApiError::new(
            ErrorCode::Unavailable,
            "the server is stopping; retry the chunk",
        ),
    }
}

/// The body's length as its `Content-Length` announces it (hyper delivers no more and no less).
fn announced_len(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The most bytes this chunk of a transfer kept here may have; a body announced larger, or an
/// index beyond the store's, is refused before any byte is read.
fn sealed_limit(headers: &http::HeaderMap, chunk_size: i64, index: u64) -> ApiResult<u64> {
    if headers.contains_key(mftplus_types::transfers::site::STORED_SIZE_HEADER) {
        return Err(ApiError::validation(
            "this transfer is not kept on a site: send the chunk's bytes",
        ));
    }
    let max_sealed = max_sealed_len(chunk_size as u64);
    let announced = announced_len(headers);
    if announced.is_some_and(|len| len > max_sealed) || index > i64::MAX as u64 {
        return Err(too_large());
    }
    Ok(max_sealed)
}

/// Where a new chunk's checked bytes went: the payload store under `key`, or `data` for its row.
struct Kept {
    key: Option<BlobKey>,
    stored: mftplus_blob::StoredObject,
    data: Option<Vec<u8>>,
}

/// Reads the body of new chunk `index`, checked against `declared`: into memory when its
/// announced length is small enough to live in its row (decision 0037: no file, directory or
/// object of its own, and its bytes commit with the row), else into the payload store.
async fn keep(
    state: &AppState,
    row: &TransferRow,
    index: u64,
    headers: &http::HeaderMap,
    body: Body,
    declared: &[u8; 32],
    max_sealed: u64,
) -> ApiResult<Kept> {
    let refused = |err| upload_error(index, declared, err);
    match announced_len(headers) {
        Some(len) if len <= MAX_INLINE_CHUNK as u64 => {
            let (bytes, stored) = mftplus_blob::read_verified(body_stream(body), len, declared)
                .await
                .map_err(refused)?;
            Ok(Kept {
                key: None,
                stored,
                data: Some(bytes),
            })
        }
        _ => {
            let key = BlobKey::chunk(&transfer_key(&row.id)?, index);
            let stored = state
                .blobs
                .put_stream(&key, body_stream(body), max_sealed, declared)
                .await
                .map_err(refused)?;
            Ok(Kept {
                key: Some(key),
                stored,
                data: None,
            })
        }
    }
}

/// This upload's hold on its chunk, waiting [`CLAIM_PATIENCE`] for another upload of it to end.
async fn claim<'a>(
    state: &'a AppState,
    transfer_id: &str,
    index: u64,
) -> ApiResult<ChunkClaim<'a>> {
    state
        .chunk_claims
        .claim_within(transfer_id, index, CLAIM_PATIENCE)
        .await
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Conflict,
                format!("chunk {index} is being uploaded by another request"),
            )
        })
}

/// A chunk sent again for an index already recorded: its bytes are read and hashed, never
/// stored, and it is accepted only as the very same chunk.
struct ChunkRetry<'a> {
    index: u64,
    declared: &'a [u8; 32],
    last: bool,
    max_sealed: u64,
}

impl ChunkRetry<'_> {
    async fn compare(&self, recorded: &mftplus_store::ChunkRow, body: Body) -> ApiResult<()> {
        let (index, declared) = (self.index, self.declared);
        let seen = mftplus_blob::digest_stream(body_stream(body), self.max_sealed)
            .await
            .map_err(|err| upload_error(index, declared, err))?;
        if seen.sha256 != *declared {
            let actual = hex::encode(seen.sha256);
            return Err(upload_error(
                index,
                declared,
                BlobError::DigestMismatch { actual },
            ));
        }
        if recorded.sha256 == hex::encode(declared)
            && recorded.size == seen.len as i64
            && recorded.last == self.last
        {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorCode::Conflict,
            format!("chunk {index} was already stored with different content"),
        ))
    }
}

pub async fn upload_chunk(
    State(state): State<AppState>,
    party: Party,
    ApiPath((id, index)): ApiPath<(String, u64)>,
    headers: http::HeaderMap,
    peer: Option<Extension<PeerCertificate>>,
    body: Body,
) -> ApiResult<(http::StatusCode, Json<ChunkReceipt>)> {
    let via = state.hub_assertion(&headers, peer.as_deref()).await?;
    let row = own_upload(&state, &party.store_party(), &id).await?;
    let declared = declared_sha256(&headers)?;
    let last = last_flag(&headers)?;
    if row.site.is_some() {
        return super::site::record_chunk(
            &state,
            &row,
            via.as_deref(),
            index,
            &declared,
            last,
            &headers,
        )
        .await;
    }
    store_chunk(&state, &row, index, &headers, body).await
}

/// Stores chunk `index` of `row`, a transfer kept by this cloud that its sender is uploading:
/// for the API's upload route and for uploads through a file request alike.
pub(super) async fn store_chunk(
    state: &AppState,
    row: &TransferRow,
    index: u64,
    headers: &http::HeaderMap,
    body: Body,
) -> ApiResult<(http::StatusCode, Json<ChunkReceipt>)> {
    let declared = declared_sha256(headers)?;
    let last = last_flag(headers)?;
    let max_sealed = sealed_limit(headers, row.chunk_size, index)?;
    let receipt = |status: &str| {
        Json(ChunkReceipt {
            index,
            status: status.into(),
        })
    };
    // Claimed before the recorded row is read: a claim taken after another upload of this
    // index committed and released its own still sees that row, so nothing can overwrite a
    // recorded chunk's blob.
    let _claim = claim(state, &row.id, index).await?;
    // The recorded chunk is authoritative: a retry is compared with it and its bytes never
    // reach the blob store.
    let recorded = state.store.get_chunk(&row.id, index as i64).await?;
    if let Some(recorded) = recorded {
        let retry = ChunkRetry {
            index,
            declared: &declared,
            last,
            max_sealed,
        };
        retry.compare(&recorded, body).await?;
        return Ok((http::StatusCode::OK, receipt("already_stored")));
    }
    let Kept { key, stored, data } =
        keep(state, row, index, headers, body, &declared, max_sealed).await?;
    let chunk = NewChunk {
        idx: index as i64,
        size: stored.len as i64,
        sha256: hex::encode(stored.sha256),
        last,
        stored_at_ms: state.clock.now_ms(),
        data,
    };
    match state
        .chunk_committer
        .commit(&row.id, key, chunk)
        .await
        .map_err(|err| commit_error(index, err))?
    {
        ChunkOutcome::Stored => {
            // A first chunk that is not the last: the transfer may now be followed (decision
            // 0035), so its recipients' long-polls hear of it (decision 0036).
            if index == 0 && !last {
                state.transfer_news.announce(row);
            }
            Ok((http::StatusCode::CREATED, receipt("stored")))
        }
        ChunkOutcome::AlreadyStored => Ok((http::StatusCode::OK, receipt("already_stored"))),
        // Only another cloud replica can get here between the check and the record.
        ChunkOutcome::Conflict => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("chunk {index} was stored concurrently with different content"),
        )),
    }
}
