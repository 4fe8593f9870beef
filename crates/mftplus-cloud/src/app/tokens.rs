//! Tokens and sign-ins (seed 001: `mftctl auth token create|list|revoke`, "revoke all tokens
//! for a user"), for the API (`/api/v1/auth/tokens…`, `/api/v1/users/{user}/tokens`) and the
//! dashboard's sessions and user pages alike.
//!
//! A person's *sign-ins* are what they can end from the sessions page: a dashboard session, a
//! `mftctl login` (its refresh token, with the access tokens of the same login) or a token an
//! administrator issued. Ending one revokes its whole family, so nothing issued from that
//! sign-in keeps working.

use crate::audit::AuditEvent;
use crate::auth::{Caller, CallerKind};
use crate::error::{ApiError, ApiResult};
use crate::handlers::{find_user, parse_expiry, token_to_api, validate_role};
use crate::middleware::Scope;
use crate::rbac::may_grant;
use crate::state::AppState;
use mftplus_store::{TimeCursor, TokenRow};
use mftplus_types::api::{CreateTokenRequest, CreatedToken, RevokedCount, TokenInfo};
use serde_json::json;
use std::collections::HashMap;

/// The most sign-ins one page may ask for.
pub const MAX_PAGE: u32 = 200;

/// Active tokens: of the user `user` (an id or email), else of everyone in scope (the API's
/// listing). Owners' emails come in one store query.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    user: Option<&str>,
) -> ApiResult<Vec<TokenInfo>> {
    let user_id = match (user, scope) {
        (Some(reference), _) => {
            let user = find_user(state, reference).await?;
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
    let mut ids: Vec<String> = rows.iter().map(|row| row.user_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let emails: HashMap<String, String> = state
        .store
        .get_users(&ids)
        .await?
        .into_iter()
        .map(|user| (user.id, user.email))
        .collect();
    Ok(rows
        .iter()
        .map(|row| token_to_api(row, emails.get(&row.user_id).map_or("", String::as_str)))
        .collect())
}

/// A token for the user `body.user`, with at most that user's role and the caller's.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    body: CreateTokenRequest,
) -> ApiResult<CreatedToken> {
    let user = find_user(state, &body.user).await?;
    let user_role = state.rbac.user_role(&user.email, &user.role);
    let role = body.role.unwrap_or_else(|| user_role.clone());
    validate_role(state, &role)?;
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
                .ip(ip)
                .details(json!({"token_id": row.jti, "role": role, "ttl_seconds": ttl})),
        )
        .await;
    Ok(CreatedToken {
        token,
        info: token_to_api(&row, &user.email),
    })
}

/// Revokes the one token `token_id`, if the caller may see it (else "not found").
pub async fn revoke(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    ip: &str,
    token_id: &str,
) -> ApiResult<()> {
    let row = state
        .store
        .get_token(token_id)
        .await?
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
                .ip(ip),
        )
        .await;
    Ok(())
}

/// Revokes every token and session of the user `reference` (an id or email).
pub async fn revoke_for_user(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    ip: &str,
    reference: &str,
) -> ApiResult<RevokedCount> {
    let user = find_user(state, reference).await?;
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
                .ip(ip)
                .details(json!({"revoked": revoked})),
        )
        .await;
    Ok(RevokedCount { revoked })
}

/// One page of the caller's live sign-ins, newest first, and where the next one starts.
#[derive(Debug, Clone)]
pub struct SignInPage {
    pub sign_ins: Vec<TokenRow>,
    pub next: Option<TimeCursor>,
}

/// At most `limit` of the caller's own sign-ins older than `before`, in one store query.
pub async fn sign_ins(
    state: &AppState,
    caller: &Caller,
    before: Option<&TimeCursor>,
    limit: u32,
) -> ApiResult<SignInPage> {
    let limit = limit.clamp(1, MAX_PAGE);
    let now_ms = state.clock.now_ms();
    let mut rows = state
        .store
        .list_sign_ins(&caller.user_id, now_ms, before, limit + 1)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = rows.last().filter(|_| more).map(|row| TimeCursor {
        at_ms: row.issued_at_ms,
        id: row.jti.clone(),
    });
    Ok(SignInPage {
        sign_ins: rows,
        next,
    })
}

/// The family of the credential the caller is using now, if it is a session or a login.
pub fn current_family(caller: &Caller) -> Option<&str> {
    match &caller.kind {
        CallerKind::Session { jti, .. } => Some(jti),
        CallerKind::Jwt { family, .. } => Some(family),
        CallerKind::ApiKey { .. } => None,
    }
}

/// Ends one of the caller's own sign-ins (its whole token family); someone else's is "not
/// found". Answers whether it was the sign-in the caller is using.
pub async fn end_sign_in(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    token_id: &str,
) -> ApiResult<bool> {
    let row = state
        .store
        .get_token(token_id)
        .await?
        .filter(|row| row.user_id == caller.user_id)
        .ok_or_else(|| ApiError::not_found("session"))?;
    let revoked = state
        .store
        .revoke_token_family(&row.family_id, state.clock.now_ms())
        .await?;
    // Access tokens of the family may be cached by this process.
    state.cache.tokens.clear();
    state
        .audit(
            AuditEvent::new("token_revoked")
                .actor(&caller.email)
                .target(&row.jti)
                .ip(ip)
                .details(json!({"kind": row.kind, "family": true, "revoked": revoked})),
        )
        .await;
    Ok(current_family(caller) == Some(row.family_id.as_str()))
}
