//! Edge hubs (SPEC §4, decision 0010): the phone-home routes a hub calls with its deploy key
//! (register, heartbeat, validate) and the operator routes over deploy keys and the registry.
//! The rules (versions behind, status, license mode) are in `crate::hubs`.

use crate::audit::AuditEvent;
use crate::auth::deploy_key::{generate_deploy_key, HubKey};
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::hubs::{license_mode, parse_version, status, version_warning, versions_behind};
use crate::middleware::ClientIp;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use mftplus_store::{
    DeployKeyRotation, DeployKeyRow, HubHeartbeat, HubRegistration, HubRow, HubValidation,
    NewDeployKey, StoreError,
};
use mftplus_types::hubs::{
    CreateDeployKey, CreatedDeployKey, DeployKeyInfo, HubHeartbeatRequest, HubHeartbeatResponse,
    HubInfo, HubRegisterRequest, HubRegisterResponse, RotateDeployKey, RotatedDeployKey,
    PROTOCOL_VERSION,
};
use mftplus_types::ErrorCode;
use serde_json::json;

const MAX_ISSUES: usize = 64;
const MAX_ISSUE_CHARS: usize = 500;

// ---------------------------------------------------------------- phone-home (deploy key)

pub async fn register(
    State(state): State<AppState>,
    key: HubKey,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<HubRegisterRequest>,
) -> ApiResult<Json<HubRegisterResponse>> {
    let checked = check_registration(&state, &body)?;
    let now = state.clock.now_ms();
    let new_id = format!("hub_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let row = state
        .store
        .register_hub(&HubRegistration {
            new_id: new_id.clone(),
            deploy_key_id: key.deploy_key_id.clone(),
            hostname: checked.hostname.clone(),
            hub_version: checked.hub_version.clone(),
            platform: checked.platform.clone(),
            license_mode: checked.license_mode.into(),
            at_ms: now,
        })
        .await?;
    // A registration with a rotated key may have moved this hub to the key: this process's
    // cached row (read by hub assertions) must not keep naming the old one.
    state.cache.hubs.remove(&row.id);
    state
        .audit(
            AuditEvent::new("hub_registered")
                .actor(&key.actor())
                .target(&row.id)
                .ip(&ip)
                .details(json!({
                    "hostname": row.hostname, "hub_version": row.hub_version,
                    "license_mode": row.license_mode, "deploy_key_label": key.label,
                    "first_registration": row.id == new_id,
                })),
        )
        .await;
    Ok(Json(answer(&state, &row, checked.license_warning)))
}

pub async fn validate(
    State(state): State<AppState>,
    key: HubKey,
    ClientIp(ip): ClientIp,
    ApiPath(hub_id): ApiPath<String>,
    ApiJson(body): ApiJson<HubRegisterRequest>,
) -> ApiResult<Json<HubRegisterResponse>> {
    let checked = check_registration(&state, &body)?;
    let row = state
        .store
        .validate_hub(
            &hub_id,
            &HubValidation {
                hub_version: checked.hub_version,
                platform: checked.platform,
                license_mode: checked.license_mode.into(),
                at_ms: state.clock.now_ms(),
            },
        )
        .await?;
    state
        .audit(
            AuditEvent::new("hub_validated")
                .actor(&key.actor())
                .target(&row.id)
                .ip(&ip)
                .details(json!({
                    "hub_version": row.hub_version, "license_mode": row.license_mode,
                })),
        )
        .await;
    Ok(Json(answer(&state, &row, checked.license_warning)))
}

/// Not audited (one a minute per hub); it only moves `last_seen` and the reported health.
pub async fn heartbeat(
    State(state): State<AppState>,
    ApiPath(hub_id): ApiPath<String>,
    ApiJson(body): ApiJson<HubHeartbeatRequest>,
) -> ApiResult<Json<HubHeartbeatResponse>> {
    let hub_version = check_version(&body.hub_version)?;
    if body.issues.len() > MAX_ISSUES
        || body
            .issues
            .iter()
            .any(|issue| issue.chars().count() > MAX_ISSUE_CHARS)
    {
        return Err(ApiError::validation(format!(
            "issues: at most {MAX_ISSUES} entries of at most {MAX_ISSUE_CHARS} characters"
        )));
    }
    let issues_json = serde_json::to_string(&body.issues).map_err(ApiError::internal)?;
    state
        .store
        .record_hub_heartbeat(
            &hub_id,
            &HubHeartbeat {
                hub_version,
                healthy: body.healthy,
                issues_json,
                at_ms: state.clock.now_ms(),
            },
        )
        .await?;
    Ok(Json(HubHeartbeatResponse {
        status: "ok".into(),
        heartbeat_interval_seconds: state.config.config.hubs.heartbeat_interval_seconds,
    }))
}

struct CheckedRegistration {
    hostname: String,
    hub_version: String,
    platform: String,
    license_mode: &'static str,
    license_warning: Option<&'static str>,
}

fn check_registration(
    state: &AppState,
    body: &HubRegisterRequest,
) -> ApiResult<CheckedRegistration> {
    if body.protocol > PROTOCOL_VERSION || body.protocol == 0 {
        return Err(ApiError::new(
            ErrorCode::UnsupportedProtocol,
            format!(
                "this cloud speaks phone-home protocol {PROTOCOL_VERSION}; the hub sent {}",
                body.protocol
            ),
        ));
    }
    let (license_mode, license_warning) = license_mode(
        body.license_key.as_deref(),
        &state.config.config.hubs.license_keys,
    );
    Ok(CheckedRegistration {
        hostname: check_word(&body.hostname, "hostname", 253)?,
        hub_version: check_version(&body.hub_version)?,
        platform: check_word(&body.platform, "platform", 64)?,
        license_mode,
        license_warning,
    })
}

fn check_version(version: &str) -> ApiResult<String> {
    let version = version.trim();
    if version.len() > 64 || parse_version(version).is_none() {
        return Err(ApiError::validation(
            "hub_version must be a version like 0.1.0",
        ));
    }
    Ok(version.to_string())
}

/// Hostnames and platforms are shown to operators: printable, no spaces, bounded.
pub(crate) fn check_word(value: &str, what: &str, max: usize) -> ApiResult<String> {
    let value = value.trim();
    if value.is_empty()
        || value.len() > max
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::validation(format!(
            "{what} must be 1–{max} printable characters without spaces"
        )));
    }
    Ok(value.to_string())
}

