//! `mftctl apikeys create|list|get|delete|rotate`: the flows are `crate::app::api_keys`,
//! shared with the dashboard's keys page.

use crate::app::api_keys;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::middleware::{ClientIp, Scope};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_types::api::{ApiKey, CreateApiKeyRequest, CreatedApiKey, ResolveApiKeyRequest};
use serde::Deserialize;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    include_revoked: bool,
}

pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<ApiKey>>> {
    let keys = api_keys::list(&state, &caller, scope, query.include_revoked).await?;
    Ok(Json(keys))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<CreateApiKeyRequest>,
) -> ApiResult<(http::StatusCode, Json<CreatedApiKey>)> {
    let created = api_keys::create(&state, &caller, &ip, body).await?;
    Ok((http::StatusCode::CREATED, Json(created)))
}

pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiJson(body): ApiJson<ResolveApiKeyRequest>,
) -> ApiResult<Json<ApiKey>> {
    Ok(Json(
        api_keys::resolve(&state, &caller, scope, &body.key).await?,
    ))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ApiKey>> {
    Ok(Json(api_keys::show(&state, &caller, scope, &id).await?))
}

pub async fn destroy(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<http::StatusCode> {
    api_keys::revoke(&state, &caller, scope, &ip, &id).await?;
    Ok(http::StatusCode::NO_CONTENT)
}

pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<CreatedApiKey>> {
    Ok(Json(
        api_keys::rotate(&state, &caller, scope, &ip, &id).await?,
    ))
}
