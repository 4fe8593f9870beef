//! When a target's backup or restore test is due, and what a target's backup covers: pure
//! rules over the history in `agent.db`, so they are tested without restic or a clock.

use crate::state_backup::{RunState, TargetHistory};
use mftplus_types::fleet::BackupSchedule;
use std::path::{Path, PathBuf};

/// How often a schedule asks for a backup. The cloud's deadline (`deadline_secs`) adds slack
/// on top, so a run that starts on time is never reported missed.
pub fn period_ms(schedule: BackupSchedule) -> Option<i64> {
    match schedule {
        BackupSchedule::None => None,
        BackupSchedule::Hourly => Some(3_600_000),
        BackupSchedule::Daily => Some(86_400_000),
        BackupSchedule::Weekly => Some(7 * 86_400_000),
    }
}

/// A backup is due when the schedule's period has passed since the last successful one (or
/// there never was one), and a failed attempt since is at least `retry_after_ms` old.
pub fn backup_due(
    schedule: BackupSchedule,
    history: &TargetHistory,
    now_ms: i64,
    retry_after_ms: i64,
) -> bool {
    let Some(period) = period_ms(schedule) else {
        return false;
    };
    let aged = history
        .last_ok_backup
        .as_ref()
        .is_none_or(|ok| now_ms.saturating_sub(ok.started_at_ms) >= period);
    aged && retried_enough(history.last_backup.as_ref(), now_ms, retry_after_ms)
}

/// A restore test is due when there is a successful backup to test and the last test is
/// `interval_ms` old (or there was none); a failed test is retried after `retry_after_ms`.
pub fn restore_test_due(
    history: &TargetHistory,
    now_ms: i64,
    interval_ms: i64,
    retry_after_ms: i64,
) -> bool {
    if history.last_ok_backup.is_none() {
        return false;
    }
    match &history.last_restore_test {
        None => true,
        Some(test) if test.state == RunState::Ok => {
            now_ms.saturating_sub(test.started_at_ms) >= interval_ms
        }
        Some(test) => now_ms.saturating_sub(test.started_at_ms) >= retry_after_ms,
    }
}

fn retried_enough(
    last: Option<&crate::state_backup::RunRecord>,
    now_ms: i64,
    retry_after_ms: i64,
) -> bool {
    match last {
        Some(run) if run.state != RunState::Ok => {
            now_ms.saturating_sub(run.started_at_ms) >= retry_after_ms
        }
        _ => true,
    }
}

/// What one target's backup covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub paths: Vec<PathBuf>,
    /// The guests whose data is inside `paths`.
    pub guests: Vec<String>,
    /// Inside `paths` but never backed up: the agent's own state (its keys) and a local
    /// repository.
    pub excludes: Vec<PathBuf>,
}

