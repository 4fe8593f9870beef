//! Hosts as transfer parties (decision 0029) through the real cloud: a host's agent registers
//! its transfer key, users and hosts of its own customer send to `host:<id>` with real streams
//! sealed to that key, the host key lists, downloads, decrypts and acknowledges them, and a host
//! sends to users and to its customer's other hosts. Refused: another customer's host, a host
//! without a key, a transfer the host is no party to, and the routes only people may call.

mod common;
mod fleet_support;
mod host_transfer_support;

use common::*;
use fleet_support::{enroll, enroll_into, Enrolled};
use host_transfer_support::*;
use mftplus_cloud::testing::{TestCloud, TestOptions};
use mftplus_crypto::stream::X25519SecretKey;
use serde_json::{json, Value};

/// A cloud whose customers may have several hosts (one by default).
async fn cloud() -> TestCloud {
    TestCloud::spawn_with(TestOptions {
        config_yaml: format!(
            "{}fleet:\n  max_hosts_per_customer: 5\n",
            TestOptions::default().config_yaml
        ),
        ..TestOptions::default()
    })
    .await
}

fn key_path(host: &Enrolled) -> String {
    format!("/api/v1/hosts/{}/transfer-key", host.host_id)
}

async fn audit_of(cloud: &TestCloud, event: &str) -> Vec<mftplus_store::AuditRow> {
    let rows = cloud.state.store.list_audit(0, 10_000).await.unwrap();
    rows.into_iter().filter(|row| row.event == event).collect()
}

async fn listed(cloud: &TestCloud, cred: &Cred) -> Vec<String> {
    let reply = call(cloud, cred, "GET", "/api/v1/transfers", None).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

fn recipient<'a>(transfer: &'a Value, kind: &str, id: &str) -> &'a Value {
    transfer["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == kind && r["id"] == id)
        .unwrap_or_else(|| panic!("no {kind} recipient {id} in {transfer}"))
}

async fn received(cloud: &TestCloud, cred: &Cred, id: &str) -> Reply {
    call(
        cloud,
        cred,
        "POST",
        &format!("/api/v1/transfers/{id}/received"),
        None,
    )
    .await
}

#[tokio::test]
async fn the_agent_registers_and_replaces_its_transfer_key() {
    let cloud = cloud().await;
    let host = enroll(&cloud).await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    let (_, reader) = user_with_token(&cloud, "ro@example.com", "readonly").await;

    let none = call(&cloud, &alice, "GET", &key_path(&host), None).await;
    assert_eq!((none.status, none.code()), (404, "not_found"), "no key yet");
    let bad = call(
        &cloud,
        &host.cred(),
        "PUT",
        &key_path(&host),
        Some(json!({"public_key": "mftx25519_not-a-key"})),
    )
    .await;
    assert_eq!((bad.status, bad.code()), (400, "validation_failed"));

    let first = register_key(&cloud, &host).await;
    let shown = call(&cloud, &alice, "GET", &key_path(&host), None).await;
    assert_eq!(shown.status, 200, "{:?}", shown.body);
    assert_eq!(shown.body["host_id"], host.host_id.as_str());
    assert_eq!(shown.body["hostname"], "box");
    assert_eq!(
        shown.body["public_key"],
        first.public_key().to_encoded().as_str()
    );
    assert_eq!(
        shown.body["fingerprint"],
        first.public_key().fingerprint_hex().as_str()
    );
    let refused = call(&cloud, &reader, "GET", &key_path(&host), None).await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "forbidden"),
        "a user who may not send may not look a host's key up"
    );

    // The same key again changes nothing; another replaces it (a re-enrolled box).
    let again = call(
        &cloud,
        &host.cred(),
        "PUT",
        &key_path(&host),
        Some(json!({"public_key": first.public_key().to_encoded()})),
    )
    .await;
    assert_eq!(again.body["registered_at"], shown.body["registered_at"]);
    let second = register_key(&cloud, &host).await;
    let now = fetch_key(&cloud, &alice, &key_path(&host)).await;
    assert_eq!(now, second.public_key());
    let audited = audit_of(&cloud, "host_transfer_key_registered").await;
    assert_eq!(audited.len(), 2, "registered and replaced, not the repeat");
    assert_eq!(audited[1].actor, format!("host:{}", host.host_id));
    assert_eq!(audited[1].details["replaced"], true);
}

