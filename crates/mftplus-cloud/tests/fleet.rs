//! The fleet control plane through the HTTP API on a real cloud: liveness under an injected
//! clock, backup deadlines, op expiry, report limits, enrollment rules, the generated
//! controller config, disaster recovery, and once-only background work across replicas.

mod common;
mod fleet_support;

use common::*;
use fleet_support::*;
use mftplus_cloud::fleet::checker;
use mftplus_cloud::testing::{TestCloud, TestOptions};
use serde_json::{json, Value};

async fn events_of(cloud: &TestCloud, host_id: &str) -> Vec<String> {
    let reply = call(
        cloud,
        &admin(cloud),
        "GET",
        &format!("/api/v1/events?host={host_id}&limit=1000"),
        None,
    )
    .await;
    let mut kinds: Vec<String> = reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    kinds.reverse();
    kinds
}

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

#[tokio::test]
async fn liveness_ok_stale_down_recovered_once_each() {
    let cloud = TestCloud::spawn().await;
    let grace = cloud.state.clock.now_ms();
    let host = enroll(&cloud).await;
    let silent = enroll(&cloud).await; // never reports: never judged
    assert_eq!(
        send_report(&cloud, &host, report(&host.host_id, 0))
            .await
            .status,
        200
    );

    checker::pass(&cloud.state, grace).await;
    cloud.clock.advance_secs(29 * 60);
    checker::pass(&cloud.state, grace).await;
    assert_eq!(
        count(&events_of(&cloud, &host.host_id).await, "host_stale"),
        0
    );

    cloud.clock.advance_secs(2 * 60); // 31 min
    checker::pass(&cloud.state, grace).await;
    checker::pass(&cloud.state, grace).await;
    cloud.clock.advance_secs(30 * 60); // 61 min
    checker::pass(&cloud.state, grace).await;
    checker::pass(&cloud.state, grace).await;
    let host_view = call(
        &cloud,
        &admin(&cloud),
        "GET",
        &format!("/api/v1/hosts/{}", host.host_id),
        None,
    )
    .await;
    assert_eq!(host_view.body["liveness"], "down");

    assert_eq!(
        send_report(&cloud, &host, report(&host.host_id, 0))
            .await
            .status,
        200
    );
    checker::pass(&cloud.state, grace).await;
    checker::pass(&cloud.state, grace).await;

    let kinds = events_of(&cloud, &host.host_id).await;
    for kind in ["host_stale", "host_down", "host_recovered"] {
        assert_eq!(count(&kinds, kind), 1, "{kind} in {kinds:?}");
    }
    let order: Vec<&String> = kinds
        .iter()
        .filter(|k| k.starts_with("host_") && *k != "host_enrolled")
        .collect();
    assert_eq!(order, ["host_stale", "host_down", "host_recovered"]);
    assert!(events_of(&cloud, &silent.host_id)
        .await
        .iter()
        .all(|k| k == "host_enrolled"));
}

#[tokio::test]
async fn a_restarted_checker_does_not_call_everyone_down() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    send_report(&cloud, &host, report(&host.host_id, 0)).await;
    // The cloud itself was away for two hours; the checker that starts now gives hosts a
    // full threshold to report before judging them.
    cloud.clock.advance_secs(2 * 3600);
    let restarted = cloud.state.clock.now_ms();
    checker::pass(&cloud.state, restarted).await;
    assert_eq!(
        count(&events_of(&cloud, &host.host_id).await, "host_down"),
        0
    );
    cloud.clock.advance_secs(3601);
    checker::pass(&cloud.state, restarted).await;
    assert_eq!(
        count(&events_of(&cloud, &host.host_id).await, "host_down"),
        1
    );
}

#[tokio::test]
async fn blocked_customers_are_not_judged() {
    let cloud = TestCloud::spawn().await;
    let grace = cloud.state.clock.now_ms();
    let host = enroll(&cloud).await;
    send_report(&cloud, &host, report(&host.host_id, 0)).await;
    let blocked = call(
        &cloud,
        &admin(&cloud),
        "POST",
        &format!("/api/v1/customers/{}/block", host.customer_id),
        None,
    )
    .await;
    assert_eq!(blocked.status, 200);
    cloud.clock.advance_secs(2 * 3600);
    checker::pass(&cloud.state, grace).await;
    assert_eq!(
        count(&events_of(&cloud, &host.host_id).await, "host_down"),
        0
    );
}

