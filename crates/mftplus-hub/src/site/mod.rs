//! Site-local transfers (decision 0012): when a transfer's sender and recipients all reach the
//! cloud through this hub, the cloud creates it with `site` = this hub, and the hub keeps its
//! sealed chunks in `HUB_DATA_DIR/site` instead of forwarding them. The cloud still decides
//! who may do what: every chunk request goes to it with the agent's credential and the hub's
//! assertion (its id and deploy key), only without the bytes.
//!
//! - chunk `PUT`: if the transfer is a site transfer (asked of the cloud once, then
//!   remembered), the hub stores the body, checks its SHA-256 and asks the cloud to record the
//!   chunk's length and hash; otherwise the request is proxied as any other.
//! - chunk `GET` and `verify`: proxied with the assertion; when the cloud answers "serve it
//!   from the site" (a header, no body) the hub answers from its files.
//! - the collector ([`collect`]) deletes the files of transfers that were cancelled or expired.
//!
//! The hub adds its assertion only to transfer routes and strips the protocol's headers from
//! everything agents send, so an agent can neither claim to be a hub nor see the hub's key.

pub mod collect;
pub mod files;

use crate::error::{api_error, classify, ProxyError, ProxyErrorKind};
use crate::proxy::ProxyPhases;
use crate::state::HubState;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use files::{file_body, Files, SiteError};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use mftplus_types::transfers::site::{
    SiteVerifyPlan, ALL_HEADERS, HUB_ID_HEADER, HUB_KEY_HEADER, SERVE_SHA256_HEADER,
    STORED_SIZE_HEADER, VERIFY_PLAN_HEADER,
};
use mftplus_types::transfers::{max_sealed_len, Transfer, VerifyReport, CHUNK_SHA256_HEADER};
use mftplus_types::{routes, ErrorCode};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// Remembered site answers; past this the memory is simply cleared and asked again.
const MAX_KNOWN: usize = 10_000;
/// A verify plan lists every chunk's hash; far below this even for huge transfers.
const MAX_PLAN_BYTES: usize = 16 << 20;

/// The site store and what the hub knows about which transfers are kept in it.
#[derive(Debug)]
pub struct Site {
    pub files: Files,
    /// Transfer id → its chunk size when it is this hub's site transfer, `None` when not.
    known: Mutex<HashMap<String, Option<u64>>>,
}

/// A request the site handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteRoute {
    ChunkPut { transfer: String, index: u64 },
    ChunkGet { transfer: String, index: u64 },
    Verify { transfer: String },
}

/// Which site route `method path` is, if any.
pub fn route(method: &Method, path: &str) -> Option<SiteRoute> {
    let chunk = |captured: Vec<&str>| Some((captured[0].to_string(), captured[1].parse().ok()?));
    match *method {
        Method::PUT => {
            let (transfer, index) = chunk(routes::captures(routes::TRANSFER_CHUNK, path)?)?;
            Some(SiteRoute::ChunkPut { transfer, index })
        }
        Method::GET => {
            let (transfer, index) = chunk(routes::captures(routes::TRANSFER_CHUNK, path)?)?;
            Some(SiteRoute::ChunkGet { transfer, index })
        }
        Method::POST => Some(SiteRoute::Verify {
            transfer: routes::captures(routes::TRANSFER_VERIFY, path)?[0].to_string(),
        }),
        _ => None,
    }
}

impl Site {
    pub fn open(data_dir: &std::path::Path) -> std::io::Result<Site> {
        Ok(Site {
            files: Files::open(data_dir.join("site"))?,
            known: Mutex::new(HashMap::new()),
        })
    }