fn latest_version(state: &AppState) -> String {
    state
        .config
        .config
        .hubs
        .latest_version
        .clone()
        .unwrap_or_else(|| mftplus_types::VERSION.to_string())
}

fn answer(state: &AppState, row: &HubRow, license_warning: Option<&str>) -> HubRegisterResponse {
    let latest = latest_version(state);
    let behind = versions_behind(&row.hub_version, &latest);
    let warnings: Vec<&str> = [license_warning, version_warning(behind)]
        .into_iter()
        .flatten()
        .collect();
    HubRegisterResponse {
        hub_id: row.id.clone(),
        heartbeat_interval_seconds: state.config.config.hubs.heartbeat_interval_seconds,
        license_mode: row.license_mode.clone(),
        latest_version: latest,
        versions_behind: behind,
        warning: (!warnings.is_empty()).then(|| warnings.join("; ")),
    }
}

// ---------------------------------------------------------------- operators

pub async fn index(State(state): State<AppState>) -> ApiResult<Json<Vec<HubInfo>>> {
    Ok(Json(crate::app::deploy_keys::hubs(&state).await?))
}

pub async fn show(
    State(state): State<AppState>,
    ApiPath(hub_id): ApiPath<String>,
) -> ApiResult<Json<HubInfo>> {
    Ok(Json(crate::app::deploy_keys::hub(&state, &hub_id).await?))
}

