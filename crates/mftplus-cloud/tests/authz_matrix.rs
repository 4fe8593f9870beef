//! The authorization matrix, generated from the route table: for every route, every kind of bad
//! credential is refused with the right status and code, a role without the permission gets 403,
//! another user's `:own` resource stays invisible, and the allowed principal succeeds.

mod authz_sharing;
mod common;
mod fleet_support;
mod host_transfer_support;
mod hub_support;
mod link_support;
mod request_support;

use authz_sharing::{link_fixture, request_fixture};
use common::*;
use mftplus_cloud::routes::{Access, ROUTES};
use mftplus_cloud::testing::TestCloud;
use mftplus_store::NewApiKey;
use serde_json::{json, Value};

struct World {
    cloud: TestCloud,
    alice_id: String,
    bob: Cred,
    by_role: Vec<(&'static str, Cred)>,
}

async fn world() -> World {
    let cloud = TestCloud::spawn().await;
    let (alice_id, _) = user_with_token(&cloud, "alice@example.com", "user").await;
    let (_, bob) = user_with_token(&cloud, "bob@example.com", "user").await;
    let (_, readonly) = user_with_token(&cloud, "ro@example.com", "readonly").await;
    let (_, operator) = user_with_token(&cloud, "op@example.com", "operator").await;
    let by_role = vec![
        ("readonly", readonly),
        ("user", bob.clone()),
        ("operator", operator),
    ];
    World {
        cloud,
        alice_id,
        bob,
        by_role,
    }
}

/// A request body: JSON, or raw bytes with headers (chunk uploads).
enum Body {
    Json(Option<Value>),
    Raw(Vec<u8>, Vec<(String, String)>),
}

async fn send(w: &World, cred: &Cred, method: &str, (path, body): (String, Body)) -> Reply {
    match body {
        Body::Json(json) => call(&w.cloud, cred, method, &path, json).await,
        Body::Raw(bytes, headers) => call_raw(&w.cloud, cred, method, &path, bytes, &headers).await,
    }
}

/// A request for the route, acting on fresh resources owned by alice so destructive routes can
/// be called repeatedly. Every route in the table must have one.
async fn fixture(w: &World, id: &str) -> (String, Body) {
    if let Some(request) = link_fixture(w, id).await {
        return request;
    }
    if let Some(request) = request_fixture(w, id).await {
        return request;
    }
    if let Some(request) = transfer_fixture(w, id).await {
        return request;
    }
    if let Some((path, json)) = fleet_fixture(w, id).await {
        return (path, Body::Json(json));
    }
    if let Some((path, json)) = hub_fixture(w, id).await {
        return (path, Body::Json(json));
    }
    let (path, json) = json_fixture(w, id).await;
    (path, Body::Json(json))
}

async fn transfer_fixture(w: &World, id: &str) -> Option<(String, Body)> {
    if !(id.starts_with("transfer") || id.ends_with("_key_put") || id == "user_key_get") {
        return None;
    }
    let c = &w.cloud;
    let alice = alice(w).await;
    let json = |path: String, body: Option<Value>| Some((path, Body::Json(body)));
    match id {
        "my_key_put" => {
            let key = mftplus_crypto::stream::X25519SecretKey::generate().unwrap();
            json(
                "/api/v1/users/me/key".into(),
                Some(json!({"public_key": key.public_key().to_encoded()})),
            )
        }
        "user_key_get" => {
            let key = mftplus_crypto::stream::X25519SecretKey::generate().unwrap();
            let body = json!({"public_key": key.public_key().to_encoded()});
            assert_eq!(
                call(c, &alice, "PUT", "/api/v1/users/me/key", Some(body))
                    .await
                    .status,
                200
            );
            json("/api/v1/users/alice@example.com/key".into(), None)
        }
        "transfers_create" => {
            let (header, chunk_size) = stream_header();
            json(
                "/api/v1/transfers".into(),
                Some(
                    json!({"recipients": ["admin@example.com"], "header": header, "chunk_size": chunk_size}),
                ),
            )
        }
        "transfer_chunk_put" => {
            let transfer = new_transfer(c, &alice, "admin@example.com").await;
            let bytes = b"sealed".to_vec();
            let headers = vec![
                (
                    "x-chunk-sha256".to_string(),
                    mftplus_crypto::sha256_hex(&bytes),
                ),
                ("x-chunk-last".to_string(), "true".to_string()),
            ];
            Some((
                format!("/api/v1/transfers/{transfer}/chunks/0"),
                Body::Raw(bytes, headers),
            ))
        }
        "transfer_chunks" => json(
            format!(
                "/api/v1/transfers/{}/chunks",
                new_transfer(c, &alice, "admin@example.com").await
            ),
            None,
        ),
        "transfer_complete" => {
            let transfer = new_transfer(c, &alice, "admin@example.com").await;
            assert_eq!(
                put_chunk(c, &alice, &transfer, 0, b"sealed", true)
                    .await
                    .status,
                201
            );
            json(
                format!("/api/v1/transfers/{transfer}/complete"),
                Some(json!({"manifest": "bWFuaWZlc3Q="})),
            )
        }
        "transfers_list" => json("/api/v1/transfers".into(), None),
        "transfers_pending_grants" => json("/api/v1/transfers/grants".into(), None),
        "transfer_grant" => {
            let w = waiting_transfer(c, &alice, &admin(c), "admin@example.com").await;
            json(format!("/api/v1/transfers/{}/grants", w.id), Some(w.grant))
        }
        "transfer_show" | "transfer_header" | "transfer_chunk_get" | "transfer_manifest"
        | "transfer_stream" | "transfer_verify" | "transfer_received" | "transfer_cancel" => {
            let transfer = complete_transfer(c, &alice, "admin@example.com").await;
            let path = match id {
                "transfer_show" => format!("/api/v1/transfers/{transfer}"),
                "transfer_header" => format!("/api/v1/transfers/{transfer}/header"),
                "transfer_chunk_get" => format!("/api/v1/transfers/{transfer}/chunks/0"),
                "transfer_manifest" => format!("/api/v1/transfers/{transfer}/manifest"),
                "transfer_stream" => format!("/api/v1/transfers/{transfer}/stream"),
                "transfer_verify" => format!("/api/v1/transfers/{transfer}/verify"),
                "transfer_received" => format!("/api/v1/transfers/{transfer}/received"),
                _ => format!("/api/v1/transfers/{transfer}/cancel"),
            };
            json(path, None)
        }
        _ => None,
    }
}

/// Operator routes of the fleet; each destructive one acts on a fresh customer or host.
async fn fleet_fixture(w: &World, id: &str) -> Option<(String, Option<Value>)> {
    use fleet_support::*;
    let c = &w.cloud;
    let fresh_customer = || async { customer(c, json!({})).await };
    let request = match id {
        "customers_list" => ("/api/v1/customers".into(), None),
        "customers_create" => (
            "/api/v1/customers".into(),
            Some(json!({"id": unique("c"), "name": "Új Ügyfél", "email": "uj@example.com"})),
        ),
        "customers_get"
        | "customers_update"
        | "customers_delete"
        | "customer_block"
        | "customer_unblock"
        | "customer_retrieval_password_reset"
        | "customer_trigger_update"
        | "customer_geo_remove_all" => {
            let customer = fresh_customer().await;
            let path = match id {
                "customer_block" => format!("/api/v1/customers/{customer}/block"),
                "customer_unblock" => format!("/api/v1/customers/{customer}/unblock"),
                "customer_retrieval_password_reset" => {
                    format!("/api/v1/customers/{customer}/retrieval-password/reset")
                }
                "customer_trigger_update" => format!("/api/v1/customers/{customer}/trigger-update"),
                "customer_geo_remove_all" => format!("/api/v1/customers/{customer}/geo/remove-all"),
                _ => format!("/api/v1/customers/{customer}"),
            };
            let body = (id == "customers_update").then(|| json!({"name": "Kovács és Társa Kft"}));
            (path, body)
        }
        "hosts_list" => ("/api/v1/hosts".into(), None),
        "guests_list" => ("/api/v1/guests".into(), None),
        "ops_list" => ("/api/v1/ops?status=pending_signature".into(), None),
        "events_list" => ("/api/v1/events?limit=5".into(), None),
        "notifications_list" => ("/api/v1/notifications".into(), None),
        "hosts_get"
        | "host_desired_get"
        | "host_reports"
        | "host_desired_diff"
        | "host_desired_put"
        | "host_recovery_arm"
        | "host_recovery_disarm"
        | "host_key_rotation_request" => {
            let host = enroll(c).await;
            let h = &host.host_id;
            match id {
                "hosts_get" => (format!("/api/v1/hosts/{h}"), None),
                "host_desired_get" => (format!("/api/v1/hosts/{h}/desired-state"), None),
                "host_reports" => (format!("/api/v1/hosts/{h}/reports"), None),
                "host_desired_diff" => (
                    format!("/api/v1/hosts/{h}/desired-state/diff"),
                    Some(json!({"desired_state": {"guests": {"web": web_guest()}}})),
                ),
                "host_desired_put" => (
                    format!("/api/v1/hosts/{h}/desired-state"),
                    Some(json!({"desired_state": {"guests": {"web": web_guest()}}})),
                ),
                "host_recovery_arm" => (
                    format!("/api/v1/hosts/{h}/recovery"),
                    Some(json!({"ttl_seconds": 300})),
                ),
                "host_key_rotation_request" => (format!("/api/v1/hosts/{h}/key/rotation"), None),
                _ => (format!("/api/v1/hosts/{h}/recovery"), None),
            }
        }
        // A sender looks a host's transfer key up (decision 0029).
        "host_transfer_key_get" => {
            let host = enroll(c).await;
            host_transfer_support::register_key(c, &host).await;
            (format!("/api/v1/hosts/{}/transfer-key", host.host_id), None)
        }
        "certificates_list" => ("/api/v1/certificates".into(), None),
        "certificates_issue" | "certificate_revoke" => {
            let host = enroll(c).await;
            let (_, csr) = mftplus_pki::ca::new_key_and_csr("matrix").unwrap();
            let body = json!({"csr": csr, "subject": format!("host:{}", host.host_id)});
            if id == "certificates_issue" {
                ("/api/v1/certificates".into(), Some(body))
            } else {
                let issued = call(c, &admin(c), "POST", "/api/v1/certificates", Some(body)).await;
                assert_eq!(issued.status, 201, "{:?}", issued.body);
                let serial = issued.body["serial"].as_str().unwrap();
                (
                    format!("/api/v1/certificates/{serial}/revoke"),
                    Some(json!({"reason": "matrix"})),
                )
            }
        }
        "ops_get" | "op_sign" => {
            let host = enroll(c).await;
            let op = pending_op(c, &host).await;
            if id == "ops_get" {
                (format!("/api/v1/ops/{op}"), None)
            } else {
                let signature = signature_for(c, &op).await;
                (
                    format!("/api/v1/ops/{op}/signature"),
                    Some(json!({"signature": signature})),
                )
            }
        }
        _ => return None,
    };
    Some(request)
}

/// Operator routes over edge hubs and deploy keys; revocation acts on a fresh key.
async fn hub_fixture(w: &World, id: &str) -> Option<(String, Option<Value>)> {
    use hub_support::*;
    let c = &w.cloud;
    let request = match id {
        "hubs_list" => ("/api/v1/hubs".into(), None),
        "hubs_get" => {
            let (_, hub_id) = registered_hub(c).await;
            (format!("/api/v1/hubs/{hub_id}"), None)
        }
        "deploy_keys_list" => ("/api/v1/hubs/deploy-keys".into(), None),
        "deploy_keys_create" => (
            "/api/v1/hubs/deploy-keys".into(),
            Some(json!({"label": "jhb-hub-prod"})),
        ),
        "deploy_keys_revoke" => {
            let key = deploy_key(c, "to-revoke").await;
            (format!("/api/v1/hubs/deploy-keys/{}", key.id), None)
        }
        "deploy_keys_rotate" => {
            let key = deploy_key(c, "to-rotate").await;
            (
                format!("/api/v1/hubs/deploy-keys/{}/rotate", key.id),
                Some(json!({"grace_seconds": 60})),
            )
        }
        _ => return None,
    };
    Some(request)
}

async fn json_fixture(w: &World, id: &str) -> (String, Option<Value>) {
    let c = &w.cloud;
    match id {
        "health" => ("/health".into(), None),
        "ca_roots" => ("/api/v1/ca/roots".into(), None),
        "ca_crl" => ("/api/v1/ca/crl".into(), None),
        "ca_status" => ("/api/v1/ca".into(), None),
        "ca_rotate" => ("/api/v1/ca/rotate".into(), None),
        "ca_retire" => ("/api/v1/ca/retire".into(), Some(json!({"force": true}))),
        "api_health" => ("/api/v1/health".into(), None),
        "jwks" => ("/.well-known/jwks.json".into(), None),
        "openapi" => ("/api/v1/openapi.json".into(), None),
        "auth_login" => (
            "/api/v1/auth/login".into(),
            Some(json!({"email": "alice@example.com", "password": "a sufficiently long password"})),
        ),
        "auth_refresh" => {
            let pair = call(c, &Cred::None, "POST", "/api/v1/auth/login", Some(json!({"email": "alice@example.com", "password": "a sufficiently long password"}))).await;
            (
                "/api/v1/auth/refresh".into(),
                Some(json!({"refresh_token": pair.body["refresh_token"]})),
            )
        }
        "auth_logout" => ("/api/v1/auth/logout".into(), None),
        "status" => ("/api/v1/status".into(), None),
        "auth_whoami" => ("/api/v1/auth/whoami".into(), None),
        // Alice "changes" her password to the same one, so later fixtures can still sign in.
        "auth_password" => (
            "/api/v1/auth/password".into(),
            Some(json!({
                "current_password": "a sufficiently long password",
                "new_password": "a sufficiently long password",
            })),
        ),
        "users_password" => (
            "/api/v1/users/alice@example.com/password".into(),
            Some(json!({"password": "a sufficiently long password"})),
        ),
        "tokens_list" => ("/api/v1/auth/tokens?user=alice@example.com".into(), None),
        "tokens_create" => (
            "/api/v1/auth/tokens".into(),
            Some(json!({"user": "alice@example.com", "role": "user"})),
        ),
        "tokens_revoke" => {
            let token = fresh_alice_token(w).await;
            (format!("/api/v1/auth/tokens/{token}"), None)
        }
        "user_tokens_revoke" => ("/api/v1/users/alice@example.com/tokens".into(), None),
        "users_list" => ("/api/v1/users".into(), None),
        "users_create" => {
            let n = uuid::Uuid::new_v4().simple().to_string();
            (
                "/api/v1/users".into(),
                Some(json!({"email": format!("new-{n}@example.com"), "role": "readonly"})),
            )
        }
        "users_get" => (format!("/api/v1/users/{}", w.alice_id), None),
        "users_update" => (
            "/api/v1/users/alice@example.com".into(),
            Some(json!({"name": "Alice A."})),
        ),
        "users_delete" => {
            let n = uuid::Uuid::new_v4().simple().to_string();
            let reply = call(c, &admin(c), "POST", "/api/v1/users", Some(json!({"email": format!("gone-{n}@example.com"), "role": "readonly", "type": "service"}))).await;
            (
                format!(
                    "/api/v1/users/{}",
                    reply.body["user"]["id"].as_str().unwrap()
                ),
                None,
            )
        }
        "apikeys_list" => ("/api/v1/apikeys".into(), None),
        "apikeys_create" => (
            "/api/v1/apikeys".into(),
            Some(json!({"name": "matrix", "role": "readonly", "expires": "1d"})),
        ),
        "apikeys_resolve" => {
            let (_, key) = api_key(c, &alice(w).await, Some("readonly")).await;
            ("/api/v1/apikeys/resolve".into(), Some(json!({"key": key})))
        }
        "apikeys_get" | "apikeys_delete" => {
            let (key_id, _) = api_key(c, &alice(w).await, Some("readonly")).await;
            (format!("/api/v1/apikeys/{key_id}"), None)
        }
        "apikeys_rotate" => {
            let (key_id, _) = api_key(c, &alice(w).await, Some("readonly")).await;
            (format!("/api/v1/apikeys/{key_id}/rotate"), None)
        }
        "server_config_get" => ("/api/v1/server-config/auth.jwt.issuer".into(), None),
        "audit_list" => ("/api/v1/audit?limit=5".into(), None),
        "audit_export" => ("/api/v1/audit/export?format=csv".into(), None),
        "audit_verify" => ("/api/v1/audit/verify".into(), None),
        other => panic!("route {other} has no fixture in the authorization matrix; add one"),
    }
}

/// A new session for alice: some routes revoke her tokens, so none is reused across routes.
async fn alice(w: &World) -> Cred {
    login(
        &w.cloud,
        "alice@example.com",
        "a sufficiently long password",
    )
    .await
}

async fn fresh_alice_token(w: &World) -> String {
    let reply = call(
        &w.cloud,
        &admin(&w.cloud),
        "POST",
        "/api/v1/auth/tokens",
        Some(json!({"user": "alice@example.com"})),
    )
    .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["info"]["token_id"].as_str().unwrap().to_string()
}

/// Routes where bob (role user, `:own` scope) aims at alice's resource.
fn cross_user_expectation(id: &str) -> Option<u16> {
    match id {
        "tokens_list" => Some(403),
        "tokens_revoke" | "user_tokens_revoke" | "users_get" | "apikeys_resolve"
        | "apikeys_get" | "apikeys_delete" | "apikeys_rotate" => Some(404),
        // Someone else's transfer is absent to a stranger.
        "transfer_grant" => Some(404),
        // Another user's transfer's links are absent to bob, and so is revoking one.
        "transfer_links_create" | "transfer_links_list" | "link_revoke" => Some(404),
        // Another user's file request is absent to bob.
        "file_request_revoke" => Some(404),
        _ => None,
    }
}

async fn bad_credentials(w: &World) -> Vec<(&'static str, Cred, &'static str)> {
    let c = &w.cloud;
    let now = now_secs();
    let expired_jwt = forge_jwt(json!({
        "sub": w.alice_id, "iss": "mftplus-server", "aud": "mftplus-api", "exp": now - 3600,
        "nbf": now - 7200, "iat": now - 7200, "jti": "expired-token", "role": "admin", "typ": "access", "fam": "f"
    }));
    let wrong_audience = forge_jwt(json!({
        "sub": w.alice_id, "iss": "mftplus-server", "aud": "someone-else", "exp": now + 3600,
        "nbf": now, "iat": now, "jti": "aud-token", "role": "admin", "typ": "access", "fam": "f"
    }));
    let (_, carol) = user_with_token(
        c,
        &format!("carol-{}@example.com", uuid::Uuid::new_v4().simple()),
        "admin",
    )
    .await;
    let status = call(c, &carol, "GET", "/api/v1/status", None).await;
    let carol_jti = status.body["principal"]["token_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        call(
            c,
            &admin(c),
            "DELETE",
            &format!("/api/v1/auth/tokens/{carol_jti}"),
            None
        )
        .await
        .status,
        204
    );

