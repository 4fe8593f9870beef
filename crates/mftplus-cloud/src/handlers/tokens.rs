//! `mftctl auth token create|list|revoke`.

use super::{find_user, parse_expiry, token_to_api, validate_role};
use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::middleware::{ClientIp, Scope};
use crate::rbac::may_grant;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_types::api::{CreateTokenRequest, CreatedToken, RevokedCount, TokenInfo};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;

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
    let user_id = match (&query.user, scope) {
        (Some(reference), _) => {
            let user = find_user(&state, reference).await?;
            if scope == Scope::Own && user.id != caller.user_id {
                return Err(ApiError::forbidden("you can list only your own tokens"));
            }
            Some(user.id)
        }
        (None, Scope::Own) => Some(caller.user_id.clone()),
        (None, Scope::All) => None,
    };
    let rows = state
        .store
        .list_active_tokens(user_id.as_deref(), state.clock.now_ms())
        .await?;
    let mut emails: HashMap<String, String> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        if !emails.contains_key(&row.user_id) {
            emails.insert(
                row.user_id.clone(),
                super::email_of(&state, &row.user_id).await?,
            );
        }
        out.push(token_to_api(row, &emails[&row.user_id]));
    }
    Ok(Json(out))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<CreateTokenRequest>,
) -> ApiResult<(http::StatusCode, Json<CreatedToken>)> {
    let user = find_user(&state, &body.user).await?;
    let user_role = state.rbac.user_role(&user.email, &user.role);
    let role = body.role.unwrap_or_else(|| user_role.clone());
    validate_role(&state, &role)?;
    if !may_grant(&user_role, &role) {
        return Err(ApiError::forbidden(format!(
            "{} has role {user_role} and cannot hold a {role} token",
            user.email
        )));
    }
    if !may_grant(&caller.role, &role) {
        return Err(ApiError::forbidden(format!(
            "your role {} cannot issue a {role} token",
            caller.role
        )));
    }
    let ttl = match &body.expires {
        Some(text) => parse_expiry(text)?,
        None => state.config.config.auth.jwt.expiration,
    };
    if ttl > 365 * 86_400 {
        return Err(ApiError::new(
            mftplus_types::ErrorCode::InvalidDuration,
            "a token may live at most 365 days",
        ));
    }
    let family = uuid::Uuid::new_v4().simple().to_string();
    let (token, row) = state
        .issue_token(&user, &role, "access", &family, "admin", ttl)
        .await?;
    state
        .audit(
            AuditEvent::new("token_created")
                .actor(&caller.email)
                .target(&user.email)
                .ip(&ip)
                .details(json!({"token_id": row.jti, "role": role, "ttl_seconds": ttl})),
        )
        .await;
    let info = token_to_api(&row, &user.email);
    Ok((
        http::StatusCode::CREATED,
        Json(CreatedToken { token, info }),
    ))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath(token_id): ApiPath<String>,
) -> ApiResult<http::StatusCode> {
    let row = state.store.get_token(&token_id).await?;
    let row = row
        .filter(|row| scope == Scope::All || row.user_id == caller.user_id)
        .ok_or_else(|| ApiError::not_found("token"))?;
    state
        .store
        .revoke_token(&row.jti, state.clock.now_ms())
        .await?;
    state.cache.tokens.remove(&row.jti);
    state
        .audit(
            AuditEvent::new("token_revoked")
                .actor(&caller.email)
                .target(&row.jti)
                .ip(&ip),
        )
        .await;
    Ok(http::StatusCode::NO_CONTENT)
}

pub async fn revoke_for_user(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath(reference): ApiPath<String>,
) -> ApiResult<Json<RevokedCount>> {
    let user = find_user(&state, &reference).await?;
    if scope == Scope::Own && user.id != caller.user_id {
        return Err(ApiError::not_found("user"));
    }
    let revoked = state
        .store
        .revoke_user_tokens(&user.id, state.clock.now_ms())
        .await?;
    state.invalidate_user(&user.id);
    state
        .audit(
            AuditEvent::new("tokens_revoked_all")
                .actor(&caller.email)
                .target(&user.email)
                .ip(&ip)
                .details(json!({"revoked": revoked})),
        )
        .await;
    Ok(Json(RevokedCount { revoked }))
}
