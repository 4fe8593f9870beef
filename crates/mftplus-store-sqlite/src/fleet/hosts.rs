//! The `hosts` and `guests` tables: enrolment, operator edits of the desired state (intent),
//! recovery mode, key rotation and the DR record. Report ingest (reality) is in `reports.rs`.

use mftplus_store::{
    DesiredEdit, GuestRow, HostListing, HostOrder, HostRow, NewGuest, NewHost, StoreError,
    StoreResult,
};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::{
    guest_from_row, host_from_row, immediate, insert_event, liveness_of_host, mirror_guest_specs,
    op_status, publish_desired, GUEST_COLUMNS, HOST_COLUMNS,
};
use crate::error::ResultExt;

pub(crate) struct KeyRotation {
    pub host_id: String,
    pub new_key_hash: String,
    pub hostname: String,
    pub agent_version: String,
    pub now_ms: i64,
}

pub(crate) fn load(conn: &Connection, id: &str) -> StoreResult<Option<HostRow>> {
    let sql = format!("SELECT {HOST_COLUMNS} FROM hosts WHERE id = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![id], host_from_row).optional())
        .db()
}

fn load_existing(conn: &Connection, id: &str) -> StoreResult<HostRow> {
    load(conn, id)?.ok_or(StoreError::NotFound)
}

pub(crate) fn create(
    conn: &mut Connection,
    host: &NewHost,
    max_hosts_per_customer: u32,
) -> StoreResult<HostRow> {
    let tx = immediate(conn)?;
    // The writer connection serializes this count with every other enrolment, so two at once
    // cannot both take the last free place.
    let count: Option<i64> = tx
        .prepare_cached(
            "SELECT (SELECT COUNT(*) FROM hosts WHERE customer_id = ?1) \
             FROM customers WHERE id = ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![host.customer_id], |row| row.get(0))
                .optional()
        })
        .db()?;
    let Some(count) = count else {
        return Err(StoreError::NotFound);
    };
    if count >= i64::from(max_hosts_per_customer) {
        return Err(StoreError::Conflict("host_limit".into()));
    }
    tx.prepare_cached(
        "INSERT INTO hosts (id, customer_id, key_hash, hostname, platform, enrolled_at_ms, \
         agent_version, desired_json, desired_generation, desired_updated_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            host.id,
            host.customer_id,
            host.key_hash,
            host.hostname,
            host.platform,
            host.enrolled_at_ms,
            host.agent_version,
            host.desired_json
        ])
    })
    .db()?;
    tx.prepare_cached("INSERT INTO host_liveness (host_id) VALUES (?1)")
        .and_then(|mut stmt| stmt.execute(params![host.id]))
        .db()?;
    let row = load_existing(&tx, &host.id)?;
    tx.commit().db()?;
    Ok(row)
}

pub(crate) fn get(conn: &Connection, id: &str) -> StoreResult<Option<HostRow>> {
    load(conn, id)
}

pub(crate) fn get_by_key_hash(conn: &Connection, key_hash: &str) -> StoreResult<Option<HostRow>> {
    let sql = format!("SELECT {HOST_COLUMNS} FROM hosts WHERE key_hash = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![key_hash], host_from_row).optional())
        .db()
}

pub(crate) fn list(conn: &Connection, customer_id: Option<&str>) -> StoreResult<Vec<HostRow>> {
    let filter = if customer_id.is_some() {
        "WHERE customer_id = ?1"
    } else {
        "WHERE ?1 IS NULL"
    };
    let sql = format!("SELECT {HOST_COLUMNS} FROM hosts {filter} ORDER BY id");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params![customer_id], host_from_row)?
                .collect()
        })
        .db()
}

/// Liveness as the operator sees it (`HostInfo::liveness`): `never` until the first report,
/// the checker's state after. The listing filters on this, so a filter and the page agree.
pub(crate) const SHOWN_LIVENESS: &str = concat!(
    "CASE WHEN last_report_at_ms IS NULL THEN 'never' ELSE ",
    liveness_of_host!(),
    " END"
);

