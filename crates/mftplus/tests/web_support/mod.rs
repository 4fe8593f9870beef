//! What the browser tests share: failing with the step's name, signing in through the form
//! (and checking the session cookie's attributes), and refreshing the screenshots the docs show.

pub use super::browser::OrFail;
use super::browser::{self, screenshot_dir, Browser, WAIT};
use std::path::Path;

/// The session cookie's name on plain HTTP.
pub const SESSION_COOKIE: &str = "mftplus_session";

/// From any page of the dashboard: to `/hubs`, sent to the sign-in page, signed in as
/// `email` by typing and clicking, and back on Hubs. `screenshot` names a picture of the
/// filled-in form taken before signing in.
pub async fn sign_in(
    browser: &Browser,
    cloud: &str,
    email: &str,
    password: &str,
    screenshot: Option<&str>,
) {
    browser
        .goto(&format!("{cloud}/hubs"))
        .await
        .or_fail("open /hubs");
    browser
        .wait_for_text("h1", "Sign in", WAIT)
        .await
        .or_fail("a signed-out visit to /hubs shows the sign-in page");
    let url = browser.current_url().await.or_fail("current URL");
    assert!(
        url.contains("/login?next="),
        "sent to the sign-in page with a way back, not {url}"
    );
    let field = browser.find("#email").await.or_fail("the email field");
    field.send_keys(email).await.or_fail("type the email");
    let field = browser
        .find("#password")
        .await
        .or_fail("the password field");
    field.send_keys(password).await.or_fail("type the password");
    if let Some(name) = screenshot {
        browser.save_screenshot(name).await.or_fail("screenshot");
    }
    let button = browser.find("#sign-in").await.or_fail("the Sign in button");
    button.click().await.or_fail("click Sign in");
    browser
        .wait_for_text("h1", "Hubs", WAIT)
        .await
        .or_fail("signed in, the user lands on Hubs");
    let url = browser.current_url().await.or_fail("current URL");
    assert!(
        url.ends_with("/hubs"),
        "back where the user was going, not {url}"
    );
    let cookie: Option<browser::Cookie> = browser.cookie(SESSION_COOKIE).await.or_fail("cookies");
    let cookie =
        cookie.unwrap_or_else(|| panic!("signed in, the browser holds `{SESSION_COOKIE}`"));
    assert_eq!(
        cookie.http_only,
        Some(true),
        "the page's scripts cannot read the session"
    );
    assert_eq!(
        cookie.same_site.as_deref(),
        Some("Strict"),
        "no other site sends it"
    );
    let who = browser
        .find("header .who")
        .await
        .or_fail("who is signed in");
    let who = who.text().await.or_fail("who is signed in");
    assert!(who.contains(email), "the header names {email}: {who:?}");
}

/// Copies `names` (screenshots this run saved) into docs/screenshots/ when
/// `MFTPLUS_UPDATE_DOCS_SCREENSHOTS=1`: the pictures docs/dashboard.md shows.
pub fn update_docs_screenshots(names: &[&str]) {
    if std::env::var("MFTPLUS_UPDATE_DOCS_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&docs).unwrap();
    let docs = docs.canonicalize().unwrap();
    for name in names {
        let file = format!("{name}.png");
        let from = screenshot_dir().join(&file);
        std::fs::copy(&from, docs.join(&file))
            .unwrap_or_else(|err| panic!("copy {} into {}: {err}", from.display(), docs.display()));
    }
    eprintln!("updated {} in {}", names.join(", "), docs.display());
}
