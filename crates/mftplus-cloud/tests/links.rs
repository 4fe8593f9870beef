//! Share links over the API (decision 0023): making, listing and revoking links; the public
//! routes' refusals (unknown → 404, expired, revoked, used up) with their codes; the download
//! limit counting opens and the ticket every chunk fetch needs, so a cached header cannot
//! bypass the limit; a revocation stopping a download under way; every open audited with the
//! client's address; the per-address limit on lookups; links only for browser-readable streams.
//! The chunks served are the stream's own bytes, and they decrypt with the link's secret.

mod common;
mod link_support;
mod web_support;

use common::*;
use link_support::*;
use mftplus_cloud::testing::{TestCloud, TestOptions};
use mftplus_crypto::stream::{Decryptor, Header, Identity, LinkKey, LinkSecret, MIN_CHUNK_SIZE};
use serde_json::json;

/// A cloud that believes `X-Forwarded-For` from the test (as from a proxy in front of it), so
/// the audit's client address is one the test chose.
async fn cloud() -> TestCloud {
    TestCloud::spawn_with(TestOptions {
        database_url: None,
        config_yaml: "server:\n  trusted_proxies: [\"127.0.0.1\"]\nrate_limit:\n  \
                      per_credential_per_minute: 100000\n  per_address_per_minute: 100000\n  \
                      per_address_link_lookups_per_minute: 30\n"
            .into(),
    })
    .await
}

async fn public(
    cloud: &TestCloud,
    method: &str,
    path: &str,
    from: &str,
    ticket: Option<&str>,
) -> Reply {
    let mut headers = vec![("x-forwarded-for".to_string(), from.to_string())];
    if let Some(ticket) = ticket {
        headers.push(("x-link-ticket".to_string(), ticket.to_string()));
    }
    call_raw(cloud, &Cred::None, method, path, Vec::new(), &headers).await
}

async fn sender(cloud: &TestCloud) -> Cred {
    user_with_token(cloud, "sender@example.com", "user").await.1
}

