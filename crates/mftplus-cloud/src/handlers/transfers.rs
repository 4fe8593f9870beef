//! The transfer API: the sender uploads the stream header, sealed chunks (each checked against
//! its SHA-256) and the sealed manifest; senders, recipients and `transfers:read` holders
//! download them once the transfer is complete, or follow its header and stored chunks while
//! it uploads. Plaintext never reaches this module. A party
//! is a user or a host's agent (decision 0029): a host sends and receives its own transfers
//! only.

use super::{find_user, parse_expiry, site};
use crate::app::grants;
use crate::app::transfers as app;
use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::middleware::{ClientIp, Scope};
use crate::principal::Party;
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use mftplus_pki::identity::PeerCertificate;
use mftplus_store::{
    recipient_kind, transfer_status, NewRecipient, NewTransfer, TransferParty, TransferRow,
};
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
    let mut senders = app::sender_emails(state, std::slice::from_ref(row)).await?;
    Ok(to_api_with(
        row,
        senders.remove(&row.sender_id).unwrap_or_default(),
    ))
}

/// The wire form of a row whose sender's email is known (a listing looks them up at once).
fn to_api_with(row: &TransferRow, sender_email: String) -> Transfer {
    Transfer {
        id: row.id.clone(),
        sender_kind: row.sender_kind.clone(),
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

/// A transfer the party sent: anyone else's is absent.
async fn own_sent(state: &AppState, sender: &TransferParty, id: &str) -> ApiResult<TransferRow> {
    state
        .store
        .get_transfer(id)
        .await?
        .filter(|row| sender.sent(row))
        .ok_or_else(|| ApiError::not_found("transfer"))
}

/// A transfer the party is uploading: only its sender, only while `uploading`.
pub(super) async fn own_upload(
    state: &AppState,
    sender: &TransferParty,
    id: &str,
) -> ApiResult<TransferRow> {
    let row = own_sent(state, sender, id).await?;
    if row.status != transfer_status::UPLOADING {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("transfer is {}", row.status),
        ));
    }
    Ok(row)
}

/// A transfer `party` may download now: one it may see, complete, and not waiting for the
/// sender's grant to this party (the header, the manifest, a chunk, the whole stream, the
/// acknowledgement all ask the same).
pub(super) async fn readable(state: &AppState, party: &Party, id: &str) -> ApiResult<TransferRow> {
    let row = app::visible_to(state, party, id).await?;
    require_complete(&row)?;
    grants::refuse_if_waiting(&row, &party.store_party())?;
    Ok(row)
}

/// As [`readable`], but a transfer still uploading in the cloud may be followed too: its
/// header and the chunks stored so far (decision 0035). Every chunk is sealed on its own and
/// the manifest, which alone proves the stream whole, still waits for completion.
async fn followable(state: &AppState, party: &Party, id: &str) -> ApiResult<TransferRow> {
    let row = app::visible_to(state, party, id).await?;
    if !(row.status == transfer_status::UPLOADING && row.site.is_none()) {
        require_complete(&row)?;
    }
    grants::refuse_if_waiting(&row, &party.store_party())?;
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

/// The stream header of a new transfer, checked for shape against the request and the limits.
pub(super) fn new_header(state: &AppState, body: &CreateTransferRequest) -> ApiResult<Vec<u8>> {
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
    let max_chunk_size = state.config.config.transfers.max_chunk_size;
    if body.chunk_size > max_chunk_size {
        return Err(ApiError::validation(format!(
            "chunk_size is above {max_chunk_size}"
        )));
    }
    Ok(header)
}

/// The recipients named at creation: users by email, hosts as `host:<host_id>`, each once.
async fn resolve_recipients(
    state: &AppState,
    party: &Party,
    names: &[String],
) -> ApiResult<Vec<NewRecipient>> {
    let mut recipients: Vec<NewRecipient> = Vec::with_capacity(names.len());
    for name in names {
        let recipient = match name.trim().strip_prefix(HOST_RECIPIENT_PREFIX) {
            Some(host_id) => host_recipient(state, party, host_id.trim()).await?,
            None => user_recipient(state, name).await?,
        };
        if !recipients
            .iter()
            .any(|r| r.kind == recipient.kind && r.id == recipient.id)
        {
            recipients.push(recipient);
        }
    }
    Ok(recipients)
}

async fn user_recipient(state: &AppState, email: &str) -> ApiResult<NewRecipient> {
    let user = find_user(state, &email.trim().to_ascii_lowercase())
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::UnknownRecipient,
                format!("no user {email:?} to send to"),
            )
        })?;
    Ok(NewRecipient {
        kind: recipient_kind::USER.into(),
        id: user.id,
        display: user.email,
        awaiting_grant: false,
    })
}

