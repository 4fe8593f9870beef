//! A transfer sent whole (decision 0037): one `POST /transfers` with an id the client chose and
//! the stream's one chunk and manifest creates it complete; the recipient receives it like any
//! other (through the client library, decrypted and verified); every malformed or conflicting
//! request is refused with its code and leaves no transfer behind.

mod common;

use base64::Engine;
use common::*;
use mftplus_client::{Client, Credential};
use mftplus_cloud::testing::TestCloud;
use mftplus_crypto::stream::{Identity, ManifestInfo, StreamOptions, X25519PublicKey};
use mftplus_transfer::send::{new_transfer_id, send_whole, Outgoing, MAX_WHOLE_PLAINTEXT};
use serde_json::{json, Value};

fn client(cloud: &TestCloud, cred: &Cred) -> Client {
    let Cred::Bearer(token) = cred else {
        panic!("bearer expected")
    };
    Client::new(&cloud.url, Credential::Bearer(token.clone())).unwrap()
}

fn to_bob(bob_key: X25519PublicKey, name: &str) -> Outgoing {
    Outgoing {
        recipients: vec!["bob@example.com".into()],
        keys: vec![bob_key],
        options: StreamOptions::default(),
        expires: None,
        info: ManifestInfo {
            name: name.into(),
            mode: Some(0o640),
        },
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn a_small_file_is_sent_in_one_request_and_received_intact() {
    let cloud = TestCloud::spawn().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    let (_, bob) = user_with_token(&cloud, "bob@example.com", "user").await;
    let (_, carol) = user_with_token(&cloud, "carol@example.com", "user").await;
    let bob_key = register_user_key(&cloud, &bob).await;
    let sender = client(&cloud, &alice);

    for (name, len) in [
        ("empty", 0),
        ("one byte", 1),
        ("largest", MAX_WHOLE_PLAINTEXT),
    ] {
        let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let id = new_transfer_id();
        let made = send_whole(
            &sender,
            &to_bob(bob_key.public_key(), name),
            &id,
            &plaintext,
        )
        .await
        .unwrap();
        assert_eq!(
            (made.id.as_str(), made.status.as_str(), made.chunk_count),
            (id.as_str(), "complete", Some(1)),
            "{name}"
        );
        assert_eq!(made.site, None);

        let dir = tempfile::tempdir().unwrap();
        let (temp, manifest) = mftplus_transfer::receive::to_temp_file(
            &client(&cloud, &bob),
            &id,
            1,
            &[Identity::X25519(&bob_key)],
            dir.path(),
            &mut |_| {},
        )
        .await
        .unwrap();
        assert_eq!(std::fs::read(&temp.path).unwrap(), plaintext, "{name}");
        assert_eq!(manifest.name, name);
        // Outsiders see nothing of it.
        let seen = call(
            &cloud,
            &carol,
            "GET",
            &format!("/api/v1/transfers/{id}"),
            None,
        )
        .await;
        assert_eq!(seen.status, 404, "{name}");
    }

    // One more byte than fits is the caller's to send chunk by chunk.
    let over = vec![1u8; MAX_WHOLE_PLAINTEXT + 1];
    let err = send_whole(
        &sender,
        &to_bob(bob_key.public_key(), "over"),
        &new_transfer_id(),
        &over,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "too_large");

    // Sent whole, audited as created and completed like any other transfer.
    let log = cloud.state.store.list_audit(0, 1000).await.unwrap();
    for event in ["transfer_created", "transfer_completed"] {
        assert_eq!(
            log.iter().filter(|e| e.event == event).count(),
            3,
            "{event}"
        );
    }
}

#[tokio::test]
async fn a_malformed_or_conflicting_whole_transfer_is_refused_and_leaves_nothing() {
    let cloud = TestCloud::spawn().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    let (_, bob) = user_with_token(&cloud, "bob@example.com", "user").await;
    register_user_key(&cloud, &bob).await;
    let (header, chunk_size) = stream_header();
    let chunk = vec![9u8; 4000];
    let body = |id: &str, chunk: &[u8], sha: &str, manifest: &str| -> Value {
        json!({"recipients": ["bob@example.com"], "header": header, "chunk_size": chunk_size,
               "id": id, "whole": {"chunk": b64(chunk), "chunk_sha256": sha, "manifest": manifest}})
    };
    let post = |body: Value| {
        let (cloud, alice) = (&cloud, &alice);
        async move { call(cloud, alice, "POST", "/api/v1/transfers", Some(body)).await }
    };
    let sha = mftplus_crypto::sha256_hex(&chunk);
    let manifest = b64(b"sealed manifest");
    let id = new_transfer_id();

    let made = post(body(&id, &chunk, &sha, &manifest)).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    assert_eq!(
        (made.body["id"].as_str(), made.body["status"].as_str()),
        (Some(id.as_str()), Some("complete"))
    );
    let again = post(body(&id, &chunk, &sha, &manifest)).await;
    assert_eq!(
        (again.status, again.code()),
        (409, "conflict"),
        "{:?}",
        again.body
    );

    let big = vec![9u8; mftplus_types::transfers::MAX_WHOLE_CHUNK + 1];
    let cases = [
        (
            body("not-an-id", &chunk, &sha, &manifest),
            400,
            "validation_failed",
        ),
        (
            body(&id.to_uppercase(), &chunk, &sha, &manifest),
            400,
            "validation_failed",
        ),
        (
            body(
                &new_transfer_id(),
                &chunk,
                &mftplus_crypto::sha256_hex(b"x"),
                &manifest,
            ),
            422,
            "checksum_mismatch",
        ),
        (
            body(
                &new_transfer_id(),
                &big,
                &mftplus_crypto::sha256_hex(&big),
                &manifest,
            ),
            413,
            "payload_too_large",
        ),
        (
            body(
                &new_transfer_id(),
                &[],
                &mftplus_crypto::sha256_hex(&[]),
                &manifest,
            ),
            413,
            "payload_too_large",
        ),
        (
            body(&new_transfer_id(), &chunk, &sha, ""),
            400,
            "validation_failed",
        ),
        (
            body(&new_transfer_id(), &chunk, &sha, "%%%"),
            400,
            "validation_failed",
        ),
    ];
    for (request, status, code) in cases {
        let refused = post(request.clone()).await;
        assert_eq!(
            (refused.status, refused.code()),
            (status, code),
            "{request}"
        );
    }
    let listed = call(&cloud, &alice, "GET", "/api/v1/transfers", None).await;
    let ids: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![id.as_str()], "no refused request made a transfer");
}
