//! Streamed chunk uploads: an oversized body is refused whether or not it announces its
//! length, and a connection dropped mid-body stores nothing, leaves no temp file and frees the
//! chunk for a retry.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use mftplus_cloud::testing::TestCloud;
use tokio::io::AsyncWriteExt;

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out
}

/// Polls `done` for up to ten seconds.
async fn eventually(done: impl Fn() -> bool) -> bool {
    for _ in 0..1000 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

#[tokio::test]
async fn oversized_chunks_are_refused_with_or_without_a_length() {
    let cloud = TestCloud::spawn().await;
    let admin = admin(&cloud);
    let id = new_transfer(&cloud, &admin, "admin@example.com").await;
    let (_, chunk_size) = stream_header();
    let max_sealed = mftplus_cloud::handlers::chunk_upload::max_sealed_len(chunk_size);
    let blob_root = cloud.state.config.config.transfers.blob_path.clone();

    let exact = vec![7u8; max_sealed as usize];
    let over = vec![7u8; max_sealed as usize + 1];
    let announced = put_chunk(&cloud, &admin, &id, 0, &over, false).await;
    assert_eq!(
        (announced.status, announced.code()),
        (413, "payload_too_large")
    );

    // Chunked transfer encoding: the limit is enforced while streaming.
    let Cred::ApiKey(key) = &admin else {
        unreachable!()
    };
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        over.chunks(4096).map(|c| Ok(c.to_vec())).collect();
    let unannounced = reqwest::Client::new()
        .put(format!("{}/api/v1/transfers/{id}/chunks/1", cloud.url))
        .header("X-API-Key", key)
        .header("x-chunk-sha256", mftplus_crypto::sha256_hex(&over))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(unannounced.status().as_u16(), 413);
    assert!(
        eventually(|| files_under(&blob_root).is_empty()).await,
        "refused uploads left {:?}",
        files_under(&blob_root)
    );
    assert!(cloud.state.store.list_chunks(&id).await.unwrap().is_empty());

    let fits = put_chunk(&cloud, &admin, &id, 0, &exact, false).await;
    assert_eq!(fits.status, 201, "{:?}", fits.body);
}

#[tokio::test]
async fn a_dropped_upload_stores_nothing_and_frees_the_chunk() {
    let cloud = TestCloud::spawn().await;
    let admin = admin(&cloud);
    let id = new_transfer(&cloud, &admin, "admin@example.com").await;
    let blob_root = cloud.state.config.config.transfers.blob_path.clone();
    let Cred::ApiKey(key) = &admin else {
        unreachable!()
    };
    // Larger than a chunk kept in the database: this one streams into the payload store.
    let bytes = vec![42u8; STORED_CHUNK_LEN + 500];

    // Half a body on a raw connection, then the connection goes away.
    let address = cloud.url.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "PUT /api/v1/transfers/{id}/chunks/0 HTTP/1.1\r\nHost: {address}\r\n\
         X-API-Key: {key}\r\nx-chunk-sha256: {}\r\nContent-Length: {}\r\n\r\n",
        mftplus_crypto::sha256_hex(&bytes),
        bytes.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&bytes[..30_000]).await.unwrap();
    socket.flush().await.unwrap();
    // The upload is under way once its temp file exists (blob store before any row).
    assert!(
        eventually(|| !files_under(&blob_root).is_empty()).await,
        "the upload never reached the blob store"
    );
    drop(socket);

    assert!(
        eventually(|| files_under(&blob_root).is_empty()).await,
        "a dropped upload left {:?}",
        files_under(&blob_root)
    );
    assert!(cloud.state.store.list_chunks(&id).await.unwrap().is_empty());
    // The claim on chunk 0 went with the request: a retry is stored normally.
    let mut retried = put_chunk(&cloud, &admin, &id, 0, &bytes, false).await;
    for _ in 0..100 {
        if retried.status != 409 {
            break;
        }
        // The server may notice the drop a moment after the temp file went.
        tokio::time::sleep(Duration::from_millis(20)).await;
        retried = put_chunk(&cloud, &admin, &id, 0, &bytes, false).await;
    }
    assert_eq!(retried.status, 201, "{:?}", retried.body);
}

/// `GET` with the admin's key; the status and the raw body.
async fn fetch(cloud: &TestCloud, admin: &Cred, path: &str) -> (u16, Vec<u8>) {
    let Cred::ApiKey(key) = admin else {
        unreachable!()
    };
    let response = reqwest::Client::new()
        .get(format!("{}{path}", cloud.url))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

/// Decision 0037: a chunk of at most 64 KiB is kept in its row, never in the payload store;
/// it is checked against its declared SHA-256 like any other, retried idempotently, and
/// served back byte for byte by the chunk route, the whole-stream route and verification.
#[tokio::test]
async fn a_small_chunk_is_kept_in_its_row_and_served_from_there() {
    let cloud = TestCloud::spawn().await;
    let admin = admin(&cloud);
    let id = new_transfer(&cloud, &admin, "admin@example.com").await;
    let blob_root = cloud.state.config.config.transfers.blob_path.clone();
    let small: Vec<u8> = (0..mftplus_store::MAX_INLINE_CHUNK)
        .map(|i| (i % 251) as u8)
        .collect();
    let stored: Vec<u8> = (0..STORED_CHUNK_LEN).map(|i| (i % 241) as u8).collect();

    // A body that is not what its header declares is refused, and nothing is kept.
    let mut lying = chunk_headers(&small, false);
    lying[0].1 = mftplus_crypto::sha256_hex(b"something else");
    let path = format!("/api/v1/transfers/{id}/chunks/0");
    let refused = call_raw(&cloud, &admin, "PUT", &path, small.clone(), &lying).await;
    assert_eq!((refused.status, refused.code()), (422, "checksum_mismatch"));
    assert!(cloud.state.store.list_chunks(&id).await.unwrap().is_empty());

    let first = put_chunk(&cloud, &admin, &id, 0, &small, false).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let second = put_chunk(&cloud, &admin, &id, 1, &stored, true).await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    let rows = cloud.state.store.list_chunks(&id).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| (r.idx, r.inline)).collect::<Vec<_>>(),
        vec![(0, true), (1, false)]
    );
    let files = files_under(&blob_root);
    assert_eq!(files.len(), 1, "only the larger chunk is a file: {files:?}");
    assert_eq!(
        cloud.state.store.chunk_data(&id, 0).await.unwrap(),
        Some(small.clone())
    );
    // A retry is compared with the row; other bytes under the same index are refused.
    assert_eq!(
        put_chunk(&cloud, &admin, &id, 0, &small, false).await.body["status"],
        "already_stored"
    );
    assert_eq!(
        put_chunk(&cloud, &admin, &id, 0, b"other bytes", false)
            .await
            .status,
        409
    );

    complete_upload(&cloud, &admin, &id).await;
    assert_eq!(fetch(&cloud, &admin, &path).await, (200, small.clone()));
    let (status, whole) = fetch(&cloud, &admin, &format!("/api/v1/transfers/{id}/stream")).await;
    assert_eq!(status, 200);
    let at = whole
        .windows(small.len())
        .position(|w| w == small.as_slice())
        .expect("the whole stream carries the inline chunk");
    assert!(at < whole.len() - stored.len(), "in order, before chunk 1");
    let verified = call(
        &cloud,
        &admin,
        "POST",
        &format!("/api/v1/transfers/{id}/verify"),
        None,
    )
    .await;
    assert_eq!(
        (&verified.body["ok"], &verified.body["chunks_checked"]),
        (&serde_json::json!(true), &serde_json::json!(2)),
        "{:?}",
        verified.body
    );
}
