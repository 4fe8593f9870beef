//! The per-route guard: rate limits, authentication, the route's declared permission, metrics
//! and token renewal. Every route passes through it; a route's [`Access`] is the only thing that
//! decides who gets in.

use crate::audit::AuditEvent;
use crate::auth::deploy_key::presented_deploy_key;
use crate::auth::reporter::{presented_reporter_key, Reporter};
use crate::auth::{presented, Caller, CallerKind, Presented};
use crate::error::ApiError;
use crate::ratelimit::Decision;
use crate::routes::{Access, RouteSpec};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mftplus_pki::identity::PeerCertificate;
use mftplus_types::certificates::{BoxIdentity, BoxKind, FORWARDED_CLIENT_CERT_HEADER};
use mftplus_types::ErrorCode;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

/// Header carrying a fresh access token when the presented one is close to expiry.
pub const RENEWED_TOKEN_HEADER: &str = "x-mftplus-renewed-token";

/// What the handler may touch: everything the permission covers, or only the caller's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Own,
}

/// The client's address as the server believes it: the address a registered edge hub proves
/// it forwards for, else the `server.trusted_proxies` rule, else the connection's.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

#[derive(Clone)]
pub struct RouteCtx {
    pub state: AppState,
    pub spec: &'static RouteSpec,
}

pub async fn guard(State(ctx): State<RouteCtx>, mut request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let state = &ctx.state;
    // Through an edge hub, the agent's address the hub proves it forwards for: limits,
    // throttles and the audit then see each agent, and the hub's own calls stay its own.
    let client_ip = match state.hub_forwarded_client(request.headers_mut()).await {
        Some(forwarded) => forwarded,
        None => client_ip(state, &request),
    };
    request.extensions_mut().insert(ClientIp(client_ip.clone()));
    let page = crate::web::is_page(ctx.spec);
    let (method, target) = (
        request.method().clone(),
        request
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string()),
    );
    let mut limits: Option<Decision> = None;
    let outcome = match forwarded_certificate(state, &mut request).await {
        Ok(()) => admit(state, ctx.spec, &client_ip, &mut request, &mut limits).await,
        Err(err) => Err(err),
    };
    let mut response = match outcome {
        Ok(caller) => {
            // The handler runs to its end even when the client goes away mid-request (a hub
            // stopped, a connection cut): a change and its audit record are never parted by a
            // dropped connection, and nothing is applied without being recorded.
            let mut response = run_within_budget(state, ctx.spec, next.run(request)).await;
            if let Some(caller) = caller.filter(|_| response.status().is_success()) {
                renew(state, &caller, &mut response).await;
            }
            if is_write(ctx.spec, &method, response.status()) {
                state.writes.send_modify(|n| *n = n.wrapping_add(1));
            }
            response
        }
        Err(err) if page => crate::web::refusal(err, &method, &target),
        Err(err) => err.into_response(),
    };
    if page {
        crate::web::secure_headers(&mut response);
    }
    if let Some(decision) = limits {
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", decision.limit.into());
        headers.insert("x-ratelimit-remaining", decision.remaining.into());
        headers.insert("x-ratelimit-reset", decision.reset_secs.into());
    }
    let status = response.status().as_u16();
    state.metrics.record_request(ctx.spec.id, status);
    // Route id, never the URI or headers: those can carry identifiers and credentials.
    tracing::debug!(route = ctx.spec.id, status, client_ip = %client_ip, latency_us = started.elapsed().as_micros() as u64, "request");
    response
}

/// Whether an answered request changed something live pages may show: an admitted write that
/// succeeded (a page's form answers 303). Public routes never count, so an anonymous flood of
/// HEADs or sign-in attempts cannot make every open page look again.
fn is_write(spec: &RouteSpec, method: &http::Method, status: http::StatusCode) -> bool {
    let changing = matches!(
        *method,
        http::Method::POST | http::Method::PUT | http::Method::PATCH | http::Method::DELETE
    );
    changing
        && spec.access != Access::Public
        && (status.is_success() || status == http::StatusCode::SEE_OTHER)
}

/// Routes whose handler may rightly take as long as the client's upload or the export does;
/// their bodies are bounded by the serve loop's body-idle deadline instead.
const UNBUDGETED_ROUTES: [&str; 2] = ["transfer_chunk_put", "audit_export"];

