//! Client addresses through the hub (issue 13): whatever forwarding headers an agent sends, the
//! cloud gets the agent's own address, set by the hub with its id and deploy key, on the
//! streaming proxy, on a queueable write and on that write's replay; the hub's own phone-home
//! calls carry none of them.

mod common;

use common::*;
use mftplus_hub::testing::{Recorded, StandInCloud};
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The agent's own address: not the hub's (127.0.0.1), so the two cannot be confused.
const AGENT: &str = "127.0.0.2";
const FORGED: &str = "203.0.113.9";

fn agent() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(AGENT.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Every forwarding header an agent might send to be believed.
fn forged(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request
        .header("x-forwarded-for", FORGED)
        .header("x-real-ip", FORGED)
        .header("forwarded", format!("for={FORGED}"))
        .header("true-client-ip", FORGED)
        .header("x-mftplus-client-addr", FORGED)
        .header("x-mftplus-proxy-hub", "hub_forged")
        .header("x-mftplus-proxy-key", "mft_dep_forged")
}

fn report(seq: u64) -> Value {
    json!({"host_id": "h1", "agent_version": format!("1.0.{seq}"), "applied_generation": 0})
}

async fn post_report(hub: &TestHub, seq: u64) -> reqwest::Response {
    forged(agent().post(hub.url("/api/v1/host-report")))
        .bearer_auth("mfth_agent_key")
        .json(&report(seq))
        .send()
        .await
        .unwrap()
}

/// What the cloud must see: the agent's address, once, proven by this hub.
fn assert_attributed(what: &str, header: impl Fn(&str) -> Vec<String>, hub_id: &str) {
    assert_eq!(header("x-forwarded-for"), vec![AGENT], "{what}");
    assert_eq!(header("x-mftplus-client-addr"), vec![AGENT], "{what}");
    assert_eq!(header("x-mftplus-proxy-hub"), vec![hub_id], "{what}");
    assert_eq!(header("x-mftplus-proxy-key"), vec![KEY], "{what}");
    assert_eq!(header("x-forwarded-proto"), vec!["http"], "{what}");
    for gone in ["x-real-ip", "forwarded", "true-client-ip"] {
        assert!(header(gone).is_empty(), "{what}: {gone} reached the cloud");
    }
}

fn recorded_header(record: &Recorded) -> impl Fn(&str) -> Vec<String> + '_ {
    move |name| record.header(name)
}

/// Binds `addr` again once the stopped cloud released it.
async fn rebind(addr: SocketAddr) -> tokio::net::TcpListener {
    for _ in 0..100 {
        if let Ok(listener) = tokio::net::TcpListener::bind(addr).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot bind {addr} again");
}

#[tokio::test]
async fn forged_forwarding_headers_are_replaced_on_the_proxy_the_queue_and_the_replay() {
    let cloud = StandInCloud::start(&[KEY]).await;
    let addr = cloud.addr;
    let data = tempfile::tempdir().unwrap();
    let base = cloud.base_url();
    let data_dir = data.path().display().to_string();
    let vars = [
        ("CLOUD_API_URL", base.as_str()),
        ("HUB_REGISTRATION_KEY", KEY),
        ("HUB_DATA_DIR", data_dir.as_str()),
    ];
    let hub = TestHub::start(config(&vars), fast_timings()).await;
    hub.wait_registered().await;
    let hub_id = hub.state.phone_home().hub_id.unwrap();

    // The streaming proxy.
    let echo: Value = forged(agent().get(hub.url("/api/v1/echo")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = |name: &str| -> Vec<String> {
        serde_json::from_value(echo["headers"][name].clone()).unwrap_or_default()
    };
    assert_attributed("proxied", header, &hub_id);

    // A queueable write, sent on at once (and its 2xx vouches for the agent's key).
    let answer = post_report(&hub, 0).await;
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().get("x-hub-offline").is_none());
    let reports = cloud.reports();
    assert_eq!(reports.len(), 1);
    assert_attributed("queueable", recorded_header(&reports[0]), &hub_id);
    assert_eq!(reports[0].body["agent_version"], "1.0.0");

    // Queued while the cloud is away, then replayed: still the agent's address, not the hub's.
    let forwarded_before = cloud.state.phone_home_forwarded.load(Ordering::SeqCst);
    cloud.stop().await;
    let answer = post_report(&hub, 1).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["x-hub-offline"], "queued");
    let offline = hub.state.offline.clone().unwrap();
    assert_eq!(offline.queued(), 1);
    let cloud = StandInCloud::start_on(rebind(addr).await, &[KEY]).await;
    wait_until("the replay", Duration::from_secs(20), || {
        offline.queued() == 0
    })
    .await;
    let reports = cloud.reports();
    assert_eq!(reports.len(), 1, "replayed once");
    assert_eq!(reports[0].body["agent_version"], "1.0.1");
    assert_attributed("replayed", recorded_header(&reports[0]), &hub_id);

    // The hub's own calls went out as the hub's: no client address, no forwarded-for.
    let state = cloud.state.clone();
    wait_until("a heartbeat", Duration::from_secs(10), || {
        state.heartbeats.load(Ordering::SeqCst) > 0
    })
    .await;
    assert_eq!(forwarded_before, 0);
    assert_eq!(cloud.state.phone_home_forwarded.load(Ordering::SeqCst), 0);
    hub.stop().await;
    cloud.stop().await;
}
