//! Op blobs from changes, folding executed ops back, and the agent's expected action.

use mftplus_fleet::{apply_executed, build_op, diff, expected_action, FleetError};
use mftplus_signing::{
    sign_op, verify_op, AllowedSigners, KeyAlgorithm, MemoryNonceStore, Op, OpError, PrivateKey,
    Signer, Target, VerifyContext, VerifyError,
};
use mftplus_types::fleet::{
    BackupSchedule, ChangeKind, DesiredChange, DesiredState, GuestDesired, GuestSpec, RunState,
    StoragePolicy,
};
use serde_json::{json, Value};

const NOW: i64 = 1_768_046_400;
const TTL: i64 = 7 * 86_400;

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

fn state() -> DesiredState {
    let mut s = DesiredState::default();
    s.guests.insert("web".into(), guest(40, "img-1"));
    s.guests.insert("db".into(), guest(100, "img-1"));
    s.storage.insert(
        "disk-1".into(),
        StoragePolicy {
            role: "bulk".into(),
            class: "slow".into(),
            backup: BackupSchedule::Daily,
            wipe: false,
            extra: Default::default(),
        },
    );
    s
}

fn only_change(current: &DesiredState, proposed: &DesiredState) -> DesiredChange {
    let changes = diff(current, proposed);
    assert_eq!(changes.len(), 1, "{changes:?}");
    changes.into_iter().next().unwrap()
}

#[test]
fn build_op_carries_the_change_and_a_fresh_nonce() {
    let current = state();
    let mut proposed = current.clone();
    proposed.guests.remove("db");
    let change = only_change(&current, &proposed);
    let op = build_op(&change, "host-1", NOW, TTL, "SHA256:op").unwrap();
    assert_eq!(op.op, "guest.remove");
    assert_eq!(
        op.target,
        Target {
            host_id: "host-1".into(),
            guest_id: Some("db".into())
        }
    );
    assert_eq!(op.params, json!({"guest_id": "db"}));
    assert_eq!((op.issued_at, op.expires_at), (NOW, NOW + TTL));
    assert_eq!(op.key_id, "SHA256:op");
    assert_eq!(op.nonce.len(), 64);
    assert!(hex::decode(&op.nonce).is_ok());
    let again = build_op(&change, "host-1", NOW, TTL, "SHA256:op").unwrap();
    assert_ne!(op.nonce, again.nonce);
    // The blob is canonical and parses back to the same op.
    assert_eq!(Op::parse(&op.to_canonical_bytes()).unwrap(), op);
}

#[test]
fn build_op_refuses_benign_floats_and_invalid_ops() {
    let current = state();
    let mut proposed = current.clone();
    proposed.versions.agent = Some("1.0".into());
    let benign = only_change(&current, &proposed);
    assert_eq!(benign.kind, ChangeKind::Benign);
    assert_eq!(
        build_op(&benign, "h", NOW, TTL, "k"),
        Err(FleetError::NotDestructive {
            op: "version.bump".into(),
            path: "/versions/agent".into()
        })
    );

    let mut proposed = current.clone();
    proposed.extra.insert("ratio".into(), json!({"x": [0.5]}));
    let float = only_change(&current, &proposed);
    assert_eq!(
        build_op(&float, "h", NOW, TTL, "k"),
        Err(FleetError::FloatInParams)
    );

    proposed.extra.insert("ratio".into(), json!(2));
    let ok = only_change(&current, &proposed);
    assert_eq!(
        build_op(&ok, "h", NOW, -1, "k"),
        Err(FleetError::InvalidOp(OpError::InvertedWindow))
    );
    assert_eq!(
        build_op(&ok, "", NOW, TTL, "k"),
        Err(FleetError::InvalidOp(OpError::InvalidValue(
            "target.host_id"
        )))
    );
    assert!(build_op(&ok, "h", NOW, TTL, "k").is_ok());
}

/// Builds the op for the single change `current → proposed`, folds it into `current`, and
/// checks the result is `proposed`.
fn fold_round_trip(current: &DesiredState, proposed: &DesiredState) {
    let change = only_change(current, proposed);
    let op = build_op(&change, "host-1", NOW, TTL, "k").unwrap();
    let folded = apply_executed(current, &op).unwrap();
    assert!(diff(&folded, proposed).is_empty(), "{:?}", change.op);
}

#[test]
fn every_destructive_op_folds_into_the_desired_state() {
    let current = state();
    let edits: Vec<fn(&mut DesiredState)> = vec![
        |s| {
            s.guests.remove("db");
        },
        |s| s.guests.get_mut("db").unwrap().spec.disk_gb = 50,
        |s| s.guests.get_mut("db").unwrap().spec.image = "img-2".into(),
        |s| s.guests.get_mut("db").unwrap().spec.restore_from = Some("snap".into()),
        |s| {
            s.storage.remove("disk-1");
        },
        |s| {
            s.extra.insert("tunnel".into(), json!({"token": "t"}));
        },
        |s| {
            s.versions.extra.insert("kernel".into(), json!("6.1"));
        },
        |s| {
            let web = s.guests.get_mut("web").unwrap();
            web.extra.insert("autostart".into(), json!(false));
        },
        |s| {
            let web = s.guests.get_mut("web").unwrap();
            web.spec.extra.insert("gpu".into(), json!({"id": 1}));
        },
        |s| {
            let p = s.storage.get_mut("disk-1").unwrap();
            p.extra.insert("fs".into(), json!("ext4"));
        },
    ];
    for edit in edits {
        let mut proposed = current.clone();
        edit(&mut proposed);
        fold_round_trip(&current, &proposed);
    }
    // And the reverse of the unknown-field edits (removal) and of restore/wipe (clearing).
    let mut with_extras = current.clone();
    with_extras.extra.insert("tunnel".into(), json!(1));
    with_extras.guests.get_mut("web").unwrap().spec.restore_from = Some("snap".into());
    with_extras.storage.get_mut("disk-1").unwrap().wipe = true;
    let mut cleared = with_extras.clone();
    cleared.extra.clear();
    fold_round_trip(&with_extras, &cleared);
    let mut cleared = with_extras.clone();
    cleared.guests.get_mut("web").unwrap().spec.restore_from = None;
    fold_round_trip(&with_extras, &cleared);
    let mut cleared = with_extras.clone();
    cleared.storage.get_mut("disk-1").unwrap().wipe = false;
    fold_round_trip(&with_extras, &cleared);
}

