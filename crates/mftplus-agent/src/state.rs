//! The agent's local state: one SQLite file, `agent.db`, in a 0700 directory, mode 0600.
//!
//! It holds the host identity and key, the pinned operator keys, the op nonces already
//! accepted, the ops the agent has verified and what became of them, the last desired state
//! fetched, the generation actually converged to, and the journal of every step the agent
//! takes on a guest. One file means one transaction can tie facts together: an op's nonce and
//! its authorization are written in the same commit, so a `kill -9` can never leave a burnt
//! nonce without the authorization it paid for (and the op would be lost), or the other way
//! round (and it could run twice).
//!
//! The schema is versioned with `PRAGMA user_version`; migrations are append-only and a file
//! from a newer agent is refused rather than guessed at. Version 3 adds `key_rotation`, the
//! host-key rotation in flight (`key_rotation.rs`); version 4 the backup repository and the
//! backup and restore-test runs (`backup/`, `state_backup.rs`); version 5 the file inbox and
//! outbox (`files/`, `state_files.rs`).

use crate::state_sync::GroupSync;
use mftplus_base::{ensure_private_dir, PrivateFileError};
use mftplus_signing::{NonceStore, NonceStoreError};
use mftplus_types::fleet::DesiredState;
use rusqlite::{params, Connection, OptionalExtension};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use thiserror::Error;

pub const DB_FILE: &str = "agent.db";

/// Each entry moves the schema from version `index` to `index + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    host_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    host_key TEXT NOT NULL,
    operator_keys TEXT NOT NULL,
    server_url TEXT NOT NULL,
    enrolled_at_ms INTEGER NOT NULL
);
CREATE TABLE desired (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL,
    state_json TEXT NOT NULL,
    fetched_at_ms INTEGER NOT NULL
);
CREATE TABLE progress (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    applied_generation INTEGER NOT NULL
);
CREATE TABLE nonces (
    nonce TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL
);
CREATE TABLE ops (
    op_id TEXT PRIMARY KEY,
    blob TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('authorized', 'executed', 'failed', 'acked', 'settled')),
    result_json TEXT,
    verified_at_ms INTEGER NOT NULL,
    finished_at_ms INTEGER
);
CREATE TABLE journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at_ms INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    guest_id TEXT NOT NULL,
    action TEXT NOT NULL,
    op_id TEXT,
    state TEXT NOT NULL CHECK (state IN ('begun', 'done', 'failed', 'interrupted')),
    detail TEXT,
    finished_at_ms INTEGER
);
"#,
    r#"
CREATE TABLE certificate (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    chain_pem TEXT NOT NULL,
    key_pem TEXT NOT NULL,
    ca_pem TEXT NOT NULL,
    serial TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    stored_at_ms INTEGER NOT NULL,
    renew_before INTEGER,
    watch_interval INTEGER
);
"#,
    r#"
CREATE TABLE key_rotation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    idempotency_key TEXT NOT NULL,
    begun_at_ms INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE backup_repository (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    location TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    namespace TEXT NOT NULL,
    wrapped_key TEXT NOT NULL,
    initialised_at_ms INTEGER NOT NULL,
    escrowed_at_ms INTEGER
);
CREATE TABLE backup_runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('backup', 'restore_test')),
    started_at_ms INTEGER NOT NULL,
    finished_at_ms INTEGER,
    state TEXT NOT NULL CHECK (state IN ('running', 'ok', 'failed', 'interrupted')),
    snapshot_id TEXT,
    detail TEXT
);
CREATE INDEX backup_runs_by_target ON backup_runs (target, kind, seq);
"#,
    r#"
CREATE TABLE inbox_items (
    transfer_id TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('placing', 'placed', 'acknowledged')),
    path TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE TABLE outbox_items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    watch TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('sending', 'sent', 'done', 'failed')),
    transfer_id TEXT,
    detail TEXT,
    started_at_ms INTEGER NOT NULL,
    finished_at_ms INTEGER,
    UNIQUE (watch, name, size, mtime_ns)
);
CREATE INDEX outbox_items_open ON outbox_items (watch, state);
"#,
];

/// The schema version this agent writes ([`StateDb::schema_version`] of a file it opened).
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

