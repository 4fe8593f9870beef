//! The fleet wire contracts against golden files in `testdata/fleet/`, in both directions:
//! golden → struct → JSON equals the golden, and the struct built in code serialises to the
//! golden. A change to a field name, an enum spelling or a skip rule breaks one of them.

use mftplus_types::fleet::{
    BackupRun, BackupSchedule, ControlEnvelope, DesiredState, GuestDesired, GuestSpec, GuestStatus,
    GuestStatusReport, HostReport, HostSystem, PendingChange, RunOutcome, RunState,
    SnapshotPointer, StoragePolicy, StorageTarget, TunnelHealth, Versions,
};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Value};
use std::fmt::Debug;

const HOST_REPORT: &str = include_str!("../testdata/fleet/host_report.json");
const ENVELOPE: &str = include_str!("../testdata/fleet/envelope.json");
const DESIRED_STATE: &str = include_str!("../testdata/fleet/desired_state.json");

const SYSTEM_DISK: &str = "5d2c8e4a-91b7-4f0e-a3c6-2b8d7e1f9a04";
const USB_DISK: &str = "c1e07b5f-3a2d-4c89-b6e4-7f0a9d3c2e18";
const IMAGE: &str = "debian-12-golden-2026.01";

/// Both directions for one contract.
fn check_golden<T>(golden: &str, built: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let golden: Value = serde_json::from_str(golden).expect("golden file is JSON");
    let parsed: T = serde_json::from_value(golden.clone()).expect("golden parses");
    assert_eq!(
        serde_json::to_value(&parsed).unwrap(),
        golden,
        "golden → struct → JSON"
    );
    assert_eq!(serde_json::to_value(built).unwrap(), golden, "code → JSON");
    assert_eq!(
        &parsed, built,
        "golden → struct equals the struct built in code"
    );
}

fn spec(cpu_cores: u32, memory_mb: u64, disk_gb: u64, image: &str) -> GuestSpec {
    GuestSpec {
        cpu_cores,
        memory_mb,
        disk_gb,
        image: image.into(),
        restore_from: None,
        kind: Default::default(),
        extra: Default::default(),
    }
}

fn db_spec() -> GuestSpec {
    GuestSpec {
        restore_from: Some("vm/102/2026-01-03T02:00:00Z".into()),
        ..spec(2, 16384, 200, IMAGE)
    }
}

fn host_report() -> HostReport {
    HostReport {
        host_id: "h-7f3a9c21".into(),
        agent_version: "0.4.2".into(),
        controller_version: Some("1.3.0".into()),
        applied_generation: 17,
        reported_at: Some("2026-01-10T11:55:02Z".into()),
        system: HostSystem {
            cpu_percent: 23.4,
            memory_used_bytes: 21_474_836_480,
            memory_total_bytes: 68_719_476_736,
            disk_used_bytes: 412_316_860_416,
            disk_total_bytes: 1_000_204_886_016,
            uptime_seconds: 1_728_000,
        },
        guests: vec![
            GuestStatusReport {
                guest_id: "web".into(),
                status: GuestStatus::Running,
                spec: Some(spec(4, 8192, 80, IMAGE)),
                controller_version: Some("1.3.0".into()),
            },
            GuestStatusReport {
                guest_id: "db".into(),
                status: GuestStatus::Running,
                spec: Some(db_spec()),
                controller_version: Some("1.3.0".into()),
            },
            GuestStatusReport {
                guest_id: "mail".into(),
                status: GuestStatus::Stopped,
                spec: Some(spec(1, 2048, 40, "debian-12-golden-2025.11")),
                controller_version: None,
            },
        ],
        storage_targets: vec![
            StorageTarget {
                durable_id: SYSTEM_DISK.into(),
                label: Some("nvme-system".into()),
                attached: true,
                reachable: true,
                data_bearing: true,
                size_bytes: Some(1_000_204_886_016),
                used_bytes: Some(412_316_860_416),
                last_backup: Some(BackupRun {
                    at: "2026-01-10T11:00:07Z".into(),
                    status: RunOutcome::Ok,
                    snapshot_id: Some("host/pve1/2026-01-10T11:00:07Z".into()),
                    detail: Some("3 guests, 41.2 GiB changed".into()),
                }),
                last_restore_test: Some(BackupRun {
                    at: "2026-01-07T03:30:00Z".into(),
                    status: RunOutcome::Ok,
                    snapshot_id: Some("vm/101/2026-01-07T02:00:00Z".into()),
                    detail: None,
                }),
            },
            StorageTarget {
                durable_id: USB_DISK.into(),
                label: Some("usb-bulk".into()),
                attached: true,
                reachable: false,
                data_bearing: true,
                size_bytes: Some(4_000_787_030_016),
                used_bytes: None,
                last_backup: Some(BackupRun {
                    at: "2026-01-04T22:00:11Z".into(),
                    status: RunOutcome::Failed,
                    snapshot_id: None,
                    detail: Some("target not reachable: device disconnected during write".into()),
                }),
                last_restore_test: None,
            },
        ],
        backup_snapshots: vec![
            SnapshotPointer {
                target: SYSTEM_DISK.into(),
                snapshot_id: "host/pve1/2026-01-10T11:00:07Z".into(),
                at: "2026-01-10T11:00:07Z".into(),
            },
            SnapshotPointer {
                target: USB_DISK.into(),
                snapshot_id: "host/pve1/2026-01-03T22:00:09Z".into(),
                at: "2026-01-03T22:00:09Z".into(),
            },
        ],
        tunnel: Some(TunnelHealth {
            healthy: true,
            detail: Some("4 connections to the edge".into()),
        }),
        pending_signature: vec![PendingChange {
            op: "guest.shrink_disk".into(),
            guest_id: Some("db".into()),
            params: json!({"guest_id": "db", "from_gb": 200, "to_gb": 120}),
        }],
    }
}

