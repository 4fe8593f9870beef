//! SQLite backend of [`mftplus_store::Store`], for single-node installs and tests.
//!
//! One file (plus its `-wal` and `-shm`), created owner-only (0600) because it holds password
//! hashes and the audit log. Writes go through one connection, so they are serialized in this
//! process, and `BEGIN IMMEDIATE` serializes them against other processes on the same file;
//! reads use a small pool of query-only connections and, thanks to WAL, never wait for writes.
//! Every SQLite call runs on tokio's blocking pool, never on an async worker.
//!
//! This crate is not a general SQLite wrapper and holds no business rules: it stores and loads
//! what the trait describes. Schema changes are new files under `migrations/` with the same
//! name as their PostgreSQL twin; applied files are never edited.

mod api_keys;
mod audit;
pub mod backup;
mod certificates;
mod error;
mod fleet;
mod hubs;
mod links;
mod migrate;
mod pool;
mod requests;
mod tokens;
mod transfers;
mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use mftplus_store::{
    ApiKeyPage, ApiKeyRow, AuditFilter, AuditRow, ChunkBatch, ChunkOutcome, ChunkRow,
    HostTransferKeyRow, NewApiKey, NewAuditEntry, NewChunk, NewTransfer, NewUser, Store,
    StoreError, StoreResult, TimeCursor, TokenRow, TransferFilter, TransferGrant, TransferRow,
    UserKeyRow, UserRow, UserUpdate,
};
use rusqlite::{Connection, OpenFlags};

pub use migrate::{MIGRATIONS, NEWER_SCHEMA};

use crate::error::ResultExt;
use crate::pool::Pool;

/// Read connections per file. Readers only wait for each other, and the machines we target have
/// few cores, so a handful is plenty.
const READERS: usize = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a [`SqliteStore`] keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteLocation {
    File(PathBuf),
    /// A private in-memory database; gone when the store is dropped. For tests.
    Memory,
}