    let (revoked_id, revoked_key) = api_key(c, &admin(c), Some("admin")).await;
    assert_eq!(
        call(
            c,
            &admin(c),
            "DELETE",
            &format!("/api/v1/apikeys/{revoked_id}"),
            None
        )
        .await
        .status,
        204
    );

    let expired_key = mftplus_crypto::generate_api_key();
    let admin_row = c
        .state
        .store
        .get_user_by_email("admin@example.com")
        .await
        .unwrap()
        .unwrap();
    let past = c.state.clock.now_ms() - 1000;
    c.state
        .store
        .create_api_key(&NewApiKey {
            id: uuid::Uuid::new_v4().to_string(),
            name: "expired".into(),
            key_hash: mftplus_crypto::hash_api_key(&expired_key),
            prefix: expired_key[..12].into(),
            role: "admin".into(),
            owner_id: admin_row.id,
            created_at_ms: past - 86_400_000,
            expires_at_ms: Some(past),
            replaces: None,
        })
        .await
        .unwrap();
    let unknown_key = mftplus_crypto::generate_api_key();

    vec![
        ("anonymous", Cred::None, "unauthenticated"),
        ("expired JWT", Cred::Bearer(expired_jwt), "token_expired"),
        (
            "JWT for another audience",
            Cred::Bearer(wrong_audience),
            "unauthenticated",
        ),
        (
            "garbage JWT",
            Cred::Bearer("not.a.jwt".into()),
            "unauthenticated",
        ),
        ("revoked JWT", carol, "token_revoked"),
        (
            "revoked API key",
            Cred::ApiKey(revoked_key),
            "token_revoked",
        ),
        (
            "expired API key",
            Cred::ApiKey(expired_key),
            "token_expired",
        ),
        (
            "unknown API key",
            Cred::ApiKey(unknown_key),
            "unauthenticated",
        ),
    ]
}

