//! The audit trail records security events and detects tampering; `config get` never leaks a
//! secret; API-key lifecycle jobs (inactivity revocation, expiry warnings).

mod common;

use common::*;
use mftplus_cloud::testing::{TestCloud, TEST_JWT_SECRET};
use mftplus_types::api::AuditEntry;
use serde_json::json;

async fn entries(cloud: &TestCloud) -> Vec<AuditEntry> {
    let reply = call(
        cloud,
        &admin(cloud),
        "GET",
        "/api/v1/audit?limit=1000",
        None,
    )
    .await;
    serde_json::from_value(reply.body["entries"].clone()).unwrap()
}

#[tokio::test]
async fn security_events_are_chained_and_tampering_is_found() {
    let cloud = TestCloud::spawn().await;
    let (_, user) = user_with_token(&cloud, "ivy@example.com", "user").await;
    let denied = call(&cloud, &user, "GET", "/api/v1/users", None).await;
    assert_eq!(denied.status, 403);
    let (key_id, _) = api_key(&cloud, &admin(&cloud), Some("readonly")).await;
    call(
        &cloud,
        &admin(&cloud),
        "POST",
        &format!("/api/v1/apikeys/{key_id}/rotate"),
        None,
    )
    .await;
    call(
        &cloud,
        &admin(&cloud),
        "PATCH",
        "/api/v1/users/ivy@example.com",
        Some(json!({"role": "operator"})),
    )
    .await;
    call(
        &cloud,
        &Cred::ApiKey(mftplus_crypto::generate_api_key()),
        "GET",
        "/api/v1/status",
        None,
    )
    .await;

    let log = entries(&cloud).await;
    let events: Vec<&str> = log.iter().map(|e| e.event.as_str()).collect();
    for expected in [
        "user_created",
        "login_succeeded",
        "access_denied",
        "apikey_created",
        "apikey_rotated",
        "role_changed",
        "auth_failed",
    ] {
        assert!(
            events.contains(&expected),
            "{expected} missing from {events:?}"
        );
    }
    let denied_entry = log.iter().find(|e| e.event == "access_denied").unwrap();
    assert_eq!(
        (denied_entry.actor.as_str(), denied_entry.outcome.as_str()),
        ("ivy@example.com", "denied")
    );
    mftplus_crypto::audit::verify_run(None, &log).expect("intact chain");

    // The CSV export carries the same entries.
    let csv = call(
        &cloud,
        &admin(&cloud),
        "GET",
        "/api/v1/audit/export?format=csv",
        None,
    )
    .await;
    let text = csv.body.as_str().unwrap();
    assert!(text.starts_with("seq,time,ts_ms,event"));
    assert!(text.lines().count() > log.len());

    // Tamper with a row behind the server's back: the trigger stops a plain UPDATE...
    let db = cloud.state.config.config.database.url.clone().unwrap();
    let path = db.expose().trim_start_matches("sqlite://").to_string();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let target = log[3].seq;
    assert!(conn
        .execute(
            "UPDATE audit_log SET actor = 'mallory' WHERE seq = ?1",
            [target]
        )
        .is_err());
    // ...so an attacker with the file drops it first. Verification names the entry.
    let triggers: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for trigger in triggers {
        conn.execute(&format!("DROP TRIGGER {trigger}"), [])
            .unwrap();
    }
    conn.execute(
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = ?1",
        [target],
    )
    .unwrap();
    let broken = mftplus_crypto::audit::verify_run(None, &entries(&cloud).await).unwrap_err();
    assert_eq!(broken.seq, target);
}

#[tokio::test]
async fn config_get_shows_values_and_never_secrets() {
    let cloud = TestCloud::spawn().await;
    let key = admin(&cloud);
    let issuer = call(
        &cloud,
        &key,
        "GET",
        "/api/v1/server-config/auth.jwt.issuer",
        None,
    )
    .await;
    assert_eq!(issuer.body["value"], "mftplus-server");
    assert_eq!(issuer.body["source"], "default");
    let enabled = call(
        &cloud,
        &key,
        "GET",
        "/api/v1/server-config/encryption.enabled",
        None,
    )
    .await;
    assert_eq!(enabled.body["value"], true);
    let rbac = call(
        &cloud,
        &key,
        "GET",
        "/api/v1/server-config/rbac.enabled",
        None,
    )
    .await;
    assert_eq!(rbac.body["value"], true);

    let secret = call(
        &cloud,
        &key,
        "GET",
        "/api/v1/server-config/auth.jwt.secret",
        None,
    )
    .await;
    assert_eq!(secret.body["secret"], true);
    assert!(secret.body["value"].is_null());
    assert_eq!(secret.body["display"], "set (from env JWT_SECRET)");
    for section in ["auth", "auth.jwt", "database", "database.url", "encryption"] {
        let reply = call(
            &cloud,
            &key,
            "GET",
            &format!("/api/v1/server-config/{section}"),
            None,
        )
        .await;
        assert_eq!(reply.status, 200, "{section}");
        let text = reply.body.to_string();
        assert!(
            !text.contains(TEST_JWT_SECRET),
            "{section} leaks the JWT secret: {text}"
        );
        assert!(
            !text.contains("cloud.db"),
            "{section} leaks the database URL: {text}"
        );
    }
}

#[tokio::test]
async fn inactive_keys_are_revoked_and_expiring_keys_warned() {
    let cloud = TestCloud::spawn().await;
    let (_, user) = user_with_token(&cloud, "jo@example.com", "user").await;
    let (used_id, used_key) = api_key(&cloud, &user, Some("user")).await;
    let (idle_id, _) = api_key(&cloud, &user, Some("user")).await;

    // 29 days later the used key is used; at 31 days the idle one is revoked, the used one not.
    cloud.clock.advance_secs(29 * 86_400);
    assert_eq!(
        call(
            &cloud,
            &Cred::ApiKey(used_key.clone()),
            "GET",
            "/api/v1/status",
            None
        )
        .await
        .status,
        200
    );
    cloud.clock.advance_secs(2 * 86_400);
    mftplus_cloud::jobs::housekeep(&cloud.state).await;
    let idle = cloud
        .state
        .store
        .get_api_key(&idle_id)
        .await
        .unwrap()
        .unwrap();
    assert!(idle.revoked_at_ms.is_some());
    let used = cloud
        .state
        .store
        .get_api_key(&used_id)
        .await
        .unwrap()
        .unwrap();
    assert!(used.revoked_at_ms.is_none() && used.last_used_at_ms.is_some());
    // (The test admin key has expired by now, so the log is read from the store.)
    let log = cloud.state.store.list_audit(0, 1000).await.unwrap();
    assert!(log
        .iter()
        .any(|e| e.event == "apikey_auto_revoked" && e.target == idle_id));

    // Default lifetime is 90 days: at day 85 the key is inside the 7-day warning window.
    cloud.clock.advance_secs(54 * 86_400);
    let used_key = Cred::ApiKey(used_key);
    let status = call(&cloud, &used_key, "GET", "/api/v1/status", None).await;
    let warnings = status.body["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("expires in")),
        "{warnings:?}"
    );
    let listed = call(
        &cloud,
        &used_key,
        "GET",
        &format!("/api/v1/apikeys/{used_id}"),
        None,
    )
    .await;
    assert_eq!(listed.body["status"], "expiring_soon");
}
