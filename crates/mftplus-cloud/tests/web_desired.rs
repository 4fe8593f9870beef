//! The desired-state editor and the customer and recovery actions of the host page, over
//! HTTP: the preview marks each change benign or destructive in words, publishing a
//! destructive change leaves an op awaiting a signature on the operations page, a stale base
//! generation is refused with `generation_conflict`, a readonly user gets no form and a forged
//! write is 403, and block, unblock, arming and disarming recovery and the retrieval-password
//! reset change what the API reports and are audited.

mod common;
mod fleet_support;
mod web_support;

use common::*;
use fleet_support::{enroll, web_guest, Enrolled, RETRIEVAL_PASSWORD};
use mftplus_cloud::testing::TestCloud;
use serde_json::{json, Value};
use web_support::*;

fn desired_path(host: &Enrolled) -> String {
    format!("/hosts/{}/desired", host.host_id)
}

/// The editor's form for `desired` started at generation `base`.
fn edit_form<'a>(csrf: &'a str, desired: &'a str, base: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("desired", desired),
        ("base_generation", base),
    ]
}

async fn api_desired(cloud: &TestCloud, host: &Enrolled) -> Value {
    let path = format!("/api/v1/hosts/{}/desired-state", host.host_id);
    call(cloud, &admin(cloud), "GET", &path, None).await.body
}