    /// The chunk size of `transfer` if it is kept on this site, asking the cloud (as the
    /// agent) the first time. `None` also when the cloud cannot say: the request is then
    /// proxied, and the cloud's own answer tells the agent what is wrong.
    async fn lookup(
        &self,
        state: &HubState,
        transfer: &str,
        agent: &HeaderMap,
        client: IpAddr,
    ) -> Option<u64> {
        if let Some(known) = self.lock().get(transfer) {
            return *known;
        }
        let cloud = state.config.cloud_api_url.as_ref()?;
        let mut request = Request::new(Body::empty());
        let path = routes::fill(routes::TRANSFER, "id", transfer);
        *request.uri_mut() = format!("{}{path}", cloud.origin).parse().ok()?;
        for name in [header::AUTHORIZATION.as_str(), "x-api-key"] {
            if let Some(value) = agent.get(name) {
                request.headers_mut().insert(name, value.clone());
            }
        }
        let hub_id = add_assertion(state, request.headers_mut())?;
        crate::proxy::set_forwarding(state, Some(client), request.headers_mut());
        let answer = tokio::time::timeout(
            state.timings.cloud_call_timeout,
            state.client.request(request),
        )
        .await
        .ok()?
        .ok()?;
        if answer.status() != StatusCode::OK {
            return None;
        }
        let body = answer.into_body().collect().await.ok()?.to_bytes();
        let shown: Transfer = serde_json::from_slice(&body).ok()?;
        let site = (shown.site.as_deref() == Some(hub_id.as_str())).then_some(shown.chunk_size);
        let mut known = self.lock();
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(transfer.to_string(), site);
        site
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<u64>>> {
        mftplus_base::sync::lock(&self.known)
    }

    pub(crate) fn forget(&self, transfer: &str) {
        self.lock().remove(transfer);
    }
}

/// [`ALL_HEADERS`] as parsed names: removing by `&str` would parse each name on every request.
const SITE_HEADERS: [HeaderName; 5] = [
    HeaderName::from_static(ALL_HEADERS[0]),
    HeaderName::from_static(ALL_HEADERS[1]),
    HeaderName::from_static(ALL_HEADERS[2]),
    HeaderName::from_static(ALL_HEADERS[3]),
    HeaderName::from_static(ALL_HEADERS[4]),
];

/// Removes the site protocol's headers an agent sent, and on transfer routes adds this hub's
/// assertion when site-local transfers are on and the hub is registered.
pub fn prepare_upstream_headers(state: &HubState, target: &str, headers: &mut HeaderMap) {
    for name in &SITE_HEADERS {
        headers.remove(name);
    }
    if state.site.is_some() && routes::is_under(routes::TRANSFERS, path_of(target)) {
        add_assertion(state, headers);
    }
}

/// The path of a request target (`path?query`).
fn path_of(target: &str) -> &str {
    target.split_once('?').map_or(target, |(path, _)| path)
}

/// Adds the hub's id and deploy key; returns the id, or `None` before registration.
fn add_assertion(state: &HubState, headers: &mut HeaderMap) -> Option<String> {
    let hub_id = state.phone_home().hub_id?;
    let key = state.config.registration_key.as_ref()?;
    let mut key = HeaderValue::from_str(key.expose()).ok()?;
    key.set_sensitive(true);
    headers.insert(HUB_ID_HEADER, HeaderValue::from_str(&hub_id).ok()?);
    headers.insert(HUB_KEY_HEADER, key);
    Some(hub_id)
}

/// Handles a site route; anything that turns out not to be a site transfer is proxied.
pub async fn handle(
    state: Arc<HubState>,
    site: Arc<Site>,
    phases: Arc<dyn ProxyPhases>,
    client: SocketAddr,
    request: Request<Body>,
    route: SiteRoute,
) -> Response {
    match route {
        SiteRoute::ChunkPut { transfer, index } => {
            match site
                .lookup(&state, &transfer, request.headers(), client.ip())
                .await
            {
                Some(chunk_size) => {
                    let client = client.ip();
                    upload(&state, &site, request, client, &transfer, index, chunk_size).await
                }
                None => crate::proxy::handle(state, phases, client, request).await,
            }
        }
        SiteRoute::ChunkGet { transfer, index } => {
            let answer = crate::proxy::handle(state, phases, client, request).await;
            serve(&site, answer, &transfer, index).await
        }
        SiteRoute::Verify { transfer } => {
            let answer = crate::proxy::handle(state, phases, client, request).await;
            verify(&site, answer, &transfer).await
        }
    }
}

fn site_error(err: SiteError) -> Response {
    match err {
        SiteError::TooLarge => api_error(ErrorCode::PayloadTooLarge, err.to_string()),
        SiteError::Mismatch { .. } => api_error(ErrorCode::ChecksumMismatch, err.to_string()),
        SiteError::Body(_) => api_error(ErrorCode::BadRequest, err.to_string()),
        SiteError::BadName => api_error(ErrorCode::NotFound, "no such transfer or chunk"),
        SiteError::Missing => api_error(ErrorCode::SiteChunkMissing, err.to_string()),
        SiteError::Io(io) => {
            tracing::error!(error = %io, "site store failure");
            api_error(ErrorCode::Internal, "the hub's site store failed")
        }
    }
}

fn declared_sha256(headers: &HeaderMap) -> Option<[u8; 32]> {
    let text = headers.get(CHUNK_SHA256_HEADER)?.to_str().ok()?;
    (text.len() == 64)
        .then(|| hex::decode(text).ok())??
        .try_into()
        .ok()
}

/// Stores a site chunk, then has the cloud record it, and answers with the cloud's answer.
async fn upload(
    state: &HubState,
    site: &Site,
    request: Request<Body>,
    client: IpAddr,
    transfer: &str,
    index: u64,
    chunk_size: u64,
) -> Response {
    let (parts, body) = request.into_parts();
    let Some(declared) = declared_sha256(&parts.headers) else {
        return api_error(
            ErrorCode::ValidationFailed,
            format!("{CHUNK_SHA256_HEADER} must carry the chunk's SHA-256 in hex"),
        );
    };
    let max = max_sealed_len(chunk_size);
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > max) {
        return site_error(SiteError::TooLarge);
    }
    let stored = match site
        .files
        .store(transfer, index, body, max, &declared)
        .await
    {
        Ok(len) => len,
        Err(err) => return site_error(err),
    };
    let Some(cloud) = &state.config.cloud_api_url else {
        return api_error(
            ErrorCode::HubNotRegistered,
            crate::diagnose::ISSUE_NO_CLOUD_URL,
        );
    };
    let mut headers = parts.headers;
    crate::proxy::remove_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    prepare_upstream_headers(state, parts.uri.path(), &mut headers);
    crate::proxy::set_forwarding(state, Some(client), &mut headers);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    headers.insert(STORED_SIZE_HEADER, HeaderValue::from(stored));
    let mut record = Request::new(Body::empty());
    *record.method_mut() = Method::PUT;
    *record.headers_mut() = headers;
    *record.uri_mut() = match format!("{}{}", cloud.origin, parts.uri.path()).parse() {
        Ok(uri) => uri,
        Err(_) => return api_error(ErrorCode::BadRequest, "the request target is not valid"),
    };
    let answer =
        match tokio::time::timeout(state.timings.upstream_timeout, state.client.request(record))
            .await
        {
            Err(_) => ProxyError::new(ProxyErrorKind::Timeout, "the cloud did not answer in time")
                .into_response_with(false),
            Ok(Err(err)) => classify(&err).into_response_with(false),
            Ok(Ok(answer)) => {
                let (mut parts, body) = answer.into_parts();
                crate::proxy::remove_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, Body::new(body))
            }
        };
    if answer.status() == StatusCode::CONFLICT || answer.status() == StatusCode::NOT_FOUND {
        // Cancelled, completed elsewhere or gone: ask again next time.
        site.forget(transfer);
    }
    answer
}

