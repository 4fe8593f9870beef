//! Signed operations: the operator lists and signs them (the cloud holds no signing key, it
//! only checks an uploaded signature against the pinned operator keys); the agent fetches its
//! host's signed ops and reports its verdict. Each lifecycle step is one store transition with
//! its event.

use super::{desired_of, find_host, fleet_conflict, op_to_api};
use crate::audit::AuditEvent;
use crate::auth::reporter::Reporter;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::handlers::fleet::desired::guest_specs;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use mftplus_signing::{SshSig, OP_NAMESPACE};
use mftplus_store::{NewEvent, OpTransition, SignedOpRow};
use mftplus_types::fleet::queueable::check_op_status;
use mftplus_types::fleet::{op_status, OpInfo, OpStatus, OpStatusUpdate, SignOp};
use mftplus_types::ErrorCode;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpsQuery {
    /// Comma-separated statuses.
    pub status: Option<String>,
    pub host: Option<String>,
    pub customer: Option<String>,
    pub limit: Option<u32>,
}

pub async fn index(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<OpsQuery>,
) -> ApiResult<Json<Vec<OpInfo>>> {
    let listing = crate::app::fleet::OpsListing {
        statuses: crate::app::fleet::op_statuses(query.status.as_deref().unwrap_or(""))?,
        host_id: query.host,
        customer_id: query.customer,
        limit: query.limit.unwrap_or(100),
    };
    Ok(Json(crate::app::fleet::ops(&state, &listing).await?))
}

pub async fn show(
    State(state): State<AppState>,
    ApiPath(op_id): ApiPath<String>,
) -> ApiResult<Json<OpInfo>> {
    Ok(Json(op_to_api(&find_op(&state, &op_id).await?)))
}

/// An operator uploads the armored SSHSIG made on their workstation.
pub async fn sign(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(op_id): ApiPath<String>,
    ApiJson(body): ApiJson<SignOp>,
) -> ApiResult<Json<OpInfo>> {
    let op = find_op(&state, &op_id).await?;
    if op.status != OpStatus::PendingSignature {
        return Err(ApiError::new(
            ErrorCode::OpStateConflict,
            format!("the op is {}, not pending_signature", op.status),
        ));
    }
    let fingerprint = check_signature(&state, &op, &body.signature)?;
    let now = state.clock.now_ms();
    let row = state
        .store
        .transition_op(&OpTransition {
            op_id: op.id.clone(),
            from: vec![op_status::PENDING_SIGNATURE.into()],
            to: op_status::SIGNED.into(),
            signature: Some(body.signature),
            result_json: None,
            desired_after: None,
            guest_specs: Vec::new(),
            at_ms: now,
            event: op_event(
                &op,
                "op_signed",
                "info",
                now,
                json!({"by": caller.email, "signer": fingerprint}),
            ),
        })
        .await
        .map_err(fleet_conflict)?;
    state
        .audit(
            AuditEvent::new("op_signed")
                .actor(&caller.email)
                .target(&op.id)
                .details(json!({"op": op.op_type, "host": op.host_id, "signer": fingerprint})),
        )
        .await;
    Ok(Json(op_to_api(&row)))
}

/// Defence in depth: the agent is the authority, but a signature that cannot pass its
/// pipeline is refused here already, so the operator learns of a wrong key at once.
fn check_signature(state: &AppState, op: &SignedOpRow, armored: &str) -> ApiResult<String> {
    let invalid = |why: String| ApiError::new(ErrorCode::InvalidSignature, why);
    if state.fleet.allowed_signers.is_empty() {
        return Err(invalid(
            "no operator keys are pinned on this cloud (fleet.operator_keys_file)".into(),
        ));
    }
    let sig = SshSig::from_armored(armored).map_err(|err| invalid(err.to_string()))?;
    sig.check_namespace(OP_NAMESPACE)
        .map_err(|err| invalid(err.to_string()))?;
    let signer = state
        .fleet
        .allowed_signers
        .check(sig.public_key(), OP_NAMESPACE, state.clock.now_secs())
        .map_err(|why| invalid(format!("the signing key is not accepted: {why:?}")))?;
    sig.verify_signature(&signer.key, op.op_blob.as_bytes())
        .map_err(|err| {
            invalid(format!(
                "the signature does not verify over the op blob: {err}"
            ))
        })?;
    Ok(signer.key.fingerprint())
}

