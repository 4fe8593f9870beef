//! Site-local transfers (decision 0012). When the sender and every recipient reach the cloud
//! through the same edge hub, the transfer is created with `site = hub_id`: the hub keeps the
//! sealed chunks and serves them, and the cloud keeps only the rows it keeps for any transfer
//! (header, manifest, chunk sizes and hashes, recipients). The cloud stays the authority on who
//! may do what: every chunk upload and download still comes here first, with the agent's
//! credential and the hub's assertion, and the cloud answers the hub with what to do instead of
//! with bytes.
//!
//! A request for a site transfer's payload that does not come through its hub is refused with
//! `site_local` (409): the cloud has no bytes to give.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mftplus_store::{recipient_kind, ChunkOutcome, NewChunk, NewRecipient, TransferRow};
use mftplus_types::transfers::site::{
    SiteTransfersLive, SiteTransfersQuery, SiteVerifyPlan, SERVE_SHA256_HEADER, STORED_SIZE_HEADER,
    VERIFY_PLAN_HEADER,
};
use mftplus_types::transfers::{ChunkInfo, ChunkReceipt};
use mftplus_types::ErrorCode;
use std::sync::Arc;
use std::time::Duration;

/// An unchanged path is written again after this, so `seen_at` stays roughly current.
pub const PATH_REWRITE_AFTER: Duration = Duration::from_secs(600);
/// A recipient counts as on a hub's site if their latest transfer request came through it
/// within this long.
const SITE_MEMBERSHIP_MS: i64 = 30 * 86_400_000;
/// Transfers one live-check may ask about.
const MAX_LIVE_QUERY: usize = 1000;

/// Records which way the caller's transfer request came (through `via`, or direct), at most
/// every [`PATH_REWRITE_AFTER`] while it does not change.
pub async fn note_path(state: &AppState, caller: &Caller, via: Option<&str>) -> ApiResult<()> {
    let via = via.map(str::to_string);
    if state
        .site_paths
        .get(&caller.user_id)
        .is_some_and(|recorded| *recorded == via)
    {
        return Ok(());
    }
    state
        .store
        .note_user_site(&caller.user_id, via.as_deref(), state.clock.now_ms())
        .await?;
    state
        .site_paths
        .insert(caller.user_id.clone(), Arc::new(via));
    Ok(())
}

/// The site a new transfer is kept on: the hub the sender's request came through, when every
/// recipient's latest transfer request came through it too, recently enough. Otherwise none:
/// a recipient who has never been seen behind the hub might be anywhere. A host recipient
/// keeps a transfer in the cloud: hosts' paths are not recorded (decision 0029; the caller
/// keeps a host's own sends in the cloud too).
pub async fn choose_site(
    state: &AppState,
    via: Option<&str>,
    recipients: &[NewRecipient],
) -> ApiResult<Option<String>> {
    let Some(hub) = via else { return Ok(None) };
    if recipients.iter().any(|r| r.kind != recipient_kind::USER) {
        return Ok(None);
    }
    let ids: Vec<String> = recipients.iter().map(|r| r.id.clone()).collect();
    let paths = state.store.user_sites(&ids).await?;
    let since = state.clock.now_ms() - SITE_MEMBERSHIP_MS;
    let all_behind = ids.iter().all(|id| {
        paths.iter().any(|path| {
            &path.user_id == id && path.hub_id.as_deref() == Some(hub) && path.seen_at_ms >= since
        })
    });
    Ok(all_behind.then(|| hub.to_string()))
}

/// Refuses a payload request for a site transfer that did not come through its hub.
async fn require_via_site(state: &AppState, row: &TransferRow, via: Option<&str>) -> ApiResult<()> {
    let Some(site) = &row.site else {
        return Ok(());
    };
    if via == Some(site.as_str()) {
        return Ok(());
    }
    let hostname = state
        .store
        .get_hub(site)
        .await?
        .map(|hub| hub.hostname)
        .unwrap_or_else(|| site.clone());
    Err(ApiError::new(
        ErrorCode::SiteLocal,
        format!(
            "this transfer's data is kept on the edge hub {hostname} ({site}); \
             send or receive it through that hub"
        ),
    ))
}