async fn audit_log(cloud: &TestCloud) -> String {
    let reply = call(
        cloud,
        &admin(cloud),
        "GET",
        "/api/v1/audit?limit=1000",
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    reply.body.to_string()
}

/// The audit entries of `event`, as JSON objects.
async fn audited(cloud: &TestCloud, event: &str) -> Vec<Value> {
    let reply = call(
        cloud,
        &admin(cloud),
        "GET",
        "/api/v1/audit?limit=1000",
        None,
    )
    .await;
    let entries = match &reply.body {
        Value::Array(entries) => entries.clone(),
        other => other["entries"].as_array().cloned().unwrap_or_default(),
    };
    entries
        .into_iter()
        .filter(|entry| entry["event"] == event)
        .collect()
}

#[tokio::test]
async fn an_operator_previews_and_publishes_benign_and_destructive_changes() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    let (cookie, csrf) = signed_in_as(&cloud, "operator").await;
    let host_page = get(&cloud, &format!("/hosts/{}", host.host_id), &cookie).await;
    assert!(host_page.body.contains("Edit the desired state"));
    assert!(host_page
        .body
        .contains(&format!("href=\"{}\"", desired_path(&host))));

    let editor = get(&cloud, &desired_path(&host), &cookie).await;
    assert_eq!(editor.status, 200, "{}", editor.body);
    for shown in [
        "<label for=\"desired\">",
        "<textarea id=\"desired\" name=\"desired\"",
        "name=\"base_generation\" value=\"0\"",
        "&quot;guests&quot;",
        "id=\"preview\"",
    ] {
        assert!(editor.body.contains(shown), "{shown}: {}", editor.body);
    }

    // A new guest is benign: previewed as such, published at once, back to the host.
    let with_web = json!({"guests": {"web": web_guest()}}).to_string();
    let preview_path = format!("{}/preview", desired_path(&host));
    let preview = post(
        &cloud,
        &preview_path,
        &cookie,
        &edit_form(&csrf, &with_web, "0"),
    )
    .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(preview.body.contains("data-kind=\"benign\""));
    assert!(preview.body.contains("Benign") && preview.body.contains("published at once"));
    assert!(preview.body.contains("/guests/web") && !preview.body.contains("Destructive"));
    assert!(preview.body.contains("id=\"publish\""));
    let published = post(
        &cloud,
        &desired_path(&host),
        &cookie,
        &edit_form(&csrf, &with_web, "0"),
    )
    .await;
    assert_eq!(published.status, 303, "{}", published.body);
    assert_eq!(published.location, Some(format!("/hosts/{}", host.host_id)));
    assert_eq!(api_desired(&cloud, &host).await["generation"], 1);

    // Removing it while adding another: one change of each kind, in words.
    let swap = json!({"guests": {"api": web_guest()}}).to_string();
    let preview = post(
        &cloud,
        &preview_path,
        &cookie,
        &edit_form(&csrf, &swap, "1"),
    )
    .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    for shown in [
        "data-kind=\"benign\"",
        "data-kind=\"destructive\"",
        "Destructive",
        "waits for a signed operation",
        "guest.remove",
        "guest.create",
        "1 benign change published at once",
        "1 destructive change each waiting",
    ] {
        assert!(preview.body.contains(shown), "{shown}: {}", preview.body);
    }
    assert!(!preview.body.contains("id=\"stale\""));
    // The API's dry run classifies the same changes the same way.
    let api_diff = call(
        &cloud,
        &admin(&cloud),
        "POST",
        &format!("/api/v1/hosts/{}/desired-state/diff", host.host_id),
        Some(json!({"desired_state": json!({"guests": {"api": web_guest()}})})),
    )
    .await;
    let kinds: Vec<(String, String)> = api_diff.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().into(),
                c["kind"].as_str().unwrap().into(),
            )
        })
        .collect();
    for (path, kind) in &kinds {
        let row = format!("<tr data-kind=\"{kind}\"><td><code>");
        assert!(preview.body.contains(&row), "{row}");
        assert!(preview.body.contains(path.as_str()), "{path}");
    }

    // Publishing it: the benign half now, the removal an op awaiting a signature on /ops.
    let published = post(
        &cloud,
        &desired_path(&host),
        &cookie,
        &edit_form(&csrf, &swap, "1"),
    )
    .await;
    assert_eq!(published.status, 303, "{}", published.body);
    assert_eq!(
        published.location,
        Some(format!("/ops?status=all&host={}", host.host_id))
    );
    let ops = call(
        &cloud,
        &admin(&cloud),
        "GET",
        &format!("/api/v1/ops?host={}&status=pending_signature", host.host_id),
        None,
    )
    .await;
    let waiting = ops.body.as_array().unwrap();
    assert_eq!(waiting.len(), 1, "{:?}", ops.body);
    assert_eq!(waiting[0]["op_type"], "guest.remove");
    let op_id = waiting[0]["op_id"].as_str().unwrap();
    let ops_page = get(&cloud, published.location.as_deref().unwrap(), &cookie).await;
    assert!(ops_page.body.contains(op_id) && ops_page.body.contains("Awaiting signature"));
    let desired = api_desired(&cloud, &host).await;
    assert_eq!(desired["generation"], 2);
    let guests = &desired["desired_state"]["guests"];
    assert!(
        guests["api"].is_object() && guests["web"].is_object(),
        "{desired}"
    );

    // A stale base: the preview warns, publishing is refused with the code.
    let stale = post(&cloud, &preview_path, &cookie, &edit_form(&csrf, "{}", "1")).await;
    assert!(stale.body.contains("id=\"stale\"") && stale.body.contains("generation_conflict"));
    let refused = post(
        &cloud,
        &desired_path(&host),
        &cookie,
        &edit_form(&csrf, "{}", "1"),
    )
    .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("generation_conflict"));
    assert_eq!(api_desired(&cloud, &host).await["generation"], 2);

    let edits = audited(&cloud, "desired_state_edited").await;
    assert_eq!(edits.len(), 2, "{edits:?}");
    assert!(edits
        .iter()
        .all(|e| e["actor"] == "operator-web@example.com"));
}

#[tokio::test]
async fn bad_input_is_an_error_page_and_what_was_typed_stays_escaped() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    let (cookie, csrf) = signed_in_as(&cloud, "admin").await;
    let preview_path = format!("{}/preview", desired_path(&host));
    for (desired, base) in [("{not json", "0"), ("{}", ""), ("{}", "soon")] {
        let page = post(
            &cloud,
            &preview_path,
            &cookie,
            &edit_form(&csrf, desired, base),
        )
        .await;
        assert_eq!(page.status, 400, "{desired} {base}: {}", page.body);
        assert!(page.body.contains("validation_failed"));
    }
    let missing = post(
        &cloud,
        "/hosts/h-nonexistent/desired/preview",
        &cookie,
        &edit_form(&csrf, "{}", "0"),
    )
    .await;
    assert_eq!(missing.status, 404);
    let without_csrf = post(
        &cloud,
        &desired_path(&host),
        &cookie,
        &[("desired", "{}"), ("base_generation", "0")],
    )
    .await;
    assert_eq!(without_csrf.status, 403);

    let hostile = "</textarea><script>alert(1)</script>";
    let mut guest = web_guest();
    guest["spec"]["image"] = json!(hostile);
    let desired = json!({"guests": {"<b>web</b>": guest}}).to_string();
    let preview = post(
        &cloud,
        &preview_path,
        &cookie,
        &edit_form(&csrf, &desired, "0"),
    )
    .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(!preview.body.contains("<script>alert") && !preview.body.contains("<b>web</b>"));
    assert!(preview.body.contains("&lt;/textarea&gt;&lt;script&gt;"));
    assert!(preview.body.contains("&lt;b&gt;web&lt;/b&gt;"));
}

