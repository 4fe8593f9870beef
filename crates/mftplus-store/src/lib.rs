//! The storage contract of the cloud: one [`Store`] trait, the row models it speaks in, the
//! [`StoreError`] type, and [`contract`], the backend-agnostic test suite every backend runs.
//!
//! No SQL lives here and no HTTP: backends (`mftplus-store-sqlite`, `mftplus-store-postgres`)
//! implement the trait; the cloud picks one at start-up from `DATABASE_URL` and only ever sees
//! `Arc<dyn Store>`. Timestamps are Unix milliseconds (`i64`) so both backends agree to the
//! millisecond and no time zone ever enters the database.

mod certificates;
pub mod contract;
mod fleet;
mod hubs;
mod links;
mod models;
mod requests;
pub mod statements;
mod transfer_rules;

pub use certificates::*;
pub use fleet::*;
pub use hubs::*;
pub use links::*;
pub use models::*;
pub use requests::*;
pub use transfer_rules::{check_complete_chunks, check_grant, plan_chunk_batch};

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated; the string names what clashed (e.g. `email`).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database could not be reached or answered with an error; details go to the log only.
    #[error("database error: {0}")]
    Backend(String),
    #[error("migration failed: {0}")]
    Migration(String),
    /// A value the database cannot hold (PostgreSQL refuses a NUL character in text): the
    /// caller's input is wrong, not the database.
    #[error("value cannot be stored: {0}")]
    Unstorable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the cloud persists. Implementations must be safe to share between tasks and, on
