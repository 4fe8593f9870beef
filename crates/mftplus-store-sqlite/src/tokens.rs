//! The `auth_tokens` table.

use mftplus_store::{StoreResult, TimeCursor, TokenRow};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::ResultExt;

const COLUMNS: &str = "jti, user_id, kind, role, family_id, created_via, issued_at_ms, \
                       expires_at_ms, revoked_at_ms, used_at_ms";

fn from_row(row: &Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        jti: row.get(0)?,
        user_id: row.get(1)?,
        kind: row.get(2)?,
        role: row.get(3)?,
        family_id: row.get(4)?,
        created_via: row.get(5)?,
        issued_at_ms: row.get(6)?,
        expires_at_ms: row.get(7)?,
        revoked_at_ms: row.get(8)?,
        used_at_ms: row.get(9)?,
    })
}

pub(crate) fn insert(conn: &Connection, token: &TokenRow) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO auth_tokens ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.execute(params![
                token.jti,
                token.user_id,
                token.kind,
                token.role,
                token.family_id,
                token.created_via,
                token.issued_at_ms,
                token.expires_at_ms,
                token.revoked_at_ms,
                token.used_at_ms
            ])
        })
        .db()
        .map(drop)
}

pub(crate) fn get(conn: &Connection, jti: &str) -> StoreResult<Option<TokenRow>> {
    let sql = format!("SELECT {COLUMNS} FROM auth_tokens WHERE jti = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![jti], from_row).optional())
        .db()
}

pub(crate) fn list_active(
    conn: &Connection,
    user_id: Option<&str>,
    now_ms: i64,
) -> StoreResult<Vec<TokenRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM auth_tokens \
         WHERE revoked_at_ms IS NULL AND expires_at_ms > ?2 AND (?1 IS NULL OR user_id = ?1) \
         ORDER BY issued_at_ms DESC, jti DESC"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params![user_id, now_ms], from_row)?
                .collect()
        })
        .db()
}

pub(crate) fn list_sign_ins(
    conn: &Connection,
    user_id: &str,
    now_ms: i64,
    before: Option<&TimeCursor>,
    limit: u32,
) -> StoreResult<Vec<TokenRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM auth_tokens \
         WHERE user_id = ?1 AND revoked_at_ms IS NULL AND expires_at_ms > ?2 \
         AND (kind = 'session' OR (kind = 'refresh' AND used_at_ms IS NULL) \
              OR created_via = 'admin') \
         AND (?3 IS NULL OR issued_at_ms < ?3 OR (issued_at_ms = ?3 AND jti < ?4)) \
         ORDER BY issued_at_ms DESC, jti DESC LIMIT ?5"
    );
    let (at, id) = match before {
        Some(cursor) => (Some(cursor.at_ms), Some(cursor.id.as_str())),
        None => (None, None),
    };
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params![user_id, now_ms, at, id, limit], from_row)?
                .collect()
        })
        .db()
}

fn revoke_where(conn: &Connection, condition: &str, key: &str, at_ms: i64) -> StoreResult<u64> {
    let sql = format!(
        "UPDATE auth_tokens SET revoked_at_ms = ?2 WHERE {condition} AND revoked_at_ms IS NULL"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.execute(params![key, at_ms]))
        .db()
        .map(|changed| changed as u64)
}

pub(crate) fn revoke(conn: &Connection, jti: &str, at_ms: i64) -> StoreResult<bool> {
    revoke_where(conn, "jti = ?1", jti, at_ms).map(|changed| changed > 0)
}

pub(crate) fn revoke_user(conn: &Connection, user_id: &str, at_ms: i64) -> StoreResult<u64> {
    revoke_where(conn, "user_id = ?1", user_id, at_ms)
}

pub(crate) fn revoke_family(conn: &Connection, family_id: &str, at_ms: i64) -> StoreResult<u64> {
    revoke_where(conn, "family_id = ?1", family_id, at_ms)
}

/// A compare-and-set in one statement: of two concurrent exchanges only one sees a change.
/// An unknown `jti` also reports `false`.
pub(crate) fn mark_refresh_used(conn: &Connection, jti: &str, at_ms: i64) -> StoreResult<bool> {
    conn.prepare_cached(
        "UPDATE auth_tokens SET used_at_ms = ?2 WHERE jti = ?1 AND used_at_ms IS NULL",
    )
    .and_then(|mut stmt| stmt.execute(params![jti, at_ms]))
    .db()
    .map(|changed| changed > 0)
}

pub(crate) fn touch(conn: &Connection, jti: &str, at_ms: i64) -> StoreResult<bool> {
    conn.prepare_cached(
        "UPDATE auth_tokens SET used_at_ms = ?2 WHERE jti = ?1 AND revoked_at_ms IS NULL \
         AND (used_at_ms IS NULL OR used_at_ms < ?2)",
    )
    .and_then(|mut stmt| stmt.execute(params![jti, at_ms]))
    .db()
    .map(|changed| changed > 0)
}

pub(crate) fn prune(conn: &Connection, expired_before_ms: i64) -> StoreResult<u64> {
    conn.prepare_cached("DELETE FROM auth_tokens WHERE expires_at_ms < ?1")
        .and_then(|mut stmt| stmt.execute(params![expired_before_ms]))
        .db()
        .map(|changed| changed as u64)
}
