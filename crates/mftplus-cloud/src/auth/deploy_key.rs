//! Deploy keys (`mft_dep_…`): the credential an edge hub phones home with (decision 0010).
//! A key resolves to its row; it is never a user credential, so it opens only the routes whose
//! access is `DeployKey`. Lookups are cached like API keys (decision 0003), revoked rows too, so
//! a revoked key is told apart from an unknown one; revoking in this process clears the cache.

use crate::error::ApiError;
use crate::state::AppState;
use mftplus_store::DeployKeyRow;
use mftplus_types::hubs::DEPLOY_KEY_PREFIX;
use mftplus_types::ErrorCode;
use std::sync::Arc;

/// The hub's credential, inserted as a request extension on deploy-key routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubKey {
    pub deploy_key_id: String,
    pub label: String,
}

impl HubKey {
    /// Who the audit log names as acting.
    pub fn actor(&self) -> String {
        format!("deploy_key:{}", self.deploy_key_id)
    }
}

/// A bearer token that looks like a deploy key, if one was presented.
pub fn presented_deploy_key(headers: &http::HeaderMap) -> Option<&str> {
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && token.starts_with(DEPLOY_KEY_PREFIX)).then_some(token)
}

/// A fresh deploy key: the prefix and 40 base62 characters (238 bits).
pub fn generate_deploy_key() -> String {
    super::reporter::generate_key(DEPLOY_KEY_PREFIX)
}

impl AppState {
    /// Resolves a deploy key: unknown keys are 401 `unauthenticated`, revoked ones 401
    /// `token_revoked`.
    pub async fn authenticate_deploy_key(&self, key: &str) -> Result<HubKey, ApiError> {
        let digest = mftplus_crypto::api_key_digest(key);
        let row = match self.cache.deploy_keys.get(&digest) {
            Some(row) => row,
            None => {
                let found = self
                    .store
                    .get_deploy_key_by_hash(&hex::encode(digest))
                    .await?;
                let Some(row) = found else {
                    return Err(ApiError::new(
                        ErrorCode::Unauthenticated,
                        "unknown deploy key",
                    ));
                };
                let row = Arc::new(row);
                self.cache.deploy_keys.insert(digest, row.clone());
                row
            }
        };
        check_usable(&row, self.clock.now_ms())?;
        Ok(HubKey {
            deploy_key_id: row.id.clone(),
            label: row.label.clone(),
        })
    }

    /// A hub that proved itself with its certificate: the deploy key it registered under
    /// must still be usable (revoking the key cuts its hubs off, certificate or not).
    pub async fn certified_hub(&self, hub_id: &str) -> Result<HubKey, ApiError> {
        let hub = self.registered_hub(hub_id).await?;
        let row = self
            .store
            .get_deploy_key(&hub.deploy_key_id)
            .await?
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "unknown deploy key"))?;
        check_usable(&row, self.clock.now_ms())?;
        Ok(HubKey {
            deploy_key_id: row.id,
            label: row.label,
        })
    }

    /// A registered hub's row, cached like credentials (it is read on every request a hub
    /// asserts or forwards); an unknown id is 401.
    async fn registered_hub(&self, hub_id: &str) -> Result<Arc<mftplus_store::HubRow>, ApiError> {
        if let Some(hub) = self.cache.hubs.get(hub_id) {
            return Ok(hub);
        }
        let hub = self.store.get_hub(hub_id).await?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "no hub is registered under this id",
            )
        })?;
        let hub = Arc::new(hub);
        self.cache.hubs.insert(hub_id.to_string(), hub.clone());
        Ok(hub)
    }

    /// Drops every cached deploy-key lookup after a revocation in this process; other
    /// replicas follow within the cache TTL.
    pub fn forget_deploy_keys(&self) {
        self.cache.deploy_keys.clear();
    }
}

