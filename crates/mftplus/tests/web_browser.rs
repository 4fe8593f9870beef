//! The dashboard in a real headless Chromium (issue 15's acceptance, first slice), against a
//! real cloud and a real `mftplus hub` process: signing in, the empty hubs page, a deploy key
//! generated and shown once, a hub started with it appearing online without a reload, and a
//! readonly user who sees the hub but can neither generate nor revoke, not even with a forged
//! request. Forged writes without the CSRF token are refused too.
//!
//! Screenshots go to `MFTPLUS_SCREENSHOT_DIR` (see docs/testing-browser.md); with
//! `MFTPLUS_UPDATE_DOCS_SCREENSHOTS=1` the ones docs/dashboard.md shows are copied into
//! docs/screenshots/. Skips without chromedriver and chromium unless
//! `MFTPLUS_TEST_REQUIRE_BROWSER=1`.

mod agent_support;
#[path = "../../mftplus-cloud/tests/browser/mod.rs"]
mod browser;
mod web_support;

use agent_support::{operator, Proc};
use browser::{Browser, WAIT};
use mftplus_cloud::testing::TestCloud;
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use web_support::{sign_in, update_docs_screenshots, OrFail, SESSION_COOKIE};

/// How long a started hub may take to show as online on the open page.
const HUB_ONLINE_WITHIN: Duration = Duration::from_secs(20);
const LABEL: &str = "jhb-edge-01";
const READONLY_EMAIL: &str = "auditor@example.com";
const READONLY_PASSWORD: &str = "a long readonly password";
/// The screenshots docs/dashboard.md shows.
const DOCS_SCREENSHOTS: [&str; 3] = ["sign-in", "hubs-online", "deploy-key-once"];

/// The CSRF token of the page's sign-out form.
async fn csrf_of_page(browser: &Browser) -> String {
    let input = browser
        .find("header form[action=\"/logout\"] input[name=csrf]")
        .await
        .or_fail("the sign-out form's CSRF token");
    let csrf = input.prop("value").await.or_fail("the CSRF token's value");
    let csrf = csrf.as_str().unwrap_or_default().to_owned();
    assert!(!csrf.is_empty(), "the sign-out form carries a CSRF token");
    csrf
}

/// Runs `fetch(url, POST form)` from the open page, as a script the page itself could run;
/// the answer's status. A form without a `csrf` field when `csrf` is `None`.
async fn post_from_page(browser: &Browser, url: &str, label: &str, csrf: Option<&str>) -> u64 {
    let script = "const [url, fields] = arguments; \
                  return fetch(url, {method: 'POST', body: new URLSearchParams(fields), \
                                     credentials: 'same-origin', redirect: 'manual'}) \
                         .then(answer => answer.status);";
    let mut fields = json!({ "label": label });
    if let Some(csrf) = csrf {
        fields["csrf"] = json!(csrf);
    }
    let status = browser
        .execute(script, &[json!(url), fields])
        .await
        .or_fail("a POST from the page's own script");
    status
        .as_u64()
        .unwrap_or_else(|| panic!("a status, not {status}"))
}

