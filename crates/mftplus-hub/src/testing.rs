//! `StandInCloud`: a small local cloud (axum on 127.0.0.1) that speaks phone-home protocol v1
//! (register, heartbeat, validate, 401 `token_revoked`/`unauthenticated`) and offers a few
//! routes for proxy tests: echo, a streamed download, a streaming sink, a slow answer and a raw
//! upgrade echo. It counts accepted TCP connections so tests can see keep-alive reuse, records
//! the host reports it gets (headers and body; answered as the test chooses) for the offline
//! tests, and counts phone-home calls that carried a client's forwarding headers.
//!
//! It stands in for the real cloud until both sides of the protocol meet; it is not the cloud.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// The byte at `offset` of every generated stream: easy to check anywhere in the stream.
pub fn pattern_byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

pub fn pattern_chunk(offset: u64, len: usize) -> Bytes {
    (0..len as u64).map(|i| pattern_byte(offset + i)).collect()
}

#[derive(Debug, Default)]
pub struct CloudState {
    /// deploy key → revoked?
    keys: Mutex<HashMap<String, bool>>,
    /// (deploy key, hostname) → hub id
    hubs: Mutex<HashMap<(String, String), String>>,
    pub heartbeat_interval_seconds: u64,
    pub registrations: AtomicUsize,
    pub heartbeats: AtomicUsize,
    pub validations: AtomicUsize,
    /// TCP connections accepted, all routes together.
    pub connections: AtomicUsize,
    pub last_register: Mutex<Option<Value>>,
    pub last_heartbeat: Mutex<Option<Value>>,
    /// Every `POST /api/v1/host-report`, in arrival order, with what it was answered.
    pub reports: Mutex<Vec<Recorded>>,
    /// The answer to host reports: status and JSON body; `None` is 200 with an envelope.
    pub report_answer: Mutex<Option<(u16, Value)>>,
    /// Phone-home calls that carried a forwarding header (`hubs::forwarding::CLIENT_SUPPLIED`):
    /// the hub's own calls must carry none.
    pub phone_home_forwarded: AtomicUsize,
}

/// A request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Header name → every value, as received.
    pub headers: BTreeMap<String, Vec<String>>,
    pub body: Value,
    /// The status it was answered with.
    pub status: u16,
}

impl Recorded {
    /// The values of header `name`.
    pub fn header(&self, name: &str) -> Vec<String> {
        self.headers.get(name).cloned().unwrap_or_default()
    }
}