/// Revoked keys, and keys a rotation replaced once its grace is over, are refused alike.
fn check_usable(row: &DeployKeyRow, now_ms: i64) -> Result<(), ApiError> {
    if !row.usable_at(now_ms) {
        return Err(ApiError::new(
            ErrorCode::TokenRevoked,
            "this deploy key has been revoked",
        ));
    }
    Ok(())
}

impl AppState {
    /// The hub a transfer request came through (decision 0012): `Some(hub_id)` when it carries
    /// the hub's id and deploy key and the hub is registered under that key, `None` when it
    /// carries neither. Half an assertion, an unknown or revoked key, or another key's hub is
    /// 401: a request claiming a hub it cannot prove is refused, never served as direct.
    pub async fn hub_assertion(
        &self,
        headers: &http::HeaderMap,
        peer: Option<&mftplus_pki::identity::PeerCertificate>,
    ) -> Result<Option<String>, ApiError> {
        use mftplus_types::transfers::site::{HUB_ID_HEADER, HUB_KEY_HEADER};
        let refused = |why: &str| ApiError::new(ErrorCode::Unauthenticated, why.to_string());
        let (hub_id, key) = match (headers.get(HUB_ID_HEADER), headers.get(HUB_KEY_HEADER)) {
            (None, None) => return Ok(None),
            (Some(hub_id), Some(key)) => (hub_id, key),
            // The hub's certificate (mutual TLS) proves it in place of the key.
            (Some(hub_id), None) if peer.is_some() => {
                let hub_id = hub_id
                    .to_str()
                    .map_err(|_| refused("the hub id is not readable"))?;
                let certified = self.certified_box(peer.expect("checked")).await?;
                if certified.identity != mftplus_types::certificates::BoxIdentity::hub(hub_id) {
                    return Err(refused("the hub certificate names another hub"));
                }
                self.certified_hub(hub_id).await?;
                return Ok(Some(hub_id.to_string()));
            }
            _ => return Err(refused("a hub assertion needs both the hub id and its key")),
        };
        let key = key
            .to_str()
            .ok()
            .filter(|key| key.starts_with(DEPLOY_KEY_PREFIX))
            .ok_or_else(|| refused("the hub key is not a deploy key"))?;
        let hub_key = self.authenticate_deploy_key(key).await?;
        let hub_id = hub_id
            .to_str()
            .map_err(|_| refused("the hub id is not readable"))?;
        let hub = self.registered_hub(hub_id).await?;
        if hub.deploy_key_id != hub_key.deploy_key_id {
            return Err(refused("the hub is registered under another deploy key"));
        }
        Ok(Some(hub.id.clone()))
    }
}

impl AppState {
    /// The client address an edge hub forwards for (issue 13): believed only when the hub id
    /// and deploy key that come with it prove a hub registered under that key. The headers
    /// are removed either way, so no handler reads an unproven address. `None` means "use the
    /// connection's own address".
    pub async fn hub_forwarded_client(&self, headers: &mut http::HeaderMap) -> Option<String> {
        use mftplus_types::hubs::forwarding::{
            CLIENT_ADDR_HEADER, PROXY_HUB_HEADER, PROXY_KEY_HEADER,
        };
        let addr = headers.remove(CLIENT_ADDR_HEADER);
        let hub_id = headers.remove(PROXY_HUB_HEADER);
        let key = headers.remove(PROXY_KEY_HEADER);
        let (addr, hub_id, key) = (addr?, hub_id?, key?);
        let addr = addr
            .to_str()
            .ok()?
            .trim()
            .parse::<std::net::IpAddr>()
            .ok()?;
        let hub_id = hub_id.to_str().ok()?;
        let key = key
            .to_str()
            .ok()
            .filter(|k| k.starts_with(DEPLOY_KEY_PREFIX))?;
        let hub_key = self.authenticate_deploy_key(key).await.ok()?;
        let hub = self.registered_hub(hub_id).await.ok()?;
        if hub.deploy_key_id != hub_key.deploy_key_id {
            tracing::warn!(
                hub_id,
                "a forwarded client address came with another key's hub id"
            );
            return None;
        }
        Some(addr.to_string())
    }
}
