//! `mftctl users create|update|list|get|delete`: the flows are `crate::app::users`, shared
//! with the dashboard's users pages.

use super::user_to_api;
use crate::app::users;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::middleware::{ClientIp, Scope};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_types::api::{CreateUserRequest, CreatedUser, UpdateUserRequest, User};

pub async fn index(State(state): State<AppState>) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(users::list(&state).await?))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiPath(reference): ApiPath<String>,
) -> ApiResult<Json<User>> {
    let user = users::visible(&state, &caller, scope, &reference).await?;
    Ok(Json(user_to_api(&state, &user)))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> ApiResult<(http::StatusCode, Json<CreatedUser>)> {
    let created = users::create(&state, &caller, &ip, body).await?;
    Ok((http::StatusCode::CREATED, Json(created)))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(reference): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        users::update(&state, &caller, &ip, &reference, body).await?,
    ))
}

pub async fn destroy(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(reference): ApiPath<String>,
) -> ApiResult<http::StatusCode> {
    users::delete(&state, &caller, &ip, &reference).await?;
    Ok(http::StatusCode::NO_CONTENT)
}
