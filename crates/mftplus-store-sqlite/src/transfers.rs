//! The `user_keys`, `host_transfer_keys`, `transfers`, `transfer_recipients` and
//! `transfer_chunks` tables.
//!
//! Every write runs on the single writer connection inside a `BEGIN IMMEDIATE` transaction, so
//! a chunk batch, a completion and a cancellation of the same transfer never interleave, in this
//! process or another one on the same file.

use mftplus_store::{
    check_complete_chunks, check_grant, plan_chunk_batch, recipient_kind, transfer_status,
    ChunkBatch, ChunkOutcome, ChunkRow, HostTransferKeyRow, NewChunk, NewTransfer, RecipientRow,
    StoreError, StoreResult, TransferFilter, TransferGrant, TransferRow, UserKeyRow, NOT_UPLOADING,
};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use std::collections::HashMap;

use crate::error::ResultExt;

const COLUMNS: &str = "id, sender_id, status, header, chunk_size, chunk_count, ciphertext_bytes, \
                       manifest, created_at_ms, completed_at_ms, cancelled_at_ms, expires_at_ms, \
                       site, sender_kind";

const CHUNK_COLUMNS: &str = "idx, size, sha256, last, stored_at_ms, data IS NOT NULL";

/// The columns [`recipient_from`] reads, from its `offset` on.
const RECIPIENT_COLUMNS: &str =
    "recipient_kind, recipient_id, display, downloaded_at_ms, awaiting_grant, granted_at_ms";

fn recipient_from(row: &Row<'_>, offset: usize) -> rusqlite::Result<RecipientRow> {
    Ok(RecipientRow {
        kind: row.get(offset)?,
        id: row.get(offset + 1)?,
        display: row.get(offset + 2)?,
        downloaded_at_ms: row.get(offset + 3)?,
        awaiting_grant: row.get(offset + 4)?,
        granted_at_ms: row.get(offset + 5)?,
    })
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<TransferRow> {
    Ok(TransferRow {
        id: row.get(0)?,
        sender_id: row.get(1)?,
        status: row.get(2)?,
        header: row.get(3)?,
        chunk_size: row.get(4)?,
        chunk_count: row.get(5)?,
        ciphertext_bytes: row.get(6)?,
        manifest: row.get(7)?,
        created_at_ms: row.get(8)?,
        completed_at_ms: row.get(9)?,
        cancelled_at_ms: row.get(10)?,
        expires_at_ms: row.get(11)?,
        site: row.get(12)?,
        sender_kind: row.get(13)?,
        recipients: Vec::new(),
    })
}

fn chunk_from_row(row: &Row<'_>) -> rusqlite::Result<ChunkRow> {
    Ok(ChunkRow {
        idx: row.get(0)?,
        size: row.get(1)?,
        sha256: row.get(2)?,
        last: row.get(3)?,
        stored_at_ms: row.get(4)?,
        inline: row.get(5)?,
    })
}

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<UserKeyRow> {
    Ok(UserKeyRow {
        user_id: row.get(0)?,
        public_key: row.get(1)?,
        fingerprint: row.get(2)?,
        created_at_ms: row.get(3)?,
        updated_at_ms: row.get(4)?,
    })
}

fn immediate(conn: &mut Connection) -> StoreResult<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .db()
}

// ---- user keys ----

pub(crate) fn put_key(conn: &Connection, key: &UserKeyRow) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO user_keys (user_id, public_key, fingerprint, created_at_ms, updated_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (user_id) DO UPDATE SET public_key = excluded.public_key, \
         fingerprint = excluded.fingerprint, updated_at_ms = excluded.updated_at_ms",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            key.user_id,
            key.public_key,
            key.fingerprint,
            key.created_at_ms,
            key.updated_at_ms
        ])
    })
    .db()
    .map(drop)
}

pub(crate) fn get_key(conn: &Connection, user_id: &str) -> StoreResult<Option<UserKeyRow>> {
    conn.prepare_cached(
        "SELECT user_id, public_key, fingerprint, created_at_ms, updated_at_ms \
         FROM user_keys WHERE user_id = ?1",
    )
    .and_then(|mut stmt| stmt.query_row(params![user_id], key_from_row).optional())
    .db()
}

