//! Site-local transfers (decision 0012) with the real `mftctl`, a real cloud and a real edge
//! hub: when the sender and the recipient both work through the hub, the sealed chunks stay
//! on the hub and the cloud's blob store receives no payload bytes.

mod cli_support;

use std::path::Path;
use std::time::{Duration, Instant};

use mftplus_cloud::testing::TestCloud;

use cli_support::{noise, send_id, site_hub_in_front, user, Shell, PASSWORD};

/// Bytes of every file under `dir`, recursively (0 when it does not exist).
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|entry| entry.unwrap())
        .map(|entry| {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                bytes_under(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_transfer_between_users_behind_one_hub_never_reaches_the_clouds_blob_store() {
    let cloud = TestCloud::spawn().await;
    let hub_data = tempfile::tempdir().unwrap();
    let hub = site_hub_in_front(&cloud, hub_data.path()).await;
    let blobs = cloud.state.config.config.transfers.blob_path.clone();
    let site_dir = hub_data.path().join("site");
    let admin = Shell::admin(&cloud);
    let alice = user(&cloud, &admin, "alice@example.com", "user", true).await;
    let bob = user(&cloud, &admin, "bob@example.com", "user", true).await;
    let carol = user(&cloud, &admin, "carol@example.com", "user", true).await;
    let server = &hub.url;

    // Bob looks for transfers through the hub: that puts him on its site.
    bob.line(&format!("mftctl transfers list --server {server}"))
        .await
        .ok();
    let data = noise(2 * 1024 * 1024 + 4321, 11);
    let file = alice.path("plans.bin");
    std::fs::write(&file, &data).unwrap();
    let sent = alice
        .line(&format!(
            "mftctl send {} bob@example.com --chunk-size 512KiB --server {server}",
            file.display()
        ))
        .await
        .ok();
    let id = send_id(&sent);

    let shown = alice
        .line(&format!("mftctl transfers show {id} --json"))
        .await
        .ok()
        .json();
    assert_eq!(shown["status"], "complete");
    assert_eq!(shown["site"], hub.hub_id.as_str(), "{shown:#}");
    assert_eq!(shown["chunk_count"], 5);
    let ciphertext = shown["ciphertext_bytes"].as_u64().unwrap();
    assert!(ciphertext > data.len() as u64 / 2, "{shown:#}");
    // The point of it all: the cloud stored no payload, the hub stored all of it.
    assert_eq!(bytes_under(&blobs), 0, "the cloud's blob store got bytes");
    assert_eq!(bytes_under(&site_dir.join(&id)), ciphertext);

    let verified = alice
        .line(&format!("mftctl transfers verify {id} --server {server}"))
        .await
        .ok();
    assert!(verified.stdout.contains("intact"), "{verified:#?}");

    // Straight to the cloud there is nothing to download, and the refusal says where to go.
    let inbox = bob.dir("direct");
    bob.line(&format!("mftctl receive {id} --dir {}", inbox.display()))
        .await
        .fails_with("site_local");

    let inbox = bob.dir("inbox");
    bob.line(&format!(
        "mftctl receive {id} --dir {} --server {server}",
        inbox.display()
    ))
    .await
    .ok();
    assert_eq!(std::fs::read(inbox.join("plans.bin")).unwrap(), data);
    assert_eq!(bytes_under(&blobs), 0);

    // Carol was never seen behind the hub: her transfer goes to the cloud as usual, which also
    // shows the byte count above would have seen a payload.
    let sent = alice
        .line(&format!(
            "mftctl send {} carol@example.com --server {server}",
            file.display()
        ))
        .await
        .ok();
    let to_carol = send_id(&sent);
    let shown = alice
        .line(&format!("mftctl transfers show {to_carol} --json"))
        .await
        .ok()
        .json();
    assert!(shown.get("site").is_none(), "{shown:#}");
    assert!(bytes_under(&blobs) >= data.len() as u64);
    assert_eq!(bytes_under(&site_dir.join(&to_carol)), 0);
    let inbox = carol.dir("inbox");
    carol
        .line(&format!(
            "mftctl receive {to_carol} --dir {}",
            inbox.display()
        ))
        .await
        .ok();
    assert_eq!(std::fs::read(inbox.join("plans.bin")).unwrap(), data);

    // Once the transfer is cancelled (here straight at the cloud, which does not tell the
    // hub), the hub's collector finds out and deletes its chunks.
    alice
        .line(&format!("mftctl transfers cancel {id}"))
        .await
        .ok();
    let gone = site_dir.join(&id);
    wait_for("the collector to remove the cancelled transfer", || {
        !gone.exists()
    })
    .await;
}

/// A chunk whose bytes do not match its declared hash is refused by the hub and recorded
/// nowhere; a direct upload of a site transfer's chunk is refused by the cloud.
#[tokio::test]
async fn bad_site_chunks_are_refused_and_leave_nothing_behind() {
    let cloud = TestCloud::spawn().await;
    let hub_data = tempfile::tempdir().unwrap();
    let hub = site_hub_in_front(&cloud, hub_data.path()).await;
    let admin = Shell::admin(&cloud);
    user(&cloud, &admin, "alice@example.com", "user", true).await;
    let bob = user(&cloud, &admin, "bob@example.com", "user", true).await;
    bob.line(&format!("mftctl transfers list --server {}", hub.url))
        .await
        .ok();
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{}/api/v1/auth/login", cloud.url))
        .json(&serde_json::json!({"email": "alice@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alice_key = login["access_token"].as_str().unwrap().to_string();
    let header = stream_header();
    let created: serde_json::Value = http
        .post(format!("{}/api/v1/transfers", hub.url))
        .bearer_auth(&alice_key)
        .json(&serde_json::json!({
            "recipients": ["bob@example.com"], "header": header, "chunk_size": 65_536
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["site"], hub.hub_id.as_str(), "{created:#}");
    let id = created["id"].as_str().unwrap();
    let chunk_url = |base: &str| format!("{base}/api/v1/transfers/{id}/chunks/0");

    let answer = http
        .put(chunk_url(&hub.url))
        .bearer_auth(&alice_key)
        .header("x-chunk-sha256", "ab".repeat(32))
        .body(vec![7_u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 422);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "checksum_mismatch");

    let bytes = vec![9_u8; 1000];
    let sha = hex_sha256(&bytes);
    let answer = http
        .put(chunk_url(&cloud.url))
        .bearer_auth(&alice_key)
        .header("x-chunk-sha256", &sha)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 409);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "site_local");

    // A forged assertion (a made-up key) is refused, not taken as direct.
    let answer = http
        .put(chunk_url(&cloud.url))
        .bearer_auth(&alice_key)
        .header("x-chunk-sha256", &sha)
        .header("x-mftplus-hub-id", hub.hub_id.as_str())
        .header(
            "x-mftplus-hub-key",
            "mft_dep_forgedforgedforgedforgedforgedforge12",
        )
        .header("x-mftplus-site-chunk-size", "1000")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);

    let chunks: serde_json::Value = http
        .get(format!("{}/api/v1/transfers/{id}/chunks", cloud.url))
        .bearer_auth(&alice_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(chunks, serde_json::json!([]), "nothing was recorded");
    // The hub left no chunk file (temporary or published) behind either.
    let held = hub_data.path().join("site").join(id);
    let files: Vec<_> = std::fs::read_dir(&held)
        .map(|dir| dir.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(files.is_empty(), "{files:?}");

    // The good chunk through the hub is stored there and recorded at the cloud.
    let answer = http
        .put(chunk_url(&hub.url))
        .bearer_auth(&alice_key)
        .header("x-chunk-sha256", &sha)
        .header("x-chunk-last", "true")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    assert_eq!(
        std::fs::read(held.join(format!("0-{sha}"))).unwrap(),
        vec![9_u8; 1000]
    );
}

fn hex_sha256(bytes: &[u8]) -> String {
    mftplus_crypto::sha256_hex(bytes)
}

/// A valid stream header (to a throwaway key) with a 64 KiB chunk size, base64.
fn stream_header() -> String {
    use base64::Engine;
    use mftplus_crypto::stream::{Encryptor, Recipient, StreamOptions, X25519SecretKey};
    let key = X25519SecretKey::generate().unwrap();
    let options = StreamOptions {
        chunk_size: 65_536,
        ..StreamOptions::default()
    };
    let encryptor = Encryptor::new(&options, &[Recipient::X25519(key.public_key())]).unwrap();
    base64::engine::general_purpose::STANDARD.encode(encryptor.header_bytes())
}
