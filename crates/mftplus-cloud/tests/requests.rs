//! File requests over the API (decision 0034): a user with a key asks for files; an anonymous
//! outsider reads what to encrypt to, uploads through the request, and the owner receives an
//! ordinary transfer sent by `request:<id>` that decrypts with their key. Refusals with their
//! codes: no key, bad limits, another recipient, used up, revoked (also mid-upload), too large,
//! another request's upload, unknown tokens; owners see and revoke only their own.

mod common;
mod request_support;

use common::*;
use mftplus_cloud::testing::{TestCloud, TestOptions};
use mftplus_crypto::stream::{Decryptor, Header, Identity, MIN_CHUNK_SIZE};
use request_support::*;
use serde_json::json;

async fn cloud() -> TestCloud {
    TestCloud::spawn_with(TestOptions {
        database_url: None,
        config_yaml:
            "rate_limit:\n  per_credential_per_minute: 100000\n  \
                      per_address_per_minute: 100000\n  per_address_link_lookups_per_minute: 1000\n"
                .into(),
    })
    .await
}

#[tokio::test]
async fn an_outsider_uploads_through_a_request_and_the_owner_decrypts_it() {
    let cloud = cloud().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    let key = register_user_key(&cloud, &alice).await;
    let (request_id, token) = make_request(
        &cloud,
        &alice,
        json!({"note": "Your signed lease, please", "max_uploads": 2, "expires": "2d"}),
    )
    .await;

    let info = outsider_reads(&cloud, &token).await;
    assert_eq!(info.status, 200, "{:?}", info.body);
    assert_eq!(info.body["recipient"], "alice@example.com");
    assert_eq!(info.body["public_key"], key.public_key().to_encoded());
    assert_eq!(info.body["note"], "Your signed lease, please");
    assert_eq!(info.body["uploads_left"], 2);

    let data: Vec<u8> = (0..MIN_CHUNK_SIZE as usize * 2 + 333)
        .map(|i| (i % 251) as u8)
        .collect();
    let sealed = seal_to(&data, &key.public_key());
    let id = upload(&cloud, &token, "alice@example.com", &sealed).await;

    // An ordinary transfer to alice, sent by the request, waiting for her download.
    let shown = call(
        &cloud,
        &alice,
        "GET",
        &format!("/api/v1/transfers/{id}"),
        None,
    )
    .await;
    assert_eq!(shown.status, 200, "{:?}", shown.body);
    assert_eq!(shown.body["status"], "complete");
    assert_eq!(shown.body["sender_kind"], "request");
    assert_eq!(shown.body["sender_email"], format!("request:{request_id}"));
    let pending = call(
        &cloud,
        &alice,
        "GET",
        "/api/v1/transfers?pending=true",
        None,
    )
    .await;
    assert!(pending
        .body
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == id.as_str()));

    let header = call(
        &cloud,
        &alice,
        "GET",
        &format!("/api/v1/transfers/{id}/header"),
        None,
    )
    .await;
    assert_eq!(header.status, 200);
    let (header, _) = Header::parse(&sealed.header).unwrap();
    let mut reader = Decryptor::new(header, &[Identity::X25519(&key)]).unwrap();
    let mut plain = Vec::new();
    let Cred::Bearer(bearer) = &alice else {
        unreachable!()
    };
    for index in 0..sealed.chunks.len() {
        let bytes = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/transfers/{id}/chunks/{index}",
                cloud.url
            ))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        plain.extend_from_slice(
            reader
                .open_chunk(&bytes, index + 1 == sealed.chunks.len())
                .unwrap(),
        );
    }
    reader.finish(&sealed.manifest).unwrap();
    assert_eq!(plain, data, "the owner decrypts what the outsider sent");

    // Counted: one upload left; the owner's listing says so.
    let listed = call(&cloud, &alice, "GET", "/api/v1/file-requests", None).await;
    let mine = &listed.body.as_array().unwrap()[0];
    assert_eq!(mine["id"], request_id.as_str());
    assert_eq!(mine["uploads"], 1);
    assert_eq!(mine["status"], "active");
    assert!(
        mine.get("token").is_none(),
        "a listing never shows the token"
    );
}

