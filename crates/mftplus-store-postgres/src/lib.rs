//! PostgreSQL backend of [`mftplus_store::Store`], for installs with several cloud replicas or
//! more data than one SQLite file should hold.
//!
//! Connections come from a `deadpool-postgres` pool. Everything that must be atomic is one
//! statement or one transaction, and what must be serialized across processes is serialized by
//! PostgreSQL itself: migrations under a session advisory lock, audit appends on the locked
//! `audit_head` row. Several cloud processes can therefore share one database.
//!
//! Not supported yet: TLS to the database. Connections use `NoTls`, so the database must be on
//! the same host or a trusted network; a URL with `sslmode=require` fails to connect.
//!
//! This crate holds no business rules and is not a general PostgreSQL wrapper. Schema changes
//! are new files under `migrations/` with the same name as their SQLite twin; applied files are
//! never edited. With the `testing` feature, [`testing`] hands out a throw-away database per
//! test.

mod api_keys;
mod audit;
pub mod backup;
mod certificates;
mod error;
mod fleet;
mod hubs;
mod links;
mod migrate;
mod requests;
mod sql;
#[cfg(feature = "testing")]
pub mod testing;
mod tokens;
mod transfers;
mod users;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use mftplus_store::{
    ApiKeyPage, ApiKeyRow, AuditFilter, AuditRow, ChunkBatch, ChunkOutcome, ChunkRow,
    HostTransferKeyRow, NewApiKey, NewAuditEntry, NewChunk, NewTransfer, NewUser, Store,
    StoreError, StoreResult, TimeCursor, TokenRow, TransferFilter, TransferGrant, TransferRow,
    UserKeyRow, UserRow, UserUpdate,
};
use tokio_postgres::NoTls;

pub use migrate::{MIGRATIONS, NEWER_SCHEMA};

use crate::error::ResultExt;