// ---- host transfer keys (decision 0029) ----

fn host_key_from_row(row: &Row<'_>) -> rusqlite::Result<HostTransferKeyRow> {
    Ok(HostTransferKeyRow {
        host_id: row.get(0)?,
        public_key: row.get(1)?,
        registered_at_ms: row.get(2)?,
    })
}

/// Inserts from the host's row, so an unknown host inserts nothing and is `NotFound`.
pub(crate) fn set_host_key(
    conn: &Connection,
    host_id: &str,
    public_key: &str,
    at_ms: i64,
) -> StoreResult<HostTransferKeyRow> {
    conn.prepare_cached(
        "INSERT INTO host_transfer_keys (host_id, public_key, registered_at_ms) \
         SELECT id, ?2, ?3 FROM hosts WHERE id = ?1 \
         ON CONFLICT (host_id) DO UPDATE SET public_key = excluded.public_key, \
         registered_at_ms = excluded.registered_at_ms \
         RETURNING host_id, public_key, registered_at_ms",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![host_id, public_key, at_ms], host_key_from_row)
            .optional()
    })
    .db()?
    .ok_or(StoreError::NotFound)
}

pub(crate) fn get_host_key(
    conn: &Connection,
    host_id: &str,
) -> StoreResult<Option<HostTransferKeyRow>> {
    conn.prepare_cached(
        "SELECT host_id, public_key, registered_at_ms FROM host_transfer_keys WHERE host_id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![host_id], host_key_from_row)
            .optional()
    })
    .db()
}

pub(crate) fn delete_host_key(conn: &Connection, host_id: &str) -> StoreResult<bool> {
    conn.prepare_cached("DELETE FROM host_transfer_keys WHERE host_id = ?1")
        .and_then(|mut stmt| stmt.execute(params![host_id]))
        .db()
        .map(|deleted| deleted > 0)
}

// ---- transfers ----

fn recipients(conn: &Connection, transfer_id: &str) -> StoreResult<Vec<RecipientRow>> {
    let sql = format!(
        "SELECT {RECIPIENT_COLUMNS} FROM transfer_recipients WHERE transfer_id = ?1 \
         ORDER BY recipient_kind, recipient_id"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params![transfer_id], |row| recipient_from(row, 0))?
                .collect()
        })
        .db()
}

/// The transfer row and its recipients; call inside a transaction so both come from one
/// snapshot.
fn load(conn: &Connection, id: &str) -> StoreResult<Option<TransferRow>> {
    let sql = format!("SELECT {COLUMNS} FROM transfers WHERE id = ?1");
    let Some(mut row) = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![id], from_row).optional())
        .db()?
    else {
        return Ok(None);
    };
    row.recipients = recipients(conn, id)?;
    Ok(Some(row))
}

pub(crate) fn create(conn: &mut Connection, transfer: &NewTransfer) -> StoreResult<TransferRow> {
    let tx = immediate(conn)?;
    let row = insert(&tx, transfer)?;
    tx.commit().db()?;
    Ok(row)
}

/// Inserts the transfer and its recipients inside the caller's transaction; the row as stored.
pub(crate) fn insert(tx: &Connection, transfer: &NewTransfer) -> StoreResult<TransferRow> {
    tx.prepare_cached(
        "INSERT INTO transfers (id, sender_id, status, header, chunk_size, ciphertext_bytes, \
         created_at_ms, expires_at_ms, site, sender_kind) \
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            transfer.id,
            transfer.sender_id,
            transfer_status::UPLOADING,
            transfer.header,
            transfer.chunk_size,
            transfer.created_at_ms,
            transfer.expires_at_ms,
            transfer.site,
            transfer.sender_kind
        ])
    })
    .db()?;
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO transfer_recipients (transfer_id, recipient_kind, recipient_id, \
                 display, awaiting_grant) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .db()?;
        for recipient in &transfer.recipients {
            stmt.execute(params![
                transfer.id,
                recipient.kind,
                recipient.id,
                recipient.display,
                recipient.awaiting_grant
            ])
            .db()
            .map_err(|err| match err {
                // SQLite names the first key column (`transfer_id`); callers want the rule.
                StoreError::Conflict(_) => StoreError::Conflict("recipient".into()),
                other => other,
            })?;
        }
    }
    load(tx, &transfer.id)?.ok_or_else(|| StoreError::Backend("inserted transfer vanished".into()))
}

