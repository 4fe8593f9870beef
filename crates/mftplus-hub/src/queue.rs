//! The offline queue's rows in `hub.db`: writes accepted while the cloud was unreachable, in
//! arrival order (`seq`), each with the idempotency key it will be replayed under and the
//! agent's bearer token sealed (the replay must authenticate as the agent did).
//!
//! Inserts go through one writer thread that commits whatever has piled up in one transaction
//! (group commit): a hundred agents reporting during an outage cost one fsync per batch, not
//! one each.
//!
//! Each row also keeps the agent's address (schema 3), so the replay is attributed to the
//! agent rather than to the hub. It travels beside [`QueuedWrite`] rather than in it, so code
//! that builds a `QueuedWrite` (the queue benchmark) keeps compiling.

use crate::auth_cache::{token_hash, OfflineError, Sealer};
use rusqlite::{params, Connection};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// One write to replay.
#[derive(Debug, Clone)]
pub struct QueuedWrite {
    pub route: String,
    pub token: String,
    pub idempotency_key: String,
    pub body: Vec<u8>,
    pub enqueued_at_ms: i64,
    /// The client certificate the hub verified and forwards (base64 DER), if any.
    pub client_cert: Option<String>,
}

/// A stored row, token opened.
#[derive(Debug, Clone)]
pub struct QueuedRow {
    pub seq: i64,
    pub write: QueuedWrite,
    /// The agent's address when the hub took the write; `None` for rows an older hub queued.
    pub client_addr: Option<IpAddr>,
}

struct Pending {
    write: QueuedWrite,
    client_addr: Option<IpAddr>,
    done: oneshot::Sender<Result<(), String>>,
}

/// Sends writes to the group-commit thread.
#[derive(Clone)]
pub struct Enqueuer {
    tx: mpsc::Sender<Pending>,
}

const MAX_BATCH: usize = 512;

impl Enqueuer {
    /// Starts the writer on its own thread (SQLite calls block).
    pub fn start(conn: Arc<Mutex<Connection>>, sealer: Arc<Sealer>) -> Enqueuer {
        let (tx, mut rx) = mpsc::channel::<Pending>(4096);
        std::thread::Builder::new()
            .name("hub-queue-writer".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(more) => batch.push(more),
                            Err(_) => break,
                        }
                    }
                    let result = insert_batch(&conn, &sealer, &batch).map_err(|e| e.to_string());
                    for pending in batch {
                        let _ = pending.done.send(result.clone());
                    }
                }
            })
            .expect("spawn the queue writer thread");
        Enqueuer { tx }
    }

    /// Returns once the row is committed.
    pub async fn enqueue(&self, write: QueuedWrite) -> Result<(), String> {
        self.enqueue_from(write, None).await
    }

    /// Like [`Enqueuer::enqueue`], recording the address of the agent that sent the write.
    pub async fn enqueue_from(
        &self,
        write: QueuedWrite,
        client_addr: Option<IpAddr>,
    ) -> Result<(), String> {
        let (done, committed) = oneshot::channel();
        self.tx
            .send(Pending {
                write,
                client_addr,
                done,
            })
            .await
            .map_err(|_| "the queue writer stopped".to_string())?;
        committed
            .await
            .map_err(|_| "the queue writer stopped".to_string())?
    }
}

fn insert_batch(
    conn: &Mutex<Connection>,
    sealer: &Sealer,
    batch: &[Pending],
) -> Result<(), OfflineError> {
    let mut conn = mftplus_base::sync::lock(conn);
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO queue (route, credential, idempotency_key, body, enqueued_at_ms, \
             client_cert, client_addr) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for Pending {
            write, client_addr, ..
        } in batch
        {
            let credential =
                sealer.seal(write.token.as_bytes(), write.idempotency_key.as_bytes())?;
            insert.execute(params![
                write.route,
                credential,
                write.idempotency_key,
                write.body,
                write.enqueued_at_ms,
                write.client_cert,
                client_addr.map(|ip| ip.to_string())
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub fn count(conn: &Mutex<Connection>) -> Result<u64, OfflineError> {
    let conn = mftplus_base::sync::lock(conn);
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM queue", [], |r| r.get(0))?;
    Ok(n as u64)
}

/// The oldest `limit` rows. A row whose token no longer opens (the deploy key changed) comes
/// back with an empty token: the cloud refuses it and the replay drops it.
pub fn oldest(
    conn: &Mutex<Connection>,
    sealer: &Sealer,
    limit: usize,
) -> Result<Vec<QueuedRow>, OfflineError> {
    let conn = mftplus_base::sync::lock(conn);
    let mut stmt = conn.prepare_cached(
        "SELECT seq, route, credential, idempotency_key, body, enqueued_at_ms, client_cert, \
         client_addr FROM queue ORDER BY seq LIMIT ?1",
    )?;
    let rows = stmt.query_map(params![limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Vec<u8>>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<String>>(7)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, route, credential, idempotency_key, body, enqueued_at_ms, client_cert, addr) =
            row?;
        let token = sealer
            .open(&credential, idempotency_key.as_bytes())
            .and_then(|t| String::from_utf8(t).ok())
            .unwrap_or_default();
        out.push(QueuedRow {
            seq,
            write: QueuedWrite {
                route,
                token,
                idempotency_key,
                body,
                enqueued_at_ms,
                client_cert,
            },
            client_addr: addr.and_then(|a| a.parse().ok()),
        });
    }
    Ok(out)
}

pub fn delete(conn: &Mutex<Connection>, seq: i64) -> Result<(), OfflineError> {
    let conn = mftplus_base::sync::lock(conn);
    conn.execute("DELETE FROM queue WHERE seq = ?1", params![seq])?;
    Ok(())
}

/// Used when the cloud refused a token: its hash, for evicting it from the auth cache.
pub fn hash_of(write: &QueuedWrite) -> String {
    token_hash(&write.token)
}