#[tokio::test]
async fn requests_refuse_what_they_do_not_allow() {
    let cloud = cloud().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    let (_, bob) = user_with_token(&cloud, "bob@example.com", "user").await;

    // No key yet: nothing could be encrypted to alice.
    let refused = call(
        &cloud,
        &alice,
        "POST",
        "/api/v1/file-requests",
        Some(json!({})),
    )
    .await;
    assert_eq!(refused.status, 409, "{:?}", refused.body);
    assert_eq!(refused.code(), "no_public_key");
    let key = register_user_key(&cloud, &alice).await;
    for (body, what) in [
        (json!({"max_uploads": 0}), "no uploads"),
        (json!({"max_uploads": 1001}), "too many uploads"),
        (json!({"expires": "400d"}), "past the retention"),
        (json!({"max_bytes": 0}), "no bytes"),
        (json!({"note": "x".repeat(501)}), "a long note"),
        (json!({"token": "mine"}), "an unknown field"),
    ] {
        let reply = call(&cloud, &alice, "POST", "/api/v1/file-requests", Some(body)).await;
        assert_eq!(reply.status, 400, "{what}: {:?}", reply.body);
    }

    let (request_id, token) = make_request(
        &cloud,
        &alice,
        json!({"max_uploads": 1, "max_bytes": MIN_CHUNK_SIZE + 20}),
    )
    .await;
    let data = vec![9u8; MIN_CHUNK_SIZE as usize + 50];
    let sealed = seal_to(&data, &key.public_key());

    // Only to alice.
    let elsewhere = start(&cloud, &token, "bob@example.com", &sealed).await;
    assert_eq!(elsewhere.status, 403, "{:?}", elsewhere.body);
    assert_eq!(elsewhere.code(), "recipient_not_allowed");

    let started = start(&cloud, &token, "alice@example.com", &sealed).await;
    assert_eq!(started.status, 201, "{:?}", started.body);
    let id = started.body["id"].as_str().unwrap().to_string();
    // The one upload is spent: a second is refused, the first goes on.
    let second = start(&cloud, &token, "alice@example.com", &sealed).await;
    assert_eq!(second.status, 410, "{:?}", second.body);
    assert_eq!(second.code(), "link_exhausted");
    let info = outsider_reads(&cloud, &token).await;
    assert_eq!(info.code(), "link_exhausted");
    assert_eq!(
        put(&cloud, &token, &id, 0, &sealed.chunks[0], false)
            .await
            .status,
        201
    );
    // Past the request's size: the second chunk would be.
    let big = put(&cloud, &token, &id, 1, &sealed.chunks[1], true).await;
    assert_eq!(big.status, 413, "{:?}", big.body);
    assert_eq!(big.code(), "payload_too_large");

    // Another request's token does not reach this upload; an unknown token is absent.
    let (_, other_token) = make_request(&cloud, &alice, json!({})).await;
    let foreign = put(&cloud, &other_token, &id, 1, b"x", true).await;
    assert_eq!(foreign.status, 404, "{:?}", foreign.body);
    let unknown = call(
        &cloud,
        &Cred::None,
        "GET",
        "/api/v1/requested/nosuchtoken",
        None,
    )
    .await;
    assert_eq!(unknown.status, 404);
    // Nor does the request reach an ordinary transfer of its owner.
    let own = new_transfer(&cloud, &alice, "bob@example.com").await;
    assert_eq!(
        put(&cloud, &other_token, &own, 0, b"x", true).await.status,
        404
    );

    // Bob cannot revoke alice's request; alice can, once; the upload under way stops.
    let path = format!("/api/v1/file-requests/{request_id}/revoke");
    assert_eq!(call(&cloud, &bob, "POST", &path, None).await.status, 404);
    assert!(call(&cloud, &bob, "GET", "/api/v1/file-requests", None)
        .await
        .body
        .as_array()
        .unwrap()
        .is_empty());
    let revoked = call(&cloud, &alice, "POST", &path, None).await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    assert_eq!(revoked.body["status"], "revoked");
    assert_eq!(call(&cloud, &alice, "POST", &path, None).await.status, 409);
    let stopped = complete(&cloud, &token, &id, &sealed.manifest).await;
    assert_eq!(stopped.status, 410, "{:?}", stopped.body);
    assert_eq!(stopped.code(), "link_revoked");
    // The administrator sees every request.
    let all = call(&cloud, &admin(&cloud), "GET", "/api/v1/file-requests", None).await;
    assert!(all
        .body
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == request_id.as_str()));
}
