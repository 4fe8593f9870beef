//! What the agent must do to the box's drives to match the storage policies, as a pure
//! function: the same shape as `crate::plan` for guests.
//!
//! Reality is expressed as a storage map and diffed against intent with `mftplus_fleet::diff`,
//! so the classification is the cloud's own table (decision 0009): a policy whose drive is
//! attached but mounted nowhere is missing from reality (`storage.attach`, benign: mount it);
//! a drive mounted in the agent's own folder without a policy is in reality only
//! (`storage.detach`, destructive: unmount it); an authorized wipe sets `wipe` in intent
//! (`storage.wipe`, destructive). Everything else of a policy is copied from intent, because
//! there is nothing on the box to observe it by: `role`, `class` and `backup` take effect by
//! being read (the backup schedule reads `backup`).
//!
//! A policy whose drive is not attached is copied too: nothing can be done until the customer
//! plugs it in, and the box must not stay "converging" because a removable drive is away.

use super::drive_mount_point;
use crate::plan::Authorization;
use crate::probe::storage::Drive;
use mftplus_fleet::diff::op;
use mftplus_types::fleet::{ChangeKind, DesiredState, PendingChange, StoragePolicy};
use std::collections::BTreeMap;
use std::path::Path;

/// One thing to do to one drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StorageAction {
    /// Erase it and make a new ext4 with the same UUID (a signed `storage.wipe`).
    Wipe,
    /// Unmount it from the agent's folder (a signed `storage.detach`).
    Detach,
    /// Mount it in the agent's folder (`storage.attach`).
    Mount,
}

impl StorageAction {
    /// The word the journal records.
    pub fn name(self) -> &'static str {
        match self {
            StorageAction::Wipe => "wipe",
            StorageAction::Detach => "detach",
            StorageAction::Mount => "mount",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageStep {
    pub durable_id: String,
    pub action: StorageAction,
    /// The signed op this step carries out, for destructive steps.
    pub op_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoragePlan {
    /// Per drive: wipe before detach before mount.
    pub steps: Vec<StorageStep>,
    /// Destructive changes no verified op authorizes.
    pub waiting: Vec<PendingChange>,
}

/// The steps from `drives` to the policies of `effective`, given the verified ops;
/// `mount_root` is the agent's folder of mount points (canonical).
pub fn plan_storage(
    effective: &DesiredState,
    drives: &[Drive],
    mount_root: &Path,
    authorizations: &[Authorization],
) -> StoragePlan {
    let wanted = wanted(&effective.storage, authorizations);
    let reality = reality(&wanted, drives, mount_root);
    let as_state = |storage| DesiredState {
        storage,
        ..DesiredState::default()
    };
    let mut out = StoragePlan::default();
    for change in mftplus_fleet::diff(&as_state(reality), &as_state(wanted)) {
        let Some(durable_id) = durable_id_of(&change.path) else {
            continue;
        };
        if change.kind == ChangeKind::Benign {
            if change.op == op::STORAGE_ATTACH {
                out.steps.push(StorageStep {
                    durable_id,
                    action: StorageAction::Mount,
                    op_id: None,
                });
            }
            continue;
        }
        let expected = mftplus_fleet::expected_action(&change);
        let action = match change.op.as_str() {
            op::STORAGE_DETACH => Some(StorageAction::Detach),
            op::STORAGE_WIPE => Some(StorageAction::Wipe),
            _ => None,
        };
        let auth = authorizations.iter().find(|a| a.action == expected);
        match (action, auth) {
            (Some(action), Some(auth)) => out.steps.push(StorageStep {
                durable_id,
                action,
                op_id: Some(auth.op_id.clone()),
            }),
            _ => out.waiting.push(PendingChange {
                op: change.op.clone(),
                guest_id: change.guest_id.clone(),
                params: change.params.clone(),
            }),
        }
    }
    out.steps
        .sort_by(|a, b| (&a.durable_id, a.action).cmp(&(&b.durable_id, b.action)));
    out
}

/// Intent, with `wipe` set on each policy an authorized `storage.wipe` names: the fold of that
/// op clears the flag (the wipe is done), so until it is done the authorization is what says
/// a wipe is wanted.
fn wanted(
    storage: &BTreeMap<String, StoragePolicy>,
    authorizations: &[Authorization],
) -> BTreeMap<String, StoragePolicy> {
    let mut wanted = storage.clone();
    for auth in authorizations
        .iter()
        .filter(|a| a.action.op == op::STORAGE_WIPE)
    {
        let id = auth
            .action
            .params
            .get("durable_id")
            .and_then(|v| v.as_str());
        if let Some(policy) = id.and_then(|id| wanted.get_mut(id)) {
            policy.wipe = true;
        }
    }
    wanted
}

/// The drives in the desired state's terms (see the module docs).
fn reality(
    wanted: &BTreeMap<String, StoragePolicy>,
    drives: &[Drive],
    mount_root: &Path,
) -> BTreeMap<String, StoragePolicy> {
    let mut reality = BTreeMap::new();
    for (id, policy) in wanted {
        let drive = drives.iter().find(|d| &d.durable_id == id);
        if drive.is_none_or(Drive::is_mounted) {
            let applied = StoragePolicy {
                wipe: false,
                ..policy.clone()
            };
            reality.insert(id.clone(), applied);
        }
    }
    for drive in drives {
        let ours = drive_mount_point(mount_root, &drive.durable_id)
            .is_some_and(|point| drive.mount_points.contains(&point));
        if ours && !wanted.contains_key(&drive.durable_id) {
            let unmanaged = StoragePolicy {
                role: String::new(),
                class: String::new(),
                backup: Default::default(),
                wipe: false,
                extra: Default::default(),
            };
            reality.insert(drive.durable_id.clone(), unmanaged);
        }
    }
    reality
}

/// The durable id in a change's JSON pointer (`/storage/<id>…`, RFC 6901 escapes).
fn durable_id_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/storage/")?;
    let token = rest.split('/').next()?;
    Some(token.replace("~1", "/").replace("~0", "~"))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