fn desired_state() -> DesiredState {
    let mut state = DesiredState {
        versions: Versions {
            agent: Some("0.4.2".into()),
            controller: Some("1.3.0".into()),
            golden_image: Some(IMAGE.into()),
            extra: Default::default(),
        },
        ..Default::default()
    };
    state.guests.insert(
        "db".into(),
        GuestDesired {
            spec: db_spec(),
            run_state: RunState::Running,
            extra: Default::default(),
        },
    );
    state.guests.insert(
        "web".into(),
        GuestDesired {
            spec: spec(4, 8192, 80, IMAGE),
            run_state: RunState::Stopped,
            extra: Default::default(),
        },
    );
    state.storage.insert(
        SYSTEM_DISK.into(),
        StoragePolicy {
            role: "system".into(),
            class: "fast".into(),
            backup: BackupSchedule::Hourly,
            wipe: false,
            extra: Default::default(),
        },
    );
    state.storage.insert(
        USB_DISK.into(),
        StoragePolicy {
            role: "bulk".into(),
            class: "slow".into(),
            backup: BackupSchedule::Weekly,
            wipe: true,
            extra: Default::default(),
        },
    );
    state
}

#[test]
fn host_report_matches_golden() {
    check_golden(HOST_REPORT, &host_report());
}

#[test]
fn envelope_matches_golden() {
    let envelope = ControlEnvelope {
        poll_interval_seconds: 300,
        blocked: false,
        desired_generation: 18,
        has_signed_ops: true,
        rotate_key: false,
    };
    check_golden(ENVELOPE, &envelope);
}

#[test]
fn desired_state_matches_golden() {
    check_golden(DESIRED_STATE, &desired_state());
}

#[test]
fn a_newer_agents_unknown_report_fields_are_tolerated() {
    let mut value: Value = serde_json::from_str(HOST_REPORT).unwrap();
    value["gpu"] = json!({"model": "future"});
    value["system"]["temperature_c"] = json!(51);
    value["storage_targets"][0]["smart"] = json!({"healthy": true});
    value["tunnel"]["protocol"] = json!("quic");
    value["pending_signature"][0]["reason"] = json!("no signed op");
    let parsed: HostReport = serde_json::from_value(value).expect("unknown fields tolerated");
    assert_eq!(parsed, host_report());
}

#[test]
fn unknown_desired_state_fields_land_in_extra_and_survive() {
    let mut value: Value = serde_json::from_str(DESIRED_STATE).unwrap();
    value["tunnel"] = json!({"token_ref": "t-1"});
    value["versions"]["kernel"] = json!("6.8");
    value["guests"]["web"]["autostart"] = json!(true);
    value["guests"]["web"]["spec"]["gpu"] = json!("passthrough");
    value["storage"][USB_DISK]["mount"] = json!("/srv/bulk");
    let parsed: DesiredState = serde_json::from_value(value.clone()).unwrap();

    assert_eq!(parsed.extra["tunnel"], json!({"token_ref": "t-1"}));
    assert_eq!(parsed.versions.extra["kernel"], "6.8");
    assert_eq!(parsed.guests["web"].extra["autostart"], true);
    assert_eq!(parsed.guests["web"].spec.extra["gpu"], "passthrough");
    assert_eq!(parsed.storage[USB_DISK].extra["mount"], "/srv/bulk");
    // Known fields are not duplicated into `extra`.
    assert_eq!(parsed.extra.len(), 1);
    assert_eq!(parsed.guests["web"].spec.extra.len(), 1);
    // And they are written back where they came from.
    assert_eq!(serde_json::to_value(&parsed).unwrap(), value);
}