#[tokio::test]
async fn a_link_serves_the_stream_and_counts_each_open_against_its_limit() {
    let cloud = cloud().await;
    let alice = sender(&cloud).await;
    let secret = LinkSecret::generate().unwrap();
    let data: Vec<u8> = (0..MIN_CHUNK_SIZE as usize * 2 + 5)
        .map(|i| (i % 251) as u8)
        .collect();
    let sealed = seal(&data, &secret);
    let transfer = upload(&cloud, &alice, "admin@example.com", &sealed).await;
    let (link, token) = make_link(&cloud, &alice, &transfer, json!({"max_downloads": 2})).await;
    assert!(token.len() >= 22, "at least 128 bits: {token}");
    // Only the token's hash is stored.
    let row = cloud.state.store.get_link(&link).await.unwrap().unwrap();
    assert_eq!(row.token_hash, mftplus_crypto::sha256_hex(token.as_bytes()));

    // Looking at the link is free; the header and manifest are the stream's.
    for _ in 0..3 {
        let info = public(
            &cloud,
            "GET",
            &format!("/api/v1/shared/{token}"),
            "198.51.100.1",
            None,
        )
        .await;
        assert_eq!(info.status, 200, "{:?}", info.body);
        assert_eq!(info.body["downloads_left"], json!(2));
        assert_eq!(info.body["chunk_count"], json!(3));
    }

    // Without a ticket, or with a made-up one, no chunk.
    let path0 = format!("/api/v1/shared/{token}/chunks/0");
    let bare = public(&cloud, "GET", &path0, "198.51.100.1", None).await;
    assert_eq!((bare.status, bare.code()), (403, "link_ticket_invalid"));
    let forged = public(&cloud, "GET", &path0, "198.51.100.1", Some("made-up")).await;
    assert_eq!(forged.code(), "link_ticket_invalid");

    // An open gives a ticket; with it, the chunks are the stream's bytes and they open with
    // the link's secret alone.
    let opened = public(
        &cloud,
        "POST",
        &format!("/api/v1/shared/{token}/open"),
        "203.0.113.7",
        None,
    )
    .await;
    assert_eq!(opened.status, 200, "{:?}", opened.body);
    let ticket = opened.body["ticket"].as_str().unwrap().to_string();
    let (header, _) = Header::parse(&sealed.header).unwrap();
    let mut reader = Decryptor::new(
        header,
        &[Identity::Link(LinkKey {
            secret: Some(&secret),
            passphrase: None,
        })],
    )
    .unwrap();
    let mut plain = Vec::new();
    for (index, expected) in sealed.chunks.iter().enumerate() {
        let path = format!("/api/v1/shared/{token}/chunks/{index}");
        let response = reqwest::Client::new()
            .get(format!("{}{path}", cloud.url))
            .header("x-link-ticket", &ticket)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let bytes = response.bytes().await.unwrap();
        assert_eq!(&bytes[..], &expected[..], "chunk {index} as stored");
        plain.extend_from_slice(
            reader
                .open_chunk(&bytes, index + 1 == sealed.chunks.len())
                .unwrap(),
        );
    }
    reader.finish(&sealed.manifest).unwrap();
    assert_eq!(plain, data);
    let past = public(
        &cloud,
        "GET",
        &format!("/api/v1/shared/{token}/chunks/3"),
        "203.0.113.7",
        Some(&ticket),
    )
    .await;
    assert_eq!(past.status, 404);
    // A ticket is for its own link's token.
    let (_, other_token) = make_link(&cloud, &alice, &transfer, json!({})).await;
    let elsewhere = public(
        &cloud,
        "GET",
        &format!("/api/v1/shared/{other_token}/chunks/0"),
        "203.0.113.7",
        Some(&ticket),
    )
    .await;
    assert_eq!(elsewhere.code(), "link_ticket_invalid");

    // The second open is the last one the link allows; its page then says so.
    let second = public(
        &cloud,
        "POST",
        &format!("/api/v1/shared/{token}/open"),
        "203.0.113.8",
        None,
    )
    .await;
    assert_eq!(second.status, 200);
    let third = public(
        &cloud,
        "POST",
        &format!("/api/v1/shared/{token}/open"),
        "203.0.113.9",
        None,
    )
    .await;
    assert_eq!((third.status, third.code()), (410, "link_exhausted"));
    let info = public(
        &cloud,
        "GET",
        &format!("/api/v1/shared/{token}"),
        "203.0.113.9",
        None,
    )
    .await;
    assert_eq!(
        info.code(),
        "link_exhausted",
        "a cached page cannot start another download"
    );
    // A download already opened may finish: its ticket still works.
    let finishing = public(&cloud, "GET", &path0, "203.0.113.7", Some(&ticket)).await;
    assert_eq!(finishing.status, 200);

    // Every open is audited with the client's address, refusals too.
    let audit = cloud.state.store.list_audit(0, 10_000).await.unwrap();
    let opens: Vec<_> = audit
        .iter()
        .filter(|e| e.event == "link_opened" && e.target == link)
        .collect();
    let seen: Vec<(&str, &str)> = opens
        .iter()
        .map(|e| (e.client_ip.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("203.0.113.7", "success"),
            ("203.0.113.8", "success"),
            ("203.0.113.9", "denied")
        ]
    );
    assert_eq!(opens[2].details["reason"], json!("link_exhausted"));
    assert!(audit
        .iter()
        .any(|e| e.event == "link_created" && e.target == link));
    // The link lists with its count.
    let listed = call(
        &cloud,
        &alice,
        "GET",
        &format!("/api/v1/transfers/{transfer}/links"),
        None,
    )
    .await;
    let first = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == json!(link))
        .unwrap();
    assert_eq!(
        (first["downloads"].clone(), first["status"].clone()),
        (json!(2), json!("exhausted"))
    );
}

