//! Query building, and where each credential goes on the wire. The request recorder below is
//! not a stand-in for the cloud: it answers every request alike and only lets the test see the
//! headers the client sent (which key reached which route). What the fleet routes do is tested
//! against the real cloud once its handlers exist.

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::Router;
use mftplus_types::fleet::{EnrollRequest, EnrollResponse, EscrowUpload};

use super::*;

#[test]
fn op_query_joins_statuses() {
    let query = OpQuery {
        statuses: vec!["pending_signature".into(), "signed".into()],
        host: Some("h-1".into()),
    };
    assert_eq!(
        query.pairs(),
        vec![
            ("status", "pending_signature,signed".to_string()),
            ("host", "h-1".to_string())
        ]
    );
    assert!(OpQuery::default().pairs().is_empty());
}

#[test]
fn event_query_sends_only_what_is_set() {
    let query = EventQuery {
        kind: Some("host_down".into()),
        after_id: Some(41),
        limit: Some(10),
        ..EventQuery::default()
    };
    assert_eq!(
        query.pairs(),
        vec![
            ("kind", "host_down".to_string()),
            ("after_id", "41".to_string()),
            ("limit", "10".to_string())
        ]
    );
    let guests = GuestQuery {
        customer: Some("acme".into()),
        host: None,
    };
    assert_eq!(guests.pairs(), vec![("customer", "acme".to_string())]);
}

#[test]
fn paths_are_filled_and_encoded() {
    assert_eq!(
        host_path(routes::HOST_RECOVERY, "h 1"),
        "/api/v1/hosts/h%201/recovery"
    );
    assert_eq!(
        customer_path(routes::CUSTOMER_GEO_REMOVE_ALL, "acme"),
        "/api/v1/customers/acme/geo/remove-all"
    );
}

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    authorization: Option<String>,
    api_key: Option<String>,
    password: Option<String>,
}

async fn spawn_recorder() -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let answer = serde_json::to_string(&EnrollResponse {
        host_id: "h-1".into(),
        customer_id: "acme".into(),
        host_key: "mfth_new".into(),
        operator_keys: String::new(),
        poll_interval_seconds: 300,
    })
    .unwrap();
    let app = Router::new().fallback(move |request: Request| {
        let log = log.clone();
        let answer = answer.clone();
        async move {
            let header = |name: &str| {
                request
                    .headers()
                    .get(name)
                    .map(|v| String::from_utf8(v.as_bytes().to_vec()).unwrap())
            };
            log.lock().unwrap().push(Seen {
                method: request.method().to_string(),
                uri: request.uri().to_string(),
                authorization: header("authorization"),
                api_key: header("x-api-key"),
                password: header(RETRIEVAL_PASSWORD_HEADER),
            });
            answer
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn host_key_is_a_bearer_and_never_rides_with_the_password() {
    let (base, seen) = spawn_recorder().await;
    let agent = AgentClient::new(&base, "mfth_secret").unwrap();
    let escrow = EscrowUpload {
        backup_namespace: "ns".into(),
        repository_fingerprint: "fp".into(),
        wrapped_key: "wk".into(),
    };
    agent.escrow("h-1", &escrow).await.unwrap();
    let enrolled = agent
        .enroll(
            &EnrollRequest {
                customer_id: "acme".into(),
                hostname: "box".into(),
                agent_version: "1".into(),
                platform: None,
            },
            "jelszó-titok",
        )
        .await
        .unwrap();
    assert_eq!(enrolled.host_key, "mfth_new");
    let text = agent
        .controller_config("acme", "pw", ConfigFormat::Json)
        .await
        .unwrap();
    assert!(text.contains("mfth_new"), "{text}");
    agent
        .with_key("mftg_guest")
        .guest_report(&GuestReport {
            guest_id: None,
            controller_version: None,
            cpu_percent: None,
            memory_used_bytes: None,
            memory_total_bytes: None,
            apps: vec![],
            geo: None,
            log_issues: vec![],
        })
        .await
        .unwrap();

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:#?}");
    assert_eq!(seen[0].method, "PUT");
    assert_eq!(seen[0].uri, "/api/v1/hosts/h-1/escrow");
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer mfth_secret"));
    assert_eq!(seen[0].password, None);
    assert_eq!(seen[0].api_key, None);

    assert_eq!(seen[1].uri, "/api/v1/enroll");
    assert_eq!(seen[1].authorization, None);
    // A Hungarian passphrase is not ASCII: it travels as raw UTF-8 bytes in the header, which
    // the server must read as bytes (`HeaderValue::to_str` refuses them).
    assert_eq!(seen[1].password.as_deref(), Some("jelszó-titok"));

    assert_eq!(seen[2].uri, "/api/v1/config/acme?format=json");
    assert_eq!(seen[2].authorization, None);
    assert_eq!(seen[2].password.as_deref(), Some("pw"));

    assert_eq!(seen[3].uri, "/api/v1/report");
    assert_eq!(seen[3].authorization.as_deref(), Some("Bearer mftg_guest"));
}

#[tokio::test]
async fn operator_filters_reach_the_query_string() {
    let (base, seen) = spawn_recorder().await;
    let client = Client::new(&base, Credential::ApiKey("mftpk_op".into())).unwrap();
    // The recorder's answer is not a list, so decoding fails; only the request matters here.
    let _ = client
        .list_ops(&OpQuery {
            statuses: vec!["pending_signature".into()],
            host: Some("h-1".into()),
        })
        .await;
    let _ = client.host_reports("h-1", Some(5)).await;
    client.disarm_recovery("h-1").await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].uri, "/api/v1/ops?status=pending_signature&host=h-1");
    assert_eq!(seen[0].api_key.as_deref(), Some("mftpk_op"));
    assert_eq!(seen[1].uri, "/api/v1/hosts/h-1/reports?limit=5");
    assert_eq!(seen[2].method, "DELETE");
    assert_eq!(seen[2].uri, "/api/v1/hosts/h-1/recovery");
}
