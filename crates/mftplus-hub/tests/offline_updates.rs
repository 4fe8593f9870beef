//! The queueable status updates against the real cloud: an agent's op verdicts, a recipient's
//! `received` and a sender's `cancel`, accepted while the cloud is down, sent twice, replayed
//! across a hub that dies mid-replay, and applied by the cloud exactly once each.

mod common;
mod offline_support;

use common::*;
use mftplus_client::{Accepted, AgentClient, Client, Credential, EventQuery};
use mftplus_cloud::testing::TestCloud;
use mftplus_types::api::{CreateUserRequest, LoginRequest};
use mftplus_types::fleet::{op_status, OpStatusUpdate, PutDesiredState};
use mftplus_types::transfers::CreateTransferRequest;
use offline_support::*;
use serde_json::json;
use std::time::Duration;

/// Publishes guests `web` and `db`, then removes both: two ops, signed with the cloud's
/// pinned operator key as `mftctl ops sign` does. Returns their ids.
async fn two_signed_ops(cloud: &TestCloud, host_id: &str) -> Vec<String> {
    let op = operator(cloud);
    let spec =
        json!({"spec": {"cpu_cores": 1, "memory_mb": 512, "disk_gb": 5, "image": "debian-12"}});
    let publish = |state: serde_json::Value| -> PutDesiredState {
        serde_json::from_value(json!({ "desired_state": state })).unwrap()
    };
    op.put_desired_state(
        host_id,
        &publish(json!({"guests": {"web": spec.clone(), "db": spec}})),
    )
    .await
    .unwrap();
    let removed = op
        .put_desired_state(host_id, &publish(json!({})))
        .await
        .unwrap();
    assert_eq!(removed.pending_ops.len(), 2);
    let key_text = std::fs::read_to_string(&cloud.operator_key).unwrap();
    let key = mftplus_signing::PrivateKey::from_openssh(&key_text).unwrap();
    let mut ids = Vec::new();
    for pending in removed.pending_ops {
        let signature = mftplus_signing::sign_op(&key, pending.blob.as_bytes()).unwrap();
        op.put_op_signature(&pending.op_id, &signature)
            .await
            .unwrap();
        ids.push(pending.op_id);
    }
    ids
}

async fn op_events(cloud: &TestCloud, host_id: &str, kind: &str, op_id: &str) -> usize {
    let query = EventQuery {
        host: Some(host_id.to_string()),
        kind: Some(kind.to_string()),
        limit: Some(500),
        ..EventQuery::default()
    };
    let events = operator(cloud).list_events(&query).await.unwrap();
    events
        .iter()
        .filter(|e| e.op_id.as_deref() == Some(op_id))
        .count()
}

fn verdict(status: &str) -> OpStatusUpdate {
    OpStatusUpdate {
        status: status.into(),
        result: Some(json!({"by": "test"})),
    }
}

