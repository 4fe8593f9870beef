//! Operator edits of a host's desired state over the API; the flow (diff, publish, ops
//! awaiting a signature, audit) is `app::desired`, shared with the dashboard.

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::middleware::ClientIp;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_types::fleet::{DesiredDiff, PutDesiredState, PutDesiredStateResponse};

pub use crate::app::desired::guest_specs;

pub async fn diff(
    State(state): State<AppState>,
    ApiPath(host_id): ApiPath<String>,
    ApiJson(body): ApiJson<PutDesiredState>,
) -> ApiResult<Json<DesiredDiff>> {
    Ok(Json(
        crate::app::desired::diff(&state, &host_id, &body.desired_state).await?,
    ))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(host_id): ApiPath<String>,
    ApiJson(body): ApiJson<PutDesiredState>,
) -> ApiResult<Json<PutDesiredStateResponse>> {
    Ok(Json(
        crate::app::desired::update(&state, &caller.email, &ip, &host_id, &body).await?,
    ))
}
