//! The dashboard over HTTP (its browser tests are in `web_browser.rs`): sessions as a
//! principal (cookie flags, idle and absolute expiry, sign-out that ends the session on the
//! server), CSRF and cross-site refusals, the security headers on every page, the API never
//! taking the cookie, and the authorization matrix of every page route × every role.

mod common;
mod fleet_support;
mod hub_support;
mod web_support;

use common::*;
use mftplus_cloud::routes::{Access, RouteSpec, ROUTES};
use mftplus_cloud::testing::TestCloud;
use mftplus_cloud::web::is_page;
use serde_json::json;
use web_support::*;

#[tokio::test]
async fn a_session_is_a_principal_with_its_own_lifetime() {
    let cloud = TestCloud::spawn().await;
    // No session: a page view goes to the sign-in page, and back afterwards.
    let anonymous = get_anonymous(&cloud, "/hubs").await;
    assert_eq!(anonymous.status, 303);
    assert_eq!(anonymous.headers["location"], "/login?next=/hubs");
    let login = get_anonymous(&cloud, "/login?next=/hubs").await;
    assert_eq!(login.status, 200);
    for header in [
        "content-security-policy",
        "x-frame-options",
        "referrer-policy",
        "x-content-type-options",
    ] {
        assert!(login.headers.contains_key(header), "{header} missing");
    }
    assert!(login.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));

    let wrong = post_anonymous(
        &cloud,
        "/login",
        &[
            ("email", "admin@example.com"),
            ("password", "not it at all"),
            ("next", "/"),
        ],
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("invalid email or password"));
    let (cookie, _) = sign_in(&cloud, "admin@example.com", &cloud.admin_password).await;
    let hubs = get(&cloud, "/hubs", &cookie).await;
    assert_eq!(hubs.status, 200);
    assert!(
        hubs.body.contains("No hub has registered yet"),
        "{}",
        hubs.body
    );

    // The API never takes the cookie.
    let api = get(&cloud, "/api/v1/hubs", &cookie).await;
    assert_eq!(api.status, 401);

    // Idle expiry: unused for longer than web.session_idle_minutes (30), the session is over.
    cloud.clock.advance_secs(31 * 60);
    let idle = get(&cloud, "/hubs", &cookie).await;
    assert_eq!(idle.status, 303, "an idle session ends");

    // Absolute expiry: used all along, it still ends after web.session_absolute_hours (12).
    let (cookie, _) = sign_in(&cloud, "admin@example.com", &cloud.admin_password).await;
    for _ in 0..26 {
        cloud.clock.advance_secs(29 * 60);
        if get(&cloud, "/hubs", &cookie).await.status != 200 {
            break;
        }
    }
    assert_eq!(get(&cloud, "/hubs", &cookie).await.status, 303);

    // Sign-out ends the session on the server: the same cookie is refused afterwards.
    let (cookie, _) = sign_in(&cloud, "admin@example.com", &cloud.admin_password).await;
    let csrf = csrf_of(&get(&cloud, "/hubs", &cookie).await.body);
    let out = post(&cloud, "/logout", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert!(out.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(get(&cloud, "/hubs", &cookie).await.status, 303);
}

#[tokio::test]
async fn writes_need_the_csrf_token_and_this_site() {
    let cloud = TestCloud::spawn().await;
    let (cookie, csrf) = signed_in_as(&cloud, "admin").await;
    let missing = post(&cloud, "/hubs/deploy-keys", &cookie, &[("label", "site-a")]).await;
    assert_eq!(missing.status, 403, "{}", missing.body);
    let wrong = post(
        &cloud,
        "/hubs/deploy-keys",
        &cookie,
        &[
            ("label", "site-a"),
            ("csrf", "0123456789abcdef0123456789abcdef"),
        ],
    )
    .await;
    assert_eq!(wrong.status, 403);
    let cross = browser()
        .post(format!("{}/hubs/deploy-keys", cloud.url))
        .form(&[("label", "site-a"), ("csrf", csrf.as_str())])
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert!(cloud
        .state
        .store
        .list_deploy_keys()
        .await
        .unwrap()
        .is_empty());

    // Login CSRF: another site's form cannot sign this browser into any account.
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ] {
        let forced = browser()
            .post(format!("{}/login", cloud.url))
            .form(&[
                ("email", cloud.admin_email.as_str()),
                ("password", cloud.admin_password.as_str()),
                ("next", "/"),
            ])
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(forced.status(), 403, "a sign-in with {name}: {value}");
        assert!(
            forced.headers().get("set-cookie").is_none(),
            "no session for {name}"
        );
    }

    // With the token: the key is shown once, then only its prefix.
    let made = post(
        &cloud,
        "/hubs/deploy-keys",
        &cookie,
        &[("label", "site-a"), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let at = made.body.find("mft_dep_").expect("the key is shown");
    let key = &made.body[at..at + 48];
    let listed = get(&cloud, "/hubs", &cookie).await;
    assert!(listed.body.contains("site-a") && !listed.body.contains(key));
    let audit = call(
        &cloud,
        &admin(&cloud),
        "GET",
        "/api/v1/audit?limit=1000",
        None,
    )
    .await;
    assert!(audit.body.to_string().contains("deploy_key_created"));
    assert!(
        !audit.body.to_string().contains(key),
        "the key never reaches the audit log"
    );
}

/// What the route expects when `role` calls it with a valid session and CSRF token.
fn allowed(cloud: &TestCloud, role: &str, access: Access) -> bool {
    match access {
        Access::Public | Access::Authenticated => true,
        Access::Permission(permission) => cloud.state.rbac.allows(role, permission),
        // The matrix names the caller's own resource when the role holds only `own`.
        Access::Scoped { all, own } => {
            cloud.state.rbac.allows(role, all) || cloud.state.rbac.allows(role, own)
        }
        other => panic!("a page with access {other:?} needs a rule here"),
    }
}

/// The form a write page route is posted with in the matrix (besides the CSRF token): enough
/// to succeed for a role that may use it. Add an arm for each new write route.
fn form_fields(route_id: &str) -> Vec<(&'static str, &'static str)> {
    match route_id {
        "web_deploy_key_create" => vec![("label", "x")],
        // The published state itself at its generation: nothing changes, so every role
        // allowed finds the host as the previous one left it.
        "web_desired_preview" | "web_desired_publish" => {
            vec![("desired", "{}"), ("base_generation", "0")]
        }
        // Destructive actions need their "I understand" box.
        "web_customer_block" | "web_retrieval_password_reset" | "web_recovery_arm" => {
            vec![("confirm", "yes")]
        }
        // The verification takes nothing but the CSRF token.
        "web_audit_verify" => vec![],
        "web_user_create" => vec![
            ("email", "made-by-the-matrix@example.com"),
            ("role", "readonly"),
            ("kind", "person"),
        ],
        "web_user_update" => vec![("role", "readonly")],
        "web_user_password" => vec![("password", "")],
        "web_user_delete" => vec![("confirm", "yes")],
        "web_api_key_create" => vec![("name", "matrix key")],
        // Cancelling a transfer needs its confirmation box.
        "web_transfer_cancel" => vec![("confirm", "yes")],
        "web_file_request_create" => {
            vec![("note", "the lease"), ("uploads", "2"), ("expires", "1d")]
        }
        _ => vec![],
    }
}

fn concrete(path: &str, key_id: &str, host_id: &str) -> String {
    path.replace("{id}", key_id)
        .replace("{host_id}", host_id)
        .replace("{name}", "app.css")
}

/// Fills the people pages' ids with fresh fixtures of the signed-in `role`'s reach: another
/// user where the role holds the route's `all` permission (else its own account), an API
/// key and a sign-in of its own. Answers whether the route then ends the session in use.
async fn people(cloud: &TestCloud, role: &str, spec: &RouteSpec, path: String) -> (String, bool) {
    use mftplus_cloud::auth::{Caller, CallerKind};
    static FRESH: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let me = cloud
        .state
        .store
        .get_user_by_email(&email_of(role))
        .await
        .unwrap()
        .unwrap();
    let all = match spec.access {
        Access::Scoped { all, .. } => cloud.state.rbac.allows(role, all),
        _ => true,
    };
    let mut ends_session = false;
    let mut path = path;
    if path.contains("{user_id}") {
        let user_id = if all {
            let n = FRESH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let email = format!("matrix-{n}@example.com");
            user_with_token(cloud, &email, "readonly").await.0
        } else {
            ends_session = spec.id == "web_user_tokens_revoke" && allowed(cloud, role, spec.access);
            me.id.clone()
        };
        path = path.replace("{user_id}", &user_id);
    }
    if path.contains("{key_id}") {
        let caller = Caller {
            user_id: me.id.clone(),
            email: me.email.clone(),
            role: role.to_string(),
            kind: CallerKind::ApiKey {
                id: "fixture".into(),
                expires_at_ms: None,
            },
        };
        let request = mftplus_types::api::CreateApiKeyRequest {
            name: "matrix".into(),
            ..Default::default()
        };
        let key = mftplus_cloud::app::api_keys::create(&cloud.state, &caller, "127.0.0.1", request)
            .await
            .unwrap();
        path = path.replace("{key_id}", &key.api_key.id);
    }
    if path.contains("{session_id}") {
        let family = format!("matrix-{role}");
        let (_, row) = cloud
            .state
            .issue_token(&me, role, "refresh", &family, "login", 3_600)
            .await
            .unwrap();
        path = path.replace("{session_id}", &row.jti);
    }
    (path, ends_session)
}

/// Fills a transfer page's id with a transfer the role's user sent: a fresh one each time, as
/// a cancel ends it, and the user's own, so a role with only `:own` permissions may open,
/// verify and cancel it.
async fn with_transfer(cloud: &TestCloud, role: &str, path: String) -> String {
    if !path.contains("{transfer_id}") {
        return path;
    }
    let store = &cloud.state.store;
    let sender = store
        .get_user_by_email(&email_of(role))
        .await
        .unwrap()
        .unwrap();
    let now = cloud.state.clock.now_ms();
    let transfer = mftplus_store::NewTransfer {
        id: uuid::Uuid::now_v7().simple().to_string(),
        sender_kind: mftplus_store::recipient_kind::USER.into(),
        sender_id: sender.id,
        header: b"MFTP".to_vec(),
        chunk_size: 65_536,
        created_at_ms: now,
        expires_at_ms: now + 86_400_000,
        site: None,
        recipients: Vec::new(),
    };
    let id = store.create_transfer(&transfer).await.unwrap().id;
    if path.contains("{link_id}") {
        // A link row of that transfer (the store does not read the header).
        let link = mftplus_store::NewLink {
            id: uuid::Uuid::now_v7().simple().to_string(),
            transfer_id: id.clone(),
            token_hash: mftplus_crypto::sha256_hex(uuid::Uuid::new_v4().as_bytes()),
            created_by: transfer.sender_id.clone(),
            created_at_ms: now,
            expires_at_ms: now + 86_400_000,
            max_downloads: None,
        };
        let link = store.create_link(&link).await.unwrap().id;
        return path
            .replace("{transfer_id}", &id)
            .replace("{link_id}", &link);
    }
    path.replace("{transfer_id}", &id)
}

/// The role's user gets a registered key (making a file request needs one), and a request's
/// page its id: a fresh request of that user each time, as a revoke ends it.
async fn with_request(cloud: &TestCloud, role: &str, path: String) -> String {
    let store = &cloud.state.store;
    let owner = store
        .get_user_by_email(&email_of(role))
        .await
        .unwrap()
        .unwrap();
    let now = cloud.state.clock.now_ms();
    let key = mftplus_crypto::stream::X25519SecretKey::generate().unwrap();
    store
        .put_user_key(&mftplus_store::UserKeyRow {
            user_id: owner.id.clone(),
            public_key: key.public_key().to_encoded(),
            fingerprint: "matrix".into(),
            created_at_ms: now,
            updated_at_ms: now,
        })
        .await
        .unwrap();
    if !path.contains("{request_id}") {
        return path;
    }
    let request = mftplus_store::NewFileRequest {
        id: uuid::Uuid::now_v7().simple().to_string(),
        token_hash: mftplus_crypto::sha256_hex(uuid::Uuid::new_v4().as_bytes()),
        owner_id: owner.id,
        note: String::new(),
        created_at_ms: now,
        expires_at_ms: now + 86_400_000,
        max_uploads: 1,
        max_bytes: 1 << 20,
    };
    let id = store.create_file_request(&request).await.unwrap().id;
    path.replace("{request_id}", &id)
}

#[tokio::test]
async fn every_page_route_enforces_its_access() {
    let cloud = TestCloud::spawn().await;
    let host = fleet_support::enroll(&cloud).await;
    let (_, hub_id) = hub_support::registered_hub(&cloud).await;
    let mut checked = 0;
    for role in ["readonly", "user", "operator", "admin"] {
        let (mut cookie, mut csrf) = signed_in_as(&cloud, role).await;
        for spec in ROUTES.iter().filter(|spec| is_page(spec)) {
            if spec.id == "web_logout" || spec.id == "web_login_submit" {
                continue; // ending this session / signing in: covered above
            }
            let key = mftplus_cloud::app::deploy_keys::create(&cloud.state, "t", "127.0.0.1", "k")
                .await
                .unwrap();
            let path = concrete(spec.path, &key.id, &host.host_id).replace("{hub_id}", &hub_id);
            let (path, ends_session) = people(&cloud, role, spec, path).await;
            let path = with_transfer(&cloud, role, path).await;
            let path = with_request(&cloud, role, path).await;
            let label = format!("{} {} as {role}", spec.method, spec.path);
            let is_get = spec.method == http::Method::GET;
            let anonymous = if is_get {
                get_anonymous(&cloud, &path).await
            } else {
                let mut form: Vec<(&str, &str)> = form_fields(spec.id);
                form.push(("csrf", &csrf));
                post_anonymous(&cloud, &path, &form).await
            };
            if spec.access != Access::Public {
                // A page view goes to the sign-in page; a write or a stream is refused.
                let expected = if is_get && !path.starts_with("/live/") {
                    303
                } else {
                    401
                };
                assert_eq!(anonymous.status, expected, "{label} without a session");
            }
            if is_get && path.starts_with("/live/") {
                // A stream: its head says whether it was allowed.
                let response = open_stream(&cloud, &path, &cookie).await;
                let expected = if allowed(&cloud, role, spec.access) {
                    200
                } else {
                    403
                };
                assert_eq!(response.status().as_u16(), expected, "{label}");
                checked += 1;
                continue;
            }
            let page = if is_get {
                get(&cloud, &path, &cookie).await
            } else {
                let mut form: Vec<(&str, &str)> = form_fields(spec.id);
                let without = post(&cloud, &path, &cookie, &form).await;
                assert_eq!(without.status, 403, "{label} without its CSRF token");
                form.push(("csrf", &csrf));
                post(&cloud, &path, &cookie, &form).await
            };
            if allowed(&cloud, role, spec.access) {
                assert!(
                    page.status == 200 || page.status == 303,
                    "{label}: {} {}",
                    page.status,
                    page.body
                );
            } else {
                assert_eq!(page.status, 403, "{label}: {}", page.body);
                assert!(
                    page.body.contains("forbidden"),
                    "{label}: a page, with the code"
                );
            }
            if ends_session {
                (cookie, csrf) = signed_in_again(&cloud, role).await;
            }
            checked += 1;
        }
    }
    assert!(checked >= 28, "{checked} checks");
}

#[tokio::test]
async fn a_readonly_user_sees_no_write_controls() {
    let cloud = TestCloud::spawn().await;
    call(
        &cloud,
        &admin(&cloud),
        "POST",
        "/api/v1/hubs/deploy-keys",
        Some(json!({"label": "site-a"})),
    )
    .await;
    let (cookie, _) = signed_in_as(&cloud, "readonly").await;
    let page = get(&cloud, "/hubs", &cookie).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("site-a"));
    assert!(!page.body.contains("action=\"/hubs/deploy-keys") && !page.body.contains("Revoke"));
}

#[tokio::test]
async fn the_live_stream_says_when_the_hubs_change() {
    let cloud = TestCloud::spawn().await;
    let (cookie, _) = signed_in_as(&cloud, "admin").await;
    let mut stream = open_stream(&cloud, "/live/hubs", &cookie).await;
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: changed"));
    call(
        &cloud,
        &admin(&cloud),
        "POST",
        "/api/v1/hubs/deploy-keys",
        Some(json!({"label": "site-b"})),
    )
    .await;
    assert!(
        changed_within(&mut stream, 5).await,
        "a change was announced within 5 s"
    );
}

#[tokio::test]
async fn a_hub_page_shows_what_its_heartbeats_told() {
    let cloud = TestCloud::spawn().await;
    let (key, hub_id) = hub_support::registered_hub(&cloud).await;
    let beat = call(
        &cloud,
        &key.cred(),
        "POST",
        &format!("/api/v1/hubs/{hub_id}/heartbeat"),
        Some(
            json!({"hub_version": "0.1.0", "uptime_seconds": 5, "healthy": false,
                    "issues": ["<b>disk</b> almost full"]}),
        ),
    )
    .await;
    assert_eq!(beat.status, 200, "{:?}", beat.body);
    let (cookie, _) = signed_in_as(&cloud, "readonly").await;
    let list = get(&cloud, "/hubs", &cookie).await;
    assert!(
        list.body.contains(&format!("href=\"/hubs/{hub_id}\"")),
        "the list links to the hub"
    );
    let page = get(&cloud, &format!("/hubs/{hub_id}"), &cookie).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("<h1>hub-server-01</h1>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("data-status=\"degraded\""),
        "recent but unhealthy"
    );
    assert!(page.body.contains("fixture-hub"), "its deploy key's label");
    assert!(
        page.body.contains("&lt;b&gt;disk&lt;/b&gt; almost full"),
        "the issue, escaped"
    );
    assert!(!page.body.contains("<b>disk"));
    let unknown = get(&cloud, "/hubs/hub_0000000000000000", &cookie).await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("not_found"));
    let (user, _) = signed_in_as(&cloud, "user").await;
    assert_eq!(
        get(&cloud, &format!("/hubs/{hub_id}"), &user).await.status,
        403
    );
}
