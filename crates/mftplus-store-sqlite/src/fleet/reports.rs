//! Report ingest (the reality columns of `hosts` and `guests`) and the two report streams.
//!
//! A batch is one `BEGIN IMMEDIATE` transaction with a fixed handful of cached statements per
//! report and nothing read back that the envelope does not need: ingest is the hottest write
//! path of the fleet (every host reports every minute or so).

use mftplus_store::{
    GuestReportRow, HostReportRow, NewGuestReport, NewHostReport, ReportAck, StoreError,
    StoreResult,
};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::{immediate, op_status, BLOCKED};
use crate::error::ResultExt;

pub(crate) fn ingest_host(
    conn: &mut Connection,
    reports: &[NewHostReport],
) -> StoreResult<Vec<StoreResult<ReportAck>>> {
    let tx = immediate(conn)?;
    let mut acks = Vec::with_capacity(reports.len());
    for report in reports {
        acks.push(ingest_one(&tx, report)?);
    }
    tx.commit().db()?;
    Ok(acks)
}

/// The inner `Err(NotFound)` is the answer for a host that is gone; the outer error abandons the
/// batch.
fn ingest_one(tx: &Transaction<'_>, report: &NewHostReport) -> StoreResult<StoreResult<ReportAck>> {
    if let Some(key) = &report.idempotency_key {
        if !claim_key(tx, &report.host_id, key, report.received_at_ms)? {
            return ack_only(tx, &report.host_id);
        }
    }
    // Reality columns only: intent belongs to operators (see `mftplus_store::fleet`).
    let host: Option<(String, i64)> = tx
        .prepare_cached(
            "UPDATE hosts SET agent_version = ?2, controller_version = ?3, \
             applied_generation = ?4, last_report_at_ms = ?5, last_backups_json = ?6, \
             pending_signature_json = ?7, poll_interval_seconds = ?8 WHERE id = ?1 \
             RETURNING customer_id, desired_generation",
        )
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    report.host_id,
                    report.agent_version,
                    report.controller_version,
                    report.applied_generation,
                    report.received_at_ms,
                    report.last_backups_json,
                    report.pending_signature_json,
                    report.poll_interval_seconds
                ],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
        })
        .db()?;
    let Some((customer_id, desired_generation)) = host else {
        return Ok(Err(StoreError::NotFound));
    };
    tx.prepare_cached(
        "INSERT INTO host_reports (host_id, customer_id, received_at_ms, applied_generation, \
         cpu_percent, memory_used_bytes, memory_total_bytes, disk_used_bytes, disk_total_bytes, \
         guests_total, guests_running, report_json) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            report.host_id,
            report.customer_id,
            report.received_at_ms,
            report.applied_generation,
            report.cpu_percent,
            report.memory_used_bytes,
            report.memory_total_bytes,
            report.disk_used_bytes,
            report.disk_total_bytes,
            report.guests_total,
            report.guests_running,
            report.report_json
        ])
    })
    .db()?;
    if !report.guests.is_empty() {
        // `host_id` in the key: a report can only speak for its own host's guests.
        let mut stmt = tx
            .prepare_cached(
                "UPDATE guests SET status = ?3, \
                 controller_version = COALESCE(?4, controller_version), last_seen_at_ms = ?5 \
                 WHERE id = ?1 AND host_id = ?2",
            )
            .db()?;
        for guest in &report.guests {
            stmt.execute(params![
                guest.guest_id,
                report.host_id,
                guest.status,
                guest.controller_version,
                report.received_at_ms
            ])
            .db()?;
        }
    }
    ack_for(tx, &customer_id, desired_generation, &report.host_id).map(Ok)
}

/// Records (scope, key) as seen; `false` when it already was (the report is a replay).
fn claim_key(tx: &Transaction<'_>, scope: &str, key: &str, at_ms: i64) -> StoreResult<bool> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO report_idempotency (scope, key, received_at_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT DO NOTHING",
        )
        .and_then(|mut stmt| stmt.execute(params![scope, key, at_ms]))
        .db()?;
    Ok(inserted == 1)
}

/// The ack of a replayed report: read, nothing written.
fn ack_only(tx: &Transaction<'_>, host_id: &str) -> StoreResult<StoreResult<ReportAck>> {
    let host: Option<(String, i64)> = tx
        .prepare_cached("SELECT customer_id, desired_generation FROM hosts WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![host_id], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .db()?;
    match host {
        None => Ok(Err(StoreError::NotFound)),
        Some((customer_id, desired_generation)) => {
            ack_for(tx, &customer_id, desired_generation, host_id).map(Ok)
        }
    }
}

fn ack_for(
    tx: &Transaction<'_>,
    customer_id: &str,
    desired_generation: i64,
    host_id: &str,
) -> StoreResult<ReportAck> {
    let (blocked, has_signed_ops, rotate_key) = tx
        .prepare_cached(
            "SELECT status = ?3, status <> ?3 AND EXISTS (SELECT 1 FROM signed_ops \
             WHERE host_id = ?2 AND status IN (?4, ?5)), \
             EXISTS (SELECT 1 FROM host_key_rotation_requests WHERE host_id = ?2) \
             FROM customers WHERE id = ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    customer_id,
                    host_id,
                    BLOCKED,
                    op_status::SIGNED,
                    op_status::DELIVERED
                ],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
        })
        .db()?;
    Ok(ReportAck {
        desired_generation,
        blocked,
        has_signed_ops,
        rotate_key,
    })
}

