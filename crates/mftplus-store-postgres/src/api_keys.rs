//! The `api_keys` table.

use deadpool_postgres::GenericClient;
use mftplus_store::{ApiKeyPage, ApiKeyRow, NewApiKey, StoreError, StoreResult};
use tokio_postgres::Row;

use crate::error::ResultExt;
use crate::sql;

const COLUMNS: &str = "id, name, key_hash, prefix, role, owner_id, created_at_ms, expires_at_ms, \
                       last_used_at_ms, revoked_at_ms, replaces";

fn from_row(row: &Row) -> StoreResult<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: row.try_get(0).db()?,
        name: row.try_get(1).db()?,
        key_hash: row.try_get(2).db()?,
        prefix: row.try_get(3).db()?,
        role: row.try_get(4).db()?,
        owner_id: row.try_get(5).db()?,
        created_at_ms: row.try_get(6).db()?,
        expires_at_ms: row.try_get(7).db()?,
        last_used_at_ms: row.try_get(8).db()?,
        revoked_at_ms: row.try_get(9).db()?,
        replaces: row.try_get(10).db()?,
    })
}

async fn insert<C: GenericClient>(
    client: &C,
    key: &NewApiKey,
    replaces: Option<&str>,
) -> StoreResult<ApiKeyRow> {
    let sql = format!(
        "INSERT INTO api_keys (id, name, key_hash, prefix, role, owner_id, created_at_ms, \
         expires_at_ms, replaces) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
    );
    let row = sql::query_one(
        client,
        &sql,
        &[
            &key.id,
            &key.name,
            &key.key_hash,
            &key.prefix,
            &key.role,
            &key.owner_id,
            &key.created_at_ms,
            &key.expires_at_ms,
            &replaces,
        ],
    )
    .await?;
    from_row(&row)
}

pub(crate) async fn create<C: GenericClient>(
    client: &C,
    key: &NewApiKey,
) -> StoreResult<ApiKeyRow> {
    insert(client, key, key.replaces.as_deref()).await
}

pub(crate) async fn get<C: GenericClient>(client: &C, id: &str) -> StoreResult<Option<ApiKeyRow>> {
    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1");
    sql::query_opt(client, &sql, &[&id])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub(crate) async fn get_by_hash<C: GenericClient>(
    client: &C,
    key_hash: &str,
) -> StoreResult<Option<ApiKeyRow>> {
    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1");
    sql::query_opt(client, &sql, &[&key_hash])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub(crate) async fn list<C: GenericClient>(
    client: &C,
    owner_id: Option<&str>,
) -> StoreResult<Vec<ApiKeyRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_keys WHERE $1::text IS NULL OR owner_id = $1 \
         ORDER BY created_at_ms DESC, id COLLATE \"C\" DESC"
    );
    sql::query(client, &sql, &[&owner_id])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// One statement per shape (all owners or one), so the one-owner page uses its index.
pub(crate) async fn list_page<C: GenericClient>(
    client: &C,
    page: &ApiKeyPage,
) -> StoreResult<Vec<ApiKeyRow>> {
    let owner = match page.owner_id {
        Some(_) => "owner_id = $1",
        None => "$1::text IS NULL",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM api_keys WHERE {owner} AND ($2 OR revoked_at_ms IS NULL) \
         AND ($3::bigint IS NULL OR created_at_ms < $3 \
              OR (created_at_ms = $3 AND id COLLATE \"C\" < $4::text COLLATE \"C\")) \
         ORDER BY created_at_ms DESC, id COLLATE \"C\" DESC LIMIT $5"
    );
    let (at, id) = match &page.before {
        Some(cursor) => (Some(cursor.at_ms), Some(cursor.id.as_str())),
        None => (None, None),
    };
    sql::query(
        client,
        &sql,
        &[
            &page.owner_id,
            &page.include_revoked,
            &at,
            &id,
            &i64::from(page.limit),
        ],
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

pub(crate) async fn revoke<C: GenericClient>(
    client: &C,
    id: &str,
    at_ms: i64,
) -> StoreResult<bool> {
    let changed = sql::execute(
        client,
        "UPDATE api_keys SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL",
        &[&id, &at_ms],
    )
    .await?;
    Ok(changed > 0)
}

/// The new key always records the old one as `replaces`, whatever the caller filled in, so the
/// lineage cannot be forgotten. The caller wraps this in a transaction.
pub(crate) async fn rotate<C: GenericClient>(
    tx: &C,
    old_id: &str,
    new: &NewApiKey,
    at_ms: i64,
) -> StoreResult<ApiKeyRow> {
    if !revoke(tx, old_id, at_ms).await? {
        return Err(StoreError::NotFound);
    }
    insert(tx, new, Some(old_id)).await
}

/// One statement for the whole batch. Rows are locked in id order first, so two batches that
/// share keys wait for each other instead of deadlocking.
pub(crate) async fn touch<C: GenericClient>(client: &C, uses: &[(String, i64)]) -> StoreResult<()> {
    let ids: Vec<&str> = uses.iter().map(|(id, _)| id.as_str()).collect();
    let stamps: Vec<i64> = uses.iter().map(|(_, at_ms)| *at_ms).collect();
    sql::execute(
        client,
        "WITH uses AS ( \
             SELECT id, MAX(at_ms) AS at_ms \
             FROM unnest($1::text[], $2::bigint[]) AS u(id, at_ms) GROUP BY id \
         ), locked AS ( \
             SELECT k.id FROM api_keys k JOIN uses ON uses.id = k.id \
             ORDER BY k.id COLLATE \"C\" FOR UPDATE OF k \
         ) \
         UPDATE api_keys k SET last_used_at_ms = GREATEST(k.last_used_at_ms, uses.at_ms) \
         FROM uses JOIN locked ON locked.id = uses.id WHERE k.id = uses.id",
        &[&ids, &stamps],
    )
    .await?;
    Ok(())
}

pub(crate) async fn revoke_inactive<C: GenericClient>(
    client: &C,
    inactive_before_ms: i64,
    at_ms: i64,
) -> StoreResult<Vec<ApiKeyRow>> {
    let sql = format!(
        "UPDATE api_keys SET revoked_at_ms = $2 \
         WHERE revoked_at_ms IS NULL AND COALESCE(last_used_at_ms, created_at_ms) < $1 \
         RETURNING {COLUMNS}"
    );
    let mut rows = sql::query(client, &sql, &[&inactive_before_ms, &at_ms])
        .await?
        .iter()
        .map(from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    // RETURNING has no defined order; give callers the same order as list().
    rows.sort_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));
    Ok(rows)
}