#[derive(Debug, Error)]
pub enum StateError {
    #[error(transparent)]
    Private(#[from] PrivateFileError),
    #[error("agent state {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "agent state {path} has schema version {found}, newer than this agent knows ({known}); upgrade the agent"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("agent state: {0}")]
    Corrupt(String),
    #[error("agent state {path}: cannot sync to disk: {source}")]
    Sync {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StateError {
    pub fn code(&self) -> &'static str {
        match self {
            StateError::Private(e) => e.code(),
            StateError::Sqlite { .. } | StateError::Sync { .. } => "state_io",
            StateError::TooNew { .. } => "state_too_new",
            StateError::Corrupt(_) => "state_corrupt",
        }
    }
}

/// Who this box is, as enrollment (or re-enrollment) made it.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    pub host_id: String,
    pub customer_id: String,
    pub host_key: mftplus_base::Secret,
    /// `allowed_signers` text.
    pub operator_keys: String,
    pub server_url: String,
    pub enrolled_at_ms: i64,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("host_id", &self.host_id)
            .field("customer_id", &self.customer_id)
            .field("server_url", &self.server_url)
            .finish_non_exhaustive()
    }
}

/// Where a verified op stands on this box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpState {
    /// Signature verified and nonce burnt; the action is still to be done.
    Authorized,
    /// Done; the verdict is not yet known to have reached the cloud.
    Executed,
    /// Could not be done; the verdict is not yet known to have reached the cloud.
    Failed,
    /// The cloud took the `executed` verdict; the next desired state fetched includes it.
    Acked,
    /// Folded into a desired state fetched after the ack: nothing left to do.
    Settled,
}

