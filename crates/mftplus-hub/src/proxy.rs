//! The transparent reverse proxy: every request the hub does not answer itself goes to the
//! cloud's origin with its path and query unchanged, over pooled keep-alive connections, with
//! bodies streamed both ways (a chunk is never held whole) and HTTP/1.1 upgrades tunnelled.
//!
//! The work is split into phases with defaults, after pingora's `ProxyHttp`: `request_filter`
//! (may refuse), `upstream_request_filter` (headers to the cloud), `response_filter` (headers
//! back) and `logging`. The queueable writes (reports, op verdicts, transfer status updates) do
//! not come here: queueing needs the whole body and the cloud's status and answer, which a
//! streaming phase never holds, so `offline` handles them buffered (they are small). Answers
//! on the transfer routes still teach the auth cache (a 2xx vouches for the caller's
//! credential, a 401 evicts it).

use crate::error::{classify, ProxyError, ProxyErrorKind};
use crate::state::HubState;
use axum::body::Body;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, StatusCode};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use mftplus_types::certificates::FORWARDED_CLIENT_CERT_HEADER;
use mftplus_types::hubs::forwarding::{
    CLIENT_ADDR_HEADER, CLIENT_SUPPLIED, PROXY_HUB_HEADER, PROXY_KEY_HEADER,
};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// What is known about one proxied request, handed to every phase.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub client: SocketAddr,
    pub method: http::Method,
    /// Path and query as the agent sent them.
    pub target: String,
    pub started: Instant,
}

/// The proxy's customisation points. Every method has the behaviour the hub needs today.
pub trait ProxyPhases: Send + Sync + 'static {
    /// Decides whether the request may go to the cloud at all.
    fn request_filter(&self, state: &HubState, _ctx: &RequestContext) -> Result<(), ProxyError> {
        match state.proxy_block() {
            None => Ok(()),
            Some(issue) => Err(ProxyError::new(
                ProxyErrorKind::NotRegistered,
                format!("this hub cannot forward requests: {issue}"),
            )),
        }
    }

    /// Adjusts the request headed for the cloud, after hop-by-hop headers were removed and the
    /// hub set its forwarding headers ([`set_forwarding`], not a phase: no phase may forward
    /// an address a client chose).
    fn upstream_request_filter(&self, _ctx: &RequestContext, _headers: &mut HeaderMap) {}

    /// Adjusts the cloud's answer, after hop-by-hop headers were removed.
    fn response_filter(&self, _ctx: &RequestContext, _headers: &mut HeaderMap) {}

    /// Called once per request with the final status (an error's status when it failed).
    fn logging(&self, ctx: &RequestContext, status: StatusCode, error: Option<&ProxyError>) {
        let elapsed_ms = ctx.started.elapsed().as_millis() as u64;
        match error {
            Some(err) => tracing::warn!(
                client = %ctx.client, method = %ctx.method, target = %ctx.target,
                status = status.as_u16(), elapsed_ms, origin = ?err.origin, retry = ?err.retry,
                detail = err.detail.as_deref().unwrap_or(""), "proxy error: {err}"
            ),
            None => tracing::debug!(
                client = %ctx.client, method = %ctx.method, target = %ctx.target,
                status = status.as_u16(), elapsed_ms, "proxied"
            ),
        }
    }
}

/// The phases as the hub runs them today.
#[derive(Debug, Default)]
pub struct DefaultPhases;

impl ProxyPhases for DefaultPhases {}

