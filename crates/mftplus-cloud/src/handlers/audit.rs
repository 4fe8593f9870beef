//! Reading, exporting and checking the audit log over the API; the flows are `app::audit`'s,
//! shared with the dashboard. The server's own check (`POST /api/v1/audit/verify`) is a
//! convenience: the independent one is `mftctl audit verify`, on the client, so a compromised
//! server cannot vouch for its own log.

use crate::app::audit::{self as flow, ExportFormat};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::middleware::ClientIp;
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::Json;
use mftplus_types::api::{AuditPage, AuditVerification};
use serde::Deserialize;

pub use crate::app::audit::to_api as audit_to_api;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    #[serde(default)]
    after_seq: i64,
    limit: Option<u32>,
}

pub async fn index(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<AuditPage>> {
    let page = flow::page(&state, query.after_seq, query.limit.unwrap_or(100)).await?;
    Ok(Json(page))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    format: Option<String>,
}

pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let format = ExportFormat::parse(query.format.as_deref())?;
    flow::export(&state, &caller, &ip, format).await
}

pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
) -> ApiResult<Json<AuditVerification>> {
    Ok(Json(flow::verify(&state, &caller, &ip).await?))
}
