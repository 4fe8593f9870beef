//! `GET /api/v1/transfers/{id}/stream`: a complete transfer as one body in the stream format's
//! own layout, which a stream reader decrypts as is; the same visibility as the header (a
//! stranger's is absent), complete transfers only.

mod common;
mod request_support;

use common::*;
use mftplus_cloud::testing::TestCloud;
use mftplus_crypto::stream::{decrypt_reader_to_writer, Identity, MIN_CHUNK_SIZE};
use request_support::*;
use serde_json::json;

async fn fetch(cloud: &TestCloud, cred: &Cred, id: &str) -> (u16, Vec<u8>) {
    let Cred::Bearer(token) = cred else {
        unreachable!()
    };
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/transfers/{id}/stream", cloud.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        let declared = response.content_length();
        let body = response.bytes().await.unwrap().to_vec();
        assert_eq!(declared, Some(body.len() as u64), "Content-Length is exact");
        (status, body)
    } else {
        (status, response.bytes().await.unwrap().to_vec())
    }
}

#[tokio::test]
async fn a_whole_stream_decrypts_as_it_comes() {
    let cloud = TestCloud::spawn().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    let (_, bob) = user_with_token(&cloud, "bob@example.com", "user").await;
    let (_, carol) = user_with_token(&cloud, "carol@example.com", "user").await;
    let key = register_user_key(&cloud, &alice).await;
    for len in [
        0usize,
        1,
        MIN_CHUNK_SIZE as usize,
        2 * MIN_CHUNK_SIZE as usize + 17,
    ] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        let sealed = seal_to(&data, &key.public_key());
        let created = call(
            &cloud,
            &bob,
            "POST",
            "/api/v1/transfers",
            Some(json!({
                "recipients": ["alice@example.com"],
                "header": b64(&sealed.header),
                "chunk_size": MIN_CHUNK_SIZE,
            })),
        )
        .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let id = created.body["id"].as_str().unwrap().to_string();
        let count = sealed.chunks.len();
        for (index, chunk) in sealed.chunks.iter().enumerate() {
            let put = put_chunk(&cloud, &bob, &id, index as u64, chunk, index + 1 == count).await;
            assert_eq!(put.status, 201, "{:?}", put.body);
        }
        // Not complete yet: refused, as the header is.
        assert_eq!(fetch(&cloud, &alice, &id).await.0, 409);
        let done = call(
            &cloud,
            &bob,
            "POST",
            &format!("/api/v1/transfers/{id}/complete"),
            Some(json!({"manifest": b64(&sealed.manifest)})),
        )
        .await;
        assert_eq!(done.status, 200, "{:?}", done.body);

        let (status, stream) = fetch(&cloud, &alice, &id).await;
        assert_eq!(status, 200);
        assert!(stream.starts_with(&sealed.header));
        let mut plain = Vec::new();
        decrypt_reader_to_writer(&mut &stream[..], &mut plain, &[Identity::X25519(&key)]).unwrap();
        assert_eq!(plain, data, "{len} bytes");
        // The sender may read it too; a stranger finds nothing.
        assert_eq!(fetch(&cloud, &bob, &id).await.0, 200);
        assert_eq!(fetch(&cloud, &carol, &id).await.0, 404);
    }
}
