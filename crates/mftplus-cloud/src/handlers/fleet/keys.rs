//! Host key rotation without downtime (`docs/key-rotation.md`): the agent replaces its own key
//! (`POST /api/v1/hosts/{host_id}/key/rotate`, its host key), and the old key keeps working
//! until `fleet.host_key_grace_seconds` has passed, so reports already in flight or queued on
//! an edge hub still land.
//!
//! Crash safety: the agent writes the call's `Idempotency-Key` to `agent.db` before it calls,
//! and stores the new key when the answer comes. An agent that died in between calls again
//! with its old key (still valid: the grace) and the same idempotency key, and gets the same
//! new key. For that the cloud keeps the new key sealed under a key derived from the old one,
//! which it never stores: the database alone cannot open it, only a caller presenting the old
//! key can, and only while the grace lasts. Any other call with the replaced key is refused
//! with 409 `key_rotated`.
//!
//! An operator can also ask for a rotation (`POST /api/v1/hosts/{host_id}/key/rotation`): the
//! report envelope then says `rotate_key` until the agent's rotation lands.

use super::find_host;
use super::reports::idempotency_key;
use crate::audit::AuditEvent;
use crate::auth::reporter::{generate_key, presented_reporter_key, Reporter};
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::middleware::ClientIp;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use base64::Engine;
use mftplus_crypto::stream::{ChunkCipher, CipherId, RingCipher, NONCE_LEN};
use mftplus_crypto::{constant_time_eq, hash_api_key};
use mftplus_store::{HostKeyRotation, HostKeyRotationRow, HostRow, StoreError};
use mftplus_types::fleet::{HostKeyRotated, HostKeyRotationRequested, HOST_KEY_PREFIX};
use mftplus_types::ErrorCode;
use serde_json::json;

/// Domain separation of the sealing key; also the AEAD's associated data.
const SEAL_LABEL: &str = "mftplus host key rotation v1";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

