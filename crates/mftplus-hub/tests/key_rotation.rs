//! A deploy-key rotation against the real cloud (`docs/key-rotation.md`): writes queued while
//! the cloud is away under the old key, the key rotated, the hub restarted with the new key and
//! the old one as `HUB_PREVIOUS_REGISTRATION_KEY` while the cloud is still away. The cache still
//! answers, the hub keeps its id, and every queued write reaches the cloud exactly once, in
//! order. Without the previous key, the same restart loses the cache (the control).

mod common;
mod offline_support;

use common::*;
use mftplus_client::{AgentClient, Client};
use mftplus_cloud::testing::TestCloud;
use mftplus_types::fleet::EnrollResponse;
use offline_support::*;

const HOSTS: usize = 3;

fn agent(hub: &TestHub, host: &EnrollResponse) -> AgentClient {
    AgentClient::new(&hub.url(""), &host.host_key).unwrap()
}

/// Every host reports `seq` through the hub.
async fn report_all(hub: &TestHub, hosts: &[EnrollResponse], seq: usize) {
    for host in hosts {
        agent(hub, host)
            .host_report(&report(&host.host_id, seq))
            .await
            .unwrap_or_else(|e| panic!("report {seq} of {}: {e}", host.host_id));
    }
}

/// The site's deploy key rotated on a cloud that is up: (new key, old key's id).
async fn rotate(cloud: &TestCloud) -> (String, String) {
    let op: Client = operator(cloud);
    let old = op
        .list_deploy_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|key| key.label == "site-a")
        .unwrap();
    let rotated = op.rotate_deploy_key(&old.id, Some(3600)).await.unwrap();
    (rotated.key, old.id)
}

/// A hub on the site's data dir with `key` (and `previous`), not waiting for registration (the
/// cloud may be away).
async fn hub_with_key(site: &Site, key: &str, previous: Option<&str>) -> TestHub {
    let cloud_api = format!("http://{}/api", site.addr);
    let data_dir = site.data_dir.display().to_string();
    let mut vars = vec![
        ("CLOUD_API_URL", cloud_api.as_str()),
        ("HUB_REGISTRATION_KEY", key),
        ("HUB_DATA_DIR", data_dir.as_str()),
        ("NODE_ENV", "development"),
    ];
    if let Some(previous) = previous {
        vars.push(("HUB_PREVIOUS_REGISTRATION_KEY", previous));
    }
    let hub = TestHub::start(config(&vars), fast_timings()).await;
    assert!(hub.state.offline.is_some(), "hub.db opened");
    hub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_restarted_with_the_rotated_key_keeps_its_queue_cache_and_id() {
    let (site, cloud) = Site::start().await;
    let hosts = site.enroll(&cloud, HOSTS).await;
    let hub = site.hub(&[]).await;
    let hub_id = hub.state.phone_home().hub_id.unwrap();
    report_all(&hub, &hosts, 0).await;

    // The cloud goes away; the hub answers from its cache and queues, sealed under the old key.
    cloud.stop().await;
    report_all(&hub, &hosts, 1).await;
    report_all(&hub, &hosts, 2).await;
    assert_eq!(queued(&hub), (HOSTS * 2) as u64);
    hub.stop().await;

    // The operator rotates the key while the cloud is up, and it goes away again before the
    // hub is restarted with the new key and the old one as previous.
    let cloud = site.restart_cloud().await;
    let (new_key, old_id) = rotate(&cloud).await;
    cloud.stop().await;
    let hub = hub_with_key(&site, &new_key, Some(&site.deploy_key)).await;
    assert_eq!(queued(&hub), (HOSTS * 2) as u64, "the queue is intact");

    // The cache still answers for the agents' keys while the cloud is away.
    report_all(&hub, &hosts, 3).await;
    assert_eq!(queued(&hub), (HOSTS * 3) as u64);

    // The cloud comes back: the hub registers with the new key as the same hub and replays
    // every acknowledged write once, in order.
    let cloud = site.restart_cloud().await;
    hub.wait_registered().await;
    assert_eq!(
        hub.state.phone_home().hub_id.as_deref(),
        Some(hub_id.as_str())
    );
    wait_drained(&hub).await;
    for host in &hosts {
        assert_eq!(
            stored_seqs(&cloud, &host.host_id).await,
            seqs(0..4),
            "host {}: every report once, in order",
            host.host_id
        );
    }
    assert_eq!(hub.state.offline.as_ref().unwrap().dead_letter(), 0);
    let hubs = operator(&cloud).list_hubs().await.unwrap();
    assert_eq!(hubs.len(), 1, "{hubs:?}");
    assert_ne!(
        hubs[0].deploy_key_id, old_id,
        "the hub moved to the new key"
    );
    assert_eq!(hubs[0].status, "online");
    hub.stop().await;

    // hub.db holds neither deploy key nor any host key in the clear.
    let db = std::fs::read(site.data_dir.join("hub.db")).unwrap();
    let text = String::from_utf8_lossy(&db);
    assert!(!text.contains("mft_dep_") && !text.contains("mfth_"));
}

/// The control: restarted with the new key alone, the hub cannot open what the old key sealed,
/// so an agent it vouched for is refused while the cloud is away.
#[tokio::test]
async fn without_the_previous_key_the_cache_is_lost() {
    let (site, cloud) = Site::start().await;
    let host = site.enroll(&cloud, 1).await.remove(0);
    let hub = site.hub(&[]).await;
    report_all(&hub, std::slice::from_ref(&host), 0).await;
    hub.stop().await;
    let (new_key, _) = rotate(&cloud).await;
    cloud.stop().await;
    let hub = hub_with_key(&site, &new_key, None).await;
    let refused = agent(&hub, &host)
        .host_report(&report(&host.host_id, 1))
        .await
        .expect_err("the cache does not open under the new key");
    assert_eq!(refused.code(), "cloud_unreachable", "{refused}");
    hub.stop().await;
}
