//! The `file_requests` table; see `mftplus_store::FileRequestStore`. An upload locks its
//! request row (`FOR UPDATE`) for the check, the count and the transfer, so uploads racing for
//! the last one allowed are serialized across cloud processes.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use mftplus_store::{
    FileRequestRow, FileRequestStore, NewFileRequest, NewTransfer, RequestUpload, StoreError,
    StoreResult,
};
use tokio_postgres::Row;

use crate::error::ResultExt;
use crate::{sql, transfers, PostgresStore};

const REQUEST_COLUMNS: &str = "id, token_hash, owner_id, note, created_at_ms, expires_at_ms, \
     max_uploads, max_bytes, uploads, last_upload_at_ms, revoked_at_ms";

fn request_from_row(row: &Row) -> StoreResult<FileRequestRow> {
    Ok(FileRequestRow {
        id: row.try_get(0).db()?,
        token_hash: row.try_get(1).db()?,
        owner_id: row.try_get(2).db()?,
        note: row.try_get(3).db()?,
        created_at_ms: row.try_get(4).db()?,
        expires_at_ms: row.try_get(5).db()?,
        max_uploads: row.try_get(6).db()?,
        max_bytes: row.try_get(7).db()?,
        uploads: row.try_get(8).db()?,
        last_upload_at_ms: row.try_get(9).db()?,
        revoked_at_ms: row.try_get(10).db()?,
    })
}

/// `column` and `lock` are this file's literals, never input.
async fn load<C: GenericClient>(
    client: &C,
    column: &str,
    value: &str,
    lock: &str,
) -> StoreResult<Option<FileRequestRow>> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM file_requests WHERE {column} = $1 {lock}");
    sql::query_opt(client, &sql, &[&value])
        .await?
        .as_ref()
        .map(request_from_row)
        .transpose()
}

async fn upload<C: GenericClient>(
    tx: &C,
    request_id: &str,
    transfer: &NewTransfer,
    now_ms: i64,
) -> StoreResult<RequestUpload> {
    let request = load(tx, "id", request_id, "FOR UPDATE")
        .await?
        .ok_or(StoreError::NotFound)?;
    if let Some(refusal) = request.refusal(now_ms) {
        return Ok(RequestUpload::Refused(refusal, request));
    }
    let sql = format!(
        "UPDATE file_requests SET uploads = uploads + 1, last_upload_at_ms = $2 \
         WHERE id = $1 RETURNING {REQUEST_COLUMNS}"
    );
    let request = request_from_row(&sql::query_one(tx, &sql, &[&request_id, &now_ms]).await?)?;
    let row = transfers::create(tx, transfer).await?;
    Ok(RequestUpload::Created(Box::new(row), request))
}

#[async_trait]
impl FileRequestStore for PostgresStore {
    async fn create_file_request(&self, request: &NewFileRequest) -> StoreResult<FileRequestRow> {
        let sql = format!(
            "INSERT INTO file_requests (id, token_hash, owner_id, note, created_at_ms, \
             expires_at_ms, max_uploads, max_bytes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING {REQUEST_COLUMNS}"
        );
        let row = sql::query_one(
            &self.client().await?,
            &sql,
            &[
                &request.id,
                &request.token_hash,
                &request.owner_id,
                &request.note,
                &request.created_at_ms,
                &request.expires_at_ms,
                &request.max_uploads,
                &request.max_bytes,
            ],
        )
        .await
        // The id is fresh randomness; a unique violation can only be the token hash.
        .map_err(|err| match err {
            StoreError::Conflict(_) => StoreError::Conflict("token".into()),
            other => other,
        })?;
        request_from_row(&row)
    }

    async fn get_file_request(&self, id: &str) -> StoreResult<Option<FileRequestRow>> {
        load(&self.client().await?, "id", id, "").await
    }

    async fn get_file_request_by_token_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<FileRequestRow>> {
        load(&self.client().await?, "token_hash", token_hash, "").await
    }

    async fn list_file_requests(
        &self,
        owner_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<FileRequestRow>> {
        let client = self.client().await?;
        let limit = i64::from(limit);
        let order = "ORDER BY created_at_ms DESC, id DESC LIMIT";
        let rows = match owner_id {
            Some(owner) => {
                let sql = format!(
                    "SELECT {REQUEST_COLUMNS} FROM file_requests WHERE owner_id = $1 {order} $2"
                );
                sql::query(&client, &sql, &[&owner, &limit]).await?
            }
            None => {
                let sql = format!("SELECT {REQUEST_COLUMNS} FROM file_requests {order} $1");
                sql::query(&client, &sql, &[&limit]).await?
            }
        };
        rows.iter().map(request_from_row).collect()
    }

    async fn revoke_file_request(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        sql::execute(
            &self.client().await?,
            "UPDATE file_requests SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL",
            &[&id, &at_ms],
        )
        .await
        .map(|n| n > 0)
    }

    async fn create_requested_transfer(
        &self,
        request_id: &str,
        transfer: &NewTransfer,
        now_ms: i64,
    ) -> StoreResult<RequestUpload> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let outcome = upload(&tx, request_id, transfer, now_ms).await?;
        tx.commit().await.db()?;
        Ok(outcome)
    }
}
