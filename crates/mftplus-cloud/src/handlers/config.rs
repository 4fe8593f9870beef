//! `mftctl config get KEY`: the effective server value, secrets never shown.

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_types::api::ConfigValue;

pub async fn show(
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<ConfigValue>> {
    let (value, secret, display, source) = state
        .config
        .lookup(&key)
        .ok_or_else(|| ApiError::not_found(&format!("config key {key:?}")))?;
    Ok(Json(ConfigValue {
        key,
        value,
        secret,
        display,
        source,
    }))
}
