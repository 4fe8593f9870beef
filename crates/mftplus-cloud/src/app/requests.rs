//! File requests (decision 0034), for the API and the pages alike: a user with a registered key
//! asks for files with a link (`/r/<token>`), lists and revokes their requests; whoever holds
//! the link reads what their browser needs to encrypt to the requester, starts counted uploads
//! and sends their chunks.
//!
//! What the cloud holds of a request is the SHA-256 of its token. The uploads are encrypted in
//! the uploader's browser to the requester's public key: the cloud stores ciphertext it cannot
//! read, as for any transfer.

use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::middleware::Scope;
use crate::state::AppState;
use mftplus_store::{
    recipient_kind, transfer_status, FileRequestRow, LinkRefusal, NewFileRequest, NewRecipient,
    NewTransfer, RequestUpload, TransferParty, TransferRow,
};
use mftplus_types::requests::{CreateFileRequest, REQUEST_PAGE_PREFIX, REQUEST_SENDER_PREFIX};
use mftplus_types::transfers::CreateTransferRequest;
use mftplus_types::ErrorCode;
use serde_json::json;

/// 144 random bits: a request's token (24 characters in the URL).
pub const TOKEN_BYTES: usize = 18;
/// The most uploads one request may allow.
pub const MAX_UPLOADS: u32 = 1000;
/// The longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 500;
/// A request's lifetime when it names none (at most the transfer retention).
const DEFAULT_LIFETIME_SECS: u64 = 7 * 86_400;
/// The most requests one listing answers.
pub const LIST_LIMIT: u32 = 1000;

/// A new request with its token, which exists nowhere else once this is answered.
pub struct Created {
    pub request: FileRequestRow,
    pub token: String,
}

/// The page path of a token: `/r/<token>`.
pub fn page_path(token: &str) -> String {
    format!("{REQUEST_PAGE_PREFIX}{token}")
}

fn token_hash(token: &str) -> String {
    mftplus_crypto::sha256_hex(token.as_bytes())
}

/// The request's state word for people: `revoked`, `expired`, `exhausted` or `active`.
pub fn status(request: &FileRequestRow, now_ms: i64) -> &'static str {
    request
        .refusal(now_ms)
        .map_or("active", LinkRefusal::as_str)
}

/// The coded refusal an uploader sees (a share link's codes: a request is a link too).
pub fn refusal_error(refusal: LinkRefusal) -> ApiError {
    match refusal {
        LinkRefusal::Revoked => ApiError::new(
            ErrorCode::LinkRevoked,
            "the person who asked for files revoked this request",
        ),
        LinkRefusal::Expired => ApiError::new(ErrorCode::LinkExpired, "this request has expired"),
        LinkRefusal::Exhausted => ApiError::new(
            ErrorCode::LinkExhausted,
            "this request has had all the uploads it allows",
        ),
    }
}

/// Who a request's transfers are from: `request:<id>`.
pub fn sender_name(request_id: &str) -> String {
    format!("{REQUEST_SENDER_PREFIX}{request_id}")
}

/// The limits of a new request, checked: (note, lifetime in seconds, uploads, bytes).
fn limits(state: &AppState, body: &CreateFileRequest) -> ApiResult<(String, u64, u32, u64)> {
    let note = body.note.as_deref().unwrap_or("").trim().to_string();
    if note.chars().count() > MAX_NOTE_CHARS || note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::validation(format!(
            "note must be at most {MAX_NOTE_CHARS} characters, without control characters"
        )));
    }
    let transfers = &state.config.config.transfers;
    let retention_secs = transfers.retention_days * 86_400;
    let lifetime = match &body.expires {
        Some(text) => crate::handlers::parse_expiry(text)?,
        None => DEFAULT_LIFETIME_SECS.min(retention_secs),
    };
    if lifetime == 0 || lifetime > retention_secs {
        return Err(ApiError::validation(format!(
            "expires must be at most the transfer retention ({} days)",
            transfers.retention_days
        )));
    }
    let uploads = body.max_uploads.unwrap_or(1);
    if uploads == 0 || uploads > MAX_UPLOADS {
        return Err(ApiError::validation(format!(
            "max_uploads must be between 1 and {MAX_UPLOADS}"
        )));
    }
    let most = transfers.max_request_upload_bytes;
    let bytes = body.max_bytes.unwrap_or(most);
    if bytes == 0 || bytes > most {
        return Err(ApiError::validation(format!(
            "max_bytes must be between 1 and {most} (transfers.max_request_upload_bytes)"
        )));
    }
    Ok((note, lifetime, uploads, bytes))
}

