//! The dashboard's transfer pages over HTTP, on transfers made through the real API: who sees
//! which (own or all, as the API decides), progress in chunks and bytes, a cursor over pages
//! (and the API's listing, bounded the same way), verify with its result, cancel behind its
//! confirmation (audited; refused to roles and people who may not), escaping of what users
//! name, and the live stream announcing a stored chunk.
//!
//! Bounded work is a property of the code, not timed here: a page is three store queries
//! (`app::transfers`), whatever it holds.

mod common;
mod web_support;

use common::*;
use mftplus_cloud::testing::TestCloud;
use serde_json::json;
use web_support::*;

/// A person of `role` with an API credential and a dashboard session.
struct Person {
    email: String,
    cred: Cred,
    cookie: String,
}

async fn person(cloud: &TestCloud, email: &str, role: &str) -> Person {
    let (_, cred) = user_with_token(cloud, email, role).await;
    let (cookie, _) = sign_in(cloud, email, PASSWORD).await;
    Person {
        email: email.to_string(),
        cred,
        cookie,
    }
}

/// The transfer ids a listing page shows, in order.
fn listed(body: &str) -> Vec<String> {
    body.split("data-transfer=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

/// The href of the page's "Next page" link, unescaped.
fn next_link(body: &str) -> Option<String> {
    let at = body.find("rel=\"next\" href=\"")? + 17;
    Some(body[at..].split('"').next().unwrap().replace("&amp;", "&"))
}

/// The row of `id` in a listing page.
fn row_of<'a>(body: &'a str, id: &str) -> &'a str {
    let at = body
        .find(&format!("data-transfer=\"{id}\""))
        .unwrap_or_else(|| panic!("{id} is listed: {body}"));
    let end = body[at..].find("</tr>").unwrap();
    &body[at..at + end]
}

/// Alice sent Bob a transfer still uploading (two chunks, their count not known yet) and a
/// completed one; Carol sent the readonly auditor one.
struct Cast {
    cloud: TestCloud,
    alice: Person,
    bob: Person,
    carol: Person,
    auditor: Person,
    uploading: String,
    complete: String,
    carols: String,
}

async fn cast() -> Cast {
    let cloud = TestCloud::spawn().await;
    let alice = person(&cloud, "alice@example.com", "user").await;
    let bob = person(&cloud, "bob@example.com", "user").await;
    let carol = person(&cloud, "carol@example.com", "user").await;
    let auditor = person(&cloud, "ro@example.com", "readonly").await;
    let uploading = new_transfer(&cloud, &alice.cred, &bob.email).await;
    for index in 0..2 {
        let stored = put_chunk(
            &cloud,
            &alice.cred,
            &uploading,
            index,
            b"twelve bytes",
            false,
        );
        assert_eq!(stored.await.status, 201);
    }
    let complete = complete_transfer(&cloud, &alice.cred, &bob.email).await;
    let carols = new_transfer(&cloud, &carol.cred, &auditor.email).await;
    Cast {
        cloud,
        alice,
        bob,
        carol,
        auditor,
        uploading,
        complete,
        carols,
    }
}

#[tokio::test]
async fn a_user_lands_on_its_own_transfers_with_their_progress() {
    let Cast {
        cloud,
        alice,
        uploading,
        complete,
        ..
    } = cast().await;
    let home = get(&cloud, "/", &alice.cookie).await;
    assert_eq!(home.headers["location"], "/transfers");
    let mine = get(&cloud, "/transfers", &alice.cookie).await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    assert_eq!(
        listed(&mine.body),
        vec![complete.clone(), uploading.clone()]
    );
    for shown in [
        "href=\"/transfers\"",
        "data-live=\"/live/transfers\"",
        "The transfers you sent or receive",
        "<th scope=\"col\">Progress</th>",
        "Encrypted",
    ] {
        assert!(mine.body.contains(shown), "{shown} missing: {}", mine.body);
    }
    let row = row_of(&mine.body, &uploading);
    assert!(
        row.contains("data-status=\"uploading\"") && row.contains("Uploading"),
        "{row}"
    );
    assert!(
        row.contains("2 chunks") && row.contains("24 B so far"),
        "{row}"
    );
    assert!(row.contains("bob@example.com") && row.contains("alice@example.com"));
    assert!(
        row.contains(&format!("title=\"{uploading}\"")),
        "the full id on hover"
    );
    let row = row_of(&mine.body, &complete);
    assert!(
        row.contains("1 / 1 chunks") && row.contains("Complete"),
        "{row}"
    );
}

