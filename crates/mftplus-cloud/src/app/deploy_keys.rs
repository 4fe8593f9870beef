//! Hubs and their deploy keys as an operator sees them, for the API (`/api/v1/hubs…`) and the
//! dashboard's hubs page alike: the listings with each hub's status, and creating or revoking
//! a key with its audit record.

use crate::audit::AuditEvent;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::handlers::hubs::{check_word, hub_to_api, new_deploy_key};
use crate::state::AppState;
use mftplus_store::DeployKeyRow;
use mftplus_types::hubs::{CreatedDeployKey, DeployKeyInfo, HubInfo};
use serde_json::json;
use std::collections::HashMap;

/// Every registered hub with its status, in the store's order.
pub async fn hubs(state: &AppState) -> ApiResult<Vec<HubInfo>> {
    let keys: HashMap<String, DeployKeyRow> = state
        .store
        .list_deploy_keys()
        .await?
        .into_iter()
        .map(|key| (key.id.clone(), key))
        .collect();
    let hubs = state.store.list_hubs().await?;
    Ok(hubs
        .iter()
        .map(|hub| hub_to_api(state, hub, keys.get(&hub.deploy_key_id)))
        .collect())
}

/// One hub with its status, or 404.
pub async fn hub(state: &AppState, hub_id: &str) -> ApiResult<HubInfo> {
    let hub = state
        .store
        .get_hub(hub_id)
        .await?
        .ok_or_else(|| ApiError::not_found("hub"))?;
    let key = state.store.get_deploy_key(&hub.deploy_key_id).await?;
    Ok(hub_to_api(state, &hub, key.as_ref()))
}

/// Every deploy key (never the key itself) with the number of hubs registered under it.
pub async fn keys(state: &AppState) -> ApiResult<Vec<DeployKeyInfo>> {
    let mut counts: HashMap<String, u32> = HashMap::new();
    for hub in state.store.list_hubs().await? {
        *counts.entry(hub.deploy_key_id).or_default() += 1;
    }
    let keys = state.store.list_deploy_keys().await?;
    let now = state.clock.now_ms();
    Ok(keys
        .iter()
        .map(|key| DeployKeyInfo {
            id: key.id.clone(),
            label: key.label.clone(),
            prefix: key.prefix.clone(),
            created_by: key.created_by.clone(),
            created_at: rfc3339(key.created_at_ms),
            revoked_at: key.revoked_at_ms.map(rfc3339),
            status: if !key.usable_at(now) {
                "revoked"
            } else if key.expires_at_ms.is_some() {
                "rotated"
            } else {
                "active"
            }
            .into(),
            hubs: counts.get(&key.id).copied().unwrap_or(0),
            expires_at: key.expires_at_ms.map(rfc3339),
            replaces: key.replaces.clone(),
        })
        .collect())
}

/// A fresh key labelled `label`; the key is in the answer only, shown once.
pub async fn create(
    state: &AppState,
    actor: &str,
    ip: &str,
    label: &str,
) -> ApiResult<CreatedDeployKey> {
    let label = check_word(label, "label", 100)?;
    let (row, key) = new_deploy_key(state, label, actor).await?;
    state
        .audit(
            AuditEvent::new("deploy_key_created")
                .actor(actor)
                .target(&row.id)
                .ip(ip)
                .details(json!({"label": row.label, "prefix": row.prefix})),
        )
        .await;
    Ok(CreatedDeployKey {
        id: row.id,
        label: row.label,
        key,
        prefix: row.prefix,
        created_at: rfc3339(row.created_at_ms),
    })
}

/// Revokes the key; its hubs are refused (401 `token_revoked`) at their next contact. This
/// process forgets its cached lookups at once; other replicas within the cache TTL.
pub async fn revoke(state: &AppState, actor: &str, ip: &str, id: &str) -> ApiResult<()> {
    let changed = state
        .store
        .revoke_deploy_key(id, state.clock.now_ms())
        .await
        .map_err(|err| match err {
            mftplus_store::StoreError::NotFound => ApiError::not_found("deploy key"),
            other => other.into(),
        })?;
    state.forget_deploy_keys();
    if changed {
        state
            .audit(
                AuditEvent::new("deploy_key_revoked")
                    .actor(actor)
                    .target(id)
                    .ip(ip),
            )
            .await;
    }
    Ok(())
}
