//! Online backup and restore of the database file, for `mftplus admin backup` and
//! `mftplus admin restore` (decision 0019). The cloud's `backup` module drives these; this
//! module only knows SQLite.
//!
//! A backup is one read transaction on a connection of its own. Inside it the inventory is read
//! (applied migrations, row counts, the audit head, every chunk row) and SQLite's backup API
//! copies every page, so the copy and the inventory describe the same instant. The copy runs in
//! steps, but all of them inside that one read transaction: a backup whose source connection
//! opens a fresh read transaction per step (as `sqlite3 .backup` does) restarts from the first
//! page whenever another connection commits in between, so under a steady write load it never
//! finishes; with the transaction held, the source pager never sees a change and the copy never
//! restarts (the unit test below writes between steps to prove it). In WAL mode a reader never
//! blocks the writer, so the cloud keeps writing throughout; its WAL grows until the copy ends,
//! and the backup then checkpoints it (PASSIVE) so the cloud's commit path does not have to.
//! Between steps the copy is flushed every 64 MiB, so its writeback does not pile up into one
//! burst that the cloud's own syncs would wait behind. The copy is switched to
//! rollback-journal mode, so it is one self-contained file.
//!
//! A restore copies such a file into place under a temporary name, syncs it and renames it over
//! the target, which must be absent or hold no table at all.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mftplus_store::StoreError;
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::error::ResultExt;

/// What a backup or restore of the file could not do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the database file {} does not exist", .path.display())]
    NoDatabase { path: PathBuf },
    /// The restore target already holds tables: nothing was changed.
    #[error("the target database {} is not empty ({tables} tables); restore only onto a database no cloud has opened yet", .path.display())]
    TargetNotEmpty { path: PathBuf, tables: usize },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::Io { context, source }
}

/// One chunk row as the snapshot holds it, with what the caller needs of its transfer. Chunks
/// kept in the database itself (decision 0037) are not listed: the database copy holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotChunk {
    pub transfer_id: String,
    /// The transfer's site (decision 0012): its payload is on that hub, not in the cloud's store.
    pub site: Option<String>,
    pub expires_at_ms: i64,
    pub idx: i64,
    pub size: i64,
    /// SHA-256 hex of the ciphertext chunk, as recorded.
    pub sha256: String,
}

/// The inventory of a database at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Applied migrations, in name order.
    pub migrations: Vec<String>,
    /// Rows per table, every table of the schema.
    pub row_counts: BTreeMap<String, u64>,
    /// `(seq, hash)` of the audit chain's head; `None` before the audit migration.
    pub audit_head: Option<(i64, String)>,
    /// Every chunk row, ordered by transfer and index.
    pub chunks: Vec<SnapshotChunk>,
}

/// How long one backup step may keep meeting a busy or locked database before giving up.
const BUSY_RETRY_FOR: Duration = Duration::from_secs(30);
/// Pages per backup step: 16 MiB at the default 4 KiB page size.
const STEP_PAGES: std::os::raw::c_int = 4096;
/// The copy is flushed to disk whenever this much was written since the last flush.
const SYNC_EVERY: u64 = 64 * 1024 * 1024;

/// Copies the live database at `source` into the new file `dest` (created 0600; it must not
/// exist), consistently while other connections keep writing, and returns the inventory of
/// the copied instant. Blocking: run it on a blocking thread.
pub fn backup_file(source: &Path, dest: &Path) -> Result<Snapshot, BackupError> {
    let mut conn = open_existing(source)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Deferred)
        .db()?;
    // The first read starts the snapshot; the backup step below reads the same one, because
    // the backup API uses the source connection's open read transaction when it has one.
    let snapshot = inventory(&tx)?;
    let mut target = create_new_database(dest)?;
    copy_pages(&tx, &mut target, dest, |_| {})?;
    let mode: String = target
        .pragma_update_and_check(None, "journal_mode", "DELETE", |row| row.get(0))
        .db()?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(StoreError::Backend(format!(
            "the copy stayed in journal mode {mode}, not a self-contained file"
        ))
        .into());
    }
    target
        .close()
        .map_err(|(_, err)| BackupError::from(crate::error::map(err)))?;
    tx.finish().db()?;
    // While the snapshot was held, the cloud's checkpoints could not pass it and its WAL grew.
    // Checkpointing here (PASSIVE: it never blocks a writer) moves that copy out of the cloud's
    // commit path, where its next automatic checkpoint would otherwise stall one batch for it.
    // Best effort: the cloud checkpoints anyway.
    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    File::open(dest)
        .and_then(|file| file.sync_all())
        .map_err(io(format!("cannot sync {}", dest.display())))?;
    Ok(snapshot)
}

