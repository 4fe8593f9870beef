//! Signed ops on the agent's side: which ones it accepts, what they change, and the verdicts
//! it owes the cloud.
//!
//! The action an op must match is computed from the agent's own intent, never taken from the
//! op: the op (parsed untrusted, only to know what it claims) is folded into the effective
//! desired state with `mftplus_fleet::apply_executed`, and the one destructive change that
//! `mftplus_fleet::diff` finds between the two is the action `verify_op` checks the op against.
//! An op whose claimed effect differs from what it would really change is refused at the last
//! stage of the pipeline, and its nonce is not burnt.
//!
//! Accepting an op writes its nonce and its authorization in one commit
//! ([`crate::state::StateDb::authorizing`]). From then on it is folded into the effective
//! desired state until the cloud has folded it in too: while `authorized` (the reconcile is to
//! carry it out), `executed` (done, verdict not yet taken) and `acked` (taken, but the cached
//! desired state predates it). A failed op is not folded: intent stays as the cloud has it, so
//! the next reconcile restores what a half-done step broke.

use crate::plan::Authorization;
use crate::state::{OpRecord, OpState, StateDb, StateError};
use mftplus_client::{Accepted, AgentClient, ClientError};
use mftplus_signing::{verify_op, AllowedSigners, ExpectedAction, Op, VerifyContext};
use mftplus_types::fleet::{op_status, ChangeKind, DesiredState, OpInfo, OpStatusUpdate};
use mftplus_types::ErrorCode;
use serde_json::{json, Value};

/// Ops whose change the cloud's desired state may not include yet.
pub const FOLDED: [OpState; 3] = [OpState::Authorized, OpState::Executed, OpState::Acked];

/// The cloud's desired state with every op in `records` folded in, in verification order. An
/// op that no longer applies (its guest is gone) is skipped: folding is idempotent.
pub fn effective(cloud: &DesiredState, records: &[OpRecord]) -> DesiredState {
    let mut state = cloud.clone();
    for record in records.iter().filter(|r| FOLDED.contains(&r.state)) {
        if let Ok(op) = Op::parse(record.blob.as_bytes()) {
            if let Ok(next) = mftplus_fleet::apply_executed(&state, &op) {
                state = next;
            }
        }
    }
    state
}

/// The actions the `authorized` ops in `records` allow (their blobs were verified).
pub fn authorizations(records: &[OpRecord]) -> Vec<Authorization> {
    records
        .iter()
        .filter(|r| r.state == OpState::Authorized)
        .filter_map(|r| {
            let op = Op::parse(r.blob.as_bytes()).ok()?;
            Some(Authorization {
                op_id: r.op_id.clone(),
                action: ExpectedAction {
                    op: op.op,
                    guest_id: op.target.guest_id,
                    params: op.params,
                },
            })
        })
        .collect()
}

/// The action `blob` must authorize, from the agent's own intent (see the module docs).
pub fn expected_for(folded: &DesiredState, blob: &str) -> Result<ExpectedAction, String> {
    let claimed = Op::parse(blob.as_bytes()).map_err(|e| format!("op blob: {e}"))?;
    if claimed.op == mftplus_fleet::diff::op::STORAGE_WIPE {
        return wipe_expected(folded, &claimed);
    }
    let candidate = mftplus_fleet::apply_executed(folded, &claimed)
        .map_err(|e| format!("the op does not apply to this host's desired state: {e}"))?;
    let destructive: Vec<_> = mftplus_fleet::diff(folded, &candidate)
        .into_iter()
        .filter(|c| c.kind == ChangeKind::Destructive)
        .collect();
    match destructive.as_slice() {
        // Already in effect: the op changes nothing, so it may only claim exactly itself.
        [] => Ok(ExpectedAction {
            op: claimed.op,
            guest_id: claimed.target.guest_id,
            params: claimed.params,
        }),
        [one] => Ok(mftplus_fleet::expected_action(one)),
        _ => Err(format!(
            "the op would make {} destructive changes; an op authorizes exactly one",
            destructive.len()
        )),
    }
}

