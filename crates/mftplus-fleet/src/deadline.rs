//! The backup-deadline check: which storage targets with a backup policy have gone too long
//! without a successful backup, judged from the latest host report.

use chrono::DateTime;
use mftplus_types::fleet::{DesiredState, RunOutcome, StorageTarget};
use std::collections::BTreeSet;

/// The `durable_id`s whose backup is overdue at `now_ms` (Unix milliseconds).
///
/// A target with a backup policy (`BackupSchedule::deadline_secs` is `Some`) is overdue when
/// it is not in `targets` at all, when its last backup is missing, failed or has an
/// unparseable time, or when that successful backup is older than the deadline. The report
/// carries only the last run per target, so after a failed run no success is known and the
/// target counts as overdue. A backup time in the future (clock skew) is not overdue.
pub fn overdue_targets(
    desired: &DesiredState,
    targets: &[StorageTarget],
    now_ms: i64,
) -> BTreeSet<String> {
    desired
        .storage
        .iter()
        .filter_map(|(durable_id, policy)| {
            let deadline_ms = policy.backup.deadline_secs()?.saturating_mul(1000);
            let last_ok_ms = targets
                .iter()
                .find(|t| &t.durable_id == durable_id)
                .and_then(|t| t.last_backup.as_ref())
                .filter(|run| run.status == RunOutcome::Ok)
                .and_then(|run| DateTime::parse_from_rfc3339(&run.at).ok())
                .map(|at| at.timestamp_millis());
            let overdue = match last_ok_ms {
                Some(at) => now_ms.saturating_sub(at) > deadline_ms,
                None => true,
            };
            overdue.then(|| durable_id.clone())
        })
        .collect()
}

/// Targets overdue `now` that were not overdue at the `previous` check, in order: the ones an
/// `expected_backup_missed` event is due for (once per miss, until a backup succeeds again).
pub fn newly_missed(previous: &BTreeSet<String>, now: &BTreeSet<String>) -> Vec<String> {
    now.difference(previous).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mftplus_types::fleet::{BackupRun, BackupSchedule, StoragePolicy};

    // 2026-01-10T12:00:00Z
    const NOW_MS: i64 = 1_768_046_400_000;

    fn policy(backup: BackupSchedule) -> StoragePolicy {
        StoragePolicy {
            role: "bulk".into(),
            class: "slow".into(),
            backup,
            wipe: false,
            extra: Default::default(),
        }
    }

    fn target(id: &str, last: Option<(&str, RunOutcome)>) -> StorageTarget {
        StorageTarget {
            durable_id: id.into(),
            label: None,
            attached: true,
            reachable: true,
            data_bearing: true,
            size_bytes: None,
            used_bytes: None,
            last_backup: last.map(|(at, status)| BackupRun {
                at: at.into(),
                status,
                snapshot_id: None,
                detail: None,
            }),
            last_restore_test: None,
        }
    }

    #[test]
    fn each_rule_of_the_deadline() {
        let mut desired = DesiredState::default();
        for (id, schedule) in [
            ("fresh-hourly", BackupSchedule::Hourly),
            ("late-hourly", BackupSchedule::Hourly),
            ("fresh-daily", BackupSchedule::Daily),
            ("late-weekly", BackupSchedule::Weekly),
            ("failed", BackupSchedule::Daily),
            ("never", BackupSchedule::Daily),
            ("unreported", BackupSchedule::Daily),
            ("garbage-time", BackupSchedule::Daily),
            ("no-policy", BackupSchedule::None),
            ("offset", BackupSchedule::Hourly),
            ("future", BackupSchedule::Hourly),
        ] {
            desired.storage.insert(id.into(), policy(schedule));
        }
        let ok = RunOutcome::Ok;
        let targets = [
            target("fresh-hourly", Some(("2026-01-10T10:30:00Z", ok))),
            target("late-hourly", Some(("2026-01-10T09:59:59Z", ok))),
            target("fresh-daily", Some(("2026-01-09T10:00:01Z", ok))),
            target("late-weekly", Some(("2026-01-02T11:59:59Z", ok))),
            target("failed", Some(("2026-01-10T11:00:00Z", RunOutcome::Failed))),
            target("never", None),
            target("garbage-time", Some(("yesterday", ok))),
            target("no-policy", None),
            // 11:30 in Budapest is 10:30Z: 1.5 h old, within the hourly deadline.
            target("offset", Some(("2026-01-10T11:30:00+01:00", ok))),
            target("future", Some(("2026-01-10T13:00:00Z", ok))),
            target("not-in-policy", None),
        ];
        let overdue = overdue_targets(&desired, &targets, NOW_MS);
        let expected: BTreeSet<String> = [
            "late-hourly",
            "late-weekly",
            "failed",
            "never",
            "unreported",
            "garbage-time",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(overdue, expected);
    }

    #[test]
    fn the_deadline_itself_is_not_overdue() {
        let mut desired = DesiredState::default();
        desired
            .storage
            .insert("t".into(), policy(BackupSchedule::Hourly));
        let targets = [target("t", Some(("2026-01-10T10:00:00Z", RunOutcome::Ok)))];
        assert!(overdue_targets(&desired, &targets, NOW_MS).is_empty());
        assert_eq!(
            overdue_targets(&desired, &targets, NOW_MS + 1),
            BTreeSet::from(["t".to_owned()])
        );
    }

    #[test]
    fn only_new_misses_are_reported() {
        let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            newly_missed(&set(&["a", "b"]), &set(&["b", "c", "d"])),
            ["c", "d"]
        );
        assert!(newly_missed(&set(&["a"]), &set(&["a"])).is_empty());
        assert!(newly_missed(&set(&["a"]), &set(&[])).is_empty());
    }
}