pub(crate) fn get(conn: &mut Connection, id: &str) -> StoreResult<Option<TransferRow>> {
    let tx = conn.transaction().db()?;
    load(&tx, id)
}

/// Visibility is a union of two index lookups (sent, received), each on (kind, id), rather
/// than an `OR`, which SQLite could only answer by scanning every transfer. Two statements
/// whatever the page's size: the rows (a keyset after `before`), then the recipients of all of
/// them.
pub(crate) fn list(
    conn: &mut Connection,
    filter: &TransferFilter,
) -> StoreResult<Vec<TransferRow>> {
    let mut conditions = Vec::new();
    if filter.visible_to.is_some() {
        conditions.push(
            "id IN (SELECT id FROM transfers WHERE sender_kind = ?5 AND sender_id = ?1 UNION \
             SELECT transfer_id FROM transfer_recipients \
             WHERE recipient_kind = ?5 AND recipient_id = ?1)"
                .to_string(),
        );
    }
    // Always names `?7` and `?8`, so every variant binds the same eight parameters.
    conditions.push(if filter.pending_for.is_some() {
        "id IN (SELECT transfer_id FROM transfer_recipients \
         WHERE recipient_kind = ?8 AND recipient_id = ?7 AND downloaded_at_ms IS NULL)"
            .to_string()
    } else {
        "?7 IS NULL AND ?8 IS NULL".to_string()
    });
    if filter.status.is_some() {
        conditions.push("status = ?2".to_string());
    }
    if filter.before.is_some() {
        conditions.push("(created_at_ms < ?3 OR (created_at_ms = ?3 AND id < ?4))".to_string());
    }
    // Parameters a variant leaves out are still bound: SQLite counts up to the highest, `?8`.
    let filter_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM transfers {filter_sql} \
         ORDER BY created_at_ms DESC, id DESC LIMIT ?6"
    );
    let tx = conn.transaction().db()?;
    let mut rows: Vec<TransferRow> = tx
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(
                params![
                    filter.visible_to.as_ref().map(|party| party.id()),
                    filter.status,
                    filter.before.as_ref().map(|cursor| cursor.at_ms),
                    filter.before.as_ref().map(|cursor| cursor.id.as_str()),
                    filter.visible_to.as_ref().map(|party| party.kind()),
                    filter.limit,
                    filter.pending_for.as_ref().map(|party| party.id()),
                    filter.pending_for.as_ref().map(|party| party.kind())
                ],
                from_row,
            )?
            .collect()
        })
        .db()?;
    attach_recipients(&tx, &mut rows)?;
    Ok(rows)
}

/// `ids` as one JSON array parameter, so a statement over a set of ids is prepared once
/// whatever the set's size (`json_each`).
fn id_set(ids: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let ids: Vec<String> = ids.into_iter().map(|id| id.as_ref().to_owned()).collect();
    serde_json::Value::from(ids).to_string()
}

/// Fills in the recipients of every row with one statement.
fn attach_recipients(conn: &Connection, rows: &mut [TransferRow]) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids = id_set(rows.iter().map(|row| row.id.as_str()));
    let sql = format!(
        "SELECT transfer_id, {RECIPIENT_COLUMNS} FROM transfer_recipients \
         WHERE transfer_id IN (SELECT value FROM json_each(?1)) \
         ORDER BY recipient_kind, recipient_id"
    );
    let found: Vec<(String, RecipientRow)> = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params![ids], |row| {
                Ok((row.get(0)?, recipient_from(row, 1)?))
            })?
            .collect()
        })
        .db()?;
    for (transfer_id, recipient) in found {
        for row in rows.iter_mut().filter(|row| row.id == transfer_id) {
            row.recipients.push(recipient.clone());
        }
    }
    Ok(())
}

