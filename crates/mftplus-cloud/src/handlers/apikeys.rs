//! `mftctl apikeys create|list|get|delete|rotate`.

use super::{api_key_to_api, email_of, parse_expiry, validate_name, validate_role};
use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::middleware::{ClientIp, Scope};
use crate::rbac::may_grant;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_store::{ApiKeyRow, NewApiKey};
use mftplus_types::api::{ApiKey, CreateApiKeyRequest, CreatedApiKey, ResolveApiKeyRequest};
use mftplus_types::ErrorCode;
use serde::Deserialize;
use serde_json::json;

/// Characters of the key kept for display: the prefix and six more.
const DISPLAY_PREFIX_LEN: usize = 12;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    include_revoked: bool,
}

pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<ApiKey>>> {
    let owner = (scope == Scope::Own).then_some(caller.user_id.as_str());
    let mut out = Vec::new();
    for row in state.store.list_api_keys(owner).await? {
        if row.revoked_at_ms.is_some() && !query.include_revoked {
            continue;
        }
        let email = email_of(&state, &row.owner_id).await?;
        out.push(api_key_to_api(&state, &row, &email));
    }
    Ok(Json(out))
}

/// Validates the requested lifetime against `api_keys.rotation_required_days`.
fn lifetime_ms(state: &AppState, expires: Option<&str>) -> ApiResult<i64> {
    let max_secs = state.config.config.api_keys.rotation_required_days * 86_400;
    let secs = match expires {
        Some(text) => parse_expiry(text)?,
        None => max_secs,
    };
    if secs > max_secs {
        return Err(ApiError::new(
            ErrorCode::InvalidDuration,
            format!(
                "keys must be rotated within {} days (api_keys.rotation_required_days)",
                state.config.config.api_keys.rotation_required_days
            ),
        ));
    }
    Ok(secs as i64 * 1000)
}

fn new_key(
    name: &str,
    role: &str,
    owner_id: &str,
    now: i64,
    lifetime_ms: i64,
    replaces: Option<String>,
) -> (String, NewApiKey) {
    let secret = mftplus_crypto::generate_api_key();
    let row = NewApiKey {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_string(),
        key_hash: mftplus_crypto::hash_api_key(&secret),
        prefix: secret[..DISPLAY_PREFIX_LEN].to_string(),
        role: role.to_string(),
        owner_id: owner_id.to_string(),
        created_at_ms: now,
        expires_at_ms: Some(now + lifetime_ms),
        replaces,
    };
    (secret, row)
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<CreateApiKeyRequest>,
) -> ApiResult<(http::StatusCode, Json<CreatedApiKey>)> {
    let name = validate_name(&body.name, "name")?;
    if name.is_empty() {
        return Err(ApiError::validation("an API key needs a name (--name)"));
    }
    let role = body.role.unwrap_or_else(|| caller.role.clone());
    validate_role(&state, &role)?;
    if !may_grant(&caller.role, &role) {
        return Err(ApiError::forbidden(format!(
            "your role {} cannot create a {role} key",
            caller.role
        )));
    }
    let lifetime = lifetime_ms(&state, body.expires.as_deref())?;
    let (secret, new) = new_key(
        &name,
        &role,
        &caller.user_id,
        state.clock.now_ms(),
        lifetime,
        None,
    );
    let row = state.store.create_api_key(&new).await?;
    state
        .audit(
            AuditEvent::new("apikey_created")
                .actor(&caller.email)
                .target(&row.id)
                .ip(&ip)
                .details(json!({"name": row.name, "role": row.role, "prefix": row.prefix})),
        )
        .await;
    let api_key = api_key_to_api(&state, &row, &caller.email);
    Ok((
        http::StatusCode::CREATED,
        Json(CreatedApiKey {
            key: secret,
            api_key,
        }),
    ))
}

fn visible_key(caller: &Caller, scope: Scope, row: Option<ApiKeyRow>) -> ApiResult<ApiKeyRow> {
    row.filter(|row| scope == Scope::All || row.owner_id == caller.user_id)
        .ok_or_else(|| ApiError::not_found("API key"))
}

pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiJson(body): ApiJson<ResolveApiKeyRequest>,
) -> ApiResult<Json<ApiKey>> {
    let row = state
        .store
        .get_api_key_by_hash(&mftplus_crypto::hash_api_key(body.key.trim()))
        .await?;
    let row = visible_key(&caller, scope, row)?;
    let email = email_of(&state, &row.owner_id).await?;
    Ok(Json(api_key_to_api(&state, &row, &email)))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ApiKey>> {
    let row = visible_key(&caller, scope, state.store.get_api_key(&id).await?)?;
    let email = email_of(&state, &row.owner_id).await?;
    Ok(Json(api_key_to_api(&state, &row, &email)))
}

pub async fn destroy(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<http::StatusCode> {
    let row = visible_key(&caller, scope, state.store.get_api_key(&id).await?)?;
    if !state
        .store
        .revoke_api_key(&row.id, state.clock.now_ms())
        .await?
    {
        return Err(ApiError::not_found("API key"));
    }
    state.forget_api_key(&row.key_hash);
    state
        .audit(
            AuditEvent::new("apikey_deleted")
                .actor(&caller.email)
                .target(&row.id)
                .ip(&ip)
                .details(json!({"name": row.name, "prefix": row.prefix})),
        )
        .await;
    Ok(http::StatusCode::NO_CONTENT)
}

pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<CreatedApiKey>> {
    let old = visible_key(&caller, scope, state.store.get_api_key(&id).await?)?;
    if old.revoked_at_ms.is_some() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "this key is revoked; create a new one",
        ));
    }
    let owner = state
        .store
        .get_user(&old.owner_id)
        .await?
        .ok_or_else(|| ApiError::not_found("key owner"))?;
    let role =
        crate::rbac::effective_role(&old.role, &state.rbac.user_role(&owner.email, &owner.role));
    let lifetime = match old.expires_at_ms {
        Some(expires) => (expires - old.created_at_ms).min(lifetime_ms(&state, None)?),
        None => lifetime_ms(&state, None)?,
    };
    let now = state.clock.now_ms();
    let (secret, new) = new_key(
        &old.name,
        &role,
        &old.owner_id,
        now,
        lifetime,
        Some(old.id.clone()),
    );
    let row = state.store.rotate_api_key(&old.id, &new, now).await?;
    state.forget_api_key(&old.key_hash);
    state
        .audit(
            AuditEvent::new("apikey_rotated")
                .actor(&caller.email)
                .target(&row.id)
                .ip(&ip)
                .details(json!({"replaces": old.id, "prefix": row.prefix})),
        )
        .await;
    let api_key = api_key_to_api(&state, &row, &owner.email);
    Ok(Json(CreatedApiKey {
        key: secret,
        api_key,
    }))
}
