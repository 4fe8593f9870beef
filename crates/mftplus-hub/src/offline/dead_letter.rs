//! The dead letter (issue 13): queued writes the cloud refused on replay, kept in `hub.db`
//! instead of dropped, so nothing the hub answered "accepted" disappears without trace.
//!
//! A refused row moves from `queue` to `dead_letter` in one transaction, with the cloud's status,
//! its error code and the time. `GET /hub/offline` and `/hub/diagnose` count them. An operator
//! lists them (`GET /hub/offline/dead-letter`: never the token or the body) and sends them all
//! back to the end of the queue (`POST /hub/offline/dead-letter/replay`), for instance after
//! fixing what the cloud refused. Both need the hub's deploy key as a bearer token.
//!
//! A replayed row goes behind every write queued since, so for a host it may arrive after
//! newer reports: replaying is the operator's decision, made knowing that.

use super::Offline;
use crate::auth_cache::OfflineError;
use crate::error::api_error;
use crate::state::HubState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use mftplus_types::ErrorCode;
use ring::hmac;
use rusqlite::{params, Connection};
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// Why a row was moved, as the listing shows it.
pub const REASON_CREDENTIAL: &str = "credential refused (revoked or expired)";
pub const REASON_REFUSED: &str = "refused by the cloud";
/// Rows a listing shows at most (the oldest); `deadLetter` gives the total.
const LIST_LIMIT: usize = 1000;
/// An error code longer than this is not one of the cloud's.
const MAX_CODE_LEN: usize = 64;

/// The cloud's refusal of a replayed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: Option<String>,
    pub reason: &'static str,
}

/// A dead-letter row as listed: no token, no body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadRow {
    /// The row's seq in the queue when it was refused.
    pub seq: i64,
    pub route: String,
    pub status: u16,
    pub code: Option<String>,
    pub reason: String,
    pub idempotency_key: String,
    /// When the hub queued the write and when the cloud refused it (RFC 3339).
    pub enqueued_at: String,
    pub dead_at: String,
}

/// The error code of a cloud answer: `{"error":{"code":…}}` (the API's shape) or a top-level
/// `code`. Only a short identifier counts, so nothing else from the body is kept.
pub fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = value
        .get("error")
        .and_then(|e| e.get("code"))
        .or_else(|| value.get("code"))?
        .as_str()?;
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"_-.".contains(&b);
    (!code.is_empty() && code.len() <= MAX_CODE_LEN && code.bytes().all(plain))
        .then(|| code.to_string())
}

