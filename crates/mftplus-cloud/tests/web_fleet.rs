//! The dashboard's fleet pages over HTTP: the hosts listing (liveness, convergence, a cursor
//! over pages), one host with its guests, storage, reports and events, the operations page
//! with the exact `mftctl ops sign` line, who may see them, escaping, and the live streams.
//!
//! Bounded work is a property of the code, not timed here: the listing is one store query and
//! a host's page six (`app::fleet`), whatever the fleet holds.

mod common;
mod fleet_support;
mod web_support;

use fleet_support::{enroll, guest, pending_op, send_report, Enrolled};
use mftplus_cloud::testing::TestCloud;
use serde_json::json;
use web_support::*;

fn ago(cloud: &TestCloud, ms: i64) -> String {
    mftplus_cloud::clock::rfc3339(cloud.state.clock.now_ms() - ms)
}

/// A full report: system figures, a running guest, a storage target with its last backup.
async fn report_with_everything(cloud: &TestCloud, host: &Enrolled) {
    guest(cloud, host, "web-1").await;
    let body = json!({
        "host_id": host.host_id,
        "agent_version": "0.1.0",
        "applied_generation": 0,
        "system": {
            "cpu_percent": 37.0,
            "memory_used_bytes": 4u64 << 30, "memory_total_bytes": 16u64 << 30,
            "disk_used_bytes": 100u64 << 30, "disk_total_bytes": 400u64 << 30
        },
        "guests": [{"guest_id": "web-1", "status": "running"}],
        "storage_targets": [{
            "durable_id": "1b2c-data", "label": "data disk", "attached": true,
            "reachable": true, "data_bearing": true,
            "size_bytes": 1u64 << 40, "used_bytes": 1u64 << 38,
            "last_backup": {"at": ago(cloud, 3_600_000), "status": "ok", "snapshot_id": "snap-7"}
        }]
    });
    let reply = send_report(cloud, host, body).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

#[tokio::test]
async fn hosts_and_a_host_show_what_the_agent_reported() {
    let cloud = TestCloud::spawn().await;
    let (cookie, _) = signed_in_as(&cloud, "operator").await;
    let empty = get(&cloud, "/hosts", &cookie).await;
    assert_eq!(empty.status, 200);
    assert!(
        empty.body.contains("mftplus agent enroll --server"),
        "the empty state says how to enroll: {}",
        empty.body
    );
    let host = enroll(&cloud).await;
    report_with_everything(&cloud, &host).await;

    let hosts = get(&cloud, "/hosts", &cookie).await;
    assert_eq!(hosts.status, 200);
    for shown in [
        host.host_id.as_str(),
        host.customer_id.as_str(),
        "box",
        "data-status=\"ok\"",
        "data-status=\"converged\"",
        "applied 0 of 0",
        "data-live=\"/live/hosts\"",
        "href=\"/hosts\"",
        "href=\"/ops\"",
    ] {
        assert!(
            hosts.body.contains(shown),
            "{shown} missing: {}",
            hosts.body
        );
    }
    // The live region's fragment is the table alone.
    let fragment = get(&cloud, "/hosts?fragment=table", &cookie).await;
    assert!(fragment.body.contains(&host.host_id) && !fragment.body.contains("<html"));
    // Narrowed to another customer, the host is not listed.
    let other = get(&cloud, "/hosts?customer=nobody", &cookie).await;
    assert!(!other.body.contains(&host.host_id) && other.body.contains("--customer nobody"));

    let page = get(&cloud, &format!("/hosts/{}", host.host_id), &cookie).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for shown in [
        "Kovács Kft",
        "37 %",
        "4.0 GiB of 16.0 GiB (25 %)",
        "web-1",
        "data-status=\"running\"",
        "1b2c-data",
        "data disk",
        "1 h ago",
        "host_enrolled",
        "id=\"reports\"",
    ] {
        assert!(page.body.contains(shown), "{shown} missing: {}", page.body);
    }
    let unknown = get(&cloud, "/hosts/h-nonexistent", &cookie).await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn the_listing_is_cut_into_pages_with_a_cursor() {
    let cloud = TestCloud::spawn().await;
    let customer = fleet_support::customer(&cloud, json!({})).await;
    for n in 0..105 {
        let host = mftplus_store::NewHost {
            id: format!("h-page-{n:03}"),
            customer_id: customer.clone(),
            key_hash: format!("hash-{n}"),
            hostname: format!("box-{n:03}"),
            platform: None,
            agent_version: "0.1.0".into(),
            desired_json: "{}".into(),
            enrolled_at_ms: cloud.state.clock.now_ms(),
        };
        cloud.state.store.create_host(&host, 1000).await.unwrap();
    }
    let (cookie, _) = signed_in_as(&cloud, "readonly").await;
    let first = get(&cloud, "/hosts", &cookie).await;
    assert_eq!(first.body.matches("<tr data-host=").count(), 100);
    assert!(first.body.contains("data-status=\"never\""));
    let next = "/hosts?after=h-page-099";
    assert!(
        first.body.contains(&format!("href=\"{next}\"")),
        "a Next link"
    );
    let second = get(&cloud, next, &cookie).await;
    assert_eq!(second.body.matches("<tr data-host=").count(), 5);
    assert!(second.body.contains("data-host=\"h-page-104\""));
    assert!(!second.body.contains("data-host=\"h-page-099\""));
    assert!(
        !second.body.contains("rel=\"next\""),
        "the last page has no Next"
    );
}

#[tokio::test]
async fn a_waiting_op_shows_the_exact_line_that_signs_it() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    let (cookie, _) = signed_in_as(&cloud, "operator").await;
    let none = get(&cloud, "/ops", &cookie).await;
    assert!(
        none.body.contains("No operation is waiting"),
        "{}",
        none.body
    );
    let op_id = pending_op(&cloud, &host).await;

    let ops = get(&cloud, "/ops", &cookie).await;
    assert_eq!(ops.status, 200);
    let line = format!("mftctl ops sign {op_id} --key ~/.ssh/id_ed25519");
    for shown in [
        line.as_str(),
        "Awaiting signature",
        "guest.remove",
        host.host_id.as_str(),
        &format!("data-copy=\"sign-{op_id}\""),
        "mftctl ops sign --pending",
        "data-live=\"/live/ops\"",
    ] {
        assert!(ops.body.contains(shown), "{shown} missing: {}", ops.body);
    }
    // Filters: by customer, by status; an unknown status is refused.
    let mine = get(
        &cloud,
        &format!("/ops?customer={}", host.customer_id),
        &cookie,
    )
    .await;
    assert!(mine.body.contains(&op_id));
    assert!(!get(&cloud, "/ops?customer=nobody", &cookie)
        .await
        .body
        .contains(&op_id));
    let executed = get(&cloud, "/ops?status=executed", &cookie).await;
    assert!(!executed.body.contains(&op_id) && executed.body.contains("No operation is executed"));
    assert!(get(&cloud, "/ops?status=all", &cookie)
        .await
        .body
        .contains(&op_id));
    assert_eq!(get(&cloud, "/ops?status=done", &cookie).await.status, 400);
    // The host's page lists it among its unfinished operations.
    let page = get(&cloud, &format!("/hosts/{}", host.host_id), &cookie).await;
    assert!(page.body.contains(&op_id), "{}", page.body);

    // A role that may read but not sign sees the op without the line.
    let (readonly, _) = signed_in_as(&cloud, "readonly").await;
    let seen = get(&cloud, "/ops", &readonly).await;
    assert_eq!(seen.status, 200);
    assert!(seen.body.contains(&op_id) && !seen.body.contains(&line));
}

#[tokio::test]
async fn only_a_role_with_fleet_read_sees_the_fleet() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    let host_page = format!("/hosts/{}", host.host_id);
    let (readonly, _) = signed_in_as(&cloud, "readonly").await;
    for path in ["/hosts", host_page.as_str(), "/ops"] {
        let page = get(&cloud, path, &readonly).await;
        assert_eq!(page.status, 200, "{path} as readonly");
    }
    let (user, _) = signed_in_as(&cloud, "user").await;
    for path in [
        "/hosts",
        host_page.as_str(),
        "/ops",
        "/live/hosts",
        "/live/ops",
    ] {
        let page = get(&cloud, path, &user).await;
        assert_eq!(page.status, 403, "{path} as user");
    }
    // A user's home is their transfers, and no page of theirs links to the fleet.
    let home = get(&cloud, "/", &user).await;
    assert_eq!(home.status, 303);
    assert_eq!(home.headers["location"], "/transfers");
    let transfers = get(&cloud, "/transfers", &user).await;
    assert_eq!(transfers.status, 200);
    assert!(
        !transfers.body.contains("href=\"/hosts\"") && !transfers.body.contains("href=\"/ops\"")
    );
}