/// The inventory of the database file at `path`, read in one transaction.
pub fn inspect_file(path: &Path) -> Result<Snapshot, BackupError> {
    let mut conn = open_existing(path)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Deferred)
        .db()?;
    let snapshot = inventory(&tx)?;
    tx.finish().db()?;
    Ok(snapshot)
}

/// Tables in the file at `path`; 0 when the file does not exist.
pub fn table_count(path: &Path) -> Result<usize, BackupError> {
    if !path.exists() {
        return Ok(0);
    }
    Ok(tables(&open_existing(path)?)?.len())
}

/// Puts the backup file `backup` in place as the database `target`, which must be absent or
/// hold no table ([`BackupError::TargetNotEmpty`] otherwise, and nothing changes). The file is
/// written under a temporary name, synced, and renamed over the target with the target's own
/// stale `-wal`/`-shm` removed first, so SQLite never replays an old log onto it.
pub fn restore_file(backup: &Path, target: &Path) -> Result<(), BackupError> {
    let tables = table_count(target)?;
    if tables > 0 {
        return Err(BackupError::TargetNotEmpty {
            path: target.to_path_buf(),
            tables,
        });
    }
    let mut temp_name = target.as_os_str().to_owned();
    temp_name.push(format!(".restore-{}.tmp", std::process::id()));
    let temp = PathBuf::from(temp_name);
    let copied = copy_private(backup, &temp);
    if copied.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    copied?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = target.as_os_str().to_owned();
        name.push(suffix);
        remove_if_present(Path::new(&name))?;
    }
    std::fs::rename(&temp, target).map_err(io(format!(
        "cannot move the restored file into place as {}",
        target.display()
    )))?;
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(io(format!("cannot sync {}", parent.display())))?;
    }
    Ok(())
}

fn copy_private(from: &Path, to: &Path) -> Result<(), BackupError> {
    let mut source = File::open(from).map_err(io(format!("cannot read {}", from.display())))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(io(format!("cannot create {}", to.display())))?;
    std::io::copy(&mut source, &mut file)
        .and_then(|_| file.sync_all())
        .map_err(io(format!("cannot write {}", to.display())))
}

fn remove_if_present(path: &Path) -> Result<(), BackupError> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(BackupError::Io {
            context: format!("cannot remove {}", path.display()),
            source: err,
        }),
        _ => Ok(()),
    }
}

/// An existing database, opened to read only: never creates the file.
fn open_existing(path: &Path) -> Result<Connection, BackupError> {
    if !path.exists() {
        return Err(BackupError::NoDatabase {
            path: path.to_path_buf(),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).db()?;
    crate::configure(&conn, true)?;
    Ok(conn)
}

/// A new, private file for the copy; refuses to overwrite anything.
fn create_new_database(path: &Path) -> Result<Connection, BackupError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(format!("cannot create {}", path.display())))?;
    let conn = Connection::open(path).db()?;
    // The file is synced once at the end; a crash mid-copy leaves a backup without a
    // manifest, which the restore refuses anyway.
    conn.pragma_update(None, "journal_mode", "OFF").db()?;
    conn.pragma_update(None, "synchronous", "OFF").db()?;
    Ok(conn)
}

