//! `HttpWebhookSender` against a real HTTP receiver (axum on 127.0.0.1:0) that records what
//! arrives and answers with a status the test chooses.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use mftplus_base::Secret;
use mftplus_notify::{
    verify_signature, HttpWebhookSender, NotifyError, WebhookSender, EVENT_HEADER, ID_HEADER,
    SIGNATURE_HEADER,
};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    status: StatusCode,
    delay: Duration,
}

async fn record(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.received.lock().unwrap().push(Received { headers, body });
    tokio::time::sleep(r.delay).await;
    r.status
}

async fn start(status: StatusCode, delay: Duration) -> (String, Arc<Mutex<Vec<Received>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/hook", post(record))
        .with_state(Receiver {
            received: received.clone(),
            status,
            delay,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), received)
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers.get(name).unwrap().to_str().unwrap()
}

#[tokio::test]
async fn posts_signed_json_with_event_and_id() {
    let (url, received) = start(StatusCode::NO_CONTENT, Duration::ZERO).await;
    let sender = HttpWebhookSender::new(Duration::from_secs(5)).unwrap();
    let secret = Secret::new("whsec-1");
    let payload = json!({"kind": "host_down", "host_id": "host-7", "text": "Nem elérhető"});
    sender
        .send(&url, &secret, "host_down", "dlv-42", &payload)
        .await
        .unwrap();

    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(header(r, "content-type"), "application/json");
    assert_eq!(header(r, EVENT_HEADER), "host_down");
    assert_eq!(header(r, ID_HEADER), "dlv-42");
    let sig = header(r, SIGNATURE_HEADER);
    assert!(sig.starts_with("sha256="), "{sig}");
    assert!(verify_signature(b"whsec-1", &r.body, sig));
    assert!(!verify_signature(b"another-secret", &r.body, sig));
    let mut tampered = r.body.to_vec();
    tampered.push(b' ');
    assert!(!verify_signature(b"whsec-1", &tampered, sig));
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body, payload);
}

#[tokio::test]
async fn non_2xx_is_an_error_with_the_status() {
    let (url, received) = start(StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO).await;
    let sender = HttpWebhookSender::new(Duration::from_secs(5)).unwrap();
    let err = sender
        .send(&url, &Secret::new("s"), "op_failed", "dlv-1", &json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NotifyError::WebhookStatus { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(received.lock().unwrap().len(), 1);

    let (url, _) = start(StatusCode::MOVED_PERMANENTLY, Duration::ZERO).await;
    let err = sender
        .send(&url, &Secret::new("s"), "op_failed", "dlv-2", &json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NotifyError::WebhookStatus { status: 301, .. }),
        "a redirect is not a delivery: {err:?}"
    );
}

#[tokio::test]
async fn a_slow_receiver_times_out() {
    let (url, _) = start(StatusCode::OK, Duration::from_secs(10)).await;
    let sender = HttpWebhookSender::new(Duration::from_millis(300)).unwrap();
    let started = Instant::now();
    let err = sender
        .send(&url, &Secret::new("s"), "host_down", "dlv-3", &json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NotifyError::Http(ref e) if e.is_timeout()),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_down_receiver_is_an_http_error() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}/hook", socket.local_addr().unwrap());
    let sender = HttpWebhookSender::new(Duration::from_secs(2)).unwrap();
    let err = sender
        .send(&url, &Secret::new("s"), "host_down", "dlv-4", &json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NotifyError::Http(ref e) if e.is_connect()),
        "{err:?}"
    );
}
