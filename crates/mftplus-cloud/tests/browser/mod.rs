//! A small W3C WebDriver client for the dashboard's browser tests: headless Chromium driven by
//! chromedriver over HTTP+JSON (reqwest and serde_json; no WebDriver crate).
//!
//! Each [`Browser`] is its own chromedriver on a free loopback port and its own Chromium with
//! a fresh profile in a temporary folder, so tests share no cookies or storage. Dropping it
//! (also when the test panics) deletes the session, which quits Chromium, and stops
//! chromedriver.
//!
//! ```ignore
//! mod browser;
//! let Some(browser) = browser::Browser::start().await else { return };
//! browser.goto(&format!("{}/login", cloud.url)).await?;
//! browser.find("#email").await?.send_keys("admin@example.com").await?;
//! browser.find("button[type=submit]").await?.click().await?;
//! browser.wait_for_text("h1", "Overview", browser::WAIT).await?;
//! browser.save_screenshot("overview").await?;
//! ```
//!
//! `Browser::start` skips (returns `None`) when chromedriver or chromium is not on `PATH`,
//! unless `MFTPLUS_TEST_REQUIRE_BROWSER=1` (CI), where it panics. See docs/testing-browser.md.

#![allow(dead_code)]

mod cookies;
mod driver;
mod element;
mod error;
mod screenshot;

pub use cookies::Cookie;
pub use element::Element;
pub use error::BrowserError;
// For the other crates' browser tests, which include this module by path.
#[allow(unused_imports)]
pub use error::OrFail;
pub use screenshot::screenshot_dir;

use driver::Driver;
use reqwest::Method;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A patient default for `wait_for…`: long enough for a slow CI machine, short enough that a
/// broken page fails the test quickly.
pub const WAIT: Duration = Duration::from_secs(10);
/// The viewport (CSS pixels) of every page and screenshot.
pub const WINDOW: (u32, u32) = (1280, 900);
const POLL: Duration = Duration::from_millis(100);
/// One WebDriver command, page loads included.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
const INSTALL: &str =
    "apt-get install chromium chromium-driver, or run scripts/install-test-deps.sh as root";

/// The paths of `chromedriver` and `chromium` on `PATH`, when both are there.
pub fn installed() -> Option<(PathBuf, PathBuf)> {
    Some((driver::which("chromedriver")?, driver::which("chromium")?))
}

/// A headless Chromium session. Fields drop in order: the driver (session deleted, Chromium
/// quit, chromedriver stopped) before the profile folder is removed.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:port/session/<id>`.
    base: String,
    driver: Driver,
    profile: tempfile::TempDir,
}

impl Browser {
    /// A fresh browser, or `None` (with a note on stderr) when chromedriver or chromium is not
    /// installed. Panics when `MFTPLUS_TEST_REQUIRE_BROWSER=1` and they are missing, and
    /// whenever they are installed but do not start.
    pub async fn start() -> Option<Browser> {
        Browser::start_with(None).await
    }

    /// Like [`Browser::start`], with downloads saved into `dir` without a prompt (Chromium's
    /// `download.default_directory` preference, which chromedriver also applies headless).
    pub async fn start_downloading_to(dir: &Path) -> Option<Browser> {
        Browser::start_with(Some(dir)).await
    }

    async fn start_with(downloads: Option<&Path>) -> Option<Browser> {
        let Some((chromedriver, chromium)) = installed() else {
            if std::env::var("MFTPLUS_TEST_REQUIRE_BROWSER").as_deref() == Ok("1") {
                panic!(
                    "MFTPLUS_TEST_REQUIRE_BROWSER=1 but chromedriver or chromium is not on PATH; \
                     install them: {INSTALL}"
                );
            }
            eprintln!("skipping browser test: chromedriver or chromium not on PATH; {INSTALL}");
            return None;
        };
        match Browser::launch_with(&chromedriver, &chromium, downloads).await {
            Ok(browser) => Some(browser),
            Err(err) => panic!("{err}"),
        }
    }

    /// Starts `chromedriver` and a headless session of the Chromium at `chromium`.
    pub async fn launch(chromedriver: &Path, chromium: &Path) -> Result<Browser, BrowserError> {
        Browser::launch_with(chromedriver, chromium, None).await
    }

