//! `mftctl auth token create|list|revoke`: the flows are `crate::app::tokens`, shared with
//! the dashboard's sessions and user pages.

use crate::app::tokens;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::middleware::{ClientIp, Scope};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_types::api::{CreateTokenRequest, CreatedToken, RevokedCount, TokenInfo};
use serde::Deserialize;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    user: Option<String>,
}

pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<TokenInfo>>> {
    let listed = tokens::list(&state, &caller, scope, query.user.as_deref()).await?;
    Ok(Json(listed))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<CreateTokenRequest>,
) -> ApiResult<(http::StatusCode, Json<CreatedToken>)> {
    let created = tokens::create(&state, &caller, &ip, body).await?;
    Ok((http::StatusCode::CREATED, Json(created)))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath(token_id): ApiPath<String>,
) -> ApiResult<http::StatusCode> {
    tokens::revoke(&state, &caller, scope, &ip, &token_id).await?;
    Ok(http::StatusCode::NO_CONTENT)
}

pub async fn revoke_for_user(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath(reference): ApiPath<String>,
) -> ApiResult<Json<RevokedCount>> {
    let revoked = tokens::revoke_for_user(&state, &caller, scope, &ip, &reference).await?;
    Ok(Json(revoked))
}
