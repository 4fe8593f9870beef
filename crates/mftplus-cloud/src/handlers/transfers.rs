//! The transfer API: the sender uploads the stream header, sealed chunks (each checked against
//! its SHA-256) and the sealed manifest; senders, recipients and `transfers:read` holders
//! download them once the transfer is complete. Plaintext never reaches this module.

use super::{email_of, find_user, parse_expiry, site};
use crate::app::grants;
use crate::app::transfers as app;
use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::middleware::{ClientIp, Scope};
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use mftplus_blob::BlobKey;
use mftplus_pki::identity::PeerCertificate;
use mftplus_store::{recipient_kind, transfer_status, NewRecipient, NewTransfer, TransferRow};
use mftplus_types::transfers::*;
use mftplus_types::ErrorCode;
use serde::Deserialize;
use serde_json::json;

pub use super::chunk_upload::upload_chunk;

const MAX_HEADER_BYTES: usize = 64 * 1024;
const MAX_RECIPIENTS: usize = 64;

fn blob_error(err: mftplus_blob::BlobError) -> ApiError {
    ApiError::internal(err)
}

pub(super) use crate::app::transfers::transfer_key;

fn b64(text: &str, what: &str) -> ApiResult<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| ApiError::validation(format!("{what} must be base64")))
}

pub(super) async fn to_api(state: &AppState, row: &TransferRow) -> ApiResult<Transfer> {
    Ok(to_api_with(row, email_of(state, &row.sender_id).await?))
}

/// The wire form of a row whose sender's email is known (a listing looks them up at once).
fn to_api_with(row: &TransferRow, sender_email: String) -> Transfer {
    Transfer {
        id: row.id.clone(),
        sender_id: row.sender_id.clone(),
        sender_email,
        status: row.status.clone(),
        chunk_size: row.chunk_size as u64,
        chunk_count: row.chunk_count.map(|n| n as u64),
        ciphertext_bytes: row.ciphertext_bytes as u64,
        created_at: rfc3339(row.created_at_ms),
        completed_at: row.completed_at_ms.map(rfc3339),
        cancelled_at: row.cancelled_at_ms.map(rfc3339),
        expires_at: rfc3339(row.expires_at_ms),
        site: row.site.clone(),
        recipients: row
            .recipients
            .iter()
            .map(|r| TransferRecipient {
                kind: r.kind.clone(),
                id: r.id.clone(),
                display: r.display.clone(),
                downloaded_at: r.downloaded_at_ms.map(rfc3339),
                awaiting_grant: r.awaiting_grant,
                granted_at: r.granted_at_ms.map(rfc3339),
            })
            .collect(),
    }
}

/// A transfer the caller is uploading: only its sender, only while `uploading`.
pub(super) async fn own_upload(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<TransferRow> {
    let row = state
        .store
        .get_transfer(id)
        .await?
        .filter(|row| row.sender_id == caller.user_id)
        .ok_or_else(|| ApiError::not_found("transfer"))?;
    if row.status != transfer_status::UPLOADING {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("transfer is {}", row.status),
        ));
    }
    Ok(row)
}

fn require_complete(row: &TransferRow) -> ApiResult<()> {
    if row.status == transfer_status::COMPLETE {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Conflict,
            format!("transfer is {}, not complete", row.status),
        ))
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    headers: http::HeaderMap,
    peer: Option<Extension<PeerCertificate>>,
    ApiJson(body): ApiJson<CreateTransferRequest>,
) -> ApiResult<(http::StatusCode, Json<Transfer>)> {
    let via = state.hub_assertion(&headers, peer.as_deref()).await?;
    site::note_path(&state, &caller, via.as_deref()).await?;
    let limits = &state.config.config.transfers;
    if body.recipients.is_empty() || body.recipients.len() > MAX_RECIPIENTS {
        return Err(ApiError::validation(format!(
            "give 1 to {MAX_RECIPIENTS} recipients"
        )));
    }
    let header = b64(&body.header, "header")?;
    if header.len() > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the stream header is larger than 64 KiB",
        ));
    }
    let (parsed, used) = mftplus_crypto::stream::Header::parse(&header)
        .map_err(|err| ApiError::validation(format!("not a stream header: {err}")))?;
    if used != header.len() || u64::from(parsed.chunk_size()) != body.chunk_size {
        return Err(ApiError::validation(
            "chunk_size does not match the stream header",
        ));
    }
    if body.chunk_size > limits.max_chunk_size {
        return Err(ApiError::validation(format!(
            "chunk_size is above {}",
            limits.max_chunk_size
        )));
    }
    let mut recipients = Vec::with_capacity(body.recipients.len());
    for email in &body.recipients {
        let user = find_user(&state, &email.trim().to_ascii_lowercase())
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::UnknownRecipient,
                    format!("no user {email:?} to send to"),
                )
            })?;
        if recipients.iter().all(|r: &NewRecipient| r.id != user.id) {
            recipients.push(NewRecipient {
                kind: recipient_kind::USER.into(),
                id: user.id,
                display: user.email,
                awaiting_grant: false,
            });
        }
    }
    grants::mark_waiting(&caller, &mut recipients, &body.awaiting_grant)?;
    let lifetime_secs = match &body.expires {
        Some(text) => parse_expiry(text)?,
        None => limits.retention_days * 86_400,
    };
    let site = site::choose_site(&state, via.as_deref(), &recipients).await?;
    let now = state.clock.now_ms();
    let row = state
        .store
        .create_transfer(&NewTransfer {
            id: uuid::Uuid::now_v7().simple().to_string(),
            sender_id: caller.user_id.clone(),
            header,
            chunk_size: body.chunk_size as i64,
            created_at_ms: now,
            expires_at_ms: now + lifetime_secs as i64 * 1000,
            site,
            recipients,
        })
        .await?;
    state
        .audit(
            AuditEvent::new("transfer_created")
                .actor(&caller.email)
                .target(&row.id)
                .ip(&ip)
                .details(json!({
                    "recipients": row.recipients.iter().map(|r| &r.display).collect::<Vec<_>>(),
                    "awaiting_grant": grants::waiting(&row)
                        .map(|r| &r.display)
                        .collect::<Vec<_>>(),
                    "site": row.site,
                })),
        )
        .await;
    Ok((http::StatusCode::CREATED, Json(to_api(&state, &row).await?)))
}

