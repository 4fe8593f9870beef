//! A transfer end to end through the real cloud: the sender encrypts with the stream format to
//! the recipient's registered key, uploads chunks with their SHA-256, completes; the recipient
//! downloads and decrypts to the same bytes. Bad uploads, gaps, tampering at rest and other
//! users are refused.

mod common;

use base64::Engine;
use common::*;
use mftplus_cloud::testing::TestCloud;
use mftplus_crypto::stream::{
    Decryptor, Encryptor, Header, Identity, ManifestInfo, Recipient, SealedChunk, StreamError,
    StreamOptions, X25519PublicKey, X25519SecretKey, MIN_CHUNK_SIZE,
};
use serde_json::json;

struct Sealed {
    header: Vec<u8>,
    chunks: Vec<SealedChunk>,
    manifest: Vec<u8>,
}

fn seal(data: &[u8], to: &X25519PublicKey) -> Sealed {
    let options = StreamOptions {
        chunk_size: MIN_CHUNK_SIZE,
        ..StreamOptions::default()
    };
    let mut encryptor = Encryptor::new(&options, &[Recipient::X25519(*to)]).unwrap();
    let header = encryptor.header_bytes().to_vec();
    let mut chunks = encryptor.push(data).unwrap();
    let trailer = encryptor
        .finish(ManifestInfo {
            name: "report.bin".into(),
            mode: Some(0o640),
        })
        .unwrap();
    chunks.push(trailer.last_chunk);
    Sealed {
        header,
        chunks,
        manifest: trailer.sealed_manifest,
    }
}

