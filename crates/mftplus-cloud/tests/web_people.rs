//! The dashboard's people pages over HTTP: users (create with a password shown once, role
//! change, password reset, delete, revoke every token), API keys (create and rotate with the
//! secret shown once, revoke, nobody else's), and the signed-in person's sessions (ending one
//! ends it; ending this one signs out). Who may do what, CSRF, escaping, bad input as coded
//! error pages, and that no secret reaches a later page or the audit log.

mod common;
mod web_support;

use common::*;
use mftplus_cloud::testing::TestCloud;
use serde_json::json;
use web_support::*;

/// The text of the element with `id` (a secret shown once).
fn text_of(body: &str, id: &str) -> String {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {body}"));
    let start = at + body[at..].find('>').unwrap() + 1;
    body[start..].split('<').next().unwrap().trim().to_string()
}

/// A new user of `role` signed in on the dashboard: (id, cookie, csrf).
async fn person(cloud: &TestCloud, email: &str, role: &str) -> (String, String, String) {
    let (id, _) = user_with_token(cloud, email, role).await;
    let (cookie, csrf) = sign_in(cloud, email, PASSWORD).await;
    (id, cookie, csrf)
}

async fn admin_session(cloud: &TestCloud) -> (String, String) {
    sign_in(cloud, &cloud.admin_email, &cloud.admin_password).await
}

async fn audit_text(cloud: &TestCloud) -> String {
    let path = "/api/v1/audit?limit=1000";
    call(cloud, &admin(cloud), "GET", path, None)
        .await
        .body
        .to_string()
}

async fn user_id_of(cloud: &TestCloud, email: &str) -> String {
    let store = &cloud.state.store;
    store.get_user_by_email(email).await.unwrap().unwrap().id
}

#[tokio::test]
async fn an_admin_adds_a_user_whose_password_is_shown_once() {
    let cloud = TestCloud::spawn().await;
    let (cookie, csrf) = admin_session(&cloud).await;
    let users = get(&cloud, "/users", &cookie).await;
    assert_eq!(users.status, 200);
    assert!(users.body.contains("action=\"/users\"") && users.body.contains("scope=\"col\""));
    for role in ["admin", "operator", "user", "readonly"] {
        assert!(users.body.contains(&format!("<option value=\"{role}\"")));
    }

    let form = [
        ("csrf", csrf.as_str()),
        ("email", "Dora@Example.com"),
        ("name", "Dora <script>alert(1)</script>"),
        ("role", "operator"),
        ("kind", "person"),
    ];
    let made = post(&cloud, "/users", &cookie, &form).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let password = text_of(&made.body, "new-password");
    assert_eq!(password.len(), 20, "a generated password: {password}");
    assert!(made.body.contains("data-copy=\"new-password\""));

    // The password works, for the API and the dashboard alike.
    let api = call(
        &cloud,
        &Cred::None,
        "POST",
        "/api/v1/auth/login",
        Some(json!({"email": "dora@example.com", "password": password})),
    )
    .await;
    assert_eq!(api.status, 200, "{:?}", api.body);
    sign_in(&cloud, "dora@example.com", &password).await;

    // …and is never shown again: not on the list, not on the account's page, not audited.
    let id = user_id_of(&cloud, "dora@example.com").await;
    for path in ["/users".to_string(), format!("/users/{id}")] {
        let page = get(&cloud, &path, &cookie).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("dora@example.com"), "{path}");
        assert!(!page.body.contains(&password), "{path} shows the password");
        assert!(
            !page.body.contains("<script>alert") && page.body.contains("&lt;script&gt;"),
            "{path} escapes the name"
        );
    }
    let audit = audit_text(&cloud).await;
    assert!(audit.contains("user_created") && audit.contains("dora@example.com"));
    assert!(
        !audit.contains(&password),
        "the password reaches the audit log"
    );

    // A service account has no password to show.
    let form = [
        ("csrf", csrf.as_str()),
        ("email", "backup-service@example.com"),
        ("role", "readonly"),
        ("kind", "service"),
    ];
    let service = post(&cloud, "/users", &cookie, &form).await;
    assert_eq!(service.status, 200);
    assert!(!service.body.contains("new-password"));
    assert!(service.body.contains("create an API key"));
}