#[tokio::test]
async fn op_verdicts_are_queued_offline_and_each_applied_once() {
    let (site, cloud) = Site::start().await;
    let host = site.enroll(&cloud, 1).await.remove(0);
    let ops = two_signed_ops(&cloud, &host.host_id).await;
    let hub = site.hub(&[]).await;
    let agent = AgentClient::new(&hub.url(""), &host.host_key).unwrap();
    agent.host_report(&report(&host.host_id, 0)).await.unwrap();
    let delivered = agent.signed_ops(&host.host_id).await.unwrap();
    assert_eq!(delivered.len(), 2, "fetched through the hub");
    let generation = operator(&cloud)
        .get_desired_state(&host.host_id)
        .await
        .unwrap()
        .generation;

    cloud.stop().await;
    let (executed, failed) = (&ops[0], &ops[1]);
    for (op_id, status) in [
        (executed, op_status::EXECUTED),
        // The agent did not hear back and says it again: a duplicate in the queue.
        (executed, op_status::EXECUTED),
        (failed, op_status::FAILED),
    ] {
        let answer = agent
            .op_status(&host.host_id, op_id, &verdict(status))
            .await
            .unwrap();
        assert_eq!(
            answer,
            Accepted::Queued,
            "taken by the hub while the cloud is down"
        );
    }
    agent.host_report(&report(&host.host_id, 1)).await.unwrap();
    assert_eq!(queued(&hub), 4);
    // A verdict for a host whose key the hub never saw is not queued.
    let stranger = AgentClient::new(&hub.url(""), "mfth_never_seen_by_this_hub").unwrap();
    let refused = stranger
        .op_status(&host.host_id, executed, &verdict(op_status::EXECUTED))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "cloud_unreachable", "{refused:?}");

    let cloud = site.restart_cloud().await;
    wait_drained(&hub).await;
    assert_eq!(
        hub.state.offline.as_ref().unwrap().dead_letter(),
        0,
        "a 409 means already applied: dropped, not dead"
    );
    let op = operator(&cloud);
    assert_eq!(op.get_op(executed).await.unwrap().status, "executed");
    assert_eq!(op.get_op(failed).await.unwrap().status, "failed");
    assert_eq!(
        op_events(&cloud, &host.host_id, "op_executed", executed).await,
        1,
        "the duplicate verdict was dropped, not applied again"
    );
    assert_eq!(
        op_events(&cloud, &host.host_id, "op_failed", failed).await,
        1
    );
    let desired = op.get_desired_state(&host.host_id).await.unwrap();
    assert_eq!(
        desired.generation,
        generation + 1,
        "the executed removal was folded in once"
    );
    assert_eq!(
        stored_seqs(&cloud, &host.host_id).await,
        seqs(0..2),
        "the report queued behind the duplicate was not blocked by its 409"
    );

    // Online again, a repeated verdict reaches the cloud and gets its 409.
    let again = agent
        .op_status(&host.host_id, executed, &verdict(op_status::EXECUTED))
        .await
        .unwrap_err();
    assert_eq!(again.code(), "op_state_conflict");
    hub.stop().await;
}

/// A sender (the operator's API key) and a recipient (a user's session), both as clients of
/// the cloud directly and through the hub.
struct People {
    sender: Client,
    recipient_token: String,
    recipient_email: String,
}

async fn people(cloud: &TestCloud) -> People {
    let sender = operator(cloud);
    let email = "bob@example.com".to_string();
    let password = "a sufficiently long password".to_string();
    let request: CreateUserRequest = serde_json::from_value(
        json!({"email": email, "name": "Bob", "role": "user", "password": password}),
    )
    .unwrap();
    sender.create_user(request).await.unwrap();
    let anonymous = Client::new(&cloud.url, Credential::None).unwrap();
    let tokens = anonymous
        .login(LoginRequest {
            email: email.clone(),
            password,
        })
        .await
        .unwrap();
    People {
        sender,
        recipient_token: tokens.access_token,
        recipient_email: email,
    }
}

/// A complete transfer with one opaque chunk; returns its id.
async fn complete_transfer(sender: &Client, recipient: &str) -> String {
    use base64::Engine;
    use mftplus_crypto::stream::{
        Encryptor, Recipient, StreamOptions, X25519SecretKey, MIN_CHUNK_SIZE,
    };
    let key = X25519SecretKey::generate().unwrap();
    let options = StreamOptions {
        chunk_size: MIN_CHUNK_SIZE,
        ..StreamOptions::default()
    };
    let encryptor = Encryptor::new(&options, &[Recipient::X25519(key.public_key())]).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let transfer = sender
        .create_transfer(CreateTransferRequest {
            recipients: vec![recipient.to_string()],
            header: b64.encode(encryptor.header_bytes()),
            chunk_size: MIN_CHUNK_SIZE as u64,
            expires: None,
            awaiting_grant: Vec::new(),
            id: None,
            whole: None,
        })
        .await
        .unwrap();
    let chunk = b"sealed chunk bytes".to_vec();
    let sha = mftplus_crypto::secrets::sha256_hex(&chunk);
    sender
        .upload_chunk(&transfer.id, 0, chunk, &sha, true)
        .await
        .unwrap();
    let manifest =
        serde_json::from_value(json!({"manifest": b64.encode(b"sealed manifest")})).unwrap();
    sender
        .complete_transfer(&transfer.id, manifest)
        .await
        .unwrap();
    transfer.id
}

/// How many `transfer_cancelled` audit entries name `id`.
async fn cancellations(cloud: &TestCloud, id: &str) -> usize {
    let rows = cloud.state.store.list_audit(0, 100_000).await.unwrap();
    rows.iter()
        .filter(|r| r.event == "transfer_cancelled" && r.target == id)
        .count()
}

