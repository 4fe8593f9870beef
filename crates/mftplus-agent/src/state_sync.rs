//! How `agent.db` writes reach the disk. Every commit is synced by default (`synchronous =
//! FULL`). Two cheaper ways for the file inbox and outbox, where several transfers run at once
//! and each used to wait for its own sync while holding the connection:
//!
//! - [`StateDb::write_unsynced`]: no sync at all, for states recovery rebuilds when a power cut
//!   loses them;
//! - [`StateDb::write_durably`]: group commit. The write is committed without a sync, then the
//!   caller waits for one sync of the write-ahead log that covers it: the first waiter syncs
//!   for everyone who wrote before it started, the others find their write already covered.
//!   Sound because SQLite appends each commit's frames to `agent.db-wal` with write(2) before
//!   the commit returns, and recovery replays every committed frame found there; syncing that
//!   file is exactly what `FULL` does after each commit, done once for many.

use crate::state::{StateDb, StateError};
use rusqlite::Connection;
use std::fs::File;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The group-commit bookkeeping of one connection.
pub(crate) struct GroupSync {
    wal: PathBuf,
    /// Writes committed without a sync so far; each is numbered under the connection lock, so
    /// every number up to this one is already in the log file.
    written: AtomicU64,
    /// How far the log is known synced, and whether its directory entry has been synced.
    synced: Mutex<Synced>,
}

#[derive(Default)]
struct Synced {
    through: u64,
    directory: bool,
}

impl GroupSync {
    pub(crate) fn new(db_path: &std::path::Path) -> GroupSync {
        let mut wal = db_path.as_os_str().to_os_string();
        wal.push("-wal");
        GroupSync {
            wal: PathBuf::from(wal),
            written: AtomicU64::new(0),
            synced: Mutex::new(Synced::default()),
        }
    }

    /// Returns once the log is synced at least through write `ticket`.
    fn sync_through(&self, ticket: u64) -> std::io::Result<()> {
        let mut synced = self
            .synced
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if synced.through >= ticket {
            return Ok(());
        }
        let upto = self.written.load(Ordering::SeqCst);
        match File::open(&self.wal) {
            Ok(log) => log.sync_data()?,
            // No log: a checkpoint moved everything into the database file and synced it.
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        if !synced.directory {
            // The log may have been created by an unsynced write: make its name durable too.
            if let Some(dir) = self.wal.parent() {
                File::open(dir)?.sync_all()?;
            }
            synced.directory = true;
        }
        synced.through = upto;
        Ok(())
    }
}

impl StateDb {
    /// Runs `write` with a commit that is not synced to disk: it survives the agent's crash but
    /// not the machine's, until the next synced commit, whose sync covers it (the log is
    /// appended in order). For states that recovery rebuilds when they are lost.
    pub(crate) fn write_unsynced<T>(
        &self,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StateError> {
        self.write_numbered(write).map(|(value, _)| value)
    }

    /// Runs `write` and returns once it is on disk, sharing one sync with every write made
    /// meanwhile (group commit). The sync runs off the async thread, so the other transfers
    /// go on (and write) while it waits for the disk.
    pub(crate) async fn write_durably<T>(
        &self,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StateError> {
        let (value, ticket) = self.write_numbered(write)?;
        let group = Arc::clone(self.group_sync());
        let synced = tokio::task::spawn_blocking(move || group.sync_through(ticket))
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())));
        synced.map_err(|source| StateError::Sync {
            path: self.path().to_path_buf(),
            source,
        })?;
        Ok(value)
    }

    /// `write`, committed without a sync, and its number among such writes.
    fn write_numbered<T>(
        &self,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<(T, u64), StateError> {
        let conn = self.conn();
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(self.sql())?;
        let written = write(&conn);
        // Every other write relies on FULL: restored before the lock is let go.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(self.sql())?;
        let value = written.map_err(self.sql())?;
        let ticket = self.group_sync().written.fetch_add(1, Ordering::SeqCst) + 1;
        Ok((value, ticket))
    }
}

#[cfg(test)]
mod tests {
    use crate::state::StateDb;
    use crate::state_files::{InboxState, OutboxState};
    use std::sync::atomic::Ordering;

    #[tokio::test(flavor = "current_thread")]
    async fn writes_made_at_once_are_all_recorded_and_covered_by_a_sync() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = StateDb::open(&dir.path().join("state")).unwrap();
        let items: Vec<_> = (0..16)
            .map(|i| {
                db.begin_outbox_item("w", &format!("f{i}"), 1, 1, 0)
                    .unwrap()
            })
            .collect();
        let ids: Vec<String> = items.iter().map(|i| format!("t{}", i.seq)).collect();
        let writes = items
            .iter()
            .zip(&ids)
            .map(|(item, id)| db.record_sending(item.seq, id, 1));
        futures_util::future::try_join_all(writes).await.unwrap();

        let group = db.group_sync();
        let through = group.synced.lock().unwrap().through;
        assert_eq!(through, group.written.load(Ordering::SeqCst));
        assert!(
            through >= 32,
            "16 begun and 16 sending writes, numbered: {through}"
        );
        for (item, id) in items.iter().zip(&ids) {
            let back = db.outbox_item("w", &item.name, 1, 1).unwrap().unwrap();
            assert_eq!(back.state, OutboxState::Sending);
            assert_eq!(back.transfer_id.as_deref(), Some(id.as_str()));
        }
        let synchronous: i64 = db
            .conn()
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "FULL again for every other write");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn names_still_placing_are_listed_placed_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = StateDb::open(&dir.path().join("state")).unwrap();
        db.record_placing("t1", "/in/a.csv", 1).await.unwrap();
        db.record_placing("t2", "/in/b.csv", 1).await.unwrap();
        db.set_inbox_item("t2", InboxState::Placed, "/in/b.csv", 2)
            .unwrap();
        assert_eq!(
            db.placing_inbox_paths().unwrap(),
            vec!["/in/a.csv".to_string()]
        );
    }
}