fn role_lacks(w: &World, role: &str, access: Access) -> bool {
    let rbac = &w.cloud.state.rbac;
    match access {
        Access::Public | Access::Authenticated => false,
        Access::Permission(p) | Access::HostOr(p) => !rbac.allows(role, p),
        Access::Host
        | Access::Guest
        | Access::RetrievalPassword
        | Access::DeployKey
        | Access::Certificate => false,
        Access::Scoped { all, own } => !rbac.allows(role, all) && !rbac.allows(role, own),
        // Users are admitted as the inner access says; fleet_authz.rs covers host keys.
        Access::TransferParty(user) => role_lacks(w, role, *user),
    }
}

#[tokio::test]
async fn every_route_enforces_its_access() {
    let w = world().await;
    let bad = bad_credentials(&w).await;
    let mut checked = 0;
    for spec in ROUTES {
        let method = spec.method.as_str();
        let label = format!("{method} {} ({})", spec.path, spec.id);
        // No user credential opens these; fleet_authz.rs, hubs_authz.rs and
        // certificates.rs cover them.
        // Dashboard pages take a session cookie, not these credentials: web.rs has their
        // matrix (every page route × every role, with and without a session and CSRF token).
        if mftplus_cloud::web::is_page(spec) {
            continue;
        }
        if matches!(
            spec.access,
            Access::Host
                | Access::Guest
                | Access::RetrievalPassword
                | Access::DeployKey
                | Access::Certificate
        ) {
            continue;
        }

        if spec.access != Access::Public {
            for (what, cred, code) in &bad {
                let reply = send(&w, cred, method, fixture(&w, spec.id).await).await;
                assert_eq!(reply.status, 401, "{label} with {what}: {:?}", reply.body);
                assert_eq!(reply.code(), *code, "{label} with {what}");
                checked += 1;
            }
        }

        for (role, cred) in &w.by_role {
            if role_lacks(&w, role, spec.access) {
                let reply = send(&w, cred, method, fixture(&w, spec.id).await).await;
                assert_eq!(reply.status, 403, "{label} as {role}: {:?}", reply.body);
                assert_eq!(reply.code(), "forbidden", "{label} as {role}");
                checked += 1;
            }
        }

        if let Some(expected) = cross_user_expectation(spec.id) {
            let reply = send(&w, &w.bob, method, fixture(&w, spec.id).await).await;
            assert_eq!(
                reply.status, expected,
                "{label} by another user: {:?}",
                reply.body
            );
            checked += 1;
        }

        // The allowed principal: alice for her own resources where the route is scoped,
        // the admin otherwise; anonymous for public routes. A transfer party's route admits
        // users as its inner access says.
        let user_access = match spec.access {
            Access::TransferParty(user) => *user,
            access => access,
        };
        let allowed = match user_access {
            Access::Public => Cred::None,
            Access::Scoped { own, .. } if w.cloud.state.rbac.allows("user", own) => alice(&w).await,
            // Ending a session and changing one's password take a person's login, not a key.
            Access::Authenticated if spec.id == "auth_logout" || spec.id == "auth_password" => {
                alice(&w).await
            }
            // Uploads are the sender's alone, whatever the role.
            _ if spec.id.starts_with("transfer_") => alice(&w).await,
            _ => admin(&w.cloud),
        };
        let reply = send(&w, &allowed, method, fixture(&w, spec.id).await).await;
        if spec.id == "customer_geo_remove_all" {
            // Past authorization; this cloud has no edge firewall configured (fleet_geo.rs
            // drives the real one).
            assert_eq!(reply.code(), "not_configured", "{label}: {:?}", reply.body);
            checked += 1;
            continue;
        }
        assert!(
            (200..300).contains(&reply.status),
            "{label} as the allowed principal: {} {:?}",
            reply.status,
            reply.body
        );
        checked += 1;
    }
    assert!(checked > ROUTES.len() * 5, "only {checked} checks ran");
}

