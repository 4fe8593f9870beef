//! The backup worker: beside the report loop (a backup can take hours; the heartbeat must not
//! wait for it), it looks every `backup.check_interval` which targets are due, runs restic,
//! and records each run in `agent.db`, where the next report picks it up.

use super::restore_test::restore_test;
use super::schedule::{backup_due, coverage, restore_test_due};
use super::{guest_data_dir, guest_tag, guests_dir_tag, namespace, restic_for, target_tag};
use super::{restic::Restic, BackupConfig};
use crate::config::AgentConfig;
use crate::error::AgentError;
use crate::probe::storage::storage_targets;
use crate::state::StateDb;
use crate::state_backup::{RunKind, RunRecord, RunState};
use chrono::SecondsFormat;
use mftplus_base::SharedClock;
use mftplus_types::fleet::{
    BackupRun, BackupSchedule, DesiredState, RunOutcome, SnapshotPointer, StorageTarget,
};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

/// What one run came to, for the command line and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub target: String,
    pub kind: RunKind,
    /// The snapshot (backups) on success; the reason, with its code, on failure.
    pub outcome: Result<Option<String>, String>,
}

/// Backups of one box.
pub struct Backups {
    config: AgentConfig,
    backup: BackupConfig,
    restic: Restic,
    db: StateDb,
    clock: SharedClock,
    host_id: String,
}

/// Why a run could not even start, or failed: a stable code and a sentence.
struct Refusal {
    code: &'static str,
    why: String,
}

impl Refusal {
    fn new(code: &'static str, why: impl Into<String>) -> Refusal {
        Refusal {
            code,
            why: why.into(),
        }
    }

    fn text(&self) -> String {
        format!("{} [{}]", self.why, self.code)
    }
}

impl From<super::restic::ResticError> for Refusal {
    fn from(err: super::restic::ResticError) -> Refusal {
        Refusal::new(err.code(), err.to_string())
    }
}

impl Backups {
    /// `None` when the config has no `backup:` section.
    pub fn open(config: &AgentConfig, clock: SharedClock) -> Result<Option<Backups>, AgentError> {
        let Some(backup) = config.backup.clone() else {
            return Ok(None);
        };
        let db = StateDb::open_to_read(&config.state_dir)?;
        let host_id = crate::enrolled_host(config)?;
        Ok(Some(Backups {
            restic: restic_for(config, &backup),
            config: config.clone(),
            backup,
            db,
            clock,
            host_id,
        }))
    }

