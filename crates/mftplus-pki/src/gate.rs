//! What the serve loop refuses before a request reaches the router (issue 13):
//!
//! - connections beyond [`crate::serve::Limits::max_connections`] overall or
//!   [`crate::serve::Limits::max_connections_per_address`] from one address get a 503
//!   `too_many_connections` and are closed at once, so one address cannot hold every slot;
//! - a request target longer than `max_uri_bytes` is a 414 `uri_too_long`, header fields
//!   beyond `max_header_count` or `max_header_bytes` a 431 `headers_too_large` — with the JSON
//!   error body every other refusal carries. hyper refuses heads beyond its own, larger parse
//!   limits with a bare status; ours sit below them so a client meets the coded answer first.

use mftplus_types::ErrorCode;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How many connections are open, overall and per client address.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// Admits connections up to the limits; each admitted one holds a [`Slot`] until it ends.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionGate {
    open: Arc<Mutex<Open>>,
    max_total: usize,
    max_per_address: usize,
}

/// An admitted connection's place; freed when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    open: Arc<Mutex<Open>>,
    address: IpAddr,
}

impl ConnectionGate {
    pub(crate) fn new(max_total: usize, max_per_address: usize) -> ConnectionGate {
        ConnectionGate {
            open: Arc::default(),
            max_total,
            max_per_address,
        }
    }

    /// A slot for a new connection from `address`, or `None` when a limit is reached.
    pub(crate) fn admit(&self, address: IpAddr) -> Option<Slot> {
        let mut open = mftplus_base::sync::lock(&self.open);
        let from_address = open.per_address.get(&address).copied().unwrap_or(0);
        if open.total >= self.max_total || from_address >= self.max_per_address {
            return None;
        }
        open.total += 1;
        *open.per_address.entry(address).or_insert(0) += 1;
        Some(Slot {
            open: self.open.clone(),
            address,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = mftplus_base::sync::lock(&self.open);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.per_address.remove(&self.address);
            }
        }
    }
}

/// Answers a connection over the limits with a 503 and closes it; bounded, so a flood of
/// refused connections cannot pile up tasks. The answer waits for the request's head (up to
/// a second and a few KiB): an HTTP client that is sent a response before its request reports
/// a protocol error instead of the 503, so a legitimate client (a hub sharing an address with
/// an attacker) would not learn why, nor when to retry.
pub(crate) async fn refuse_connection<Io>(mut io: Io)
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let response = raw_response(
        503,
        "Service Unavailable",
        ErrorCode::TooManyConnections,
        "too many connections are open (overall or from this address); retry later",
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), read_head(&mut io)).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = io.write_all(response.as_bytes()).await;
        let _ = io.shutdown().await;
    })
    .await;
}

/// Reads until the end of a request head, end of stream, or 8 KiB.
async fn read_head<Io: tokio::io::AsyncRead + Unpin>(io: &mut Io) {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while seen.len() < 8 * 1024 {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        if seen.windows(4).any(|w| w == b"\r\n\r\n") {
            return;
        }
    }
}

/// The limits on a request's head that the router never sees past.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    pub max_uri_bytes: usize,
    pub max_header_count: usize,
    pub max_header_bytes: usize,
}

/// The coded refusal of a request whose head exceeds the limits, if it does.
pub(crate) fn refuse_head(
    parts: &http::request::Parts,
    limits: HeadLimits,
) -> Option<axum::response::Response> {
    let uri_bytes = parts.uri.to_string().len();
    if uri_bytes > limits.max_uri_bytes {
        return Some(json_response(
            http::StatusCode::URI_TOO_LONG,
            ErrorCode::UriTooLong,
            &format!(
                "the request target is {uri_bytes} bytes; this server reads at most {}",
                limits.max_uri_bytes
            ),
        ));
    }
    let count = parts.headers.len();
    let bytes: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if count > limits.max_header_count || bytes > limits.max_header_bytes {
        return Some(json_response(
            http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::HeadersTooLarge,
            &format!(
                "the request has {count} header fields in {bytes} bytes; this server reads at \
                 most {} fields in {} bytes",
                limits.max_header_count, limits.max_header_bytes
            ),
        ));
    }
    None
}

/// `{"error":{"code":…,"message":…}}`; the message is ours (numbers and fixed text), never
/// the client's, so it needs no escaping beyond what the format guarantees.
fn error_json(code: ErrorCode, message: &str) -> String {
    format!(
        r#"{{"error":{{"code":"{}","message":"{}"}}}}"#,
        code.as_str(),
        message.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

fn json_response(
    status: http::StatusCode,
    code: ErrorCode,
    message: &str,
) -> axum::response::Response {
    let mut response =
        axum::response::Response::new(axum::body::Body::from(error_json(code, message)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn raw_response(status: u16, reason: &str, code: ErrorCode, message: &str) -> String {
    let body = error_json(code, message);
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_address_and_freed_on_drop() {
        let gate = ConnectionGate::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = gate.admit(a).unwrap();
        let _second = gate.admit(a).unwrap();
        assert!(gate.admit(a).is_none(), "a third from one address");
        let _third = gate.admit(b).unwrap();
        assert!(gate.admit(b).is_none(), "a fourth overall");
        drop(first);
        assert!(gate.admit(a).is_some(), "a freed slot is reusable");
    }

    #[test]
    fn heads_beyond_the_limits_get_coded_answers() {
        let limits = HeadLimits {
            max_uri_bytes: 32,
            max_header_count: 2,
            max_header_bytes: 64,
        };
        let parts = |uri: &str, headers: &[(&str, &str)]| {
            let mut request = http::Request::builder().uri(uri);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.body(()).unwrap().into_parts().0
        };
        assert!(refuse_head(&parts("/ok", &[("a", "1")]), limits).is_none());
        let long = refuse_head(&parts(&format!("/{}", "x".repeat(40)), &[]), limits).unwrap();
        assert_eq!(long.status(), 414);
        let many = refuse_head(&parts("/", &[("a", "1"), ("b", "2"), ("c", "3")]), limits);
        assert_eq!(many.unwrap().status(), 431);
        let big = refuse_head(&parts("/", &[("a", &"v".repeat(80))]), limits);
        assert_eq!(big.unwrap().status(), 431);
        let body = error_json(ErrorCode::UriTooLong, "say \"no\"");
        let parsed: mftplus_types::error::ApiErrorBody = serde_json_parse(&body);
        assert_eq!(parsed.error.code, "uri_too_long");
        assert_eq!(parsed.error.message, "say \"no\"");
    }

    fn serde_json_parse(text: &str) -> mftplus_types::error::ApiErrorBody {
        serde_json::from_str(text).unwrap()
    }
}
