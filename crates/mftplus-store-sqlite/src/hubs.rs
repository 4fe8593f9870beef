//! The `deploy_keys` and `hubs` tables; see `mftplus_store::HubStore`. Writes run on the single
//! writer connection, so a registration's existence check and upsert cannot interleave with
//! another write.

use async_trait::async_trait;
use mftplus_store::{
    transfer_status, DeployKeyRotation, DeployKeyRow, HubHeartbeat, HubRegistration, HubRow,
    HubStore, HubValidation, NewDeployKey, StoreError, StoreResult, UserSite,
};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::ResultExt;
use crate::SqliteStore;

const KEY_COLUMNS: &str =
    "id, label, key_hash, prefix, created_by, created_at_ms, revoked_at_ms, replaces, expires_at_ms";
const HUB_COLUMNS: &str = "id, deploy_key_id, hostname, hub_version, platform, license_mode, \
     registered_at_ms, last_seen_at_ms, last_validated_at_ms, healthy, issues_json";

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<DeployKeyRow> {
    Ok(DeployKeyRow {
        id: row.get(0)?,
        label: row.get(1)?,
        key_hash: row.get(2)?,
        prefix: row.get(3)?,
        created_by: row.get(4)?,
        created_at_ms: row.get(5)?,
        revoked_at_ms: row.get(6)?,
        replaces: row.get(7)?,
        expires_at_ms: row.get(8)?,
    })
}

fn hub_from_row(row: &Row<'_>) -> rusqlite::Result<HubRow> {
    Ok(HubRow {
        id: row.get(0)?,
        deploy_key_id: row.get(1)?,
        hostname: row.get(2)?,
        hub_version: row.get(3)?,
        platform: row.get(4)?,
        license_mode: row.get(5)?,
        registered_at_ms: row.get(6)?,
        last_seen_at_ms: row.get(7)?,
        last_validated_at_ms: row.get(8)?,
        healthy: row.get(9)?,
        issues_json: row.get(10)?,
    })
}

/// `column` is one of this file's literals, never input.
fn load_key(conn: &Connection, column: &str, value: &str) -> StoreResult<Option<DeployKeyRow>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM deploy_keys WHERE {column} = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![value], key_from_row).optional())
        .db()
}

fn load_hub(conn: &Connection, id: &str) -> StoreResult<Option<HubRow>> {
    let sql = format!("SELECT {HUB_COLUMNS} FROM hubs WHERE id = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![id], hub_from_row).optional())
        .db()
}

fn create_key(conn: &Connection, key: &NewDeployKey) -> StoreResult<DeployKeyRow> {
    insert_key(conn, key, None)
}

fn insert_key(
    conn: &Connection,
    key: &NewDeployKey,
    replaces: Option<&str>,
) -> StoreResult<DeployKeyRow> {
    let sql = format!(
        "INSERT INTO deploy_keys (id, label, key_hash, prefix, created_by, created_at_ms, \
         replaces) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING {KEY_COLUMNS}"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    key.id,
                    key.label,
                    key.key_hash,
                    key.prefix,
                    key.created_by,
                    key.created_at_ms,
                    replaces
                ],
                key_from_row,
            )
        })
        .db()
}

fn revoke_key(conn: &Connection, id: &str, at_ms: i64) -> StoreResult<bool> {
    if load_key(conn, "id", id)?.is_none() {
        return Err(StoreError::NotFound);
    }
    let changed = conn
        .prepare_cached(
            "UPDATE deploy_keys SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL",
        )
        .and_then(|mut stmt| stmt.execute(params![id, at_ms]))
        .db()?;
    Ok(changed > 0)
}

fn rotate_key(conn: &mut Connection, rotation: &DeployKeyRotation) -> StoreResult<DeployKeyRow> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    let old = load_key(&tx, "id", &rotation.old_id)?.ok_or(StoreError::NotFound)?;
    if !old.usable_at(rotation.new.created_at_ms) {
        return Err(StoreError::Conflict("revoked".into()));
    }
    tx.prepare_cached(
        "UPDATE deploy_keys SET expires_at_ms = MIN(COALESCE(expires_at_ms, ?2), ?2) \
         WHERE id = ?1",
    )
    .and_then(|mut stmt| stmt.execute(params![old.id, rotation.old_expires_at_ms]))
    .db()?;
    let new = NewDeployKey {
        label: old.label.clone(),
        ..rotation.new.clone()
    };
    let row = insert_key(&tx, &new, Some(&old.id))?;
    tx.commit().db()?;
    Ok(row)
}