#[tokio::test]
async fn backup_deadline_is_a_field_check_of_the_latest_report() {
    let cloud = TestCloud::spawn().await;
    let grace = cloud.state.clock.now_ms();
    let host = enroll(&cloud).await;
    let path = format!("/api/v1/hosts/{}/desired-state", host.host_id);
    let policy = json!({"desired_state": {"storage": {"UUID-A": {"role": "bulk", "class": "slow", "backup": "daily"}}}});
    assert_eq!(
        call(&cloud, &admin(&cloud), "PUT", &path, Some(policy))
            .await
            .status,
        200
    );
    let backed_up_at = |ms: i64| mftplus_cloud::clock::rfc3339(ms);
    let now = cloud.state.clock.now_ms();
    let mut body = report(&host.host_id, 1);
    body["storage_targets"] = json!([{"durable_id": "UUID-A", "attached": true, "reachable": true, "data_bearing": true,
        "last_backup": {"at": backed_up_at(now - 3_600_000), "status": "ok"}}]);
    send_report(&cloud, &host, body.clone()).await;
    checker::pass(&cloud.state, grace).await;
    assert_eq!(
        count(
            &events_of(&cloud, &host.host_id).await,
            "expected_backup_missed"
        ),
        0
    );

    // 27 hours later the same last backup is overdue: one event, not one per pass.
    cloud.clock.advance_secs(26 * 3600);
    send_report(&cloud, &host, body.clone()).await;
    checker::pass(&cloud.state, grace).await;
    checker::pass(&cloud.state, grace).await;
    assert_eq!(
        count(
            &events_of(&cloud, &host.host_id).await,
            "expected_backup_missed"
        ),
        1
    );

    // A fresh backup clears it; a later miss raises it again.
    let now = cloud.state.clock.now_ms();
    body["storage_targets"][0]["last_backup"]["at"] = json!(backed_up_at(now));
    send_report(&cloud, &host, body.clone()).await;
    checker::pass(&cloud.state, grace).await;
    cloud.clock.advance_secs(27 * 3600);
    send_report(&cloud, &host, body).await;
    checker::pass(&cloud.state, grace).await;
    assert_eq!(
        count(
            &events_of(&cloud, &host.host_id).await,
            "expected_backup_missed"
        ),
        2
    );
}

#[tokio::test]
async fn unsigned_ops_expire() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    let op = pending_op(&cloud, &host).await;
    cloud.clock.advance_secs(8 * 86_400);
    checker::pass(&cloud.state, cloud.state.clock.now_ms()).await;
    let reply = call(
        &cloud,
        &admin(&cloud),
        "GET",
        &format!("/api/v1/ops/{op}"),
        None,
    )
    .await;
    assert_eq!(reply.body["status"], "expired");
    let signature = signature_for(&cloud, &op).await;
    let late = call(
        &cloud,
        &admin(&cloud),
        "PUT",
        &format!("/api/v1/ops/{op}/signature"),
        Some(json!({"signature": signature})),
    )
    .await;
    assert_eq!(late.status, 409);
    assert_eq!(late.code(), "op_state_conflict");
}

#[tokio::test]
async fn a_signature_by_an_unpinned_key_is_refused() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    let op = pending_op(&cloud, &host).await;
    let blob = call(
        &cloud,
        &admin(&cloud),
        "GET",
        &format!("/api/v1/ops/{op}"),
        None,
    )
    .await
    .body["blob"]
        .as_str()
        .unwrap()
        .to_string();
    let stranger =
        mftplus_signing::PrivateKey::generate(mftplus_signing::KeyAlgorithm::Ed25519).unwrap();
    let signature = mftplus_signing::sign_op(&stranger, blob.as_bytes()).unwrap();
    let reply = call(
        &cloud,
        &admin(&cloud),
        "PUT",
        &format!("/api/v1/ops/{op}/signature"),
        Some(json!({"signature": signature})),
    )
    .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(reply.code(), "invalid_signature");
    // A genuine signature over other bytes is refused too.
    let other = pending_op(&cloud, &enroll(&cloud).await).await;
    let wrong = signature_for(&cloud, &other).await;
    let reply = call(
        &cloud,
        &admin(&cloud),
        "PUT",
        &format!("/api/v1/ops/{op}/signature"),
        Some(json!({"signature": wrong})),
    )
    .await;
    assert_eq!(reply.code(), "invalid_signature");
}

