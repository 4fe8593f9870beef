//! The built-in CA over real mutual TLS (`client_auth.mode: requireAndVerifyClientCert`): a
//! host route needs the host's own certificate; a host gets its first one with its host key,
//! renews with the current one, and recovers with the retrieval password; a certificate from
//! another CA, another host's, a revoked or an expired one is refused; the CRL lists what was
//! revoked, as `openssl crl` reads it.

use mftplus_cloud::testing::{TestCloud, TestOptions};
use mftplus_pki::ca::new_key_and_csr;
use mftplus_pki::testing::{ca, leaf};
use mftplus_types::fleet::RETRIEVAL_PASSWORD_HEADER;
use serde_json::{json, Value};
use std::path::Path;

const PASSWORD: &str = "alma-korte-szilva-barack-dio";

struct Tls {
    cloud: TestCloud,
    url: String,
    ca_pem: Vec<u8>,
}

async fn tls_cloud(dir: &Path) -> Tls {
    ca(dir, "ca");
    leaf(dir, "ca", "server", true);
    ca(dir, "other-ca");
    leaf(dir, "other-ca", "stranger", false);
    let d = dir.display();
    let mut options = TestOptions::default();
    options.config_yaml.push_str(&format!(
        "tls:\n  enabled: true\n  certificate:\n    cert: {d}/server.crt\n    key: {d}/server.key\n  client_auth:\n    mode: requireAndVerifyClientCert\n    ca_files:\n      - {d}/other-ca.crt\n"
    ));
    let cloud = TestCloud::spawn_with(options).await;
    let url = cloud.url.replace("http://", "https://");
    Tls {
        url,
        ca_pem: std::fs::read(dir.join("ca.crt")).unwrap(),
        cloud,
    }
}

