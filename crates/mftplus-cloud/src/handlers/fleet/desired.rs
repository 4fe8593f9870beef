//! Operator edits of a host's desired state: diffed against the published state, benign
//! changes published at once (generation + 1), destructive ones turned into ops waiting for an
//! offline signature (SPEC §3, decision 0009).

use super::{desired_of, find_host, fleet_conflict, op_to_api};
use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_store::{DesiredEdit, NewEvent, NewSignedOp};
use mftplus_types::fleet::{DesiredDiff, DesiredState, PutDesiredState, PutDesiredStateResponse};
use mftplus_types::ErrorCode;
use serde_json::json;

pub async fn diff(
    State(state): State<AppState>,
    ApiPath(host_id): ApiPath<String>,
    ApiJson(body): ApiJson<PutDesiredState>,
) -> ApiResult<Json<DesiredDiff>> {
    let host = find_host(&state, &host_id).await?;
    let current = desired_of(&host)?;
    Ok(Json(DesiredDiff {
        generation: host.desired_generation as u64,
        changes: mftplus_fleet::diff(&current, &body.desired_state),
    }))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(host_id): ApiPath<String>,
    ApiJson(body): ApiJson<PutDesiredState>,
) -> ApiResult<Json<PutDesiredStateResponse>> {
    let host = find_host(&state, &host_id).await?;
    if body
        .expected_generation
        .is_some_and(|expected| expected as i64 != host.desired_generation)
    {
        return Err(fleet_conflict(mftplus_store::StoreError::Conflict(
            "generation".into(),
        )));
    }
    let current = desired_of(&host)?;
    let plan = mftplus_fleet::plan_edit(&current, &body.desired_state);
    let now_ms = state.clock.now_ms();
    let key_id = state
        .fleet
        .allowed_signers
        .entries()
        .first()
        .map(|signer| signer.key.fingerprint())
        .unwrap_or_else(|| "unpinned".into());

    let mut ops = Vec::new();
    let mut events = Vec::new();
    let in_flight = in_flight_ops(&state, &host.id, now_ms).await?;
    let mut reused = Vec::new();
    for change in &plan.destructive {
        // The same change already waiting (an operator re-running `desired set`): its op,
        // not a twin that `ops sign --pending` would sign a second time.
        if let Some(existing) = in_flight.iter().find(|op| op.carries(change)) {
            reused.push(existing.id.clone());
            continue;
        }
        let (op, event) = new_op(&state, &host, change, &caller.email, now_ms, &key_id)?;
        ops.push(op);
        events.push(event);
    }
    let (desired_json, guest_specs) = match &plan.published {
        Some(published) => {
            events.push(NewEvent {
                at_ms: now_ms,
                kind: "desired_published".into(),
                severity: "info".into(),
                customer_id: Some(host.customer_id.clone()),
                host_id: Some(host.id.clone()),
                guest_id: None,
                op_id: None,
                details_json: json!({"changes": plan.benign, "generation": host.desired_generation + 1, "by": caller.email}).to_string(),
            });
            (
                Some(serde_json::to_string(published).map_err(ApiError::internal)?),
                guest_specs(&current, published),
            )
        }
        None => (None, Vec::new()),
    };
    if desired_json.is_none() && ops.is_empty() {
        return Ok(Json(PutDesiredStateResponse {
            generation: host.desired_generation as u64,
            published: Vec::new(),
            pending_ops: ops_by_id(&state, &reused).await?,
        }));
    }
    let op_ids: Vec<String> = ops.iter().map(|op| op.id.clone()).collect();
    let after = state
        .store
        .apply_desired_edit(&DesiredEdit {
            host_id: host.id.clone(),
            expected_generation: Some(host.desired_generation),
            desired_json,
            ops,
            events,
            guest_specs,
            at_ms: now_ms,
        })
        .await
        .map_err(fleet_conflict)?;
    state
        .audit(
            AuditEvent::new("desired_state_edited")
                .actor(&caller.email)
                .target(&host.id)
                .details(json!({"published": plan.benign.len(), "pending_ops": op_ids, "already_pending": reused, "generation": after.desired_generation})),
        )
        .await;
    // The ops this edit made first, then those of its changes already in flight.
    let pending_ops = ops_by_id(
        &state,
        &op_ids.iter().chain(&reused).cloned().collect::<Vec<_>>(),
    )
    .await?;
    crate::fleet::notify::notify_soon(&state);
    Ok(Json(PutDesiredStateResponse {
        generation: after.desired_generation as u64,
        published: plan.benign,
        pending_ops,
    }))
}

