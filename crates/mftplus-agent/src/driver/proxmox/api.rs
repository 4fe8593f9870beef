//! The Proxmox VE REST API as the driver uses it: one reqwest client (the workspace's HTTP
//! and TLS stack, TLS 1.3 through `mftplus_pki`), the `PVEAPIToken` header, PVE's
//! `{"data": …}` envelope and its errors, and waiting for the tasks (UPIDs) that PVE answers
//! asynchronous actions with.
//!
//! Errors: PVE answering "no" (any non-2xx, including 401/403 for a token it does not accept
//! or that lacks a privilege, and a task that ends with an error) is `driver_refused` with
//! PVE's own message; not getting an answer (connection, TLS, timeout, an unreadable answer,
//! a task still running at its deadline) is `driver_unreachable`.

use super::DRIVER;
use crate::driver::DriverError;
use mftplus_base::Secret;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// An answer longer than this is not one PVE gives to the calls the driver makes.
const MAX_REPLY_BYTES: usize = 16 << 20;

/// Which call failed, for the error: the guest action and the guest.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub action: &'static str,
    pub guest_id: &'a str,
}

pub struct Api {
    http: reqwest::Client,
    /// `scheme://authority/api2/json`.
    base: String,
    token_id: String,
    /// The whole header value, `PVEAPIToken=ID=SECRET`.
    authorization: Secret,
    pub poll_interval: Duration,
}