/// The folders a target's backup covers: the whole filesystem mounted at `mount_point`, except
/// the system's own (`/`), of which only the guests' data is taken — an image of the operating
/// system is not what a box's backup is for, and restoring one onto a new box would be wrong.
/// `on_target` says whether a path lives on this target's filesystem.
pub fn coverage(
    mount_point: &Path,
    guest_dirs: &[(String, PathBuf)],
    never: &[PathBuf],
    on_target: &dyn Fn(&Path) -> bool,
) -> Coverage {
    let guests: Vec<(String, PathBuf)> = guest_dirs
        .iter()
        .filter(|(_, dir)| on_target(dir))
        .cloned()
        .collect();
    let paths = if mount_point == Path::new("/") {
        guests.iter().map(|(_, dir)| dir.clone()).collect()
    } else {
        vec![mount_point.to_path_buf()]
    };
    let excludes = never
        .iter()
        .filter(|p| paths.iter().any(|covered| p.starts_with(covered)))
        .cloned()
        .collect();
    Coverage {
        paths,
        guests: guests.into_iter().map(|(id, _)| id).collect(),
        excludes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_backup::{RunKind, RunRecord};

    const HOUR: i64 = 3_600_000;

    fn run(kind: RunKind, started: i64, state: RunState) -> RunRecord {
        RunRecord {
            seq: started,
            target: "t".into(),
            kind,
            started_at_ms: started,
            finished_at_ms: Some(started + 1),
            state,
            snapshot_id: None,
            detail: None,
        }
    }

    fn history(ok: Option<i64>, last: Option<(i64, RunState)>) -> TargetHistory {
        TargetHistory {
            last_ok_backup: ok.map(|at| run(RunKind::Backup, at, RunState::Ok)),
            last_backup: last.map(|(at, state)| run(RunKind::Backup, at, state)),
            last_restore_test: None,
        }
    }

    #[test]
    fn backups_follow_the_schedule_and_retry_after_failures() {
        let now = 100 * HOUR;
        let never = history(None, None);
        assert!(backup_due(BackupSchedule::Daily, &never, now, HOUR / 6));
        assert!(!backup_due(BackupSchedule::None, &never, now, HOUR / 6));
        let fresh = history(Some(now - HOUR), Some((now - HOUR, RunState::Ok)));
        assert!(!backup_due(BackupSchedule::Daily, &fresh, now, HOUR / 6));
        assert!(backup_due(BackupSchedule::Hourly, &fresh, now, HOUR / 6));
        let old = history(Some(now - 25 * HOUR), Some((now - 25 * HOUR, RunState::Ok)));
        assert!(backup_due(BackupSchedule::Daily, &old, now, HOUR / 6));
        assert!(!backup_due(BackupSchedule::Weekly, &old, now, HOUR / 6));
        // A failure five minutes ago waits; one twenty minutes ago is retried.
        let failed_now = history(
            Some(now - 25 * HOUR),
            Some((now - HOUR / 12, RunState::Failed)),
        );
        assert!(!backup_due(
            BackupSchedule::Daily,
            &failed_now,
            now,
            HOUR / 6
        ));
        let failed_then = history(None, Some((now - HOUR / 3, RunState::Interrupted)));
        assert!(backup_due(
            BackupSchedule::Daily,
            &failed_then,
            now,
            HOUR / 6
        ));
    }

    #[test]
    fn restore_tests_need_a_backup_and_their_interval() {
        let now = 1000 * HOUR;
        let week = 168 * HOUR;
        let mut h = history(None, None);
        assert!(!restore_test_due(&h, now, week, HOUR));
        h.last_ok_backup = Some(run(RunKind::Backup, now - HOUR, RunState::Ok));
        assert!(restore_test_due(&h, now, week, HOUR));
        h.last_restore_test = Some(run(RunKind::RestoreTest, now - HOUR, RunState::Ok));
        assert!(!restore_test_due(&h, now, week, HOUR));
        h.last_restore_test = Some(run(RunKind::RestoreTest, now - week, RunState::Ok));
        assert!(restore_test_due(&h, now, week, HOUR));
        h.last_restore_test = Some(run(RunKind::RestoreTest, now - HOUR / 2, RunState::Failed));
        assert!(!restore_test_due(&h, now, week, HOUR));
        h.last_restore_test = Some(run(RunKind::RestoreTest, now - 2 * HOUR, RunState::Failed));
        assert!(restore_test_due(&h, now, week, HOUR));
    }

    #[test]
    fn the_system_filesystem_gives_only_guest_data() {
        let guests = vec![
            ("web".to_string(), PathBuf::from("/var/lib/a/guests/web")),
            ("db".to_string(), PathBuf::from("/srv/data/guests/db")),
        ];
        let never = vec![PathBuf::from("/var/lib/a"), PathBuf::from("/srv/data/repo")];
        let on_root = |p: &Path| p.starts_with("/var");
        let root = coverage(Path::new("/"), &guests, &never, &on_root);
        assert_eq!(root.paths, vec![PathBuf::from("/var/lib/a/guests/web")]);
        assert_eq!(root.guests, vec!["web".to_string()]);
        // The agent's own state is never inside the guest folders it covers here.
        assert!(root.excludes.is_empty());

        let on_srv = |p: &Path| p.starts_with("/srv/data");
        let srv = coverage(Path::new("/srv/data"), &guests, &never, &on_srv);
        assert_eq!(srv.paths, vec![PathBuf::from("/srv/data")]);
        assert_eq!(srv.guests, vec!["db".to_string()]);
        assert_eq!(srv.excludes, vec![PathBuf::from("/srv/data/repo")]);

        let empty = coverage(Path::new("/"), &guests, &never, &|_| false);
        assert!(empty.paths.is_empty() && empty.guests.is_empty());
    }
}