/// The agent's fetch: signed ops become delivered (none for a blocked customer).
pub async fn fetch(
    State(state): State<AppState>,
    reporter: Reporter,
) -> ApiResult<Json<Vec<OpInfo>>> {
    let rows = state
        .store
        .deliver_ops(reporter.host_id(), state.clock.now_ms())
        .await?;
    Ok(Json(rows.iter().map(op_to_api).collect()))
}

/// The agent's verdict. An executed op's change is folded into the desired state in the same
/// transaction, so intent and reality agree again.
pub async fn report_status(
    State(state): State<AppState>,
    reporter: Reporter,
    ApiPath((_host_id, op_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<OpStatusUpdate>,
) -> ApiResult<Json<OpInfo>> {
    let op = find_op(&state, &op_id).await?;
    if op.host_id != reporter.host_id() {
        return Err(ApiError::not_found("op"));
    }
    // The rules an edge hub also applies before it queues a verdict (issue 13).
    let verdict = check_op_status(&body).map_err(|err| ApiError::new(err.code, err.message))?;
    let (kind, severity) = match verdict {
        OpStatus::Executed => ("op_executed", "info"),
        OpStatus::Failed => ("op_failed", "warning"),
        // `check_op_status` passes only an agent's three verdicts: this is `rejected`.
        _ => ("op_rejected", "critical"),
    };
    let result_json = body.result.as_ref().map(|value| value.to_string());
    let (desired_after, specs) = if verdict == OpStatus::Executed {
        let host = find_host(&state, &op.host_id).await?;
        let current = desired_of(&host)?;
        let parsed =
            mftplus_signing::Op::parse(op.op_blob.as_bytes()).map_err(ApiError::internal)?;
        let next = mftplus_fleet::apply_executed(&current, &parsed)
            .map_err(|err| ApiError::validation(err.to_string()))?;
        let specs = guest_specs(&current, &next);
        (
            Some(serde_json::to_string(&next).map_err(ApiError::internal)?),
            specs,
        )
    } else {
        (None, Vec::new())
    };
    let now = state.clock.now_ms();
    let row = state
        .store
        .transition_op(&OpTransition {
            op_id: op.id.clone(),
            from: vec![op_status::DELIVERED.into()],
            to: body.status.clone(),
            signature: None,
            result_json,
            desired_after,
            guest_specs: specs,
            at_ms: now,
            event: op_event(
                &op,
                kind,
                severity,
                now,
                json!({"op": op.op_type, "result": body.result}),
            ),
        })
        .await
        .map_err(fleet_conflict)?;
    crate::fleet::notify::notify_soon(&state);
    Ok(Json(op_to_api(&row)))
}

fn op_event(
    op: &SignedOpRow,
    kind: &str,
    severity: &str,
    at_ms: i64,
    details: serde_json::Value,
) -> NewEvent {
    NewEvent {
        at_ms,
        kind: kind.into(),
        severity: severity.into(),
        customer_id: Some(op.customer_id.clone()),
        host_id: Some(op.host_id.clone()),
        guest_id: op.guest_id.clone(),
        op_id: Some(op.id.clone()),
        details_json: details.to_string(),
    }
}

async fn find_op(state: &AppState, op_id: &str) -> ApiResult<SignedOpRow> {
    state
        .store
        .get_op(op_id)
        .await?
        .ok_or_else(|| ApiError::not_found("op"))
}