#[tokio::test]
async fn re_enrollment_forgets_the_lost_boxs_key() {
    let cloud = cloud().await;
    let host = enroll(&cloud).await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    register_key(&cloud, &host).await;
    // Until the new box registers its own key, senders are refused.
    let armed = call(
        &cloud,
        &admin(&cloud),
        "POST",
        &format!("/api/v1/hosts/{}/recovery", host.host_id),
        Some(json!({"ttl_seconds": 600})),
    )
    .await;
    assert_eq!(armed.status, 200, "{:?}", armed.body);
    let re_enrolled = fleet_support::with_password(
        &cloud,
        "POST",
        &format!("/api/v1/hosts/{}/re-enroll", host.host_id),
        fleet_support::RETRIEVAL_PASSWORD,
        Some(json!({"hostname": "box-new", "agent_version": "0.1.0"})),
    )
    .await;
    assert_eq!(re_enrolled.status, 200, "{:?}", re_enrolled.body);
    let gone = call(&cloud, &alice, "GET", &key_path(&host), None).await;
    assert_eq!(gone.status, 404, "{:?}", gone.body);
    let new_box = Enrolled {
        host_key: re_enrolled.body["host_key"].as_str().unwrap().to_string(),
        ..host
    };
    let third = register_key(&cloud, &new_box).await;
    assert_eq!(
        fetch_key(&cloud, &alice, &key_path(&new_box)).await,
        third.public_key()
    );
}

#[tokio::test]
async fn a_user_sends_to_a_host_and_the_host_receives() {
    let cloud = cloud().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    let host = enroll(&cloud).await;
    let secret = register_key(&cloud, &host).await;
    let host_public = fetch_key(&cloud, &alice, &key_path(&host)).await;
    let alice_secret = register_user_key(&cloud, &alice).await;

    let data = payload();
    let sealed = seal(&data, &[host_public, alice_secret.public_key()]);
    let to_host = format!("host:{}", host.host_id);
    let id = send_sealed(&cloud, &alice, &[&to_host], &sealed).await;

    let shown = call(
        &cloud,
        &alice,
        "GET",
        &format!("/api/v1/transfers/{id}"),
        None,
    )
    .await;
    let entry = recipient(&shown.body, "agent", &host.host_id);
    assert_eq!(entry["display"], format!("host:{} (box)", host.host_id));
    assert_eq!(entry["awaiting_grant"], false);
    assert_eq!(shown.body["sender_kind"], "user");

    // The host finds it in its listing and reads it as any recipient does.
    assert_eq!(listed(&cloud, &host.cred()).await, vec![id.clone()]);
    let seen = call(
        &cloud,
        &host.cred(),
        "GET",
        &format!("/api/v1/transfers/{id}"),
        None,
    )
    .await;
    assert_eq!(seen.status, 200, "{:?}", seen.body);
    assert_eq!(seen.body["sender_email"], "alice@example.com");
    assert_eq!(receive(&cloud, &host.cred(), &id, &secret).await, data);
    assert!(
        recipient(&seen.body, "agent", &host.host_id)["downloaded_at"].is_null(),
        "reading is not receiving"
    );

    let acknowledged = received(&cloud, &host.cred(), &id).await;
    assert_eq!(acknowledged.status, 200, "{:?}", acknowledged.body);
    let marked = recipient(&acknowledged.body, "agent", &host.host_id);
    assert!(marked["downloaded_at"].is_string(), "{marked}");
    let as_sender = call(
        &cloud,
        &alice,
        "GET",
        &format!("/api/v1/transfers/{id}"),
        None,
    )
    .await;
    assert_eq!(
        recipient(&as_sender.body, "agent", &host.host_id)["downloaded_at"],
        marked["downloaded_at"],
        "the sender sees the host received it"
    );
}

