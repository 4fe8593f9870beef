//! The `hosts` and `guests` tables: enrolment, operator edits of the desired state (intent),
//! recovery mode, key rotation and the DR record. Report ingest (reality) is in `reports.rs`.

use deadpool_postgres::GenericClient;
use mftplus_store::{
    DesiredEdit, GuestRow, HostListing, HostOrder, HostRow, NewGuest, NewHost, StoreError,
    StoreResult,
};

use super::{
    guest_from_row, host_from_row, insert_events, liveness_of_host, mirror_guest_specs, op_status,
    publish_desired, GUEST_COLUMNS, HOST_COLUMNS,
};
use crate::error::ResultExt;
use crate::sql;

pub(crate) struct KeyRotation<'a> {
    pub host_id: &'a str,
    pub new_key_hash: &'a str,
    pub hostname: &'a str,
    pub agent_version: &'a str,
    pub now_ms: i64,
}

/// `column` is `id` or `key_hash`, both unique.
pub(crate) async fn load<C: GenericClient>(
    client: &C,
    column: &str,
    value: &str,
) -> StoreResult<Option<HostRow>> {
    let sql = format!("SELECT {HOST_COLUMNS} FROM hosts WHERE {column} = $1");
    sql::query_opt(client, &sql, &[&value])
        .await?
        .as_ref()
        .map(host_from_row)
        .transpose()
}

async fn load_existing<C: GenericClient>(client: &C, id: &str) -> StoreResult<HostRow> {
    load(client, "id", id).await?.ok_or(StoreError::NotFound)
}

/// The caller wraps this in a transaction. Locking the customer row serializes enrolments of
/// one customer across processes, so two at once cannot both take the last free place.
pub(crate) async fn create<C: GenericClient>(
    tx: &C,
    host: &NewHost,
    max_hosts_per_customer: u32,
) -> StoreResult<HostRow> {
    if sql::query_opt(
        tx,
        "SELECT 1 FROM customers WHERE id = $1 FOR UPDATE",
        &[&host.customer_id],
    )
    .await?
    .is_none()
    {
        return Err(StoreError::NotFound);
    }
    let count: i64 = sql::query_one(
        tx,
        "SELECT COUNT(*) FROM hosts WHERE customer_id = $1",
        &[&host.customer_id],
    )
    .await?
    .try_get(0)
    .db()?;
    if count >= i64::from(max_hosts_per_customer) {
        return Err(StoreError::Conflict("host_limit".into()));
    }
    let sql = format!(
        "INSERT INTO hosts (id, customer_id, key_hash, hostname, platform, enrolled_at_ms, \
         agent_version, desired_json, desired_generation, desired_updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $6) RETURNING {HOST_COLUMNS}"
    );
    let row = sql::query_one(
        tx,
        &sql,
        &[
            &host.id,
            &host.customer_id,
            &host.key_hash,
            &host.hostname,
            &host.platform,
            &host.enrolled_at_ms,
            &host.agent_version,
            &host.desired_json,
        ],
    )
    .await?;
    sql::execute(
        tx,
        "INSERT INTO host_liveness (host_id) VALUES ($1)",
        &[&host.id],
    )
    .await?;
    host_from_row(&row)
}

pub(crate) async fn list<C: GenericClient>(
    client: &C,
    customer_id: Option<&str>,
) -> StoreResult<Vec<HostRow>> {
    let sql = format!(
        "SELECT {HOST_COLUMNS} FROM hosts WHERE ($1::text IS NULL OR customer_id = $1) \
         ORDER BY id COLLATE \"C\""
    );
    sql::query(client, &sql, &[&customer_id])
        .await?
        .iter()
        .map(host_from_row)
        .collect()
}

/// Liveness as the operator sees it (`HostInfo::liveness`): `never` until the first report,
/// the checker's state after. The listing filters on this, so a filter and the page agree.
const SHOWN_LIVENESS: &str = concat!(
    "CASE WHEN last_report_at_ms IS NULL THEN 'never' ELSE ",
    liveness_of_host!(),
    " END"
);

/// The "missing hosts" order's key: never reported (-1) before any report time; migration
/// 0011 indexes it with the id.
const REPORT_KEY: &str = "COALESCE(last_report_at_ms, -1)";

