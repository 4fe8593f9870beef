//! The hub's local database (`HUB_DATA_DIR/hub.db`, SQLite in WAL mode, mode 0600) and the
//! encrypted auth cache in it: credentials the cloud accepted, so agents keep authenticating
//! while the cloud is unreachable.
//!
//! Nothing secret is stored in the clear. A credential is looked up by the SHA-256 of the
//! bearer token; the record (and the token itself, where the offline queue must keep it to
//! replay) is sealed with AES-256-GCM under a key derived by HKDF-SHA256 from the hub's deploy
//! key and a random per-database salt. A copied database file is useless without the deploy
//! key, and a new deploy key makes the old entries unreadable (they are then ignored).

use rand::RngCore;
use ring::{aead, digest, hkdf};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// `hub.db`'s schema, one entry per `PRAGMA user_version`: append-only, never edited, so a
/// file is brought forward by running the entries after its version. Version 1 is the schema
/// hubs created before the file was versioned; its statements are `IF NOT EXISTS`, so an
/// unversioned file (version 0) from such a hub takes it without change.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS auth_cache (
    token_hash TEXT PRIMARY KEY NOT NULL,
    sealed     BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS envelopes (
    token_hash TEXT PRIMARY KEY NOT NULL,
    sealed     BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS queue (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    route           TEXT NOT NULL,
    credential      BLOB NOT NULL,
    idempotency_key TEXT NOT NULL,
    body            BLOB NOT NULL,
    enqueued_at_ms  INTEGER NOT NULL
);
",
    "
-- The agent's client certificate the hub verified when it took the write (base64 DER), sent
-- again with the replay: a cloud requiring box certificates checks it as on a live request.
ALTER TABLE queue ADD COLUMN client_cert TEXT;
",
    "
-- Issue 13. The agent's IP address when the hub took the write, so the replay is attributed to
-- the agent (NULL for rows queued before this version).
ALTER TABLE queue ADD COLUMN client_addr TEXT;
-- Queued writes the cloud refused on replay (a 4xx other than 409), kept until an operator
-- replays them instead of dropped. `seq` is the row's seq in the queue; the credential stays
-- sealed as it was there (bound to the idempotency key).
CREATE TABLE dead_letter (
    seq             INTEGER PRIMARY KEY NOT NULL,
    route           TEXT NOT NULL,
    credential      BLOB NOT NULL,
    idempotency_key TEXT NOT NULL,
    body            BLOB NOT NULL,
    enqueued_at_ms  INTEGER NOT NULL,
    client_cert     TEXT,
    client_addr     TEXT,
    status          INTEGER NOT NULL,
    code            TEXT,
    reason          TEXT NOT NULL,
    dead_at_ms      INTEGER NOT NULL
);
",
];

/// The schema version this hub writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

const KDF_INFO: &[u8] = b"mftplus-hub offline store v1";

#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("the hub database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} has schema version {found}, newer than the {known} this hub knows; it was \
         written by a newer hub (run that version, or move the file away to start empty)"
    )]
    TooNew {
        path: String,
        found: u32,
        known: u32,
    },
    #[error("no deploy key to derive the database key from")]
    NoSecret,
    #[error("sealing failed")]
    Crypto,
}

/// The sealing key. `seal` output is nonce ‖ ciphertext ‖ tag; `aad` binds a sealed value to
/// where it is stored, so a value moved to another row does not open.
pub struct Sealer {
    key: aead::LessSafeKey,
}

impl Sealer {
    pub fn derive(secret: &[u8], salt: &[u8]) -> Sealer {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(secret);
        let okm = prk
            .expand(&[KDF_INFO], &aead::AES_256_GCM)
            .expect("HKDF output of one AES-256 key is within limits");
        Sealer {
            key: aead::LessSafeKey::new(aead::UnboundKey::from(okm)),
        }
    }

    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, OfflineError> {
        let mut nonce = [0_u8; aead::NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let mut out = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                &mut out,
            )
            .map_err(|_| OfflineError::Crypto)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&out);
        Ok(sealed)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < aead::NONCE_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, aead::Aad::from(aad), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// SHA-256 hex of a bearer token: the cache's lookup key.
pub fn token_hash(token: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, token.as_bytes()))
}

