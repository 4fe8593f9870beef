//! Sending from the browser (issue 16 item 3): a user signed in to the dashboard in a real
//! headless Chromium chooses a file on `/transfers/new`, the page encrypts it to the
//! recipient's registered key and uploads it, and the real `mftctl receive` of the recipient
//! gets a file with the original's SHA-256 (0 B, 1 B, one chunk and several chunks). An upload
//! cut short by a page reload continues when the same file is chosen again, under the same
//! transfer, and the result is again the original. Signing out ends the page's upload token.
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
    // Alice signs in to the dashboard only: she never runs mftctl and has no key pair.
    user(&cloud, &admin, "alice@example.com", "user", false).await;
    let bob = user(&cloud, &admin, "bob@example.com", "user", true).await;
    let w = World {
        cloud,
        bob,
        browser,
        files: tempfile::tempdir().unwrap(),
    };
    sign_in(&w).await;
    Some(w)
}

async fn sign_in(w: &World) {
    let browser = &w.browser;
    browser
        .goto(&format!("{}/login?next=/transfers/new", w.cloud.url))
        .await
        .or_fail("open the sign-in page");
    let email = browser.find("#email").await.or_fail("the email field");
    email.send_keys("alice@example.com").await.or_fail("type");
    let password = browser.find("#password").await.or_fail("the password");
    password.send_keys(PASSWORD).await.or_fail("type");
    browser
        .find("#sign-in")
        .await
        .or_fail("Sign in")
        .click()
        .await
        .or_fail("click Sign in");
    browser
        .wait_for_text("h1", "Send a file", WAIT)
        .await
        .or_fail("signed in, alice is on the upload page");
}

/// The page's `data-upload` (`uploading`, `sent`, `failed`) once it is not `from`.
async fn upload_state_after(browser: &Browser, from: &[&str], within: Duration) -> String {
    let started = Instant::now();
    loop {
        let state = browser
            .execute("return document.body.dataset.upload || ''", &[])
            .await
            .or_fail("read the page's state");
        let state = state.as_str().unwrap_or_default().to_string();
        if !from.contains(&state.as_str()) {
            return state;
        }
        assert!(started.elapsed() < within, "the page stayed {state:?}");
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

/// Fills the form with `file` for bob and starts the upload.
async fn send_from_page(w: &World, file: &Path, chunk_size: &str) {
    let browser = &w.browser;
    browser
        .goto(&format!("{}/transfers/new", w.cloud.url))
        .await
        .or_fail("open the upload page");
    let chooser = browser.find("#file").await.or_fail("the file chooser");
    chooser
        .send_keys(&file.display().to_string())
        .await
        .or_fail("choose the file");
    let to = browser.find("#recipients").await.or_fail("recipients");
    to.send_keys("bob@example.com").await.or_fail("type bob");
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

/// The transfer id the page reports once it says it sent the file.
async fn sent_id(w: &World) -> String {
    let state = upload_state_after(&w.browser, &["", "uploading"], UPLOAD_WITHIN).await;
    let status = text_of(&w.browser, "#upload-status").await;
    let error = text_of(&w.browser, "#upload-error").await;
    assert_eq!(state, "sent", "status {status:?}, error {error:?}");
    let href = w
        .browser
        .find("#sent-transfer")
        .await
        .or_fail("the link to the transfer")
        .attr("href")
        .await
        .or_fail("href")
        .unwrap();
    href.trim_start_matches("/transfers/").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_sent_from_the_page_are_received_with_mftctl() {
    let Some(w) = world().await else { return };
    // 0 B, 1 B, exactly one 64 KiB chunk, and four and a half chunks.
    let cases = [
        ("empty.bin", 0usize, "64KiB"),
        ("one-byte.bin", 1, "64KiB"),
        ("one-chunk.bin", 65_536, "64KiB"),
        ("several.bin", 4 * 65_536 + 32_768, "64KiB"),
    ];
    for (name, len, chunk) in cases {
        let file = w.files.path().join(name);
        let sha = make_file(&file, len, len as u64 + 7);
        send_from_page(&w, &file, chunk).await;
        let id = sent_id(&w).await;
        assert_eq!(received_sha(&w.bob, &id, name).await, sha, "{name} differs");
    }
    // The page's token ends with the session: signing out leaves a copied token useless.
    let token = w
        .browser
        .execute(
            "const body = new URLSearchParams({csrf: document.getElementById('upload').dataset.csrf});\
             return fetch('/transfers/upload-token', {method: 'POST', body}).then(r => r.json()).then(j => j.token)",
            &[],
        )
        .await
        .or_fail("mint a token from the page");
    let token = token.as_str().expect("a token").to_string();
    let api = Client::new(&w.cloud.url, Credential::Bearer(token)).unwrap();
    api.list_transfers(None).await.expect("the token works");
    w.browser
        .find("form[action=\"/logout\"] button")
        .await
        .or_fail("sign out")
        .click()
        .await
        .or_fail("click sign out");
    w.browser
        .wait_for_text("h1", "Sign in", WAIT)
        .await
        .or_fail("signed out");
    let refused = api.list_transfers(None).await.expect_err("the token died");
    assert_eq!(refused.code(), "token_revoked", "{refused:?}");
}

/// Chunks stored so far, from the store (the API lists them to the sender only).
async fn stored_chunks(w: &World, id: &str) -> usize {
    w.cloud.state.store.list_chunks(id).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_by_a_reload_resumes_with_the_same_file() {
    let Some(w) = world().await else { return };
    const CHUNKS: usize = 400;
    let file = w.files.path().join("big.bin");
    let sha = make_file(&file, CHUNKS * 65_536 - 1, 42);
    send_from_page(&w, &file, "64KiB").await;
    // Reload once some chunks are stored and the upload is still going.
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
            let stored = stored_chunks(&w, &t.id).await;
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
    let listed = text_of(&w.browser, "#unfinished-list").await;
    assert!(
        listed.contains("big.bin") && listed.contains(&id),
        "{listed}"
    );
    let before = stored_chunks(&w, &id).await;
    chooser
        .send_keys(&file.display().to_string())
        .await
        .or_fail("choose the same file");
    let resumed = sent_id(&w).await;
    assert_eq!(resumed, id, "the upload went on under its first transfer");
    assert_eq!(admin.list_transfers(None).await.unwrap().len(), 1);
    assert!(before < CHUNKS, "nothing was left to resume");
    assert_eq!(received_sha(&w.bob, &id, "big.bin").await, sha);
    // Done: nothing is offered for a resume any more.
    w.browser.refresh().await.or_fail("reload");
    let started = Instant::now();
    loop {
        let count = w
            .browser
            .execute("return document.body.dataset.unfinished || ''", &[])
            .await
            .or_fail("unfinished count");
        match count.as_str() {
            Some("") => assert!(started.elapsed() < WAIT, "the page never counted"),
            other => {
                assert_eq!(other, Some("0"), "a finished upload is still offered");
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
