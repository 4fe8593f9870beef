//! The fleet control plane's handlers (SPEC §3, decision 0009), one module per resource. The
//! rules (diff, classification, op blobs, config generation) live in `mftplus-fleet`; rows in
//! the `FleetStore`. This module holds the conversions to wire types and what several
//! handlers share: events, the retrieval-password check, loading a host's desired state.

pub mod customers;
pub mod desired;
pub mod enroll;
pub mod events;
pub mod hosts;
pub mod keys;
pub mod ops;
pub mod reports;

use crate::audit::AuditEvent;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use mftplus_store::{
    CustomerRow, EventRow, GuestRow, HostRow, NewEvent, NotificationLogRow, SignedOpRow,
};
use mftplus_types::fleet::{
    CustomerInfo, DesiredState, EventInfo, GuestInfo, HostInfo, NotificationInfo, OpInfo,
    PendingChange, RETRIEVAL_PASSWORD_HEADER,
};
use mftplus_types::ErrorCode;
use serde_json::{json, Value};

pub fn customer_to_api(row: &CustomerRow) -> CustomerInfo {
    CustomerInfo {
        id: row.id.clone(),
        name: row.name.clone(),
        email: row.email.clone(),
        domain: row.domain.clone(),
        locale: row.locale.clone(),
        status: row.status.clone(),
        config: serde_json::from_str(&row.config_json).unwrap_or_else(|_| json!({})),
        created_at: rfc3339(row.created_at_ms),
        updated_at: rfc3339(row.updated_at_ms),
    }
}

pub fn host_to_api(state: &AppState, row: &HostRow) -> HostInfo {
    let pending: Vec<PendingChange> =
        serde_json::from_str(&row.pending_signature_json).unwrap_or_default();
    let fleet = &state.config.config.fleet;
    let convergence = mftplus_fleet::convergence(
        row.desired_generation,
        row.applied_generation,
        row.last_report_at_ms,
        row.desired_updated_at_ms,
        !pending.is_empty(),
        state.clock.now_ms(),
        fleet.drift_after_seconds as i64 * 1000,
    );
    HostInfo {
        host_id: row.id.clone(),
        customer_id: row.customer_id.clone(),
        hostname: row.hostname.clone(),
        platform: row.platform.clone(),
        agent_version: row.agent_version.clone(),
        controller_version: row.controller_version.clone(),
        desired_generation: row.desired_generation as u64,
        applied_generation: row.applied_generation as u64,
        convergence: convergence.to_string(),
        liveness: if row.last_report_at_ms.is_none() {
            "never".into()
        } else {
            row.liveness.clone()
        },
        last_report_at: row.last_report_at_ms.map(rfc3339),
        enrolled_at: rfc3339(row.enrolled_at_ms),
        recovery_mode_until: row
            .recovery_mode_until_ms
            .filter(|until| *until > state.clock.now_ms())
            .map(rfc3339),
        backup_namespace: row.backup_namespace.clone(),
        repository_fingerprint: row.repository_fingerprint.clone(),
        escrow_at: row.escrow_at_ms.map(rfc3339),
        pending_signature: pending,
    }
}

pub fn guest_to_api(row: &GuestRow) -> GuestInfo {
    GuestInfo {
        guest_id: row.id.clone(),
        customer_id: row.customer_id.clone(),
        host_id: row.host_id.clone(),
        display_name: row.display_name.clone(),
        controller_version: row.controller_version.clone(),
        status: row.status.clone(),
        last_seen_at: row.last_seen_at_ms.map(rfc3339),
        last_report_at: row.last_report_at_ms.map(rfc3339),
        created_at: rfc3339(row.created_at_ms),
    }
}

pub fn op_to_api(row: &SignedOpRow) -> OpInfo {
    OpInfo {
        op_id: row.id.clone(),
        customer_id: row.customer_id.clone(),
        host_id: row.host_id.clone(),
        guest_id: row.guest_id.clone(),
        op_type: row.op_type.clone(),
        blob: row.op_blob.clone(),
        signature: row.signature.clone(),
        status: row.status.clone(),
        nonce: row.nonce.clone(),
        issued_at: rfc3339(row.issued_at_ms),
        expires_at: rfc3339(row.expires_at_ms),
        signed_at: row.signed_at_ms.map(rfc3339),
        delivered_at: row.delivered_at_ms.map(rfc3339),
        finished_at: row.finished_at_ms.map(rfc3339),
        result: row
            .result_json
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok()),
    }
}

pub fn event_to_api(row: &EventRow) -> EventInfo {
    EventInfo {
        id: row.id,
        at: rfc3339(row.at_ms),
        kind: row.kind.clone(),
        severity: row.severity.clone(),
        customer_id: row.customer_id.clone(),
        host_id: row.host_id.clone(),
        guest_id: row.guest_id.clone(),
        op_id: row.op_id.clone(),
        details: serde_json::from_str(&row.details_json).unwrap_or_else(|_| json!({})),
    }
}

