use std::time::Duration;

/// Every failure of an outbound integration. SMTP errors carry the step and the server's reply
/// code so the caller can tell a refused recipient from a relay that is down; none of them ever
/// carries a password or token.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The configuration or the message cannot be used (bad address, header injection, …).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A step did not finish within the configured timeout.
    #[error("{step} timed out after {timeout:?}")]
    Timeout {
        step: &'static str,
        timeout: Duration,
    },
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("i/o error during {step}: {source}")]
    Io {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS error: {0}")]
    Tls(String),
    /// The SMTP server answered a step with an unexpected reply.
    #[error("SMTP {step} refused: {code} {message}")]
    Smtp {
        step: &'static str,
        code: u16,
        message: String,
    },
    /// The SMTP server refused one recipient; nothing was sent.
    #[error("SMTP recipient {recipient} refused: {code} {message}")]
    RecipientRefused {
        recipient: String,
        code: u16,
        message: String,
    },
    /// The SMTP server rejected the credentials.
    #[error("SMTP authentication failed: {code} {message}")]
    AuthFailed { code: u16, message: String },
    /// The peer spoke something that is not the protocol (garbled SMTP reply, bad JSON).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The HTTP request failed before a response arrived (connect, timeout, TLS).
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// A webhook receiver answered with a non-2xx status.
    #[error("webhook answered {status}")]
    WebhookStatus { status: u16, body: String },
    /// The firewall API refused the token (401/403).
    #[error("edge firewall API refused the credentials ({status})")]
    FirewallAuth { status: u16 },
    /// The firewall API answered with an error.
    #[error("edge firewall API error {status}: {message}")]
    FirewallApi { status: u16, message: String },
}
