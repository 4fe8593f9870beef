//! The `deploy_keys` and `hubs` tables; see `mftplus_store::HubStore`. Registration is one
//! `INSERT … ON CONFLICT` on the (deploy key, hostname) constraint, so two registrations racing
//! for one hostname, from one cloud process or several, end with one row.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use mftplus_store::{
    transfer_status, DeployKeyRotation, DeployKeyRow, HubHeartbeat, HubRegistration, HubRow,
    HubStore, HubValidation, NewDeployKey, StoreError, StoreResult, UserSite,
};
use tokio_postgres::Row;

use crate::error::ResultExt;
use crate::{sql, PostgresStore};

const KEY_COLUMNS: &str =
    "id, label, key_hash, prefix, created_by, created_at_ms, revoked_at_ms, replaces, expires_at_ms";
const HUB_COLUMNS: &str = "id, deploy_key_id, hostname, hub_version, platform, license_mode, \
     registered_at_ms, last_seen_at_ms, last_validated_at_ms, healthy, issues_json";

fn key_from_row(row: &Row) -> StoreResult<DeployKeyRow> {
    Ok(DeployKeyRow {
        id: row.try_get(0).db()?,
        label: row.try_get(1).db()?,
        key_hash: row.try_get(2).db()?,
        prefix: row.try_get(3).db()?,
        created_by: row.try_get(4).db()?,
        created_at_ms: row.try_get(5).db()?,
        revoked_at_ms: row.try_get(6).db()?,
        replaces: row.try_get(7).db()?,
        expires_at_ms: row.try_get(8).db()?,
    })
}

fn hub_from_row(row: &Row) -> StoreResult<HubRow> {
    Ok(HubRow {
        id: row.try_get(0).db()?,
        deploy_key_id: row.try_get(1).db()?,
        hostname: row.try_get(2).db()?,
        hub_version: row.try_get(3).db()?,
        platform: row.try_get(4).db()?,
        license_mode: row.try_get(5).db()?,
        registered_at_ms: row.try_get(6).db()?,
        last_seen_at_ms: row.try_get(7).db()?,
        last_validated_at_ms: row.try_get(8).db()?,
        healthy: row.try_get(9).db()?,
        issues_json: row.try_get(10).db()?,
    })
}

/// `column` is one of this file's literals, never input.
async fn load_key<C: GenericClient>(
    client: &C,
    column: &str,
    value: &str,
) -> StoreResult<Option<DeployKeyRow>> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM deploy_keys WHERE {column} = $1");
    sql::query_opt(client, &sql, &[&value])
        .await?
        .as_ref()
        .map(key_from_row)
        .transpose()
}

async fn insert_key<C: GenericClient>(
    client: &C,
    key: &NewDeployKey,
    replaces: Option<&str>,
) -> StoreResult<DeployKeyRow> {
    let sql = format!(
        "INSERT INTO deploy_keys (id, label, key_hash, prefix, created_by, created_at_ms, \
         replaces) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {KEY_COLUMNS}"
    );
    let row = sql::query_one(
        client,
        &sql,
        &[
            &key.id,
            &key.label,
            &key.key_hash,
            &key.prefix,
            &key.created_by,
            &key.created_at_ms,
            &replaces,
        ],
    )
    .await?;
    key_from_row(&row)
}

/// Inside a transaction: the old key's row is locked, so two rotations of one key (or a
/// rotation and a revocation) are serialized.
async fn rotate_key<C: GenericClient>(
    tx: &C,
    rotation: &DeployKeyRotation,
) -> StoreResult<DeployKeyRow> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM deploy_keys WHERE id = $1 FOR UPDATE");
    let old = sql::query_opt(tx, &sql, &[&rotation.old_id])
        .await?
        .as_ref()
        .map(key_from_row)
        .transpose()?
        .ok_or(StoreError::NotFound)?;
    if !old.usable_at(rotation.new.created_at_ms) {
        return Err(StoreError::Conflict("revoked".into()));
    }
    sql::execute(
        tx,
        "UPDATE deploy_keys SET expires_at_ms = LEAST(COALESCE(expires_at_ms, $2), $2) \
         WHERE id = $1",
        &[&old.id, &rotation.old_expires_at_ms],
    )
    .await?;
    let new = NewDeployKey {
        label: old.label.clone(),
        ..rotation.new.clone()
    };
    insert_key(tx, &new, Some(&old.id)).await
}

