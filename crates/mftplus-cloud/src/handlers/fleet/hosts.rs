//! Hosts and guests as operators see them, and the desired state as both operators and the
//! host's own agent read it.

use super::{desired_of, find_host};
use crate::error::ApiResult;
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_types::fleet::{DesiredStateResponse, GuestInfo, HostInfo};
use serde::Deserialize;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostsQuery {
    pub customer: Option<String>,
}

pub async fn index(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HostsQuery>,
) -> ApiResult<Json<Vec<HostInfo>>> {
    Ok(Json(
        crate::app::fleet::hosts(&state, query.customer.as_deref()).await?,
    ))
}

pub async fn show(
    State(state): State<AppState>,
    ApiPath(host_id): ApiPath<String>,
) -> ApiResult<Json<HostInfo>> {
    Ok(Json(crate::app::fleet::host(&state, &host_id).await?))
}

/// The agent fetches this only when the envelope's generation passed its own.
pub async fn desired_state(
    State(state): State<AppState>,
    ApiPath(host_id): ApiPath<String>,
) -> ApiResult<Json<DesiredStateResponse>> {
    let host = find_host(&state, &host_id).await?;
    Ok(Json(DesiredStateResponse {
        generation: host.desired_generation as u64,
        desired_state: desired_of(&host)?,
    }))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestsQuery {
    pub host: Option<String>,
    pub customer: Option<String>,
}

pub async fn guests(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<GuestsQuery>,
) -> ApiResult<Json<Vec<GuestInfo>>> {
    Ok(Json(
        crate::app::fleet::guests(&state, query.host.as_deref(), query.customer.as_deref()).await?,
    ))
}
