//! Following a transfer while it uploads (decision 0035): a recipient reads the header and each
//! chunk as soon as the sender has stored it, is told which chunk ends the stream, and gets the
//! manifest only once the sender completes. Through the API, then through the client library's
//! follower (`mftplus_transfer::receive::follow_to_temp_file`) with the sender paced by the test.

mod common;

use base64::Engine;
use common::*;
use mftplus_client::{Client, Credential};
use mftplus_cloud::testing::TestCloud;
use mftplus_crypto::stream::{Identity, Recipient, X25519SecretKey, MIN_CHUNK_SIZE};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Alice, and Bob with a registered key; Carol sees nothing of theirs.
struct Parties {
    cloud: TestCloud,
    alice: Cred,
    bob: Cred,
    bob_key: X25519SecretKey,
    carol: Cred,
}

async fn parties() -> Parties {
    let cloud = TestCloud::spawn().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    let (_, bob) = user_with_token(&cloud, "bob@example.com", "user").await;
    let (_, carol) = user_with_token(&cloud, "carol@example.com", "user").await;
    let bob_key = register_user_key(&cloud, &bob).await;
    Parties {
        cloud,
        alice,
        bob,
        bob_key,
        carol,
    }
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 251) as u8).collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Alice creates a transfer of `sealed` to Bob and stores nothing yet.
async fn create(p: &Parties, sealed: &Sealed) -> String {
    let created = call(
        &p.cloud,
        &p.alice,
        "POST",
        "/api/v1/transfers",
        Some(
            json!({"recipients": ["bob@example.com"], "header": b64(&sealed.header),
                     "chunk_size": MIN_CHUNK_SIZE}),
        ),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_string()
}

async fn store(p: &Parties, id: &str, sealed: &Sealed, index: usize) {
    let last = index + 1 == sealed.chunks.len();
    let reply = put_chunk(
        &p.cloud,
        &p.alice,
        id,
        index as u64,
        &sealed.chunks[index],
        last,
    )
    .await;
    assert_eq!(reply.status, 201, "chunk {index}: {:?}", reply.body);
}

async fn complete(p: &Parties, id: &str, sealed: &Sealed) {
    let done = call(
        &p.cloud,
        &p.alice,
        "POST",
        &format!("/api/v1/transfers/{id}/complete"),
        Some(json!({"manifest": b64(&sealed.manifest)})),
    )
    .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
}

fn client(p: &Parties, cred: &Cred) -> Client {
    let Cred::Bearer(token) = cred else {
        panic!("bearer expected")
    };
    Client::new(&p.cloud.url, Credential::Bearer(token.clone())).unwrap()
}

#[tokio::test]
async fn a_recipient_reads_each_stored_chunk_of_an_upload_and_the_manifest_after_completion() {
    let p = parties().await;
    let plain = data(2 * MIN_CHUNK_SIZE as usize + 5);
    let sealed = seal_stream(
        &plain,
        &[Recipient::X25519(p.bob_key.public_key())],
        "f.bin",
    );
    assert_eq!(sealed.chunks.len(), 3);
    let id = create(&p, &sealed).await;
    let path = |tail: &str| format!("/api/v1/transfers/{id}/{tail}");
    store(&p, &id, &sealed, 0).await;

    let header = call(&p.cloud, &p.bob, "GET", &path("header"), None).await;
    assert_eq!(header.status, 200, "the header while uploading");
    let first = call(&p.cloud, &p.bob, "GET", &path("chunks/0"), None).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.headers["x-chunk-last"], "false");
    let pending = call(&p.cloud, &p.bob, "GET", &path("chunks/1"), None).await;
    assert_eq!((pending.status, pending.code()), (409, "chunk_pending"));
    // What proves the stream whole waits for completion.
    for tail in ["manifest", "stream"] {
        let early = call(&p.cloud, &p.bob, "GET", &path(tail), None).await;
        assert_eq!((early.status, early.code()), (409, "conflict"), "{tail}");
    }
    let ack = call(&p.cloud, &p.bob, "POST", &path("received"), None).await;
    assert_eq!(ack.status, 409, "no acknowledgement of an upload");
    // Someone who is no party sees no upload either.
    for tail in ["header", "chunks/0", "chunks/1"] {
        let outsider = call(&p.cloud, &p.carol, "GET", &path(tail), None).await;
        assert_eq!(outsider.status, 404, "{tail}");
    }

    store(&p, &id, &sealed, 1).await;
    store(&p, &id, &sealed, 2).await;
    let last = call(&p.cloud, &p.bob, "GET", &path("chunks/2"), None).await;
    assert_eq!(last.status, 200);
    assert_eq!(last.headers["x-chunk-last"], "true");
    complete(&p, &id, &sealed).await;
    let beyond = call(&p.cloud, &p.bob, "GET", &path("chunks/3"), None).await;
    assert_eq!((beyond.status, beyond.code()), (404, "not_found"));
    let again = call(&p.cloud, &p.bob, "GET", &path("chunks/1"), None).await;
    assert_eq!(
        again.headers["x-chunk-last"], "false",
        "complete: from the count"
    );
    let manifest = call(&p.cloud, &p.bob, "GET", &path("manifest"), None).await;
    assert_eq!(manifest.status, 200);

    // A cancelled upload is no longer followed.
    let other = create(&p, &sealed).await;
    store(&p, &other, &sealed, 0).await;
    let cancelled = call(
        &p.cloud,
        &p.alice,
        "POST",
        &format!("/api/v1/transfers/{other}/cancel"),
        None,
    )
    .await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);
    let gone = call(
        &p.cloud,
        &p.bob,
        "GET",
        &format!("/api/v1/transfers/{other}/chunks/0"),
        None,
    )
    .await;
    assert_eq!(gone.status, 409, "{:?}", gone.body);
}