/// Parses `sqlite:///abs/path.db`, `sqlite://relative.db`, `sqlite:relative.db` and
/// `sqlite::memory:`. A `?query` suffix (as other tools write `?mode=rwc`) is ignored.
pub fn parse_url(url: &str) -> StoreResult<SqliteLocation> {
    let rest = url
        .strip_prefix("sqlite:")
        .ok_or_else(|| StoreError::Backend(format!("not a sqlite: URL: {url}")))?;
    let rest = rest.split_once('?').map_or(rest, |(path, _)| path);
    // `sqlite://x` has an empty authority, so what follows is the path as written:
    // `sqlite:///abs` is absolute, `sqlite://rel` relative.
    let path = rest.strip_prefix("//").unwrap_or(rest);
    match path {
        "" => Err(StoreError::Backend(format!(
            "sqlite URL without a path: {url}"
        ))),
        ":memory:" => Ok(SqliteLocation::Memory),
        path => Ok(SqliteLocation::File(PathBuf::from(path))),
    }
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    writer: Arc<Pool>,
    /// The writer itself for an in-memory database, which other connections cannot see.
    readers: Arc<Pool>,
    location: SqliteLocation,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`. Does not migrate; call
    /// [`Store::migrate`]. Blocking: call it before serving or from `spawn_blocking`.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        create_private_file(path)?;
        let writer = open_connection(path, false)?;
        // WAL is a property of the file; setting it once on the writer is enough.
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .db()?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "could not enable WAL (got {mode})"
            )));
        }
        let readers = (0..READERS)
            .map(|_| open_connection(path, true))
            .collect::<StoreResult<Vec<_>>>()?;
        restrict_permissions(path)?;
        Ok(SqliteStore {
            writer: Pool::new(vec![writer]),
            readers: Pool::new(readers),
            location: SqliteLocation::File(path.to_path_buf()),
        })
    }

    /// Opens the database a `sqlite:` URL names; see [`parse_url`].
    pub fn open_url(url: &str) -> StoreResult<SqliteStore> {
        match parse_url(url)? {
            SqliteLocation::File(path) => SqliteStore::open(&path),
            SqliteLocation::Memory => SqliteStore::open_in_memory(),
        }
    }

    /// A private in-memory database with a single connection, for tests.
    pub fn open_in_memory() -> StoreResult<SqliteStore> {
        let conn = Connection::open_in_memory().db()?;
        configure(&conn, false)?;
        let writer = Pool::new(vec![conn]);
        Ok(SqliteStore {
            readers: writer.clone(),
            writer,
            location: SqliteLocation::Memory,
        })
    }

    pub fn location(&self) -> &SqliteLocation {
        &self.location
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        self.readers.run(f).await
    }

    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        self.writer.run(f).await
    }
}

fn open_connection(path: &Path, query_only: bool) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).db()?;
    configure(&conn, query_only)?;
    Ok(conn)
}

/// Readers are opened read-write but `query_only`: a true read-only open cannot always map the
/// WAL index (`-shm`), while `query_only` still refuses every write.
fn configure(conn: &Connection, query_only: bool) -> StoreResult<()> {
    conn.busy_timeout(BUSY_TIMEOUT).db()?;
    conn.pragma_update(None, "foreign_keys", "ON").db()?;
    conn.pragma_update(None, "synchronous", "NORMAL").db()?;
    if query_only {
        conn.pragma_update(None, "query_only", "ON").db()?;
    }
    Ok(())
}

/// Creates the file owner-only before SQLite sees it, so it never exists with the umask's
/// permissions; SQLite then gives `-wal` and `-shm` the same mode as the main file.
#[cfg(unix)]
fn create_private_file(path: &Path) -> StoreResult<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|err| StoreError::Backend(format!("cannot create {}: {err}", path.display())))
}

#[cfg(not(unix))]
fn create_private_file(_path: &Path) -> StoreResult<()> {
    Ok(())
}

/// Tightens an existing file that was created more open (by hand, or an older release).
#[cfg(unix)]
fn restrict_permissions(path: &Path) -> StoreResult<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    for file in files {
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(StoreError::Backend(format!(
                    "cannot restrict permissions of {}: {err}",
                    file.display()
                )))
            }
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) -> StoreResult<()> {
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.write(|conn| migrate::run(conn, now_ms())).await
    }

    async fn applied_migrations(&self) -> StoreResult<Vec<String>> {
        self.read(|conn| migrate::applied(conn)).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).db())
            .await
    }

    async fn create_user(&self, user: &NewUser) -> StoreResult<UserRow> {
        let user = user.clone();
        self.write(move |conn| users::create(conn, &user)).await
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<UserRow>> {
        let id = id.to_owned();
        self.read(move |conn| users::get(conn, &id)).await
    }

    async fn get_user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>> {
        let email = email.to_owned();
        self.read(move |conn| users::get_by_email(conn, &email))
            .await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRow>> {
        self.read(|conn| users::list(conn)).await
    }

    async fn list_users_page(
        &self,
        after_email: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRow>> {
        let after = after_email.map(users::normalize_email);
        self.read(move |conn| users::list_page(conn, after.as_deref(), limit))
            .await
    }

    async fn get_users(&self, ids: &[String]) -> StoreResult<Vec<UserRow>> {
        let ids = ids.to_vec();
        self.read(move |conn| users::get_many(conn, &ids)).await
    }

    async fn count_users(&self) -> StoreResult<u64> {
        self.read(|conn| users::count(conn)).await
    }

    async fn update_user(&self, id: &str, update: &UserUpdate) -> StoreResult<UserRow> {
        let (id, update) = (id.to_owned(), update.clone());
        self.write(move |conn| users::update(conn, &id, &update))
            .await
    }

    async fn record_login(&self, id: &str, at_ms: i64) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |conn| users::record_login(conn, &id, at_ms))
            .await
    }

    async fn delete_user(&self, id: &str, at_ms: i64) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |conn| users::delete(conn, &id, at_ms))
            .await
    }

    async fn create_api_key(&self, key: &NewApiKey) -> StoreResult<ApiKeyRow> {
        let key = key.clone();
        self.write(move |conn| api_keys::create(conn, &key)).await
    }

    async fn get_api_key(&self, id: &str) -> StoreResult<Option<ApiKeyRow>> {
        let id = id.to_owned();
        self.read(move |conn| api_keys::get(conn, &id)).await
    }

    async fn get_api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRow>> {
        let key_hash = key_hash.to_owned();
        self.read(move |conn| api_keys::get_by_hash(conn, &key_hash))
            .await
    }

    async fn list_api_keys(&self, owner_id: Option<&str>) -> StoreResult<Vec<ApiKeyRow>> {
        let owner_id = owner_id.map(str::to_owned);
        self.read(move |conn| api_keys::list(conn, owner_id.as_deref()))
            .await
    }

    async fn list_api_keys_page(&self, page: &ApiKeyPage) -> StoreResult<Vec<ApiKeyRow>> {
        let page = page.clone();
        self.read(move |conn| api_keys::list_page(conn, &page))
            .await
    }

    async fn revoke_api_key(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |conn| api_keys::revoke(conn, &id, at_ms))
            .await
    }

    async fn rotate_api_key(
        &self,
        old_id: &str,
        new: &NewApiKey,
        at_ms: i64,
    ) -> StoreResult<ApiKeyRow> {
        let (old_id, new) = (old_id.to_owned(), new.clone());
        self.write(move |conn| api_keys::rotate(conn, &old_id, &new, at_ms))
            .await
    }

    async fn touch_api_keys(&self, uses: &[(String, i64)]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let uses = uses.to_vec();
        self.write(move |conn| api_keys::touch(conn, &uses)).await
    }

    async fn revoke_inactive_api_keys(
        &self,
        inactive_before_ms: i64,
        at_ms: i64,
    ) -> StoreResult<Vec<ApiKeyRow>> {
        self.write(move |conn| api_keys::revoke_inactive(conn, inactive_before_ms, at_ms))
            .await
    }

    async fn insert_token(&self, token: &TokenRow) -> StoreResult<()> {
        let token = token.clone();
        self.write(move |conn| tokens::insert(conn, &token)).await
    }

    async fn get_token(&self, jti: &str) -> StoreResult<Option<TokenRow>> {
        let jti = jti.to_owned();
        self.read(move |conn| tokens::get(conn, &jti)).await
    }

    async fn list_active_tokens(
        &self,
        user_id: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<Vec<TokenRow>> {
        let user_id = user_id.map(str::to_owned);
        self.read(move |conn| tokens::list_active(conn, user_id.as_deref(), now_ms))
            .await
    }

    async fn list_sign_ins(
        &self,
        user_id: &str,
        now_ms: i64,
        before: Option<&TimeCursor>,
        limit: u32,
    ) -> StoreResult<Vec<TokenRow>> {
        let (user_id, before) = (user_id.to_owned(), before.cloned());
        self.read(move |conn| tokens::list_sign_ins(conn, &user_id, now_ms, before.as_ref(), limit))
            .await
    }

    async fn revoke_token(&self, jti: &str, at_ms: i64) -> StoreResult<bool> {
        let jti = jti.to_owned();
        self.write(move |conn| tokens::revoke(conn, &jti, at_ms))
            .await
    }

    async fn revoke_user_tokens(&self, user_id: &str, at_ms: i64) -> StoreResult<u64> {
        let user_id = user_id.to_owned();
        self.write(move |conn| tokens::revoke_user(conn, &user_id, at_ms))
            .await
    }

    async fn revoke_token_family(&self, family_id: &str, at_ms: i64) -> StoreResult<u64> {
        let family_id = family_id.to_owned();
        self.write(move |conn| tokens::revoke_family(conn, &family_id, at_ms))
            .await
    }

    async fn mark_refresh_used(&self, jti: &str, at_ms: i64) -> StoreResult<bool> {
        let jti = jti.to_owned();
        self.write(move |conn| tokens::mark_refresh_used(conn, &jti, at_ms))
            .await
    }

    async fn touch_token(&self, jti: &str, at_ms: i64) -> StoreResult<bool> {
        let jti = jti.to_owned();
        self.write(move |conn| tokens::touch(conn, &jti, at_ms))
            .await
    }

    async fn prune_tokens(&self, expired_before_ms: i64) -> StoreResult<u64> {
        self.write(move |conn| tokens::prune(conn, expired_before_ms))
            .await
    }

    async fn append_audit(&self, entry: &NewAuditEntry) -> StoreResult<AuditRow> {
        let entry = entry.clone();
        self.write(move |conn| audit::append(conn, std::slice::from_ref(&entry)))
            .await?
            .pop()
            .ok_or_else(|| StoreError::Backend("an append wrote no audit entry".into()))
    }

    async fn append_audits(&self, entries: &[NewAuditEntry]) -> StoreResult<Vec<AuditRow>> {
        let entries = entries.to_vec();
        self.write(move |conn| audit::append(conn, &entries)).await
    }

    async fn list_audit(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<AuditRow>> {
        self.read(move |conn| audit::list(conn, after_seq, limit))
            .await
    }

    async fn search_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>> {
        let filter = filter.clone();
        self.read(move |conn| audit::search(conn, &filter)).await
    }

    async fn prune_audit(&self, before_ms: i64) -> StoreResult<u64> {
        self.write(move |conn| audit::prune(conn, before_ms)).await
    }

    async fn put_user_key(&self, key: &UserKeyRow) -> StoreResult<()> {
        let key = key.clone();
        self.write(move |conn| transfers::put_key(conn, &key)).await
    }

    async fn get_user_key(&self, user_id: &str) -> StoreResult<Option<UserKeyRow>> {
        let user_id = user_id.to_owned();
        self.read(move |conn| transfers::get_key(conn, &user_id))
            .await
    }

    async fn set_host_transfer_key(
        &self,
        host_id: &str,
        public_key: &str,
        at_ms: i64,
    ) -> StoreResult<HostTransferKeyRow> {
        let (host_id, public_key) = (host_id.to_owned(), public_key.to_owned());
        self.write(move |conn| transfers::set_host_key(conn, &host_id, &public_key, at_ms))
            .await
    }

    async fn host_transfer_key(&self, host_id: &str) -> StoreResult<Option<HostTransferKeyRow>> {
        let host_id = host_id.to_owned();
        self.read(move |conn| transfers::get_host_key(conn, &host_id))
            .await
    }

    async fn delete_host_transfer_key(&self, host_id: &str) -> StoreResult<bool> {
        let host_id = host_id.to_owned();
        self.write(move |conn| transfers::delete_host_key(conn, &host_id))
            .await
    }

    async fn create_transfer(&self, transfer: &NewTransfer) -> StoreResult<TransferRow> {
        let transfer = transfer.clone();
        self.write(move |conn| transfers::create(conn, &transfer))
            .await
    }

    async fn create_complete_transfer(
        &self,
        transfer: &NewTransfer,
        chunk: &NewChunk,
        manifest: &[u8],
        at_ms: i64,
    ) -> StoreResult<TransferRow> {
        let (transfer, chunk, manifest) = (transfer.clone(), chunk.clone(), manifest.to_vec());
        self.write(move |conn| {
            transfers::create_complete(conn, &transfer, &chunk, &manifest, at_ms)
        })
        .await
    }

    async fn get_transfer(&self, id: &str) -> StoreResult<Option<TransferRow>> {
        let id = id.to_owned();
        self.read(move |conn| transfers::get(conn, &id)).await
    }

    async fn list_transfers(&self, filter: &TransferFilter) -> StoreResult<Vec<TransferRow>> {
        let filter = filter.clone();
        self.read(move |conn| transfers::list(conn, &filter)).await
    }

    async fn record_chunks(
        &self,
        transfer_id: &str,
        chunks: &[NewChunk],
    ) -> StoreResult<Vec<ChunkOutcome>> {
        let (transfer_id, chunks) = (transfer_id.to_owned(), chunks.to_vec());
        self.write(move |conn| transfers::record_chunks(conn, &transfer_id, &chunks))
            .await
    }

    async fn record_chunk_batches(
        &self,
        batches: &[ChunkBatch],
    ) -> StoreResult<Vec<StoreResult<Vec<ChunkOutcome>>>> {
        let batches = batches.to_vec();
        self.write(move |conn| transfers::record_chunk_batches(conn, &batches))
            .await
    }

    async fn list_chunks(&self, transfer_id: &str) -> StoreResult<Vec<ChunkRow>> {
        let transfer_id = transfer_id.to_owned();
        self.read(move |conn| transfers::list_chunks(conn, &transfer_id))
            .await
    }

    async fn count_stored_chunks(
        &self,
        transfer_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, u64>> {
        let transfer_ids = transfer_ids.to_vec();
        self.read(move |conn| transfers::count_stored_chunks(conn, &transfer_ids))
            .await
    }

    async fn get_chunk(&self, transfer_id: &str, idx: i64) -> StoreResult<Option<ChunkRow>> {
        let transfer_id = transfer_id.to_owned();
        self.read(move |conn| transfers::get_chunk(conn, &transfer_id, idx))
            .await
    }

    async fn chunk_data(&self, transfer_id: &str, idx: i64) -> StoreResult<Option<Vec<u8>>> {
        let transfer_id = transfer_id.to_owned();
        self.read(move |conn| transfers::chunk_data(conn, &transfer_id, idx))
            .await
    }

    async fn complete_transfer(
        &self,
        id: &str,
        manifest: &[u8],
        at_ms: i64,
    ) -> StoreResult<TransferRow> {
        let (id, manifest) = (id.to_owned(), manifest.to_vec());
        self.write(move |conn| transfers::complete(conn, &id, &manifest, at_ms))
            .await
    }

    async fn cancel_transfer(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |conn| transfers::cancel(conn, &id, at_ms))
            .await
    }

    async fn mark_downloaded(
        &self,
        transfer_id: &str,
        recipient_kind: &str,
        recipient_id: &str,
        at_ms: i64,
    ) -> StoreResult<()> {
        let (transfer_id, kind, recipient_id) = (
            transfer_id.to_owned(),
            recipient_kind.to_owned(),
            recipient_id.to_owned(),
        );
        self.write(move |conn| {
            transfers::mark_downloaded(conn, &transfer_id, &kind, &recipient_id, at_ms)
        })
        .await
    }

    async fn expire_transfers(&self, now_ms: i64) -> StoreResult<Vec<String>> {
        self.write(move |conn| transfers::expire(conn, now_ms))
            .await
    }

    async fn delete_transfer(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |conn| transfers::delete(conn, &id)).await
    }

    async fn list_awaiting_grants(
        &self,
        sender_id: &str,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<TransferRow>> {
        let sender_id = sender_id.to_owned();
        self.read(move |conn| transfers::list_awaiting_grants(conn, &sender_id, now_ms, limit))
            .await
    }

    async fn grant_transfer_access(&self, grant: &TransferGrant) -> StoreResult<TransferRow> {
        let grant = grant.clone();
        self.write(move |conn| transfers::grant(conn, &grant)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let parse = |url: &str| parse_url(url).ok();
        let file = |path: &str| Some(SqliteLocation::File(PathBuf::from(path)));
        assert_eq!(
            parse("sqlite:///var/lib/mftplus/db.sqlite"),
            file("/var/lib/mftplus/db.sqlite")
        );
        assert_eq!(parse("sqlite://relative.db"), file("relative.db"));
        assert_eq!(parse("sqlite:path.db"), file("path.db"));
        assert_eq!(parse("sqlite://data/x.db?mode=rwc"), file("data/x.db"));
        assert_eq!(parse("sqlite::memory:"), Some(SqliteLocation::Memory));
        assert_eq!(parse("sqlite://:memory:"), Some(SqliteLocation::Memory));
        assert!(parse_url("sqlite:").is_err());
        assert!(parse_url("sqlite://").is_err());
        assert!(parse_url("postgres://localhost/db").is_err());
    }
}
