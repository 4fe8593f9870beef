//! Hosts as transfer parties (decision 0029) for the cloud's integration tests: a host's
//! registered transfer key, real streams sealed to X25519 keys, and transfers sent and
//! received through the HTTP API. Declare `mod common;` and `mod fleet_support;` next to it.

#![allow(dead_code)]

use super::common::*;
use super::fleet_support::Enrolled;
use base64::Engine;
use mftplus_cloud::testing::TestCloud;
use mftplus_crypto::stream::{
    Decryptor, Encryptor, Header, Identity, ManifestInfo, Recipient, SealedChunk, StreamOptions,
    X25519PublicKey, X25519SecretKey, MIN_CHUNK_SIZE,
};
use serde_json::json;

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The host's agent registers a fresh transfer key; its secret half.
pub async fn register_key(cloud: &TestCloud, host: &Enrolled) -> X25519SecretKey {
    let secret = X25519SecretKey::generate().unwrap();
    let reply = call(
        cloud,
        &host.cred(),
        "PUT",
        &format!("/api/v1/hosts/{}/transfer-key", host.host_id),
        Some(json!({"public_key": secret.public_key().to_encoded()})),
    )
    .await;
    assert_eq!(reply.status, 200, "register a host key: {:?}", reply.body);
    secret
}

/// A public key as the cloud answers it (`GET …/key`, `GET …/transfer-key`).
pub async fn fetch_key(cloud: &TestCloud, cred: &Cred, path: &str) -> X25519PublicKey {
    let reply = call(cloud, cred, "GET", path, None).await;
    assert_eq!(reply.status, 200, "GET {path}: {:?}", reply.body);
    X25519PublicKey::from_encoded(reply.body["public_key"].as_str().unwrap()).unwrap()
}

pub struct Sealed {
    pub header: Vec<u8>,
    pub chunks: Vec<SealedChunk>,
    pub manifest: Vec<u8>,
}

/// `data` encrypted to `to` in the stream format, in chunks of the smallest size.
pub fn seal(data: &[u8], to: &[X25519PublicKey]) -> Sealed {
    let options = StreamOptions {
        chunk_size: MIN_CHUNK_SIZE,
        ..StreamOptions::default()
    };
    let recipients: Vec<Recipient> = to.iter().map(|key| Recipient::X25519(*key)).collect();
    let mut encryptor = Encryptor::new(&options, &recipients).unwrap();
    let header = encryptor.header_bytes().to_vec();
    let mut chunks = encryptor.push(data).unwrap();
    let trailer = encryptor
        .finish(ManifestInfo {
            name: "inbox.bin".into(),
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

/// Some bytes spanning a few chunks.
pub fn payload() -> Vec<u8> {
    (0..(2 * MIN_CHUNK_SIZE + 321))
        .map(|i| (i * 7 % 251) as u8)
        .collect()
}

/// Creates the transfer as `sender`; its answer (201).
pub async fn create(
    cloud: &TestCloud,
    sender: &Cred,
    recipients: &[&str],
    sealed: &Sealed,
) -> Reply {
    call(
        cloud,
        sender,
        "POST",
        "/api/v1/transfers",
        Some(json!({
            "recipients": recipients,
            "header": b64(&sealed.header),
            "chunk_size": MIN_CHUNK_SIZE,
        })),
    )
    .await
}

/// Creates, uploads every chunk and completes the transfer as `sender`; its id.
pub async fn send_sealed(
    cloud: &TestCloud,
    sender: &Cred,
    recipients: &[&str],
    sealed: &Sealed,
) -> String {
    let created = create(cloud, sender, recipients, sealed).await;
    assert_eq!(created.status, 201, "create: {:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    for chunk in &sealed.chunks {
        let stored = put_chunk(cloud, sender, &id, chunk.index, &chunk.bytes, chunk.last).await;
        assert_eq!(
            stored.status, 201,
            "chunk {}: {:?}",
            chunk.index, stored.body
        );
    }
    let done = call(
        cloud,
        sender,
        "POST",
        &format!("/api/v1/transfers/{id}/complete"),
        Some(json!({"manifest": b64(&sealed.manifest)})),
    )
    .await;
    assert_eq!(done.status, 200, "complete: {:?}", done.body);
    id
}

/// Downloads transfer `id` as `cred` and decrypts it with `secret`: the plaintext, checked
/// against the sealed manifest.
pub async fn receive(
    cloud: &TestCloud,
    cred: &Cred,
    id: &str,
    secret: &X25519SecretKey,
) -> Vec<u8> {
    let (status, header) = raw_bytes(cloud, cred, &format!("/api/v1/transfers/{id}/header")).await;
    assert_eq!(status, 200, "header");
    let (header, _) = Header::parse(&header).unwrap();
    let mut decryptor = Decryptor::new(header, &[Identity::X25519(secret)]).unwrap();
    let shown = call(cloud, cred, "GET", &format!("/api/v1/transfers/{id}"), None).await;
    assert_eq!(shown.status, 200, "{:?}", shown.body);
    let count = shown.body["chunk_count"].as_u64().unwrap();
    let mut plain = Vec::new();
    for index in 0..count {
        let path = format!("/api/v1/transfers/{id}/chunks/{index}");
        let (status, bytes) = raw_bytes(cloud, cred, &path).await;
        assert_eq!(status, 200, "chunk {index}");
        let chunk = SealedChunk::from_bytes(index, index + 1 == count, bytes);
        plain.extend_from_slice(decryptor.open(&chunk).unwrap());
    }
    let (status, manifest) =
        raw_bytes(cloud, cred, &format!("/api/v1/transfers/{id}/manifest")).await;
    assert_eq!(status, 200, "manifest");
    let manifest = decryptor.finish(&manifest).unwrap();
    assert_eq!(manifest.size, plain.len() as u64, "the manifest's size");
    plain
}

/// A GET whose body is kept as raw bytes (ciphertext is no text).
pub async fn raw_bytes(cloud: &TestCloud, cred: &Cred, path: &str) -> (u16, Vec<u8>) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", cloud.url));
    request = match cred {
        Cred::None => request,
        Cred::ApiKey(key) => request.header("X-API-Key", key),
        Cred::Bearer(token) => request.bearer_auth(token),
    };
    let response = request.send().await.unwrap();
    (
        response.status().as_u16(),
        response.bytes().await.unwrap().to_vec(),
    )
}