/// Opens (creating if needed) `dir/hub.db` with mode 0600 in WAL mode, and derives the sealer.
pub fn open_db(dir: &Path, secret: &str) -> Result<(Connection, Sealer), OfflineError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| OfflineError::Io { path, source }
    };
    // Not created: the directory is the deployment's volume, and a hub started without one
    // (tests, a mistyped path) must not scatter databases around the filesystem.
    if !dir.is_dir() {
        return Err(io(dir)(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "HUB_DATA_DIR does not exist",
        )));
    }
    let path = dir.join("hub.db");
    // Created 0600 before SQLite opens it, so there is no moment it is readable by others.
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(io(&path))?;
    }
    let mut conn = Connection::open(&path)?;
    // Refused before anything below writes to it: a newer hub's file is not ours to touch.
    check_not_newer(&conn, &path)?;
    // A queued report (a few KiB) fits in a 16 KiB page with others; in a 4 KiB page it
    // spills into an overflow page and the WAL writes twice its size. Takes effect only when
    // the file is new (an older hub.db keeps its page size, which is merely slower).
    conn.pragma_update(None, "page_size", 16384)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    migrate(&mut conn, &path)?;
    let salt: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE name = 'salt'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let salt = match salt {
        Some(salt) => salt,
        None => {
            let mut salt = vec![0_u8; 32];
            rand::thread_rng().fill_bytes(&mut salt);
            conn.execute(
                "INSERT INTO meta (name, value) VALUES ('salt', ?1)",
                params![salt],
            )?;
            salt
        }
    };
    Ok((conn, Sealer::derive(secret.as_bytes(), &salt)))
}

/// The schema version of an open `hub.db` (`PRAGMA user_version`): [`SCHEMA_VERSION`] once
/// [`open_db`] has brought it forward; 0 for a file from before versioning.
pub fn schema_version(conn: &Connection) -> Result<u32, OfflineError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

fn check_not_newer(conn: &Connection, path: &Path) -> Result<u32, OfflineError> {
    let found = schema_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(OfflineError::TooNew {
            path: path.display().to_string(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(found)
}

/// Runs the migrations after the file's version, each with its version bump in one
/// transaction, so a crash leaves the file at a version whose schema it fully has.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), OfflineError> {
    let version = check_not_newer(conn, path)?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// What a cache entry says once opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedCredential {
    pub validated_at_ms: i64,
    /// The route the cloud accepted it on (`/api/v1/host-report`, …).
    pub kind: String,
}

/// The auth cache over a shared connection.
pub struct AuthCache<'a> {
    pub conn: &'a Mutex<Connection>,
    pub sealer: &'a Sealer,
    pub ttl: Duration,
}

impl AuthCache<'_> {
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        mftplus_base::sync::lock(self.conn)
    }

    /// Records that the cloud accepted `token` now.
    pub fn remember(&self, token: &str, kind: &str, now_ms: i64) -> Result<(), OfflineError> {
        let hash = token_hash(token);
        let record = serde_json::json!({ "validated_at_ms": now_ms, "kind": kind }).to_string();
        let sealed = self.sealer.seal(record.as_bytes(), hash.as_bytes())?;
        self.conn().execute(
            "INSERT INTO auth_cache (token_hash, sealed) VALUES (?1, ?2) \
             ON CONFLICT (token_hash) DO UPDATE SET sealed = excluded.sealed",
            params![hash, sealed],
        )?;
        Ok(())
    }

    /// The entry for `token` if there is one, it opens, and it is younger than the TTL.
    pub fn lookup(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<Option<CachedCredential>, OfflineError> {
        let hash = token_hash(token);
        let sealed: Option<Vec<u8>> = self
            .conn()
            .query_row(
                "SELECT sealed FROM auth_cache WHERE token_hash = ?1",
                params![hash],
                |r| r.get(0),
            )
            .optional()?;
        let Some(plain) = sealed.and_then(|s| self.sealer.open(&s, hash.as_bytes())) else {
            return Ok(None);
        };
        let value: serde_json::Value = serde_json::from_slice(&plain).unwrap_or_default();
        let Some(validated_at_ms) = value["validated_at_ms"].as_i64() else {
            return Ok(None);
        };
        if now_ms.saturating_sub(validated_at_ms) > self.ttl.as_millis() as i64 {
            return Ok(None);
        }
        Ok(Some(CachedCredential {
            validated_at_ms,
            kind: value["kind"].as_str().unwrap_or_default().to_string(),
        }))
    }

    /// The cloud refused `token_hash`'s credential: it no longer authenticates offline.
    pub fn evict_hash(&self, hash: &str) -> Result<(), OfflineError> {
        let conn = self.conn();
        conn.execute(
            "DELETE FROM auth_cache WHERE token_hash = ?1",
            params![hash],
        )?;
        conn.execute("DELETE FROM envelopes WHERE token_hash = ?1", params![hash])?;
        Ok(())
    }

    /// Keeps the last control envelope the cloud gave a host key, sealed, so a restarted hub
    /// still answers with it (a blocked customer stays blocked while the cloud is away).
    pub fn remember_envelope(&self, hash: &str, envelope: &[u8]) -> Result<(), OfflineError> {
        let sealed = self.sealer.seal(envelope, &envelope_aad(hash))?;
        self.conn().execute(
            "INSERT INTO envelopes (token_hash, sealed) VALUES (?1, ?2) \
             ON CONFLICT (token_hash) DO UPDATE SET sealed = excluded.sealed",
            params![hash, sealed],
        )?;
        Ok(())
    }

    /// The kept envelope of a host key, if any and if it still opens.
    pub fn envelope(&self, hash: &str) -> Result<Option<Vec<u8>>, OfflineError> {
        let sealed: Option<Vec<u8>> = self
            .conn()
            .query_row(
                "SELECT sealed FROM envelopes WHERE token_hash = ?1",
                params![hash],
                |r| r.get(0),
            )
            .optional()?;
        Ok(sealed.and_then(|sealed| self.sealer.open(&sealed, &envelope_aad(hash))))
    }
}