#[tokio::test]
async fn a_host_sends_to_a_user_and_to_its_own_customers_host() {
    let cloud = cloud().await;
    let (_, bob) = user_with_token(&cloud, "bob@example.com", "user").await;
    let sender = enroll(&cloud).await;
    let sibling = enroll_into(&cloud, &sender.customer_id).await;
    let sibling_secret = register_key(&cloud, &sibling).await;
    let bob_secret = register_user_key(&cloud, &bob).await;

    // The agent looks both keys up with its host key.
    let bob_public = fetch_key(&cloud, &sender.cred(), "/api/v1/users/bob@example.com/key").await;
    let sibling_public = fetch_key(&cloud, &sender.cred(), &key_path(&sibling)).await;
    assert_eq!(bob_public, bob_secret.public_key());

    let data = payload();
    let sealed = seal(&data, &[bob_public, sibling_public]);
    let to_sibling = format!("host:{}", sibling.host_id);
    let id = send_sealed(
        &cloud,
        &sender.cred(),
        &["bob@example.com", &to_sibling],
        &sealed,
    )
    .await;
    let shown = call(
        &cloud,
        &sender.cred(),
        "GET",
        &format!("/api/v1/transfers/{id}"),
        None,
    )
    .await;
    assert_eq!(shown.body["sender_kind"], "agent");
    assert_eq!(shown.body["sender_id"], sender.host_id.as_str());
    assert_eq!(
        shown.body["sender_email"],
        format!("host:{}", sender.host_id)
    );
    let chunks = call(
        &cloud,
        &sender.cred(),
        "GET",
        &format!("/api/v1/transfers/{id}/chunks"),
        None,
    )
    .await;
    assert_eq!(chunks.body.as_array().unwrap().len(), sealed.chunks.len());

    // Each recipient reads it with its own key and acknowledges its own entry.
    assert!(listed(&cloud, &bob).await.contains(&id));
    assert_eq!(receive(&cloud, &bob, &id, &bob_secret).await, data);
    assert_eq!(
        receive(&cloud, &sibling.cred(), &id, &sibling_secret).await,
        data
    );
    let by_bob = received(&cloud, &bob, &id).await;
    assert!(recipient(&by_bob.body, "agent", &sibling.host_id)["downloaded_at"].is_null());
    let by_sibling = received(&cloud, &sibling.cred(), &id).await;
    assert!(recipient(&by_sibling.body, "agent", &sibling.host_id)["downloaded_at"].is_string());
    let bob_entry = by_sibling.body["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["display"] == "bob@example.com")
        .unwrap();
    assert!(bob_entry["downloaded_at"].is_string(), "{bob_entry}");
    let by_sender = received(&cloud, &sender.cred(), &id).await;
    assert_eq!(
        by_sender.status, 200,
        "the sender's acknowledgement changes nothing"
    );
    assert_eq!(listed(&cloud, &sender.cred()).await, vec![id.clone()]);

    let created = audit_of(&cloud, "transfer_created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].actor, format!("host:{}", sender.host_id));
    let completed = audit_of(&cloud, "transfer_completed").await;
    assert_eq!(completed[0].actor, format!("host:{}", sender.host_id));
}

#[tokio::test]
async fn hosts_send_only_within_their_customer_and_only_to_keys() {
    let cloud = cloud().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    user_with_token(&cloud, "bob@example.com", "user").await;
    let host = enroll(&cloud).await;
    register_key(&cloud, &host).await;
    let stranger = enroll(&cloud).await;
    register_key(&cloud, &stranger).await;
    let keyless = enroll_into(&cloud, &host.customer_id).await;
    let sealed = seal(b"x", &[X25519SecretKey::generate().unwrap().public_key()]);

    // Another customer's host: neither its key nor a transfer to it.
    let key = call(&cloud, &host.cred(), "GET", &key_path(&stranger), None).await;
    assert_eq!((key.status, key.code()), (403, "recipient_not_allowed"));
    let to_stranger = format!("host:{}", stranger.host_id);
    let sent = create(&cloud, &host.cred(), &[&to_stranger], &sealed).await;
    assert_eq!((sent.status, sent.code()), (403, "recipient_not_allowed"));
    // A user with transfers:create may send to any host with a key.
    assert_eq!(
        create(&cloud, &alice, &[&to_stranger], &sealed)
            .await
            .status,
        201
    );

    // A host without a key, or none at all, is no recipient: refused, never waited for.
    let to_keyless = format!("host:{}", keyless.host_id);
    for sender in [&alice, &host.cred()] {
        let refused = create(&cloud, sender, &[&to_keyless], &sealed).await;
        assert_eq!((refused.status, refused.code()), (400, "unknown_recipient"));
        let message = refused.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&keyless.host_id) && message.contains("no transfer key"));
        let nobody = create(&cloud, sender, &["host:h-nosuchhost0000"], &sealed).await;
        assert_eq!((nobody.status, nobody.code()), (400, "unknown_recipient"));
    }
    let waiting = call(
        &cloud,
        &host.cred(),
        "POST",
        "/api/v1/transfers",
        Some(
            json!({"recipients": ["bob@example.com"], "header": b64(&sealed.header),
            "chunk_size": mftplus_crypto::stream::MIN_CHUNK_SIZE,
            "awaiting_grant": ["bob@example.com"]}),
        ),
    )
    .await;
    assert_eq!(
        (waiting.status, waiting.code()),
        (400, "validation_failed"),
        "a host cannot grant later"
    );
}

