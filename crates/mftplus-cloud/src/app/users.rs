//! People's accounts (seed 001: `mftctl users create|update|list|get|delete` and
//! `users reset-password`), for the API (`/api/v1/users…`) and the dashboard's users pages
//! alike: the same validation, the same "no one grants above their own role" rule, the same
//! audit records. A generated password is in the answer only, once.

use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::handlers::{find_user, user_to_api, validate_email, validate_name, validate_role};
use crate::middleware::Scope;
use crate::rbac::may_grant;
use crate::state::AppState;
use mftplus_store::{NewUser, UserRow, UserUpdate};
use mftplus_types::api::{
    CreateUserRequest, CreatedUser, PasswordReset, ResetPasswordRequest, UpdateUserRequest, User,
    UserType,
};
use mftplus_types::ErrorCode;
use serde_json::json;

/// The most users one page may ask for.
pub const MAX_PAGE: u32 = 200;

/// One page of users by email, and the cursor of the next one.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<User>,
    /// The email to list after for the next page; `None` on the last page.
    pub next_after: Option<String>,
}

/// Every user, ordered by email (the API's listing).
pub async fn list(state: &AppState) -> ApiResult<Vec<User>> {
    let users = state.store.list_users().await?;
    Ok(users.iter().map(|u| user_to_api(state, u)).collect())
}

/// At most `limit` users after the email `after`, in one store query.
pub async fn page(state: &AppState, after: Option<&str>, limit: u32) -> ApiResult<UserPage> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut rows = state.store.list_users_page(after, limit + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_after = more.then(|| rows.last().map(|u| u.email.clone())).flatten();
    Ok(UserPage {
        users: rows.iter().map(|u| user_to_api(state, u)).collect(),
        next_after,
    })
}

/// The account `reference` (an id, or an email) as the caller may see it: with `Scope::Own`
/// only their own, and anyone else's is "not found" rather than "forbidden".
pub async fn visible(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    reference: &str,
) -> ApiResult<UserRow> {
    let user = find_user(state, reference).await?;
    if scope == Scope::Own && user.id != caller.user_id {
        return Err(ApiError::not_found("user"));
    }
    Ok(user)
}

