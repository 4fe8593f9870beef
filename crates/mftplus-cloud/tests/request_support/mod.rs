//! File-request fixtures for the API tests (decision 0034): an owner with a registered key, a
//! request made as them, and uploads through it as an anonymous outsider would make them.

#![allow(dead_code)]

use super::common::*;
use base64::Engine;
use mftplus_cloud::testing::TestCloud;
use mftplus_crypto::stream::{Recipient, X25519PublicKey, MIN_CHUNK_SIZE};
use serde_json::{json, Value};

/// What an anonymous outsider reads of the request behind `token` (`GET /requested/{token}`).
pub async fn outsider_reads(cloud: &TestCloud, token: &str) -> Reply {
    let path = format!("/api/v1/requested/{token}");
    call(cloud, &Cred::None, "GET", &path, None).await
}

/// Makes a request as `owner` with `body`; `(request id, token)`.
pub async fn make_request(cloud: &TestCloud, owner: &Cred, body: Value) -> (String, String) {
    let made = call(cloud, owner, "POST", "/api/v1/file-requests", Some(body)).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    (
        made.body["request"]["id"].as_str().unwrap().to_string(),
        made.body["token"].as_str().unwrap().to_string(),
    )
}

pub fn seal_to(data: &[u8], to: &X25519PublicKey) -> Sealed {
    seal_stream(data, &[Recipient::X25519(*to)], "requested.bin")
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Starts an upload through the request, anonymously, to `recipient`.
pub async fn start(cloud: &TestCloud, token: &str, recipient: &str, sealed: &Sealed) -> Reply {
    call(
        cloud,
        &Cred::None,
        "POST",
        &format!("/api/v1/requested/{token}/transfers"),
        Some(json!({
            "recipients": [recipient],
            "header": b64(&sealed.header),
            "chunk_size": MIN_CHUNK_SIZE,
        })),
    )
    .await
}

/// One sealed chunk of an upload through the request, anonymously.
pub async fn put(
    cloud: &TestCloud,
    token: &str,
    id: &str,
    index: u64,
    bytes: &[u8],
    last: bool,
) -> Reply {
    call_raw(
        cloud,
        &Cred::None,
        "PUT",
        &format!("/api/v1/requested/{token}/transfers/{id}/chunks/{index}"),
        bytes.to_vec(),
        &chunk_headers(bytes, last),
    )
    .await
}

/// Seals the upload with `manifest`, anonymously.
pub async fn complete(cloud: &TestCloud, token: &str, id: &str, manifest: &[u8]) -> Reply {
    call(
        cloud,
        &Cred::None,
        "POST",
        &format!("/api/v1/requested/{token}/transfers/{id}/complete"),
        Some(json!({"manifest": b64(manifest)})),
    )
    .await
}

/// A whole upload of `sealed` through the request: its transfer id.
pub async fn upload(cloud: &TestCloud, token: &str, recipient: &str, sealed: &Sealed) -> String {
    let started = start(cloud, token, recipient, sealed).await;
    assert_eq!(started.status, 201, "{:?}", started.body);
    let id = started.body["id"].as_str().unwrap().to_string();
    let count = sealed.chunks.len();
    for (index, chunk) in sealed.chunks.iter().enumerate() {
        let put = put(cloud, token, &id, index as u64, chunk, index + 1 == count).await;
        assert_eq!(put.status, 201, "{:?}", put.body);
    }
    let done = complete(cloud, token, &id, &sealed.manifest).await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    id
}