/// Turns the cloud's "serve it from the site" into the chunk's bytes.
async fn serve(site: &Site, answer: Response, transfer: &str, index: u64) -> Response {
    let Some(sha256) = header_text(answer.headers(), SERVE_SHA256_HEADER) else {
        return answer;
    };
    let expected = header_text(answer.headers(), STORED_SIZE_HEADER).and_then(|v| v.parse().ok());
    match site
        .files
        .open_chunk(transfer, index, &sha256, expected)
        .await
    {
        Ok((file, len)) => {
            let mut response = Response::new(file_body(file));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            response
        }
        Err(err) => {
            tracing::error!(transfer, index, error = %err, "cannot serve a site chunk");
            site_error(err)
        }
    }
}

/// Turns the cloud's verify plan into the verify report, from the files.
async fn verify(site: &Site, answer: Response, transfer: &str) -> Response {
    if !answer.headers().contains_key(VERIFY_PLAN_HEADER) {
        return answer;
    }
    let body = match axum::body::to_bytes(answer.into_body(), MAX_PLAN_BYTES).await {
        Ok(body) => body,
        Err(_) => return api_error(ErrorCode::BadGateway, "the cloud's verify plan broke off"),
    };
    let Ok(plan) = serde_json::from_slice::<SiteVerifyPlan>(&body) else {
        return api_error(
            ErrorCode::BadGateway,
            "the cloud's verify plan is unreadable",
        );
    };
    if plan.transfer_id != transfer {
        return api_error(
            ErrorCode::BadGateway,
            "the cloud's verify plan is for another transfer",
        );
    }
    let (mut corrupt, mut missing) = (Vec::new(), Vec::new());
    for chunk in &plan.chunks {
        match site
            .files
            .digest(transfer, chunk.index, &chunk.sha256)
            .await
        {
            Ok((sha256, len)) if sha256 == chunk.sha256 && len == chunk.size => {}
            Ok(_) => corrupt.push(chunk.index),
            Err(SiteError::Missing | SiteError::BadName) => missing.push(chunk.index),
            Err(err) => return site_error(err),
        }
    }
    if let Some(count) = plan.chunk_count {
        let recorded: std::collections::HashSet<u64> =
            plan.chunks.iter().map(|c| c.index).collect();
        missing.extend((0..count).filter(|i| !recorded.contains(i)));
        missing.sort_unstable();
        missing.dedup();
    }
    axum::Json(VerifyReport {
        transfer_id: plan.transfer_id,
        chunks_checked: plan.chunks.len() as u64,
        ok: corrupt.is_empty() && missing.is_empty(),
        corrupt,
        missing,
    })
    .into_response()
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_chunk_and_verify_routes_are_the_sites() {
        assert_eq!(
            route(&Method::PUT, "/api/v1/transfers/abc/chunks/7"),
            Some(SiteRoute::ChunkPut {
                transfer: "abc".into(),
                index: 7
            })
        );
        assert_eq!(
            route(&Method::GET, "/api/v1/transfers/abc/chunks/0"),
            Some(SiteRoute::ChunkGet {
                transfer: "abc".into(),
                index: 0
            })
        );
        assert_eq!(
            route(&Method::POST, "/api/v1/transfers/abc/verify"),
            Some(SiteRoute::Verify {
                transfer: "abc".into()
            })
        );
        assert_eq!(route(&Method::GET, "/api/v1/transfers/abc/chunks"), None);
        assert_eq!(route(&Method::PUT, "/api/v1/transfers/abc/chunks/x"), None);
        assert_eq!(
            route(&Method::DELETE, "/api/v1/transfers/abc/chunks/1"),
            None
        );
        assert_eq!(route(&Method::GET, "/api/v1/transfers"), None);
    }
}
