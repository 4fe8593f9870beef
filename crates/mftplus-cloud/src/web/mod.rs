//! The dashboard (issue 15, decision 0018): server-rendered pages at `/`, in the one binary.
//!
//! Pages are routes of the one route table (ids `web_*`), behind the same guard, RBAC and
//! audit as the API; their principal is a session cookie (`session.rs`) where the API takes
//! header credentials. HTML comes from `maud` (escaped by construction); the only script is
//! `assets/app.js` (live tables over server-sent events, copy buttons), served from here, so
//! the Content-Security-Policy allows nothing from elsewhere and no inline code.
//!
//! Flows (signing in, creating a deploy key…) are the application layer's (`crate::app`),
//! shared with the API; a page only reads its form and renders the answer.

pub mod assets;
pub mod layout;
pub mod live;
pub mod live_permits;
pub mod pages;
pub mod session;

use crate::error::ApiError;
use crate::routes::RouteSpec;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use mftplus_types::ErrorCode;

/// Whether a route is a dashboard page (or its assets and live streams).
pub fn is_page(spec: &RouteSpec) -> bool {
    spec.id.starts_with("web_")
}

/// What every dashboard answer carries: nothing from another origin, no framing, no referrer
/// leaving the site, no sniffing, nothing cached (pages show secrets once).
pub fn secure_headers(response: &mut Response) {
    let headers = response.headers_mut();
    let set = |headers: &mut http::HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "same-origin");
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "cross-origin-opener-policy", "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, "cache-control", "no-store");
    }
}

/// A dashboard page's error, rendered as a page (the API's are JSON).
#[derive(Debug)]
pub struct WebError(pub ApiError);

impl From<ApiError> for WebError {
    fn from(err: ApiError) -> Self {
        WebError(err)
    }
}

impl From<mftplus_store::StoreError> for WebError {
    fn from(err: mftplus_store::StoreError) -> Self {
        WebError(err.into())
    }
}

pub type WebResult = Result<Response, WebError>;

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let err = self.0;
        // The JSON answer logs an internal cause once and carries Retry-After: keep both.
        let plain = err.clone().into_response();
        let status = plain.status();
        let mut response = (
            status,
            axum::response::Html(layout::error_page(status, &err).into_string()),
        )
            .into_response();
        if let Some(retry) = plain.headers().get(header::RETRY_AFTER) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry.clone());
        }
        response
    }
}

/// The guard's refusal of a page request: to the sign-in page when there is no (live)
/// session and the request is a plain page view, else an error page.
pub fn refusal(err: ApiError, method: &http::Method, path_and_query: &str) -> Response {
    let needs_sign_in = matches!(
        err.code,
        ErrorCode::Unauthenticated | ErrorCode::TokenExpired | ErrorCode::TokenRevoked
    );
    if needs_sign_in && method == http::Method::GET && !path_and_query.starts_with("/live/") {
        return see_other(&format!("/login?next={}", percent_encode(path_and_query)));
    }
    WebError(err).into_response()
}

/// 303 to `location` (after a form, or to the sign-in page).
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Only a path on this site may be a `next` target: never another host.
pub fn safe_next(next: &str) -> &str {
    // Browsers drop tabs and line breaks inside a URL, so `/\t/evil.example` would become
    // `//evil.example`: no control character or space may be in a target at all.
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.bytes().any(|b| b <= b' ' || b == 0x7f);
    if local {
        next
    } else {
        "/"
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next("/hubs?x=1"), "/hubs?x=1");
        for outside in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "hubs",
        ] {
            assert_eq!(safe_next(outside), "/", "{outside}");
        }
        assert_eq!(percent_encode("/hubs?a=b&c"), "/hubs%3Fa%3Db%26c");
    }
}
