//! The authorization matrix of the routes that take no user credential, generated from the
//! route table like `authz_matrix.rs` (which covers every user-credential route, `HostOr`
//! and transfer parties' included): host-key, guest-key and retrieval-password routes refuse
//! every wrong kind of credential, a host key acts only on its own host, and the right
//! credential succeeds; a transfer party's route (decision 0029) takes its host's key for the
//! host's own transfers and no guest key. A route of these kinds without a fixture here fails
//! the test.

mod common;
mod fleet_support;
mod host_transfer_support;

use common::*;
use fleet_support::*;
use mftplus_cloud::routes::{Access, ROUTES};
use mftplus_cloud::testing::TestCloud;
use serde_json::{json, Value};

/// A request for the route acting on `host`'s resources: (path, body).
async fn fixture(cloud: &TestCloud, id: &str, host: &Enrolled) -> (String, Option<Value>) {
    let h = &host.host_id;
    match id {
        "host_report" => ("/api/v1/host-report".into(), Some(report(h, 0))),
        "host_desired_get" => (format!("/api/v1/hosts/{h}/desired-state"), None),
        "host_signed_ops" => (format!("/api/v1/hosts/{h}/signed-ops"), None),
        "host_op_status" => {
            let op = signed_op(cloud, host).await;
            let fetched = call(
                cloud,
                &host.cred(),
                "GET",
                &format!("/api/v1/hosts/{h}/signed-ops"),
                None,
            )
            .await;
            assert_eq!(fetched.status, 200, "{:?}", fetched.body);
            (
                format!("/api/v1/hosts/{h}/signed-ops/{op}/status"),
                Some(json!({"status": "failed", "result": {"error": "disk busy"}})),
            )
        }
        "host_escrow_put" => (
            format!("/api/v1/hosts/{h}/escrow"),
            Some(
                json!({"backup_namespace": "ns/kovacs", "repository_fingerprint": "ab:cd", "wrapped_key": "d3JhcHBlZA=="}),
            ),
        ),
        "host_guest_mint" => (
            format!("/api/v1/hosts/{h}/guests"),
            Some(json!({"guest_id": unique("g"), "display_name": "Web"})),
        ),
        "host_key_rotate" => (format!("/api/v1/hosts/{h}/key/rotate"), None),
        "host_transfer_key_put" => {
            let key = mftplus_crypto::stream::X25519SecretKey::generate().unwrap();
            (
                format!("/api/v1/hosts/{h}/transfer-key"),
                Some(json!({"public_key": key.public_key().to_encoded()})),
            )
        }
        "guest_report" => (
            "/api/v1/report".into(),
            Some(json!({"controller_version": "1.0.0", "apps": [{"name": "nextcloud"}]})),
        ),
        "enroll" => {
            let customer = customer(cloud, json!({})).await;
            (
                "/api/v1/enroll".into(),
                Some(json!({"customer_id": customer, "hostname": "box", "agent_version": "0.1.0"})),
            )
        }
        "host_re_enroll" => {
            let armed = call(
                cloud,
                &admin(cloud),
                "POST",
                &format!("/api/v1/hosts/{h}/recovery"),
                Some(json!({"ttl_seconds": 600})),
            )
            .await;
            assert_eq!(armed.status, 200, "{:?}", armed.body);
            (
                format!("/api/v1/hosts/{h}/re-enroll"),
                Some(json!({"hostname": "box-new", "agent_version": "0.1.0"})),
            )
        }
        "customer_config" => (format!("/api/v1/config/{}", host.customer_id), None),
        "certificates_issue" => {
            let (_, csr) = mftplus_pki::ca::new_key_and_csr("fleet-authz").unwrap();
            (
                "/api/v1/certificates".into(),
                Some(json!({"csr": csr, "subject": format!("host:{h}")})),
            )
        }
        other => panic!("route {other} has no fixture in the fleet authorization matrix; add one"),
    }
}

