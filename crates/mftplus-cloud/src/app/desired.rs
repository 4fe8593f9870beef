//! Operator edits of a host's desired state, for the API (`PUT …/desired-state`, `POST
//! …/desired-state/diff`) and the dashboard's desired-state page alike (SPEC §3, decision
//! 0009): the edit is diffed against the published state, benign changes are published at
//! once (generation + 1), destructive ones become ops waiting for an offline signature.
//!
//! The classification is `mftplus_fleet`'s alone (`diff`, `plan_edit`): the preview a page
//! shows and what publishing does cannot disagree.

use crate::audit::AuditEvent;
use crate::error::{ApiError, ApiResult};
use crate::handlers::fleet::{desired_of, find_host, fleet_conflict, op_to_api};
use crate::state::AppState;
use mftplus_fleet::EditPlan;
use mftplus_store::{DesiredEdit, HostRow, NewEvent, NewSignedOp};
use mftplus_types::fleet::{
    DesiredChange, DesiredDiff, DesiredState, DesiredStateResponse, OpInfo, PutDesiredState,
    PutDesiredStateResponse,
};
use mftplus_types::ErrorCode;
use serde_json::json;

/// The host's published desired state with its generation.
pub async fn current(state: &AppState, host_id: &str) -> ApiResult<DesiredStateResponse> {
    let host = find_host(state, host_id).await?;
    Ok(DesiredStateResponse {
        generation: host.desired_generation as u64,
        desired_state: desired_of(&host)?,
    })
}

/// What publishing `proposed` would change, each change classified benign or destructive.
pub async fn diff(
    state: &AppState,
    host_id: &str,
    proposed: &DesiredState,
) -> ApiResult<DesiredDiff> {
    let host = find_host(state, host_id).await?;
    let current = desired_of(&host)?;
    Ok(DesiredDiff {
        generation: host.desired_generation as u64,
        changes: mftplus_fleet::diff(&current, proposed),
    })
}

/// Publishes the benign part of `edit` and turns each destructive change into an op awaiting
/// a signature (or finds the op already waiting for it). A stale `expected_generation` is 409
/// `generation_conflict`, checked here and again in the store's transaction.
pub async fn update(
    state: &AppState,
    actor: &str,
    ip: &str,
    host_id: &str,
    edit: &PutDesiredState,
) -> ApiResult<PutDesiredStateResponse> {
    let host = find_host(state, host_id).await?;
    if edit
        .expected_generation
        .is_some_and(|expected| expected as i64 != host.desired_generation)
    {
        return Err(generation_conflict());
    }
    let current = desired_of(&host)?;
    let plan = mftplus_fleet::plan_edit(&current, &edit.desired_state);
    let now_ms = state.clock.now_ms();
    let pending = pending_ops(state, &host, &plan.destructive, actor, now_ms).await?;
    let publication = publication(&host, &current, &plan, actor, now_ms)?;
    if publication.is_none() && pending.ops.is_empty() {
        return Ok(PutDesiredStateResponse {
            generation: host.desired_generation as u64,
            published: Vec::new(),
            pending_ops: ops_by_id(state, &pending.reused).await?,
        });
    }
    let made: Vec<String> = pending.ops.iter().map(|op| op.id.clone()).collect();
    let generation = apply(
        state,
        &host,
        pending.ops,
        pending.events,
        publication,
        now_ms,
    )
    .await?;
    state
        .audit(
            AuditEvent::new("desired_state_edited")
                .actor(actor)
                .target(&host.id)
                .ip(ip)
                .details(json!({"published": plan.benign.len(), "pending_ops": made, "already_pending": pending.reused, "generation": generation})),
        )
        .await;
    // The ops this edit made first, then those of its changes already in flight.
    let ids: Vec<String> = made.into_iter().chain(pending.reused).collect();
    let pending_ops = ops_by_id(state, &ids).await?;
    crate::fleet::notify::notify_soon(state);
    Ok(PutDesiredStateResponse {
        generation: generation as u64,
        published: plan.benign,
        pending_ops,
    })
}

