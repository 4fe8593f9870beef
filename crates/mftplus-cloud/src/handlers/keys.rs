//! Users' X25519 public keys, which senders wrap transfer keys to. The private half never
//! leaves the user's machine.

use super::find_user;
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_crypto::stream::X25519PublicKey;
use mftplus_store::UserKeyRow;
use mftplus_types::transfers::{PublicKeyBody, UserPublicKey};
use mftplus_types::ErrorCode;

pub async fn put_own(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PublicKeyBody>,
) -> ApiResult<Json<UserPublicKey>> {
    let key = X25519PublicKey::from_encoded(body.public_key.trim()).map_err(|_| {
        ApiError::new(
            ErrorCode::ValidationFailed,
            "public_key must be an encoded X25519 key (mftx25519_…)",
        )
    })?;
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