/// Runs the handler on its own task and waits at most the route's budget
/// (`server.limits.handler_seconds`) for its answer. Past the budget the client is told so
/// (503 `unavailable`), while the handler still runs to its end: a change and its audit record
/// are never parted, and a retry with the same Idempotency-Key finds the outcome.
async fn run_within_budget(
    state: &AppState,
    spec: &'static RouteSpec,
    handler: impl std::future::Future<Output = Response> + Send + 'static,
) -> Response {
    let task = tokio::spawn(handler);
    let joined = if UNBUDGETED_ROUTES.contains(&spec.id) {
        task.await
    } else {
        let budget =
            std::time::Duration::from_secs(state.config.config.server.limits.handler_seconds);
        match tokio::time::timeout(budget, task).await {
            Ok(joined) => joined,
            Err(_) => {
                state
                    .metrics
                    .handler_timeouts
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    route = spec.id,
                    budget_s = budget.as_secs(),
                    "a handler overran its budget; it goes on in the background"
                );
                return ApiError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "the server did not finish this request within {} s; it goes on in the \
                         background and may still take effect: read the state back, or retry \
                         with the same Idempotency-Key",
                        budget.as_secs()
                    ),
                )
                .with_retry_after(1)
                .into_response();
            }
        }
    };
    match joined {
        Ok(response) => response,
        Err(err) => ApiError::internal(format!("the handler failed: {err}")).into_response(),
    }
}

async fn admit(
    state: &AppState,
    spec: &'static RouteSpec,
    client_ip: &str,
    request: &mut Request,
    limits: &mut Option<Decision>,
) -> Result<Option<Caller>, ApiError> {
    let rate = &state.config.config.rate_limit;
    let now = state.clock.now_secs();
    if rate.enabled {
        let decision = state
            .limiter
            .check(("ip", client_ip), rate.per_address_per_minute, now);
        *limits = Some(decision);
        if !decision.allowed {
            return Err(rate_limited(state, decision));
        }
    }
    // A page's public write (signing in) has no session to carry a CSRF token yet: another
    // site's form could sign the victim into the attacker's account. The browser's own word
    // on where the form came from refuses that.
    if spec.access == Access::Public
        && crate::web::is_page(spec)
        && request.method() != http::Method::GET
    {
        same_site(request.headers())?;
    }
    match spec.access {
        Access::Public | Access::RetrievalPassword => return Ok(None),
        Access::Host | Access::Guest => {
            admit_reporter(state, spec, client_ip, request, limits).await?;
            return Ok(None);
        }
        Access::DeployKey => {
            admit_hub(state, spec, client_ip, request, limits).await?;
            return Ok(None);
        }
        Access::Certificate => {
            admit_certificate(state, spec, client_ip, request, limits).await?;
            return Ok(None);
        }
        Access::HostOr(_) | Access::TransferParty(_)
            if presented_reporter_key(request.headers()).is_some() =>
        {
            admit_reporter(state, spec, client_ip, request, limits).await?;
            return Ok(None);
        }
        _ => {}
    }
    if let Some(key) = presented_reporter_key(request.headers()) {
        return Err(refuse_box_key(state, spec, client_ip, key, limits).await);
    }

    let caller = authenticate_person(state, spec, client_ip, request.headers()).await?;
    limit_credential(state, caller.credential_id(), limits)?;

    let scope = scope_for(state, spec, client_ip, &caller).await?;
    // Only a JWT close to expiry needs the caller again after the handler; everyone else's
    // request carries the one copy.
    let renewal = renewal_due(state, &caller).then(|| caller.clone());
    request.extensions_mut().insert(caller);
    request.extensions_mut().insert(scope);
    Ok(renewal)
}

