//! Offline operation (decision 0011): the queueable writes go through here instead of the
//! streaming proxy: host and guest reports, the agent's signed-op verdicts (which the cloud logs
//! as events) and a recipient's or sender's transfer status updates (`received`, `cancel`).
//! Each is sent to the cloud with an `Idempotency-Key`; when the cloud cannot be reached and
//! the credential is in the auth cache, the write is queued and answered from cached state (the
//! last control envelope the cloud gave that token for a host report, otherwise 202 with
//! `x-hub-offline: queued`). A replay task sends the queue to the cloud in order once it
//! answers again and deletes a row only after the cloud's answer, so a crash mid-replay repeats
//! at most the rows in flight. A repeated report is recognised by its key; a repeated verdict
//! or cancel by the cloud's state machine (409, dropped), a repeated `received` is a no-op.
//!
//! While rows wait, new writes queue behind them even if the cloud is back, so per-host order
//! holds. A cloud that accepts the connection but does not answer within the queue answer
//! budget (`HUB_QUEUE_ANSWER_BUDGET_SECONDS`) counts as unreachable: the write is queued under
//! the key it was sent with, so if the cloud did apply it the replay is a no-op.
//!
//! A write is accepted for the queue only if the cloud would accept its body
//! ([`validate_queueable`], the cloud's own rules), so a queued answer is a promise. What the
//! cloud still refuses on replay (a credential revoked meanwhile: 401, which also evicts the
//! token; a report naming another host: 403) goes to the dead letter ([`dead_letter`]), never
//! silently dropped. Every send carries the agent's address ([`crate::proxy::set_forwarding`]),
//! the replay too.

pub mod dead_letter;
mod replay;

pub use replay::replay;

use crate::auth_cache::{open_db, token_hash, AuthCache, OfflineError, Sealer};
use crate::error::{ProxyError, ProxyErrorKind};
use crate::queue::{self, Enqueuer, QueuedWrite};
use crate::state::HubState;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use mftplus_types::error::ErrorCode;
use mftplus_types::fleet::queueable::QueueableRoute;
use mftplus_types::fleet::{
    is_valid_idempotency_key, validate_queueable, IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_KEY_RULE,
};
use mftplus_types::routes;
use rusqlite::Connection;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const HOST_REPORT: &str = routes::HOST_REPORT;
pub const GUEST_REPORT: &str = routes::GUEST_REPORT;
/// On an answer the hub gave from its queue instead of the cloud's (value `queued`).
pub const OFFLINE_HEADER: &str = "x-hub-offline";
/// Reports are small; the cloud's own limit is far below this.
const MAX_BODY: usize = 4 << 20;
const REFRESH_EVERY_MS: i64 = 60_000;

/// Whether the request is a write the hub may accept while the cloud is down: the two reports,
/// and the status updates the cloud applies at most once without a key (decision 0011).
pub fn queueable(method: &http::Method, path: &str) -> bool {
    method == http::Method::POST && QueueableRoute::of(path).is_some()
}

/// Whether a proxied 2xx on `path` vouches for the caller's credential: only under
/// `/api/v1/transfers`, where every route authenticates. A public route (health, login)
/// answers 2xx whatever credential comes with it, so vouching there would let anyone fill
/// the queue during an outage.
pub fn vouches(path: &str) -> bool {
    routes::is_under(routes::TRANSFERS, path)
}

/// The auth cache, the queue and the cached envelopes, over `HUB_DATA_DIR/hub.db`.
pub struct Offline {
    conn: Arc<Mutex<Connection>>,
    sealer: Arc<Sealer>,
    ttl: Duration,
    max: u64,
    queued: AtomicU64,
    /// Rows in the dead letter.
    dead: AtomicU64,
    full_total: AtomicU64,
    enqueuer: Enqueuer,
    /// Token hash → the last envelope the cloud answered that host key with.
    envelopes: Mutex<HashMap<String, Bytes>>,
    /// Token hash → when the cloud last vouched for it, as its cache row says. Answers positive
    /// lookups without SQLite (whose connection the queue's writer holds while it commits),
    /// and spares a host reporting every minute a rewrite of its row every minute.
    validated: Mutex<HashMap<String, i64>>,
    /// Rows were queued (wakes an idle replay).
    wake: tokio::sync::Notify,
    /// The cloud answered something (cuts a replay's backoff short).
    back: tokio::sync::Notify,
}

