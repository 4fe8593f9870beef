//! Host-key rotation (`mftplus agent rotate-key`, `docs/key-rotation.md`): the box gets a new
//! host key from the cloud, and the old one keeps working there until the rotation's grace
//! ends, so nothing already on its way (a report in flight, a write queued on an edge hub) is
//! refused.
//!
//! Crash safety comes from the order of the durable writes. The call's `Idempotency-Key` is
//! committed to `agent.db` (`key_rotation`, synchronous) *before* the call; the new key and
//! the end of the rotation are committed together when the answer arrives. A box that dies in
//! between finds the rotation still pending at its next start (the agent loop looks every
//! cycle) and repeats the call with its old key, still valid during the grace, and the same
//! idempotency key: the cloud answers with the same new key. Two processes finishing the same
//! rotation (the command and a running agent) store the same key once.

use crate::state::{StateDb, StateError};
use mftplus_client::{AgentClient, ClientError};
use rusqlite::{params, OptionalExtension};

/// A rotation the box asked for and has not finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRotation {
    pub idempotency_key: String,
    pub begun_at_ms: i64,
}

/// What the cloud answered, without the key (it is in `agent.db` only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// RFC 3339: when the old key stops working at the cloud.
    pub previous_key_valid_until: String,
    /// The call repeated an earlier one whose answer was lost.
    pub repeated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    State(#[from] StateError),
    /// Worth trying again later (unreachable, 5xx, the hub could not reach the cloud): the
    /// rotation stays pending.
    #[error("cannot rotate the host key now: {}", .0.message())]
    Retry(ClientError),
    /// The cloud will never finish this rotation (the old key was replaced by another call,
    /// re-enrolled, or its grace is over): the pending rotation is dropped.
    #[error("the server refused the host key rotation: {} [{}]", .0.message(), .0.code())]
    Refused(ClientError),
}

impl RotateError {
    pub fn code(&self) -> &str {
        match self {
            RotateError::State(e) => e.code(),
            RotateError::Retry(e) | RotateError::Refused(e) => e.code(),
        }
    }
}