#[tokio::test]
async fn host_reports_are_bounded_and_stored_verbatim() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    let mut big = report(&host.host_id, 0);
    big["padding"] = Value::String("x".repeat(4 * 1024 * 1024));
    let reply = send_report(&cloud, &host, big).await;
    assert_eq!(reply.status, 413, "{:?}", reply.body);
    assert_eq!(reply.code(), "payload_too_large");

    let mut body = report(&host.host_id, 0);
    body["future_field"] = json!({"kept": true});
    let envelope = send_report(&cloud, &host, body).await;
    assert_eq!(envelope.status, 200);
    assert_eq!(
        envelope.body,
        json!({"poll_interval_seconds": 300, "blocked": false, "desired_generation": 0, "has_signed_ops": false})
    );
    let stored = call(
        &cloud,
        &admin(&cloud),
        "GET",
        &format!("/api/v1/hosts/{}/reports", host.host_id),
        None,
    )
    .await;
    assert_eq!(stored.body[0]["report"]["future_field"]["kept"], true);

    let garbage = call_raw(
        &cloud,
        &host.cred(),
        "POST",
        "/api/v1/host-report",
        b"{not json".to_vec(),
        &[("content-type".into(), "application/json".into())],
    )
    .await;
    assert_eq!(garbage.code(), "invalid_json");
}

#[tokio::test]
async fn one_host_per_customer_and_the_password_is_checked() {
    // A first delay longer than the test, so a slow machine still sees the throttle.
    let cloud = TestCloud::spawn_with(TestOptions {
        config_yaml: format!(
            "{}auth:\n  login:\n    base_delay_seconds: 60\n    account_max_delay_seconds: 60\n",
            TestOptions::default().config_yaml
        ),
        ..TestOptions::default()
    })
    .await;
    let host = enroll(&cloud).await;
    let second = with_password(
        &cloud,
        "POST",
        "/api/v1/enroll",
        RETRIEVAL_PASSWORD,
        Some(
            json!({"customer_id": host.customer_id, "hostname": "box-2", "agent_version": "0.1.0"}),
        ),
    )
    .await;
    assert_eq!(second.status, 409, "{:?}", second.body);
    for _ in 0..5 {
        let wrong = with_password(
            &cloud,
            "POST",
            "/api/v1/enroll",
            "wrong-password-000",
            Some(
                json!({"customer_id": host.customer_id, "hostname": "x", "agent_version": "0.1.0"}),
            ),
        )
        .await;
        assert_eq!(wrong.code(), "invalid_credentials");
    }
    let locked = with_password(
        &cloud,
        "GET",
        &format!("/api/v1/config/{}", host.customer_id),
        RETRIEVAL_PASSWORD,
        None,
    )
    .await;
    assert_eq!(
        locked.status, 429,
        "failed attempts throttle the customer: {:?}",
        locked.body
    );
    let audit = call(
        &cloud,
        &admin(&cloud),
        "GET",
        "/api/v1/audit?limit=500",
        None,
    )
    .await;
    assert!(audit.body.to_string().contains("retrieval_password_failed"));
}

#[tokio::test]
async fn controller_config_is_merged_and_never_carries_cloud_secrets() {
    let cloud = TestCloud::spawn().await;
    let customer = customer(
        &cloud,
        json!({
            "locale": "hu",
            "reporting": {"interval_seconds": 120},
            "cf_api_token": "cf-secret-token-123",
            "cloudflare_zone_id": "zone-1",
            "tunnel": {"cloudflare_api_token": "nested-secret-456", "name": "kovacs"},
            "cloud_only": {"note": "hidden-789"}
        }),
    )
    .await;
    let yaml = with_password(
        &cloud,
        "GET",
        &format!("/api/v1/config/{customer}"),
        RETRIEVAL_PASSWORD,
        None,
    )
    .await;
    assert_eq!(yaml.status, 200, "{:?}", yaml.body);
    let text = yaml.body.as_str().unwrap().to_string();
    for secret in [
        "cf-secret-token-123",
        "nested-secret-456",
        "hidden-789",
        "zone-1",
    ] {
        assert!(!text.contains(secret), "{secret} leaked into\n{text}");
    }
    assert!(text.contains("kovacs"), "{text}");
    let json_config = with_password(
        &cloud,
        "GET",
        &format!("/api/v1/config/{customer}?format=json"),
        RETRIEVAL_PASSWORD,
        None,
    )
    .await;
    assert_eq!(json_config.body["tunnel"]["name"], "kovacs");
    assert_eq!(json_config.body["reporting"]["interval_seconds"], 120);
}

