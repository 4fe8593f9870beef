//! Hosts and guests as operators see them, and the desired state as both operators and the
//! host's own agent read it.

use super::{desired_of, find_host, guest_to_api, host_to_api};
use crate::error::ApiResult;
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_types::fleet::{DesiredStateResponse, GuestInfo, HostInfo};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostsQuery {
    pub customer: Option<String>,
}

pub async fn index(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HostsQuery>,
) -> ApiResult<Json<Vec<HostInfo>>> {
    let rows = state.store.list_hosts(query.customer.as_deref()).await?;
    Ok(Json(
        rows.iter().map(|row| host_to_api(&state, row)).collect(),
    ))
}

pub async fn show(
    State(state): State<AppState>,
    ApiPath(host_id): ApiPath<String>,
) -> ApiResult<Json<HostInfo>> {
    Ok(Json(host_to_api(
        &state,
        &find_host(&state, &host_id).await?,
    )))
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestsQuery {
    pub host: Option<String>,
    pub customer: Option<String>,
}

pub async fn guests(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<GuestsQuery>,
) -> ApiResult<Json<Vec<GuestInfo>>> {
    let rows = state
        .store
        .list_guests(query.host.as_deref(), query.customer.as_deref())
        .await?;
    Ok(Json(rows.iter().map(guest_to_api).collect()))
}
