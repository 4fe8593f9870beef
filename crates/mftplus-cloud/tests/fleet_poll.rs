//! The adaptive poll interval through the HTTP API (issue 17, decision 0024): a larger fleet
//! is told a longer interval, liveness judges each host by the interval it was told, and a
//! host that reports when it was told to is never called stale while the fleet grows or
//! shrinks around it.
//!
//! The cloud is sized for 1 report per second with a 60 s floor, so the fleet's interval is
//! its size in seconds once it passes 60 hosts. The filler hosts are written through the
//! store (enrolling hundreds over HTTP would measure Argon2); two hosts enroll and report
//! over HTTP.

mod common;
mod fleet_support;

use common::*;
use fleet_support::*;
use mftplus_cloud::fleet::checker;
use mftplus_cloud::testing::{TestCloud, TestOptions};
use mftplus_store::{NewCustomer, NewHost};

const FLOOR: u64 = 60;
/// Three missed reports at the floor: stale after 180 s, down after 600 s.
const STALE_AFTER: u64 = 180;

async fn cloud() -> TestCloud {
    let options = TestOptions::default();
    TestCloud::spawn_with(TestOptions {
        config_yaml: format!(
            "{}fleet:\n  poll_interval_seconds: {FLOOR}\n  report_capacity_per_second: 1\n  \
             stale_after_seconds: {STALE_AFTER}\n  down_after_seconds: 600\n",
            options.config_yaml
        ),
        ..options
    })
    .await
}

/// A customer holding `count` more hosts, written through the store; returns its id.
async fn grow(cloud: &TestCloud, count: usize) -> String {
    let store = &cloud.state.store;
    let now = cloud.state.clock.now_ms();
    let customer_id = unique("c-filler");
    store
        .create_customer(&NewCustomer {
            id: customer_id.clone(),
            name: "Filler".into(),
            email: "filler@example.com".into(),
            domain: None,
            locale: "en".into(),
            retrieval_password_hash: "unused".into(),
            config_json: "{}".into(),
            created_at_ms: now,
        })
        .await
        .unwrap();
    for _ in 0..count {
        let id = unique("h-filler");
        store
            .create_host(
                &NewHost {
                    key_hash: mftplus_crypto::sha256_hex(id.as_bytes()),
                    hostname: id.clone(),
                    id,
                    customer_id: customer_id.clone(),
                    platform: None,
                    agent_version: "0.1.0".into(),
                    desired_json: "{}".into(),
                    enrolled_at_ms: now,
                },
                u32::MAX,
            )
            .await
            .unwrap();
    }
    customer_id
}

/// Reports and returns the interval the envelope told the host.
async fn report_now(cloud: &TestCloud, host: &Enrolled) -> u64 {
    let reply = send_report(cloud, host, report(&host.host_id, 0)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["poll_interval_seconds"].as_u64().unwrap()
}

async fn liveness(cloud: &TestCloud, host: &Enrolled) -> String {
    let path = format!("/api/v1/hosts/{}", host.host_id);
    let reply = call(cloud, &admin(cloud), "GET", &path, None).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["liveness"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_larger_fleet_is_told_a_longer_interval_and_judged_by_it() {
    let cloud = cloud().await;
    let grace = cloud.state.clock.now_ms();
    let early = enroll(&cloud).await;
    let late = enroll(&cloud).await;
    checker::pass(&cloud.state, grace).await;
    assert_eq!(
        report_now(&cloud, &early).await,
        FLOOR,
        "a small fleet: the floor"
    );

    // 300 hosts at 1 report/s: 300 s, plus this host's own jitter of up to a tenth.
    grow(&cloud, 298).await;
    checker::pass(&cloud.state, grace).await;
    let told = report_now(&cloud, &late).await;
    assert!((300..=330).contains(&told), "told {told}");
    assert_eq!(
        report_now(&cloud, &late).await,
        told,
        "a host's interval is stable"
    );
    // Enrollment tells a new host the interval of the fleet it joins.
    let customer_id = customer(&cloud, serde_json::json!({})).await;
    let enrolled = with_password(
        &cloud,
        "POST",
        "/api/v1/enroll",
        RETRIEVAL_PASSWORD,
        Some(serde_json::json!({
            "customer_id": customer_id, "hostname": "box", "agent_version": "0.1.0"
        })),
    )
    .await;
    assert_eq!(enrolled.status, 201, "{:?}", enrolled.body);
    let at_enrollment = enrolled.body["poll_interval_seconds"].as_u64().unwrap();
    assert!((300..=330).contains(&at_enrollment), "{at_enrollment}");

    // The early host was told 60 s, the late one ~300 s: past three minutes of silence only
    // the early one is stale.
    cloud.clock.advance_secs(STALE_AFTER as i64 + 1);
    checker::pass(&cloud.state, grace).await;
    assert_eq!(liveness(&cloud, &early).await, "stale");
    assert_eq!(liveness(&cloud, &late).await, "ok", "judged by {told} s");
    // Three of its own intervals later, the late host is stale too.
    cloud
        .clock
        .advance_secs((STALE_AFTER * told / FLOOR - STALE_AFTER) as i64);
    checker::pass(&cloud.state, grace).await;
    assert_eq!(liveness(&cloud, &late).await, "stale");
}

#[tokio::test]
async fn a_host_that_reports_when_told_is_never_stale_as_the_fleet_grows_and_shrinks() {
    let cloud = cloud().await;
    let grace = cloud.state.clock.now_ms();
    let host = enroll(&cloud).await;
    let mut fillers = Vec::new();
    let mut told_seen = Vec::new();
    let mut told = {
        checker::pass(&cloud.state, grace).await;
        report_now(&cloud, &host).await
    };
    // Grow in steps (the interval rises with each), then drop every filler at once (it falls
    // back to the floor while the host still waits out the long interval it was told).
    for step in [50, 150, 400, 0] {
        if step > 0 {
            fillers.push(grow(&cloud, step).await);
        } else {
            for customer in fillers.drain(..) {
                cloud.state.store.delete_customer(&customer).await.unwrap();
            }
        }
        // The checker runs every minute while the host waits its interval out; its last run
        // is just before the host reports again.
        let mut waited = 0;
        while waited + FLOOR < told {
            cloud.clock.advance_secs(FLOOR as i64);
            waited += FLOOR;
            checker::pass(&cloud.state, grace).await;
            assert_eq!(
                liveness(&cloud, &host).await,
                "ok",
                "told {told}, {waited} s in"
            );
        }
        cloud.clock.advance_secs((told - waited - 1) as i64);
        checker::pass(&cloud.state, grace).await;
        assert_eq!(
            liveness(&cloud, &host).await,
            "ok",
            "told {told}, just before"
        );
        cloud.clock.advance_secs(1);
        told_seen.push(told);
        told = report_now(&cloud, &host).await;
    }
    told_seen.push(told);
    // 1 host: 60; +50: 60; +200: ~201; +600: ~601; all gone: 60 again.
    assert_eq!(told_seen[0], FLOOR);
    assert!(told_seen[2] > 200 && told_seen[3] > 600, "{told_seen:?}");
    assert_eq!(*told_seen.last().unwrap(), FLOOR, "{told_seen:?}");
    let kinds = call(
        &cloud,
        &admin(&cloud),
        "GET",
        &format!("/api/v1/events?host={}&kind=host_stale", host.host_id),
        None,
    )
    .await;
    assert_eq!(kinds.body, serde_json::json!([]), "never stale");
}