impl Offline {
    /// Moves queue row `seq` to the dead letter and keeps the counters in step.
    pub(super) fn bury(&self, seq: i64, refusal: &Refusal) -> Result<(), OfflineError> {
        if bury(&self.conn, seq, refusal, super::now_ms())? {
            self.queued_less(1);
            self.dead.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Sends every dead-letter row back to the end of the queue and wakes the replay; returns
    /// how many.
    pub fn replay_dead_letter(&self) -> Result<u64, OfflineError> {
        let moved = requeue_all(&self.conn)?;
        let _ = self
            .dead
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| {
                Some(d.saturating_sub(moved))
            });
        self.queued.fetch_add(moved, Ordering::SeqCst);
        self.wake.notify_one();
        self.back.notify_one();
        Ok(moved)
    }

    /// The oldest dead-letter rows, without token or body.
    pub fn dead_letter_rows(&self) -> Result<Vec<DeadRow>, OfflineError> {
        list(&self.conn, LIST_LIMIT)
    }
}

/// Moves one row in one transaction; `false` when there was no such row.
fn bury(
    conn: &Mutex<Connection>,
    seq: i64,
    refusal: &Refusal,
    now_ms: i64,
) -> Result<bool, OfflineError> {
    let mut conn = mftplus_base::sync::lock(conn);
    let tx = conn.transaction()?;
    let moved = tx.execute(
        "INSERT INTO dead_letter (seq, route, credential, idempotency_key, body, enqueued_at_ms, \
         client_cert, client_addr, status, code, reason, dead_at_ms) \
         SELECT seq, route, credential, idempotency_key, body, enqueued_at_ms, client_cert, \
         client_addr, ?2, ?3, ?4, ?5 FROM queue WHERE seq = ?1",
        params![seq, refusal.status, refusal.code, refusal.reason, now_ms],
    )?;
    tx.execute("DELETE FROM queue WHERE seq = ?1", params![seq])?;
    tx.commit()?;
    Ok(moved == 1)
}

/// Moves every dead-letter row to the end of the queue (new seqs, oldest first) in one
/// transaction. The sealed credential moves as it is: it is bound to the idempotency key, which
/// goes along.
fn requeue_all(conn: &Mutex<Connection>) -> Result<u64, OfflineError> {
    let mut conn = mftplus_base::sync::lock(conn);
    let tx = conn.transaction()?;
    let moved = tx.execute(
        "INSERT INTO queue (route, credential, idempotency_key, body, enqueued_at_ms, \
         client_cert, client_addr) \
         SELECT route, credential, idempotency_key, body, enqueued_at_ms, client_cert, \
         client_addr FROM dead_letter ORDER BY seq",
        [],
    )?;
    tx.execute("DELETE FROM dead_letter", [])?;
    tx.commit()?;
    Ok(moved as u64)
}

pub(super) fn count(conn: &Mutex<Connection>) -> Result<u64, OfflineError> {
    let conn = mftplus_base::sync::lock(conn);
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM dead_letter", [], |r| r.get(0))?;
    Ok(n as u64)
}

fn list(conn: &Mutex<Connection>, limit: usize) -> Result<Vec<DeadRow>, OfflineError> {
    let conn = mftplus_base::sync::lock(conn);
    let mut stmt = conn.prepare_cached(
        "SELECT seq, route, status, code, reason, idempotency_key, enqueued_at_ms, dead_at_ms \
         FROM dead_letter ORDER BY seq LIMIT ?1",
    )?;
    let rows = stmt.query_map(params![limit as i64], |r| {
        Ok(DeadRow {
            seq: r.get(0)?,
            route: r.get(1)?,
            status: r.get(2)?,
            code: r.get(3)?,
            reason: r.get(4)?,
            idempotency_key: r.get(5)?,
            enqueued_at: stamp(r.get(6)?),
            dead_at: stamp(r.get(7)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn stamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Whether the request carries this hub's deploy key as `Authorization: Bearer …`. Compared in
/// constant time: both sides are MACed under a fresh random key and ring compares the tags in
/// constant time, so neither where they differ nor the key's length shows in the timing.
fn presents_deploy_key(state: &HubState, headers: &HeaderMap) -> bool {
    let Some(expected) = state.config.registration_key.as_ref() else {
        return false;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(presented) = presented else {
        return false;
    };
    let rng = ring::rand::SystemRandom::new();
    let Ok(key) = hmac::Key::generate(hmac::HMAC_SHA256, &rng) else {
        return false;
    };
    let tag = hmac::sign(&key, expected.expose().as_bytes());
    hmac::verify(&key, presented.as_bytes(), tag.as_ref()).is_ok()
}

/// The offline store, if the caller may see it: a 401 without the deploy key, a 404 when
/// `hub.db` is not open.
fn authorized(state: &HubState, headers: &HeaderMap) -> Result<Arc<Offline>, Box<Response>> {
    if !presents_deploy_key(state, headers) {
        let mut refused = api_error(
            ErrorCode::Unauthenticated,
            "present this hub's deploy key as Authorization: Bearer <key>",
        );
        refused
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Err(Box::new(refused));
    }
    state.offline.clone().ok_or_else(|| {
        Box::new(api_error(
            ErrorCode::NotFound,
            "the auth cache and offline queue are not open on this hub",
        ))
    })
}

fn store_failed(err: OfflineError) -> Response {
    tracing::error!(error = %err, "cannot read or change the dead letter");
    api_error(ErrorCode::Internal, "the hub's offline store failed")
}

/// `GET /hub/offline/dead-letter`: `{deadLetter, rows: [...]}` (the oldest rows).
pub async fn list_rows(State(state): State<Arc<HubState>>, headers: HeaderMap) -> Response {
    let offline = match authorized(&state, &headers) {
        Ok(offline) => offline,
        Err(refused) => return *refused,
    };
    match offline.dead_letter_rows() {
        Ok(rows) => axum::Json(serde_json::json!({
            "deadLetter": offline.dead_letter(),
            "rows": rows,
        }))
        .into_response(),
        Err(err) => store_failed(err),
    }
}

/// `POST /hub/offline/dead-letter/replay`: `{replayed, queued}`.
pub async fn replay(State(state): State<Arc<HubState>>, headers: HeaderMap) -> Response {
    let offline = match authorized(&state, &headers) {
        Ok(offline) => offline,
        Err(refused) => return *refused,
    };
    match offline.replay_dead_letter() {
        Ok(replayed) => {
            tracing::info!(replayed, "dead letter sent back to the offline queue");
            (
                StatusCode::OK,
                axum::Json(serde_json::json!({
                    "replayed": replayed,
                    "queued": offline.queued(),
                })),
            )
                .into_response()
        }
        Err(err) => store_failed(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_comes_from_either_shape_and_only_if_it_looks_like_one() {
        let code = |body: &str| error_code(body.as_bytes());
        assert_eq!(
            code(r#"{"error":{"code":"forbidden","message":"no"}}"#).as_deref(),
            Some("forbidden")
        );
        assert_eq!(
            code(r#"{"code":"op_state_conflict"}"#).as_deref(),
            Some("op_state_conflict")
        );
        assert_eq!(code("<html>bad gateway</html>"), None);
        assert_eq!(code(r#"{"error":{"code":"has spaces in it"}}"#), None);
        assert_eq!(code(&format!(r#"{{"code":"{}"}}"#, "x".repeat(65))), None);
        assert_eq!(code(r#"{"error":"plain"}"#), None);
    }

    #[test]
    fn a_row_moves_to_the_dead_letter_and_back_to_the_end_of_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, _) = crate::auth_cache::open_db(dir.path(), "mft_dep_x").unwrap();
        let insert = |conn: &Connection, key: &str| {
            conn.execute(
                "INSERT INTO queue (route, credential, idempotency_key, body, enqueued_at_ms, \
                 client_addr) VALUES ('/api/v1/report', x'01', ?1, x'7b7d', 5, '10.0.0.7')",
                params![key],
            )
            .unwrap();
        };
        insert(&conn, "k1");
        insert(&conn, "k2");
        let conn = Mutex::new(conn);
        let refusal = Refusal {
            status: 403,
            code: Some("forbidden".into()),
            reason: REASON_REFUSED,
        };
        assert!(bury(&conn, 1, &refusal, 1_000).unwrap());
        assert!(!bury(&conn, 1, &refusal, 1_000).unwrap(), "already moved");
        assert_eq!(count(&conn).unwrap(), 1);
        assert_eq!(crate::queue::count(&conn).unwrap(), 1);
        let rows = list(&conn, 10).unwrap();
        assert_eq!(
            rows,
            vec![DeadRow {
                seq: 1,
                route: "/api/v1/report".into(),
                status: 403,
                code: Some("forbidden".into()),
                reason: REASON_REFUSED.into(),
                idempotency_key: "k1".into(),
                enqueued_at: "1970-01-01T00:00:00.005Z".into(),
                dead_at: "1970-01-01T00:00:01.000Z".into(),
            }]
        );
        assert_eq!(requeue_all(&conn).unwrap(), 1);
        assert_eq!(count(&conn).unwrap(), 0);
        let order: Vec<(i64, String, Option<String>)> = mftplus_base::sync::lock(&conn)
            .prepare("SELECT seq, idempotency_key, client_addr FROM queue ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            order,
            vec![
                (2, "k2".into(), Some("10.0.0.7".into())),
                (3, "k1".into(), Some("10.0.0.7".into()))
            ],
            "behind what was queued since, with a new seq and its address"
        );
    }
}
