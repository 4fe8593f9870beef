//! The first administrator and passwords (issue 14, decision 0017): `Cloud::init_first_admin`
//! works once, a person changes their own password (wrong current counted like a failed
//! sign-in, the policy applied, every other session revoked), an administrator resets
//! someone's password, and nobody else may.

mod common;

use common::*;
use mftplus_cloud::clock::SystemClock;
use mftplus_cloud::server::{Cloud, CloudError};
use mftplus_cloud::testing::{TestCloud, TestOptions, TEST_JWT_SECRET};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const PASSWORD: &str = "a sufficiently long password";
const NEW_PASSWORD: &str = "another quite long passphrase";

/// A cloud on a database no one has used, as `mftplus cloud init` finds it.
async fn empty_cloud(dir: &Path) -> Cloud {
    let env = BTreeMap::from([
        (
            "DATABASE_URL".to_string(),
            format!("sqlite://{}", dir.join("cloud.db").display()),
        ),
        ("JWT_SECRET".to_string(), TEST_JWT_SECRET.to_string()),
        (
            "MFTPLUS__TRANSFERS__BLOB_PATH".to_string(),
            dir.join("blobs").display().to_string(),
        ),
        (
            "MFTPLUS__CERTIFICATES__AUTHORITY__DIR".to_string(),
            dir.join("ca").display().to_string(),
        ),
    ]);
    let config = mftplus_cloud::config::load_from(None, &env).expect("config");
    Cloud::build(config, Arc::new(SystemClock))
        .await
        .expect("cloud builds")
}

async fn audit(cloud: &TestCloud) -> Vec<mftplus_store::AuditRow> {
    cloud.state.store.list_audit(0, 10_000).await.unwrap()
}

/// Signs in and returns the whole token pair.
async fn sign_in(cloud: &TestCloud, email: &str, password: &str) -> Reply {
    call(
        cloud,
        &Cred::None,
        "POST",
        "/api/v1/auth/login",
        Some(json!({"email": email, "password": password})),
    )
    .await
}

fn bearer(pair: &Value) -> Cred {
    Cred::Bearer(pair["access_token"].as_str().unwrap().to_string())
}

async fn change(cloud: &TestCloud, cred: &Cred, current: &str, new: &str) -> Reply {
    call(
        cloud,
        cred,
        "POST",
        "/api/v1/auth/password",
        Some(json!({"current_password": current, "new_password": new})),
    )
    .await
}

#[tokio::test]
async fn init_creates_the_first_admin_once() {
    let dir = tempfile::tempdir().unwrap();

    // Refusals on an empty database write nothing.
    let cloud = empty_cloud(dir.path()).await;
    let weak = cloud.init_first_admin("root@example.com", "short").await;
    assert!(
        matches!(&weak, Err(CloudError::InvalidInput(m)) if m.contains("12 characters")),
        "{weak:?}"
    );
    let bad_email = cloud.init_first_admin("not-an-email", PASSWORD).await;
    assert!(
        matches!(bad_email, Err(CloudError::InvalidInput(_))),
        "{bad_email:?}"
    );
    assert_eq!(cloud.state().store.count_users().await.unwrap(), 0);

    let admin = cloud
        .init_first_admin("Root@Example.com", PASSWORD)
        .await
        .expect("first init");
    assert_eq!(admin.email, "root@example.com");
    assert_eq!(admin.role, "admin");

    let again = cloud.init_first_admin("second@example.com", PASSWORD).await;
    match again {
        Err(CloudError::AdminExists(existing)) => assert_eq!(existing, "root@example.com"),
        other => panic!("second init: {other:?}"),
    }
    assert_eq!(cloud.state().store.count_users().await.unwrap(), 1);

    let entries = cloud.state().store.list_audit(0, 1000).await.unwrap();
    let boot: Vec<_> = entries
        .iter()
        .filter(|e| e.event == "admin_bootstrapped")
        .collect();
    assert_eq!(boot.len(), 1, "{entries:?}");
    assert_eq!(boot[0].actor, "system");
    assert_eq!(boot[0].target, "root@example.com");
    assert!(
        entries
            .iter()
            .all(|e| !e.details.to_string().contains(PASSWORD)),
        "a password reached the audit log"
    );
    drop(cloud);

    // The same database served: the new administrator signs in and may manage users.
    let served = TestCloud::spawn_with(TestOptions {
        database_url: Some(format!(
            "sqlite://{}",
            dir.path().join("cloud.db").display()
        )),
        ..TestOptions::default()
    })
    .await;
    let reply = sign_in(&served, "root@example.com", PASSWORD).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let users = call(&served, &bearer(&reply.body), "GET", "/api/v1/users", None).await;
    assert_eq!(users.status, 200, "{:?}", users.body);
}

