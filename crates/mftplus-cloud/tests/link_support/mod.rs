//! Share-link fixtures for the API tests (decision 0023): a transfer whose stream header has a
//! link stanza, uploaded and completed through the API, and links made to it.

#![allow(dead_code)]

use super::common::*;
use base64::Engine;
use mftplus_cloud::testing::TestCloud;
use mftplus_crypto::stream::{
    Header, LinkKey, LinkSecret, Recipient, X25519SecretKey, MIN_CHUNK_SIZE,
};
use serde_json::{json, Value};

pub fn seal(data: &[u8], secret: &LinkSecret) -> Sealed {
    let sender = X25519SecretKey::generate().unwrap();
    let key = LinkKey {
        secret: Some(secret),
        passphrase: None,
    };
    let sealed = seal_stream(
        data,
        &[
            Recipient::X25519(sender.public_key()),
            Recipient::Link { key, iterations: 0 },
        ],
        "shared.bin",
    );
    let (header, _) = Header::parse(&sealed.header).unwrap();
    assert!(header.is_browser_readable());
    sealed
}

/// Uploads `sealed` as a transfer from `sender` to `recipient` and completes it; its id.
pub async fn upload(cloud: &TestCloud, sender: &Cred, recipient: &str, sealed: &Sealed) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let created = call(
        cloud,
        sender,
        "POST",
        "/api/v1/transfers",
        Some(json!({
            "recipients": [recipient],
            "header": b64(&sealed.header),
            "chunk_size": MIN_CHUNK_SIZE,
        })),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let count = sealed.chunks.len();
    for (index, chunk) in sealed.chunks.iter().enumerate() {
        let put = put_chunk(cloud, sender, &id, index as u64, chunk, index + 1 == count).await;
        assert_eq!(put.status, 201, "{:?}", put.body);
    }
    let done = call(
        cloud,
        sender,
        "POST",
        &format!("/api/v1/transfers/{id}/complete"),
        Some(json!({"manifest": b64(&sealed.manifest)})),
    )
    .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    id
}

/// A complete transfer a browser can read, with two chunks of made-up data.
pub async fn linkable_transfer(cloud: &TestCloud, sender: &Cred, recipient: &str) -> String {
    let secret = LinkSecret::generate().unwrap();
    let data = vec![7u8; MIN_CHUNK_SIZE as usize + 10];
    upload(cloud, sender, recipient, &seal(&data, &secret)).await
}

/// Makes a link to `transfer` as `sender` with `body`; `(link id, token)`.
pub async fn make_link(
    cloud: &TestCloud,
    sender: &Cred,
    transfer: &str,
    body: Value,
) -> (String, String) {
    let made = call(
        cloud,
        sender,
        "POST",
        &format!("/api/v1/transfers/{transfer}/links"),
        Some(body),
    )
    .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    (
        made.body["link"]["id"].as_str().unwrap().to_string(),
        made.body["token"].as_str().unwrap().to_string(),
    )
}

/// Opens the link anonymously; its ticket.
pub async fn open_link(cloud: &TestCloud, token: &str) -> String {
    let opened = call(
        cloud,
        &Cred::None,
        "POST",
        &format!("/api/v1/shared/{token}/open"),
        None,
    )
    .await;
    assert_eq!(opened.status, 200, "{:?}", opened.body);
    opened.body["ticket"].as_str().unwrap().to_string()
}
