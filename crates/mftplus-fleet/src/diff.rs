//! Every difference between two desired states, classified per the table in decision 0009.
//!
//! One [`DesiredChange`] per changed field, so a guest whose disk shrinks and whose image
//! changes yields two destructive changes (two ops, each signed for exactly what it does).
//! Benign changes carry `null` params; destructive ones carry exactly the params the table
//! gives, which are also the params the agent's gate compares.
//!
//! Cases the table does not list are `state.change` (destructive), because anything this code
//! does not understand must not run unsigned:
//! - every unknown field (the `extra` maps at each level), including those of a newly added
//!   guest or storage policy — the addition itself is benign, its unknown fields are not;
//! - clearing `restore_from` or `wipe` (the table lists only setting them);
//! - changing a guest's `kind` (it moves the guest to another driver);
//! - an added storage policy with `wipe` set is `storage.attach` plus `storage.wipe`: the drive
//!   being attached may hold data.
//!
//! An unknown field set to `null` counts as absent. Order: guests, storage, versions, then
//! top-level unknown fields; within each map by key; within a guest `run_state`, the spec
//! fields in declaration order, the spec's unknown fields, the guest's unknown fields.

use crate::location::{pointer, Location};
use mftplus_types::fleet::{
    ChangeKind, DesiredChange, DesiredState, GuestDesired, RunState, StoragePolicy, Versions,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Op names of the classification table.
pub mod op {
    /// A guest added (benign).
    pub const GUEST_CREATE: &str = "guest.create";
    /// A guest removed (destructive, `{guest_id}`).
    pub const GUEST_REMOVE: &str = "guest.remove";
    /// `run_state` became `running` (benign).
    pub const GUEST_START: &str = "guest.start";
    /// `run_state` became `stopped` (benign).
    pub const GUEST_STOP: &str = "guest.stop";
    /// `cpu_cores` or `memory_mb` changed, or `disk_gb` grew (benign).
    pub const GUEST_RESIZE: &str = "guest.resize";
    /// `disk_gb` shrank (destructive, `{guest_id, from_gb, to_gb}`).
    pub const GUEST_SHRINK_DISK: &str = "guest.shrink_disk";
    /// `image` changed on an existing guest (destructive, `{guest_id, from, to}`).
    pub const GUEST_REIMAGE: &str = "guest.reimage";
    /// `restore_from` set or changed on an existing guest (destructive, `{guest_id, snapshot}`).
    pub const GUEST_RESTORE: &str = "guest.restore";
    /// A storage policy added (benign).
    pub const STORAGE_ATTACH: &str = "storage.attach";
    /// A storage policy removed (destructive, `{durable_id}`).
    pub const STORAGE_DETACH: &str = "storage.detach";
    /// `role`, `class` or `backup` changed (benign).
    pub const STORAGE_POLICY: &str = "storage.policy";
    /// `wipe` set (destructive, `{durable_id}`).
    pub const STORAGE_WIPE: &str = "storage.wipe";
    /// A version changed (benign).
    pub const VERSION_BUMP: &str = "version.bump";
    /// Anything else (destructive, `{path, before, after}`).
    pub const STATE_CHANGE: &str = "state.change";
}

/// Every difference from `current` to `proposed`, classified; empty when they are equal
/// (treating an unknown field set to `null` as absent).
pub fn diff(current: &DesiredState, proposed: &DesiredState) -> Vec<DesiredChange> {
    let mut out = Vec::new();
    diff_guests(&current.guests, &proposed.guests, &mut out);
    diff_storage(&current.storage, &proposed.storage, &mut out);
    diff_versions(&current.versions, &proposed.versions, &mut out);
    diff_extra(
        &current.extra,
        &proposed.extra,
        |key| Location::TopExtra(key.to_owned()),
        &mut out,
    );
    out
}

fn benign(op: &str, guest_id: Option<&str>, path: String) -> DesiredChange {
    DesiredChange {
        kind: ChangeKind::Benign,
        op: op.to_owned(),
        guest_id: guest_id.map(str::to_owned),
        path,
        params: Value::Null,
    }
}

fn destructive(op: &str, guest_id: Option<&str>, path: String, params: Value) -> DesiredChange {
    DesiredChange {
        kind: ChangeKind::Destructive,
        op: op.to_owned(),
        guest_id: guest_id.map(str::to_owned),
        path,
        params,
    }
}

/// A `state.change` for `location` from `before` to `after`.
pub(crate) fn state_change(location: &Location, before: Value, after: Value) -> DesiredChange {
    let path = location.path();
    destructive(
        op::STATE_CHANGE,
        location.guest(),
        path.clone(),
        json!({"path": path, "before": before, "after": after}),
    )
}

fn union<'a, V>(a: &'a BTreeMap<String, V>, b: &'a BTreeMap<String, V>) -> BTreeSet<&'a String> {
    a.keys().chain(b.keys()).collect()
}

fn diff_extra(
    current: &BTreeMap<String, Value>,
    proposed: &BTreeMap<String, Value>,
    location: impl Fn(&str) -> Location,
    out: &mut Vec<DesiredChange>,
) {
    for key in union(current, proposed) {
        let before = current.get(key).cloned().unwrap_or(Value::Null);
        let after = proposed.get(key).cloned().unwrap_or(Value::Null);
        if before != after {
            out.push(state_change(&location(key), before, after));
        }
    }
}

fn diff_guests(
    current: &BTreeMap<String, GuestDesired>,
    proposed: &BTreeMap<String, GuestDesired>,
    out: &mut Vec<DesiredChange>,
) {
    for id in union(current, proposed) {
        let path = pointer(&["guests", id]);
        match (current.get(id), proposed.get(id)) {
            (Some(_), None) => out.push(destructive(
                op::GUEST_REMOVE,
                Some(id),
                path,
                json!({"guest_id": id}),
            )),
            (None, Some(new)) => {
                out.push(benign(op::GUEST_CREATE, Some(id), path));
                let empty = BTreeMap::new();
                diff_guest_extras(id, &empty, &empty, new, out);
            }
            (Some(old), Some(new)) => diff_guest(id, old, new, out),
            (None, None) => {}
        }
    }
}

fn diff_guest(id: &str, old: &GuestDesired, new: &GuestDesired, out: &mut Vec<DesiredChange>) {
    let field = |name: &str| pointer(&["guests", id, "spec", name]);
    if old.run_state != new.run_state {
        let op = match new.run_state {
            RunState::Running => op::GUEST_START,
            RunState::Stopped => op::GUEST_STOP,
        };
        out.push(benign(op, Some(id), pointer(&["guests", id, "run_state"])));
    }
    let (a, b) = (&old.spec, &new.spec);
    if a.kind != b.kind {
        out.push(state_change(
            &Location::Kind { guest: id.into() },
            Value::String(a.kind.as_str().into()),
            Value::String(b.kind.as_str().into()),
        ));
    }
    if a.cpu_cores != b.cpu_cores {
        out.push(benign(op::GUEST_RESIZE, Some(id), field("cpu_cores")));
    }
    if a.memory_mb != b.memory_mb {
        out.push(benign(op::GUEST_RESIZE, Some(id), field("memory_mb")));
    }
    if b.disk_gb > a.disk_gb {
        out.push(benign(op::GUEST_RESIZE, Some(id), field("disk_gb")));
    } else if b.disk_gb < a.disk_gb {
        out.push(destructive(
            op::GUEST_SHRINK_DISK,
            Some(id),
            field("disk_gb"),
            json!({"guest_id": id, "from_gb": a.disk_gb, "to_gb": b.disk_gb}),
        ));
    }
    if a.image != b.image {
        out.push(destructive(
            op::GUEST_REIMAGE,
            Some(id),
            field("image"),
            json!({"guest_id": id, "from": a.image, "to": b.image}),
        ));
    }
    match (&a.restore_from, &b.restore_from) {
        (before, Some(snapshot)) if before.as_ref() != Some(snapshot) => out.push(destructive(
            op::GUEST_RESTORE,
            Some(id),
            field("restore_from"),
            json!({"guest_id": id, "snapshot": snapshot}),
        )),
        (Some(before), None) => out.push(state_change(
            &Location::RestoreFrom { guest: id.into() },
            Value::String(before.clone()),
            Value::Null,
        )),
        _ => {}
    }
    diff_guest_extras(id, &a.extra, &old.extra, new, out);
}

/// The unknown fields of a guest's spec and of the guest itself, against `old_*` (empty for a
/// guest being added).
fn diff_guest_extras(
    id: &str,
    old_spec_extra: &BTreeMap<String, Value>,
    old_guest_extra: &BTreeMap<String, Value>,
    new: &GuestDesired,
    out: &mut Vec<DesiredChange>,
) {
    diff_extra(
        old_spec_extra,
        &new.spec.extra,
        |key| Location::SpecExtra {
            guest: id.into(),
            key: key.into(),
        },
        out,
    );
    diff_extra(
        old_guest_extra,
        &new.extra,
        |key| Location::GuestExtra {
            guest: id.into(),
            key: key.into(),
        },
        out,
    );
}

fn diff_storage(
    current: &BTreeMap<String, StoragePolicy>,
    proposed: &BTreeMap<String, StoragePolicy>,
    out: &mut Vec<DesiredChange>,
) {
    for id in union(current, proposed) {
        let path = pointer(&["storage", id]);
        match (current.get(id), proposed.get(id)) {
            (Some(_), None) => out.push(destructive(
                op::STORAGE_DETACH,
                None,
                path,
                json!({"durable_id": id}),
            )),
            (None, Some(new)) => {
                out.push(benign(op::STORAGE_ATTACH, None, path));
                if new.wipe {
                    out.push(wipe(id));
                }
                diff_storage_extra(id, &BTreeMap::new(), &new.extra, out);
            }
            (Some(old), Some(new)) => {
                let field = |name: &str| pointer(&["storage", id, name]);
                if old.role != new.role {
                    out.push(benign(op::STORAGE_POLICY, None, field("role")));
                }
                if old.class != new.class {
                    out.push(benign(op::STORAGE_POLICY, None, field("class")));
                }
                if old.backup != new.backup {
                    out.push(benign(op::STORAGE_POLICY, None, field("backup")));
                }
                match (old.wipe, new.wipe) {
                    (false, true) => out.push(wipe(id)),
                    (true, false) => out.push(state_change(
                        &Location::Wipe {
                            durable_id: id.clone(),
                        },
                        Value::Bool(true),
                        Value::Bool(false),
                    )),
                    _ => {}
                }
                diff_storage_extra(id, &old.extra, &new.extra, out);
            }
            (None, None) => {}
        }
    }
}

fn wipe(durable_id: &str) -> DesiredChange {
    destructive(
        op::STORAGE_WIPE,
        None,
        pointer(&["storage", durable_id, "wipe"]),
        json!({"durable_id": durable_id}),
    )
}

fn diff_storage_extra(
    id: &str,
    old: &BTreeMap<String, Value>,
    new: &BTreeMap<String, Value>,
    out: &mut Vec<DesiredChange>,
) {
    diff_extra(
        old,
        new,
        |key| Location::StorageExtra {
            durable_id: id.into(),
            key: key.into(),
        },
        out,
    );
}

fn diff_versions(current: &Versions, proposed: &Versions, out: &mut Vec<DesiredChange>) {
    let pairs = [
        ("agent", &current.agent, &proposed.agent),
        ("controller", &current.controller, &proposed.controller),
        (
            "golden_image",
            &current.golden_image,
            &proposed.golden_image,
        ),
    ];
    for (name, before, after) in pairs {
        if before != after {
            out.push(benign(op::VERSION_BUMP, None, pointer(&["versions", name])));
        }
    }
    diff_extra(
        &current.extra,
        &proposed.extra,
        |key| Location::VersionsExtra(key.to_owned()),
        out,
    );
}
