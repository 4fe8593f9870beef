//! `agent.db`'s file inbox and outbox tables: what the agent must remember across a crash so a
//! received file is placed once and acknowledged, and an outbox file is sent once and moved.
//!
//! Inbox: `placing` (the target name is chosen and recorded *before* the file is linked there,
//! so after a crash its presence says the link happened), `placed`, `acknowledged`.
//! Outbox, per file (folder, name, size, modification time): `sending` (with the transfer id
//! once the server made it), `sent` (the server has the whole file), `done` (moved to `sent/`),
//! `failed` (moved to `failed/` with its reason).
//!
//! On disk before the step that depends on them: `placing` (before the link), `sending` with
//! its transfer id (before the transfer is completed), and `failed`; the inbox and outbox
//! record the first two with [`StateDb::record_placing`] and [`StateDb::record_sending`], where
//! several transfers at once share one sync. The others are written unsynced
//! ([`StateDb::write_unsynced`]): when a power cut loses them, recovery finds the state before
//! and redoes the step (the linked file is there; the server says the transfer is complete),
//! and the next synced write makes them durable anyway.

use crate::state::{StateDb, StateError};
use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxState {
    Placing,
    Placed,
    Acknowledged,
}

impl InboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            InboxState::Placing => "placing",
            InboxState::Placed => "placed",
            InboxState::Acknowledged => "acknowledged",
        }
    }

    fn parse(text: &str) -> InboxState {
        match text {
            "placed" => InboxState::Placed,
            "acknowledged" => InboxState::Acknowledged,
            _ => InboxState::Placing,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    Sending,
    Sent,
    Done,
    Failed,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Done => "done",
            OutboxState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> OutboxState {
        match text {
            "sent" => OutboxState::Sent,
            "done" => OutboxState::Done,
            "failed" => OutboxState::Failed,
            _ => OutboxState::Sending,
        }
    }
}

/// One file of an outbox folder, as the agent knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub seq: i64,
    pub watch: String,
    pub name: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub state: OutboxState,
    pub transfer_id: Option<String>,
    pub detail: Option<String>,
}

const OUTBOX_COLUMNS: &str = "seq, watch, name, size, mtime_ns, state, transfer_id, detail";

fn outbox_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxItem> {
    let state: String = row.get(5)?;
    Ok(OutboxItem {
        seq: row.get(0)?,
        watch: row.get(1)?,
        name: row.get(2)?,
        size: row.get::<_, i64>(3)? as u64,
        mtime_ns: row.get(4)?,
        state: OutboxState::parse(&state),
        transfer_id: row.get(6)?,
        detail: row.get(7)?,
    })
}

fn upsert_inbox(
    conn: &Connection,
    transfer_id: &str,
    state: InboxState,
    path: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO inbox_items (transfer_id, state, path, updated_at_ms) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (transfer_id) DO UPDATE SET \
         state = excluded.state, path = excluded.path, updated_at_ms = excluded.updated_at_ms",
        params![transfer_id, state.as_str(), path, now_ms],
    )
    .map(drop)
}

fn update_outbox(
    conn: &Connection,
    seq: i64,
    state: OutboxState,
    transfer_id: Option<&str>,
    detail: Option<&str>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE outbox_items SET state = ?2, transfer_id = ?3, detail = ?4, \
         finished_at_ms = ?5 WHERE seq = ?1",
        params![seq, state.as_str(), transfer_id, detail, now_ms],
    )
    .map(drop)
}