/// Forwards one request and turns any failure into the hub's JSON error answer.
pub async fn handle(
    state: Arc<HubState>,
    phases: Arc<dyn ProxyPhases>,
    client: SocketAddr,
    request: Request<Body>,
) -> Response {
    let ctx = RequestContext {
        client,
        method: request.method().clone(),
        target: request
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_else(|| "/".into()),
        started: Instant::now(),
    };
    let token = state
        .offline
        .as_ref()
        .filter(|_| crate::offline::vouches(request.uri().path()))
        .and_then(|_| crate::offline::credential(request.headers()));
    match forward(&state, phases.as_ref(), &ctx, request).await {
        Ok(response) => {
            if let Some(offline) = state.offline.as_ref() {
                if offline.queued() > 0 {
                    offline.cloud_is_back();
                }
                if let Some(token) = token {
                    offline.observe_proxied(&token, response.status());
                }
            }
            phases.logging(&ctx, response.status(), None);
            response
        }
        Err(err) => {
            let err = err.with_method(&ctx.method);
            let status =
                StatusCode::from_u16(err.code().http_status()).unwrap_or(StatusCode::BAD_GATEWAY);
            phases.logging(&ctx, status, Some(&err));
            let show_detail = state.config.mode() != crate::config::Mode::Production;
            err.into_response_with(show_detail)
        }
    }
}

async fn forward(
    state: &HubState,
    phases: &dyn ProxyPhases,
    ctx: &RequestContext,
    mut request: Request<Body>,
) -> Result<Response, ProxyError> {
    phases.request_filter(state, ctx)?;
    let Some(cloud) = &state.config.cloud_api_url else {
        return Err(ProxyError::new(
            ProxyErrorKind::NotRegistered,
            crate::diagnose::ISSUE_NO_CLOUD_URL,
        ));
    };
    let upgrade = upgrade_protocol(request.headers());
    let downstream_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));

    let (mut parts, body) = request.into_parts();
    let client = upstream_parts(state, phases, ctx, &cloud.origin, upgrade, &mut parts)?;

    let progress = Arc::new(Progress::new());
    let body = Body::new(ProgressBody {
        inner: body,
        progress: progress.clone(),
    });
    let pending = client.request(Request::from_parts(parts, body));
    let response = wait_for_answer(pending, &progress, state.timings.upstream_timeout)
        .await?
        .map_err(|e| classify(&e))?;

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(downstream) = downstream_upgrade {
            return Ok(switch_protocols(phases, ctx, downstream, response));
        }
    }
    let (mut parts, body) = response.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    phases.response_filter(ctx, &mut parts.headers);
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// Turns the agent's request head into the cloud's: its target on the cloud, HTTP/1.1, no
/// hop-by-hop headers, the forwarding headers, the site's and the phases' changes. Returns the
/// client to send it with (with the hub's certificate where a verified client certificate is
/// forwarded).
fn upstream_parts<'a>(
    state: &'a HubState,
    phases: &dyn ProxyPhases,
    ctx: &RequestContext,
    origin: &str,
    upgrade: Option<HeaderValue>,
    parts: &mut http::request::Parts,
) -> Result<&'a crate::state::UpstreamClient, ProxyError> {
    parts.uri = format!("{origin}{}", ctx.target).parse().map_err(|e| {
        ProxyError::new(
            ProxyErrorKind::BadRequest,
            "the request target is not valid",
        )
        .with_detail(format!("{e}"))
    })?;
    // The upstream client speaks HTTP/1.1 whatever the agent used.
    parts.version = http::Version::HTTP_11;
    let original_host = parts
        .headers
        .get(header::HOST)
        .cloned()
        .or_else(|| parts.uri.authority().and_then(|a| a.as_str().parse().ok()));
    remove_hop_by_hop(&mut parts.headers);
    // The client sets Host from the cloud's URL: the cloud (or a load balancer in front of
    // it) routes on its own name; the agent's view is kept in X-Forwarded-Host.
    parts.headers.remove(header::HOST);
    if let Some(host) = original_host {
        parts.headers.insert("x-forwarded-host", host);
    }
    if let Some(protocol) = &upgrade {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, protocol.clone());
    }
    crate::site::prepare_upstream_headers(state, &ctx.target, &mut parts.headers);
    set_forwarding(state, Some(ctx.client.ip()), &mut parts.headers);
    phases.upstream_request_filter(ctx, &mut parts.headers);
    // Only what this listener verified is forwarded, and only on the connection that proves
    // the hub (its certificate): the cloud believes the header from a certified hub alone.
    let forwarded = forwarded_client_cert(state, &parts.extensions);
    Ok(with_client_cert(
        state,
        &mut parts.headers,
        forwarded.as_deref(),
    ))
}