async fn raw_get(cloud: &TestCloud, cred: &Cred, path: &str) -> (u16, Vec<u8>) {
    let Cred::Bearer(token) = cred else {
        panic!("bearer expected")
    };
    let response = reqwest::Client::new()
        .get(format!("{}{path}", cloud.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.bytes().await.unwrap().to_vec(),
    )
}

#[tokio::test]
async fn encrypted_transfer_round_trip_with_integrity_checks() {
    let cloud = TestCloud::spawn().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    let (_, bob) = user_with_token(&cloud, "bob@example.com", "user").await;
    let (_, carol) = user_with_token(&cloud, "carol@example.com", "user").await;
    let (_, auditor) = user_with_token(&cloud, "ro@example.com", "readonly").await;

    // Bob registers his public key; Alice fetches it and encrypts to it.
    let bob_secret = X25519SecretKey::generate().unwrap();
    let registered = call(
        &cloud,
        &bob,
        "PUT",
        "/api/v1/users/me/key",
        Some(json!({"public_key": bob_secret.public_key().to_encoded()})),
    )
    .await;
    assert_eq!(registered.status, 200, "{:?}", registered.body);
    let fetched = call(
        &cloud,
        &alice,
        "GET",
        "/api/v1/users/bob@example.com/key",
        None,
    )
    .await;
    let bob_public =
        X25519PublicKey::from_encoded(fetched.body["public_key"].as_str().unwrap()).unwrap();
    let bad_key = call(
        &cloud,
        &bob,
        "PUT",
        "/api/v1/users/me/key",
        Some(json!({"public_key": "not-a-key"})),
    )
    .await;
    assert_eq!((bad_key.status, bad_key.code()), (400, "validation_failed"));

    let data: Vec<u8> = (0..(3 * MIN_CHUNK_SIZE + 777))
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let sealed = seal(&data, &bob_public);
    assert_eq!(sealed.chunks.len(), 4);
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);

    // A readonly user may not send; a header that is not a stream header is refused.
    let refused = call(&cloud, &auditor, "POST", "/api/v1/transfers", Some(json!({"recipients": ["bob@example.com"], "header": b64(&sealed.header), "chunk_size": MIN_CHUNK_SIZE}))).await;
    assert_eq!(refused.status, 403);
    let garbage = call(&cloud, &alice, "POST", "/api/v1/transfers", Some(json!({"recipients": ["bob@example.com"], "header": b64(b"nope"), "chunk_size": MIN_CHUNK_SIZE}))).await;
    assert_eq!((garbage.status, garbage.code()), (400, "validation_failed"));
    let nobody = call(&cloud, &alice, "POST", "/api/v1/transfers", Some(json!({"recipients": ["ghost@example.com"], "header": b64(&sealed.header), "chunk_size": MIN_CHUNK_SIZE}))).await;
    assert_eq!(nobody.status, 400);

    let created = call(&cloud, &alice, "POST", "/api/v1/transfers", Some(json!({"recipients": ["bob@example.com"], "header": b64(&sealed.header), "chunk_size": MIN_CHUNK_SIZE}))).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let chunk_path = |i: u64| format!("/api/v1/transfers/{id}/chunks/{i}");

    // A chunk whose bytes do not match the declared SHA-256 is refused and not recorded.
    let first = &sealed.chunks[0];
    let wrong_hash = vec![
        ("x-chunk-sha256".to_string(), "00".repeat(32)),
        ("x-chunk-last".to_string(), "false".to_string()),
    ];
    let mismatch = call_raw(
        &cloud,
        &alice,
        "PUT",
        &chunk_path(0),
        first.bytes.clone(),
        &wrong_hash,
    )
    .await;
    assert_eq!(
        (mismatch.status, mismatch.code()),
        (422, "checksum_mismatch")
    );
    // Bob is a recipient, not the sender: he cannot upload.
    assert_eq!(
        put_chunk(&cloud, &bob, &id, 0, &first.bytes, false)
            .await
            .status,
        404
    );

    // Upload all but chunk 2; completing now names the gap.
    for chunk in sealed.chunks.iter().filter(|c| c.index != 2) {
        let reply = put_chunk(&cloud, &alice, &id, chunk.index, &chunk.bytes, chunk.last).await;
        assert_eq!(reply.status, 201, "chunk {}: {:?}", chunk.index, reply.body);
    }
    let early = call(
        &cloud,
        &alice,
        "POST",
        &format!("/api/v1/transfers/{id}/complete"),
        Some(json!({"manifest": b64(&sealed.manifest)})),
    )
    .await;
    assert_eq!(early.status, 409);
    assert!(
        early.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing chunk 2"),
        "{:?}",
        early.body
    );

    // Resume: the stored list tells what is left; a retry is idempotent, a different body conflicts.
    let stored = call(
        &cloud,
        &alice,
        "GET",
        &format!("/api/v1/transfers/{id}/chunks"),
        None,
    )
    .await;
    let indexes: Vec<u64> = stored
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, vec![0, 1, 3]);
    assert_eq!(
        put_chunk(&cloud, &alice, &id, 0, &first.bytes, false)
            .await
            .status,
        200
    );
    assert_eq!(
        put_chunk(&cloud, &alice, &id, 0, b"other bytes", false)
            .await
            .status,
        409
    );
    assert_eq!(
        put_chunk(&cloud, &alice, &id, 2, &sealed.chunks[2].bytes, false)
            .await
            .status,
        201
    );

    // Not downloadable whole before completion (the header and stored chunks may be
    // followed: tests/transfer_follow.rs).
    assert_eq!(
        raw_get(&cloud, &bob, &format!("/api/v1/transfers/{id}/manifest"))
            .await
            .0,
        409
    );
    let done = call(
        &cloud,
        &alice,
        "POST",
        &format!("/api/v1/transfers/{id}/complete"),
        Some(json!({"manifest": b64(&sealed.manifest)})),
    )
    .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(done.body["chunk_count"], 4);
    assert_eq!(done.body["status"], "complete");

    // Bob downloads and decrypts: the same bytes, checked against the manifest.
    let (status, header) = raw_get(&cloud, &bob, &format!("/api/v1/transfers/{id}/header")).await;
    assert_eq!(status, 200);
    let (header, _) = Header::parse(&header).unwrap();
    let mut decryptor = Decryptor::new(header, &[Identity::X25519(&bob_secret)]).unwrap();
    let mut plain = Vec::new();
    for chunk in &sealed.chunks {
        let (status, bytes) = raw_get(&cloud, &bob, &chunk_path(chunk.index)).await;
        assert_eq!(status, 200);
        let sealed_chunk = SealedChunk::from_bytes(chunk.index, chunk.last, bytes);
        plain.extend_from_slice(decryptor.open(&sealed_chunk).unwrap());
    }
    let (_, manifest) = raw_get(&cloud, &bob, &format!("/api/v1/transfers/{id}/manifest")).await;
    let manifest = decryptor.finish(&manifest).unwrap();
    assert_eq!(plain, data);
    assert_eq!(
        (manifest.name.as_str(), manifest.size),
        ("report.bin", data.len() as u64)
    );
    let shown = call(
        &cloud,
        &alice,
        "GET",
        &format!("/api/v1/transfers/{id}"),
        None,
    )
    .await;
    assert!(
        shown.body["recipients"][0]["downloaded_at"].is_null(),
        "fetching the manifest must not count as received: {:?}",
        shown.body
    );
    // The sender's acknowledgement changes nothing; the recipient's marks the download.
    let by_sender = call(
        &cloud,
        &alice,
        "POST",
        &format!("/api/v1/transfers/{id}/received"),
        None,
    )
    .await;
    assert_eq!(by_sender.status, 200, "{:?}", by_sender.body);
    assert!(by_sender.body["recipients"][0]["downloaded_at"].is_null());
    let acknowledged = call(
        &cloud,
        &bob,
        "POST",
        &format!("/api/v1/transfers/{id}/received"),
        None,
    )
    .await;
    assert_eq!(acknowledged.status, 200, "{:?}", acknowledged.body);
    let shown = call(
        &cloud,
        &alice,
        "GET",
        &format!("/api/v1/transfers/{id}"),
        None,
    )
    .await;
    assert!(
        shown.body["recipients"][0]["downloaded_at"].is_string(),
        "{:?}",
        shown.body
    );

    // Carol is neither sender nor recipient: the transfer does not exist for her.
    for path in [
        format!("/api/v1/transfers/{id}"),
        format!("/api/v1/transfers/{id}/header"),
        chunk_path(0),
    ] {
        assert_eq!(raw_get(&cloud, &carol, &path).await.0, 404, "{path}");
    }
    let carol_list = call(&cloud, &carol, "GET", "/api/v1/transfers", None).await;
    assert!(carol_list.body.as_array().unwrap().is_empty());
    let bob_list = call(&cloud, &bob, "GET", "/api/v1/transfers", None).await;
    assert_eq!(bob_list.body.as_array().unwrap().len(), 1);
    // The auditor's transfers:read covers everyone's.
    assert_eq!(
        call(
            &cloud,
            &auditor,
            "GET",
            &format!("/api/v1/transfers/{id}"),
            None
        )
        .await
        .status,
        200
    );

    // Tamper with a stored chunk at rest: verify names it, and decryption refuses it.
    let verify = call(
        &cloud,
        &bob,
        "POST",
        &format!("/api/v1/transfers/{id}/verify"),
        None,
    )
    .await;
    assert_eq!(
        (
            verify.body["ok"].clone(),
            verify.body["chunks_checked"].clone()
        ),
        (json!(true), json!(4))
    );
    let store =
        mftplus_blob::FsBlobStore::open(&cloud.state.config.config.transfers.blob_path).unwrap();
    let tid = mftplus_blob::TransferId::new(id.clone()).unwrap();
    let path = store.object_path(&mftplus_blob::BlobKey::chunk(&tid, 1));
    let mut stored = std::fs::read(&path).unwrap();
    stored[10] ^= 0x01;
    std::fs::write(&path, &stored).unwrap();
    let verify = call(
        &cloud,
        &bob,
        "POST",
        &format!("/api/v1/transfers/{id}/verify"),
        None,
    )
    .await;
    assert_eq!(verify.body["ok"], false);
    assert_eq!(verify.body["corrupt"], json!([1]));
    let (header, _) = Header::parse(
        &raw_get(&cloud, &bob, &format!("/api/v1/transfers/{id}/header"))
            .await
            .1,
    )
    .unwrap();
    let mut decryptor = Decryptor::new(header, &[Identity::X25519(&bob_secret)]).unwrap();
    decryptor
        .open(&SealedChunk::from_bytes(
            0,
            false,
            raw_get(&cloud, &bob, &chunk_path(0)).await.1,
        ))
        .unwrap();
    let tampered = SealedChunk::from_bytes(1, false, raw_get(&cloud, &bob, &chunk_path(1)).await.1);
    assert!(matches!(
        decryptor.open(&tampered),
        Err(StreamError::ChunkAuthFailed { index: 1 })
    ));

    // Only the sender cancels; afterwards nothing is served.
    assert_eq!(
        call(
            &cloud,
            &bob,
            "POST",
            &format!("/api/v1/transfers/{id}/cancel"),
            None
        )
        .await
        .status,
        404
    );
    let cancelled = call(
        &cloud,
        &alice,
        "POST",
        &format!("/api/v1/transfers/{id}/cancel"),
        None,
    )
    .await;
    assert_eq!(
        (cancelled.status, cancelled.body["status"].clone()),
        (200, json!("cancelled"))
    );
    assert_eq!(raw_get(&cloud, &bob, &chunk_path(0)).await.0, 409);
}