#[tokio::test]
async fn own_listings_show_only_own_items() {
    let w = world().await;
    let (alice_key, _) = api_key(&w.cloud, &alice(&w).await, Some("readonly")).await;
    let bob_view = call(&w.cloud, &w.bob, "GET", "/api/v1/apikeys", None).await;
    assert_eq!(bob_view.status, 200);
    assert!(bob_view
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["id"] != alice_key.as_str()));
    let admin_view = call(&w.cloud, &admin(&w.cloud), "GET", "/api/v1/apikeys", None).await;
    assert!(admin_view
        .body
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["id"] == alice_key.as_str()));

    let bob_tokens = call(&w.cloud, &w.bob, "GET", "/api/v1/auth/tokens", None).await;
    assert_eq!(bob_tokens.status, 200);
    let emails: Vec<&str> = bob_tokens
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["user_email"].as_str().unwrap())
        .collect();
    assert!(
        !emails.is_empty() && emails.iter().all(|e| *e == "bob@example.com"),
        "{emails:?}"
    );
}

#[tokio::test]
async fn credentials_cannot_escalate() {
    let w = world().await;
    // A user cannot mint an admin key for themselves.
    let reply = call(
        &w.cloud,
        &alice(&w).await,
        "POST",
        "/api/v1/apikeys",
        Some(json!({"name": "up", "role": "admin"})),
    )
    .await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);
    // A demoted owner's key loses the role it was created with.
    let (_, op) = user_with_token(&w.cloud, "demoted@example.com", "operator").await;
    let (_, key) = api_key(&w.cloud, &op, Some("operator")).await;
    let key = Cred::ApiKey(key);
    assert_eq!(
        call(&w.cloud, &key, "GET", "/api/v1/users", None)
            .await
            .status,
        200
    );
    let demote = call(
        &w.cloud,
        &admin(&w.cloud),
        "PATCH",
        "/api/v1/users/demoted@example.com",
        Some(json!({"role": "readonly"})),
    )
    .await;
    assert_eq!(demote.status, 200);
    let reply = call(&w.cloud, &key, "GET", "/api/v1/users", None).await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);
}
