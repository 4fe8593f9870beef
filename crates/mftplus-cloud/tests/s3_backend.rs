//! The cloud on the S3 payload backend (`transfers.blob_backend: s3`) against a local moto
//! server: one upload, completion and download round trip through the HTTP API, the secret
//! never shown by `server-config`, and a missing bucket refused at start-up.
//!
//! Needs `moto_server` (`scripts/s3-test-setup.sh`); `MFTPLUS_SKIP_S3=1` skips loudly.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use mftplus_blob::testing::{Moto, BUCKET};
use mftplus_blob::{BlobStore, TransferId};
use mftplus_cloud::testing::{TestCloud, TestOptions, TEST_JWT_SECRET};

const S3_SECRET: &str = "moto-accepts-any-secret-0123456789";

fn s3_yaml(endpoint: &str, bucket: &str) -> String {
    format!(
        "{}transfers:\n  blob_backend: s3\n  s3:\n    bucket: {bucket}\n    endpoint: {endpoint}\n    \
         prefix: cloud/blobs\n    access_key_id: mftplus-test-key\n    \
         secret_access_key: {S3_SECRET}\n    allow_http: true\n",
        TestOptions::default().config_yaml
    )
}

#[tokio::test]
async fn a_transfer_round_trips_through_s3() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let cloud = TestCloud::spawn_with(TestOptions {
        config_yaml: s3_yaml(&moto.endpoint, BUCKET),
        ..TestOptions::default()
    })
    .await;
    assert_eq!(cloud.state.blobs.backend(), "s3");
    let admin = admin(&cloud);
    let id = new_transfer(&cloud, &admin, "admin@example.com").await;
    // Two chunks for the bucket, and a small last one that the database keeps (decision 0037).
    let chunks: Vec<Vec<u8>> = (0..3u8)
        .map(|n| {
            let len = if n == 2 {
                1_000
            } else {
                STORED_CHUNK_LEN + 100
            };
            (0..len as u32).map(|i| (i as u8) ^ n).collect()
        })
        .collect();
    for (index, bytes) in chunks.iter().enumerate() {
        let reply = put_chunk(&cloud, &admin, &id, index as u64, bytes, index == 2).await;
        assert_eq!(reply.status, 201, "chunk {index}: {:?}", reply.body);
    }
    // A retry is answered from the recorded row, a different body refused.
    assert_eq!(
        put_chunk(&cloud, &admin, &id, 1, &chunks[1], false)
            .await
            .status,
        200
    );
    assert_eq!(
        put_chunk(&cloud, &admin, &id, 1, b"other", false)
            .await
            .status,
        409
    );
    complete_upload(&cloud, &admin, &id).await;

    // The objects are in the bucket under the configured prefix, not on the local disk.
    let in_bucket = moto.store("cloud/blobs");
    assert_eq!(
        in_bucket
            .list(&TransferId::new(&id).unwrap())
            .await
            .unwrap(),
        vec![0, 1]
    );
    let local = &cloud.state.config.config.transfers.blob_path;
    assert!(!local.exists(), "{} was created", local.display());

    let Cred::ApiKey(key) = &admin else {
        unreachable!()
    };
    for (index, bytes) in chunks.iter().enumerate() {
        let response = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/transfers/{id}/chunks/{index}",
                cloud.url
            ))
            .header("X-API-Key", key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(
            response.bytes().await.unwrap().as_ref() == bytes.as_slice(),
            "chunk {index} changed in S3"
        );
    }
    let verified = call(
        &cloud,
        &admin,
        "POST",
        &format!("/api/v1/transfers/{id}/verify"),
        None,
    )
    .await;
    assert_eq!(verified.body["ok"], true, "{:?}", verified.body);

    // `mftctl config get` shows where payloads go, never the secret.
    for key in [
        "transfers",
        "transfers.s3",
        "transfers.s3.secret_access_key",
    ] {
        let shown = call(
            &cloud,
            &admin,
            "GET",
            &format!("/api/v1/server-config/{key}"),
            None,
        )
        .await;
        assert_eq!(shown.status, 200, "{key}: {:?}", shown.body);
        assert!(
            !shown.body.to_string().contains(S3_SECRET),
            "{key}: {}",
            shown.body
        );
    }
    cloud.stop().await;
}

#[tokio::test]
async fn a_missing_bucket_stops_the_start_with_a_clear_error() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("server.yaml");
    std::fs::write(&config_path, s3_yaml(&moto.endpoint, "no-such-bucket")).unwrap();
    let env = BTreeMap::from([
        (
            "DATABASE_URL".to_string(),
            format!("sqlite://{}", dir.path().join("cloud.db").display()),
        ),
        ("JWT_SECRET".to_string(), TEST_JWT_SECRET.to_string()),
    ]);
    let config = mftplus_cloud::config::load_from(Some(&config_path), &env).unwrap();
    let clock = Arc::new(mftplus_cloud::clock::OffsetClock::default());
    let Err(err) = mftplus_cloud::Cloud::build(config, clock).await else {
        panic!("the cloud started without its bucket");
    };
    let text = err.to_string();
    assert!(
        text.contains("payload store") && text.contains("no-such-bucket"),
        "{text}"
    );
    assert!(!text.contains(S3_SECRET), "{text}");
}
