//! The `auth_tokens` table.

use deadpool_postgres::GenericClient;
use mftplus_store::{StoreResult, TimeCursor, TokenRow};
use tokio_postgres::Row;

use crate::error::ResultExt;
use crate::sql;

const COLUMNS: &str = "jti, user_id, kind, role, family_id, created_via, issued_at_ms, \
                       expires_at_ms, revoked_at_ms, used_at_ms";

fn from_row(row: &Row) -> StoreResult<TokenRow> {
    Ok(TokenRow {
        jti: row.try_get(0).db()?,
        user_id: row.try_get(1).db()?,
        kind: row.try_get(2).db()?,
        role: row.try_get(3).db()?,
        family_id: row.try_get(4).db()?,
        created_via: row.try_get(5).db()?,
        issued_at_ms: row.try_get(6).db()?,
        expires_at_ms: row.try_get(7).db()?,
        revoked_at_ms: row.try_get(8).db()?,
        used_at_ms: row.try_get(9).db()?,
    })
}

pub(crate) async fn insert<C: GenericClient>(client: &C, token: &TokenRow) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO auth_tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    );
    sql::execute(
        client,
        &sql,
        &[
            &token.jti,
            &token.user_id,
            &token.kind,
            &token.role,
            &token.family_id,
            &token.created_via,
            &token.issued_at_ms,
            &token.expires_at_ms,
            &token.revoked_at_ms,
            &token.used_at_ms,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn get<C: GenericClient>(client: &C, jti: &str) -> StoreResult<Option<TokenRow>> {
    let sql = format!("SELECT {COLUMNS} FROM auth_tokens WHERE jti = $1");
    sql::query_opt(client, &sql, &[&jti])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub(crate) async fn list_active<C: GenericClient>(
    client: &C,
    user_id: Option<&str>,
    now_ms: i64,
) -> StoreResult<Vec<TokenRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM auth_tokens \
         WHERE revoked_at_ms IS NULL AND expires_at_ms > $2 \
         AND ($1::text IS NULL OR user_id = $1) \
         ORDER BY issued_at_ms DESC, jti COLLATE \"C\" DESC"
    );
    sql::query(client, &sql, &[&user_id, &now_ms])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub(crate) async fn list_sign_ins<C: GenericClient>(
    client: &C,
    user_id: &str,
    now_ms: i64,
    before: Option<&TimeCursor>,
    limit: u32,
) -> StoreResult<Vec<TokenRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM auth_tokens \
         WHERE user_id = $1 AND revoked_at_ms IS NULL AND expires_at_ms > $2 \
         AND (kind = 'session' OR (kind = 'refresh' AND used_at_ms IS NULL) \
              OR created_via = 'admin') \
         AND ($3::bigint IS NULL OR issued_at_ms < $3 \
              OR (issued_at_ms = $3 AND jti COLLATE \"C\" < $4::text COLLATE \"C\")) \
         ORDER BY issued_at_ms DESC, jti COLLATE \"C\" DESC LIMIT $5"
    );
    let (at, id) = match before {
        Some(cursor) => (Some(cursor.at_ms), Some(cursor.id.as_str())),
        None => (None, None),
    };
    sql::query(
        client,
        &sql,
        &[&user_id, &now_ms, &at, &id, &i64::from(limit)],
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

async fn revoke_where<C: GenericClient>(
    client: &C,
    column: &str,
    key: &str,
    at_ms: i64,
) -> StoreResult<u64> {
    let sql = format!(
        "UPDATE auth_tokens SET revoked_at_ms = $2 WHERE {column} = $1 AND revoked_at_ms IS NULL"
    );
    sql::execute(client, &sql, &[&key, &at_ms]).await
}

pub(crate) async fn revoke<C: GenericClient>(
    client: &C,
    jti: &str,
    at_ms: i64,
) -> StoreResult<bool> {
    Ok(revoke_where(client, "jti", jti, at_ms).await? > 0)
}

pub(crate) async fn revoke_user<C: GenericClient>(
    client: &C,
    user_id: &str,
    at_ms: i64,
) -> StoreResult<u64> {
    revoke_where(client, "user_id", user_id, at_ms).await
}

pub(crate) async fn revoke_family<C: GenericClient>(
    client: &C,
    family_id: &str,
    at_ms: i64,
) -> StoreResult<u64> {
    revoke_where(client, "family_id", family_id, at_ms).await
}

/// A compare-and-set in one statement: under READ COMMITTED a second concurrent UPDATE waits
/// for the first, re-checks `used_at_ms IS NULL` on the new row version and changes nothing.
/// An unknown `jti` also reports `false`.
pub(crate) async fn mark_refresh_used<C: GenericClient>(
    client: &C,
    jti: &str,
    at_ms: i64,
) -> StoreResult<bool> {
    let changed = sql::execute(
        client,
        "UPDATE auth_tokens SET used_at_ms = $2 WHERE jti = $1 AND used_at_ms IS NULL",
        &[&jti, &at_ms],
    )
    .await?;
    Ok(changed > 0)
}

pub(crate) async fn touch<C: GenericClient>(
    client: &C,
    jti: &str,
    at_ms: i64,
) -> StoreResult<bool> {
    let changed = sql::execute(
        client,
        "UPDATE auth_tokens SET used_at_ms = $2 WHERE jti = $1 AND revoked_at_ms IS NULL \
         AND (used_at_ms IS NULL OR used_at_ms < $2)",
        &[&jti, &at_ms],
    )
    .await?;
    Ok(changed > 0)
}

pub(crate) async fn prune<C: GenericClient>(
    client: &C,
    expired_before_ms: i64,
) -> StoreResult<u64> {
    sql::execute(
        client,
        "DELETE FROM auth_tokens WHERE expires_at_ms < $1",
        &[&expired_before_ms],
    )
    .await
}
