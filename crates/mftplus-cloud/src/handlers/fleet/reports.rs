//! The two report streams: `POST /host-report` (the agent's heartbeat, poll and mirror of the
//! box, answered with the control envelope) and `POST /report` (the guest controller's
//! app-domain report). Both go through the group committers; the operator reads them back with
//! `GET /hosts/{id}/reports`.

use super::find_host;
use crate::auth::reporter::Reporter;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJsonVerbatim, ApiPath, ApiQuery};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use mftplus_store::{GuestReality, NewGuestReport, NewHostReport};
use mftplus_types::fleet::queueable::check_host_report;
use mftplus_types::fleet::{
    is_valid_idempotency_key, ControlEnvelope, GuestReport, GuestStatus, HostReport,
    HostReportInfo, IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_KEY_RULE,
};
use serde::Deserialize;

pub async fn host_report(
    State(state): State<AppState>,
    reporter: Reporter,
    headers: HeaderMap,
    ApiJsonVerbatim(report, raw): ApiJsonVerbatim<HostReport>,
) -> ApiResult<Json<ControlEnvelope>> {
    let idempotency_key = idempotency_key(&headers)?;
    let Reporter::Host {
        host_id,
        customer_id,
    } = reporter
    else {
        return Err(ApiError::forbidden("only a host key sends host reports"));
    };
    if report.host_id != host_id {
        return Err(ApiError::forbidden(
            "the report names another host than the key's",
        ));
    }
    // The rules an edge hub also applies before it queues a report (issue 13).
    check_host_report(&report).map_err(|err| ApiError::new(err.code, err.message))?;
    let report_json = String::from_utf8(raw.to_vec())
        .map_err(|_| ApiError::validation("the report is not UTF-8"))?;
    // Stored with the report: liveness judges the host by the interval it was told.
    let poll_interval_seconds = state
        .fleet
        .poll_interval(&host_id, &state.config.config.fleet);
    let row = NewHostReport {
        host_id,
        customer_id,
        received_at_ms: state.clock.now_ms(),
        agent_version: report.agent_version.clone(),
        controller_version: report.controller_version.clone(),
        applied_generation: clamp_i64(report.applied_generation),
        cpu_percent: report.system.cpu_percent,
        memory_used_bytes: clamp_i64(report.system.memory_used_bytes),
        memory_total_bytes: clamp_i64(report.system.memory_total_bytes),
        disk_used_bytes: clamp_i64(report.system.disk_used_bytes),
        disk_total_bytes: clamp_i64(report.system.disk_total_bytes),
        guests_total: report.guests.len() as i64,
        guests_running: report
            .guests
            .iter()
            .filter(|g| g.status == GuestStatus::Running)
            .count() as i64,
        last_backups_json: to_json(&report.storage_targets),
        pending_signature_json: to_json(&report.pending_signature),
        report_json,
        poll_interval_seconds: clamp_i64(poll_interval_seconds),
        guests: report
            .guests
            .iter()
            .map(|guest| GuestReality {
                guest_id: guest.guest_id.clone(),
                status: guest.status.as_str().into(),
                controller_version: guest.controller_version.clone(),
            })
            .collect(),
        idempotency_key,
    };
    let ack = state.fleet.host_ingest.submit(row).await?;
    Ok(Json(ControlEnvelope {
        poll_interval_seconds,
        blocked: ack.blocked,
        desired_generation: ack.desired_generation as u64,
        has_signed_ops: ack.has_signed_ops,
        rotate_key: ack.rotate_key,
    }))
}

pub async fn guest_report(
    State(state): State<AppState>,
    reporter: Reporter,
    headers: HeaderMap,
    ApiJsonVerbatim(report, raw): ApiJsonVerbatim<GuestReport>,
) -> ApiResult<StatusCode> {
    let idempotency_key = idempotency_key(&headers)?;
    let Reporter::Guest {
        guest_id,
        host_id,
        customer_id,
    } = reporter
    else {
        return Err(ApiError::forbidden("only a guest key sends guest reports"));
    };
    if report.guest_id.as_deref().is_some_and(|id| id != guest_id) {
        return Err(ApiError::forbidden(
            "the report names another guest than the key's",
        ));
    }
    let report_json = String::from_utf8(raw.to_vec())
        .map_err(|_| ApiError::validation("the report is not UTF-8"))?;
    let geo = report.geo.clone();
    state
        .fleet
        .guest_ingest
        .submit(NewGuestReport {
            guest_id,
            host_id,
            customer_id: customer_id.clone(),
            received_at_ms: state.clock.now_ms(),
            controller_version: report.controller_version.clone(),
            cpu_percent: report.cpu_percent,
            memory_used_bytes: report.memory_used_bytes.map(clamp_i64),
            memory_total_bytes: report.memory_total_bytes.map(clamp_i64),
            report_json,
            idempotency_key,
        })
        .await?;
    if let Some(policy) = geo {
        crate::fleet::geo::reconcile(&state, &customer_id, &policy).await;
    }
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportsQuery {
    pub limit: Option<u32>,
}

pub async fn index(
    State(state): State<AppState>,
    ApiPath(host_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ReportsQuery>,
) -> ApiResult<Json<Vec<HostReportInfo>>> {
    find_host(&state, &host_id).await?;
    let limit = query.limit.unwrap_or(20).clamp(1, 500);
    let rows = state.store.list_host_reports(&host_id, limit).await?;
    Ok(Json(
        rows.into_iter()
            .map(|row| HostReportInfo {
                id: row.id,
                host_id: row.host_id,
                received_at: rfc3339(row.received_at_ms),
                report: serde_json::from_str(&row.report_json).unwrap_or_default(),
            })
            .collect(),
    ))
}

/// The optional `Idempotency-Key` header (decision 0011): 1–128 printable ASCII characters.
/// An edge hub replaying its offline queue sends the key each report was queued under, so a
/// report delivered twice is stored once.
pub(super) fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(None);
    };
    if !is_valid_idempotency_key(value.as_bytes()) {
        return Err(ApiError::validation(IDEMPOTENCY_KEY_RULE));
    }
    Ok(Some(String::from_utf8_lossy(value.as_bytes()).into_owned()))
}

fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Serialising parts of a report that was just parsed from JSON cannot fail.
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}