/// `COLLATE "C"` on both sides: the cursor is defined bytewise, whatever the database's
/// default collation. The cursor is `key >= a AND (key > a OR id > b)`: the plain range on
/// the indexed key is where the index scan starts.
pub(crate) async fn list_page<C: GenericClient>(
    client: &C,
    listing: &HostListing,
) -> StoreResult<Vec<HostRow>> {
    let limit = i64::from(listing.limit);
    let cursor_id = listing.after.as_ref().map(|cursor| cursor.id.as_str());
    let cursor_key = listing
        .after
        .as_ref()
        .map(|cursor| cursor.last_report_at_ms.unwrap_or(-1));
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        vec![&listing.customer_id, &listing.liveness, &limit];
    let after_id = "id COLLATE \"C\" > $4::text COLLATE \"C\"";
    let (order, after) = match listing.order {
        HostOrder::Id => ("id COLLATE \"C\"".to_string(), after_id.to_string()),
        HostOrder::LastReport => (
            format!("{REPORT_KEY}, id COLLATE \"C\""),
            format!("{REPORT_KEY} >= $5::bigint AND ({REPORT_KEY} > $5::bigint OR {after_id})"),
        ),
    };
    let after = match listing.after {
        Some(_) => {
            params.push(&cursor_id);
            if listing.order == HostOrder::LastReport {
                params.push(&cursor_key);
            }
            format!("AND {after}")
        }
        None => String::new(),
    };
    let sql = format!(
        "SELECT {HOST_COLUMNS} FROM hosts WHERE ($1::text IS NULL OR customer_id = $1) \
         AND ($2::text IS NULL OR {SHOWN_LIVENESS} = $2) {after} ORDER BY {order} LIMIT $3"
    );
    sql::query(client, &sql, &params)
        .await?
        .iter()
        .map(host_from_row)
        .collect()
}

/// The caller wraps this in a transaction; the host row is locked before its generation is
/// compared, so two edits from the same generation cannot both pass.
pub(crate) async fn apply_desired_edit<C: GenericClient>(
    tx: &C,
    edit: &DesiredEdit,
) -> StoreResult<HostRow> {
    let row = sql::query_opt(
        tx,
        "SELECT desired_generation FROM hosts WHERE id = $1 FOR UPDATE",
        &[&edit.host_id],
    )
    .await?
    .ok_or(StoreError::NotFound)?;
    let generation: i64 = row.try_get(0).db()?;
    if edit
        .expected_generation
        .is_some_and(|expected| expected != generation)
    {
        return Err(StoreError::Conflict("generation".into()));
    }
    if let Some(desired) = &edit.desired_json {
        publish_desired(tx, &edit.host_id, desired, edit.at_ms).await?;
    }
    if !edit.ops.is_empty() {
        let ops = &edit.ops;
        let id: Vec<&str> = ops.iter().map(|op| op.id.as_str()).collect();
        let customer: Vec<&str> = ops.iter().map(|op| op.customer_id.as_str()).collect();
        let host: Vec<&str> = ops.iter().map(|op| op.host_id.as_str()).collect();
        let guest: Vec<Option<&str>> = ops.iter().map(|op| op.guest_id.as_deref()).collect();
        let op_type: Vec<&str> = ops.iter().map(|op| op.op_type.as_str()).collect();
        let blob: Vec<&str> = ops.iter().map(|op| op.op_blob.as_str()).collect();
        let nonce: Vec<&str> = ops.iter().map(|op| op.nonce.as_str()).collect();
        let issued: Vec<i64> = ops.iter().map(|op| op.issued_at_ms).collect();
        let expires: Vec<i64> = ops.iter().map(|op| op.expires_at_ms).collect();
        let created_by: Vec<&str> = ops.iter().map(|op| op.created_by.as_str()).collect();
        sql::execute(
            tx,
            "INSERT INTO signed_ops (id, customer_id, host_id, guest_id, op_type, op_blob, \
             nonce, issued_at_ms, expires_at_ms, created_by, status, created_at_ms) \
             SELECT *, $11, $12 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
             $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::text[])",
            &[
                &id,
                &customer,
                &host,
                &guest,
                &op_type,
                &blob,
                &nonce,
                &issued,
                &expires,
                &created_by,
                &op_status::PENDING_SIGNATURE,
                &edit.at_ms,
            ],
        )
        .await?;
    }
    insert_events(tx, &edit.events).await?;
    mirror_guest_specs(tx, &edit.host_id, &edit.guest_specs).await?;
    load_existing(tx, &edit.host_id).await
}

