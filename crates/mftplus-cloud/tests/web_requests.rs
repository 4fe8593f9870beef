//! File requests on the dashboard (decision 0034): a user with a key makes one with the form
//! and sees its link once (the link works), lists and revokes it; another user neither sees
//! nor revokes it; the administrator sees everyone's; without a key the form says why.

mod common;
mod request_support;
mod web_support;

use common::*;
use mftplus_cloud::testing::TestCloud;
use request_support::outsider_reads;
use web_support::*;

/// The request ids the list shows, in order.
fn listed(body: &str) -> Vec<String> {
    body.split("data-request=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_request_made_on_the_page_works_and_is_revoked_there() {
    let cloud = TestCloud::spawn().await;
    let (_, alice) = user_with_token(&cloud, "alice@example.com", "user").await;
    user_with_token(&cloud, "bob@example.com", "user").await;
    let (cookie, csrf) = sign_in(&cloud, "alice@example.com", PASSWORD).await;
    let form = [
        ("csrf", csrf.as_str()),
        ("note", "Your <b>signed</b> lease"),
        ("uploads", "2"),
        ("expires", "2d"),
    ];

    // No key yet: refused with the reason and its code.
    let refused = post(&cloud, "/requests", &cookie, &form).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("no_public_key"), "{}", refused.body);

    register_user_key(&cloud, &alice).await;
    let made = post(&cloud, "/requests", &cookie, &form).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let at = made.body.find("id=\"request-url\">").expect("the link") + 17;
    let url = made.body[at..].split('<').next().unwrap().to_string();
    let token = url.rsplit("/r/").next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    // The note is escaped, the link works for an outsider.
    assert!(made.body.contains("Your &lt;b&gt;signed&lt;/b&gt; lease"));
    let info = outsider_reads(&cloud, &token).await;
    assert_eq!(info.status, 200, "{:?}", info.body);
    assert_eq!(info.body["uploads_left"], 2);

    let page = get(&cloud, "/requests", &cookie).await;
    let ids = listed(&page.body);
    assert_eq!(ids.len(), 1, "{}", page.body);
    assert!(
        !page.body.contains(&token),
        "the list never shows the token"
    );

    // Bob sees nothing of alice's, and cannot revoke it; the administrator sees it.
    let (bob_cookie, bob_csrf) = sign_in(&cloud, "bob@example.com", PASSWORD).await;
    assert!(listed(&get(&cloud, "/requests", &bob_cookie).await.body).is_empty());
    let path = format!("/requests/{}/revoke", ids[0]);
    let not_his = post(&cloud, &path, &bob_cookie, &[("csrf", bob_csrf.as_str())]).await;
    assert_eq!(not_his.status, 404, "{}", not_his.body);
    let (admin_cookie, _) = sign_in(&cloud, "admin@example.com", &cloud.admin_password).await;
    assert_eq!(
        listed(&get(&cloud, "/requests", &admin_cookie).await.body),
        ids
    );

    let revoked = post(&cloud, &path, &cookie, &[("csrf", csrf.as_str())]).await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    let after = get(&cloud, "/requests", &cookie).await;
    assert!(after.body.contains("status revoked"), "{}", after.body);
    let gone = outsider_reads(&cloud, &token).await;
    assert_eq!(gone.code(), "link_revoked");
}
