//! Re-sealing `hub.db` after a deploy-key rotation (`docs/key-rotation.md`).
//!
//! Every secret in `hub.db` is sealed under a key derived from the deploy key (`auth_cache.rs`),
//! so a hub restarted with a rotated key would no longer open its auth cache, its kept control
//! envelopes or the tokens of the writes it queued and acknowledged. Started with the new key
//! in `HUB_REGISTRATION_KEY` and the old one in `HUB_PREVIOUS_REGISTRATION_KEY`, the hub opens
//! every row the old key seals and seals it again under the new one, all in one transaction
//! before it serves: a crash half-way leaves the file as it was, and running it again (the
//! previous key still configured) skips what the new key already opens. Nothing is decrypted
//! anywhere but in memory, and the salt stays, so other rows are untouched.

use crate::auth_cache::{OfflineError, Sealer};
use rusqlite::{params, Connection, Transaction};

/// What a rewrap did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rewrapped {
    /// Rows opened with the previous key and sealed under the new one.
    pub resealed: u64,
    /// Rows the new key already opened.
    pub current: u64,
    /// Rows neither key opens (sealed under an even older key): left as they are, ignored as
    /// before.
    pub unreadable: u64,
}

/// The sealer of `secret` for this file (its salt).
pub fn sealer_for(conn: &Connection, secret: &str) -> Result<Sealer, OfflineError> {
    let salt: Vec<u8> = conn.query_row("SELECT value FROM meta WHERE name = 'salt'", [], |r| {
        r.get(0)
    })?;
    Ok(Sealer::derive(secret.as_bytes(), &salt))
}

/// Re-seals every sealed value `from` opens under `to`, in one transaction.
pub fn rewrap(
    conn: &mut Connection,
    from: &Sealer,
    to: &Sealer,
) -> Result<Rewrapped, OfflineError> {
    let tx = conn.transaction()?;
    let mut done = Rewrapped::default();
    for table in TABLES {
        table.rewrap(&tx, from, to, &mut done)?;
    }
    tx.commit()?;
    Ok(done)
}

/// A table with a sealed column, and how each row binds its sealed value (the associated data
/// it was sealed with, which must match `auth_cache.rs` and `queue.rs`).
struct SealedTable {
    name: &'static str,
    /// The row's key.
    key: &'static str,
    sealed: &'static str,
    /// The column whose value is the associated data, with this prefix.
    bound_to: &'static str,
    prefix: &'static str,
}

const TABLES: [SealedTable; 4] = [
    SealedTable {
        name: "auth_cache",
        key: "token_hash",
        sealed: "sealed",
        bound_to: "token_hash",
        prefix: "",
    },
    SealedTable {
        name: "envelopes",
        key: "token_hash",
        sealed: "sealed",
        bound_to: "token_hash",
        prefix: "envelope:",
    },
    SealedTable {
        name: "queue",
        key: "seq",
        sealed: "credential",
        bound_to: "idempotency_key",
        prefix: "",
    },
    SealedTable {
        name: "dead_letter",
        key: "seq",
        sealed: "credential",
        bound_to: "idempotency_key",
        prefix: "",
    },
];

impl SealedTable {
    fn rewrap(
        &self,
        tx: &Transaction<'_>,
        from: &Sealer,
        to: &Sealer,
        done: &mut Rewrapped,
    ) -> Result<(), OfflineError> {
        let SealedTable {
            name,
            key,
            sealed,
            bound_to,
            prefix,
        } = self;
        let rows: Vec<(rusqlite::types::Value, String, Vec<u8>)> = {
            let mut stmt =
                tx.prepare(&format!("SELECT {key}, {bound_to}, {sealed} FROM {name}"))?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut update =
            tx.prepare(&format!("UPDATE {name} SET {sealed} = ?2 WHERE {key} = ?1"))?;
        for (id, binding, value) in rows {
            let aad = format!("{prefix}{binding}").into_bytes();
            if to.open(&value, &aad).is_some() {
                done.current += 1;
                continue;
            }
            let Some(plain) = from.open(&value, &aad) else {
                done.unreadable += 1;
                continue;
            };
            update.execute(params![id, to.seal(&plain, &aad)?])?;
            done.resealed += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth_cache::{open_db, AuthCache};
    use std::sync::Mutex;
    use std::time::Duration;

    const OLD: &str = "mft_dep_old_0123456789abcdefghijABCDEFGHIJ012345";
    const NEW: &str = "mft_dep_new_0123456789abcdefghijABCDEFGHIJ012345";

    #[test]
    fn rows_sealed_under_the_old_key_open_under_the_new_one_afterwards() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, old) = open_db(dir.path(), OLD).unwrap();
        let conn = Mutex::new(conn);
        let cache = AuthCache {
            conn: &conn,
            sealer: &old,
            ttl: Duration::from_secs(3600),
        };
        cache.remember("tok", "/api/v1/host-report", 1_000).unwrap();
        cache
            .remember_envelope(&crate::auth_cache::token_hash("tok"), b"{\"blocked\":true}")
            .unwrap();
        let credential = old.seal(b"tok", b"idem-1").unwrap();
        conn.lock()
            .unwrap()
            .execute(
                "INSERT INTO queue (route, credential, idempotency_key, body, enqueued_at_ms) \
                 VALUES ('/api/v1/host-report', ?1, 'idem-1', x'7b7d', 5)",
                params![credential],
            )
            .unwrap();
        let mut conn = conn.into_inner().unwrap();
        let new = sealer_for(&conn, NEW).unwrap();
        let done = rewrap(&mut conn, &old, &new).unwrap();
        assert_eq!(
            done,
            Rewrapped {
                resealed: 3,
                current: 0,
                unreadable: 0
            }
        );
        // Idempotent: a second run finds everything under the new key.
        let again = rewrap(&mut conn, &old, &new).unwrap();
        assert_eq!((again.resealed, again.current), (0, 3));

        let conn = Mutex::new(conn);
        let cache = AuthCache {
            conn: &conn,
            sealer: &new,
            ttl: Duration::from_secs(3600),
        };
        assert!(cache.lookup("tok", 2_000).unwrap().is_some());
        assert_eq!(
            cache
                .envelope(&crate::auth_cache::token_hash("tok"))
                .unwrap()
                .as_deref(),
            Some(&b"{\"blocked\":true}"[..])
        );
        let rows = crate::queue::oldest(&conn, &new, 10).unwrap();
        assert_eq!(rows[0].write.token, "tok");
        let old_cache = AuthCache {
            conn: &conn,
            sealer: &old,
            ttl: Duration::from_secs(3600),
        };
        assert!(
            old_cache.lookup("tok", 2_000).unwrap().is_none(),
            "the old key no longer opens anything"
        );
    }

    #[test]
    fn rows_no_key_opens_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, stranger) = open_db(dir.path(), "mft_dep_stranger").unwrap();
        let sealed = stranger.seal(b"x", b"h").unwrap();
        conn.execute(
            "INSERT INTO auth_cache (token_hash, sealed) VALUES ('h', ?1)",
            params![sealed],
        )
        .unwrap();
        let old = sealer_for(&conn, OLD).unwrap();
        let new = sealer_for(&conn, NEW).unwrap();
        let done = rewrap(&mut conn, &old, &new).unwrap();
        assert_eq!(done.unreadable, 1);
        let kept: Vec<u8> = conn
            .query_row("SELECT sealed FROM auth_cache", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, sealed);
    }
}