/// The cloud agreed to switch protocols: the two upgraded connections are joined by a tunnel
/// and the agent gets the 101 with only the upgrade's own hop-by-hop headers.
fn switch_protocols<B>(
    phases: &dyn ProxyPhases,
    ctx: &RequestContext,
    downstream: hyper::upgrade::OnUpgrade,
    mut response: http::Response<B>,
) -> Response {
    let upstream = hyper::upgrade::on(&mut response);
    tokio::spawn(tunnel(downstream, upstream, ctx.clone()));
    let (mut parts, _) = response.into_parts();
    let protocol = parts.headers.get(header::UPGRADE).cloned();
    remove_hop_by_hop(&mut parts.headers);
    parts
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Some(protocol) = protocol {
        parts.headers.insert(header::UPGRADE, protocol);
    }
    phases.response_filter(ctx, &mut parts.headers);
    Response::from_parts(parts, Body::empty())
}

/// Waits for the cloud's response headers. The clock restarts whenever a request-body chunk
/// goes out, so a long upload is not cut off; what times out is a cloud that stays silent for
/// `limit` after the hub stopped sending.
async fn wait_for_answer<F: std::future::Future>(
    pending: F,
    progress: &Progress,
    limit: Duration,
) -> Result<F::Output, ProxyError> {
    tokio::pin!(pending);
    loop {
        let deadline = progress.last() + limit;
        tokio::select! {
            answer = &mut pending => return Ok(answer),
            _ = tokio::time::sleep_until(deadline.into()) => {
                if progress.last() + limit <= Instant::now() {
                    return Err(ProxyError::new(
                        ProxyErrorKind::Timeout,
                        "the cloud did not answer in time",
                    )
                    .with_detail(format!("no answer within {limit:?}")));
                }
            }
        }
    }
}

/// Buffer per direction of an upgraded connection's copy.
const TUNNEL_BUF: usize = 4096;

async fn tunnel(
    downstream: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    ctx: RequestContext,
) {
    let (down, up) = tokio::join!(downstream, upstream);
    match (down, up) {
        (Ok(down), Ok(up)) => {
            let mut down = TokioIo::new(down);
            let mut up = TokioIo::new(up);
            // Upgraded connections are mostly idle agents' WebSockets: 4 KiB per direction
            // instead of tokio's 8 KiB keeps a thousand of them 8 MiB lighter, and a busy one
            // only makes more, smaller reads.
            let copied = tokio::io::copy_bidirectional_with_sizes(
                &mut down, &mut up, TUNNEL_BUF, TUNNEL_BUF,
            )
            .await;
            match copied {
                Ok((to_cloud, to_agent)) => tracing::debug!(
                    client = %ctx.client, target = %ctx.target, to_cloud, to_agent, "tunnel closed"
                ),
                Err(err) => tracing::debug!(
                    client = %ctx.client, target = %ctx.target, error = %err, "tunnel ended"
                ),
            }
        }
        (down, up) => tracing::warn!(
            client = %ctx.client, target = %ctx.target,
            downstream_ok = down.is_ok(), upstream_ok = up.is_ok(), "upgrade failed"
        ),
    }
}

/// The protocol an HTTP/1.1 upgrade asks for (`Connection: upgrade` plus `Upgrade: …`).
fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
}

