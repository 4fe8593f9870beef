//! The client against a small stand-in server on 127.0.0.1:0: what goes on the wire (headers,
//! paths, queries) and how answers are read. Behaviour of the real server is tested elsewhere,
//! with the real cloud.

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use mftplus_client::{Client, ClientError, Credential, Method, RENEWED_TOKEN_HEADER};
use mftplus_types::api::{CreateApiKeyRequest, ResolveApiKeyRequest};
use mftplus_types::ErrorCode;
use serde_json::{json, Value};

/// Echoes what the client sent, as JSON, for the assertions.
async fn echo(headers: HeaderMap, RawQuery(query): RawQuery) -> Json<Value> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Json(json!({
        "api_key": header("x-api-key"),
        "authorization": header("authorization"),
        "user_agent": header("user-agent"),
        "query": query,
    }))
}

fn api_key_json(id: &str) -> Value {
    json!({
        "id": id, "name": "n", "prefix": "mftpk_ab", "role": "readonly",
        "owner_id": "u1", "owner_email": "a@example.com",
        "created_at": "2026-01-01T00:00:00Z", "expires_at": null,
        "last_used_at": null, "revoked_at": null, "status": "active"
    })
}

async fn spawn() -> String {
    let app = Router::new()
        .route("/echo", get(echo))
        .route("/api/v1/auth/tokens", get(echo))
        .route("/api/v1/audit", get(echo))
        .route(
            "/api/v1/users/{user}",
            get(|Path(user): Path<String>| async move {
                (
                    StatusCode::FORBIDDEN,
                    Json(json!({"error": {"code": "forbidden",
                        "message": format!("role readonly lacks users:manage ({user})")}})),
                )
            }),
        )
        .route(
            "/api/v1/users/{user}/tokens",
            delete(|| async { Json(json!({"revoked": 3})) }),
        )
        .route(
            "/api/v1/status",
            get(|| async {
                (
                    [(RENEWED_TOKEN_HEADER, "fresh.jwt")],
                    Json(json!({"unexpected": true})),
                )
            }),
        )
        .route(
            "/api/v1/apikeys",
            post(|Json(body): Json<CreateApiKeyRequest>| async move {
                (
                    StatusCode::CREATED,
                    Json(json!({"key": format!("mftpk_{}", body.name), "api_key": api_key_json("k1")})),
                )
            }),
        )
        .route(
            "/api/v1/apikeys/resolve",
            post(|Json(body): Json<ResolveApiKeyRequest>| async move {
                assert!(body.key.starts_with("mftpk_"));
                Json(api_key_json("resolved-id"))
            }),
        )
        .route(
            "/api/v1/apikeys/{id}",
            delete(|| async { StatusCode::NO_CONTENT }),
        )
        .route(
            "/api/v1/auth/logout",
            post(|| async { StatusCode::NO_CONTENT.into_response() }),
        )
        .route(
            "/api/v1/audit/export",
            get(|RawQuery(q): RawQuery| async move { format!("seq,event\n1,{}\n", q.unwrap_or_default()) }),
        )
        .route(
            "/proxy-error",
            get(|| async { (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>") }),
        )
        .route(
            "/redirect",
            get(|| async { (StatusCode::FOUND, [("location", "http://127.0.0.1:9/")]) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn echoed(client: &Client, path: &str) -> Value {
    let (status, _, body) = client.request(Method::GET, path, None).await.unwrap();
    assert_eq!(status, 200);
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn sends_the_credential_in_the_right_header() {
    let base = spawn().await;
    let client = Client::new(&base, Credential::ApiKey("mftpk_k".into())).unwrap();
    let seen = echoed(&client, "/echo").await;
    assert_eq!(seen["api_key"], "mftpk_k");
    assert_eq!(seen["authorization"], Value::Null);
    assert!(seen["user_agent"].as_str().unwrap().starts_with("mftctl/"));

    let bearer = client.with_credential(Credential::Bearer("a.b.c".into()));
    let seen = echoed(&bearer, "/echo").await;
    assert_eq!(seen["authorization"], "Bearer a.b.c");
    assert_eq!(seen["api_key"], Value::Null);

    let anonymous = client.with_credential(Credential::None);
    let seen = echoed(&anonymous, "/echo").await;
    assert_eq!(seen["authorization"], Value::Null);
    assert_eq!(seen["api_key"], Value::Null);
}

#[tokio::test]
async fn api_errors_carry_code_and_message() {
    let base = spawn().await;
    let client = Client::new(&format!("{base}/"), Credential::None).unwrap();
    let err = client.get_user("a b@example.com").await.unwrap_err();
    assert!(err.is(ErrorCode::Forbidden));
    // The path parameter arrived decoded, so it was encoded on the way out.
    assert_eq!(
        err.to_string(),
        "forbidden: role readonly lacks users:manage (a b@example.com) (HTTP 403)"
    );

    let (status, _, _) = client
        .request(Method::GET, "/proxy-error", None)
        .await
        .unwrap();
    assert_eq!(status, 502);
    let err = client.server_config("x").await.unwrap_err();
    assert_eq!(err.code(), "http_404");
}

#[tokio::test]
async fn queries_are_encoded() {
    let base = spawn().await;
    let client = Client::new(&base, Credential::None).unwrap();
    // list_tokens decodes the echo as Vec<TokenInfo> and fails; the raw request shows the query.
    let err = client
        .list_tokens(Some("a+b@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Decode(_)), "{err:?}");
    let seen = echoed(&client, "/api/v1/auth/tokens?user=a%2Bb%40example.com").await;
    assert_eq!(seen["query"], "user=a%2Bb%40example.com");

    let text = client.audit_export("csv").await.unwrap();
    assert_eq!(text, "seq,event\n1,format=csv\n");
}

#[tokio::test]
async fn typed_calls_round_trip() {
    let base = spawn().await;
    let client = Client::new(&base, Credential::ApiKey("mftpk_admin".into())).unwrap();
    let created = client
        .create_api_key(CreateApiKeyRequest {
            name: "backup".into(),
            role: Some("readonly".into()),
            expires: Some("90d".into()),
        })
        .await
        .unwrap();
    assert_eq!(created.key, "mftpk_backup");
    assert_eq!(
        client.resolve_api_key("mftpk_backup").await.unwrap().id,
        "resolved-id"
    );
    client.delete_api_key("k1").await.unwrap();
    assert_eq!(
        client
            .revoke_user_tokens("a@example.com")
            .await
            .unwrap()
            .revoked,
        3
    );
}

#[tokio::test]
async fn renewed_token_is_exposed_and_adopted() {
    let base = spawn().await;
    let client = Client::new(&base, Credential::Bearer("old.jwt".into())).unwrap();
    // The body is not a Status, but the header is read before the body.
    assert!(matches!(client.status().await, Err(ClientError::Decode(_))));
    assert_eq!(client.credential(), Credential::Bearer("fresh.jwt".into()));
    assert_eq!(client.take_renewed_token().as_deref(), Some("fresh.jwt"));
    assert_eq!(client.take_renewed_token(), None);
    let seen = echoed(&client, "/echo").await;
    assert_eq!(seen["authorization"], "Bearer fresh.jwt");

    // An API-key client ignores the header: it has no session to renew.
    let keyed = client.with_credential(Credential::ApiKey("mftpk_k".into()));
    let _ = keyed.status().await;
    assert_eq!(keyed.take_renewed_token(), None);
    assert_eq!(keyed.credential(), Credential::ApiKey("mftpk_k".into()));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let base = spawn().await;
    let client = Client::new(&base, Credential::ApiKey("mftpk_k".into())).unwrap();
    let (status, headers, _) = client
        .request(Method::GET, "/redirect", None)
        .await
        .unwrap();
    assert_eq!(status, 302);
    assert!(headers.contains_key("location"));
}

#[tokio::test]
async fn unreachable_server_is_a_transport_error() {
    // Bind then drop, so the port is very likely closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = Client::new(&format!("http://127.0.0.1:{port}"), Credential::None).unwrap();
    let err = client.health().await.unwrap_err();
    assert_eq!(err.code(), "transport");
    assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
}

#[tokio::test]
async fn logout_accepts_no_content() {
    let base = spawn().await;
    let client = Client::new(&base, Credential::Bearer("t".into())).unwrap();
    client.logout().await.unwrap();
}