/// Makes a request for files encrypted to the caller, who must have registered a public key
/// (409 `no_public_key`). Audited as `file_request_created`.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    body: &CreateFileRequest,
) -> ApiResult<Created> {
    let (note, lifetime, uploads, bytes) = limits(state, body)?;
    if state.store.get_user_key(&caller.user_id).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::NoPublicKey,
            "you have no public key for uploads to be encrypted to: run `mftctl keys init` \
             (it makes and registers a key pair), then ask again",
        ));
    }
    let now = state.clock.now_ms();
    let token = mftplus_crypto::random_token(TOKEN_BYTES);
    let request = state
        .store
        .create_file_request(&NewFileRequest {
            id: uuid::Uuid::now_v7().simple().to_string(),
            token_hash: token_hash(&token),
            owner_id: caller.user_id.clone(),
            note,
            created_at_ms: now,
            expires_at_ms: now.saturating_add(lifetime as i64 * 1000),
            max_uploads: i64::from(uploads),
            max_bytes: bytes as i64,
        })
        .await?;
    state
        .audit(
            AuditEvent::new("file_request_created")
                .actor(&caller.email)
                .target(&request.id)
                .ip(ip)
                .details(json!({
                    "expires_at_ms": request.expires_at_ms,
                    "max_uploads": request.max_uploads,
                    "max_bytes": request.max_bytes,
                })),
        )
        .await;
    Ok(Created { request, token })
}

/// The caller's requests, or everyone's under `Scope::All` (`transfers:read`); newest first.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
) -> ApiResult<Vec<FileRequestRow>> {
    let owner = (scope != Scope::All).then_some(caller.user_id.as_str());
    Ok(state.store.list_file_requests(owner, LIST_LIMIT).await?)
}

/// The emails of `rows`' owners, by user id, in one query (a user deleted since is absent).
pub async fn owner_emails(
    state: &AppState,
    rows: &[FileRequestRow],
) -> ApiResult<std::collections::HashMap<String, String>> {
    let mut ids: Vec<String> = rows.iter().map(|r| r.owner_id.clone()).collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(state
        .store
        .get_users(&ids)
        .await?
        .into_iter()
        .map(|user| (user.id, user.email))
        .collect())
}

/// Revokes a request (`scope` is the route's `transfers:cancel[:own]`: the owner's own, or
/// any). Uploads under way stop at their next chunk. Already revoked: 409. Audited as
/// `file_request_revoked`.
pub async fn revoke(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    ip: &str,
    id: &str,
) -> ApiResult<FileRequestRow> {
    let request = state
        .store
        .get_file_request(id)
        .await?
        .filter(|r| scope == Scope::All || r.owner_id == caller.user_id)
        .ok_or_else(|| ApiError::not_found("file request"))?;
    if !state
        .store
        .revoke_file_request(&request.id, state.clock.now_ms())
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the request is already revoked",
        ));
    }
    state
        .audit(
            AuditEvent::new("file_request_revoked")
                .actor(&caller.email)
                .target(&request.id)
                .ip(ip),
        )
        .await;
    state
        .store
        .get_file_request(&request.id)
        .await?
        .ok_or_else(|| ApiError::not_found("file request"))
}

/// The request a token names, whatever its state; 404 for an unknown token.
async fn lookup(state: &AppState, token: &str) -> ApiResult<FileRequestRow> {
    state
        .store
        .get_file_request_by_token_hash(&token_hash(token))
        .await?
        .ok_or_else(|| ApiError::not_found("file request"))
}

/// The request a token names, open for a new upload: 404 for an unknown token, the coded
/// refusal for a revoked, expired or used-up one.
pub async fn resolve(state: &AppState, token: &str) -> ApiResult<FileRequestRow> {
    let request = lookup(state, token).await?;
    match request.refusal(state.clock.now_ms()) {
        Some(refusal) => Err(refusal_error(refusal)),
        None => Ok(request),
    }
}

/// What the request's page needs: the request, its owner's email and public key. A request
/// whose owner was deleted, or dropped their key, is absent.
pub async fn recipient(state: &AppState, request: &FileRequestRow) -> ApiResult<(String, String)> {
    let gone = || ApiError::not_found("file request");
    let owner = state
        .store
        .get_user(&request.owner_id)
        .await?
        .ok_or_else(gone)?;
    let key = state
        .store
        .get_user_key(&owner.id)
        .await?
        .ok_or_else(gone)?;
    Ok((owner.email, key.public_key))
}

