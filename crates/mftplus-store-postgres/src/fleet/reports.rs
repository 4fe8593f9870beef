//! Report ingest (the reality columns of `hosts` and `guests`) and the two report streams.
//!
//! A batch costs four statements whatever its size: lock the hosts and read the acks, update
//! the hosts, insert the reports, update the guests, each over `unnest`ed parameter arrays.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::GenericClient;
use mftplus_store::{
    GuestReportRow, HostReportRow, NewGuestReport, NewHostReport, ReportAck, StoreError,
    StoreResult,
};
use tokio_postgres::Row;

use super::{op_status, BLOCKED};
use crate::error::ResultExt;
use crate::sql;

/// The caller wraps this in a transaction.
pub(crate) async fn ingest_host<C: GenericClient>(
    tx: &C,
    reports: &[NewHostReport],
) -> StoreResult<Vec<StoreResult<ReportAck>>> {
    // Locks in id order, so two processes ingesting overlapping batches cannot deadlock. Ingest
    // writes no column the ack reads, so reading it before the writes is reading it after.
    let ids: Vec<&str> = reports.iter().map(|r| r.host_id.as_str()).collect();
    let rows = sql::query(
        tx,
        "SELECT h.id, h.desired_generation, c.status = $2, \
         c.status <> $2 AND EXISTS (SELECT 1 FROM signed_ops o \
           WHERE o.host_id = h.id AND o.status IN ($3, $4)), \
         EXISTS (SELECT 1 FROM host_key_rotation_requests r WHERE r.host_id = h.id) \
         FROM hosts h JOIN customers c ON c.id = h.customer_id \
         WHERE h.id = ANY($1) ORDER BY h.id FOR UPDATE OF h",
        &[&ids, &BLOCKED, &op_status::SIGNED, &op_status::DELIVERED],
    )
    .await?;
    let mut acks: HashMap<String, ReportAck> = HashMap::with_capacity(rows.len());
    for row in &rows {
        acks.insert(
            row.try_get(0).db()?,
            ReportAck {
                desired_generation: row.try_get(1).db()?,
                blocked: row.try_get(2).db()?,
                has_signed_ops: row.try_get(3).db()?,
                rotate_key: row.try_get(4).db()?,
            },
        );
    }
    let mut fresh = claim_keys(
        tx,
        reports
            .iter()
            .filter(|r| acks.contains_key(&r.host_id))
            .filter_map(|r| key_of(&r.host_id, &r.idempotency_key, r.received_at_ms)),
    )
    .await?;
    // A replayed report (its key claimed before, or earlier in this batch) is acknowledged
    // but neither stored nor applied.
    let live: Vec<&NewHostReport> = reports
        .iter()
        .filter(|r| acks.contains_key(&r.host_id))
        .filter(|r| is_fresh(&mut fresh, &r.host_id, &r.idempotency_key))
        .collect();
    if !live.is_empty() {
        update_hosts(tx, &live).await?;
        insert_reports(tx, &live).await?;
        update_guests(tx, &live).await?;
    }
    Ok(reports
        .iter()
        .map(|r| acks.get(&r.host_id).copied().ok_or(StoreError::NotFound))
        .collect())
}

fn key_of<'a>(
    scope: &'a str,
    key: &'a Option<String>,
    at_ms: i64,
) -> Option<(&'a str, &'a str, i64)> {
    key.as_deref().map(|key| (scope, key, at_ms))
}

/// Takes the first occurrence of (scope, key) out of the freshly claimed set.
fn is_fresh(fresh: &mut HashSet<(String, String)>, scope: &str, key: &Option<String>) -> bool {
    match key {
        None => true,
        Some(key) => fresh.remove(&(scope.to_owned(), key.clone())),
    }
}

