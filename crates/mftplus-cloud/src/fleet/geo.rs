//! The customer's geo policy, reported by its guest controller, reconciled into the edge
//! firewall (SPEC §3). The firewall's API token lives only in the cloud; the customer's zone is
//! `cloudflare_zone_id` in the customer's config (cloud-only: never emitted to a box).

use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::handlers::fleet::find_customer;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_store::{CustomerRow, NewEvent};
use mftplus_types::fleet::GeoPolicy;
use mftplus_types::ErrorCode;
use serde_json::{json, Value};

fn zone_of(customer: &CustomerRow) -> Option<String> {
    serde_json::from_str::<Value>(&customer.config_json)
        .ok()?
        .get("cloudflare_zone_id")?
        .as_str()
        .map(str::to_string)
}

/// Applies the policy if it differs from the last one applied by this process. Failures are
/// logged and put on the timeline; the report itself is already stored.
pub async fn reconcile(state: &AppState, customer_id: &str, policy: &GeoPolicy) {
    let Some(firewall) = &state.fleet.firewall else {
        return;
    };
    if state.fleet.geo_applied.lock().await.get(customer_id) == Some(policy) {
        return;
    }
    let Ok(Some(customer)) = state.store.get_customer(customer_id).await else {
        return;
    };
    let Some(zone) = zone_of(&customer) else {
        return;
    };
    let (kind, severity, details) = match firewall.apply_geo(&zone, customer_id, policy).await {
        Ok(()) => {
            state
                .fleet
                .geo_applied
                .lock()
                .await
                .insert(customer_id.to_string(), policy.clone());
            ("geo_applied", "info", json!({"policy": policy}))
        }
        Err(err) => {
            tracing::warn!(customer = %customer_id, error = %err, "applying the geo policy failed");
            (
                "geo_apply_failed",
                "warning",
                json!({"policy": policy, "error": err.to_string()}),
            )
        }
    };
    let _ = state
        .store
        .append_events(&[customer_event(state, customer_id, kind, severity, details)])
        .await;
}

/// The self-lockout override: removes every rule the cloud manages for the customer.
pub async fn remove_all(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(customer_id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let customer = find_customer(&state, &customer_id).await?;
    let Some(firewall) = &state.fleet.firewall else {
        return Err(ApiError::new(
            ErrorCode::NotConfigured,
            "no edge firewall is configured (edge_firewall.cloudflare)",
        ));
    };
    let zone = zone_of(&customer)
        .ok_or_else(|| ApiError::validation("the customer's config has no cloudflare_zone_id"))?;
    let removed = firewall
        .remove_all(&zone, &customer_id)
        .await
        .map_err(|err| {
            ApiError::new(
                ErrorCode::Unavailable,
                format!("the edge firewall refused: {err}"),
            )
        })?;
    state.fleet.geo_applied.lock().await.remove(&customer_id);
    state
        .audit(
            AuditEvent::new("geo_rules_removed")
                .actor(&caller.email)
                .target(&customer_id)
                .details(json!({"removed": removed})),
        )
        .await;
    state
        .store
        .append_events(&[customer_event(
            &state,
            &customer_id,
            "geo_rules_removed",
            "warning",
            json!({"removed": removed, "by": caller.email}),
        )])
        .await?;
    Ok(Json(
        json!({"customer_id": customer_id, "removed": removed}),
    ))
}

fn customer_event(
    state: &AppState,
    customer_id: &str,
    kind: &str,
    severity: &str,
    details: Value,
) -> NewEvent {
    NewEvent {
        at_ms: state.clock.now_ms(),
        kind: kind.into(),
        severity: severity.into(),
        customer_id: Some(customer_id.into()),
        host_id: None,
        guest_id: None,
        op_id: None,
        details_json: details.to_string(),
    }
}
