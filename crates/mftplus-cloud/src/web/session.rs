//! Dashboard sessions: a principal like API keys and JWTs (the same `Caller`, RBAC, route
//! table and audit), carried by a cookie instead of a header.
//!
//! - The cookie holds a random secret; the server keeps only its SHA-256 as the row's id in
//!   `auth_tokens` (kind `session`), so a database leak yields no usable session, and the
//!   session shows in the user's token list and ends with "revoke all my tokens" and with a
//!   password change.
//! - `HttpOnly`, `SameSite=Strict`, `Path=/`; under TLS also `Secure` with the `__Host-` name.
//! - Idle expiry (`web.session_idle_minutes`, counted from `used_at_ms`, written at most once
//!   a minute) and absolute expiry (`web.session_absolute_hours`, the row's `expires_at_ms`).
//! - CSRF: every state-changing page request carries `csrf`, derived from the secret (so it
//!   needs no storage and differs per session), compared in constant time; and the guard
//!   refuses cross-site `Origin`/`Sec-Fetch-Site` on page writes.
//! - The cookie is read only on page routes: the API never accepts it, so no API request can
//!   be forged by another site.

use crate::auth::{Caller, CallerKind};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use mftplus_store::{TokenRow, UserRow};
use mftplus_types::ErrorCode;

/// The cookie's name on plain HTTP (development) and under TLS.
pub const COOKIE: &str = "mftplus_session";
pub const SECURE_COOKIE: &str = "__Host-mftplus_session";
/// The row kind in `auth_tokens`.
pub const KIND: &str = "session";
/// How often a session's last use is written.
const TOUCH_EVERY_MS: i64 = 60_000;

/// Whether the cookie goes out `Secure` (the server speaks TLS, or a proxy in front does).
pub(crate) fn secure(state: &AppState) -> bool {
    let config = &state.config.config;
    config.tls.enabled || config.server.tls_terminated_by_proxy
}

fn cookie_name(state: &AppState) -> &'static str {
    if secure(state) {
        SECURE_COOKIE
    } else {
        COOKIE
    }
}

/// The row id of a secret: its SHA-256, never the secret itself.
fn row_id(secret: &str) -> String {
    format!("sess_{}", mftplus_crypto::sha256_hex(secret.as_bytes()))
}

/// The CSRF token of a session: derived from the secret, so another site can neither read
/// nor compute it.
fn csrf_of(secret: &str) -> String {
    let digest = mftplus_crypto::sha256_hex(format!("mftplus-csrf\0{secret}").as_bytes());
    digest[..32].to_string()
}

/// The session secret a request carries, if any.
fn presented<'a>(state: &AppState, headers: &'a http::HeaderMap) -> Option<&'a str> {
    let name = cookie_name(state);
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// Starts a session for `user` (already signed in); returns the `Set-Cookie` value.
pub async fn start(state: &AppState, user: &UserRow) -> ApiResult<String> {
    let secret = mftplus_crypto::random_token(32);
    let now_ms = state.clock.now_ms();
    let web = &state.config.config.web;
    let lifetime_ms = web.session_absolute_hours as i64 * 3_600_000;
    let id = row_id(&secret);
    state
        .store
        .insert_token(&TokenRow {
            jti: id.clone(),
            user_id: user.id.clone(),
            kind: KIND.into(),
            role: user.role.clone(),
            family_id: id,
            created_via: "dashboard".into(),
            issued_at_ms: now_ms,
            expires_at_ms: now_ms + lifetime_ms,
            revoked_at_ms: None,
            used_at_ms: Some(now_ms),
        })
        .await?;
    Ok(cookie(state, &secret, lifetime_ms / 1000))
}

/// A `Set-Cookie` value that removes the session cookie.
pub fn cleared(state: &AppState) -> String {
    cookie(state, "", 0)
}

fn cookie(state: &AppState, value: &str, max_age_secs: i64) -> String {
    let secure = if secure(state) { "; Secure" } else { "" };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}",
        cookie_name(state)
    )
}

