//! The fleet end to end (issue acceptance): a scripted agent drives a real cloud through the
//! real client crate — enroll, report, converge to a benign change — then an operator removes a
//! guest, the change waits for a signature, the real `mftctl ops sign --pending` signs it with
//! a key made by `ssh-keygen`, the agent fetches it, verifies it with the signing pipeline it
//! pins from enrollment, executes it and reports back; the events timeline shows every step.

mod cli_support;

use cli_support::Shell;
use mftplus_client::{AgentClient, EventQuery};
use mftplus_client::{Client, Credential};
use mftplus_cloud::testing::TestCloud;
use mftplus_signing::{verify_op, AllowedSigners, ExpectedAction, FileNonceStore, VerifyContext};
use mftplus_types::fleet::{
    op_status, CreateCustomer, DesiredState, EnrollRequest, GuestDesired, GuestSpec, GuestStatus,
    GuestStatusReport, HostReport, OpStatusUpdate, PutDesiredState, RunState,
};
use serde_json::json;

const PASSWORD: &str = "alma-korte-szilva-barack-dio";

/// A scripted agent: what it has converged to, and its durable nonce store.
struct Agent {
    client: AgentClient,
    host_id: String,
    pinned: AllowedSigners,
    applied: DesiredState,
    applied_generation: u64,
    nonces: FileNonceStore,
}

impl Agent {
    fn report(&self) -> HostReport {
        HostReport {
            host_id: self.host_id.clone(),
            agent_version: "0.1.0".into(),
            controller_version: None,
            applied_generation: self.applied_generation,
            reported_at: None,
            system: Default::default(),
            guests: self
                .applied
                .guests
                .keys()
                .map(|id| GuestStatusReport {
                    guest_id: id.clone(),
                    status: GuestStatus::Running,
                    spec: None,
                    controller_version: None,
                })
                .collect(),
            storage_targets: Vec::new(),
            backup_snapshots: Vec::new(),
            tunnel: None,
            pending_signature: Vec::new(),
        }
    }
}

fn web_guest() -> GuestDesired {
    GuestDesired {
        spec: GuestSpec {
            cpu_cores: 2,
            memory_mb: 2048,
            disk_gb: 20,
            image: "debian-12".into(),
            ..GuestSpec::default()
        },
        run_state: RunState::Running,
        extra: Default::default(),
    }
}

#[tokio::test]
async fn enroll_converge_sign_execute() {
    let cloud = TestCloud::spawn().await;
    fleet_flow(&cloud, &cloud.url).await;
}

