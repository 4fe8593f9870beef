//! Transport behaviour of the client that the real cloud cannot show, because it never does these
//! things: a redirecting server and a closed port.
//!
//! The stand-in server here is acceptable under the house rule (tests run against real
//! components) because it does not imitate our API: it models a third-party intermediary (a
//! hostile or misconfigured proxy that answers with a redirect). Everything the client does
//! against our API is tested against the real cloud in `crates/mftplus-cloud/tests/client.rs`.

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use mftplus_client::{Client, Credential, Method};

/// An intermediary that sends every request elsewhere (to the discard port, which nobody serves).
async fn spawn_redirector() -> String {
    let app = Router::new().route(
        "/redirect",
        get(|| async { (StatusCode::FOUND, [("location", "http://127.0.0.1:9/")]) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let base = spawn_redirector().await;
    let client = Client::new(&base, Credential::ApiKey("mftpk_k".into())).unwrap();
    let (status, headers, _) = client
        .request(Method::GET, "/redirect", None)
        .await
        .unwrap();
    // Following it would hand the API key to whatever the redirect points at.
    assert_eq!(status, 302);
    assert_eq!(headers["location"], "http://127.0.0.1:9/");
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
