use super::*;
use mftplus_signing::ExpectedAction;
use mftplus_types::fleet::BackupSchedule;
use serde_json::json;
use std::path::PathBuf;

const A: &str = "3f1c2b7a-9d4e-4c11-8a5b-0123456789ab";
const B: &str = "c0ffee00-1234-4abc-9def-00000000beef";
const ROOT: &str = "/var/lib/mftplus-agent/storage";

fn drive(id: &str, mounts: &[&str]) -> Drive {
    Drive {
        durable_id: id.into(),
        device: "/dev/sdz1".into(),
        dev: "8:1".into(),
        fs: None,
        mount_points: mounts.iter().map(PathBuf::from).collect(),
        size_bytes: None,
    }
}

fn ours(id: &str) -> String {
    format!("{ROOT}/{id}")
}

fn policy(wipe: bool) -> StoragePolicy {
    StoragePolicy {
        role: "bulk".into(),
        class: "slow".into(),
        backup: BackupSchedule::Daily,
        wipe,
        extra: Default::default(),
    }
}

fn with(policies: &[(&str, bool)]) -> DesiredState {
    let mut state = DesiredState::default();
    for (id, wipe) in policies {
        state.storage.insert(id.to_string(), policy(*wipe));
    }
    state
}

fn auth(op_id: &str, op: &str, id: &str) -> Authorization {
    Authorization {
        op_id: op_id.into(),
        action: ExpectedAction {
            op: op.into(),
            guest_id: None,
            params: json!({"durable_id": id}),
        },
    }
}

fn plan(state: &DesiredState, drives: &[Drive], auths: &[Authorization]) -> StoragePlan {
    plan_storage(state, drives, Path::new(ROOT), auths)
}

fn step(id: &str, action: StorageAction, op_id: Option<&str>) -> StorageStep {
    StorageStep {
        durable_id: id.into(),
        action,
        op_id: op_id.map(str::to_string),
    }
}

#[test]
fn a_policy_mounts_an_attached_unmounted_drive() {
    let planned = plan(&with(&[(A, false)]), &[drive(A, &[])], &[]);
    assert_eq!(planned.steps, [step(A, StorageAction::Mount, None)]);
    assert!(planned.waiting.is_empty());
}

#[test]
fn nothing_to_do_when_mounted_anywhere_or_away() {
    // Mounted by the agent, mounted by the customer elsewhere, or not plugged in.
    let drives = [drive(A, &[&ours(A)]), drive(B, &["/srv/photos"])];
    assert_eq!(
        plan(&with(&[(A, false), (B, false)]), &drives, &[]),
        StoragePlan::default()
    );
    assert_eq!(plan(&with(&[(A, false)]), &[], &[]), StoragePlan::default());
    // A drive without a policy that the agent did not mount is none of its business.
    assert_eq!(
        plan(
            &DesiredState::default(),
            &[drive(B, &["/srv"]), drive(A, &[])],
            &[]
        ),
        StoragePlan::default()
    );
}

#[test]
fn removing_a_policy_waits_for_a_signature_then_detaches() {
    let drives = [drive(A, &[&ours(A)])];
    let waiting = plan(&DesiredState::default(), &drives, &[]);
    assert!(waiting.steps.is_empty());
    assert_eq!(waiting.waiting.len(), 1);
    assert_eq!(waiting.waiting[0].op, "storage.detach");
    assert_eq!(waiting.waiting[0].params, json!({"durable_id": A}));
    assert_eq!(waiting.waiting[0].guest_id, None);

    // An op for another drive authorizes nothing here.
    let other = [auth("op_1", "storage.detach", B)];
    assert_eq!(plan(&DesiredState::default(), &drives, &other), waiting);

    let signed = [auth("op_2", "storage.detach", A)];
    let planned = plan(&DesiredState::default(), &drives, &signed);
    assert_eq!(
        planned.steps,
        [step(A, StorageAction::Detach, Some("op_2"))]
    );
    assert!(planned.waiting.is_empty());
}

#[test]
fn wipe_waits_and_runs_before_the_mount() {
    // The desired state asks for a wipe nobody signed: pending, and the mount goes ahead.
    let planned = plan(&with(&[(A, true)]), &[drive(A, &[])], &[]);
    assert_eq!(planned.steps, [step(A, StorageAction::Mount, None)]);
    assert_eq!(planned.waiting.len(), 1);
    assert_eq!(planned.waiting[0].op, "storage.wipe");

    // Signed: the fold cleared the flag, the authorization alone asks for the wipe.
    let signed = [auth("op_3", "storage.wipe", A)];
    let planned = plan(&with(&[(A, false)]), &[drive(A, &[])], &signed);
    assert_eq!(
        planned.steps,
        [
            step(A, StorageAction::Wipe, Some("op_3")),
            step(A, StorageAction::Mount, None)
        ]
    );
    // Mounted (by the agent or not) or away: the wipe step is planned; carrying it out
    // decides whether it can be done.
    for drives in [
        vec![drive(A, &[&ours(A)])],
        vec![drive(A, &["/srv"])],
        vec![],
    ] {
        let planned = plan(&with(&[(A, false)]), &drives, &signed);
        assert_eq!(planned.steps, [step(A, StorageAction::Wipe, Some("op_3"))]);
    }
    // A wipe authorization for a drive without a policy asks for nothing.
    assert_eq!(
        plan(&DesiredState::default(), &[drive(A, &[])], &signed),
        StoragePlan::default()
    );
}

#[test]
fn only_the_agents_own_folder_counts_as_its_mount() {
    // Mounted under a look-alike path, or a non-UUID id: not the agent's.
    let drives = [
        drive(A, &[&format!("{ROOT}-old/{A}")]),
        drive("../../etc", &[&format!("{ROOT}/../../etc")]),
    ];
    assert_eq!(
        plan(&DesiredState::default(), &drives, &[]),
        StoragePlan::default()
    );
}

#[test]
fn pointers() {
    assert_eq!(
        durable_id_of(&format!("/storage/{A}/wipe")).as_deref(),
        Some(A)
    );
    assert_eq!(durable_id_of("/storage/a~1b~0c").as_deref(), Some("a/b~c"));
    assert_eq!(durable_id_of("/guests/x"), None);
}