pub async fn deploy_keys_index(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<DeployKeyInfo>>> {
    Ok(Json(crate::app::deploy_keys::keys(&state).await?))
}

pub async fn deploy_keys_create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<CreateDeployKey>,
) -> ApiResult<(StatusCode, Json<CreatedDeployKey>)> {
    let created = crate::app::deploy_keys::create(&state, &caller.email, &ip, &body.label).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The longest grace a rotation may give the old key.
const MAX_DEPLOY_KEY_GRACE_SECONDS: u64 = 30 * 86_400;

/// A new key with the old one's label, shown once; the old key keeps working until the grace
/// (the body's `grace_seconds`, else `hubs.deploy_key_grace_seconds`) ends, then it is refused
/// as revoked. The old key's hubs move to the new key, keeping their ids, when they register
/// with it (`docs/key-rotation.md`).
pub async fn deploy_keys_rotate(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<RotatedDeployKey>)> {
    let request: RotateDeployKey = if body.is_empty() {
        RotateDeployKey::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("invalid JSON body: {e}")))?
    };
    let grace = request
        .grace_seconds
        .unwrap_or(state.config.config.hubs.deploy_key_grace_seconds);
    if grace > MAX_DEPLOY_KEY_GRACE_SECONDS {
        return Err(ApiError::validation(format!(
            "grace_seconds must be at most {MAX_DEPLOY_KEY_GRACE_SECONDS} (30 days)"
        )));
    }
    let key = generate_deploy_key();
    let now = state.clock.now_ms();
    let until = now.saturating_add(grace as i64 * 1000);
    let row = state
        .store
        .rotate_deploy_key(&DeployKeyRotation {
            old_id: id.clone(),
            new: NewDeployKey {
                id: format!("dk_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
                label: String::new(),
                key_hash: mftplus_crypto::hash_api_key(&key),
                prefix: key[..12].to_string(),
                created_by: caller.email.clone(),
                created_at_ms: now,
            },
            old_expires_at_ms: until,
        })
        .await
        .map_err(|err| match err {
            StoreError::NotFound => ApiError::not_found("deploy key"),
            StoreError::Conflict(_) => ApiError::new(
                ErrorCode::Conflict,
                "this deploy key is revoked or past its grace: create a new one instead",
            ),
            other => other.into(),
        })?;
    let old = state.store.get_deploy_key(&id).await?;
    let previous_valid_until = old.and_then(|old| old.expires_at_ms).unwrap_or(until);
    state.forget_deploy_keys();
    state
        .audit(
            AuditEvent::new("deploy_key_rotated")
                .actor(&caller.email)
                .target(&id)
                .ip(&ip)
                .details(json!({
                    "label": row.label, "new_id": row.id, "prefix": row.prefix,
                    "previous_valid_until": rfc3339(previous_valid_until),
                })),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(RotatedDeployKey {
            id: row.id,
            label: row.label,
            key,
            prefix: row.prefix,
            created_at: rfc3339(row.created_at_ms),
            replaces: id,
            previous_valid_until: rfc3339(previous_valid_until),
        }),
    ))
}

/// Stores a fresh deploy key; the key itself exists only in the answer.
pub(crate) async fn new_deploy_key(
    state: &AppState,
    label: String,
    created_by: &str,
) -> ApiResult<(DeployKeyRow, String)> {
    let key = generate_deploy_key();
    let row = state
        .store
        .create_deploy_key(&NewDeployKey {
            id: format!("dk_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            label,
            key_hash: mftplus_crypto::hash_api_key(&key),
            prefix: key[..12].to_string(),
            created_by: created_by.to_string(),
            created_at_ms: state.clock.now_ms(),
        })
        .await?;
    Ok((row, key))
}

pub async fn deploy_keys_revoke(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    crate::app::deploy_keys::revoke(&state, &caller.email, &ip, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn hub_to_api(state: &AppState, row: &HubRow, key: Option<&DeployKeyRow>) -> HubInfo {
    let hubs = &state.config.config.hubs;
    let revoked = key.is_none_or(|key| !key.usable_at(state.clock.now_ms()));
    let behind = versions_behind(&row.hub_version, &latest_version(state));
    HubInfo {
        hub_id: row.id.clone(),
        hostname: row.hostname.clone(),
        hub_version: row.hub_version.clone(),
        platform: row.platform.clone(),
        license_mode: row.license_mode.clone(),
        deploy_key_id: row.deploy_key_id.clone(),
        deploy_key_label: key.map(|key| key.label.clone()).unwrap_or_default(),
        registered_at: rfc3339(row.registered_at_ms),
        last_seen_at: rfc3339(row.last_seen_at_ms),
        last_validated_at: row.last_validated_at_ms.map(rfc3339),
        status: status(
            row.last_seen_at_ms,
            state.clock.now_ms(),
            hubs.heartbeat_interval_seconds,
            row.healthy,
            revoked,
        )
        .into(),
        versions_behind: behind,
        warning: version_warning(behind).map(str::to_string),
        healthy: row.healthy,
        issues: serde_json::from_str(&row.issues_json).unwrap_or_default(),
    }
}
