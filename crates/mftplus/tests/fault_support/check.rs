//! The invariant, checked against what the cloud stored.
//!
//! The cloud keeps every host report it applied as a row of `host_reports` (an `AUTOINCREMENT`
//! id, so id order is the order of application) with the report's JSON verbatim; the reporter's
//! sequence number is in `system.uptime_seconds`. The database is read directly (read-only,
//! after the cloud stopped cleanly) rather than through `GET /hosts/{id}/reports`, which orders
//! by the cloud's receive time: after a clock-skew fault that is not the order of application.
//!
//! For each reporter:
//! - every acknowledged report (a 2xx, the hub's queued answers included) is stored: `lost`;
//! - no report is stored twice, acknowledged or not: `duplicates`;
//! - the acknowledged reports are stored in the order they were sent: `out_of_order`;
//! - nothing is stored that was never sent: `phantoms`.
//!
//! A report that got an error may or may not be stored (the cloud may have applied it before
//! the answer was lost), but at most once; such reports are counted, not judged.

use super::reporters::{Ledger, Reporter};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// What a run (or several, added up) amounts to.
#[derive(Debug, Default, Clone)]
pub struct Verdict {
    pub sent: u64,
    pub acked: u64,
    pub acked_queued: u64,
    pub stored: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub phantoms: u64,
    pub unacked: u64,
    pub unacked_stored: u64,
    pub problems: Vec<String>,
}

impl Verdict {
    pub fn add(&mut self, other: &Verdict) {
        self.sent += other.sent;
        self.acked += other.acked;
        self.acked_queued += other.acked_queued;
        self.stored += other.stored;
        self.lost += other.lost;
        self.duplicates += other.duplicates;
        self.out_of_order += other.out_of_order;
        self.phantoms += other.phantoms;
        self.unacked += other.unacked;
        self.unacked_stored += other.unacked_stored;
        self.problems.extend(other.problems.iter().cloned());
    }

    pub fn holds(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.out_of_order == 0 && self.phantoms == 0
    }
}

/// Sequence numbers per host in the order the cloud applied them.
pub fn stored_reports(db: &Path) -> Result<HashMap<String, Vec<u64>>, String> {
    use rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("{}: {e}", db.display()))?;
    let mut stmt = conn
        .prepare("SELECT host_id, report_json FROM host_reports ORDER BY id")
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(|e| e.to_string())?;
    let mut stored: HashMap<String, Vec<u64>> = HashMap::new();
    for row in rows {
        let (host, json) = row.map_err(|e| e.to_string())?;
        let report: serde_json::Value = serde_json::from_str(&json).map_err(|e| e.to_string())?;
        let seq = report["system"]["uptime_seconds"]
            .as_u64()
            .ok_or_else(|| format!("a stored report of {host} has no sequence number: {json}"))?;
        stored.entry(host).or_default().push(seq);
    }
    Ok(stored)
}

/// Acknowledged reports not stored yet, over all reporters (to wait for the replay).
pub fn missing(ledger: &Ledger, reporters: &[Reporter], stored: &HashMap<String, Vec<u64>>) -> u64 {
    let mut missing = 0;
    for (reporter, outcomes) in reporters.iter().zip(&ledger.outcomes) {
        let have: HashSet<u64> = stored
            .get(&reporter.host_id)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        missing += outcomes
            .iter()
            .filter(|o| o.acked && !have.contains(&o.seq))
            .count() as u64;
    }
    missing
}

pub fn verify(
    ledger: &Ledger,
    reporters: &[Reporter],
    stored: &HashMap<String, Vec<u64>>,
) -> Verdict {
    let mut verdict = Verdict::default();
    for (reporter, outcomes) in reporters.iter().zip(&ledger.outcomes) {
        let empty = Vec::new();
        let applied = stored.get(&reporter.host_id).unwrap_or(&empty);
        verify_one(&reporter.host_id, outcomes, applied, &mut verdict);
    }
    verdict
}

fn verify_one(
    host: &str,
    outcomes: &[super::reporters::Outcome],
    applied: &[u64],
    v: &mut Verdict,
) {
    let acked: HashSet<u64> = outcomes.iter().filter(|o| o.acked).map(|o| o.seq).collect();
    let sent: HashSet<u64> = outcomes.iter().map(|o| o.seq).collect();
    let mut times: BTreeMap<u64, u64> = BTreeMap::new();
    for seq in applied {
        *times.entry(*seq).or_default() += 1;
    }
    v.sent += sent.len() as u64;
    v.acked += acked.len() as u64;
    v.acked_queued += outcomes.iter().filter(|o| o.acked && o.queued).count() as u64;
    v.stored += times.len() as u64;
    v.unacked += (sent.len() - acked.len()) as u64;
    v.unacked_stored += times
        .keys()
        .filter(|s| sent.contains(s) && !acked.contains(s))
        .count() as u64;
    for (seq, n) in times.iter().filter(|(_, n)| **n > 1) {
        v.duplicates += n - 1;
        let what = if acked.contains(seq) {
            "acknowledged"
        } else {
            "unacknowledged"
        };
        v.problems
            .push(format!("{host}: {what} report {seq} stored {n} times"));
    }
    for seq in times.keys().filter(|s| !sent.contains(s)) {
        v.phantoms += 1;
        v.problems
            .push(format!("{host}: report {seq} stored but never sent"));
    }
    let mut lost: Vec<u64> = acked
        .iter()
        .filter(|s| !times.contains_key(s))
        .copied()
        .collect();
    lost.sort_unstable();
    if !lost.is_empty() {
        v.lost += lost.len() as u64;
        let queued: Vec<u64> = outcomes
            .iter()
            .filter(|o| o.queued && lost.contains(&o.seq))
            .map(|o| o.seq)
            .collect();
        v.problems.push(format!(
            "{host}: acknowledged reports {lost:?} not stored (queued by the hub: {queued:?})"
        ));
    }
    let mut last = 0;
    for seq in applied.iter().filter(|s| acked.contains(s)) {
        if *seq < last {
            v.out_of_order += 1;
            v.problems.push(format!(
                "{host}: acknowledged report {seq} stored after {last}"
            ));
        }
        last = last.max(*seq);
    }
}