#[tokio::test]
async fn bad_input_is_a_page_with_its_code() {
    let cloud = TestCloud::spawn().await;
    let (cookie, csrf) = admin_session(&cloud).await;
    let bad_email = [
        ("csrf", csrf.as_str()),
        ("email", "not an address"),
        ("role", "user"),
    ];
    let page = post(&cloud, "/users", &cookie, &bad_email).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("invalid_email"), "{}", page.body);
    let bad_role = [
        ("csrf", csrf.as_str()),
        ("email", "x@example.com"),
        ("role", "ghost"),
    ];
    let page = post(&cloud, "/users", &cookie, &bad_role).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("invalid_role"));

    let (id, _, _) = person(&cloud, "erin@example.com", "user").await;
    // Deleting needs the box ticked.
    let page = post(
        &cloud,
        &format!("/users/{id}/delete"),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("validation_failed") && page.body.contains("tick the box"));
    assert!(cloud.state.store.get_user(&id).await.unwrap().is_some());
    let weak = [("csrf", csrf.as_str()), ("password", "short")];
    let page = post(&cloud, &format!("/users/{id}/password"), &cookie, &weak).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("weak_password"), "{}", page.body);
    let page = get(&cloud, "/users/no-such-user", &cookie).await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("not_found"));
    let long = [("csrf", csrf.as_str()), ("name", "k"), ("expires", "1000d")];
    let page = post(&cloud, "/keys", &cookie, &long).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("invalid_duration"), "{}", page.body);
    let page = get(&cloud, "/keys?before_ms=soon&before_id=x", &cookie).await;
    assert_eq!(page.status, 400);
    // A stale or forged form changes nothing.
    let stale = [("csrf", "0123456789abcdef0123456789abcdef"), ("name", "k")];
    assert_eq!(post(&cloud, "/keys", &cookie, &stale).await.status, 403);
    let stale = [
        ("csrf", "0123456789abcdef0123456789abcdef"),
        ("confirm", "yes"),
    ];
    let page = post(&cloud, &format!("/users/{id}/delete"), &cookie, &stale).await;
    assert_eq!(page.status, 403);
    assert!(cloud.state.store.get_user(&id).await.unwrap().is_some());
    let keys = cloud.state.store.list_api_keys(None).await.unwrap();
    assert_eq!(keys.len(), 1, "only the test cloud's own admin key");
}

#[tokio::test]
async fn a_role_change_takes_effect_and_a_delete_ends_everything() {
    let cloud = TestCloud::spawn().await;
    let (cookie, csrf) = admin_session(&cloud).await;
    let (id, token) = user_with_token(&cloud, "fay@example.com", "operator").await;
    assert_eq!(
        call(&cloud, &token, "GET", "/api/v1/users", None)
            .await
            .status,
        200
    );

    let page = get(&cloud, &format!("/users/{id}"), &cookie).await;
    assert!(page.body.contains("<option value=\"operator\" selected"));
    let form = [("csrf", csrf.as_str()), ("role", "readonly")];
    let changed = post(&cloud, &format!("/users/{id}/role"), &cookie, &form).await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(changed.location, Some(format!("/users/{id}")));
    // The same token now acts as readonly: no more users:read.
    assert_eq!(
        call(&cloud, &token, "GET", "/api/v1/users", None)
            .await
            .status,
        403
    );
    let page = get(&cloud, &format!("/users/{id}"), &cookie).await;
    assert!(page.body.contains("<option value=\"readonly\" selected"));
    assert!(audit_text(&cloud).await.contains("role_changed"));

    // Delete: the box is required, then the account and its credentials are gone.
    let form = [("csrf", csrf.as_str()), ("confirm", "yes")];
    let deleted = post(&cloud, &format!("/users/{id}/delete"), &cookie, &form).await;
    assert_eq!(deleted.status, 303);
    assert_eq!(deleted.location.as_deref(), Some("/users"));
    assert_eq!(
        call(&cloud, &token, "GET", "/api/v1/auth/whoami", None)
            .await
            .status,
        401
    );
    assert!(!get(&cloud, "/users", &cookie)
        .await
        .body
        .contains("fay@example.com"));
    assert!(audit_text(&cloud).await.contains("user_deleted"));
    // Nobody deletes their own account.
    let me = user_id_of(&cloud, &cloud.admin_email).await;
    let page = get(&cloud, &format!("/users/{me}"), &cookie).await;
    assert!(
        !page.body.contains("/delete\""),
        "no delete form for oneself"
    );
    let own = post(&cloud, &format!("/users/{me}/delete"), &cookie, &form).await;
    assert_eq!(own.status, 409);
}