#[tokio::test]
async fn unknown_expired_and_revoked_links_are_refused_with_their_codes() {
    let cloud = cloud().await;
    let alice = sender(&cloud).await;
    let transfer = linkable_transfer(&cloud, &alice, "admin@example.com").await;
    let unknown = public(
        &cloud,
        "GET",
        "/api/v1/shared/AAAAAAAAAAAAAAAAAAAAAAAA",
        "192.0.2.1",
        None,
    )
    .await;
    assert_eq!((unknown.status, unknown.code()), (404, "not_found"));
    let unknown_open = public(
        &cloud,
        "POST",
        "/api/v1/shared/AAAAAAAAAAAAAAAAAAAAAAAA/open",
        "192.0.2.1",
        None,
    )
    .await;
    assert_eq!(unknown_open.status, 404);

    // Expiry: an hour, which the clock passes; a ticket from before stops working too.
    let (_, token) = make_link(&cloud, &alice, &transfer, json!({"expires": "1h"})).await;
    let ticket = open_link(&cloud, &token).await;
    cloud.clock.advance_secs(3_601);
    let info = public(
        &cloud,
        "GET",
        &format!("/api/v1/shared/{token}"),
        "192.0.2.1",
        None,
    )
    .await;
    assert_eq!((info.status, info.code()), (410, "link_expired"));
    let open = public(
        &cloud,
        "POST",
        &format!("/api/v1/shared/{token}/open"),
        "192.0.2.1",
        None,
    )
    .await;
    assert_eq!(open.code(), "link_expired");
    let chunk = public(
        &cloud,
        "GET",
        &format!("/api/v1/shared/{token}/chunks/0"),
        "192.0.2.1",
        Some(&ticket),
    )
    .await;
    assert_eq!(
        chunk.code(),
        "link_ticket_invalid",
        "the ticket lapsed with its link"
    );

    // A link never outlives its transfer: asking for longer gets the transfer's expiry.
    let long = call(
        &cloud,
        &alice,
        "POST",
        &format!("/api/v1/transfers/{transfer}/links"),
        Some(json!({"expires": "365d"})),
    )
    .await;
    let shown = call(
        &cloud,
        &alice,
        "GET",
        &format!("/api/v1/transfers/{transfer}"),
        None,
    )
    .await;
    assert_eq!(long.body["link"]["expires_at"], shown.body["expires_at"]);

    // Revocation stops the page, new opens and a download under way at its next chunk.
    let (link, token) = make_link(&cloud, &alice, &transfer, json!({})).await;
    let ticket = open_link(&cloud, &token).await;
    let path0 = format!("/api/v1/shared/{token}/chunks/0");
    assert_eq!(
        public(&cloud, "GET", &path0, "192.0.2.1", Some(&ticket))
            .await
            .status,
        200
    );
    let bob = user_with_token(&cloud, "bob@example.com", "user").await.1;
    let not_his = call(
        &cloud,
        &bob,
        "POST",
        &format!("/api/v1/links/{link}/revoke"),
        None,
    )
    .await;
    assert_eq!(not_his.status, 404, "another user's link is absent");
    let revoked = call(
        &cloud,
        &alice,
        "POST",
        &format!("/api/v1/links/{link}/revoke"),
        None,
    )
    .await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    assert_eq!(revoked.body["status"], json!("revoked"));
    let again = call(
        &cloud,
        &alice,
        "POST",
        &format!("/api/v1/links/{link}/revoke"),
        None,
    )
    .await;
    assert_eq!(again.status, 409);
    for (method, path, ticket) in [
        ("GET", format!("/api/v1/shared/{token}"), None),
        ("POST", format!("/api/v1/shared/{token}/open"), None),
        ("GET", path0.clone(), Some(ticket.as_str())),
    ] {
        let refused = public(&cloud, method, &path, "192.0.2.1", ticket).await;
        assert_eq!(
            (refused.status, refused.code()),
            (410, "link_revoked"),
            "{method} {path}"
        );
    }
    let audit = cloud.state.store.list_audit(0, 10_000).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.event == "link_revoked" && e.target == link));

    // Cancelling the transfer ends its links as a revocation would.
    let (_, token) = make_link(&cloud, &alice, &transfer, json!({})).await;
    call(
        &cloud,
        &alice,
        "POST",
        &format!("/api/v1/transfers/{transfer}/cancel"),
        None,
    )
    .await;
    let info = public(
        &cloud,
        "GET",
        &format!("/api/v1/shared/{token}"),
        "192.0.2.1",
        None,
    )
    .await;
    assert_eq!(info.code(), "link_revoked");
}

