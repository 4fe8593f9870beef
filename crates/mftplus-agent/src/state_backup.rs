//! `agent.db`'s backup tables: the repository this box backs up to (with its wrapped key until
//! the cloud has taken the escrow) and every backup and restore-test run, so the report can
//! say what happened last even after a restart, and a run cut short by a crash is known.

use crate::state::{StateDb, StateError};
use rusqlite::{params, OptionalExtension};

/// The repository this box was set up with (`mftplus agent backup init`, or a restore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryRecord {
    /// Where it was when initialised (a path or a restic location).
    pub location: String,
    /// restic's repository id: a different repository at the same location is refused.
    pub fingerprint: String,
    /// The restic host name this box's snapshots carry.
    pub namespace: String,
    /// The repository key wrapped with the customer's recovery code: what the cloud escrows.
    pub wrapped_key: String,
    pub initialised_at_ms: i64,
    /// When the cloud took the escrow; `None` while it is still owed.
    pub escrowed_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Backup,
    RestoreTest,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Backup => "backup",
            RunKind::RestoreTest => "restore_test",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Ok,
    Failed,
    /// The agent stopped while it ran (a crash or `kill -9`): a failed attempt.
    Interrupted,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Ok => "ok",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
        }
    }

    fn parse(text: &str) -> RunState {
        match text {
            "running" => RunState::Running,
            "ok" => RunState::Ok,
            "interrupted" => RunState::Interrupted,
            _ => RunState::Failed,
        }
    }
}

/// One backup or restore-test run of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub seq: i64,
    pub target: String,
    pub kind: RunKind,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub state: RunState,
    pub snapshot_id: Option<String>,
    pub detail: Option<String>,
}

/// What the scheduler and the report need of one target's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetHistory {
    pub last_backup: Option<RunRecord>,
    pub last_ok_backup: Option<RunRecord>,
    pub last_restore_test: Option<RunRecord>,
}

const RUN_COLUMNS: &str =
    "seq, target, kind, started_at_ms, finished_at_ms, state, snapshot_id, detail";

fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    let kind: String = row.get(2)?;
    let state: String = row.get(5)?;
    Ok(RunRecord {
        seq: row.get(0)?,
        target: row.get(1)?,
        kind: if kind == "restore_test" {
            RunKind::RestoreTest
        } else {
            RunKind::Backup
        },
        started_at_ms: row.get(3)?,
        finished_at_ms: row.get(4)?,
        state: RunState::parse(&state),
        snapshot_id: row.get(6)?,
        detail: row.get(7)?,
    })
}

impl StateDb {
    pub fn backup_repository(&self) -> Result<Option<RepositoryRecord>, StateError> {
        self.conn()
            .query_row(
                "SELECT location, fingerprint, namespace, wrapped_key, initialised_at_ms, \
                 escrowed_at_ms FROM backup_repository WHERE id = 1",
                [],
                |row| {
                    Ok(RepositoryRecord {
                        location: row.get(0)?,
                        fingerprint: row.get(1)?,
                        namespace: row.get(2)?,
                        wrapped_key: row.get(3)?,
                        initialised_at_ms: row.get(4)?,
                        escrowed_at_ms: row.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(self.sql())
    }

    pub fn set_backup_repository(&self, record: &RepositoryRecord) -> Result<(), StateError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO backup_repository (id, location, fingerprint, namespace, \
                 wrapped_key, initialised_at_ms, escrowed_at_ms) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    record.location,
                    record.fingerprint,
                    record.namespace,
                    record.wrapped_key,
                    record.initialised_at_ms,
                    record.escrowed_at_ms
                ],
            )
            .map(drop)
            .map_err(self.sql())
    }

    pub fn mark_escrowed(&self, at_ms: i64) -> Result<(), StateError> {
        self.conn()
            .execute(
                "UPDATE backup_repository SET escrowed_at_ms = ?1 WHERE id = 1",
                params![at_ms],
            )
            .map(drop)
            .map_err(self.sql())
    }

    /// Records that a run started; the returned sequence number finishes it.
    pub fn begin_backup_run(
        &self,
        target: &str,
        kind: RunKind,
        now_ms: i64,
    ) -> Result<i64, StateError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO backup_runs (target, kind, started_at_ms, state) VALUES (?1, ?2, ?3, 'running')",
            params![target, kind.as_str(), now_ms],
        )
        .map_err(self.sql())?;
        Ok(conn.last_insert_rowid())
    }

    pub fn finish_backup_run(
        &self,
        seq: i64,
        state: RunState,
        snapshot_id: Option<&str>,
        detail: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StateError> {
        self.conn()
            .execute(
                "UPDATE backup_runs SET state = ?2, snapshot_id = ?3, detail = ?4, \
                 finished_at_ms = ?5 WHERE seq = ?1",
                params![seq, state.as_str(), snapshot_id, detail, now_ms],
            )
            .map(drop)
            .map_err(self.sql())
    }

    /// The last runs of `target` the scheduler and the report look at.
    pub fn target_history(&self, target: &str) -> Result<TargetHistory, StateError> {
        let conn = self.conn();
        let last = |filter: &str| -> Result<Option<RunRecord>, StateError> {
            conn.query_row(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM backup_runs WHERE target = ?1 AND {filter} \
                     ORDER BY seq DESC LIMIT 1"
                ),
                params![target],
                run_from_row,
            )
            .optional()
            .map_err(self.sql())
        };
        Ok(TargetHistory {
            last_backup: last("kind = 'backup' AND state != 'running'")?,
            last_ok_backup: last("kind = 'backup' AND state = 'ok'")?,
            last_restore_test: last("kind = 'restore_test' AND state != 'running'")?,
        })
    }

    /// The latest runs of every target, newest first (for `mftplus agent backup status`).
    pub fn recent_backup_runs(&self, limit: u32) -> Result<Vec<RunRecord>, StateError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM backup_runs ORDER BY seq DESC LIMIT ?1"
            ))
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![limit], run_from_row)
            .map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }
}
