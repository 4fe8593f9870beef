//! The storage handshake (seed 002 §1; decision 0028): the customer plugs a drive in, the
//! agent reports it by its filesystem UUID (`crate::probe::storage`), the operator gives that
//! durable id a policy in the desired state, and the agent applies the policy to the drive.
//!
//! Applying a policy means mounting the drive in the agent's own folder,
//! `<state_dir>/storage/<durable_id>` (0700 mount points under a 0700 folder), unless it is
//! mounted somewhere already — a drive the customer mounted is left where it is and backed up
//! there. Removing the policy of a drive the agent mounted unmounts it (`storage.detach`), and
//! `wipe` erases it and makes a new ext4 with the same UUID (`storage.wipe`); both are
//! destructive and run only under a signed op the agent verified itself (`crate::ops`), exactly
//! as a guest's removal waits. Until then they are listed under `pending_signature`.
//!
//! Every step is journaled like a guest step (subject `storage:<durable_id>`), before it is
//! done, and every step is idempotent, so after a crash the next plan, computed from the
//! machine again, finishes what was cut short (`recover.rs` for a wipe).

mod act;
pub mod plan;
mod recover;

pub use act::MOUNT_FLAGS;
pub use plan::{plan_storage, StorageAction, StoragePlan, StorageStep};

use crate::plan::Authorization;
use crate::probe::storage::drives;
use crate::state::{StateDb, StateError};
use mftplus_base::Clock;
use mftplus_types::fleet::{DesiredState, PendingChange, StoragePolicy};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

/// Why a storage step could not be done, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    pub code: &'static str,
    pub message: String,
}

impl StorageError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        StorageError {
            code,
            message: message.into(),
        }
    }
}

/// The agent's folder of mount points.
pub fn mount_root(state_dir: &Path) -> PathBuf {
    state_dir.join("storage")
}

/// Where the agent mounts the drive `durable_id`: only for a canonical filesystem UUID, so a
/// desired state can never name a path outside the folder.
pub fn drive_mount_point(root: &Path, durable_id: &str) -> Option<PathBuf> {
    is_canonical_uuid(durable_id).then(|| root.join(durable_id))
}