pub struct StandInCloud {
    pub addr: SocketAddr,
    pub state: Arc<CloudState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl StandInCloud {
    /// Listens on 127.0.0.1:0 and accepts `keys` as deploy keys.
    pub async fn start(keys: &[&str]) -> StandInCloud {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        StandInCloud::start_on(listener, keys).await
    }

    /// On a listener the test bound (to come up on an address a hub already tries).
    pub async fn start_on(listener: TcpListener, keys: &[&str]) -> StandInCloud {
        StandInCloud::start_answering(listener, keys, None).await
    }

    /// Like [`StandInCloud::start_on`], answering host reports with `report_answer` from the
    /// first one on (see [`CloudState::report_answer`]).
    pub async fn start_answering(
        listener: TcpListener,
        keys: &[&str],
        report_answer: Option<(u16, Value)>,
    ) -> StandInCloud {
        let state = Arc::new(CloudState {
            keys: Mutex::new(keys.iter().map(|k| (k.to_string(), false)).collect()),
            heartbeat_interval_seconds: 60,
            report_answer: Mutex::new(report_answer),
            ..CloudState::default()
        });
        let addr = listener.local_addr().expect("address");
        let counter = state.clone();
        let listener = listener.tap_io(move |_| {
            counter.connections.fetch_add(1, Ordering::SeqCst);
        });
        let app = Router::new()
            .route(
                "/api/v1/health",
                get(|| async { Json(json!({"status":"ok"})) }),
            )
            .route("/api/v1/hubs/register", post(register))
            .route("/api/v1/hubs/{hub_id}/heartbeat", post(heartbeat))
            .route("/api/v1/hubs/{hub_id}/validate", post(validate))
            .route("/api/v1/host-report", post(host_report))
            .route("/api/v1/echo", any(echo))
            .route("/api/v1/echo/{*rest}", any(echo))
            .route("/api/v1/stream", get(stream))
            .route("/api/v1/sink", post(sink))
            .route("/api/v1/slow", get(slow))
            .route("/api/v1/upgrade", get(upgrade))
            .with_state(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        StandInCloud {
            addr,
            state,
            stop: Some(stop),
            task,
        }
    }

    /// What a hub's `CLOUD_API_URL` is set to.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// The host reports received so far.
    pub fn reports(&self) -> Vec<Recorded> {
        self.state.reports.lock().expect("reports").clone()
    }

    /// From now on, answer host reports with `answer` (`None`: 200 with an envelope).
    pub fn answer_reports_with(&self, answer: Option<(u16, Value)>) {
        *self.state.report_answer.lock().expect("answer") = answer;
    }

    pub fn revoke(&self, key: &str) {
        self.state
            .keys
            .lock()
            .expect("keys")
            .insert(key.to_string(), true);
    }

    /// Stops accepting and closes idle connections.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        self.task.abort();
    }
}

fn refuse(code: &str) -> Response {
    let body = json!({"error": {"code": code, "message": "deploy key not accepted"}});
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

/// The caller's deploy key, or the 401 the protocol prescribes.
fn authenticate(state: &CloudState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let forwarding = mftplus_types::hubs::forwarding::CLIENT_SUPPLIED;
    if forwarding.iter().any(|name| headers.contains_key(*name)) {
        state.phone_home_forwarded.fetch_add(1, Ordering::SeqCst);
    }
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    match state.keys.lock().expect("keys").get(&key) {
        Some(false) => Ok(key),
        Some(true) => Err(Box::new(refuse("token_revoked"))),
        None => Err(Box::new(refuse("unauthenticated"))),
    }
}

fn registered(state: &CloudState, hub_id: &str) -> Value {
    json!({
        "hub_id": hub_id,
        "heartbeat_interval_seconds": state.heartbeat_interval_seconds,
        "license_mode": "evaluation",
        "latest_version": "0.1.0",
        "versions_behind": 0,
        "warning": null,
    })
}

async fn register(
    State(state): State<Arc<CloudState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let key = match authenticate(&state, &headers) {
        Ok(key) => key,
        Err(refused) => return *refused,
    };
    state.registrations.fetch_add(1, Ordering::SeqCst);
    let hostname = body["hostname"].as_str().unwrap_or_default().to_string();
    *state.last_register.lock().expect("last") = Some(body);
    let hub_id = {
        let mut hubs = state.hubs.lock().expect("hubs");
        let next = hubs.len() as u64 + 1;
        hubs.entry((key, hostname))
            .or_insert_with(|| format!("hub_{:016x}", 0xabc1_23de_f456_0000 + next))
            .clone()
    };
    Json(registered(&state, &hub_id)).into_response()
}

fn owns(state: &CloudState, key: &str, hub_id: &str) -> bool {
    state
        .hubs
        .lock()
        .expect("hubs")
        .iter()
        .any(|((k, _), id)| k == key && id == hub_id)
}

async fn heartbeat(
    State(state): State<Arc<CloudState>>,
    Path(hub_id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let key = match authenticate(&state, &headers) {
        Ok(key) => key,
        Err(refused) => return *refused,
    };
    if !owns(&state, &key, &hub_id) {
        return StatusCode::FORBIDDEN.into_response();
    }
    state.heartbeats.fetch_add(1, Ordering::SeqCst);
    *state.last_heartbeat.lock().expect("last") = Some(body);
    Json(json!({"status":"ok","heartbeat_interval_seconds": state.heartbeat_interval_seconds}))
        .into_response()
}

async fn validate(
    State(state): State<Arc<CloudState>>,
    Path(hub_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let key = match authenticate(&state, &headers) {
        Ok(key) => key,
        Err(refused) => return *refused,
    };
    if !owns(&state, &key, &hub_id) {
        return StatusCode::FORBIDDEN.into_response();
    }
    state.validations.fetch_add(1, Ordering::SeqCst);
    Json(registered(&state, &hub_id)).into_response()
}

/// Records the report and answers as [`CloudState::report_answer`] says.
async fn host_report(State(state): State<Arc<CloudState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let answer = state.report_answer.lock().expect("answer").clone();
    let (status, answer) = answer.unwrap_or_else(|| {
        let envelope = json!({"poll_interval_seconds": 60, "blocked": false,
            "desired_generation": 0, "has_signed_ops": false});
        (200, envelope)
    });
    state.reports.lock().expect("reports").push(Recorded {
        headers: header_map(&parts.headers),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        status,
    });
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(answer)).into_response()
}

fn header_map(headers: &HeaderMap) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        map.entry(name.as_str().to_string())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    map
}

/// Answers with what arrived: method, path, query, every header (all values), the body. With
/// `x-echo-hop` it also answers with hop-by-hop headers the hub must drop.
async fn echo(request: Request) -> Response {
    let hop = request.headers().contains_key("x-echo-hop");
    let mut response = echo_body(request).await.into_response();
    if hop {
        let headers = response.headers_mut();
        headers.insert(
            header::CONNECTION,
            header::HeaderValue::from_static("x-secret"),
        );
        headers.insert("x-secret", header::HeaderValue::from_static("1"));
        headers.insert("keep-alive", header::HeaderValue::from_static("timeout=5"));
        headers.insert(
            "proxy-authenticate",
            header::HeaderValue::from_static("Basic"),
        );
        headers.insert("x-end-to-end", header::HeaderValue::from_static("kept"));
    }
    response
}

async fn echo_body(request: Request) -> Json<Value> {
    let (parts, body) = request.into_parts();
    let headers = header_map(&parts.headers);
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Json(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&bytes),
    }))
}