/// The caller behind the request's session cookie: `Ok(None)` without a cookie, an error for
/// an unknown, revoked or expired one.
pub async fn authenticate(
    state: &AppState,
    headers: &http::HeaderMap,
) -> Result<Option<Caller>, ApiError> {
    let Some(secret) = presented(state, headers) else {
        return Ok(None);
    };
    let ended = || {
        ApiError::new(
            ErrorCode::TokenExpired,
            "the session has ended; sign in again",
        )
    };
    let id = row_id(secret);
    let Some(row) = state.store.get_token(&id).await? else {
        return Err(ended());
    };
    let now_ms = state.clock.now_ms();
    if !live_row(state, &row, now_ms) {
        return Err(ended());
    }
    let last_use = row.used_at_ms.unwrap_or(row.issued_at_ms);
    if now_ms - last_use >= TOUCH_EVERY_MS {
        state.store.touch_token(&id, now_ms).await?;
    }
    let user = state
        .store
        .get_user(&row.user_id)
        .await?
        .ok_or_else(ended)?;
    Ok(Some(Caller {
        role: crate::rbac::effective_role(
            &row.role,
            &state.rbac.user_role(&user.email, &user.role),
        ),
        user_id: user.id,
        email: user.email,
        kind: CallerKind::Session {
            jti: id,
            csrf: csrf_of(secret),
        },
    }))
}

/// Whether `caller`'s session still stands as it did when it was checked: not ended, not
/// expired (absolute or idle), the user still there with the same role. Callers of other
/// kinds (API keys, JWTs) never hold a page's stream, so they stand. Nothing is touched.
pub async fn still_stands(state: &AppState, caller: &Caller) -> bool {
    let CallerKind::Session { jti, .. } = &caller.kind else {
        return true;
    };
    let (Ok(Some(row)), Ok(Some(user))) = (
        state.store.get_token(jti).await,
        state.store.get_user(&caller.user_id).await,
    ) else {
        return false;
    };
    let role =
        crate::rbac::effective_role(&row.role, &state.rbac.user_role(&user.email, &user.role));
    live_row(state, &row, state.clock.now_ms()) && role == caller.role
}

/// A session row that still stands at `now_ms`: a session, not revoked, within its absolute
/// and its idle expiry. Sign-in checks and live streams' re-checks share it.
fn live_row(state: &AppState, row: &mftplus_store::TokenRow, now_ms: i64) -> bool {
    let idle_ms = state.config.config.web.session_idle_minutes as i64 * 60_000;
    let last_use = row.used_at_ms.unwrap_or(row.issued_at_ms);
    row.kind == KIND
        && row.revoked_at_ms.is_none()
        && row.expires_at_ms > now_ms
        && last_use + idle_ms > now_ms
}

/// Ends the caller's session (sign-out).
pub async fn end(state: &AppState, caller: &Caller) -> ApiResult<()> {
    if let CallerKind::Session { jti, .. } = &caller.kind {
        // The session is its own family (`start`): this also ends the upload tokens its page
        // was given (`pages::upload`), which this process may hold in its token cache.
        state
            .store
            .revoke_token_family(jti, state.clock.now_ms())
            .await?;
        state.cache.tokens.clear();
    }
    Ok(())
}

/// The CSRF token forms of this caller must carry.
pub fn csrf(caller: &Caller) -> &str {
    match &caller.kind {
        CallerKind::Session { csrf, .. } => csrf,
        _ => "",
    }
}

/// Refuses a state-changing page request whose `csrf` is not the session's.
pub fn check_csrf(caller: &Caller, presented: &str) -> ApiResult<()> {
    let expected = csrf(caller);
    if !expected.is_empty()
        && mftplus_crypto::constant_time_eq(expected.as_bytes(), presented.as_bytes())
    {
        return Ok(());
    }
    Err(ApiError::forbidden(
        "this form is stale or came from another site (CSRF token missing or wrong); reload \
         the page and try again",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_and_csrf_derive_from_the_secret_and_differ() {
        let (a, b) = ("secret-a", "secret-b");
        assert_ne!(row_id(a), row_id(b));
        assert_ne!(csrf_of(a), csrf_of(b));
        assert_eq!(csrf_of(a), csrf_of(a));
        assert!(!row_id(a).contains(a) && !csrf_of(a).contains(a));
    }
}
