//! Share links (decision 0023): the sender's routes (make, list, revoke) and the public ones a
//! link's page calls without any credential (the file's ciphertext details, the counted open,
//! the chunks with the open's ticket). The flows are `crate::app::links`.

use crate::app::links as app;
use crate::app::transfers::open_chunk;
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::middleware::{ClientIp, Scope};
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use mftplus_store::LinkRow;
use mftplus_types::links::*;

/// The wire form of a link; `created_by` is the maker's email (`""` once deleted).
pub async fn to_api(state: &AppState, row: &LinkRow) -> ApiResult<Link> {
    let created_by = super::email_of(state, &row.created_by).await?;
    Ok(to_api_with(state, row, created_by))
}

pub fn to_api_with(state: &AppState, row: &LinkRow, created_by: String) -> Link {
    Link {
        id: row.id.clone(),
        transfer_id: row.transfer_id.clone(),
        created_by,
        created_at: rfc3339(row.created_at_ms),
        expires_at: rfc3339(row.expires_at_ms),
        max_downloads: row.max_downloads.map(|n| n as u32),
        downloads: row.downloads as u32,
        last_opened_at: row.last_opened_at_ms.map(rfc3339),
        revoked_at: row.revoked_at_ms.map(rfc3339),
        status: app::status(row, state.clock.now_ms()).to_string(),
    }
}

/// Nothing a link's routes answer is worth keeping in a cache: counts, tickets, ciphertext
/// (a file request's public routes likewise).
pub(super) fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateLinkRequest>,
) -> ApiResult<(http::StatusCode, Json<CreatedLink>)> {
    let created = app::create(&state, &caller, &ip, &id, &body).await?;
    let link = to_api_with(&state, &created.link, caller.email.clone());
    Ok((
        http::StatusCode::CREATED,
        Json(CreatedLink {
            link,
            path: app::page_path(&created.token),
            token: created.token,
        }),
    ))
}

pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<Link>>> {
    let rows = app::list(&state, &caller, scope, &id).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(to_api(&state, row).await?);
    }
    Ok(Json(out))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath(link_id): ApiPath<String>,
) -> ApiResult<Json<Link>> {
    let row = app::revoke(&state, &caller, scope, &ip, &link_id).await?;
    Ok(Json(to_api(&state, &row).await?))
}

/// `GET /api/v1/shared/{token}`: public. Looking at a link does not count as a download.
pub async fn shared(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<Response> {
    app::limit_lookups(&state, &ip)?;
    let (link, transfer) = app::resolve(&state, &token).await?;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let file = SharedFile {
        header: b64(&transfer.header),
        manifest: b64(transfer.manifest.as_deref().unwrap_or_default()),
        chunk_size: transfer.chunk_size as u64,
        chunk_count: transfer.chunk_count.unwrap_or(0) as u64,
        ciphertext_bytes: transfer.ciphertext_bytes as u64,
        expires_at: rfc3339(link.expires_at_ms),
        downloads_left: link.downloads_left().map(|n| n as u32),
    };
    Ok(no_store(Json(file).into_response()))
}

/// `POST /api/v1/shared/{token}/open`: public; one counted, audited download.
pub async fn open(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<Response> {
    app::limit_lookups(&state, &ip)?;
    let (ticket, expires_at_ms) = app::open(&state, &ip, &token).await?;
    let answer = LinkTicket {
        ticket,
        expires_at: rfc3339(expires_at_ms),
    };
    Ok(no_store(Json(answer).into_response()))
}

/// `GET /api/v1/shared/{token}/chunks/{index}`: public with the open's ticket in
/// `x-link-ticket`; the sealed chunk, streamed from the payload store.
pub async fn chunk(
    State(state): State<AppState>,
    ApiPath((token, index)): ApiPath<(String, u64)>,
    headers: http::HeaderMap,
) -> ApiResult<Response> {
    let ticket = headers
        .get(LINK_TICKET_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (_, transfer) = app::admit_chunk(&state, &token, ticket).await?;
    if transfer.chunk_count.is_none_or(|n| index >= n as u64) {
        return Err(ApiError::not_found("chunk"));
    }
    let key = super::transfers::transfer_key(&transfer.id)?;
    let reader = open_chunk(&state, &key, index, None)
        .await
        .map_err(ApiError::internal)?;
    let Some(reader) = reader else {
        return Err(super::transfers::chunk_missing(&state, &transfer.id, index).await);
    };
    let mut response = (
        [(http::header::CONTENT_TYPE, "application/octet-stream")],
        axum::body::Body::from_stream(reader.stream),
    )
        .into_response();
    response
        .headers_mut()
        .insert(http::header::CONTENT_LENGTH, reader.len.into());
    Ok(no_store(response))
}