/// A transfer party's route called as `cred` on `host`'s own transfers: sent by it (the sending
/// routes) or sent to it by the admin (the receiving ones).
async fn party_call(cloud: &TestCloud, cred: &Cred, id: &str, host: &Enrolled) -> Reply {
    use host_transfer_support::*;
    let key = mftplus_crypto::stream::X25519SecretKey::generate().unwrap();
    let sealed = seal(b"for the host", &[key.public_key()]);
    let own = host.cred();
    let received = || async {
        register_key(cloud, host).await;
        let to_host = format!("host:{}", host.host_id);
        send_sealed(cloud, &admin(cloud), &[&to_host], &sealed).await
    };
    let (path, body) = match id {
        "user_key_get" => {
            let email = format!("{}@example.com", unique("u"));
            let (_, user) = user_with_token(cloud, &email, "user").await;
            register_user_key(cloud, &user).await;
            (format!("/api/v1/users/{email}/key"), None)
        }
        "host_transfer_key_get" => {
            register_key(cloud, host).await;
            (format!("/api/v1/hosts/{}/transfer-key", host.host_id), None)
        }
        "transfers_create" => {
            let reply = create(cloud, cred, &["admin@example.com"], &sealed).await;
            return reply;
        }
        "transfers_list" => ("/api/v1/transfers".to_string(), None),
        "transfer_chunk_put" | "transfer_chunks" | "transfer_complete" => {
            let created = create(cloud, &own, &["admin@example.com"], &sealed).await;
            assert_eq!(created.status, 201, "{:?}", created.body);
            let t = created.body["id"].as_str().unwrap().to_string();
            let chunk = &sealed.chunks[0];
            if id == "transfer_chunk_put" {
                return put_chunk(cloud, cred, &t, 0, &chunk.bytes, chunk.last).await;
            }
            let stored = put_chunk(cloud, &own, &t, 0, &chunk.bytes, chunk.last).await;
            assert_eq!(stored.status, 201, "{:?}", stored.body);
            match id {
                "transfer_chunks" => (format!("/api/v1/transfers/{t}/chunks"), None),
                _ => (
                    format!("/api/v1/transfers/{t}/complete"),
                    Some(json!({"manifest": b64(&sealed.manifest)})),
                ),
            }
        }
        "transfer_show" | "transfer_header" | "transfer_chunk_get" | "transfer_manifest"
        | "transfer_stream" | "transfer_received" => {
            let t = received().await;
            let path = match id {
                "transfer_show" => format!("/api/v1/transfers/{t}"),
                "transfer_header" => format!("/api/v1/transfers/{t}/header"),
                "transfer_chunk_get" => format!("/api/v1/transfers/{t}/chunks/0"),
                "transfer_manifest" => format!("/api/v1/transfers/{t}/manifest"),
                "transfer_stream" => format!("/api/v1/transfers/{t}/stream"),
                _ => format!("/api/v1/transfers/{t}/received"),
            };
            (path, None)
        }
        other => panic!("transfer party route {other} has no fixture here; add one"),
    };
    call(cloud, cred, method_of(id), &path, body).await
}

/// A transfer party's route: no guest key, no unknown host key, and its own host key on its
/// own transfers. Answers how many checks ran.
async fn transfer_party_checks(cloud: &TestCloud, id: &str) -> usize {
    let host = enroll(cloud).await;
    let guest_key = guest(cloud, &host, &unique("g")).await;
    let unknown = Cred::Bearer(format!("mfth_{}", "x".repeat(40)));
    for (what, cred, status, code) in [
        ("a guest key", Cred::Bearer(guest_key), 403, "forbidden"),
        ("an unknown host key", unknown, 401, "unauthenticated"),
    ] {
        let reply = party_call(cloud, &cred, id, &host).await;
        assert_eq!(reply.status, status, "{id} with {what}: {:?}", reply.body);
        assert_eq!(reply.code(), code, "{id} with {what}");
    }
    let reply = party_call(cloud, &host.cred(), id, &host).await;
    assert!(
        (200..300).contains(&reply.status),
        "{id} with its own host key: {} {:?}",
        reply.status,
        reply.body
    );
    3
}

fn method_of(id: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|spec| spec.id == id)
        .map(|spec| spec.method.as_str())
        .unwrap()
}

async fn call_json(
    cloud: &TestCloud,
    cred: &Cred,
    id: &str,
    (path, body): (String, Option<Value>),
) -> Reply {
    call(cloud, cred, method_of(id), &path, body).await
}