pub async fn list_chunks(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<ChunkInfo>>> {
    let row = state
        .store
        .get_transfer(&id)
        .await?
        .filter(|row| row.sender_id == caller.user_id)
        .ok_or_else(|| ApiError::not_found("transfer"))?;
    let chunks = state.store.list_chunks(&row.id).await?;
    Ok(Json(
        chunks
            .into_iter()
            .map(|c| ChunkInfo {
                index: c.idx as u64,
                size: c.size as u64,
                sha256: c.sha256,
                last: c.last,
            })
            .collect(),
    ))
}

pub async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CompleteTransferRequest>,
) -> ApiResult<Json<Transfer>> {
    let row = own_upload(&state, &caller, &id).await?;
    let manifest = b64(&body.manifest, "manifest")?;
    if manifest.is_empty() || manifest.len() > MAX_HEADER_BYTES {
        return Err(ApiError::validation(
            "the sealed manifest must be 1 byte to 64 KiB",
        ));
    }
    // Every chunk must be on disk before the transfer may be served. A site transfer's chunks
    // are on its hub, which synced each before the cloud recorded it.
    if row.site.is_none() {
        state
            .blobs
            .sync_transfer(&transfer_key(&row.id)?)
            .await
            .map_err(blob_error)?;
    }
    let row = state
        .store
        .complete_transfer(&row.id, &manifest, state.clock.now_ms())
        .await
        .map_err(ApiError::store_conflict("transfer is not complete".into()))?;
    state
        .audit(
            AuditEvent::new("transfer_completed")
                .actor(&caller.email)
                .target(&row.id)
                .ip(&ip)
                .details(
                    json!({"chunks": row.chunk_count, "ciphertext_bytes": row.ciphertext_bytes}),
                ),
        )
        .await;
    Ok(Json(to_api(&state, &row).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only transfers in this status (`uploading`, `complete`, `cancelled`, `expired`).
    status: Option<String>,
    /// At most this many transfers (1–1000, default 100), newest first.
    limit: Option<u32>,
    /// Transfers after this cursor: the `x-next-after` header of the previous page.
    after: Option<String>,
}

/// The header naming the cursor of the next page, present only when one follows.
pub const NEXT_AFTER_HEADER: &str = "x-next-after";

pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    headers: http::HeaderMap,
    peer: Option<Extension<PeerCertificate>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    // Listing is how a recipient looks for what was sent to them: the path it takes says
    // which site they are on.
    let via = state.hub_assertion(&headers, peer.as_deref()).await?;
    site::note_path(&state, &caller, via.as_deref()).await?;
    let listing =
        app::Listing::parse(query.status.as_deref(), query.after.as_deref(), query.limit)?;
    let page = app::list(&state, &caller, scope, &listing).await?;
    let emails = app::sender_emails(&state, &page.rows).await?;
    let out: Vec<Transfer> = page
        .rows
        .iter()
        .map(|row| to_api_with(row, emails.get(&row.sender_id).cloned().unwrap_or_default()))
        .collect();
    let mut response = Json(out).into_response();
    // A listing cut short says where it goes on, so a client can tell it did not get all.
    if let Some(next) = page
        .next_after
        .and_then(|next| http::HeaderValue::from_str(&next).ok())
    {
        response.headers_mut().insert(NEXT_AFTER_HEADER, next);
    }
    Ok(response)
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Transfer>> {
    let row = app::visible(&state, &caller, scope, &id).await?;
    Ok(Json(to_api(&state, &row).await?))
}

fn octets(bytes: impl Into<axum::body::Body>) -> Response {
    (
        [(http::header::CONTENT_TYPE, "application/octet-stream")],
        bytes.into(),
    )
        .into_response()
}

pub async fn header(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let row = app::visible(&state, &caller, scope, &id).await?;
    require_complete(&row)?;
    grants::refuse_if_waiting(&row, &caller)?;
    Ok(octets(row.header))
}

pub async fn manifest(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let row = app::visible(&state, &caller, scope, &id).await?;
    require_complete(&row)?;
    grants::refuse_if_waiting(&row, &caller)?;
    Ok(octets(row.manifest.unwrap_or_default()))
}

/// The recipient's acknowledgement, sent only after its decryption checked the manifest.
/// Fetching the manifest does not count: a download that then fails verification must stay
/// pending. For a caller who may see the transfer but is not a user recipient (the sender, an
/// operator) it changes nothing and answers the transfer as it is.
pub async fn received(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Transfer>> {
    let row = app::visible(&state, &caller, scope, &id).await?;
    require_complete(&row)?;
    grants::refuse_if_waiting(&row, &caller)?;
    let recipient = row
        .recipients
        .iter()
        .find(|r| r.kind == recipient_kind::USER && r.id == caller.user_id);
    let row = match recipient {
        Some(recipient) => {
            state
                .store
                .mark_downloaded(
                    &row.id,
                    &recipient.kind,
                    &recipient.id,
                    state.clock.now_ms(),
                )
                .await?;
            state
                .store
                .get_transfer(&row.id)
                .await?
                .ok_or_else(|| ApiError::not_found("transfer"))?
        }
        None => row,
    };
    Ok(Json(to_api(&state, &row).await?))
}

pub async fn download_chunk(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiPath((id, index)): ApiPath<(String, u64)>,
    headers: http::HeaderMap,
    peer: Option<Extension<PeerCertificate>>,
) -> ApiResult<Response> {
    let via = state.hub_assertion(&headers, peer.as_deref()).await?;
    let row = app::visible(&state, &caller, scope, &id).await?;
    require_complete(&row)?;
    grants::refuse_if_waiting(&row, &caller)?;
    if row.chunk_count.is_none_or(|n| index >= n as u64) {
        return Err(ApiError::not_found("chunk"));
    }
    if row.site.is_some() {
        return site::serve_chunk(&state, &row, via.as_deref(), index).await;
    }
    let reader = state
        .blobs
        .get_stream(&BlobKey::chunk(&transfer_key(&row.id)?, index))
        .await
        .map_err(blob_error)?;
    let Some(reader) = reader else {
        return Err(chunk_missing(&state, &row.id, index).await);
    };
    let body = axum::body::Body::from_stream(reader.stream);
    let mut response = octets(body);
    response
        .headers_mut()
        .insert(http::header::CONTENT_LENGTH, reader.len.into());
    Ok(response)
}

/// A recorded chunk the payload store no longer has: data was lost under the cloud (a deleted
/// file, a bucket lifecycle rule). Its own code for the client, and an alert for operators —
/// counted, logged at error and audited — rather than an anonymous internal error.
pub(crate) async fn chunk_missing(state: &AppState, transfer_id: &str, index: u64) -> ApiError {
    state
        .metrics
        .chunks_missing
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::error!(
        transfer_id,
        index,
        "a recorded chunk is missing from the payload store"
    );
    state
        .audit(
            AuditEvent::new("chunk_missing")
                .outcome("failure")
                .target(transfer_id)
                .details(json!({"index": index})),
        )
        .await;
    ApiError::new(
        ErrorCode::ChunkMissing,
        format!(
            "chunk {index} of transfer {transfer_id} is recorded but missing from the payload \
             store; the operator has been alerted, and the sender must send the file again"
        ),
    )
}

pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiPath(id): ApiPath<String>,
    headers: http::HeaderMap,
    peer: Option<Extension<PeerCertificate>>,
) -> ApiResult<Response> {
    let via = state.hub_assertion(&headers, peer.as_deref()).await?;
    match app::verify(&state, &caller, scope, &id).await? {
        app::Verification::Checked(report) => Ok(Json(report).into_response()),
        app::Verification::AtSite(row) => site::verify_plan(&state, &row, via.as_deref()).await,
    }
}

pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Transfer>> {
    let row = app::cancel(&state, &caller, scope, &ip, &id).await?;
    Ok(Json(to_api(&state, &row).await?))
}
