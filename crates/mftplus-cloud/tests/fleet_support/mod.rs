//! Fleet fixtures for the cloud's integration tests: customers, enrolled hosts, guests and
//! signed ops made through the real HTTP API. Declare `mod common;` next to it.

#![allow(dead_code)]

use super::common::*;
use mftplus_cloud::testing::TestCloud;
use serde_json::{json, Value};

pub const RETRIEVAL_PASSWORD: &str = "alma-korte-szilva-barack-dio";

pub struct Enrolled {
    pub customer_id: String,
    pub host_id: String,
    pub host_key: String,
}

impl Enrolled {
    pub fn cred(&self) -> Cred {
        Cred::Bearer(self.host_key.clone())
    }
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

pub async fn customer(cloud: &TestCloud, config: Value) -> String {
    let id = unique("c");
    let reply = call(
        cloud,
        &admin(cloud),
        "POST",
        "/api/v1/customers",
        Some(json!({"id": id, "name": "Kovács Kft", "email": "info@kovacs.example.com", "retrieval_password": RETRIEVAL_PASSWORD, "config": config})),
    )
    .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    id
}

/// A request with the retrieval password header and an optional JSON body.
pub async fn with_password(
    cloud: &TestCloud,
    method: &str,
    path: &str,
    password: &str,
    body: Option<Value>,
) -> Reply {
    let mut headers = vec![("x-retrieval-password".to_string(), password.to_string())];
    let bytes = match body {
        Some(body) => {
            headers.push(("content-type".into(), "application/json".into()));
            serde_json::to_vec(&body).unwrap()
        }
        None => Vec::new(),
    };
    call_raw(cloud, &Cred::None, method, path, bytes, &headers).await
}

pub async fn enroll_into(cloud: &TestCloud, customer_id: &str) -> Enrolled {
    let reply = with_password(
        cloud,
        "POST",
        "/api/v1/enroll",
        RETRIEVAL_PASSWORD,
        Some(json!({"customer_id": customer_id, "hostname": "box", "agent_version": "0.1.0"})),
    )
    .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    Enrolled {
        customer_id: customer_id.to_string(),
        host_id: reply.body["host_id"].as_str().unwrap().to_string(),
        host_key: reply.body["host_key"].as_str().unwrap().to_string(),
    }
}

pub async fn enroll(cloud: &TestCloud) -> Enrolled {
    let customer_id = customer(cloud, json!({})).await;
    enroll_into(cloud, &customer_id).await
}

pub fn report(host_id: &str, applied_generation: u64) -> Value {
    json!({"host_id": host_id, "agent_version": "0.1.0", "applied_generation": applied_generation})
}

pub async fn send_report(cloud: &TestCloud, host: &Enrolled, body: Value) -> Reply {
    call(
        cloud,
        &host.cred(),
        "POST",
        "/api/v1/host-report",
        Some(body),
    )
    .await
}

/// Mints a guest of the host; returns its key.
pub async fn guest(cloud: &TestCloud, host: &Enrolled, guest_id: &str) -> String {
    let reply = call(
        cloud,
        &host.cred(),
        "POST",
        &format!("/api/v1/hosts/{}/guests", host.host_id),
        Some(json!({"guest_id": guest_id, "display_name": "Web"})),
    )
    .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["guest_key"].as_str().unwrap().to_string()
}

pub fn web_guest() -> Value {
    json!({"spec": {"cpu_cores": 2, "memory_mb": 2048, "disk_gb": 20, "image": "debian-12"}})
}

/// Publishes a guest, then removes it: returns the op waiting for a signature.
pub async fn pending_op(cloud: &TestCloud, host: &Enrolled) -> String {
    // A guest of its own each time: the same change on the same host while its op is in flight
    // finds that op instead of making a new one (decision 0009), and callers want a new one.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let guest = format!(
        "web-{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let path = format!("/api/v1/hosts/{}/desired-state", host.host_id);
    let with_guest = json!({"desired_state": {"guests": {guest: web_guest()}}});
    let reply = call(cloud, &admin(cloud), "PUT", &path, Some(with_guest)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let reply = call(
        cloud,
        &admin(cloud),
        "PUT",
        &path,
        Some(json!({"desired_state": {}})),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["pending_ops"][0]["op_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Signs an op's blob with the cloud's pinned operator key, as `mftctl ops sign` does.
pub async fn signature_for(cloud: &TestCloud, op_id: &str) -> String {
    let op = call(
        cloud,
        &admin(cloud),
        "GET",
        &format!("/api/v1/ops/{op_id}"),
        None,
    )
    .await;
    let blob = op.body["blob"].as_str().unwrap().to_string();
    let key_text = std::fs::read_to_string(&cloud.operator_key).unwrap();
    let key = mftplus_signing::PrivateKey::from_openssh(&key_text).unwrap();
    mftplus_signing::sign_op(&key, blob.as_bytes()).unwrap()
}

pub async fn signed_op(cloud: &TestCloud, host: &Enrolled) -> String {
    let op_id = pending_op(cloud, host).await;
    let signature = signature_for(cloud, &op_id).await;
    let reply = call(
        cloud,
        &admin(cloud),
        "PUT",
        &format!("/api/v1/ops/{op_id}/signature"),
        Some(json!({"signature": signature})),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    op_id
}
