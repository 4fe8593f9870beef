//! What the agent must do to make this box match the operator's intent, as a pure function.
//!
//! The plan diffs *reality* against the effective desired state with `mftplus_fleet::diff`,
//! the same classification the cloud uses, rather than diffing two desired states: a container
//! that died, a step a crash cut short, or a workload someone removed by hand all show up as a
//! difference and are repaired by the same rules. Reality is expressed as a desired state whose
//! observable fields (kind, image, CPU, memory, run state) come from the driver and whose other
//! fields are copied from intent, because the agent cannot see them and must not invent a
//! difference in them.
//!
//! Benign changes become steps. A destructive change becomes a step only when a verified op
//! authorizes exactly that change (same op, guest and params as `expected_action` computes);
//! otherwise it is reported as waiting for a signature and nothing is done.

use crate::driver::ObservedGuest;
use mftplus_fleet::diff::op;
use mftplus_signing::ExpectedAction;
use mftplus_types::fleet::{
    ChangeKind, DesiredState, GuestDesired, GuestKind, GuestSpec, GuestStatus, PendingChange,
    RunState,
};
use std::collections::BTreeMap;

/// One thing to do to one guest.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create it, then start it when `start`.
    Create {
        spec: GuestSpec,
        start: bool,
    },
    Start,
    Stop,
    /// New CPU and memory limits.
    Resize {
        spec: GuestSpec,
    },
    /// Remove it (authorized by a signed op).
    Remove,
    /// Remove and create again from a new spec (a signed reimage).
    Recreate {
        spec: GuestSpec,
        start: bool,
    },
    /// A signed change this driver cannot carry out; the op fails with this reason.
    Unsupported {
        op: String,
    },
}

impl Action {
    /// The word the journal records.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Create { .. } => "create",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Resize { .. } => "resize",
            Action::Remove => "remove",
            Action::Recreate { .. } => "recreate",
            Action::Unsupported { .. } => "unsupported",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub guest_id: String,
    pub action: Action,
    /// The signed op this step carries out, for destructive steps.
    pub op_id: Option<String>,
}

/// An op the agent verified, with the action it authorizes.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorization {
    pub op_id: String,
    pub action: ExpectedAction,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// In order; steps of one guest keep their relative order.
    pub steps: Vec<Step>,
    /// Destructive changes no verified op authorizes.
    pub waiting: Vec<PendingChange>,
    /// Guests whose kind the driver cannot run.
    pub unsupported: Vec<(String, GuestKind)>,
}

impl Plan {
    pub fn is_converged(&self) -> bool {
        self.steps.is_empty() && self.waiting.is_empty() && self.unsupported.is_empty()
    }
}

/// Reality in the desired state's terms (see the module docs).
pub fn reality_view(effective: &DesiredState, observed: &[ObservedGuest]) -> DesiredState {
    let mut guests = BTreeMap::new();
    for seen in observed {
        let intent = effective.guests.get(&seen.guest_id);
        let mut spec = intent.map(|g| g.spec.clone()).unwrap_or_default();
        spec.kind = seen.spec.kind;
        spec.image = seen.spec.image.clone();
        spec.cpu_cores = seen.spec.cpu_cores;
        spec.memory_mb = seen.spec.memory_mb;
        // A container has no disk of its own to size; a VM's disk is observed.
        if seen.spec.kind != GuestKind::Container || intent.is_none() {
            spec.disk_gb = seen.spec.disk_gb;
        }
        let run_state = match seen.status {
            GuestStatus::Running => RunState::Running,
            GuestStatus::Stopped | GuestStatus::Unknown => RunState::Stopped,
        };
        let extra = intent.map(|g| g.extra.clone()).unwrap_or_default();
        guests.insert(
            seen.guest_id.clone(),
            GuestDesired {
                spec,
                run_state,
                extra,
            },
        );
    }
    DesiredState {
        guests,
        storage: effective.storage.clone(),
        versions: effective.versions.clone(),
        extra: effective.extra.clone(),
    }
}

/// The steps from `observed` to `effective`, given the verified ops and what the driver runs.
pub fn plan(
    effective: &DesiredState,
    observed: &[ObservedGuest],
    authorizations: &[Authorization],
    supports: impl Fn(GuestKind) -> bool,
) -> Plan {
    let reality = reality_view(effective, observed);
    let mut out = Plan::default();
    let mut resized: Vec<String> = Vec::new();
    for change in mftplus_fleet::diff(&reality, effective) {
        let guest = change.guest_id.clone().unwrap_or_default();
        let wanted = effective.guests.get(&guest);
        if change.kind == ChangeKind::Benign {
            let step = match (change.op.as_str(), wanted) {
                (op::GUEST_CREATE, Some(w)) if !supports(w.spec.kind) => {
                    out.unsupported.push((guest.clone(), w.spec.kind));
                    None
                }
                (op::GUEST_CREATE, Some(w)) => Some(Action::Create {
                    spec: w.spec.clone(),
                    start: w.run_state == RunState::Running,
                }),
                (op::GUEST_START, Some(_)) => Some(Action::Start),
                (op::GUEST_STOP, Some(_)) => Some(Action::Stop),
                (op::GUEST_RESIZE, Some(w)) if !resized.contains(&guest) => {
                    resized.push(guest.clone());
                    Some(Action::Resize {
                        spec: w.spec.clone(),
                    })
                }
                // Storage policy and version changes are the data-work and update issues';
                // reality copies them from intent, so they never reach here today.
                _ => None,
            };
            if let Some(action) = step {
                out.steps.push(Step {
                    guest_id: guest,
                    action,
                    op_id: None,
                });
            }
            continue;
        }
        let expected = mftplus_fleet::expected_action(&change);
        let Some(auth) = authorizations.iter().find(|a| a.action == expected) else {
            out.waiting.push(PendingChange {
                op: change.op.clone(),
                guest_id: change.guest_id.clone(),
                params: change.params.clone(),
            });
            continue;
        };
        let action = match (change.op.as_str(), wanted) {
            (op::GUEST_REMOVE, _) => Action::Remove,
            (op::GUEST_REIMAGE, Some(w)) => Action::Recreate {
                spec: w.spec.clone(),
                start: w.run_state == RunState::Running,
            },
            (op::GUEST_SHRINK_DISK, Some(w)) => Action::Resize {
                spec: w.spec.clone(),
            },
            (other, _) => Action::Unsupported {
                op: other.to_string(),
            },
        };
        out.steps.push(Step {
            guest_id: guest,
            action,
            op_id: Some(auth.op_id.clone()),
        });
    }
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