/// Starts one counted upload through the request: the body names the owner as its one
/// recipient (anyone else is 403 `recipient_not_allowed`); `header` was checked by the
/// caller. The transfer is sent by `request:<id>` and kept by this cloud. Audited as
/// `transfer_created`, with the request and the uploader's address.
pub async fn start_upload(
    state: &AppState,
    ip: &str,
    token: &str,
    body: &CreateTransferRequest,
    header: Vec<u8>,
) -> ApiResult<TransferRow> {
    let request = resolve(state, token).await?;
    let (email, _) = recipient(state, &request).await?;
    let only_owner =
        matches!(body.recipients.as_slice(), [one] if one.trim().eq_ignore_ascii_case(&email));
    if body.id.is_some() || body.whole.is_some() {
        return Err(ApiError::validation(
            "an upload through a request sends its chunks one by one, under the server's id",
        ));
    }
    if !only_owner || !body.awaiting_grant.is_empty() {
        return Err(ApiError::new(
            ErrorCode::RecipientNotAllowed,
            format!("an upload through this request goes to {email} only"),
        ));
    }
    let retention_secs = state.config.config.transfers.retention_days * 86_400;
    let lifetime = match &body.expires {
        Some(text) => crate::handlers::parse_expiry(text)?.min(retention_secs),
        None => retention_secs,
    };
    let now = state.clock.now_ms();
    let transfer = NewTransfer {
        id: uuid::Uuid::now_v7().simple().to_string(),
        sender_kind: recipient_kind::REQUEST.into(),
        sender_id: request.id.clone(),
        header,
        chunk_size: body.chunk_size as i64,
        created_at_ms: now,
        expires_at_ms: now + lifetime as i64 * 1000,
        site: None,
        recipients: vec![NewRecipient {
            kind: recipient_kind::USER.into(),
            id: request.owner_id.clone(),
            display: email.clone(),
            awaiting_grant: false,
        }],
    };
    let row = match state
        .store
        .create_requested_transfer(&request.id, &transfer, now)
        .await?
    {
        RequestUpload::Created(row, _) => *row,
        RequestUpload::Refused(refusal, _) => return Err(refusal_error(refusal)),
    };
    state
        .audit(
            AuditEvent::new("transfer_created")
                .actor(&sender_name(&request.id))
                .target(&row.id)
                .ip(ip)
                .details(json!({"recipients": [email], "file_request": request.id})),
        )
        .await;
    Ok(row)
}

/// An upload through the request still under way: the request neither revoked nor expired
/// (the count was spent when the upload started), and the transfer its own and `uploading`.
/// Another request's transfer, or any other, is absent.
pub async fn admit_upload(
    state: &AppState,
    token: &str,
    transfer_id: &str,
) -> ApiResult<(FileRequestRow, TransferRow)> {
    let request = lookup(state, token).await?;
    match request.refusal(state.clock.now_ms()) {
        Some(LinkRefusal::Exhausted) | None => {}
        Some(refusal) => return Err(refusal_error(refusal)),
    }
    let transfer = state
        .store
        .get_transfer(transfer_id)
        .await?
        .filter(|row| TransferParty::Request(request.id.clone()).sent(row))
        .ok_or_else(|| ApiError::not_found("transfer"))?;
    if transfer.status != transfer_status::UPLOADING {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("transfer is {}", transfer.status),
        ));
    }
    Ok((request, transfer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(revoked: bool, expires_at_ms: i64, max: i64, uploads: i64) -> FileRequestRow {
        FileRequestRow {
            id: "r".into(),
            token_hash: "h".into(),
            owner_id: "u".into(),
            note: String::new(),
            created_at_ms: 0,
            expires_at_ms,
            max_uploads: max,
            max_bytes: 1,
            uploads,
            last_upload_at_ms: None,
            revoked_at_ms: revoked.then_some(5),
        }
    }

    #[test]
    fn status_words_follow_the_refusal_order() {
        assert_eq!(status(&request(false, 100, 2, 1), 50), "active");
        assert_eq!(status(&request(false, 100, 2, 2), 50), "exhausted");
        assert_eq!(status(&request(false, 100, 2, 2), 100), "expired");
        assert_eq!(status(&request(true, 100, 2, 2), 100), "revoked");
        assert_eq!(
            refusal_error(LinkRefusal::Revoked).code,
            ErrorCode::LinkRevoked
        );
        assert_eq!(page_path("abc"), "/r/abc");
        assert_eq!(sender_name("r1"), "request:r1");
    }
}