/// A call PVE answered with a non-2xx status: the status and PVE's message.
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Api {
    pub fn new(
        base: String,
        token_id: String,
        secret: &Secret,
        extra_roots: Option<&mftplus_pki::TrustStore>,
        request_timeout: Duration,
    ) -> Result<Api, String> {
        let secret = secret.expose().trim();
        if secret.is_empty() || secret.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err("the token secret is empty or has whitespace inside".into());
        }
        let tls = mftplus_pki::client_config(extra_roots).map_err(|e| format!("TLS: {e}"))?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(request_timeout)
            .use_preconfigured_tls((*tls).clone())
            .http1_only()
            // A redirect would carry the token to wherever it points; PVE never redirects.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mftplus-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Api {
            http,
            authorization: Secret::new(format!("PVEAPIToken={token_id}={secret}")),
            base,
            token_id,
            poll_interval: Duration::from_secs(1),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn unreachable(&self, why: String) -> DriverError {
        DriverError::Unreachable {
            driver: DRIVER,
            endpoint: self.base.clone(),
            why,
        }
    }

    /// `GET path?query` → `data`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        ctx: Context<'_>,
    ) -> Result<T, DriverError> {
        let data = self.call(Method::GET, path, &[], ctx).await?;
        serde_json::from_value(data)
            .map_err(|e| self.unreachable(format!("unreadable answer to GET {path}: {e}")))
    }

    /// A call with form parameters (in the query for GET and DELETE, as PVE reads them) →
    /// `data`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        ctx: Context<'_>,
    ) -> Result<Value, DriverError> {
        match self.exchange(method.clone(), path, params).await? {
            Ok(data) => Ok(data),
            Err(refusal) => Err(self.refused(&method, path, refusal, ctx)),
        }
    }

    /// Like [`Api::call`], but a refusal comes back as such (for the few answers the driver
    /// reads as facts, e.g. "does not exist"); [`Api::refused`] turns it into the error.
    pub async fn exchange(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Result<Value, Refusal>, DriverError> {
        let url = format!("{}{path}", self.base);
        let mut header = HeaderValue::from_str(self.authorization.expose())
            .map_err(|_| self.unreachable("the token cannot be sent as a header".into()))?;
        header.set_sensitive(true);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header(AUTHORIZATION, header);
        if !params.is_empty() {
            request = if method == Method::GET || method == Method::DELETE {
                request.query(params)
            } else {
                request.form(params)
            };
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.unreachable(format!("{method} {path}: {}", describe(&e))))?;
        let status = response.status();
        let reason = response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).trim().to_string());
        let body = read_limited(response)
            .await
            .map_err(|why| self.unreachable(format!("{method} {path}: {why}")))?;
        if !status.is_success() {
            return Ok(Err(Refusal {
                status,
                message: message(status, reason, &body),
            }));
        }
        #[derive(Deserialize)]
        struct Envelope {
            #[serde(default)]
            data: Value,
        }
        let envelope: Envelope = serde_json::from_slice(&body).map_err(|e| {
            self.unreachable(format!(
                "{method} {path}: the answer is not PVE's JSON: {e}"
            ))
        })?;
        Ok(Ok(envelope.data))
    }

    pub fn refused(
        &self,
        method: &Method,
        path: &str,
        refusal: Refusal,
        ctx: Context<'_>,
    ) -> DriverError {
        let hint = match refusal.status {
            StatusCode::UNAUTHORIZED => format!(
                " (PVE does not accept the token {}: check `token_id` and \
                 `token_secret_file`)",
                self.token_id
            ),
            StatusCode::FORBIDDEN => format!(
                " (the token {} lacks a privilege; see docs/agent.md, Proxmox VE)",
                self.token_id
            ),
            _ => String::new(),
        };
        DriverError::Refused {
            driver: DRIVER,
            action: ctx.action,
            guest_id: ctx.guest_id.to_string(),
            why: format!(
                "{method} {path} answered {}: {}{hint}",
                refusal.status.as_u16(),
                refusal.message
            ),
        }
    }

    /// Waits for an action's answer: a UPID is polled until its task stops (its exit status
    /// decides), `null` (a synchronous call) is done at once.
    pub async fn finish(
        &self,
        node: &str,
        data: Value,
        deadline: Duration,
        ctx: Context<'_>,
    ) -> Result<(), DriverError> {
        match data {
            Value::String(upid) if upid.starts_with("UPID:") => {
                self.wait_task(node, &upid, deadline, ctx).await
            }
            _ => Ok(()),
        }
    }

    /// Polls `/nodes/{node}/tasks/{upid}/status` until `status` is `stopped`. `exitstatus`
    /// `OK` is success, and so is `WARNINGS: n` (PVE's "done, with warnings in the log");
    /// anything else is the task's error message. Past `deadline` the task may still finish:
    /// the outcome is unknown, which is `driver_unreachable`, and the idempotent calls of the
    /// next cycle find out what happened.
    pub async fn wait_task(
        &self,
        node: &str,
        upid: &str,
        deadline: Duration,
        ctx: Context<'_>,
    ) -> Result<(), DriverError> {
        #[derive(Deserialize)]
        struct TaskStatus {
            status: String,
            #[serde(default)]
            exitstatus: Option<String>,
        }
        if !upid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":@!._-=".contains(&b))
        {
            return Err(self.unreachable(format!("PVE answered a malformed task id {upid:?}")));
        }
        let started = Instant::now();
        let path = format!("/nodes/{node}/tasks/{upid}/status");
        loop {
            let task: TaskStatus = self.get(&path, ctx).await?;
            if task.status == "stopped" {
                let exit = task.exitstatus.unwrap_or_default();
                if exit == "OK" || exit.starts_with("WARNINGS") {
                    if exit != "OK" {
                        tracing::warn!(upid, exit, "PVE task finished with warnings");
                    }
                    return Ok(());
                }
                return Err(DriverError::Refused {
                    driver: DRIVER,
                    action: ctx.action,
                    guest_id: ctx.guest_id.to_string(),
                    why: format!("PVE task {upid} failed: {exit}"),
                });
            }
            if started.elapsed() >= deadline {
                return Err(self.unreachable(format!(
                    "PVE task {upid} ({}) still `{}` after {} s; it may still finish, the next \
                     cycle will see",
                    ctx.action,
                    task.status,
                    deadline.as_secs()
                )));
            }
            let left = deadline.saturating_sub(started.elapsed());
            tokio::time::sleep(self.poll_interval.min(left).max(Duration::from_millis(10))).await;
        }
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the answer: {}", describe(&e)))?
    {
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(format!("the answer is larger than {MAX_REPLY_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// PVE puts an error's message in the status line's reason phrase, and newer versions also in
/// the body (`message`), with per-parameter reasons in `errors`.
fn message(status: StatusCode, reason: Option<String>, body: &[u8]) -> String {
    #[derive(Deserialize, Default)]
    struct ErrorBody {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        errors: Option<serde_json::Map<String, Value>>,
    }
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let mut text = parsed
        .message
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .or(reason.filter(|r| !r.is_empty()))
        .or_else(|| status.canonical_reason().map(str::to_string))
        .unwrap_or_else(|| "no reason given".into());
    if let Some(errors) = parsed.errors.filter(|e| !e.is_empty()) {
        let details: Vec<String> = errors
            .iter()
            .map(|(key, why)| match why {
                Value::String(s) => format!("{key}: {}", s.trim()),
                other => format!("{key}: {other}"),
            })
            .collect();
        text = format!("{text} ({})", details.join("; "));
    }
    text.chars().take(500).collect()
}

/// reqwest's outer message only repeats the URL; the cause (refused, DNS, certificate,
/// timeout) is further down the chain.
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "no answer in time".into();
    }
    let mut parts = vec![err.to_string()];
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_from_the_body_then_the_reason_phrase() {
        let status = StatusCode::INTERNAL_SERVER_ERROR;
        assert_eq!(
            message(
                status,
                Some("VM 100 already running".into()),
                br#"{"data":null}"#
            ),
            "VM 100 already running"
        );
        assert_eq!(
            message(
                StatusCode::BAD_REQUEST,
                Some("Parameter verification failed.".into()),
                br#"{"data":null,"errors":{"memory":"value must be >= 16\n"}}"#
            ),
            "Parameter verification failed. (memory: value must be >= 16)"
        );
        assert_eq!(
            message(
                status,
                None,
                br#"{"message":"storage 'x' does not exist\n"}"#
            ),
            "storage 'x' does not exist"
        );
        assert_eq!(message(StatusCode::UNAUTHORIZED, None, b""), "Unauthorized");
    }

    #[test]
    fn the_token_is_never_in_debug_output() {
        let api = Api::new(
            "http://127.0.0.1:1/api2/json".into(),
            "u@pve!t".into(),
            &Secret::new("s3cr3t-uuid"),
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(!format!("{:?}", api.authorization).contains("s3cr3t"));
        assert!(Api::new(
            "http://127.0.0.1:1/api2/json".into(),
            "u@pve!t".into(),
            &Secret::new("a b"),
            None,
            Duration::from_secs(1),
        )
        .is_err());
    }
}