/// The "missing hosts" order's key: never reported (-1) before any report time. Migration
/// 0011 indexes it with the id, so a page seeks to its cursor instead of sorting the fleet.
pub(crate) const REPORT_KEY: &str = "COALESCE(last_report_at_ms, -1)";

/// SQLite compares TEXT bytewise (BINARY), the order the cursor is defined in. The cursor is
/// `key >= a AND (key > a OR id > b)` rather than a row value: the plain range on the
/// indexed key is what lets SQLite seek.
pub(crate) fn list_page(conn: &Connection, listing: &HostListing) -> StoreResult<Vec<HostRow>> {
    let (order, after) = match listing.order {
        HostOrder::Id => ("id".to_string(), "id > ?3".to_string()),
        HostOrder::LastReport => (
            format!("{REPORT_KEY}, id"),
            format!("{REPORT_KEY} >= ?4 AND ({REPORT_KEY} > ?4 OR id > ?3)"),
        ),
    };
    let after = match &listing.after {
        Some(_) => after,
        None => "?3 IS NULL AND ?4 IS NULL".to_string(),
    };
    let sql = format!(
        "SELECT {HOST_COLUMNS} FROM hosts \
         WHERE (?1 IS NULL OR customer_id = ?1) AND (?2 IS NULL OR {SHOWN_LIVENESS} = ?2) \
         AND {after} ORDER BY {order} LIMIT ?5"
    );
    let cursor_id = listing.after.as_ref().map(|cursor| cursor.id.as_str());
    let cursor_key = listing
        .after
        .as_ref()
        .map(|cursor| cursor.last_report_at_ms.unwrap_or(-1));
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(
                params![
                    listing.customer_id,
                    listing.liveness,
                    cursor_id,
                    cursor_key,
                    listing.limit
                ],
                host_from_row,
            )?
            .collect()
        })
        .db()
}

pub(crate) fn apply_desired_edit(
    conn: &mut Connection,
    edit: &DesiredEdit,
) -> StoreResult<HostRow> {
    let tx = immediate(conn)?;
    let generation: Option<i64> = tx
        .prepare_cached("SELECT desired_generation FROM hosts WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![edit.host_id], |row| row.get(0))
                .optional()
        })
        .db()?;
    let Some(generation) = generation else {
        return Err(StoreError::NotFound);
    };
    if edit
        .expected_generation
        .is_some_and(|expected| expected != generation)
    {
        return Err(StoreError::Conflict("generation".into()));
    }
    if let Some(desired) = &edit.desired_json {
        publish_desired(&tx, &edit.host_id, desired, edit.at_ms)?;
    }
    if !edit.ops.is_empty() {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO signed_ops (id, customer_id, host_id, guest_id, op_type, op_blob, \
                 status, nonce, issued_at_ms, expires_at_ms, created_by, created_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .db()?;
        for op in &edit.ops {
            stmt.execute(params![
                op.id,
                op.customer_id,
                op.host_id,
                op.guest_id,
                op.op_type,
                op.op_blob,
                op_status::PENDING_SIGNATURE,
                op.nonce,
                op.issued_at_ms,
                op.expires_at_ms,
                op.created_by,
                edit.at_ms
            ])
            .db()?;
        }
    }
    for event in &edit.events {
        insert_event(&tx, event)?;
    }
    mirror_guest_specs(&tx, &edit.host_id, &edit.guest_specs)?;
    let row = load_existing(&tx, &edit.host_id)?;
    tx.commit().db()?;
    Ok(row)
}

pub(crate) fn bump_generations(
    conn: &Connection,
    customer_id: &str,
    at_ms: i64,
) -> StoreResult<u64> {
    conn.prepare_cached(
        "UPDATE hosts SET desired_generation = desired_generation + 1, \
         desired_updated_at_ms = ?2 WHERE customer_id = ?1",
    )
    .and_then(|mut stmt| stmt.execute(params![customer_id, at_ms]))
    .db()
    .map(|changed| changed as u64)
}

