//! Shared helpers of the cloud's integration tests: raw HTTP with chosen credentials.

#![allow(dead_code)]

use mftplus_cloud::testing::{TestCloud, TEST_JWT_SECRET};
use serde_json::{json, Value};

#[derive(Clone, Debug)]
pub enum Cred {
    None,
    ApiKey(String),
    Bearer(String),
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

pub async fn call(
    cloud: &TestCloud,
    cred: &Cred,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let client = reqwest::Client::new();
    let mut request = client.request(method.parse().unwrap(), format!("{}{}", cloud.url, path));
    request = match cred {
        Cred::None => request,
        Cred::ApiKey(key) => request.header("X-API-Key", key),
        Cred::Bearer(token) => request.header("Authorization", format!("Bearer {token}")),
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        body,
        headers,
    }
}

pub fn admin(cloud: &TestCloud) -> Cred {
    Cred::ApiKey(cloud.admin_api_key.clone())
}

/// Creates a user with a password and returns a fresh JWT for it.
pub async fn user_with_token(cloud: &TestCloud, email: &str, role: &str) -> (String, Cred) {
    let password = "a sufficiently long password";
    let created = call(
        cloud,
        &admin(cloud),
        "POST",
        "/api/v1/users",
        Some(json!({"email": email, "name": email, "role": role, "password": password})),
    )
    .await;
    assert_eq!(created.status, 201, "create {email}: {:?}", created.body);
    let id = created.body["user"]["id"].as_str().unwrap().to_string();
    (id, login(cloud, email, password).await)
}

pub async fn login(cloud: &TestCloud, email: &str, password: &str) -> Cred {
    let reply = call(
        cloud,
        &Cred::None,
        "POST",
        "/api/v1/auth/login",
        Some(json!({"email": email, "password": password})),
    )
    .await;
    assert_eq!(reply.status, 200, "login {email}: {:?}", reply.body);
    Cred::Bearer(reply.body["access_token"].as_str().unwrap().to_string())
}

/// Exchanges a refresh token (given as the JSON value from a token pair).
pub async fn refresh(cloud: &TestCloud, refresh_token: &Value) -> Reply {
    call(
        cloud,
        &Cred::None,
        "POST",
        "/api/v1/auth/refresh",
        Some(json!({"refresh_token": refresh_token})),
    )
    .await
}

/// Creates an API key with the given credential; returns `(id, key)`.
pub async fn api_key(cloud: &TestCloud, cred: &Cred, role: Option<&str>) -> (String, String) {
    let mut body = json!({"name": "test key"});
    if let Some(role) = role {
        body["role"] = json!(role);
    }
    let reply = call(cloud, cred, "POST", "/api/v1/apikeys", Some(body)).await;
    assert_eq!(reply.status, 201, "create key: {:?}", reply.body);
    (
        reply.body["api_key"]["id"].as_str().unwrap().to_string(),
        reply.body["key"].as_str().unwrap().to_string(),
    )
}

/// A correctly signed token with arbitrary claims, for expiry and audience tests.
pub fn forge_jwt(claims: Value) -> String {
    let kid = {
        let mut material = b"mftplus-hs256-kid:".to_vec();
        material.extend_from_slice(TEST_JWT_SECRET.as_bytes());
        mftplus_crypto::sha256_hex(&material)[..16].to_string()
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid);
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}
