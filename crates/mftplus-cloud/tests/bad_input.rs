//! Bad input gets a 4xx with a stable code and a message, never a 500, and never a partial write.

mod common;

use common::*;
use mftplus_cloud::testing::TestCloud;
use serde_json::json;

async fn user_count(cloud: &TestCloud) -> u64 {
    cloud.state.store.count_users().await.unwrap()
}

async fn raw(cloud: &TestCloud, content_type: &str, body: Vec<u8>) -> Reply {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/users", cloud.url))
        .header("X-API-Key", &cloud.admin_api_key)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or_default();
    Reply {
        status,
        body,
        headers,
    }
}

#[tokio::test]
async fn malformed_bodies_have_stable_codes_and_write_nothing() {
    let cloud = TestCloud::spawn().await;
    let before = user_count(&cloud).await;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "application/json",
            b"{\"email\": ".to_vec(),
            400,
            "invalid_json",
        ),
        (
            "application/json",
            b"not json at all".to_vec(),
            400,
            "invalid_json",
        ),
        (
            "text/plain",
            b"{\"email\":\"a@example.com\"}".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "application/json",
            br#"{"email":"a@example.com","rolee":"admin"}"#.to_vec(),
            400,
            "validation_failed",
        ),
        (
            "application/json",
            br#"{"email":42}"#.to_vec(),
            400,
            "validation_failed",
        ),
        (
            "application/json",
            br#"{"name":"no email"}"#.to_vec(),
            400,
            "validation_failed",
        ),
        (
            "application/json",
            format!(
                r#"{{"email":"big@example.com","name":"{}"}}"#,
                "x".repeat(2 * 1024 * 1024)
            )
            .into_bytes(),
            413,
            "payload_too_large",
        ),
    ];
    for (content_type, body, status, code) in cases {
        let reply = raw(&cloud, content_type, body).await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{:?}",
            reply.body
        );
        assert!(!reply.body["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(user_count(&cloud).await, before);
}

#[tokio::test]
async fn semantic_validation_errors() {
    let cloud = TestCloud::spawn().await;
    let key = admin(&cloud);
    let before = user_count(&cloud).await;
    let cases = [
        (json!({"email": "not-an-email"}), "invalid_email"),
        (json!({"email": "a@b"}), "invalid_email"),
        (
            json!({"email": "weak@example.com", "password": "short"}),
            "weak_password",
        ),
        (
            json!({"email": "role@example.com", "role": "superuser"}),
            "invalid_role",
        ),
        (
            json!({"email": "svc@example.com", "type": "service", "password": "a long enough password"}),
            "validation_failed",
        ),
        (
            json!({"email": "ctl@example.com", "name": "bad\u{7}name"}),
            "validation_failed",
        ),
    ];
    for (body, code) in cases {
        let reply = call(&cloud, &key, "POST", "/api/v1/users", Some(body.clone())).await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, code),
            "{body}: {:?}",
            reply.body
        );
    }
    assert_eq!(user_count(&cloud).await, before);

    let dup = call(
        &cloud,
        &key,
        "POST",
        "/api/v1/users",
        Some(json!({"email": "ADMIN@example.com"})),
    )
    .await;
    assert_eq!((dup.status, dup.code()), (409, "conflict"));

    let keys_before = cloud.state.store.list_api_keys(None).await.unwrap().len();
    for (expires, code) in [
        ("90x", "invalid_duration"),
        ("0d", "invalid_duration"),
        ("91d", "invalid_duration"),
        ("-1d", "invalid_duration"),
    ] {
        let reply = call(
            &cloud,
            &key,
            "POST",
            "/api/v1/apikeys",
            Some(json!({"name": "k", "expires": expires})),
        )
        .await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, code),
            "{expires}: {:?}",
            reply.body
        );
    }
    let nameless = call(
        &cloud,
        &key,
        "POST",
        "/api/v1/apikeys",
        Some(json!({"name": "  "})),
    )
    .await;
    assert_eq!(
        (nameless.status, nameless.code()),
        (400, "validation_failed")
    );
    assert_eq!(
        cloud.state.store.list_api_keys(None).await.unwrap().len(),
        keys_before
    );

    let empty_update = call(
        &cloud,
        &key,
        "PATCH",
        "/api/v1/users/admin@example.com",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (empty_update.status, empty_update.code()),
        (400, "validation_failed")
    );
    let bad_limit = call(&cloud, &key, "GET", "/api/v1/audit?limit=0", None).await;
    assert_eq!(
        (bad_limit.status, bad_limit.code()),
        (400, "validation_failed")
    );
    let bad_query = call(&cloud, &key, "GET", "/api/v1/audit?after_seq=abc", None).await;
    assert_eq!(
        (bad_query.status, bad_query.code()),
        (400, "validation_failed")
    );
    let bad_format = call(&cloud, &key, "GET", "/api/v1/audit/export?format=xml", None).await;
    assert_eq!(
        (bad_format.status, bad_format.code()),
        (400, "validation_failed")
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let cloud = TestCloud::spawn().await;
    let missing = call(&cloud, &admin(&cloud), "GET", "/api/v1/nope", None).await;
    assert_eq!((missing.status, missing.code()), (404, "not_found"));
    let method = call(&cloud, &admin(&cloud), "PUT", "/api/v1/users", None).await;
    assert_eq!((method.status, method.code()), (405, "method_not_allowed"));
    let metrics = call(&cloud, &admin(&cloud), "GET", "/metrics", None).await;
    assert_eq!(
        metrics.status, 404,
        "metrics must not be on the API listener"
    );
    let unknown_key = call(
        &cloud,
        &admin(&cloud),
        "GET",
        "/api/v1/server-config/auth.jwt.nope",
        None,
    )
    .await;
    assert_eq!((unknown_key.status, unknown_key.code()), (404, "not_found"));
}

