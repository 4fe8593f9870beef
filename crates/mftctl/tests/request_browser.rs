//! File requests in the browser (decision 0034): bob, signed in with `mftctl`, makes a request
//! link; someone with no account opens it in a real headless Chromium, chooses a file, the
//! page encrypts it to bob's key and uploads it through the request's public routes, and bob's
//! real `mftctl receive` gets a file with the original's SHA-256 (0 B, 1 B, several chunks).
//! A used-up or revoked request's page says so and offers no upload. An upload cut short by a
//! reload continues under the same transfer when the same file is chosen again on the
//! request's page.
//!
//! Skips without chromedriver and chromium unless `MFTPLUS_TEST_REQUIRE_BROWSER=1`.

#[allow(unused_imports)]
#[path = "../../mftplus-cloud/tests/browser/mod.rs"]
mod browser;
mod cli_support;

use browser::{Browser, OrFail, WAIT};
use cli_support::*;
use mftplus_client::{Client, Credential};
use mftplus_cloud::testing::TestCloud;
use std::path::Path;
use std::time::{Duration, Instant};

const UPLOAD_WITHIN: Duration = Duration::from_secs(300);

struct World {
    cloud: TestCloud,
    bob: Shell,
    browser: Browser,
    files: tempfile::TempDir,
}

async fn world() -> Option<World> {
    let browser = Browser::start().await?;
    let cloud = TestCloud::spawn().await;
    let admin = Shell::admin(&cloud);
    let bob = user(&cloud, &admin, "bob@example.com", "user", true).await;
    Some(World {
        cloud,
        bob,
        browser,
        files: tempfile::tempdir().unwrap(),
    })
}

/// `mftctl requests create ARGS --json` as bob: (request id, url).
async fn request(w: &World, args: &str) -> (String, String) {
    let run = w
        .bob
        .line(&format!("mftctl requests create {args} --json"))
        .await
        .ok();
    let answer = run.json();
    (
        answer["request"]["id"].as_str().unwrap().to_string(),
        answer["url"].as_str().unwrap().to_string(),
    )
}

async fn body_data(browser: &Browser, name: &str) -> String {
    let value = browser
        .execute(&format!("return document.body.dataset.{name} || ''"), &[])
        .await
        .or_fail("read the page's state");
    value.as_str().unwrap_or_default().to_string()
}