#[test]
fn executed_wipe_clears_the_flag() {
    let current = state();
    let mut proposed = current.clone();
    proposed.storage.get_mut("disk-1").unwrap().wipe = true;
    let op = build_op(&only_change(&current, &proposed), "h", NOW, TTL, "k").unwrap();
    assert_eq!(op.params, json!({"durable_id": "disk-1"}));
    let folded = apply_executed(&proposed, &op).unwrap();
    assert!(!folded.storage["disk-1"].wipe);
    assert_eq!(folded.storage["disk-1"].role, "bulk");
}

fn op(name: &str, guest: Option<&str>, params: Value) -> Op {
    Op {
        op: name.into(),
        target: Target {
            host_id: "h".into(),
            guest_id: guest.map(String::from),
        },
        params,
        nonce: "0".repeat(64),
        issued_at: NOW,
        expires_at: NOW + TTL,
        key_id: "k".into(),
    }
}

#[test]
fn apply_executed_is_idempotent_for_removals_and_strict_elsewhere() {
    let s = state();
    let removed = apply_executed(
        &s,
        &op("guest.remove", Some("gone"), json!({"guest_id": "gone"})),
    );
    assert_eq!(removed, Ok(s.clone()));
    let detached = apply_executed(&s, &op("storage.detach", None, json!({"durable_id": "x"})));
    assert_eq!(detached, Ok(s.clone()));

    let cases = [
        (
            op(
                "guest.shrink_disk",
                Some("gone"),
                json!({"guest_id": "gone", "from_gb": 2, "to_gb": 1}),
            ),
            FleetError::PathNotFound("/guests/gone".into()),
        ),
        (
            op(
                "guest.shrink_disk",
                Some("db"),
                json!({"guest_id": "db", "to_gb": "1"}),
            ),
            FleetError::BadParam {
                op: "guest.shrink_disk".into(),
                param: "to_gb",
            },
        ),
        (
            op(
                "guest.reimage",
                Some("web"),
                json!({"guest_id": "db", "to": "x"}),
            ),
            FleetError::TargetMismatch {
                op: "guest.reimage".into(),
                target: Some("web".into()),
                acts_on: Some("db".into()),
            },
        ),
        (
            op(
                "state.change",
                None,
                json!({"path": "/guests/web/x", "before": null, "after": 1}),
            ),
            FleetError::TargetMismatch {
                op: "state.change".into(),
                target: None,
                acts_on: Some("web".into()),
            },
        ),
        (
            op(
                "state.change",
                None,
                json!({"path": "/versions/agent", "before": null, "after": "1"}),
            ),
            FleetError::BadPath("/versions/agent".into()),
        ),
        (
            op(
                "state.change",
                None,
                json!({"path": "/storage/disk-1/wipe", "before": true, "after": 1}),
            ),
            FleetError::BadValue("/storage/disk-1/wipe".into()),
        ),
        (
            op("storage.wipe", None, json!({"durable_id": "nope"})),
            FleetError::PathNotFound("/storage/nope".into()),
        ),
        (
            op("guest.teleport", None, json!({})),
            FleetError::UnknownOp("guest.teleport".into()),
        ),
    ];
    for (op, expected) in cases {
        assert_eq!(apply_executed(&s, &op), Err(expected), "{}", op.op);
    }
}

#[test]
fn the_agents_own_diff_gates_the_cloud_built_op() {
    // The cloud diffs, builds and (here) signs; the agent diffs the same states on its side and
    // verifies the op against the action it derived itself.
    let key = PrivateKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let signers = AllowedSigners::from_keys([key.public_key().clone()]);
    let current = state();
    let mut proposed = current.clone();
    proposed.guests.get_mut("db").unwrap().spec.disk_gb = 60;

    let cloud_change = only_change(&current, &proposed);
    let built = build_op(&cloud_change, "host-1", NOW, TTL, "k").unwrap();
    let blob = built.to_canonical_bytes();
    let signature = sign_op(&key, &blob).unwrap();

    let agent_change = only_change(&current, &proposed);
    let action = expected_action(&agent_change);
    assert_eq!(action.op, "guest.shrink_disk");
    assert_eq!(action.guest_id.as_deref(), Some("db"));
    let ctx = VerifyContext {
        allowed_signers: &signers,
        host_id: "host-1",
        action: &action,
        now: NOW + 60,
    };
    let mut nonces = MemoryNonceStore::default();
    assert!(verify_op(&signature, &blob, &ctx, &mut nonces).is_ok());

    // A different shrink (another target size) is a different action: refused.
    let mut other = current.clone();
    other.guests.get_mut("db").unwrap().spec.disk_gb = 10;
    let other_action = expected_action(&only_change(&current, &other));
    let ctx = VerifyContext {
        action: &other_action,
        ..ctx
    };
    let mut nonces = MemoryNonceStore::default();
    assert!(matches!(
        verify_op(&signature, &blob, &ctx, &mut nonces),
        Err(VerifyError::ActionMismatch(_))
    ));
}
