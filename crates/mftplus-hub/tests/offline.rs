//! The auth cache and offline queue against the real cloud: a partition with 100 agents, a
//! duplicate idempotency key, a hub that dies mid-replay, a key revoked while the hub was cut
//! off, a full queue, and what the database file holds.

mod common;
mod offline_support;

use common::*;
use mftplus_client::AgentClient;
use mftplus_cloud::testing::TestCloud;
use mftplus_types::fleet::{GuestBootstrapRequest, GuestReport, HostReport, ReEnrollRequest};
use offline_support::*;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

async fn raw_report(
    hub: &TestHub,
    key: &str,
    body: &HostReport,
    idem: Option<&str>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(hub.url("/api/v1/host-report"))
        .bearer_auth(key)
        .json(body);
    if let Some(idem) = idem {
        request = request.header("Idempotency-Key", idem);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partition_with_100_agents_every_report_arrives_once_in_order() {
    const AGENTS: usize = 100;
    const BEFORE: usize = 3;
    const DURING: usize = 3;
    let (site, cloud) = Site::start().await;
    let hosts = site.enroll(&cloud, AGENTS).await;
    let hub = site.hub(&[]).await;
    let agents: Vec<Arc<(AgentClient, String)>> = hosts
        .iter()
        .map(|h| {
            Arc::new((
                AgentClient::new(&hub.url(""), &h.host_key).unwrap(),
                h.host_id.clone(),
            ))
        })
        .collect();
    let run = |range: std::ops::Range<usize>| {
        let tasks: Vec<_> = agents
            .iter()
            .cloned()
            .map(|agent| {
                let range = range.clone();
                tokio::spawn(async move {
                    for seq in range {
                        agent
                            .0
                            .host_report(&report(&agent.1, seq))
                            .await
                            .unwrap_or_else(|e| panic!("report {seq} of {}: {e}", agent.1));
                    }
                })
            })
            .collect();
        async move {
            for task in tasks {
                task.await.unwrap();
            }
        }
    };
    run(0..BEFORE).await;
    assert_eq!(queued(&hub), 0, "online reports go straight through");

    cloud.stop().await;
    run(BEFORE..BEFORE + DURING).await;
    assert_eq!(
        queued(&hub),
        (AGENTS * DURING) as u64,
        "every report during the outage was answered and queued"
    );

    let cloud = site.restart_cloud().await;
    wait_drained(&hub).await;
    for host in &hosts {
        assert_eq!(
            stored_seqs(&cloud, &host.host_id).await,
            seqs(0..BEFORE + DURING),
            "host {}: every report once, in order",
            host.host_id
        );
    }
    hub.stop().await;
}

#[tokio::test]
async fn a_repeated_idempotency_key_is_stored_once_and_the_file_holds_no_token() {
    let (site, cloud) = Site::start().await;
    let host = site.enroll(&cloud, 1).await.remove(0);
    let hub = site.hub(&[]).await;
    for seq in 0..2 {
        let (status, envelope) = raw_report(
            &hub,
            &host.host_key,
            &report(&host.host_id, seq),
            Some("same-key"),
        )
        .await;
        assert_eq!(status, 200, "{envelope}");
        assert_eq!(envelope["blocked"], false);
    }
    assert_eq!(stored_seqs(&cloud, &host.host_id).await, seqs(0..1));

    // Offline too: the queued report keeps the agent's key, and the cloud has seen it.
    cloud.stop().await;
    let (status, _) = raw_report(
        &hub,
        &host.host_key,
        &report(&host.host_id, 5),
        Some("same-key"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = raw_report(&hub, &host.host_key, &report(&host.host_id, 6), None).await;
    assert_eq!(status, 200);
    let cloud = site.restart_cloud().await;
    wait_drained(&hub).await;
    assert_eq!(
        stored_seqs(&cloud, &host.host_id).await,
        vec!["1.0.0".to_string(), "1.0.6".to_string()]
    );

    let db = site.data_dir.join("hub.db");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "hub.db is private");
    for file in [db.clone(), site.data_dir.join("hub.db-wal")] {
        if let Ok(bytes) = std::fs::read(&file) {
            assert!(
                !contains(&bytes, host.host_key.as_bytes()),
                "{file:?} holds the key"
            );
            assert!(!contains(&bytes, site.deploy_key.as_bytes()));
        }
    }
    hub.stop().await;
}

/// A key the cloud would refuse at replay is refused by the hub at once, online and offline:
/// never answered "accepted" and then dropped.
#[tokio::test]
async fn an_idempotency_key_the_cloud_would_refuse_is_refused_up_front() {
    let (site, cloud) = Site::start().await;
    let host = site.enroll(&cloud, 1).await.remove(0);
    let hub = site.hub(&[]).await;
    let (status, body) = raw_report(
        &hub,
        &host.host_key,
        &report(&host.host_id, 0),
        Some("has space"),
    )
    .await;
    assert_eq!(status, 400, "online: {body}");
    cloud.stop().await;
    for bad in ["has space", &"k".repeat(129)] {
        let (status, body) =
            raw_report(&hub, &host.host_key, &report(&host.host_id, 1), Some(bad)).await;
        assert_eq!(status, 400, "offline, {bad:?}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{body}");
    }
    assert_eq!(queued(&hub), 0, "nothing was queued");
    hub.stop().await;
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hub_dropped_mid_replay_resumes_and_nothing_is_doubled() {
    const N: usize = 300;
    let (site, cloud) = Site::start().await;
    let host = site.enroll(&cloud, 1).await.remove(0);
    let hub = site.hub(&[]).await;
    let agent = AgentClient::new(&hub.url(""), &host.host_key).unwrap();
    agent.host_report(&report(&host.host_id, 0)).await.unwrap();
    cloud.stop().await;
    for seq in 1..N {
        agent
            .host_report(&report(&host.host_id, seq))
            .await
            .unwrap();
    }
    assert_eq!(queued(&hub), (N - 1) as u64);

    let cloud = site.restart_cloud().await;
    let offline = hub.state.offline.clone().unwrap();
    wait_until("the replay to start", Duration::from_secs(30), || {
        offline.queued() < (N - 1) as u64
    })
    .await;
    hub.stop().await;
    drop(offline);
    let left = stored_seqs(&cloud, &host.host_id).await.len();
    assert!(
        left < N,
        "the hub stopped before the end of the replay ({left} stored)"
    );

    let hub = site.hub(&[]).await;
    wait_drained(&hub).await;
    assert_eq!(stored_seqs(&cloud, &host.host_id).await, seqs(0..N));
    hub.stop().await;
}

#[tokio::test]
async fn a_key_revoked_while_the_hub_was_cut_off_is_refused_on_reconnect() {
    let (site, cloud) = Site::start().await;
    let mut hosts = site.enroll(&cloud, 2).await;
    let (host, bystander) = (hosts.remove(0), hosts.remove(0));
    let hub = site.hub(&[]).await;
    for h in [&host, &bystander] {
        let (status, _) = raw_report(&hub, &h.host_key, &report(&h.host_id, 0), None).await;
        assert_eq!(status, 200);
    }
    cloud.stop().await;

    // An operator elsewhere rotates the host's key (recovery + re-enroll) while this hub
    // cannot reach the cloud: another cloud process on the same database, another address.
    let elsewhere = TestCloud::spawn_with(options(&site.db_url)).await;
    operator(&elsewhere)
        .arm_recovery(&host.host_id, 600)
        .await
        .unwrap();
    let rotated = AgentClient::unenrolled(&elsewhere.url)
        .unwrap()
        .re_enroll(
            &host.host_id,
            &ReEnrollRequest {
                hostname: "box-0".into(),
                agent_version: "1.0.0".into(),
            },
            &site.password,
        )
        .await
        .unwrap();
    elsewhere.stop().await;

    // Cut off, the hub still answers the old key from its cache and queues.
    for h in [&host, &bystander] {
        let (status, _) = raw_report(&hub, &h.host_key, &report(&h.host_id, 1), None).await;
        assert_eq!(
            status, 200,
            "answered from the cache while the cloud is down"
        );
    }
    let (status, body) =
        raw_report(&hub, "mft_host_unknown", &report(&host.host_id, 1), None).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "cloud_unreachable");

    let cloud = site.restart_cloud().await;
    wait_drained(&hub).await;
    assert_eq!(
        stored_seqs(&cloud, &host.host_id).await,
        seqs(0..1),
        "the revoked key's queued report was refused"
    );
    assert_eq!(stored_seqs(&cloud, &bystander.host_id).await, seqs(0..2));
    // Refused, not dropped: kept in the dead letter with the cloud's answer.
    let offline = hub.state.offline.clone().unwrap();
    assert_eq!(offline.dead_letter(), 1);
    let dead = offline.dead_letter_rows().unwrap();
    assert_eq!(
        (dead[0].route.as_str(), dead[0].status),
        ("/api/v1/host-report", 401)
    );
    assert!(dead[0].reason.contains("credential"), "{dead:?}");
    let (status, body) = raw_report(&hub, &host.host_key, &report(&host.host_id, 2), None).await;
    assert_eq!(status, 401, "{body}");

    // And with the cloud down again, the old key no longer authenticates offline.
    cloud.stop().await;
    let (status, body) = raw_report(&hub, &host.host_key, &report(&host.host_id, 3), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("cloud_unreachable"))
    );
    let (status, _) = raw_report(&hub, &rotated.host_key, &report(&host.host_id, 3), None).await;
    assert_eq!(status, 503, "the new key was never seen by this hub");
    hub.stop().await;
}

#[tokio::test]
async fn a_full_queue_answers_hub_queue_full_and_counts_it() {
    let (site, cloud) = Site::start().await;
    let host = site.enroll(&cloud, 1).await.remove(0);
    let hub = site.hub(&[("HUB_QUEUE_MAX", "2")]).await;
    let (status, _) = raw_report(&hub, &host.host_key, &report(&host.host_id, 0), None).await;
    assert_eq!(status, 200);
    cloud.stop().await;
    for seq in 1..3 {
        let (status, _) = raw_report(&hub, &host.host_key, &report(&host.host_id, seq), None).await;
        assert_eq!(status, 200);
    }
    let (status, body) = raw_report(&hub, &host.host_key, &report(&host.host_id, 3), None).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "hub_queue_full");
    let offline = hub.state.offline.clone().unwrap();
    assert_eq!(offline.queue_full_total(), 1);
    assert_eq!(offline.queued(), 2);
    let metric: Value = reqwest::get(hub.url("/hub/offline"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metric,
        json!({"queued": 2, "queueMax": 2, "queueFullTotal": 1, "deadLetter": 0}),
        "the metric is visible"
    );
    hub.stop().await;
}

#[tokio::test]
async fn guest_reports_are_accepted_offline_with_202_and_replayed_once() {
    let (site, cloud) = Site::start().await;
    let host = site.enroll(&cloud, 1).await.remove(0);
    let guest = AgentClient::new(&cloud.url, &host.host_key)
        .unwrap()
        .mint_guest(
            &host.host_id,
            &GuestBootstrapRequest {
                guest_id: "web-1".into(),
                display_name: "Web".into(),
            },
        )
        .await
        .unwrap();
    let hub = site.hub(&[]).await;
    let controller = AgentClient::new(&hub.url(""), &guest.guest_key).unwrap();
    let report = |seq: u64| -> GuestReport {
        serde_json::from_value(json!({"memory_used_bytes": seq})).unwrap()
    };
    controller.guest_report(&report(0)).await.unwrap();
    cloud.stop().await;
    for seq in 1..4 {
        let answer = reqwest::Client::new()
            .post(hub.url("/api/v1/report"))
            .bearer_auth(&guest.guest_key)
            .json(&report(seq))
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status().as_u16(),
            202,
            "accepted while the cloud is down"
        );
    }
    assert_eq!(queued(&hub), 3);
    let cloud = site.restart_cloud().await;
    wait_drained(&hub).await;
    let rows = cloud
        .state
        .store
        .list_guest_reports(&guest.guest_id, 100)
        .await
        .unwrap();
    let used: Vec<u64> = rows
        .iter()
        .rev()
        .map(|r| {
            serde_json::from_str::<Value>(&r.report_json).unwrap()["memory_used_bytes"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(used, vec![0, 1, 2, 3], "each once, in order");
    hub.stop().await;
}

/// The envelope a hub answers with offline survives a restart of the hub: a blocked
/// customer's box is still told it is blocked, not the default "carry on".
#[tokio::test]
async fn a_restarted_hub_answers_offline_with_the_last_envelope_it_kept() {
    let (site, cloud) = Site::start().await;
    let host = site.enroll(&cloud, 1).await.remove(0);
    operator(&cloud)
        .block_customer(&site.customer_id)
        .await
        .unwrap();
    let hub = site.hub(&[]).await;
    let agent = AgentClient::new(&hub.url(""), &host.host_key).unwrap();
    let online = agent.host_report(&report(&host.host_id, 0)).await.unwrap();
    assert!(online.blocked);
    hub.stop().await;

    // A new hub process on the same hub.db; it has not seen this host's envelope itself.
    let hub = site.hub(&[]).await;
    cloud.stop().await;
    let agent = AgentClient::new(&hub.url(""), &host.host_key).unwrap();
    let offline = agent.host_report(&report(&host.host_id, 1)).await.unwrap();
    assert_eq!(queued(&hub), 1, "the report was queued, not sent");
    assert_eq!(offline, online, "answered with the kept envelope");
    hub.stop().await;
}