/// Moves the hub of `hostname` registered under a key that `key_id` replaced (directly or
/// through earlier rotations) to `key_id`, unless `key_id` already has one: a hub restarted
/// with its rotated key keeps its id.
async fn adopt_rotated_hub<C: GenericClient>(
    tx: &C,
    key_id: &str,
    hostname: &str,
) -> StoreResult<()> {
    sql::execute(
        tx,
        "WITH RECURSIVE chain (id) AS ( \
             SELECT replaces FROM deploy_keys WHERE id = $1 AND replaces IS NOT NULL \
             UNION \
             SELECT k.replaces FROM deploy_keys k JOIN chain c ON k.id = c.id \
             WHERE k.replaces IS NOT NULL) \
         UPDATE hubs SET deploy_key_id = $1 WHERE id = ( \
             SELECT id FROM hubs WHERE hostname = $2 AND deploy_key_id IN (SELECT id FROM chain) \
             ORDER BY last_seen_at_ms DESC, id COLLATE \"C\" LIMIT 1) \
         AND NOT EXISTS (SELECT 1 FROM hubs WHERE deploy_key_id = $1 AND hostname = $2)",
        &[&key_id, &hostname],
    )
    .await
    .map(|_| ())
}

#[async_trait]
impl HubStore for PostgresStore {
    async fn create_deploy_key(&self, key: &NewDeployKey) -> StoreResult<DeployKeyRow> {
        insert_key(&self.client().await?, key, None).await
    }

