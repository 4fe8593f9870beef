//! The dashboard's audit log and events pages over HTTP: listing, filters and the cursor; the
//! export as a download that is itself audited; the server's verification of the chain, intact
//! and after a row was changed in the SQLite file behind the server's back; who may see them;
//! escaping; the events timeline with its filters, pages and live stream.

mod common;
mod fleet_support;
mod web_support;

use common::*;
use fleet_support::{enroll, send_report};
use mftplus_cloud::fleet::checker;
use mftplus_cloud::testing::TestCloud;
use mftplus_store::{NewAuditEntry, NewEvent};
use mftplus_types::api::{AuditEntry, AuditVerification};
use serde_json::json;
use web_support::*;

/// The `data-seq` of each row of the audit table, in page order.
fn seqs(body: &str) -> Vec<i64> {
    body.split("<tr data-seq=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect()
}

async fn append(cloud: &TestCloud, event: &str, actor: &str, details: serde_json::Value) -> i64 {
    let entry = NewAuditEntry {
        ts_ms: cloud.state.clock.now_ms(),
        event: event.into(),
        actor: actor.into(),
        target: "target-x".into(),
        outcome: "success".into(),
        client_ip: "192.0.2.9".into(),
        details,
    };
    cloud.state.store.append_audit(&entry).await.unwrap().seq
}

#[tokio::test]
async fn the_audit_page_lists_and_filters_entries() {
    let cloud = TestCloud::spawn().await;
    signed_in_as(&cloud, "operator").await;
    let first = append(&cloud, "key_rotated", "carol@example.com", json!({"n": 1})).await;
    cloud.clock.advance_secs(3 * 86_400);
    let second = append(&cloud, "key_rotated", "dave@example.com", json!({"n": 2})).await;
    let (cookie, _) = signed_in_again(&cloud, "operator").await;

    let page = get(&cloud, "/audit", &cookie).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for shown in [
        "key_rotated",
        "carol@example.com",
        "target-x",
        "192.0.2.9",
        "{&quot;n&quot;:2}",
        "data-status=\"success\"",
        "3 d ago",
        "href=\"/audit/export?format=csv\"",
        "href=\"/audit/export?format=json\"",
        "action=\"/audit/verify\"",
        "mftctl audit verify",
        "href=\"/audit\"",
        "href=\"/events\"",
    ] {
        assert!(page.body.contains(shown), "{shown} missing: {}", page.body);
    }
    let order = seqs(&page.body);
    assert!(
        order.windows(2).all(|pair| pair[0] > pair[1]),
        "newest first: {order:?}"
    );
    assert_eq!(order[1], second, "after the sign-in that came last");

    let rotated = get(&cloud, "/audit?event=key_rotated", &cookie).await;
    assert_eq!(seqs(&rotated.body), vec![second, first]);
    let oldest = get(&cloud, "/audit?event=key_rotated&order=oldest", &cookie).await;
    assert_eq!(seqs(&oldest.body), vec![first, second]);
    let by_carol = get(&cloud, "/audit?actor=carol%40example.com", &cookie).await;
    assert_eq!(seqs(&by_carol.body), vec![first]);
    // The first entry was three days ago: a window of the last day holds only the second.
    let today = mftplus_cloud::clock::rfc3339(cloud.state.clock.now_ms())[..10].to_string();
    let recent = get(
        &cloud,
        &format!("/audit?event=key_rotated&from={today}"),
        &cookie,
    )
    .await;
    assert_eq!(seqs(&recent.body), vec![second]);
    let before = get(
        &cloud,
        &format!("/audit?event=key_rotated&to={today}T00:00"),
        &cookie,
    )
    .await;
    assert_eq!(seqs(&before.body), vec![first]);
    let none = get(&cloud, "/audit?event=nothing_like_it", &cookie).await;
    assert!(
        none.body.contains("No entry matches these filters"),
        "{}",
        none.body
    );

    let bad = get(&cloud, "/audit?from=yesterday", &cookie).await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("validation"),
        "the error page has the code"
    );
    assert_eq!(get(&cloud, "/audit?cursor=x", &cookie).await.status, 400);
}