/// Copies every page in steps of [`STEP_PAGES`], all inside the source's open read
/// transaction (see the module docs), flushing the copy every [`SYNC_EVERY`] bytes so its
/// writeback trickles instead of landing as one burst in front of the cloud's own syncs.
/// `between` runs after each step (tests write from another connection there).
fn copy_pages(
    source: &Connection,
    target: &mut Connection,
    dest: &Path,
    mut between: impl FnMut(&rusqlite::backup::Progress),
) -> Result<(), BackupError> {
    let page_size: i64 = source
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .db()?;
    let sync_pages = (SYNC_EVERY / page_size.max(512) as u64).max(1);
    let file = File::open(dest).map_err(io(format!("cannot open {}", dest.display())))?;
    let backup = Backup::new(source, target).db()?;
    let mut unsynced = 0u64;
    let mut busy_since: Option<std::time::Instant> = None;
    loop {
        match backup.step(STEP_PAGES).db()? {
            StepResult::Done => return Ok(()),
            StepResult::More => {
                busy_since = None;
                unsynced += STEP_PAGES as u64;
                if unsynced >= sync_pages {
                    file.sync_data()
                        .map_err(io(format!("cannot sync {}", dest.display())))?;
                    unsynced = 0;
                }
                between(&backup.progress());
            }
            StepResult::Busy | StepResult::Locked
                if busy_since
                    .get_or_insert_with(std::time::Instant::now)
                    .elapsed()
                    < BUSY_RETRY_FOR =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => {
                return Err(StoreError::Backend(format!(
                    "the backup did not complete: {other:?} for {BUSY_RETRY_FOR:?}"
                ))
                .into())
            }
        }
    }
}

fn tables(conn: &Connection) -> Result<Vec<String>, BackupError> {
    let mut statement = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
        .db()?;
    let names = statement
        .query_map([], |row| row.get(0))
        .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
        .db()?;
    Ok(names)
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn inventory(conn: &Connection) -> Result<Snapshot, BackupError> {
    let tables = tables(conn)?;
    let mut row_counts = BTreeMap::new();
    for table in &tables {
        let count: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM {}", quoted(table)),
                [],
                |row| row.get(0),
            )
            .db()?;
        row_counts.insert(table.clone(), count.max(0) as u64);
    }
    let has = |name: &str| tables.iter().any(|t| t == name);
    let migrations = crate::migrate::applied(conn)?;
    let audit_head = if has("audit_head") {
        conn.query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()
        .db()?
    } else {
        None
    };
    let chunks = if has("transfer_chunks") {
        chunk_rows(
            conn,
            migrations.iter().any(|m| m == INLINE_CHUNKS_MIGRATION),
        )?
    } else {
        Vec::new()
    };
    Ok(Snapshot {
        migrations,
        row_counts,
        audit_head,
        chunks,
    })
}

/// The migration that let chunks live in their rows; a database before it has none.
const INLINE_CHUNKS_MIGRATION: &str = "0019_inline_chunks";