/// What the caller may reach through this route: everything, or only its own objects; a
/// role with neither is refused here and the refusal audited.
async fn scope_for(
    state: &AppState,
    spec: &'static RouteSpec,
    client_ip: &str,
    caller: &Caller,
) -> Result<Scope, ApiError> {
    // A transfer party's user is admitted as the route's user access says.
    let access = match spec.access {
        Access::TransferParty(user) => *user,
        access => access,
    };
    Ok(match access {
        Access::Public
        | Access::RetrievalPassword
        | Access::Host
        | Access::Guest
        | Access::DeployKey
        | Access::Certificate
        | Access::TransferParty(_) => {
            unreachable!("handled above (a transfer party's user access is never a party)")
        }
        Access::Authenticated => Scope::All,
        Access::HostOr(permission) if state.rbac.allows(&caller.role, permission) => Scope::All,
        Access::Permission(permission) if state.rbac.allows(&caller.role, permission) => Scope::All,
        Access::Scoped { all, .. } if state.rbac.allows(&caller.role, all) => Scope::All,
        Access::Scoped { own, .. } if state.rbac.allows(&caller.role, own) => Scope::Own,
        Access::Permission(permission)
        | Access::HostOr(permission)
        | Access::Scoped {
            own: permission, ..
        } => {
            denied(
                state,
                spec,
                client_ip,
                &caller.email,
                json!({"role": caller.role, "permission": permission}),
            )
            .await;
            return Err(ApiError::forbidden(format!(
                "role {} lacks permission {permission}",
                caller.role
            )));
        }
    })
}

/// A page write must come from a page of this site: a browser names the requesting origin
/// (`Origin`, `Sec-Fetch-Site`), and another site's is refused before the session is read —
/// a second wall behind `SameSite=Strict` and the CSRF token.
fn same_site(headers: &http::HeaderMap) -> Result<(), ApiError> {
    let cross = || {
        ApiError::forbidden("a form of another site cannot act here (cross-site request refused)")
    };
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return Err(cross());
        }
    }
    if let Some(origin) = headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        let host = headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
        if origin == "null" || origin_host != host {
            return Err(cross());
        }
    }
    Ok(())
}

/// The person behind a route that needs one: a page's session cookie, or the API's header
/// credentials. Pages take the cookie and only it; the API never reads the cookie, so another
/// site cannot make a browser call the API with it.
async fn authenticate_person(
    state: &AppState,
    spec: &'static RouteSpec,
    client_ip: &str,
    headers: &http::HeaderMap,
) -> Result<Caller, ApiError> {
    let page = crate::web::is_page(spec);
    if page && spec.method != http::Method::GET {
        same_site(headers)?;
    }
    let authenticated = if page {
        crate::web::session::authenticate(state, headers).await
    } else {
        state.authenticate(headers).await
    };
    match authenticated {
        Ok(Some(caller)) => Ok(caller),
        Ok(None) if page => Err(ApiError::unauthenticated(
            "sign in first: this page needs a session",
        )),
        Ok(None) => Err(ApiError::unauthenticated(
            "authentication required: use Authorization: Bearer <token> or X-API-Key",
        )),
        Err(err) => {
            let kind = match presented(headers) {
                _ if page => "session",
                Presented::ApiKey(_) => "api_key",
                _ => "jwt",
            };
            Err(auth_failed(state, spec, client_ip, kind, err).await)
        }
    }
}

/// Counts and audits a refused credential (never an internal failure) and passes the error on.
async fn auth_failed(
    state: &AppState,
    spec: &'static RouteSpec,
    client_ip: &str,
    credential: &str,
    err: ApiError,
) -> ApiError {
    if err.code != ErrorCode::Internal {
        state.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
        state
            .audit(
                AuditEvent::new("auth_failed")
                    .outcome("failure")
                    .target(spec.path)
                    .ip(client_ip)
                    .details(json!({"credential": credential, "reason": err.code.as_str(), "method": spec.method.as_str()})),
            )
            .await;
    }
    err
}

/// The per-credential rate limit; the tighter of it and the per-address one goes in the
/// `X-RateLimit-*` headers.
fn limit_credential(
    state: &AppState,
    subject: (&str, &str),
    limits: &mut Option<Decision>,
) -> Result<(), ApiError> {
    let rate = &state.config.config.rate_limit;
    if !rate.enabled {
        return Ok(());
    }
    let decision = state.limiter.check(
        subject,
        rate.per_credential_per_minute,
        state.clock.now_secs(),
    );
    if limits.is_none_or(|current| decision.remaining < current.remaining) {
        *limits = Some(decision);
    }
    if decision.allowed {
        Ok(())
    } else {
        Err(rate_limited(state, decision))
    }
}