pub(crate) fn set_recovery_mode(
    conn: &mut Connection,
    host_id: &str,
    until_ms: Option<i64>,
) -> StoreResult<HostRow> {
    let tx = immediate(conn)?;
    let changed = tx
        .prepare_cached("UPDATE hosts SET recovery_mode_until_ms = ?2 WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![host_id, until_ms]))
        .db()?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    let row = load_existing(&tx, host_id)?;
    tx.commit().db()?;
    Ok(row)
}

pub(crate) fn rotate_key(conn: &mut Connection, rotation: &KeyRotation) -> StoreResult<HostRow> {
    let tx = immediate(conn)?;
    let until: Option<Option<i64>> = tx
        .prepare_cached("SELECT recovery_mode_until_ms FROM hosts WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![rotation.host_id], |row| row.get(0))
                .optional()
        })
        .db()?;
    let Some(until) = until else {
        return Err(StoreError::NotFound);
    };
    if until.is_none_or(|until| until <= rotation.now_ms) {
        return Err(StoreError::Conflict("recovery_not_armed".into()));
    }
    tx.prepare_cached(
        "UPDATE hosts SET key_hash = ?2, hostname = ?3, agent_version = ?4, \
         recovery_mode_until_ms = NULL WHERE id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            rotation.host_id,
            rotation.new_key_hash,
            rotation.hostname,
            rotation.agent_version
        ])
    })
    .db()?;
    super::key_rotation::forget(&tx, &rotation.host_id)?;
    let row = load_existing(&tx, &rotation.host_id)?;
    tx.commit().db()?;
    Ok(row)
}

/// `values`: host id, backup namespace, repository fingerprint, wrapped key.
pub(crate) fn put_escrow(conn: &Connection, values: &[String; 4], at_ms: i64) -> StoreResult<()> {
    let [host_id, namespace, fingerprint, wrapped] = values;
    let changed = conn
        .prepare_cached(
            "UPDATE hosts SET backup_namespace = ?2, repository_fingerprint = ?3, escrow = ?4, \
             escrow_at_ms = ?5 WHERE id = ?1",
        )
        .and_then(|mut stmt| stmt.execute(params![host_id, namespace, fingerprint, wrapped, at_ms]))
        .db()?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

// ---- guests ----

pub(crate) fn create_guest(conn: &mut Connection, guest: &NewGuest) -> StoreResult<GuestRow> {
    let tx = immediate(conn)?;
    tx.prepare_cached(
        "INSERT INTO guests (id, customer_id, host_id, key_hash, display_name, created_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            guest.id,
            guest.customer_id,
            guest.host_id,
            guest.key_hash,
            guest.display_name,
            guest.created_at_ms
        ])
    })
    .db()?;
    let row = get_guest(&tx, "id", &guest.id)?
        .ok_or_else(|| StoreError::Backend("inserted guest vanished".into()))?;
    tx.commit().db()?;
    Ok(row)
}

/// `column` is `id` or `key_hash`, both unique.
pub(crate) fn get_guest(
    conn: &Connection,
    column: &str,
    value: &str,
) -> StoreResult<Option<GuestRow>> {
    let sql = format!("SELECT {GUEST_COLUMNS} FROM guests WHERE {column} = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![value], guest_from_row).optional())
        .db()
}

/// One statement per filter shape, so each can use its index.
pub(crate) fn list_guests(
    conn: &Connection,
    host_id: Option<&str>,
    customer_id: Option<&str>,
) -> StoreResult<Vec<GuestRow>> {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    for (column, value) in [("host_id", host_id), ("customer_id", customer_id)] {
        if let Some(value) = value {
            values.push(value);
            conditions.push(format!("{column} = ?{}", values.len()));
        }
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!("SELECT {GUEST_COLUMNS} FROM guests {filter} ORDER BY id");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params_from_iter(values), guest_from_row)?
                .collect()
        })
        .db()
}
