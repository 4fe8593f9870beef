//! From a destructive change to the op blob an operator signs, and back: folding an executed op
//! into the desired state, and the action the agent's gate expects.

use crate::diff::op;
use crate::location::{guest_mut, pointer, policy_mut, Location};
use crate::FleetError;
use mftplus_signing::{ExpectedAction, Op, Target};
use mftplus_types::fleet::{ChangeKind, DesiredChange, DesiredState};
use rand::{rngs::OsRng, RngCore};
use serde_json::Value;

/// Bytes of randomness in an op nonce (hex-encoded, so 64 characters).
pub const NONCE_BYTES: usize = 32;

/// Builds the op for one destructive change: `target.guest_id` is the change's guest, params
/// are the change's params verbatim, the nonce is 32 fresh random bytes in hex, and the op is
/// valid from `now_secs` to `now_secs + ttl_secs`.
///
/// Refuses benign changes ([`FleetError::NotDestructive`]), params containing a float
/// ([`FleetError::FloatInParams`]) and anything `Op::validate` refuses.
pub fn build_op(
    change: &DesiredChange,
    host_id: &str,
    now_secs: i64,
    ttl_secs: i64,
    key_id: &str,
) -> Result<Op, FleetError> {
    if change.kind != ChangeKind::Destructive {
        return Err(FleetError::NotDestructive {
            op: change.op.clone(),
            path: change.path.clone(),
        });
    }
    if contains_float(&change.params) {
        return Err(FleetError::FloatInParams);
    }
    let mut nonce = [0u8; NONCE_BYTES];
    OsRng.fill_bytes(&mut nonce);
    let op = Op {
        op: change.op.clone(),
        target: Target {
            host_id: host_id.to_owned(),
            guest_id: change.guest_id.clone(),
        },
        params: change.params.clone(),
        nonce: hex::encode(nonce),
        issued_at: now_secs,
        // Saturating: an absurd TTL yields a far expiry, never a wrapped one in the past.
        expires_at: now_secs.saturating_add(ttl_secs),
        key_id: key_id.to_owned(),
    };
    op.validate()?;
    Ok(op)
}

/// The action the agent gates for `change`: same op name, guest and params, so an op built by
/// [`build_op`] from the cloud's diff matches the agent's own diff of the same states.
pub fn expected_action(change: &DesiredChange) -> ExpectedAction {
    ExpectedAction {
        op: change.op.clone(),
        guest_id: change.guest_id.clone(),
        params: change.params.clone(),
    }
}

/// Folds an executed destructive op into the desired state, so intent matches reality again:
/// `guest.remove` removes the guest, `storage.detach` the policy, `guest.shrink_disk` sets
/// `disk_gb` to `to_gb`, `guest.reimage` sets `image` to `to`, `guest.restore` sets
/// `restore_from` to the snapshot, `storage.wipe` clears the `wipe` flag (the wipe is done),
/// `state.change` sets the path to `after`.
///
/// Removing something already gone is not an error (the fold is idempotent); changing a field
/// of a guest or policy that does not exist is [`FleetError::PathNotFound`].
pub fn apply_executed(desired: &DesiredState, executed: &Op) -> Result<DesiredState, FleetError> {
    let mut next = desired.clone();
    let name = executed.op.as_str();
    match name {
        op::GUEST_REMOVE => {
            let id = guest_param(executed)?;
            next.guests.remove(&id);
        }
        op::GUEST_SHRINK_DISK => {
            let id = guest_param(executed)?;
            let to_gb = executed
                .params
                .get("to_gb")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad_param(name, "to_gb"))?;
            existing_guest(&mut next, &id)?.spec.disk_gb = to_gb;
        }
        op::GUEST_REIMAGE => {
            let id = guest_param(executed)?;
            let to = str_param(executed, "to")?;
            existing_guest(&mut next, &id)?.spec.image = to;
        }
        op::GUEST_RESTORE => {
            let id = guest_param(executed)?;
            let snapshot = str_param(executed, "snapshot")?;
            existing_guest(&mut next, &id)?.spec.restore_from = Some(snapshot);
        }
        op::STORAGE_DETACH => {
            let id = str_param(executed, "durable_id")?;
            next.storage.remove(&id);
        }
        op::STORAGE_WIPE => {
            let id = str_param(executed, "durable_id")?;
            policy_mut(&mut next, &id)
                .ok_or_else(|| FleetError::PathNotFound(pointer(&["storage", &id])))?
                .wipe = false;
        }
        op::STATE_CHANGE => {
            let path = str_param(executed, "path")?;
            let location = Location::parse(&path)?;
            check_target(executed, location.guest().map(str::to_owned))?;
            let after = executed
                .params
                .get("after")
                .cloned()
                .ok_or_else(|| bad_param(name, "after"))?;
            location.set(&mut next, after)?;
        }
        other => return Err(FleetError::UnknownOp(other.to_owned())),
    }
    Ok(next)
}

fn bad_param(op: &str, param: &'static str) -> FleetError {
    FleetError::BadParam {
        op: op.to_owned(),
        param,
    }
}

fn str_param(executed: &Op, param: &'static str) -> Result<String, FleetError> {
    executed
        .params
        .get(param)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| bad_param(&executed.op, param))
}

/// The `guest_id` param, which must be the guest the op targets.
fn guest_param(executed: &Op) -> Result<String, FleetError> {
    let id = str_param(executed, "guest_id")?;
    check_target(executed, Some(id.clone()))?;
    Ok(id)
}

fn check_target(executed: &Op, acts_on: Option<String>) -> Result<(), FleetError> {
    if executed.target.guest_id == acts_on {
        Ok(())
    } else {
        Err(FleetError::TargetMismatch {
            op: executed.op.clone(),
            target: executed.target.guest_id.clone(),
            acts_on,
        })
    }
}

fn existing_guest<'a>(
    state: &'a mut DesiredState,
    id: &str,
) -> Result<&'a mut mftplus_types::fleet::GuestDesired, FleetError> {
    guest_mut(state, id).ok_or_else(|| FleetError::PathNotFound(pointer(&["guests", id])))
}

fn contains_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(contains_float),
        Value::Object(map) => map.values().any(contains_float),
        Value::Null | Value::Bool(_) | Value::String(_) => false,
    }
}
