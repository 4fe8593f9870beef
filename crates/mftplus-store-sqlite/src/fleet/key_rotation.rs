//! The `host_key_rotations` table: a host key replaced with a grace for the old one
//! (`docs/key-rotation.md`). The host's own key stays in `hosts.key_hash`; this row only keeps
//! the replaced hash, its grace and what a repeated call needs.

use mftplus_store::{HostKeyRotation, HostKeyRotationRow, StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::immediate;
use crate::error::ResultExt;

const COLUMNS: &str = "host_id, previous_key_hash, previous_valid_until_ms, idempotency_key, \
     sealed_new_key, rotated_at_ms";

fn from_row(row: &Row<'_>) -> rusqlite::Result<HostKeyRotationRow> {
    Ok(HostKeyRotationRow {
        host_id: row.get(0)?,
        previous_key_hash: row.get(1)?,
        previous_valid_until_ms: row.get(2)?,
        idempotency_key: row.get(3)?,
        sealed_new_key: row.get(4)?,
        rotated_at_ms: row.get(5)?,
    })
}

/// `column` is `host_id` or `previous_key_hash`, both unique.
pub(crate) fn load(
    conn: &Connection,
    column: &str,
    value: &str,
) -> StoreResult<Option<HostKeyRotationRow>> {
    let sql = format!("SELECT {COLUMNS} FROM host_key_rotations WHERE {column} = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![value], from_row).optional())
        .db()
}

pub(crate) fn rotate(
    conn: &mut Connection,
    rotation: &HostKeyRotation,
) -> StoreResult<HostKeyRotationRow> {
    let tx = immediate(conn)?;
    let current: Option<String> = tx
        .prepare_cached("SELECT key_hash FROM hosts WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![rotation.host_id], |row| row.get(0))
                .optional()
        })
        .db()?;
    match current {
        None => return Err(StoreError::NotFound),
        Some(hash) if hash != rotation.expected_key_hash => {
            return Err(StoreError::Conflict("key_rotated".into()))
        }
        Some(_) => {}
    }
    tx.prepare_cached("UPDATE hosts SET key_hash = ?2 WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![rotation.host_id, rotation.new_key_hash]))
        .db()?;
    let sql = format!(
        "INSERT INTO host_key_rotations ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (host_id) DO UPDATE SET previous_key_hash = excluded.previous_key_hash, \
         previous_valid_until_ms = excluded.previous_valid_until_ms, \
         idempotency_key = excluded.idempotency_key, sealed_new_key = excluded.sealed_new_key, \
         rotated_at_ms = excluded.rotated_at_ms RETURNING {COLUMNS}"
    );
    let row = tx
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    rotation.host_id,
                    rotation.expected_key_hash,
                    rotation.previous_valid_until_ms,
                    rotation.idempotency_key,
                    rotation.sealed_new_key,
                    rotation.at_ms
                ],
                from_row,
            )
        })
        .db()?;
    forget_request(&tx, &rotation.host_id)?;
    tx.commit().db()?;
    Ok(row)
}

pub(crate) fn request(
    conn: &Connection,
    host_id: &str,
    requested_by: &str,
    at_ms: i64,
) -> StoreResult<()> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO host_key_rotation_requests (host_id, requested_by, requested_at_ms) \
             SELECT id, ?2, ?3 FROM hosts WHERE id = ?1 ON CONFLICT (host_id) DO NOTHING",
        )
        .and_then(|mut stmt| stmt.execute(params![host_id, requested_by, at_ms]))
        .db()?;
    if inserted == 0 && super::hosts::load(conn, host_id)?.is_none() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

fn forget_request(conn: &Connection, host_id: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM host_key_rotation_requests WHERE host_id = ?1")
        .and_then(|mut stmt| stmt.execute(params![host_id]))
        .db()
        .map(|_| ())
}

/// Inside the recovery rotation's transaction: the keys of earlier rotations stop at once, and
/// the new identity owes no rotation.
pub(crate) fn forget(conn: &Connection, host_id: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM host_key_rotations WHERE host_id = ?1")
        .and_then(|mut stmt| stmt.execute(params![host_id]))
        .db()?;
    forget_request(conn, host_id)
}