impl StateDb {
    /// The rotation in flight, if any.
    pub fn pending_key_rotation(&self) -> Result<Option<PendingRotation>, StateError> {
        self.conn()
            .query_row(
                "SELECT idempotency_key, begun_at_ms FROM key_rotation WHERE id = 1",
                [],
                |r| {
                    Ok(PendingRotation {
                        idempotency_key: r.get(0)?,
                        begun_at_ms: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(self.sql())
    }

    /// The pending rotation, or a new one with a fresh idempotency key, committed before the
    /// caller asks the cloud.
    pub fn begin_key_rotation(&self, now_ms: i64) -> Result<PendingRotation, StateError> {
        let fresh = PendingRotation {
            idempotency_key: format!("key-rotation-{}", random_token()),
            begun_at_ms: now_ms,
        };
        self.conn()
            .execute(
                "INSERT OR IGNORE INTO key_rotation (id, idempotency_key, begun_at_ms)
                 VALUES (1, ?1, ?2)",
                params![fresh.idempotency_key, fresh.begun_at_ms],
            )
            .map_err(self.sql())?;
        self.pending_key_rotation()?
            .ok_or_else(|| StateError::Corrupt("the key rotation just begun is gone".into()))
    }

    /// Stores the new key and ends the rotation in one commit; `false` (nothing written) when
    /// that rotation was already finished, by this process or another.
    pub fn finish_key_rotation(
        &self,
        idempotency_key: &str,
        new_key: &str,
    ) -> Result<bool, StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.sql())?;
        let ended = tx
            .execute(
                "DELETE FROM key_rotation WHERE id = 1 AND idempotency_key = ?1",
                params![idempotency_key],
            )
            .map_err(self.sql())?;
        if ended == 0 {
            return Ok(false);
        }
        let updated = tx
            .execute(
                "UPDATE identity SET host_key = ?1 WHERE id = 1",
                params![new_key],
            )
            .map_err(self.sql())?;
        if updated == 0 {
            return Err(StateError::Corrupt(
                "no identity to store the new key in".into(),
            ));
        }
        tx.commit().map_err(self.sql())?;
        Ok(true)
    }

    /// Drops a rotation the cloud will never finish.
    pub fn abandon_key_rotation(&self, idempotency_key: &str) -> Result<(), StateError> {
        self.conn()
            .execute(
                "DELETE FROM key_rotation WHERE id = 1 AND idempotency_key = ?1",
                params![idempotency_key],
            )
            .map(|_| ())
            .map_err(self.sql())
    }
}

/// 32 random hex characters (128 bits): the rotation's idempotency key.
fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0_u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Rotates the host key, or finishes the rotation already pending. `client` must carry the key
/// stored in `db` now (the old one).
pub async fn rotate(
    db: &StateDb,
    client: &AgentClient,
    host_id: &str,
    now_ms: i64,
) -> Result<Rotated, RotateError> {
    let pending = db.begin_key_rotation(now_ms)?;
    finish(db, client, host_id, &pending).await
}

/// Repeats the pending rotation's call, if there is one; `None` when there is none.
pub async fn resume(
    db: &StateDb,
    client: &AgentClient,
    host_id: &str,
) -> Result<Option<Rotated>, RotateError> {
    match db.pending_key_rotation()? {
        Some(pending) => finish(db, client, host_id, &pending).await.map(Some),
        None => Ok(None),
    }
}

async fn finish(
    db: &StateDb,
    client: &AgentClient,
    host_id: &str,
    pending: &PendingRotation,
) -> Result<Rotated, RotateError> {
    match client
        .rotate_host_key(host_id, &pending.idempotency_key)
        .await
    {
        Ok(answer) => {
            db.finish_key_rotation(&pending.idempotency_key, &answer.host_key)?;
            Ok(Rotated {
                previous_key_valid_until: answer.previous_key_valid_until,
                repeated: answer.repeated,
            })
        }
        Err(err) if final_refusal(&err) => {
            db.abandon_key_rotation(&pending.idempotency_key)?;
            Err(RotateError::Refused(err))
        }
        Err(err) => Err(RotateError::Retry(err)),
    }
}

/// A 401 (the key is unknown or past its grace) or a 409 `key_rotated` (replaced by another
/// call) will not change by asking again; certificate refusals and everything else might.
fn final_refusal(err: &ClientError) -> bool {
    match err.status() {
        Some(401) => !err.code().starts_with("certificate_"),
        Some(409) => err.code() == mftplus_types::ErrorCode::KeyRotated.as_str(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Identity;

    fn enrolled() -> (tempfile::TempDir, StateDb) {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let (db, _) = StateDb::open(&state).unwrap();
        db.set_identity(
            &Identity {
                host_id: "h-1".into(),
                customer_id: "c-1".into(),
                host_key: mftplus_base::Secret::new("mfth_old".to_string()),
                operator_keys: String::new(),
                server_url: "http://cloud".into(),
                enrolled_at_ms: 1,
            },
            None,
        )
        .unwrap();
        (dir, db)
    }

    fn key(db: &StateDb) -> String {
        db.identity()
            .unwrap()
            .unwrap()
            .host_key
            .expose()
            .to_string()
    }

    #[test]
    fn a_rotation_is_pending_until_finished_once_with_its_own_key() {
        let (_dir, db) = enrolled();
        assert_eq!(db.pending_key_rotation().unwrap(), None);
        let begun = db.begin_key_rotation(10).unwrap();
        assert!(begun.idempotency_key.starts_with("key-rotation-"));
        assert_eq!(begun.begun_at_ms, 10);
        // Beginning again resumes the same rotation (the same idempotency key).
        assert_eq!(db.begin_key_rotation(20).unwrap(), begun);
        assert!(!db.finish_key_rotation("another", "mfth_x").unwrap());
        assert_eq!(
            key(&db),
            "mfth_old",
            "another rotation's answer is not stored"
        );
        assert!(db
            .finish_key_rotation(&begun.idempotency_key, "mfth_new")
            .unwrap());
        assert_eq!(key(&db), "mfth_new");
        assert_eq!(db.pending_key_rotation().unwrap(), None);
        assert!(!db
            .finish_key_rotation(&begun.idempotency_key, "mfth_new")
            .unwrap());
        let next = db.begin_key_rotation(30).unwrap();
        assert_ne!(next.idempotency_key, begun.idempotency_key);
        db.abandon_key_rotation(&next.idempotency_key).unwrap();
        assert_eq!(db.pending_key_rotation().unwrap(), None);
        assert_eq!(key(&db), "mfth_new");
    }

    #[test]
    fn a_pending_rotation_survives_reopening() {
        let (dir, db) = enrolled();
        let begun = db.begin_key_rotation(10).unwrap();
        drop(db);
        let db = StateDb::open_to_read(&dir.path().join("state")).unwrap();
        assert_eq!(db.pending_key_rotation().unwrap(), Some(begun));
    }
}
