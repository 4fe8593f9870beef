//! Grants (decision 0022), over `app::grants`: what waits for the caller's grant, and the
//! sender's grant itself. Only wire translation here.

use super::transfers::to_api;
use crate::app::grants as app;
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::middleware::ClientIp;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use base64::Engine;
use mftplus_types::transfers::{AwaitingRecipient, GrantRequest, PendingGrant, Transfer};

/// `GET /api/v1/transfers/grants`: the caller's own open transfers with recipients waiting for
/// a grant, oldest first, at most `app::MAX_PENDING`; a recipient's key is there once they
/// have registered one.
pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<PendingGrant>>> {
    let pending = app::pending(&state, &caller).await?;
    Ok(Json(
        pending
            .iter()
            .map(|p| PendingGrant {
                transfer_id: p.row.id.clone(),
                status: p.row.status.clone(),
                expires_at: rfc3339(p.row.expires_at_ms),
                header: base64::engine::general_purpose::STANDARD.encode(&p.row.header),
                recipients: app::waiting(&p.row)
                    .map(|r| AwaitingRecipient {
                        id: r.id.clone(),
                        display: r.display.clone(),
                        public_key: p.keys.get(&r.id).map(|k| k.public_key.clone()),
                    })
                    .collect(),
            })
            .collect(),
    ))
}

/// `POST /api/v1/transfers/{id}/grants`: the sender's new header with the named recipients'
/// stanzas appended.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<GrantRequest>,
) -> ApiResult<Json<Transfer>> {
    let header = base64::engine::general_purpose::STANDARD
        .decode(body.header.trim())
        .map_err(|_| ApiError::validation("header must be base64"))?;
    let input = app::GrantInput {
        recipients: body.recipients,
        header,
        base_header_sha256: body.base_header_sha256,
    };
    let row = app::grant(&state, &caller, &ip, &id, &input).await?;
    Ok(Json(to_api(&state, &row).await?))
}
