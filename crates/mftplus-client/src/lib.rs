//! Typed async HTTP client for the MFTPlus API: one method per route of `/api/v1` (plus the
//! public `/health` and JWKS), returning the wire types of `mftplus-types`.
//!
//! Used by `mftctl`, by the agent ([`AgentClient`], keyed by a host or guest key), by the edge
//! hub ([`HubClient`], keyed by a deploy key), and by integration tests that drive a real
//! server.
//!
//! This crate is not a CLI and holds no state on disk: it does not read config files, store
//! tokens or refresh them by itself. It reports what it learns (a renewed access token, the
//! server's error code) and leaves persistence and retry policy to the caller. It never depends on
//! a server crate.

mod api;
mod certificates;
mod error;
mod fleet;
mod hubs;
mod links;
mod requests;
#[cfg(feature = "testing")]
pub mod testing;
mod transfers;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;

pub use error::ClientError;
pub use fleet::{AgentClient, ConfigFormat, EventQuery, GuestQuery, OpQuery};
pub use hubs::HubClient;
pub use reqwest::header::HeaderMap;
pub use reqwest::Method;

/// Header an edge hub sets (value `queued`) on a 202 it gave from its offline queue.
pub const HUB_OFFLINE_HEADER: &str = "x-hub-offline";

/// How the server took a write that an edge hub may queue while the cloud is unreachable
/// (op verdicts, transfer `received` and `cancel`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted<T> {
    /// The cloud applied it; its answer.
    Applied(T),
    /// An edge hub queued it; the cloud applies it once when the link is back. The cloud's
    /// answer (and any refusal) is not known to the caller.
    Queued,
}

impl<T> Accepted<T> {
    /// The cloud's answer, if it was applied already.
    pub fn applied(self) -> Option<T> {
        match self {
            Accepted::Applied(value) => Some(value),
            Accepted::Queued => None,
        }
    }
}

/// Header carrying an API key.
pub const API_KEY_HEADER: &str = "x-api-key";
/// Header in which the server hands out a fresh access token when the one used is close to expiry.
pub const RENEWED_TOKEN_HEADER: &str = "x-mftplus-renewed-token";
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How requests authenticate. The `Debug` form never shows the secret, so a credential can sit
/// in structs that get logged.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credential {
    #[default]
    None,
    /// Sent as `X-API-Key`.
    ApiKey(String),
    /// A JWT access token, sent as `Authorization: Bearer`.
    Bearer(String),
}

impl Credential {
    /// `none`, `api_key` or `bearer`, for messages that must not contain the secret itself.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::None => "none",
            Credential::ApiKey(_) => "api_key",
            Credential::Bearer(_) => "bearer",
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::None => f.write_str("Credential::None"),
            Credential::ApiKey(_) => f.write_str("Credential::ApiKey(<redacted>)"),
            Credential::Bearer(_) => f.write_str("Credential::Bearer(<redacted>)"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Whole-request limit, connect included.
    pub request_timeout: Duration,
    pub user_agent: String,
    /// PEM CA certificates trusted besides the public roots: a private CA that signed the
    /// server's certificate (the cloud's own CA, or an operator's).
    pub extra_roots_pem: Option<Vec<u8>>,
    /// PEM client certificate chain followed by its private key, presented for mutual TLS.
    pub identity_pem: Option<TlsIdentity>,
}

/// A client certificate and key in PEM; `Debug` never shows the key.
#[derive(Clone)]
pub struct TlsIdentity(pub Vec<u8>);

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsIdentity(<redacted>)")
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            user_agent: format!("mftctl/{}", mftplus_types::VERSION),
            extra_roots_pem: None,
            identity_pem: None,
        }
    }
}