/// Binds a sealed envelope to its row, so one cannot be moved to another key's row.
fn envelope_aad(hash: &str) -> Vec<u8> {
    format!("envelope:{hash}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_place() {
        let a = Sealer::derive(b"mft_dep_one", b"salt");
        let sealed = a.seal(b"hello", b"row-1").unwrap();
        assert_eq!(a.open(&sealed, b"row-1").as_deref(), Some(&b"hello"[..]));
        assert_eq!(a.open(&sealed, b"row-2"), None, "bound to its row");
        let b = Sealer::derive(b"mft_dep_two", b"salt");
        assert_eq!(b.open(&sealed, b"row-1"), None, "another deploy key");
        let c = Sealer::derive(b"mft_dep_one", b"other salt");
        assert_eq!(c.open(&sealed, b"row-1"), None, "another database");
    }

    fn user_version(dir: &Path) -> u32 {
        Connection::open(dir.join("hub.db"))
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_new_file_gets_the_current_version_and_an_unversioned_one_is_brought_forward() {
        let dir = tempfile::tempdir().unwrap();
        drop(open_db(dir.path(), "mft_dep_x").unwrap());
        assert_eq!(user_version(dir.path()), SCHEMA_VERSION);
        assert_eq!(SCHEMA_VERSION, 3);

        // A hub.db from before versioning: today's tables, a row, user_version 0.
        let old = tempfile::tempdir().unwrap();
        let conn = Connection::open(old.path().join("hub.db")).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute("INSERT INTO meta (name, value) VALUES ('salt', x'00')", [])
            .unwrap();
        drop(conn);
        assert_eq!(user_version(old.path()), 0);
        let (conn, _) = open_db(old.path(), "mft_dep_x").unwrap();
        let salt: Vec<u8> = conn
            .query_row("SELECT value FROM meta WHERE name = 'salt'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(salt, vec![0], "kept, so sealed entries still open");
        // Brought forward to today's schema: the queue has the forwarded-certificate and
        // client-address columns, and the dead letter exists.
        conn.execute_batch(
            "SELECT client_cert, client_addr FROM queue LIMIT 0; \
             SELECT seq, status, code FROM dead_letter LIMIT 0",
        )
        .unwrap();
        drop(conn);
        assert_eq!(user_version(old.path()), SCHEMA_VERSION);
    }

    #[test]
    fn a_schema_2_file_keeps_its_queued_rows_on_the_way_to_3() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("hub.db")).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(MIGRATIONS[1]).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute(
            "INSERT INTO queue (route, credential, idempotency_key, body, enqueued_at_ms, \
             client_cert) VALUES ('/api/v1/report', x'01', 'k1', x'7b7d', 7, 'cert')",
            [],
        )
        .unwrap();
        drop(conn);
        let (conn, _) = open_db(dir.path(), "mft_dep_x").unwrap();
        assert_eq!(user_version(dir.path()), 3);
        let row: (i64, String, String, Option<String>, Option<String>) = conn
            .query_row(
                "SELECT seq, route, idempotency_key, client_cert, client_addr FROM queue",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(
            row,
            (
                1,
                "/api/v1/report".into(),
                "k1".into(),
                Some("cert".into()),
                None
            )
        );
        let dead: i64 = conn
            .query_row("SELECT count(*) FROM dead_letter", [], |r| r.get(0))
            .unwrap();
        assert_eq!(dead, 0);
    }

    #[test]
    fn a_file_from_a_newer_hub_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("hub.db")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = open_db(dir.path(), "mft_dep_x").err().expect("refused");
        assert!(
            matches!(
                err,
                OfflineError::TooNew {
                    found: 99,
                    known: SCHEMA_VERSION,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("newer hub"), "{err}");
        let tables: i64 = Connection::open(dir.path().join("hub.db"))
            .unwrap()
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0, "nothing was created in it");
        assert_eq!(user_version(dir.path()), 99);
    }

    #[test]
    fn entries_expire_and_can_be_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, sealer) = open_db(dir.path(), "mft_dep_x").unwrap();
        let conn = Mutex::new(conn);
        let cache = AuthCache {
            conn: &conn,
            sealer: &sealer,
            ttl: Duration::from_secs(60),
        };
        cache.remember("tok", "/api/v1/host-report", 1_000).unwrap();
        assert!(cache.lookup("tok", 2_000).unwrap().is_some());
        assert!(cache.lookup("other", 2_000).unwrap().is_none());
        assert!(cache.lookup("tok", 62_000).unwrap().is_none(), "expired");
        cache.evict_hash(&token_hash("tok")).unwrap();
        assert!(cache.lookup("tok", 2_000).unwrap().is_none());
    }
}