/// Records the keys; returns those not seen before. `ON CONFLICT DO NOTHING` also skips a key
/// repeated inside the batch.
async fn claim_keys<'a, C: GenericClient>(
    tx: &C,
    keys: impl Iterator<Item = (&'a str, &'a str, i64)>,
) -> StoreResult<HashSet<(String, String)>> {
    let (mut scope, mut key, mut at) = (Vec::new(), Vec::new(), Vec::new());
    for (s, k, a) in keys {
        scope.push(s);
        key.push(k);
        at.push(a);
    }
    if scope.is_empty() {
        return Ok(HashSet::new());
    }
    sql::query(
        tx,
        "INSERT INTO report_idempotency (scope, key, received_at_ms) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) \
         ON CONFLICT DO NOTHING RETURNING scope, key",
        &[&scope, &key, &at],
    )
    .await?
    .iter()
    .map(|row| Ok((row.try_get(0).db()?, row.try_get(1).db()?)))
    .collect()
}

/// The last report of each host in the batch wins, as if they had been applied in order.
fn last_per<'a, T>(items: &[&'a T], key: impl Fn(&T) -> &str) -> Vec<&'a T> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(items.len());
    for (at, item) in items.iter().enumerate() {
        last.insert(key(item), at);
    }
    items
        .iter()
        .enumerate()
        .filter(|(at, item)| last.get(key(item)) == Some(at))
        .map(|(_, item)| *item)
        .collect()
}

/// Reality columns only: intent belongs to operators (see `mftplus_store::fleet`).
async fn update_hosts<C: GenericClient>(tx: &C, live: &[&NewHostReport]) -> StoreResult<()> {
    let last = last_per(live, |r| r.host_id.as_str());
    let id: Vec<&str> = last.iter().map(|r| r.host_id.as_str()).collect();
    let agent: Vec<&str> = last.iter().map(|r| r.agent_version.as_str()).collect();
    let controller: Vec<Option<&str>> = last
        .iter()
        .map(|r| r.controller_version.as_deref())
        .collect();
    let applied: Vec<i64> = last.iter().map(|r| r.applied_generation).collect();
    let at: Vec<i64> = last.iter().map(|r| r.received_at_ms).collect();
    let backups: Vec<&str> = last.iter().map(|r| r.last_backups_json.as_str()).collect();
    let pending: Vec<&str> = last
        .iter()
        .map(|r| r.pending_signature_json.as_str())
        .collect();
    let poll: Vec<i64> = last.iter().map(|r| r.poll_interval_seconds).collect();
    sql::execute(
        tx,
        "UPDATE hosts SET agent_version = r.agent, controller_version = r.controller, \
         applied_generation = r.applied, last_report_at_ms = r.at, \
         last_backups_json = r.backups, pending_signature_json = r.pending, \
         poll_interval_seconds = r.poll \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], \
         $6::text[], $7::text[], $8::bigint[]) \
         AS r(id, agent, controller, applied, at, backups, pending, poll) \
         WHERE hosts.id = r.id",
        &[
            &id,
            &agent,
            &controller,
            &applied,
            &at,
            &backups,
            &pending,
            &poll,
        ],
    )
    .await?;
    Ok(())
}

async fn insert_reports<C: GenericClient>(tx: &C, live: &[&NewHostReport]) -> StoreResult<()> {
    let host: Vec<&str> = live.iter().map(|r| r.host_id.as_str()).collect();
    let customer: Vec<&str> = live.iter().map(|r| r.customer_id.as_str()).collect();
    let at: Vec<i64> = live.iter().map(|r| r.received_at_ms).collect();
    let applied: Vec<i64> = live.iter().map(|r| r.applied_generation).collect();
    let cpu: Vec<f64> = live.iter().map(|r| r.cpu_percent).collect();
    let mem_used: Vec<i64> = live.iter().map(|r| r.memory_used_bytes).collect();
    let mem_total: Vec<i64> = live.iter().map(|r| r.memory_total_bytes).collect();
    let disk_used: Vec<i64> = live.iter().map(|r| r.disk_used_bytes).collect();
    let disk_total: Vec<i64> = live.iter().map(|r| r.disk_total_bytes).collect();
    let total: Vec<i64> = live.iter().map(|r| r.guests_total).collect();
    let running: Vec<i64> = live.iter().map(|r| r.guests_running).collect();
    let json: Vec<&str> = live.iter().map(|r| r.report_json.as_str()).collect();
    sql::execute(
        tx,
        "INSERT INTO host_reports (host_id, customer_id, received_at_ms, applied_generation, \
         cpu_percent, memory_used_bytes, memory_total_bytes, disk_used_bytes, disk_total_bytes, \
         guests_total, guests_running, report_json) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], \
         $5::float8[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], \
         $11::bigint[], $12::text[])",
        &[
            &host,
            &customer,
            &at,
            &applied,
            &cpu,
            &mem_used,
            &mem_total,
            &disk_used,
            &disk_total,
            &total,
            &running,
            &json,
        ],
    )
    .await?;
    Ok(())
}