/// RFC 9110 §7.6.1: headers meant for one connection only. Upgrades put `Connection` and
/// `Upgrade` back afterwards.
/// The client certificate this listener verified, to forward (base64 DER): only while the
/// hub holds its own certificate, the one thing that makes the cloud believe the header.
pub(crate) fn forwarded_client_cert(
    state: &HubState,
    extensions: &http::Extensions,
) -> Option<String> {
    let peer = extensions.get::<mftplus_pki::identity::PeerCertificate>()?;
    state
        .identity
        .is_set()
        .then(|| BASE64.encode(peer.0.as_ref()))
}

/// Puts the forwarded certificate on the request (dropping whatever a client sent under that
/// name) and picks the client to send it with: one that presents the hub's certificate.
pub(crate) fn with_client_cert<'a>(
    state: &'a HubState,
    headers: &mut HeaderMap,
    forwarded: Option<&str>,
) -> &'a crate::state::UpstreamClient {
    headers.remove(FORWARDED_CLIENT_CERT_HEADER);
    match forwarded.and_then(|cert| HeaderValue::from_str(cert).ok()) {
        Some(value) => {
            headers.insert(FORWARDED_CLIENT_CERT_HEADER, value);
            &state.phone_home_client
        }
        None => &state.client,
    }
}

pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = connection_tokens(headers).collect();
    for name in named {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            headers.remove(name);
        }
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    let proxy_headers: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy_headers {
        headers.remove(name);
    }
}

/// [`CLIENT_SUPPLIED`] as parsed names: removing by `&str` would parse each name every time.
const CLIENT_SUPPLIED_NAMES: [HeaderName; 7] = [
    HeaderName::from_static(CLIENT_SUPPLIED[0]),
    HeaderName::from_static(CLIENT_SUPPLIED[1]),
    HeaderName::from_static(CLIENT_SUPPLIED[2]),
    HeaderName::from_static(CLIENT_SUPPLIED[3]),
    HeaderName::from_static(CLIENT_SUPPLIED[4]),
    HeaderName::from_static(CLIENT_SUPPLIED[5]),
    HeaderName::from_static(CLIENT_SUPPLIED[6]),
];
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// What proves to the cloud that this hub forwards a request: its registered id and its
/// deploy key (issue 13).
#[derive(Clone)]
struct HubProof {
    hub_id: HeaderValue,
    /// Marked sensitive: never logged or indexed by an HTTP/2 encoder.
    key: HeaderValue,
}

impl HubProof {
    /// `None` until the hub has registered (a hub id) with a deploy key.
    fn of(state: &HubState) -> Option<HubProof> {
        let hub_id = HeaderValue::from_str(&state.phone_home().hub_id?).ok()?;
        let mut key =
            HeaderValue::from_str(state.config.registration_key.as_ref()?.expose()).ok()?;
        key.set_sensitive(true);
        Some(HubProof { hub_id, key })
    }
}

/// The forwarding headers of every request the hub sends to the cloud on a client's behalf
/// (the proxy, the queueable writes and their replay, the site paths); never on the hub's own
/// calls (phone-home), which the cloud then limits by the hub's own address.
///
/// Every forwarding header the client sent is removed: the hub is the first hop it trusts, so
/// `X-Forwarded-For` is exactly `client` (replaced, not appended). Once registered the hub adds
/// the client's address with its id and deploy key, which is what makes the cloud believe it.
/// `client` is `None` only for a write queued by a hub that did not record addresses yet.
pub fn set_forwarding(state: &HubState, client: Option<IpAddr>, headers: &mut HeaderMap) {
    apply_forwarding(client, HubProof::of(state).as_ref(), headers);
}

fn apply_forwarding(client: Option<IpAddr>, proof: Option<&HubProof>, headers: &mut HeaderMap) {
    for name in &CLIENT_SUPPLIED_NAMES {
        headers.remove(name);
    }
    // What the agent used to reach the hub, which serves plain HTTP.
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    let Some(client) = client.map(|ip| ip.to_canonical()) else {
        return;
    };
    let Ok(address) = HeaderValue::from_str(&client.to_string()) else {
        return;
    };
    headers.insert(X_FORWARDED_FOR, address.clone());
    if let Some(proof) = proof {
        headers.insert(CLIENT_ADDR_HEADER, address);
        headers.insert(PROXY_HUB_HEADER, proof.hub_id.clone());
        headers.insert(PROXY_KEY_HEADER, proof.key.clone());
    }
}

