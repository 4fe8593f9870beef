//! The rules the cloud applies to the body of each write an edge hub may queue while the cloud
//! is away (decision 0011): host and guest reports, an agent's op verdict, a transfer's
//! `received` and `cancel`. The cloud's handlers call the per-route checks after their
//! extractors parsed the body; the hub calls [`validate_queueable`] on the raw request before
//! it queues, so a write it answers "accepted" is one the cloud will not refuse for its body
//! (issue 13). Checks that depend on who sends (a report naming another host than its key's)
//! stay in the cloud: the hub cannot know them.

use super::{GuestReport, HostReport, OpStatus, OpStatusUpdate};
use crate::error::ErrorCode;
use crate::routes;
use serde::de::DeserializeOwned;

/// A host report lists at most this many guests.
pub const MAX_REPORT_GUESTS: usize = 1024;
/// A host report lists at most this many storage targets.
pub const MAX_REPORT_TARGETS: usize = 1024;
/// `agent_version` is 1 to this many bytes.
pub const MAX_AGENT_VERSION: usize = 64;
/// An op verdict's `result`, as JSON text, is at most this many bytes.
pub const MAX_OP_RESULT_BYTES: usize = 64 * 1024;

/// Why a body is refused: the stable code and the message the cloud answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub code: ErrorCode,
    pub message: String,
}