/// Moves the hub of `hostname` registered under a key that `key_id` replaced (directly or
/// through earlier rotations) to `key_id`, unless `key_id` already has one: a hub restarted
/// with its rotated key keeps its id.
fn adopt_rotated_hub(conn: &Connection, key_id: &str, hostname: &str) -> StoreResult<()> {
    conn.prepare_cached(
        "WITH RECURSIVE chain (id) AS ( \
             SELECT replaces FROM deploy_keys WHERE id = ?1 AND replaces IS NOT NULL \
             UNION \
             SELECT k.replaces FROM deploy_keys k JOIN chain c ON k.id = c.id \
             WHERE k.replaces IS NOT NULL) \
         UPDATE hubs SET deploy_key_id = ?1 WHERE id = ( \
             SELECT id FROM hubs WHERE hostname = ?2 AND deploy_key_id IN (SELECT id FROM chain) \
             ORDER BY last_seen_at_ms DESC, id LIMIT 1) \
         AND NOT EXISTS (SELECT 1 FROM hubs WHERE deploy_key_id = ?1 AND hostname = ?2)",
    )
    .and_then(|mut stmt| stmt.execute(params![key_id, hostname]))
    .db()
    .map(|_| ())
}

fn register(conn: &mut Connection, reg: &HubRegistration) -> StoreResult<HubRow> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    if load_key(&tx, "id", &reg.deploy_key_id)?.is_none() {
        return Err(StoreError::NotFound);
    }
    adopt_rotated_hub(&tx, &reg.deploy_key_id, &reg.hostname)?;
    let row = upsert_hub(&tx, reg)?;
    tx.commit().db()?;
    Ok(row)
}

fn upsert_hub(conn: &Connection, reg: &HubRegistration) -> StoreResult<HubRow> {
    let sql = format!(
        "INSERT INTO hubs (id, deploy_key_id, hostname, hub_version, platform, license_mode, \
         registered_at_ms, last_seen_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) \
         ON CONFLICT (deploy_key_id, hostname) DO UPDATE SET \
         hub_version = excluded.hub_version, platform = excluded.platform, \
         license_mode = excluded.license_mode, last_seen_at_ms = excluded.last_seen_at_ms \
         RETURNING {HUB_COLUMNS}"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    reg.new_id,
                    reg.deploy_key_id,
                    reg.hostname,
                    reg.hub_version,
                    reg.platform,
                    reg.license_mode,
                    reg.at_ms
                ],
                hub_from_row,
            )
        })
        .db()
}

fn validate(conn: &Connection, hub_id: &str, v: &HubValidation) -> StoreResult<HubRow> {
    let sql = format!(
        "UPDATE hubs SET hub_version = ?2, platform = ?3, license_mode = ?4, \
         last_seen_at_ms = ?5, last_validated_at_ms = ?5 WHERE id = ?1 RETURNING {HUB_COLUMNS}"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_row(
                params![hub_id, v.hub_version, v.platform, v.license_mode, v.at_ms],
                hub_from_row,
            )
            .optional()
        })
        .db()?
        .ok_or(StoreError::NotFound)
}

fn heartbeat(conn: &Connection, hub_id: &str, beat: &HubHeartbeat) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE hubs SET hub_version = ?2, healthy = ?3, issues_json = ?4, \
             last_seen_at_ms = ?5 WHERE id = ?1",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                hub_id,
                beat.hub_version,
                beat.healthy,
                beat.issues_json,
                beat.at_ms
            ])
        })
        .db()?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

#[async_trait]
impl HubStore for SqliteStore {
    async fn create_deploy_key(&self, key: &NewDeployKey) -> StoreResult<DeployKeyRow> {
        let key = key.clone();
        self.write(move |conn| create_key(conn, &key)).await
    }

    async fn get_deploy_key(&self, id: &str) -> StoreResult<Option<DeployKeyRow>> {
        let id = id.to_owned();
        self.read(move |conn| load_key(conn, "id", &id)).await
    }

    async fn get_deploy_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<DeployKeyRow>> {
        let key_hash = key_hash.to_owned();
        self.read(move |conn| load_key(conn, "key_hash", &key_hash))
            .await
    }

