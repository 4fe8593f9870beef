//! The agent is the authority over destructive changes, even against its own cloud: ops that
//! a compromised cloud slips into the store (tampered, signed by a key that is not pinned,
//! expired, meant for another host, or a replay of an executed op under a new id) are refused
//! by the agent with the pipeline stage's code, the container keeps running, and a replay is
//! still refused after the agent restarts. The agent runs in-process, one cycle at a time,
//! against a real cloud and the real Docker Engine.

mod agent_support;

use agent_support::*;
use mftplus_agent::config::AgentConfig;
use mftplus_agent::driver::{DockerDriver, GuestDriver};
use mftplus_agent::enroll::{enroll, EnrollRequestArgs};
use mftplus_agent::{Agent, Cycle};
use mftplus_base::{Clock as _, Secret, SystemClock};
use mftplus_cloud::testing::TestCloud;
use mftplus_signing::{sign_op, KeyAlgorithm, Op, PrivateKey, Target};
use mftplus_store::{DesiredEdit, NewEvent, NewSignedOp, OpTransition};
use mftplus_types::fleet::{op_status, DesiredState, PutDesiredState};
use serde_json::json;
use std::sync::Arc;
use tokio::sync::watch;

struct Bench {
    cloud: TestCloud,
    host_id: String,
    config: AgentConfig,
    guest: String,
    operator_key: PrivateKey,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn agent(&self) -> Agent {
        let driver: Arc<dyn GuestDriver> =
            Arc::new(DockerDriver::from_env().unwrap().owned_by(&self.host_id));
        Agent::open(self.config.clone(), driver, Arc::new(SystemClock)).unwrap()
    }

    /// Puts `op` signed with `signature` into the store as a signed op of this host, the
    /// way a compromised cloud could; returns its id.
    async fn inject(&self, op: &Op, blob: &str, signature: &str, row_nonce: &str) -> String {
        let store = &self.cloud.state.store;
        let id = format!("op_injected_{}", row_nonce);
        let now = self.cloud.clock.now_ms();
        let event = |kind: &str| NewEvent {
            at_ms: now,
            kind: kind.into(),
            severity: "info".into(),
            customer_id: Some("kovacs".into()),
            host_id: Some(self.host_id.clone()),
            guest_id: op.target.guest_id.clone(),
            op_id: None,
            details_json: "{}".into(),
        };
        store
            .apply_desired_edit(&DesiredEdit {
                host_id: self.host_id.clone(),
                expected_generation: None,
                desired_json: None,
                ops: vec![NewSignedOp {
                    id: id.clone(),
                    customer_id: "kovacs".into(),
                    host_id: self.host_id.clone(),
                    guest_id: op.target.guest_id.clone(),
                    op_type: op.op.clone(),
                    op_blob: blob.to_string(),
                    nonce: row_nonce.to_string(),
                    issued_at_ms: op.issued_at * 1000,
                    expires_at_ms: op.expires_at * 1000,
                    created_by: "compromised".into(),
                }],
                events: vec![event("op_pending_signature")],
                guest_specs: Vec::new(),
                at_ms: now,
            })
            .await
            .unwrap();
        store
            .transition_op(&OpTransition {
                op_id: id.clone(),
                from: vec![op_status::PENDING_SIGNATURE.into()],
                to: op_status::SIGNED.into(),
                signature: Some(signature.to_string()),
                result_json: None,
                desired_after: None,
                guest_specs: Vec::new(),
                at_ms: now,
                event: event("op_signed"),
            })
            .await
            .unwrap();
        id
    }

    fn removal(&self, host_id: &str, nonce: &str, issued_at: i64, expires_at: i64) -> Op {
        Op {
            op: "guest.remove".into(),
            target: Target {
                host_id: host_id.into(),
                guest_id: Some(self.guest.clone()),
            },
            params: json!({"guest_id": self.guest}),
            nonce: nonce.repeat(64 / nonce.len()),
            issued_at,
            expires_at,
            key_id: "operator".into(),
        }
    }
}

