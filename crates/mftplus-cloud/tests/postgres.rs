//! The cloud end to end on PostgreSQL: the same server, the backend picked from the URL.

mod common;

use common::*;
use mftplus_cloud::testing::{TestCloud, TestOptions};
use serde_json::json;

#[tokio::test]
async fn cloud_runs_on_postgres() {
    let Some(db) = mftplus_store_postgres::testing::fresh_database().await else {
        return;
    };
    let cloud = TestCloud::spawn_with(TestOptions {
        database_url: Some(db.url().to_string()),
        ..TestOptions::default()
    })
    .await;
    let health = call(&cloud, &Cred::None, "GET", "/api/v1/health", None).await;
    assert_eq!(health.body["database"]["backend"], "postgres");
    assert_eq!(health.body["database"]["status"], "ok");
    let (_, user) = user_with_token(&cloud, "pg@example.com", "user").await;
    let (key_id, key) = api_key(&cloud, &user, Some("readonly")).await;
    assert_eq!(
        call(
            &cloud,
            &Cred::ApiKey(key.clone()),
            "GET",
            "/api/v1/status",
            None
        )
        .await
        .status,
        200
    );
    assert_eq!(
        call(
            &cloud,
            &Cred::ApiKey(key.clone()),
            "POST",
            "/api/v1/apikeys",
            Some(json!({"name": "x"}))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        call(
            &cloud,
            &user,
            "DELETE",
            &format!("/api/v1/apikeys/{key_id}"),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        call(&cloud, &Cred::ApiKey(key), "GET", "/api/v1/status", None)
            .await
            .status,
        401
    );
    let log = call(
        &cloud,
        &admin(&cloud),
        "GET",
        "/api/v1/audit?limit=1000",
        None,
    )
    .await;
    let entries: Vec<mftplus_types::api::AuditEntry> =
        serde_json::from_value(log.body["entries"].clone()).unwrap();
    mftplus_crypto::audit::verify_run(None, &entries).expect("chain intact on postgres");
    cloud.stop().await;
}

/// PostgreSQL cannot hold a NUL in text: such input is the caller's mistake (400), never a
/// server error, wherever it reaches a query.
#[tokio::test]
async fn a_nul_character_is_refused_not_a_server_error() {
    let Some(db) = mftplus_store_postgres::testing::fresh_database().await else {
        return;
    };
    let cloud = TestCloud::spawn_with(TestOptions {
        database_url: Some(db.url().to_string()),
        ..TestOptions::default()
    })
    .await;
    for path in ["/api/v1/hosts?after=%00", "/api/v1/customers?after=a%00b"] {
        let reply = call(&cloud, &admin(&cloud), "GET", path, None).await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, "validation_failed"),
            "{path}: {:?}",
            reply.body
        );
    }
}
