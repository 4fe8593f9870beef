//! Notifications end to end: a real cloud sends fleet events to a real SMTP server (aiosmtpd)
//! and a real HTTP receiver, in two tiers — operators in English, the customer in Hungarian —
//! with the per-event cooldown, recoveries exempt, and every attempt in `notification_log`.

mod common;
mod fleet_support;

use axum::body::Bytes;
use axum::http::HeaderMap;
use common::*;
use fleet_support::*;
use mftplus_cloud::fleet::checker;
use mftplus_cloud::testing::{TestCloud, TestOptions};
use mftplus_notify::testing::{ServerTls, SmtpServer};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

const WEBHOOK_SECRET: &str = "webhook-shared-secret-0123456789";

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A real HTTP receiver on 127.0.0.1 that records every delivery.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn subjects(smtp: &SmtpServer) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = smtp
        .messages()
        .iter()
        .map(|m| {
            (
                m["rcpt_to"].as_str().unwrap().to_string(),
                m["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn two_tiers_with_cooldown_and_recoveries_exempt() {
    let smtp = SmtpServer::start(ServerTls::None, None);
    let (hook_url, received) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("webhook.secret");
    std::fs::write(&secret_file, WEBHOOK_SECRET).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = format!(
        "rate_limit:\n  per_credential_per_minute: 100000\n  per_address_per_minute: 100000\n\
         notifications:\n  operator_emails: [ops@fleet.test]\n  cooldown: 6h\n  smtp:\n    host: 127.0.0.1\n    port: {}\n    from: \"MFTPlus <noreply@fleet.test>\"\n    tls: none\n  webhooks:\n    - url: {hook_url}\n      secret_file: {}\n",
        smtp.port,
        secret_file.display()
    );
    let cloud = TestCloud::spawn_with(TestOptions {
        config_yaml: config,
        ..TestOptions::default()
    })
    .await;
    let grace = cloud.state.clock.now_ms();
    let host = enroll(&cloud).await;
    send_report(&cloud, &host, report(&host.host_id, 0)).await;

    // Stale: operators only (email and webhook).
    cloud.clock.advance_secs(31 * 60);
    checker::pass(&cloud.state, grace).await;
    let host_name = &host.host_id;
    assert_eq!(
        subjects(&smtp),
        [(
            "ops@fleet.test".to_string(),
            format!("[Kovács Kft] Host stale: {host_name}")
        )]
    );

    // Down: operators in English, the customer in Hungarian.
    cloud.clock.advance_secs(30 * 60);
    checker::pass(&cloud.state, grace).await;
    let all = subjects(&smtp);
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.contains(&(
        "ops@fleet.test".into(),
        format!("[Kovács Kft] Host down: {host_name}")
    )));
    let customer_mail = all
        .iter()
        .find(|(to, _)| to == "info@kovacs.example.com")
        .expect("customer mail");
    assert!(
        customer_mail.1.contains("Nem elérhető a szerver"),
        "{customer_mail:?}"
    );

    // Recovered, then stale and down again within the cooldown: held back; the second
    // recovery is not.
    send_report(&cloud, &host, report(&host.host_id, 0)).await;
    checker::pass(&cloud.state, grace).await;
    assert_eq!(subjects(&smtp).len(), 5);
    cloud.clock.advance_secs(61 * 60);
    checker::pass(&cloud.state, grace).await;
    assert_eq!(
        subjects(&smtp).len(),
        5,
        "the cooldown holds back a second down"
    );
    send_report(&cloud, &host, report(&host.host_id, 0)).await;
    checker::pass(&cloud.state, grace).await;
    let all = subjects(&smtp);
    assert_eq!(all.len(), 7, "{all:?}");
    assert_eq!(
        all.iter()
            .filter(|(_, s)| s.contains("Újra elérhető"))
            .count(),
        2
    );

    // Every webhook delivery is signed over its exact body.
    let deliveries = received.lock().unwrap().clone();
    assert!(!deliveries.is_empty());
    for (headers, body) in &deliveries {
        let signature = headers["x-webhook-signature"].to_str().unwrap();
        assert!(mftplus_notify::verify_signature(
            WEBHOOK_SECRET.as_bytes(),
            body,
            signature
        ));
        assert!(!mftplus_notify::verify_signature(
            b"another secret",
            body,
            signature
        ));
        let payload: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(payload["event"]["host_id"], host.host_id.as_str());
    }
    let kinds: Vec<String> = deliveries
        .iter()
        .map(|(headers, _)| headers["x-webhook-event"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "host_stale",
            "host_down",
            "host_recovered",
            "host_recovered"
        ]
    );

    let log = call(
        &cloud,
        &admin(&cloud),
        "GET",
        "/api/v1/notifications?limit=100",
        None,
    )
    .await;
    let statuses: Vec<&str> = log
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["status"].as_str().unwrap())
        .collect();
    assert!(statuses.contains(&"suppressed"), "{statuses:?}");
    assert!(!statuses.contains(&"failed"), "{}", log.body);
    assert_eq!(
        json!(statuses.iter().filter(|s| **s == "sent").count()),
        json!(7 + deliveries.len())
    );
}
