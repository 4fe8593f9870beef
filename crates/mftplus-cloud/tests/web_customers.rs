//! The customers page and finding the hosts that need attention, over HTTP: each customer's
//! counts (down, stale, never reported, ops awaiting a signature) linking to what they count,
//! pages by cursor, the hosts listing filtered by liveness and ordered by last report (the
//! "missing hosts" view) with a cursor across pages, the same on the API, who may see them,
//! escaping, and the live streams.
//!
//! Liveness comes from the real checker under the injected clock: hosts report at different
//! times, the clock moves, `checker::pass` judges them.

mod common;
mod fleet_support;
mod web_support;

use common::{admin, call, Reply};
use fleet_support::{enroll_into, pending_op, send_report, Enrolled};
use mftplus_cloud::fleet::checker;
use mftplus_cloud::testing::{TestCloud, TestOptions};
use serde_json::json;
use web_support::*;

/// A cloud whose customers may have several hosts, so one customer shows every liveness.
async fn spawn() -> TestCloud {
    TestCloud::spawn_with(TestOptions {
        config_yaml: format!(
            "{}fleet:\n  max_hosts_per_customer: 10\n",
            TestOptions::default().config_yaml
        ),
        ..TestOptions::default()
    })
    .await
}

/// One customer's hosts in every liveness, judged by the checker.
struct Fleet {
    customer_id: String,
    never: Enrolled,
    down: Enrolled,
    stale: Enrolled,
    ok: Enrolled,
}

/// A customer with a host that never reported, one down (last report 65 min ago), one stale
/// (45 min ago) and one OK, after a checker pass; and one op awaiting a signature.
async fn fleet(cloud: &TestCloud) -> Fleet {
    let grace = cloud.state.clock.now_ms();
    let customer_id = fleet_support::customer(cloud, json!({})).await;
    let never = enroll_into(cloud, &customer_id).await;
    let down = enroll_into(cloud, &customer_id).await;
    let stale = enroll_into(cloud, &customer_id).await;
    let ok = enroll_into(cloud, &customer_id).await;
    report(cloud, &down).await;
    cloud.clock.advance_secs(20 * 60);
    report(cloud, &stale).await;
    cloud.clock.advance_secs(45 * 60);
    report(cloud, &ok).await;
    checker::pass(&cloud.state, grace).await;
    pending_op(cloud, &ok).await;
    Fleet {
        customer_id,
        never,
        down,
        stale,
        ok,
    }
}

