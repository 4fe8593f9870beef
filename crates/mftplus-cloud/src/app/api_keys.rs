//! API keys (seed 001: `mftctl apikeys create|list|get|delete|rotate`), for the API
//! (`/api/v1/apikeys…`) and the dashboard's keys page alike. Who sees which keys is the
//! route's [`Scope`]: a role with `apikeys:manage` every key, one with `apikeys:manage:own`
//! only its own (anyone else's is "not found"). A key is in the answer of create and rotate
//! only, once; the store keeps its SHA-256.

use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::handlers::{api_key_to_api, parse_expiry, validate_name, validate_role};
use crate::middleware::Scope;
use crate::rbac::may_grant;
use crate::state::AppState;
use mftplus_store::{ApiKeyPage, ApiKeyRow, NewApiKey, TimeCursor};
use mftplus_types::api::{ApiKey, CreateApiKeyRequest, CreatedApiKey};
use mftplus_types::ErrorCode;
use serde_json::json;
use std::collections::HashMap;

/// Characters of the key kept for display: the prefix and six more.
const DISPLAY_PREFIX_LEN: usize = 12;
/// The most keys one page may ask for.
pub const MAX_PAGE: u32 = 200;

/// One page of keys, newest first, and where the next one starts.
#[derive(Debug, Clone)]
pub struct KeyPage {
    pub keys: Vec<ApiKey>,
    pub next: Option<TimeCursor>,
}

/// The owner whose keys `scope` lets the caller see; `None` for everyone's.
fn owner_in_scope(caller: &Caller, scope: Scope) -> Option<String> {
    (scope == Scope::Own).then(|| caller.user_id.clone())
}

/// The owners' emails of `rows` in one store query (`""` for an owner that is gone).
async fn with_owners(state: &AppState, rows: &[ApiKeyRow]) -> ApiResult<Vec<ApiKey>> {
    let mut ids: Vec<String> = rows.iter().map(|row| row.owner_id.clone()).collect();
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
        .map(|row| {
            let email = emails.get(&row.owner_id).map_or("", String::as_str);
            api_key_to_api(state, row, email)
        })
        .collect())
}

/// Every key in scope, newest first (the API's listing).
pub async fn list(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    include_revoked: bool,
) -> ApiResult<Vec<ApiKey>> {
    let owner = owner_in_scope(caller, scope);
    let rows: Vec<ApiKeyRow> = state
        .store
        .list_api_keys(owner.as_deref())
        .await?
        .into_iter()
        .filter(|row| include_revoked || row.revoked_at_ms.is_none())
        .collect();
    with_owners(state, &rows).await
}

/// At most `limit` keys in scope older than `before`: two store queries whatever the page.
pub async fn page(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    include_revoked: bool,
    before: Option<TimeCursor>,
    limit: u32,
) -> ApiResult<KeyPage> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut rows = state
        .store
        .list_api_keys_page(&ApiKeyPage {
            owner_id: owner_in_scope(caller, scope),
            include_revoked,
            before,
            limit: limit + 1,
        })
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = rows.last().filter(|_| more).map(|row| TimeCursor {
        at_ms: row.created_at_ms,
        id: row.id.clone(),
    });
    Ok(KeyPage {
        keys: with_owners(state, &rows).await?,
        next,
    })
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

/// A key of the caller's, with at most the caller's role.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    body: CreateApiKeyRequest,
) -> ApiResult<CreatedApiKey> {
    let name = validate_name(&body.name, "name")?;
    if name.is_empty() {
        return Err(ApiError::validation("an API key needs a name (--name)"));
    }
    let role = body.role.unwrap_or_else(|| caller.role.clone());
    validate_role(state, &role)?;
    if !may_grant(&caller.role, &role) {
        return Err(ApiError::forbidden(format!(
            "your role {} cannot create a {role} key",
            caller.role
        )));
    }
    let lifetime = lifetime_ms(state, body.expires.as_deref())?;
    let now = state.clock.now_ms();
    let (secret, new) = new_key(&name, &role, &caller.user_id, now, lifetime, None);
    let row = state.store.create_api_key(&new).await?;
    state
        .audit(
            AuditEvent::new("apikey_created")
                .actor(&caller.email)
                .target(&row.id)
                .ip(ip)
                .details(json!({"name": row.name, "role": row.role, "prefix": row.prefix})),
        )
        .await;
    Ok(CreatedApiKey {
        key: secret,
        api_key: api_key_to_api(state, &row, &caller.email),
    })
}

/// A key the caller may see, or "not found".
pub fn visible(caller: &Caller, scope: Scope, row: Option<ApiKeyRow>) -> ApiResult<ApiKeyRow> {
    row.filter(|row| scope == Scope::All || row.owner_id == caller.user_id)
        .ok_or_else(|| ApiError::not_found("API key"))
}

/// The key `id` as the API shows it.
pub async fn show(state: &AppState, caller: &Caller, scope: Scope, id: &str) -> ApiResult<ApiKey> {
    let row = visible(caller, scope, state.store.get_api_key(id).await?)?;
    Ok(with_owners(state, std::slice::from_ref(&row))
        .await?
        .remove(0))
}

/// The key whose secret is `key` (sent in a body, never a URL).
pub async fn resolve(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    key: &str,
) -> ApiResult<ApiKey> {
    let hash = mftplus_crypto::hash_api_key(key.trim());
    let row = visible(caller, scope, state.store.get_api_key_by_hash(&hash).await?)?;
    Ok(with_owners(state, std::slice::from_ref(&row))
        .await?
        .remove(0))
}

/// Revokes the key at once (this process forgets its cached lookup).
pub async fn revoke(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    ip: &str,
    id: &str,
) -> ApiResult<()> {
    let row = visible(caller, scope, state.store.get_api_key(id).await?)?;
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
                .ip(ip)
                .details(json!({"name": row.name, "prefix": row.prefix})),
        )
        .await;
    Ok(())
}

/// Replaces the key with a new one of the same name, owner and lifetime (capped by the
/// rotation policy) and the owner's current role at most; the old key stops working at once.
pub async fn rotate(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    ip: &str,
    id: &str,
) -> ApiResult<CreatedApiKey> {
    let old = visible(caller, scope, state.store.get_api_key(id).await?)?;
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
    // The new secret goes to whoever rotates: someone else's key only for a role the caller
    // could grant, so rotating is never a way up.
    if old.owner_id != caller.user_id && !crate::rbac::may_grant(&caller.role, &role) {
        return Err(ApiError::forbidden(format!(
            "your role {} cannot rotate a key of role {role}; revoke it instead",
            caller.role
        )));
    }
    let lifetime = match old.expires_at_ms {
        Some(expires) => (expires - old.created_at_ms).min(lifetime_ms(state, None)?),
        None => lifetime_ms(state, None)?,
    };
    let now = state.clock.now_ms();
    let replaces = Some(old.id.clone());
    let (secret, new) = new_key(&old.name, &role, &old.owner_id, now, lifetime, replaces);
    let row = state.store.rotate_api_key(&old.id, &new, now).await?;
    state.forget_api_key(&old.key_hash);
    state
        .audit(
            AuditEvent::new("apikey_rotated")
                .actor(&caller.email)
                .target(&row.id)
                .ip(ip)
                .details(json!({"replaces": old.id, "prefix": row.prefix})),
        )
        .await;
    Ok(CreatedApiKey {
        key: secret,
        api_key: api_key_to_api(state, &row, &owner.email),
    })
}