/// The whole flow with the agent talking to `agent_url`: the cloud itself, or an edge hub in
/// front of it (the agent changes nothing else).
pub async fn fleet_flow(cloud: &TestCloud, agent_url: &str) {
    let operator =
        Client::new(&cloud.url, Credential::ApiKey(cloud.admin_api_key.clone())).unwrap();
    let created = operator
        .create_customer(&CreateCustomer {
            id: Some("kovacs".into()),
            name: "Kovács Kft".into(),
            email: "info@kovacs.example.com".into(),
            domain: Some("kovacs.example.com".into()),
            locale: None,
            retrieval_password: Some(PASSWORD.into()),
            config: None,
        })
        .await
        .unwrap();
    assert_eq!(created.retrieval_password, PASSWORD);

    // Enroll: agent first, with the retrieval password; it pins the operator keys it is given.
    let anonymous = AgentClient::unenrolled(agent_url).unwrap();
    let enrolled = anonymous
        .enroll(
            &EnrollRequest {
                customer_id: "kovacs".into(),
                hostname: "box-1".into(),
                agent_version: "0.1.0".into(),
                platform: Some("proxmox".into()),
            },
            PASSWORD,
        )
        .await
        .unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let now = || chrono::Utc::now().timestamp();
    let mut agent = Agent {
        client: AgentClient::new(agent_url, &enrolled.host_key).unwrap(),
        host_id: enrolled.host_id.clone(),
        pinned: AllowedSigners::parse(&enrolled.operator_keys).unwrap(),
        applied: DesiredState::default(),
        applied_generation: 0,
        nonces: FileNonceStore::open(state_dir.path().join("nonces"), now()).unwrap(),
    };
    assert!(
        !agent.pinned.is_empty(),
        "enrollment pins the operator keys"
    );

    // First report: nothing to do yet.
    let envelope = agent.client.host_report(&agent.report()).await.unwrap();
    assert_eq!(envelope.desired_generation, 0);
    assert!(!envelope.blocked && !envelope.has_signed_ops);

    // The operator publishes a benign change: it goes out at once.
    let mut wanted = DesiredState::default();
    wanted.guests.insert("web".into(), web_guest());
    let published = operator
        .put_desired_state(
            &agent.host_id,
            &PutDesiredState {
                desired_state: wanted.clone(),
                expected_generation: Some(0),
            },
        )
        .await
        .unwrap();
    assert_eq!(published.generation, 1);
    assert!(published.pending_ops.is_empty());
    assert_eq!(published.published[0].op, "guest.create");

    // The agent sees the new generation in the envelope, fetches, converges and says so.
    let envelope = agent.client.host_report(&agent.report()).await.unwrap();
    assert_eq!(envelope.desired_generation, 1);
    let fetched = agent.client.desired_state(&agent.host_id).await.unwrap();
    assert_eq!(fetched.generation, 1);
    let changes = mftplus_fleet::diff(&agent.applied, &fetched.desired_state);
    assert!(changes
        .iter()
        .all(|c| c.kind == mftplus_types::fleet::ChangeKind::Benign));
    agent.applied = fetched.desired_state;
    agent.applied_generation = fetched.generation;
    agent.client.host_report(&agent.report()).await.unwrap();
    let host = operator.get_host(&agent.host_id).await.unwrap();
    assert_eq!(host.convergence, "converged", "{host:?}");

    // The operator removes the guest: destructive, so it waits for a signature and is not in
    // the desired state.
    let edit = operator
        .put_desired_state(
            &agent.host_id,
            &PutDesiredState {
                desired_state: DesiredState::default(),
                expected_generation: Some(1),
            },
        )
        .await
        .unwrap();
    assert_eq!(edit.generation, 1, "nothing benign was published");
    assert_eq!(edit.pending_ops.len(), 1);
    let op = &edit.pending_ops[0];
    assert_eq!(op.op_type, "guest.remove");
    assert_eq!(op.status, op_status::PENDING_SIGNATURE);
    let still = operator.get_desired_state(&agent.host_id).await.unwrap();
    assert!(still.desired_state.guests.contains_key("web"));
    let envelope = agent.client.host_report(&agent.report()).await.unwrap();
    assert!(!envelope.has_signed_ops, "an unsigned op is not offered");

    // The operator signs on the workstation with the real CLI and an ssh-keygen key.
    let admin = Shell::admin(cloud);
    let key = cloud.operator_key.display().to_string();
    let signed = admin
        .line(&format!("mftctl ops sign --pending --key {key} --yes"))
        .await
        .ok();
    assert!(signed.stdout.contains(&op.op_id), "{signed:#?}");
    assert_eq!(
        operator.get_op(&op.op_id).await.unwrap().status,
        op_status::SIGNED
    );

    // The agent is told, fetches, verifies with its pinned keys and executes.
    let envelope = agent.client.host_report(&agent.report()).await.unwrap();
    assert!(envelope.has_signed_ops);
    let ops = agent.client.signed_ops(&agent.host_id).await.unwrap();
    assert_eq!(ops.len(), 1);
    let delivered = &ops[0];
    let action = ExpectedAction {
        op: "guest.remove".into(),
        guest_id: Some("web".into()),
        params: json!({"guest_id": "web"}),
    };
    let verified = verify_op(
        delivered.signature.as_deref().unwrap(),
        delivered.blob.as_bytes(),
        &VerifyContext {
            allowed_signers: &agent.pinned,
            host_id: &agent.host_id,
            action: &action,
            now: now(),
        },
        &mut agent.nonces,
    )
    .expect("the operator's signature verifies on the agent");
    assert_eq!(verified.op.target.guest_id.as_deref(), Some("web"));
    // A replay of the same op is refused by the nonce store.
    assert!(verify_op(
        delivered.signature.as_deref().unwrap(),
        delivered.blob.as_bytes(),
        &VerifyContext {
            allowed_signers: &agent.pinned,
            host_id: &agent.host_id,
            action: &action,
            now: now(),
        },
        &mut agent.nonces,
    )
    .is_err());
    agent.applied.guests.remove("web");
    agent
        .client
        .op_status(
            &agent.host_id,
            &delivered.op_id,
            &OpStatusUpdate {
                status: op_status::EXECUTED.into(),
                result: Some(json!({"removed": "web"})),
            },
        )
        .await
        .unwrap();
    // The executed change is folded into the desired state: intent and reality agree again.
    let after = operator.get_desired_state(&agent.host_id).await.unwrap();
    assert_eq!(after.generation, 2);
    assert!(after.desired_state.guests.is_empty());
    agent.applied_generation = 2;
    let envelope = agent.client.host_report(&agent.report()).await.unwrap();
    assert!(!envelope.has_signed_ops);
    assert_eq!(
        operator.get_host(&agent.host_id).await.unwrap().convergence,
        "converged"
    );

    // The timeline shows each step, in order.
    let events = operator
        .list_events(&EventQuery {
            host: Some(agent.host_id.clone()),
            limit: Some(100),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    let mut kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    kinds.reverse();
    assert_eq!(
        kinds,
        [
            "host_enrolled",
            "desired_published",
            "op_pending_signature",
            "op_signed",
            "op_delivered",
            "op_executed",
        ],
        "{events:#?}"
    );
}

/// An operator client, a customer with the known retrieval password, and one box enrolled in it
/// directly with the cloud.
async fn customer_with_box(
    cloud: &TestCloud,
    customer_id: &str,
    hostname: &str,
) -> (Client, mftplus_types::fleet::EnrollResponse) {
    let operator =
        Client::new(&cloud.url, Credential::ApiKey(cloud.admin_api_key.clone())).unwrap();
    operator
        .create_customer(&CreateCustomer {
            id: Some(customer_id.into()),
            name: format!("Customer {customer_id}"),
            email: format!("it@{customer_id}.example.com"),
            domain: None,
            locale: Some("hu".into()),
            retrieval_password: Some(PASSWORD.into()),
            config: None,
        })
        .await
        .unwrap();
    let enrolled = AgentClient::unenrolled(&cloud.url)
        .unwrap()
        .enroll(
            &EnrollRequest {
                customer_id: customer_id.into(),
                hostname: hostname.into(),
                agent_version: "0.1.0".into(),
                platform: None,
            },
            PASSWORD,
        )
        .await
        .unwrap();
    (operator, enrolled)
}

#[tokio::test]
async fn a_blocked_customer_reports_but_gets_no_ops() {
    let cloud = TestCloud::spawn().await;
    let (operator, enrolled) = customer_with_box(&cloud, "blocked", "box-2").await;
    let agent = AgentClient::new(&cloud.url, &enrolled.host_key).unwrap();
    let host_id = enrolled.host_id.clone();
    let report = |generation: u64| HostReport {
        host_id: host_id.clone(),
        agent_version: "0.1.0".into(),
        controller_version: None,
        applied_generation: generation,
        reported_at: None,
        system: Default::default(),
        guests: Vec::new(),
        storage_targets: Vec::new(),
        backup_snapshots: Vec::new(),
        tunnel: None,
        pending_signature: Vec::new(),
    };
    let mut wanted = DesiredState::default();
    wanted.guests.insert("web".into(), web_guest());
    let put = |state: DesiredState| PutDesiredState {
        desired_state: state,
        expected_generation: None,
    };
    operator
        .put_desired_state(&host_id, &put(wanted))
        .await
        .unwrap();
    let edit = operator
        .put_desired_state(&host_id, &put(DesiredState::default()))
        .await
        .unwrap();
    let admin = Shell::admin(&cloud);
    admin
        .line(&format!(
            "mftctl ops sign {} --key {} --yes",
            edit.pending_ops[0].op_id,
            cloud.operator_key.display()
        ))
        .await
        .ok();

    operator.block_customer("blocked").await.unwrap();
    let envelope = agent.host_report(&report(1)).await.unwrap();
    assert!(envelope.blocked);
    assert!(
        !envelope.has_signed_ops,
        "no op is offered to a blocked customer"
    );
    assert!(agent.signed_ops(&host_id).await.unwrap().is_empty());
    assert_eq!(
        operator
            .get_op(&edit.pending_ops[0].op_id)
            .await
            .unwrap()
            .status,
        op_status::SIGNED,
        "nothing was delivered"
    );
    // Reports are still recorded while blocked.
    assert_eq!(
        operator
            .host_reports(&host_id, Some(10))
            .await
            .unwrap()
            .len(),
        1
    );

    operator.unblock_customer("blocked").await.unwrap();
    let envelope = agent.host_report(&report(1)).await.unwrap();
    assert!(!envelope.blocked && envelope.has_signed_ops);
    assert_eq!(agent.signed_ops(&host_id).await.unwrap().len(), 1);
}

/// Kills the test's ssh-agent however the test ends.
struct AgentProcess(std::process::Child);

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn ops_sign_with_a_key_held_by_ssh_agent() {
    let cloud = TestCloud::spawn().await;
    let (operator, enrolled) = customer_with_box(&cloud, "agent-signed", "box-3").await;
    let mut wanted = DesiredState::default();
    wanted.guests.insert("web".into(), web_guest());
    for state in [wanted, DesiredState::default()] {
        operator
            .put_desired_state(
                &enrolled.host_id,
                &PutDesiredState {
                    desired_state: state,
                    expected_generation: None,
                },
            )
            .await
            .unwrap();
    }
    let pending = operator.list_ops(&Default::default()).await.unwrap();
    assert_eq!(pending.len(), 1);

    // The operator's key lives only in a real ssh-agent; mftctl never reads the key file.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let _agent = AgentProcess(
        std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ssh-agent starts"),
    );
    for _ in 0..200 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let added = std::process::Command::new("ssh-add")
        .arg(&cloud.operator_key)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");

    let mut admin = Shell::admin(&cloud);
    admin
        .env
        .push(("SSH_AUTH_SOCK".into(), socket.display().to_string()));
    let run = admin
        .line("mftctl ops sign --pending --agent --yes")
        .await
        .ok();
    assert!(run.stdout.contains(&pending[0].op_id), "{run:#?}");
    assert_eq!(
        operator.get_op(&pending[0].op_id).await.unwrap().status,
        op_status::SIGNED
    );
}

/// Issue 5: an agent pointed at an edge hub instead of the cloud needs no other change.
#[tokio::test]
async fn enroll_converge_sign_execute_through_a_hub() {
    let cloud = TestCloud::spawn().await;
    let hub = cli_support::hub_in_front(&cloud).await;
    fleet_flow(&cloud, &hub.url).await;
    let operator =
        Client::new(&cloud.url, Credential::ApiKey(cloud.admin_api_key.clone())).unwrap();
    let registered = operator.get_hub(&hub.hub_id).await.unwrap();
    assert_eq!(registered.status, "online", "{registered:?}");
}