impl OpState {
    pub fn as_str(self) -> &'static str {
        match self {
            OpState::Authorized => "authorized",
            OpState::Executed => "executed",
            OpState::Failed => "failed",
            OpState::Acked => "acked",
            OpState::Settled => "settled",
        }
    }

    fn parse(text: &str) -> Result<OpState, StateError> {
        Ok(match text {
            "authorized" => OpState::Authorized,
            "executed" => OpState::Executed,
            "failed" => OpState::Failed,
            "acked" => OpState::Acked,
            "settled" => OpState::Settled,
            other => return Err(StateError::Corrupt(format!("op state {other:?}"))),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OpRecord {
    pub op_id: String,
    pub blob: String,
    pub state: OpState,
    pub result: Option<serde_json::Value>,
}

/// One step on a guest, as the journal holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub seq: i64,
    pub generation: u64,
    pub guest_id: String,
    pub action: String,
    pub op_id: Option<String>,
    pub state: String,
    pub detail: Option<String>,
}

pub struct StateDb {
    path: PathBuf,
    conn: Mutex<Connection>,
    group_sync: Arc<GroupSync>,
}

impl StateDb {
    /// Opens (creating when missing) `dir/agent.db`: the directory must be private (0700), the
    /// file is created 0600 and refused when anyone else may read it. With `recover`, marks
    /// journal steps left `begun` by a crash as `interrupted` and returns how many there were
    /// (only the agent that is about to act does that; a look at the state must not).
    pub fn open(dir: &Path) -> Result<(StateDb, usize), StateError> {
        Self::open_with(dir, true)
    }

    /// [`StateDb::open`] without touching the journal: for reading the identity or status.
    pub fn open_to_read(dir: &Path) -> Result<StateDb, StateError> {
        Self::open_with(dir, false).map(|(db, _)| db)
    }

    fn open_with(dir: &Path, recover: bool) -> Result<(StateDb, usize), StateError> {
        ensure_private_dir(dir)?;
        let path = dir.join(DB_FILE);
        if !path.exists() {
            // Created 0600 before SQLite touches it, so it is never readable by others.
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(|source| PrivateFileError::Io {
                    path: path.clone(),
                    source,
                })?;
        }
        mftplus_base::check_private(&path)?;
        let sql = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(sql)?;
        // WAL keeps readers off the writer; FULL makes each commit durable before it returns,
        // which the journal and the nonce store rely on.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
        )
        .map_err(sql)?;
        migrate(&conn, &path)?;
        let interrupted = if recover {
            // A backup cut short by a crash counts as a failed attempt, never as running.
            conn.execute(
                "UPDATE backup_runs SET state = 'interrupted' WHERE state = 'running'",
                [],
            )
            .map_err(sql)?;
            conn.execute(
                "UPDATE journal SET state = 'interrupted' WHERE state = 'begun'",
                [],
            )
            .map_err(sql)?
        } else {
            0
        };
        let db = StateDb {
            group_sync: Arc::new(GroupSync::new(&path)),
            path: path.clone(),
            conn: Mutex::new(conn),
        };
        Ok((db, interrupted))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn group_sync(&self) -> &Arc<GroupSync> {
        &self.group_sync
    }

    pub(crate) fn sql(&self) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        move |source| StateError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The file's `PRAGMA user_version`: [`SCHEMA_VERSION`] once opened (migrated).
    pub fn schema_version(&self) -> Result<u32, StateError> {
        self.conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.sql())
    }

    // ------------------------------------------------------------------ identity

    pub fn identity(&self) -> Result<Option<Identity>, StateError> {
        self.conn()
            .query_row(
                "SELECT host_id, customer_id, host_key, operator_keys, server_url, enrolled_at_ms
                 FROM identity WHERE id = 1",
                [],
                |r| {
                    Ok(Identity {
                        host_id: r.get(0)?,
                        customer_id: r.get(1)?,
                        host_key: mftplus_base::Secret::new(r.get::<_, String>(2)?),
                        operator_keys: r.get(3)?,
                        server_url: r.get(4)?,
                        enrolled_at_ms: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(self.sql())
    }

    /// Stores a new identity. A restore (re-enrollment) also starts from the restore
    /// directive's desired state; either way the previous box's progress is forgotten.
    pub fn set_identity(
        &self,
        identity: &Identity,
        desired: Option<(u64, &DesiredState)>,
    ) -> Result<(), StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        tx.execute(
            "INSERT OR REPLACE INTO identity
             (id, host_id, customer_id, host_key, operator_keys, server_url, enrolled_at_ms)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                identity.host_id,
                identity.customer_id,
                identity.host_key.expose(),
                identity.operator_keys,
                identity.server_url,
                identity.enrolled_at_ms
            ],
        )
        .map_err(self.sql())?;
        tx.execute("DELETE FROM desired", []).map_err(self.sql())?;
        tx.execute("DELETE FROM progress", []).map_err(self.sql())?;
        // A new identity (a restore) starts without the lost box's certificate.
        tx.execute("DELETE FROM certificate", [])
            .map_err(self.sql())?;
        if let Some((generation, state)) = desired {
            let json =
                serde_json::to_string(state).map_err(|e| StateError::Corrupt(e.to_string()))?;
            tx.execute(
                "INSERT INTO desired (id, generation, state_json, fetched_at_ms)
                 VALUES (1, ?1, ?2, ?3)",
                params![generation as i64, json, identity.enrolled_at_ms],
            )
            .map_err(self.sql())?;
        }
        tx.commit().map_err(self.sql())
    }

    // ------------------------------------------------------------------ desired and progress

    /// The last desired state fetched and its generation (`0` and empty before the first).
    pub fn desired(&self) -> Result<(u64, DesiredState), StateError> {
        let row: Option<(i64, String)> = self
            .conn()
            .query_row(
                "SELECT generation, state_json FROM desired WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.sql())?;
        match row {
            None => Ok((0, DesiredState::default())),
            Some((generation, json)) => {
                let state = serde_json::from_str(&json)
                    .map_err(|e| StateError::Corrupt(format!("cached desired state: {e}")))?;
                Ok((generation as u64, state))
            }
        }
    }

    /// Caches a freshly fetched desired state and, in the same commit, settles the ops whose
    /// `executed` verdict the cloud took before this fetch (the fetched state includes them).
    pub fn store_desired(
        &self,
        generation: u64,
        state: &DesiredState,
        now_ms: i64,
    ) -> Result<(), StateError> {
        let json = serde_json::to_string(state).map_err(|e| StateError::Corrupt(e.to_string()))?;
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        tx.execute(
            "INSERT OR REPLACE INTO desired (id, generation, state_json, fetched_at_ms)
             VALUES (1, ?1, ?2, ?3)",
            params![generation as i64, json, now_ms],
        )
        .map_err(self.sql())?;
        tx.execute("UPDATE ops SET state = 'settled' WHERE state = 'acked'", [])
            .map_err(self.sql())?;
        tx.commit().map_err(self.sql())
    }

    pub fn applied_generation(&self) -> Result<u64, StateError> {
        let value: Option<i64> = self
            .conn()
            .query_row(
                "SELECT applied_generation FROM progress WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql())?;
        Ok(value.unwrap_or(0) as u64)
    }

    pub fn set_applied_generation(&self, generation: u64) -> Result<(), StateError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO progress (id, applied_generation) VALUES (1, ?1)",
                params![generation as i64],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    // ------------------------------------------------------------------ ops

    pub fn op(&self, op_id: &str) -> Result<Option<OpRecord>, StateError> {
        let row = self
            .conn()
            .query_row(
                "SELECT op_id, blob, state, result_json FROM ops WHERE op_id = ?1",
                [op_id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(self.sql())?;
        row.map(to_op_record).transpose()
    }

    /// Ops in any of `states`, oldest verification first.
    pub fn ops_in(&self, states: &[OpState]) -> Result<Vec<OpRecord>, StateError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT op_id, blob, state, result_json FROM ops ORDER BY verified_at_ms, op_id",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let record = to_op_record(row)?;
            if states.contains(&record.state) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Moves an op from one of `from` to `to`; `false` when it was in none of them.
    pub fn set_op_state(
        &self,
        op_id: &str,
        from: &[OpState],
        to: OpState,
        result: Option<&serde_json::Value>,
        now_ms: i64,
    ) -> Result<bool, StateError> {
        let conn = self.conn();
        let current: Option<String> = conn
            .query_row("SELECT state FROM ops WHERE op_id = ?1", [op_id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.sql())?;
        let Some(current) = current else {
            return Ok(false);
        };
        if !from.contains(&OpState::parse(&current)?) {
            return Ok(false);
        }
        let result_json = result.map(|v| v.to_string());
        conn.execute(
            "UPDATE ops SET state = ?2, result_json = COALESCE(?3, result_json),
                 finished_at_ms = COALESCE(finished_at_ms, ?4)
             WHERE op_id = ?1",
            params![op_id, to.as_str(), result_json, now_ms],
        )
        .map_err(self.sql())?;
        Ok(true)
    }

    /// The nonce store that authorizes `op_id` (with its `blob`) in the same commit as it
    /// records the nonce; hand it to `mftplus_signing::verify_op`.
    pub fn authorizing<'a>(
        &'a self,
        op_id: &'a str,
        blob: &'a str,
        now_ms: i64,
    ) -> Authorizing<'a> {
        Authorizing {
            db: self,
            op_id,
            blob,
            now_ms,
        }
    }

    // ------------------------------------------------------------------ journal

    /// Writes a step as begun, durably, before the driver is asked to do it.
    pub fn journal_begin(
        &self,
        generation: u64,
        guest_id: &str,
        action: &str,
        op_id: Option<&str>,
        now_ms: i64,
    ) -> Result<i64, StateError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO journal (started_at_ms, generation, guest_id, action, op_id, state)
             VALUES (?1, ?2, ?3, ?4, ?5, 'begun')",
            params![now_ms, generation as i64, guest_id, action, op_id],
        )
        .map_err(self.sql())?;
        Ok(conn.last_insert_rowid())
    }

    pub fn journal_finish(
        &self,
        seq: i64,
        ok: bool,
        detail: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StateError> {
        self.conn()
            .execute(
                "UPDATE journal SET state = ?2, detail = ?3, finished_at_ms = ?4
                 WHERE seq = ?1 AND state = 'begun'",
                params![seq, if ok { "done" } else { "failed" }, detail, now_ms],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    /// Notes what a step in flight is working on, for the step that finishes it after a
    /// crash (a wipe's device, `crate::storage`); the finish replaces it.
    pub fn journal_note(&self, seq: i64, detail: &str) -> Result<(), StateError> {
        self.conn()
            .execute(
                "UPDATE journal SET detail = ?2 WHERE seq = ?1 AND state = 'begun'",
                params![seq, detail],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    /// The newest `limit` journal entries, newest first.
    pub fn journal(&self, limit: u32) -> Result<Vec<JournalEntry>, StateError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT seq, generation, guest_id, action, op_id, state, detail
                 FROM journal ORDER BY seq DESC LIMIT ?1",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([limit], |r| {
                Ok(JournalEntry {
                    seq: r.get(0)?,
                    generation: r.get::<_, i64>(1)? as u64,
                    guest_id: r.get(2)?,
                    action: r.get(3)?,
                    op_id: r.get(4)?,
                    state: r.get(5)?,
                    detail: r.get(6)?,
                })
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())?;
        Ok(rows)
    }

    /// Drops finished journal entries and settled ops older than `before_ms`, and nonces of
    /// ops that expired before `expired_before` (seconds) — they can never be accepted again.
    pub fn prune(&self, before_ms: i64, expired_before: i64) -> Result<(), StateError> {
        let conn = self.conn();
        conn.execute(
            "DELETE FROM journal WHERE state != 'begun' AND started_at_ms < ?1",
            [before_ms],
        )
        .map_err(self.sql())?;
        conn.execute(
            "DELETE FROM ops WHERE state = 'settled' AND verified_at_ms < ?1",
            [before_ms],
        )
        .map_err(self.sql())?;
        conn.execute("DELETE FROM nonces WHERE expires_at < ?1", [expired_before])
            .map_err(self.sql())?;
        // The latest run and the latest success of each kind per target are what the report
        // and the schedule read: they stay whatever their age.
        conn.execute(
            "DELETE FROM backup_runs WHERE state != 'running' AND started_at_ms < ?1 \
             AND seq NOT IN (SELECT MAX(seq) FROM backup_runs GROUP BY target, kind) \
             AND seq NOT IN (SELECT MAX(seq) FROM backup_runs WHERE state = 'ok' GROUP BY target, kind)",
            [before_ms],
        )
        .map_err(self.sql())?;
        Ok(())
    }
}

fn to_op_record(
    (op_id, blob, state, result): (String, String, String, Option<String>),
) -> Result<OpRecord, StateError> {
    Ok(OpRecord {
        op_id,
        blob,
        state: OpState::parse(&state)?,
        result: result.and_then(|text| serde_json::from_str(&text).ok()),
    })
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), StateError> {
    let sql = |source| StateError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql)?;
    let known = SCHEMA_VERSION;
    if version > known {
        return Err(StateError::TooNew {
            path: path.to_path_buf(),
            found: version,
            known,
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let next = index + 1;
        conn.execute_batch(&format!(
            "BEGIN; {migration}; PRAGMA user_version = {next}; COMMIT;"
        ))
        .map_err(sql)?;
    }
    Ok(())
}

/// A [`NonceStore`] whose `record` also writes the op's authorization, in one commit.
pub struct Authorizing<'a> {
    db: &'a StateDb,
    op_id: &'a str,
    blob: &'a str,
    now_ms: i64,
}

impl NonceStore for Authorizing<'_> {
    fn is_seen(&self, nonce: &str) -> Result<bool, NonceStoreError> {
        self.db
            .conn()
            .query_row("SELECT 1 FROM nonces WHERE nonce = ?1", [nonce], |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
            .map_err(|e| NonceStoreError::Io(std::io::Error::other(e)))
    }

    fn record(&mut self, nonce: &str, expires_at: i64, now: i64) -> Result<(), NonceStoreError> {
        let io = |e: rusqlite::Error| NonceStoreError::Io(std::io::Error::other(e));
        let mut conn = self.db.conn();
        let tx = conn.transaction().map_err(io)?;
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO nonces (nonce, expires_at, recorded_at) VALUES (?1, ?2, ?3)",
                params![nonce, expires_at, now],
            )
            .map_err(io)?;
        if inserted == 0 {
            return Err(NonceStoreError::AlreadySeen);
        }
        tx.execute(
            "INSERT INTO ops (op_id, blob, state, verified_at_ms) VALUES (?1, ?2, 'authorized', ?3)",
            params![self.op_id, self.blob, self.now_ms],
        )
        .map_err(io)?;
        tx.commit().map_err(io)
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
