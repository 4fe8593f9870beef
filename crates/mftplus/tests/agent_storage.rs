//! The storage handshake end to end, against a real cloud: a drive plugged into the box (an
//! ext4 image on a loop device, never the machine's disks) is reported attached and
//! unreachable; the operator gives its UUID a policy and the agent mounts it under its state
//! folder, reported reachable, the host converged; the operator removes the policy, the cloud
//! keeps it and makes a `storage.detach` op waiting for a signature while the drive stays
//! mounted; the operator signs with `ssh-keygen -Y sign`, the agent verifies, unmounts and
//! reports the op executed, and the cloud folds the policy away. The agent runs in-process, one
//! cycle at a time, with the driver that manages no guests.

mod agent_support;

use agent_support::*;
use mftplus_agent::config::AgentConfig;
use mftplus_agent::driver::{GuestDriver, NullDriver};
use mftplus_agent::enroll::{enroll, EnrollRequestArgs};
use mftplus_agent::testing::{loop_devices_available, random_uuid, LoopDrive};
use mftplus_agent::{Agent, Cycle};
use mftplus_base::{Secret, SystemClock};
use mftplus_client::OpQuery;
use mftplus_types::fleet::{op_status, DesiredState, PutDesiredState};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use tokio::sync::watch;

async fn cycles(agent: &mut Agent, n: usize) {
    let (_stop, stopping) = watch::channel(false);
    for _ in 0..n {
        match agent.cycle(&stopping).await.unwrap() {
            Cycle::Reported { .. } => {}
            Cycle::Failed(err) => panic!("cycle failed: {err}"),
        }
    }
}

fn desired(yaml: &str) -> DesiredState {
    serde_json::from_value(serde_yaml::from_str::<Value>(yaml).unwrap()).unwrap()
}

/// The drive as the latest report lists it.
async fn reported(operator: &mftplus_client::Client, host_id: &str, uuid: &str) -> Option<Value> {
    let reports = operator.host_reports(host_id, Some(1)).await.unwrap();
    reports[0].report["storage_targets"]
        .as_array()?
        .iter()
        .find(|t| t["durable_id"] == uuid)
        .cloned()
}

/// `ssh-keygen -Y sign` over the op's exact blob with the operator's key.
fn ssh_sign(key: &Path, blob: &str, dir: &Path) -> String {
    let file = dir.join("op.json");
    std::fs::write(&file, blob).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "mftplus-op-v1", "-f"])
        .arg(key)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::read_to_string(dir.join("op.json.sig")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugged_in_drive_is_mounted_by_policy_and_detached_by_a_signed_op() {
    if !loop_devices_available() {
        return;
    }
    let cloud = fast_cloud().await;
    customer(&cloud, "kovacs").await;
    let operator = operator(&cloud);
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let config = AgentConfig::for_server(&cloud.url, state_dir.clone()).unwrap();
    let enrolled = enroll(
        &config,
        &EnrollRequestArgs {
            customer_id: "kovacs".into(),
            password: Secret::new(PASSWORD),
            restore: None,
            hostname: "box-storage".into(),
        },
        &SystemClock,
    )
    .await
    .unwrap();
    let host_id = enrolled.host_id;
    let driver: Arc<dyn GuestDriver> = Arc::new(NullDriver);
    let mut agent = Agent::open(config, driver, Arc::new(SystemClock)).unwrap();

    // Plugged in: reported attached, not reachable.
    let uuid = random_uuid();
    let drive = LoopDrive::attach(dir.path(), &uuid, 32).unwrap();
    cycles(&mut agent, 1).await;
    let seen = reported(&operator, &host_id, &uuid)
        .await
        .expect("reported");
    assert_eq!(
        (seen["attached"].as_bool(), seen["reachable"].as_bool()),
        (Some(true), Some(false))
    );

    // The operator assigns a policy: a benign edit, published at once; the agent mounts it.
    let policy = format!("storage:\n  {uuid}: {{role: bulk, class: slow, backup: weekly}}\n");
    let put = operator
        .put_desired_state(
            &host_id,
            &PutDesiredState {
                desired_state: desired(&policy),
                expected_generation: None,
            },
        )
        .await
        .unwrap();
    assert!(put.pending_ops.is_empty());
    cycles(&mut agent, 2).await;
    let point = std::fs::canonicalize(&state_dir)
        .unwrap()
        .join("storage")
        .join(&uuid);
    assert_eq!(drive.mount_points(), vec![point.clone()]);
    let seen = reported(&operator, &host_id, &uuid).await.unwrap();
    assert_eq!(seen["reachable"], true, "{seen}");
    assert_eq!(seen["label"], point.to_str().unwrap());
    let host = operator.get_host(&host_id).await.unwrap();
    assert_eq!(
        (host.applied_generation, host.convergence.as_str()),
        (put.generation, "converged")
    );

    // Removing the policy is destructive: an op waits, the drive stays mounted.
    let put = operator
        .put_desired_state(
            &host_id,
            &PutDesiredState {
                desired_state: desired("storage: {}\n"),
                expected_generation: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(put.pending_ops.len(), 1);
    let op = put.pending_ops[0].clone();
    assert_eq!(op.op_type, "storage.detach");
    cycles(&mut agent, 2).await;
    assert_eq!(
        drive.mount_points(),
        vec![point.clone()],
        "waits for the signature"
    );

    // Signed: the agent verifies it, unmounts, reports executed; the cloud folds it.
    let signature = ssh_sign(&cloud.operator_key, &op.blob, dir.path());
    operator
        .put_op_signature(&op.op_id, &signature)
        .await
        .unwrap();
    cycles(&mut agent, 3).await;
    let done = operator.get_op(&op.op_id).await.unwrap();
    assert_eq!(done.status, op_status::EXECUTED, "{done:?}");
    assert!(drive.mount_points().is_empty(), "unmounted");
    let seen = reported(&operator, &host_id, &uuid).await.unwrap();
    assert_eq!(seen["reachable"], false, "{seen}");
    let now = operator.get_desired_state(&host_id).await.unwrap();
    assert!(now.desired_state.storage.is_empty());
    let pending = operator
        .list_ops(&OpQuery {
            statuses: vec![op_status::PENDING_SIGNATURE.into()],
            host: Some(host_id.clone()),
        })
        .await
        .unwrap();
    assert!(pending.is_empty());
    let journal = agent.state().journal(10).unwrap();
    assert!(
        journal.iter().any(|e| e.action == "detach"
            && e.state == "done"
            && e.op_id.as_deref() == Some(op.op_id.as_str())),
        "{journal:#?}"
    );
}
