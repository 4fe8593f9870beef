//! Login, refresh with reuse detection, logout, renewal near expiry, failed-login throttling,
//! rate-limit headers, and RS256 with a JWKS and key rotation.

mod common;

use common::*;
use mftplus_cloud::testing::{TestCloud, TestOptions};
use serde_json::json;

const PASSWORD: &str = "a sufficiently long password";

async fn login_pair(cloud: &TestCloud, email: &str) -> serde_json::Value {
    let reply = call(
        cloud,
        &Cred::None,
        "POST",
        "/api/v1/auth/login",
        Some(json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let cloud = TestCloud::spawn().await;
    user_with_token(&cloud, "dana@example.com", "user").await;
    let pair = login_pair(&cloud, "dana@example.com").await;
    let first_access = Cred::Bearer(pair["access_token"].as_str().unwrap().into());

    let refreshed = refresh(&cloud, &pair["refresh_token"]).await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    let second_access = Cred::Bearer(refreshed.body["access_token"].as_str().unwrap().into());
    assert_eq!(
        call(&cloud, &second_access, "GET", "/api/v1/status", None)
            .await
            .status,
        200
    );

    // The old refresh token again: a stolen copy. The whole login is revoked.
    let replay = refresh(&cloud, &pair["refresh_token"]).await;
    assert_eq!((replay.status, replay.code()), (401, "token_reused"));
    for access in [&first_access, &second_access] {
        let reply = call(&cloud, access, "GET", "/api/v1/status", None).await;
        assert_eq!((reply.status, reply.code()), (401, "token_revoked"));
    }
    let again = refresh(&cloud, &refreshed.body["refresh_token"]).await;
    assert_eq!(again.status, 401);

    // An access token is not a refresh token.
    let wrong = refresh(&cloud, &pair["access_token"]).await;
    assert_eq!(wrong.status, 401);
}

#[tokio::test]
async fn refresh_token_is_not_an_access_token_and_logout_ends_the_session() {
    let cloud = TestCloud::spawn().await;
    user_with_token(&cloud, "erin@example.com", "user").await;
    let pair = login_pair(&cloud, "erin@example.com").await;
    let refresh_as_access = Cred::Bearer(pair["refresh_token"].as_str().unwrap().into());
    assert_eq!(
        call(&cloud, &refresh_as_access, "GET", "/api/v1/status", None)
            .await
            .status,
        401
    );

    let access = Cred::Bearer(pair["access_token"].as_str().unwrap().into());
    assert_eq!(
        call(&cloud, &access, "POST", "/api/v1/auth/logout", None)
            .await
            .status,
        204
    );
    assert_eq!(
        call(&cloud, &access, "GET", "/api/v1/status", None)
            .await
            .code(),
        "token_revoked"
    );
    let refused = refresh(&cloud, &pair["refresh_token"]).await;
    assert_eq!(refused.status, 401);
}

#[tokio::test]
async fn token_close_to_expiry_is_renewed() {
    let cloud = TestCloud::spawn().await;
    let (_, token) = user_with_token(&cloud, "fay@example.com", "user").await;
    let fresh = call(&cloud, &token, "GET", "/api/v1/status", None).await;
    assert!(fresh.headers.get("x-mftplus-renewed-token").is_none());

    // 3600 s lifetime, 300 s threshold: at 3400 s the token is renewed on use.
    cloud.clock.advance_secs(3400);
    let late = call(&cloud, &token, "GET", "/api/v1/status", None).await;
    assert_eq!(late.status, 200);
    let renewed = late
        .headers
        .get("x-mftplus-renewed-token")
        .expect("renewed token")
        .to_str()
        .unwrap()
        .to_string();
    cloud.clock.advance_secs(600);
    let expired = call(&cloud, &token, "GET", "/api/v1/status", None).await;
    assert_eq!((expired.status, expired.code()), (401, "token_expired"));
    assert_eq!(
        call(
            &cloud,
            &Cred::Bearer(renewed),
            "GET",
            "/api/v1/status",
            None
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn failed_logins_are_throttled_and_audited() {
    // A first delay longer than the test, so a slow machine still sees the throttle.
    let cloud =
        mftplus_cloud::testing::TestCloud::spawn_with(mftplus_cloud::testing::TestOptions {
            config_yaml: format!(
                "{}auth:\n  login:\n    base_delay_seconds: 60\n    account_max_delay_seconds: 60\n",
                mftplus_cloud::testing::TestOptions::default().config_yaml
            ),
            ..Default::default()
        })
        .await;
    user_with_token(&cloud, "gus@example.com", "user").await;
    for _ in 0..5 {
        let reply = call(
            &cloud,
            &Cred::None,
            "POST",
            "/api/v1/auth/login",
            Some(json!({"email": "gus@example.com", "password": "wrong password!!"})),
        )
        .await;
        assert_eq!((reply.status, reply.code()), (401, "invalid_credentials"));
    }
    // Now even the right password is refused from this address until its delay passes
    // (other addresses are not affected: tests/login_throttle.rs).
    let locked = call(
        &cloud,
        &Cred::None,
        "POST",
        "/api/v1/auth/login",
        Some(json!({"email": "gus@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!((locked.status, locked.code()), (429, "rate_limited"));
    let retry: u64 = locked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 900);
    cloud.clock.advance_secs(901);
    login_pair(&cloud, "gus@example.com").await;

    let audit = call(
        &cloud,
        &admin(&cloud),
        "GET",
        "/api/v1/audit?limit=1000",
        None,
    )
    .await;
    let events: Vec<&str> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events.iter().filter(|e| **e == "login_failed").count(), 5);
    assert!(events.contains(&"login_throttled") && events.contains(&"login_succeeded"));
    // Unknown accounts fail the same way.
    let ghost = call(
        &cloud,
        &Cred::None,
        "POST",
        "/api/v1/auth/login",
        Some(json!({"email": "ghost@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!((ghost.status, ghost.code()), (401, "invalid_credentials"));
}

#[tokio::test]
async fn rate_limit_answers_429_with_headers() {
    let cloud = TestCloud::spawn_with(TestOptions {
        config_yaml:
            "rate_limit:\n  per_credential_per_minute: 5\n  per_address_per_minute: 1000\n".into(),
        ..TestOptions::default()
    })
    .await;
    let key = Cred::ApiKey(api_key(&cloud, &admin(&cloud), Some("admin")).await.1);
    let (_, other) = user_with_token(&cloud, "hal@example.com", "user").await;
    let mut last = None;
    for expected_remaining in (0..5).rev() {
        let reply = call(&cloud, &key, "GET", "/api/v1/status", None).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.headers["x-ratelimit-limit"], "5");
        assert_eq!(
            reply.headers["x-ratelimit-remaining"],
            expected_remaining.to_string().as_str()
        );
        last = Some(reply);
    }
    assert!(last.unwrap().headers.contains_key("x-ratelimit-reset"));
    let limited = call(&cloud, &key, "GET", "/api/v1/status", None).await;
    assert_eq!((limited.status, limited.code()), (429, "rate_limited"));
    assert_eq!(limited.headers["x-ratelimit-remaining"], "0");
    // Another credential from the same address still has its own budget.
    assert_eq!(
        call(&cloud, &other, "GET", "/api/v1/status", None)
            .await
            .status,
        200
    );
}

/// Behind a trusted proxy that adds its own `X-Forwarded-For` line (HAProxy's `option
/// forwardfor`), the client's forged first line must not become its address: every request
/// below counts against the proxy's entry, 198.51.100.9.
#[tokio::test]
async fn a_forged_forwarded_for_line_before_the_proxys_does_not_escape_the_address_limit() {
    let cloud = TestCloud::spawn_with(TestOptions {
        config_yaml: "server:\n  trusted_proxies: [\"127.0.0.1\"]\nrate_limit:\n  \
                      per_credential_per_minute: 1000\n  per_address_per_minute: 3\n"
            .into(),
        ..TestOptions::default()
    })
    .await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for n in 0..5 {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.append("x-forwarded-for", format!("10.0.0.{n}").parse().unwrap());
        headers.append("x-forwarded-for", "198.51.100.9".parse().unwrap());
        let reply = http
            .get(format!("{}/api/v1/health", cloud.url))
            .headers(headers)
            .send()
            .await
            .unwrap();
        statuses.push(reply.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
}

fn openssl(args: &[&str]) {
    let status = std::process::Command::new("openssl")
        .args(args)
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?}");
}

fn rsa_pair(dir: &std::path::Path, name: &str) -> (String, String) {
    use std::os::unix::fs::PermissionsExt;
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    openssl(&[
        "genpkey",
        "-quiet",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        private.to_str().unwrap(),
    ]);
    openssl(&[
        "pkey",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    (private.display().to_string(), public.display().to_string())
}

#[tokio::test]
async fn rs256_with_jwks_and_key_rotation() {
    let keys = tempfile::tempdir().unwrap();
    let (old_private, old_public) = rsa_pair(keys.path(), "old");
    let (new_private, new_public) = rsa_pair(keys.path(), "new");
    let yaml = |private: &str, public: &str, previous: &[&str]| {
        format!(
            "auth:\n  jwt:\n    algorithm: RS256\n    private_key: {private}\n    public_key: {public}\n    previous_public_keys: [{}]\n",
            previous.join(", ")
        )
    };
    let db = keys.path().join("shared.db");
    let db_url = format!("sqlite://{}", db.display());

    let before = TestCloud::spawn_with(TestOptions {
        database_url: Some(db_url.clone()),
        config_yaml: yaml(&old_private, &old_public, &[]),
    })
    .await;
    let jwks = call(&before, &Cred::None, "GET", "/.well-known/jwks.json", None).await;
    assert_eq!(jwks.body["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks.body["keys"][0]["alg"], "RS256");
    let old_token = login(&before, &before.admin_email, &before.admin_password).await;
    assert_eq!(
        call(&before, &old_token, "GET", "/api/v1/status", None)
            .await
            .status,
        200
    );
    let password = before.admin_password.clone();
    before.stop().await;

    // Rotate: new signing key, old public key kept for verification. Sessions survive.
    let after = TestCloud::spawn_with(TestOptions {
        database_url: Some(db_url),
        config_yaml: yaml(&new_private, &new_public, &[&old_public]),
    })
    .await;
    let jwks = call(&after, &Cred::None, "GET", "/.well-known/jwks.json", None).await;
    assert_eq!(jwks.body["keys"].as_array().unwrap().len(), 2);
    assert_eq!(
        call(&after, &old_token, "GET", "/api/v1/status", None)
            .await
            .status,
        200
    );
    let new_token = login(&after, "admin@example.com", &password).await;
    let Cred::Bearer(raw) = &new_token else {
        unreachable!()
    };
    let header = jsonwebtoken::decode_header(raw).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(
        Some(header.kid.unwrap().as_str()),
        jwks.body["keys"][0]["kid"].as_str()
    );
    assert_eq!(
        call(&after, &new_token, "GET", "/api/v1/status", None)
            .await
            .status,
        200
    );

    // An HS256 token forged with the public key as secret (algorithm confusion) is refused.
    let forged = forge_jwt(
        json!({"sub": "x", "iss": "mftplus-server", "aud": "mftplus-api", "exp": now_secs() + 60, "nbf": now_secs(), "iat": now_secs(), "jti": "j", "role": "admin", "typ": "access", "fam": "f"}),
    );
    assert_eq!(
        call(&after, &Cred::Bearer(forged), "GET", "/api/v1/status", None)
            .await
            .status,
        401
    );
}