/// `?bytes=N`: N pattern bytes in 64 KiB chunks, generated as they are sent.
async fn stream(Query(query): Query<HashMap<String, u64>>) -> Response {
    const CHUNK: u64 = 64 * 1024;
    let total = query.get("bytes").copied().unwrap_or(0);
    let chunks = futures_util::stream::iter((0..total.div_ceil(CHUNK)).map(move |i| {
        let offset = i * CHUNK;
        let len = CHUNK.min(total - offset) as usize;
        Ok::<_, std::io::Error>(pattern_chunk(offset, len))
    }));
    Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from_stream(chunks))
        .expect("response")
}

/// Reads a body chunk by chunk, checking the pattern, and reports what it saw.
async fn sink(request: Request) -> Json<Value> {
    let mut stream = request.into_body().into_data_stream();
    let mut seen: u64 = 0;
    let mut pattern_ok = true;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return Json(json!({"bytes": seen, "pattern_ok": false, "error": true}));
        };
        for (i, byte) in chunk.iter().enumerate() {
            if *byte != pattern_byte(seen + i as u64) {
                pattern_ok = false;
            }
        }
        seen += chunk.len() as u64;
    }
    Json(json!({"bytes": seen, "pattern_ok": pattern_ok}))
}

/// `?ms=N`: waits before answering.
async fn slow(Query(query): Query<HashMap<String, u64>>) -> &'static str {
    let ms = query.get("ms").copied().unwrap_or(1000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "finally"
}

/// A raw HTTP/1.1 upgrade to protocol `echo`: every byte sent after the 101 comes back.
async fn upgrade(mut request: Request) -> Response {
    let asked = request
        .headers()
        .get(header::UPGRADE)
        .cloned()
        .unwrap_or_else(|| header::HeaderValue::from_static("echo"));
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let io = hyper_util::rt::TokioIo::new(upgraded);
            let (mut read, mut write) = tokio::io::split(io);
            let _ = tokio::io::copy(&mut read, &mut write).await;
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, asked)
        .body(Body::empty())
        .expect("response")
}
