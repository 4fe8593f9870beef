//! The `users` table.

use deadpool_postgres::GenericClient;
use mftplus_store::{NewUser, StoreError, StoreResult, UserRow, UserUpdate};
use tokio_postgres::Row;

use crate::error::ResultExt;
use crate::sql;

const COLUMNS: &str = "id, email, name, role, user_type, password_hash, created_at_ms, \
                       updated_at_ms, last_login_at_ms";

fn from_row(row: &Row) -> StoreResult<UserRow> {
    Ok(UserRow {
        id: row.try_get(0).db()?,
        email: row.try_get(1).db()?,
        name: row.try_get(2).db()?,
        role: row.try_get(3).db()?,
        user_type: row.try_get(4).db()?,
        password_hash: row.try_get(5).db()?,
        created_at_ms: row.try_get(6).db()?,
        updated_at_ms: row.try_get(7).db()?,
        last_login_at_ms: row.try_get(8).db()?,
    })
}

/// The one place addresses are normalised, in Rust so that both backends fold case exactly
/// alike (SQLite's `lower()` only knows ASCII).
pub(crate) fn normalize_email(email: &str) -> String {
    email.to_lowercase()
}

pub(crate) async fn create<C: GenericClient>(client: &C, user: &NewUser) -> StoreResult<UserRow> {
    let sql = format!(
        "INSERT INTO users (id, email, name, role, user_type, password_hash, created_at_ms, \
         updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {COLUMNS}"
    );
    let email = normalize_email(&user.email);
    let row = sql::query_one(
        client,
        &sql,
        &[
            &user.id,
            &email,
            &user.name,
            &user.role,
            &user.user_type,
            &user.password_hash,
            &user.created_at_ms,
        ],
    )
    .await?;
    from_row(&row)
}

pub(crate) async fn get<C: GenericClient>(client: &C, id: &str) -> StoreResult<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    sql::query_opt(client, &sql, &[&id])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub(crate) async fn get_by_email<C: GenericClient>(
    client: &C,
    email: &str,
) -> StoreResult<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email = $1");
    let email = normalize_email(email);
    sql::query_opt(client, &sql, &[&email])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub(crate) async fn list<C: GenericClient>(client: &C) -> StoreResult<Vec<UserRow>> {
    // COLLATE "C": byte order, the same order SQLite gives, whatever the database's locale.
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY email COLLATE \"C\"");
    sql::query(client, &sql, &[])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub(crate) async fn list_page<C: GenericClient>(
    client: &C,
    after_email: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<UserRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM users \
         WHERE $1::text IS NULL OR email COLLATE \"C\" > $1 COLLATE \"C\" \
         ORDER BY email COLLATE \"C\" LIMIT $2"
    );
    let after = after_email.map(normalize_email);
    sql::query(client, &sql, &[&after, &i64::from(limit)])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub(crate) async fn get_many<C: GenericClient>(
    client: &C,
    ids: &[String],
) -> StoreResult<Vec<UserRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = ANY($1)");
    sql::query(client, &sql, &[&ids])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub(crate) async fn count<C: GenericClient>(client: &C) -> StoreResult<u64> {
    let row = sql::query_one(client, "SELECT COUNT(*) FROM users", &[]).await?;
    let count: i64 = row.try_get(0).db()?;
    Ok(count as u64)
}

pub(crate) async fn update<C: GenericClient>(
    client: &C,
    id: &str,
    update: &UserUpdate,
) -> StoreResult<UserRow> {
    let sql = format!(
        "UPDATE users SET name = COALESCE($2, name), role = COALESCE($3, role), \
         password_hash = COALESCE($4, password_hash), updated_at_ms = $5 \
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row = sql::query_opt(
        client,
        &sql,
        &[
            &id,
            &update.name,
            &update.role,
            &update.password_hash,
            &update.updated_at_ms,
        ],
    )
    .await?
    .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

pub(crate) async fn record_login<C: GenericClient>(
    client: &C,
    id: &str,
    at_ms: i64,
) -> StoreResult<()> {
    let changed = sql::execute(
        client,
        "UPDATE users SET last_login_at_ms = $2 WHERE id = $1",
        &[&id, &at_ms],
    )
    .await?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Keys and tokens are revoked rather than deleted so that the audit trail can still name them;
/// an earlier revocation time is kept. The caller wraps this in a transaction.
pub(crate) async fn delete<C: GenericClient>(tx: &C, id: &str, at_ms: i64) -> StoreResult<()> {
    let deleted = sql::execute(tx, "DELETE FROM users WHERE id = $1", &[&id]).await?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    sql::execute(
        tx,
        "UPDATE api_keys SET revoked_at_ms = $2 WHERE owner_id = $1 AND revoked_at_ms IS NULL",
        &[&id, &at_ms],
    )
    .await?;
    sql::execute(
        tx,
        "UPDATE auth_tokens SET revoked_at_ms = $2 WHERE user_id = $1 AND revoked_at_ms IS NULL",
        &[&id, &at_ms],
    )
    .await?;
    Ok(())
}