/// `host_id` in the join: a report can only speak for its own host's guests.
async fn update_guests<C: GenericClient>(tx: &C, live: &[&NewHostReport]) -> StoreResult<()> {
    struct Seen<'a> {
        guest_id: &'a str,
        host_id: &'a str,
        status: &'a str,
        controller: Option<&'a str>,
        at: i64,
    }
    let seen: Vec<Seen<'_>> = live
        .iter()
        .flat_map(|r| {
            r.guests.iter().map(|g| Seen {
                guest_id: &g.guest_id,
                host_id: &r.host_id,
                status: &g.status,
                controller: g.controller_version.as_deref(),
                at: r.received_at_ms,
            })
        })
        .collect();
    if seen.is_empty() {
        return Ok(());
    }
    let refs: Vec<&Seen<'_>> = seen.iter().collect();
    let last = last_per(&refs, |s| s.guest_id);
    let id: Vec<&str> = last.iter().map(|s| s.guest_id).collect();
    let host: Vec<&str> = last.iter().map(|s| s.host_id).collect();
    let status: Vec<&str> = last.iter().map(|s| s.status).collect();
    let controller: Vec<Option<&str>> = last.iter().map(|s| s.controller).collect();
    let at: Vec<i64> = last.iter().map(|s| s.at).collect();
    sql::execute(
        tx,
        "UPDATE guests SET status = g.status, \
         controller_version = COALESCE(g.controller, guests.controller_version), \
         last_seen_at_ms = g.at \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) \
         AS g(id, host_id, status, controller, at) \
         WHERE guests.id = g.id AND guests.host_id = g.host_id",
        &[&id, &host, &status, &controller, &at],
    )
    .await?;
    Ok(())
}

/// The caller wraps this in a transaction. Two statements: stamp the guests (learning which
/// exist), then insert the reports of those.
pub(crate) async fn ingest_guest<C: GenericClient>(
    tx: &C,
    reports: &[NewGuestReport],
) -> StoreResult<Vec<StoreResult<()>>> {
    let mut fresh = claim_keys(
        tx,
        reports
            .iter()
            .filter_map(|r| key_of(&r.guest_id, &r.idempotency_key, r.received_at_ms)),
    )
    .await?;
    let replayed: Vec<bool> = reports
        .iter()
        .map(|r| !is_fresh(&mut fresh, &r.guest_id, &r.idempotency_key))
        .collect();
    let refs: Vec<&NewGuestReport> = reports
        .iter()
        .zip(&replayed)
        .filter(|(_, replayed)| !**replayed)
        .map(|(r, _)| r)
        .collect();
    let last = last_per(&refs, |r| r.guest_id.as_str());
    let id: Vec<&str> = last.iter().map(|r| r.guest_id.as_str()).collect();
    let at: Vec<i64> = last.iter().map(|r| r.received_at_ms).collect();
    let controller: Vec<Option<&str>> = last
        .iter()
        .map(|r| r.controller_version.as_deref())
        .collect();
    let found: HashSet<String> = sql::query(
        tx,
        "UPDATE guests SET last_report_at_ms = g.at, controller_version = g.controller \
         FROM unnest($1::text[], $2::bigint[], $3::text[]) AS g(id, at, controller) \
         WHERE guests.id = g.id RETURNING guests.id",
        &[&id, &at, &controller],
    )
    .await?
    .iter()
    .map(|row| row.try_get(0).db())
    .collect::<StoreResult<_>>()?;
    let live: Vec<&NewGuestReport> = refs
        .iter()
        .copied()
        .filter(|r| found.contains(&r.guest_id))
        .collect();
    if !live.is_empty() {
        let guest: Vec<&str> = live.iter().map(|r| r.guest_id.as_str()).collect();
        let host: Vec<&str> = live.iter().map(|r| r.host_id.as_str()).collect();
        let customer: Vec<&str> = live.iter().map(|r| r.customer_id.as_str()).collect();
        let at: Vec<i64> = live.iter().map(|r| r.received_at_ms).collect();
        let cpu: Vec<Option<f64>> = live.iter().map(|r| r.cpu_percent).collect();
        let used: Vec<Option<i64>> = live.iter().map(|r| r.memory_used_bytes).collect();
        let total: Vec<Option<i64>> = live.iter().map(|r| r.memory_total_bytes).collect();
        let json: Vec<&str> = live.iter().map(|r| r.report_json.as_str()).collect();
        sql::execute(
            tx,
            "INSERT INTO guest_reports (guest_id, host_id, customer_id, received_at_ms, \
             cpu_percent, memory_used_bytes, memory_total_bytes, report_json) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], \
             $5::float8[], $6::bigint[], $7::bigint[], $8::text[])",
            &[&guest, &host, &customer, &at, &cpu, &used, &total, &json],
        )
        .await?;
    }
    Ok(reports
        .iter()
        .zip(replayed)
        .map(|(r, replayed)| {
            if replayed || found.contains(&r.guest_id) {
                Ok(())
            } else {
                Err(StoreError::NotFound)
            }
        })
        .collect())
}

