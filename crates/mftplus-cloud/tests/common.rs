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

/// A request with a raw body and extra headers (chunk uploads).
pub async fn call_raw(
    cloud: &TestCloud,
    cred: &Cred,
    method: &str,
    path: &str,
    body: Vec<u8>,
    headers: &[(String, String)],
) -> Reply {
    let client = reqwest::Client::new();
    let mut request = client
        .request(method.parse().unwrap(), format!("{}{}", cloud.url, path))
        .body(body);
    request = match cred {
        Cred::None => request,
        Cred::ApiKey(key) => request.header("X-API-Key", key),
        Cred::Bearer(token) => request.header("Authorization", format!("Bearer {token}")),
    };
    for (name, value) in headers {
        request = request.header(name, value);
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

/// A stream header for a transfer to a fresh X25519 key, base64, with its chunk size.
pub fn stream_header() -> (String, u64) {
    use base64::Engine;
    use mftplus_crypto::stream::{
        Encryptor, Recipient, StreamOptions, X25519SecretKey, MIN_CHUNK_SIZE,
    };
    let key = X25519SecretKey::generate().unwrap();
    let options = StreamOptions {
        chunk_size: MIN_CHUNK_SIZE,
        ..StreamOptions::default()
    };
    let encryptor = Encryptor::new(&options, &[Recipient::X25519(key.public_key())]).unwrap();
    (
        base64::engine::general_purpose::STANDARD.encode(encryptor.header_bytes()),
        MIN_CHUNK_SIZE as u64,
    )
}

/// Creates a transfer as `sender` to `recipient`; returns its id.
pub async fn new_transfer(cloud: &TestCloud, sender: &Cred, recipient: &str) -> String {
    let (header, chunk_size) = stream_header();
    let reply = call(
        cloud,
        sender,
        "POST",
        "/api/v1/transfers",
        Some(json!({"recipients": [recipient], "header": header, "chunk_size": chunk_size})),
    )
    .await;
    assert_eq!(reply.status, 201, "create transfer: {:?}", reply.body);
    reply.body["id"].as_str().unwrap().to_string()
}

/// Uploads `bytes` as chunk `index` with its SHA-256.
pub async fn put_chunk(
    cloud: &TestCloud,
    sender: &Cred,
    id: &str,
    index: u64,
    bytes: &[u8],
    last: bool,
) -> Reply {
    call_raw(
        cloud,
        sender,
        "PUT",
        &format!("/api/v1/transfers/{id}/chunks/{index}"),
        bytes.to_vec(),
        &chunk_headers(bytes, last),
    )
    .await
}

/// The headers a chunk upload carries: its SHA-256 and whether it is the last.
pub fn chunk_headers(bytes: &[u8], last: bool) -> Vec<(String, String)> {
    vec![
        (
            "x-chunk-sha256".to_string(),
            mftplus_crypto::sha256_hex(bytes),
        ),
        ("x-chunk-last".to_string(), last.to_string()),
    ]
}

/// A transfer with one (opaque) chunk uploaded and completed.
pub async fn complete_transfer(cloud: &TestCloud, sender: &Cred, recipient: &str) -> String {
    complete_transfer_of(cloud, sender, recipient, b"sealed chunk bytes").await
}

/// One byte more than the database keeps in a chunk's row (decision 0037): a chunk this long
/// goes to the payload store.
#[allow(dead_code)]
pub const STORED_CHUNK_LEN: usize = mftplus_store::MAX_INLINE_CHUNK + 1;

/// A complete one-chunk transfer whose chunk is `chunk`.
pub async fn complete_transfer_of(
    cloud: &TestCloud,
    sender: &Cred,
    recipient: &str,
    chunk: &[u8],
) -> String {
    let id = new_transfer(cloud, sender, recipient).await;
    assert_eq!(
        put_chunk(cloud, sender, &id, 0, chunk, true).await.status,
        201
    );
    complete_upload(cloud, sender, &id).await;
    id
}

/// Completes transfer `id`, whose chunks are stored, with a stand-in sealed manifest.
pub async fn complete_upload(cloud: &TestCloud, sender: &Cred, id: &str) {
    let done = call(
        cloud,
        sender,
        "POST",
        &format!("/api/v1/transfers/{id}/complete"),
        Some(json!({"manifest": "c2VhbGVkIG1hbmlmZXN0"})),
    )
    .await;
    assert_eq!(done.status, 200, "complete: {:?}", done.body);
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

/// A fresh X25519 key pair registered as `who`'s transfer key; its secret half.
pub async fn register_user_key(
    cloud: &TestCloud,
    who: &Cred,
) -> mftplus_crypto::stream::X25519SecretKey {
    let key = mftplus_crypto::stream::X25519SecretKey::generate().unwrap();
    let put = call(
        cloud,
        who,
        "PUT",
        "/api/v1/users/me/key",
        Some(json!({"public_key": key.public_key().to_encoded()})),
    )
    .await;
    assert_eq!(put.status, 200, "register key: {:?}", put.body);
    key
}

/// A transfer waiting for a grant (decision 0022), with what a sender's client would hold.
pub struct Waiting {
    pub id: String,
    pub recipient_id: String,
    pub sender_key: mftplus_crypto::stream::X25519SecretKey,
    pub recipient_key: mftplus_crypto::stream::X25519SecretKey,
    /// The header as created: encrypted to the sender alone.
    pub base: Vec<u8>,
    /// A valid grant of the recipient's key, as `POST /transfers/{id}/grants` takes it.
    pub grant: Value,
}

/// `sender` sends to `recipient_email` before the recipient has a key (the header holds only
/// the sender's stanza); then the recipient (`recipient`) registers a fresh key.
pub async fn waiting_transfer(
    cloud: &TestCloud,
    sender: &Cred,
    recipient: &Cred,
    recipient_email: &str,
) -> Waiting {
    use base64::Engine;
    use mftplus_crypto::stream::{
        add_x25519_recipients, Encryptor, Identity, Recipient, StreamOptions, X25519SecretKey,
        MIN_CHUNK_SIZE,
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let sender_key = X25519SecretKey::generate().unwrap();
    let options = StreamOptions {
        chunk_size: MIN_CHUNK_SIZE,
        ..StreamOptions::default()
    };
    let base = Encryptor::new(&options, &[Recipient::X25519(sender_key.public_key())])
        .unwrap()
        .header_bytes()
        .to_vec();
    let created = call(
        cloud,
        sender,
        "POST",
        "/api/v1/transfers",
        Some(json!({
            "recipients": [recipient_email], "header": b64.encode(&base),
            "chunk_size": MIN_CHUNK_SIZE, "awaiting_grant": [recipient_email],
        })),
    )
    .await;
    assert_eq!(created.status, 201, "create: {:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let recipient_id = created.body["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["display"] == recipient_email)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let recipient_key = register_user_key(cloud, recipient).await;
    let header = add_x25519_recipients(
        &base,
        &[Identity::X25519(&sender_key)],
        &[recipient_key.public_key()],
    )
    .unwrap();
    let grant = json!({
        "recipients": [recipient_id], "header": b64.encode(&header),
        "base_header_sha256": mftplus_crypto::sha256_hex(&base),
    });
    Waiting {
        id,
        recipient_id,
        sender_key,
        recipient_key,
        base,
        grant,
    }
}

/// A whole stream cut into what the API takes: the header, the sealed chunks, the sealed
/// manifest.
pub struct Sealed {
    pub header: Vec<u8>,
    pub chunks: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
}

/// `data` encrypted to `recipients` as a file `name`, in 64 KiB chunks, cut into its parts.
pub fn seal_stream(
    data: &[u8],
    recipients: &[mftplus_crypto::stream::Recipient<'_>],
    name: &str,
) -> Sealed {
    use mftplus_crypto::stream::{
        encrypt_reader_to_writer, ManifestInfo, StreamOptions, MIN_CHUNK_SIZE,
    };
    let options = StreamOptions {
        chunk_size: MIN_CHUNK_SIZE,
        ..StreamOptions::default()
    };
    let mut stream = Vec::new();
    let info = ManifestInfo {
        name: name.into(),
        mode: None,
    };
    encrypt_reader_to_writer(&mut &data[..], &mut stream, &options, recipients, info).unwrap();
    split_stream(&stream)
}

/// Cuts `stream` (as `encrypt_reader_to_writer` writes it) into its parts.
pub fn split_stream(stream: &[u8]) -> Sealed {
    use mftplus_crypto::stream::{read_frame, Frame, Header};
    let (_, used) = Header::parse(stream).unwrap();
    let mut rest = &stream[used..];
    let mut chunks = Vec::new();
    loop {
        match read_frame(&mut rest).unwrap() {
            Frame::Chunk { len, .. } => {
                chunks.push(rest[..len].to_vec());
                rest = &rest[len..];
            }
            Frame::Manifest { len } => {
                return Sealed {
                    header: stream[..used].to_vec(),
                    chunks,
                    manifest: rest[..len].to_vec(),
                };
            }
        }
    }
}
