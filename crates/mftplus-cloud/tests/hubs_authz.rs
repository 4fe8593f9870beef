//! The authorization matrix of the deploy-key routes (edge-hub phone-home), generated from the
//! route table like `authz_matrix.rs` (which covers the operator routes over hubs): anonymous
//! callers, user credentials, host keys, unknown and revoked deploy keys and another key's hub
//! are refused with the right status and code, and the hub's own key succeeds. A route with
//! `Access::DeployKey` and no fixture here fails the test.

mod common;
mod fleet_support;
mod hub_support;

use common::*;
use hub_support::*;
use mftplus_cloud::routes::{Access, ROUTES};
use mftplus_cloud::testing::TestCloud;
use serde_json::Value;

/// A request for the route acting on `hub_id`: (path, body).
fn fixture(id: &str, hub_id: &str) -> (String, Option<Value>) {
    match id {
        "hubs_register" => (
            "/api/v1/hubs/register".into(),
            Some(registration("hub-server-01", "0.1.0")),
        ),
        "hub_heartbeat" => (
            format!("/api/v1/hubs/{hub_id}/heartbeat"),
            Some(heartbeat_body(true)),
        ),
        "hub_validate" => (
            format!("/api/v1/hubs/{hub_id}/validate"),
            Some(registration("hub-server-01", "0.1.0")),
        ),
        "hub_certificate" => {
            let (_, csr) = mftplus_pki::ca::new_key_and_csr("hub").unwrap();
            (
                format!("/api/v1/hubs/{hub_id}/certificate"),
                Some(serde_json::json!({"csr": csr})),
            )
        }
        "hub_site_live" => (
            format!("/api/v1/hubs/{hub_id}/site-transfers/live"),
            Some(serde_json::json!({"transfer_ids": ["tr-unknown"]})),
        ),
        other => panic!("route {other} has no fixture in the hub authorization matrix; add one"),
    }
}

#[tokio::test]
async fn deploy_key_routes_enforce_their_access() {
    let cloud = TestCloud::spawn().await;
    let (_, operator_jwt) = user_with_token(&cloud, "op@example.com", "operator").await;
    let host = fleet_support::enroll(&cloud).await;
    let mut checked = 0;
    let mut routes = 0;
    for spec in ROUTES
        .iter()
        .filter(|spec| spec.access == Access::DeployKey)
    {
        routes += 1;
        let (id, method) = (spec.id, spec.method.as_str());
        let (own, hub_id) = registered_hub(&cloud).await;
        // Another key, with a hub of its own, aiming at this key's hub.
        let (other, _) = registered_hub(&cloud).await;
        let revoked = deploy_key(&cloud, "revoked").await;
        revoke(&cloud, &revoked).await;
        let unknown = Cred::Bearer(format!("mft_dep_{}", "z".repeat(40)));
        let mut refusals = vec![
            ("anonymous", Cred::None, 401, "unauthenticated"),
            ("an admin API key", admin(&cloud), 401, "unauthenticated"),
            (
                "an operator JWT",
                operator_jwt.clone(),
                401,
                "unauthenticated",
            ),
            ("a host key", host.cred(), 401, "unauthenticated"),
            ("an unknown deploy key", unknown, 401, "unauthenticated"),
            ("a revoked deploy key", revoked.cred(), 401, "token_revoked"),
        ];
        if spec.path.contains("{hub_id}") {
            refusals.push(("another key's deploy key", other.cred(), 403, "forbidden"));
        }
        for (what, cred, status, code) in refusals {
            let (path, body) = fixture(id, &hub_id);
            let reply = call(&cloud, &cred, method, &path, body).await;
            assert_eq!(reply.status, status, "{id} with {what}: {:?}", reply.body);
            assert_eq!(reply.code(), code, "{id} with {what}");
            checked += 1;
        }
        if spec.path.contains("{hub_id}") {
            // A hub id that does not exist looks the same as another key's hub.
            let (path, body) = fixture(id, "hub_0000000000000000");
            let reply = call(&cloud, &own.cred(), method, &path, body).await;
            assert_eq!(
                reply.status, 403,
                "{id} for an unknown hub: {:?}",
                reply.body
            );
            checked += 1;
        }
        let (path, body) = fixture(id, &hub_id);
        let reply = call(&cloud, &own.cred(), method, &path, body).await;
        assert!(
            (200..300).contains(&reply.status),
            "{id} with its own deploy key: {} {:?}",
            reply.status,
            reply.body
        );
        checked += 1;
    }
    assert_eq!(
        routes, 5,
        "register, heartbeat, validate, the site live-check and the hub certificate take a \
         deploy key"
    );
    assert!(checked >= 33, "only {checked} checks ran");
}

