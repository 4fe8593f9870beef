//! The `host_key_rotations` table: a host key replaced with a grace for the old one
//! (`docs/key-rotation.md`). The host's own key stays in `hosts.key_hash`; this row only keeps
//! the replaced hash, its grace and what a repeated call needs.

use deadpool_postgres::GenericClient;
use mftplus_store::{HostKeyRotation, HostKeyRotationRow, StoreError, StoreResult};
use tokio_postgres::Row;

use crate::error::ResultExt;
use crate::sql;

const COLUMNS: &str = "host_id, previous_key_hash, previous_valid_until_ms, idempotency_key, \
     sealed_new_key, rotated_at_ms";

fn from_row(row: &Row) -> StoreResult<HostKeyRotationRow> {
    Ok(HostKeyRotationRow {
        host_id: row.try_get(0).db()?,
        previous_key_hash: row.try_get(1).db()?,
        previous_valid_until_ms: row.try_get(2).db()?,
        idempotency_key: row.try_get(3).db()?,
        sealed_new_key: row.try_get(4).db()?,
        rotated_at_ms: row.try_get(5).db()?,
    })
}

/// `column` is `host_id` or `previous_key_hash`, both unique.
pub(crate) async fn load<C: GenericClient>(
    client: &C,
    column: &str,
    value: &str,
) -> StoreResult<Option<HostKeyRotationRow>> {
    let sql = format!("SELECT {COLUMNS} FROM host_key_rotations WHERE {column} = $1");
    sql::query_opt(client, &sql, &[&value])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Inside a transaction: the host row is locked before its key is compared, so of two
/// rotations racing from the same key exactly one wins.
pub(crate) async fn rotate<C: GenericClient>(
    tx: &C,
    rotation: &HostKeyRotation,
) -> StoreResult<HostKeyRotationRow> {
    let row = sql::query_opt(
        tx,
        "SELECT key_hash FROM hosts WHERE id = $1 FOR UPDATE",
        &[&rotation.host_id],
    )
    .await?
    .ok_or(StoreError::NotFound)?;
    let current: String = row.try_get(0).db()?;
    if current != rotation.expected_key_hash {
        return Err(StoreError::Conflict("key_rotated".into()));
    }
    sql::execute(
        tx,
        "UPDATE hosts SET key_hash = $2 WHERE id = $1",
        &[&rotation.host_id, &rotation.new_key_hash],
    )
    .await?;
    let sql = format!(
        "INSERT INTO host_key_rotations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (host_id) DO UPDATE SET previous_key_hash = EXCLUDED.previous_key_hash, \
         previous_valid_until_ms = EXCLUDED.previous_valid_until_ms, \
         idempotency_key = EXCLUDED.idempotency_key, sealed_new_key = EXCLUDED.sealed_new_key, \
         rotated_at_ms = EXCLUDED.rotated_at_ms RETURNING {COLUMNS}"
    );
    let row = sql::query_one(
        tx,
        &sql,
        &[
            &rotation.host_id,
            &rotation.expected_key_hash,
            &rotation.previous_valid_until_ms,
            &rotation.idempotency_key,
            &rotation.sealed_new_key,
            &rotation.at_ms,
        ],
    )
    .await?;
    forget_request(tx, &rotation.host_id).await?;
    from_row(&row)
}

pub(crate) async fn request<C: GenericClient>(
    client: &C,
    host_id: &str,
    requested_by: &str,
    at_ms: i64,
) -> StoreResult<()> {
    let inserted = sql::execute(
        client,
        "INSERT INTO host_key_rotation_requests (host_id, requested_by, requested_at_ms) \
         SELECT id, $2, $3 FROM hosts WHERE id = $1 ON CONFLICT (host_id) DO NOTHING",
        &[&host_id, &requested_by, &at_ms],
    )
    .await?;
    if inserted == 0
        && sql::query_opt(client, "SELECT 1 FROM hosts WHERE id = $1", &[&host_id])
            .await?
            .is_none()
    {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

async fn forget_request<C: GenericClient>(tx: &C, host_id: &str) -> StoreResult<()> {
    sql::execute(
        tx,
        "DELETE FROM host_key_rotation_requests WHERE host_id = $1",
        &[&host_id],
    )
    .await
    .map(|_| ())
}

/// Inside the recovery rotation's transaction: the keys of earlier rotations stop at once, and
/// the new identity owes no rotation.
pub(crate) async fn forget<C: GenericClient>(tx: &C, host_id: &str) -> StoreResult<()> {
    sql::execute(
        tx,
        "DELETE FROM host_key_rotations WHERE host_id = $1",
        &[&host_id],
    )
    .await?;
    forget_request(tx, host_id).await
}