#[tokio::test]
async fn recipients_strangers_and_readers_of_all_see_what_the_api_would_show() {
    let Cast {
        cloud,
        bob,
        carol,
        auditor,
        uploading,
        complete,
        carols,
        ..
    } = cast().await;
    let received = get(&cloud, "/transfers", &bob.cookie).await;
    assert_eq!(
        listed(&received.body),
        vec![complete.clone(), uploading.clone()]
    );
    let others = get(&cloud, "/transfers", &carol.cookie).await;
    assert_eq!(listed(&others.body), vec![carols.clone()]);
    let theirs = get(&cloud, &format!("/transfers/{complete}"), &carol.cookie).await;
    assert_eq!(theirs.status, 404, "someone else's transfer is absent");
    assert!(theirs.body.contains("not_found"));

    // transfers:read sees everyone's; so does the admin.
    let everyone = get(&cloud, "/transfers", &auditor.cookie).await;
    assert_eq!(listed(&everyone.body), vec![carols, complete, uploading]);
    assert!(everyone.body.contains("Every transfer on this cloud"));
    let (admin, _) = sign_in(&cloud, "admin@example.com", &cloud.admin_password).await;
    assert_eq!(
        listed(&get(&cloud, "/transfers", &admin).await.body).len(),
        3
    );
}

#[tokio::test]
async fn the_status_filter_narrows_and_refuses_unknown_words() {
    let Cast {
        cloud,
        auditor,
        complete,
        ..
    } = cast().await;
    let done = get(&cloud, "/transfers?status=complete", &auditor.cookie).await;
    assert_eq!(listed(&done.body), vec![complete]);
    assert!(
        done.body
            .contains("aria-current=\"page\" href=\"/transfers?status=complete\"")
            || done
                .body
                .contains("href=\"/transfers?status=complete\" aria-current=\"page\"")
    );
    let none = get(&cloud, "/transfers?status=expired", &auditor.cookie).await;
    assert!(
        none.body.contains("No transfer is expired"),
        "{}",
        none.body
    );
    let bad = get(&cloud, "/transfers?status=%3Cscript%3Ex", &auditor.cookie).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("validation_failed") && !bad.body.contains("<script>x"));
}

#[tokio::test]
async fn a_transfers_page_shows_its_recipients_and_downloads() {
    let Cast {
        cloud,
        alice,
        bob,
        complete,
        ..
    } = cast().await;
    let path = format!("/transfers/{complete}");
    let before = get(&cloud, &path, &alice.cookie).await;
    assert!(before.body.contains("Not yet"), "{}", before.body);
    let downloaded = call(
        &cloud,
        &bob.cred,
        "POST",
        &format!("/api/v1/transfers/{complete}/received"),
        None,
    )
    .await;
    assert_eq!(downloaded.status, 200, "{:?}", downloaded.body);
    let page = get(&cloud, &path, &alice.cookie).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let recipients = &page.body[page.body.find("id=\"recipients\"").unwrap()..];
    assert!(recipients.contains("bob@example.com") && !recipients.contains("Not yet"));
    for shown in [
        "1 / 1 chunks",
        "<th scope=\"col\">Downloaded</th>",
        &format!("data-live=\"/live/transfers?transfer={complete}\""),
        &format!("<code>{complete}</code>"),
    ] {
        assert!(page.body.contains(shown), "{shown} missing: {}", page.body);
    }
}