impl std::fmt::Debug for Offline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offline")
            .field("queued", &self.queued())
            .field("dead_letter", &self.dead_letter())
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Offline {
    /// Opens the database; the key comes from the deploy key (`secret`).
    pub fn open(
        dir: &std::path::Path,
        secret: &str,
        ttl: Duration,
        max: u64,
    ) -> Result<Offline, OfflineError> {
        Self::open_rotated(dir, secret, None, ttl, max)
    }

    /// [`Offline::open`] after a deploy-key rotation: rows sealed under `previous` (the key
    /// before the rotation) are sealed again under `secret` first (`rewrap.rs`), so the queue
    /// and the auth cache survive the change of key.
    pub fn open_rotated(
        dir: &std::path::Path,
        secret: &str,
        previous: Option<&str>,
        ttl: Duration,
        max: u64,
    ) -> Result<Offline, OfflineError> {
        if secret.is_empty() {
            return Err(OfflineError::NoSecret);
        }
        let (mut conn, sealer) = open_db(dir, secret)?;
        if let Some(previous) = previous.filter(|previous| !previous.is_empty()) {
            let old = crate::rewrap::sealer_for(&conn, previous)?;
            let done = crate::rewrap::rewrap(&mut conn, &old, &sealer)?;
            tracing::info!(
                resealed = done.resealed,
                already_current = done.current,
                unreadable = done.unreadable,
                "hub.db sealed under the new deploy key (HUB_PREVIOUS_REGISTRATION_KEY is no \
                 longer needed once the old key's grace is over)"
            );
            if done.unreadable > 0 {
                tracing::warn!(
                    rows = done.unreadable,
                    "hub.db rows that neither deploy key opens are left as they are and ignored"
                );
            }
        }
        let conn = Arc::new(Mutex::new(conn));
        let sealer = Arc::new(sealer);
        let queued = queue::count(&conn)?;
        let dead = dead_letter::count(&conn)?;
        Ok(Offline {
            enqueuer: Enqueuer::start(conn.clone(), sealer.clone()),
            conn,
            sealer,
            ttl,
            max,
            queued: AtomicU64::new(queued),
            dead: AtomicU64::new(dead),
            full_total: AtomicU64::new(0),
            envelopes: Mutex::new(HashMap::new()),
            validated: Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
            back: tokio::sync::Notify::new(),
        })
    }

    /// A heartbeat or a proxied call got through: the replay resumes now rather than after
    /// its backoff.
    pub fn cloud_is_back(&self) {
        self.back.notify_one();
    }

    /// Rows waiting for the cloud.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::SeqCst)
    }

    /// Rows the cloud refused on replay, waiting for an operator.
    pub fn dead_letter(&self) -> u64 {
        self.dead.load(Ordering::SeqCst)
    }

    /// Writes refused with `hub_queue_full` since start (the metric).
    pub fn queue_full_total(&self) -> u64 {
        self.full_total.load(Ordering::Relaxed)
    }

    pub fn queue_max(&self) -> u64 {
        self.max
    }

    fn cache(&self) -> AuthCache<'_> {
        AuthCache {
            conn: &self.conn,
            sealer: &self.sealer,
            ttl: self.ttl,
        }
    }

    /// Learns from the cloud's answer to `token` on `route`.
    fn observe(&self, route: &str, token: Option<&str>, status: StatusCode, body: &Bytes) {
        let Some(token) = token else { return };
        if status.is_success() {
            self.vouch(token, route);
            if route == HOST_REPORT {
                self.keep_envelope(&token_hash(token), body);
            }
        } else if status == StatusCode::UNAUTHORIZED {
            self.evict(&token_hash(token));
        }
    }

    /// Learns from the cloud's answer to a proxied call: a recipient whose session fetched a
    /// transfer can then still acknowledge it if the link drops before the acknowledgement.
    pub fn observe_proxied(&self, token: &str, status: StatusCode) {
        if status.is_success() {
            self.vouch(token, "proxied");
        } else if status == StatusCode::UNAUTHORIZED {
            self.evict(&token_hash(token));
        }
    }

    /// The cloud just accepted `token` (on `route`): it may authenticate queueable writes while
    /// the cloud is away.
    fn vouch(&self, token: &str, route: &str) {
        let (hash, now) = (token_hash(token), now_ms());
        let stale = {
            let mut validated = self.validated();
            let stale = validated
                .get(&hash)
                .is_none_or(|at| now.saturating_sub(*at) >= REFRESH_EVERY_MS);
            if stale {
                validated.insert(hash, now);
            }
            stale
        };
        if stale {
            if let Err(err) = self.cache().remember(token, route, now) {
                tracing::warn!(error = %err, "cannot update the auth cache");
            }
        }
    }

    fn validated(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        mftplus_base::sync::lock(&self.validated)
    }

    /// Whether `token` may be accepted offline now: known in memory and younger than the TTL,
    /// or else found in `hub.db` (a restarted hub), which is then remembered in memory.
    fn is_cached(&self, token: Option<&str>) -> bool {
        let Some(token) = token else { return false };
        let (hash, now) = (token_hash(token), now_ms());
        let fresh = |at: i64| now.saturating_sub(at) <= self.ttl.as_millis() as i64;
        if self.validated().get(&hash).is_some_and(|at| fresh(*at)) {
            return true;
        }
        match self.cache().lookup(token, now) {
            Ok(Some(entry)) => {
                self.validated().insert(hash, entry.validated_at_ms);
                true
            }
            _ => false,
        }
    }

    /// Remembers the cloud's envelope for a host key, writing `hub.db` only when it changed
    /// (it changes with desired state or blocking, not with every report).
    fn keep_envelope(&self, hash: &str, body: &Bytes) {
        let changed = {
            let mut envelopes = mftplus_base::sync::lock(&self.envelopes);
            let changed = envelopes.get(hash) != Some(body);
            if changed {
                envelopes.insert(hash.to_string(), body.clone());
            }
            changed
        };
        if changed {
            if let Err(err) = self.cache().remember_envelope(hash, body) {
                tracing::warn!(error = %err, "cannot keep the control envelope");
            }
        }
    }

    /// The last envelope for a host key: from memory, else as kept in `hub.db` by an earlier
    /// run of the hub.
    fn last_envelope(&self, hash: &str) -> Option<Bytes> {
        if let Some(found) = mftplus_base::sync::lock(&self.envelopes).get(hash) {
            return Some(found.clone());
        }
        let kept = match self.cache().envelope(hash) {
            Ok(kept) => Bytes::from(kept?),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the kept control envelope");
                return None;
            }
        };
        mftplus_base::sync::lock(&self.envelopes).insert(hash.to_string(), kept.clone());
        Some(kept)
    }

    fn evict(&self, hash: &str) {
        self.validated().remove(hash);
        if let Err(err) = self.cache().evict_hash(hash) {
            tracing::warn!(error = %err, "cannot evict from the auth cache");
        }
        mftplus_base::sync::lock(&self.envelopes).remove(hash);
    }

    /// Queues the write if its credential is cached and the cloud would accept its body, and
    /// answers from cached state.
    async fn accept(&self, taken: Taken) -> Response {
        let Taken {
            route,
            token,
            key,
            body,
            client_cert,
            content_type,
            client,
        } = taken;
        let route = route.as_str();
        let Some(token) = token.as_deref().filter(|t| self.is_cached(Some(t))) else {
            return error(
                ErrorCode::CloudUnreachable,
                "the cloud is unreachable and this credential is not in the hub's auth cache",
            );
        };
        // Refused now with the cloud's own code rather than answered "accepted" and refused
        // at replay.
        if let Err(invalid) = validate_queueable(route, content_type.as_deref(), &body) {
            return error(invalid.code, &invalid.message);
        }
        if self.queued() >= self.max {
            self.full_total.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(max = self.max, "offline queue full; refusing a write");
            return error(
                ErrorCode::HubQueueFull,
                "the cloud is unreachable and the hub's offline queue is full",
            );
        }
        let write = QueuedWrite {
            route: route.to_string(),
            token: token.to_string(),
            idempotency_key: key,
            body: body.to_vec(),
            enqueued_at_ms: now_ms(),
            client_cert,
        };
        if let Err(err) = self.enqueuer.enqueue_from(write, Some(client)).await {
            tracing::error!(error = %err, "cannot write to the offline queue");
            return error(
                ErrorCode::CloudUnreachable,
                "the cloud is unreachable and the hub could not queue the write",
            );
        }
        self.queued.fetch_add(1, Ordering::SeqCst);
        self.wake.notify_one();
        if route != HOST_REPORT {
            // No cached state to answer a verdict or a transfer update with: 202 says "taken,
            // not yet applied", and the header tells a client it came from the hub's queue.
            let mut response = StatusCode::ACCEPTED.into_response();
            response
                .headers_mut()
                .insert(OFFLINE_HEADER, HeaderValue::from_static("queued"));
            return response;
        }
        let envelope = self
            .last_envelope(&token_hash(token))
            .unwrap_or_else(|| {
                Bytes::from_static(
                    br#"{"poll_interval_seconds":300,"blocked":false,"desired_generation":0,"has_signed_ops":false}"#,
                )
            });
        let mut response = Response::new(Body::from(envelope));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
            .headers_mut()
            .insert(OFFLINE_HEADER, HeaderValue::from_static("queued"));
        response
    }
}