impl StateDb {
    /// The names recorded as `placing`: chosen for a transfer whose link may not have happened
    /// (a crash came between), so no other transfer may take them.
    pub fn placing_inbox_paths(&self) -> Result<Vec<String>, StateError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT path FROM inbox_items WHERE state = 'placing'")
            .map_err(self.sql())?;
        let rows = stmt.query_map([], |row| row.get(0)).map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }

    pub fn inbox_item(
        &self,
        transfer_id: &str,
    ) -> Result<Option<(InboxState, String)>, StateError> {
        self.conn()
            .query_row(
                "SELECT state, path FROM inbox_items WHERE transfer_id = ?1",
                params![transfer_id],
                |row| {
                    let state: String = row.get(0)?;
                    Ok((InboxState::parse(&state), row.get(1)?))
                },
            )
            .optional()
            .map_err(self.sql())
    }

    pub fn set_inbox_item(
        &self,
        transfer_id: &str,
        state: InboxState,
        path: &str,
        now_ms: i64,
    ) -> Result<(), StateError> {
        let write = |conn: &Connection| upsert_inbox(conn, transfer_id, state, path, now_ms);
        match state {
            InboxState::Placing => write(&self.conn()).map_err(self.sql()),
            InboxState::Placed | InboxState::Acknowledged => self.write_unsynced(write),
        }
    }

    /// Records the name a received file is about to be linked under, on disk before it returns;
    /// the sync is shared with the other transfers received at once.
    pub async fn record_placing(
        &self,
        transfer_id: &str,
        path: &str,
        now_ms: i64,
    ) -> Result<(), StateError> {
        self.write_durably(|conn| {
            upsert_inbox(conn, transfer_id, InboxState::Placing, path, now_ms)
        })
        .await
    }

    /// Records the transfer an outbox item is being sent as, on disk before it returns (it must
    /// be before the transfer completes); the sync is shared with the other files sent at once.
    pub async fn record_sending(
        &self,
        seq: i64,
        transfer_id: &str,
        now_ms: i64,
    ) -> Result<(), StateError> {
        self.write_durably(|conn| {
            update_outbox(
                conn,
                seq,
                OutboxState::Sending,
                Some(transfer_id),
                None,
                now_ms,
            )
        })
        .await
    }

    /// The item of this exact file (same folder, name, size and modification time), if known.
    pub fn outbox_item(
        &self,
        watch: &str,
        name: &str,
        size: u64,
        mtime_ns: i64,
    ) -> Result<Option<OutboxItem>, StateError> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox_items \
                     WHERE watch = ?1 AND name = ?2 AND size = ?3 AND mtime_ns = ?4"
                ),
                params![watch, name, size as i64, mtime_ns],
                outbox_from_row,
            )
            .optional()
            .map_err(self.sql())
    }

    /// The items of `watch` a crash may have left between states (`sending`, `sent`).
    pub fn open_outbox_items(&self, watch: &str) -> Result<Vec<OutboxItem>, StateError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox_items \
                 WHERE watch = ?1 AND state IN ('sending', 'sent') ORDER BY seq"
            ))
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![watch], outbox_from_row)
            .map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }

    /// Records a file about to be sent; its item (a new one, the one a crash left in `sending`,
    /// or one handled before and dropped again).
    pub fn begin_outbox_item(
        &self,
        watch: &str,
        name: &str,
        size: u64,
        mtime_ns: i64,
        now_ms: i64,
    ) -> Result<OutboxItem, StateError> {
        // Unsynced: the `sending` write that must come before the transfer completes syncs it.
        self.write_unsynced(|conn| {
            conn.execute(
                // A file handled before and dropped again with the same stamp is a new send.
                "INSERT INTO outbox_items (watch, name, size, mtime_ns, state, started_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, 'sending', ?5) \
                 ON CONFLICT (watch, name, size, mtime_ns) DO UPDATE SET state = 'sending', \
                 transfer_id = NULL, detail = NULL, started_at_ms = excluded.started_at_ms, \
                 finished_at_ms = NULL WHERE state IN ('done', 'failed')",
                params![watch, name, size as i64, mtime_ns, now_ms],
            )
        })?;
        self.outbox_item(watch, name, size, mtime_ns)?
            .ok_or_else(|| StateError::Corrupt("an outbox item vanished".into()))
    }

    pub fn set_outbox_item(
        &self,
        seq: i64,
        state: OutboxState,
        transfer_id: Option<&str>,
        detail: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StateError> {
        let write =
            |conn: &Connection| update_outbox(conn, seq, state, transfer_id, detail, now_ms);
        match state {
            OutboxState::Sending | OutboxState::Failed => write(&self.conn()).map_err(self.sql()),
            OutboxState::Sent | OutboxState::Done => self.write_unsynced(write),
        }
    }

    /// The latest outbox items, newest first (for `mftplus agent status`).
    pub fn recent_outbox_items(&self, limit: u32) -> Result<Vec<OutboxItem>, StateError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox_items ORDER BY seq DESC LIMIT ?1"
            ))
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![limit], outbox_from_row)
            .map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }
}