#[tokio::test]
async fn re_enrollment_needs_recovery_mode_and_rotates_the_key() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    let h = &host.host_id;
    let escrow = json!({"backup_namespace": "ns/kovacs", "repository_fingerprint": "SHA256:abc", "wrapped_key": "AGE-WRAPPED-KEY-BYTES"});
    assert_eq!(
        call(
            &cloud,
            &host.cred(),
            "PUT",
            &format!("/api/v1/hosts/{h}/escrow"),
            Some(escrow)
        )
        .await
        .status,
        204
    );
    let body = json!({"hostname": "box-new", "agent_version": "0.2.0"});
    let refused = with_password(
        &cloud,
        "POST",
        &format!("/api/v1/hosts/{h}/re-enroll"),
        RETRIEVAL_PASSWORD,
        Some(body.clone()),
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.code(), "recovery_not_armed");

    let armed = call(
        &cloud,
        &admin(&cloud),
        "POST",
        &format!("/api/v1/hosts/{h}/recovery"),
        Some(json!({"ttl_seconds": 1})),
    )
    .await;
    assert_eq!(armed.status, 200);
    // The TTL is clamped to at least a minute.
    cloud.clock.advance_secs(30);
    let taken = with_password(
        &cloud,
        "POST",
        &format!("/api/v1/hosts/{h}/re-enroll"),
        RETRIEVAL_PASSWORD,
        Some(body.clone()),
    )
    .await;
    assert_eq!(taken.status, 200, "{:?}", taken.body);
    assert_eq!(
        taken.body["restore"]["wrapped_key"],
        "AGE-WRAPPED-KEY-BYTES"
    );
    assert_eq!(taken.body["restore"]["backup_namespace"], "ns/kovacs");
    let new_key = taken.body["host_key"].as_str().unwrap().to_string();
    assert_ne!(new_key, host.host_key);

    let old = send_report(&cloud, &host, report(h, 0)).await;
    assert_eq!(old.status, 401, "the old key stops at once");
    let new = call(
        &cloud,
        &Cred::Bearer(new_key),
        "POST",
        "/api/v1/host-report",
        Some(report(h, 0)),
    )
    .await;
    assert_eq!(new.status, 200);
    // Recovery mode was used up.
    let again = with_password(
        &cloud,
        "POST",
        &format!("/api/v1/hosts/{h}/re-enroll"),
        RETRIEVAL_PASSWORD,
        Some(body),
    )
    .await;
    assert_eq!(again.code(), "recovery_not_armed");
}

#[tokio::test]
async fn reports_never_touch_intent() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    let path = format!("/api/v1/hosts/{}/desired-state", host.host_id);
    call(
        &cloud,
        &admin(&cloud),
        "PUT",
        &path,
        Some(json!({"desired_state": {"guests": {"web": web_guest()}}})),
    )
    .await;
    let before = call(&cloud, &admin(&cloud), "GET", &path, None).await.body;
    let mut body = report(&host.host_id, 7);
    body["guests"] = json!([{"guest_id": "web", "status": "stopped", "spec": {"cpu_cores": 64, "memory_mb": 1, "disk_gb": 1, "image": "evil"}}]);
    send_report(&cloud, &host, body).await;
    assert_eq!(
        call(&cloud, &admin(&cloud), "GET", &path, None).await.body,
        before
    );
}

#[tokio::test]
async fn the_checker_runs_once_across_replicas_on_postgres() {
    let Some(db) = mftplus_store_postgres::testing::fresh_database().await else {
        return;
    };
    let options = || TestOptions {
        database_url: Some(db.url().to_string()),
        ..TestOptions::default()
    };
    let first = TestCloud::spawn_with(options()).await;
    let second = TestCloud::spawn_with(options()).await;
    let grace = first.state.clock.now_ms();
    let host = enroll(&first).await;
    send_report(&first, &host, report(&host.host_id, 0)).await;
    // Whichever replica's background checker took the lease at start keeps it; make both
    // clocks jump past it together and race explicit passes.
    for cloud in [&first, &second] {
        cloud.clock.advance_secs(2 * 3600);
    }
    let (a, b) = tokio::join!(
        checker::pass(&first.state, grace),
        checker::pass(&second.state, grace)
    );
    assert!(a.ran != b.ran, "exactly one replica ran: {a:?} {b:?}");
    let (a, b) = tokio::join!(
        checker::pass(&first.state, grace),
        checker::pass(&second.state, grace)
    );
    assert!(a.ran != b.ran, "the holder keeps the lease: {a:?} {b:?}");
    assert_eq!(
        count(&events_of(&first, &host.host_id).await, "host_down"),
        1
    );
}