/// PostgreSQL, between several cloud processes on the same database.
#[async_trait]
pub trait Store:
    FleetStore + HubStore + CertificateStore + LinkStore + FileRequestStore + Send + Sync + 'static
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Applies pending migrations; idempotent.
    async fn migrate(&self) -> StoreResult<()>;
    /// Names of applied migrations, in order.
    async fn applied_migrations(&self) -> StoreResult<Vec<String>>;
    async fn ping(&self) -> StoreResult<()>;

    // ---- users ----
    /// `Conflict("email")` when the email (case-insensitive) is taken.
    async fn create_user(&self, user: &NewUser) -> StoreResult<UserRow>;
    async fn get_user(&self, id: &str) -> StoreResult<Option<UserRow>>;
    /// Case-insensitive.
    async fn get_user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>>;
    /// Ordered by email.
    async fn list_users(&self) -> StoreResult<Vec<UserRow>>;
    /// A page of [`Store::list_users`]: at most `limit` users ordered by email, only those
    /// whose email sorts after `after_email` (the last of the previous page) when given.
    async fn list_users_page(
        &self,
        after_email: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRow>>;
    /// The users among `ids` that exist, in any order (the owners shown on a page of keys, in
    /// one query).
    async fn get_users(&self, ids: &[String]) -> StoreResult<Vec<UserRow>>;
    async fn count_users(&self) -> StoreResult<u64>;
    /// Applies the `Some` fields; `NotFound` when the id does not exist.
    async fn update_user(&self, id: &str, update: &UserUpdate) -> StoreResult<UserRow>;
    async fn record_login(&self, id: &str, at_ms: i64) -> StoreResult<()>;
    /// Deletes the user and, in the same transaction, revokes its tokens and API keys.
    /// `NotFound` when absent.
    async fn delete_user(&self, id: &str, at_ms: i64) -> StoreResult<()>;

    // ---- API keys ----
    async fn create_api_key(&self, key: &NewApiKey) -> StoreResult<ApiKeyRow>;
    async fn get_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRow>>;
    async fn get_api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRow>>;
    /// All keys (revoked included), or only those of one owner; newest first.
    async fn list_api_keys(&self, owner_id: Option<&str>) -> StoreResult<Vec<ApiKeyRow>>;
    /// A page of [`Store::list_api_keys`] in the same order (newest first): at most
    /// `page.limit` keys, revoked ones only when `page.include_revoked`, only those after
    /// `page.before` (the last key of the previous page) when given.
    async fn list_api_keys_page(&self, page: &ApiKeyPage) -> StoreResult<Vec<ApiKeyRow>>;
    /// Sets `revoked_at` if not yet revoked; returns whether it changed anything.
    async fn revoke_api_key(&self, id: &str, at_ms: i64) -> StoreResult<bool>;
    /// In one transaction: revokes `old_id` (which must be unrevoked, else `NotFound`) and inserts
    /// `new`, whose `replaces` names the old key.
    async fn rotate_api_key(
        &self,
        old_id: &str,
        new: &NewApiKey,
        at_ms: i64,
    ) -> StoreResult<ApiKeyRow>;
    /// Batched last-use stamps: `(id, at_ms)`; a stamp never moves `last_used_at` backwards.
    async fn touch_api_keys(&self, uses: &[(String, i64)]) -> StoreResult<()>;
    /// Revokes unrevoked keys whose last use (or creation when never used) is older than
    /// `inactive_before_ms`; returns the revoked rows.
    async fn revoke_inactive_api_keys(
        &self,
        inactive_before_ms: i64,
        at_ms: i64,
    ) -> StoreResult<Vec<ApiKeyRow>>;

    // ---- JWT records (access and refresh) ----
    async fn insert_token(&self, token: &TokenRow) -> StoreResult<()>;
    async fn get_token(&self, jti: &str) -> StoreResult<Option<TokenRow>>;
    /// Unrevoked, unexpired at `now_ms`, optionally of one user; newest first.
    async fn list_active_tokens(
        &self,
        user_id: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<Vec<TokenRow>>;
    /// A page of a person's live sign-ins, newest first: the unrevoked, unexpired tokens of
    /// `user_id` that a person signed in with, i.e. dashboard sessions, refresh tokens not yet
    /// exchanged (one per live `mftctl login`) and tokens an administrator issued; never the
    /// short access tokens a login or refresh pairs with its refresh token. At most `limit`,
    /// only those after `before` (the last of the previous page) when given.
    async fn list_sign_ins(
        &self,
        user_id: &str,
        now_ms: i64,
        before: Option<&TimeCursor>,
        limit: u32,
    ) -> StoreResult<Vec<TokenRow>>;
    async fn revoke_token(&self, jti: &str, at_ms: i64) -> StoreResult<bool>;
    async fn revoke_user_tokens(&self, user_id: &str, at_ms: i64) -> StoreResult<u64>;
    async fn revoke_token_family(&self, family_id: &str, at_ms: i64) -> StoreResult<u64>;
    /// Atomically marks a refresh token used. `true` the first time; `false` if it was already
    /// used (a replay: the caller revokes the family).
    async fn mark_refresh_used(&self, jti: &str, at_ms: i64) -> StoreResult<bool>;
    /// Records that a dashboard session was used at `at_ms` (its idle expiry counts from the
    /// latest use): moves `used_at_ms` forward only, on an unrevoked row. `false` for an
    /// unknown, revoked or already later-touched row.
    async fn touch_token(&self, jti: &str, at_ms: i64) -> StoreResult<bool>;
    /// Deletes token rows that expired before the cutoff.
    async fn prune_tokens(&self, expired_before_ms: i64) -> StoreResult<u64>;

    // ---- audit ----
    /// Appends one entry: assigns the next `seq`, links `prev_hash` to the current head (or to
    /// [`mftplus_crypto::audit::GENESIS_HASH`]) and computes `hash` with
    /// [`mftplus_crypto::audit::entry_hash`], all under one lock so concurrent appends (from
    /// several cloud processes too) never fork the chain.
    async fn append_audit(&self, entry: &NewAuditEntry) -> StoreResult<AuditRow>;
    /// Appends `entries` in order as `append_audit` would, in one transaction: events one
    /// action causes together (a transfer created complete is created and completed) cost one
    /// commit. All or nothing.
    async fn append_audits(&self, entries: &[NewAuditEntry]) -> StoreResult<Vec<AuditRow>> {
        let mut rows = Vec::with_capacity(entries.len());
        for entry in entries {
            rows.push(self.append_audit(entry).await?);
        }
        Ok(rows)
    }
    /// Entries with `seq > after_seq`, ascending, at most `limit`.
    async fn list_audit(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<AuditRow>>;
    /// Entries matching `filter` (every condition is part of the query, so a page stays
    /// bounded whatever the log holds), by `seq` ascending or, with `newest_first`,
    /// descending; at most `filter.limit`.
    async fn search_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>>;
    /// Deletes entries older than the cutoff; returns how many.
    async fn prune_audit(&self, before_ms: i64) -> StoreResult<u64>;

    // ---- transfers ----
    /// Registers or replaces a user's public key; a replacement keeps `created_at_ms`.
    async fn put_user_key(&self, key: &UserKeyRow) -> StoreResult<()>;
    async fn get_user_key(&self, user_id: &str) -> StoreResult<Option<UserKeyRow>>;
    /// Registers or replaces a host's transfer key (decision 0029) and answers the row now in
    /// force. `NotFound` when the host does not exist; the key goes with the host.
    async fn set_host_transfer_key(
        &self,
        host_id: &str,
        public_key: &str,
        at_ms: i64,
    ) -> StoreResult<HostTransferKeyRow>;
    /// The host's transfer key; `None` when it has registered none (or was re-enrolled since).
    async fn host_transfer_key(&self, host_id: &str) -> StoreResult<Option<HostTransferKeyRow>>;
    /// Forgets the host's transfer key (a re-enrolled box registers its own); whether there
    /// was one.
    async fn delete_host_transfer_key(&self, host_id: &str) -> StoreResult<bool>;
    /// Inserts the transfer (status `uploading`, no chunks) and its recipients in one
    /// transaction. `Conflict("id")` when the id is taken, `Conflict("recipient")` when a
    /// recipient is listed twice.
    async fn create_transfer(&self, transfer: &NewTransfer) -> StoreResult<TransferRow>;
    /// A one-chunk transfer made complete in one transaction (decision 0037): created as
    /// `create_transfer` creates it (same conflicts), `chunk` recorded as `record_chunks`
    /// records it, then completed with `manifest` at `at_ms` as `complete_transfer` completes
    /// it — `Conflict` unless `chunk` is index 0 and last. Nothing is written on any error.
    async fn create_complete_transfer(
        &self,
        transfer: &NewTransfer,
        chunk: &NewChunk,
        manifest: &[u8],
        at_ms: i64,
    ) -> StoreResult<TransferRow>;
    async fn get_transfer(&self, id: &str) -> StoreResult<Option<TransferRow>>;
    /// Newest first (`created_at_ms`, then id, descending), narrowed by the filter.
    async fn list_transfers(&self, filter: &TransferFilter) -> StoreResult<Vec<TransferRow>>;
    /// Records a batch of uploaded chunks of one transfer in one transaction (group commit) and
    /// returns one outcome per chunk, in batch order, as [`plan_chunk_batch`] decides: a new
    /// index is `Stored`, a retry with the same content `AlreadyStored`, other content at a
    /// stored index a `Conflict` that keeps the stored row. Adds the sizes of the stored chunks
    /// to `ciphertext_bytes`. `NotFound` for an unknown transfer; `Conflict(NOT_UPLOADING)`,
    /// recording nothing, when it is not `uploading`. Batches for one transfer are serialized,
    /// also across cloud processes.
    async fn record_chunks(
        &self,
        transfer_id: &str,
        chunks: &[NewChunk],
    ) -> StoreResult<Vec<ChunkOutcome>>;
    /// Records the chunk batches of several transfers in one transaction, one commit for all
    /// (the cloud's chunk committer). Each batch is judged as [`record_chunks`] would, and its
    /// own `NotFound` or `Conflict(NOT_UPLOADING)` (recording nothing for that transfer) is its
    /// entry in the answer, one per batch in order, without failing the others. The outer
    /// error means the transaction failed and nothing was recorded. Transfers are locked in
    /// id order, so concurrent multi-transfer batches cannot deadlock.
    ///
    /// The default records each batch with its own transaction; backends override it.
    ///
    /// [`record_chunks`]: Store::record_chunks
    async fn record_chunk_batches(
        &self,
        batches: &[ChunkBatch],
    ) -> StoreResult<Vec<StoreResult<Vec<ChunkOutcome>>>> {
        let mut results = Vec::with_capacity(batches.len());
        for batch in batches {
            results.push(
                match self.record_chunks(&batch.transfer_id, &batch.chunks).await {
                    Err(err @ (StoreError::NotFound | StoreError::Conflict(_))) => Err(err),
                    Err(other) => return Err(other),
                    Ok(outcomes) => Ok(outcomes),
                },
            );
        }
        Ok(results)
    }
    /// The stored chunks, by ascending index; empty for an unknown transfer.
    async fn list_chunks(&self, transfer_id: &str) -> StoreResult<Vec<ChunkRow>>;
    /// How many chunks are stored for each of `transfer_ids`, in one statement whatever their
    /// number (a page of the transfer listing shows its progress). A transfer without chunks,
    /// or unknown, is absent from the map.
    async fn count_stored_chunks(
        &self,
        transfer_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, u64>>;
    /// One stored chunk, by the primary key: what every upload checks, so its cost must not
    /// grow with the transfer.
    async fn get_chunk(&self, transfer_id: &str, idx: i64) -> StoreResult<Option<ChunkRow>>;
    /// The bytes of a chunk kept in the database ([`ChunkRow::inline`]); `None` when the chunk
    /// is unknown or its bytes are in the payload store.
    async fn chunk_data(&self, transfer_id: &str, idx: i64) -> StoreResult<Option<Vec<u8>>>;
    /// In one transaction, serialized with `record_chunks`: checks that the transfer is
    /// `uploading` (else `Conflict(NOT_UPLOADING)`) and that its chunks form a whole stream
    /// (else `Conflict` with [`check_complete_chunks`]'s reason), then sets status `complete`,
    /// `chunk_count`, `manifest` and `completed_at_ms`. `NotFound` for an unknown transfer.
    async fn complete_transfer(
        &self,
        id: &str,
        manifest: &[u8],
        at_ms: i64,
    ) -> StoreResult<TransferRow>;
    /// Moves an `uploading` or `complete` transfer to `cancelled`; `false` when it was already
    /// cancelled or expired, or does not exist.
    async fn cancel_transfer(&self, id: &str, at_ms: i64) -> StoreResult<bool>;
    /// Stamps a recipient's first download; later calls keep the first stamp. `NotFound` when
    /// the transfer has no such recipient.
    async fn mark_downloaded(
        &self,
        transfer_id: &str,
        recipient_kind: &str,
        recipient_id: &str,
        at_ms: i64,
    ) -> StoreResult<()>;
    /// Moves `uploading` and `complete` transfers with `expires_at_ms <= now_ms` to `expired`
    /// and returns their ids, sorted, so the caller can delete their blobs.
    async fn expire_transfers(&self, now_ms: i64) -> StoreResult<Vec<String>>;
    /// Removes the transfer with its recipients and chunk rows, in one transaction. Call it once
    /// the blobs are gone. Idempotent: an unknown id is not an error, so sweeps may overlap.
    async fn delete_transfer(&self, id: &str) -> StoreResult<()>;
    /// The transfers user `sender_id` sent that are `uploading` or `complete`, not past
    /// `expires_at_ms` at `now_ms`, with at least one user recipient waiting for a grant;
    /// oldest first (`created_at_ms`, then id), at most `limit`. Cheap when none is waiting.
    async fn list_awaiting_grants(
        &self,
        sender_id: &str,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<TransferRow>>;
    /// Applies a sender's grant in one transaction serialized with the transfer's other writes,
    /// as [`check_grant`] decides: replaces the header, and for each named recipient clears
    /// `awaiting_grant` and sets `granted_at_ms`. `NotFound` for an unknown transfer;
    /// `Conflict` with a [`grant_conflict`] text, changing nothing, otherwise.
    async fn grant_transfer_access(&self, grant: &TransferGrant) -> StoreResult<TransferRow>;
}
