//! The `file_requests` table; see `mftplus_store::FileRequestStore`. An upload's check, count
//! and transfer run on the single writer connection inside `BEGIN IMMEDIATE`, so they cannot
//! interleave with another upload, in this process or another.

use async_trait::async_trait;
use mftplus_store::{
    FileRequestRow, FileRequestStore, NewFileRequest, NewTransfer, RequestUpload, StoreError,
    StoreResult,
};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::error::ResultExt;
use crate::{transfers, SqliteStore};

const REQUEST_COLUMNS: &str = "id, token_hash, owner_id, note, created_at_ms, expires_at_ms, \
     max_uploads, max_bytes, uploads, last_upload_at_ms, revoked_at_ms";

fn request_from_row(row: &Row<'_>) -> rusqlite::Result<FileRequestRow> {
    Ok(FileRequestRow {
        id: row.get(0)?,
        token_hash: row.get(1)?,
        owner_id: row.get(2)?,
        note: row.get(3)?,
        created_at_ms: row.get(4)?,
        expires_at_ms: row.get(5)?,
        max_uploads: row.get(6)?,
        max_bytes: row.get(7)?,
        uploads: row.get(8)?,
        last_upload_at_ms: row.get(9)?,
        revoked_at_ms: row.get(10)?,
    })
}

/// `column` is one of this file's literals, never input.
fn load(conn: &Connection, column: &str, value: &str) -> StoreResult<Option<FileRequestRow>> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM file_requests WHERE {column} = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![value], request_from_row).optional())
        .db()
}

fn create(conn: &Connection, request: &NewFileRequest) -> StoreResult<FileRequestRow> {
    let sql = format!(
        "INSERT INTO file_requests (id, token_hash, owner_id, note, created_at_ms, \
         expires_at_ms, max_uploads, max_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         RETURNING {REQUEST_COLUMNS}"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    request.id,
                    request.token_hash,
                    request.owner_id,
                    request.note,
                    request.created_at_ms,
                    request.expires_at_ms,
                    request.max_uploads,
                    request.max_bytes
                ],
                request_from_row,
            )
        })
        .db()
        // The id is fresh randomness; a unique violation can only be the token hash.
        .map_err(|err| match err {
            StoreError::Conflict(_) => StoreError::Conflict("token".into()),
            other => other,
        })
}

fn upload(
    conn: &mut Connection,
    request_id: &str,
    transfer: &NewTransfer,
    now_ms: i64,
) -> StoreResult<RequestUpload> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let request = load(&tx, "id", request_id)?.ok_or(StoreError::NotFound)?;
    if let Some(refusal) = request.refusal(now_ms) {
        return Ok(RequestUpload::Refused(refusal, request));
    }
    let sql = format!(
        "UPDATE file_requests SET uploads = uploads + 1, last_upload_at_ms = ?2 \
         WHERE id = ?1 RETURNING {REQUEST_COLUMNS}"
    );
    let request = tx
        .prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![request_id, now_ms], request_from_row))
        .db()?;
    let row = transfers::insert(&tx, transfer)?;
    tx.commit().db()?;
    Ok(RequestUpload::Created(Box::new(row), request))
}

#[async_trait]
impl FileRequestStore for SqliteStore {
    async fn create_file_request(&self, request: &NewFileRequest) -> StoreResult<FileRequestRow> {
        let request = request.clone();
        self.write(move |conn| create(conn, &request)).await
    }

    async fn get_file_request(&self, id: &str) -> StoreResult<Option<FileRequestRow>> {
        let id = id.to_owned();
        self.read(move |conn| load(conn, "id", &id)).await
    }

    async fn get_file_request_by_token_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<FileRequestRow>> {
        let hash = token_hash.to_owned();
        self.read(move |conn| load(conn, "token_hash", &hash)).await
    }

    async fn list_file_requests(
        &self,
        owner_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<FileRequestRow>> {
        let owner = owner_id.map(str::to_owned);
        self.read(move |conn| {
            // Two statements, so each walks its own index rather than an `OR` scanning all.
            let order = "ORDER BY created_at_ms DESC, id DESC LIMIT";
            match owner {
                Some(owner) => conn
                    .prepare_cached(&format!(
                        "SELECT {REQUEST_COLUMNS} FROM file_requests WHERE owner_id = ?1 \
                         {order} ?2"
                    ))
                    .and_then(|mut stmt| {
                        stmt.query_map(params![owner, limit], request_from_row)?
                            .collect()
                    }),
                None => conn
                    .prepare_cached(&format!(
                        "SELECT {REQUEST_COLUMNS} FROM file_requests {order} ?1"
                    ))
                    .and_then(|mut stmt| {
                        stmt.query_map(params![limit], request_from_row)?.collect()
                    }),
            }
            .db()
        })
        .await
    }

    async fn revoke_file_request(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE file_requests SET revoked_at_ms = ?2 \
                 WHERE id = ?1 AND revoked_at_ms IS NULL",
            )
            .and_then(|mut stmt| stmt.execute(params![id, at_ms]))
            .db()
            .map(|n| n > 0)
        })
        .await
    }

    async fn create_requested_transfer(
        &self,
        request_id: &str,
        transfer: &NewTransfer,
        now_ms: i64,
    ) -> StoreResult<RequestUpload> {
        let (request_id, transfer) = (request_id.to_owned(), transfer.clone());
        self.write(move |conn| upload(conn, &request_id, &transfer, now_ms))
            .await
    }
}