async fn report(cloud: &TestCloud, host: &Enrolled) {
    let reply = send_report(cloud, host, fleet_support::report(&host.host_id, 0)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

/// The `href` of the page's "Next" link, as the browser would follow it.
fn next_link(body: &str) -> Option<String> {
    let at = body.find("rel=\"next\" href=\"")? + 17;
    Some(body[at..].split('"').next()?.replace("&amp;", "&"))
}

/// The hosts of a page of the hosts listing, in the order shown.
fn shown_hosts(body: &str) -> Vec<String> {
    body.split("<tr data-host=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

/// The customers of a page of the customers listing, in the order shown.
fn shown_customers(body: &str) -> Vec<String> {
    body.split("<tr data-customer=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn each_customer_shows_what_needs_attention_with_links() {
    let cloud = spawn().await;
    let (cookie, _) = signed_in_as(&cloud, "readonly").await;
    let empty = get(&cloud, "/customers", &cookie).await;
    assert_eq!(empty.status, 200);
    assert!(
        empty
            .body
            .contains("mftctl customers create --name NAME --email EMAIL"),
        "the empty state says how to add one: {}",
        empty.body
    );
    let fleet = fleet(&cloud).await;
    let quiet = fleet_support::customer(&cloud, json!({})).await;
    let blocked = call(
        &cloud,
        &admin(&cloud),
        "POST",
        &format!("/api/v1/customers/{quiet}/block"),
        None,
    )
    .await;
    assert_eq!(blocked.status, 200, "{:?}", blocked.body);

    // The clock moved past the first session's idle expiry.
    let (cookie, _) = signed_in_again(&cloud, "readonly").await;
    let page = get(&cloud, "/customers", &cookie).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let id = &fleet.customer_id;
    let row = row_of(&page.body, id);
    for shown in [
        "Kovács Kft".to_string(),
        "data-status=\"active\"".into(),
        format!("href=\"/hosts?customer={id}\">4 hosts</a>"),
        format!("href=\"/hosts?customer={id}&amp;liveness=down\"><strong>1</strong> down"),
        format!("href=\"/hosts?customer={id}&amp;liveness=stale\"><strong>1</strong> stale"),
        format!(
            "href=\"/hosts?customer={id}&amp;liveness=never\"><strong>1</strong> never reported"
        ),
        format!(
            "href=\"/ops?status=pending_signature&amp;customer={id}\"><strong>1</strong> awaiting a signature"
        ),
        format!("href=\"/ops?customer={id}\">Operations"),
    ] {
        assert!(row.contains(&shown), "{shown} missing: {row}");
    }
    let quiet_row = row_of(&page.body, &quiet);
    assert!(quiet_row.contains("data-status=\"blocked\"") && quiet_row.contains(">Blocked<"));
    assert!(quiet_row.contains(">0 hosts</a>"), "{quiet_row}");
    assert_eq!(
        quiet_row.matches("<span class=\"muted\">0</span>").count(),
        4,
        "nothing needs attention: {quiet_row}"
    );
    assert!(page.body.contains("data-live=\"/live/customers\""));
    assert!(page.body.contains("<th scope=\"col\""));
    let fragment = get(&cloud, "/customers?fragment=table", &cookie).await;
    assert!(fragment.body.contains(id.as_str()) && !fragment.body.contains("<html"));

    // Each count opens what it counts.
    let down = get(
        &cloud,
        &format!("/hosts?customer={id}&liveness=down"),
        &cookie,
    )
    .await;
    assert_eq!(shown_hosts(&down.body), [fleet.down.host_id.as_str()]);
    let awaiting = get(
        &cloud,
        &format!("/ops?status=pending_signature&customer={id}"),
        &cookie,
    )
    .await;
    assert!(
        awaiting.body.contains(&fleet.ok.host_id),
        "{}",
        awaiting.body
    );
}

/// The `<tr>` of one customer on the customers page.
fn row_of(body: &str, customer_id: &str) -> String {
    let start = body
        .find(&format!("<tr data-customer=\"{customer_id}\""))
        .unwrap_or_else(|| panic!("no row for {customer_id}: {body}"));
    let end = body[start..].find("</tr>").unwrap() + start;
    body[start..end].to_string()
}

#[tokio::test]
async fn customers_are_paged_by_a_cursor() {
    let cloud = spawn().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(fleet_support::customer(&cloud, json!({})).await);
    }
    ids.sort();
    let (cookie, _) = signed_in_as(&cloud, "operator").await;
    let mut walked = Vec::new();
    let mut next = Some("/customers?limit=2".to_string());
    let mut pages = 0;
    while let Some(path) = next {
        let page = get(&cloud, &path, &cookie).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        let shown = shown_customers(&page.body);
        assert!(shown.len() <= 2, "{path}: {shown:?}");
        walked.extend(shown);
        next = next_link(&page.body);
        pages += 1;
    }
    assert_eq!(walked, ids, "every customer once, by id");
    assert_eq!(pages, 3);
    // Past the end: the way back; a limit out of range is clamped, one that is no number
    // refused with its code.
    let after_last = get(&cloud, &format!("/customers?after={}", ids[4]), &cookie).await;
    assert!(after_last.body.contains("No more customers"));
    let clamped = get(&cloud, "/customers?limit=0", &cookie).await;
    assert_eq!(shown_customers(&clamped.body).len(), 1);
    let refused = get(&cloud, "/customers?limit=many", &cookie).await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("validation_failed"));
}

#[tokio::test]
async fn hosts_filter_by_liveness_and_the_longest_silent_come_first() {
    let cloud = spawn().await;
    let fleet = fleet(&cloud).await;
    let (cookie, _) = signed_in_as(&cloud, "readonly").await;
    let id = &fleet.customer_id;
    for (liveness, host) in [
        ("down", &fleet.down),
        ("stale", &fleet.stale),
        ("never", &fleet.never),
        ("ok", &fleet.ok),
    ] {
        let page = get(
            &cloud,
            &format!("/hosts?customer={id}&liveness={liveness}"),
            &cookie,
        )
        .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(
            shown_hosts(&page.body),
            [host.host_id.as_str()],
            "{liveness}"
        );
        assert!(
            page.body.contains("aria-current=\"page\""),
            "the filter in force is marked"
        );
    }
    let page = get(&cloud, "/hosts?liveness=down", &cookie).await;
    assert!(page
        .body
        .contains("href=\"/hosts?liveness=down&amp;sort=last_report\""));
    let none = get(&cloud, "/hosts?customer=nobody&liveness=down", &cookie).await;
    assert!(none.body.contains("No host is down"), "{}", none.body);

    // The missing hosts: never reported first, then the oldest report, page by page.
    let first = format!("/hosts?customer={id}&sort=last_report&limit=2");
    let page = get(&cloud, &first, &cookie).await;
    assert!(
        page.body
            .contains("aria-sort=\"ascending\"><a href=\"/hosts?customer="),
        "the Last report header sorts: {}",
        page.body
    );
    assert_eq!(
        shown_hosts(&page.body),
        [fleet.never.host_id.clone(), fleet.down.host_id.clone()]
    );
    let next = next_link(&page.body).expect("a Next link");
    assert!(
        next.contains("sort=last_report") && next.contains("limit=2"),
        "{next}"
    );
    let second = get(&cloud, &next, &cookie).await;
    assert_eq!(
        shown_hosts(&second.body),
        [fleet.stale.host_id.clone(), fleet.ok.host_id.clone()]
    );
    assert!(
        next_link(&second.body).is_none(),
        "the last page has no Next"
    );

    // The live stream follows the same view; a view the page refuses is refused there too.
    for bad in [
        "/hosts?liveness=asleep",
        "/hosts?sort=name",
        "/hosts?sort=last_report&after=not-a-cursor",
        "/live/hosts?liveness=asleep",
    ] {
        let refused = get(&cloud, bad, &cookie).await;
        assert_eq!(refused.status, 400, "{bad}");
        assert!(refused.body.contains("validation_failed"), "{bad}");
    }
    let mut down_only = open_stream(
        &cloud,
        &format!("/live/hosts?customer={id}&liveness=down"),
        &cookie,
    )
    .await;
    assert_eq!(down_only.status().as_u16(), 200);
    assert!(changed_within(&mut down_only, 5).await, "the first look");
    report(&cloud, &fleet.down).await;
    checker::pass(&cloud.state, 0).await;
    assert!(
        changed_within(&mut down_only, 5).await,
        "the down host recovered: the filtered page changed"
    );
}

#[tokio::test]
async fn the_api_filters_sorts_and_pages_the_same_way() {
    let cloud = spawn().await;
    let fleet = fleet(&cloud).await;
    let id = &fleet.customer_id;
    let ids = |reply: &Reply| -> Vec<String> {
        let hosts = reply.body.as_array().unwrap();
        hosts
            .iter()
            .map(|h| h["host_id"].as_str().unwrap().to_string())
            .collect()
    };
    let api = |path: String| {
        let cloud = &cloud;
        async move { call(cloud, &admin(cloud), "GET", &path, None).await }
    };
    let down = api(format!("/api/v1/hosts?customer={id}&liveness=down")).await;
    assert_eq!(ids(&down), [fleet.down.host_id.as_str()]);
    let first = api(format!(
        "/api/v1/hosts?customer={id}&sort=last_report&limit=2"
    ))
    .await;
    assert_eq!(
        ids(&first),
        [fleet.never.host_id.clone(), fleet.down.host_id.clone()]
    );
    let cursor = first.headers["x-next-after"].to_str().unwrap().to_string();
    assert!(
        cursor.ends_with(&format!(".{}", fleet.down.host_id)),
        "{cursor}"
    );
    let second = api(format!(
        "/api/v1/hosts?customer={id}&sort=last_report&limit=2&after={cursor}"
    ))
    .await;
    assert_eq!(
        ids(&second),
        [fleet.stale.host_id.clone(), fleet.ok.host_id.clone()]
    );
    assert!(second.headers.get("x-next-after").is_none());
    let bad = api("/api/v1/hosts?liveness=asleep".into()).await;
    assert_eq!((bad.status, bad.code()), (400, "validation_failed"));

    // Customers: a page with the cursor of the next, the limit checked like the hosts'.
    fleet_support::customer(&cloud, json!({})).await;
    let page = api("/api/v1/customers?limit=1".into()).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body.as_array().unwrap().len(), 1);
    let after = page.headers["x-next-after"].to_str().unwrap().to_string();
    assert_eq!(page.body[0]["id"], after.as_str());
    for bad in ["limit=0", "limit=1001", "color=red"] {
        let refused = api(format!("/api/v1/customers?{bad}")).await;
        assert_eq!(
            (refused.status, refused.code()),
            (400, "validation_failed"),
            "{bad}"
        );
    }
}

/// More customers than one page of the API: the client walks every page.
#[tokio::test]
async fn the_client_walks_every_page_of_customers() {
    let cloud = spawn().await;
    let now = cloud.state.clock.now_ms();
    for n in 0..1003 {
        let customer = mftplus_store::NewCustomer {
            id: format!("c-walk-{n:04}"),
            name: format!("Walk {n}"),
            email: "walk@example.com".into(),
            domain: None,
            locale: "en".into(),
            retrieval_password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            config_json: "{}".into(),
            created_at_ms: now,
        };
        cloud.state.store.create_customer(&customer).await.unwrap();
    }
    let first = call(&cloud, &admin(&cloud), "GET", "/api/v1/customers", None).await;
    assert_eq!(first.body.as_array().unwrap().len(), 1000, "cut at 1000");
    assert_eq!(first.headers["x-next-after"], "c-walk-0999");
    let client = mftplus_client::Client::new(
        &cloud.url,
        mftplus_client::Credential::ApiKey(cloud.admin_api_key.clone()),
    )
    .unwrap();
    let all = client.list_customers().await.unwrap();
    assert_eq!(all.len(), 1003);
    assert_eq!(all.last().unwrap().id, "c-walk-1002");
}

#[tokio::test]
async fn only_a_role_with_fleet_read_sees_customers() {
    let cloud = spawn().await;
    let (readonly, _) = signed_in_as(&cloud, "readonly").await;
    let hosts = get(&cloud, "/hosts", &readonly).await;
    let nav = &hosts.body[hosts.body.find("aria-label=\"Main\"").unwrap()..];
    let (customers, hosts_link) = (
        nav.find("href=\"/customers\"").expect("a Customers link"),
        nav.find("href=\"/hosts\"").unwrap(),
    );
    assert!(customers < hosts_link, "Customers comes before Hosts");
    let (user, _) = signed_in_as(&cloud, "user").await;
    for path in ["/customers", "/live/customers", "/customers?fragment=table"] {
        let page = get(&cloud, path, &user).await;
        assert_eq!(page.status, 403, "{path} as user");
    }
    let page = get(&cloud, "/customers", &user).await;
    assert!(page.body.contains("forbidden"), "a page with the code");
    let transfers = get(&cloud, "/transfers", &user).await;
    assert_eq!(transfers.status, 200);
    assert!(!transfers.body.contains("href=\"/customers\""));
}

#[tokio::test]
async fn a_customer_name_is_shown_escaped() {
    let cloud = spawn().await;
    let reply = call(
        &cloud,
        &admin(&cloud),
        "POST",
        "/api/v1/customers",
        Some(
            json!({"id": "c-escape", "name": "<script>alert(1)</script> & \"Co\"",
                    "email": "x@example.com"}),
        ),
    )
    .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let (cookie, _) = signed_in_as(&cloud, "admin").await;
    let page = get(&cloud, "/customers", &cookie).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(page
        .body
        .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;"));
    let tricky = get(&cloud, "/customers?after=%3Cb%3Ex", &cookie).await;
    assert!(!tricky.body.contains("<b>x") && tricky.body.contains("&lt;b&gt;x"));
}

#[tokio::test]
async fn the_live_stream_says_when_a_customer_page_changes() {
    let cloud = spawn().await;
    let customer = fleet_support::customer(&cloud, json!({})).await;
    let host = enroll_into(&cloud, &customer).await;
    let (cookie, _) = signed_in_as(&cloud, "operator").await;
    let mut stream = open_stream(&cloud, "/live/customers", &cookie).await;
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    assert!(changed_within(&mut stream, 5).await, "the first look");
    report(&cloud, &host).await;
    assert!(
        changed_within(&mut stream, 5).await,
        "a first report leaves the never-reported count"
    );
    pending_op(&cloud, &host).await;
    assert!(
        changed_within(&mut stream, 5).await,
        "an op awaiting a signature is counted"
    );
    let refused = open_stream(&cloud, "/live/customers?limit=many", &cookie).await;
    assert_eq!(refused.status().as_u16(), 400);
}