    /// Runs until `stop`; a run in flight when it comes is cut short (its restic killed) and
    /// recorded as interrupted when the agent next opens its state.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::info!(repository = %self.backup.repository, "backups on the storage policies' schedules");
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = self.run_due() => {}
            }
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(self.backup.check_interval) => {}
            }
        }
    }

    /// One look: every due backup, then every due restore test.
    pub async fn run_due(&self) -> Vec<RunSummary> {
        let policies = match self.policies() {
            Ok(p) => p,
            Err(err) => {
                tracing::warn!("cannot read the desired state for backups: {err}");
                return Vec::new();
            }
        };
        let now = self.clock.now_ms();
        let retry = self.backup.retry_after.as_millis() as i64;
        let interval = self.backup.restore_test_interval.as_millis() as i64;
        let mut done = Vec::new();
        for (target, schedule) in &policies {
            match self.db.target_history(target) {
                Ok(history) if backup_due(*schedule, &history, now, retry) => {
                    done.push(self.backup_target(target).await);
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(%target, "cannot read the backup history: {err}"),
            }
        }
        for (target, _) in &policies {
            match self.db.target_history(target) {
                Ok(history) if restore_test_due(&history, now, interval, retry) => {
                    if let Some(ok) = history.last_ok_backup {
                        done.push(self.test_restore(target, &ok).await);
                    }
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(%target, "cannot read the backup history: {err}"),
            }
        }
        done
    }

    /// Backs up now, whatever the schedule: every target with a backup policy, or only `only`.
    pub async fn backup_now(&self, only: Option<&str>) -> Result<Vec<RunSummary>, AgentError> {
        let policies = self.policies()?;
        if let Some(wanted) = only {
            if !policies.iter().any(|(t, _)| t == wanted) {
                return Err(AgentError::Input(format!(
                    "no storage target `{wanted}` with a backup policy in the desired state"
                )));
            }
        }
        let mut done = Vec::new();
        for (target, _) in policies.iter().filter(|(t, _)| only.is_none_or(|o| o == t)) {
            done.push(self.backup_target(target).await);
        }
        Ok(done)
    }

    /// Tests a restore of each target's latest backup now.
    pub async fn restore_test_now(&self) -> Result<Vec<RunSummary>, AgentError> {
        let mut done = Vec::new();
        for (target, _) in self.policies()? {
            if let Some(ok) = self.db.target_history(&target)?.last_ok_backup {
                done.push(self.test_restore(&target, &ok).await);
            }
        }
        Ok(done)
    }

    /// The targets whose policy has a schedule.
    fn policies(&self) -> Result<Vec<(String, BackupSchedule)>, AgentError> {
        let (_, desired) = self.db.desired()?;
        Ok(desired
            .storage
            .iter()
            .filter(|(_, p)| p.backup != BackupSchedule::None)
            .map(|(id, p)| (id.clone(), p.backup))
            .collect())
    }

    async fn backup_target(&self, target: &str) -> RunSummary {
        let seq = self
            .db
            .begin_backup_run(target, RunKind::Backup, self.clock.now_ms());
        let outcome = self.backup_once(target).await;
        self.finish(seq, target, RunKind::Backup, outcome)
    }

    async fn test_restore(&self, target: &str, backup: &RunRecord) -> RunSummary {
        let seq = self
            .db
            .begin_backup_run(target, RunKind::RestoreTest, self.clock.now_ms());
        let outcome = match backup.snapshot_id.as_deref() {
            None => Err(Refusal::new(
                "restore_test_failed",
                "the last backup recorded no snapshot",
            )),
            Some(snapshot) => {
                let scratch = self.config.state_dir.join("backup").join("restore-test");
                restore_test(
                    &self.restic,
                    snapshot,
                    &scratch,
                    self.backup.restore_test_files,
                )
                .await
                .map(|compared| Some(format!("{snapshot}: {compared}")))
                .map_err(|(code, why)| Refusal::new(code, why))
            }
        };
        self.finish(seq, target, RunKind::RestoreTest, outcome)
    }

    fn finish(
        &self,
        seq: Result<i64, crate::state::StateError>,
        target: &str,
        kind: RunKind,
        outcome: Result<Option<String>, Refusal>,
    ) -> RunSummary {
        let now = self.clock.now_ms();
        let (state, snapshot, detail) = match &outcome {
            Ok(note) if kind == RunKind::Backup => (RunState::Ok, note.clone(), None),
            Ok(note) => (RunState::Ok, None, note.clone()),
            Err(refusal) => (RunState::Failed, None, Some(refusal.text())),
        };
        match &outcome {
            Ok(_) => {
                tracing::info!(%target, kind = kind.as_str(), snapshot = ?snapshot, "backup run ok")
            }
            Err(r) => {
                tracing::warn!(%target, kind = kind.as_str(), code = r.code, "backup run failed: {}", r.why)
            }
        }
        let recorded = seq.and_then(|seq| {
            self.db
                .finish_backup_run(seq, state, snapshot.as_deref(), detail.as_deref(), now)
        });
        if let Err(err) = recorded {
            tracing::error!(%target, "cannot record the backup run: {err}");
        }
        RunSummary {
            target: target.to_string(),
            kind,
            outcome: outcome.map_err(|r| r.text()),
        }
    }

    async fn backup_once(&self, target: &str) -> Result<Option<String>, Refusal> {
        let record = self
            .db
            .backup_repository()
            .map_err(|e| Refusal::new("agent_state", e.to_string()))?
            .ok_or_else(|| {
                Refusal::new(
                    "backup_not_initialised",
                    "no backup repository yet: run `mftplus agent backup init`",
                )
            })?;
        if !super::key_file(&self.config).exists() {
            return Err(Refusal::new(
                "backup_key_missing",
                "the repository key is not on this box: run `mftplus agent backup recover` with the recovery code",
            ));
        }
        let mount = mount_point_of(target).ok_or_else(|| {
            Refusal::new(
                "target_unreachable",
                format!("storage target {target} is not attached or not reachable"),
            )
        })?;
        let (_, desired) = self
            .db
            .desired()
            .map_err(|e| Refusal::new("agent_state", e.to_string()))?;
        let covered = self.coverage(&mount, &desired);
        if covered.paths.is_empty() {
            return Err(Refusal::new(
                "backup_nothing_to_cover",
                format!(
                    "target {target} is the system filesystem ({}) and holds no guest data; \
                     only guests' data is backed up from it",
                    mount.display()
                ),
            ));
        }
        let fingerprint = self.restic.fingerprint().await?;
        if fingerprint != record.fingerprint {
            return Err(Refusal::new(
                "backup_repository_changed",
                format!(
                    "the repository at {} is not the one this box initialised (id {} ≠ {})",
                    self.backup.repository, fingerprint, record.fingerprint
                ),
            ));
        }
        let mut tags = vec![
            "mftplus".to_string(),
            target_tag(target),
            guests_dir_tag(&self.config.guests_dir()),
        ];
        tags.extend(covered.guests.iter().map(|g| guest_tag(g)));
        let snapshot = self
            .restic
            .backup(
                &namespace(&self.host_id),
                &tags,
                &covered.paths,
                &covered.excludes,
            )
            .await?;
        Ok(Some(snapshot))
    }

    fn coverage(&self, mount: &Path, desired: &DesiredState) -> super::schedule::Coverage {
        let guests_dir = self.config.guests_dir();
        let guest_dirs: Vec<(String, PathBuf)> = desired
            .guests
            .keys()
            .filter_map(|id| Some((id.clone(), guest_data_dir(&guests_dir, id)?)))
            .filter(|(_, dir)| dir.is_dir())
            .collect();
        let state = &self.config.state_dir;
        let mut never: Vec<PathBuf> = ["agent.db", "agent.db-wal", "agent.db-shm", "backup"]
            .iter()
            .map(|name| state.join(name))
            .collect();
        if self.backup.repository.starts_with('/') {
            never.push(PathBuf::from(&self.backup.repository));
        }
        let device = std::fs::metadata(mount).map(|m| m.dev()).ok();
        let on_target =
            |p: &Path| device.is_some() && std::fs::metadata(p).map(|m| m.dev()).ok() == device;
        coverage(mount, &guest_dirs, &never, &on_target)
    }
}

/// Where the target with this durable id is mounted now, when it is reachable.
fn mount_point_of(durable_id: &str) -> Option<PathBuf> {
    storage_targets()
        .into_iter()
        .find(|t| t.durable_id == durable_id && t.reachable)
        .and_then(|t| t.label.map(PathBuf::from))
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn as_wire(run: &RunRecord) -> BackupRun {
    BackupRun {
        at: rfc3339(run.started_at_ms),
        status: if run.state == RunState::Ok {
            RunOutcome::Ok
        } else {
            RunOutcome::Failed
        },
        snapshot_id: run.snapshot_id.clone(),
        detail: run.detail.clone(),
    }
}

/// Fills each target's last backup and restore test from `agent.db`, and returns the latest
/// snapshot per target. The last backup reported is the last *successful* one, so the cloud's
/// deadline counts from it; a failure since rides along in its `detail` (a failed attempt
/// does not move the deadline, and a target that never succeeded reports the failure).
pub fn annotate_report(
    db: &StateDb,
    targets: &mut [StorageTarget],
) -> Result<Vec<SnapshotPointer>, AgentError> {
    let mut pointers = Vec::new();
    for target in targets.iter_mut() {
        let history = db.target_history(&target.durable_id)?;
        target.last_backup = match (&history.last_ok_backup, &history.last_backup) {
            (Some(ok), Some(last)) if last.seq != ok.seq => {
                let mut run = as_wire(ok);
                run.detail = Some(format!(
                    "latest attempt failed at {}: {}",
                    rfc3339(last.started_at_ms),
                    last.detail.as_deref().unwrap_or(last.state.as_str())
                ));
                Some(run)
            }
            (Some(ok), _) => Some(as_wire(ok)),
            (None, Some(last)) => Some(as_wire(last)),
            (None, None) => None,
        };
        target.last_restore_test = history.last_restore_test.as_ref().map(as_wire);
        if let Some(ok) = &history.last_ok_backup {
            if let Some(snapshot) = &ok.snapshot_id {
                pointers.push(SnapshotPointer {
                    target: target.durable_id.clone(),
                    snapshot_id: snapshot.clone(),
                    at: rfc3339(ok.started_at_ms),
                });
            }
        }
    }
    Ok(pointers)
}