/// When the request body last moved, as milliseconds since `base`.
struct Progress {
    base: Instant,
    last_ms: AtomicU64,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// The agent's body on its way to the cloud, unchanged, noting each chunk for the timeout.
struct ProgressBody {
    inner: Body,
    progress: Arc<Progress>,
}

impl HttpBody for ProgressBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = &polled {
            self.progress.touch();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_end_to_end_ones_stay() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "keep-alive, X-Private".parse().unwrap());
        h.insert("x-private", "secret".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("proxy-authorization", "Basic x".parse().unwrap());
        h.insert("proxy-connection", "close".parse().unwrap());
        h.insert(header::TE, "trailers".parse().unwrap());
        h.insert(header::TRAILER, "x-sum".parse().unwrap());
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert(header::UPGRADE, "websocket".parse().unwrap());
        h.insert(header::AUTHORIZATION, "Bearer t".parse().unwrap());
        h.insert(header::CONTENT_LENGTH, "3".parse().unwrap());
        remove_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, vec!["authorization", "content-length"]);
    }

    #[test]
    fn forwarded_for_is_the_client_and_what_the_client_forged_is_dropped() {
        let client: IpAddr = "10.0.0.7".parse().unwrap();
        let forged = |h: &mut HeaderMap| {
            for (name, value) in [
                ("x-forwarded-for", "1.2.3.4"),
                ("x-real-ip", "1.2.3.4"),
                ("forwarded", "for=1.2.3.4"),
                ("true-client-ip", "1.2.3.4"),
                (CLIENT_ADDR_HEADER, "1.2.3.4"),
                (PROXY_HUB_HEADER, "hub_forged"),
                (PROXY_KEY_HEADER, "mft_dep_forged"),
            ] {
                h.append(name, value.parse().unwrap());
            }
            h.append("x-forwarded-for", "5.6.7.8".parse().unwrap());
        };

        // Not registered yet: the address in X-Forwarded-For only, nothing to prove it with.
        let mut h = HeaderMap::new();
        forged(&mut h);
        apply_forwarding(Some(client), None, &mut h);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, vec!["x-forwarded-for", "x-forwarded-proto"]);
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h["x-forwarded-for"], "10.0.0.7", "replaced, not appended");
        assert_eq!(h["x-forwarded-proto"], "http");

        // Registered: the address again, with the hub's id and key.
        let mut key = HeaderValue::from_static("mft_dep_real");
        key.set_sensitive(true);
        let proof = HubProof {
            hub_id: HeaderValue::from_static("hub_real"),
            key,
        };
        let mut h = HeaderMap::new();
        forged(&mut h);
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        apply_forwarding(Some(mapped), Some(&proof), &mut h);
        assert_eq!(
            h["x-forwarded-for"], "10.0.0.7",
            "an IPv4-mapped address as IPv4"
        );
        assert_eq!(h[CLIENT_ADDR_HEADER], "10.0.0.7");
        assert_eq!(h[PROXY_HUB_HEADER], "hub_real");
        assert_eq!(h[PROXY_KEY_HEADER], "mft_dep_real");
        assert!(h[PROXY_KEY_HEADER].is_sensitive());
        for gone in ["x-real-ip", "forwarded", "true-client-ip"] {
            assert!(!h.contains_key(gone), "{gone}");
        }

        // A replayed row with no recorded address: the forged headers still go.
        let mut h = HeaderMap::new();
        forged(&mut h);
        apply_forwarding(None, Some(&proof), &mut h);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-forwarded-proto"]);
    }
}