/// `GET /hub/offline`: the queue's depth, the dead letter's and the `hub_queue_full` counter
/// (the metric). `/hub/diagnose` shows the two depths too, in a field of its own.
pub async fn metrics(axum::extract::State(state): axum::extract::State<Arc<HubState>>) -> Response {
    match &state.offline {
        Some(o) => axum::Json(serde_json::json!({
            "queued": o.queued(),
            "queueMax": o.queue_max(),
            "queueFullTotal": o.queue_full_total(),
            "deadLetter": o.dead_letter(),
        }))
        .into_response(),
        None => error(
            ErrorCode::NotFound,
            "the auth cache and offline queue are not open on this hub",
        ),
    }
}

/// A queueable write as the hub took it, for the queue.
struct Taken {
    route: String,
    token: Option<String>,
    key: String,
    body: Bytes,
    client_cert: Option<String>,
    content_type: Option<String>,
    client: IpAddr,
}

/// The write as the hub takes it (its body read whole, its idempotency key checked or made)
/// and its headers; or the answer that refuses it.
async fn take(
    state: &HubState,
    client: SocketAddr,
    request: Request<Body>,
    show_detail: bool,
) -> Result<(Taken, http::HeaderMap), Response> {
    let route = request.uri().path().to_string();
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(err) => {
            return Err(ProxyError::new(
                ProxyErrorKind::BadRequest,
                "the request body is unreadable",
            )
            .with_detail(err.to_string())
            .into_response_with(show_detail))
        }
    };
    let token = credential(&parts.headers);
    let client_cert = crate::proxy::forwarded_client_cert(state, &parts.extensions);
    // The cloud's own rule: a key accepted and queued here is never refused at replay.
    let key = match parts.headers.get(IDEMPOTENCY_KEY_HEADER) {
        None => uuid_like(),
        Some(value) if is_valid_idempotency_key(value.as_bytes()) => {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        }
        Some(_) => {
            return Err(
                ProxyError::new(ProxyErrorKind::BadRequest, IDEMPOTENCY_KEY_RULE)
                    .into_response_with(show_detail),
            )
        }
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let taken = Taken {
        route,
        token,
        key,
        body,
        client_cert,
        content_type,
        client: client.ip().to_canonical(),
    };
    Ok((taken, parts.headers))
}