fn chunk_rows(conn: &Connection, inline_column: bool) -> Result<Vec<SnapshotChunk>, BackupError> {
    let only_stored = if inline_column {
        "WHERE c.data IS NULL"
    } else {
        ""
    };
    let mut statement = conn
        .prepare(&format!(
            "SELECT c.transfer_id, t.site, t.expires_at_ms, c.idx, c.size, c.sha256
             FROM transfer_chunks c JOIN transfers t ON t.id = c.transfer_id {only_stored}
             ORDER BY c.transfer_id, c.idx"
        ))
        .db()?;
    let rows = statement
        .query_map([], |row| {
            Ok(SnapshotChunk {
                transfer_id: row.get(0)?,
                site: row.get(1)?,
                expires_at_ms: row.get(2)?,
                idx: row.get(3)?,
                size: row.get(4)?,
                sha256: row.get(5)?,
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .db()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mftplus_store::{NewAuditEntry, NewUser, Store};

    async fn store_with_rows(path: &Path) -> crate::SqliteStore {
        let store = crate::SqliteStore::open(path).unwrap();
        store.migrate().await.unwrap();
        store
            .create_user(&NewUser {
                id: "u1".into(),
                email: "a@example.com".into(),
                name: "A".into(),
                role: "user".into(),
                user_type: "user".into(),
                password_hash: None,
                created_at_ms: 1,
            })
            .await
            .unwrap();
        store
            .append_audit(&NewAuditEntry {
                ts_ms: 2,
                event: "user_created".into(),
                actor: "system".into(),
                target: "a@example.com".into(),
                outcome: "success".into(),
                client_ip: String::new(),
                details: serde_json::json!({}),
            })
            .await
            .unwrap();
        store
    }

    #[tokio::test]
    async fn a_backup_is_a_self_contained_copy_and_restores_only_onto_an_empty_target() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let store = store_with_rows(&live).await;
        let copy = dir.path().join("copy.db");
        let snapshot = backup_file(&live, &copy).unwrap();
        assert_eq!(snapshot.row_counts["users"], 1);
        assert_eq!(snapshot.row_counts["audit_log"], 1);
        assert_eq!(snapshot.audit_head.as_ref().map(|h| h.0), Some(1));
        assert_eq!(
            snapshot.migrations,
            crate::migrate::applied(&open_existing(&live).unwrap()).unwrap()
        );
        // Another backup never overwrites a file.
        assert!(matches!(
            backup_file(&live, &copy),
            Err(BackupError::Io { .. })
        ));
        drop(store);

        // One file, no log beside it, same inventory.
        let mut wal = copy.as_os_str().to_owned();
        wal.push("-wal");
        assert!(!Path::new(&wal).exists());
        assert_eq!(inspect_file(&copy).unwrap(), snapshot);

        let target = dir.path().join("restored.db");
        restore_file(&copy, &target).unwrap();
        assert_eq!(inspect_file(&target).unwrap(), snapshot);
        match restore_file(&copy, &target) {
            Err(BackupError::TargetNotEmpty { tables, .. }) => assert!(tables > 5),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(matches!(
            backup_file(&dir.path().join("absent.db"), &dir.path().join("x.db")),
            Err(BackupError::NoDatabase { .. })
        ));
    }

    /// Writes committed by another connection between two steps neither restart the copy nor
    /// reach it: it is the instant its read transaction started.
    #[tokio::test]
    async fn steps_inside_one_read_transaction_neither_restart_nor_see_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let store = store_with_rows(&live).await;
        let writer = Connection::open(&live).unwrap();
        writer
            .execute_batch(
                "CREATE TABLE pad (x BLOB);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12000)
                 INSERT INTO pad SELECT randomblob(4000) FROM n;",
            )
            .unwrap();
        let mut conn = open_existing(&live).unwrap();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .unwrap();
        let snapshot = inventory(&tx).unwrap();
        let dest = dir.path().join("copy.db");
        let mut target = create_new_database(&dest).unwrap();
        let mut remaining = Vec::new();
        copy_pages(&tx, &mut target, &dest, |progress| {
            remaining.push(progress.remaining);
            writer
                .execute("INSERT INTO pad VALUES (randomblob(4000))", [])
                .unwrap();
        })
        .unwrap();
        drop(target);
        tx.finish().unwrap();
        assert!(remaining.len() >= 2, "{remaining:?}");
        assert!(
            remaining.windows(2).all(|w| w[1] < w[0]),
            "the copy restarted: {remaining:?}"
        );
        let copied = inspect_file(&dest).unwrap();
        assert_eq!(copied.row_counts["pad"], 12000);
        assert_eq!(snapshot.row_counts["pad"], 12000);
        let live_rows: i64 = writer
            .query_row("SELECT count(*) FROM pad", [], |row| row.get(0))
            .unwrap();
        assert_eq!(live_rows, 12000 + remaining.len() as i64);
        drop(store);
    }
}