    async fn rotate_deploy_key(&self, rotation: &DeployKeyRotation) -> StoreResult<DeployKeyRow> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let row = rotate_key(&tx, rotation).await?;
        tx.commit().await.db()?;
        Ok(row)
    }

    async fn get_deploy_key(&self, id: &str) -> StoreResult<Option<DeployKeyRow>> {
        load_key(&self.client().await?, "id", id).await
    }

    async fn get_deploy_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<DeployKeyRow>> {
        load_key(&self.client().await?, "key_hash", key_hash).await
    }

    async fn list_deploy_keys(&self) -> StoreResult<Vec<DeployKeyRow>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM deploy_keys \
             ORDER BY created_at_ms DESC, id COLLATE \"C\" DESC"
        );
        sql::query(&self.client().await?, &sql, &[])
            .await?
            .iter()
            .map(key_from_row)
            .collect()
    }

    async fn revoke_deploy_key(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        let client = self.client().await?;
        let changed = sql::execute(
            &client,
            "UPDATE deploy_keys SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL",
            &[&id, &at_ms],
        )
        .await?;
        if changed > 0 {
            return Ok(true);
        }
        match load_key(&client, "id", id).await? {
            Some(_) => Ok(false),
            None => Err(StoreError::NotFound),
        }
    }

    async fn register_hub(&self, reg: &HubRegistration) -> StoreResult<HubRow> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        // Keys are never deleted, so a key that exists now still exists at the insert.
        if load_key(&tx, "id", &reg.deploy_key_id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        adopt_rotated_hub(&tx, &reg.deploy_key_id, &reg.hostname).await?;
        let sql = format!(
            "INSERT INTO hubs (id, deploy_key_id, hostname, hub_version, platform, \
             license_mode, registered_at_ms, last_seen_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT ON CONSTRAINT hubs_key_hostname_uq DO UPDATE SET \
             hub_version = EXCLUDED.hub_version, platform = EXCLUDED.platform, \
             license_mode = EXCLUDED.license_mode, last_seen_at_ms = EXCLUDED.last_seen_at_ms \
             RETURNING {HUB_COLUMNS}"
        );
        let row = sql::query_one(
            &tx,
            &sql,
            &[
                &reg.new_id,
                &reg.deploy_key_id,
                &reg.hostname,
                &reg.hub_version,
                &reg.platform,
                &reg.license_mode,
                &reg.at_ms,
            ],
        )
        .await?;
        let hub = hub_from_row(&row)?;
        tx.commit().await.db()?;
        Ok(hub)
    }

    async fn validate_hub(&self, hub_id: &str, v: &HubValidation) -> StoreResult<HubRow> {
        let sql = format!(
            "UPDATE hubs SET hub_version = $2, platform = $3, license_mode = $4, \
             last_seen_at_ms = $5, last_validated_at_ms = $5 WHERE id = $1 \
             RETURNING {HUB_COLUMNS}"
        );
        let row = sql::query_opt(
            &self.client().await?,
            &sql,
            &[
                &hub_id,
                &v.hub_version,
                &v.platform,
                &v.license_mode,
                &v.at_ms,
            ],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
        hub_from_row(&row)
    }

    async fn record_hub_heartbeat(&self, hub_id: &str, beat: &HubHeartbeat) -> StoreResult<()> {
        let changed = sql::execute(
            &self.client().await?,
            "UPDATE hubs SET hub_version = $2, healthy = $3, issues_json = $4, \
             last_seen_at_ms = $5 WHERE id = $1",
            &[
                &hub_id,
                &beat.hub_version,
                &beat.healthy,
                &beat.issues_json,
                &beat.at_ms,
            ],
        )
        .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn get_hub(&self, id: &str) -> StoreResult<Option<HubRow>> {
        let sql = format!("SELECT {HUB_COLUMNS} FROM hubs WHERE id = $1");
        sql::query_opt(&self.client().await?, &sql, &[&id])
            .await?
            .as_ref()
            .map(hub_from_row)
            .transpose()
    }

    async fn list_hubs(&self) -> StoreResult<Vec<HubRow>> {
        let sql = format!(
            "SELECT {HUB_COLUMNS} FROM hubs ORDER BY hostname COLLATE \"C\", id COLLATE \"C\""
        );
        sql::query(&self.client().await?, &sql, &[])
            .await?
            .iter()
            .map(hub_from_row)
            .collect()
    }

    async fn note_user_site(
        &self,
        user_id: &str,
        hub_id: Option<&str>,
        at_ms: i64,
    ) -> StoreResult<()> {
        sql::execute(
            &self.client().await?,
            "INSERT INTO user_sites (user_id, hub_id, seen_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET hub_id = EXCLUDED.hub_id, \
             seen_at_ms = EXCLUDED.seen_at_ms",
            &[&user_id, &hub_id, &at_ms],
        )
        .await?;
        Ok(())
    }

    async fn user_sites(&self, user_ids: &[String]) -> StoreResult<Vec<UserSite>> {
        sql::query(
            &self.client().await?,
            "SELECT user_id, hub_id, seen_at_ms FROM user_sites WHERE user_id = ANY($1)",
            &[&user_ids],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(UserSite {
                user_id: row.try_get(0).db()?,
                hub_id: row.try_get(1).db()?,
                seen_at_ms: row.try_get(2).db()?,
            })
        })
        .collect()
    }

    async fn live_site_transfers(
        &self,
        hub_id: &str,
        transfer_ids: &[String],
        now_ms: i64,
    ) -> StoreResult<Vec<String>> {
        sql::query(
            &self.client().await?,
            "SELECT id FROM transfers WHERE id = ANY($1) AND site = $2 \
             AND status IN ($3, $4) AND expires_at_ms > $5",
            &[
                &transfer_ids,
                &hub_id,
                &transfer_status::UPLOADING,
                &transfer_status::COMPLETE,
                &now_ms,
            ],
        )
        .await?
        .iter()
        .map(|row| row.try_get(0).db())
        .collect()
    }
}