/// Lowercase 8-4-4-4-12 hex, the form the probe reports.
pub fn is_canonical_uuid(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// The journal's subject of a drive's steps.
pub fn subject(durable_id: &str) -> String {
    format!("storage:{durable_id}")
}

/// How a storage reconcile ended.
#[derive(Debug, Default)]
pub struct StorageOutcome {
    pub steps_done: usize,
    pub steps_failed: usize,
    /// Each signed op carried out, with its result or failure.
    pub op_results: Vec<(String, Result<Value, Value>)>,
    /// Destructive changes waiting for a signature.
    pub waiting: Vec<PendingChange>,
    /// Steps the last look still finds to do.
    pub remaining: Vec<StorageStep>,
    /// A stop was requested before everything was done.
    pub interrupted: bool,
}

/// Passes of plan → steps → look again, as for guests.
const MAX_PASSES: usize = 3;

/// Applies the storage policies of `effective` to the drives of this machine.
pub async fn reconcile_storage(
    db: &StateDb,
    clock: &dyn Clock,
    generation: u64,
    effective: &DesiredState,
    mut authorizations: Vec<Authorization>,
    mount_root: &Path,
    stop: &watch::Receiver<bool>,
) -> Result<StorageOutcome, StateError> {
    let root = canonical(mount_root);
    let mut outcome = StorageOutcome::default();
    for _ in 0..MAX_PASSES {
        let planned = plan_storage(effective, &drives(), &root, &authorizations);
        if planned.steps.is_empty() || *stop.borrow() {
            outcome.interrupted = !planned.steps.is_empty();
            outcome.waiting = planned.waiting;
            outcome.remaining = planned.steps;
            return Ok(outcome);
        }
        let mut broken: BTreeSet<String> = BTreeSet::new();
        for step in &planned.steps {
            if *stop.borrow() {
                outcome.interrupted = true;
                break;
            }
            // After a failure the drive's later steps would act on a state they did not plan for.
            if broken.contains(&step.durable_id) {
                continue;
            }
            let result = journaled(db, clock, generation, step, &root, effective).await?;
            match &result {
                Ok(_) => outcome.steps_done += 1,
                Err(_) => {
                    outcome.steps_failed += 1;
                    broken.insert(step.durable_id.clone());
                }
            }
            if let Some(op_id) = &step.op_id {
                authorizations.retain(|a| &a.op_id != op_id);
                let result = result
                    .map(|detail| {
                        json!({"action": step.action.name(), "durable_id": step.durable_id, "detail": detail})
                    })
                    .map_err(|e| json!({"code": e.code, "error": e.message}));
                outcome.op_results.push((op_id.clone(), result));
            }
        }
        if !broken.is_empty() || outcome.interrupted {
            break;
        }
    }
    let planned = plan_storage(effective, &drives(), &root, &authorizations);
    outcome.waiting = planned.waiting;
    outcome.remaining = planned.steps;
    Ok(outcome)
}

async fn journaled(
    db: &StateDb,
    clock: &dyn Clock,
    generation: u64,
    step: &StorageStep,
    root: &Path,
    effective: &DesiredState,
) -> Result<Result<String, StorageError>, StateError> {
    let id = step.durable_id.as_str();
    let seq = db.journal_begin(
        generation,
        &subject(id),
        step.action.name(),
        step.op_id.as_deref(),
        clock.now_ms(),
    )?;
    let result = match step.action {
        StorageAction::Mount => act::mount(root, id)
            .await
            .map(|done| with_policy(done, effective.storage.get(id))),
        StorageAction::Detach => act::detach(root, id).await,
        StorageAction::Wipe => act::wipe(db, seq, root, id).await,
    };
    let detail = match &result {
        Ok(done) => done.clone(),
        Err(err) => format!("{}: {}", err.code, err.message),
    };
    db.journal_finish(seq, result.is_ok(), Some(&detail), clock.now_ms())?;
    match &result {
        Ok(done) => {
            tracing::info!(
                durable_id = id,
                action = step.action.name(),
                "storage step done: {done}"
            )
        }
        Err(err) => tracing::warn!(
            durable_id = id,
            action = step.action.name(),
            code = err.code,
            "storage step failed: {err}"
        ),
    }
    Ok(result)
}

/// The policy a mount applied, recorded with it in the journal.
fn with_policy(done: String, policy: Option<&StoragePolicy>) -> String {
    match policy {
        Some(p) => format!(
            "{done}; role={} class={} backup={}",
            p.role,
            p.class,
            serde_json::to_value(p.backup)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        ),
        None => done,
    }
}

/// `root` as `/proc/self/mountinfo` writes mount points: absolute, symbolic links resolved.
fn canonical(root: &Path) -> PathBuf {
    if let Ok(path) = std::fs::canonicalize(root) {
        return path;
    }
    match (root.parent(), root.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|p| p.join(name))
            .unwrap_or_else(|_| root.to_path_buf()),
        _ => root.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_only_for_canonical_uuids() {
        let root = Path::new("/s");
        let id = "3f1c2b7a-9d4e-4c11-8a5b-0123456789ab";
        assert_eq!(
            drive_mount_point(root, id),
            Some(PathBuf::from(format!("/s/{id}")))
        );
        for bad in [
            "",
            "..",
            "3F1C2B7A-9D4E-4C11-8A5B-0123456789AB",
            "3f1c2b7a-9d4e-4c11-8a5b-0123456789a",
            "3f1c2b7a-9d4e-4c11-8a5b-0123456789abc",
            "3f1c2b7a/9d4e-4c11-8a5b-0123456789ab",
            "ABCD-1234",
        ] {
            assert_eq!(drive_mount_point(root, bad), None, "{bad}");
        }
    }

    #[test]
    fn the_journal_records_the_policy_a_mount_applied() {
        let policy: StoragePolicy =
            serde_json::from_value(json!({"role": "bulk", "class": "slow", "backup": "weekly"}))
                .unwrap();
        assert_eq!(
            with_policy("mounted".into(), Some(&policy)),
            "mounted; role=bulk class=slow backup=weekly"
        );
    }
}
