//! File requests (decision 0034): the owner's routes (make, list, revoke) and the public ones a
//! request's page calls without any credential, the request's token in the path being the
//! capability (what to encrypt to, a counted upload, its chunks and its completion). The flows
//! are `crate::app::requests`; the chunks and the completion are the transfer routes' own.

use super::chunk_upload::store_chunk;
use super::links::no_store;
use super::transfers::{chunk_list, complete_upload, new_header, to_api};
use crate::app::requests as app;
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::middleware::{ClientIp, Scope};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mftplus_store::FileRequestRow;
use mftplus_types::requests::*;
use mftplus_types::transfers::{
    max_sealed_len, ChunkInfo, ChunkReceipt, CompleteTransferRequest, CreateTransferRequest,
    Transfer,
};
use mftplus_types::ErrorCode;

/// The wire form of a request, its owner's email known.
pub fn to_api_with(state: &AppState, row: &FileRequestRow, owner: String) -> FileRequest {
    FileRequest {
        id: row.id.clone(),
        owner,
        note: row.note.clone(),
        created_at: rfc3339(row.created_at_ms),
        expires_at: rfc3339(row.expires_at_ms),
        max_uploads: row.max_uploads as u32,
        max_bytes: row.max_bytes as u64,
        uploads: row.uploads as u32,
        last_upload_at: row.last_upload_at_ms.map(rfc3339),
        revoked_at: row.revoked_at_ms.map(rfc3339),
        status: app::status(row, state.clock.now_ms()).to_string(),
    }
}

async fn to_api_request(state: &AppState, row: &FileRequestRow) -> ApiResult<FileRequest> {
    let owner = super::email_of(state, &row.owner_id).await?;
    Ok(to_api_with(state, row, owner))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<CreateFileRequest>,
) -> ApiResult<(http::StatusCode, Json<CreatedFileRequest>)> {
    let created = app::create(&state, &caller, &ip, &body).await?;
    let request = to_api_with(&state, &created.request, caller.email.clone());
    Ok((
        http::StatusCode::CREATED,
        Json(CreatedFileRequest {
            request,
            path: app::page_path(&created.token),
            token: created.token,
        }),
    ))
}

pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
) -> ApiResult<Json<Vec<FileRequest>>> {
    let rows = app::list(&state, &caller, scope).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(to_api_request(&state, row).await?);
    }
    Ok(Json(out))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<FileRequest>> {
    let row = app::revoke(&state, &caller, scope, &ip, &id).await?;
    Ok(Json(to_api_request(&state, &row).await?))
}

/// `GET /api/v1/requested/{token}`: public; the requester's key and the request's limits.
pub async fn requested(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<Response> {
    crate::app::links::limit_lookups(&state, &ip)?;
    let request = app::resolve(&state, &token).await?;
    let (recipient, public_key) = app::recipient(&state, &request).await?;
    let answer = RequestedUpload {
        recipient,
        public_key,
        note: request.note.clone(),
        expires_at: rfc3339(request.expires_at_ms),
        uploads_left: request.uploads_left() as u32,
        max_bytes: request.max_bytes as u64,
        max_chunk_size: state.config.config.transfers.max_chunk_size,
    };
    Ok(no_store(Json(answer).into_response()))
}

/// `POST /api/v1/requested/{token}/transfers`: public; one counted upload.
pub async fn start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiPath(token): ApiPath<String>,
    ApiJson(body): ApiJson<CreateTransferRequest>,
) -> ApiResult<(http::StatusCode, Json<Transfer>)> {
    crate::app::links::limit_lookups(&state, &ip)?;
    let header = new_header(&state, &body)?;
    let row = app::start_upload(&state, &ip, &token, &body, header).await?;
    Ok((http::StatusCode::CREATED, Json(to_api(&state, &row).await?)))
}

/// `GET /api/v1/requested/{token}/transfers/{id}/chunks`: public; an upload's stored chunks.
pub async fn chunks(
    State(state): State<AppState>,
    ApiPath((token, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Vec<ChunkInfo>>> {
    let (_, row) = app::admit_upload(&state, &token, &id).await?;
    chunk_list(&state, &row).await
}

/// `PUT /api/v1/requested/{token}/transfers/{id}/chunks/{index}`: public; one sealed chunk.
/// The upload's ciphertext stays within the request's `max_bytes`: a chunk that would pass it
/// is refused before a byte is stored (uploads in flight at once may each pass the check).
pub async fn chunk(
    State(state): State<AppState>,
    ApiPath((token, id, index)): ApiPath<(String, String, u64)>,
    headers: http::HeaderMap,
    body: Body,
) -> ApiResult<(http::StatusCode, Json<ChunkReceipt>)> {
    let (request, row) = app::admit_upload(&state, &token, &id).await?;
    let announced = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| max_sealed_len(row.chunk_size as u64));
    let stored = row.ciphertext_bytes.max(0) as u64;
    if stored.saturating_add(announced) > request.max_bytes as u64 {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "this request takes uploads of at most {} bytes",
                request.max_bytes
            ),
        ));
    }
    store_chunk(&state, &row, index, &headers, body).await
}

/// `POST /api/v1/requested/{token}/transfers/{id}/complete`: public; seals the upload.
pub async fn complete(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiPath((token, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<CompleteTransferRequest>,
) -> ApiResult<Json<Transfer>> {
    let (request, row) = app::admit_upload(&state, &token, &id).await?;
    complete_upload(&state, &row, &app::sender_name(&request.id), &ip, &body).await
}