/// A chunk of a site transfer, stored by its hub: the request has no body, only the length
/// and SHA-256 of what the hub stored. Recorded as any chunk is, so resume, completion and
/// verification work unchanged.
pub async fn record_chunk(
    state: &AppState,
    row: &TransferRow,
    via: Option<&str>,
    index: u64,
    declared: &[u8; 32],
    last: bool,
    headers: &http::HeaderMap,
) -> ApiResult<(http::StatusCode, Json<ChunkReceipt>)> {
    require_via_site(state, row, via).await?;
    let size = headers
        .get(STORED_SIZE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| {
            ApiError::validation(format!(
                "a site chunk needs {STORED_SIZE_HEADER}: the stored length"
            ))
        })?;
    if size > super::chunk_upload::max_sealed_len(row.chunk_size as u64) {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            "chunk is larger than the transfer's chunk size allows",
        ));
    }
    let chunk = NewChunk {
        idx: index as i64,
        size: size as i64,
        sha256: hex::encode(declared),
        last,
        stored_at_ms: state.clock.now_ms(),
        data: None,
    };
    let outcome = state
        .store
        .record_chunks(&row.id, std::slice::from_ref(&chunk))
        .await
        .map_err(ApiError::store_conflict(format!(
            "chunk {index} not recorded"
        )))?;
    let receipt = |status: &str| {
        Json(ChunkReceipt {
            index,
            status: status.into(),
        })
    };
    match outcome.first() {
        Some(ChunkOutcome::Stored) => Ok((http::StatusCode::CREATED, receipt("stored"))),
        Some(ChunkOutcome::AlreadyStored) => Ok((http::StatusCode::OK, receipt("already_stored"))),
        _ => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("chunk {index} was already stored with different content"),
        )),
    }
}

/// Tells the hub which chunk file to serve (the caller is authorized by now).
pub async fn serve_chunk(
    state: &AppState,
    row: &TransferRow,
    via: Option<&str>,
    index: u64,
) -> ApiResult<Response> {
    require_via_site(state, row, via).await?;
    let chunk = state
        .store
        .get_chunk(&row.id, index as i64)
        .await?
        .ok_or_else(|| ApiError::not_found("chunk"))?;
    Ok((
        [
            (SERVE_SHA256_HEADER, chunk.sha256),
            (STORED_SIZE_HEADER, chunk.size.to_string()),
        ],
        "",
    )
        .into_response())
}

/// What the hub checks its files against to answer a verify.
pub async fn verify_plan(
    state: &AppState,
    row: &TransferRow,
    via: Option<&str>,
) -> ApiResult<Response> {
    require_via_site(state, row, via).await?;
    let chunks = state.store.list_chunks(&row.id).await?;
    let plan = SiteVerifyPlan {
        transfer_id: row.id.clone(),
        chunk_count: row.chunk_count.map(|n| n as u64),
        chunks: chunks
            .into_iter()
            .map(|c| ChunkInfo {
                index: c.idx as u64,
                size: c.size as u64,
                sha256: c.sha256,
                last: c.last,
            })
            .collect(),
    };
    Ok(([(VERIFY_PLAN_HEADER, "1")], Json(plan)).into_response())
}

/// `POST /api/v1/hubs/{hub_id}/site-transfers/live` (deploy key; the middleware checked the
/// hub is the key's): which of the transfers a hub holds files for are still live.
pub async fn live(
    State(state): State<AppState>,
    crate::extract::ApiPath(hub_id): crate::extract::ApiPath<String>,
    ApiJson(body): ApiJson<SiteTransfersQuery>,
) -> ApiResult<Json<SiteTransfersLive>> {
    if body.transfer_ids.len() > MAX_LIVE_QUERY {
        return Err(ApiError::validation(format!(
            "ask about at most {MAX_LIVE_QUERY} transfers at a time"
        )));
    }
    let live = state
        .store
        .live_site_transfers(&hub_id, &body.transfer_ids, state.clock.now_ms())
        .await?;
    Ok(Json(SiteTransfersLive { live }))
}