/// A wipe is an act, not a state: folding it only clears the `wipe` flag, which the cloud never
/// publishes set (it is destructive), so the fold changes nothing to compare. The action is the
/// agent's own classification of setting `wipe` on the policy the op names, which must be a
/// policy of this host's intent.
fn wipe_expected(folded: &DesiredState, claimed: &Op) -> Result<ExpectedAction, String> {
    let id = claimed
        .params
        .get("durable_id")
        .and_then(Value::as_str)
        .ok_or("the wipe names no durable_id")?;
    let policy = folded
        .storage
        .get(id)
        .ok_or_else(|| format!("no storage policy for {id} on this host"))?;
    let mut before = DesiredState::default();
    let unset = mftplus_types::fleet::StoragePolicy {
        wipe: false,
        ..policy.clone()
    };
    before.storage.insert(id.to_string(), unset.clone());
    let mut after = before.clone();
    after.storage.insert(
        id.to_string(),
        mftplus_types::fleet::StoragePolicy {
            wipe: true,
            ..unset
        },
    );
    match mftplus_fleet::diff(&before, &after).as_slice() {
        [one] if one.kind == ChangeKind::Destructive => Ok(mftplus_fleet::expected_action(one)),
        other => Err(format!("a wipe classified as {} changes", other.len())),
    }
}

/// A verdict the cloud has to hear.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub op_id: String,
    /// `executed`, `failed` or `rejected`.
    pub status: &'static str,
    pub result: Value,
}

/// Takes the ops the cloud delivered: each new one is verified (and on success authorized in
/// the state); a refused one yields a `rejected` verdict. Ops the agent knows already are left
/// to [`pending_verdicts`].
pub fn intake(
    db: &StateDb,
    delivered: &[OpInfo],
    pinned: &AllowedSigners,
    host_id: &str,
    now_ms: i64,
) -> Result<Vec<Verdict>, StateError> {
    let mut rejected = Vec::new();
    for info in delivered {
        if db.op(&info.op_id)?.is_some() {
            continue;
        }
        let Some(signature) = info.signature.as_deref() else {
            rejected.push(reject(
                &info.op_id,
                "sig_missing",
                "the op carries no signature",
            ));
            continue;
        };
        let (cloud_generation, cloud) = db.desired()?;
        let folded = effective(&cloud, &db.ops_in(&FOLDED)?);
        let (action, note) = match expected_for(&folded, &info.blob) {
            Ok(action) => (action, None),
            // Still run the pipeline: a forgery is reported as such, not as inapplicable.
            Err(why) => (
                ExpectedAction {
                    op: String::new(),
                    guest_id: None,
                    params: Value::Null,
                },
                Some(why),
            ),
        };
        let context = VerifyContext {
            allowed_signers: pinned,
            host_id,
            action: &action,
            now: now_ms.div_euclid(1000),
        };
        let mut store = db.authorizing(&info.op_id, &info.blob, now_ms);
        match verify_op(signature, info.blob.as_bytes(), &context, &mut store) {
            Ok(verified) => tracing::info!(
                op_id = %info.op_id,
                op = %verified.op.op,
                signer = %verified.signer.fingerprint(),
                generation = cloud_generation,
                "signed op verified"
            ),
            Err(err) => {
                let reason = match &note {
                    Some(note) => format!("{err} ({note})"),
                    None => err.to_string(),
                };
                tracing::warn!(op_id = %info.op_id, code = err.code(), %reason, "signed op refused");
                rejected.push(reject(&info.op_id, err.code(), &reason));
            }
        }
    }
    Ok(rejected)
}

fn reject(op_id: &str, code: &str, reason: &str) -> Verdict {
    Verdict {
        op_id: op_id.to_string(),
        status: op_status::REJECTED,
        result: json!({"code": code, "reason": reason}),
    }
}

/// The verdicts of ops the agent finished whose verdict the cloud has not taken yet.
pub fn pending_verdicts(db: &StateDb) -> Result<Vec<Verdict>, StateError> {
    Ok(db
        .ops_in(&[OpState::Executed, OpState::Failed])?
        .into_iter()
        .map(|record| Verdict {
            status: if record.state == OpState::Executed {
                op_status::EXECUTED
            } else {
                op_status::FAILED
            },
            result: record.result.unwrap_or(Value::Null),
            op_id: record.op_id,
        })
        .collect())
}

/// Sends each verdict; returns whether the cloud took an `executed` one (then the desired
/// state must be fetched again, since the cloud folded the op into it).
pub async fn send_verdicts(
    db: &StateDb,
    client: &AgentClient,
    host_id: &str,
    verdicts: &[Verdict],
    now_ms: i64,
) -> Result<bool, StateError> {
    let mut refetch = false;
    for verdict in verdicts {
        let update = OpStatusUpdate {
            status: verdict.status.to_string(),
            result: Some(verdict.result.clone()),
        };
        let taken = match client.op_status(host_id, &verdict.op_id, &update).await {
            Ok(Accepted::Applied(())) => true,
            // An edge hub queued it; the cloud applies it later. Sent again next cycle until
            // the cloud answers (a repeat is refused as a conflict and dropped).
            Ok(Accepted::Queued) => false,
            // The cloud has a verdict already (an earlier send whose answer was lost).
            Err(err) if err.is(ErrorCode::OpStateConflict) => true,
            Err(err) => {
                log_send_failure(&verdict.op_id, &err);
                false
            }
        };
        if !taken {
            continue;
        }
        match verdict.status {
            op_status::EXECUTED => {
                db.set_op_state(
                    &verdict.op_id,
                    &[OpState::Executed],
                    OpState::Acked,
                    None,
                    now_ms,
                )?;
                refetch = true;
            }
            op_status::FAILED => {
                db.set_op_state(
                    &verdict.op_id,
                    &[OpState::Failed],
                    OpState::Settled,
                    None,
                    now_ms,
                )?;
            }
            _ => {}
        }
    }
    Ok(refetch)
}