/// Starts `mftplus hub` registering with `key` at `cloud`, in its own data folder under `dir`,
/// on a free port; it is killed when the `Proc` drops. Unlike agent_support's `hub_process`,
/// it uses the key the page generated and does not wait for the registration: the page does.
fn start_hub(cloud: &str, key: &str, dir: &Path) -> Proc {
    let data = dir.join("hub-data");
    std::fs::create_dir_all(&data).unwrap();
    let envs = [
        ("CLOUD_API_URL", format!("{cloud}/api")),
        ("HUB_REGISTRATION_KEY", key.to_owned()),
        ("HUB_PORT", "0".to_owned()),
        ("HUB_LISTEN_ADDR", "127.0.0.1".to_owned()),
        ("HUB_DATA_DIR", data.display().to_string()),
        ("DIAGNOSE_DISK_PATH", dir.display().to_string()),
    ];
    Proc::spawn(&["hub"], &envs, &dir.join("hub.log"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_brings_a_hub_online_and_a_readonly_user_only_watches() {
    let Some(browser) = Browser::start().await else {
        return; // no Chromium here, and not required
    };
    let cloud = TestCloud::spawn().await;
    let url = cloud.url.clone();

    // Signing in, and the empty hubs page.
    sign_in(
        &browser,
        &url,
        &cloud.admin_email,
        &cloud.admin_password,
        Some("sign-in"),
    )
    .await;
    browser
        .wait_for("#no-hubs", WAIT)
        .await
        .or_fail("a cloud without hubs says so");
    browser
        .save_screenshot("hubs-empty")
        .await
        .or_fail("screenshot");

    // A deploy key, shown once.
    let field = browser.find("#label").await.or_fail("the label field");
    field.send_keys(LABEL).await.or_fail("type the label");
    let button = browser
        .find("#generate")
        .await
        .or_fail("the Generate button");
    button.click().await.or_fail("click Generate");
    let shown = browser
        .wait_for("#new-key", WAIT)
        .await
        .or_fail("the generated key is shown");
    let key = shown
        .text()
        .await
        .or_fail("the generated key")
        .trim()
        .to_owned();
    assert!(
        key.starts_with("mft_dep_") && key.len() == 48,
        "a deploy key: {key:?}"
    );
    browser
        .save_screenshot("deploy-key-once")
        .await
        .or_fail("screenshot");
    let back = browser
        .find("main a[href=\"/hubs\"]")
        .await
        .or_fail("the Back to hubs link");
    back.click().await.or_fail("click Back to hubs");
    browser
        .wait_for_text("#deploy-keys td", LABEL, WAIT)
        .await
        .or_fail("the new key's label is listed");
    let source = browser.page_source().await.or_fail("page source");
    assert!(
        !source.contains(&key),
        "the key is shown once, not again on /hubs"
    );

    // A write without the session's CSRF token is refused, even from the page itself.
    let status = post_from_page(&browser, "/hubs/deploy-keys", "no-csrf", None).await;
    assert_eq!(status, 403, "a POST without the CSRF token");
    let status = post_from_page(
        &browser,
        "/hubs/deploy-keys",
        "no-csrf",
        Some("0".repeat(32).as_str()),
    )
    .await;
    assert_eq!(status, 403, "a POST with a wrong CSRF token");

    // A real hub with that key appears online on the open page, without a reload.
    browser
        .execute("window.__marker = 1; return window.__marker;", &[])
        .await
        .or_fail("mark the page");
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(&url, &key, dir.path());
    let online = "#hubs tr[data-hub] [data-status=\"online\"]";
    if let Err(err) = browser.wait_for(online, HUB_ONLINE_WITHIN).await {
        let region = browser
            .execute(
                "return document.getElementById('hubs-live').innerHTML;",
                &[],
            )
            .await
            .unwrap_or_else(|err| json!(err.to_string()));
        panic!(
            "the hub did not show as online on the open page: {err}\nthe live region:\n{}\n\
             the hub's log:\n{}",
            region.as_str().unwrap_or_default(),
            hub.logs()
        );
    }
    let marker = browser
        .execute(
            "return window.__marker === undefined ? null : window.__marker;",
            &[],
        )
        .await
        .or_fail("read the page's mark");
    assert_eq!(
        marker,
        json!(1),
        "the page was not reloaded: the live region changed in place"
    );
    let row = browser
        .find("#hubs tr[data-hub]")
        .await
        .or_fail("the hub's row")
        .text()
        .await
        .or_fail("the hub's row");
    assert!(
        row.contains(LABEL),
        "the hub's row names its deploy key: {row:?}"
    );
    browser
        .save_screenshot("hubs-online")
        .await
        .or_fail("screenshot");

    // A readonly user, in the same browser after signing out.
    let created = reqwest::Client::new()
        .post(format!("{url}/api/v1/users"))
        .header("x-api-key", &cloud.admin_api_key)
        .json(&json!({
            "email": READONLY_EMAIL,
            "name": "Auditor",
            "role": "readonly",
            "password": READONLY_PASSWORD,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.status(),
        201,
        "create the readonly user: {}",
        created.text().await.unwrap()
    );
    let sign_out = browser
        .wait_for_text("header button", "Sign out", WAIT)
        .await
        .or_fail("the Sign out button");
    sign_out.click().await.or_fail("click Sign out");
    browser
        .wait_for_text("h1", "Sign in", WAIT)
        .await
        .or_fail("signed out, the sign-in page");
    let cookie = browser.cookie(SESSION_COOKIE).await.or_fail("cookies");
    assert!(
        cookie.is_none(),
        "signing out removes the session cookie: {cookie:?}"
    );
    browser
        .goto(&format!("{url}/hubs"))
        .await
        .or_fail("open /hubs");
    let url_now = browser.current_url().await.or_fail("current URL");
    assert!(
        url_now.contains("/login"),
        "signed out, /hubs asks to sign in again, not {url_now}"
    );

    sign_in(&browser, &url, READONLY_EMAIL, READONLY_PASSWORD, None).await;
    browser
        .wait_for(online, WAIT)
        .await
        .or_fail("the readonly user sees the hub online");
    browser
        .wait_for_text("#deploy-keys td", LABEL, WAIT)
        .await
        .or_fail("the readonly user sees the deploy key's label");
    for (css, what) in [
        ("#generate", "Generate button"),
        ("#label", "label field"),
        ("form[action=\"/hubs/deploy-keys\"]", "Generate form"),
        ("form[action$=\"/revoke\"]", "Revoke form"),
    ] {
        let found = browser.find_all(css).await.or_fail(what);
        assert!(found.is_empty(), "a readonly user sees no {what} (`{css}`)");
    }
    let source = browser.page_source().await.or_fail("page source");
    assert!(
        !source.contains("Revoke"),
        "a readonly user sees no Revoke button"
    );
    browser
        .save_screenshot("hubs-readonly")
        .await
        .or_fail("screenshot");
    let csrf = csrf_of_page(&browser).await;
    let status = post_from_page(&browser, "/hubs/deploy-keys", "forged", Some(&csrf)).await;
    assert_eq!(
        status, 403,
        "a readonly user's POST with the page's own CSRF token"
    );

    // Nothing the refused requests asked for exists.
    let labels: Vec<String> = operator(&cloud)
        .list_deploy_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|key| key.label)
        .collect();
    assert_eq!(labels, [LABEL], "only the generated key exists");

    update_docs_screenshots(&DOCS_SCREENSHOTS);
    drop(hub);
}