pub(crate) fn ingest_guest(
    conn: &mut Connection,
    reports: &[NewGuestReport],
) -> StoreResult<Vec<StoreResult<()>>> {
    let tx = immediate(conn)?;
    let mut results = Vec::with_capacity(reports.len());
    {
        let mut stamp = tx
            .prepare_cached(
                "UPDATE guests SET last_report_at_ms = ?2, controller_version = ?3 WHERE id = ?1",
            )
            .db()?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO guest_reports (guest_id, host_id, customer_id, received_at_ms, \
                 cpu_percent, memory_used_bytes, memory_total_bytes, report_json) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .db()?;
        for report in reports {
            if let Some(key) = &report.idempotency_key {
                let exists: bool = tx
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM guests WHERE id = ?1)")
                    .and_then(|mut stmt| stmt.query_row(params![report.guest_id], |r| r.get(0)))
                    .db()?;
                if !exists {
                    results.push(Err(StoreError::NotFound));
                    continue;
                }
                if !claim_key(&tx, &report.guest_id, key, report.received_at_ms)? {
                    results.push(Ok(()));
                    continue;
                }
            }
            let changed = stamp
                .execute(params![
                    report.guest_id,
                    report.received_at_ms,
                    report.controller_version
                ])
                .db()?;
            if changed == 0 {
                results.push(Err(StoreError::NotFound));
                continue;
            }
            insert
                .execute(params![
                    report.guest_id,
                    report.host_id,
                    report.customer_id,
                    report.received_at_ms,
                    report.cpu_percent,
                    report.memory_used_bytes,
                    report.memory_total_bytes,
                    report.report_json
                ])
                .db()?;
            results.push(Ok(()));
        }
    }
    tx.commit().db()?;
    Ok(results)
}

fn host_report_from_row(row: &Row<'_>) -> rusqlite::Result<HostReportRow> {
    Ok(HostReportRow {
        id: row.get(0)?,
        host_id: row.get(1)?,
        customer_id: row.get(2)?,
        received_at_ms: row.get(3)?,
        applied_generation: row.get(4)?,
        cpu_percent: row.get(5)?,
        memory_used_bytes: row.get(6)?,
        memory_total_bytes: row.get(7)?,
        disk_used_bytes: row.get(8)?,
        disk_total_bytes: row.get(9)?,
        guests_total: row.get(10)?,
        guests_running: row.get(11)?,
        report_json: row.get(12)?,
    })
}

pub(crate) fn list_host(
    conn: &Connection,
    host_id: &str,
    limit: u32,
) -> StoreResult<Vec<HostReportRow>> {
    conn.prepare_cached(
        "SELECT id, host_id, customer_id, received_at_ms, applied_generation, cpu_percent, \
         memory_used_bytes, memory_total_bytes, disk_used_bytes, disk_total_bytes, guests_total, \
         guests_running, report_json FROM host_reports WHERE host_id = ?1 \
         ORDER BY received_at_ms DESC, id DESC LIMIT ?2",
    )
    .and_then(|mut stmt| {
        stmt.query_map(params![host_id, limit], host_report_from_row)?
            .collect()
    })
    .db()
}

pub(crate) fn list_guest(
    conn: &Connection,
    guest_id: &str,
    limit: u32,
) -> StoreResult<Vec<GuestReportRow>> {
    conn.prepare_cached(
        "SELECT id, guest_id, host_id, customer_id, received_at_ms, cpu_percent, \
         memory_used_bytes, memory_total_bytes, report_json FROM guest_reports \
         WHERE guest_id = ?1 ORDER BY received_at_ms DESC, id DESC LIMIT ?2",
    )
    .and_then(|mut stmt| {
        stmt.query_map(params![guest_id, limit], |row| {
            Ok(GuestReportRow {
                id: row.get(0)?,
                guest_id: row.get(1)?,
                host_id: row.get(2)?,
                customer_id: row.get(3)?,
                received_at_ms: row.get(4)?,
                cpu_percent: row.get(5)?,
                memory_used_bytes: row.get(6)?,
                memory_total_bytes: row.get(7)?,
                report_json: row.get(8)?,
            })
        })?
        .collect()
    })
    .db()
}