/// Handles one queueable write from `client`.
pub async fn handle(
    state: Arc<HubState>,
    offline: Arc<Offline>,
    client: SocketAddr,
    request: Request<Body>,
) -> Response {
    let show_detail = state.config.mode() != crate::config::Mode::Production;
    if let Some(issue) = state.proxy_block() {
        return ProxyError::new(
            ProxyErrorKind::NotRegistered,
            format!("this hub cannot forward requests: {issue}"),
        )
        .into_response_with(show_detail);
    }
    let (taken, mut headers) = match take(&state, client, request, show_detail).await {
        Ok(taken) => taken,
        Err(refused) => return refused,
    };
    let cached = offline.is_cached(taken.token.as_deref());
    // Rows still waiting go first: a write overtaking them would break per-host order. A
    // credential the hub cannot vouch for is sent on: it has nothing queued behind which to
    // wait, and the cloud may well be back.
    if offline.queued() > 0 && cached {
        return offline.accept(taken).await;
    }
    crate::proxy::remove_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    // An agent cannot claim to be a hub; transfer routes carry this hub's own assertion.
    crate::site::prepare_upstream_headers(&state, &taken.route, &mut headers);
    let sent = send(
        &state,
        &taken.route,
        headers,
        &taken.key,
        taken.body.clone(),
        taken.client_cert.as_deref(),
        Some(taken.client),
    );
    // A write the hub could queue waits for the cloud only as long as the budget: a cloud that
    // took the connection and stays silent is as good as unreachable. One the hub cannot queue
    // waits for the cloud's answer, however slow.
    let budget = state.timings.queue_answer_budget;
    let answer = if cached {
        tokio::time::timeout(budget, sent).await.unwrap_or_else(|_| {
            tracing::info!(?budget, route = %taken.route, "the cloud did not answer in time; write queued");
            Err(ProxyError::new(
                ProxyErrorKind::Timeout,
                "the cloud did not answer within the queue answer budget",
            ))
        })
    } else {
        sent.await
    };
    match answer {
        Ok((mut parts, answer)) => {
            offline.observe(&taken.route, taken.token.as_deref(), parts.status, &answer);
            crate::proxy::remove_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::from(answer))
        }
        Err(err)
            if matches!(
                err.kind,
                ProxyErrorKind::ConnectFailed
                    | ProxyErrorKind::Timeout
                    | ProxyErrorKind::UpstreamBroken
            ) =>
        {
            // The key went with the attempt: if the cloud did act on it, the replay is a no-op.
            offline.accept(taken).await
        }
        Err(err) => err.into_response_with(show_detail),
    }
}

