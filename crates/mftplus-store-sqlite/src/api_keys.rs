//! The `api_keys` table.

use mftplus_store::{ApiKeyPage, ApiKeyRow, NewApiKey, StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::error::ResultExt;

const COLUMNS: &str = "id, name, key_hash, prefix, role, owner_id, created_at_ms, expires_at_ms, \
                       last_used_at_ms, revoked_at_ms, replaces";

fn from_row(row: &Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: row.get(0)?,
        name: row.get(1)?,
        key_hash: row.get(2)?,
        prefix: row.get(3)?,
        role: row.get(4)?,
        owner_id: row.get(5)?,
        created_at_ms: row.get(6)?,
        expires_at_ms: row.get(7)?,
        last_used_at_ms: row.get(8)?,
        revoked_at_ms: row.get(9)?,
        replaces: row.get(10)?,
    })
}

fn insert(conn: &Connection, key: &NewApiKey, replaces: Option<&str>) -> StoreResult<ApiKeyRow> {
    let sql = format!(
        "INSERT INTO api_keys (id, name, key_hash, prefix, role, owner_id, created_at_ms, \
         expires_at_ms, replaces) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING {COLUMNS}"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    key.id,
                    key.name,
                    key.key_hash,
                    key.prefix,
                    key.role,
                    key.owner_id,
                    key.created_at_ms,
                    key.expires_at_ms,
                    replaces
                ],
                from_row,
            )
        })
        .db()
}

pub(crate) fn create(conn: &Connection, key: &NewApiKey) -> StoreResult<ApiKeyRow> {
    insert(conn, key, key.replaces.as_deref())
}

pub(crate) fn get(conn: &Connection, id: &str) -> StoreResult<Option<ApiKeyRow>> {
    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![id], from_row).optional())
        .db()
}

pub(crate) fn get_by_hash(conn: &Connection, key_hash: &str) -> StoreResult<Option<ApiKeyRow>> {
    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE key_hash = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![key_hash], from_row).optional())
        .db()
}

pub(crate) fn list(conn: &Connection, owner_id: Option<&str>) -> StoreResult<Vec<ApiKeyRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_keys WHERE ?1 IS NULL OR owner_id = ?1 \
         ORDER BY created_at_ms DESC, id DESC"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_map(params![owner_id], from_row)?.collect())
        .db()
}

/// One statement per shape (all owners or one), so the one-owner page uses its index.
pub(crate) fn list_page(conn: &Connection, page: &ApiKeyPage) -> StoreResult<Vec<ApiKeyRow>> {
    let owner = match page.owner_id {
        Some(_) => "owner_id = ?1",
        None => "?1 IS NULL",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM api_keys WHERE {owner} AND (?2 OR revoked_at_ms IS NULL) \
         AND (?3 IS NULL OR created_at_ms < ?3 OR (created_at_ms = ?3 AND id < ?4)) \
         ORDER BY created_at_ms DESC, id DESC LIMIT ?5"
    );
    let (at, id) = match &page.before {
        Some(cursor) => (Some(cursor.at_ms), Some(cursor.id.as_str())),
        None => (None, None),
    };
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(
                params![page.owner_id, page.include_revoked, at, id, page.limit],
                from_row,
            )?
            .collect()
        })
        .db()
}

pub(crate) fn revoke(conn: &Connection, id: &str, at_ms: i64) -> StoreResult<bool> {
    conn.prepare_cached(
        "UPDATE api_keys SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL",
    )
    .and_then(|mut stmt| stmt.execute(params![id, at_ms]))
    .db()
    .map(|changed| changed > 0)
}

/// The new key always records the old one as `replaces`, whatever the caller filled in, so the
/// lineage cannot be forgotten.
pub(crate) fn rotate(
    conn: &mut Connection,
    old_id: &str,
    new: &NewApiKey,
    at_ms: i64,
) -> StoreResult<ApiKeyRow> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    if !revoke(&tx, old_id, at_ms)? {
        return Err(StoreError::NotFound);
    }
    let row = insert(&tx, new, Some(old_id))?;
    tx.commit().db()?;
    Ok(row)
}

pub(crate) fn touch(conn: &mut Connection, uses: &[(String, i64)]) -> StoreResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    {
        let mut stmt = tx
            .prepare_cached(
                "UPDATE api_keys SET last_used_at_ms = MAX(COALESCE(last_used_at_ms, ?2), ?2) \
                 WHERE id = ?1",
            )
            .db()?;
        for (id, at_ms) in uses {
            stmt.execute(params![id, at_ms]).db()?;
        }
    }
    tx.commit().db()
}

pub(crate) fn revoke_inactive(
    conn: &Connection,
    inactive_before_ms: i64,
    at_ms: i64,
) -> StoreResult<Vec<ApiKeyRow>> {
    let sql = format!(
        "UPDATE api_keys SET revoked_at_ms = ?2 \
         WHERE revoked_at_ms IS NULL AND COALESCE(last_used_at_ms, created_at_ms) < ?1 \
         RETURNING {COLUMNS}"
    );
    let mut rows: Vec<ApiKeyRow> = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params![inactive_before_ms, at_ms], from_row)?
                .collect()
        })
        .db()?;
    // RETURNING has no defined order; give callers the same order as list().
    rows.sort_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));
    Ok(rows)
}
