//! The dashboard as a browser without JavaScript sees it, for the cloud's integration tests:
//! pages fetched and forms posted with a session cookie, and sessions made through the sign-in
//! page. Declare `mod common;` next to it.

// Each test file is its own crate and uses a different subset of these helpers.
#![allow(dead_code)]

use super::common::*;
use mftplus_cloud::testing::TestCloud;

/// The password `common::user_with_token` gives every user it makes.
pub const PASSWORD: &str = "a sufficiently long password";

/// Keeps no cookies itself, so each request carries exactly the session a test chose, and
/// follows no redirects, so a test sees where a page sends the browser.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub struct Page {
    pub status: u16,
    /// Where a redirect sends the browser; `None` when the answer is not one.
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

async fn read(response: reqwest::Response) -> Page {
    let headers = response.headers().clone();
    let location = headers
        .get("location")
        .map(|value| value.to_str().unwrap().to_string());
    Page {
        status: response.status().as_u16(),
        location,
        headers,
        body: response.text().await.unwrap(),
    }
}

pub async fn get(cloud: &TestCloud, path: &str, cookie: &str) -> Page {
    let request = browser()
        .get(format!("{}{path}", cloud.url))
        .header("cookie", cookie);
    read(request.send().await.unwrap()).await
}

/// Sends no cookie header at all, as a browser that never signed in does.
pub async fn get_anonymous(cloud: &TestCloud, path: &str) -> Page {
    let request = browser().get(format!("{}{path}", cloud.url));
    read(request.send().await.unwrap()).await
}

/// A form posted from one of the dashboard's own pages: the origin checks pass, so whatever
/// refuses it is the session, the CSRF token or the form itself.
pub async fn post(cloud: &TestCloud, path: &str, cookie: &str, form: &[(&str, &str)]) -> Page {
    let request = same_site_form(cloud, path, form).header("cookie", cookie);
    read(request.send().await.unwrap()).await
}

/// [`post`] from a browser that never signed in: no cookie header at all.
pub async fn post_anonymous(cloud: &TestCloud, path: &str, form: &[(&str, &str)]) -> Page {
    read(same_site_form(cloud, path, form).send().await.unwrap()).await
}

fn same_site_form(cloud: &TestCloud, path: &str, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
    browser()
        .post(format!("{}{path}", cloud.url))
        .form(form)
        .header("origin", &cloud.url)
        .header("sec-fetch-site", "same-origin")
}

/// Opens a live stream. Unlike [`get`] it leaves the body unread: a stream never ends.
pub async fn open_stream(cloud: &TestCloud, path: &str, cookie: &str) -> reqwest::Response {
    browser()
        .get(format!("{}{path}", cloud.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// Signs in through the page; returns the `name=value` cookie to send back and the CSRF token
/// its forms carry. Every sign-in checks the cookie's flags, whichever test it serves.
pub async fn sign_in(cloud: &TestCloud, email: &str, password: &str) -> (String, String) {
    let form = [("email", email), ("password", password), ("next", "/")];
    let page = post_anonymous(cloud, "/login", &form).await;
    assert_eq!(page.status, 303, "sign-in as {email}: {}", page.body);
    let set = page.headers["set-cookie"].to_str().unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{flag} missing from {set}");
    }
    let cookie = set.split(';').next().unwrap().to_string();
    // Every signed-in role may open its sessions page, whose forms carry the token.
    let sessions = get(cloud, "/sessions", &cookie).await;
    assert_eq!(sessions.status, 200, "{}", sessions.body);
    let csrf = csrf_of(&sessions.body);
    (cookie, csrf)
}

/// The address of the user [`signed_in_as`] makes for `role`: one per role, so a test can
/// find it again.
pub fn email_of(role: &str) -> String {
    format!("{role}-web@example.com")
}

/// Signs in as a new user of `role`, made through the API; returns the cookie and the CSRF
/// token.
pub async fn signed_in_as(cloud: &TestCloud, role: &str) -> (String, String) {
    user_with_token(cloud, &email_of(role), role).await;
    signed_in_again(cloud, role).await
}

/// A new session of the user [`signed_in_as`] made, for when the last one ended or the test
/// clock moved past its expiry.
pub async fn signed_in_again(cloud: &TestCloud, role: &str) -> (String, String) {
    sign_in(cloud, &email_of(role), PASSWORD).await
}

/// A session's forms all carry the same token, so the first form of any page will do.
pub fn csrf_of(body: &str) -> String {
    let at = body
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    body[at..].split('"').next().unwrap().to_string()
}

/// Whether the stream announced a change within `secs` seconds. A stream that ends fails
/// the test instead: a live page would stop following.
pub async fn changed_within(stream: &mut reqwest::Response, secs: u64) -> bool {
    tokio::time::timeout(std::time::Duration::from_secs(secs), async {
        loop {
            let chunk = stream.chunk().await.unwrap().expect("the stream goes on");
            if String::from_utf8_lossy(&chunk).contains("event: changed") {
                return;
            }
        }
    })
    .await
    .is_ok()
}
