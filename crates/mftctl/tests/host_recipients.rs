//! `mftctl send FILE host:<id>` (decision 0029): the real binary wraps the file key to the host's
//! registered transfer key, and the host's key alone opens what it sent; a host without a key
//! is refused by name, never waited for.

mod cli_support;

use mftplus_client::{AgentClient, Client, Credential};
use mftplus_cloud::testing::TestCloud;
use mftplus_crypto::stream::{Decryptor, Header, Identity, SealedChunk, X25519SecretKey};
use mftplus_types::fleet::{CreateCustomer, EnrollRequest};

use cli_support::{noise, send_id, user, Shell};

/// A fresh customer's enrolled box: (host id, host key).
async fn enrolled(cloud: &TestCloud) -> (String, String) {
    let operator =
        Client::new(&cloud.url, Credential::ApiKey(cloud.admin_api_key.clone())).unwrap();
    let created = operator
        .create_customer(&CreateCustomer {
            id: None,
            name: "Kovács Kft".into(),
            email: "it@kovacs.example.com".into(),
            domain: None,
            locale: None,
            retrieval_password: None,
            config: None,
        })
        .await
        .unwrap();
    let enrolled = AgentClient::unenrolled(&cloud.url)
        .unwrap()
        .enroll(
            &EnrollRequest {
                customer_id: created.customer.id,
                hostname: "nas01".into(),
                agent_version: "1.0.0".into(),
                platform: None,
            },
            &created.retrieval_password,
        )
        .await
        .unwrap();
    (enrolled.host_id, enrolled.host_key)
}

#[tokio::test]
async fn send_to_a_host_encrypts_to_its_registered_key() {
    let cloud = TestCloud::spawn().await;
    let admin = Shell::admin(&cloud);
    let alice = user(&cloud, &admin, "alice@example.com", "user", true).await;
    let (host_id, host_key) = enrolled(&cloud).await;
    let secret = X25519SecretKey::generate().unwrap();
    let agent = AgentClient::new(&cloud.url, &host_key).unwrap();
    agent
        .register_host_transfer_key(&host_id, &secret.public_key().to_encoded())
        .await
        .unwrap();

    let data = noise(150 * 1024 + 17, 3);
    let file = alice.path("for-the-box.bin");
    std::fs::write(&file, &data).unwrap();
    let sent = alice
        .line(&format!(
            "mftctl send {} host:{host_id} --chunk-size 64KiB",
            file.display()
        ))
        .await
        .ok();
    let id = send_id(&sent);

    // The host reads it with its own key, through its host key.
    let host = agent.transfers();
    let transfer = host.get_transfer(&id).await.unwrap();
    assert_eq!(transfer.recipients.len(), 1);
    assert_eq!(
        (
            transfer.recipients[0].kind.as_str(),
            transfer.recipients[0].id.as_str()
        ),
        ("agent", host_id.as_str())
    );
    let header = host.transfer_header(&id).await.unwrap();
    let (header, _) = Header::parse(&header).unwrap();
    let mut decryptor = Decryptor::new(header, &[Identity::X25519(&secret)]).unwrap();
    let count = transfer.chunk_count.unwrap();
    let mut plain = Vec::new();
    for index in 0..count {
        let bytes = host.transfer_chunk(&id, index).await.unwrap();
        let chunk = SealedChunk::from_bytes(index, index + 1 == count, bytes);
        plain.extend_from_slice(decryptor.open(&chunk).unwrap());
    }
    let manifest = decryptor
        .finish(&host.transfer_manifest(&id).await.unwrap())
        .unwrap();
    assert_eq!(plain, data);
    assert_eq!(manifest.name, "for-the-box.bin");
}

#[tokio::test]
async fn a_host_without_a_key_is_refused_by_name() {
    let cloud = TestCloud::spawn().await;
    let admin = Shell::admin(&cloud);
    let alice = user(&cloud, &admin, "alice@example.com", "user", true).await;
    let (host_id, _) = enrolled(&cloud).await;
    let file = alice.path("nowhere.bin");
    std::fs::write(&file, b"not sent").unwrap();
    for target in [host_id.as_str(), "h-nosuchhost0000"] {
        let refused = alice
            .line(&format!("mftctl send {} host:{target}", file.display()))
            .await
            .fails_with("unknown_recipient");
        assert!(
            refused.stderr.contains(&format!("host:{target}")),
            "{refused:#?}"
        );
        assert!(
            refused
                .stderr
                .contains("no such host, or its agent has not registered"),
            "{refused:#?}"
        );
    }
    let listed = Client::new(&cloud.url, Credential::ApiKey(cloud.admin_api_key.clone()))
        .unwrap()
        .list_transfers(None)
        .await
        .unwrap();
    assert!(listed.is_empty(), "nothing was created: {listed:?}");
}
