//! Persistence of the edge-hub registry (SPEC §4, decision 0010): the deploy keys operators
//! generate, and one row per hub that registered with one of them.
//!
//! A hub is identified by (deploy key, hostname): registering again under the same key and
//! hostname keeps the hub's id and registration time and refreshes what it reported. Only the
//! cloud's phone-home handlers write hub rows; only operators write deploy keys.

use async_trait::async_trait;

use crate::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeployKey {
    pub id: String,
    pub label: String,
    /// SHA-256 hex of the whole key; unique.
    pub key_hash: String,
    /// The first characters of the key, to recognise it in listings.
    pub prefix: String,
    /// Email of the operator who created it.
    pub created_by: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployKeyRow {
    pub id: String,
    pub label: String,
    pub key_hash: String,
    pub prefix: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    /// The key this one replaced, when it came from a rotation.
    pub replaces: Option<String>,
    /// Set when the key was replaced by a rotation: it is refused from then on.
    pub expires_at_ms: Option<i64>,
}

impl DeployKeyRow {
    /// Whether the key still opens the deploy-key routes at `now_ms`: not revoked, and not
    /// past the grace of a rotation that replaced it.
    pub fn usable_at(&self, now_ms: i64) -> bool {
        self.revoked_at_ms.is_none() && self.expires_at_ms.is_none_or(|until| until > now_ms)
    }
}

/// A deploy key replaced by a new one with the same label (`docs/key-rotation.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployKeyRotation {
    pub old_id: String,
    /// The new key; its label is the old key's, whatever this says.
    pub new: NewDeployKey,
    /// When the old key stops being accepted (an earlier end already set is kept).
    pub old_expires_at_ms: i64,
}

/// A registration (or re-registration) as the hub reported it, with the license mode the cloud
/// decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRegistration {
    /// Used only when this (deploy key, hostname) has no hub yet.
    pub new_id: String,
    pub deploy_key_id: String,
    pub hostname: String,
    pub hub_version: String,
    pub platform: String,
    /// `evaluation` or `enterprise`.
    pub license_mode: String,
    pub at_ms: i64,
}

/// A periodic re-validation of a registered hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubValidation {
    pub hub_version: String,
    pub platform: String,
    pub license_mode: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubHeartbeat {
    pub hub_version: String,
    pub healthy: bool,
    /// JSON array of the issue strings the hub reported.
    pub issues_json: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRow {
    pub id: String,
    pub deploy_key_id: String,
    pub hostname: String,
    pub hub_version: String,
    pub platform: String,
    pub license_mode: String,
    pub registered_at_ms: i64,
    /// Any contact: registration, validation or heartbeat.
    pub last_seen_at_ms: i64,
    pub last_validated_at_ms: Option<i64>,
    /// From the latest heartbeat (true until the first one).
    pub healthy: bool,
    pub issues_json: String,
}

#[async_trait]
pub trait HubStore: Send + Sync {
    // ---- deploy keys ----
    /// `Conflict("key_hash")` when the hash is taken, `Conflict("id")` when the id is.
    async fn create_deploy_key(&self, key: &NewDeployKey) -> StoreResult<DeployKeyRow>;
    async fn get_deploy_key(&self, id: &str) -> StoreResult<Option<DeployKeyRow>>;
    /// Revoked keys too: the caller tells "revoked" from "unknown".
    async fn get_deploy_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<DeployKeyRow>>;
    /// Every key, revoked included; newest first.
    async fn list_deploy_keys(&self) -> StoreResult<Vec<DeployKeyRow>>;
    /// Stamps `revoked_at` if not yet revoked; `false` when it already was. `NotFound` when
    /// absent.
    async fn revoke_deploy_key(&self, id: &str, at_ms: i64) -> StoreResult<bool>;

    /// In one transaction: stamps the old key's `expires_at` and inserts the new one (the old
    /// key's label, `replaces` = the old id). `NotFound` when the old key does not exist,
    /// `Conflict("revoked")` when it is revoked or already past its grace at `new.created_at_ms`.
    async fn rotate_deploy_key(&self, rotation: &DeployKeyRotation) -> StoreResult<DeployKeyRow>;

    // ---- hubs ----
    /// Inserts the hub, or, when the deploy key already has a hub of this hostname, keeps its
    /// id and `registered_at` and updates version, platform, license mode and `last_seen`.
    /// When the key has no hub of this hostname but a key it replaced (directly or through
    /// earlier rotations) has, that hub moves to this key first, keeping its id (the most
    /// recently seen one, if several). Atomic, so two registrations racing for one hostname
    /// end with one row. `NotFound` when the deploy key does not exist.
    async fn register_hub(&self, registration: &HubRegistration) -> StoreResult<HubRow>;
    /// Updates version, platform and license mode and stamps `last_seen` and `last_validated`.
    /// `NotFound` when absent.
    async fn validate_hub(&self, hub_id: &str, validation: &HubValidation) -> StoreResult<HubRow>;
    /// Updates version, health and issues and stamps `last_seen`. `NotFound` when absent.
    async fn record_hub_heartbeat(&self, hub_id: &str, heartbeat: &HubHeartbeat)
        -> StoreResult<()>;
    async fn get_hub(&self, id: &str) -> StoreResult<Option<HubRow>>;
    /// Ordered by hostname, then id (byte order).
    async fn list_hubs(&self) -> StoreResult<Vec<HubRow>>;

    // ---- site-local transfers (decision 0012) ----
    /// Records the path of the user's latest transfer request: through `hub_id`, or to the
    /// cloud directly (`None`). Replaces what was recorded before.
    async fn note_user_site(
        &self,
        user_id: &str,
        hub_id: Option<&str>,
        at_ms: i64,
    ) -> StoreResult<()>;
    /// The recorded paths of those of `user_ids` that have one, in no particular order.
    async fn user_sites(&self, user_ids: &[String]) -> StoreResult<Vec<UserSite>>;
    /// Those of `transfer_ids` kept on `hub_id`'s site whose files are still needed: the
    /// transfer is uploading, or complete and not expired at `now_ms`. Unknown ids, other
    /// sites' transfers, cancelled and expired ones are left out.
    async fn live_site_transfers(
        &self,
        hub_id: &str,
        transfer_ids: &[String],
        now_ms: i64,
    ) -> StoreResult<Vec<String>>;
}

/// The path a user's latest transfer request took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSite {
    pub user_id: String,
    /// The edge hub it came through; `None` when it came to the cloud directly.
    pub hub_id: Option<String>,
    pub seen_at_ms: i64,
}