/// Waits until `seen` reaches `at_least`, for at most 10 s.
async fn until(seen: &AtomicU64, at_least: u64) {
    let started = Instant::now();
    while seen.load(Ordering::SeqCst) < at_least {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the follower took {} of {at_least} chunks",
            seen.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_follower_decrypts_each_chunk_before_the_sender_stores_the_next() {
    let p = parties().await;
    let plain = data(4 * MIN_CHUNK_SIZE as usize + 1234);
    let sealed = seal_stream(
        &plain,
        &[Recipient::X25519(p.bob_key.public_key())],
        "report.csv",
    );
    assert_eq!(sealed.chunks.len(), 5);
    let id = create(&p, &sealed).await;
    store(&p, &id, &sealed, 0).await;

    let dir = tempfile::tempdir().unwrap();
    let taken = Arc::new(AtomicU64::new(0));
    let follower = {
        let (bob, key, id, taken) = (
            client(&p, &p.bob),
            p.bob_key.clone(),
            id.clone(),
            taken.clone(),
        );
        let dir = dir.path().to_path_buf();
        tokio::spawn(async move {
            let mut progress = |_| {
                taken.fetch_add(1, Ordering::SeqCst);
            };
            let (temp, manifest) = mftplus_transfer::receive::follow_to_temp_file(
                &bob,
                &id,
                &[Identity::X25519(&key)],
                &dir,
                Duration::from_secs(20),
                &mut progress,
            )
            .await?;
            Ok::<_, mftplus_transfer::TransferError>((std::fs::read(&temp.path).unwrap(), manifest))
        })
    };
    // Each chunk is stored only once the follower has taken every one before it: it can only
    // finish by reading the upload as it goes.
    for index in 1..sealed.chunks.len() {
        until(&taken, index as u64).await;
        store(&p, &id, &sealed, index).await;
    }
    until(&taken, sealed.chunks.len() as u64).await;
    assert!(!follower.is_finished(), "the manifest waits for completion");
    complete(&p, &id, &sealed).await;
    let (received, manifest) = tokio::time::timeout(Duration::from_secs(20), follower)
        .await
        .expect("the follower ends after completion")
        .unwrap()
        .expect("the followed transfer verifies");
    assert_eq!(received, plain);
    assert_eq!(
        (manifest.name.as_str(), manifest.size),
        ("report.csv", plain.len() as u64)
    );
}

#[tokio::test]
async fn a_stalled_or_cancelled_upload_ends_the_follow_and_leaves_no_partial_file() {
    let p = parties().await;
    let plain = data(3 * MIN_CHUNK_SIZE as usize);
    let sealed = seal_stream(
        &plain,
        &[Recipient::X25519(p.bob_key.public_key())],
        "x.bin",
    );
    let dir = tempfile::tempdir().unwrap();
    let bob = client(&p, &p.bob);
    let follow = |id: String, stall: Duration| {
        let (bob, key, dir) = (bob.clone(), p.bob_key.clone(), dir.path().to_path_buf());
        async move {
            mftplus_transfer::receive::follow_to_temp_file(
                &bob,
                &id,
                &[Identity::X25519(&key)],
                &dir,
                stall,
                &mut |_| {},
            )
            .await
            .map(|_| ())
            .unwrap_err()
        }
    };

    let stalled = create(&p, &sealed).await;
    store(&p, &stalled, &sealed, 0).await;
    let started = Instant::now();
    let err = follow(stalled.clone(), Duration::from_millis(300)).await;
    assert_eq!(err.code, "stalled", "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let cancelled = create(&p, &sealed).await;
    store(&p, &cancelled, &sealed, 0).await;
    let following = tokio::spawn(follow(cancelled.clone(), Duration::from_secs(20)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reply = call(
        &p.cloud,
        &p.alice,
        "POST",
        &format!("/api/v1/transfers/{cancelled}/cancel"),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let err = tokio::time::timeout(Duration::from_secs(10), following)
        .await
        .expect("a cancelled upload ends the follow")
        .unwrap();
    assert_eq!(err.code, "conflict", "{err}");

    let outsider = client(&p, &p.carol);
    let err = mftplus_transfer::receive::follow_to_temp_file(
        &outsider,
        &stalled,
        &[Identity::X25519(&p.bob_key)],
        dir.path(),
        Duration::from_secs(1),
        &mut |_| {},
    )
    .await
    .map(|_| ())
    .unwrap_err();
    assert_eq!(err.code, "not_found", "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "no partial file is left: {left:?}");
}

#[tokio::test]
async fn a_long_poll_of_pending_transfers_ends_on_news_for_the_caller() {
    let p = Arc::new(parties().await);
    let plain = data(2 * MIN_CHUNK_SIZE as usize);
    let sealed = seal_stream(
        &plain,
        &[Recipient::X25519(p.bob_key.public_key())],
        "n.bin",
    );
    let poll = |cred: &Cred, wait_ms: u64| {
        let (p, cred) = (p.clone(), cred.clone());
        async move {
            let started = Instant::now();
            let path = format!("/api/v1/transfers?pending=true&status=complete&wait_ms={wait_ms}");
            let reply = call(&p.cloud, &cred, "GET", &path, None).await;
            (reply, started.elapsed())
        }
    };
    // Nothing for Bob: the wait runs out, and the listing is answered.
    let (quiet, took) = poll(&p.bob, 300).await;
    assert_eq!(quiet.status, 200, "{:?}", quiet.body);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    // Bad waits are refused with their reason.
    for path in [
        "/api/v1/transfers?wait_ms=10",
        "/api/v1/transfers?pending=true&wait_ms=25001",
    ] {
        let refused = call(&p.cloud, &p.bob, "GET", path, None).await;
        assert_eq!(
            (refused.status, refused.code()),
            (400, "validation_failed"),
            "{path}"
        );
    }

    // Each kind of news ends Bob's wait long before it would run out; Carol's goes on.
    let long = 20_000;
    let bob_waits = tokio::spawn(poll(&p.bob, long));
    let carol_waits = tokio::spawn(poll(&p.carol, 1_500));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = create(&p, &sealed).await;
    let (woken, took) = bob_waits.await.unwrap();
    assert_eq!(woken.status, 200);
    assert!(took < Duration::from_secs(10), "created: {took:?}");
    let (_, carol_took) = carol_waits.await.unwrap();
    assert!(carol_took >= Duration::from_millis(1_500), "{carol_took:?}");

    for step in ["first chunk", "completion"] {
        let bob_waits = tokio::spawn(poll(&p.bob, long));
        tokio::time::sleep(Duration::from_millis(200)).await;
        match step {
            "first chunk" => store(&p, &id, &sealed, 0).await,
            _ => {
                store(&p, &id, &sealed, 1).await;
                complete(&p, &id, &sealed).await;
            }
        }
        let (woken, took) = bob_waits.await.unwrap();
        assert!(took < Duration::from_secs(10), "{step}: {took:?}");
        if step == "completion" {
            assert_eq!(woken.body.as_array().unwrap().len(), 1, "{:?}", woken.body);
        }
    }
}
