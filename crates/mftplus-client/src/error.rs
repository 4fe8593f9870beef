use mftplus_types::{ApiErrorBody, ErrorCode};

/// Everything a call can fail with. `Api` carries the server's stable error code, which is what
/// callers should match on; the message is for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a non-2xx status.
    #[error("{code}: {message} (HTTP {status})")]
    Api {
        status: u16,
        /// The server's code (see `mftplus_types::ErrorCode`), or `http_<status>` when the body
        /// was not an MFTPlus error body (a proxy's error page, for instance).
        code: String,
        message: String,
    },
    /// No answer: connection refused, TLS failure, timeout, reset.
    #[error("{0}")]
    Transport(String),
    /// A 2xx answer whose body is not what this route returns.
    #[error("cannot decode the server's answer: {0}")]
    Decode(String),
    #[error("invalid server URL: expected http://HOST[:PORT] or https://HOST[:PORT]")]
    InvalidUrl,
}

impl ClientError {
    /// A short stable word for any error: the API code, or `transport`, `decode`, `invalid_url`.
    pub fn code(&self) -> &str {
        match self {
            ClientError::Api { code, .. } => code,
            ClientError::Transport(_) => "transport",
            ClientError::Decode(_) => "decode",
            ClientError::InvalidUrl => "invalid_url",
        }
    }

    /// The human part alone, without code or status.
    pub fn message(&self) -> String {
        match self {
            ClientError::Api { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is(&self, code: ErrorCode) -> bool {
        matches!(self, ClientError::Api { code: c, .. } if c == code.as_str())
    }

    /// Builds the error for a non-2xx answer from its status and body.
    pub(crate) fn from_response(status: u16, body: &[u8]) -> ClientError {
        if let Ok(parsed) = serde_json::from_slice::<ApiErrorBody>(body) {
            return ClientError::Api {
                status,
                code: parsed.error.code,
                message: parsed.error.message,
            };
        }
        ClientError::Api {
            status,
            code: format!("http_{status}"),
            message: foreign_body_message(status, body),
        }
    }
}

/// Something readable from a body that is not ours: its first line, kept short, because it may be
/// a whole HTML page from a proxy.
fn foreign_body_message(status: u16, body: &[u8]) -> String {
    const MAX_CHARS: usize = 200;
    let text = String::from_utf8_lossy(body);
    let first_line = text.lines().map(str::trim).find(|l| !l.is_empty());
    match first_line {
        Some(line) if line.chars().count() > MAX_CHARS => {
            let short: String = line.chars().take(MAX_CHARS).collect();
            format!("{short}…")
        }
        Some(line) => line.to_string(),
        None => reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("unexpected answer")
            .to_lowercase(),
    }
}

/// reqwest's own message is only the outermost layer ("error sending request"); the cause that
/// tells a user what to fix (refused, DNS, certificate) is further down the chain.
pub(crate) fn describe_transport(err: &reqwest::Error, timeout_secs: u64) -> String {
    if err.is_timeout() {
        return format!("no answer within {timeout_secs}s: {err}");
    }
    // The outermost message only repeats the URL, which the caller already knows.
    let mut source = std::error::Error::source(err);
    if source.is_none() {
        return err.to_string();
    }
    let mut parts: Vec<String> = Vec::new();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&cause_text)) {
            parts.push(cause_text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_api_error_body() {
        let body =
            br#"{"error":{"code":"forbidden","message":"role readonly lacks users:manage"}}"#;
        let err = ClientError::from_response(403, body);
        assert_eq!(
            err.to_string(),
            "forbidden: role readonly lacks users:manage (HTTP 403)"
        );
        assert!(err.is(ErrorCode::Forbidden));
        assert_eq!(err.code(), "forbidden");
        assert_eq!(err.status(), Some(403));
    }

    #[test]
    fn foreign_body_gets_http_code() {
        let err = ClientError::from_response(502, b"\n<html>Bad Gateway</html>\n");
        assert_eq!(err.code(), "http_502");
        assert_eq!(err.message(), "<html>Bad Gateway</html>");

        let err = ClientError::from_response(404, b"");
        assert_eq!(err.message(), "not found");

        let long = "x".repeat(1000);
        let err = ClientError::from_response(500, long.as_bytes());
        assert!(err.message().chars().count() <= 201);
    }
}
