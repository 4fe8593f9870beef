//! Splitting an operator's edit into what is published now and what waits for a signature.

use crate::diff::{diff, op};
use crate::location::{guest_mut, policy_mut, Location};
use crate::FleetError;
use mftplus_types::fleet::{ChangeKind, DesiredChange, DesiredState};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The outcome of an operator's edit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditPlan {
    /// The state to publish (generation + 1): the proposal with every destructive change
    /// reverted to its current value. `None` when there is nothing benign to publish.
    pub published: Option<DesiredState>,
    /// Changes contained in `published`.
    pub benign: Vec<DesiredChange>,
    /// Changes that each become an op waiting for a signature.
    pub destructive: Vec<DesiredChange>,
}

/// Plans the edit from `current` to `proposed`.
///
/// Publishing `published` never carries a destructive change: `diff(current, published)` is
/// benign only and `diff(published, proposed)` destructive only. A removed guest stays, a
/// shrunk disk keeps its size, an unknown field keeps its old value.
pub fn plan_edit(current: &DesiredState, proposed: &DesiredState) -> EditPlan {
    let (benign, destructive): (Vec<_>, Vec<_>) = diff(current, proposed)
        .into_iter()
        .partition(|c| c.kind == ChangeKind::Benign);
    let published = if benign.is_empty() {
        None
    } else {
        let mut published = proposed.clone();
        // A revert cannot fail for changes the diff produced; should one ever, the check
        // below withholds the publication instead of letting the change through.
        let reverted = destructive
            .iter()
            .all(|change| revert(&mut published, current, change).is_ok());
        let safe = reverted
            && diff(current, &published)
                .iter()
                .all(|c| c.kind == ChangeKind::Benign);
        safe.then_some(published)
    };
    EditPlan {
        published,
        benign,
        destructive,
    }
}

/// Puts the value `change` would alter back to what it is in `current`.
fn revert(
    published: &mut DesiredState,
    current: &DesiredState,
    change: &DesiredChange,
) -> Result<(), FleetError> {
    let not_found = || FleetError::PathNotFound(change.path.clone());
    let guest_id = change.guest_id.as_deref().unwrap_or_default();
    let current_guest = current.guests.get(guest_id);
    match change.op.as_str() {
        op::GUEST_REMOVE => {
            let guest = current_guest.ok_or_else(not_found)?;
            published.guests.insert(guest_id.to_owned(), guest.clone());
        }
        op::GUEST_SHRINK_DISK => {
            let size = current_guest.ok_or_else(not_found)?.spec.disk_gb;
            guest_mut(published, guest_id)
                .ok_or_else(not_found)?
                .spec
                .disk_gb = size;
        }
        op::GUEST_REIMAGE => {
            let image = current_guest.ok_or_else(not_found)?.spec.image.clone();
            guest_mut(published, guest_id)
                .ok_or_else(not_found)?
                .spec
                .image = image;
        }
        op::GUEST_RESTORE => {
            let from = current_guest
                .ok_or_else(not_found)?
                .spec
                .restore_from
                .clone();
            guest_mut(published, guest_id)
                .ok_or_else(not_found)?
                .spec
                .restore_from = from;
        }
        op::STORAGE_DETACH => {
            let id = durable_id(change)?;
            let policy = current.storage.get(id).ok_or_else(not_found)?;
            published.storage.insert(id.to_owned(), policy.clone());
        }
        op::STORAGE_WIPE => {
            let id = durable_id(change)?;
            let wipe = current.storage.get(id).is_some_and(|p| p.wipe);
            policy_mut(published, id).ok_or_else(not_found)?.wipe = wipe;
        }
        op::STATE_CHANGE => {
            let before = change.params.get("before").cloned().unwrap_or(Value::Null);
            Location::parse(&change.path)?.set(published, before)?;
        }
        other => return Err(FleetError::UnknownOp(other.to_owned())),
    }
    Ok(())
}

fn durable_id(change: &DesiredChange) -> Result<&str, FleetError> {
    change
        .params
        .get("durable_id")
        .and_then(Value::as_str)
        .ok_or_else(|| FleetError::BadParam {
            op: change.op.clone(),
            param: "durable_id",
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mftplus_types::fleet::{GuestDesired, GuestSpec, RunState};

    fn guest(disk_gb: u64, image: &str) -> GuestDesired {
        GuestDesired {
            spec: GuestSpec {
                cpu_cores: 2,
                memory_mb: 2048,
                disk_gb,
                image: image.into(),
                restore_from: None,
                kind: Default::default(),
                extra: Default::default(),
            },
            run_state: RunState::Running,
            extra: Default::default(),
        }
    }

    #[test]
    fn destructive_only_edit_publishes_nothing() {
        let mut current = DesiredState::default();
        current.guests.insert("web".into(), guest(40, "debian-12"));
        let proposed = DesiredState::default();
        let plan = plan_edit(&current, &proposed);
        assert_eq!(plan.published, None);
        assert!(plan.benign.is_empty());
        assert_eq!(plan.destructive.len(), 1);
        assert_eq!(plan.destructive[0].op, op::GUEST_REMOVE);
    }

    #[test]
    fn mixed_edit_publishes_benign_part_and_keeps_destructive_values() {
        let mut current = DesiredState::default();
        current.guests.insert("web".into(), guest(40, "debian-12"));
        current.guests.insert("old".into(), guest(10, "debian-12"));
        let mut proposed = DesiredState::default();
        let mut web = guest(20, "debian-13");
        web.spec.cpu_cores = 4;
        web.run_state = RunState::Stopped;
        proposed.guests.insert("web".into(), web);
        proposed.versions.controller = Some("1.4.0".into());

        let plan = plan_edit(&current, &proposed);
        let published = plan.published.expect("benign changes exist");
        let web = &published.guests["web"];
        assert_eq!(web.spec.disk_gb, 40, "shrink reverted");
        assert_eq!(web.spec.image, "debian-12", "reimage reverted");
        assert_eq!(web.spec.cpu_cores, 4, "resize published");
        assert_eq!(web.run_state, RunState::Stopped, "stop published");
        assert!(published.guests.contains_key("old"), "removal reverted");
        assert_eq!(published.versions.controller.as_deref(), Some("1.4.0"));
        let ops: Vec<_> = plan.destructive.iter().map(|c| c.op.as_str()).collect();
        assert_eq!(
            ops,
            [op::GUEST_REMOVE, op::GUEST_SHRINK_DISK, op::GUEST_REIMAGE]
        );
    }
}