fn log_send_failure(op_id: &str, err: &ClientError) {
    tracing::warn!(
        op_id,
        code = err.code(),
        "cannot send an op verdict yet: {}",
        err.message()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use mftplus_types::fleet::{GuestDesired, GuestSpec};

    fn with_web() -> DesiredState {
        let mut state = DesiredState::default();
        state.guests.insert(
            "web".into(),
            GuestDesired {
                spec: GuestSpec {
                    image: "img:1".into(),
                    ..GuestSpec::default()
                },
                run_state: Default::default(),
                extra: Default::default(),
            },
        );
        state
    }

    fn blob(op: &str, guest: &str, params: Value) -> String {
        String::from_utf8(
            Op {
                op: op.into(),
                target: mftplus_signing::Target {
                    host_id: "hst_1".into(),
                    guest_id: Some(guest.into()),
                },
                params,
                nonce: "ab".repeat(32),
                issued_at: 1,
                expires_at: 2,
                key_id: "k".into(),
            }
            .to_canonical_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn the_expected_action_comes_from_the_agents_own_intent() {
        let remove = blob("guest.remove", "web", json!({"guest_id": "web"}));
        let expected = expected_for(&with_web(), &remove).unwrap();
        assert_eq!(expected.op, "guest.remove");
        assert_eq!(expected.params, json!({"guest_id": "web"}));
        // A reimage that claims another `from` than this host runs expects the real one, so
        // the pipeline's last stage refuses the op.
        let reimage = blob(
            "guest.reimage",
            "web",
            json!({"guest_id": "web", "from": "img:0", "to": "img:2"}),
        );
        let expected = expected_for(&with_web(), &reimage).unwrap();
        assert_eq!(
            expected.params,
            json!({"guest_id": "web", "from": "img:1", "to": "img:2"})
        );
        assert!(expected_for(&with_web(), "not json").is_err());
    }

    #[test]
    fn a_wipe_is_expected_only_for_a_policy_of_this_host() {
        let id = "3f1c2b7a-9d4e-4c11-8a5b-0123456789ab";
        let mut state = with_web();
        state.storage.insert(
            id.into(),
            serde_json::from_value(json!({"role": "bulk", "class": "slow"})).unwrap(),
        );
        let mut wipe =
            Op::parse(blob("storage.wipe", "web", json!({"durable_id": id})).as_bytes()).unwrap();
        wipe.target.guest_id = None;
        let wipe = String::from_utf8(wipe.to_canonical_bytes()).unwrap();
        let expected = expected_for(&state, &wipe).unwrap();
        assert_eq!(
            (expected.op.as_str(), expected.guest_id, expected.params),
            ("storage.wipe", None, json!({"durable_id": id}))
        );
        // Also while the cached state still has the flag set.
        state.storage.get_mut(id).unwrap().wipe = true;
        assert_eq!(expected_for(&state, &wipe).unwrap().op, "storage.wipe");
        let elsewhere = wipe.replace(id, "00000000-0000-4000-8000-000000000000");
        assert!(expected_for(&state, &elsewhere).is_err());
    }

    #[test]
    fn folding_is_idempotent_and_skips_what_no_longer_applies() {
        let record = |state| OpRecord {
            op_id: "op_1".into(),
            blob: blob("guest.remove", "web", json!({"guest_id": "web"})),
            state,
            result: None,
        };
        assert!(effective(&with_web(), &[record(OpState::Authorized)])
            .guests
            .is_empty());
        assert!(
            effective(&DesiredState::default(), &[record(OpState::Acked)])
                .guests
                .is_empty()
        );
        assert_eq!(
            effective(&with_web(), &[record(OpState::Failed)]),
            with_web(),
            "a failed op is not folded"
        );
        assert_eq!(
            effective(&with_web(), &[record(OpState::Settled)]),
            with_web(),
            "a settled op is in the cloud's state already"
        );
    }
}