pub(crate) fn count_stored_chunks(
    conn: &Connection,
    transfer_ids: &[String],
) -> StoreResult<HashMap<String, u64>> {
    if transfer_ids.is_empty() {
        return Ok(HashMap::new());
    }
    conn.prepare_cached(
        "SELECT transfer_id, COUNT(*) FROM transfer_chunks \
         WHERE transfer_id IN (SELECT value FROM json_each(?1)) GROUP BY transfer_id",
    )
    .and_then(|mut stmt| {
        stmt.query_map(params![id_set(transfer_ids)], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
        })?
        .collect()
    })
    .db()
}

/// `NotFound`, or `Conflict(NOT_UPLOADING)` unless the transfer is `uploading`.
fn require_uploading(tx: &Transaction<'_>, id: &str) -> StoreResult<()> {
    let status: Option<String> = tx
        .prepare_cached("SELECT status FROM transfers WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row(params![id], |row| row.get(0)).optional())
        .db()?;
    match status {
        None => Err(StoreError::NotFound),
        Some(status) if status == transfer_status::UPLOADING => Ok(()),
        Some(_) => Err(StoreError::Conflict(NOT_UPLOADING.into())),
    }
}

pub(crate) fn record_chunks(
    conn: &mut Connection,
    transfer_id: &str,
    chunks: &[NewChunk],
) -> StoreResult<Vec<ChunkOutcome>> {
    let tx = immediate(conn)?;
    require_uploading(&tx, transfer_id)?;
    let outcomes = record_in(&tx, transfer_id, chunks)?;
    tx.commit().db()?;
    Ok(outcomes)
}

/// Several transfers' batches in one transaction. A batch whose transfer is unknown or not
/// `uploading` gets that error as its entry, having written nothing; any other error
/// abandons the whole transaction. The single writer connection already serializes the
/// transfers, so the id order of the contract needs no locks here.
pub(crate) fn record_chunk_batches(
    conn: &mut Connection,
    batches: &[ChunkBatch],
) -> StoreResult<Vec<StoreResult<Vec<ChunkOutcome>>>> {
    let tx = immediate(conn)?;
    let mut results = Vec::with_capacity(batches.len());
    for batch in batches {
        results.push(match require_uploading(&tx, &batch.transfer_id) {
            Ok(()) => Ok(record_in(&tx, &batch.transfer_id, &batch.chunks)?),
            Err(err) => Err(err),
        });
    }
    tx.commit().db()?;
    Ok(results)
}

/// Judges and inserts one transfer's batch inside the caller's transaction, after the caller
/// checked that the transfer is `uploading`.
fn record_in(
    tx: &Transaction<'_>,
    transfer_id: &str,
    chunks: &[NewChunk],
) -> StoreResult<Vec<ChunkOutcome>> {
    let mut existing = Vec::new();
    {
        let sql = format!(
            "SELECT {CHUNK_COLUMNS} FROM transfer_chunks WHERE transfer_id = ?1 AND idx = ?2"
        );
        let mut stmt = tx.prepare_cached(&sql).db()?;
        for chunk in chunks {
            if let Some(row) = stmt
                .query_row(params![transfer_id, chunk.idx], chunk_from_row)
                .optional()
                .db()?
            {
                existing.push(row);
            }
        }
    }
    let (outcomes, inserts) = plan_chunk_batch(&existing, chunks);
    if !inserts.is_empty() {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO transfer_chunks \
                 (transfer_id, idx, size, sha256, last, stored_at_ms, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .db()?;
        for chunk in &inserts {
            stmt.execute(params![
                transfer_id,
                chunk.idx,
                chunk.size,
                chunk.sha256,
                chunk.last,
                chunk.stored_at_ms,
                chunk.data
            ])
            .db()?;
        }
        let added: i64 = inserts.iter().map(|chunk| chunk.size).sum();
        tx.prepare_cached(
            "UPDATE transfers SET ciphertext_bytes = ciphertext_bytes + ?2 WHERE id = ?1",
        )
        .and_then(|mut stmt| stmt.execute(params![transfer_id, added]))
        .db()?;
    }
    Ok(outcomes)
}

pub(crate) fn list_chunks(conn: &Connection, transfer_id: &str) -> StoreResult<Vec<ChunkRow>> {
    let sql =
        format!("SELECT {CHUNK_COLUMNS} FROM transfer_chunks WHERE transfer_id = ?1 ORDER BY idx");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params![transfer_id], chunk_from_row)?
                .collect()
        })
        .db()
}

