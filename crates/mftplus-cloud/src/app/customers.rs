//! A customer's lifecycle as an operator drives it, for the API (`/api/v1/customers/{id}/…`)
//! and the dashboard's host page alike: block and unblock, and a new retrieval password.
//! Every action is audited and put on the events timeline the same way ([`record`]).

use crate::audit::AuditEvent;
use crate::error::{ApiError, ApiResult};
use crate::handlers::fleet::{customer_to_api, find_customer};
use crate::state::AppState;
use mftplus_store::{CustomerUpdate, NewEvent};
use mftplus_types::fleet::{CreatedCustomer, CustomerInfo};
use serde_json::{json, Value};

/// Refuses the customer's boxes (envelope `blocked`, no op delivered, liveness skipped) and
/// its retrieval password until unblocked.
pub async fn block(
    state: &AppState,
    actor: &str,
    ip: &str,
    customer_id: &str,
) -> ApiResult<CustomerInfo> {
    set_status(state, actor, ip, customer_id, "blocked", "customer_blocked").await
}

pub async fn unblock(
    state: &AppState,
    actor: &str,
    ip: &str,
    customer_id: &str,
) -> ApiResult<CustomerInfo> {
    set_status(
        state,
        actor,
        ip,
        customer_id,
        "active",
        "customer_unblocked",
    )
    .await
}

async fn set_status(
    state: &AppState,
    actor: &str,
    ip: &str,
    customer_id: &str,
    status: &str,
    kind: &str,
) -> ApiResult<CustomerInfo> {
    let update = CustomerUpdate {
        status: Some(status.into()),
        updated_at_ms: state.clock.now_ms(),
        ..CustomerUpdate::default()
    };
    let row = state.store.update_customer(customer_id, &update).await?;
    record(state, actor, ip, kind, customer_id, json!({})).await?;
    Ok(customer_to_api(&row))
}

/// Replaces the customer's retrieval password with a generated passphrase; the old one stops
/// working at once. The passphrase is in the answer only (the cloud keeps its Argon2id hash),
/// never in the audit record or the event.
pub async fn reset_retrieval_password(
    state: &AppState,
    actor: &str,
    ip: &str,
    customer_id: &str,
) -> ApiResult<CreatedCustomer> {
    find_customer(state, customer_id).await?;
    let password = mftplus_fleet::hungarian_passphrase();
    let update = CustomerUpdate {
        retrieval_password_hash: Some(hash_password(password.clone()).await?),
        updated_at_ms: state.clock.now_ms(),
        ..CustomerUpdate::default()
    };
    let row = state.store.update_customer(customer_id, &update).await?;
    record(
        state,
        actor,
        ip,
        "retrieval_password_reset",
        customer_id,
        json!({}),
    )
    .await?;
    Ok(CreatedCustomer {
        customer: customer_to_api(&row),
        retrieval_password: password,
    })
}

/// Argon2id, off the async threads.
pub async fn hash_password(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || mftplus_crypto::password::hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

/// Audits an operator action on a customer and puts it on the events timeline.
pub async fn record(
    state: &AppState,
    actor: &str,
    ip: &str,
    kind: &str,
    customer_id: &str,
    details: Value,
) -> ApiResult<()> {
    state
        .audit(
            AuditEvent::new(kind)
                .actor(actor)
                .target(customer_id)
                .ip(ip)
                .details(details.clone()),
        )
        .await;
    let mut details = details;
    details["by"] = json!(actor);
    state
        .store
        .append_events(&[NewEvent {
            at_ms: state.clock.now_ms(),
            kind: kind.into(),
            severity: "info".into(),
            customer_id: Some(customer_id.into()),
            host_id: None,
            guest_id: None,
            op_id: None,
            details_json: details.to_string(),
        }])
        .await?;
    Ok(())
}
