//! The `user_keys`, `host_transfer_keys`, `transfers`, `transfer_recipients` and
//! `transfer_chunks` tables.
//!
//! Chunk batches, completion and cancellation of one transfer are serialized on its
//! `transfers` row (`SELECT … FOR UPDATE`, or the `UPDATE` itself), so they never interleave,
//! whichever cloud process runs them; batches of different transfers do not wait for each other.
//! Each batch costs a fixed number of round trips whatever its size.

use deadpool_postgres::GenericClient;
use mftplus_store::{
    check_complete_chunks, check_grant, plan_chunk_batch, recipient_kind, transfer_status,
    ChunkBatch, ChunkOutcome, ChunkRow, HostTransferKeyRow, NewChunk, NewTransfer, RecipientRow,
    StoreError, StoreResult, TransferFilter, TransferGrant, TransferRow, UserKeyRow, NOT_UPLOADING,
};
use std::collections::HashMap;
use tokio_postgres::Row;

use crate::error::ResultExt;
use crate::sql;

const COLUMNS: &str = "id, sender_id, status, header, chunk_size, chunk_count, ciphertext_bytes, \
                       manifest, created_at_ms, completed_at_ms, cancelled_at_ms, expires_at_ms, \
                       site, sender_kind";

const CHUNK_COLUMNS: &str = "idx, size, sha256, last, stored_at_ms, data IS NOT NULL";

fn from_row(row: &Row) -> StoreResult<TransferRow> {
    Ok(TransferRow {
        id: row.try_get(0).db()?,
        sender_id: row.try_get(1).db()?,
        status: row.try_get(2).db()?,
        header: row.try_get(3).db()?,
        chunk_size: row.try_get(4).db()?,
        chunk_count: row.try_get(5).db()?,
        ciphertext_bytes: row.try_get(6).db()?,
        manifest: row.try_get(7).db()?,
        created_at_ms: row.try_get(8).db()?,
        completed_at_ms: row.try_get(9).db()?,
        cancelled_at_ms: row.try_get(10).db()?,
        expires_at_ms: row.try_get(11).db()?,
        site: row.try_get(12).db()?,
        sender_kind: row.try_get(13).db()?,
        recipients: Vec::new(),
    })
}

fn chunk_from_row(row: &Row) -> StoreResult<ChunkRow> {
    Ok(ChunkRow {
        idx: row.try_get(0).db()?,
        size: row.try_get(1).db()?,
        sha256: row.try_get(2).db()?,
        last: row.try_get(3).db()?,
        stored_at_ms: row.try_get(4).db()?,
        inline: row.try_get(5).db()?,
    })
}

// ---- user keys ----