pub fn notification_to_api(row: &NotificationLogRow) -> NotificationInfo {
    NotificationInfo {
        id: row.id,
        at: rfc3339(row.at_ms),
        event_id: row.event_id,
        customer_id: row.customer_id.clone(),
        tier: row.tier.clone(),
        channel: row.channel.clone(),
        recipient: row.recipient.clone(),
        status: row.status.clone(),
        error: row.error.clone(),
    }
}

/// An event about a host (and maybe one of its guests).
pub fn host_event(
    state: &AppState,
    kind: &str,
    severity: &str,
    host: &HostRow,
    guest_id: Option<&str>,
    details: Value,
) -> NewEvent {
    NewEvent {
        at_ms: state.clock.now_ms(),
        kind: kind.into(),
        severity: severity.into(),
        customer_id: Some(host.customer_id.clone()),
        host_id: Some(host.id.clone()),
        guest_id: guest_id.map(str::to_string),
        op_id: None,
        details_json: details.to_string(),
    }
}

pub async fn find_host(state: &AppState, host_id: &str) -> ApiResult<HostRow> {
    state
        .store
        .get_host(host_id)
        .await?
        .ok_or_else(|| ApiError::not_found("host"))
}

pub async fn find_customer(state: &AppState, customer_id: &str) -> ApiResult<CustomerRow> {
    state
        .store
        .get_customer(customer_id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))
}

/// The host's published desired state. A row that does not parse is a bug or tampering:
/// refuse to build on it rather than silently start from nothing.
pub fn desired_of(host: &HostRow) -> ApiResult<DesiredState> {
    serde_json::from_str(&host.desired_json).map_err(ApiError::internal)
}

/// Checks the retrieval password of a customer for a public route. Failures count in the login
/// throttle against the (customer, address) pair, the address and the customer, which delays
/// the guessing address rather than locking the customer out (decision 0007); both outcomes
/// and every refusal are audited. Unknown customers cost the same Argon2 verification as known
/// ones.
pub async fn check_retrieval_password(
    state: &AppState,
    headers: &http::HeaderMap,
    customer_id: &str,
    client_ip: &str,
    purpose: &str,
) -> ApiResult<CustomerRow> {
    let now = state.clock.now_secs();
    let account = format!("customer:{customer_id}");
    let address = format!("retrieval-ip:{client_ip}");
    if let Err(throttled) = state.login_throttle.check(&account, &address, now) {
        state
            .audit(
                AuditEvent::new("retrieval_password_throttled")
                    .actor(customer_id)
                    .outcome("denied")
                    .ip(client_ip)
                    .details(json!({
                        "purpose": purpose,
                        "throttle": throttled.kind.as_str(),
                        "retry_after": throttled.retry_after,
                    })),
            )
            .await;
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            "too many failed attempts; try again later",
        )
        .with_retry_after(throttled.retry_after));
    }
    // Generated passphrases are Hungarian words: the header carries UTF-8, which
    // `HeaderValue::to_str` (visible ASCII only) would refuse.
    let presented = headers
        .get(RETRIEVAL_PASSWORD_HEADER)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .map(str::to_string)
        .ok_or_else(|| ApiError::unauthenticated("the X-Retrieval-Password header is required"))?;
    let customer = state.store.get_customer(customer_id).await?;
    let hash = customer.as_ref().map(|c| c.retrieval_password_hash.clone());
    let verified = tokio::task::spawn_blocking(move || {
        let phc = hash
            .as_deref()
            .unwrap_or_else(|| mftplus_crypto::password::dummy_hash());
        mftplus_crypto::password::verify_password(&presented, phc) && hash.is_some()
    })
    .await
    .map_err(ApiError::internal)?;
    let Some(customer) = customer.filter(|_| verified) else {
        state
            .login_throttle
            .record_failure(&account, &address, state.clock.now_secs());
        state
            .audit(
                AuditEvent::new("retrieval_password_failed")
                    .actor(customer_id)
                    .outcome("failure")
                    .ip(client_ip)
                    .details(json!({"purpose": purpose})),
            )
            .await;
        return Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "unknown customer or wrong retrieval password",
        ));
    };
    state
        .login_throttle
        .record_success(&account, &address, state.clock.now_secs());
    if customer.status == "blocked" {
        return Err(ApiError::new(
            ErrorCode::CustomerBlocked,
            "this customer is blocked",
        ));
    }
    Ok(customer)
}

/// Maps a store conflict on the desired state or an op to its specific API code.
pub fn fleet_conflict(err: mftplus_store::StoreError) -> ApiError {
    match err {
        mftplus_store::StoreError::Conflict(what) if what == "generation" => ApiError::new(
            ErrorCode::GenerationConflict,
            "the desired state changed since the expected generation; fetch it and retry",
        ),
        mftplus_store::StoreError::Conflict(what) if what == "op_status" => ApiError::new(
            ErrorCode::OpStateConflict,
            "the op is not in a state that allows this",
        ),
        other => other.into(),
    }
}