#[tokio::test]
async fn pages_follow_a_cursor_and_so_does_the_api() {
    let cloud = TestCloud::spawn().await;
    let alice = person(&cloud, "alice@example.com", "user").await;
    let _bob = person(&cloud, "bob@example.com", "user").await;
    let empty = get(&cloud, "/transfers", &alice.cookie).await;
    assert!(empty
        .body
        .contains("You have not sent or received a file yet"));
    assert!(
        empty.body.contains("mftctl send FILE RECIPIENT_EMAIL"),
        "what to do next"
    );
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(new_transfer(&cloud, &alice.cred, "bob@example.com").await);
    }
    made.reverse(); // newest first

    let mut seen = Vec::new();
    let mut path = "/transfers?limit=2".to_string();
    let mut pages = 0;
    loop {
        let page = get(&cloud, &path, &alice.cookie).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        let rows = listed(&page.body);
        assert!(rows.len() <= 2, "{path} holds at most its limit");
        seen.extend(rows);
        pages += 1;
        match next_link(&page.body) {
            Some(next) => path = next,
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, made, "every transfer once, newest first");
    let bad = get(&cloud, "/transfers?after=nonsense", &alice.cookie).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("validation_failed"));

    // The API's listing is bounded the same way: the same array, and where it goes on.
    let mut seen = Vec::new();
    let mut query = "limit=2".to_string();
    loop {
        let reply = call(
            &cloud,
            &alice.cred,
            "GET",
            &format!("/api/v1/transfers?{query}"),
            None,
        )
        .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let page = reply.body.as_array().expect("an array, as before").clone();
        seen.extend(page.iter().map(|t| t["id"].as_str().unwrap().to_string()));
        assert!(page
            .iter()
            .all(|t| t["sender_email"] == "alice@example.com"));
        match reply.headers.get("x-next-after") {
            Some(next) => query = format!("limit=2&after={}", next.to_str().unwrap()),
            None => break,
        }
    }
    assert_eq!(seen, made);
    let unbounded = call(&cloud, &alice.cred, "GET", "/api/v1/transfers", None).await;
    assert_eq!(unbounded.body.as_array().unwrap().len(), 5);
    assert!(!unbounded.headers.contains_key("x-next-after"));
    let refused = call(
        &cloud,
        &alice.cred,
        "GET",
        "/api/v1/transfers?after=x",
        None,
    )
    .await;
    assert_eq!(refused.status, 400);
}

#[tokio::test]
async fn verify_shows_the_servers_result() {
    let cloud = TestCloud::spawn().await;
    let alice = person(&cloud, "alice@example.com", "user").await;
    let bob = person(&cloud, "bob@example.com", "user").await;
    // Large enough for the payload store, where damage at rest can happen under the cloud.
    let chunk = vec![7u8; STORED_CHUNK_LEN];
    let id = complete_transfer_of(&cloud, &alice.cred, &bob.email, &chunk).await;

    let page = get(&cloud, &format!("/transfers/{id}"), &bob.cookie).await;
    let csrf = csrf_of(&page.body);
    let verify = format!("/transfers/{id}/verify");
    let refused = post(&cloud, &verify, &bob.cookie, &[]).await;
    assert_eq!(refused.status, 403, "no CSRF token");
    let verified = post(&cloud, &verify, &bob.cookie, &[("csrf", &csrf)]).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert!(verified.body.contains("data-ok=\"true\"") && verified.body.contains("Verified"));
    assert!(
        verified.body.contains("All 1 chunk read back"),
        "{}",
        verified.body
    );

    // Damage at rest is what verification is for.
    let store =
        mftplus_blob::FsBlobStore::open(&cloud.state.config.config.transfers.blob_path).unwrap();
    let tid = mftplus_blob::TransferId::new(id.clone()).unwrap();
    let path = store.object_path(&mftplus_blob::BlobKey::chunk(&tid, 0));
    let mut stored = std::fs::read(&path).unwrap();
    stored[3] ^= 0x01;
    std::fs::write(&path, &stored).unwrap();
    let damaged = post(&cloud, &verify, &bob.cookie, &[("csrf", &csrf)]).await;
    assert_eq!(damaged.status, 200);
    assert!(damaged.body.contains("data-ok=\"false\"") && damaged.body.contains("Damaged"));
    assert!(damaged
        .body
        .contains("Corrupt (bytes no longer match): chunks 0"));

    // Someone who may not see it verifies nothing.
    let carol = person(&cloud, "carol@example.com", "user").await;
    let carol_csrf = csrf_of(&get(&cloud, "/transfers", &carol.cookie).await.body);
    let absent = post(&cloud, &verify, &carol.cookie, &[("csrf", &carol_csrf)]).await;
    assert_eq!(absent.status, 404);
}