impl ValidationError {
    fn new(code: ErrorCode, message: impl Into<String>) -> ValidationError {
        ValidationError {
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> ValidationError {
        ValidationError::new(ErrorCode::ValidationFailed, message)
    }
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ValidationError {}

/// The queueable writes, each `POST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueableRoute {
    HostReport,
    GuestReport,
    OpStatus,
    TransferReceived,
    TransferCancel,
}

impl QueueableRoute {
    /// Which queueable write `path` is, if any (`POST` assumed).
    pub fn of(path: &str) -> Option<QueueableRoute> {
        let matches = |template| routes::captures(template, path).is_some();
        if path == routes::HOST_REPORT {
            Some(QueueableRoute::HostReport)
        } else if path == routes::GUEST_REPORT {
            Some(QueueableRoute::GuestReport)
        } else if matches(routes::HOST_SIGNED_OP_STATUS) {
            Some(QueueableRoute::OpStatus)
        } else if matches(routes::TRANSFER_RECEIVED) {
            Some(QueueableRoute::TransferReceived)
        } else if matches(routes::TRANSFER_CANCEL) {
            Some(QueueableRoute::TransferCancel)
        } else {
            None
        }
    }
}

/// Checks a queueable write as the cloud will: its `Content-Type`, that the body parses into
/// the route's wire type (`invalid_json` for broken JSON, `validation_failed` for JSON of the
/// wrong shape), and the checks the cloud applies after parsing. `received` and `cancel` take
/// no body (the cloud reads none), so any passes. A path that is not a queueable write has no
/// rules here.
pub fn validate_queueable(
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), ValidationError> {
    let Some(route) = QueueableRoute::of(path) else {
        return Ok(());
    };
    match route {
        QueueableRoute::HostReport => {
            require_json(content_type, is_json_exact)?;
            check_host_report(&parse_json_verbatim(body)?)?;
            check_utf8(body)
        }
        QueueableRoute::GuestReport => {
            require_json(content_type, is_json_exact)?;
            parse_json_verbatim::<GuestReport>(body)?;
            check_utf8(body)
        }
        QueueableRoute::OpStatus => {
            require_json(content_type, is_json_loose)?;
            check_op_status(&parse_json(body)?).map(|_| ())
        }
        QueueableRoute::TransferReceived | QueueableRoute::TransferCancel => Ok(()),
    }
}

/// A host report's limits, after it parsed (`POST /api/v1/host-report`).
pub fn check_host_report(report: &HostReport) -> Result<(), ValidationError> {
    if report.guests.len() > MAX_REPORT_GUESTS || report.storage_targets.len() > MAX_REPORT_TARGETS
    {
        return Err(ValidationError::invalid(format!(
            "a report lists at most {MAX_REPORT_GUESTS} guests and {MAX_REPORT_TARGETS} storage \
             targets"
        )));
    }
    if report.agent_version.is_empty() || report.agent_version.len() > MAX_AGENT_VERSION {
        return Err(ValidationError::invalid(format!(
            "agent_version must be 1–{MAX_AGENT_VERSION} characters"
        )));
    }
    Ok(())
}

/// An agent's verdict (`POST …/signed-ops/{op_id}/status`): one of the verdicts an agent
/// reports, with a `result` of bounded size. Returns the verdict.
pub fn check_op_status(update: &OpStatusUpdate) -> Result<OpStatus, ValidationError> {
    let verdict = update
        .status
        .parse::<OpStatus>()
        .ok()
        .filter(|status| OpStatus::AGENT_VERDICTS.contains(status))
        .ok_or_else(|| {
            ValidationError::invalid(format!(
                "status {:?} is not one an agent reports; use executed, failed or rejected",
                update.status
            ))
        })?;
    if update
        .result
        .as_ref()
        .is_some_and(|value| value.to_string().len() > MAX_OP_RESULT_BYTES)
    {
        return Err(ValidationError::invalid(
            "result must be at most 64 KiB of JSON",
        ));
    }
    Ok(verdict)
}

/// A report is stored verbatim as text.
fn check_utf8(body: &[u8]) -> Result<(), ValidationError> {
    std::str::from_utf8(body)
        .map(|_| ())
        .map_err(|_| ValidationError::invalid("the report is not UTF-8"))
}

fn require_json(
    content_type: Option<&str>,
    is_json: fn(&str) -> bool,
) -> Result<(), ValidationError> {
    if content_type.is_some_and(is_json) {
        return Ok(());
    }
    Err(ValidationError::new(
        ErrorCode::UnsupportedMediaType,
        "send the body as JSON with Content-Type: application/json",
    ))
}

/// The cloud's verbatim extractor (reports): `application/json` or a `+json` type, as written.
fn is_json_exact(value: &str) -> bool {
    let mime = value.split(';').next().unwrap_or_default().trim();
    mime == "application/json" || mime.ends_with("+json")
}

/// axum's `Json` (op verdicts): type `application`, subtype `json` or with a `+json` suffix,
/// in any case.
fn is_json_loose(value: &str) -> bool {
    let mime = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some((kind, subtype)) = mime.split_once('/') else {
        return false;
    };
    kind == "application" && (subtype == "json" || subtype.ends_with("+json"))
}

/// Parses as the cloud's verbatim extractor does: JSON of the wrong shape is
/// `validation_failed`, anything else that does not parse `invalid_json`.
fn parse_json_verbatim<T: DeserializeOwned>(body: &[u8]) -> Result<T, ValidationError> {
    serde_json::from_slice(body).map_err(|err| {
        if err.is_data() {
            ValidationError::invalid(err.to_string())
        } else {
            ValidationError::new(ErrorCode::InvalidJson, format!("malformed JSON: {err}"))
        }
    })
}

/// Parses as axum's `Json` does, with the same two codes.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ValidationError> {
    serde_json::from_slice(body).map_err(|err| {
        if err.is_data() {
            ValidationError::invalid(format!(
                "Failed to deserialize the JSON body into the target type: {err}"
            ))
        } else {
            ValidationError::new(
                ErrorCode::InvalidJson,
                format!("malformed JSON: Failed to parse the request body as JSON: {err}"),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");

    fn code(path: &str, content_type: Option<&str>, body: &str) -> Option<&'static str> {
        validate_queueable(path, content_type, body.as_bytes())
            .err()
            .map(|e| e.code.as_str())
    }

    #[test]
    fn routes_are_recognised_by_path() {
        assert_eq!(
            QueueableRoute::of("/api/v1/host-report"),
            Some(QueueableRoute::HostReport)
        );
        assert_eq!(
            QueueableRoute::of("/api/v1/hosts/h1/signed-ops/o1/status"),
            Some(QueueableRoute::OpStatus)
        );
        assert_eq!(
            QueueableRoute::of("/api/v1/transfers/t1/cancel"),
            Some(QueueableRoute::TransferCancel)
        );
        assert_eq!(QueueableRoute::of("/api/v1/transfers//cancel"), None);
        assert_eq!(QueueableRoute::of("/api/v1/transfers/t1/complete"), None);
    }

    #[test]
    fn host_reports_are_checked_as_the_cloud_does() {
        let path = "/api/v1/host-report";
        let good = r#"{"host_id":"h1","agent_version":"1.0.0","applied_generation":0}"#;
        assert_eq!(code(path, JSON, good), None);
        assert_eq!(
            code(path, Some("application/json; charset=utf-8"), good),
            None
        );
        assert_eq!(code(path, None, good), Some("unsupported_media_type"));
        assert_eq!(
            code(path, Some("text/plain"), good),
            Some("unsupported_media_type")
        );
        assert_eq!(code(path, JSON, "{not json"), Some("invalid_json"));
        assert_eq!(code(path, JSON, ""), Some("invalid_json"));
        assert_eq!(
            code(path, JSON, r#"{"host_id":"h1"}"#),
            Some("validation_failed"),
            "a missing field"
        );
        let empty_version = r#"{"host_id":"h1","agent_version":"","applied_generation":0}"#;
        assert_eq!(code(path, JSON, empty_version), Some("validation_failed"));
        let long = format!(
            r#"{{"host_id":"h1","agent_version":"{}","applied_generation":0}}"#,
            "v".repeat(65)
        );
        assert_eq!(code(path, JSON, &long), Some("validation_failed"));
    }

    #[test]
    fn guest_reports_need_only_their_shape() {
        let path = "/api/v1/report";
        assert_eq!(code(path, JSON, r#"{"memory_used_bytes":3}"#), None);
        assert_eq!(
            code(path, JSON, r#"{"memory_used_bytes":"three"}"#),
            Some("validation_failed")
        );
        assert_eq!(code(path, JSON, r#"{"apps":"#), Some("invalid_json"));
    }

    #[test]
    fn op_verdicts_must_be_an_agents_verdict_with_a_bounded_result() {
        let path = "/api/v1/hosts/h1/signed-ops/o1/status";
        for verdict in ["executed", "failed", "rejected"] {
            let body = format!(r#"{{"status":"{verdict}","result":{{"ok":true}}}}"#);
            assert_eq!(code(path, JSON, &body), None, "{verdict}");
        }
        assert_eq!(
            code(path, Some("Application/JSON"), r#"{"status":"failed"}"#),
            None
        );
        for bad in ["delivered", "signed", "bogus"] {
            let body = format!(r#"{{"status":"{bad}"}}"#);
            assert_eq!(code(path, JSON, &body), Some("validation_failed"), "{bad}");
        }
        let huge = format!(
            r#"{{"status":"failed","result":"{}"}}"#,
            "x".repeat(MAX_OP_RESULT_BYTES)
        );
        assert_eq!(code(path, JSON, &huge), Some("validation_failed"));
        assert_eq!(code(path, JSON, "{}"), Some("validation_failed"));
    }

    #[test]
    fn transfer_updates_take_any_body() {
        assert_eq!(code("/api/v1/transfers/t1/received", None, ""), None);
        assert_eq!(code("/api/v1/transfers/t1/cancel", None, "junk"), None);
        assert_eq!(code("/api/v1/echo", None, "junk"), None);
    }
}