/// A client of the hub at `base`.
fn via(base: &str, credential: Credential) -> Client {
    Client::new(base, credential).unwrap()
}

#[tokio::test]
async fn transfer_updates_are_queued_offline_and_each_applied_once() {
    let (site, cloud) = Site::start().await;
    let people = people(&cloud).await;
    let received = complete_transfer(&people.sender, &people.recipient_email).await;
    let cancelled = complete_transfer(&people.sender, &people.recipient_email).await;
    let hub = site.hub(&[]).await;
    let base = hub.url("");
    // Through the hub, each reads its transfer: proxied 2xx answers vouch for both credentials.
    let sender = via(&base, Credential::ApiKey(cloud.admin_api_key.clone()));
    let recipient = via(&base, Credential::Bearer(people.recipient_token.clone()));
    sender.get_transfer(&cancelled).await.unwrap();
    recipient.get_transfer(&received).await.unwrap();
    // A made-up key on a public route gets a 2xx too; that must not vouch for it.
    let stranger = via(&base, Credential::ApiKey("mftpk_made_up".into()));
    let (status, _, _) = stranger
        .request(mftplus_client::Method::GET, "/api/v1/health", None)
        .await
        .unwrap();
    assert_eq!(status, 200);

    cloud.stop().await;
    for _ in 0..2 {
        // Sent twice each: the second as if the first answer had been lost.
        assert_eq!(
            recipient.mark_received(&received).await.unwrap(),
            Accepted::Queued
        );
        assert_eq!(
            sender.cancel_transfer(&cancelled).await.unwrap(),
            Accepted::Queued
        );
    }
    assert_eq!(queued(&hub), 4);
    let refused = stranger.cancel_transfer(&cancelled).await.unwrap_err();
    assert_eq!(refused.code(), "cloud_unreachable", "{refused:?}");

    let cloud = site.restart_cloud().await;
    wait_drained(&hub).await;
    assert_eq!(hub.state.offline.as_ref().unwrap().dead_letter(), 0);
    // `people.sender` speaks to the old cloud's address, which the new cloud took over.
    let shown = people.sender.get_transfer(&received).await.unwrap();
    assert!(
        shown.recipients[0].downloaded_at.is_some(),
        "the acknowledgement arrived: {shown:?}"
    );
    assert_eq!(
        people.sender.get_transfer(&cancelled).await.unwrap().status,
        "cancelled"
    );
    assert_eq!(
        cancellations(&cloud, &cancelled).await,
        1,
        "cancelled once: the duplicate's 409 was dropped"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hub_dropped_mid_replay_of_cancellations_applies_each_once() {
    const N: usize = 400;
    let (site, cloud) = Site::start().await;
    let people = people(&cloud).await;
    let mut ids = Vec::with_capacity(N);
    for _ in 0..N {
        ids.push(complete_transfer(&people.sender, &people.recipient_email).await);
    }
    let hub = site.hub(&[]).await;
    let sender = via(
        &hub.url(""),
        Credential::ApiKey(cloud.admin_api_key.clone()),
    );
    sender.get_transfer(&ids[0]).await.unwrap();
    cloud.stop().await;
    for id in &ids {
        assert_eq!(sender.cancel_transfer(id).await.unwrap(), Accepted::Queued);
    }
    assert_eq!(queued(&hub), N as u64);

    let cloud = site.restart_cloud().await;
    let offline = hub.state.offline.clone().unwrap();
    wait_until("the replay to start", Duration::from_secs(30), || {
        offline.queued() < N as u64
    })
    .await;
    hub.stop().await;
    let left = offline.queued();
    drop(offline);
    assert!(left > 0, "the hub stopped before the end of the replay");

    // The restarted hub resends what was left, including a row the cloud may already have
    // applied when the hub stopped: that one gets a 409 and is dropped.
    let hub = site.hub(&[]).await;
    wait_drained(&hub).await;
    for id in &ids {
        assert_eq!(
            people.sender.get_transfer(id).await.unwrap().status,
            "cancelled"
        );
        assert_eq!(cancellations(&cloud, id).await, 1, "transfer {id}");
    }
    hub.stop().await;
}
