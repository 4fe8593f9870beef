//! The audit log as the API (`/api/v1/audit…`) and the dashboard's audit page both read it:
//! pages by cursor, the filtered listing, the export, and the server's own check of the chain.
//!
//! Every flow reads the log in pages of at most [`MAX_PAGE`] entries and holds one page at a
//! time, however long the log: the export streams page after page to the client, and the
//! verification keeps only the last verified hash between pages (`ChainCheck`).
//!
//! The server's verification is a convenience. A server that was broken into could answer
//! anything about its own log, so the independent check stays on the client: `mftctl audit
//! verify` downloads the chain and runs the same `mftplus_crypto::audit::ChainCheck`.

use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use mftplus_crypto::audit::{ChainBreak, ChainCheck};
use mftplus_store::{AuditFilter, AuditRow};
use mftplus_types::api::{AuditBreak, AuditEntry, AuditPage, AuditVerification};
use mftplus_types::ErrorCode;
use serde_json::json;

/// The most entries one read of the log returns.
pub const MAX_PAGE: u32 = 1000;

/// The page of the log shown for `limit` entries (1–[`MAX_PAGE`], else a validation error).
fn checked_limit(limit: u32) -> ApiResult<u32> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::validation(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    Ok(limit)
}

pub fn to_api(row: AuditRow) -> AuditEntry {
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

/// Entries after `after_seq`, oldest first (`GET /api/v1/audit`, what `mftctl audit verify`
/// pages through).
pub async fn page(state: &AppState, after_seq: i64, limit: u32) -> ApiResult<AuditPage> {
    let limit = checked_limit(limit)?;
    let rows = state.store.list_audit(after_seq, limit).await?;
    let next_after_seq = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    Ok(AuditPage {
        entries: rows.into_iter().map(to_api).collect(),
        next_after_seq,
    })
}

/// What the dashboard's audit page lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    /// Exactly this event name.
    pub event: Option<String>,
    /// Exactly this actor.
    pub actor: Option<String>,
    /// `ts_ms >= from_ms`.
    pub from_ms: Option<i64>,
    /// `ts_ms < until_ms`.
    pub until_ms: Option<i64>,
    pub newest_first: bool,
    /// The last `seq` of the previous page, in the listing's order.
    pub cursor: Option<i64>,
    pub limit: u32,
}

/// One page of a [`Search`].
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub entries: Vec<AuditEntry>,
    /// The cursor of the next page, when there is one.
    pub next_cursor: Option<i64>,
}

/// One store query of at most `limit + 1` rows, the extra one only telling whether there is a
/// next page.
pub async fn search(state: &AppState, search: &Search) -> ApiResult<SearchPage> {
    let limit = checked_limit(search.limit)?;
    let (after_seq, before_seq) = match search.newest_first {
        true => (None, search.cursor),
        false => (search.cursor, None),
    };
    let filter = AuditFilter {
        event: search.event.clone(),
        actor: search.actor.clone(),
        from_ms: search.from_ms,
        until_ms: search.until_ms,
        after_seq,
        before_seq,
        newest_first: search.newest_first,
        limit: limit + 1,
    };
    let mut rows = state.store.search_audit(&filter).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|row| row.seq)).flatten();
    Ok(SearchPage {
        entries: rows.into_iter().map(to_api).collect(),
        next_cursor,
    })
}

/// Walks the whole chain in pages and recomputes every hash as the stores' append does
/// (`NewAuditEntry::chain_hash`); stops at the first entry that does not verify. Audited as
/// `audit_verified` with what it found.
pub async fn verify(state: &AppState, caller: &Caller, ip: &str) -> ApiResult<AuditVerification> {
    // A walk reads the whole log: repeated clicks must not stack walks up.
    let Ok(_walking) = state.audit_verifying.try_lock() else {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the audit log is being verified already; ask again when that check has ended",
        ));
    };
    let mut check = ChainCheck::default();
    let mut after = 0;
    let mut broken = None;
    loop {
        let rows = state.store.list_audit(after, MAX_PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        let full = rows.len() == MAX_PAGE as usize;
        let entries: Vec<AuditEntry> = rows.into_iter().map(to_api).collect();
        if let Err(found) = check.feed(&entries) {
            broken = Some(found);
            break;
        }
        if !full {
            break;
        }
    }
    let answer = verification(&check, broken);
    state
        .audit(
            AuditEvent::new("audit_verified")
                .actor(&caller.email)
                .ip(ip)
                .details(json!({
                    "checked": answer.checked,
                    "ok": answer.ok,
                    "first_broken": answer.first_broken.as_ref().map(|b| b.seq),
                })),
        )
        .await;
    Ok(answer)
}

fn verification(check: &ChainCheck, broken: Option<ChainBreak>) -> AuditVerification {
    AuditVerification {
        checked: check.count(),
        ok: broken.is_none(),
        first_seq: check.first_seq(),
        last_seq: check.head().map(|(_, seq)| seq),
        head: check.head().map(|(hash, _)| hash.to_string()),
        first_broken: broken.map(|broken| AuditBreak {
            seq: broken.seq,
            reason: broken.kind.as_str().to_string(),
            message: broken.reason,
        }),
    }
}

/// The formats of the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Json,
    Csv,
}

