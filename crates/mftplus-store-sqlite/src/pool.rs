//! A tiny blocking connection pool driven from async code.
//!
//! SQLite calls block, so every call runs on tokio's blocking pool; waiting for a free
//! connection happens on a semaphore instead, so a queue of callers costs no threads.

use std::sync::{Arc, Mutex};

use mftplus_store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::Semaphore;

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
            f(conn)
        })
        .await
        .map_err(|err| StoreError::Backend(format!("database task failed: {err}")))?
    }
}
