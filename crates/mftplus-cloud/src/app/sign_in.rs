//! Password sign-in, shared by `POST /api/v1/auth/login` (tokens) and the dashboard's sign-in
//! page (a session): the same throttle, the same constant-time check and the same audit.

use crate::audit::AuditEvent;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use mftplus_store::UserRow;
use mftplus_types::ErrorCode;
use serde_json::json;

/// Why a password is being checked: named in the audit records, and only a sign-in counts as
/// the account's latest login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    SignIn,
    PasswordChange,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::SignIn => "sign_in",
            Purpose::PasswordChange => "password_change",
        }
    }
}

/// Checks `email`/`password` from `ip`. Throttled per (account, address), per address and per
/// account, never locked: an attacker's failures delay the attacker, not the account's owner
/// (decision 0007). Unknown accounts cost the same Argon2 time as known ones. Failures and
/// throttle refusals are audited here; the caller audits the success with what it issued.
pub async fn check_password(
    state: &AppState,
    email: &str,
    password: String,
    ip: &str,
    purpose: Purpose,
) -> ApiResult<UserRow> {
    let email = email.trim().to_ascii_lowercase();
    let now = state.clock.now_secs();
    let (account, address) = (format!("email:{email}"), format!("ip:{ip}"));
    if let Err(throttled) = state.login_throttle.check(&account, &address, now) {
        state
            .audit(
                AuditEvent::new("login_throttled")
                    .actor(&email)
                    .outcome("denied")
                    .ip(ip)
                    .details(json!({
                        "throttle": throttled.kind.as_str(),
                        "retry_after": throttled.retry_after,
                        "purpose": purpose.as_str(),
                    })),
            )
            .await;
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            "too many failed logins; try again later",
        )
        .with_retry_after(throttled.retry_after));
    }

    let user = state.store.get_user_by_email(&email).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let verified = tokio::task::spawn_blocking(move || {
        let phc = hash
            .as_deref()
            .unwrap_or_else(|| mftplus_crypto::password::dummy_hash());
        mftplus_crypto::password::verify_password(&password, phc) && hash.is_some()
    })
    .await
    .map_err(ApiError::internal)?;

    let Some(user) = user.filter(|_| verified) else {
        state
            .login_throttle
            .record_failure(&account, &address, state.clock.now_secs());
        state
            .audit(
                AuditEvent::new("login_failed")
                    .actor(&email)
                    .outcome("failure")
                    .ip(ip)
                    .details(json!({"purpose": purpose.as_str()})),
            )
            .await;
        return Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "invalid email or password",
        ));
    };
    state
        .login_throttle
        .record_success(&account, &address, state.clock.now_secs());
    if purpose == Purpose::SignIn {
        state
            .store
            .record_login(&user.id, state.clock.now_ms())
            .await?;
    }
    Ok(user)
}
