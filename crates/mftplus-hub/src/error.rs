//! The hub's one error type and its one mapping to HTTP. Like pingora's errors, each records
//! where it came from and whether the caller may safely retry, so logs and agents can tell a
//! dead cloud from a broken client.

use axum::response::{IntoResponse, Response};
use mftplus_types::error::{ApiErrorBody, ErrorCode, ErrorInfo};

/// Which side of the hub failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The cloud: refused, unreachable, slow, or broke the connection.
    Upstream,
    /// The agent: sent something the hub cannot forward, or went away.
    Downstream,
    /// The hub itself (configuration, registration state, a bug).
    Internal,
}

/// Whether sending the same request again could have a different, harmless outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryType {
    /// The request never reached the cloud, or is idempotent.
    Safe,
    /// The cloud may have acted on it; retry only with an idempotency key.
    Unsafe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyErrorKind {
    /// The cloud could not be connected to (refused, unreachable, DNS, TLS).
    ConnectFailed,
    /// Connecting, or waiting for the cloud's response headers, took too long.
    Timeout,
    /// The connection broke after the request was (partly) sent.
    UpstreamBroken,
    /// The hub holds no usable registration (missing configuration or a refused key).
    NotRegistered,
    /// The agent's request cannot be forwarded as is, or its body broke off.
    BadRequest,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ProxyError {
    pub kind: ProxyErrorKind,
    pub origin: ErrorSource,
    pub retry: RetryType,
    /// Safe to show to the agent.
    pub message: String,
    /// The underlying cause, for the log (and for the agent outside production mode).
    pub detail: Option<String>,
}

impl ProxyError {
    pub fn new(kind: ProxyErrorKind, message: impl Into<String>) -> ProxyError {
        let (origin, retry) = match kind {
            ProxyErrorKind::ConnectFailed => (ErrorSource::Upstream, RetryType::Safe),
            ProxyErrorKind::Timeout | ProxyErrorKind::UpstreamBroken => {
                (ErrorSource::Upstream, RetryType::Unsafe)
            }
            ProxyErrorKind::NotRegistered => (ErrorSource::Internal, RetryType::Safe),
            ProxyErrorKind::BadRequest => (ErrorSource::Downstream, RetryType::Unsafe),
        };
        ProxyError {
            kind,
            origin,
            retry,
            message: message.into(),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> ProxyError {
        self.detail = Some(detail.into());
        self
    }

    /// A request the cloud may have seen is still safe to repeat when its method is idempotent.
    pub fn with_method(mut self, method: &http::Method) -> ProxyError {
        if self.retry == RetryType::Unsafe
            && self.origin == ErrorSource::Upstream
            && is_idempotent(method)
        {
            self.retry = RetryType::Safe;
        }
        self
    }

    pub fn code(&self) -> ErrorCode {
        match self.kind {
            ProxyErrorKind::ConnectFailed | ProxyErrorKind::UpstreamBroken => ErrorCode::BadGateway,
            ProxyErrorKind::Timeout => ErrorCode::GatewayTimeout,
            ProxyErrorKind::NotRegistered => ErrorCode::HubNotRegistered,
            ProxyErrorKind::BadRequest => ErrorCode::BadRequest,
        }
    }

    /// The answer for the agent; `show_detail` is off in production mode.
    pub fn into_response_with(self, show_detail: bool) -> Response {
        let code = self.code();
        let message = match (&self.detail, show_detail) {
            (Some(detail), true) => format!("{}: {detail}", self.message),
            _ => self.message.clone(),
        };
        let body = ApiErrorBody {
            error: ErrorInfo {
                code: code.as_str().into(),
                message,
            },
        };
        let status =
            http::StatusCode::from_u16(code.http_status()).unwrap_or(http::StatusCode::BAD_GATEWAY);
        let mut response = (status, axum::Json(body)).into_response();
        // Lets an agent (or an operator reading headers) see the classification without
        // parsing the message.
        let retry = match self.retry {
            RetryType::Safe => "safe",
            RetryType::Unsafe => "unsafe",
        };
        let source = match self.origin {
            ErrorSource::Upstream => "upstream",
            ErrorSource::Downstream => "downstream",
            ErrorSource::Internal => "internal",
        };
        let headers = response.headers_mut();
        headers.insert("x-hub-error-source", http::HeaderValue::from_static(source));
        headers.insert("x-hub-retry", http::HeaderValue::from_static(retry));
        response
    }
}

fn is_idempotent(method: &http::Method) -> bool {
    use http::Method;
    [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::PUT,
        Method::DELETE,
    ]
    .contains(method)
}

/// Classifies a client error from the pooled upstream client.
pub fn classify(err: &hyper_util::client::legacy::Error) -> ProxyError {
    let detail = describe(err);
    if timed_out(err) {
        return ProxyError::new(ProxyErrorKind::Timeout, "the cloud did not answer in time")
            .with_detail(detail);
    }
    if agent_body_failed(err) {
        return ProxyError::new(
            ProxyErrorKind::BadRequest,
            "the request body could not be read from the agent",
        )
        .with_detail(detail);
    }
    if err.is_connect() {
        return ProxyError::new(ProxyErrorKind::ConnectFailed, "cannot reach the cloud")
            .with_detail(detail);
    }
    ProxyError::new(
        ProxyErrorKind::UpstreamBroken,
        "the connection to the cloud failed",
    )
    .with_detail(detail)
}

/// hyper reports a failing request body as a "user" error: the agent's side broke, not the
/// cloud's.
fn agent_body_failed(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(hyper_err) = e.downcast_ref::<hyper::Error>() {
            return hyper_err.is_user();
        }
        current = e.source();
    }
    false
}

fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        current = e.source();
    }
    false
}

/// The whole cause chain on one line: hyper's top-level message alone ("client error
/// (Connect)") says nothing useful.
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        current = e.source();
    }
    text
}

/// An answer in the API's error shape with one of its stable codes, for what the hub decides
/// itself rather than fails at (the offline queue's and the site store's refusals).
pub fn api_error(code: ErrorCode, message: impl Into<String>) -> Response {
    let status = http::StatusCode::from_u16(code.http_status())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let body = ApiErrorBody {
        error: ErrorInfo {
            code: code.as_str().into(),
            message: message.into(),
        },
    };
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_the_agreed_codes_and_retry_rules() {
        let e = ProxyError::new(ProxyErrorKind::ConnectFailed, "x");
        assert_eq!(
            (e.code().as_str(), e.code().http_status()),
            ("bad_gateway", 502)
        );
        assert_eq!(
            (e.origin, e.retry),
            (ErrorSource::Upstream, RetryType::Safe)
        );
        let e = ProxyError::new(ProxyErrorKind::Timeout, "x");
        assert_eq!(
            (e.code().as_str(), e.code().http_status()),
            ("gateway_timeout", 504)
        );
        assert_eq!(e.retry, RetryType::Unsafe);
        assert_eq!(e.with_method(&http::Method::GET).retry, RetryType::Safe);
        let e = ProxyError::new(ProxyErrorKind::Timeout, "x").with_method(&http::Method::POST);
        assert_eq!(e.retry, RetryType::Unsafe);
        let e = ProxyError::new(ProxyErrorKind::NotRegistered, "x");
        assert_eq!(
            (e.code().as_str(), e.code().http_status()),
            ("hub_not_registered", 503)
        );
    }
}