#[tokio::test]
async fn what_a_box_reports_about_itself_is_shown_escaped() {
    let cloud = TestCloud::spawn().await;
    let customer = fleet_support::customer(&cloud, json!({})).await;
    let hostname = "<script>alert(1)</script>";
    let reply = fleet_support::with_password(
        &cloud,
        "POST",
        "/api/v1/enroll",
        fleet_support::RETRIEVAL_PASSWORD,
        Some(json!({"customer_id": customer, "hostname": hostname, "agent_version": "<b>1</b>"})),
    )
    .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let host_id = reply.body["host_id"].as_str().unwrap();
    let (cookie, _) = signed_in_as(&cloud, "admin").await;
    for path in ["/hosts".to_string(), format!("/hosts/{host_id}")] {
        let page = get(&cloud, &path, &cookie).await;
        assert_eq!(page.status, 200);
        assert!(
            !page.body.contains("<script>alert"),
            "{path}: {}",
            page.body
        );
        assert!(!page.body.contains("<b>1</b>"), "{path}");
        assert!(
            page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_live_streams_say_when_hosts_and_ops_change() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    let (cookie, _) = signed_in_as(&cloud, "admin").await;
    let mut hosts = open_stream(&cloud, "/live/hosts", &cookie).await;
    assert_eq!(hosts.headers()["content-type"], "text/event-stream");
    assert!(changed_within(&mut hosts, 5).await, "the first look");
    let mut ops = open_stream(&cloud, "/live/ops", &cookie).await;
    assert!(changed_within(&mut ops, 5).await, "the first look");

    let reply = send_report(&cloud, &host, fleet_support::report(&host.host_id, 0)).await;
    assert_eq!(reply.status, 200);
    assert!(changed_within(&mut hosts, 5).await, "a report is announced");
    pending_op(&cloud, &host).await;
    assert!(changed_within(&mut ops, 5).await, "a new op is announced");
    let bad = open_stream(&cloud, "/live/ops?status=done", &cookie).await;
    assert_eq!(bad.status().as_u16(), 400);
}

/// One account holds a bounded number of live streams: each re-reads its page's data, so
/// opening a thousand must not be a way to keep the database busy.
#[tokio::test]
async fn one_account_follows_a_bounded_number_of_live_pages() {
    use mftplus_cloud::web::live_permits::PER_ACCOUNT;
    let cloud = TestCloud::spawn().await;
    let (cookie, _) = signed_in_as(&cloud, "readonly").await;
    let mut held = Vec::new();
    for _ in 0..PER_ACCOUNT {
        let stream = open_stream(&cloud, "/live/hosts", &cookie).await;
        assert_eq!(stream.status().as_u16(), 200);
        held.push(stream);
    }
    let refused = open_stream(&cloud, "/live/ops", &cookie).await;
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(refused.text().await.unwrap().contains("rate_limited"));
    let (other, _) = signed_in_as(&cloud, "operator").await;
    let theirs = open_stream(&cloud, "/live/hosts", &other).await;
    assert_eq!(
        theirs.status().as_u16(),
        200,
        "another account is not affected"
    );
    drop(held);
}

/// A live stream ends with its session: signing out (a write on this replica) stops every
/// stream the session held at once, instead of letting them run their five minutes.
#[tokio::test]
async fn signing_out_ends_the_live_streams_of_the_session() {
    let cloud = TestCloud::spawn().await;
    let (cookie, csrf) = signed_in_as(&cloud, "readonly").await;
    let mut stream = open_stream(&cloud, "/live/hosts", &cookie).await;
    assert_eq!(stream.status().as_u16(), 200);
    let first = stream.chunk().await.unwrap().expect("the first event");
    assert!(String::from_utf8_lossy(&first).contains("event: changed"));
    let out = post(&cloud, "/logout", &cookie, &[("csrf", csrf.as_str())]).await;
    assert_eq!(out.status, 303);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while stream.chunk().await.unwrap().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its session");
}