#[tokio::test]
async fn links_need_a_browser_readable_stream_and_the_sender() {
    let cloud = cloud().await;
    let alice = sender(&cloud).await;
    // An ordinary transfer has no link stanza: no link can be made to it.
    let plain = complete_transfer(&cloud, &alice, "admin@example.com").await;
    let refused = call(
        &cloud,
        &alice,
        "POST",
        &format!("/api/v1/transfers/{plain}/links"),
        Some(json!({})),
    )
    .await;
    assert_eq!((refused.status, refused.code()), (422, "link_unsupported"));
    let transfer = linkable_transfer(&cloud, &alice, "admin@example.com").await;
    // Only the sender makes links, even an administrator cannot (the stanza is the sender's).
    let by_admin = call(
        &cloud,
        &admin(&cloud),
        "POST",
        &format!("/api/v1/transfers/{transfer}/links"),
        Some(json!({})),
    )
    .await;
    assert_eq!(by_admin.status, 404);
    for bad in [json!({"max_downloads": 0}), json!({"expires": "soon"})] {
        let reply = call(
            &cloud,
            &alice,
            "POST",
            &format!("/api/v1/transfers/{transfer}/links"),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(reply.status, 400, "{bad}: {:?}", reply.body);
    }
    // An administrator sees and may revoke anyone's links (transfers:read, transfers:cancel).
    let (link, _) = make_link(&cloud, &alice, &transfer, json!({})).await;
    let listed = call(
        &cloud,
        &admin(&cloud),
        "GET",
        &format!("/api/v1/transfers/{transfer}/links"),
        None,
    )
    .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_eq!(listed.body[0]["created_by"], json!("sender@example.com"));
    assert!(
        listed.body[0].get("token").is_none(),
        "never the token again"
    );
    let revoked = call(
        &cloud,
        &admin(&cloud),
        "POST",
        &format!("/api/v1/links/{link}/revoke"),
        None,
    )
    .await;
    assert_eq!(revoked.status, 200);
}

#[tokio::test]
async fn lookups_are_rate_limited_per_address() {
    let cloud = cloud().await;
    let alice = sender(&cloud).await;
    let transfer = linkable_transfer(&cloud, &alice, "admin@example.com").await;
    let (_, token) = make_link(&cloud, &alice, &transfer, json!({})).await;
    let path = format!("/api/v1/shared/{token}");
    let mut limited = None;
    for n in 0..40 {
        let reply = public(
            &cloud,
            "GET",
            &format!("/api/v1/shared/guess{n:020}"),
            "198.51.100.50",
            None,
        )
        .await;
        if reply.status == 429 {
            limited = Some(n);
            break;
        }
        assert_eq!(reply.status, 404);
    }
    assert_eq!(
        limited,
        Some(30),
        "the 31st lookup in a minute from one address is refused"
    );
    let refused = public(&cloud, "GET", &path, "198.51.100.50", None).await;
    assert_eq!(refused.code(), "rate_limited", "even with the right token");
    let other = public(&cloud, "GET", &path, "198.51.100.51", None).await;
    assert_eq!(other.status, 200, "another address is not affected");
}

#[tokio::test]
async fn the_transfer_page_lists_its_links_and_revokes_one() {
    use web_support::*;
    let cloud = cloud().await;
    let (_, sender) = user_with_token(&cloud, &email_of("user"), "user").await;
    let (_, bob) = user_with_token(&cloud, "bob@example.com", "user").await;
    let transfer = linkable_transfer(&cloud, &sender, "bob@example.com").await;
    let (cookie, csrf) = signed_in_again(&cloud, "user").await;
    let empty = get(&cloud, &format!("/transfers/{transfer}"), &cookie).await;
    assert!(empty.body.contains("No share links"), "{}", empty.body);
    let (link, token) = make_link(&cloud, &sender, &transfer, json!({"max_downloads": 5})).await;
    open_link(&cloud, &token).await;
    let page = get(&cloud, &format!("/transfers/{transfer}"), &cookie).await;
    assert_eq!(page.status, 200);
    let action = format!("/transfers/{transfer}/links/{link}/revoke");
    for shown in [
        "Share links",
        &link[..12],
        "1 of 5",
        "active",
        action.as_str(),
    ] {
        assert!(
            page.body.contains(shown),
            "{shown} on the page: {}",
            page.body
        );
    }
    assert!(
        !page.body.contains(&token),
        "the page never shows the token"
    );
    // A recipient sees the transfer but not the sender's links.
    let (bob_cookie, _) = sign_in(&cloud, "bob@example.com", PASSWORD).await;
    let theirs = get(&cloud, &format!("/transfers/{transfer}"), &bob_cookie).await;
    assert_eq!(theirs.status, 200);
    assert!(!theirs.body.contains("Share links"), "{}", theirs.body);
    let _ = bob;
    // The Revoke button: the link stops at once.
    let revoked = post(&cloud, &action, &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    let after = get(&cloud, &format!("/transfers/{transfer}"), &cookie).await;
    assert!(after.body.contains("revoked") && !after.body.contains(&action));
    let info = public(
        &cloud,
        "GET",
        &format!("/api/v1/shared/{token}"),
        "192.0.2.9",
        None,
    )
    .await;
    assert_eq!(info.code(), "link_revoked");
}