pub(crate) async fn bump_generations<C: GenericClient>(
    client: &C,
    customer_id: &str,
    at_ms: i64,
) -> StoreResult<u64> {
    sql::execute(
        client,
        "UPDATE hosts SET desired_generation = desired_generation + 1, \
         desired_updated_at_ms = $2 WHERE customer_id = $1",
        &[&customer_id, &at_ms],
    )
    .await
}

pub(crate) async fn set_recovery_mode<C: GenericClient>(
    client: &C,
    host_id: &str,
    until_ms: Option<i64>,
) -> StoreResult<HostRow> {
    let sql = format!(
        "UPDATE hosts SET recovery_mode_until_ms = $2 WHERE id = $1 RETURNING {HOST_COLUMNS}"
    );
    let row = sql::query_opt(client, &sql, &[&host_id, &until_ms])
        .await?
        .ok_or(StoreError::NotFound)?;
    host_from_row(&row)
}

/// The caller wraps this in a transaction.
pub(crate) async fn rotate_key<C: GenericClient>(
    tx: &C,
    rotation: &KeyRotation<'_>,
) -> StoreResult<HostRow> {
    let row = sql::query_opt(
        tx,
        "SELECT recovery_mode_until_ms FROM hosts WHERE id = $1 FOR UPDATE",
        &[&rotation.host_id],
    )
    .await?
    .ok_or(StoreError::NotFound)?;
    let until: Option<i64> = row.try_get(0).db()?;
    if until.is_none_or(|until| until <= rotation.now_ms) {
        return Err(StoreError::Conflict("recovery_not_armed".into()));
    }
    let sql = format!(
        "UPDATE hosts SET key_hash = $2, hostname = $3, agent_version = $4, \
         recovery_mode_until_ms = NULL WHERE id = $1 RETURNING {HOST_COLUMNS}"
    );
    let row = sql::query_one(
        tx,
        &sql,
        &[
            &rotation.host_id,
            &rotation.new_key_hash,
            &rotation.hostname,
            &rotation.agent_version,
        ],
    )
    .await?;
    super::key_rotation::forget(tx, rotation.host_id).await?;
    host_from_row(&row)
}

/// `values`: host id, backup namespace, repository fingerprint, wrapped key.
pub(crate) async fn put_escrow<C: GenericClient>(
    client: &C,
    values: [&str; 4],
    at_ms: i64,
) -> StoreResult<()> {
    let [host_id, namespace, fingerprint, wrapped] = values;
    let changed = sql::execute(
        client,
        "UPDATE hosts SET backup_namespace = $2, repository_fingerprint = $3, escrow = $4, \
         escrow_at_ms = $5 WHERE id = $1",
        &[&host_id, &namespace, &fingerprint, &wrapped, &at_ms],
    )
    .await?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

// ---- guests ----

pub(crate) async fn create_guest<C: GenericClient>(
    client: &C,
    guest: &NewGuest,
) -> StoreResult<GuestRow> {
    let sql = format!(
        "INSERT INTO guests (id, customer_id, host_id, key_hash, display_name, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {GUEST_COLUMNS}"
    );
    let row = sql::query_one(
        client,
        &sql,
        &[
            &guest.id,
            &guest.customer_id,
            &guest.host_id,
            &guest.key_hash,
            &guest.display_name,
            &guest.created_at_ms,
        ],
    )
    .await?;
    guest_from_row(&row)
}

/// `column` is `id` or `key_hash`, both unique.
pub(crate) async fn get_guest<C: GenericClient>(
    client: &C,
    column: &str,
    value: &str,
) -> StoreResult<Option<GuestRow>> {
    let sql = format!("SELECT {GUEST_COLUMNS} FROM guests WHERE {column} = $1");
    sql::query_opt(client, &sql, &[&value])
        .await?
        .as_ref()
        .map(guest_from_row)
        .transpose()
}

pub(crate) async fn list_guests<C: GenericClient>(
    client: &C,
    host_id: Option<&str>,
    customer_id: Option<&str>,
) -> StoreResult<Vec<GuestRow>> {
    let sql = format!(
        "SELECT {GUEST_COLUMNS} FROM guests WHERE ($1::text IS NULL OR host_id = $1) \
         AND ($2::text IS NULL OR customer_id = $2) ORDER BY id COLLATE \"C\""
    );
    sql::query(client, &sql, &[&host_id, &customer_id])
        .await?
        .iter()
        .map(guest_from_row)
        .collect()
}
