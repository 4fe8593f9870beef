//! The browser harness (`tests/browser`) proved against pages that exist today: a static page
//! of this test's own (a form, a script, a cookie) and a TestCloud's `/api/v1/health`. Skips
//! without chromedriver and chromium unless `MFTPLUS_TEST_REQUIRE_BROWSER=1`.

mod browser;

use browser::{screenshot_dir, Browser, Cookie, WAIT, WINDOW};
use mftplus_cloud::testing::TestCloud;
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Clicking "Greet" shows the greeting a little later (so waiting is needed) and stores the
/// name in a cookie.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Harness page</title>
<style>body { font-family: sans-serif; margin: 2em } #out { color: #075 }</style></head>
<body>
<h1>Browser harness</h1>
<form onsubmit="return false">
  <label>Name <input id="name" name="name" placeholder="Your name"></label>
  <button id="go" type="button">Greet</button>
  <button id="hidden" type="button" style="display: none">Hidden</button>
</form>
<p id="out"></p>
<ul><li>one</li><li>two</li><li>three</li></ul>
<script>
document.getElementById("go").addEventListener("click", function () {
  var name = document.getElementById("name").value;
  document.cookie = "greeting=" + encodeURIComponent(name) + "; path=/; SameSite=Lax";
  setTimeout(function () {
    document.getElementById("out").textContent = "Hello, " + name;
  }, 300);
});
</script>
</body>
</html>
"#;

/// Serves [`PAGE`] at `/` on a free loopback port; returns its URL.
async fn serve_page() -> String {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async { axum::response::Html(PAGE) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Processes whose command line mentions `needle` (Chromium's name its profile folder).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            if line.contains(needle) {
                found.push(line);
            }
        }
    }
    found
}

/// chromedriver no longer listens and no Chromium process of that profile is left.
fn assert_stopped(driver: SocketAddr, profile: &Path) {
    let needle = profile.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listening = TcpStream::connect_timeout(&driver, Duration::from_millis(200)).is_ok();
        let left = processes_mentioning(&needle);
        if !listening && left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after drop: chromedriver listening={listening}, Chromium processes left: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn drives_a_form_reads_cookies_runs_scripts_and_saves_a_png() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let url = serve_page().await;
    browser.goto(&url).await.unwrap();
    assert_eq!(browser.title().await.unwrap(), "Harness page");
    assert_eq!(browser.current_url().await.unwrap(), url);

    let input = browser.wait_for("#name", WAIT).await.unwrap();
    assert_eq!(
        input.attr("placeholder").await.unwrap().as_deref(),
        Some("Your name")
    );
    assert_eq!(input.attr("data-nothing").await.unwrap(), None);
    input.send_keys("Grace").await.unwrap();
    assert_eq!(input.prop("value").await.unwrap(), json!("Grace"));
    input.clear().await.unwrap();
    assert_eq!(input.prop("value").await.unwrap(), json!(""));
    input.send_keys("Ada Lovelace").await.unwrap();
    browser.find("#go").await.unwrap().click().await.unwrap();
    let out = browser
        .wait_for_text("#out", "Hello, Ada", WAIT)
        .await
        .unwrap();
    assert_eq!(out.text().await.unwrap(), "Hello, Ada Lovelace");
    assert!(out.is_displayed().await.unwrap());
    assert!(browser
        .page_source()
        .await
        .unwrap()
        .contains("<p id=\"out\">Hello, Ada Lovelace</p>"));

    let items = browser.find_all("li").await.unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[1].text().await.unwrap(), "two");
    let list = browser.find("ul").await.unwrap();
    assert_eq!(list.find_all("li").await.unwrap().len(), 3);
    let last = list.find("li:last-child").await.unwrap();
    assert_eq!(last.text().await.unwrap(), "three");
    assert!(browser.find_all(".absent").await.unwrap().is_empty());

    let greeting = browser
        .cookie("greeting")
        .await
        .unwrap()
        .expect("set by the page");
    assert_eq!(greeting.value, "Ada%20Lovelace");
    assert_eq!(greeting.path.as_deref(), Some("/"));
    browser
        .add_cookie(&Cookie::new("extra", "1"))
        .await
        .unwrap();
    assert_eq!(browser.cookies().await.unwrap().len(), 2);
    let seen = browser
        .execute("return document.cookie", &[])
        .await
        .unwrap();
    assert!(seen.as_str().unwrap().contains("extra=1"), "{seen}");
    browser.delete_all_cookies().await.unwrap();
    assert_eq!(browser.cookies().await.unwrap(), Vec::<Cookie>::new());

    let sum = browser
        .execute("return arguments[0] + arguments[1]", &[json!(40), json!(2)])
        .await
        .unwrap();
    assert_eq!(sum, json!(42));
    let id = browser
        .execute("return arguments[0].id", &[out.as_arg()])
        .await
        .unwrap();
    assert_eq!(id, json!("out"));
    let viewport = browser
        .execute("return [window.innerWidth, window.innerHeight]", &[])
        .await
        .unwrap();
    assert_eq!(viewport, json!([WINDOW.0, WINDOW.1]));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shots").join("form.png");
    let png = browser.screenshot(&path).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), png);
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 2_000, "suspiciously small: {} bytes", png.len());
    assert_eq!(png_size(&png), WINDOW);
    let saved = browser.save_screenshot("harness-form").await.unwrap();
    assert_eq!(saved, screenshot_dir().join("harness-form.png"));
    assert!(std::fs::read(&saved).unwrap().starts_with(b"\x89PNG"));

    let (driver, profile) = (browser.driver_addr(), browser.profile_dir().to_owned());
    drop(browser);
    assert_stopped(driver, &profile);
}