#[tokio::test]
async fn readonly_sees_no_edit_form_and_a_forged_write_is_refused() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    let (cookie, csrf) = signed_in_as(&cloud, "readonly").await;
    let editor = get(&cloud, &desired_path(&host), &cookie).await;
    assert_eq!(editor.status, 200, "{}", editor.body);
    assert!(editor.body.contains("id=\"desired-json\""));
    assert!(!editor.body.contains("<textarea") && !editor.body.contains("/desired/preview"));
    let host_page = get(&cloud, &format!("/hosts/{}", host.host_id), &cookie).await;
    assert!(host_page.body.contains("View the desired state"));
    for absent in [
        "Customer and recovery",
        "/customer/block",
        "/recovery/arm",
        "/customer/retrieval-password",
    ] {
        assert!(!host_page.body.contains(absent), "{absent}");
    }

    // The API lets readonly diff, so the preview answers, without a way to publish.
    let with_web = json!({"guests": {"web": web_guest()}}).to_string();
    let preview_path = format!("{}/preview", desired_path(&host));
    let preview = post(
        &cloud,
        &preview_path,
        &cookie,
        &edit_form(&csrf, &with_web, "0"),
    )
    .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview.body.contains("data-kind=\"benign\"") && !preview.body.contains("id=\"publish\"")
    );

    let base = format!("/hosts/{}", host.host_id);
    let forged = [
        (desired_path(&host), edit_form(&csrf, &with_web, "0")),
        (
            format!("{base}/customer/block"),
            vec![("csrf", csrf.as_str()), ("confirm", "yes")],
        ),
        (
            format!("{base}/customer/unblock"),
            vec![("csrf", csrf.as_str())],
        ),
        (
            format!("{base}/customer/retrieval-password"),
            vec![("csrf", csrf.as_str()), ("confirm", "yes")],
        ),
        (
            format!("{base}/recovery/arm"),
            vec![("csrf", csrf.as_str()), ("confirm", "yes")],
        ),
        (
            format!("{base}/recovery/disarm"),
            vec![("csrf", csrf.as_str())],
        ),
    ];
    for (path, form) in forged {
        let page = post(&cloud, &path, &cookie, &form).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
        assert!(page.body.contains("forbidden"), "{path}");
    }
    assert_eq!(api_desired(&cloud, &host).await["generation"], 0);
    let customer = call(
        &cloud,
        &admin(&cloud),
        "GET",
        &format!("/api/v1/customers/{}", host.customer_id),
        None,
    )
    .await;
    assert_eq!(customer.body["status"], "active");
    assert!(audited(&cloud, "retrieval_password_reset").await.is_empty());
}

async fn customer_status(cloud: &TestCloud, host: &Enrolled) -> String {
    let path = format!("/api/v1/customers/{}", host.customer_id);
    let reply = call(cloud, &admin(cloud), "GET", &path, None).await;
    reply.body["status"].as_str().unwrap().to_string()
}

async fn recovery_until(cloud: &TestCloud, host: &Enrolled) -> Value {
    let path = format!("/api/v1/hosts/{}", host.host_id);
    let reply = call(cloud, &admin(cloud), "GET", &path, None).await;
    reply.body["recovery_mode_until"].clone()
}