/// The transfer's status as the API answers it.
async fn status_of(cloud: &TestCloud, cred: &Cred, id: &str) -> String {
    let path = format!("/api/v1/transfers/{id}");
    let reply = call(cloud, cred, "GET", &path, None).await;
    reply.body["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn only_those_who_may_cancel_are_offered_it_or_can() {
    let Cast {
        cloud,
        alice,
        bob,
        carol,
        auditor,
        complete,
        ..
    } = cast().await;
    let path = format!("/transfers/{complete}");
    let cancel = format!("/transfers/{complete}/cancel");
    let own = get(&cloud, &path, &alice.cookie).await;
    assert!(own.body.contains("Cancel transfer") && own.body.contains("required"));
    for (who, cookie) in [("bob", &bob.cookie), ("readonly", &auditor.cookie)] {
        let page = get(&cloud, &path, cookie).await;
        assert_eq!(page.status, 200, "{who}");
        assert!(
            !page.body.contains("Cancel transfer"),
            "{who} is offered no cancel"
        );
    }
    // The recipient and a stranger: absent for cancelling; readonly: forbidden.
    for (who, cookie, status) in [
        ("the recipient", &bob.cookie, 404),
        ("a stranger", &carol.cookie, 404),
        ("readonly", &auditor.cookie, 403),
    ] {
        let csrf = csrf_of(&get(&cloud, "/transfers", cookie).await.body);
        let refused = post(
            &cloud,
            &cancel,
            cookie,
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
        assert_eq!(refused.status, status, "{who}: {}", refused.body);
    }
    let still = status_of(&cloud, &alice.cred, &complete).await;
    assert_eq!(still, "complete", "nothing was cancelled");
}

#[tokio::test]
async fn the_sender_cancels_behind_a_confirmation_and_it_is_audited() {
    let Cast {
        cloud,
        alice,
        complete: id,
        ..
    } = cast().await;
    let path = format!("/transfers/{id}");
    let cancel = format!("/transfers/{id}/cancel");
    let csrf = csrf_of(&get(&cloud, &path, &alice.cookie).await.body);
    let no_token = post(&cloud, &cancel, &alice.cookie, &[("confirm", "yes")]).await;
    assert_eq!(no_token.status, 403);
    let unconfirmed = post(&cloud, &cancel, &alice.cookie, &[("csrf", &csrf)]).await;
    assert_eq!(unconfirmed.status, 400);
    assert!(unconfirmed.body.contains("validation_failed"));
    let still = status_of(&cloud, &alice.cred, &id).await;
    assert_eq!(still, "complete", "nothing was cancelled yet");

    let done = post(
        &cloud,
        &cancel,
        &alice.cookie,
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.headers["location"], path.as_str());
    let after = get(&cloud, &path, &alice.cookie).await;
    assert!(after.body.contains("data-status=\"cancelled\"") && after.body.contains("Cancelled"));
    assert!(
        !after.body.contains("Cancel transfer"),
        "nothing more to cancel"
    );
    let again = post(
        &cloud,
        &cancel,
        &alice.cookie,
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(again.status, 409);
    assert!(again.body.contains("conflict"));

    let audit = call(
        &cloud,
        &admin(&cloud),
        "GET",
        "/api/v1/audit?limit=1000",
        None,
    )
    .await;
    let cancelled: Vec<&serde_json::Value> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["event"] == "transfer_cancelled")
        .collect();
    assert_eq!(cancelled.len(), 1, "{:?}", audit.body);
    assert_eq!(cancelled[0]["actor"], "alice@example.com");
    assert_eq!(cancelled[0]["target"], json!(id));
}

#[tokio::test]
async fn what_users_name_is_shown_escaped() {
    let cloud = TestCloud::spawn().await;
    let mallory_email = "<img/src=x/onerror=alert(1)>@evil.example.com";
    let (_, mallory) = user_with_token(&cloud, mallory_email, "user").await;
    let _bob = person(&cloud, "bob@example.com", "user").await;
    let id = new_transfer(&cloud, &mallory, "bob@example.com").await;
    let (admin, _) = sign_in(&cloud, "admin@example.com", &cloud.admin_password).await;
    for path in ["/transfers".to_string(), format!("/transfers/{id}")] {
        let page = get(&cloud, &path, &admin).await;
        assert_eq!(page.status, 200);
        assert!(!page.body.contains("<img/src=x"), "{path}: {}", page.body);
        assert!(page
            .body
            .contains("&lt;img/src=x/onerror=alert(1)&gt;@evil.example.com"));
    }
}

#[tokio::test]
async fn the_live_stream_says_when_a_chunk_is_stored() {
    let cloud = TestCloud::spawn().await;
    let alice = person(&cloud, "alice@example.com", "user").await;
    let bob = person(&cloud, "bob@example.com", "user").await;
    let id = new_transfer(&cloud, &alice.cred, &bob.email).await;
    for path in [
        "/live/transfers".to_string(),
        format!("/live/transfers?transfer={id}"),
    ] {
        let mut stream = open_stream(&cloud, &path, &bob.cookie).await;
        assert_eq!(stream.status(), 200, "{path}");
        assert_eq!(stream.headers()["content-type"], "text/event-stream");
        assert!(changed_within(&mut stream, 5).await, "the first look");
        let index = if path.contains('?') { 1 } else { 0 };
        let stored = put_chunk(&cloud, &alice.cred, &id, index, b"sealed", false).await;
        assert_eq!(stored.status, 201);
        assert!(
            changed_within(&mut stream, 5).await,
            "{path}: a stored chunk was announced within 5 s"
        );
    }
    // The fragment the script then reads shows the new progress.
    let fragment = get(&cloud, "/transfers?fragment=table", &bob.cookie).await;
    assert!(fragment.body.contains("2 chunks") && !fragment.body.contains("<html"));
    let summary = get(
        &cloud,
        &format!("/transfers/{id}?fragment=summary"),
        &bob.cookie,
    )
    .await;
    assert!(summary.body.contains("2 chunks") && summary.body.contains("id=\"recipients\""));

    // A transfer the caller may not see is not followed.
    let carol = person(&cloud, "carol@example.com", "user").await;
    let refused = get(
        &cloud,
        &format!("/live/transfers?transfer={id}"),
        &carol.cookie,
    )
    .await;
    assert_eq!(refused.status, 404);
}

/// A recipient without a key when the file was sent (decision 0022) is shown waiting, on the
/// listing and the transfer's page, until the sender's grant.
#[tokio::test]
async fn a_waiting_recipient_is_shown_until_granted() {
    let cloud = TestCloud::spawn().await;
    let alice = person(&cloud, "alice@example.com", "user").await;
    let bob = person(&cloud, "bob@example.com", "user").await;
    let waiting = waiting_transfer(&cloud, &alice.cred, &bob.cred, &bob.email).await;
    let id = &waiting.id;
    for who in [&alice, &bob] {
        let listing = get(&cloud, "/transfers", &who.cookie).await;
        assert!(
            row_of(&listing.body, id).contains("1 waiting for the sender to grant access"),
            "{}",
            listing.body
        );
        let page = get(&cloud, &format!("/transfers/{id}"), &who.cookie).await;
        assert!(
            page.body.contains("Waiting for the sender to grant access"),
            "{}",
            page.body
        );
    }
    let granted = call(
        &cloud,
        &alice.cred,
        "POST",
        &format!("/api/v1/transfers/{id}/grants"),
        Some(waiting.grant.clone()),
    )
    .await;
    assert_eq!(granted.status, 200, "{:?}", granted.body);
    let page = get(&cloud, &format!("/transfers/{id}"), &bob.cookie).await;
    assert!(
        !page.body.contains("Waiting for the sender"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Not yet"), "{}", page.body);
    let listing = get(&cloud, "/transfers", &bob.cookie).await;
    assert!(!row_of(&listing.body, id).contains("waiting for the sender"));
}

/// The upload page's token (`POST /transfers/upload-token`): only with the session's CSRF
/// token; an administrator's page gets a `user` token (enough to upload, no more), and signing
/// out ends it with the session.
#[tokio::test]
async fn the_upload_token_is_narrow_and_ends_with_the_session() {
    let cloud = TestCloud::spawn().await;
    let (cookie, csrf) = signed_in_as(&cloud, "admin").await;
    let forged = post(
        &cloud,
        "/transfers/upload-token",
        &cookie,
        &[("csrf", "wrong")],
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let minted = post(
        &cloud,
        "/transfers/upload-token",
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(minted.status, 200, "{}", minted.body);
    let granted: serde_json::Value = serde_json::from_str(&minted.body).unwrap();
    assert_eq!(granted["expires_in"], 900);
    let token = Cred::Bearer(granted["token"].as_str().unwrap().to_string());
    let who = call(&cloud, &token, "GET", "/api/v1/auth/whoami", None).await;
    assert_eq!(who.status, 200);
    assert_eq!(who.body["role"], "user", "{}", who.body);
    let users = call(&cloud, &token, "GET", "/api/v1/users", None).await;
    assert_eq!(users.status, 403, "an upload token cannot act as the admin");
    let out = post(&cloud, "/logout", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303, "{}", out.body);
    let after = call(&cloud, &token, "GET", "/api/v1/auth/whoami", None).await;
    assert_eq!(
        after.status, 401,
        "the token outlived the session: {}",
        after.body
    );
}
