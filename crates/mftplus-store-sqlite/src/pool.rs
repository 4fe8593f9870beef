//! A tiny blocking connection pool driven from async code.
//!
//! SQLite calls block, so every call runs on tokio's blocking pool; waiting for a free
//! connection happens on a semaphore instead, so a queue of callers costs no threads.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mftplus_store::statements::StatementLog;
use mftplus_store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::Semaphore;

thread_local! {
    /// The log SQLite's profile hook writes to while `recorded` runs on this thread. The hook
    /// is a plain function (SQLite calls it with no context of ours), so the log travels here.
    static RECORDING: RefCell<Option<Arc<StatementLog>>> = const { RefCell::new(None) };
}

/// SQLite calls this as each statement of the connection finishes, with the statement's SQL
/// text (parameters not expanded) and how long it ran.
fn on_statement(sql: &str, took: Duration) {
    RECORDING.with(|slot| {
        if let Some(log) = slot.borrow().as_ref() {
            log.push(sql, took);
        }
    });
}

/// Runs `f` with SQLite's profile hook reporting to `log`, and removes the hook afterwards,
/// panic or not: connections go back to the pool unhooked, so nobody else pays for it.
fn recorded<T>(
    conn: &mut Connection,
    log: Arc<StatementLog>,
    f: impl FnOnce(&mut Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    struct Unhook<'a>(&'a mut Connection);
    impl Drop for Unhook<'_> {
        fn drop(&mut self) {
            self.0.profile(None);
            RECORDING.with(|slot| slot.borrow_mut().take());
        }
    }
    RECORDING.with(|slot| *slot.borrow_mut() = Some(log));
    conn.profile(Some(on_statement));
    let guard = Unhook(conn);
    f(&mut *guard.0)
}

pub(crate) struct Pool {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

/// Puts the connection back even if the closure panicked, so the pool never shrinks below the
/// number of permits.
struct Checkout<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = self
                .pool
                .idle
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            idle.push(conn);
        }
    }
}

impl Pool {
    pub(crate) fn new(conns: Vec<Connection>) -> Arc<Pool> {
        let permits = Arc::new(Semaphore::new(conns.len()));
        Arc::new(Pool {
            idle: Mutex::new(conns),
            permits,
        })
    }

    /// Runs `f` on a free connection of this pool, on the blocking thread pool.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend("connection pool closed".into()))?;
        let pool = self.clone();
        // The recording scope is the caller's task; the statements run on a blocking thread.
        let log = mftplus_store::statements::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = pool
                .idle
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .pop()
                .ok_or_else(|| StoreError::Backend("connection pool is empty".into()))?;
            let mut checkout = Checkout {
                pool: &pool,
                conn: Some(conn),
            };
            let conn = checkout.conn.as_mut().expect("set just above");
            match log {
                None => f(conn),
                Some(log) => recorded(conn, log, f),
            }
        })
        .await
        .map_err(|err| StoreError::Backend(format!("database task failed: {err}")))?
    }
}
