//! Edge-hub fixtures for the cloud's integration tests: deploy keys and registered hubs, made
//! through the real HTTP API. Declare `mod common;` next to it.

#![allow(dead_code)]

use super::common::*;
use mftplus_cloud::testing::TestCloud;
use serde_json::{json, Value};

pub struct DeployKey {
    pub id: String,
    pub key: String,
}

impl DeployKey {
    pub fn cred(&self) -> Cred {
        Cred::Bearer(self.key.clone())
    }
}

/// A fresh deploy key, created by the admin.
pub async fn deploy_key(cloud: &TestCloud, label: &str) -> DeployKey {
    let reply = call(
        cloud,
        &admin(cloud),
        "POST",
        "/api/v1/hubs/deploy-keys",
        Some(json!({"label": label})),
    )
    .await;
    assert_eq!(reply.status, 201, "create deploy key: {:?}", reply.body);
    DeployKey {
        id: reply.body["id"].as_str().unwrap().to_string(),
        key: reply.body["key"].as_str().unwrap().to_string(),
    }
}

pub async fn revoke(cloud: &TestCloud, key: &DeployKey) {
    let reply = call(
        cloud,
        &admin(cloud),
        "DELETE",
        &format!("/api/v1/hubs/deploy-keys/{}", key.id),
        None,
    )
    .await;
    assert_eq!(reply.status, 204, "revoke deploy key: {:?}", reply.body);
}

pub fn registration(hostname: &str, version: &str) -> Value {
    json!({"protocol": 1, "hub_version": version, "hostname": hostname, "platform": "linux", "license_key": null})
}

/// Registers `hostname` under `key`; returns the answer.
pub async fn register(cloud: &TestCloud, key: &DeployKey, body: Value) -> Reply {
    call(
        cloud,
        &key.cred(),
        "POST",
        "/api/v1/hubs/register",
        Some(body),
    )
    .await
}

/// A key with one registered hub: (key, hub id).
pub async fn registered_hub(cloud: &TestCloud) -> (DeployKey, String) {
    let key = deploy_key(cloud, "fixture-hub").await;
    let reply = register(cloud, &key, registration("hub-server-01", "0.1.0")).await;
    assert_eq!(reply.status, 200, "register: {:?}", reply.body);
    let hub_id = reply.body["hub_id"].as_str().unwrap().to_string();
    (key, hub_id)
}

pub fn heartbeat_body(healthy: bool) -> Value {
    json!({"hub_version": "0.1.0", "uptime_seconds": 12, "healthy": healthy, "issues": []})
}