/// A connection pool to one server with one credential. Cloning is cheap and clones share the
/// pool, the credential and the renewed-token slot.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Scheme, authority and optional path prefix, without a trailing slash.
    base: String,
    timeout_secs: u64,
    credential: Arc<Mutex<Credential>>,
    renewed: Arc<Mutex<Option<String>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("credential", &self.credential())
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(base_url: &str, credential: Credential) -> Result<Client, ClientError> {
        Client::with_options(base_url, credential, ClientOptions::default())
    }

    pub fn with_options(
        base_url: &str,
        credential: Credential,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let base = normalize_base(base_url)?;
        // The workspace's one TLS client config (`mftplus_pki`): TLS 1.3 only, so a downgrade
        // is never even offered; the public roots plus the operator's CAs; the client
        // certificate when there is one.
        let tls_error =
            |e: mftplus_pki::TlsError| ClientError::Transport(format!("cannot use {e}"));
        let extra = options
            .extra_roots_pem
            .as_deref()
            .map(|pem| mftplus_pki::TrustStore::from_pem(pem, "the CA certificates"))
            .transpose()
            .map_err(tls_error)?;
        let tls = match &options.identity_pem {
            Some(identity) => {
                let presented = Arc::new(mftplus_pki::ClientIdentity::default());
                let pem = String::from_utf8_lossy(&identity.0);
                presented.set_pem(&pem, &pem).map_err(tls_error)?;
                mftplus_pki::client_config_with_identity(extra.as_ref(), presented)
            }
            None => mftplus_pki::client_config(extra.as_ref()),
        }
        .map_err(tls_error)?;
        let builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(options.request_timeout)
            .user_agent(options.user_agent)
            .use_preconfigured_tls((*tls).clone())
            // A redirect would carry X-API-Key to wherever it points (reqwest strips only
            // Authorization on a cross-origin hop); the API never redirects, so refuse to follow.
            .redirect(reqwest::redirect::Policy::none());
        let http = builder
            .build()
            .map_err(|e| ClientError::Transport(format!("cannot build HTTP client: {e}")))?;
        Ok(Client {
            http,
            base,
            timeout_secs: options.request_timeout.as_secs(),
            credential: Arc::new(Mutex::new(credential)),
            renewed: Arc::new(Mutex::new(None)),
        })
    }

    /// Same server and connection pool, another identity.
    pub fn with_credential(&self, credential: Credential) -> Client {
        Client {
            http: self.http.clone(),
            base: self.base.clone(),
            timeout_secs: self.timeout_secs,
            credential: Arc::new(Mutex::new(credential)),
            renewed: Arc::new(Mutex::new(None)),
        }
    }

    /// The server's base URL as normalised (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The credential requests are currently sent with (a renewed token replaces a bearer one).
    pub fn credential(&self) -> Credential {
        lock(&self.credential).clone()
    }

    /// The most recent access token the server renewed for us, if any since the last call.
    /// The client already uses it for its next requests; the caller saves it if it persists
    /// tokens.
    pub fn take_renewed_token(&self) -> Option<String> {
        lock(&self.renewed).take()
    }

    /// Any request, any answer: no status is treated as an error, so tests can check exactly what
    /// the server said. `path` starts with `/` and may carry a query string.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, HeaderMap, Vec<u8>), ClientError> {
        let mut builder = self.builder(method, path);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        let response = self.send(builder).await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = self.read_body(response).await?;
        Ok((status, headers, bytes))
    }

    fn builder(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{}", self.base, path));
        match &*lock(&self.credential) {
            Credential::None => builder,
            Credential::ApiKey(key) => builder.header(API_KEY_HEADER, key),
            Credential::Bearer(token) => builder.bearer_auth(token),
        }
    }

    async fn send(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let response = builder.send().await.map_err(|e| {
            ClientError::Transport(error::describe_transport(&e, self.timeout_secs))
        })?;
        self.note_renewal(response.headers());
        Ok(response)
    }

    fn note_renewal(&self, headers: &HeaderMap) {
        let Some(token) = headers
            .get(RENEWED_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return;
        };
        let mut credential = lock(&self.credential);
        // Only a bearer session can be renewed; a stray header on an API-key request must not
        // silently switch the client's identity.
        if matches!(*credential, Credential::Bearer(_)) {
            *credential = Credential::Bearer(token.to_string());
            *lock(&self.renewed) = Some(token.to_string());
        }
    }

    async fn read_body(&self, response: reqwest::Response) -> Result<Vec<u8>, ClientError> {
        response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| ClientError::Transport(error::describe_transport(&e, self.timeout_secs)))
    }

    /// Sends and turns a non-2xx answer into `ClientError::Api`; returns the raw 2xx body.
    async fn exchange(&self, builder: reqwest::RequestBuilder) -> Result<Vec<u8>, ClientError> {
        let response = self.send(builder).await?;
        let status = response.status();
        let body = self.read_body(response).await?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(ClientError::from_response(status.as_u16(), &body))
        }
    }

    async fn fetch<T: DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let body = self.exchange(builder).await?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    async fn fetch_nothing(&self, builder: reqwest::RequestBuilder) -> Result<(), ClientError> {
        self.exchange(builder).await.map(drop)
    }

    /// Like `exchange`, except that a hub's 202 `x-hub-offline: queued` is `Queued`.
    async fn exchange_queueable(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<Accepted<Vec<u8>>, ClientError> {
        let response = self.send(builder).await?;
        let status = response.status();
        let queued = status == reqwest::StatusCode::ACCEPTED
            && response
                .headers()
                .get(HUB_OFFLINE_HEADER)
                .is_some_and(|v| v.as_bytes() == b"queued");
        let body = self.read_body(response).await?;
        if !status.is_success() {
            return Err(ClientError::from_response(status.as_u16(), &body));
        }
        Ok(if queued {
            Accepted::Queued
        } else {
            Accepted::Applied(body)
        })
    }

    async fn fetch_queueable<T: DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<Accepted<T>, ClientError> {
        match self.exchange_queueable(builder).await? {
            Accepted::Queued => Ok(Accepted::Queued),
            Accepted::Applied(body) => serde_json::from_slice(&body)
                .map(Accepted::Applied)
                .map_err(|e| ClientError::Decode(e.to_string())),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while holding these locks, but a poisoned credential is still a credential.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn normalize_base(base_url: &str) -> Result<String, ClientError> {
    let trimmed = base_url.trim();
    let url = reqwest::Url::parse(trimmed).map_err(|_| ClientError::InvalidUrl)?;
    let usable = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if !usable {
        return Err(ClientError::InvalidUrl);
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            normalize_base("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_base("https://mft.example.com/prefix/").unwrap(),
            "https://mft.example.com/prefix"
        );
        for bad in [
            "",
            "127.0.0.1:8080",
            "ftp://x",
            "http://",
            "http://h/?q=1",
            "http://u:p@h/",
        ] {
            assert_eq!(normalize_base(bad), Err(ClientError::InvalidUrl), "{bad}");
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let key = "mftpk_supersecretvalue";
        let shown = format!("{:?}", Credential::ApiKey(key.into()));
        assert!(!shown.contains(key));
        let client = Client::new(
            "http://localhost:1",
            Credential::Bearer("jwt.secret".into()),
        )
        .unwrap();
        assert!(!format!("{client:?}").contains("jwt.secret"));
    }
}