impl ExportFormat {
    /// `json` (also when absent) or `csv`; anything else is a validation error.
    pub fn parse(text: Option<&str>) -> ApiResult<ExportFormat> {
        match text.unwrap_or("json") {
            "json" => Ok(ExportFormat::Json),
            "csv" => Ok(ExportFormat::Csv),
            _ => Err(ApiError::validation("format must be json or csv")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Csv => "csv",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Json => "application/json",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// The whole log as one JSON array or CSV file, audited as `audit_exported` before the first
/// byte. The body is produced page by page while the client reads it; a store failure midway
/// aborts the body (the client sees a cut download, never a short file that looks whole).
pub async fn export(
    state: &AppState,
    caller: &Caller,
    ip: &str,
    format: ExportFormat,
) -> ApiResult<Response> {
    state
        .audit(
            AuditEvent::new("audit_exported")
                .actor(&caller.email)
                .ip(ip)
                .details(json!({"format": format.as_str()})),
        )
        .await;
    let body = Body::from_stream(export_stream(state.clone(), format));
    Ok(([(http::header::CONTENT_TYPE, format.content_type())], body).into_response())
}

/// Where the export's stream is.
enum Step {
    Head,
    Page { after: i64, first: bool },
    Tail,
    Done,
}

fn export_stream(
    state: AppState,
    format: ExportFormat,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(Step::Head, move |step| {
        let state = state.clone();
        async move {
            match step {
                Step::Head => {
                    let head = match format {
                        ExportFormat::Json => "[",
                        ExportFormat::Csv => CSV_HEADER,
                    };
                    Some((
                        Ok(Bytes::from_static(head.as_bytes())),
                        Step::Page {
                            after: 0,
                            first: true,
                        },
                    ))
                }
                Step::Page { after, first } => {
                    match state.store.list_audit(after, MAX_PAGE).await {
                        Ok(rows) => {
                            let next = match rows.last() {
                                Some(last) if rows.len() == MAX_PAGE as usize => Step::Page {
                                    after: last.seq,
                                    first: false,
                                },
                                _ => Step::Tail,
                            };
                            let first = first && !rows.is_empty();
                            Some((Ok(render(format, rows, first)), next))
                        }
                        Err(err) => {
                            tracing::error!(error = %err, "the audit export stopped: the log could not be read");
                            Some((
                                Err(std::io::Error::other("audit log unreadable")),
                                Step::Done,
                            ))
                        }
                    }
                }
                Step::Tail => {
                    let tail = match format {
                        ExportFormat::Json => "]",
                        ExportFormat::Csv => "",
                    };
                    Some((Ok(Bytes::from_static(tail.as_bytes())), Step::Done))
                }
                Step::Done => None,
            }
        }
    })
}

const CSV_HEADER: &str =
    "seq,time,ts_ms,event,actor,target,outcome,client_ip,details,prev_hash,hash\n";

/// One page of the export. `first`: this page holds the JSON array's first element.
fn render(format: ExportFormat, rows: Vec<AuditRow>, first: bool) -> Bytes {
    let mut out = String::new();
    for (index, entry) in rows.into_iter().map(to_api).enumerate() {
        match format {
            ExportFormat::Json => {
                if !(first && index == 0) {
                    out.push(',');
                }
                // An AuditEntry is plain strings, numbers and a JSON value: it always serialises.
                out.push_str(&serde_json::to_string(&entry).unwrap_or_default());
            }
            ExportFormat::Csv => {
                out.push_str(&csv_line(&entry));
                out.push('\n');
            }
        }
    }
    Bytes::from(out)
}

fn csv_line(e: &AuditEntry) -> String {
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
    line.join(",")
}

/// RFC 4180 quoting, plus a leading `'` on cells a spreadsheet would run as a formula.
fn csv_field(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// OWASP's list of cells a spreadsheet may run: a leading tab or carriage return counts.
    #[test]
    fn every_formula_start_is_defused() {
        for cell in ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"] {
            assert!(
                csv_field(cell).trim_start_matches('"').starts_with('\''),
                "{cell:?}"
            );
        }
        assert_eq!(csv_field("plain"), "plain");
    }

    fn row(seq: i64) -> AuditRow {
        AuditRow {
            seq,
            ts_ms: 1_700_000_000_000 + seq,
            event: "login_succeeded".into(),
            actor: "=cmd|'/c calc'!A1".into(),
            target: "a,b".into(),
            outcome: "success".into(),
            client_ip: "127.0.0.1".into(),
            details: json!({"say": "\"hi\""}),
            prev_hash: "p".into(),
            hash: "h".into(),
        }
    }

    #[test]
    fn pages_join_into_one_json_array_and_one_csv() {
        let json_text = [
            render(ExportFormat::Json, vec![row(1), row(2)], true),
            render(ExportFormat::Json, vec![row(3)], false),
        ]
        .concat();
        let whole = format!("[{}]", String::from_utf8(json_text).unwrap());
        let parsed: Vec<AuditEntry> = serde_json::from_str(&whole).unwrap();
        assert_eq!(parsed.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        let expected = serde_json::to_string(&vec![to_api(row(1)), to_api(row(2)), to_api(row(3))]);
        assert_eq!(
            whole,
            expected.unwrap(),
            "the same bytes as one serialised array"
        );

        let csv = String::from_utf8(render(ExportFormat::Csv, vec![row(1)], true).to_vec());
        let csv = csv.unwrap();
        assert!(
            csv.contains(",'=cmd|'/c calc'!A1,\"a,b\",success,"),
            "{csv}"
        );
        assert!(
            csv.contains("\"{\"\"say\"\":\"\"\\\"\"hi\\\"\"\"\"}\""),
            "{csv}"
        );
        assert!(ExportFormat::parse(Some("xml")).is_err());
        assert_eq!(ExportFormat::parse(None).unwrap(), ExportFormat::Json);
    }
}
