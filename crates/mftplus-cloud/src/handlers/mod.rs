//! Request handlers, one module per resource, verb-named functions. Authorization already
//! happened in `crate::middleware`; handlers only apply the `:own` [`crate::middleware::Scope`].

pub mod apikeys;
pub mod audit;
pub mod auth;
pub mod certificates;
pub mod chunk_upload;
pub mod config;
pub mod fleet;
pub mod grants;
pub mod health;
pub mod hubs;
pub mod keys;
pub mod links;
pub mod passwords;
pub mod requests;
pub mod site;
pub mod tokens;
pub mod transfer_stream;
mod transfer_whole;
pub mod transfers;
pub mod users;

use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use mftplus_store::{ApiKeyRow, TokenRow, UserRow};
use mftplus_types::api::{ApiKey, TokenInfo, User, UserType};
use mftplus_types::ErrorCode;

pub fn user_to_api(state: &AppState, row: &UserRow) -> User {
    User {
        id: row.id.clone(),
        email: row.email.clone(),
        name: row.name.clone(),
        role: state.rbac.user_role(&row.email, &row.role),
        user_type: UserType::parse(&row.user_type).unwrap_or_default(),
        created_at: rfc3339(row.created_at_ms),
        updated_at: rfc3339(row.updated_at_ms),
        last_login_at: row.last_login_at_ms.map(rfc3339),
    }
}

pub fn api_key_to_api(state: &AppState, row: &ApiKeyRow, owner_email: &str) -> ApiKey {
    let now = state.clock.now_ms();
    let warning_ms = state.config.config.api_keys.warning_days as i64 * 86_400_000;
    let status = if row.revoked_at_ms.is_some() {
        "revoked"
    } else if row.expires_at_ms.is_some_and(|at| at <= now) {
        "expired"
    } else if row.expires_at_ms.is_some_and(|at| at - now <= warning_ms) {
        "expiring_soon"
    } else {
        "active"
    };
    ApiKey {
        id: row.id.clone(),
        name: row.name.clone(),
        prefix: row.prefix.clone(),
        role: row.role.clone(),
        owner_id: row.owner_id.clone(),
        owner_email: owner_email.to_string(),
        created_at: rfc3339(row.created_at_ms),
        expires_at: row.expires_at_ms.map(rfc3339),
        last_used_at: row.last_used_at_ms.map(rfc3339),
        revoked_at: row.revoked_at_ms.map(rfc3339),
        status: status.into(),
    }
}

pub fn token_to_api(row: &TokenRow, email: &str) -> TokenInfo {
    TokenInfo {
        token_id: row.jti.clone(),
        user_id: row.user_id.clone(),
        user_email: email.to_string(),
        kind: row.kind.clone(),
        role: row.role.clone(),
        created_via: row.created_via.clone(),
        issued_at: rfc3339(row.issued_at_ms),
        expires_at: rfc3339(row.expires_at_ms),
        revoked_at: row.revoked_at_ms.map(rfc3339),
    }
}

/// Finds a user by id, or by email when the reference contains `@`.
pub async fn find_user(state: &AppState, reference: &str) -> ApiResult<UserRow> {
    let found = if reference.contains('@') {
        state
            .store
            .get_user_by_email(&reference.to_ascii_lowercase())
            .await?
    } else {
        state.store.get_user(reference).await?
    };
    found.ok_or_else(|| ApiError::not_found("user"))
}

/// Email of a user id, for listings; `""` for an owner that no longer exists.
pub async fn email_of(state: &AppState, user_id: &str) -> ApiResult<String> {
    Ok(state
        .store
        .get_user(user_id)
        .await?
        .map(|u| u.email)
        .unwrap_or_default())
}

pub fn validate_email(email: &str) -> ApiResult<String> {
    let email = email.trim().to_ascii_lowercase();
    let bad = || {
        ApiError::new(
            ErrorCode::InvalidEmail,
            format!("{email:?} is not a valid email address"),
        )
    };
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if local.is_empty()
        || local.len() > 64
        || !domain.contains('.')
        || !labels_ok
        || local.contains('@')
    {
        return Err(bad());
    }
    Ok(email)
}

pub fn validate_name(name: &str, what: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::validation(format!(
            "{what} must be at most 200 printable characters"
        )));
    }
    Ok(name.to_string())
}

pub fn validate_role(state: &AppState, role: &str) -> ApiResult<()> {
    if state.rbac.role_exists(role) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidRole,
            format!(
                "unknown role {role:?}; roles are {}",
                state.rbac.role_names().join(", ")
            ),
        ))
    }
}

pub fn parse_expiry(text: &str) -> ApiResult<u64> {
    mftplus_types::duration::parse_duration_secs(text)
        .map_err(|err| ApiError::new(ErrorCode::InvalidDuration, err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            validate_email(" Admin@Example.com ").unwrap(),
            "admin@example.com"
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@x.com",
            "a@@x.com",
            "a b@x.com",
            "a@x..com",
            "a@-x.com",
        ] {
            assert!(validate_email(bad).is_err(), "{bad} accepted");
        }
    }
}