pub(crate) async fn put_key<C: GenericClient>(client: &C, key: &UserKeyRow) -> StoreResult<()> {
    sql::execute(
        client,
        "INSERT INTO user_keys (user_id, public_key, fingerprint, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (user_id) DO UPDATE SET public_key = excluded.public_key, \
         fingerprint = excluded.fingerprint, updated_at_ms = excluded.updated_at_ms",
        &[
            &key.user_id,
            &key.public_key,
            &key.fingerprint,
            &key.created_at_ms,
            &key.updated_at_ms,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn get_key<C: GenericClient>(
    client: &C,
    user_id: &str,
) -> StoreResult<Option<UserKeyRow>> {
    let row = sql::query_opt(
        client,
        "SELECT user_id, public_key, fingerprint, created_at_ms, updated_at_ms \
         FROM user_keys WHERE user_id = $1",
        &[&user_id],
    )
    .await?;
    row.map(|row| {
        Ok(UserKeyRow {
            user_id: row.try_get(0).db()?,
            public_key: row.try_get(1).db()?,
            fingerprint: row.try_get(2).db()?,
            created_at_ms: row.try_get(3).db()?,
            updated_at_ms: row.try_get(4).db()?,
        })
    })
    .transpose()
}

// ---- host transfer keys (decision 0029) ----

fn host_key_from_row(row: &Row) -> StoreResult<HostTransferKeyRow> {
    Ok(HostTransferKeyRow {
        host_id: row.try_get(0).db()?,
        public_key: row.try_get(1).db()?,
        registered_at_ms: row.try_get(2).db()?,
    })
}

/// Inserts from the host's row, so an unknown host inserts nothing and is `NotFound`.
pub(crate) async fn set_host_key<C: GenericClient>(
    client: &C,
    host_id: &str,
    public_key: &str,
    at_ms: i64,
) -> StoreResult<HostTransferKeyRow> {
    let row = sql::query_opt(
        client,
        "INSERT INTO host_transfer_keys (host_id, public_key, registered_at_ms) \
         SELECT id, $2::text, $3::bigint FROM hosts WHERE id = $1 \
         ON CONFLICT (host_id) DO UPDATE SET public_key = excluded.public_key, \
         registered_at_ms = excluded.registered_at_ms \
         RETURNING host_id, public_key, registered_at_ms",
        &[&host_id, &public_key, &at_ms],
    )
    .await?;
    row.as_ref()
        .map(host_key_from_row)
        .transpose()?
        .ok_or(StoreError::NotFound)
}

pub(crate) async fn get_host_key<C: GenericClient>(
    client: &C,
    host_id: &str,
) -> StoreResult<Option<HostTransferKeyRow>> {
    sql::query_opt(
        client,
        "SELECT host_id, public_key, registered_at_ms FROM host_transfer_keys WHERE host_id = $1",
        &[&host_id],
    )
    .await?
    .as_ref()
    .map(host_key_from_row)
    .transpose()
}

pub(crate) async fn delete_host_key<C: GenericClient>(
    client: &C,
    host_id: &str,
) -> StoreResult<bool> {
    let deleted = sql::execute(
        client,
        "DELETE FROM host_transfer_keys WHERE host_id = $1",
        &[&host_id],
    )
    .await?;
    Ok(deleted > 0)
}

// ---- transfers ----

/// Fills in the recipients of every row with one query.
async fn attach_recipients<C: GenericClient>(
    client: &C,
    rows: &mut [TransferRow],
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = rows.iter().map(|row| row.id.as_str()).collect();
    let recipients = sql::query(
        client,
        "SELECT transfer_id, recipient_kind, recipient_id, display, downloaded_at_ms, \
         awaiting_grant, granted_at_ms FROM transfer_recipients WHERE transfer_id = ANY($1) \
         ORDER BY recipient_kind COLLATE \"C\", recipient_id COLLATE \"C\"",
        &[&ids],
    )
    .await?;
    for recipient in &recipients {
        let transfer_id: &str = recipient.try_get(0).db()?;
        let parsed = RecipientRow {
            kind: recipient.try_get(1).db()?,
            id: recipient.try_get(2).db()?,
            display: recipient.try_get(3).db()?,
            downloaded_at_ms: recipient.try_get(4).db()?,
            awaiting_grant: recipient.try_get(5).db()?,
            granted_at_ms: recipient.try_get(6).db()?,
        };
        for row in rows.iter_mut().filter(|row| row.id == transfer_id) {
            row.recipients.push(parsed.clone());
        }
    }
    Ok(())
}

async fn load<C: GenericClient>(client: &C, id: &str) -> StoreResult<Option<TransferRow>> {
    let sql = format!("SELECT {COLUMNS} FROM transfers WHERE id = $1");
    let Some(row) = sql::query_opt(client, &sql, &[&id]).await? else {
        return Ok(None);
    };
    let mut rows = [from_row(&row)?];
    attach_recipients(client, &mut rows).await?;
    let [row] = rows;
    Ok(Some(row))
}

pub(crate) async fn chunk_data<C: GenericClient>(
    client: &C,
    transfer_id: &str,
    idx: i64,
) -> StoreResult<Option<Vec<u8>>> {
    let row = sql::query_opt(
        client,
        "SELECT data FROM transfer_chunks WHERE transfer_id = $1 AND idx = $2",
        &[&transfer_id, &idx],
    )
    .await?;
    match row {
        Some(row) => row.try_get(0).db(),
        None => Ok(None),
    }
}

/// The caller wraps this in a transaction.
pub(crate) async fn create<C: GenericClient>(
    tx: &C,
    transfer: &NewTransfer,
) -> StoreResult<TransferRow> {
    sql::execute(
        tx,
        "INSERT INTO transfers (id, sender_id, status, header, chunk_size, ciphertext_bytes, \
         created_at_ms, expires_at_ms, site, sender_kind) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $9)",
        &[
            &transfer.id,
            &transfer.sender_id,
            &transfer_status::UPLOADING,
            &transfer.header,
            &transfer.chunk_size,
            &transfer.created_at_ms,
            &transfer.expires_at_ms,
            &transfer.site,
            &transfer.sender_kind,
        ],
    )
    .await?;
    if !transfer.recipients.is_empty() {
        let kinds: Vec<&str> = transfer
            .recipients
            .iter()
            .map(|r| r.kind.as_str())
            .collect();
        let ids: Vec<&str> = transfer.recipients.iter().map(|r| r.id.as_str()).collect();
        let displays: Vec<&str> = transfer
            .recipients
            .iter()
            .map(|r| r.display.as_str())
            .collect();
        let awaiting: Vec<bool> = transfer
            .recipients
            .iter()
            .map(|r| r.awaiting_grant)
            .collect();
        sql::execute(
            tx,
            "INSERT INTO transfer_recipients (transfer_id, recipient_kind, recipient_id, display, \
             awaiting_grant) \
             SELECT $1, kind, id, display, awaiting \
             FROM unnest($2::text[], $3::text[], $4::text[], $5::boolean[]) \
             AS r(kind, id, display, awaiting)",
            &[&transfer.id, &kinds, &ids, &displays, &awaiting],
        )
        .await?;
    }
    load(tx, &transfer.id)
        .await?
        .ok_or_else(|| StoreError::Backend("inserted transfer vanished".into()))
}

pub(crate) async fn get<C: GenericClient>(
    client: &C,
    id: &str,
) -> StoreResult<Option<TransferRow>> {
    load(client, id).await
}

/// Visibility is a union of two index lookups (sent, received), each on (kind, id), rather
/// than an `OR` across a join. Ties on `created_at_ms` are broken by id in byte order, as
/// SQLite does.
pub(crate) async fn list<C: GenericClient>(
    client: &C,
    filter: &TransferFilter,
) -> StoreResult<Vec<TransferRow>> {
    let visible = if filter.visible_to.is_some() {
        "AND id IN (SELECT id FROM transfers WHERE sender_kind = $6 AND sender_id = $1 UNION \
         SELECT transfer_id FROM transfer_recipients \
         WHERE recipient_kind = $6 AND recipient_id = $1)"
    } else {
        "AND $1::text IS NULL AND $6::text IS NULL"
    };
    let pending = if filter.pending_for.is_some() {
        "AND id IN (SELECT transfer_id FROM transfer_recipients \
         WHERE recipient_kind = $8 AND recipient_id = $7 AND downloaded_at_ms IS NULL)"
    } else {
        "AND $7::text IS NULL AND $8::text IS NULL"
    };
    // The keyset `before` compares ids in byte order, as the ordering does.
    let sql = format!(
        "SELECT {COLUMNS} FROM transfers \
         WHERE ($2::text IS NULL OR status = $2) \
         AND ($3::bigint IS NULL OR created_at_ms < $3 \
              OR (created_at_ms = $3 AND id COLLATE \"C\" < $4::text COLLATE \"C\")) \
         {visible} {pending} \
         ORDER BY created_at_ms DESC, id COLLATE \"C\" DESC LIMIT $5"
    );
    let before_ms = filter.before.as_ref().map(|cursor| cursor.at_ms);
    let before_id = filter.before.as_ref().map(|cursor| cursor.id.as_str());
    let mut rows = sql::query(
        client,
        &sql,
        &[
            &filter.visible_to.as_ref().map(|party| party.id()),
            &filter.status,
            &before_ms,
            &before_id,
            &i64::from(filter.limit),
            &filter.visible_to.as_ref().map(|party| party.kind()),
            &filter.pending_for.as_ref().map(|party| party.id()),
            &filter.pending_for.as_ref().map(|party| party.kind()),
        ],
    )
    .await?
    .iter()
    .map(from_row)
    .collect::<StoreResult<Vec<_>>>()?;
    attach_recipients(client, &mut rows).await?;
    Ok(rows)
}

pub(crate) async fn count_stored_chunks<C: GenericClient>(
    client: &C,
    transfer_ids: &[String],
) -> StoreResult<HashMap<String, u64>> {
    if transfer_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sql::query(
        client,
        "SELECT transfer_id, COUNT(*) FROM transfer_chunks WHERE transfer_id = ANY($1) \
         GROUP BY transfer_id",
        &[&transfer_ids],
    )
    .await?;
    rows.iter()
        .map(|row| {
            let count: i64 = row.try_get(1).db()?;
            Ok((row.try_get(0).db()?, count as u64))
        })
        .collect()
}

/// Locks the transfer row until the caller's transaction ends. `NotFound`, or
/// `Conflict(NOT_UPLOADING)` unless the transfer is `uploading`.
async fn lock_uploading<C: GenericClient>(tx: &C, id: &str) -> StoreResult<()> {
    let row = sql::query_opt(
        tx,
        "SELECT status FROM transfers WHERE id = $1 FOR UPDATE",
        &[&id],
    )
    .await?;
    let Some(row) = row else {
        return Err(StoreError::NotFound);
    };
    let status: &str = row.try_get(0).db()?;
    if status != transfer_status::UPLOADING {
        return Err(StoreError::Conflict(NOT_UPLOADING.into()));
    }
    Ok(())
}

/// The caller wraps this in a transaction. Four round trips whatever the batch size: lock,
/// read the rows at the batch's indexes, insert the new ones, move `ciphertext_bytes`.
pub(crate) async fn record_chunks<C: GenericClient>(
    tx: &C,
    transfer_id: &str,
    chunks: &[NewChunk],
) -> StoreResult<Vec<ChunkOutcome>> {
    lock_uploading(tx, transfer_id).await?;
    let indexes: Vec<i64> = chunks.iter().map(|chunk| chunk.idx).collect();
    let sql = format!(
        "SELECT {CHUNK_COLUMNS} FROM transfer_chunks WHERE transfer_id = $1 AND idx = ANY($2)"
    );
    let existing = sql::query(tx, &sql, &[&transfer_id, &indexes])
        .await?
        .iter()
        .map(chunk_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    let (outcomes, inserts) = plan_chunk_batch(&existing, chunks);
    if !inserts.is_empty() {
        let idx: Vec<i64> = inserts.iter().map(|chunk| chunk.idx).collect();
        let size: Vec<i64> = inserts.iter().map(|chunk| chunk.size).collect();
        let sha256: Vec<&str> = inserts.iter().map(|chunk| chunk.sha256.as_str()).collect();
        let last: Vec<bool> = inserts.iter().map(|chunk| chunk.last).collect();
        let stored: Vec<i64> = inserts.iter().map(|chunk| chunk.stored_at_ms).collect();
        let data: Vec<Option<&[u8]>> = inserts.iter().map(|chunk| chunk.data.as_deref()).collect();
        sql::execute(
            tx,
            "INSERT INTO transfer_chunks (transfer_id, idx, size, sha256, last, stored_at_ms, data) \
             SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::boolean[], \
             $6::bigint[], $7::bytea[])",
            &[&transfer_id, &idx, &size, &sha256, &last, &stored, &data],
        )
        .await?;
        let added: i64 = size.iter().sum();
        sql::execute(
            tx,
            "UPDATE transfers SET ciphertext_bytes = ciphertext_bytes + $2 WHERE id = $1",
            &[&transfer_id, &added],
        )
        .await?;
    }
    Ok(outcomes)
}

/// The caller wraps this in a transaction. Batches are recorded in transfer id order (so two
/// processes committing overlapping sets lock them in the same order and cannot deadlock) and
/// answered in the caller's order. A batch whose transfer is unknown or not `uploading` gets
/// that error, having written nothing (the status check runs before any write and is not a
/// failed statement, so the transaction stays usable); any other error abandons it all.
pub(crate) async fn record_chunk_batches<C: GenericClient>(
    tx: &C,
    batches: &[ChunkBatch],
) -> StoreResult<Vec<StoreResult<Vec<ChunkOutcome>>>> {
    let mut order: Vec<usize> = (0..batches.len()).collect();
    order.sort_by(|a, b| batches[*a].transfer_id.cmp(&batches[*b].transfer_id));
    let mut results: Vec<Option<StoreResult<Vec<ChunkOutcome>>>> =
        (0..batches.len()).map(|_| None).collect();
    for at in order {
        let batch = &batches[at];
        results[at] = Some(
            match record_chunks(tx, &batch.transfer_id, &batch.chunks).await {
                Err(err @ (StoreError::NotFound | StoreError::Conflict(_))) => Err(err),
                Err(other) => return Err(other),
                Ok(outcomes) => Ok(outcomes),
            },
        );
    }
    Ok(results
        .into_iter()
        .map(|result| result.expect("every batch was recorded"))
        .collect())
}

pub(crate) async fn list_chunks<C: GenericClient>(
    client: &C,
    transfer_id: &str,
) -> StoreResult<Vec<ChunkRow>> {
    let sql =
        format!("SELECT {CHUNK_COLUMNS} FROM transfer_chunks WHERE transfer_id = $1 ORDER BY idx");
    sql::query(client, &sql, &[&transfer_id])
        .await?
        .iter()
        .map(chunk_from_row)
        .collect()
}

pub(crate) async fn get_chunk<C: GenericClient>(
    client: &C,
    transfer_id: &str,
    idx: i64,
) -> StoreResult<Option<ChunkRow>> {
    let sql =
        format!("SELECT {CHUNK_COLUMNS} FROM transfer_chunks WHERE transfer_id = $1 AND idx = $2");
    sql::query_opt(client, &sql, &[&transfer_id, &idx])
        .await?
        .as_ref()
        .map(chunk_from_row)
        .transpose()
}

/// The caller wraps this in a transaction.
/// `create`, `record_chunks` and `complete` of a one-chunk transfer; the caller wraps this in
/// a transaction.
pub(crate) async fn create_complete<C: GenericClient>(
    tx: &C,
    transfer: &NewTransfer,
    chunk: &NewChunk,
    manifest: &[u8],
    at_ms: i64,
) -> StoreResult<TransferRow> {
    create(tx, transfer).await?;
    record_chunks(tx, &transfer.id, std::slice::from_ref(chunk)).await?;
    complete(tx, &transfer.id, manifest, at_ms).await
}

pub(crate) async fn complete<C: GenericClient>(
    tx: &C,
    id: &str,
    manifest: &[u8],
    at_ms: i64,
) -> StoreResult<TransferRow> {
    lock_uploading(tx, id).await?;
    let chunks = sql::query(
        tx,
        "SELECT idx, last FROM transfer_chunks WHERE transfer_id = $1 ORDER BY idx",
        &[&id],
    )
    .await?
    .iter()
    .map(|row| Ok((row.try_get(0).db()?, row.try_get(1).db()?)))
    .collect::<StoreResult<Vec<(i64, bool)>>>()?;
    let count = check_complete_chunks(&chunks).map_err(StoreError::Conflict)?;
    sql::execute(
        tx,
        "UPDATE transfers SET status = $2, chunk_count = $3, manifest = $4, completed_at_ms = $5 \
         WHERE id = $1",
        &[&id, &transfer_status::COMPLETE, &count, &manifest, &at_ms],
    )
    .await?;
    load(tx, id).await?.ok_or(StoreError::NotFound)
}

/// One statement: under READ COMMITTED it waits for a chunk batch holding the row, then
/// re-checks the status on the committed version.
pub(crate) async fn cancel<C: GenericClient>(
    client: &C,
    id: &str,
    at_ms: i64,
) -> StoreResult<bool> {
    let changed = sql::execute(
        client,
        "UPDATE transfers SET status = $2, cancelled_at_ms = $3 \
         WHERE id = $1 AND status IN ($4, $5)",
        &[
            &id,
            &transfer_status::CANCELLED,
            &at_ms,
            &transfer_status::UPLOADING,
            &transfer_status::COMPLETE,
        ],
    )
    .await?;
    Ok(changed > 0)
}

pub(crate) async fn mark_downloaded<C: GenericClient>(
    client: &C,
    transfer_id: &str,
    kind: &str,
    recipient_id: &str,
    at_ms: i64,
) -> StoreResult<()> {
    let changed = sql::execute(
        client,
        "UPDATE transfer_recipients SET downloaded_at_ms = COALESCE(downloaded_at_ms, $4) \
         WHERE transfer_id = $1 AND recipient_kind = $2 AND recipient_id = $3",
        &[&transfer_id, &kind, &recipient_id, &at_ms],
    )
    .await?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn expire<C: GenericClient>(client: &C, now_ms: i64) -> StoreResult<Vec<String>> {
    let mut ids = sql::query(
        client,
        "UPDATE transfers SET status = $2 \
         WHERE status IN ($3, $4) AND expires_at_ms <= $1 RETURNING id",
        &[
            &now_ms,
            &transfer_status::EXPIRED,
            &transfer_status::UPLOADING,
            &transfer_status::COMPLETE,
        ],
    )
    .await?
    .iter()
    .map(|row| row.try_get(0).db())
    .collect::<StoreResult<Vec<String>>>()?;
    ids.sort();
    Ok(ids)
}

/// The caller wraps this in a transaction. The row is locked first, so a chunk batch still
/// running on the transfer finishes before its chunks are deleted, not after.
pub(crate) async fn delete<C: GenericClient>(tx: &C, id: &str) -> StoreResult<()> {
    sql::query_opt(
        tx,
        "SELECT 1 FROM transfers WHERE id = $1 FOR UPDATE",
        &[&id],
    )
    .await?;
    for statement in [
        "DELETE FROM link_tickets WHERE link_id IN \
         (SELECT id FROM transfer_links WHERE transfer_id = $1)",
        "DELETE FROM transfer_links WHERE transfer_id = $1",
        "DELETE FROM transfer_chunks WHERE transfer_id = $1",
        "DELETE FROM transfer_recipients WHERE transfer_id = $1",
        "DELETE FROM transfers WHERE id = $1",
    ] {
        sql::execute(tx, statement, &[&id]).await?;
    }
    Ok(())
}

// ---- grants (decision 0022) ----

/// The waiting rows come from the partial index on `awaiting_grant`, so a sender with nothing
/// waiting costs one index probe.
pub(crate) async fn list_awaiting_grants<C: GenericClient>(
    client: &C,
    sender_id: &str,
    now_ms: i64,
    limit: u32,
) -> StoreResult<Vec<TransferRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM transfers WHERE id IN \
         (SELECT transfer_id FROM transfer_recipients WHERE awaiting_grant \
          AND recipient_kind = $2) \
         AND sender_kind = $2 AND sender_id = $1 AND status IN ($3, $4) AND expires_at_ms > $5 \
         ORDER BY created_at_ms, id COLLATE \"C\" LIMIT $6"
    );
    let mut rows = sql::query(
        client,
        &sql,
        &[
            &sender_id,
            &recipient_kind::USER,
            &transfer_status::UPLOADING,
            &transfer_status::COMPLETE,
            &now_ms,
            &i64::from(limit),
        ],
    )
    .await?
    .iter()
    .map(from_row)
    .collect::<StoreResult<Vec<_>>>()?;
    attach_recipients(client, &mut rows).await?;
    Ok(rows)
}

/// The caller wraps this in a transaction. The row is locked first, so a racing grant built
/// from the same header waits and then finds it changed.
pub(crate) async fn grant<C: GenericClient>(
    tx: &C,
    grant: &TransferGrant,
) -> StoreResult<TransferRow> {
    sql::query_opt(
        tx,
        "SELECT 1 FROM transfers WHERE id = $1 FOR UPDATE",
        &[&grant.transfer_id],
    )
    .await?;
    let row = load(tx, &grant.transfer_id)
        .await?
        .ok_or(StoreError::NotFound)?;
    check_grant(&row, grant).map_err(|text| StoreError::Conflict(text.into()))?;
    sql::execute(
        tx,
        "UPDATE transfers SET header = $2 WHERE id = $1",
        &[&grant.transfer_id, &grant.header],
    )
    .await?;
    sql::execute(
        tx,
        "UPDATE transfer_recipients SET awaiting_grant = FALSE, granted_at_ms = $4 \
         WHERE transfer_id = $1 AND recipient_kind = $2 AND recipient_id = ANY($3)",
        &[
            &grant.transfer_id,
            &recipient_kind::USER,
            &grant.recipient_ids,
            &grant.at_ms,
        ],
    )
    .await?;
    load(tx, &grant.transfer_id)
        .await?
        .ok_or(StoreError::NotFound)
}
