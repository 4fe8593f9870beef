//! Grants over the API (decision 0022): a recipient without a key waits, cannot fetch what it
//! cannot open, and is granted by the sender's new header, which the cloud checks for shape
//! without any key. Every refusal has its own code.

mod common;

use base64::Engine;
use common::*;
use mftplus_cloud::testing::TestCloud;
use mftplus_crypto::stream::{
    add_x25519_recipients, Decryptor, Encryptor, Header, Identity, ManifestInfo, Recipient,
    StreamOptions, X25519SecretKey, MIN_CHUNK_SIZE,
};
use serde_json::{json, Value};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text.as_str().unwrap())
        .unwrap()
}

fn recipient<'a>(transfer: &'a Value, id: &str) -> &'a Value {
    transfer["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("recipient {id} in {transfer:#}"))
}

async fn grant(cloud: &TestCloud, cred: &Cred, id: &str, body: Value) -> Reply {
    call(
        cloud,
        cred,
        "POST",
        &format!("/api/v1/transfers/{id}/grants"),
        Some(body),
    )
    .await
}

#[track_caller]
fn refused(reply: &Reply, status: u16, code: &str, what: &str) {
    assert_eq!(
        (reply.status, reply.code()),
        (status, code),
        "{what}: {:?}",
        reply.body
    );
}

/// A grant body with `header` in place of the valid one.
fn with_header(w: &Waiting, header: &[u8]) -> Value {
    let mut body = w.grant.clone();
    body["header"] = json!(b64(header));
    body
}

#[tokio::test]
async fn a_waiting_recipient_is_refused_until_the_sender_grants() {
    let cloud = TestCloud::spawn().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    let (bob_id, bob) = user_with_token(&cloud, "bob@example.com", "user").await;
    let sender_key = X25519SecretKey::generate().unwrap();
    let options = StreamOptions {
        chunk_size: MIN_CHUNK_SIZE,
        ..StreamOptions::default()
    };
    let mut encryptor =
        Encryptor::new(&options, &[Recipient::X25519(sender_key.public_key())]).unwrap();
    let base = encryptor.header_bytes().to_vec();
    let data = b"for bob, once he has a key".repeat(100);
    let mut chunks = encryptor.push(&data).unwrap();
    let trailer = encryptor
        .finish(ManifestInfo {
            name: "late.txt".into(),
            mode: None,
        })
        .unwrap();
    chunks.push(trailer.last_chunk.clone());
    let created = call(
        &cloud,
        &alice,
        "POST",
        "/api/v1/transfers",
        Some(
            json!({"recipients": ["bob@example.com"], "header": b64(&base),
            "chunk_size": MIN_CHUNK_SIZE, "awaiting_grant": ["BOB@example.com"]}),
        ),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(recipient(&created.body, &bob_id)["awaiting_grant"], true);
    for (index, chunk) in chunks.iter().enumerate() {
        let reply = put_chunk(&cloud, &alice, &id, index as u64, &chunk.bytes, chunk.last).await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
    }
    let done = call(
        &cloud,
        &alice,
        "POST",
        &format!("/api/v1/transfers/{id}/complete"),
        Some(json!({"manifest": b64(&trailer.sealed_manifest)})),
    )
    .await;
    assert_eq!(done.status, 200, "{:?}", done.body);

    // Bob sees it, waiting, and may fetch nothing of it.
    let listed = call(&cloud, &bob, "GET", "/api/v1/transfers", None).await;
    assert_eq!(recipient(&listed.body[0], &bob_id)["awaiting_grant"], true);
    for (method, tail) in [
        ("GET", "header"),
        ("GET", "chunks/0"),
        ("GET", "manifest"),
        ("POST", "received"),
    ] {
        let reply = call(
            &cloud,
            &bob,
            method,
            &format!("/api/v1/transfers/{id}/{tail}"),
            None,
        )
        .await;
        refused(&reply, 409, "awaiting_grant", tail);
    }
    // The sender still can.
    let own = call(
        &cloud,
        &alice,
        "GET",
        &format!("/api/v1/transfers/{id}/header"),
        None,
    )
    .await;
    assert_eq!(own.status, 200);

    // What waits, before and after Bob has a key.
    let pending = call(&cloud, &alice, "GET", "/api/v1/transfers/grants", None).await;
    assert_eq!(pending.status, 200, "{:?}", pending.body);
    assert_eq!(pending.body[0]["transfer_id"], id.as_str());
    assert_eq!(pending.body[0]["recipients"][0]["id"], bob_id.as_str());
    assert!(pending.body[0]["recipients"][0].get("public_key").is_none());
    assert_eq!(unb64(&pending.body[0]["header"]), base);
    let none = call(&cloud, &bob, "GET", "/api/v1/transfers/grants", None).await;
    assert_eq!(none.body, json!([]), "only the sender's own");
    let bob_key = X25519SecretKey::generate().unwrap();
    let put = call(
        &cloud,
        &bob,
        "PUT",
        "/api/v1/users/me/key",
        Some(json!({"public_key": bob_key.public_key().to_encoded()})),
    )
    .await;
    assert_eq!(put.status, 200);
    let pending = call(&cloud, &alice, "GET", "/api/v1/transfers/grants", None).await;
    assert_eq!(
        pending.body[0]["recipients"][0]["public_key"],
        bob_key.public_key().to_encoded()
    );

    // The sender's grant; then Bob opens the unchanged chunks with the new header.
    let header = add_x25519_recipients(
        &base,
        &[Identity::X25519(&sender_key)],
        &[bob_key.public_key()],
    )
    .unwrap();
    let body = json!({"recipients": [bob_id], "header": b64(&header),
        "base_header_sha256": mftplus_crypto::sha256_hex(&base)});
    let granted = grant(&cloud, &alice, &id, body.clone()).await;
    assert_eq!(granted.status, 200, "{:?}", granted.body);
    assert_eq!(recipient(&granted.body, &bob_id)["awaiting_grant"], false);
    assert!(recipient(&granted.body, &bob_id)["granted_at"].is_string());
    let fetched = call_raw(
        &cloud,
        &bob,
        "GET",
        &format!("/api/v1/transfers/{id}/header"),
        vec![],
        &[],
    )
    .await;
    assert_eq!(fetched.status, 200);
    let (parsed, _) = Header::parse(&header).unwrap();
    let mut decryptor = Decryptor::new(parsed, &[Identity::X25519(&bob_key)]).unwrap();
    let mut plain = Vec::new();
    for chunk in &chunks {
        plain.extend_from_slice(decryptor.open(chunk).unwrap());
    }
    decryptor.finish(&trailer.sealed_manifest).unwrap();
    assert_eq!(plain, data);
    let received = call(
        &cloud,
        &bob,
        "POST",
        &format!("/api/v1/transfers/{id}/received"),
        None,
    )
    .await;
    assert_eq!(received.status, 200, "{:?}", received.body);

    // Granted once: a repeat is refused, and nothing waits any more.
    refused(
        &grant(&cloud, &alice, &id, body).await,
        409,
        "already_granted",
        "again",
    );
    let pending = call(&cloud, &alice, "GET", "/api/v1/transfers/grants", None).await;
    assert_eq!(pending.body, json!([]));

    // Audited, without a key or a header in the record.
    let audit = call(
        &cloud,
        &admin(&cloud),
        "GET",
        "/api/v1/audit?limit=1000",
        None,
    )
    .await;
    let text = audit.body.to_string();
    assert!(
        text.contains("transfer_access_granted") && text.contains(&id),
        "{text}"
    );
    assert!(text.contains("bob@example.com"), "{text}");
    assert!(!text.contains(&b64(&header)[..40]), "{text}");
}

#[tokio::test]
async fn every_bad_grant_has_its_code() {
    let cloud = TestCloud::spawn().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    let (_, bob) = user_with_token(&cloud, "bob@example.com", "user").await;
    let (carol_id, carol) = user_with_token(&cloud, "carol@example.com", "user").await;
    let w = waiting_transfer(&cloud, &alice, &bob, "bob@example.com").await;
    let me = [Identity::X25519(&w.sender_key)];
    let good = unb64(&w.grant["header"]);

    let mut salted = good.clone();
    salted[20] ^= 1;
    let mut changed = good.clone();
    changed[46 + 3 + 30] ^= 1; // inside the sender's stanza
    let dropped = Encryptor::new(
        &StreamOptions {
            chunk_size: MIN_CHUNK_SIZE,
            ..StreamOptions::default()
        },
        &[Recipient::X25519(w.recipient_key.public_key())],
    )
    .unwrap()
    .header_bytes()
    .to_vec();
    for (what, header) in [
        ("a changed salt", salted),
        ("a changed stanza", changed),
        ("a dropped stanza", dropped),
        ("nothing added", w.base.clone()),
        ("no header", b"MFTP not really".to_vec()),
    ] {
        let reply = grant(&cloud, &alice, &w.id, with_header(&w, &header)).await;
        refused(&reply, 422, "grant_invalid", what);
    }

    let stranger = X25519SecretKey::generate().unwrap();
    let wrong = add_x25519_recipients(&w.base, &me, &[stranger.public_key()]).unwrap();
    let reply = grant(&cloud, &alice, &w.id, with_header(&w, &wrong)).await;
    refused(&reply, 422, "grant_key_mismatch", "another key's stanza");
    let two = add_x25519_recipients(
        &w.base,
        &me,
        &[w.recipient_key.public_key(), stranger.public_key()],
    )
    .unwrap();
    let reply = grant(&cloud, &alice, &w.id, with_header(&w, &two)).await;
    refused(&reply, 422, "grant_key_mismatch", "an extra stanza");

    let mut stale = w.grant.clone();
    stale["base_header_sha256"] = json!(mftplus_crypto::sha256_hex(b"an older header"));
    refused(
        &grant(&cloud, &alice, &w.id, stale).await,
        409,
        "grant_stale",
        "stale",
    );
    let mut not_theirs = w.grant.clone();
    not_theirs["recipients"] = json!([carol_id]);
    refused(
        &grant(&cloud, &alice, &w.id, not_theirs).await,
        400,
        "validation_failed",
        "not a recipient",
    );
    refused(
        &grant(&cloud, &bob, &w.id, w.grant.clone()).await,
        403,
        "forbidden",
        "the recipient",
    );
    refused(
        &grant(&cloud, &carol, &w.id, w.grant.clone()).await,
        404,
        "not_found",
        "a stranger",
    );

    // None of that changed anything: the valid grant still applies, once.
    let ok = grant(&cloud, &alice, &w.id, w.grant.clone()).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    refused(
        &grant(&cloud, &alice, &w.id, w.grant.clone()).await,
        409,
        "already_granted",
        "already granted",
    );
}

#[tokio::test]
async fn closed_transfers_cannot_be_granted() {
    let cloud = TestCloud::spawn().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    // A key, not a session: the clock moves past a session's life below.
    let alice = Cred::ApiKey(api_key(&cloud, &alice, None).await.1);
    let (_, bob) = user_with_token(&cloud, "bob@example.com", "user").await;

    let cancelled = waiting_transfer(&cloud, &alice, &bob, "bob@example.com").await;
    let reply = call(
        &cloud,
        &alice,
        "POST",
        &format!("/api/v1/transfers/{}/cancel", cancelled.id),
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    refused(
        &grant(&cloud, &alice, &cancelled.id, cancelled.grant.clone()).await,
        409,
        "transfer_closed",
        "cancelled",
    );

    // Past its expiry time, before the sweep has marked it: still closed, and no longer listed.
    let expiring = waiting_transfer(&cloud, &alice, &bob, "bob@example.com").await;
    let pending = call(&cloud, &alice, "GET", "/api/v1/transfers/grants", None).await;
    assert_eq!(
        pending.body.as_array().unwrap().len(),
        1,
        "{:?}",
        pending.body
    );
    cloud.clock.advance_secs(8 * 86_400);
    refused(
        &grant(&cloud, &alice, &expiring.id, expiring.grant.clone()).await,
        409,
        "transfer_closed",
        "expired",
    );
    let pending = call(&cloud, &alice, "GET", "/api/v1/transfers/grants", None).await;
    assert_eq!(pending.body, json!([]));
}

#[tokio::test]
async fn creation_checks_who_waits() {
    let cloud = TestCloud::spawn().await;
    let (alice_id, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    user_with_token(&cloud, "bob@example.com", "user").await;
    let (header, chunk_size) = stream_header();
    let create = |body: Value| {
        let cloud = &cloud;
        let alice = alice.clone();
        async move { call(cloud, &alice, "POST", "/api/v1/transfers", Some(body)).await }
    };
    let reply = create(
        json!({"recipients": ["nobody@example.com"], "header": header,
        "chunk_size": chunk_size, "awaiting_grant": ["nobody@example.com"]}),
    )
    .await;
    refused(&reply, 400, "unknown_recipient", "no such user");
    let reply = create(json!({"recipients": ["bob@example.com"], "header": header,
        "chunk_size": chunk_size, "awaiting_grant": ["carol@example.com"]}))
    .await;
    refused(&reply, 400, "validation_failed", "not among the recipients");
    // The sender named as waiting never waits: their own stanza is always there.
    let reply = create(
        json!({"recipients": ["bob@example.com", "alice@example.com"],
        "header": header, "chunk_size": chunk_size,
        "awaiting_grant": ["bob@example.com", "alice@example.com"]}),
    )
    .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(recipient(&reply.body, &alice_id)["awaiting_grant"], false);
    // Without the field nobody waits (older clients).
    let reply = create(json!({"recipients": ["bob@example.com"], "header": header,
        "chunk_size": chunk_size}))
    .await;
    assert_eq!(reply.body["recipients"][0]["awaiting_grant"], false);
}
