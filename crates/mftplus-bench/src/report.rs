//! The host report the load generator sends: what a real agent on a three-guest box with two
//! storage targets reports (decision 0009), serialised once per host before the run so the
//! generator spends its CPU on requests, not on JSON.

use mftplus_types::fleet::{
    BackupRun, GuestSpec, GuestStatus, GuestStatusReport, HostReport, HostSystem, RunOutcome,
    SnapshotPointer, StorageTarget, TunnelHealth,
};

const GIB: u64 = 1024 * 1024 * 1024;

fn stamp(minutes_ago: i64) -> String {
    let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A full report for `host_id` (three guests with specs, two storage targets with their last
/// backup and restore test, snapshot pointers, tunnel health). `index` varies the numbers so
/// hosts do not all send the same bytes.
pub fn full(host_id: &str, index: usize) -> HostReport {
    let n = index as u64;
    let guest = |name: &str, cores: u32, memory_gb: u64, status: GuestStatus| GuestStatusReport {
        guest_id: format!("{host_id}-{name}"),
        status,
        spec: Some(GuestSpec {
            cpu_cores: cores,
            memory_mb: memory_gb * 1024,
            disk_gb: 40 + memory_gb * 10,
            image: format!("golden/{name}:2026.11.{}", 1 + n % 28),
            restore_from: None,
            kind: Default::default(),
            extra: Default::default(),
        }),
        controller_version: Some("1.4.2".into()),
    };
    let run = |minutes_ago: i64, kind: &str, target: &str| BackupRun {
        at: stamp(minutes_ago),
        status: RunOutcome::Ok,
        snapshot_id: Some(format!("{target}-{kind}-{:08x}", n * 7919 + 17)),
        detail: Some(format!(
            "{kind} of {target}: 1,284 files, 18.2 GiB scanned, 212 MiB new, deduplicated 96.1%"
        )),
    };
    let target = |id: &str, label: &str, size_gb: u64, used_gb: u64| StorageTarget {
        durable_id: id.into(),
        label: Some(label.into()),
        attached: true,
        reachable: true,
        data_bearing: true,
        size_bytes: Some(size_gb * GIB),
        used_bytes: Some(used_gb * GIB),
        last_backup: Some(run(42, "backup", id)),
        last_restore_test: Some(run(60 * 20, "restore-test", id)),
    };
    let system_disk = format!("5f0c2a9e-31d4-4b8e-9a77-{:012x}", n);
    let bulk_disk = format!("c81e728d-9d4c-4f2a-8b1e-{:012x}", n + 1);
    HostReport {
        host_id: host_id.into(),
        agent_version: "1.4.2".into(),
        controller_version: Some("1.4.2".into()),
        applied_generation: 3,
        reported_at: Some(stamp(0)),
        system: HostSystem {
            cpu_percent: 12.5 + (n % 70) as f64,
            memory_used_bytes: (20 + n % 10) * GIB,
            memory_total_bytes: 64 * GIB,
            disk_used_bytes: (700 + n % 100) * GIB,
            disk_total_bytes: 4000 * GIB,
            uptime_seconds: 86_400 * 12 + n,
        },
        guests: vec![
            guest("web", 4, 8, GuestStatus::Running),
            guest("db", 8, 32, GuestStatus::Running),
            guest("files", 2, 4, GuestStatus::Stopped),
        ],
        storage_targets: vec![
            target(&system_disk, "system (nvme0n1)", 1000, 310),
            target(&bulk_disk, "bulk (sda, raid1)", 3000, 1900),
        ],
        backup_snapshots: vec![
            SnapshotPointer {
                target: system_disk.clone(),
                snapshot_id: format!("{system_disk}-snap-{:08x}", n * 31),
                at: stamp(42),
            },
            SnapshotPointer {
                target: bulk_disk.clone(),
                snapshot_id: format!("{bulk_disk}-snap-{:08x}", n * 37),
                at: stamp(42),
            },
        ],
        tunnel: Some(TunnelHealth {
            healthy: true,
            detail: Some("connected to edge 2 of 2, rtt 18 ms".into()),
        }),
        pending_signature: Vec::new(),
    }
}

/// `full(host_id, index)` serialised and padded to about `target_bytes` by lengthening the
/// tunnel's free-text detail (agents put log excerpts there), so the report size is a knob.
pub fn serialised(host_id: &str, index: usize, target_bytes: usize) -> Vec<u8> {
    let mut report = full(host_id, index);
    let base = serde_json::to_vec(&report).expect("a report serialises");
    if base.len() >= target_bytes {
        return base;
    }
    if let Some(tunnel) = report.tunnel.as_mut() {
        let detail = tunnel.detail.get_or_insert_with(String::new);
        let line = "; keepalive ok";
        let mut missing = target_bytes - base.len();
        while missing > 0 {
            let take = missing.min(line.len());
            detail.push_str(&line[..take]);
            missing -= take;
        }
    }
    serde_json::to_vec(&report).expect("a report serialises")
}

/// The smallest report the cloud accepts, for seeding liveness.
pub fn minimal(host_id: &str) -> HostReport {
    HostReport {
        host_id: host_id.into(),
        agent_version: "1.4.2".into(),
        controller_version: None,
        applied_generation: 0,
        reported_at: None,
        system: HostSystem::default(),
        guests: Vec::new(),
        storage_targets: Vec::new(),
        backup_snapshots: Vec::new(),
        tunnel: None,
        pending_signature: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_report_has_the_requested_size_and_parses_back() {
        let bytes = serialised("h-0123456789abcdef", 7, 4096);
        assert_eq!(bytes.len(), 4096);
        let parsed: HostReport = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(parsed.host_id, "h-0123456789abcdef");
        assert_eq!(parsed.guests.len(), 3);
        assert_eq!(parsed.storage_targets.len(), 2);
        assert!(parsed
            .storage_targets
            .iter()
            .all(|t| t.last_backup.is_some() && t.last_restore_test.is_some()));
        assert_eq!(parsed.backup_snapshots.len(), 2);
    }

    #[test]
    fn a_small_target_leaves_the_report_unpadded() {
        let bytes = serialised("h-1", 0, 10);
        assert!(bytes.len() > 1000, "{}", bytes.len());
        let parsed: HostReport = serde_json::from_slice(&bytes).unwrap();
        let expected = full("h-1", 0);
        assert_eq!(parsed.guests, expected.guests);
        assert_eq!(parsed.tunnel, expected.tunnel);
    }
}