#[tokio::test]
async fn the_listing_pages_by_cursor() {
    let cloud = TestCloud::spawn().await;
    let (cookie, _) = signed_in_as(&cloud, "readonly").await;
    let mut mine = Vec::new();
    for n in 0..130 {
        mine.push(append(&cloud, "page_test", "pager@example.com", json!({ "n": n })).await);
    }
    let first = get(&cloud, "/audit?event=page_test", &cookie).await;
    let rows = seqs(&first.body);
    assert_eq!(rows.len(), 100);
    assert_eq!(rows[0], mine[129]);
    let next = format!("/audit?event=page_test&amp;cursor={}", mine[30]);
    assert!(first.body.contains(&next), "a Next link: {}", first.body);
    let second = get(&cloud, &next.replace("&amp;", "&"), &cookie).await;
    let rest = seqs(&second.body);
    assert_eq!(rest, mine[..30].iter().rev().copied().collect::<Vec<_>>());
    assert!(
        !second.body.contains("rel=\"next\""),
        "the last page has no Next"
    );

    let forwards = get(&cloud, "/audit?event=page_test&order=oldest", &cookie).await;
    assert_eq!(seqs(&forwards.body)[..2], mine[..2]);
    let more = format!("/audit?event=page_test&order=oldest&cursor={}", mine[99]);
    let last = get(&cloud, &more, &cookie).await;
    assert_eq!(seqs(&last.body), mine[100..].to_vec());
}

#[tokio::test]
async fn the_export_downloads_and_is_audited() {
    let cloud = TestCloud::spawn().await;
    let (cookie, _) = signed_in_as(&cloud, "operator").await;
    append(&cloud, "=formula", "x@example.com", json!({"a": "b,c"})).await;

    let csv = get(&cloud, "/audit/export?format=csv", &cookie).await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let disposition = csv.headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"mftplus-audit-")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    assert!(csv.body.starts_with("seq,time,ts_ms,event,actor"));
    assert!(csv.body.contains(",'=formula,"), "a formula is defused");

    let json_page = get(&cloud, "/audit/export?format=json", &cookie).await;
    assert_eq!(json_page.status, 200);
    let disposition = json_page.headers["content-disposition"].to_str().unwrap();
    assert!(disposition.ends_with(".json\""), "{disposition}");
    let entries: Vec<AuditEntry> = serde_json::from_str(&json_page.body).unwrap();
    mftplus_crypto::audit::verify_run(None, &entries).expect("the export verifies");
    let exported: Vec<&AuditEntry> = entries
        .iter()
        .filter(|entry| entry.event == "audit_exported")
        .collect();
    assert!(
        exported
            .iter()
            .any(|e| e.actor == "operator-web@example.com" && e.details["format"] == "csv"),
        "the CSV export was audited before the JSON one was read: {exported:?}"
    );
    // The page's export is the API's: the same entries in the same bytes.
    let api = call(
        &cloud,
        &admin(&cloud),
        "GET",
        "/api/v1/audit/export?format=json",
        None,
    )
    .await;
    assert_eq!(api.status, 200);
    assert!(
        !api.headers.contains_key("content-disposition"),
        "the API answers as before"
    );
    let api_entries: Vec<AuditEntry> = serde_json::from_value(api.body).unwrap();
    assert_eq!(api_entries[..entries.len()], entries[..]);

    let bad = get(&cloud, "/audit/export?format=xml", &cookie).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("format must be json or csv") && bad.body.contains("<html"));
}

