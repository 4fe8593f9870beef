//! The authorization matrix's fixtures for what is shared with people outside the account:
//! share links (decision 0023) and file requests (decision 0034). Split from `authz_matrix.rs`
//! to keep it readable; same `World`, same shapes.

use super::common::*;
use super::{alice, link_support, request_support, Body, World};
use serde_json::{json, Value};

/// Share links (decision 0023): alice's linkable transfer, a link to it, and for the chunk an
/// open's ticket; anonymous callers use the public three.
pub async fn link_fixture(w: &World, id: &str) -> Option<(String, Body)> {
    use link_support::*;
    let c = &w.cloud;
    let alice = alice(w).await;
    let fresh_link = || async {
        let transfer = linkable_transfer(c, &alice, "admin@example.com").await;
        let (link, token) = make_link(c, &alice, &transfer, json!({})).await;
        (transfer, link, token)
    };
    Some(match id {
        "transfer_links_create" | "transfer_links_list" => {
            let transfer = linkable_transfer(c, &alice, "admin@example.com").await;
            let body = (id == "transfer_links_create").then(|| json!({"max_downloads": 3}));
            (
                format!("/api/v1/transfers/{transfer}/links"),
                Body::Json(body),
            )
        }
        "link_revoke" => {
            let (_, link, _) = fresh_link().await;
            (format!("/api/v1/links/{link}/revoke"), Body::Json(None))
        }
        "shared_get" | "shared_open" => {
            let (_, _, token) = fresh_link().await;
            let path = match id {
                "shared_get" => format!("/api/v1/shared/{token}"),
                _ => format!("/api/v1/shared/{token}/open"),
            };
            (path, Body::Json(None))
        }
        "shared_chunk" => {
            let (_, _, token) = fresh_link().await;
            let ticket = open_link(c, &token).await;
            (
                format!("/api/v1/shared/{token}/chunks/0"),
                Body::Raw(Vec::new(), vec![("x-link-ticket".into(), ticket)]),
            )
        }
        _ => return None,
    })
}

/// File requests (decision 0034): alice's request (she has a key), and for the public upload
/// routes an upload through it started anonymously.
pub async fn request_fixture(w: &World, id: &str) -> Option<(String, Body)> {
    use request_support::*;
    if !(id.starts_with("file_request") || id.starts_with("requested_")) {
        return None;
    }
    let c = &w.cloud;
    let alice = alice(w).await;
    let key = register_user_key(c, &alice).await;
    let json = |path: String, body: Option<Value>| Some((path, Body::Json(body)));
    if id == "file_requests_create" {
        // The allowed principal is the administrator, who needs a key too.
        register_user_key(c, &admin(c)).await;
        return json(
            "/api/v1/file-requests".into(),
            Some(json!({"max_uploads": 2})),
        );
    }
    if id == "file_requests_list" {
        return json("/api/v1/file-requests".into(), None);
    }
    let (request_id, token) = make_request(c, &alice, json!({"max_uploads": 5})).await;
    let sealed = seal_to(b"requested", &key.public_key());
    let upload = || async {
        let started = start(c, &token, "alice@example.com", &sealed).await;
        assert_eq!(started.status, 201, "{:?}", started.body);
        started.body["id"].as_str().unwrap().to_string()
    };
    match id {
        "file_request_revoke" => json(format!("/api/v1/file-requests/{request_id}/revoke"), None),
        "requested_get" => json(format!("/api/v1/requested/{token}"), None),
        "requested_start" => json(
            format!("/api/v1/requested/{token}/transfers"),
            Some(json!({
                "recipients": ["alice@example.com"],
                "header": b64(&sealed.header),
                "chunk_size": mftplus_crypto::stream::MIN_CHUNK_SIZE,
            })),
        ),
        "requested_chunks" => json(
            format!(
                "/api/v1/requested/{token}/transfers/{}/chunks",
                upload().await
            ),
            None,
        ),
        "requested_chunk_put" => {
            let bytes = sealed.chunks[0].clone();
            let headers = chunk_headers(&bytes, true);
            Some((
                format!(
                    "/api/v1/requested/{token}/transfers/{}/chunks/0",
                    upload().await
                ),
                Body::Raw(bytes, headers),
            ))
        }
        "requested_complete" => {
            let transfer = upload().await;
            let put = put(c, &token, &transfer, 0, &sealed.chunks[0], true).await;
            assert_eq!(put.status, 201, "{:?}", put.body);
            json(
                format!("/api/v1/requested/{token}/transfers/{transfer}/complete"),
                Some(json!({"manifest": b64(&sealed.manifest)})),
            )
        }
        _ => None,
    }
}