#[tokio::test]
async fn reporter_and_retrieval_routes_enforce_their_access() {
    let cloud = TestCloud::spawn().await;
    let (_, user_jwt) = user_with_token(&cloud, "op@example.com", "operator").await;
    let mut checked = 0;
    for spec in ROUTES {
        let id = spec.id;
        match spec.access {
            Access::Host | Access::HostOr(_) => {
                let host = enroll(&cloud).await;
                let other = enroll(&cloud).await;
                let guest_key = guest(&cloud, &host, &unique("g")).await;
                let unknown = Cred::Bearer(format!("mfth_{}", "x".repeat(40)));
                let mut refusals = vec![
                    (
                        "another host's key",
                        Cred::Bearer(other.host_key.clone()),
                        403,
                        "forbidden",
                    ),
                    ("a guest key", Cred::Bearer(guest_key), 403, "forbidden"),
                    ("an unknown host key", unknown, 401, "unauthenticated"),
                ];
                if spec.access == Access::Host {
                    refusals.push(("anonymous", Cred::None, 401, "unauthenticated"));
                    refusals.push(("an admin API key", admin(&cloud), 401, "unauthenticated"));
                    refusals.push(("an operator JWT", user_jwt.clone(), 401, "unauthenticated"));
                }
                for (what, cred, status, code) in refusals {
                    let reply =
                        call_json(&cloud, &cred, id, fixture(&cloud, id, &host).await).await;
                    assert_eq!(reply.status, status, "{id} with {what}: {:?}", reply.body);
                    assert_eq!(reply.code(), code, "{id} with {what}");
                    checked += 1;
                }
                let reply =
                    call_json(&cloud, &host.cred(), id, fixture(&cloud, id, &host).await).await;
                assert!(
                    (200..300).contains(&reply.status),
                    "{id} with its own host key: {} {:?}",
                    reply.status,
                    reply.body
                );
                checked += 1;
            }
            Access::TransferParty(_) => checked += transfer_party_checks(&cloud, id).await,
            Access::Guest => {
                let host = enroll(&cloud).await;
                let guest_key = guest(&cloud, &host, &unique("g")).await;
                for (what, cred, status) in [
                    ("anonymous", Cred::None, 401),
                    ("a host key", host.cred(), 403),
                    (
                        "an unknown guest key",
                        Cred::Bearer(format!("mftg_{}", "y".repeat(40))),
                        401,
                    ),
                    ("an admin API key", admin(&cloud), 401),
                ] {
                    let reply =
                        call_json(&cloud, &cred, id, fixture(&cloud, id, &host).await).await;
                    assert_eq!(reply.status, status, "{id} with {what}: {:?}", reply.body);
                    checked += 1;
                }
                let reply = call_json(
                    &cloud,
                    &Cred::Bearer(guest_key),
                    id,
                    fixture(&cloud, id, &host).await,
                )
                .await;
                assert!(
                    (200..300).contains(&reply.status),
                    "{id} with its guest key: {:?}",
                    reply.body
                );
                checked += 1;
            }
            Access::RetrievalPassword => {
                let host = enroll(&cloud).await;
                for (what, password, code) in [
                    ("no password", None, "unauthenticated"),
                    (
                        "a wrong password",
                        Some("not-the-password-at-all"),
                        "invalid_credentials",
                    ),
                ] {
                    let (path, body) = fixture(&cloud, id, &host).await;
                    let reply = match password {
                        Some(password) => {
                            with_password(&cloud, method_of(id), &path, password, body).await
                        }
                        None => call(&cloud, &admin(&cloud), method_of(id), &path, body).await,
                    };
                    assert_eq!(reply.status, 401, "{id} with {what}: {:?}", reply.body);
                    assert_eq!(reply.code(), code, "{id} with {what}");
                    checked += 1;
                }
                let (path, body) = fixture(&cloud, id, &host).await;
                let reply =
                    with_password(&cloud, method_of(id), &path, RETRIEVAL_PASSWORD, body).await;
                assert!(
                    (200..300).contains(&reply.status),
                    "{id} with the password: {} {:?}",
                    reply.status,
                    reply.body
                );
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(checked > 40, "only {checked} checks ran");
}

#[tokio::test]
async fn a_report_for_another_host_is_refused() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    let other = enroll(&cloud).await;
    let reply = send_report(&cloud, &host, report(&other.host_id, 0)).await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);
    assert_eq!(
        call(
            &cloud,
            &admin(&cloud),
            "GET",
            &format!("/api/v1/hosts/{}/reports", other.host_id),
            None
        )
        .await
        .body,
        json!([]),
        "nothing was recorded for the other host"
    );
}