/// Counts and audits an authenticated caller refused by the route's access.
async fn denied(
    state: &AppState,
    spec: &'static RouteSpec,
    client_ip: &str,
    actor: &str,
    details: serde_json::Value,
) {
    state.metrics.access_denied.fetch_add(1, Ordering::Relaxed);
    let mut details = details;
    details["method"] = json!(spec.method.as_str());
    state
        .audit(
            AuditEvent::new("access_denied")
                .outcome("denied")
                .actor(actor)
                .target(spec.path)
                .ip(client_ip)
                .details(details),
        )
        .await;
}

/// A box key on a route only people may call (a transfer's cancel, links, grants, the pages):
/// a box key is never a user credential. A key the cloud knows is the wrong kind here, 403 and
/// audited; an unknown one is 401 like any unknown credential.
async fn refuse_box_key(
    state: &AppState,
    spec: &'static RouteSpec,
    client_ip: &str,
    key: &str,
    limits: &mut Option<Decision>,
) -> ApiError {
    let reporter = match state.authenticate_reporter(key).await {
        Ok(reporter) => reporter,
        Err(err) => return auth_failed(state, spec, client_ip, "reporter_key", err).await,
    };
    let (kind, subject) = reporter.rate_key();
    if let Err(limited) = limit_credential(state, (kind, subject.as_str()), limits) {
        return limited;
    }
    denied(
        state,
        spec,
        client_ip,
        &subject,
        json!({"reason": "a box key on a user's route"}),
    )
    .await;
    ApiError::forbidden("a host or guest key cannot call this route: it takes a user's credential")
}

/// Host and guest keys: the key must be of the kind the route takes, and a `{host_id}` in the
/// path must be the reporter's own host, except on a transfer party's route, where it names
/// the host acted on and the handler decides (decision 0029).
async fn admit_reporter(
    state: &AppState,
    spec: &'static RouteSpec,
    client_ip: &str,
    request: &mut Request,
    limits: &mut Option<Decision>,
) -> Result<(), ApiError> {
    let Some(key) = presented_reporter_key(request.headers()) else {
        return Err(ApiError::unauthenticated(
            "this route needs a host or guest key: Authorization: Bearer mfth_… or mftg_…",
        ));
    };
    let reporter = match state.authenticate_reporter(key).await {
        Ok(reporter) => reporter,
        Err(err) => return Err(auth_failed(state, spec, client_ip, "reporter_key", err).await),
    };
    let (kind, subject) = reporter.rate_key();
    limit_credential(state, (kind, subject.as_str()), limits)?;
    let kind_ok = matches!(
        (spec.access, &reporter),
        (
            Access::Host | Access::HostOr(_) | Access::TransferParty(_),
            Reporter::Host { .. }
        ) | (Access::Guest, Reporter::Guest { .. })
    );
    let own_host = matches!(spec.access, Access::TransferParty(_))
        || path_param(spec.path, request.uri().path(), "host_id")
            .is_none_or(|host_id| host_id == reporter.host_id());
    if !kind_ok || !own_host {
        let reason = if kind_ok {
            "another host"
        } else {
            "wrong key kind"
        };
        denied(state, spec, client_ip, &subject, json!({"reason": reason})).await;
        return Err(ApiError::forbidden(if kind_ok {
            "a host key acts only on its own host"
        } else {
            "this key cannot call this route"
        }));
    }
    if let Reporter::Host { host_id, .. } = &reporter {
        let own = BoxIdentity::host(host_id);
        box_certificate(state, spec, client_ip, request, &own, &subject).await?;
    }
    request.extensions_mut().insert(reporter);
    Ok(())
}

/// Mutual TLS on a host route: a presented certificate must be this CA's, unrevoked, and
/// name the host whose key is used (a host's certificate with another host's key is refused);
/// under `requireAndVerifyClientCert` one must be presented, except to get the first one.
async fn box_certificate(
    state: &AppState,
    spec: &'static RouteSpec,
    client_ip: &str,
    request: &mut Request,
    own: &BoxIdentity,
    actor: &str,
) -> Result<(), ApiError> {
    let Some(peer) = request.extensions().get::<PeerCertificate>().cloned() else {
        if state.box_certificate_required() && spec.id != "certificates_issue" {
            let err = ApiError::new(
                ErrorCode::CertificateRequired,
                "this route needs the box's client certificate (mutual TLS); get one with \
                 mftplus agent enroll, or recover with mftplus agent certificate --recover",
            );
            return Err(auth_failed(state, spec, client_ip, "client_certificate", err).await);
        }
        return Ok(());
    };
    let certified = certified(state, spec, client_ip, &peer).await?;
    names(state, spec, client_ip, actor, &certified, own).await?;
    request.extensions_mut().insert(certified);
    Ok(())
}

