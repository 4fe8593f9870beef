//! `mftctl users create|update|list|get|delete`.

use super::{find_user, user_to_api, validate_email, validate_name, validate_role};
use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::middleware::{ClientIp, Scope};
use crate::rbac::may_grant;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_store::{NewUser, UserUpdate};
use mftplus_types::api::{CreateUserRequest, CreatedUser, UpdateUserRequest, User, UserType};
use mftplus_types::ErrorCode;
use serde_json::json;

pub async fn index(State(state): State<AppState>) -> ApiResult<Json<Vec<User>>> {
    let users = state.store.list_users().await?;
    Ok(Json(users.iter().map(|u| user_to_api(&state, u)).collect()))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiPath(reference): ApiPath<String>,
) -> ApiResult<Json<User>> {
    let user = find_user(&state, &reference).await?;
    if scope == Scope::Own && user.id != caller.user_id {
        return Err(ApiError::not_found("user"));
    }
    Ok(Json(user_to_api(&state, &user)))
}

/// The password policy, then Argon2id off the async threads: every password a person sets
/// (created, changed, reset) goes through here.
pub(crate) async fn hash_password(password: String) -> ApiResult<String> {
    mftplus_crypto::password::check_password_policy(&password)
        .map_err(|msg| ApiError::new(ErrorCode::WeakPassword, msg))?;
    tokio::task::spawn_blocking(move || mftplus_crypto::password::hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> ApiResult<(http::StatusCode, Json<CreatedUser>)> {
    let email = validate_email(&body.email)?;
    let name = validate_name(&body.name, "name")?;
    let role = body.role.unwrap_or_else(|| state.rbac.default_role.clone());
    validate_role(&state, &role)?;
    if !may_grant(&caller.role, &role) {
        return Err(ApiError::forbidden(format!(
            "your role {} cannot create a {role} user",
            caller.role
        )));
    }
    let user_type = body.user_type.unwrap_or_default();
    let (password, initial_password) = match (user_type, body.password) {
        (UserType::Service, Some(_)) => {
            return Err(ApiError::validation(
                "service accounts log in with API keys, not passwords",
            ))
        }
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
                .ip(&ip)
                .details(json!({"role": row.role, "type": row.user_type})),
        )
        .await;
    let user = user_to_api(&state, &row);
    Ok((
        http::StatusCode::CREATED,
        Json(CreatedUser {
            user,
            initial_password,
        }),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(reference): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<User>> {
    let user = find_user(&state, &reference).await?;
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
        validate_role(&state, role)?;
        if !may_grant(&caller.role, role) || !may_grant(&caller.role, &user.role) {
            return Err(ApiError::forbidden(format!(
                "your role {} cannot assign role {role}",
                caller.role
            )));
        }
    }
    if body.password.is_some() && user.user_type == "service" {
        return Err(ApiError::validation(
            "service accounts log in with API keys, not passwords",
        ));
    }
    let password_hash = match body.password {
        Some(password) => Some(hash_password(password).await?),
        None => None,
    };
    let now = state.clock.now_ms();
    let changed_password = password_hash.is_some();
    let updated = state
        .store
        .update_user(
            &user.id,
            &UserUpdate {
                name,
                role: body.role.clone(),
                password_hash,
                updated_at_ms: now,
            },
        )
        .await?;
    if changed_password {
        // A new password ends every session opened with the old one.
        state.store.revoke_user_tokens(&user.id, now).await?;
    }
    state.invalidate_user(&user.id);
    if let Some(role) = &body.role {
        if *role != user.role {
            state
                .audit(
                    AuditEvent::new("role_changed")
                        .actor(&caller.email)
                        .target(&user.email)
                        .ip(&ip)
                        .details(json!({"from": user.role, "to": role})),
                )
                .await;
        }
    }
    state
        .audit(
            AuditEvent::new("user_updated")
                .actor(&caller.email)
                .target(&user.email)
                .ip(&ip)
                .details(json!({"password_changed": changed_password})),
        )
        .await;
    Ok(Json(user_to_api(&state, &updated)))
}

pub async fn destroy(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(reference): ApiPath<String>,
) -> ApiResult<http::StatusCode> {
    let user = find_user(&state, &reference).await?;
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
                .ip(&ip),
        )
        .await;
    Ok(http::StatusCode::NO_CONTENT)
}