#[tokio::test]
async fn expired_transfers_lose_payload_and_rows() {
    let cloud = TestCloud::spawn().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    user_with_token(&cloud, "bob@example.com", "user").await;
    let kept = complete_transfer(&cloud, &alice, "bob@example.com").await;
    let (header, chunk_size) = stream_header();
    let short = call(&cloud, &alice, "POST", "/api/v1/transfers", Some(json!({"recipients": ["bob@example.com"], "header": header, "chunk_size": chunk_size, "expires": "1h"}))).await;
    let short = short.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        put_chunk(&cloud, &alice, &short, 0, b"bytes", true)
            .await
            .status,
        201
    );

    cloud.clock.advance_secs(2 * 3600);
    mftplus_cloud::jobs::housekeep(&cloud.state).await;

    assert!(cloud
        .state
        .store
        .get_transfer(&short)
        .await
        .unwrap()
        .is_none());
    let tid = mftplus_blob::TransferId::new(short.clone()).unwrap();
    assert!(cloud.state.blobs.list(&tid).await.unwrap().is_empty());
    assert!(cloud
        .state
        .store
        .get_transfer(&kept)
        .await
        .unwrap()
        .is_some());
    let log = cloud.state.store.list_audit(0, 1000).await.unwrap();
    assert!(log
        .iter()
        .any(|e| e.event == "transfer_expired" && e.target == short));
}