#[tokio::test]
async fn reads_the_health_of_a_test_cloud() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let cloud = TestCloud::spawn().await;
    browser
        .goto(&format!("{}/api/v1/health", cloud.url))
        .await
        .unwrap();
    // Chromium shows a JSON reply as text in a <pre>.
    let text = browser.find("pre").await.unwrap().text().await.unwrap();
    let health: Value = serde_json::from_str(&text).expect("health is JSON");
    assert_eq!(health["status"], json!("ok"), "{health}");
    assert!(health["version"].is_string(), "{health}");
}

#[tokio::test]
async fn failures_are_clear_errors() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.goto(&serve_page().await).await.unwrap();

    let started = Instant::now();
    let err = browser
        .wait_for_text("#out", "Hello, Bob", Duration::from_millis(500))
        .await
        .err()
        .expect("no such text");
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(
        err.to_string(),
        "timed out after 500ms waiting for `#out` with text \"Hello, Bob\"; \
         last seen: `#out` had text \"\""
    );
    let err = browser
        .wait_for_text(".absent", "x", Duration::from_millis(200))
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().ends_with("no element matches `.absent`"),
        "{err}"
    );
    let err = browser
        .wait_for("#nothing", Duration::from_millis(200))
        .await
        .err()
        .unwrap();
    assert!(
        err.is_timeout() && err.to_string().contains("no such element"),
        "{err}"
    );

    let err = browser.find("#nothing").await.err().unwrap();
    assert_eq!(err.code(), Some("no such element"), "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with("find `#nothing`: WebDriver error `no such element` (HTTP 404)"),
        "{message}"
    );
    let err = browser.find("##bad").await.err().unwrap();
    assert_eq!(err.code(), Some("invalid selector"), "{err}");
    let err = browser
        .execute("throw new Error('boom')", &[])
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Some("javascript error"), "{err}");
    assert!(err.to_string().contains("boom"), "{err}");
    let hidden = browser.find("#hidden").await.unwrap();
    let err = hidden.click().await.err().unwrap();
    assert_eq!(err.code(), Some("element not interactable"), "{err}");
    assert!(err.to_string().starts_with("click `#hidden`: "), "{err}");
    let err = browser.goto("not a url").await.err().unwrap();
    assert_eq!(err.code(), Some("invalid argument"), "{err}");
}

#[tokio::test]
async fn a_browser_that_does_not_start_is_a_clear_error() {
    if Browser::start().await.is_none() {
        return;
    }
    let (chromedriver, _) = browser::installed().unwrap();
    let err = Browser::launch(&chromedriver, Path::new("/bin/false"))
        .await
        .err()
        .expect("/bin/false is no browser");
    let message = err.to_string();
    assert!(
        message.starts_with(
            "browser did not start: new session: WebDriver error `session not created`"
        ),
        "{message}"
    );
    assert!(
        message.contains("chromedriver output: Starting ChromeDriver"),
        "{message}"
    );
}

/// A test that panics with a live browser still deletes its session and stops chromedriver:
/// the browser runs on a thread of its own whose panic is caught here.
#[test]
fn a_panicking_test_still_stops_its_browser() {
    let (sender, receiver) = std::sync::mpsc::channel::<(SocketAddr, PathBuf)>();
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let Some(browser) = Browser::start().await else {
                return;
            };
            browser.goto("about:blank").await.unwrap();
            let _ = sender.send((browser.driver_addr(), browser.profile_dir().to_owned()));
            panic!("deliberate panic with a live browser (this message is expected)");
        })
    })
    .join();
    let Ok((driver, profile)) = receiver.recv() else {
        // Skipped (no browser installed), or the start itself panicked: report that one.
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
        return;
    };
    assert!(outcome.is_err(), "the thread was meant to panic");
    assert_stopped(driver, &profile);
}
