//! The `users` table.

use mftplus_store::{NewUser, StoreError, StoreResult, UserRow, UserUpdate};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::error::ResultExt;

const COLUMNS: &str = "id, email, name, role, user_type, password_hash, created_at_ms, \
                       updated_at_ms, last_login_at_ms";

fn from_row(row: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: row.get(0)?,
        email: row.get(1)?,
        name: row.get(2)?,
        role: row.get(3)?,
        user_type: row.get(4)?,
        password_hash: row.get(5)?,
        created_at_ms: row.get(6)?,
        updated_at_ms: row.get(7)?,
        last_login_at_ms: row.get(8)?,
    })
}

/// The one place addresses are normalised, so lookups and the unique index agree. Done in Rust
/// rather than SQL because SQLite's `lower()` only folds ASCII.
pub(crate) fn normalize_email(email: &str) -> String {
    email.to_lowercase()
}

pub(crate) fn create(conn: &Connection, user: &NewUser) -> StoreResult<UserRow> {
    let sql = format!(
        "INSERT INTO users (id, email, name, role, user_type, password_hash, created_at_ms, \
         updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING {COLUMNS}"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    user.id,
                    normalize_email(&user.email),
                    user.name,
                    user.role,
                    user.user_type,
                    user.password_hash,
                    user.created_at_ms
                ],
                from_row,
            )
        })
        .db()
}

pub(crate) fn get(conn: &Connection, id: &str) -> StoreResult<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![id], from_row).optional())
        .db()
}

pub(crate) fn get_by_email(conn: &Connection, email: &str) -> StoreResult<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_row(params![normalize_email(email)], from_row)
                .optional()
        })
        .db()
}

pub(crate) fn list(conn: &Connection) -> StoreResult<Vec<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY email");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_map([], from_row)?.collect())
        .db()
}

pub(crate) fn list_page(
    conn: &Connection,
    after_email: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<UserRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM users WHERE ?1 IS NULL OR email > ?1 ORDER BY email LIMIT ?2"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params![after_email, limit], from_row)?
                .collect()
        })
        .db()
}

/// One statement per list length (a page holds at most a few hundred ids).
pub(crate) fn get_many(conn: &Connection, ids: &[String]) -> StoreResult<Vec<UserRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; ids.len()].join(", ");
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id IN ({marks})");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_map(params_from_iter(ids), from_row)?.collect())
        .db()
}

pub(crate) fn count(conn: &Connection) -> StoreResult<u64> {
    conn.query_row("SELECT COUNT(*) FROM users", [], |row| row.get::<_, i64>(0))
        .db()
        .map(|n| n as u64)
}

pub(crate) fn update(conn: &Connection, id: &str, update: &UserUpdate) -> StoreResult<UserRow> {
    let sql = format!(
        "UPDATE users SET name = COALESCE(?2, name), role = COALESCE(?3, role), \
         password_hash = COALESCE(?4, password_hash), updated_at_ms = ?5 \
         WHERE id = ?1 RETURNING {COLUMNS}"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    id,
                    update.name,
                    update.role,
                    update.password_hash,
                    update.updated_at_ms
                ],
                from_row,
            )
            .optional()
        })
        .db()?
        .ok_or(StoreError::NotFound)
}

pub(crate) fn record_login(conn: &Connection, id: &str, at_ms: i64) -> StoreResult<()> {
    let changed = conn
        .prepare_cached("UPDATE users SET last_login_at_ms = ?2 WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![id, at_ms]))
        .db()?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Keys and tokens are revoked rather than deleted so that the audit trail can still name them;
/// an earlier revocation time is kept.
pub(crate) fn delete(conn: &mut Connection, id: &str, at_ms: i64) -> StoreResult<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let deleted = tx
        .execute("DELETE FROM users WHERE id = ?1", params![id])
        .db()?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    tx.execute(
        "UPDATE api_keys SET revoked_at_ms = ?2 WHERE owner_id = ?1 AND revoked_at_ms IS NULL",
        params![id, at_ms],
    )
    .db()?;
    tx.execute(
        "UPDATE auth_tokens SET revoked_at_ms = ?2 WHERE user_id = ?1 AND revoked_at_ms IS NULL",
        params![id, at_ms],
    )
    .db()?;
    tx.commit().db()
}