/// The password policy, then Argon2id off the async threads: every password a person sets
/// (created, changed, reset) goes through here.
pub async fn hash_password(password: String) -> ApiResult<String> {
    mftplus_crypto::password::check_password_policy(&password)
        .map_err(|msg| ApiError::new(ErrorCode::WeakPassword, msg))?;
    tokio::task::spawn_blocking(move || mftplus_crypto::password::hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

fn no_password_for_services() -> ApiError {
    ApiError::validation("service accounts log in with API keys, not passwords")
}

/// A new account. A person without a given password gets a generated one, answered once; a
/// service account has none (it signs in with API keys).
pub async fn create(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    body: CreateUserRequest,
) -> ApiResult<CreatedUser> {
    let email = validate_email(&body.email)?;
    let name = validate_name(&body.name, "name")?;
    let role = body.role.unwrap_or_else(|| state.rbac.default_role.clone());
    validate_role(state, &role)?;
    if !may_grant(&caller.role, &role) {
        return Err(ApiError::forbidden(format!(
            "your role {} cannot create a {role} user",
            caller.role
        )));
    }
    let user_type = body.user_type.unwrap_or_default();
    let (password, initial_password) = match (user_type, body.password) {
        (UserType::Service, Some(_)) => return Err(no_password_for_services()),
        (UserType::Service, None) => (None, None),
        (UserType::User, Some(password)) => (Some(password), None),
        (UserType::User, None) => {
            let generated = mftplus_crypto::secrets::random_base62(20);
            (Some(generated.clone()), Some(generated))
        }
    };
    let password_hash = match password {
        Some(password) => Some(hash_password(password).await?),
        None => None,
    };
    let row = state
        .store
        .create_user(&NewUser {
            id: uuid::Uuid::now_v7().to_string(),
            email,
            name,
            role,
            user_type: user_type.as_str().into(),
            password_hash,
            created_at_ms: state.clock.now_ms(),
        })
        .await?;
    state
        .audit(
            AuditEvent::new("user_created")
                .actor(&caller.email)
                .target(&row.email)
                .ip(ip)
                .details(json!({"role": row.role, "type": row.user_type})),
        )
        .await;
    Ok(CreatedUser {
        user: user_to_api(state, &row),
        initial_password,
    })
}

/// Changes name, role and/or password. A new password ends every session of the account.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    reference: &str,
    body: UpdateUserRequest,
) -> ApiResult<User> {
    let user = find_user(state, reference).await?;
    if body.name.is_none() && body.role.is_none() && body.password.is_none() {
        return Err(ApiError::validation(
            "nothing to update: give name, role or password",
        ));
    }
    let name = body
        .name
        .as_deref()
        .map(|n| validate_name(n, "name"))
        .transpose()?;
    if let Some(role) = &body.role {
        validate_role(state, role)?;
        if !may_grant(&caller.role, role) || !may_grant(&caller.role, &user.role) {
            return Err(ApiError::forbidden(format!(
                "your role {} cannot assign role {role}",
                caller.role
            )));
        }
    }
    if body.password.is_some() && user.user_type == "service" {
        return Err(no_password_for_services());
    }
    let password_hash = match body.password {
        Some(password) => Some(hash_password(password).await?),
        None => None,
    };
    let now = state.clock.now_ms();
    let changed_password = password_hash.is_some();
    let update = UserUpdate {
        name,
        role: body.role.clone(),
        password_hash,
        updated_at_ms: now,
    };
    let updated = state.store.update_user(&user.id, &update).await?;
    if changed_password {
        // A new password ends every session opened with the old one.
        state.store.revoke_user_tokens(&user.id, now).await?;
    }
    state.invalidate_user(&user.id);
    if let Some(role) = body.role.as_ref().filter(|role| **role != user.role) {
        state
            .audit(
                AuditEvent::new("role_changed")
                    .actor(&caller.email)
                    .target(&user.email)
                    .ip(ip)
                    .details(json!({"from": user.role, "to": role})),
            )
            .await;
    }
    state
        .audit(
            AuditEvent::new("user_updated")
                .actor(&caller.email)
                .target(&user.email)
                .ip(ip)
                .details(json!({"password_changed": changed_password})),
        )
        .await;
    Ok(user_to_api(state, &updated))
}

/// Deletes the account; its tokens and API keys are revoked with it (in the store).
pub async fn delete(state: &AppState, caller: &Caller, ip: &str, reference: &str) -> ApiResult<()> {
    let user = find_user(state, reference).await?;
    if user.id == caller.user_id {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "you cannot delete your own account",
        ));
    }
    if !may_grant(&caller.role, &user.role) {
        return Err(ApiError::forbidden(format!(
            "your role {} cannot delete a {} user",
            caller.role, user.role
        )));
    }
    state
        .store
        .delete_user(&user.id, state.clock.now_ms())
        .await?;
    state.invalidate_user(&user.id);
    state
        .audit(
            AuditEvent::new("user_deleted")
                .actor(&caller.email)
                .target(&user.email)
                .ip(ip),
        )
        .await;
    Ok(())
}

/// Sets the given password, or generates one that is answered once. Nothing else about the
/// account changes; its sessions end, since a reset usually means the old password is lost or
/// known to someone else.
pub async fn reset_password(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    reference: &str,
    body: ResetPasswordRequest,
) -> ApiResult<PasswordReset> {
    let user = find_user(state, reference).await?;
    if user.user_type == "service" {
        return Err(no_password_for_services());
    }
    // A reset skips the current password; one's own goes through the change, which checks it
    // (with its throttle), so a stolen admin session cannot lock the owner out.
    if user.id == caller.user_id {
        return Err(ApiError::forbidden(
            "change your own password with your current one (mftctl passwd, or \
             POST /api/v1/auth/password), not with a reset",
        ));
    }
    let target_role = state.rbac.user_role(&user.email, &user.role);
    if !may_grant(&caller.role, &target_role) {
        return Err(ApiError::forbidden(format!(
            "your role {} cannot reset the password of a {target_role} user",
            caller.role
        )));
    }
    let (password, generated) = match body.password {
        Some(password) => (password, None),
        None => {
            let generated = mftplus_crypto::secrets::random_base62(20);
            (generated.clone(), Some(generated))
        }
    };
    let hash = hash_password(password).await?;
    let now = state.clock.now_ms();
    let update = UserUpdate {
        name: None,
        role: None,
        password_hash: Some(hash),
        updated_at_ms: now,
    };
    let updated = state.store.update_user(&user.id, &update).await?;
    let revoked = state.store.revoke_user_tokens(&user.id, now).await?;
    state.invalidate_user(&user.id);
    state
        .audit(
            AuditEvent::new("password_reset")
                .actor(&caller.email)
                .target(&user.email)
                .ip(ip)
                .details(json!({"generated": generated.is_some(), "revoked_tokens": revoked})),
        )
        .await;
    Ok(PasswordReset {
        user: user_to_api(state, &updated),
        generated_password: generated,
        revoked_tokens: revoked,
    })
}
