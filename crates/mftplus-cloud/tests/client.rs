//! The typed client (`mftplus_client::Client`) against the real cloud: which header each
//! credential travels in, how API errors are read, how paths and queries are encoded, a typed
//! round trip through every client method, and adopting a renewed access token.

use mftplus_client::{Client, ClientError, Credential};
use mftplus_cloud::testing::TestCloud;
use mftplus_types::api::{
    AuditEntry, CreateApiKeyRequest, CreateTokenRequest, CreateUserRequest, LoginRequest,
    RefreshRequest, UpdateUserRequest, UserType,
};
use mftplus_types::ErrorCode;

const PASSWORD: &str = "a sufficiently long password";

fn admin(cloud: &TestCloud) -> Client {
    Client::new(&cloud.url, Credential::ApiKey(cloud.admin_api_key.clone())).unwrap()
}

/// Asserts an `Api` error with this status and code; returns its message.
#[track_caller]
fn api_error<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
    status: u16,
    code: &str,
) -> String {
    match result {
        Err(ClientError::Api {
            status: s,
            code: c,
            message,
        }) if s == status && c == code => message,
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}

/// Creates a user with a known password through the client.
async fn create_user(admin: &Client, email: &str, role: &str) {
    let created = admin
        .create_user(CreateUserRequest {
            email: email.into(),
            name: email.into(),
            role: Some(role.into()),
            user_type: None,
            password: Some(PASSWORD.into()),
        })
        .await
        .unwrap();
    assert_eq!(created.user.email, email);
    assert_eq!(created.initial_password, None);
}

/// Logs in and returns a client holding the access token, plus the token pair.
async fn login(cloud: &TestCloud, email: &str, password: &str) -> (Client, String, String) {
    let anonymous = Client::new(&cloud.url, Credential::None).unwrap();
    let pair = anonymous
        .login(LoginRequest {
            email: email.into(),
            password: password.into(),
        })
        .await
        .unwrap();
    assert_eq!(pair.token_type, "Bearer");
    let client = anonymous.with_credential(Credential::Bearer(pair.access_token.clone()));
    (client, pair.access_token, pair.refresh_token)
}

#[tokio::test]
async fn each_credential_reaches_the_server_as_itself() {
    let cloud = TestCloud::spawn().await;
    let keyed = admin(&cloud);
    let status = keyed.status().await.unwrap();
    assert_eq!(status.principal.kind, "api_key");
    assert_eq!(status.principal.email, cloud.admin_email);
    assert!(status.principal.api_key_id.is_some());
    assert_eq!(status.principal.token_id, None);

    let (bearer, _, _) = login(&cloud, &cloud.admin_email, &cloud.admin_password).await;
    let status = bearer.status().await.unwrap();
    assert_eq!(status.principal.kind, "user");
    assert_eq!(status.principal.email, cloud.admin_email);
    assert_eq!(status.principal.role, "admin");
    assert!(status.principal.token_id.is_some());
    assert_eq!(status.principal.api_key_id, None);

    let anonymous = keyed.with_credential(Credential::None);
    let message = api_error(anonymous.status().await, 401, "unauthenticated");
    assert!(!message.is_empty());
    // A wrong key is refused the same way a missing one is: as a 401, never as a transport error.
    let wrong = keyed.with_credential(Credential::ApiKey(mftplus_crypto::generate_api_key()));
    assert_eq!(wrong.status().await.unwrap_err().status(), Some(401));
}

#[tokio::test]
async fn api_errors_carry_code_and_message() {
    let cloud = TestCloud::spawn().await;
    let admin = admin(&cloud);
    let readonly_key = admin
        .create_api_key(CreateApiKeyRequest {
            name: "reader".into(),
            role: Some("readonly".into()),
            expires: None,
        })
        .await
        .unwrap();
    assert_eq!(readonly_key.api_key.role, "readonly");
    let reader = admin.with_credential(Credential::ApiKey(readonly_key.key));
    let err = reader
        .create_user(CreateUserRequest {
            email: "new@example.com".into(),
            ..CreateUserRequest::default()
        })
        .await
        .unwrap_err();
    assert!(err.is(ErrorCode::Forbidden), "{err:?}");
    assert_eq!(err.status(), Some(403));
    assert!(err.message().contains("users:manage"), "{err}");
    assert_eq!(
        err.to_string(),
        format!("forbidden: {} (HTTP 403)", err.message())
    );

    let message = api_error(admin.get_user("nobody@example.com").await, 404, "not_found");
    assert!(!message.is_empty());
    let message = api_error(
        admin
            .create_api_key(CreateApiKeyRequest {
                name: "bad".into(),
                role: None,
                expires: Some("90x".into()),
            })
            .await,
        400,
        "invalid_duration",
    );
    assert!(!message.is_empty());
    api_error(admin.server_config("no.such.key").await, 404, "not_found");
    api_error(admin.audit_export("xml").await, 400, "validation_failed");
}

#[tokio::test]
async fn paths_and_queries_are_encoded() {
    let cloud = TestCloud::spawn().await;
    let admin = admin(&cloud);
    // `+` is a space in a query string, `/`, `?`, `#` and `%` end or escape a path segment: each
    // must reach the server as part of the email.
    for email in ["a+b@example.com", "o'neil/x?y#z%41&q=1@example.com"] {
        create_user(&admin, email, "user").await;
        let user = admin.get_user(email).await.unwrap();
        assert_eq!(user.email, email);
        let (session, _, _) = login(&cloud, email, PASSWORD).await;

        let tokens = admin.list_tokens(Some(email)).await.unwrap();
        assert!(!tokens.is_empty());
        assert!(tokens.iter().all(|t| t.user_email == email), "{tokens:?}");
        // The user lists its own tokens through the same query.
        assert_eq!(session.list_tokens(Some(email)).await.unwrap(), tokens);

        let revoked = admin.revoke_user_tokens(email).await.unwrap();
        assert_eq!(revoked.revoked, tokens.len() as u64);
        assert!(admin.list_tokens(Some(email)).await.unwrap().is_empty());
        api_error(session.status().await, 401, "token_revoked");

        let renamed = admin
            .update_user(
                email,
                UpdateUserRequest {
                    name: Some("renamed".into()),
                    ..UpdateUserRequest::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            (renamed.email.as_str(), renamed.name.as_str()),
            (email, "renamed")
        );
        admin.delete_user(email).await.unwrap();
        api_error(admin.get_user(email).await, 404, "not_found");
    }
    // The users that were not deleted are untouched by the ones that were.
    let left: Vec<String> = admin
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert_eq!(left, [cloud.admin_email.as_str()]);
}

#[tokio::test]
async fn public_routes_round_trip() {
    let cloud = TestCloud::spawn().await;
    let anonymous = Client::new(&format!("{}/", cloud.url), Credential::None).unwrap();
    let health = anonymous.health().await.unwrap();
    assert_eq!(health.status, "ok");
    assert_eq!(health.version, mftplus_types::VERSION);
    assert_eq!(health.database, None);

    let health = anonymous.api_health().await.unwrap();
    assert_eq!(health.status, "ok");
    let database = health.database.expect("database health");
    assert_eq!(
        (database.backend.as_str(), database.status.as_str()),
        ("sqlite", "ok")
    );

    // The TestCloud signs with HS256: there is no public key to publish.
    assert!(anonymous.jwks().await.unwrap().keys.is_empty());
}

#[tokio::test]
async fn sessions_and_tokens_round_trip() {
    let cloud = TestCloud::spawn().await;
    let admin = admin(&cloud);
    create_user(&admin, "sam@example.com", "user").await;
    let (session, first_access, refresh_token) = login(&cloud, "sam@example.com", PASSWORD).await;

    // A user sees only its own tokens: the access and refresh token of this login.
    let own = session.list_tokens(None).await.unwrap();
    let mut kinds: Vec<&str> = own.iter().map(|t| t.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["access", "refresh"]);
    assert!(own
        .iter()
        .all(|t| t.created_via == "login" && t.revoked_at.is_none()));

    let anonymous = session.with_credential(Credential::None);
    let pair = anonymous
        .refresh(RefreshRequest {
            refresh_token: refresh_token.clone(),
        })
        .await
        .unwrap();
    assert_ne!(pair.access_token, first_access);
    assert_ne!(pair.refresh_token, refresh_token);
    assert!(pair.expires_in > 0 && pair.refresh_expires_in > pair.expires_in);
    let refreshed = session.with_credential(Credential::Bearer(pair.access_token.clone()));
    assert_eq!(
        refreshed.status().await.unwrap().principal.email,
        "sam@example.com"
    );

    // An admin issues a narrower token for the user, then revokes it by id.
    let created = admin
        .create_token(CreateTokenRequest {
            user: "sam@example.com".into(),
            role: Some("readonly".into()),
            expires: Some("1h".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        (created.info.user_email.as_str(), created.info.role.as_str()),
        ("sam@example.com", "readonly")
    );
    assert_eq!(created.info.created_via, "admin");
    let issued = admin.with_credential(Credential::Bearer(created.token.clone()));
    assert_eq!(issued.status().await.unwrap().principal.role, "readonly");
    let all = admin.list_tokens(None).await.unwrap();
    assert!(all.iter().any(|t| t.token_id == created.info.token_id));
    admin.revoke_token(&created.info.token_id).await.unwrap();
    api_error(issued.status().await, 401, "token_revoked");
    api_error(admin.revoke_token("no-such-token").await, 404, "not_found");

    // Logout ends the refreshed session (204, no body) and its refresh token with it.
    refreshed.logout().await.unwrap();
    api_error(refreshed.status().await, 401, "token_revoked");
    let gone = anonymous
        .refresh(RefreshRequest {
            refresh_token: pair.refresh_token,
        })
        .await;
    assert_eq!(gone.unwrap_err().status(), Some(401));

    // A fresh login, then every token of the user revoked at once.
    let (again, _, _) = login(&cloud, "sam@example.com", PASSWORD).await;
    let live = admin.list_tokens(Some("sam@example.com")).await.unwrap();
    assert!(!live.is_empty());
    let revoked = admin.revoke_user_tokens("sam@example.com").await.unwrap();
    assert_eq!(revoked.revoked, live.len() as u64);
    api_error(again.status().await, 401, "token_revoked");
}

#[tokio::test]
async fn users_round_trip() {
    let cloud = TestCloud::spawn().await;
    let admin = admin(&cloud);
    create_user(&admin, "kim@example.com", "user").await;

    // Without a password the server generates one, returns it once, and it logs in.
    let generated = admin
        .create_user(CreateUserRequest {
            email: "lee@example.com".into(),
            name: "Lee".into(),
            role: Some("operator".into()),
            user_type: None,
            password: None,
        })
        .await
        .unwrap();
    let initial = generated.initial_password.expect("initial password");
    assert!(!initial.is_empty());
    assert_eq!(generated.user.role, "operator");
    assert_eq!(generated.user.user_type, UserType::User);
    let (lee, _, _) = login(&cloud, "lee@example.com", &initial).await;
    assert_eq!(lee.status().await.unwrap().principal.role, "operator");

    // A service account gets no password at all.
    let service = admin
        .create_user(CreateUserRequest {
            email: "robot@example.com".into(),
            name: "Robot".into(),
            role: Some("readonly".into()),
            user_type: Some(UserType::Service),
            password: None,
        })
        .await
        .unwrap();
    assert_eq!(service.initial_password, None);
    assert_eq!(service.user.user_type, UserType::Service);

    let mut emails: Vec<String> = admin
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.email)
        .collect();
    emails.sort();
    assert_eq!(
        emails,
        [
            "admin@example.com",
            "kim@example.com",
            "lee@example.com",
            "robot@example.com"
        ]
    );

    // By id and by email, the same user.
    let by_email = admin.get_user("kim@example.com").await.unwrap();
    assert_eq!(admin.get_user(&by_email.id).await.unwrap(), by_email);
    assert_eq!(by_email.last_login_at, None);

    let updated = admin
        .update_user(
            &by_email.id,
            UpdateUserRequest {
                name: Some("Kim K".into()),
                role: Some("operator".into()),
                password: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (updated.name.as_str(), updated.role.as_str()),
        ("Kim K", "operator")
    );
    assert_eq!(admin.get_user("kim@example.com").await.unwrap(), updated);
    api_error(
        admin
            .update_user("kim@example.com", UpdateUserRequest::default())
            .await,
        400,
        "validation_failed",
    );

    admin.delete_user("kim@example.com").await.unwrap();
    api_error(admin.get_user("kim@example.com").await, 404, "not_found");
    api_error(admin.delete_user("kim@example.com").await, 404, "not_found");
}

#[tokio::test]
async fn api_keys_round_trip() {
    let cloud = TestCloud::spawn().await;
    let admin = admin(&cloud);
    let created = admin
        .create_api_key(CreateApiKeyRequest {
            name: "backup".into(),
            role: Some("operator".into()),
            expires: Some("30d".into()),
        })
        .await
        .unwrap();
    assert!(created.key.starts_with(&created.api_key.prefix));
    assert_eq!(
        (created.api_key.name.as_str(), created.api_key.role.as_str()),
        ("backup", "operator")
    );
    assert_eq!(created.api_key.owner_email, cloud.admin_email);
    assert_eq!(created.api_key.status, "active");
    let id = created.api_key.id.clone();

    let listed = admin.list_api_keys().await.unwrap();
    assert_eq!(listed.len(), 2, "the TestCloud's admin key and this one");
    assert!(listed.iter().any(|k| k.id == id));
    assert_eq!(admin.resolve_api_key(&created.key).await.unwrap().id, id);
    assert_eq!(admin.get_api_key(&id).await.unwrap().name, "backup");

    let backup = admin.with_credential(Credential::ApiKey(created.key.clone()));
    assert_eq!(backup.status().await.unwrap().principal.role, "operator");

    // Rotation: a new secret and id; the old secret is refused at once.
    let rotated = admin.rotate_api_key(&id).await.unwrap();
    assert_ne!(rotated.key, created.key);
    assert_ne!(rotated.api_key.id, id);
    assert_eq!(rotated.api_key.name, "backup");
    assert_eq!(admin.get_api_key(&id).await.unwrap().status, "revoked");
    assert_eq!(
        admin.resolve_api_key(&rotated.key).await.unwrap().id,
        rotated.api_key.id
    );
    let message = api_error(backup.status().await, 401, "token_revoked");
    assert!(message.contains("revoked"), "{message}");
    let fresh = admin.with_credential(Credential::ApiKey(rotated.key.clone()));
    assert_eq!(fresh.status().await.unwrap().principal.role, "operator");
    api_error(admin.rotate_api_key(&id).await, 409, "conflict");

    admin.delete_api_key(&rotated.api_key.id).await.unwrap();
    api_error(fresh.status().await, 401, "token_revoked");
    assert_eq!(
        admin.get_api_key(&rotated.api_key.id).await.unwrap().status,
        "revoked"
    );
    api_error(
        admin.delete_api_key(&rotated.api_key.id).await,
        404,
        "not_found",
    );
    assert_eq!(admin.list_api_keys().await.unwrap().len(), 1);
    api_error(
        admin.resolve_api_key("mftpk_nothing").await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn config_and_audit_round_trip() {
    let cloud = TestCloud::spawn().await;
    let admin = admin(&cloud);
    let rbac = admin.server_config("rbac.enabled").await.unwrap();
    assert_eq!(rbac.key, "rbac.enabled");
    assert_eq!(rbac.value, Some(serde_json::Value::Bool(true)));
    assert!(!rbac.secret);
    let secret = admin.server_config("auth.jwt.secret").await.unwrap();
    assert!(secret.secret);
    assert_eq!(secret.value, None);

    // Some audited events, so the log spans several pages.
    for n in 0..3 {
        create_user(&admin, &format!("audit{n}@example.com"), "user").await;
    }
    let everything = admin.audit_page(0, 1000).await.unwrap();
    assert_eq!(everything.next_after_seq, None);
    assert!(everything.entries.len() >= 4, "{:?}", everything.entries);

    let mut paged: Vec<AuditEntry> = Vec::new();
    let mut after = 0;
    loop {
        let page = admin.audit_page(after, 2).await.unwrap();
        assert!(page.entries.len() <= 2);
        assert!(page.entries.iter().all(|e| e.seq > after));
        paged.extend(page.entries);
        match page.next_after_seq {
            Some(next) => {
                assert_eq!(Some(next), paged.last().map(|e| e.seq));
                after = next;
            }
            None => break,
        }
    }
    assert_eq!(paged, everything.entries);
    let created: Vec<&str> = paged
        .iter()
        .filter(|e| e.event == "user_created")
        .map(|e| e.target.as_str())
        .collect();
    assert_eq!(
        created,
        [
            cloud.admin_email.as_str(),
            "audit0@example.com",
            "audit1@example.com",
            "audit2@example.com"
        ]
    );

    // Exports cover the whole log, including the export itself, which is audited first.
    let json = admin.audit_export("json").await.unwrap();
    let exported: Vec<AuditEntry> = serde_json::from_str(&json).unwrap();
    assert_eq!(exported[..paged.len()], paged[..]);
    assert_eq!(exported.len(), paged.len() + 1);
    assert_eq!(exported.last().unwrap().event, "audit_exported");

    let csv = admin.audit_export("csv").await.unwrap();
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("seq,time,ts_ms,event,actor,target"));
    assert_eq!(lines.count(), exported.len() + 1);
    assert!(csv.contains("audit_exported"));
}

#[tokio::test]
async fn renewed_token_is_adopted_and_the_old_one_expires() {
    let cloud = TestCloud::spawn().await;
    let (client, original, _) = login(&cloud, &cloud.admin_email, &cloud.admin_password).await;
    client.status().await.unwrap();
    assert_eq!(
        client.take_renewed_token(),
        None,
        "fresh tokens are not renewed"
    );

    // 3600 s lifetime, 300 s threshold: at 3400 s the server hands out a new token.
    cloud.clock.advance_secs(3400);
    client.status().await.unwrap();
    let renewed = client.take_renewed_token().expect("renewed token");
    assert_ne!(renewed, original);
    assert_eq!(client.credential(), Credential::Bearer(renewed.clone()));
    assert_eq!(client.take_renewed_token(), None);

    // An API-key client is never renewed, whatever the clock says.
    let keyed = client.with_credential(Credential::ApiKey(cloud.admin_api_key.clone()));
    keyed.status().await.unwrap();
    assert_eq!(keyed.take_renewed_token(), None);

    // 600 s later the original has expired; the client already moved on to the renewed token.
    cloud.clock.advance_secs(600);
    let status = client.status().await.unwrap();
    assert_eq!(status.principal.email, cloud.admin_email);
    assert_eq!(client.take_renewed_token(), None);
    let stale = client.with_credential(Credential::Bearer(original.clone()));
    api_error(stale.status().await, 401, "token_expired");
    let stale = Client::new(&cloud.url, Credential::Bearer(original)).unwrap();
    api_error(stale.status().await, 401, "token_expired");
}