pub(crate) fn get_chunk(
    conn: &Connection,
    transfer_id: &str,
    idx: i64,
) -> StoreResult<Option<ChunkRow>> {
    let sql =
        format!("SELECT {CHUNK_COLUMNS} FROM transfer_chunks WHERE transfer_id = ?1 AND idx = ?2");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_row(params![transfer_id, idx], chunk_from_row)
                .optional()
        })
        .db()
}

pub(crate) fn chunk_data(
    conn: &Connection,
    transfer_id: &str,
    idx: i64,
) -> StoreResult<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT data FROM transfer_chunks WHERE transfer_id = ?1 AND idx = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(params![transfer_id, idx], |row| row.get(0))
                .optional()
        })
        .map(Option::flatten)
        .db()
}

pub(crate) fn complete(
    conn: &mut Connection,
    id: &str,
    manifest: &[u8],
    at_ms: i64,
) -> StoreResult<TransferRow> {
    let tx = immediate(conn)?;
    let row = complete_in(&tx, id, manifest, at_ms)?;
    tx.commit().db()?;
    Ok(row)
}

/// `create`, `record_chunks` and `complete` of a one-chunk transfer in one transaction.
pub(crate) fn create_complete(
    conn: &mut Connection,
    transfer: &NewTransfer,
    chunk: &NewChunk,
    manifest: &[u8],
    at_ms: i64,
) -> StoreResult<TransferRow> {
    let tx = immediate(conn)?;
    insert(&tx, transfer)?;
    record_in(&tx, &transfer.id, std::slice::from_ref(chunk))?;
    let row = complete_in(&tx, &transfer.id, manifest, at_ms)?;
    tx.commit().db()?;
    Ok(row)
}

fn complete_in(
    tx: &Transaction<'_>,
    id: &str,
    manifest: &[u8],
    at_ms: i64,
) -> StoreResult<TransferRow> {
    require_uploading(tx, id)?;
    let chunks: Vec<(i64, bool)> = tx
        .prepare_cached("SELECT idx, last FROM transfer_chunks WHERE transfer_id = ?1 ORDER BY idx")
        .and_then(|mut stmt| {
            stmt.query_map(params![id], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .db()?;
    let count = check_complete_chunks(&chunks).map_err(StoreError::Conflict)?;
    tx.prepare_cached(
        "UPDATE transfers SET status = ?2, chunk_count = ?3, manifest = ?4, completed_at_ms = ?5 \
         WHERE id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            id,
            transfer_status::COMPLETE,
            count,
            manifest,
            at_ms
        ])
    })
    .db()?;
    load(tx, id)?.ok_or(StoreError::NotFound)
}

pub(crate) fn cancel(conn: &Connection, id: &str, at_ms: i64) -> StoreResult<bool> {
    conn.prepare_cached(
        "UPDATE transfers SET status = ?2, cancelled_at_ms = ?3 \
         WHERE id = ?1 AND status IN (?4, ?5)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            id,
            transfer_status::CANCELLED,
            at_ms,
            transfer_status::UPLOADING,
            transfer_status::COMPLETE
        ])
    })
    .db()
    .map(|changed| changed > 0)
}