#[tokio::test]
async fn an_admin_from_ensure_admin_blocks_init() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = empty_cloud(dir.path()).await;
    // `mftplus dev` and the tests make their admin this way; it keeps working, and counts.
    let (made, password) = cloud.ensure_admin("dev@example.com").await.unwrap();
    assert!(password.is_some());
    let (again, none) = cloud.ensure_admin("dev@example.com").await.unwrap();
    assert_eq!((again.id, none), (made.id, None));
    let refused = cloud.init_first_admin("root@example.com", PASSWORD).await;
    assert!(
        matches!(&refused, Err(CloudError::AdminExists(e)) if e == "dev@example.com"),
        "{refused:?}"
    );
    assert!(refused.unwrap_err().to_string().contains("already exists"));
    assert_eq!(cloud.state().store.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn changing_your_own_password() {
    let c = TestCloud::spawn().await;
    let (_, _) = user_with_token(&c, "alice@example.com", "user").await;
    let mine = sign_in(&c, "alice@example.com", PASSWORD).await.body;
    let other = sign_in(&c, "alice@example.com", PASSWORD).await.body;
    let me = bearer(&mine);

    // A wrong current password is 401 and changes nothing.
    let wrong = change(&c, &me, "not my password at all", NEW_PASSWORD).await;
    assert_eq!(wrong.status, 401, "{:?}", wrong.body);
    assert_eq!(wrong.code(), "invalid_credentials");
    // A weak new one is refused by the policy.
    let weak = change(&c, &me, PASSWORD, "short").await;
    assert_eq!(weak.status, 400, "{:?}", weak.body);
    assert_eq!(weak.code(), "weak_password");
    let repeated = change(&c, &me, PASSWORD, "aaaaaaaaaaaaaaaa").await;
    assert_eq!(repeated.code(), "weak_password");
    assert_eq!(sign_in(&c, "alice@example.com", PASSWORD).await.status, 200);

    let done = change(&c, &me, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    // The other session (access + refresh) and the one signed in just above.
    assert!(
        done.body["revoked_tokens"].as_u64().unwrap() >= 4,
        "{:?}",
        done.body
    );

    assert_eq!(sign_in(&c, "alice@example.com", PASSWORD).await.status, 401);
    assert_eq!(
        sign_in(&c, "alice@example.com", NEW_PASSWORD).await.status,
        200
    );
    // Every other session ends: its access token and its refresh token.
    let stale = call(&c, &bearer(&other), "GET", "/api/v1/auth/whoami", None).await;
    assert_eq!(stale.status, 401, "{:?}", stale.body);
    assert_eq!(stale.code(), "token_revoked");
    let stale_refresh = refresh(&c, &other["refresh_token"]).await;
    assert_eq!(stale_refresh.status, 401, "{:?}", stale_refresh.body);
    // The caller's own session stays.
    assert_eq!(
        call(&c, &me, "GET", "/api/v1/auth/whoami", None)
            .await
            .status,
        200
    );
    assert_eq!(refresh(&c, &mine["refresh_token"]).await.status, 200);

    let entries = audit(&c).await;
    let changed: Vec<_> = entries
        .iter()
        .filter(|e| e.event == "password_changed")
        .collect();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].actor, "alice@example.com");
    // A wrong current password is a failed password check like a sign-in's, said so.
    assert!(entries.iter().any(|e| e.event == "login_failed"
        && e.outcome == "failure"
        && e.details["purpose"] == "password_change"));
    for entry in &entries {
        let details = entry.details.to_string();
        assert!(
            !details.contains(PASSWORD) && !details.contains(NEW_PASSWORD),
            "a password reached the audit log: {entry:?}"
        );
    }
}