fn host_report_from_row(row: &Row) -> StoreResult<HostReportRow> {
    Ok(HostReportRow {
        id: row.try_get(0).db()?,
        host_id: row.try_get(1).db()?,
        customer_id: row.try_get(2).db()?,
        received_at_ms: row.try_get(3).db()?,
        applied_generation: row.try_get(4).db()?,
        cpu_percent: row.try_get(5).db()?,
        memory_used_bytes: row.try_get(6).db()?,
        memory_total_bytes: row.try_get(7).db()?,
        disk_used_bytes: row.try_get(8).db()?,
        disk_total_bytes: row.try_get(9).db()?,
        guests_total: row.try_get(10).db()?,
        guests_running: row.try_get(11).db()?,
        report_json: row.try_get(12).db()?,
    })
}

pub(crate) async fn list_host<C: GenericClient>(
    client: &C,
    host_id: &str,
    limit: u32,
) -> StoreResult<Vec<HostReportRow>> {
    sql::query(
        client,
        "SELECT id, host_id, customer_id, received_at_ms, applied_generation, cpu_percent, \
         memory_used_bytes, memory_total_bytes, disk_used_bytes, disk_total_bytes, guests_total, \
         guests_running, report_json FROM host_reports WHERE host_id = $1 \
         ORDER BY received_at_ms DESC, id DESC LIMIT $2",
        &[&host_id, &i64::from(limit)],
    )
    .await?
    .iter()
    .map(host_report_from_row)
    .collect()
}

pub(crate) async fn list_guest<C: GenericClient>(
    client: &C,
    guest_id: &str,
    limit: u32,
) -> StoreResult<Vec<GuestReportRow>> {
    sql::query(
        client,
        "SELECT id, guest_id, host_id, customer_id, received_at_ms, cpu_percent, \
         memory_used_bytes, memory_total_bytes, report_json FROM guest_reports \
         WHERE guest_id = $1 ORDER BY received_at_ms DESC, id DESC LIMIT $2",
        &[&guest_id, &i64::from(limit)],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(GuestReportRow {
            id: row.try_get(0).db()?,
            guest_id: row.try_get(1).db()?,
            host_id: row.try_get(2).db()?,
            customer_id: row.try_get(3).db()?,
            received_at_ms: row.try_get(4).db()?,
            cpu_percent: row.try_get(5).db()?,
            memory_used_bytes: row.try_get(6).db()?,
            memory_total_bytes: row.try_get(7).db()?,
            report_json: row.try_get(8).db()?,
        })
    })
    .collect()
}