#[tokio::test]
async fn a_transfer_a_host_is_no_party_to_is_absent_to_it() {
    let cloud = cloud().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    let (_, bob) = user_with_token(&cloud, "bob@example.com", "user").await;
    let host = enroll(&cloud).await;
    register_key(&cloud, &host).await;
    let sealed = seal(b"x", &[X25519SecretKey::generate().unwrap().public_key()]);
    // Users' transfers, and one to its sibling host.
    let users = complete_transfer(&cloud, &alice, "bob@example.com").await;
    let sibling = enroll_into(&cloud, &host.customer_id).await;
    register_key(&cloud, &sibling).await;
    let to_sibling = send_sealed(
        &cloud,
        &alice,
        &[&format!("host:{}", sibling.host_id)],
        &sealed,
    )
    .await;
    let uploading = new_transfer(&cloud, &alice, "bob@example.com").await;
    for id in [&users, &to_sibling] {
        for (method, path) in [
            ("GET", format!("/api/v1/transfers/{id}")),
            ("GET", format!("/api/v1/transfers/{id}/header")),
            ("GET", format!("/api/v1/transfers/{id}/chunks/0")),
            ("GET", format!("/api/v1/transfers/{id}/manifest")),
            ("POST", format!("/api/v1/transfers/{id}/received")),
            ("GET", format!("/api/v1/transfers/{id}/chunks")),
        ] {
            let reply = call(&cloud, &host.cred(), method, &path, None).await;
            assert_eq!(
                (reply.status, reply.code()),
                (404, "not_found"),
                "{method} {path}: {:?}",
                reply.body
            );
        }
    }
    let put = put_chunk(&cloud, &host.cred(), &uploading, 0, b"sealed", true).await;
    assert_eq!((put.status, put.code()), (404, "not_found"));
    let complete = call(
        &cloud,
        &host.cred(),
        "POST",
        &format!("/api/v1/transfers/{uploading}/complete"),
        Some(json!({"manifest": "bWFuaWZlc3Q="})),
    )
    .await;
    assert_eq!((complete.status, complete.code()), (404, "not_found"));
    assert!(listed(&cloud, &host.cred()).await.is_empty());
    assert_eq!(
        listed(&cloud, &bob).await.len(),
        2,
        "{users} and {uploading}"
    );
}

