//! Passwords after the account exists (decision 0017): a person changes their own
//! (`mftctl passwd`), an administrator sets or generates someone's
//! (`mftctl users reset-password`). The first administrator is made by `mftplus cloud init`
//! (`Cloud::init_first_admin`), not here.
//!
//! A change proves knowledge of the current password, so it runs through the same login
//! throttle as a sign-in (a stolen session cannot be used to guess the password faster than
//! the login form would allow), and only a JWT session may do it: an API key is not a person.

use crate::audit::AuditEvent;
use crate::auth::{Caller, CallerKind};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::middleware::ClientIp;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_store::UserUpdate;
use mftplus_types::api::{
    ChangePasswordRequest, PasswordChanged, PasswordReset, ResetPasswordRequest,
};
use serde_json::json;
use std::collections::BTreeSet;

/// `POST /api/v1/auth/password`: the caller's own password. The current one must be right
/// (a wrong one counts as a failed sign-in), the new one must pass the policy. Every other
/// session of the user is revoked; the caller's own stays.
pub async fn change(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> ApiResult<Json<PasswordChanged>> {
    let CallerKind::Jwt { family, .. } = &caller.kind else {
        state
            .audit(
                AuditEvent::new("password_change_failed")
                    .actor(&caller.email)
                    .target(&caller.email)
                    .outcome("denied")
                    .ip(&ip)
                    .details(json!({"reason": "api_key"})),
            )
            .await;
        return Err(ApiError::forbidden(
            "an API key cannot change a password; sign in with the password (`mftctl login`) \
             and run `mftctl passwd`",
        ));
    };
    // The current password is checked as a sign-in's is: the same throttle, the same audit.
    let user = crate::app::sign_in::check_password(
        &state,
        &caller.email,
        body.current_password,
        &ip,
        crate::app::sign_in::Purpose::PasswordChange,
    )
    .await?;
    if user.id != caller.user_id {
        return Err(ApiError::unauthenticated(
            "the token's user no longer exists",
        ));
    }
    let email = user.email.clone();
    let new_hash = crate::app::users::hash_password(body.new_password).await?;
    let now = state.clock.now_ms();
    state
        .store
        .update_user(
            &user.id,
            &UserUpdate {
                name: None,
                role: None,
                password_hash: Some(new_hash),
                updated_at_ms: now,
            },
        )
        .await?;
    // Listed after the update, so a session opened with the old password before it is seen
    // here; the caller's own login family is kept.
    let others: BTreeSet<String> = state
        .store
        .list_active_tokens(Some(&user.id), now)
        .await?
        .into_iter()
        .map(|t| t.family_id)
        .filter(|f| f != family)
        .collect();
    let mut revoked = 0;
    for other in &others {
        revoked += state.store.revoke_token_family(other, now).await?;
    }
    state.invalidate_user(&user.id);
    state
        .audit(
            AuditEvent::new("password_changed")
                .actor(&email)
                .target(&user.email)
                .ip(&ip)
                .details(json!({"revoked_tokens": revoked, "sessions_ended": others.len()})),
        )
        .await;
    Ok(Json(PasswordChanged {
        revoked_tokens: revoked,
    }))
}

/// `POST /api/v1/users/{user}/password`: the flow is `crate::app::users::reset_password`,
/// shared with the dashboard's user page.
pub async fn reset(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(reference): ApiPath<String>,
    ApiJson(body): ApiJson<ResetPasswordRequest>,
) -> ApiResult<Json<PasswordReset>> {
    let reset = crate::app::users::reset_password(&state, &caller, &ip, &reference, body).await?;
    Ok(Json(reset))
}
