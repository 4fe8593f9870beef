//! Password login, refresh-token exchange (with reuse detection) and logout.

use crate::audit::AuditEvent;
use crate::auth::jwt::JwtError;
use crate::auth::{Caller, CallerKind};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::middleware::ClientIp;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_store::UserRow;
use mftplus_types::api::{LoginRequest, RefreshRequest, TokenPair};
use mftplus_types::ErrorCode;
use serde_json::json;

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Json<TokenPair>> {
    let user = crate::app::sign_in::check_password(
        &state,
        &body.email,
        body.password,
        &ip,
        crate::app::sign_in::Purpose::SignIn,
    )
    .await?;
    let family = uuid::Uuid::new_v4().simple().to_string();
    let pair = issue_pair(&state, &user, &family, "login").await?;
    state
        .audit(
            AuditEvent::new("login_succeeded")
                .actor(&user.email)
                .target(&user.id)
                .ip(&ip),
        )
        .await;
    Ok(Json(pair))
}

pub async fn refresh(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Json<TokenPair>> {
    let claims = state
        .jwt
        .current()
        .verify(&body.refresh_token, state.clock.now_secs())
        .map_err(|err| match err {
            JwtError::Expired => ApiError::new(
                ErrorCode::TokenExpired,
                "refresh token has expired; log in again",
            ),
            other => ApiError::unauthenticated(other.to_string()),
        })?;
    if claims.typ != "refresh" {
        return Err(ApiError::unauthenticated("not a refresh token"));
    }
    let record = state
        .store
        .get_token(&claims.jti)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::TokenRevoked, "refresh token is not known"))?;
    if record.revoked_at_ms.is_some() {
        return Err(ApiError::new(
            ErrorCode::TokenRevoked,
            "refresh token has been revoked",
        ));
    }
    let now_ms = state.clock.now_ms();
    if !state.store.mark_refresh_used(&claims.jti, now_ms).await? {
        // A refresh token is single-use: a second use means it was copied. Everything issued
        // from the same login is revoked, the thief's copies and the owner's alike.
        let revoked = state
            .store
            .revoke_token_family(&record.family_id, now_ms)
            .await?;
        state.cache.tokens.clear();
        state
            .audit(
                AuditEvent::new("refresh_token_reused")
                    .target(&record.user_id)
                    .outcome("denied")
                    .ip(&ip)
                    .details(json!({"family": record.family_id, "revoked": revoked})),
            )
            .await;
        return Err(ApiError::new(
            ErrorCode::TokenReused,
            "refresh token was already used; this login has been revoked",
        ));
    }
    let user = state
        .store
        .get_user(&claims.sub)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("the token's user no longer exists"))?;
    let pair = issue_pair(&state, &user, &record.family_id, "refresh").await?;
    state
        .audit(
            AuditEvent::new("token_refreshed")
                .actor(&user.email)
                .target(&claims.jti)
                .ip(&ip),
        )
        .await;
    Ok(Json(pair))
}

pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
) -> ApiResult<http::StatusCode> {
    let CallerKind::Jwt { family, .. } = &caller.kind else {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "logout ends a login session; to retire an API key use `mftctl apikeys delete`",
        ));
    };
    let revoked = state
        .store
        .revoke_token_family(family, state.clock.now_ms())
        .await?;
    state.cache.tokens.clear();
    state
        .audit(
            AuditEvent::new("logout")
                .actor(&caller.email)
                .ip(&ip)
                .details(json!({"revoked": revoked})),
        )
        .await;
    Ok(http::StatusCode::NO_CONTENT)
}

async fn issue_pair(
    state: &AppState,
    user: &UserRow,
    family: &str,
    via: &str,
) -> ApiResult<TokenPair> {
    let jwt = &state.config.config.auth.jwt;
    let role = state.rbac.user_role(&user.email, &user.role);
    let (access, _) = state
        .issue_token(user, &role, "access", family, via, jwt.expiration)
        .await?;
    let (refresh, _) = state
        .issue_token(user, &role, "refresh", family, via, jwt.refresh_expiration)
        .await?;
    Ok(TokenPair {
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer".into(),
        expires_in: jwt.expiration,
        refresh_expires_in: jwt.refresh_expiration,
    })
}