#[tokio::test]
async fn routes_only_people_may_call_refuse_a_host_key() {
    let cloud = cloud().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    let host = enroll(&cloud).await;
    register_key(&cloud, &host).await;
    let sealed = seal(b"x", &[X25519SecretKey::generate().unwrap().public_key()]);
    // Cancel, verify, grants, links and the dashboard take a person: a host key is the wrong
    // kind there, even on a transfer it receives.
    let mine = send_sealed(
        &cloud,
        &alice,
        &[&format!("host:{}", host.host_id)],
        &sealed,
    )
    .await;
    for (method, path) in [
        ("POST", format!("/api/v1/transfers/{mine}/cancel")),
        ("POST", format!("/api/v1/transfers/{mine}/verify")),
        ("POST", format!("/api/v1/transfers/{mine}/links")),
        ("GET", format!("/api/v1/transfers/{mine}/links")),
        ("GET", "/api/v1/transfers/grants".to_string()),
        ("GET", "/transfers".to_string()),
        ("GET", format!("/transfers/{mine}")),
    ] {
        let reply = call(&cloud, &host.cred(), method, &path, None).await;
        assert_eq!(reply.status, 403, "{method} {path}: {:?}", reply.body);
    }
    let cancel = call(
        &cloud,
        &host.cred(),
        "POST",
        &format!("/api/v1/transfers/{mine}/cancel"),
        None,
    )
    .await;
    assert_eq!(cancel.code(), "forbidden");
    let unknown = Cred::Bearer(format!("mfth_{}", "q".repeat(40)));
    let reply = call(
        &cloud,
        &unknown,
        "POST",
        &format!("/api/v1/transfers/{mine}/cancel"),
        None,
    )
    .await;
    assert_eq!((reply.status, reply.code()), (401, "unauthenticated"));
    let still = call(
        &cloud,
        &alice,
        "GET",
        &format!("/api/v1/transfers/{mine}"),
        None,
    )
    .await;
    assert_eq!(still.body["status"], "complete", "nothing was cancelled");
    let denials = audit_of(&cloud, "access_denied").await;
    assert!(denials
        .iter()
        .any(|row| row.actor == format!("host:{}", host.host_id)));
}

#[tokio::test]
async fn the_client_speaks_for_a_host_with_its_key() {
    use mftplus_client::{Accepted, AgentClient, Client, Credential};
    let cloud = cloud().await;
    let host = enroll(&cloud).await;
    let agent = AgentClient::new(&cloud.url, &host.host_key).unwrap();
    let secret = X25519SecretKey::generate().unwrap();
    let encoded = secret.public_key().to_encoded();
    agent
        .register_host_transfer_key(&host.host_id, &encoded)
        .await
        .unwrap();
    agent
        .register_host_transfer_key(&host.host_id, &encoded)
        .await
        .expect("registering the same key again");

    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    let Cred::Bearer(token) = &alice else {
        unreachable!()
    };
    let person = Client::new(&cloud.url, Credential::Bearer(token.clone())).unwrap();
    assert_eq!(
        person.host_transfer_key(&host.host_id).await.unwrap(),
        encoded
    );
    let missing = person
        .host_transfer_key("h-nosuchhost0000")
        .await
        .unwrap_err();
    assert_eq!(missing.code(), "not_found");

    let data = payload();
    let sealed = seal(&data, &[secret.public_key()]);
    let id = send_sealed(
        &cloud,
        &alice,
        &[&format!("host:{}", host.host_id)],
        &sealed,
    )
    .await;

    // A plain Client with the host key as its bearer credential, and the agent's own.
    let keyed = Client::new(&cloud.url, Credential::Bearer(host.host_key.clone())).unwrap();
    for client in [&keyed, agent.transfers()] {
        let listed = client.list_transfers(Some("complete")).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, id);
        assert_eq!(client.get_transfer(&id).await.unwrap().sender_kind, "user");
        assert_eq!(client.transfer_header(&id).await.unwrap(), sealed.header);
        assert_eq!(
            client.transfer_chunk(&id, 0).await.unwrap(),
            sealed.chunks[0].bytes
        );
        assert_eq!(
            client.transfer_manifest(&id).await.unwrap(),
            sealed.manifest
        );
    }
    let Accepted::Applied(done) = keyed.mark_received(&id).await.unwrap() else {
        panic!("applied directly, no hub in between")
    };
    assert!(done.recipients[0].downloaded_at.is_some());
    let refused = keyed.cancel_transfer(&id).await.unwrap_err();
    assert_eq!(refused.code(), "forbidden");
}
