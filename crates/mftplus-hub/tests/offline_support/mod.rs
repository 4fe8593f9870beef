//! Shared by the offline tests: a real cloud on a database file that outlives it, a hub in
//! front of it, enrolled hosts, and what the cloud stored.
#![allow(dead_code)]

use crate::common::*;
use mftplus_client::{AgentClient, Client, Credential};
use mftplus_cloud::testing::{TestCloud, TestOptions};
use mftplus_types::fleet::{EnrollRequest, EnrollResponse, HostReport};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;

/// A cloud on a database file that outlives it, so another can take over its address.
pub struct Site {
    _dir: tempfile::TempDir,
    pub db_url: String,
    pub data_dir: std::path::PathBuf,
    pub addr: SocketAddr,
    pub deploy_key: String,
    pub password: String,
    pub customer_id: String,
}

pub fn options(db_url: &str) -> TestOptions {
    TestOptions {
        database_url: Some(db_url.to_string()),
        config_yaml: format!(
            "{}fleet:\n  max_hosts_per_customer: 1000\n",
            TestOptions::default().config_yaml
        ),
    }
}

pub fn operator(cloud: &TestCloud) -> Client {
    Client::new(&cloud.url, Credential::ApiKey(cloud.admin_api_key.clone())).unwrap()
}

impl Site {
    pub async fn start() -> (Site, TestCloud) {
        let dir = tempfile::tempdir().unwrap();
        let db_url = format!("sqlite://{}", dir.path().join("cloud.db").display());
        let data_dir = dir.path().join("hub-data");
        std::fs::create_dir(&data_dir).unwrap();
        let cloud = TestCloud::spawn_with(options(&db_url)).await;
        let addr: SocketAddr = cloud.url.trim_start_matches("http://").parse().unwrap();
        let op = operator(&cloud);
        let deploy_key = op.create_deploy_key("site-a").await.unwrap().key;
        let created = op
            .create_customer(
                &serde_json::from_value(json!({"name": "Acme", "email": "ops@example.com"}))
                    .unwrap(),
            )
            .await
            .unwrap();
        let site = Site {
            _dir: dir,
            db_url,
            data_dir,
            addr,
            deploy_key,
            password: created.retrieval_password,
            customer_id: created.customer.id,
        };
        (site, cloud)
    }

    /// A new cloud on the same database and address (the link comes back).
    pub async fn restart_cloud(&self) -> TestCloud {
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(err) => {
                    tries += 1;
                    assert!(tries < 100, "cannot bind {} again: {err}", self.addr);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        TestCloud::spawn_on(options(&self.db_url), Some(listener)).await
    }

    pub async fn hub(&self, extra: &[(&str, &str)]) -> TestHub {
        self.hub_with(extra, fast_timings()).await
    }

    pub async fn hub_with(&self, extra: &[(&str, &str)], timings: mftplus_hub::Timings) -> TestHub {
        let cloud_api = format!("http://{}/api", self.addr);
        let data_dir = self.data_dir.display().to_string();
        let mut vars = vec![
            ("CLOUD_API_URL", cloud_api.as_str()),
            ("HUB_REGISTRATION_KEY", self.deploy_key.as_str()),
            ("HUB_DATA_DIR", data_dir.as_str()),
            ("NODE_ENV", "development"),
        ];
        vars.extend_from_slice(extra);
        let hub = TestHub::start(config(&vars), timings).await;
        hub.wait_registered().await;
        assert!(hub.state.offline.is_some(), "hub.db opened");
        hub
    }

    pub async fn enroll(&self, cloud: &TestCloud, n: usize) -> Vec<EnrollResponse> {
        let anonymous = AgentClient::unenrolled(&cloud.url).unwrap();
        let mut hosts = Vec::with_capacity(n);
        for i in 0..n {
            let request = EnrollRequest {
                customer_id: self.customer_id.clone(),
                hostname: format!("box-{i}"),
                agent_version: "1.0.0".into(),
                platform: None,
            };
            hosts.push(anonymous.enroll(&request, &self.password).await.unwrap());
        }
        hosts
    }
}

pub fn report(host_id: &str, seq: usize) -> HostReport {
    serde_json::from_value(json!({
        "host_id": host_id,
        "agent_version": format!("1.0.{seq}"),
        "applied_generation": 0,
    }))
    .unwrap()
}

pub fn queued(hub: &TestHub) -> u64 {
    hub.state.offline.as_ref().unwrap().queued()
}

/// The sequence numbers the cloud stored for a host, oldest first.
pub async fn stored_seqs(cloud: &TestCloud, host_id: &str) -> Vec<String> {
    let rows = operator(cloud)
        .host_reports(host_id, Some(500))
        .await
        .unwrap();
    rows.iter()
        .rev()
        .map(|r| r.report["agent_version"].as_str().unwrap().to_string())
        .collect()
}

pub fn seqs(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("1.0.{i}")).collect()
}

pub async fn wait_drained(hub: &TestHub) {
    let offline = hub.state.offline.clone().unwrap();
    wait_until("the queue to drain", Duration::from_secs(60), || {
        offline.queued() == 0
    })
    .await;
}