#[tokio::test]
async fn customer_and_recovery_actions_change_state_and_are_audited() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    let (cookie, csrf) = signed_in_as(&cloud, "operator").await;
    let base = format!("/hosts/{}", host.host_id);
    let page = get(&cloud, &base, &cookie).await;
    for shown in [
        "Customer and recovery",
        "id=\"block\"",
        "id=\"reset-password\"",
        "id=\"arm-recovery\"",
        "name=\"confirm\" value=\"yes\" required",
        "<label for=\"ttl-minutes\">",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }

    // Block asks for confirmation; without it nothing changes.
    let unconfirmed = post(
        &cloud,
        &format!("{base}/customer/block"),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.body);
    assert!(unconfirmed.body.contains("validation_failed"));
    assert_eq!(customer_status(&cloud, &host).await, "active");
    let blocked = post(
        &cloud,
        &format!("{base}/customer/block"),
        &cookie,
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(
        (blocked.status, blocked.location.as_deref()),
        (303, Some(base.as_str()))
    );
    assert_eq!(customer_status(&cloud, &host).await, "blocked");
    let page = get(&cloud, &base, &cookie).await;
    assert!(page.body.contains("id=\"unblock\"") && !page.body.contains("id=\"block\""));
    let unblocked = post(
        &cloud,
        &format!("{base}/customer/unblock"),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(unblocked.status, 303);
    assert_eq!(customer_status(&cloud, &host).await, "active");

    // Recovery: armed for the chosen time, then disarmed.
    let unconfirmed = post(
        &cloud,
        &format!("{base}/recovery/arm"),
        &cookie,
        &[("csrf", &csrf), ("ttl_minutes", "15")],
    )
    .await;
    assert_eq!(unconfirmed.status, 400);
    assert!(recovery_until(&cloud, &host).await.is_null());
    let armed = post(
        &cloud,
        &format!("{base}/recovery/arm"),
        &cookie,
        &[("csrf", &csrf), ("ttl_minutes", "15"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(armed.status, 303, "{}", armed.body);
    let until = recovery_until(&cloud, &host).await;
    let expected = mftplus_cloud::clock::rfc3339(cloud.state.clock.now_ms() + 900_000);
    assert_eq!(
        until.as_str().unwrap()[..16],
        expected[..16],
        "15 minutes from now"
    );
    let page = get(&cloud, &base, &cookie).await;
    assert!(page.body.contains("id=\"disarm-recovery\"") && page.body.contains("Recovery mode"));
    let disarmed = post(
        &cloud,
        &format!("{base}/recovery/disarm"),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(disarmed.status, 303);
    assert!(recovery_until(&cloud, &host).await.is_null());

    for event in [
        "customer_blocked",
        "customer_unblocked",
        "recovery_armed",
        "recovery_disarmed",
    ] {
        let entries = audited(&cloud, event).await;
        assert_eq!(entries.len(), 1, "{event}: {entries:?}");
        assert_eq!(entries[0]["actor"], "operator-web@example.com", "{event}");
    }
}

#[tokio::test]
async fn a_reset_retrieval_password_is_shown_once_and_replaces_the_old_one() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    let (cookie, csrf) = signed_in_as(&cloud, "operator").await;
    let base = format!("/hosts/{}", host.host_id);
    let path = format!("{base}/customer/retrieval-password");
    let unconfirmed = post(&cloud, &path, &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(unconfirmed.status, 400);
    let shown = post(
        &cloud,
        &path,
        &cookie,
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    let at = shown
        .body
        .find("id=\"new-password\">")
        .expect("the password is shown")
        + 18;
    let password = shown.body[at..].split('<').next().unwrap().to_string();
    assert!(password.chars().count() >= 12, "{password}");

    let config = format!("/api/v1/config/{}?format=json", host.customer_id);
    let old = fleet_support::with_password(&cloud, "GET", &config, RETRIEVAL_PASSWORD, None).await;
    assert_eq!(old.status, 401, "the old password stopped working");
    let new = fleet_support::with_password(&cloud, "GET", &config, &password, None).await;
    assert_eq!(new.status, 200, "{:?}", new.body);

    let page = get(&cloud, &base, &cookie).await;
    assert!(!page.body.contains(&password), "shown once only");
    let entries = audited(&cloud, "retrieval_password_reset").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["target"], host.customer_id.as_str());
    assert!(
        !audit_log(&cloud).await.contains(&password),
        "never in the audit log"
    );

    // The API route is the same flow.
    let reply = call(
        &cloud,
        &admin(&cloud),
        "POST",
        &format!(
            "/api/v1/customers/{}/retrieval-password/reset",
            host.customer_id
        ),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let again = reply.body["retrieval_password"].as_str().unwrap();
    assert_ne!(again, password);
    let replaced = fleet_support::with_password(&cloud, "GET", &config, &password, None).await;
    assert_ne!(replaced.status, 200, "replaced in turn");
    assert_eq!(audited(&cloud, "retrieval_password_reset").await.len(), 2);
}