/// The API's answer to a stale base generation.
fn generation_conflict() -> ApiError {
    fleet_conflict(mftplus_store::StoreError::Conflict("generation".into()))
}

/// The ops (with their events) an edit's destructive changes need, and the ids of those
/// already waiting for the same change.
struct Pending {
    ops: Vec<NewSignedOp>,
    events: Vec<NewEvent>,
    reused: Vec<String>,
}

async fn pending_ops(
    state: &AppState,
    host: &HostRow,
    destructive: &[DesiredChange],
    actor: &str,
    now_ms: i64,
) -> ApiResult<Pending> {
    let mut pending = Pending {
        ops: Vec::new(),
        events: Vec::new(),
        reused: Vec::new(),
    };
    if destructive.is_empty() {
        return Ok(pending);
    }
    let key_id = signing_key_id(state);
    let in_flight = in_flight_ops(state, &host.id, now_ms).await?;
    for change in destructive {
        // The same change already waiting (an operator re-running `desired set`): its op,
        // not a twin that `ops sign --pending` would sign a second time.
        if let Some(existing) = in_flight.iter().find(|op| op.carries(change)) {
            pending.reused.push(existing.id.clone());
            continue;
        }
        let (op, event) = new_op(state, host, change, actor, now_ms, &key_id)?;
        pending.ops.push(op);
        pending.events.push(event);
    }
    Ok(pending)
}

/// The key the op blobs name as their expected signer: the first pinned operator key.
fn signing_key_id(state: &AppState) -> String {
    state
        .fleet
        .allowed_signers
        .entries()
        .first()
        .map(|signer| signer.key.fingerprint())
        .unwrap_or_else(|| "unpinned".into())
}

/// What an edit publishes: the new state as stored, the guest rows' mirror of their specs,
/// and the timeline's event.
struct Publication {
    desired_json: String,
    guest_specs: Vec<(String, Option<String>)>,
    event: NewEvent,
}

fn publication(
    host: &HostRow,
    current: &DesiredState,
    plan: &EditPlan,
    actor: &str,
    now_ms: i64,
) -> ApiResult<Option<Publication>> {
    let Some(published) = &plan.published else {
        return Ok(None);
    };
    let event = NewEvent {
        at_ms: now_ms,
        kind: "desired_published".into(),
        severity: "info".into(),
        customer_id: Some(host.customer_id.clone()),
        host_id: Some(host.id.clone()),
        guest_id: None,
        op_id: None,
        details_json:
            json!({"changes": plan.benign, "generation": host.desired_generation + 1, "by": actor})
                .to_string(),
    };
    Ok(Some(Publication {
        desired_json: serde_json::to_string(published).map_err(ApiError::internal)?,
        guest_specs: guest_specs(current, published),
        event,
    }))
}

/// Writes the edit in one store transaction (still at the host's generation); answers the
/// generation after it.
async fn apply(
    state: &AppState,
    host: &HostRow,
    ops: Vec<NewSignedOp>,
    mut events: Vec<NewEvent>,
    publication: Option<Publication>,
    now_ms: i64,
) -> ApiResult<i64> {
    let (desired_json, guest_specs) = match publication {
        Some(publication) => {
            events.push(publication.event);
            (Some(publication.desired_json), publication.guest_specs)
        }
        None => (None, Vec::new()),
    };
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
    Ok(after.desired_generation)
}

/// The op awaiting an offline signature for one destructive change, with its event.
fn new_op(
    state: &AppState,
    host: &HostRow,
    change: &DesiredChange,
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
    fn carries(&self, change: &DesiredChange) -> bool {
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

/// The ops of an edit, in order: at most one per destructive change of it.
async fn ops_by_id(state: &AppState, ids: &[String]) -> ApiResult<Vec<OpInfo>> {
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