/// The op awaiting an offline signature for one destructive change, with its event.
fn new_op(
    state: &AppState,
    host: &mftplus_store::HostRow,
    change: &mftplus_types::fleet::DesiredChange,
    by: &str,
    now_ms: i64,
    key_id: &str,
) -> ApiResult<(NewSignedOp, NewEvent)> {
    let op = mftplus_fleet::build_op(
        change,
        &host.id,
        now_ms / 1000,
        state.config.config.fleet.op_ttl_seconds as i64,
        key_id,
    )
    .map_err(|err| ApiError::validation(err.to_string()))?;
    let op_id = format!("op-{}", uuid::Uuid::now_v7().simple());
    let blob = String::from_utf8(op.to_canonical_bytes()).map_err(ApiError::internal)?;
    let event = NewEvent {
        at_ms: now_ms,
        kind: "op_pending_signature".into(),
        severity: "warning".into(),
        customer_id: Some(host.customer_id.clone()),
        host_id: Some(host.id.clone()),
        guest_id: change.guest_id.clone(),
        op_id: Some(op_id.clone()),
        details_json:
            json!({"op": change.op, "path": change.path, "params": change.params, "by": by})
                .to_string(),
    };
    let signed_op = NewSignedOp {
        id: op_id,
        customer_id: host.customer_id.clone(),
        host_id: host.id.clone(),
        guest_id: change.guest_id.clone(),
        op_type: change.op.clone(),
        op_blob: blob,
        nonce: op.nonce.clone(),
        issued_at_ms: op.issued_at * 1000,
        expires_at_ms: op.expires_at * 1000,
        created_by: by.to_string(),
    };
    Ok((signed_op, event))
}

/// An op still on its way to the agent (awaiting signature, signed or delivered, unexpired),
/// with what it would do.
struct InFlightOp {
    id: String,
    op: String,
    guest_id: Option<String>,
    params: serde_json::Value,
}

impl InFlightOp {
    fn carries(&self, change: &mftplus_types::fleet::DesiredChange) -> bool {
        self.op == change.op && self.guest_id == change.guest_id && self.params == change.params
    }
}

async fn in_flight_ops(state: &AppState, host_id: &str, now_ms: i64) -> ApiResult<Vec<InFlightOp>> {
    use mftplus_types::fleet::op_status::{DELIVERED, PENDING_SIGNATURE, SIGNED};
    let rows = state
        .store
        .list_ops(&mftplus_store::OpFilter {
            host_id: Some(host_id.to_string()),
            customer_id: None,
            statuses: vec![PENDING_SIGNATURE.into(), SIGNED.into(), DELIVERED.into()],
            limit: 1000,
        })
        .await?;
    Ok(rows
        .into_iter()
        .filter(|row| row.expires_at_ms >= now_ms)
        .filter_map(|row| {
            let blob: serde_json::Value = serde_json::from_str(&row.op_blob).ok()?;
            Some(InFlightOp {
                id: row.id,
                op: blob["op"].as_str()?.to_string(),
                guest_id: blob["target"]["guest_id"].as_str().map(str::to_string),
                params: blob["params"].clone(),
            })
        })
        .collect())
}

async fn ops_by_id(
    state: &AppState,
    ids: &[String],
) -> ApiResult<Vec<mftplus_types::fleet::OpInfo>> {
    let mut ops = Vec::with_capacity(ids.len());
    for id in ids {
        let row = state.store.get_op(id).await?.ok_or_else(|| {
            ApiError::new(ErrorCode::Internal, "an op vanished while being listed")
        })?;
        ops.push(op_to_api(&row));
    }
    Ok(ops)
}

/// The guest rows' mirror of their spec in the new state (`None` for guests that left it).
pub fn guest_specs(before: &DesiredState, after: &DesiredState) -> Vec<(String, Option<String>)> {
    let mut specs: Vec<(String, Option<String>)> = after
        .guests
        .iter()
        .map(|(id, guest)| (id.clone(), serde_json::to_string(&guest.spec).ok()))
        .collect();
    specs.extend(
        before
            .guests
            .keys()
            .filter(|id| !after.guests.contains_key(*id))
            .map(|id| (id.clone(), None)),
    );
    specs
}