#[tokio::test]
async fn a_password_reset_and_revoking_tokens_end_the_users_sessions() {
    let cloud = TestCloud::spawn().await;
    let (cookie, csrf) = admin_session(&cloud).await;
    let (id, their_cookie, _) = person(&cloud, "gil@example.com", "user").await;
    let reset = post(
        &cloud,
        &format!("/users/{id}/password"),
        &cookie,
        &[("csrf", &csrf), ("password", "")],
    )
    .await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let password = text_of(&reset.body, "new-password");
    assert_eq!(get(&cloud, "/sessions", &their_cookie).await.status, 303);
    assert!(!get(&cloud, &format!("/users/{id}"), &cookie)
        .await
        .body
        .contains(&password));
    let audit = audit_text(&cloud).await;
    assert!(audit.contains("password_reset") && !audit.contains(&password));

    // Set by the administrator this time, and nothing is shown.
    let (their_cookie, _) = sign_in(&cloud, "gil@example.com", &password).await;
    let chosen = "another sufficiently long password";
    let form = [("csrf", csrf.as_str()), ("password", chosen)];
    let set = post(&cloud, &format!("/users/{id}/password"), &cookie, &form).await;
    assert_eq!(set.status, 200);
    assert!(!set.body.contains(chosen) && !set.body.contains("new-password"));
    assert_eq!(get(&cloud, "/sessions", &their_cookie).await.status, 303);

    let (their_cookie, _) = sign_in(&cloud, "gil@example.com", chosen).await;
    let api = login(&cloud, "gil@example.com", chosen).await;
    let revoke = format!("/users/{id}/tokens/revoke");
    let revoked = post(&cloud, &revoke, &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(revoked.status, 303);
    assert_eq!(get(&cloud, "/sessions", &their_cookie).await.status, 303);
    assert_eq!(
        call(&cloud, &api, "GET", "/api/v1/auth/whoami", None)
            .await
            .status,
        401
    );
    assert!(audit_text(&cloud).await.contains("tokens_revoked_all"));
    // The administrator's own session is untouched.
    assert_eq!(get(&cloud, "/users", &cookie).await.status, 200);
}

#[tokio::test]
async fn a_user_makes_an_api_key_that_is_shown_once() {
    let cloud = TestCloud::spawn().await;
    let (_, cookie, csrf) = person(&cloud, "hal@example.com", "user").await;
    let empty = get(&cloud, "/keys", &cookie).await;
    assert_eq!(empty.status, 200);
    assert!(empty.body.contains("No API key yet"));
    assert!(
        empty.body.contains("href=\"/keys\""),
        "the nav links the page"
    );
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "Backup <b>job</b>"),
        ("role", "user"),
        ("expires", "30d"),
    ];
    let made = post(&cloud, "/keys", &cookie, &form).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let key = text_of(&made.body, "new-key");
    assert!(key.starts_with("mftpk_"), "{key}");
    assert!(made.body.contains("data-copy=\"new-key\""));
    let who = call(
        &cloud,
        &Cred::ApiKey(key.clone()),
        "GET",
        "/api/v1/auth/whoami",
        None,
    )
    .await;
    assert_eq!(who.status, 200, "{:?}", who.body);

    let listed = get(&cloud, "/keys", &cookie).await;
    assert!(!listed.body.contains(&key), "the key is shown once");
    assert!(listed.body.contains(&key[..12]), "its prefix is listed");
    assert!(listed.body.contains("Backup &lt;b&gt;job&lt;/b&gt;"));
    assert!(listed.body.contains("in 29 d") || listed.body.contains("in 30 d"));
    let audit = audit_text(&cloud).await;
    assert!(audit.contains("apikey_created") && !audit.contains(&key));
}