#[tokio::test]
async fn a_wrong_current_password_counts_as_a_failed_sign_in() {
    let c = TestCloud::spawn_with(TestOptions {
        config_yaml: "rate_limit:\n  per_credential_per_minute: 100000\n  \
                      per_address_per_minute: 100000\nauth:\n  login:\n    max_failures: 2\n    \
                      base_delay_seconds: 600\n    account_max_delay_seconds: 600\n"
            .into(),
        ..TestOptions::default()
    })
    .await;
    let (_, alice) = user_with_token(&c, "alice@example.com", "user").await;
    for _ in 0..2 {
        let wrong = change(&c, &alice, "not my password at all", NEW_PASSWORD).await;
        assert_eq!(wrong.status, 401, "{:?}", wrong.body);
    }
    // The same (account, address) now waits, for a change and for a sign-in alike.
    let held = change(&c, &alice, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(held.status, 429, "{:?}", held.body);
    assert_eq!(held.code(), "rate_limited");
    let login = sign_in(&c, "alice@example.com", PASSWORD).await;
    assert_eq!(login.status, 429, "{:?}", login.body);
}

#[tokio::test]
async fn api_keys_cannot_change_a_password() {
    let c = TestCloud::spawn().await;
    let (_, alice) = user_with_token(&c, "alice@example.com", "user").await;
    let (_, key) = api_key(&c, &alice, Some("user")).await;
    let reply = change(&c, &Cred::ApiKey(key), PASSWORD, NEW_PASSWORD).await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);
    assert_eq!(reply.code(), "forbidden");
    assert_eq!(sign_in(&c, "alice@example.com", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn an_admin_resets_a_password() {
    let c = TestCloud::spawn().await;
    let (alice_id, alice) = user_with_token(&c, "alice@example.com", "user").await;
    let (_, bob) = user_with_token(&c, "bob@example.com", "user").await;
    let (_, readonly) = user_with_token(&c, "ro@example.com", "readonly").await;
    let path = format!("/api/v1/users/{alice_id}/password");

    for (who, cred) in [("a user", &bob), ("readonly", &readonly)] {
        let reply = call(
            &c,
            cred,
            "POST",
            &path,
            Some(json!({"password": NEW_PASSWORD})),
        )
        .await;
        assert_eq!(reply.status, 403, "{who}: {:?}", reply.body);
        assert_eq!(reply.code(), "forbidden");
    }
    let weak = call(
        &c,
        &admin(&c),
        "POST",
        &path,
        Some(json!({"password": "short"})),
    )
    .await;
    assert_eq!(weak.code(), "weak_password", "{:?}", weak.body);

    // Generated: shown once, the old password and sessions end.
    let generated = call(&c, &admin(&c), "POST", &path, Some(json!({}))).await;
    assert_eq!(generated.status, 200, "{:?}", generated.body);
    let password = generated.body["generated_password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(generated.body["user"]["email"], "alice@example.com");
    assert_eq!(generated.body["user"]["role"], "user");
    assert_eq!(sign_in(&c, "alice@example.com", PASSWORD).await.status, 401);
    assert_eq!(
        sign_in(&c, "alice@example.com", &password).await.status,
        200
    );
    let stale = call(&c, &alice, "GET", "/api/v1/auth/whoami", None).await;
    assert_eq!(stale.code(), "token_revoked", "{:?}", stale.body);

    // Chosen by the admin, by email.
    let chosen = call(
        &c,
        &admin(&c),
        "POST",
        "/api/v1/users/alice@example.com/password",
        Some(json!({"password": NEW_PASSWORD})),
    )
    .await;
    assert_eq!(chosen.status, 200, "{:?}", chosen.body);
    assert!(chosen.body["generated_password"].is_null());
    assert_eq!(
        sign_in(&c, "alice@example.com", NEW_PASSWORD).await.status,
        200
    );

    let entries = audit(&c).await;
    let resets: Vec<_> = entries
        .iter()
        .filter(|e| e.event == "password_reset")
        .collect();
    assert_eq!(resets.len(), 2);
    assert!(resets
        .iter()
        .all(|e| e.actor == "admin@example.com" && e.target == "alice@example.com"));
    for entry in &entries {
        let details = entry.details.to_string();
        assert!(!details.contains(&password) && !details.contains(NEW_PASSWORD));
    }
}

/// A reset skips the current password, so it is never a way to change one's own: an admin
/// whose session was stolen cannot be locked out by it.
#[tokio::test]
async fn nobody_resets_their_own_password() {
    let c = TestCloud::spawn().await;
    let (boss_id, boss) = user_with_token(&c, "boss@example.com", "admin").await;
    let reply = call(
        &c,
        &boss,
        "POST",
        &format!("/api/v1/users/{boss_id}/password"),
        Some(json!({"password": NEW_PASSWORD})),
    )
    .await;
    assert_eq!(
        (reply.status, reply.code()),
        (403, "forbidden"),
        "{:?}",
        reply.body
    );
    assert!(reply.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("current one"));
    assert_eq!(
        sign_in(&c, "boss@example.com", PASSWORD).await.status,
        200,
        "unchanged"
    );
}