/// A certificate acts only for the box it names: another box's is 403, audited.
async fn names(
    state: &AppState,
    spec: &'static RouteSpec,
    client_ip: &str,
    actor: &str,
    certified: &crate::ca::CertifiedBox,
    expected: &BoxIdentity,
) -> Result<(), ApiError> {
    if &certified.identity == expected {
        return Ok(());
    }
    let details = json!({
        "reason": "certificate names another box",
        "certificate": certified.identity.to_string(),
        "expected": expected.to_string(),
    });
    denied(state, spec, client_ip, actor, details).await;
    Err(ApiError::forbidden(format!(
        "the client certificate names {}, not {expected}",
        certified.identity
    )))
}

/// The box a peer certificate speaks for; a refusal is counted and audited.
async fn certified(
    state: &AppState,
    spec: &'static RouteSpec,
    client_ip: &str,
    peer: &PeerCertificate,
) -> Result<crate::ca::CertifiedBox, ApiError> {
    match state.certified_box(peer).await {
        Ok(certified) => Ok(certified),
        Err(err) => Err(auth_failed(state, spec, client_ip, "client_certificate", err).await),
    }
}

/// A box whose current certificate is the credential (renewal).
async fn admit_certificate(
    state: &AppState,
    spec: &'static RouteSpec,
    client_ip: &str,
    request: &mut Request,
    limits: &mut Option<Decision>,
) -> Result<(), ApiError> {
    let Some(peer) = request.extensions().get::<PeerCertificate>().cloned() else {
        return Err(ApiError::new(
            ErrorCode::CertificateRequired,
            "renewal needs the current client certificate over mutual TLS",
        ));
    };
    let certified = certified(state, spec, client_ip, &peer).await?;
    limit_credential(state, ("certificate", &certified.facts.serial), limits)?;
    request.extensions_mut().insert(certified);
    Ok(())
}

/// Deploy keys (edge hubs): a `{hub_id}` in the path must be a hub registered under the
/// presented key. A hub that does not exist is refused the same way as another key's hub, so
/// a key cannot probe for hub ids.
async fn admit_hub(
    state: &AppState,
    spec: &'static RouteSpec,
    client_ip: &str,
    request: &mut Request,
    limits: &mut Option<Decision>,
) -> Result<(), ApiError> {
    let Some(key) = presented_deploy_key(request.headers()) else {
        return admit_certified_hub(state, spec, client_ip, request, limits).await;
    };
    let hub_key = match state.authenticate_deploy_key(key).await {
        Ok(hub_key) => hub_key,
        Err(err) => return Err(auth_failed(state, spec, client_ip, "deploy_key", err).await),
    };
    limit_credential(
        state,
        ("deploy_key", hub_key.deploy_key_id.as_str()),
        limits,
    )?;
    if let Some(hub_id) = path_param(spec.path, request.uri().path(), "hub_id") {
        let own = state
            .store
            .get_hub(hub_id)
            .await?
            .is_some_and(|hub| hub.deploy_key_id == hub_key.deploy_key_id);
        if !own {
            denied(
                state,
                spec,
                client_ip,
                &hub_key.actor(),
                json!({"reason": "another key's hub", "hub_id": hub_id}),
            )
            .await;
            return Err(ApiError::forbidden(
                "a deploy key acts only on the hubs registered with it",
            ));
        }
    }
    request.extensions_mut().insert(hub_key);
    Ok(())
}