pub(crate) fn mark_downloaded(
    conn: &Connection,
    transfer_id: &str,
    kind: &str,
    recipient_id: &str,
    at_ms: i64,
) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE transfer_recipients SET downloaded_at_ms = COALESCE(downloaded_at_ms, ?4) \
             WHERE transfer_id = ?1 AND recipient_kind = ?2 AND recipient_id = ?3",
        )
        .and_then(|mut stmt| stmt.execute(params![transfer_id, kind, recipient_id, at_ms]))
        .db()?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) fn expire(conn: &Connection, now_ms: i64) -> StoreResult<Vec<String>> {
    let mut ids: Vec<String> = conn
        .prepare_cached(
            "UPDATE transfers SET status = ?2 \
             WHERE status IN (?3, ?4) AND expires_at_ms <= ?1 RETURNING id",
        )
        .and_then(|mut stmt| {
            stmt.query_map(
                params![
                    now_ms,
                    transfer_status::EXPIRED,
                    transfer_status::UPLOADING,
                    transfer_status::COMPLETE
                ],
                |row| row.get(0),
            )?
            .collect()
        })
        .db()?;
    ids.sort();
    Ok(ids)
}

pub(crate) fn delete(conn: &mut Connection, id: &str) -> StoreResult<()> {
    let tx = immediate(conn)?;
    for sql in [
        "DELETE FROM link_tickets WHERE link_id IN \
         (SELECT id FROM transfer_links WHERE transfer_id = ?1)",
        "DELETE FROM transfer_links WHERE transfer_id = ?1",
        "DELETE FROM transfer_chunks WHERE transfer_id = ?1",
        "DELETE FROM transfer_recipients WHERE transfer_id = ?1",
        "DELETE FROM transfers WHERE id = ?1",
    ] {
        tx.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(params![id]))
            .db()?;
    }
    tx.commit().db()
}

// ---- grants (decision 0022) ----

/// The waiting rows come from the partial index on `awaiting_grant`, so a sender with nothing
/// waiting costs one index probe.
pub(crate) fn list_awaiting_grants(
    conn: &mut Connection,
    sender_id: &str,
    now_ms: i64,
    limit: u32,
) -> StoreResult<Vec<TransferRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM transfers WHERE id IN \
         (SELECT transfer_id FROM transfer_recipients WHERE awaiting_grant = 1 \
          AND recipient_kind = ?2) \
         AND sender_kind = ?2 AND sender_id = ?1 AND status IN (?3, ?4) AND expires_at_ms > ?5 \
         ORDER BY created_at_ms, id LIMIT ?6"
    );
    let tx = conn.transaction().db()?;
    let mut rows: Vec<TransferRow> = tx
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(
                params![
                    sender_id,
                    recipient_kind::USER,
                    transfer_status::UPLOADING,
                    transfer_status::COMPLETE,
                    now_ms,
                    limit
                ],
                from_row,
            )?
            .collect()
        })
        .db()?;
    attach_recipients(&tx, &mut rows)?;
    Ok(rows)
}

/// On the writer connection under `BEGIN IMMEDIATE`, so it is serialized with chunk batches,
/// completion, cancellation and other grants of the same transfer.
pub(crate) fn grant(conn: &mut Connection, grant: &TransferGrant) -> StoreResult<TransferRow> {
    let tx = immediate(conn)?;
    let row = load(&tx, &grant.transfer_id)?.ok_or(StoreError::NotFound)?;
    check_grant(&row, grant).map_err(|text| StoreError::Conflict(text.into()))?;
    tx.prepare_cached("UPDATE transfers SET header = ?2 WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![grant.transfer_id, grant.header]))
        .db()?;
    {
        let mut stmt = tx
            .prepare_cached(
                "UPDATE transfer_recipients SET awaiting_grant = 0, granted_at_ms = ?4 \
                 WHERE transfer_id = ?1 AND recipient_kind = ?2 AND recipient_id = ?3",
            )
            .db()?;
        for id in &grant.recipient_ids {
            stmt.execute(params![
                grant.transfer_id,
                recipient_kind::USER,
                id,
                grant.at_ms
            ])
            .db()?;
        }
    }
    let row = load(&tx, &grant.transfer_id)?.ok_or(StoreError::NotFound)?;
    tx.commit().db()?;
    Ok(row)
}