#[tokio::test]
async fn a_rotated_key_is_shown_once_and_a_revoked_one_fails() {
    let cloud = TestCloud::spawn().await;
    let (_, cookie, csrf) = person(&cloud, "hal@example.com", "user").await;
    let form = [("csrf", csrf.as_str()), ("name", "backup")];
    let made = post(&cloud, "/keys", &cookie, &form).await;
    let key = text_of(&made.body, "new-key");

    // Rotate: a new secret once, the old one refused.
    let id = call(
        &cloud,
        &Cred::ApiKey(key.clone()),
        "GET",
        "/api/v1/apikeys",
        None,
    )
    .await
    .body[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rotated = post(
        &cloud,
        &format!("/keys/{id}/rotate"),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_key = text_of(&rotated.body, "new-key");
    assert_ne!(new_key, key);
    let old = call(
        &cloud,
        &Cred::ApiKey(key),
        "GET",
        "/api/v1/auth/whoami",
        None,
    )
    .await;
    assert_eq!(old.status, 401);
    let new = Cred::ApiKey(new_key.clone());
    assert_eq!(
        call(&cloud, &new, "GET", "/api/v1/auth/whoami", None)
            .await
            .status,
        200
    );
    assert!(!get(&cloud, "/keys", &cookie).await.body.contains(&new_key));

    // Revoke: the key fails at once.
    let new_id = call(&cloud, &new, "GET", "/api/v1/apikeys", None)
        .await
        .body[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let revoked = post(
        &cloud,
        &format!("/keys/{new_id}/revoke"),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(revoked.status, 303);
    assert_eq!(revoked.location.as_deref(), Some("/keys"));
    assert_eq!(
        call(&cloud, &new, "GET", "/api/v1/auth/whoami", None)
            .await
            .status,
        401
    );
    let audit = audit_text(&cloud).await;
    assert!(audit.contains("apikey_rotated") && audit.contains("apikey_deleted"));
    assert!(!audit.contains(&new_key));
    let all = get(&cloud, "/keys?revoked=1", &cookie).await;
    assert_eq!(all.body.matches("data-status=\"revoked\"").count(), 2);
}

#[tokio::test]
async fn nobody_sees_or_touches_anothers_keys() {
    let cloud = TestCloud::spawn().await;
    let (_, ivy_token) = user_with_token(&cloud, "ivy@example.com", "user").await;
    let (ivy_key_id, ivy_key) = api_key(&cloud, &ivy_token, None).await;
    let (_, cookie, csrf) = person(&cloud, "jon@example.com", "user").await;
    let page = get(&cloud, "/keys", &cookie).await;
    assert!(!page.body.contains(&ivy_key_id) && !page.body.contains(&ivy_key[..12]));
    assert!(!page.body.contains("ivy@example.com"));
    for action in ["revoke", "rotate"] {
        let path = format!("/keys/{ivy_key_id}/{action}");
        let refused = post(&cloud, &path, &cookie, &[("csrf", &csrf)]).await;
        assert_eq!(refused.status, 404, "{action}: {}", refused.body);
    }
    let ivy = Cred::ApiKey(ivy_key.clone());
    assert_eq!(
        call(&cloud, &ivy, "GET", "/api/v1/auth/whoami", None)
            .await
            .status,
        200
    );

    // An administrator manages everyone's, with their owners shown.
    let (admin_cookie, admin_csrf) = admin_session(&cloud).await;
    let page = get(&cloud, "/keys", &admin_cookie).await;
    assert!(page.body.contains(&ivy_key_id) && page.body.contains("ivy@example.com"));
    let path = format!("/keys/{ivy_key_id}/revoke");
    let revoked = post(&cloud, &path, &admin_cookie, &[("csrf", &admin_csrf)]).await;
    assert_eq!(revoked.status, 303);
    assert_eq!(
        call(&cloud, &ivy, "GET", "/api/v1/auth/whoami", None)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn readonly_and_operators_get_no_write_controls_and_forged_posts_are_refused() {
    let cloud = TestCloud::spawn().await;
    let (target, _) = user_with_token(&cloud, "kim@example.com", "user").await;
    let (_, ro_cookie, ro_csrf) = person(&cloud, "ro@example.com", "readonly").await;
    let sessions = get(&cloud, "/sessions", &ro_cookie).await;
    assert!(
        !sessions.body.contains("href=\"/users\"") && !sessions.body.contains("href=\"/keys\"")
    );
    assert!(
        !sessions.body.contains("sign-out-everywhere"),
        "readonly has no tokens:manage:own"
    );
    assert!(
        sessions.body.contains("href=\"/sessions\""),
        "the link beside Sign out"
    );
    assert_eq!(get(&cloud, "/users", &ro_cookie).await.status, 403);
    assert_eq!(get(&cloud, "/keys", &ro_cookie).await.status, 403);
    let forged: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/users".into(),
            vec![("email", "evil@example.com"), ("role", "admin")],
        ),
        (format!("/users/{target}/role"), vec![("role", "admin")]),
        (format!("/users/{target}/password"), vec![]),
        (format!("/users/{target}/delete"), vec![("confirm", "yes")]),
        (format!("/users/{target}/tokens/revoke"), vec![]),
        ("/keys".into(), vec![("name", "mine")]),
    ];
    for (path, mut form) in forged {
        form.push(("csrf", &ro_csrf));
        let page = post(&cloud, &path, &ro_cookie, &form).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
        assert!(page.body.contains("forbidden"));
    }
    assert!(cloud.state.store.get_user(&target).await.unwrap().is_some());

    // An operator reads users but has no form to change them, and the server agrees.
    let (_, op_cookie, op_csrf) = person(&cloud, "op@example.com", "operator").await;
    let list = get(&cloud, "/users", &op_cookie).await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("kim@example.com") && !list.body.contains("action=\"/users\""));
    let one = get(&cloud, &format!("/users/{target}"), &op_cookie).await;
    assert_eq!(one.status, 200);
    for form in ["/role\"", "/password\"", "/delete\"", "/tokens/revoke\""] {
        assert!(!one.body.contains(form), "{form} offered to an operator");
    }
    let path = format!("/users/{target}/role");
    let page = post(
        &cloud,
        &path,
        &op_cookie,
        &[("csrf", &op_csrf), ("role", "admin")],
    )
    .await;
    assert_eq!(page.status, 403);
    // A user sees their own account only.
    let (mine, user_cookie, _) = person(&cloud, "lou@example.com", "user").await;
    assert_eq!(
        get(&cloud, &format!("/users/{mine}"), &user_cookie)
            .await
            .status,
        200
    );
    assert_eq!(
        get(&cloud, &format!("/users/{target}"), &user_cookie)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn ending_a_session_or_a_login_ends_it() {
    let cloud = TestCloud::spawn().await;
    let (_, first, csrf) = person(&cloud, "max@example.com", "user").await;
    let (second, _) = sign_in(&cloud, "max@example.com", PASSWORD).await;
    let pair = call(
        &cloud,
        &Cred::None,
        "POST",
        "/api/v1/auth/login",
        Some(json!({"email": "max@example.com", "password": PASSWORD})),
    )
    .await;
    let page = get(&cloud, "/sessions", &first).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches("<td>Dashboard session").count(), 2);
    // The API login of the helper and this one: each a refresh token not yet used.
    assert_eq!(
        page.body.matches("<td>mftctl login").count(),
        2,
        "{}",
        page.body
    );
    assert_eq!(page.body.matches("(this session)").count(), 1);

    // End the second session from the first: its cookie stops working.
    let rows = session_ids(&page.body);
    let second_id = session_row_of(&cloud, &second).await;
    assert!(rows.contains(&second_id));
    let ended = post(
        &cloud,
        &format!("/sessions/{second_id}/revoke"),
        &first,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(ended.status, 303);
    assert_eq!(ended.location.as_deref(), Some("/sessions"));
    assert_eq!(get(&cloud, "/sessions", &second).await.status, 303);
    assert!(audit_text(&cloud).await.contains("token_revoked"));

    // End the API login: its refresh token no longer refreshes, its access token is refused.
    let access = Cred::Bearer(pair.body["access_token"].as_str().unwrap().to_string());
    let jti = jti_of(pair.body["refresh_token"].as_str().unwrap());
    let ended = post(
        &cloud,
        &format!("/sessions/{jti}/revoke"),
        &first,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(ended.status, 303);
    assert_eq!(
        refresh(&cloud, &pair.body["refresh_token"]).await.status,
        401
    );
    assert_eq!(
        call(&cloud, &access, "GET", "/api/v1/auth/whoami", None)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn nobody_ends_anothers_session_and_ending_this_one_signs_out() {
    let cloud = TestCloud::spawn().await;
    let (_, first, csrf) = person(&cloud, "max@example.com", "user").await;
    let (_, other, _) = person(&cloud, "ned@example.com", "user").await;
    let theirs = session_row_of(&cloud, &other).await;
    let refused = post(
        &cloud,
        &format!("/sessions/{theirs}/revoke"),
        &first,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(refused.status, 404);
    assert_eq!(get(&cloud, "/sessions", &other).await.status, 200);
    let mine = session_row_of(&cloud, &first).await;
    let out = post(
        &cloud,
        &format!("/sessions/{mine}/revoke"),
        &first,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/login"));
    assert!(out.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(get(&cloud, "/sessions", &first).await.status, 303);
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session() {
    let cloud = TestCloud::spawn().await;
    let (me, first, csrf) = person(&cloud, "ola@example.com", "user").await;
    let (second, _) = sign_in(&cloud, "ola@example.com", PASSWORD).await;
    let page = get(&cloud, "/sessions", &first).await;
    assert!(page
        .body
        .contains(&format!("action=\"/users/{me}/tokens/revoke\"")));
    let out = post(
        &cloud,
        &format!("/users/{me}/tokens/revoke"),
        &first,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/login"));
    for cookie in [&first, &second] {
        assert_eq!(get(&cloud, "/sessions", cookie).await.status, 303);
    }
}

#[tokio::test]
async fn long_lists_come_in_pages() {
    let cloud = TestCloud::spawn().await;
    for n in 0..55 {
        let body = json!({"email": format!("svc-{n:02}@example.com"), "type": "service", "role": "readonly"});
        let made = call(&cloud, &admin(&cloud), "POST", "/api/v1/users", Some(body)).await;
        assert_eq!(made.status, 201);
    }
    let (cookie, _) = admin_session(&cloud).await;
    let first = get(&cloud, "/users", &cookie).await;
    assert_eq!(first.body.matches("<tr data-user=").count(), 50);
    let at = first
        .body
        .find("rel=\"next\" href=\"")
        .expect("a next page")
        + 17;
    let next = first.body[at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let second = get(&cloud, &next, &cookie).await;
    assert_eq!(second.status, 200);
    let rows = second.body.matches("<tr data-user=").count();
    assert_eq!(rows, 56 - 50, "the admin and 55 service accounts");
    assert!(!second.body.contains("rel=\"next\""));
    assert!(second.body.contains("svc-54@example.com") && !second.body.contains("svc-00@"));

    for _ in 0..52 {
        api_key(&cloud, &admin(&cloud), Some("readonly")).await;
    }
    let first = get(&cloud, "/keys", &cookie).await;
    assert_eq!(first.body.matches("<tr data-key=").count(), 50);
    let at = first
        .body
        .find("rel=\"next\" href=\"")
        .expect("a next page")
        + 17;
    let next = first.body[at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let second = get(&cloud, &next, &cookie).await;
    // 52 keys and the test cloud's own admin key.
    assert_eq!(second.body.matches("<tr data-key=").count(), 3, "{next}");
}

fn session_ids(body: &str) -> Vec<String> {
    body.split("data-session=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

/// The `auth_tokens` row of a session cookie: the one its own sessions page marks as in use.
async fn session_row_of(cloud: &TestCloud, cookie: &str) -> String {
    let page = get(cloud, "/sessions", cookie).await;
    let at = page.body.find("(this session)").expect("a live session");
    let row = page.body[..at].rfind("data-session=\"").unwrap() + 14;
    page.body[row..].split('"').next().unwrap().to_string()
}

/// The `jti` claim of a JWT (its row id), read without checking the signature.
fn jti_of(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    claims["jti"].as_str().unwrap().to_string()
}