/// A host recipient (decision 0029): it must exist, be of the sending host's own customer
/// (403 `recipient_not_allowed`), and have registered its transfer key; a host without one is
/// refused, never waited for.
async fn host_recipient(state: &AppState, party: &Party, host_id: &str) -> ApiResult<NewRecipient> {
    let Some(host) = state.store.get_host(host_id).await? else {
        return Err(ApiError::new(
            ErrorCode::UnknownRecipient,
            format!("no host {host_id:?} to send to"),
        ));
    };
    if let Party::Host { customer_id, .. } = party {
        if host.customer_id != *customer_id {
            return Err(super::keys::other_customer(&host.id));
        }
    }
    if state.store.host_transfer_key(&host.id).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::UnknownRecipient,
            format!(
                "host:{} ({}) has registered no transfer key yet: its agent must register one \
                 before it can receive (hosts do not wait for a grant)",
                host.id, host.hostname
            ),
        ));
    }
    Ok(NewRecipient {
        kind: recipient_kind::AGENT.into(),
        display: format!("{HOST_RECIPIENT_PREFIX}{} ({})", host.id, host.hostname),
        id: host.id,
        awaiting_grant: false,
    })
}

pub async fn create(
    State(state): State<AppState>,
    party: Party,
    ClientIp(ip): ClientIp,
    headers: http::HeaderMap,
    peer: Option<Extension<PeerCertificate>>,
    ApiJson(body): ApiJson<CreateTransferRequest>,
) -> ApiResult<(http::StatusCode, Json<Transfer>)> {
    let via = state.hub_assertion(&headers, peer.as_deref()).await?;
    if let Some(caller) = party.caller() {
        site::note_path(&state, caller, via.as_deref()).await?;
    }
    if body.recipients.is_empty() || body.recipients.len() > MAX_RECIPIENTS {
        return Err(ApiError::validation(format!(
            "give 1 to {MAX_RECIPIENTS} recipients"
        )));
    }
    let header = new_header(&state, &body)?;
    let id = match &body.id {
        Some(id) => super::transfer_whole::chosen_id(id)?,
        None => uuid::Uuid::now_v7().simple().to_string(),
    };
    let now = state.clock.now_ms();
    let whole = body
        .whole
        .as_ref()
        .map(|w| super::transfer_whole::whole(w, body.chunk_size, now))
        .transpose()?;
    let sender = party.store_party();
    let mut recipients = resolve_recipients(&state, &party, &body.recipients).await?;
    grants::mark_waiting(&sender, &mut recipients, &body.awaiting_grant)?;
    let lifetime_secs = match &body.expires {
        Some(text) => parse_expiry(text)?,
        None => state.config.config.transfers.retention_days * 86_400,
    };
    // Hosts' transfers stay in the cloud, whichever way they came (decision 0029), and so do
    // transfers sent whole: their one chunk is already here (decision 0037).
    let site = match party {
        Party::User { .. } if whole.is_none() => {
            site::choose_site(&state, via.as_deref(), &recipients).await?
        }
        _ => None,
    };
    let new = NewTransfer {
        id,
        sender_kind: sender.kind().into(),
        sender_id: sender.id().into(),
        header,
        chunk_size: body.chunk_size as i64,
        created_at_ms: now,
        expires_at_ms: now + lifetime_secs as i64 * 1000,
        site,
        recipients,
    };
    let row = match &whole {
        None => state.store.create_transfer(&new).await?,
        Some(whole) => {
            state
                .store
                .create_complete_transfer(&new, &whole.chunk, &whole.manifest, now)
                .await?
        }
    };
    let mut events = vec![AuditEvent::new("transfer_created")
        .actor(&party.actor())
        .target(&row.id)
        .ip(&ip)
        .details(json!({
            "recipients": row.recipients.iter().map(|r| &r.display).collect::<Vec<_>>(),
            "awaiting_grant": grants::waiting(&row)
                .map(|r| &r.display)
                .collect::<Vec<_>>(),
            "site": row.site,
        }))];
    if whole.is_some() {
        events.push(completed_event(&row, &party.actor(), &ip));
    }
    state.audit_together(events).await;
    state.transfer_news.announce(&row);
    Ok((http::StatusCode::CREATED, Json(to_api(&state, &row).await?)))
}

