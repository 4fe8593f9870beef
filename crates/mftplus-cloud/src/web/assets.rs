//! The dashboard's static files, compiled into the binary.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
/// A share link's page script and the incremental SHA-256 its service worker uses (decision
/// 0023).
const LINK_JS: &str = include_str!("assets/link.js");
const SHA256_JS: &str = include_str!("assets/sha256.js");
/// The dedicated worker a link's page starts to fetch, decrypt and check the chunks.
const LINK_WORKER_JS: &str = include_str!("assets/link_worker.js");
/// The browser upload page's script: the stream writer and the uploader (issue 16 item 3).
const UPLOAD_JS: &str = include_str!("assets/upload.js");
/// The share-link service worker, served at `/s/sw.js` so its scope can be `/s/`.
const LINK_SW_JS: &str = include_str!("assets/link_sw.js");

/// `GET /static/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "link.js" => (LINK_JS, "text/javascript; charset=utf-8"),
        "sha256.js" => (SHA256_JS, "text/javascript; charset=utf-8"),
        "link_worker.js" => (LINK_WORKER_JS, "text/javascript; charset=utf-8"),
        "upload.js" => (UPLOAD_JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // Revalidated each time: the binary's version is the only cache key these files have.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /s/sw.js`: the share-link service worker.
pub async fn link_worker() -> Response {
    let mut response = LINK_SW_JS.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