/// The agent's own host key (the guard admitted it for this host) is replaced by a new one.
pub async fn rotate(
    State(state): State<AppState>,
    reporter: Reporter,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> ApiResult<Json<HostKeyRotated>> {
    let presented = presented_reporter_key(&headers)
        .ok_or_else(|| ApiError::unauthenticated("this route needs the host's own key"))?;
    let idem =
        idempotency_key(&headers)?.unwrap_or_else(|| mftplus_crypto::secrets::random_base62(32));
    let host = find_host(&state, reporter.host_id()).await?;
    let presented_hash = hash_api_key(presented);
    let answer = if constant_time_eq(host.key_hash.as_bytes(), presented_hash.as_bytes()) {
        fresh(&state, &host, presented, &idem).await?
    } else {
        repeated(&state, &host, presented, &presented_hash, &idem).await?
    };
    state
        .audit(
            AuditEvent::new("host_key_rotated")
                .actor(&format!("host:{}", host.id))
                .target(&host.id)
                .ip(&ip)
                .details(json!({
                    "customer_id": host.customer_id,
                    "previous_key_valid_until": answer.previous_key_valid_until,
                    "repeated": answer.repeated,
                })),
        )
        .await;
    Ok(Json(answer))
}

/// An operator asks the host's agent to rotate its key; the envelope of its next report says
/// so, until the rotation lands.
pub async fn request_rotation(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(host_id): ApiPath<String>,
) -> ApiResult<Json<HostKeyRotationRequested>> {
    let now = state.clock.now_ms();
    state
        .store
        .request_host_key_rotation(&host_id, &caller.email, now)
        .await
        .map_err(|err| match err {
            StoreError::NotFound => ApiError::not_found("host"),
            other => other.into(),
        })?;
    state
        .audit(
            AuditEvent::new("host_key_rotation_requested")
                .actor(&caller.email)
                .target(&host_id)
                .ip(&ip),
        )
        .await;
    Ok(Json(HostKeyRotationRequested {
        host_id,
        requested_at: rfc3339(now),
    }))
}

/// A first call with the current key: a new key, the old one kept for the grace.
async fn fresh(
    state: &AppState,
    host: &HostRow,
    presented: &str,
    idem: &str,
) -> ApiResult<HostKeyRotated> {
    let new_key = generate_key(HOST_KEY_PREFIX);
    let now = state.clock.now_ms();
    let grace_ms = state
        .config
        .config
        .fleet
        .host_key_grace_seconds
        .saturating_mul(1000);
    let until = now.saturating_add(i64::try_from(grace_ms).unwrap_or(i64::MAX));
    let rotation = HostKeyRotation {
        host_id: host.id.clone(),
        expected_key_hash: host.key_hash.clone(),
        new_key_hash: hash_api_key(&new_key),
        previous_valid_until_ms: until,
        idempotency_key: idem.to_string(),
        sealed_new_key: seal(presented, &host.id, idem, &new_key)?,
        at_ms: now,
    };
    state
        .store
        .rotate_host_key_with_grace(&rotation)
        .await
        .map_err(|err| match err {
            StoreError::Conflict(_) => already_rotated(),
            other => other.into(),
        })?;
    state.forget_reporters();
    Ok(HostKeyRotated {
        host_id: host.id.clone(),
        host_key: new_key,
        previous_key_valid_until: rfc3339(until),
        repeated: false,
    })
}

/// A call with the key the latest rotation replaced: the same answer again, if it carries that
/// rotation's idempotency key and the new key is still the host's.
async fn repeated(
    state: &AppState,
    host: &HostRow,
    presented: &str,
    presented_hash: &str,
    idem: &str,
) -> ApiResult<HostKeyRotated> {
    let kept: Option<HostKeyRotationRow> = state.store.get_host_key_rotation(&host.id).await?;
    let Some(kept) = kept.filter(|kept| {
        constant_time_eq(kept.previous_key_hash.as_bytes(), presented_hash.as_bytes())
            && constant_time_eq(kept.idempotency_key.as_bytes(), idem.as_bytes())
    }) else {
        return Err(already_rotated());
    };
    let new_key = open(presented, &host.id, idem, &kept.sealed_new_key)
        .ok_or_else(|| ApiError::internal("a kept host key rotation does not open"))?;
    if !constant_time_eq(hash_api_key(&new_key).as_bytes(), host.key_hash.as_bytes()) {
        // Replaced since (a later rotation or a re-enrollment): nothing to give back.
        return Err(already_rotated());
    }
    Ok(HostKeyRotated {
        host_id: host.id.clone(),
        host_key: new_key,
        previous_key_valid_until: rfc3339(kept.previous_valid_until_ms),
        repeated: true,
    })
}

fn already_rotated() -> ApiError {
    ApiError::new(
        ErrorCode::KeyRotated,
        "this host key was already replaced by a rotation: use the new key, or repeat the \
         rotation with the same Idempotency-Key",
    )
}

/// The AEAD that seals a rotation's new key. Its key is SHA-256 over the label, the host, the
/// idempotency key, a random salt and the old host key: the old key (238 random bits, stored
/// only as its own SHA-256) is the secret, so the hash is a sound KDF here, and the salt makes
/// every sealing key fresh, which is why a fixed nonce is safe.
fn cipher(old_key: &str, host_id: &str, idem: &str, salt: &str) -> RingCipher {
    let material = format!("{SEAL_LABEL}\n{host_id}\n{idem}\n{salt}\n{old_key}");
    RingCipher::new(
        CipherId::Aes256Gcm,
        &mftplus_crypto::api_key_digest(&material),
    )
}

/// `salt.base64(ciphertext ‖ tag)`.
fn seal(old_key: &str, host_id: &str, idem: &str, new_key: &str) -> ApiResult<String> {
    let salt = mftplus_crypto::secrets::random_base62(22);
    let mut buf = new_key.as_bytes().to_vec();
    cipher(old_key, host_id, idem, &salt)
        .seal_in_place([0; NONCE_LEN], SEAL_LABEL.as_bytes(), &mut buf)
        .map_err(|_| ApiError::internal("sealing a rotated host key failed"))?;
    Ok(format!("{salt}.{}", B64.encode(buf)))
}

fn open(old_key: &str, host_id: &str, idem: &str, sealed: &str) -> Option<String> {
    let (salt, body) = sealed.split_once('.')?;
    let mut buf = B64.decode(body).ok()?;
    cipher(old_key, host_id, idem, salt)
        .open_in_place([0; NONCE_LEN], SEAL_LABEL.as_bytes(), &mut buf)
        .ok()?;
    String::from_utf8(buf).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_with_the_old_key_host_and_idempotency_key() {
        let sealed = seal("mfth_old", "h-1", "idem-1", "mfth_new").unwrap();
        assert!(!sealed.contains("mfth_new"));
        assert_eq!(
            open("mfth_old", "h-1", "idem-1", &sealed).as_deref(),
            Some("mfth_new")
        );
        assert_eq!(open("mfth_other", "h-1", "idem-1", &sealed), None);
        assert_eq!(open("mfth_old", "h-2", "idem-1", &sealed), None);
        assert_eq!(open("mfth_old", "h-1", "idem-2", &sealed), None);
        assert_eq!(open("mfth_old", "h-1", "idem-1", "garbage"), None);
        let again = seal("mfth_old", "h-1", "idem-1", "mfth_new").unwrap();
        assert_ne!(sealed, again, "a fresh salt each time");
    }
}