/// The page's `data-<name>` once it is not one of `from`.
async fn state_after(browser: &Browser, name: &str, from: &[&str], within: Duration) -> String {
    let started = Instant::now();
    loop {
        let state = body_data(browser, name).await;
        if !from.contains(&state.as_str()) {
            return state;
        }
        assert!(
            started.elapsed() < within,
            "the page stayed {name}={state:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(browser: &Browser, css: &str) -> String {
    browser
        .find(css)
        .await
        .or_fail(css)
        .text()
        .await
        .or_fail(css)
}

/// Opens the request's page and waits until it has read the request: `open`, or the code
/// that refused it.
async fn open(w: &World, url: &str) -> String {
    w.browser.goto(url).await.or_fail("open the request's page");
    state_after(&w.browser, "state", &["", "loading"], WAIT).await
}

/// Chooses `file` on the open request page and starts the upload.
async fn upload_from_page(w: &World, file: &Path, chunk_size: &str) {
    let browser = &w.browser;
    let chooser = browser.find("#file").await.or_fail("the file chooser");
    chooser
        .send_keys(&file.display().to_string())
        .await
        .or_fail("choose the file");
    browser
        .execute(
            "document.getElementById('chunk-size').value = arguments[0]",
            &[serde_json::json!(chunk_size)],
        )
        .await
        .or_fail("set the chunk size");
    browser
        .find("#send")
        .await
        .or_fail("the send button")
        .click()
        .await
        .or_fail("click send");
}

/// The transfer id the page reports once it says the file is sent.
async fn sent_id(w: &World) -> String {
    let state = state_after(&w.browser, "upload", &["", "uploading"], UPLOAD_WITHIN).await;
    let status = text_of(&w.browser, "#upload-status").await;
    let error = text_of(&w.browser, "#upload-error").await;
    assert_eq!(state, "sent", "status {status:?}, error {error:?}");
    assert!(
        status.contains("bob@example.com can now receive it"),
        "{status}"
    );
    w.browser
        .find("#sent-transfer")
        .await
        .or_fail("the sent transfer")
        .attr("data-transfer")
        .await
        .or_fail("its id")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_uploaded_on_a_request_page_are_received_with_mftctl() {
    let Some(w) = world().await else { return };
    let (id, url) = request(&w, "--note Your-signed-lease --uploads 3").await;
    assert!(url.contains("/r/"), "{url}");
    let cases = [
        ("empty.bin", 0usize),
        ("one-byte.bin", 1),
        ("several.bin", 3 * 65_536 + 1_000),
    ];
    for (name, len) in cases {
        let file = w.files.path().join(name);
        let sha = make_file(&file, len, len as u64 + 11);
        assert_eq!(open(&w, &url).await, "open");
        assert_eq!(
            text_of(&w.browser, "#request-recipient").await,
            "bob@example.com"
        );
        assert_eq!(
            text_of(&w.browser, "#request-note").await,
            "Your-signed-lease"
        );
        upload_from_page(&w, &file, "64KiB").await;
        let transfer = sent_id(&w).await;
        assert_eq!(
            received_sha(&w.bob, &transfer, name).await,
            sha,
            "{name} differs"
        );
        let shown = w
            .bob
            .line(&format!("mftctl transfers show {transfer} --json"))
            .await
            .ok()
            .json();
        assert_eq!(shown["sender_email"], format!("request:{id}"));
    }
    // Used up: the page says so and offers no upload.
    assert_eq!(open(&w, &url).await, "link_exhausted");
    assert!(text_of(&w.browser, "#upload-error")
        .await
        .contains("uploads"));
    let form_hidden = w
        .browser
        .execute("return document.getElementById('upload').hidden", &[])
        .await
        .or_fail("the form");
    assert_eq!(form_hidden, serde_json::json!(true));

    // Revoked: likewise.
    let (other, other_url) = request(&w, "").await;
    assert_eq!(open(&w, &other_url).await, "open");
    w.bob
        .line(&format!("mftctl requests revoke {other}"))
        .await
        .ok();
    assert_eq!(open(&w, &other_url).await, "link_revoked");
    let listed = w.bob.line("mftctl requests list --json").await.ok().json();
    let statuses: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["revoked", "exhausted"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_on_a_request_page_cut_by_a_reload_resumes() {
    let Some(w) = world().await else { return };
    let (_, url) = request(&w, "").await;
    const CHUNKS: usize = 300;
    let file = w.files.path().join("big.bin");
    let sha = make_file(&file, CHUNKS * 65_536 - 7, 5);
    assert_eq!(open(&w, &url).await, "open");
    upload_from_page(&w, &file, "64KiB").await;
    let admin = Client::new(
        &w.cloud.url,
        Credential::ApiKey(w.cloud.admin_api_key.clone()),
    )
    .unwrap();
    let deadline = Instant::now() + UPLOAD_WITHIN;
    let id = loop {
        assert!(Instant::now() < deadline, "no chunk stored");
        let listed = admin.list_transfers(None).await.unwrap();
        if let Some(t) = listed.first() {
            let stored = w.cloud.state.store.list_chunks(&t.id).await.unwrap().len();
            if stored >= 4 {
                assert!(stored < CHUNKS, "the upload finished before the reload");
                break t.id.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    w.browser.refresh().await.or_fail("reload the page");
    let chooser = w
        .browser
        .wait_for("#unfinished:not([hidden]) .resume-file", WAIT)
        .await
        .or_fail("the page offers the unfinished upload");
    chooser
        .send_keys(&file.display().to_string())
        .await
        .or_fail("choose the same file");
    assert_eq!(
        sent_id(&w).await,
        id,
        "the upload went on under its first transfer"
    );
    assert_eq!(received_sha(&w.bob, &id, "big.bin").await, sha);
}