#[tokio::test]
async fn a_deploy_key_opens_no_user_or_box_route() {
    let cloud = TestCloud::spawn().await;
    let (key, hub_id) = registered_hub(&cloud).await;
    for (method, path) in [
        ("GET", "/api/v1/hubs".to_string()),
        ("GET", format!("/api/v1/hubs/{hub_id}")),
        ("GET", "/api/v1/hubs/deploy-keys".to_string()),
        ("GET", "/api/v1/status".to_string()),
        ("GET", "/api/v1/hosts".to_string()),
        ("GET", "/api/v1/transfers".to_string()),
    ] {
        let reply = call(&cloud, &key.cred(), method, &path, None).await;
        assert_eq!(reply.status, 401, "{method} {path}: {:?}", reply.body);
    }
    let report = call(
        &cloud,
        &key.cred(),
        "POST",
        "/api/v1/host-report",
        Some(
            serde_json::json!({"host_id": "x", "agent_version": "0.1.0", "applied_generation": 0}),
        ),
    )
    .await;
    assert_eq!(report.status, 401, "{:?}", report.body);
}

/// A hub's assertion on a transfer request (decision 0012) is no credential by itself, must be
/// proved by the key the hub registered with, and a half or forged one is refused rather than
/// read as "direct".
#[tokio::test]
async fn a_hub_assertion_must_be_whole_and_proved_and_opens_nothing_alone() {
    let cloud = TestCloud::spawn().await;
    let (own, hub_id) = registered_hub(&cloud).await;
    let (other, other_hub) = registered_hub(&cloud).await;
    let (_, user_jwt) = user_with_token(&cloud, "user@example.com", "user").await;
    let Cred::Bearer(user_jwt) = user_jwt else {
        panic!("a JWT")
    };
    let http = reqwest::Client::new();
    let list = |assertion: Vec<(&'static str, String)>, bearer: Option<String>| {
        let mut request = http.get(format!("{}/api/v1/transfers", cloud.url));
        for (name, value) in assertion {
            request = request.header(name, value);
        }
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send()
    };
    let cases = vec![
        (
            "an assertion without a user credential",
            vec![
                ("x-mftplus-hub-id", hub_id.clone()),
                ("x-mftplus-hub-key", own.key.clone()),
            ],
            None,
            401,
        ),
        (
            "the hub id alone",
            vec![("x-mftplus-hub-id", hub_id.clone())],
            Some(user_jwt.clone()),
            401,
        ),
        (
            "the key alone",
            vec![("x-mftplus-hub-key", own.key.clone())],
            Some(user_jwt.clone()),
            401,
        ),
        (
            "another key's hub",
            vec![
                ("x-mftplus-hub-id", other_hub.clone()),
                ("x-mftplus-hub-key", own.key.clone()),
            ],
            Some(user_jwt.clone()),
            401,
        ),
        (
            "a user token as the hub key",
            vec![
                ("x-mftplus-hub-id", hub_id.clone()),
                ("x-mftplus-hub-key", user_jwt.clone()),
            ],
            Some(user_jwt.clone()),
            401,
        ),
        (
            "an unregistered hub id",
            vec![
                ("x-mftplus-hub-id", "hub_0000000000000000".into()),
                ("x-mftplus-hub-key", other.key.clone()),
            ],
            Some(user_jwt.clone()),
            401,
        ),
        (
            "the hub's own proof",
            vec![
                ("x-mftplus-hub-id", hub_id.clone()),
                ("x-mftplus-hub-key", own.key.clone()),
            ],
            Some(user_jwt.clone()),
            200,
        ),
        ("no assertion", vec![], Some(user_jwt.clone()), 200),
    ];
    for (what, assertion, bearer, status) in cases {
        let reply = list(assertion, bearer).await.unwrap();
        assert_eq!(reply.status().as_u16(), status, "{what}");
    }
    revoke(&cloud, &own).await;
    let reply = list(
        vec![
            ("x-mftplus-hub-id", hub_id),
            ("x-mftplus-hub-key", own.key.clone()),
        ],
        Some(user_jwt),
    )
    .await
    .unwrap();
    assert_eq!(reply.status().as_u16(), 401, "a revoked hub's assertion");
}