    async fn list_deploy_keys(&self) -> StoreResult<Vec<DeployKeyRow>> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {KEY_COLUMNS} FROM deploy_keys ORDER BY created_at_ms DESC, id DESC"
            );
            conn.prepare_cached(&sql)
                .and_then(|mut stmt| stmt.query_map([], key_from_row)?.collect())
                .db()
        })
        .await
    }

    async fn revoke_deploy_key(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |conn| revoke_key(conn, &id, at_ms)).await
    }

    async fn rotate_deploy_key(&self, rotation: &DeployKeyRotation) -> StoreResult<DeployKeyRow> {
        let rotation = rotation.clone();
        self.write(move |conn| rotate_key(conn, &rotation)).await
    }

    async fn register_hub(&self, registration: &HubRegistration) -> StoreResult<HubRow> {
        let registration = registration.clone();
        self.write(move |conn| register(conn, &registration)).await
    }

    async fn validate_hub(&self, hub_id: &str, validation: &HubValidation) -> StoreResult<HubRow> {
        let (hub_id, validation) = (hub_id.to_owned(), validation.clone());
        self.write(move |conn| validate(conn, &hub_id, &validation))
            .await
    }

    async fn record_hub_heartbeat(
        &self,
        hub_id: &str,
        heartbeat_row: &HubHeartbeat,
    ) -> StoreResult<()> {
        let (hub_id, beat) = (hub_id.to_owned(), heartbeat_row.clone());
        self.write(move |conn| heartbeat(conn, &hub_id, &beat))
            .await
    }

    async fn get_hub(&self, id: &str) -> StoreResult<Option<HubRow>> {
        let id = id.to_owned();
        self.read(move |conn| load_hub(conn, &id)).await
    }

    async fn list_hubs(&self) -> StoreResult<Vec<HubRow>> {
        self.read(|conn| {
            let sql = format!("SELECT {HUB_COLUMNS} FROM hubs ORDER BY hostname, id");
            conn.prepare_cached(&sql)
                .and_then(|mut stmt| stmt.query_map([], hub_from_row)?.collect())
                .db()
        })
        .await
    }

    async fn note_user_site(
        &self,
        user_id: &str,
        hub_id: Option<&str>,
        at_ms: i64,
    ) -> StoreResult<()> {
        let (user_id, hub_id) = (user_id.to_owned(), hub_id.map(str::to_owned));
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO user_sites (user_id, hub_id, seen_at_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (user_id) DO UPDATE SET hub_id = excluded.hub_id, \
                 seen_at_ms = excluded.seen_at_ms",
                params![user_id, hub_id, at_ms],
            )
            .db()?;
            Ok(())
        })
        .await
    }

    async fn user_sites(&self, user_ids: &[String]) -> StoreResult<Vec<UserSite>> {
        let user_ids = user_ids.to_vec();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT user_id, hub_id, seen_at_ms FROM user_sites WHERE user_id = ?1",
                )
                .db()?;
            let mut out = Vec::new();
            for user_id in &user_ids {
                let found = stmt
                    .query_row(params![user_id], |row| {
                        Ok(UserSite {
                            user_id: row.get(0)?,
                            hub_id: row.get(1)?,
                            seen_at_ms: row.get(2)?,
                        })
                    })
                    .optional()
                    .db()?;
                out.extend(found);
            }
            Ok(out)
        })
        .await
    }

    async fn live_site_transfers(
        &self,
        hub_id: &str,
        transfer_ids: &[String],
        now_ms: i64,
    ) -> StoreResult<Vec<String>> {
        let (hub_id, transfer_ids) = (hub_id.to_owned(), transfer_ids.to_vec());
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id FROM transfers WHERE id = ?1 AND site = ?2 \
                     AND status IN (?3, ?4) AND expires_at_ms > ?5",
                )
                .db()?;
            let mut live = Vec::new();
            for id in &transfer_ids {
                let found: Option<String> = stmt
                    .query_row(
                        params![
                            id,
                            hub_id,
                            transfer_status::UPLOADING,
                            transfer_status::COMPLETE,
                            now_ms
                        ],
                        |row| row.get(0),
                    )
                    .optional()
                    .db()?;
                live.extend(found);
            }
            Ok(live)
        })
        .await
    }
}