#[tokio::test]
async fn a_recorded_chunk_gone_from_the_store_is_its_own_code_and_an_alert() {
    let cloud = TestCloud::spawn().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    let (_, bob) = user_with_token(&cloud, "bob@example.com", "user").await;
    let chunk = vec![7u8; STORED_CHUNK_LEN];
    let id = complete_transfer_of(&cloud, &alice, "bob@example.com", &chunk).await;
    let store =
        mftplus_blob::FsBlobStore::open(&cloud.state.config.config.transfers.blob_path).unwrap();
    let tid = mftplus_blob::TransferId::new(id.clone()).unwrap();
    std::fs::remove_file(store.object_path(&mftplus_blob::BlobKey::chunk(&tid, 0))).unwrap();

    let reply = call(
        &cloud,
        &bob,
        "GET",
        &format!("/api/v1/transfers/{id}/chunks/0"),
        None,
    )
    .await;
    assert_eq!((reply.status, reply.code()), (410, "chunk_missing"));
    let rendered = cloud.state.metrics.render(0);
    assert!(
        rendered.contains("mftplus_chunks_missing_total 1"),
        "{rendered}"
    );
    let audit = call(
        &cloud,
        &admin(&cloud),
        "GET",
        "/api/v1/audit?limit=1000",
        None,
    )
    .await;
    let alert = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "chunk_missing")
        .expect("the missing chunk is audited");
    assert_eq!(alert["target"], json!(id));
}
