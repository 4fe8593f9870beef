//! Users' and hosts' X25519 public keys, which senders wrap transfer keys to. The private half
//! never leaves the user's machine or the host's agent (decision 0029 for hosts).

use super::find_user;
use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::middleware::ClientIp;
use crate::principal::Party;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_crypto::stream::X25519PublicKey;
use mftplus_store::{HostRow, HostTransferKeyRow, UserKeyRow};
use mftplus_types::transfers::{HostTransferKey, PublicKeyBody, UserPublicKey};
use mftplus_types::ErrorCode;
use serde_json::json;

pub async fn put_own(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PublicKeyBody>,
) -> ApiResult<Json<UserPublicKey>> {
    let key = parse_public_key(&body.public_key)?;
    let now = state.clock.now_ms();
    let row = UserKeyRow {
        user_id: caller.user_id.clone(),
        public_key: key.to_encoded(),
        fingerprint: key.fingerprint_hex(),
        created_at_ms: now,
        updated_at_ms: now,
    };
    state.store.put_user_key(&row).await?;
    Ok(Json(UserPublicKey {
        user_id: row.user_id,
        email: caller.email.clone(),
        public_key: row.public_key,
        fingerprint: row.fingerprint,
        updated_at: rfc3339(now),
    }))
}

pub async fn show(
    State(state): State<AppState>,
    ApiPath(reference): ApiPath<String>,
) -> ApiResult<Json<UserPublicKey>> {
    let user = find_user(&state, &reference).await?;
    let row = state.store.get_user_key(&user.id).await?.ok_or_else(|| {
        ApiError::not_found("public key (the user has not logged in with mftctl yet)")
    })?;
    Ok(Json(UserPublicKey {
        user_id: row.user_id,
        email: user.email,
        public_key: row.public_key,
        fingerprint: row.fingerprint,
        updated_at: rfc3339(row.updated_at_ms),
    }))
}

/// An encoded X25519 public key as a sender will use it; the same rule for users and hosts.
fn parse_public_key(text: &str) -> ApiResult<X25519PublicKey> {
    X25519PublicKey::from_encoded(text.trim()).map_err(|_| {
        ApiError::new(
            ErrorCode::ValidationFailed,
            "public_key must be an encoded X25519 key (mftx25519_…)",
        )
    })
}

fn host_key_to_api(host: &HostRow, row: HostTransferKeyRow) -> HostTransferKey {
    let fingerprint = X25519PublicKey::from_encoded(&row.public_key)
        .map(|key| key.fingerprint_hex())
        .unwrap_or_default();
    HostTransferKey {
        host_id: row.host_id,
        hostname: host.hostname.clone(),
        public_key: row.public_key,
        fingerprint,
        registered_at: rfc3339(row.registered_at_ms),
    }
}

/// `PUT /api/v1/hosts/{host_id}/transfer-key` (its own host key; decision 0029): the agent
/// registers the X25519 public key senders wrap file keys to. Another key replaces the one
/// before (a re-enrolled box): what was sent to the old key stays readable only with the old
/// private key. The same key again changes nothing and is not audited, so an agent may register
/// at every start.
pub async fn put_host(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiPath(host_id): ApiPath<String>,
    ApiJson(body): ApiJson<PublicKeyBody>,
) -> ApiResult<Json<HostTransferKey>> {
    let key = parse_public_key(&body.public_key)?;
    let host = state
        .store
        .get_host(&host_id)
        .await?
        .ok_or_else(|| ApiError::not_found("host"))?;
    let encoded = key.to_encoded();
    let previous = state.store.host_transfer_key(&host_id).await?;
    if let Some(same) = previous.as_ref().filter(|p| p.public_key == encoded) {
        return Ok(Json(host_key_to_api(&host, same.clone())));
    }
    let row = state
        .store
        .set_host_transfer_key(&host_id, &encoded, state.clock.now_ms())
        .await?;
    state
        .audit(
            AuditEvent::new("host_transfer_key_registered")
                .actor(&format!("host:{host_id}"))
                .target(&host_id)
                .ip(&ip)
                .details(json!({
                    "fingerprint": key.fingerprint_hex(),
                    "replaced": previous.is_some(),
                })),
        )
        .await;
    Ok(Json(host_key_to_api(&host, row)))
}

/// `GET /api/v1/hosts/{host_id}/transfer-key` (decision 0029): a host's key, for a sender. A
/// user needs `transfers:create` (the route says so); a host key only reads the keys of its own
/// customer's hosts (403 `recipient_not_allowed` for another's). 404 when the host does not
/// exist or has registered no key: hosts do not wait for grants.
pub async fn show_host(
    State(state): State<AppState>,
    party: Party,
    ApiPath(host_id): ApiPath<String>,
) -> ApiResult<Json<HostTransferKey>> {
    let host = state
        .store
        .get_host(&host_id)
        .await?
        .ok_or_else(|| ApiError::not_found("host"))?;
    if let Party::Host { customer_id, .. } = &party {
        if host.customer_id != *customer_id {
            return Err(other_customer(&host_id));
        }
    }
    let row = state
        .store
        .host_transfer_key(&host_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("transfer key (the host's agent has not registered one yet)")
        })?;
    Ok(Json(host_key_to_api(&host, row)))
}

/// A host's refusal to act towards another customer's host.
pub(crate) fn other_customer(host_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::RecipientNotAllowed,
        format!(
            "host:{host_id} belongs to another customer: a host sends only to users and to its \
             own customer's hosts"
        ),
    )
}