/// A hub that presents its certificate (mutual TLS) instead of the deploy key: it acts on the
/// hub the certificate names, while the key it registered under is still usable.
async fn admit_certified_hub(
    state: &AppState,
    spec: &'static RouteSpec,
    client_ip: &str,
    request: &mut Request,
    limits: &mut Option<Decision>,
) -> Result<(), ApiError> {
    let path_hub = path_param(spec.path, request.uri().path(), "hub_id").map(str::to_string);
    let (Some(peer), Some(hub_id)) = (
        request.extensions().get::<PeerCertificate>().cloned(),
        path_hub,
    ) else {
        return Err(ApiError::unauthenticated(
            "this route needs a deploy key (Authorization: Bearer mft_dep_…) or the hub's \
             client certificate",
        ));
    };
    let certified = certified(state, spec, client_ip, &peer).await?;
    let actor = certified.identity.to_string();
    names(
        state,
        spec,
        client_ip,
        &actor,
        &certified,
        &BoxIdentity::hub(&hub_id),
    )
    .await?;
    let hub_key = match state.certified_hub(&hub_id).await {
        Ok(hub_key) => hub_key,
        Err(err) => {
            return Err(auth_failed(state, spec, client_ip, "client_certificate", err).await)
        }
    };
    limit_credential(state, ("certificate", &certified.facts.serial), limits)?;
    request.extensions_mut().insert(hub_key);
    request.extensions_mut().insert(certified);
    Ok(())
}

/// An agent's certificate forwarded by an edge hub (`x-mftplus-client-cert`): believed only on
/// a connection from a certified hub, where it becomes the request's peer certificate, as if
/// the agent had connected here. From anyone else the header is dropped unread.
async fn forwarded_certificate(state: &AppState, request: &mut Request) -> Result<(), ApiError> {
    use base64::Engine as _;
    let Some(forwarded) = request.headers_mut().remove(FORWARDED_CLIENT_CERT_HEADER) else {
        return Ok(());
    };
    let Some(peer) = request.extensions().get::<PeerCertificate>().cloned() else {
        return Ok(());
    };
    let from_hub = match state.certified_box(&peer).await {
        Ok(certified) if certified.identity.kind == BoxKind::Hub => {
            state.certified_hub(&certified.identity.id).await.is_ok()
        }
        _ => false,
    };
    if !from_hub {
        return Ok(());
    }
    let der = forwarded
        .to_str()
        .ok()
        .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadRequest,
                "the forwarded client certificate is not base64 DER",
            )
        })?;
    request
        .extensions_mut()
        .insert(PeerCertificate::from_der(der));
    Ok(())
}

/// The value of `{name}` in `path` matched against the route `template`.
pub fn path_param<'a>(template: &str, path: &'a str, name: &str) -> Option<&'a str> {
    let wanted = format!("{{{name}}}");
    template
        .split('/')
        .zip(path.split('/'))
        .find(|(segment, _)| *segment == wanted)
        .map(|(_, value)| value)
}

fn renewal_due(state: &AppState, caller: &Caller) -> bool {
    let jwt = &state.config.config.auth.jwt;
    match &caller.kind {
        CallerKind::Jwt { expires_at, .. } => {
            jwt.rotation_enabled
                && expires_at - state.clock.now_secs() <= jwt.rotation_threshold as i64
        }
        CallerKind::ApiKey { .. } | CallerKind::Session { .. } => false,
    }
}

fn rate_limited(state: &AppState, decision: Decision) -> ApiError {
    state.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
    ApiError::new(
        ErrorCode::RateLimited,
        "rate limit exceeded; retry after the window resets",
    )
    .with_retry_after(decision.reset_secs)
}

async fn renew(state: &AppState, caller: &Caller, response: &mut Response) {
    let jwt = &state.config.config.auth.jwt;
    let CallerKind::Jwt { family, .. } = &caller.kind else {
        return;
    };
    let Ok(Some(user)) = state.store.get_user(&caller.user_id).await else {
        return;
    };
    match state
        .issue_token(
            &user,
            &caller.role,
            "access",
            family,
            "rotation",
            jwt.expiration,
        )
        .await
    {
        Ok((token, _)) => {
            if let Ok(value) = token.parse() {
                response.headers_mut().insert(RENEWED_TOKEN_HEADER, value);
            }
        }
        Err(err) => tracing::warn!(code = %err.code, "token renewal failed"),
    }
}

fn client_ip(state: &AppState, request: &Request) -> String {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let trusted = &state.config.config.server.trusted_proxies;
    if !trusted.iter().any(|proxy| proxy == &peer) {
        return peer;
    }
    // The proxy's entry is the last one of the whole chain. Proxies append their own header
    // line (HAProxy's `option forwardfor`) as well as extend the last one, and several lines
    // are one comma-joined list (RFC 9110 §5.3): the first line is the client's to forge.
    request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|chain| chain.split(',').next_back())
        .map(|ip| ip.trim().to_string())
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        .unwrap_or(peer)
}