/// Ops waiting for this host, as `GET /api/v1/ops?host=…&status=pending_signature` shows.
async fn pending_ops_of(cloud: &TestCloud, host_id: &str) -> Vec<String> {
    let reply = call(
        cloud,
        &admin(cloud),
        "GET",
        &format!("/api/v1/ops?host={host_id}&status=pending_signature"),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let list = reply.body.get("ops").unwrap_or(&reply.body);
    list.as_array()
        .unwrap()
        .iter()
        .map(|op| op["op_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_same_destructive_edit_twice_keeps_one_pending_op() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    let op = pending_op(&cloud, &host).await;
    let path = format!("/api/v1/hosts/{}/desired-state", host.host_id);
    // The operator runs the same `desired set` again: the answer names the waiting op.
    let again = call(
        &cloud,
        &admin(&cloud),
        "PUT",
        &path,
        Some(json!({"desired_state": {}})),
    )
    .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["pending_ops"][0]["op_id"], json!(op));
    assert_eq!(again.body["pending_ops"].as_array().unwrap().len(), 1);
    assert_eq!(
        pending_ops_of(&cloud, &host.host_id).await,
        vec![op.clone()]
    );

    // Once that op is no longer in flight (expired), the same edit makes a new one.
    cloud.clock.advance_secs(8 * 86_400);
    checker::pass(&cloud.state, cloud.state.clock.now_ms()).await;
    let fresh = call(
        &cloud,
        &admin(&cloud),
        "PUT",
        &path,
        Some(json!({"desired_state": {}})),
    )
    .await;
    let fresh_id = fresh.body["pending_ops"][0]["op_id"].as_str().unwrap();
    assert_ne!(fresh_id, op);
    assert_eq!(
        pending_ops_of(&cloud, &host.host_id).await,
        vec![fresh_id.to_string()]
    );
}

/// The API's hosts listing is bounded: pages by a keyset cursor, says where the next page
/// starts (`x-next-after`) only when one follows, and the client walks every page.
#[tokio::test]
async fn the_hosts_listing_pages_by_cursor() {
    let cloud = TestCloud::spawn().await;
    let customer = customer(&cloud, json!({})).await;
    for n in 0..7 {
        let host = mftplus_store::NewHost {
            id: format!("h-api-{n}"),
            customer_id: customer.clone(),
            key_hash: format!("hash-api-{n}"),
            hostname: format!("box-{n}"),
            platform: None,
            agent_version: "0.1.0".into(),
            desired_json: "{}".into(),
            enrolled_at_ms: cloud.state.clock.now_ms(),
        };
        cloud.state.store.create_host(&host, 1000).await.unwrap();
    }
    let ids = |reply: &common::Reply| -> Vec<String> {
        reply
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["host_id"].as_str().unwrap().to_string())
            .collect()
    };
    let base = format!("/api/v1/hosts?customer={customer}&limit=3");
    let first = call(&cloud, &admin(&cloud), "GET", &base, None).await;
    assert_eq!(first.status, 200);
    assert_eq!(ids(&first), ["h-api-0", "h-api-1", "h-api-2"]);
    assert_eq!(first.headers["x-next-after"], "h-api-2");
    let last = call(
        &cloud,
        &admin(&cloud),
        "GET",
        &format!("{base}&after=h-api-5"),
        None,
    )
    .await;
    assert_eq!(ids(&last), ["h-api-6"]);
    assert!(
        last.headers.get("x-next-after").is_none(),
        "no page follows the last"
    );
    for bad in ["0", "1001"] {
        let refused = call(
            &cloud,
            &admin(&cloud),
            "GET",
            &format!("/api/v1/hosts?limit={bad}"),
            None,
        )
        .await;
        assert_eq!(
            (refused.status, refused.code()),
            (400, "validation_failed"),
            "limit={bad}"
        );
    }
    let client = mftplus_client::Client::new(
        &cloud.url,
        mftplus_client::Credential::ApiKey(cloud.admin_api_key.clone()),
    )
    .unwrap();
    let all = client.list_hosts(Some(&customer)).await.unwrap();
    assert_eq!(all.len(), 7);
}
