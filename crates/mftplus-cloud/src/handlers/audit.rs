//! Reading and exporting the audit log. Verification happens client-side (`mftctl audit
//! verify`) so a compromised server cannot vouch for its own log.

use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::middleware::ClientIp;
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mftplus_store::AuditRow;
use mftplus_types::api::{AuditEntry, AuditPage};
use serde::Deserialize;
use serde_json::json;

const MAX_PAGE: u32 = 1000;

pub fn audit_to_api(row: AuditRow) -> AuditEntry {
    AuditEntry {
        seq: row.seq,
        ts_ms: row.ts_ms,
        time: rfc3339(row.ts_ms),
        event: row.event,
        actor: row.actor,
        target: row.target,
        outcome: row.outcome,
        client_ip: row.client_ip,
        details: row.details,
        prev_hash: row.prev_hash,
        hash: row.hash,
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    #[serde(default)]
    after_seq: i64,
    limit: Option<u32>,
}

pub async fn index(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<AuditPage>> {
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::validation(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let rows = state.store.list_audit(query.after_seq, limit).await?;
    let next_after_seq = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    Ok(Json(AuditPage {
        entries: rows.into_iter().map(audit_to_api).collect(),
        next_after_seq,
    }))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    format: Option<String>,
}

pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let format = query.format.unwrap_or_else(|| "json".into());
    if format != "json" && format != "csv" {
        return Err(ApiError::validation("format must be json or csv"));
    }
    state
        .audit(
            AuditEvent::new("audit_exported")
                .actor(&caller.email)
                .ip(&ip)
                .details(json!({"format": format})),
        )
        .await;
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let rows = state.store.list_audit(after, MAX_PAGE).await?;
        let done = rows.len() < MAX_PAGE as usize;
        if let Some(last) = rows.last() {
            after = last.seq;
        }
        entries.extend(rows.into_iter().map(audit_to_api));
        if done {
            break;
        }
    }
    if format == "json" {
        return Ok(Json(entries).into_response());
    }
    let mut csv = String::from(
        "seq,time,ts_ms,event,actor,target,outcome,client_ip,details,prev_hash,hash\n",
    );
    for e in &entries {
        let fields = [
            e.seq.to_string(),
            e.time.clone(),
            e.ts_ms.to_string(),
            e.event.clone(),
            e.actor.clone(),
            e.target.clone(),
            e.outcome.clone(),
            e.client_ip.clone(),
            mftplus_crypto::canonical_json(&e.details),
            e.prev_hash.clone(),
            e.hash.clone(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        csv.push_str(&line.join(","));
        csv.push('\n');
    }
    Ok((
        [(http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        csv,
    )
        .into_response())
}

/// RFC 4180 quoting, plus a leading `'` on cells a spreadsheet would run as a formula.
fn csv_field(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}
