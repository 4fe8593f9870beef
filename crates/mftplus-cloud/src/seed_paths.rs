//! The paths the seeds' users call first (issue 14): seed 001's `curl …/v1/transfers` and seed
//! 002's `GET /config/{id}` are answered as `/api/v1/transfers` and `/api/v1/config/{id}` —
//! the same routes, so the same guard, authorization, limits and audit. The request is
//! rewritten before routing; nothing else is, so a path outside the API and the dashboard
//! still gets the coded 404 that names the API's prefix.

use axum::extract::Request;
use axum::Router;
use tower::ServiceExt;

/// The API's own path for a seed path, if `path` is one.
fn api_path(path: &str) -> Option<String> {
    if path.starts_with("/v1/") || path == "/v1" {
        return Some(format!("/api{path}"));
    }
    let id = path.strip_prefix("/config/")?;
    (!id.is_empty() && !id.contains('/')).then(|| format!("/api/v1/config/{id}"))
}

fn rewrite(mut request: Request) -> Request {
    let Some(path) = api_path(request.uri().path()) else {
        return request;
    };
    let target = match request.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    if let Ok(uri) = target.parse() {
        *request.uri_mut() = uri;
    }
    request
}

/// `router` answering the seed paths too.
pub fn wrap(router: Router) -> Router {
    Router::new().fallback_service(router.map_request(rewrite))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_paths_map_to_the_api_and_nothing_else_does() {
        assert_eq!(
            api_path("/v1/transfers").as_deref(),
            Some("/api/v1/transfers")
        );
        assert_eq!(
            api_path("/config/c-1").as_deref(),
            Some("/api/v1/config/c-1")
        );
        for other in [
            "/api/v1/transfers",
            "/hubs",
            "/config/",
            "/config/a/b",
            "/v2/x",
            "/",
        ] {
            assert_eq!(api_path(other), None, "{other}");
        }
    }
}