    async fn launch_with(
        chromedriver: &Path,
        chromium: &Path,
        downloads: Option<&Path>,
    ) -> Result<Browser, BrowserError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(COMMAND_TIMEOUT)
            .build()
            .map_err(|err| BrowserError::Start(format!("HTTP client: {err}")))?;
        let profile = tempfile::Builder::new()
            .prefix("mftplus-chromium-")
            .tempdir()?;
        let mut driver = Driver::start(chromedriver, profile.path(), &http).await?;
        let args = [
            "--headless=new".to_owned(),
            // Chromium refuses to start as root with its sandbox; CI runs as root.
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            // Containers often have a small /dev/shm, where Chromium then crashes.
            "--disable-dev-shm-usage".to_owned(),
            format!(
                "--user-data-dir={}",
                profile.path().join("profile").display()
            ),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
        ];
        let mut options = json!({"binary": chromium, "args": args});
        if let Some(dir) = downloads {
            options["prefs"] = json!({
                "download.default_directory": dir,
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
                "safebrowsing.enabled": false,
            });
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "timeouts": {"implicit": 0, "pageLoad": 30_000, "script": 30_000},
        }}});
        let url = format!("http://{}/session", driver.addr);
        let reply = send(&http, "new session", Method::POST, &url, Some(capabilities))
            .await
            .map_err(|err| BrowserError::Start(format!("{err}; {}", driver.log_tail())))?;
        let session = reply["sessionId"]
            .as_str()
            .ok_or_else(|| BrowserError::Start(format!("no session id in {reply}")))?
            .to_owned();
        let base = format!("http://{}/session/{session}", driver.addr);
        driver.session = Some(session);
        let browser = Browser {
            http,
            base,
            driver,
            profile,
        };
        browser.fit_viewport().await?;
        Ok(browser)
    }

    /// Makes the viewport [`WINDOW`]: headless Chromium keeps room for a toolbar it does not
    /// draw, so `--window-size` sets the outer size and the window is grown by the difference.
    async fn fit_viewport(&self) -> Result<(), BrowserError> {
        let script = "return [window.outerWidth - window.innerWidth, \
                      window.outerHeight - window.innerHeight]";
        let extra = self.execute(script, &[]).await?;
        let (width, height) = (
            extra[0].as_u64().unwrap_or(0),
            extra[1].as_u64().unwrap_or(0),
        );
        if (width, height) != (0, 0) {
            let body = json!({
                "width": u64::from(WINDOW.0) + width,
                "height": u64::from(WINDOW.1) + height,
            });
            self.command("size the window", Method::POST, "/window/rect", Some(body))
                .await?;
        }
        Ok(())
    }

    /// chromedriver's address (to check that it is gone after `drop`).
    pub fn driver_addr(&self) -> SocketAddr {
        self.driver.addr
    }

    /// Chromium's profile folder (its processes name it on their command line).
    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }

    /// One command of this session: `path` is relative to `/session/<id>`.
    async fn command(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, BrowserError> {
        let url = format!("{}{path}", self.base);
        send(&self.http, what, method, &url, body).await
    }

    /// Navigates and waits for the page to load (`document.readyState` complete).
    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        let what = format!("go to {url}");
        let body = json!({ "url": url });
        self.command(&what, Method::POST, "/url", Some(body))
            .await?;
        Ok(())
    }

    pub async fn back(&self) -> Result<(), BrowserError> {
        self.command("back", Method::POST, "/back", None).await?;
        Ok(())
    }

    pub async fn refresh(&self) -> Result<(), BrowserError> {
        self.command("refresh", Method::POST, "/refresh", None)
            .await?;
        Ok(())
    }

    pub async fn current_url(&self) -> Result<String, BrowserError> {
        let value = self
            .command("current URL", Method::GET, "/url", None)
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    pub async fn title(&self) -> Result<String, BrowserError> {
        let value = self.command("title", Method::GET, "/title", None).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The DOM serialised as HTML now (scripts' changes included).
    pub async fn page_source(&self) -> Result<String, BrowserError> {
        let value = self
            .command("page source", Method::GET, "/source", None)
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The first element matching `css`, now; `no such element` when there is none.
    pub async fn find(&self, css: &str) -> Result<Element<'_>, BrowserError> {
        let body = json!({ "using": "css selector", "value": css });
        let what = format!("find `{css}`");
        let value = self
            .command(&what, Method::POST, "/element", Some(body))
            .await?;
        Element::from_reply(self, &value, css)
    }

    /// Every element matching `css` now, in document order (maybe none).
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>, BrowserError> {
        let body = json!({ "using": "css selector", "value": css });
        let what = format!("find all `{css}`");
        let value = self
            .command(&what, Method::POST, "/elements", Some(body))
            .await?;
        Element::list_from_reply(self, value, css)
    }

    /// The first element matching `css`, polling until it exists or `timeout` passes.
    pub async fn wait_for(
        &self,
        css: &str,
        timeout: Duration,
    ) -> Result<Element<'_>, BrowserError> {
        let start = Instant::now();
        loop {
            let last = match self.find(css).await {
                Ok(element) => return Ok(element),
                Err(err @ BrowserError::WebDriver { .. }) => err.to_string(),
                Err(err) => return Err(err),
            };
            if start.elapsed() > timeout {
                return Err(BrowserError::Timeout {
                    what: format!("`{css}`"),
                    waited: timeout,
                    last,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The first element matching `css` whose text contains `text`, polling until one does or
    /// `timeout` passes. The error shows the texts the matching elements had on the last try.
    pub async fn wait_for_text(
        &self,
        css: &str,
        text: &str,
        timeout: Duration,
    ) -> Result<Element<'_>, BrowserError> {
        let start = Instant::now();
        loop {
            let mut seen = Vec::new();
            for element in self.find_all(css).await? {
                match element.text().await {
                    Ok(found) if found.contains(text) => return Ok(element),
                    Ok(found) => seen.push(format!("{found:?}")),
                    // Re-rendered or navigated away between find and read (Chromium says
                    // the latter as an inspector error): try again on the next poll.
                    Err(err) if is_gone(&err) => {}
                    Err(err) => return Err(err),
                }
            }
            if start.elapsed() > timeout {
                let last = if seen.is_empty() {
                    format!("no element matches `{css}`")
                } else {
                    format!("`{css}` had text {}", seen.join(", "))
                };
                return Err(BrowserError::Timeout {
                    what: format!("`{css}` with text {text:?}"),
                    waited: timeout,
                    last,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs `script` as the body of a function (`return …` gives the result; `arguments[i]`
    /// are `args`, [`Element::as_arg`] for elements) and waits for it. A thrown exception is a
    /// `javascript error`.
    pub async fn execute(&self, script: &str, args: &[Value]) -> Result<Value, BrowserError> {
        let body = json!({ "script": script, "args": args });
        self.command("execute script", Method::POST, "/execute/sync", Some(body))
            .await
    }
}

/// One WebDriver request. POST bodies are JSON objects, `{}` when there is nothing to say;
/// the reply's `value` is returned, or its W3C error (any non-2xx status).
async fn send(
    http: &reqwest::Client,
    what: &str,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, BrowserError> {
    let mut request = http.request(method.clone(), url);
    if method == Method::POST {
        request = request.json(&body.unwrap_or_else(|| json!({})));
    }
    let transport = |source| BrowserError::Transport {
        command: what.to_owned(),
        source,
    };
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let text = response.text().await.map_err(transport)?;
    let mut reply: Value = serde_json::from_str(&text).map_err(|_| BrowserError::Protocol {
        command: what.to_owned(),
        detail: format!(
            "HTTP {status}, not JSON: {}",
            text.chars().take(200).collect::<String>()
        ),
    })?;
    let value = reply.get_mut("value").map(Value::take).unwrap_or_default();
    if status.is_success() {
        return Ok(value);
    }
    Err(BrowserError::WebDriver {
        command: what.to_owned(),
        status: status.as_u16(),
        code: value["error"]
            .as_str()
            .unwrap_or("unknown error")
            .to_owned(),
        message: value["message"].as_str().unwrap_or_default().to_owned(),
    })
}

/// An element found a moment ago that the page has since replaced or left.
fn is_gone(err: &BrowserError) -> bool {
    err.code() == Some("stale element reference")
        || err.to_string().contains("does not belong to the document")
}