/// A path parameter that does not parse (a chunk index that is not a number, one past u64, a
/// broken percent-encoding) is a coded JSON 400, never a plain-text answer.
#[tokio::test]
async fn bad_path_parameters_answer_coded_json() {
    let cloud = TestCloud::spawn().await;
    for path in [
        "/api/v1/transfers/some-id/chunks/not-a-number",
        "/api/v1/transfers/some-id/chunks/99999999999999999999999",
        "/api/v1/transfers/some-id/chunks/-1",
        "/api/v1/users/%FF%FE",
    ] {
        let reply = call(&cloud, &admin(&cloud), "GET", path, None).await;
        assert_eq!(
            (reply.status, reply.code()),
            (400, "validation_failed"),
            "{path}: {:?}",
            reply.body
        );
    }
}

/// One raw HTTP/1.1 exchange on a fresh connection: (status, body as JSON or text).
async fn raw_exchange(cloud: &TestCloud, head: &str) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = cloud.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the server answers and closes")
    .unwrap();
    let text = String::from_utf8_lossy(&answer);
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let body = serde_json::from_str(body).unwrap_or(json!(body));
    (status, body)
}

#[tokio::test]
async fn oversized_heads_and_too_many_connections_answer_coded_json() {
    let cloud = TestCloud::spawn_with(mftplus_cloud::testing::TestOptions {
        config_yaml: format!(
            "{}server:\n  limits:\n    max_connections_per_address: 4\n    max_uri_bytes: 2048\n    max_header_count: 20\n    max_header_bytes: 8192\n",
            mftplus_cloud::testing::TestOptions::default().config_yaml
        ),
        ..Default::default()
    })
    .await;
    let (status, body) = raw_exchange(
        &cloud,
        &format!(
            "GET /api/v1/health?{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "a".repeat(3000)
        ),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (414, Some("uri_too_long"))
    );

    let many: String = (0..30).map(|i| format!("x-filler-{i}: 1\r\n")).collect();
    let (status, body) = raw_exchange(
        &cloud,
        &format!("GET /api/v1/health HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (431, Some("headers_too_large"))
    );

    let big = format!("x-big: {}\r\n", "b".repeat(9000));
    let (status, body) = raw_exchange(
        &cloud,
        &format!("GET /api/v1/health HTTP/1.1\r\nHost: x\r\n{big}Connection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (431, Some("headers_too_large"))
    );

    // Four idle connections from this address hold every slot it may have: the fifth is
    // answered 503 and closed; once they go, requests are served again.
    let mut held = Vec::new();
    for _ in 0..4 {
        let addr = cloud.url.trim_start_matches("http://");
        held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (status, body) = raw_exchange(
        &cloud,
        "GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("too_many_connections"))
    );
    // An HTTP client library reads the refusal as an answer, not as a broken connection: the
    // server waits for the request before it answers.
    let client = reqwest::Client::new()
        .get(format!("{}/api/v1/health", cloud.url))
        .send()
        .await
        .expect("a 503, not a protocol error");
    assert_eq!(client.status(), 503);
    let body: serde_json::Value = client.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_connections");
    drop(held);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (status, _) = raw_exchange(
        &cloud,
        "GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_handler_past_its_budget_is_told_to_the_client_and_still_finishes() {
    let cloud = TestCloud::spawn_with(mftplus_cloud::testing::TestOptions {
        config_yaml: format!(
            "{}server:\n  limits:\n    handler_seconds: 1\n",
            mftplus_cloud::testing::TestOptions::default().config_yaml
        ),
        ..Default::default()
    })
    .await;
    let before = user_count(&cloud).await;
    // Another writer holds the database: the handler waits on it past its budget.
    let url = cloud.state.config.config.database.url.clone().unwrap();
    let path = url.expose().trim_start_matches("sqlite://").to_string();
    let blocker = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        std::thread::sleep(std::time::Duration::from_secs(3));
        conn.execute_batch("COMMIT").unwrap();
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let reply = call(
        &cloud,
        &admin(&cloud),
        "POST",
        "/api/v1/users",
        Some(json!({"email": "late@example.com", "password": "a long enough password", "role": "user"})),
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(
        (reply.status, reply.code()),
        (503, "unavailable"),
        "{:?}",
        reply.body
    );
    assert!(reply.headers.contains_key("retry-after"));
    assert!(
        waited < std::time::Duration::from_millis(2500),
        "answered after {waited:?}"
    );
    blocker.join().unwrap();
    // The work went on in the background: the user exists once the database is free.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while user_count(&cloud).await == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the handler never finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(cloud
        .state
        .metrics
        .render(0)
        .contains("mftplus_handler_timeouts_total 1"));
}

#[tokio::test]
async fn the_seeds_paths_are_the_apis_with_the_same_authorization() {
    let cloud = TestCloud::spawn().await;
    let listed = call(&cloud, &admin(&cloud), "GET", "/v1/transfers", None).await;
    let api = call(&cloud, &admin(&cloud), "GET", "/api/v1/transfers", None).await;
    assert_eq!((listed.status, &listed.body), (200, &api.body));
    let anonymous = call(&cloud, &Cred::None, "GET", "/v1/transfers?limit=5", None).await;
    assert_eq!(
        (anonymous.status, anonymous.code()),
        (401, "unauthenticated")
    );
    // Seed 002's controller config: the retrieval password is checked as on the API path.
    let config = call_raw(
        &cloud,
        &Cred::None,
        "GET",
        "/config/c-unknown",
        vec![],
        &[("x-retrieval-password".into(), "wrong".into())],
    )
    .await;
    assert_eq!((config.status, config.code()), (401, "invalid_credentials"));
    let lost = call(&cloud, &admin(&cloud), "GET", "/nowhere", None).await;
    assert_eq!((lost.status, lost.code()), (404, "not_found"));
    assert!(lost.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/api/v1/"));
}