async fn cycles(agent: &mut Agent, n: usize) {
    let (_stop, stopping) = watch::channel(false);
    for _ in 0..n {
        match agent.cycle(&stopping).await.unwrap() {
            Cycle::Reported { .. } => {}
            Cycle::Failed(err) => panic!("cycle failed: {err}"),
        }
    }
}

async fn setup() -> Option<Bench> {
    if !mftplus_agent::testing::docker_available() {
        return None;
    }
    let image = mftplus_agent::testing::guest_image();
    let cloud = fast_cloud().await;
    customer(&cloud, "kovacs").await;
    let dir = tempfile::tempdir().unwrap();
    let config = AgentConfig::for_server(&cloud.url, dir.path().join("state")).unwrap();
    let enrolled = enroll(
        &config,
        &EnrollRequestArgs {
            customer_id: "kovacs".into(),
            password: Secret::new(PASSWORD),
            restore: None,
            hostname: "box-ops".into(),
        },
        &SystemClock,
    )
    .await
    .unwrap();
    // Tests of this file run side by side on one Docker Engine: one guest each.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let guest = format!("keep-{}-{n}", std::process::id());
    let desired: DesiredState = serde_yaml_from(&format!(
        "guests:\n  {guest}:\n    spec:\n      kind: container\n      image: {image}\n      memory_mb: 32\n"
    ));
    operator(&cloud)
        .put_desired_state(
            &enrolled.host_id,
            &PutDesiredState {
                desired_state: desired,
                expected_generation: Some(0),
            },
        )
        .await
        .unwrap();
    let text = std::fs::read_to_string(&cloud.operator_key).unwrap();
    Some(Bench {
        operator_key: PrivateKey::from_openssh(&text).unwrap(),
        cloud,
        host_id: enrolled.host_id,
        config,
        guest,
        _dir: dir,
    })
}

fn serde_yaml_from(text: &str) -> DesiredState {
    serde_json::from_value(serde_yaml::from_str::<serde_json::Value>(text).unwrap()).unwrap()
}

async fn verdict(bench: &Bench, op_id: &str) -> (String, String) {
    let op = operator(&bench.cloud).get_op(op_id).await.unwrap();
    let code = op
        .result
        .as_ref()
        .and_then(|r| r["code"].as_str())
        .unwrap_or_default()
        .to_string();
    (op.status, code)
}