pub async fn list_chunks(
    State(state): State<AppState>,
    party: Party,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<ChunkInfo>>> {
    let row = own_sent(&state, &party.store_party(), &id).await?;
    chunk_list(&state, &row).await
}

/// The chunks of `row` stored so far (its sender's resume asks).
pub(super) async fn chunk_list(
    state: &AppState,
    row: &TransferRow,
) -> ApiResult<Json<Vec<ChunkInfo>>> {
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
    party: Party,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CompleteTransferRequest>,
) -> ApiResult<Json<Transfer>> {
    let row = own_upload(&state, &party.store_party(), &id).await?;
    complete_upload(&state, &row, &party.actor(), &ip, &body).await
}

/// Seals `row`, which its sender is uploading, with its manifest once every chunk is on disk;
/// audited as `transfer_completed` by `actor`.
pub(super) async fn complete_upload(
    state: &AppState,
    row: &TransferRow,
    actor: &str,
    ip: &str,
    body: &CompleteTransferRequest,
) -> ApiResult<Json<Transfer>> {
    let manifest = b64(&body.manifest, "manifest")?;
    if manifest.is_empty() || manifest.len() > MAX_HEADER_BYTES {
        return Err(ApiError::validation(
            "the sealed manifest must be 1 byte to 64 KiB",
        ));
    }
    // Every chunk must be on disk before the transfer may be served, and already is: a chunk
    // row exists only once its blob was synced (the group committer syncs each batch's blobs
    // before recording it, `chunk_commit`), and a site transfer's chunks are on its hub,
    // which synced each before the cloud recorded it. Syncing the transfer again here cost
    // four device flushes per small transfer and made nothing more durable.
    let row = state
        .store
        .complete_transfer(&row.id, &manifest, state.clock.now_ms())
        .await
        .map_err(ApiError::store_conflict("transfer is not complete".into()))?;
    state.transfer_news.announce(&row);
    state.audit(completed_event(&row, actor, ip)).await;
    Ok(Json(to_api(state, &row).await?))
}

fn completed_event(row: &TransferRow, actor: &str, ip: &str) -> AuditEvent {
    AuditEvent::new("transfer_completed")
        .actor(actor)
        .target(&row.id)
        .ip(ip)
        .details(json!({"chunks": row.chunk_count, "ciphertext_bytes": row.ciphertext_bytes}))
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
    /// `true`: only the transfers the caller receives and has not downloaded yet.
    pending: Option<bool>,
    /// With `pending=true`: first wait up to this many milliseconds (at most 25,000) for news
    /// for the caller — a transfer created for it, the first chunk of a larger one stored, one
    /// completed or granted to it — then answer (decision 0036).
    wait_ms: Option<u64>,
}

/// The longest a listing waits for news: under the hub's and the clients' request timeouts.
const MAX_LIST_WAIT_MS: u64 = 25_000;

/// The header naming the cursor of the next page, present only when one follows.
pub const NEXT_AFTER_HEADER: &str = "x-next-after";

pub async fn index(
    State(state): State<AppState>,
    party: Party,
    headers: http::HeaderMap,
    peer: Option<Extension<PeerCertificate>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    // Listing is how a recipient looks for what was sent to them: the path it takes says
    // which site they are on (users only: hosts as recipients stay in the cloud, decision 0029).
    let via = state.hub_assertion(&headers, peer.as_deref()).await?;
    if let Some(caller) = party.caller() {
        site::note_path(&state, caller, via.as_deref()).await?;
    }
    let parsed = app::Listing::parse(query.status.as_deref(), query.after.as_deref(), query.limit)?;
    if let Some(wait_ms) = query.wait_ms {
        if query.pending != Some(true) || wait_ms > MAX_LIST_WAIT_MS {
            return Err(ApiError::validation(format!(
                "wait_ms needs pending=true and is at most {MAX_LIST_WAIT_MS}"
            )));
        }
        let me = party.store_party();
        let wait = std::time::Duration::from_millis(wait_ms);
        state.transfer_news.wait(me.kind(), me.id(), wait).await;
    }
    let listing = app::Listing {
        pending: query.pending.unwrap_or(false),
        ..parsed
    };
    let page = app::list_for(&state, &party, &listing).await?;
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
    party: Party,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Transfer>> {
    let row = app::visible_to(&state, &party, &id).await?;
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
    party: Party,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let row = followable(&state, &party, &id).await?;
    Ok(octets(row.header))
}

pub async fn manifest(
    State(state): State<AppState>,
    party: Party,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let row = readable(&state, &party, &id).await?;
    Ok(octets(row.manifest.unwrap_or_default()))
}

/// The recipient's acknowledgement, sent only after its decryption checked the manifest.
/// Fetching the manifest does not count: a download that then fails verification must stay
/// pending. It marks the caller's own recipient entry, a user's or a host's (`agent`); for a
/// caller who may see the transfer but is not a recipient (the sender, an operator) it changes
/// nothing and answers the transfer as it is.
pub async fn received(
    State(state): State<AppState>,
    party: Party,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Transfer>> {
    let mut row = readable(&state, &party, &id).await?;
    let me = party.store_party();
    let recipient = me.recipient_of(&row).cloned();
    if let Some(recipient) = recipient {
        let now = state.clock.now_ms();
        state
            .store
            .mark_downloaded(&row.id, &recipient.kind, &recipient.id, now)
            .await?;
        // The stamp the store keeps (the first one), without reading the row back.
        for entry in &mut row.recipients {
            if entry.kind == recipient.kind && entry.id == recipient.id {
                entry.downloaded_at_ms.get_or_insert(now);
            }
        }
    }
    Ok(Json(to_api(&state, &row).await?))
}

pub async fn download_chunk(
    State(state): State<AppState>,
    party: Party,
    ApiPath((id, index)): ApiPath<(String, u64)>,
    headers: http::HeaderMap,
    peer: Option<Extension<PeerCertificate>>,
) -> ApiResult<Response> {
    let via = state.hub_assertion(&headers, peer.as_deref()).await?;
    let row = followable(&state, &party, &id).await?;
    let last = match row.chunk_count {
        Some(count) if index < count as u64 => index + 1 == count as u64,
        Some(_) => return Err(ApiError::not_found("chunk")),
        // Still uploading: only a chunk whose row is committed (its blob synced before it).
        None => match state.store.get_chunk(&row.id, stored_index(index)?).await? {
            Some(chunk) => chunk.last,
            None => {
                return Err(ApiError::new(
                    ErrorCode::ChunkPending,
                    format!("chunk {index} is not uploaded yet; ask again shortly"),
                ))
            }
        },
    };
    if row.site.is_some() {
        return site::serve_chunk(&state, &row, via.as_deref(), index).await;
    }
    let reader = app::open_chunk(&state, &transfer_key(&row.id)?, index, None)
        .await
        .map_err(blob_error)?;
    let Some(reader) = reader else {
        return Err(chunk_missing(&state, &row.id, index).await);
    };
    let body = axum::body::Body::from_stream(reader.stream);
    let mut response = octets(body);
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_LENGTH, reader.len.into());
    // Whether the stream ends here: a follower of an upload cannot know it from a count yet.
    headers.insert(
        CHUNK_LAST_HEADER,
        http::HeaderValue::from_static(if last { "true" } else { "false" }),
    );
    Ok(response)
}

fn stored_index(index: u64) -> ApiResult<i64> {
    i64::try_from(index).map_err(|_| ApiError::not_found("chunk"))
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