/// A client trusting the server's CA, presenting `identity` (chain PEM, key PEM) if given.
fn client(tls: &Tls, identity: Option<(&str, &str)>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&tls.ca_pem).unwrap())
        .pool_max_idle_per_host(0);
    if let Some((chain, key)) = identity {
        let pem = format!("{chain}{key}");
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// (status, body); a connection the server refused is status 0.
async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    match request.send().await {
        Ok(reply) => {
            let status = reply.status().as_u16();
            let body = reply.json().await.unwrap_or(Value::Null);
            (status, body)
        }
        Err(_) => (0, Value::Null),
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

struct Host {
    id: String,
    key: String,
}

async fn enroll(tls: &Tls, customer: &str) -> Host {
    let (status, body) = send(
        client(tls, None)
            .post(format!("{}/api/v1/enroll", tls.url))
            .header(RETRIEVAL_PASSWORD_HEADER, PASSWORD)
            .json(&json!({"customer_id": customer, "hostname": "box", "agent_version": "0.1.0"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    Host {
        id: body["host_id"].as_str().unwrap().into(),
        key: body["host_key"].as_str().unwrap().into(),
    }
}

/// Asks for a certificate with a fresh key: (status, body, chain PEM, key PEM).
async fn request_cert(
    tls: &Tls,
    path: &str,
    bearer: Option<&str>,
    identity: Option<(&str, &str)>,
    extra: Value,
    password: Option<&str>,
) -> (u16, Value, String, String) {
    let (key, csr) = new_key_and_csr("box").unwrap();
    let mut body = json!({"csr": csr});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let mut request = client(tls, identity)
        .post(format!("{}{path}", tls.url))
        .json(&body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(password) = password {
        request = request.header(RETRIEVAL_PASSWORD_HEADER, password);
    }
    let (status, body) = send(request).await;
    let chain = body["certificate"].as_str().unwrap_or("").to_string();
    (status, body, chain, key)
}

async fn desired(tls: &Tls, host: &Host, identity: Option<(&str, &str)>) -> (u16, Value) {
    send(
        client(tls, identity)
            .get(format!(
                "{}/api/v1/hosts/{}/desired-state",
                tls.url, host.id
            ))
            .bearer_auth(&host.key),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn box_routes_need_the_hosts_own_live_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let tls = enroll_fixture(dir.path()).await;
    let (a, b) = (&tls.1, &tls.2);
    let tls = &tls.0;

    // No certificate: the box route is refused, but the first issuance is open to the key.
    let (status, body) = desired(tls, a, None).await;
    assert_eq!(
        (status, code(&body)),
        (401, "certificate_required"),
        "{body}"
    );
    let (status, body, chain, key) = request_cert(
        tls,
        "/api/v1/certificates",
        Some(&a.key),
        None,
        json!({}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["subject"], format!("host:{}", a.id));
    let a_cert = (chain.as_str(), key.as_str());
    let (status, body) = desired(tls, a, Some(a_cert)).await;
    assert_eq!(status, 200, "{body}");

    // Host A's certificate with host B's key.
    let (status, body) = desired(tls, b, Some(a_cert)).await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");

    // Another CA the listener trusts, but not ours: proves nothing about which box this is.
    let stranger = (
        std::fs::read_to_string(dir.path().join("stranger.crt")).unwrap(),
        std::fs::read_to_string(dir.path().join("stranger.key")).unwrap(),
    );
    let (status, body) = desired(tls, a, Some((&stranger.0, &stranger.1))).await;
    assert_eq!(
        (status, code(&body)),
        (401, "certificate_required"),
        "{body}"
    );

    // A second certificate needs the current one (renewal) or the retrieval password.
    let (status, body, ..) = request_cert(
        tls,
        "/api/v1/certificates",
        Some(&a.key),
        None,
        json!({}),
        None,
    )
    .await;
    assert_eq!((status, code(&body)), (409, "certificate_exists"), "{body}");
    let (status, body, ..) = request_cert(
        tls,
        "/api/v1/certificates",
        Some(&a.key),
        None,
        json!({}),
        Some("not-the-password-at-all"),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (401, "invalid_credentials"),
        "{body}"
    );
    let (status, body, recovered, recovered_key) = request_cert(
        tls,
        "/api/v1/certificates",
        Some(&a.key),
        None,
        json!({}),
        Some(PASSWORD),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // Renewal with the current certificate, and without one.
    let (status, body, renewed, renewed_key) = request_cert_with(
        tls,
        "/api/v1/certificates/renew",
        Some((&recovered, &recovered_key)),
        json!({"validity": "2h"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["not_after"].as_i64().unwrap() - body["not_before"].as_i64().unwrap() <= 7500);
    let (status, body, ..) =
        request_cert_with(tls, "/api/v1/certificates/renew", None, json!({})).await;
    assert_eq!(
        (status, code(&body)),
        (401, "certificate_required"),
        "{body}"
    );
    let (status, body, ..) = request_cert_with(
        tls,
        "/api/v1/certificates/renew",
        Some((&renewed, &renewed_key)),
        json!({"validity": "100000h"}),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "validation_failed"), "{body}");

    // Revoked: refused at once, and it cannot renew itself (passive revocation).
    let serial = mftplus_pki::identity::read_certificate_pem(&renewed)
        .unwrap()
        .serial;
    let (status, body) = send(
        client(tls, None)
            .post(format!("{}/api/v1/certificates/{serial}/revoke", tls.url))
            .header("x-api-key", &tls.cloud.admin_api_key)
            .json(&json!({"reason": "key compromise drill"})),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("revoked")),
        "{body}"
    );
    let (status, body) = desired(tls, a, Some((&renewed, &renewed_key))).await;
    assert!(
        status == 0 || code(&body) == "certificate_revoked",
        "{status} {body}"
    );
    let (status, ..) = request_cert_with(
        tls,
        "/api/v1/certificates/renew",
        Some((&renewed, &renewed_key)),
        json!({}),
    )
    .await;
    assert!(
        status == 0 || status == 401,
        "a revoked certificate renewed: {status}"
    );

    // The CRL, as openssl reads it, lists the serial.
    let crl = client(tls, None)
        .get(format!("{}/api/v1/ca/crl", tls.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(dir.path().join("crl.pem"), &crl).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in"])
        .arg(dir.path().join("crl.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(out.status.success() && text.contains(&serial), "{text}");

    // Expired: a one-second certificate, used after it lapsed.
    let (status, body, short, short_key) = request_cert_with(
        tls,
        "/api/v1/certificates/renew",
        Some((&recovered, &recovered_key)),
        json!({"validity": "1s"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (status, body) = desired(tls, a, Some((&short, &short_key))).await;
    assert_eq!(status, 0, "an expired certificate was accepted: {body}");

    // The operator's view: every certificate of the host, with its status.
    let (status, body) = send(
        client(tls, None)
            .get(format!(
                "{}/api/v1/certificates?subject=host:{}",
                tls.url, a.id
            ))
            .header("x-api-key", &tls.cloud.admin_api_key),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let statuses: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 4, "{body}");
    assert!(statuses.contains(&"revoked"), "{statuses:?}");
}

async fn request_cert_with(
    tls: &Tls,
    path: &str,
    identity: Option<(&str, &str)>,
    extra: Value,
) -> (u16, Value, String, String) {
    request_cert(tls, path, None, identity, extra, None).await
}

async fn enroll_fixture(dir: &Path) -> (Tls, Host, Host) {
    let tls = tls_cloud(dir).await;
    for customer in ["kovacs", "szabo"] {
        let (status, body) = send(
            client(&tls, None)
                .post(format!("{}/api/v1/customers", tls.url))
                .header("x-api-key", &tls.cloud.admin_api_key)
                .json(&json!({"id": customer, "name": "Kovács Kft", "email": "info@kovacs.example.com", "retrieval_password": PASSWORD})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let a = enroll(&tls, "kovacs").await;
    let b = enroll(&tls, "szabo").await;
    (tls, a, b)
}