#[tokio::test]
async fn verification_says_ok_then_names_the_tampered_entry() {
    let cloud = TestCloud::spawn().await;
    let (cookie, csrf) = signed_in_as(&cloud, "admin").await;
    let mut seqs = Vec::new();
    for n in 0..5 {
        seqs.push(
            append(
                &cloud,
                "user_created",
                "admin@example.com",
                json!({ "n": n }),
            )
            .await,
        );
    }
    let refused = post(&cloud, "/audit/verify", &cookie, &[]).await;
    assert_eq!(refused.status, 403, "no CSRF token");

    let intact = post(&cloud, "/audit/verify", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(intact.status, 200, "{}", intact.body);
    for shown in [
        "data-ok=\"true\"",
        "OK: the chain is intact.",
        "mftctl audit verify",
        "Head: ",
    ] {
        assert!(
            intact.body.contains(shown),
            "{shown} missing: {}",
            intact.body
        );
    }
    let api = call(&cloud, &admin(&cloud), "POST", "/api/v1/audit/verify", None).await;
    assert_eq!(api.status, 200, "{:?}", api.body);
    let answer: AuditVerification = serde_json::from_value(api.body.clone()).unwrap();
    assert!(answer.ok && answer.first_broken.is_none());
    assert_eq!(answer.first_seq, Some(1));
    assert!(answer.checked >= 6, "{answer:?}");
    assert!(api.body.to_string().contains("\"first_broken\":null"));

    // Change one entry's details in the database file, as someone holding the file would:
    // the append-only trigger refuses, so it goes first.
    let target = seqs[2];
    let db = cloud.state.config.config.database.url.clone().unwrap();
    let path = db.expose().trim_start_matches("sqlite://").to_string();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("DROP TRIGGER audit_log_no_update", [])
        .unwrap();
    let changed = conn
        .execute(
            "UPDATE audit_log SET details = '{\"n\":99}' WHERE seq = ?1",
            [target],
        )
        .unwrap();
    assert_eq!(changed, 1);

    let broken = post(&cloud, "/audit/verify", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(broken.status, 200, "{}", broken.body);
    let named = format!("Broken at entry {target}: ");
    for shown in [
        named.as_str(),
        "data-ok=\"false\"",
        "hash_mismatch",
        "mftctl audit verify",
        &format!("href=\"/audit?order=oldest&amp;cursor={}\"", target - 1),
    ] {
        assert!(
            broken.body.contains(shown),
            "{shown} missing: {}",
            broken.body
        );
    }
    let api = call(&cloud, &admin(&cloud), "POST", "/api/v1/audit/verify", None).await;
    let answer: AuditVerification = serde_json::from_value(api.body).unwrap();
    assert!(!answer.ok);
    let first_broken = answer.first_broken.unwrap();
    assert_eq!(
        (first_broken.seq, first_broken.reason.as_str()),
        (target, "hash_mismatch")
    );
    assert_eq!(
        answer.checked,
        (target - 1) as u64,
        "entries before it verified"
    );
    assert_eq!(answer.last_seq, Some(target - 1));

    // Each check is itself in the log, with what it found.
    let log = call(
        &cloud,
        &admin(&cloud),
        "GET",
        "/api/v1/audit?limit=1000",
        None,
    )
    .await;
    let entries: Vec<AuditEntry> = serde_json::from_value(log.body["entries"].clone()).unwrap();
    let verified: Vec<&AuditEntry> = entries
        .iter()
        .filter(|e| e.event == "audit_verified")
        .collect();
    assert_eq!(verified.len(), 4);
    assert_eq!(verified[3].details["first_broken"], json!(target));
}

#[tokio::test]
async fn a_role_without_the_permission_sees_neither_page_nor_link() {
    let cloud = TestCloud::spawn().await;
    let (cookie, csrf) = signed_in_as(&cloud, "user").await;
    for path in [
        "/audit",
        "/audit/export?format=csv",
        "/events",
        "/live/events",
    ] {
        let page = get(&cloud, path, &cookie).await;
        assert_eq!(page.status, 403, "{path} as user");
    }
    let verify = post(&cloud, "/audit/verify", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(verify.status, 403);
    assert!(verify.body.contains("forbidden"));
    let api = call(
        &cloud,
        &user_with_token(&cloud, "u2@example.com", "user").await.1,
        "POST",
        "/api/v1/audit/verify",
        None,
    )
    .await;
    assert_eq!(api.status, 403);
    let home = get(&cloud, "/", &cookie).await;
    let home = match home.headers.get("location") {
        Some(at) => get(&cloud, at.to_str().unwrap(), &cookie).await,
        None => home,
    };
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Sign out"), "{}", home.body);
    assert!(!home.body.contains("href=\"/audit\"") && !home.body.contains("href=\"/events\""));

    let (readonly, _) = signed_in_as(&cloud, "readonly").await;
    let page = get(&cloud, "/hosts", &readonly).await;
    assert!(page.body.contains("href=\"/audit\"") && page.body.contains("href=\"/events\""));
    assert_eq!(get(&cloud, "/audit", &readonly).await.status, 200);
}

#[tokio::test]
async fn what_the_log_records_is_shown_escaped() {
    let cloud = TestCloud::spawn().await;
    let (cookie, _) = signed_in_as(&cloud, "admin").await;
    append(
        &cloud,
        "login_failed",
        "<script>alert(1)</script>",
        json!({"note": "<img src=x onerror=alert(2)>"}),
    )
    .await;
    // Events carry what boxes and operators typed, too.
    let at_ms = cloud.state.clock.now_ms();
    cloud
        .state
        .store
        .append_events(&[NewEvent {
            at_ms,
            kind: "<b>odd</b>".into(),
            severity: "info".into(),
            customer_id: Some("<i>c</i>".into()),
            host_id: None,
            guest_id: None,
            op_id: None,
            details_json: r#"{"why":"<script>x</script>"}"#.into(),
        }])
        .await
        .unwrap();
    for path in ["/audit", "/events"] {
        let page = get(&cloud, path, &cookie).await;
        assert_eq!(page.status, 200);
        for raw in [
            "<script>alert",
            "<img src=x",
            "<b>odd",
            "<i>c</i>",
            "<script>x",
        ] {
            assert!(!page.body.contains(raw), "{path}: {raw} unescaped");
        }
    }
    let page = get(&cloud, "/audit", &cookie).await;
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.body.contains("&lt;img src=x onerror=alert(2)&gt;"));
}

#[tokio::test]
async fn the_events_page_shows_liveness_and_follows_new_events() {
    let cloud = TestCloud::spawn().await;
    let grace = cloud.state.clock.now_ms();
    let host = enroll(&cloud).await;
    let reply = send_report(&cloud, &host, fleet_support::report(&host.host_id, 0)).await;
    assert_eq!(reply.status, 200);
    let (cookie, _) = signed_in_as(&cloud, "readonly").await;
    let empty = get(&cloud, "/events?kind=host_stale", &cookie).await;
    assert!(empty.body.contains("No event matches"), "{}", empty.body);

    cloud.clock.advance_secs(31 * 60);
    checker::pass(&cloud.state, grace).await;
    let (cookie, _) = signed_in_again(&cloud, "readonly").await;
    let page = get(&cloud, "/events", &cookie).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for shown in [
        "data-kind=\"host_stale\"",
        "data-kind=\"host_enrolled\"",
        host.host_id.as_str(),
        &format!("href=\"/hosts/{}\"", host.host_id),
        "data-live=\"/live/events\"",
        "data-fragment=\"/events?fragment=table\"",
        "<th scope=\"col\">",
        "for=\"kind\"",
    ] {
        assert!(page.body.contains(shown), "{shown} missing: {}", page.body);
    }
    let stale = get(&cloud, "/events?kind=host_stale", &cookie).await;
    assert!(stale.body.contains("data-kind=\"host_stale\""));
    assert!(!stale.body.contains("data-kind=\"host_enrolled\""));
    let elsewhere = get(&cloud, "/events?host=h-nowhere", &cookie).await;
    assert!(!elsewhere.body.contains("data-kind="));
    assert_eq!(
        get(&cloud, "/events?before=soon", &cookie).await.status,
        400
    );

    // The live region: a new event for the page's filters is announced, and the fragment
    // the script then reads holds it.
    let path = format!("/live/events?host={}", host.host_id);
    let mut stream = open_stream(&cloud, &path, &cookie).await;
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    assert!(changed_within(&mut stream, 5).await, "the first look");
    cloud.clock.advance_secs(30 * 60);
    checker::pass(&cloud.state, grace).await;
    assert!(
        changed_within(&mut stream, 5).await,
        "host_down is announced"
    );
    let (cookie, _) = signed_in_again(&cloud, "readonly").await;
    let fragment = get(
        &cloud,
        &format!("/events?host={}&fragment=table", host.host_id),
        &cookie,
    )
    .await;
    assert!(fragment.body.contains("data-kind=\"host_down\"") && !fragment.body.contains("<html"));
}

#[tokio::test]
async fn the_events_timeline_pages_by_cursor() {
    let cloud = TestCloud::spawn().await;
    let customer = fleet_support::customer(&cloud, json!({})).await;
    let at_ms = cloud.state.clock.now_ms();
    let batch: Vec<NewEvent> = (0..105)
        .map(|n| NewEvent {
            at_ms: at_ms + n,
            kind: "paging_test".into(),
            severity: "info".into(),
            customer_id: Some(customer.clone()),
            host_id: None,
            guest_id: None,
            op_id: None,
            details_json: format!(r#"{{"n":{n}}}"#),
        })
        .collect();
    let ids = cloud.state.store.append_events(&batch).await.unwrap();
    let (cookie, _) = signed_in_as(&cloud, "operator").await;
    let first = get(
        &cloud,
        &format!("/events?customer={customer}&kind=paging_test"),
        &cookie,
    )
    .await;
    assert_eq!(first.body.matches("<tr data-event=").count(), 100);
    let next = format!("before={}", ids[5]);
    assert!(first.body.contains(&next), "an Older link: {}", first.body);
    let second = get(
        &cloud,
        &format!("/events?customer={customer}&kind=paging_test&{next}"),
        &cookie,
    )
    .await;
    assert_eq!(second.body.matches("<tr data-event=").count(), 5);
    assert!(second.body.contains(&format!("data-event=\"{}\"", ids[0])));
    assert!(!second.body.contains("rel=\"next\""));
    assert!(
        !second.body.contains("data-live="),
        "an older page does not follow"
    );
}