/// Enough for the cloud's concurrent requests and background jobs without crowding a default
/// `max_connections = 100` when a few replicas share the server.
const POOL_SIZE: usize = 16;
/// How long a request waits for a connection (or for a new one to open) before it fails.
const POOL_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    pool: Pool,
    /// For migrations, which run on a dedicated connection.
    config: tokio_postgres::Config,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config holds the password; show only where we connect.
        f.debug_struct("PostgresStore")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `postgres://user:password@host:port/dbname` and checks that one connection
    /// opens. Does not migrate; call [`Store::migrate`].
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|err| StoreError::Backend(format!("invalid PostgreSQL URL: {err}")))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|err| StoreError::Backend(format!("connection pool: {err}")))?;
        let store = PostgresStore { pool, config };
        store.ping().await?;
        Ok(store)
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(error::pool)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// Runs `$body` with `$tx` bound to a fresh transaction and commits when it returns `Ok`;
/// on `Err` the transaction is dropped, which rolls it back.
macro_rules! in_transaction {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut client = $store.client().await?;
        let $tx = client.transaction().await.db()?;
        let value = $body.await?;
        $tx.commit().await.db()?;
        Ok(value)
    }};
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<()> {
        migrate::run(&self.config, now_ms()).await
    }

    async fn applied_migrations(&self) -> StoreResult<Vec<String>> {
        migrate::applied(&self.client().await?).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.client().await?.simple_query("SELECT 1").await.db()?;
        Ok(())
    }

    async fn create_user(&self, user: &NewUser) -> StoreResult<UserRow> {
        users::create(&self.client().await?, user).await
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<UserRow>> {
        users::get(&self.client().await?, id).await
    }

    async fn get_user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>> {
        users::get_by_email(&self.client().await?, email).await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRow>> {
        users::list(&self.client().await?).await
    }

    async fn list_users_page(
        &self,
        after_email: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRow>> {
        users::list_page(&self.client().await?, after_email, limit).await
    }

    async fn get_users(&self, ids: &[String]) -> StoreResult<Vec<UserRow>> {
        users::get_many(&self.client().await?, ids).await
    }

    async fn count_users(&self) -> StoreResult<u64> {
        users::count(&self.client().await?).await
    }

    async fn update_user(&self, id: &str, update: &UserUpdate) -> StoreResult<UserRow> {
        users::update(&self.client().await?, id, update).await
    }

    async fn record_login(&self, id: &str, at_ms: i64) -> StoreResult<()> {
        users::record_login(&self.client().await?, id, at_ms).await
    }

    async fn delete_user(&self, id: &str, at_ms: i64) -> StoreResult<()> {
        in_transaction!(self, |tx| users::delete(&tx, id, at_ms))
    }

    async fn create_api_key(&self, key: &NewApiKey) -> StoreResult<ApiKeyRow> {
        api_keys::create(&self.client().await?, key).await
    }

    async fn get_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRow>> {
        api_keys::get(&self.client().await?, id).await
    }

    async fn get_api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRow>> {
        api_keys::get_by_hash(&self.client().await?, key_hash).await
    }

    async fn list_api_keys(&self, owner_id: Option<&str>) -> StoreResult<Vec<ApiKeyRow>> {
        api_keys::list(&self.client().await?, owner_id).await
    }

    async fn list_api_keys_page(&self, page: &ApiKeyPage) -> StoreResult<Vec<ApiKeyRow>> {
        api_keys::list_page(&self.client().await?, page).await
    }

    async fn revoke_api_key(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        api_keys::revoke(&self.client().await?, id, at_ms).await
    }

    async fn rotate_api_key(
        &self,
        old_id: &str,
        new: &NewApiKey,
        at_ms: i64,
    ) -> StoreResult<ApiKeyRow> {
        in_transaction!(self, |tx| api_keys::rotate(&tx, old_id, new, at_ms))
    }

    async fn touch_api_keys(&self, uses: &[(String, i64)]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        api_keys::touch(&self.client().await?, uses).await
    }

    async fn revoke_inactive_api_keys(
        &self,
        inactive_before_ms: i64,
        at_ms: i64,
    ) -> StoreResult<Vec<ApiKeyRow>> {
        api_keys::revoke_inactive(&self.client().await?, inactive_before_ms, at_ms).await
    }

    async fn insert_token(&self, token: &TokenRow) -> StoreResult<()> {
        tokens::insert(&self.client().await?, token).await
    }

    async fn get_token(&self, jti: &str) -> StoreResult<Option<TokenRow>> {
        tokens::get(&self.client().await?, jti).await
    }

    async fn list_active_tokens(
        &self,
        user_id: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<Vec<TokenRow>> {
        tokens::list_active(&self.client().await?, user_id, now_ms).await
    }

    async fn list_sign_ins(
        &self,
        user_id: &str,
        now_ms: i64,
        before: Option<&TimeCursor>,
        limit: u32,
    ) -> StoreResult<Vec<TokenRow>> {
        tokens::list_sign_ins(&self.client().await?, user_id, now_ms, before, limit).await
    }

    async fn revoke_token(&self, jti: &str, at_ms: i64) -> StoreResult<bool> {
        tokens::revoke(&self.client().await?, jti, at_ms).await
    }

    async fn revoke_user_tokens(&self, user_id: &str, at_ms: i64) -> StoreResult<u64> {
        tokens::revoke_user(&self.client().await?, user_id, at_ms).await
    }

    async fn revoke_token_family(&self, family_id: &str, at_ms: i64) -> StoreResult<u64> {
        tokens::revoke_family(&self.client().await?, family_id, at_ms).await
    }

    async fn mark_refresh_used(&self, jti: &str, at_ms: i64) -> StoreResult<bool> {
        tokens::mark_refresh_used(&self.client().await?, jti, at_ms).await
    }

    async fn touch_token(&self, jti: &str, at_ms: i64) -> StoreResult<bool> {
        tokens::touch(&self.client().await?, jti, at_ms).await
    }

    async fn prune_tokens(&self, expired_before_ms: i64) -> StoreResult<u64> {
        tokens::prune(&self.client().await?, expired_before_ms).await
    }

    async fn append_audit(&self, entry: &NewAuditEntry) -> StoreResult<AuditRow> {
        in_transaction!(self, |tx| audit::append(&tx, entry))
    }

    async fn append_audits(&self, entries: &[NewAuditEntry]) -> StoreResult<Vec<AuditRow>> {
        in_transaction!(self, |tx| async {
            let mut rows = Vec::with_capacity(entries.len());
            for entry in entries {
                rows.push(audit::append(&tx, entry).await?);
            }
            Ok::<_, StoreError>(rows)
        })
    }

    async fn list_audit(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<AuditRow>> {
        audit::list(&self.client().await?, after_seq, limit).await
    }

    async fn search_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>> {
        audit::search(&self.client().await?, filter).await
    }

    async fn prune_audit(&self, before_ms: i64) -> StoreResult<u64> {
        audit::prune(&self.client().await?, before_ms).await
    }

    async fn put_user_key(&self, key: &UserKeyRow) -> StoreResult<()> {
        transfers::put_key(&self.client().await?, key).await
    }

    async fn get_user_key(&self, user_id: &str) -> StoreResult<Option<UserKeyRow>> {
        transfers::get_key(&self.client().await?, user_id).await
    }

    async fn set_host_transfer_key(
        &self,
        host_id: &str,
        public_key: &str,
        at_ms: i64,
    ) -> StoreResult<HostTransferKeyRow> {
        transfers::set_host_key(&self.client().await?, host_id, public_key, at_ms).await
    }

    async fn host_transfer_key(&self, host_id: &str) -> StoreResult<Option<HostTransferKeyRow>> {
        transfers::get_host_key(&self.client().await?, host_id).await
    }

    async fn delete_host_transfer_key(&self, host_id: &str) -> StoreResult<bool> {
        transfers::delete_host_key(&self.client().await?, host_id).await
    }

    async fn create_transfer(&self, transfer: &NewTransfer) -> StoreResult<TransferRow> {
        in_transaction!(self, |tx| transfers::create(&tx, transfer))
    }

    async fn create_complete_transfer(
        &self,
        transfer: &NewTransfer,
        chunk: &NewChunk,
        manifest: &[u8],
        at_ms: i64,
    ) -> StoreResult<TransferRow> {
        in_transaction!(self, |tx| transfers::create_complete(
            &tx, transfer, chunk, manifest, at_ms
        ))
    }

    async fn get_transfer(&self, id: &str) -> StoreResult<Option<TransferRow>> {
        transfers::get(&self.client().await?, id).await
    }

    async fn list_transfers(&self, filter: &TransferFilter) -> StoreResult<Vec<TransferRow>> {
        transfers::list(&self.client().await?, filter).await
    }

    async fn record_chunks(
        &self,
        transfer_id: &str,
        chunks: &[NewChunk],
    ) -> StoreResult<Vec<ChunkOutcome>> {
        in_transaction!(self, |tx| transfers::record_chunks(
            &tx,
            transfer_id,
            chunks
        ))
    }

    async fn record_chunk_batches(
        &self,
        batches: &[ChunkBatch],
    ) -> StoreResult<Vec<StoreResult<Vec<ChunkOutcome>>>> {
        in_transaction!(self, |tx| transfers::record_chunk_batches(&tx, batches))
    }

    async fn list_chunks(&self, transfer_id: &str) -> StoreResult<Vec<ChunkRow>> {
        transfers::list_chunks(&self.client().await?, transfer_id).await
    }

    async fn count_stored_chunks(
        &self,
        transfer_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, u64>> {
        transfers::count_stored_chunks(&self.client().await?, transfer_ids).await
    }

    async fn get_chunk(&self, transfer_id: &str, idx: i64) -> StoreResult<Option<ChunkRow>> {
        transfers::get_chunk(&self.client().await?, transfer_id, idx).await
    }

    async fn chunk_data(&self, transfer_id: &str, idx: i64) -> StoreResult<Option<Vec<u8>>> {
        transfers::chunk_data(&self.client().await?, transfer_id, idx).await
    }

    async fn complete_transfer(
        &self,
        id: &str,
        manifest: &[u8],
        at_ms: i64,
    ) -> StoreResult<TransferRow> {
        in_transaction!(self, |tx| transfers::complete(&tx, id, manifest, at_ms))
    }

    async fn cancel_transfer(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        transfers::cancel(&self.client().await?, id, at_ms).await
    }

    async fn mark_downloaded(
        &self,
        transfer_id: &str,
        recipient_kind: &str,
        recipient_id: &str,
        at_ms: i64,
    ) -> StoreResult<()> {
        transfers::mark_downloaded(
            &self.client().await?,
            transfer_id,
            recipient_kind,
            recipient_id,
            at_ms,
        )
        .await
    }

    async fn expire_transfers(&self, now_ms: i64) -> StoreResult<Vec<String>> {
        transfers::expire(&self.client().await?, now_ms).await
    }

    async fn delete_transfer(&self, id: &str) -> StoreResult<()> {
        in_transaction!(self, |tx| transfers::delete(&tx, id))
    }

    async fn list_awaiting_grants(
        &self,
        sender_id: &str,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<TransferRow>> {
        transfers::list_awaiting_grants(&self.client().await?, sender_id, now_ms, limit).await
    }

    async fn grant_transfer_access(&self, grant: &TransferGrant) -> StoreResult<TransferRow> {
        in_transaction!(self, |tx| transfers::grant(&tx, grant))
    }
}