/// One buffered POST to the cloud with the idempotency key, on behalf of the agent at
/// `client_addr`; each of the two waits (for the answer's headers, for its body) is bounded by
/// the upstream timeout.
async fn send(
    state: &HubState,
    route: &str,
    mut headers: HeaderMap,
    key: &str,
    body: Bytes,
    client_cert: Option<&str>,
    client_addr: Option<IpAddr>,
) -> Result<(http::response::Parts, Bytes), ProxyError> {
    crate::proxy::set_forwarding(state, client_addr, &mut headers);
    let client = crate::proxy::with_client_cert(state, &mut headers, client_cert);
    let Some(cloud) = &state.config.cloud_api_url else {
        return Err(ProxyError::new(
            ProxyErrorKind::NotRegistered,
            crate::diagnose::ISSUE_NO_CLOUD_URL,
        ));
    };
    if let Ok(value) = HeaderValue::from_str(key) {
        headers.insert(IDEMPOTENCY_KEY_HEADER, value);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = format!("{}{}", cloud.origin, route).parse().map_err(|_| {
        ProxyError::new(
            ProxyErrorKind::BadRequest,
            "the request target is not valid",
        )
    })?;
    *request.headers_mut() = headers;
    let limit = state.timings.upstream_timeout;
    let response = match tokio::time::timeout(limit, client.request(request)).await {
        Err(_) => {
            return Err(ProxyError::new(
                ProxyErrorKind::Timeout,
                "the cloud did not answer in time",
            ))
        }
        Ok(result) => result.map_err(|e| crate::error::classify(&e))?,
    };
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(limit, body.collect())
        .await
        .map_err(|_| ProxyError::new(ProxyErrorKind::Timeout, "the cloud's answer stalled"))?
        .map_err(|e| {
            ProxyError::new(
                ProxyErrorKind::UpstreamBroken,
                "the cloud's answer broke off",
            )
            .with_detail(e.to_string())
        })?
        .to_bytes();
    Ok((parts, body))
}

/// The credential as the cloud reads it: `X-API-Key` first, else a bearer token. Replay sends
/// either as a bearer token, which the cloud reads the same way (an API key by its prefix).
pub(crate) fn credential(headers: &HeaderMap) -> Option<String> {
    if let Some(key) = headers.get("x-api-key") {
        return key
            .to_str()
            .ok()
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty());
    }
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// 128 random bits in hex: a fresh idempotency key.
fn uuid_like() -> String {
    use rand::RngCore;
    let mut bytes = [0_u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn error(code: ErrorCode, message: &str) -> Response {
    crate::error::api_error(code, message)
}

#[cfg(test)]
mod tests {
    use super::queueable;
    use http::Method;

    #[test]
    fn only_the_agent_and_status_writes_are_queueable() {
        let post = |path| queueable(&Method::POST, path);
        assert!(post("/api/v1/host-report"));
        assert!(post("/api/v1/report"));
        assert!(post("/api/v1/hosts/h1/signed-ops/op1/status"));
        assert!(post("/api/v1/transfers/t1/received"));
        assert!(post("/api/v1/transfers/t1/cancel"));
        assert!(!queueable(&Method::GET, "/api/v1/transfers/t1/received"));
        assert!(!post("/api/v1/transfers//cancel"), "an empty id");
        assert!(!post("/api/v1/transfers/t1/cancel/more"));
        assert!(!post("/api/v1/transfers/t1/complete"));
        assert!(!post("/api/v1/hosts/h1/signed-ops/op1"));
        assert!(!post("/api/v1/transfers"));
    }

    #[test]
    fn only_authenticated_transfer_routes_vouch_for_a_credential() {
        use super::vouches;
        assert!(vouches("/api/v1/transfers"));
        assert!(vouches("/api/v1/transfers/t1"));
        assert!(vouches("/api/v1/transfers/t1/chunks/0"));
        assert!(!vouches("/api/v1/transfersX"));
        assert!(!vouches("/api/v1/health"));
        assert!(!vouches("/health"));
        assert!(!vouches("/api/v1/auth/login"));
    }
}