fn running(guest: &str) -> bool {
    containers_of(guest)
        .iter()
        .any(|(_, state)| state == "running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_a_compromised_cloud_injects_are_refused_and_the_container_keeps_running() {
    let Some(bench) = setup().await else { return };
    let _cleanup = ContainerGuard(vec![bench.guest.clone()]);
    let mut agent = bench.agent();
    cycles(&mut agent, 2).await;
    assert!(running(&bench.guest), "the benign create ran");

    let now = SystemClock.now_secs();
    let sign = |blob: &str| sign_op(&bench.operator_key, blob.as_bytes()).unwrap();
    let bytes = |op: &Op| String::from_utf8(op.to_canonical_bytes()).unwrap();

    // Tampered: the operator's signature over other bytes.
    let genuine = bench.removal(&bench.host_id, "a1", now, now + 3600);
    let mut other = genuine.clone();
    other.params = json!({"guest_id": "someone-else"});
    let tampered = bench
        .inject(&genuine, &bytes(&genuine), &sign(&bytes(&other)), "a1")
        .await;
    // Signed by a key the agent never pinned.
    let stranger = PrivateKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let foreign = bench.removal(&bench.host_id, "b2", now, now + 3600);
    let wrong_key = bench
        .inject(
            &foreign,
            &bytes(&foreign),
            &sign_op(&stranger, bytes(&foreign).as_bytes()).unwrap(),
            "b2",
        )
        .await;
    // For another host, signed by the operator.
    let elsewhere = bench.removal("hst_another_box", "c3", now, now + 3600);
    let wrong_host = bench
        .inject(
            &elsewhere,
            &bytes(&elsewhere),
            &sign(&bytes(&elsewhere)),
            "c3",
        )
        .await;
    // Expired an hour ago (the cloud's clock is moved back so it still delivers it).
    let old = bench.removal(&bench.host_id, "d4", now - 7200, now - 3600);
    bench.cloud.clock.advance_secs(-7200);
    let expired = bench
        .inject(&old, &bytes(&old), &sign(&bytes(&old)), "d4")
        .await;
    cycles(&mut agent, 1).await;
    bench.cloud.clock.advance_secs(7200);

    for (op_id, code) in [
        (&tampered, "sig_invalid"),
        (&wrong_key, "sig_unknown_key"),
        (&wrong_host, "op_wrong_host"),
        (&expired, "op_expired"),
    ] {
        assert_eq!(
            verdict(&bench, op_id).await,
            (op_status::REJECTED.to_string(), code.to_string()),
            "{op_id}"
        );
    }
    cycles(&mut agent, 1).await;
    assert!(running(&bench.guest), "no refused op touched the container");

    // The genuine op, signed by the operator, runs once.
    let real = bench.removal(&bench.host_id, "e5", now, now + 3600);
    let real_id = bench
        .inject(&real, &bytes(&real), &sign(&bytes(&real)), "e5")
        .await;
    cycles(&mut agent, 2).await;
    assert_eq!(verdict(&bench, &real_id).await.0, op_status::EXECUTED);
    assert!(containers_of(&bench.guest).is_empty(), "removed");

    // The operator adds the guest back; after a restart of the agent, a replay of the
    // executed op under a new id is refused by the nonce the agent recorded.
    let image = mftplus_agent::testing::guest_image();
    let desired = serde_yaml_from(&format!(
        "guests:\n  {}:\n    spec:\n      kind: container\n      image: {image}\n      memory_mb: 32\n",
        bench.guest
    ));
    operator(&bench.cloud)
        .put_desired_state(
            &bench.host_id,
            &PutDesiredState {
                desired_state: desired,
                expected_generation: None,
            },
        )
        .await
        .unwrap();
    drop(agent);
    let mut agent = bench.agent();
    cycles(&mut agent, 2).await;
    assert!(running(&bench.guest), "created again");
    let replay = bench
        .inject(&real, &bytes(&real), &sign(&bytes(&real)), "f6")
        .await;
    cycles(&mut agent, 2).await;
    assert_eq!(
        verdict(&bench, &replay).await,
        (op_status::REJECTED.to_string(), "op_replayed".to_string())
    );
    assert!(running(&bench.guest), "the replay removed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_container_is_restarted_but_not_while_the_customer_is_blocked() {
    let Some(bench) = setup().await else { return };
    let _cleanup = ContainerGuard(vec![bench.guest.clone()]);
    let mut agent = bench.agent();
    cycles(&mut agent, 2).await;
    assert!(running(&bench.guest));
    let name = format!("mftplus-{}", bench.guest);
    let kill = || {
        let out = std::process::Command::new("docker")
            .args(["kill", &name])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };

    // Blocked: the agent reports the dead container and leaves it alone.
    operator(&bench.cloud)
        .block_customer("kovacs")
        .await
        .unwrap();
    kill();
    cycles(&mut agent, 3).await;
    assert!(
        !running(&bench.guest),
        "a blocked customer's agent changes nothing"
    );
    let reports = operator(&bench.cloud)
        .host_reports(&bench.host_id, Some(1))
        .await
        .unwrap();
    let guests = &reports[0].report["guests"];
    assert_eq!(guests[0]["guest_id"], bench.guest.as_str());
    assert_eq!(
        guests[0]["status"], "stopped",
        "reported as it is: {guests}"
    );

    // Unblocked: the next cycle starts it again.
    operator(&bench.cloud)
        .unblock_customer("kovacs")
        .await
        .unwrap();
    cycles(&mut agent, 1).await;
    assert!(running(&bench.guest), "restarted");
    let journal = agent.state().journal(10).unwrap();
    assert_eq!(
        (journal[0].action.as_str(), journal[0].state.as_str()),
        ("start", "done"),
        "{journal:#?}"
    );
}
